//! `relaybox healthcheck`: exit 0 when the server's `/health` answers 200, else 1.
//!
//! A `degraded` server (full disk, failing log writes) still answers 200 and still relays, so
//! this exits 0 and prints the problems: restarting it would not free the disk.

use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::HealthcheckArgs;

pub async fn run(args: HealthcheckArgs) -> anyhow::Result<ExitCode> {
    let address = args
        .listen
        .replace("0.0.0.0", "127.0.0.1")
        .replace("[::]", "[::1]");
    let uri = format!("http://{address}/health");
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let request = hyper::Request::get(&uri).body(Empty::new())?;
    match tokio::time::timeout(Duration::from_secs(5), client.request(request)).await {
        Ok(Ok(response)) if response.status().is_success() => {
            let body = tokio::time::timeout(Duration::from_secs(5), response.into_body().collect())
                .await
                .ok()
                .and_then(Result::ok)
                .map(|body| body.to_bytes());
            let health: serde_json::Value = body
                .and_then(|bytes| serde_json::from_slice(&bytes).ok())
                .unwrap_or_default();
            if health["status"] == "degraded" {
                for problem in health["problems"].as_array().into_iter().flatten() {
                    tracing::warn!("degraded: {}", problem.as_str().unwrap_or_default());
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Ok(Ok(response)) => {
            say(&format!("{uri} is unhealthy: HTTP {}", response.status()));
            Ok(ExitCode::FAILURE)
        }
        Ok(Err(err)) => {
            say(&format!("{uri} is unreachable: {err}"));
            Ok(ExitCode::FAILURE)
        }
        Err(_) => {
            say(&format!("{uri} did not answer within 5 s"));
            Ok(ExitCode::FAILURE)
        }
    }
}

/// A plain sentence on stderr (Docker shows it as the health check's output).
fn say(text: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}
