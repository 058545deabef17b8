//! A fake LLM provider speaking the Anthropic Messages, OpenAI Chat
//! Completions / Responses and Gemini wire formats, for relaybox's tests and
//! load benchmark.
//!
//! Use it in-process with [`MockUpstream::start`], or as the `mock-upstream`
//! binary (built on [`run`]).
//!
//! # Routes
//! - `POST /v1/messages`, `POST /v1/messages/count_tokens` (Anthropic)
//! - `POST /v1/chat/completions`, `POST /v1/responses`, `POST /v1/responses/input_tokens`
//!   (`{"object": "response.input_tokens", "input_tokens": N}`), `GET /v1/models` (OpenAI;
//!   the model list is Anthropic-shaped when asked with `anthropic-version` or
//!   `x-api-key`, Gemini-shaped with `x-goog-api-key`/`?key=`)
//! - `POST /v1beta/models/{model}:generateContent`, `:streamGenerateContent`
//!   (`?alt=sse` for SSE framed with `\r\n\r\n`, else a streamed JSON array),
//!   `:countTokens`, `GET /v1beta/models` (Gemini; `/v1/` works too)
//! - `GET /_mock/stats`, `GET /_mock/requests`, `POST /_mock/reset` (control;
//!   not counted)
//!
//! Any API path may be preceded by `/s/{directives}/`; see [`Scenario`] for
//! the directives (`stall=head` and `stall_after=N` make an upstream hang
//! before its headers or in the middle of its body).
//!
//! # What the answer is
//! Decided from the request, in this order (each protocol reads its own shapes):
//! 1. **The last turn carries tool results** (Anthropic `tool_result` blocks, Chat trailing
//!    `role: tool` messages, Responses trailing `function_call_output` items, Gemini
//!    `functionResponse` parts): the text "The tool said: R" quoting each result's text
//!    (several joined by "; "). A Gemini `response` object with one string member is quoted
//!    as that string (`{"result": "18 C"}` → `18 C`), any other as its JSON.
//! 2. **The request has tools** (and the tool choice is not none): a call of the first tool,
//!    arguments made from its schema; `parallel_tools=N` makes N calls in one answer, cycling
//!    through the tools (ids `…mock{seq}`, then `…mock{seq}_1`, `_2` …). Streamed, each call's
//!    arguments come in `chunks` pieces (Anthropic `input_json_delta`, Chat `tool_calls`
//!    deltas by index, Responses `function_call_arguments.delta` per item); Gemini sends whole
//!    `functionCall` parts, all in one chunk.
//! 3. **The conversation carries images or documents**: "I see 1 image (image/png, 68 bytes)."
//!    naming each medium — inline base64 by MIME type and decoded byte count, a URL as it is,
//!    an uploaded file as `file ID` — images and documents counted apart ("I see 2 images
//!    (…; …) and 1 document (application/pdf, 9 bytes)."). Recognised: Anthropic `image` /
//!    `document` blocks (base64, text, url, file sources; also inside `tool_result`), Chat
//!    `image_url` (data URL or http) and `file` parts (`file_data` data URL or `file_id`),
//!    Responses `input_image` / `input_file`, Gemini `inlineData` / `fileData` (an image when
//!    the MIME type is `image/*`). Base64 that does not decode is a 400.
//! 4. Otherwise the default text (below).
//!
//! **Reasoning** comes first when the request asks for it — Anthropic `thinking: {type:
//! enabled | adaptive}` (the budget follows Anthropic's rules: ≥ 1024 and below
//! `max_tokens`, else 400), Chat `reasoning_effort` (not "none"), Responses `reasoning.effort`
//! (not "none"), Gemini `generationConfig.thinkingConfig` with `includeThoughts: true` or a
//! `thinkingBudget` above 0 (or -1): the text "Let me think about this step by step. Reply
//! number K needs a friendly answer." and a base64 signature. Anthropic: a `thinking` block
//! with `signature` (streamed: `thinking_delta`s, then one `signature_delta`). Chat:
//! `message.reasoning_content` (streamed: `delta.reasoning_content` before the content, as
//! DeepSeek and vLLM send it). Responses: a `reasoning` output item with the text as its
//! summary (always given) and `encrypted_content` when `include` has
//! `reasoning.encrypted_content` (streamed: `reasoning_summary_part.added`,
//! `reasoning_summary_text.delta`s, `.done`, `reasoning_summary_part.done`). Gemini: a
//! `{text, thought: true}` part (only with `includeThoughts`) and a `thoughtSignature` on the
//! first answer part.
//!
//! **Provider rules the mock enforces** (400 in the protocol's shape and wording), so a
//! request built wrongly by a relay fails as it would for real: Anthropic `tool_use` /
//! `tool_result` pairing between neighbouring messages; Chat `tool_calls` answered by `tool`
//! messages and `tool` messages answering a call; Responses `function_call` /
//! `function_call_output` pairing by `call_id` (unless `previous_response_id` is given);
//! Gemini function-response turns right after a call turn with as many parts; Anthropic tool
//! schemas of type `object`, and Anthropic and OpenAI tool schemas in JSON Schema's type names
//! (Gemini's `OBJECT` / `STRING` spelling is refused there, accepted by Gemini).
//!
//! # Usage figures
//! `input_tokens` defaults to [`estimate_input_tokens`] of the request body;
//! the reply text is "Hello from the mock upstream. This is reply number K."
//! (padded with "more" up to `chunks` words) and `output_tokens` defaults to
//! its word count, i.e. `max(10, chunks)`; any other reply text counts its words too. A tool
//! call's `output_tokens` is `ceil(len(arguments JSON) / 4)` (summed over parallel calls).
//! Reasoning tokens default to the reasoning text's word count
//! ([`DEFAULT_REASONING_WORDS`]) when reasoning is asked for, else 0; `reasoning_tokens=N`
//! sets them either way. Anthropic `output_tokens`, Chat `completion_tokens` and Responses
//! `output_tokens` are `output + reasoning` (OpenAI with
//! `completion_tokens_details.reasoning_tokens` / `output_tokens_details.reasoning_tokens`);
//! Gemini reports `candidatesTokenCount` = output and `thoughtsTokenCount` = reasoning (only
//! when not 0) apart, `totalTokenCount` adding both. Cache figures default to 0. OpenAI's
//! `prompt_tokens`/`input_tokens` and Gemini's `promptTokenCount` include the cache figures
//! (`input + cache_read + cache_creation`); Anthropic reports them apart.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};

mod anthropic;
mod error;
mod gemini;
mod openai;
mod reply;
mod responses;
pub mod scenario;
mod sse;
mod state;

pub use reply::{DEFAULT_REASONING_WORDS, DEFAULT_REPLY_WORDS, estimate_input_tokens};
pub use scenario::{DEFAULT_CHUNKS, Scenario};
pub use state::{RECORD_CAPACITY, RecordedRequest, StatsSnapshot};

use error::{ApiError, Protocol};
use sse::Playback;
use state::{InFlight, Shared, StreamGuard};

/// Largest request body accepted.
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// How the mock is started.
#[derive(Debug, Clone)]
pub struct MockOptions {
    /// Address to bind in [`MockUpstream::start`]; `None` means 127.0.0.1:0.
    pub listen: Option<SocketAddr>,
    /// Delay added before every API response's headers.
    pub latency_ms: u64,
    /// Keep the last [`RECORD_CAPACITY`] requests (turn off for benchmarks).
    pub record: bool,
}

impl Default for MockOptions {
    fn default() -> Self {
        Self {
            listen: None,
            latency_ms: 0,
            record: true,
        }
    }
}

impl MockOptions {
    fn shared(&self) -> Arc<Shared> {
        Arc::new(Shared::new(
            Duration::from_millis(self.latency_ms),
            self.record,
        ))
    }
}

/// A running mock upstream serving in a background task; dropping it stops
/// the server (use [`MockUpstream::shutdown`] to wait until it has stopped).
pub struct MockUpstream {
    /// The bound address (with the real port when port 0 was asked for).
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for MockUpstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockUpstream")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl MockUpstream {
    /// Binds (127.0.0.1:0 unless `options.listen` says otherwise) and serves
    /// in a background task of the current Tokio runtime.
    #[expect(
        clippy::disallowed_methods,
        reason = "the mock is a test tool outside app::Tasks; its one task is owned by \
                  MockUpstream and aborted on drop"
    )]
    pub async fn start(options: MockOptions) -> io::Result<Self> {
        let listen = options
            .listen
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let shared = options.shared();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(Arc::clone(&shared), listener, async {
            // A dropped sender also means stop.
            let _ = stopped.await;
        }));
        Ok(Self {
            addr,
            shared,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:PORT/s/{directives}`: a base URL whose requests
    /// follow the given scenario directives.
    pub fn scenario_url(&self, directives: &str) -> String {
        format!("http://{}/s/{directives}", self.addr)
    }

    pub fn stats(&self) -> StatsSnapshot {
        self.shared.snapshot()
    }

    /// The recorded requests, oldest first (at most [`RECORD_CAPACITY`]).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.requests()
    }

    /// Zeroes the counters and forgets recorded requests and `fail_times` counts.
    pub fn reset(&self) {
        self.shared.reset();
    }

    /// Stops accepting, closes every connection (in-flight responses are cut)
    /// and waits until the server task has ended.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for MockUpstream {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Serves the mock on `listener` until `shutdown` completes, then closes
/// every connection. `options.listen` is ignored here.
pub async fn run(
    options: MockOptions,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    serve(options.shared(), listener, shutdown).await;
    Ok(())
}

async fn serve(shared: Arc<Shared>, listener: TcpListener, shutdown: impl Future<Output = ()>) {
    let service = TowerToHyperService::new(router(Arc::clone(&shared)));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new());
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    shared.connection_accepted();
                    // Events must leave at once, not wait for Nagle.
                    let _ = stream.set_nodelay(true);
                    let builder = builder.clone();
                    let service = service.clone();
                    connections.spawn(async move {
                        let _ = builder.serve_connection(TokioIo::new(stream), service).await;
                    });
                }
                // Out of file descriptors and the like: back off briefly.
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            },
        }
    }
    drop(listener);
    connections.shutdown().await;
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/_mock/stats", get(stats_handler))
        .route("/_mock/requests", get(requests_handler))
        .route("/_mock/reset", post(reset_handler))
        .fallback(dispatch)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(shared)
}

async fn stats_handler(State(shared): State<Arc<Shared>>) -> Response {
    axum::Json(shared.snapshot()).into_response()
}

async fn requests_handler(State(shared): State<Arc<Shared>>) -> Response {
    axum::Json(shared.requests()).into_response()
}

async fn reset_handler(State(shared): State<Arc<Shared>>) -> Response {
    shared.reset();
    axum::Json(json!({"ok": true})).into_response()
}

/// A successful reply before framing: one JSON document, or events to stream.
pub(crate) enum Reply {
    Json(Value),
    Stream {
        content_type: &'static str,
        events: Vec<Bytes>,
    },
}

/// What an API path asks for.
enum Route<'a> {
    Messages,
    CountTokens,
    ChatCompletions,
    Responses,
    ResponsesInputTokens,
    Models(Protocol),
    Gemini {
        model: &'a str,
        action: gemini::Action,
    },
    Unknown(Protocol),
}

impl<'a> Route<'a> {
    fn parse(method: &Method, path: &'a str, headers: &HeaderMap, uri: &Uri) -> Self {
        let post = method == Method::POST;
        let get = method == Method::GET;
        match path {
            "/v1/messages" if post => return Self::Messages,
            "/v1/messages/count_tokens" if post => return Self::CountTokens,
            "/v1/chat/completions" if post => return Self::ChatCompletions,
            "/v1/responses" if post => return Self::Responses,
            "/v1/responses/input_tokens" if post => return Self::ResponsesInputTokens,
            "/v1beta/models" if get => return Self::Models(Protocol::Gemini),
            "/v1/models" if get => {
                let protocol = if headers.contains_key("x-goog-api-key") || query_key(uri).is_some()
                {
                    Protocol::Gemini
                } else if headers.contains_key("anthropic-version")
                    || headers.contains_key("x-api-key")
                {
                    Protocol::Anthropic
                } else {
                    Protocol::OpenAi
                };
                return Self::Models(protocol);
            }
            _ => {}
        }
        let gemini_rest = path
            .strip_prefix("/v1beta/")
            .or_else(|| path.strip_prefix("/v1/"));
        if let Some((model, action)) = gemini_rest
            .filter(|_| post)
            .and_then(gemini::parse_model_action)
        {
            return Self::Gemini { model, action };
        }
        let guess = if path.starts_with("/v1beta") || path.contains(":generate") {
            Protocol::Gemini
        } else if path.contains("/messages") {
            Protocol::Anthropic
        } else {
            Protocol::OpenAi
        };
        Self::Unknown(guess)
    }

    fn protocol(&self) -> Protocol {
        match self {
            Self::Messages | Self::CountTokens => Protocol::Anthropic,
            Self::ChatCompletions | Self::Responses | Self::ResponsesInputTokens => {
                Protocol::OpenAi
            }
            Self::Gemini { .. } => Protocol::Gemini,
            Self::Models(protocol) | Self::Unknown(protocol) => *protocol,
        }
    }
}

/// Every API request: count, record, decide, wait, answer.
async fn dispatch(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path();
    let (directives, api_path) = scenario::split_path(path);
    let route = Route::parse(&method, api_path, &headers, &uri);
    let in_flight = shared.enter(path);
    let seq = shared.next_seq();
    let (scenario, scenario_error) = match Scenario::parse(directives) {
        Ok(scenario) => (scenario, None),
        Err(error) => (
            Scenario {
                directives: directives.to_owned(),
                ..Scenario::default()
            },
            Some(error),
        ),
    };
    let json: Result<Value, String> = if body.is_empty() {
        Ok(Value::Null)
    } else {
        serde_json::from_slice(&body).map_err(|_| String::from_utf8_lossy(&body).into_owned())
    };

    let request = Request {
        route: &route,
        scenario: &scenario,
        headers: &headers,
        uri: &uri,
        body: &json,
        seq,
    };
    let planned = match scenario_error {
        Some(error) => Err(ApiError::invalid(format!(
            "mock-upstream: bad scenario directives: {error}"
        ))),
        None => plan(&shared, &request),
    };

    if shared.record {
        shared.record(RecordedRequest {
            method: method.to_string(),
            path: uri
                .path_and_query()
                .map_or(path, |pq| pq.as_str())
                .to_owned(),
            headers: headers
                .iter()
                .map(|(name, value)| {
                    let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                    (name.as_str().to_owned(), value)
                })
                .collect(),
            body: match &json {
                Ok(value) => value.clone(),
                Err(raw) => Value::String(raw.clone()),
            },
            scenario: scenario.clone(),
            status: planned.as_ref().map_or_else(|e| e.status, |_| 200),
        });
    }

    // A streamed reply is tracked from here, so a client that gives up during
    // the latency counts as a cancelled stream too.
    let guard = matches!(planned, Ok(Reply::Stream { .. })).then(|| StreamGuard::start(&shared));
    let delay = shared.latency + Duration::from_millis(scenario.latency_ms);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if scenario.stall_head {
        std::future::pending::<()>().await;
    }
    render(route.protocol(), planned, &scenario, guard, in_flight, seq)
}

struct Request<'a> {
    route: &'a Route<'a>,
    scenario: &'a Scenario,
    headers: &'a HeaderMap,
    uri: &'a Uri,
    body: &'a Result<Value, String>,
    seq: u64,
}

/// Decides the answer: route, credential, scenario status, then the reply.
fn plan(shared: &Shared, request: &Request<'_>) -> Result<Reply, ApiError> {
    let route = request.route;
    let protocol = route.protocol();
    if let Route::Unknown(_) = route {
        return Err(ApiError::new(
            404,
            "mock-upstream: no such endpoint (see the relaybox_mock_upstream docs for routes)",
        ));
    }
    let scenario = request.scenario;
    match (
        credential(protocol, request.headers, request.uri),
        &scenario.require_key,
    ) {
        (None, _) => return Err(ApiError::missing_key(protocol)),
        (Some(key), Some(required)) if key != *required => {
            return Err(ApiError::wrong_key(protocol));
        }
        _ => {}
    }
    if let Some(status) = scenario.status
        && shared.should_fail(scenario)
    {
        return Err(ApiError::from_scenario(status, scenario));
    }
    let body = request
        .body
        .as_ref()
        .map_err(|_| ApiError::invalid("mock-upstream: the request body is not valid JSON"))?;
    let seq = request.seq;
    match route {
        Route::Messages => anthropic::messages(body, scenario, seq),
        Route::CountTokens => anthropic::count_tokens(body, scenario),
        Route::ChatCompletions => openai::chat_completions(body, scenario, seq),
        Route::Responses => responses::responses(body, scenario, seq),
        Route::ResponsesInputTokens => Ok(responses::input_tokens(body, scenario)),
        Route::Models(Protocol::Anthropic) => Ok(anthropic::models()),
        Route::Models(Protocol::OpenAi) => Ok(openai::models()),
        Route::Models(Protocol::Gemini) => Ok(gemini::models()),
        Route::Gemini { model, action } => match action {
            gemini::Action::CountTokens => gemini::count_tokens(body, scenario),
            gemini::Action::Generate => {
                gemini::generate(model, gemini::Delivery::Whole, body, scenario, seq)
            }
            gemini::Action::Stream => {
                let delivery = if query_param(request.uri, "alt") == Some("sse".to_owned()) {
                    gemini::Delivery::Sse
                } else {
                    gemini::Delivery::JsonArray
                };
                gemini::generate(model, delivery, body, scenario, seq)
            }
        },
        Route::Unknown(_) => Err(ApiError::new(404, "mock-upstream: no such endpoint")),
    }
}

/// The upstream credential as each protocol presents it.
fn credential(protocol: Protocol, headers: &HeaderMap, uri: &Uri) -> Option<String> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let bearer = || {
        headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    match protocol {
        Protocol::Anthropic => header("x-api-key").or_else(bearer),
        Protocol::OpenAi => bearer(),
        Protocol::Gemini => header("x-goog-api-key")
            .or_else(|| query_key(uri))
            .or_else(bearer),
    }
}

fn query_key(uri: &Uri) -> Option<String> {
    query_param(uri, "key").filter(|k| !k.is_empty())
}

fn query_param(uri: &Uri, name: &str) -> Option<String> {
    uri.query()?.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key == name).then(|| scenario::percent_decode(value))
    })
}

/// Frames the planned reply as an HTTP response.
fn render(
    protocol: Protocol,
    planned: Result<Reply, ApiError>,
    scenario: &Scenario,
    guard: Option<StreamGuard>,
    in_flight: InFlight,
    seq: u64,
) -> Response {
    let request_id = format!("req_mock{seq:020}");
    let json_type = match protocol {
        Protocol::Gemini => gemini::JSON_CONTENT_TYPE,
        Protocol::Anthropic | Protocol::OpenAi => "application/json",
    };
    let (status, content_type, body, retry_after) = match planned {
        Err(error) => {
            let body = match protocol {
                Protocol::Anthropic => anthropic::error_body(&error, &request_id),
                Protocol::OpenAi => openai::error_body(&error),
                Protocol::Gemini => gemini::error_body(&error),
            };
            let body = Bytes::from(body.to_string());
            let body = match scenario.stall_after {
                Some(stall_after) => Playback {
                    events: vec![body],
                    delay: Duration::ZERO,
                    cut_after: None,
                    stall_after: Some(stall_after),
                    guard: None,
                    _in_flight: in_flight,
                }
                .into_body(),
                None => Body::from(body),
            };
            (error.status, json_type, body, error.retry_after)
        }
        Ok(Reply::Json(value)) => {
            let bytes = Bytes::from(value.to_string());
            let body = match (scenario.cut_after, scenario.stall_after) {
                // A cut or stalled non-streamed reply: half the document, then the abort or
                // nothing more.
                (None, None) => Body::from(bytes),
                (cut_after, stall_after) => {
                    let half = bytes.len() / 2;
                    Playback {
                        events: vec![bytes.slice(..half), bytes.slice(half..)],
                        delay: Duration::ZERO,
                        cut_after: cut_after.map(|_| 1),
                        stall_after: stall_after.map(|n| n.min(1)),
                        guard: None,
                        _in_flight: in_flight,
                    }
                    .into_body()
                }
            };
            (200, json_type, body, None)
        }
        Ok(Reply::Stream {
            content_type,
            events,
        }) => {
            let body = Playback {
                events,
                delay: Duration::from_millis(scenario.chunk_delay_ms),
                cut_after: scenario.cut_after,
                stall_after: scenario.stall_after,
                guard,
                _in_flight: in_flight,
            }
            .into_body();
            (200, content_type, body, None)
        }
    };

    let mut response = Response::new(body);
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    if content_type.starts_with("text/event-stream") {
        headers.insert("cache-control", HeaderValue::from_static("no-cache"));
    }
    if let Some(seconds) = retry_after {
        headers.insert(RETRY_AFTER, HeaderValue::from(seconds));
    }
    let id_header = match protocol {
        Protocol::Anthropic => Some(HeaderName::from_static("request-id")),
        Protocol::OpenAi => Some(HeaderName::from_static("x-request-id")),
        Protocol::Gemini => None,
    };
    if let (Some(name), Ok(value)) = (id_header, HeaderValue::from_str(&request_id)) {
        headers.insert(name, value);
    }
    response
}
