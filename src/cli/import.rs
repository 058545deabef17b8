//! `relaybox import …`: bring data over from the tools relaybox replaces.

use std::io::Write as _;
use std::process::ExitCode;

use super::CcBridgeArgs;
use crate::app::{DataDir, DataDirOptions, Instance, StartupError};
use crate::importers::cc_bridge::{ImportOptions, Progress, import_dir};

/// The data dir an import works on. A real import may create a new one (importing is a way to
/// start); a dry run never creates a file there: without a data dir it plans against an empty
/// one in a temporary folder that is removed afterwards.
struct ImportTarget {
    /// Always `Some` until dropped (closed before the scratch folder is removed).
    instance: Option<Instance>,
    scratch: Option<std::path::PathBuf>,
}

impl ImportTarget {
    fn open(options: &DataDirOptions, dry_run: bool, busy_hint: &str) -> anyhow::Result<Self> {
        let new = !crate::app::is_data_dir(&options.path);
        let mut options = options.clone();
        let scratch = if dry_run && new {
            let dir = std::env::temp_dir().join(format!(
                "relaybox-dry-run-{}-{}",
                std::process::id(),
                crate::domain::new_id()
            ));
            options.path.clone_from(&dir);
            Some(dir)
        } else {
            if new {
                let _ = writeln!(
                    std::io::stderr().lock(),
                    "Importing into a new data dir at {}",
                    crate::app::absolute(&options.path).display()
                );
            }
            None
        };
        let opened = DataDir::open(&options, "import").and_then(Instance::load);
        let instance = match opened {
            Ok(instance) => instance,
            Err(err) => {
                if let Some(dir) = &scratch {
                    let _ = std::fs::remove_dir_all(dir);
                }
                return match err {
                    StartupError::Locked(message) => Err(anyhow::anyhow!("{message}\n{busy_hint}")),
                    other => Err(other.into()),
                };
            }
        };
        Ok(Self {
            instance: Some(instance),
            scratch,
        })
    }

    fn instance(&self) -> anyhow::Result<&Instance> {
        self.instance
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("the data dir is closed"))
    }
}

impl Drop for ImportTarget {
    fn drop(&mut self) {
        drop(self.instance.take());
        if let Some(dir) = &self.scratch {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// `relaybox import cc-bridge DIR [--dry-run]`: needs the data dir to itself (no running server).
pub async fn cc_bridge(args: CcBridgeArgs) -> anyhow::Result<ExitCode> {
    let options = args.data.options();
    let source = args.dir.clone();
    let dry_run = args.dry_run;
    let report = crate::store::blocking(move || -> anyhow::Result<_> {
        let target = ImportTarget::open(&options, dry_run, "An import needs the data dir to itself: stop the server first. (The JSON files alone can also be copied into the running server's data dir: they are picked up automatically.)")?;
        let progress = |p: &Progress| {
            let _ = writeln!(std::io::stderr().lock(), "  {}: {}/{}", p.stage, p.done, p.total);
        };
        let options = ImportOptions { dry_run, progress: Some(Box::new(progress)), ..ImportOptions::default() };
        let instance = target.instance()?;
        Ok(import_dir(&source, &instance.config, &instance.data.stores.logs, &instance.data.cipher, &options)?)
    })
    .await?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{report}")?;
    if dry_run {
        writeln!(
            out,
            "Dry run: nothing was written. Run again without --dry-run to import."
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `relaybox import claude-relay-service (--redis-url URL | --dump FILE) --crs-encryption-key K`:
/// reads and decrypts the source first (a wrong key fails before the data dir is opened), then
/// needs the data dir to itself (no running server).
pub async fn claude_relay_service(args: super::CrsArgs) -> anyhow::Result<ExitCode> {
    use crate::importers::crs;

    let offset = args.timezone_offset;
    if !offset.is_finite() || !(-14.0..=14.0).contains(&offset) {
        anyhow::bail!("--timezone-offset must be between -14 and 14 hours, got {offset}");
    }
    let source = match (&args.redis_url, &args.dump) {
        (Some(url), None) => crs::Source::Redis(url.clone()),
        (None, Some(path)) => crs::Source::Dump(path.clone()),
        _ => anyhow::bail!("give exactly one of --redis-url URL or --dump FILE"),
    };
    if args.crs_encryption_key.is_empty() {
        anyhow::bail!(
            "--crs-encryption-key is empty: give claude-relay-service's ENCRYPTION_KEY (from its .env)"
        );
    }
    let data_options = args.data.options();
    let json = args.json;
    let dry_run = args.dry_run;
    let mut options = crs::CrsOptions::new(&args.crs_encryption_key);
    options.timezone_offset_minutes = (offset * 60.0).round() as i32;
    options.dry_run = dry_run;
    options.check_keys = args
        .check_keys
        .iter()
        .map(|k| zeroize::Zeroizing::new(k.clone()))
        .collect();
    options.progress = Some(Box::new(|line: &str| {
        let _ = writeln!(std::io::stderr().lock(), "  {line}");
    }));
    let report = crate::store::blocking(move || -> anyhow::Result<_> {
        let prepared = crs::prepare(&source, &options)?;
        let target = ImportTarget::open(
            &data_options,
            dry_run,
            "An import needs the data dir to itself: stop the server first.",
        )?;
        let instance = target.instance()?;
        Ok(crs::import(
            &prepared,
            &instance.config,
            &instance.data.stores.logs,
            &instance.data.cipher,
            &options,
        )?)
    })
    .await?;
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        writeln!(out, "{report}")?;
        if dry_run {
            writeln!(
                out,
                "Dry run: nothing was written. Run again without --dry-run to import."
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
