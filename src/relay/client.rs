//! The one HTTP client for upstreams: hyper's connection API with a small pool of our own.
//!
//! Connections are made by hyper-util's `HttpConnector` (DNS, connect timeout, TCP_NODELAY,
//! keep-alive probes) wrapped in rustls, which offers HTTP/2 by ALPN. An HTTP/1 connection goes
//! back to its host's idle list when the response body has been read to its end; one whose
//! response is dropped half-read closes, which is how a client that went away cancels the
//! upstream request. An HTTP/2 connection is shared by all requests to its host.
//!
//! Why not hyper-util's pooled client: it boxes a 3 KB future and spawns a task per request
//! to return the connection to its pool. Measured on the benchmark, this pool takes about a
//! tenth of relaybox's CPU time per request off.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::http::uri::{Authority, Scheme};
use axum::http::{HeaderMap, HeaderValue, Method, Request, Response, Uri, header};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::{TrySendError, http1, http2};
use hyper_util::client::legacy::connect::{Connection as _, HttpConnector};
use hyper_util::rt::TokioExecutor;
use tower_service::Service as _;

use crate::FastMap;

/// The response of an upstream, its body still streaming.
pub type UpstreamResponse = Response<UpstreamBody>;

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;
type RequestBody = Full<Bytes>;

/// An idle HTTP/1 connection older than this is closed instead of reused (upstreams close theirs
/// after a minute or two, and a request on a connection closed under it would have to be
/// retried).
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Idle HTTP/1 connections kept per host; more are closed when they come back.
const MAX_IDLE_PER_HOST: usize = 256;

/// Why an upstream request got no response.
#[derive(Debug)]
pub enum SendError {
    /// The URL of the channel does not parse.
    BadUrl,
    /// No connection (refused, DNS, TLS handshake).
    Connect,
    /// Anything else before the response headers.
    Request,
}

impl SendError {
    #[must_use]
    pub fn describe(&self) -> &'static str {
        match self {
            SendError::BadUrl => "the channel's base URL is not a valid URL",
            SendError::Connect => "connection failed",
            SendError::Request => "request failed",
        }
    }
}

/// How the upstream's certificate is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Certificates {
    /// Against the bundled web PKI roots.
    Verify,
    /// Any certificate (a channel's `insecureSkipVerify`).
    AcceptAny,
}

/// The pooled upstream client. Cheap to share; one per server.
pub struct UpstreamClient {
    verified: Connector,
    insecure: Connector,
    hosts: Mutex<FastMap<HostKey, Arc<Host>>>,
}

impl std::fmt::Debug for UpstreamClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UpstreamClient")
    }
}

/// Connections are shared per scheme, host and port, and certificate policy.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct HostKey {
    https: bool,
    authority: Authority,
    certificates: Certificates,
}

/// The connections to one host.
struct Host {
    /// The `Host` header of HTTP/1 requests.
    host_header: HeaderValue,
    state: Mutex<HostState>,
}

#[derive(Default)]
struct HostState {
    /// Idle HTTP/1 connections, the most recently used at the back.
    idle: VecDeque<Idle>,
    /// The host's HTTP/2 connection, if it speaks HTTP/2.
    shared: Option<http2::SendRequest<RequestBody>>,
}

struct Idle {
    sender: http1::SendRequest<RequestBody>,
    since: Instant,
}

enum Sender {
    Http1(http1::SendRequest<RequestBody>),
    Http2(http2::SendRequest<RequestBody>),
}

/// Why a connection gave no response.
enum NotAnswered {
    /// The connection was gone before the request was written: it can go elsewhere as it is.
    Unsent(Box<Request<RequestBody>>),
    Failed,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl UpstreamClient {
    pub fn new() -> Result<Self, rustls::Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let verified = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let insecure = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(crate::tls::AnyCertificate(provider)))
            .with_no_client_auth();
        Ok(Self {
            verified: connector(verified),
            insecure: connector(insecure),
            hosts: Mutex::new(FastMap::default()),
        })
    }

    /// POST `body` to `url`; resolves when the response headers arrive (the body streams
    /// afterwards).
    pub async fn send(
        &self,
        certificates: Certificates,
        url: &str,
        headers: HeaderMap,
        body: Bytes,
    ) -> Result<UpstreamResponse, SendError> {
        let uri: Uri = url.parse().map_err(|_| SendError::BadUrl)?;
        let key = HostKey {
            https: match uri.scheme() {
                Some(scheme) if *scheme == Scheme::HTTPS => true,
                Some(scheme) if *scheme == Scheme::HTTP => false,
                _ => return Err(SendError::BadUrl),
            },
            authority: uri.authority().cloned().ok_or(SendError::BadUrl)?,
            certificates,
        };
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = uri;
        *request.headers_mut() = headers;
        let host = self.host(&key);

        // Reuse a connection; one that turns out closed is dropped and the next one tried.
        while let Some(sender) = host.checkout() {
            match send_on(sender, request, &host).await {
                Ok(response) => return Ok(response),
                Err(NotAnswered::Unsent(unsent)) => request = *unsent,
                Err(NotAnswered::Failed) => return Err(SendError::Request),
            }
        }
        // Boxed: connecting (DNS, TCP, TLS) is rare and its future is large; inline it would
        // make every request's future several KB bigger.
        let sender = Box::pin(self.connect(&key, &host, request.uri())).await?;
        send_on(sender, request, &host)
            .await
            .map_err(|_| SendError::Request)
    }

    fn host(&self, key: &HostKey) -> Arc<Host> {
        let mut hosts = lock(&self.hosts);
        match hosts.get(key) {
            Some(host) => Arc::clone(host),
            None => {
                let host = Arc::new(Host {
                    host_header: host_header(key),
                    state: Mutex::default(),
                });
                hosts.insert(key.clone(), Arc::clone(&host));
                host
            }
        }
    }

    async fn connect(&self, key: &HostKey, host: &Host, uri: &Uri) -> Result<Sender, SendError> {
        let mut connector = match key.certificates {
            Certificates::Verify => self.verified.clone(),
            Certificates::AcceptAny => self.insecure.clone(),
        };
        std::future::poll_fn(|cx| connector.poll_ready(cx))
            .await
            .map_err(|_| SendError::Connect)?;
        let io = connector
            .call(uri.clone())
            .await
            .map_err(|_| SendError::Connect)?;
        if io.connected().is_negotiated_h2() {
            let (sender, connection) = http2::handshake(TokioExecutor::new(), io)
                .await
                .map_err(|_| SendError::Connect)?;
            run_connection(connection);
            lock(&host.state).shared = Some(sender.clone());
            Ok(Sender::Http2(sender))
        } else {
            let (sender, connection) =
                http1::handshake(io).await.map_err(|_| SendError::Connect)?;
            run_connection(connection);
            Ok(Sender::Http1(sender))
        }
    }
}

/// The connection's I/O runs in a task of its own for as long as the connection lives.
fn run_connection<F>(connection: F)
where
    F: Future<Output = Result<(), hyper::Error>> + Send + 'static,
{
    #[expect(
        clippy::disallowed_methods,
        reason = "a connection task ends by itself when its connection closes; nothing to drain"
    )]
    tokio::spawn(async move {
        if let Err(err) = connection.await {
            tracing::trace!(error = %err, "upstream connection ended with an error");
        }
    });
}

impl Host {
    /// A connection ready for a request: the HTTP/2 one, else the most recently used idle
    /// HTTP/1 one that is still fresh.
    fn checkout(&self) -> Option<Sender> {
        let mut state = lock(&self.state);
        if let Some(shared) = &state.shared {
            if !shared.is_closed() {
                return Some(Sender::Http2(shared.clone()));
            }
            state.shared = None;
        }
        while let Some(idle) = state.idle.pop_back() {
            if idle.since.elapsed() > IDLE_TIMEOUT {
                // Everything older is further to the front.
                state.idle.clear();
                return None;
            }
            if !idle.sender.is_closed() {
                return Some(Sender::Http1(idle.sender));
            }
        }
        None
    }

    /// An HTTP/1 connection whose response has been read to its end.
    fn give_back(&self, sender: http1::SendRequest<RequestBody>) {
        let mut state = lock(&self.state);
        while state
            .idle
            .front()
            .is_some_and(|oldest| oldest.since.elapsed() > IDLE_TIMEOUT)
        {
            state.idle.pop_front();
        }
        if state.idle.len() >= MAX_IDLE_PER_HOST {
            state.idle.pop_front();
        }
        state.idle.push_back(Idle {
            sender,
            since: Instant::now(),
        });
    }
}

/// Send one request on one connection, in the form that connection's protocol wants.
async fn send_on(
    sender: Sender,
    mut request: Request<RequestBody>,
    host: &Arc<Host>,
) -> Result<UpstreamResponse, NotAnswered> {
    let absolute = request.uri().clone();
    match sender {
        Sender::Http1(mut sender) => {
            // HTTP/1: origin-form request target and a Host header.
            *request.uri_mut() = absolute
                .path_and_query()
                .map_or_else(|| Uri::from_static("/"), |path| Uri::from(path.clone()));
            request
                .headers_mut()
                .insert(header::HOST, host.host_header.clone());
            // A returned connection may still be finishing its previous response.
            if sender.ready().await.is_err() {
                *request.uri_mut() = absolute;
                return Err(NotAnswered::Unsent(Box::new(request)));
            }
            let response = sender
                .try_send_request(request)
                .await
                .map_err(|error| not_answered(error, absolute))?;
            let give_back = GiveBack {
                host: Arc::clone(host),
                sender,
            };
            Ok(response.map(|body| UpstreamBody {
                body,
                give_back: Some(give_back),
            }))
        }
        Sender::Http2(mut sender) => {
            let response = sender
                .try_send_request(request)
                .await
                .map_err(|error| not_answered(error, absolute))
                .inspect_err(|_| {
                    // The shared connection is going away; the next request opens a new one.
                    lock(&host.state).shared = None;
                })?;
            Ok(response.map(|body| UpstreamBody {
                body,
                give_back: None,
            }))
        }
    }
}

fn not_answered(mut error: TrySendError<Request<RequestBody>>, absolute: Uri) -> NotAnswered {
    match error.take_message() {
        Some(mut request) => {
            *request.uri_mut() = absolute;
            NotAnswered::Unsent(Box::new(request))
        }
        None => {
            tracing::debug!(error = %error.error(), "upstream request failed");
            NotAnswered::Failed
        }
    }
}

/// `Host` for HTTP/1: the authority without a port that is the scheme's default.
fn host_header(key: &HostKey) -> HeaderValue {
    let default_port = if key.https { 443 } else { 80 };
    let host = match key.authority.port_u16() {
        Some(port) if port == default_port => key.authority.host(),
        _ => key.authority.as_str(),
    };
    // An authority is always a valid header value; the fallback is never used.
    HeaderValue::from_str(host).unwrap_or_else(|_| HeaderValue::from_static("localhost"))
}

/// An upstream response body. Read to its end, its HTTP/1 connection goes back to the pool.
pub struct UpstreamBody {
    body: Incoming,
    give_back: Option<GiveBack>,
}

struct GiveBack {
    host: Arc<Host>,
    sender: http1::SendRequest<RequestBody>,
}

impl UpstreamBody {
    fn finished(&mut self) {
        if let Some(GiveBack { host, sender }) = self.give_back.take() {
            host.give_back(sender);
        }
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => this.finished(),
            Poll::Ready(Some(Ok(_))) if this.body.is_end_stream() => this.finished(),
            // A broken body leaves the connection in an unknown state: close it.
            Poll::Ready(Some(Err(_))) => this.give_back = None,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

fn connector(tls: rustls::ClientConfig) -> Connector {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(Duration::from_secs(10)));
    http.set_keepalive(Some(Duration::from_secs(60)));
    hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http)
}
