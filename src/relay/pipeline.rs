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
use axum::response::Response;

use super::Endpoint;
use super::Relay;
use super::auth;
use super::error::{RelayError, fail, reject};
use super::record::Recorder;
use super::request::{ClientRequest, Prepared};
use super::routing;
use crate::config::Snapshot;
use crate::domain::ClientKey;
use crate::domain::key::Expiry;
use crate::providers::{self, BodyError, ErrorKind, Protocol, RequestFacts};

/// Stage 1 from the request head alone: the snapshot the request runs on, its key, and the
/// recorder that writes its row from here on. No key or an unknown one: the refusal, no row.
pub(super) fn authenticate(
    relay: &Arc<Relay>,
    endpoint: Endpoint,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<(Arc<Snapshot>, Arc<ClientKey>, Recorder), RelayError> {
    let live = relay.config.snapshot();
    // Cluster mode with `maxConfigStalenessSeconds`: fail closed rather than serve a copy that
    // may still hold a key revoked elsewhere.
    let max_staleness = live.state.settings.max_config_staleness_seconds;
    if let Some(age) = relay.config.freshness().too_stale(max_staleness) {
        let mut error = RelayError::new(
            ErrorKind::Overloaded,
            "config_stale",
            format!(
                "this relay instance could not confirm its configuration with PostgreSQL for {} s (more than maxConfigStalenessSeconds = {max_staleness}); it refuses requests until PostgreSQL answers",
                age.as_secs()
            ),
        );
        error.retry_after = Some(5);
        return Err(error);
    }
    let presented = auth::presented_key(headers, query, endpoint);
    let key = auth::authenticate(&live, presented, crate::domain::now())?;
    let recorder = Recorder::start(
        Arc::clone(relay),
        Arc::clone(&live),
        endpoint.log_name(),
        &key.id,
    );
    Ok((live, key, recorder))
}

/// Stages 2–7, for a request whose key [`authenticate`] accepted and whose body was read.
pub async fn relay(
    relay: Arc<Relay>,
    live: Arc<Snapshot>,
    key: Arc<ClientKey>,
    mut recorder: Recorder,
    incoming: ClientRequest,
) -> Response {
    let client_protocol = incoming.endpoint.client_protocol();
    let now = crate::domain::now();

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
    let plan = routing::plan(
        &live,
        &relay.health,
        &relay.limits,
        pool,
        &facts.model,
        &key,
        now,
    );
    if plan.candidates.is_empty() {
        let error = if plan.skipped.is_empty() {
            RelayError::new(
                ErrorKind::Overloaded,
                "no_channel_available",
                format!(
                    "no channel is configured for the {pool} pool; add one to config.json or through the admin API"
                ),
            )
        } else {
            // The client learns why, not which channels exist; the log row names them.
            let why: std::collections::BTreeSet<&str> =
                plan.skipped.iter().map(|(_, why)| why.as_str()).collect();
            let named: Vec<String> = plan
                .skipped
                .iter()
                .map(|(name, why)| format!("{name}: {why}"))
                .collect();
            let count = plan.skipped.len();
            let plural = if count == 1 { "channel" } else { "channels" };
            RelayError::new(
                ErrorKind::Overloaded,
                "no_channel_available",
                format!(
                    "no channel of the {pool} pool can serve this request ({count} {plural}: {})",
                    why.into_iter().collect::<Vec<_>>().join("; ")
                ),
            )
            .with_log_detail(format!(
                "no channel of the {pool} pool can serve this request ({})",
                named.join("; ")
            ))
        };
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use axum::http::HeaderValue;

    use super::*;

    fn snapshot(max_body_bytes: u64) -> Snapshot {
        let mut live = Snapshot::default();
        live.settings.max_body_bytes = max_body_bytes;
        live
    }

    fn request(endpoint: Endpoint, path_model: Option<&str>, body: &str) -> ClientRequest {
        ClientRequest {
            endpoint,
            headers: HeaderMap::new(),
            query: None,
            path_model: path_model.map(str::to_string),
            body: bytes::Bytes::from(body.to_string()),
        }
    }

    fn parse_error(live: &Snapshot, incoming: &ClientRequest) -> RelayError {
        match parse(live, incoming) {
            Ok(facts) => panic!("parsed: {facts:?}"),
            Err(error) => error,
        }
    }

    #[test]
    fn a_body_over_the_limit_is_refused_before_it_is_read() {
        let body = r#"{"model":"claude-sonnet-4-5","stream":true}"#;
        let limit = body.len() as u64;
        // Exactly at the limit is fine.
        let facts = parse(&snapshot(limit), &request(Endpoint::Messages, None, body)).unwrap();
        assert_eq!(facts.model, "claude-sonnet-4-5");
        assert!(facts.stream);

        let error = parse_error(
            &snapshot(limit - 1),
            &request(Endpoint::Messages, None, body),
        );
        assert_eq!(error.kind, ErrorKind::RequestTooLarge);
        assert_eq!(error.status().as_u16(), 413);
        assert_eq!(error.code, "request_too_large");
        assert_eq!(
            error.message,
            format!(
                "the request body is {} bytes; this relay accepts at most {} bytes",
                limit,
                limit - 1
            )
        );
        // Too large wins over not JSON.
        let error = parse_error(&snapshot(3), &request(Endpoint::Messages, None, "nope"));
        assert_eq!(error.code, "request_too_large");
    }

    #[test]
    fn a_body_that_is_not_a_json_object_is_an_invalid_request() {
        let live = snapshot(1024);
        let error = parse_error(&live, &request(Endpoint::Messages, None, "{\"model\":"));
        assert_eq!(error.kind, ErrorKind::InvalidRequest);
        assert_eq!(error.code, "invalid_json");
        assert!(
            error
                .message
                .starts_with("the request body is not valid JSON: "),
            "{}",
            error.message
        );
        for body in ["[1, 2]", "\"text\"", "42", "null"] {
            let error = parse_error(&live, &request(Endpoint::ChatCompletions, None, body));
            assert_eq!(error.code, "invalid_json", "{body}");
            assert_eq!(
                error.message, "the request body must be a JSON object",
                "{body}"
            );
        }
        // Gemini bodies are checked the same way although their model is in the path.
        let error = parse_error(
            &live,
            &request(Endpoint::GeminiGenerate, Some("gemini-2.5-pro"), "[]"),
        );
        assert_eq!(error.message, "the request body must be a JSON object");
    }

    #[test]
    fn a_request_without_a_model_is_refused() {
        let live = snapshot(1024);
        for (endpoint, body) in [
            (Endpoint::Messages, r#"{"messages":[]}"#),
            (Endpoint::Messages, r#"{"model":"   "}"#),
            (Endpoint::ChatCompletions, r#"{"model":5}"#),
            (Endpoint::Responses, r#"{"model":null,"input":"hi"}"#),
        ] {
            let error = parse_error(&live, &request(endpoint, None, body));
            assert_eq!(error.kind, ErrorKind::InvalidRequest, "{body}");
            assert_eq!(error.code, "model_required", "{body}");
            assert_eq!(
                error.message,
                "the request has no \"model\"; name the model to use"
            );
        }
        // Gemini: the body's "model" does not count, only the path's.
        let error = parse_error(
            &live,
            &request(
                Endpoint::GeminiGenerate,
                None,
                r#"{"model":"gemini-2.5-pro"}"#,
            ),
        );
        assert_eq!(error.code, "model_required");
    }

    #[test]
    fn gemini_takes_the_model_from_the_path_and_its_stream_action() {
        let live = snapshot(1024);
        let body = r#"{"contents":[{"role":"user","parts":[{"text":"hi"}]}],"stream":false}"#;
        let generate = parse(
            &live,
            &request(Endpoint::GeminiGenerate, Some("gemini-2.5-pro"), body),
        )
        .unwrap();
        assert_eq!(generate.model, "gemini-2.5-pro");
        assert!(!generate.stream);
        let stream = parse(
            &live,
            &request(Endpoint::GeminiStream, Some("gemini-2.5-flash"), body),
        )
        .unwrap();
        assert_eq!(stream.model, "gemini-2.5-flash");
        assert!(stream.stream);
        assert_eq!(stream.session_id, None);
    }

    #[test]
    fn protocol_facts_are_read_from_the_body() {
        let live = snapshot(4096);
        let chat = parse(
            &live,
            &request(
                Endpoint::ChatCompletions,
                None,
                r#"{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},"user":"u-1"}"#,
            ),
        )
        .unwrap();
        assert_eq!(chat.model, "gpt-4o");
        assert!(chat.stream && chat.wants_usage_chunk);
        assert_eq!(chat.session_id.as_deref(), Some("u-1"));
        let messages = parse(
            &live,
            &request(
                Endpoint::Messages,
                None,
                r#"{"model":"claude-opus-4-1","metadata":{"user_id":"alice"}}"#,
            ),
        )
        .unwrap();
        assert!(!messages.stream);
        assert_eq!(messages.session_id.as_deref(), Some("alice"));
    }

    fn facts(session: Option<&str>) -> RequestFacts {
        RequestFacts {
            model: "m".into(),
            session_id: session.map(str::to_string),
            ..RequestFacts::default()
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn the_body_session_wins_over_the_headers() {
        let both = headers(&[("session_id", "from-header"), ("x-session-id", "other")]);
        assert_eq!(
            session_id(&both, &facts(Some("from-body"))).as_deref(),
            Some("from-body")
        );
        // An empty body session falls back to the headers.
        assert_eq!(
            session_id(&both, &facts(Some(""))).as_deref(),
            Some("from-header")
        );
        assert_eq!(session_id(&HeaderMap::new(), &facts(None)), None);
    }

    #[test]
    fn header_sessions_session_id_then_x_session_id() {
        assert_eq!(
            session_id(&headers(&[("session_id", "  codex-1  ")]), &facts(None)).as_deref(),
            Some("codex-1")
        );
        assert_eq!(
            session_id(&headers(&[("x-session-id", "s-2")]), &facts(None)).as_deref(),
            Some("s-2")
        );
        assert_eq!(
            session_id(
                &headers(&[("x-session-id", "second"), ("session_id", "first")]),
                &facts(None)
            )
            .as_deref(),
            Some("first")
        );
        // Blank and overlong header values are no session.
        assert_eq!(
            session_id(&headers(&[("x-session-id", "   ")]), &facts(None)),
            None
        );
        let longest = "s".repeat(256);
        assert_eq!(
            session_id(&headers(&[("session_id", &longest)]), &facts(None)).as_deref(),
            Some(longest.as_str())
        );
        let too_long = "s".repeat(257);
        assert_eq!(
            session_id(&headers(&[("session_id", &too_long)]), &facts(None)),
            None
        );
        // A value that is not visible ASCII is skipped for the next header.
        let mut opaque = HeaderMap::new();
        opaque.insert(
            "session_id",
            HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap(),
        );
        opaque.insert("x-session-id", HeaderValue::from_static("plain"));
        assert_eq!(session_id(&opaque, &facts(None)).as_deref(), Some("plain"));
    }
}
