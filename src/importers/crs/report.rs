//! The verification report: per entity, found / imported / unchanged / skipped / failed, why
//! for every skipped or failed record, and the usage totals of the source against what was
//! carried over.

use std::fmt;

use serde::Serialize;

/// One entity's figures.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Entity {
    /// Records in the source.
    pub found: u64,
    /// New records written (or, in a dry run, to be written).
    pub new: u64,
    /// Changed records written (or to be written).
    pub changed: u64,
    pub unchanged: u64,
    /// Not imported on purpose (see `items`).
    pub skipped: u64,
    /// Could not be imported (see `items`).
    pub failed: u64,
    /// `skipped|failed item: reason`, every one.
    pub items: Vec<String>,
    /// Records in relaybox after the import (projected in a dry run).
    pub target: u64,
    pub notes: Vec<String>,
}

impl Entity {
    /// New plus changed.
    #[must_use]
    pub fn imported(&self) -> u64 {
        self.new + self.changed
    }

    pub(crate) fn skip(&mut self, item: &str, reason: &str) {
        self.skipped += 1;
        self.items.push(format!("skipped {item}: {reason}"));
    }

    pub(crate) fn fail(&mut self, item: &str, reason: &str) {
        self.failed += 1;
        self.items.push(format!("failed {item}: {reason}"));
    }
}

/// Lifetime usage: requests, tokens (all kinds), rated cost in USD.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Totals {
    pub requests: i64,
    pub tokens: i64,
    pub cost: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CrsReport {
    pub source: String,
    pub dry_run: bool,
    /// Keys in the source, and keys read.
    pub scanned_keys: u64,
    pub read_keys: u64,
    /// Secrets that decrypted with the given ENCRYPTION_KEY.
    pub secrets_decrypted: u64,
    /// Hours (may be fractional).
    pub timezone_offset_hours: f64,
    pub keys: Entity,
    pub channels: Entity,
    pub usage: Entity,
    /// Account groups and what they became.
    pub groups: Vec<String>,
    pub usage_source: Totals,
    pub usage_imported: Totals,
    pub notes: Vec<String>,
}

impl CrsReport {
    #[must_use]
    pub fn entities(&self) -> [(&'static str, &Entity); 3] {
        [
            ("client keys", &self.keys),
            ("channels", &self.channels),
            ("usage rows", &self.usage),
        ]
    }

    /// Records written (or to be written) over all entities.
    #[must_use]
    pub fn total_imported(&self) -> u64 {
        self.entities().iter().map(|(_, e)| e.imported()).sum()
    }
}

impl fmt::Display for CrsReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = if self.dry_run {
            " (dry run: nothing was written)"
        } else {
            ""
        };
        writeln!(f, "claude-relay-service import from {}{mode}", self.source)?;
        writeln!(
            f,
            "read {} of {} Redis keys; ENCRYPTION_KEY decrypted {} secret(s); TIMEZONE_OFFSET {:+} h",
            self.read_keys, self.scanned_keys, self.secrets_decrypted, self.timezone_offset_hours
        )?;
        writeln!(f)?;
        let imported = if self.dry_run {
            "to import"
        } else {
            "imported"
        };
        writeln!(
            f,
            "{:<12} {:>7} {:>10} {:>10} {:>8} {:>7} {:>7}",
            "entity", "source", imported, "unchanged", "skipped", "failed", "target"
        )?;
        for (name, e) in self.entities() {
            writeln!(
                f,
                "{:<12} {:>7} {:>10} {:>10} {:>8} {:>7} {:>7}",
                name,
                e.found,
                e.imported(),
                e.unchanged,
                e.skipped,
                e.failed,
                e.target
            )?;
        }
        writeln!(
            f,
            "\nusage in claude-relay-service: {} requests, {} tokens, ${:.6}",
            self.usage_source.requests, self.usage_source.tokens, self.usage_source.cost
        )?;
        writeln!(
            f,
            "usage carried over:            {} requests, {} tokens, ${:.6}",
            self.usage_imported.requests, self.usage_imported.tokens, self.usage_imported.cost
        )?;
        let listed: Vec<String> = self
            .entities()
            .iter()
            .flat_map(|(name, e)| e.items.iter().map(move |i| format!("{name}: {i}")))
            .collect();
        if !listed.is_empty() {
            writeln!(f, "\nnot imported:")?;
            for item in listed {
                writeln!(f, "  {item}")?;
            }
        }
        if !self.groups.is_empty() {
            writeln!(
                f,
                "\naccount groups (not records in relaybox; they become key allowlists):"
            )?;
            for group in &self.groups {
                writeln!(f, "  {group}")?;
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
