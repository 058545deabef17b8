//! `mock-upstream`: the fake LLM provider as a standalone server.

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;
use relaybox_mock_upstream::{MockOptions, run};

/// A fake LLM provider speaking the Anthropic, OpenAI (Chat Completions,
/// Responses) and Gemini wire formats, for relaybox's tests and benchmarks.
///
/// Prefix an API path with /s/{directives}/ to pick a scenario, e.g.
/// /s/status=429,retry_after=2/v1/messages. Directives: latency, chunk_delay,
/// chunks, status, retry_after, error_code, fail_times, cut_after, stall, stall_after, word_bytes,
/// input_tokens, output_tokens, cache_read, cache_creation, reasoning_tokens, parallel_tools,
/// require_key.
/// Control endpoints: GET /_mock/stats, GET /_mock/requests, POST /_mock/reset.
#[derive(Debug, Parser)]
#[command(name = "mock-upstream", version, about, long_about)]
struct Args {
    /// Address to listen on; port 0 picks a free port (the printed line shows it).
    #[arg(long, default_value = "127.0.0.1:9100")]
    listen: SocketAddr,

    /// Extra delay in milliseconds before every API response's headers.
    #[arg(long, default_value_t = 0, value_name = "MS")]
    latency_ms: u64,

    /// Do not record requests (GET /_mock/requests stays empty); for benchmarks.
    #[arg(long)]
    no_record: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("mock-upstream: cannot listen on {}: {error}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    let addr = match listener.local_addr() {
        Ok(addr) => addr,
        Err(error) => {
            eprintln!("mock-upstream: cannot read the bound address: {error}");
            return ExitCode::FAILURE;
        }
    };
    announce(addr);

    let options = MockOptions {
        listen: Some(addr),
        latency_ms: args.latency_ms,
        record: !args.no_record,
    };
    match run(options, listener, stop_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("mock-upstream: {error}");
            ExitCode::FAILURE
        }
    }
}

#[expect(
    clippy::print_stdout,
    reason = "the readiness line on stdout is the binary's interface: tests wait for it"
)]
fn announce(addr: SocketAddr) {
    println!("mock-upstream listening on http://{addr}");
    let _ = std::io::stdout().flush();
}

/// Resolves on ctrl-c or SIGTERM.
async fn stop_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    () = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => ctrl_c.await,
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await;
}
