//! The request path, top to bottom. Each stage is a plain function call in this order:
//!
//! 1. `auth::authenticate`  — the presented key → an active, unexpired `ClientKey`
//!    (no key or an unknown key: refused, no log row). From here on a [`Recorder`] exists and
//!    every outcome, including a client disconnect, writes exactly one log row.
//! 2. `parse`               — body size limit, JSON, the protocol's facts (model, stream, session)
//! 3. `auth::authorize`     — the key's allowlists: endpoint, model globs, user agent
//!    `limits::admit_key`   — the key's limits, in memory; a permit holds its concurrency slot
//! 4. `routing::plan`       — ordered candidate channels (status, allowlist, conversions, health,
//!    quota); a sticky session puts its channel first
//! 5. `attempt`             — per candidate: the channel's rate limit (maybe queued), model
//!    mapping, URL, credentials; send; on failure the failover rules decide: retry (wait) /
//!    next channel / suspend / give the error back
//! 6. `respond`             — non-stream: read the body, read usage; stream: [`RelayStream`]
//!    passes events through while reading usage and the first token
//! 7. `Recorder::finish`    — cost from pricing × channel multipliers; the row goes to the
//!    batching log writer (never awaited)

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};

use super::Endpoint;
use super::Relay;
use super::auth;
use super::client::{Certificates, UpstreamResponse};
use super::error::RelayError;
use super::failover::{self, ChainState, Decision, Failure};
use super::record::{Outcome, Recorder};
use super::routing::{self, Candidate};
use super::stream::RelayStream;
use super::upstream;
use crate::config::Snapshot;
use crate::domain::ClientKey;
use crate::domain::key::Expiry;
use crate::providers::{self, BodyError, ErrorKind, Protocol, RequestFacts};
use http_body_util::BodyExt as _;

/// How much of an upstream error body is read (for the log and failover matching).
const ERROR_BODY_LIMIT: usize = 64 * 1024;
const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(120);

/// A client request as the handlers hand it over.
#[derive(Debug)]
pub struct Incoming {
    pub endpoint: Endpoint,
    pub headers: HeaderMap,
    pub query: Option<String>,
    /// Gemini: the model from the path.
    pub path_model: Option<String>,
    pub body: Bytes,
}

pub async fn relay(relay: Arc<Relay>, incoming: Incoming) -> Response {
    let client_protocol = incoming.endpoint.client_protocol();
    let live = relay.config.snapshot();
    let now = crate::domain::now();

    // 1. authenticate
    let presented = auth::presented_key(
        &incoming.headers,
        incoming.query.as_deref(),
        incoming.endpoint,
    );
    let key = match auth::authenticate(&live, presented, now) {
        Ok(key) => key,
        Err(error) => return error.into_response_for(client_protocol),
    };
    let mut recorder = Recorder::start(
        Arc::clone(&relay),
        Arc::clone(&live),
        incoming.endpoint.log_name(),
        &key.id,
    );

    // 2. parse
    let facts = match parse(&live, &incoming) {
        Ok(parsed) => parsed,
        Err(error) => return reject(recorder, error, client_protocol),
    };
    let session_id = session_id(&incoming.headers, &facts);
    recorder.set_request(&facts.model, facts.stream, session_id.as_deref());

    // 3. authorize
    let user_agent = incoming
        .headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if let Err(error) = auth::authorize(&key, incoming.endpoint, &facts.model, user_agent) {
        return reject(recorder, error, client_protocol);
    }
    stamp_first_use(&relay, &key);

    // 3b. admit: the key's limits, in memory; the permit holds a concurrency slot until the row
    //     is written
    match relay.limits.admit_key(&key) {
        Ok(permit) => recorder.attach_key(Arc::clone(&key), permit),
        Err(refusal) => {
            relay.metrics.limit_refusal(refusal.limit);
            let mut error = RelayError::new(ErrorKind::RateLimited, refusal.limit, refusal.message);
            if let Some(seconds) = refusal.retry_after {
                error = error.with_retry_after(seconds);
            }
            return reject(recorder, error, client_protocol);
        }
    }

    // 4. route
    let Some(pool) = incoming.endpoint.pool() else {
        return reject(
            recorder,
            RelayError::new(ErrorKind::NotFound, "not_found", "unknown endpoint"),
            client_protocol,
        );
    };
    let plan = routing::plan(&live, &relay.health, &relay.limits, pool, &key, now);
    if plan.candidates.is_empty() {
        let detail = if plan.skipped.is_empty() {
            format!(
                "no channel is configured for the {pool} pool; add one to config.json or through the admin API"
            )
        } else {
            let reasons: Vec<String> = plan
                .skipped
                .iter()
                .map(|(name, why)| format!("{name}: {why}"))
                .collect();
            format!(
                "no channel of the {pool} pool can serve this request ({})",
                reasons.join("; ")
            )
        };
        let error = RelayError::new(ErrorKind::Overloaded, "no_channel_available", detail);
        return fail(recorder, error, client_protocol);
    }

    // OpenAI Chat streams carry usage only when asked: ask, and hide it if the client did not.
    let hide_usage_chunk =
        client_protocol == Protocol::OpenAiChat && facts.stream && !facts.wants_usage_chunk;

    // Sticky sessions: a conversation goes back to the channel that served it, if it can.
    let mut candidates = plan.candidates;
    let ttl = live.settings.sticky_session_ttl_seconds;
    let sticky = session_id
        .filter(|_| ttl > 0)
        .map(|session| ([key.id.as_str(), "/", &session].concat(), ttl));
    if let Some((session, _)) = &sticky
        && let Some(bound) = relay.limits.sticky_channel(session)
        && let Some(position) = candidates
            .iter()
            .position(|c| c.channel.channel.id == bound)
    {
        let bound = candidates.remove(position);
        candidates.insert(0, bound);
    }

    // 5. attempt, 6. respond
    let request = Prepared {
        facts,
        hide_usage_chunk,
        sticky,
    };
    attempt(relay, live, incoming, recorder, candidates, request).await
}

/// Stage 2: size limit, JSON, protocol facts.
fn parse(live: &Snapshot, incoming: &Incoming) -> Result<RequestFacts, RelayError> {
    let limit = live.settings.max_body_bytes;
    if incoming.body.len() as u64 > limit {
        return Err(RelayError::new(
            ErrorKind::RequestTooLarge,
            "request_too_large",
            format!(
                "the request body is {} bytes; this relay accepts at most {limit} bytes",
                incoming.body.len()
            ),
        ));
    }
    let mut facts = providers::request_facts(incoming.endpoint.client_protocol(), &incoming.body)
        .map_err(|e| {
        let message = match e {
            BodyError::NotAnObject => "the request body must be a JSON object".to_string(),
            BodyError::NotJson(e) => format!("the request body is not valid JSON: {e}"),
        };
        RelayError::new(ErrorKind::InvalidRequest, "invalid_json", message)
    })?;
    if let Some(model) = &incoming.path_model {
        facts.model.clone_from(model);
    }
    if incoming.endpoint == Endpoint::GeminiStream {
        facts.stream = true;
    }
    if facts.model.trim().is_empty() {
        return Err(RelayError::new(
            ErrorKind::InvalidRequest,
            "model_required",
            "the request has no \"model\"; name the model to use",
        ));
    }
    Ok(facts)
}

#[derive(Debug, serde::Serialize)]
struct AttemptNote {
    channel: String,
    status: u16,
    action: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    wait_ms: Option<u64>,
    #[serde(skip_serializing_if = "String::is_empty")]
    error: String,
}

/// What the last failed attempt said, for the client when every channel failed.
struct LastFailure {
    failure: Failure,
    channel: String,
    content_type: Option<HeaderValue>,
}

async fn attempt(
    relay: Arc<Relay>,
    live: Arc<Snapshot>,
    incoming: Incoming,
    mut recorder: Recorder,
    candidates: Vec<Candidate>,
    request: Prepared,
) -> Response {
    let Prepared {
        facts,
        hide_usage_chunk,
        sticky,
    } = request;
    let client_protocol = incoming.endpoint.client_protocol();
    let settings = &live.settings;
    let mut notes: Vec<AttemptNote> = Vec::new();
    let mut last: Option<LastFailure> = None;
    let query = upstream_query(&incoming);
    let suspend_default = Duration::from_secs(settings.suspend_seconds);
    let breaker_cooldown = Duration::from_secs(settings.circuit_breaker_cooldown_seconds);

    let mut rate_limited: Option<String> = None;
    // The whole body, parsed only if a channel needs it changed.
    let mut parsed: Option<Value> = None;
    for candidate in &candidates {
        let channel = &candidate.channel;
        let name = channel.channel.name.as_str();
        if let Err(reason) = relay
            .limits
            .acquire_channel_slot(&channel.channel, settings.max_queue_length)
            .await
        {
            relay.metrics.limit_refusal("channel_rate_limit");
            notes.push(AttemptNote {
                channel: name.to_owned(),
                status: 429,
                action: "skip",
                wait_ms: None,
                error: reason.clone(),
            });
            recorder.set_failover_info(serde_json::to_string(&notes).unwrap_or_default());
            rate_limited = Some(format!("{name}: {reason}"));
            continue;
        }
        let upstream_model = channel
            .mapper
            .map(&facts.model)
            .map_or(Cow::Borrowed(facts.model.as_str()), Cow::Owned);
        let payload = match upstream_body(
            &incoming,
            &mut parsed,
            &facts.model,
            &upstream_model,
            hide_usage_chunk,
        ) {
            Ok(bytes) => bytes,
            Err(error) => return fail(recorder, error, client_protocol),
        };
        let url = upstream::upstream_url(
            &channel.channel.base_url,
            &incoming.endpoint.upstream_path(&upstream_model),
            query.as_deref(),
        );
        let header_timeout = channel
            .channel
            .response_header_timeout
            .map_or(DEFAULT_HEADER_TIMEOUT, Duration::from_secs);
        let certificates = if channel.channel.insecure_skip_verify {
            Certificates::AcceptAny
        } else {
            Certificates::Verify
        };
        let mut chain = ChainState::default();
        let mut key_index = relay
            .health
            .first_key(channel, live.load_balance[channel.channel.pool as usize]);
        loop {
            let Some(headers) =
                upstream::upstream_headers(&incoming.headers, candidate.kind, channel, key_index)
            else {
                notes.push(AttemptNote {
                    channel: name.to_owned(),
                    status: 0,
                    action: "skip",
                    wait_ms: None,
                    error: "no upstream credential configured".into(),
                });
                break;
            };
            let sent = tokio::time::timeout(
                header_timeout,
                relay
                    .upstream
                    .send(certificates, &url, headers, payload.clone()),
            )
            .await;
            let (failure, content_type) = match sent {
                Ok(Ok(response)) if response.status().is_success() => {
                    relay.health.record_success(&channel.channel.id);
                    if let Some((session, ttl)) = &sticky {
                        relay.limits.stick(session, &channel.channel.id, *ttl);
                    }
                    recorder.set_channel(channel);
                    if !notes.is_empty() {
                        notes.push(AttemptNote {
                            channel: name.to_owned(),
                            status: response.status().as_u16(),
                            action: "success",
                            wait_ms: None,
                            error: String::new(),
                        });
                        recorder
                            .set_failover_info(serde_json::to_string(&notes).unwrap_or_default());
                    }
                    return respond(
                        response,
                        recorder,
                        Protocols {
                            client: client_protocol,
                            upstream: candidate.kind.protocol(),
                        },
                        facts.stream,
                        hide_usage_chunk,
                    )
                    .await;
                }
                Ok(Ok(response)) => {
                    let status = response.status().as_u16();
                    let retry_after = response
                        .headers()
                        .get(header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    let content_type = response.headers().get(header::CONTENT_TYPE).cloned();
                    let body = read_limited(response, ERROR_BODY_LIMIT).await;
                    (
                        Failure {
                            status,
                            body,
                            retry_after,
                        },
                        content_type,
                    )
                }
                Ok(Err(err)) => {
                    let status = 502;
                    (
                        Failure {
                            status,
                            body: format!("no response from the upstream: {}", err.describe()),
                            retry_after: None,
                        },
                        None,
                    )
                }
                Err(_) => (
                    Failure {
                        status: 504,
                        body: format!("no response headers within {} s", header_timeout.as_secs()),
                        retry_after: None,
                    },
                    None,
                ),
            };
            relay.metrics.upstream_error(name, failure.status);
            let decision =
                failover::decide(&settings.failover, &failure, &mut chain, suspend_default);
            let excerpt = providers::upstream_error_text(failure.body.as_bytes());
            let (action, wait_ms) = match decision {
                Decision::Retry(wait) => (
                    "retry",
                    Some(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX)),
                ),
                Decision::Failover => ("failover", None),
                Decision::Suspend(d) => (
                    "suspend",
                    Some(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
                ),
                Decision::GiveUp => ("return", None),
            };
            notes.push(AttemptNote {
                channel: name.to_owned(),
                status: failure.status,
                action,
                wait_ms,
                error: excerpt.clone(),
            });
            recorder.set_channel(channel);
            recorder.set_upstream_error(excerpt);
            recorder.set_failover_info(serde_json::to_string(&notes).unwrap_or_default());
            last = Some(LastFailure {
                failure,
                channel: name.to_owned(),
                content_type,
            });
            match decision {
                Decision::Retry(wait) => {
                    relay.metrics.retry();
                    tokio::time::sleep(wait).await;
                    key_index += 1;
                }
                Decision::Failover => {
                    relay.metrics.failover();
                    relay.health.record_failure(
                        &channel.channel.id,
                        settings.circuit_breaker_threshold,
                        breaker_cooldown,
                    );
                    break;
                }
                Decision::Suspend(duration) => {
                    relay.metrics.failover();
                    tracing::warn!(channel = %name, seconds = duration.as_secs(), "channel suspended by a failover rule");
                    relay.health.suspend(&channel.channel.id, duration);
                    break;
                }
                Decision::GiveUp => {
                    let Some(last) = last else { break };
                    return give_back(recorder, last, client_protocol);
                }
            }
        }
    }
    match (last, rate_limited) {
        (Some(last), _) => exhausted(recorder, &last, candidates.len(), client_protocol),
        (None, Some(reason)) => {
            let message = format!(
                "every channel that could serve this request is at its rate limit ({reason}); retry in a minute"
            );
            let error = RelayError::new(ErrorKind::RateLimited, "channel_rate_limited", message)
                .with_retry_after(60);
            fail(recorder, error, client_protocol)
        }
        (None, None) => {
            let error = RelayError::new(
                ErrorKind::Overloaded,
                "no_channel_available",
                "no channel could be tried (none has an upstream credential)",
            );
            fail(recorder, error, client_protocol)
        }
    }
}

/// What stage 2–4 prepared for the attempts.
struct Prepared {
    facts: RequestFacts,
    hide_usage_chunk: bool,
    /// (`key id/session id`, TTL seconds) when sticky sessions apply
    sticky: Option<(String, u64)>,
}

/// The conversation a request belongs to: the protocol's own session field (Anthropic
/// `metadata.user_id`, OpenAI `prompt_cache_key`/`user`), else a `session_id` / `x-session-id`
/// header (Codex CLI sends `session_id`).
fn session_id(headers: &HeaderMap, facts: &RequestFacts) -> Option<String> {
    facts
        .session_id
        .clone()
        .filter(|s| !s.is_empty())
        .or_else(|| {
            ["session_id", "x-session-id"]
                .iter()
                .find_map(|name| headers.get(*name).and_then(|v| v.to_str().ok()))
                .map(str::trim)
                .filter(|s| !s.is_empty() && s.len() <= 256)
                .map(str::to_string)
        })
}

/// The body for one channel: the client's bytes when nothing changed, else re-serialised.
/// The body for one channel: the client's bytes as they are unless the model is mapped to
/// another name or the upstream must be asked for usage (`stream_options.include_usage`).
fn upstream_body(
    incoming: &Incoming,
    parsed: &mut Option<Value>,
    model: &str,
    upstream_model: &str,
    ask_for_usage: bool,
) -> Result<Bytes, RelayError> {
    let remap = incoming.endpoint.client_protocol() != Protocol::Gemini && model != upstream_model;
    if !remap && !ask_for_usage {
        return Ok(incoming.body.clone());
    }
    let encode_error = |e: serde_json::Error| {
        RelayError::new(
            ErrorKind::Internal,
            "internal_error",
            format!("could not encode the request: {e}"),
        )
    };
    if parsed.is_none() {
        *parsed = Some(serde_json::from_slice(&incoming.body).map_err(encode_error)?);
    }
    let mut body = parsed.clone().unwrap_or(Value::Null);
    if ask_for_usage {
        providers::ensure_include_usage(&mut body);
    }
    if remap && let Some(object) = body.as_object_mut() {
        object.insert("model".into(), Value::String(upstream_model.to_string()));
    }
    serde_json::to_vec(&body)
        .map(Bytes::from)
        .map_err(encode_error)
}

/// The client's query string minus its credential (`key=` for Gemini).
fn upstream_query(incoming: &Incoming) -> Option<String> {
    let query = incoming.query.as_deref()?;
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| !pair.is_empty() && !pair.starts_with("key="))
        .collect();
    (!kept.is_empty()).then(|| kept.join("&"))
}

async fn read_limited(response: UpstreamResponse, limit: usize) -> String {
    use futures_util::StreamExt as _;
    let mut stream = response.into_body().into_data_stream();
    let mut out = Vec::new();
    while let Some(Ok(chunk)) = stream.next().await {
        out.extend_from_slice(&chunk[..chunk.len().min(limit - out.len())]);
        if out.len() >= limit {
            break;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Which protocol each side of a forwarded request speaks: the client's shapes what relaybox
/// says itself (errors), the upstream's is what its answer is read as (usage, stream events).
/// Equal today; protocol conversion goes between them.
#[derive(Debug, Clone, Copy)]
struct Protocols {
    client: Protocol,
    upstream: Protocol,
}

/// Stage 6: hand the upstream's successful answer to the client.
async fn respond(
    response: UpstreamResponse,
    mut recorder: Recorder,
    protocols: Protocols,
    stream: bool,
    hide_usage_chunk: bool,
) -> Response {
    // The upstream's head is passed on as it is (moved, not rebuilt), minus hop-by-hop headers.
    let (mut head, body) = response.into_parts();
    upstream::remove_hop_by_hop(&mut head.headers);
    let status = head.status;
    let is_event_stream = head
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    if stream && is_event_stream {
        let body = RelayStream::new(
            Box::pin(body.into_data_stream()),
            protocols.upstream,
            hide_usage_chunk,
            recorder,
            status.as_u16(),
        );
        return Response::from_parts(head, Body::from_stream(body));
    }
    match body
        .collect()
        .await
        .map(http_body_util::Collected::to_bytes)
    {
        Ok(bytes) => {
            let summary = providers::summarize_body(protocols.upstream, &bytes);
            recorder.set_usage(
                summary.usage.unwrap_or_default(),
                summary.response_model.as_deref(),
            );
            recorder.mark_first_token();
            recorder.finish(Outcome::Success, status.as_u16(), "");
            Response::from_parts(head, Body::from(bytes))
        }
        Err(_) => {
            recorder.set_upstream_error(
                "reading the response failed: the response body broke off".into(),
            );
            let error = RelayError::new(
                ErrorKind::Upstream,
                "upstream_error",
                "the upstream response broke off; retry the request",
            );
            fail(recorder, error, protocols.client)
        }
    }
}

/// The client's own mistake according to the upstream (400, 404, …): its answer, as it is.
fn give_back(recorder: Recorder, last: LastFailure, protocol: Protocol) -> Response {
    let status = last.failure.status;
    if matches!(status, 401 | 403) || !(400..600).contains(&status) {
        return exhausted(recorder, &last, 1, protocol);
    }
    recorder.finish(Outcome::Error, status, "the upstream refused the request");
    let mut response = Response::new(Body::from(last.failure.body));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    let content_type = last
        .content_type
        .unwrap_or(HeaderValue::from_static("application/json"));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, content_type);
    if let Some(wait) = last.failure.retry_after
        && let Ok(value) = HeaderValue::from_str(&wait.as_secs().to_string())
    {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// Every candidate failed: say so in the client's protocol, with the right status.
fn exhausted(recorder: Recorder, last: &LastFailure, tried: usize, protocol: Protocol) -> Response {
    let failure = &last.failure;
    let (kind, code) = match failure.status {
        429 => (ErrorKind::RateLimited, "upstream_rate_limited"),
        504 => (ErrorKind::Timeout, "upstream_timeout"),
        503 | 529 => (ErrorKind::Overloaded, "upstream_overloaded"),
        _ => (ErrorKind::Upstream, "upstream_error"),
    };
    let what = match failure.status {
        401 | 403 => "rejected the relay's upstream credential (the relay's admin must fix the channel's key)".to_string(),
        status => format!("answered HTTP {status}"),
    };
    let plural = if tried == 1 { "channel" } else { "channels" };
    let message = format!(
        "{tried} {plural} tried; the last one ('{}') {what}. Retry later.",
        last.channel
    );
    let mut error = RelayError::new(kind, code, message);
    if let Some(wait) = failure.retry_after {
        error = error.with_retry_after(wait.as_secs().max(1));
    } else if kind == ErrorKind::RateLimited {
        error = error.with_retry_after(5);
    }
    fail(recorder, error, protocol)
}

/// A refusal before any upstream was contacted.
fn reject(recorder: Recorder, error: RelayError, protocol: Protocol) -> Response {
    recorder.finish(Outcome::Rejected, error.status().as_u16(), &error.message);
    error.into_response_for(protocol)
}

/// A failure after routing began.
fn fail(recorder: Recorder, error: RelayError, protocol: Protocol) -> Response {
    recorder.finish(Outcome::Error, error.status().as_u16(), &error.message);
    error.into_response_for(protocol)
}

/// "N days after first use" keys: remember the first use (once; a rare config write, off the
/// request path, through the config writer like every other change).
fn stamp_first_use(relay: &Arc<Relay>, key: &Arc<ClientKey>) {
    if !matches!(key.expiry, Some(Expiry::AfterFirstUse { .. })) || key.first_used_at.is_some() {
        return;
    }
    let config = Arc::clone(&relay.config);
    let id = key.id.clone();
    relay.tasks.spawn("stamp-first-use", async move {
        let written = crate::store::blocking(move || {
            config.write(|committed| {
                // Planned against the committed key: a concurrent edit is never undone, and a
                // second request racing this one finds the stamp already there.
                let Some(key) = committed.keys.get(&id) else {
                    return Ok(Vec::new());
                };
                if key.first_used_at.is_some() {
                    return Ok(Vec::new());
                }
                let mut key = key.clone();
                key.first_used_at = Some(crate::domain::now());
                let version = key.version;
                Ok::<_, crate::config::WriteError>(vec![crate::store::ConfigOp::PutKey(
                    key,
                    crate::store::Expect::Version(version),
                )])
            })
        })
        .await;
        if let Err(err) = written {
            tracing::warn!(error = %err, "could not record a key's first use");
        }
        Ok(())
    });
}

/// `GET /v1/models`: the models this key may use, from aliases, pricing and channel mappings.
pub fn models(relay: &Arc<Relay>, headers: &HeaderMap, query: Option<&str>) -> Response {
    let live = relay.config.snapshot();
    let presented = auth::presented_key(headers, query, Endpoint::Models);
    let key = match auth::authenticate(&live, presented, crate::domain::now()) {
        Ok(key) => key,
        Err(error) => return error.into_response_for(Protocol::OpenAiChat),
    };
    let mut ids = std::collections::BTreeSet::new();
    let aliases = &live.aliases;
    for list in [
        &aliases.messages_models,
        &aliases.responses_models,
        &aliases.gemini_models,
        &aliases.chat_models,
    ] {
        ids.extend(list.iter().map(|a| a.value.clone()));
    }
    ids.extend(
        live.state
            .pricing
            .iter()
            .filter(|(_, p)| p.export_to_models != Some(false))
            .map(|(m, _)| m.clone()),
    );
    for channels in live.pools.values() {
        for channel in channels {
            ids.extend(channel.channel.model_mapping.keys().cloned());
        }
    }
    let data: Vec<Value> = ids
        .into_iter()
        .filter(|id| {
            key.allow.models.is_empty() || key.allow.models.iter().any(|g| auth::glob_match(g, id))
        })
        .map(|id| json!({ "id": id, "object": "model", "created": 0, "owned_by": "relaybox" }))
        .collect();
    axum::Json(json!({ "object": "list", "data": data })).into_response()
}
