//! The `relaybox` binary: parse the command line, set up logging, run the command, map the
//! result to an exit code. Everything else lives in the library.

use std::process::ExitCode;

use clap::Parser as _;
use relaybox::cli::{self, Cli};

#[tokio::main]
async fn main() -> ExitCode {
    let args = Cli::parse();
    relaybox::telemetry::init(args.log_format, &args.log_level);
    for name in cli::unknown_env(std::env::vars().map(|(name, _)| name)) {
        tracing::warn!(
            "unknown environment variable {name} is ignored (typo? see relaybox --help)"
        );
    }
    match cli::run(args.command).await {
        Ok(code) => code,
        Err(err) => {
            tracing::error!("{err:#}");
            ExitCode::FAILURE
        }
    }
}
