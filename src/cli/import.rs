//! `relaybox import …`: bring data over from the tools relaybox replaces.

use std::io::Write as _;
use std::process::ExitCode;

use super::CcBridgeArgs;
use crate::app::{DataDir, StartupError};
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
        Ok(import_dir(&source, data.stores.config.as_ref(), &data.stores.logs, &data.cipher, &options)?)
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
