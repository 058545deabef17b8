//! `passthrough-proxy`: the physical-limit baseline for relaybox's benchmark.
//!
//! A bare HTTP/1.1 reverse proxy: every request (method, path, headers, body) goes to the
//! upstream over a pooled keep-alive client, and the response body streams back as it arrives.
//! No auth, no routing, no logging — whatever relaybox costs beyond this is relaybox's own work.

use std::io::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;

use bytes::Bytes;
use clap::Parser;
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::header::{CONNECTION, HeaderName};
use hyper::http::uri::{Authority, PathAndQuery, Scheme};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// A minimal reverse proxy (the benchmark's baseline).
#[derive(Debug, Parser)]
#[command(name = "passthrough-proxy", version, about)]
struct Args {
    /// Address to listen on; port 0 picks a free port (the printed line shows it).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Upstream base URL, e.g. http://127.0.0.1:9100 (plain HTTP only).
    #[arg(long)]
    upstream: Uri,
}

type ProxyClient = Client<HttpConnector, Incoming>;
type ProxyBody = Either<Incoming, Full<Bytes>>;

/// Hop-by-hop headers (RFC 9110 §7.6.1) belong to one connection and are not forwarded.
const HOP_BY_HOP: [&str; 5] = ["keep-alive", "proxy-connection", "te", "trailer", "upgrade"];

#[derive(Debug, Clone)]
struct Upstream {
    scheme: Scheme,
    authority: Authority,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let (Some(scheme), Some(authority)) = (
        args.upstream.scheme().cloned(),
        args.upstream.authority().cloned(),
    ) else {
        eprintln!(
            "passthrough-proxy: --upstream must be an absolute URL like http://127.0.0.1:9100"
        );
        return ExitCode::FAILURE;
    };
    let upstream = Upstream { scheme, authority };
    let listener = match TcpListener::bind(args.listen).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!(
                "passthrough-proxy: cannot listen on {}: {error}",
                args.listen
            );
            return ExitCode::FAILURE;
        }
    };
    match listener.local_addr() {
        Ok(addr) => announce(addr),
        Err(error) => {
            eprintln!("passthrough-proxy: cannot read the bound address: {error}");
            return ExitCode::FAILURE;
        }
    }

    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: ProxyClient = Client::builder(TokioExecutor::new()).build(connector);

    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let client = client.clone();
                let upstream = upstream.clone();
                connections.spawn(async move {
                    let service = service_fn(move |request| forward(client.clone(), upstream.clone(), request));
                    // A client that goes away mid-request is normal here; nothing to report.
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            Some(_) = connections.join_next() => {}
        }
    }
}

async fn forward(
    client: ProxyClient,
    upstream: Upstream,
    mut request: Request<Incoming>,
) -> Result<Response<ProxyBody>, hyper::http::Error> {
    let path = request
        .uri()
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    *request.uri_mut() = Uri::builder()
        .scheme(upstream.scheme)
        .authority(upstream.authority)
        .path_and_query(path)
        .build()?;
    strip_hop_by_hop(request.headers_mut());
    match client.request(request).await {
        Ok(mut response) => {
            strip_hop_by_hop(response.headers_mut());
            Ok(response.map(Either::Left))
        }
        Err(error) => Response::builder()
            .status(StatusCode::BAD_GATEWAY)
            .body(Either::Right(Full::new(Bytes::from(format!(
                "upstream error: {error}\n"
            ))))),
    }
}

fn strip_hop_by_hop(headers: &mut hyper::HeaderMap) {
    // Headers named in `Connection` are hop-by-hop too.
    let named: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    headers.remove(CONNECTION);
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

#[expect(
    clippy::print_stdout,
    reason = "the readiness line on stdout is the binary's interface: the bench script waits for it"
)]
fn announce(addr: SocketAddr) {
    println!("passthrough-proxy listening on http://{addr}");
    let _ = std::io::stdout().flush();
}
