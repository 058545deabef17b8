//! `relaybox import …`: bring data over from the tools relaybox replaces.

use std::process::ExitCode;

use super::CcBridgeArgs;

pub async fn cc_bridge(args: CcBridgeArgs) -> anyhow::Result<ExitCode> {
    let _ = args;
    anyhow::bail!("not yet wired")
}
