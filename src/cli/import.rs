//! `relaybox import …`: bring data over from the tools relaybox replaces.

use std::io::Write as _;
use std::process::ExitCode;

use super::CcBridgeArgs;
use crate::app::{DataDir, Instance, StartupError};
use crate::importers::cc_bridge::{ImportOptions, Progress, import_dir};

/// `relaybox import cc-bridge DIR [--dry-run]`: needs the data dir to itself (no running server).
pub async fn cc_bridge(args: CcBridgeArgs) -> anyhow::Result<ExitCode> {
    let options = args.data.options();
    let source = args.dir.clone();
    let dry_run = args.dry_run;
    let report = crate::store::blocking(move || -> anyhow::Result<_> {
        let data = match DataDir::open(&options, "import") {
            Ok(data) => data,
            Err(StartupError::Locked(message)) => anyhow::bail!(
                "{message}\nAn import needs the data dir to itself: stop the server first. (The JSON files alone can also be copied into the running server's data dir: they are picked up automatically.)"
            ),
            Err(other) => return Err(other.into()),
        };
        let progress = |p: &Progress| {
            let _ = writeln!(std::io::stderr().lock(), "  {}: {}/{}", p.stage, p.done, p.total);
        };
        let options = ImportOptions { dry_run, progress: Some(Box::new(progress)), ..ImportOptions::default() };
        let instance = Instance::load(data)?;
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

/// `relaybox import claude-relay-service (--redis-url URL | --dump FILE) --encryption-key K`:
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
    if args.encryption_key.is_empty() {
        anyhow::bail!("--encryption-key is empty: give claude-relay-service's ENCRYPTION_KEY");
    }
    let data_options = crate::app::DataDirOptions {
        path: args.data_dir.clone(),
        encryption_key: args
            .relaybox_encryption_key
            .clone()
            .filter(|k| !k.is_empty()),
        allow_network_fs: args.allow_network_fs,
    };
    let json = args.json;
    let dry_run = args.dry_run;
    let mut options = crs::CrsOptions::new(&args.encryption_key);
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
        let data = match DataDir::open(&data_options, "import") {
            Ok(data) => data,
            Err(StartupError::Locked(message)) => anyhow::bail!(
                "{message}\nAn import needs the data dir to itself: stop the server first."
            ),
            Err(other) => return Err(other.into()),
        };
        let instance = Instance::load(data)?;
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
