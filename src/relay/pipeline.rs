//! The request path, top to bottom. Each stage is a plain function call in this order; the
//! same numbers head every file of the path:
//!
//! 1. `auth::authenticate`  — the presented key → an active, unexpired `ClientKey`
//!    (no key or an unknown key: refused, no log row). From here on a [`Recorder`] exists and
//!    every outcome, including a client disconnect, writes exactly one log row.
//! 2. `parse`               — body size limit, JSON, the protocol's facts (model, stream, session)
//! 3. `auth::authorize`     — the key's allowlists: endpoint, model globs, user agent;
//!    `limits::admit_key`   — the key's limits, in memory; a permit holds its concurrency slot
//! 4. `routing::plan`       — ordered candidate channels (status, allowlist, upstream kind,
//!    health, quota); a sticky session puts its channel first
//! 5. `attempt::attempt`    — per candidate: 5a rate limit, 5b the upstream request, 5c
//!    `send_once`, 5d the failover rules: retry / next channel / suspend / give the error back
//! 6. `respond::respond`    — non-stream: read the body, read usage; stream: `RelayStream`
//!    passes events through while reading usage and the first token
//! 7. `Recorder::finish`    — cost from pricing × channel multipliers; the row goes to the
//!    batching log writer (never awaited)

use std::sync::Arc;

use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};

use super::Endpoint;
use super::Relay;
use super::auth;
use super::error::RelayError;
use super::record::{Outcome, Recorder};
use super::routing;
use crate::config::Snapshot;
use crate::domain::ClientKey;
use crate::domain::key::Expiry;
use crate::providers::{self, BodyError, ErrorKind, Protocol, RequestFacts};

/// The client's request as the handlers hand it over (body read, head split off).
#[derive(Debug)]
pub struct ClientRequest {
    pub endpoint: Endpoint,
    pub headers: HeaderMap,
    pub query: Option<String>,
    /// Gemini: the model from the path.
    pub path_model: Option<String>,
    pub body: Bytes,
}

pub async fn relay(relay: Arc<Relay>, incoming: ClientRequest) -> Response {
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
    super::attempt::attempt(relay, live, incoming, recorder, candidates, request).await
}

/// Stage 2: size limit, JSON, protocol facts.
fn parse(live: &Snapshot, incoming: &ClientRequest) -> Result<RequestFacts, RelayError> {
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

/// What stage 2–4 prepared for the attempts.
pub(super) struct Prepared {
    pub(super) facts: RequestFacts,
    pub(super) hide_usage_chunk: bool,
    /// (`key id/session id`, TTL seconds) when sticky sessions apply
    pub(super) sticky: Option<(String, u64)>,
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

/// A refusal before any upstream was contacted.
fn reject(recorder: Recorder, error: RelayError, protocol: Protocol) -> Response {
    recorder.finish(Outcome::Rejected, error.status().as_u16(), &error.message);
    error.into_response_for(protocol)
}

/// A failure after routing began.
pub(super) fn fail(recorder: Recorder, error: RelayError, protocol: Protocol) -> Response {
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
