//! The verification report of an import: per entity, source vs target.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

/// At most this many skipped items are listed per entity (the count is always exact).
const MAX_LISTED: usize = 50;

/// One entity's figures.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EntityReport {
    /// Records in the source.
    pub found: u64,
    /// New or changed records written (or, in a dry run, that would be written).
    pub imported: u64,
    /// Records already in the target as they are in the source.
    pub unchanged: u64,
    /// Records removed from the target because the source no longer has them.
    pub removed: u64,
    /// Records not imported; see `skipped_items`.
    pub skipped: u64,
    /// `item: reason`, the first few.
    pub skipped_items: Vec<String>,
    /// Records in the target after the import (projected in a dry run).
    pub target: u64,
    /// Remarks worth reading (not errors).
    pub notes: Vec<String>,
}

impl EntityReport {
    pub(crate) fn skip(&mut self, item: &str, reason: &str) {
        self.skipped += 1;
        if self.skipped_items.len() < MAX_LISTED {
            self.skipped_items.push(format!("{item}: {reason}"));
        }
    }
}

/// What happened to one source file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileOutcome {
    pub file: String,
    pub sha256: String,
    /// `applied`, `unchanged`, `skipped: …`.
    pub outcome: String,
}

/// The report of [`import_dir`](super::import_dir).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    /// The folder read (the `.config` folder when the parent was given).
    pub source: PathBuf,
    pub dry_run: bool,
    /// The SQLite database read, if any.
    pub database: Option<PathBuf>,
    pub files: Vec<FileOutcome>,
    pub channels: EntityReport,
    pub settings: EntityReport,
    pub pricing: EntityReport,
    pub aliases: EntityReport,
    pub quota: EntityReport,
    pub keys: EntityReport,
    pub request_logs: EntityReport,
    pub user_aliases: EntityReport,
    pub notes: Vec<String>,
}

impl ImportReport {
    /// The entities in display order.
    #[must_use]
    pub fn entities(&self) -> [(&'static str, &EntityReport); 8] {
        [
            ("channels", &self.channels),
            ("settings", &self.settings),
            ("pricing", &self.pricing),
            ("model aliases", &self.aliases),
            ("quota usage", &self.quota),
            ("client keys", &self.keys),
            ("request logs", &self.request_logs),
            ("user aliases", &self.user_aliases),
        ]
    }

    /// Records written (or to be written) over all entities, removals included.
    #[must_use]
    pub fn total_imported(&self) -> u64 {
        self.entities()
            .iter()
            .map(|(_, e)| e.imported + e.removed)
            .sum()
    }

    /// Records skipped over all entities.
    #[must_use]
    pub fn total_skipped(&self) -> u64 {
        self.entities().iter().map(|(_, e)| e.skipped).sum()
    }
}

impl fmt::Display for ImportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = if self.dry_run {
            " (dry run: nothing was written)"
        } else {
            ""
        };
        writeln!(f, "cc-bridge import from {}{mode}", self.source.display())?;
        if let Some(database) = &self.database {
            writeln!(f, "database: {}", database.display())?;
        }
        for file in &self.files {
            writeln!(
                f,
                "  {:<20} {}  sha256 {}",
                file.file,
                file.outcome,
                short(&file.sha256)
            )?;
        }
        writeln!(f)?;
        let imported = if self.dry_run {
            "to import"
        } else {
            "imported"
        };
        writeln!(
            f,
            "{:<14} {:>9} {:>10} {:>10} {:>8} {:>8} {:>9}",
            "entity", "source", imported, "unchanged", "removed", "skipped", "target"
        )?;
        for (name, e) in self.entities() {
            writeln!(
                f,
                "{:<14} {:>9} {:>10} {:>10} {:>8} {:>8} {:>9}",
                name, e.found, e.imported, e.unchanged, e.removed, e.skipped, e.target
            )?;
        }
        let mut wrote_header = false;
        for (name, e) in self.entities() {
            for item in &e.skipped_items {
                if !wrote_header {
                    writeln!(f, "\nskipped:")?;
                    wrote_header = true;
                }
                writeln!(f, "  {name}: {item}")?;
            }
            let listed = e.skipped_items.len() as u64;
            if e.skipped > listed {
                writeln!(f, "  {name}: … and {} more", e.skipped - listed)?;
            }
        }
        let notes: Vec<String> = self
            .notes
            .iter()
            .cloned()
            .chain(
                self.entities()
                    .iter()
                    .flat_map(|(name, e)| e.notes.iter().map(move |n| format!("{name}: {n}"))),
            )
            .collect();
        if !notes.is_empty() {
            writeln!(f, "\nnotes:")?;
            for note in notes {
                writeln!(f, "  {note}")?;
            }
        }
        Ok(())
    }
}

fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_a_table_with_skips_and_notes() {
        let mut report = ImportReport {
            source: PathBuf::from("/x/.config"),
            dry_run: true,
            ..Default::default()
        };
        report.channels = EntityReport {
            found: 3,
            imported: 2,
            unchanged: 1,
            target: 5,
            ..Default::default()
        };
        report.keys.found = 1;
        report.keys.skip(
            "api_keys id 7 (old)",
            "key_hash is not a SHA-256 hex digest",
        );
        report.notes.push("read from a copy".into());
        let text = report.to_string();
        assert!(text.contains("dry run"), "{text}");
        assert!(text.contains("to import"), "{text}");
        assert!(
            text.lines()
                .any(|l| l.starts_with("channels") && l.ends_with('5')),
            "{text}"
        );
        assert!(
            text.contains("client keys: api_keys id 7 (old): key_hash"),
            "{text}"
        );
        assert!(text.contains("read from a copy"), "{text}");
        assert_eq!(report.total_imported(), 2);
        assert_eq!(report.total_skipped(), 1);
    }
}
