//! Stage 5 of the request path: try the planned channels in order.
//!
//! Per candidate: 5a the channel's rate limit (maybe queued) → 5b the upstream request (model
//! mapping, body, URL, credential) → 5c [`send_once`] → on failure 5d the failover rules decide:
//! retry with the next key (after a wait) / next channel / suspend the channel / give the
//! upstream's error back. Every attempt is noted for the log row's `failover_info`.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use http_body_util::BodyExt as _;
use serde_json::Value;

use super::Relay;
use super::client::{Certificates, SendError, UpstreamResponse};
use super::conversion;
use super::error::RelayError;
use super::error::fail;
use super::record::{Outcome, Recorder};
use super::request::{ClientRequest, Prepared};
use super::respond::{Protocols, Watch, respond};
use super::routing::Candidate;
use super::upstream;
use crate::config::Snapshot;
use crate::domain::failover::{ChainState, Decision, Failure};
use crate::providers::{self, ErrorKind, Protocol};

/// How much of an upstream error body is read (for the log and failover matching).
const ERROR_BODY_LIMIT: usize = 64 * 1024;
const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(120);
/// How long an upstream's error body may take (less when the channel's idle timeout is
/// shorter): a 529 whose body never comes counts as a 529 with an empty body after this.
const ERROR_BODY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, serde::Serialize)]
struct AttemptNote {
    channel: String,
    status: u16,
    action: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    wait_ms: Option<u64>,
    #[serde(skip_serializing_if = "String::is_empty")]
    error: String,
    /// `client→upstream` when the channel speaks another protocol than the client.
    #[serde(skip_serializing_if = "Option::is_none")]
    conversion: Option<String>,
}

/// Where and what 5c sends: the same for every retry on one channel.
struct Target<'a> {
    url: &'a str,
    certificates: Certificates,
    header_timeout: Duration,
    error_body_timeout: Duration,
    payload: &'a Bytes,
}

/// A failed attempt: what the failover rules decide on, and the answer's content type (to
/// give the upstream's error back as it was).
struct FailedAttempt {
    failure: Failure,
    content_type: Option<HeaderValue>,
}

/// 5c: one request to one upstream with one credential. `Ok` is a 2xx answer, passed on as
/// it comes; `Err` is what failed — an error answer (its body read up to 64 KiB), no answer
/// (502), or no response headers in time (504).
async fn send_once(
    relay: &Relay,
    target: &Target<'_>,
    headers: axum::http::HeaderMap,
    header_timeout: Duration,
) -> Result<UpstreamResponse, FailedAttempt> {
    let sent = tokio::time::timeout(
        header_timeout,
        relay.upstream.send(
            target.certificates,
            target.url,
            headers,
            target.payload.clone(),
        ),
    )
    .await;
    let failure = match sent {
        Ok(Ok(response)) if response.status().is_success() => return Ok(response),
        Ok(Ok(response)) => {
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let content_type = response.headers().get(header::CONTENT_TYPE).cloned();
            let body = read_limited(response, ERROR_BODY_LIMIT, target.error_body_timeout).await;
            return Err(FailedAttempt {
                failure: Failure {
                    status,
                    body,
                    retry_after,
                    no_connection: false,
                },
                content_type,
            });
        }
        Ok(Err(err)) => Failure {
            status: 502,
            body: format!("no response from the upstream: {}", err.describe()),
            retry_after: None,
            no_connection: matches!(err, SendError::Connect | SendError::BadUrl),
        },
        Err(_) => Failure {
            status: 504,
            body: format!("no response headers within {} s", header_timeout.as_secs()),
            retry_after: None,
            no_connection: false,
        },
    };
    Err(FailedAttempt {
        failure,
        content_type: None,
    })
}

/// What the last failed attempt said, for the client when every channel failed.
struct LastFailure {
    failure: Failure,
    channel: String,
    content_type: Option<HeaderValue>,
    /// The upstream spoke another protocol: its error is retold in the client's.
    converted: bool,
}

pub(super) async fn attempt(
    relay: Arc<Relay>,
    live: Arc<Snapshot>,
    incoming: ClientRequest,
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
    // Retries and failover start nothing new after this (`requestDeadlineSeconds`).
    let deadline = (settings.request_deadline_seconds > 0).then(|| {
        tokio::time::Instant::now() + Duration::from_secs(settings.request_deadline_seconds)
    });
    let remaining = || deadline.map(|d| d.saturating_duration_since(tokio::time::Instant::now()));
    let mut out_of_time = false;

    let mut rate_limited: Option<String> = None;
    // The whole body, parsed only if a channel needs it changed.
    let mut parsed: Option<Value> = None;
    // The body as the conversion IR, decoded only if a channel speaks another protocol.
    let mut decoded = conversion::Decoded::default();
    // Why the last channel that needed a conversion could not take this request.
    let mut refused: Option<RelayError> = None;
    for candidate in &candidates {
        if remaining().is_some_and(|left| left.is_zero()) {
            out_of_time = true;
            break;
        }
        let channel = &candidate.channel;
        let name = channel.channel.name.as_str();
        let idle_timeout = channel.stream_idle_timeout(settings);
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
                conversion: None,
            });
            recorder.set_failover_info(serde_json::to_string(&notes).unwrap_or_default());
            rate_limited = Some(format!("{name}: {reason}"));
            continue;
        }
        let upstream_protocol = candidate.kind.protocol();
        let converted = (upstream_protocol != client_protocol)
            .then(|| conversion::label(client_protocol, upstream_protocol));
        let asked_model = candidate.model.as_deref().unwrap_or(&facts.model);
        let upstream_model = channel
            .mapper
            .map(asked_model)
            .map_or(Cow::Borrowed(asked_model), Cow::Owned);
        let (payload, url) = if converted.is_some() {
            match conversion::upstream_request(
                &incoming,
                &mut decoded,
                upstream_protocol,
                &upstream_model,
                facts.stream,
            ) {
                Ok(Some(request)) => {
                    let url = upstream::upstream_url(
                        &channel.channel.base_url,
                        &request.path,
                        request.query,
                    );
                    (request.body, url)
                }
                // A count this upstream cannot make: estimated here, nothing sent.
                Ok(None) => {
                    recorder.set_channel(channel);
                    recorder.finish(Outcome::Success, 200, "");
                    return conversion::estimate_count(&incoming, &decoded);
                }
                Err(error) => {
                    notes.push(AttemptNote {
                        channel: name.to_owned(),
                        status: 400,
                        action: "skip",
                        wait_ms: None,
                        error: error.message.clone(),
                        conversion: converted,
                    });
                    recorder.set_failover_info(serde_json::to_string(&notes).unwrap_or_default());
                    refused = Some(error);
                    continue;
                }
            }
        } else {
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
            (payload, url)
        };
        let target = Target {
            url: &url,
            certificates: if channel.channel.insecure_skip_verify {
                Certificates::AcceptAny
            } else {
                Certificates::Verify
            },
            header_timeout: channel
                .channel
                .response_header_timeout
                .map_or(DEFAULT_HEADER_TIMEOUT, Duration::from_secs),
            error_body_timeout: idle_timeout
                .map_or(ERROR_BODY_TIMEOUT, |idle| idle.min(ERROR_BODY_TIMEOUT)),
            payload: &payload,
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
                    conversion: converted.clone(),
                });
                break;
            };
            let left = remaining();
            if left.is_some_and(|left| left.is_zero()) {
                out_of_time = true;
                break;
            }
            let header_timeout = left.map_or(target.header_timeout, |left| {
                left.min(target.header_timeout)
            });
            let sent = send_once(&relay, &target, headers, header_timeout).await;
            let (failure, content_type) = match sent {
                Ok(response) => {
                    relay.health.record_success(&channel.channel.id);
                    if let Some((session, ttl)) = &sticky {
                        relay.limits.stick(session, &channel.channel.id, *ttl);
                    }
                    recorder.set_channel(channel);
                    if !notes.is_empty() || converted.is_some() {
                        notes.push(AttemptNote {
                            channel: name.to_owned(),
                            status: response.status().as_u16(),
                            action: "success",
                            wait_ms: None,
                            error: String::new(),
                            conversion: converted.clone(),
                        });
                        recorder
                            .set_failover_info(serde_json::to_string(&notes).unwrap_or_default());
                    }
                    return respond(
                        response,
                        recorder,
                        Protocols {
                            client: client_protocol,
                            upstream: upstream_protocol,
                            endpoint: incoming.endpoint,
                            client_query: incoming.query.as_deref(),
                            wants_usage_chunk: facts.wants_usage_chunk,
                        },
                        facts.stream,
                        hide_usage_chunk && converted.is_none(),
                        Watch {
                            idle: idle_timeout,
                            drain_over: &relay.drain_over,
                        },
                    )
                    .await;
                }
                Err(failed) => (failed.failure, failed.content_type),
            };
            relay.metrics.upstream_error(name, failure.status);
            let decision = live.failover.decide(&failure, &mut chain, suspend_default);
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
                conversion: converted.clone(),
            });
            recorder.set_channel(channel);
            recorder.set_upstream_error(excerpt);
            recorder.set_failover_info(serde_json::to_string(&notes).unwrap_or_default());
            last = Some(LastFailure {
                failure,
                channel: name.to_owned(),
                content_type,
                converted: converted.is_some(),
            });
            match decision {
                Decision::Retry(wait) => {
                    if remaining().is_some_and(|left| left <= wait) {
                        // The wait would end past the deadline: answer the last error now.
                        out_of_time = true;
                        break;
                    }
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
    if out_of_time {
        tracing::info!(
            seconds = settings.request_deadline_seconds,
            "request deadline reached; answering the last upstream error"
        );
        recorder.set_upstream_error(match &last {
            Some(last) => format!(
                "request deadline of {} s reached; last upstream error: {}",
                settings.request_deadline_seconds,
                providers::upstream_error_text(last.failure.body.as_bytes())
            ),
            None => format!(
                "request deadline of {} s reached",
                settings.request_deadline_seconds
            ),
        });
    }
    let tried = if out_of_time {
        let channels: std::collections::BTreeSet<&str> =
            notes.iter().map(|n| n.channel.as_str()).collect();
        channels.len().max(1)
    } else {
        candidates.len()
    };
    match (last, rate_limited) {
        (Some(last), _) => exhausted(recorder, &last, tried, client_protocol),
        (None, Some(reason)) => {
            let message = "every channel that could serve this request is at its rate limit; retry in a minute";
            let detail = format!(
                "every channel that could serve this request is at its rate limit (last: {reason})"
            );
            let error = RelayError::new(ErrorKind::RateLimited, "channel_rate_limited", message)
                .with_retry_after(60)
                .with_log_detail(detail);
            fail(recorder, error, client_protocol)
        }
        (None, None) if refused.is_some() && !out_of_time => {
            let error = refused.unwrap_or_else(|| {
                RelayError::new(ErrorKind::InvalidRequest, "invalid_request", "refused")
            });
            fail(recorder, error, client_protocol)
        }
        (None, None) if out_of_time => {
            let message = format!(
                "no upstream could be tried within the relay's request deadline ({} s); retry later",
                settings.request_deadline_seconds
            );
            let error = RelayError::new(ErrorKind::Timeout, "upstream_timeout", message);
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

/// The body for one channel: the client's bytes when nothing changed, else re-serialised.
/// The body for one channel: the client's bytes as they are unless the model is mapped to
/// another name or the upstream must be asked for usage (`stream_options.include_usage`).
fn upstream_body(
    incoming: &ClientRequest,
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
fn upstream_query(incoming: &ClientRequest) -> Option<String> {
    let query = incoming.query.as_deref()?;
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| !pair.is_empty() && !pair.starts_with("key="))
        .collect();
    (!kept.is_empty()).then(|| kept.join("&"))
}

/// Up to `limit` bytes of an error body, read for at most `within`: what came by then counts
/// (an upstream that sends its error head but never the body cannot stall failover).
async fn read_limited(response: UpstreamResponse, limit: usize, within: Duration) -> String {
    use futures_util::StreamExt as _;
    let deadline = tokio::time::Instant::now() + within;
    let mut stream = response.into_body().into_data_stream();
    let mut out = Vec::new();
    while let Ok(Some(Ok(chunk))) = tokio::time::timeout_at(deadline, stream.next()).await {
        out.extend_from_slice(&chunk[..chunk.len().min(limit - out.len())]);
        if out.len() >= limit {
            break;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The client's own mistake according to the upstream (400, 404, …): its answer, as it is.
fn give_back(recorder: Recorder, last: LastFailure, protocol: Protocol) -> Response {
    let status = last.failure.status;
    if matches!(status, 401 | 403) || !(400..600).contains(&status) {
        return exhausted(recorder, &last, 1, protocol);
    }
    recorder.finish(Outcome::Error, status, "the upstream refused the request");
    let mut response = if last.converted {
        super::conversion::error_answer(protocol, status, &last.failure.body)
    } else {
        let mut response = Response::new(Body::from(last.failure.body));
        let content_type = last
            .content_type
            .unwrap_or(HeaderValue::from_static("application/json"));
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, content_type);
        response
    };
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
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
    // Channel names are the operator's: the client hears what happened, the row says where.
    let message = format!("{tried} {plural} tried; the last one {what}. Retry later.");
    let detail = format!(
        "{tried} {plural} tried; the last one ('{}') {what}",
        last.channel
    );
    let mut error = RelayError::new(kind, code, message).with_log_detail(detail);
    if let Some(wait) = failure.retry_after {
        error = error.with_retry_after(wait.as_secs().max(1));
    } else if kind == ErrorKind::RateLimited {
        error = error.with_retry_after(5);
    }
    fail(recorder, error, protocol)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use axum::http::HeaderMap;
    use relaybox_mock_upstream::{MockOptions, MockUpstream};
    use serde_json::json;

    use super::*;
    use crate::relay::Endpoint;
    use crate::relay::test_support;

    const BODY: &str = r#"{"model":"claude-sonnet-4-5","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}"#;

    fn anthropic_headers() -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-api-key", HeaderValue::from_static("sk-upstream"));
        headers.insert("anthropic-version", HeaderValue::from_static("2023-06-01"));
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers
    }

    async fn send(
        relay: &Relay,
        url: &str,
        header_timeout: Duration,
    ) -> Result<UpstreamResponse, FailedAttempt> {
        let payload = Bytes::from_static(BODY.as_bytes());
        let target = Target {
            url,
            certificates: Certificates::Verify,
            header_timeout,
            error_body_timeout: SECOND,
            payload: &payload,
        };
        send_once(relay, &target, anthropic_headers(), header_timeout).await
    }

    fn expect_failure(sent: Result<UpstreamResponse, FailedAttempt>) -> FailedAttempt {
        match sent {
            Ok(response) => panic!("expected a failure, got HTTP {}", response.status()),
            Err(failed) => failed,
        }
    }

    async fn mock() -> MockUpstream {
        MockUpstream::start(MockOptions::default()).await.unwrap()
    }

    const SECOND: Duration = Duration::from_secs(1);
    const GENEROUS: Duration = Duration::from_secs(30);

    #[tokio::test]
    async fn a_2xx_answer_is_passed_on_as_it_comes() {
        let mock = mock().await;
        let relay = test_support::relay();
        let url = format!("{}/v1/messages", mock.base_url());
        let Ok(response) = send(&relay, &url, GENEROUS).await else {
            panic!("the mock's answer was not a success");
        };
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers().get(header::CONTENT_TYPE).unwrap(),
            "application/json"
        );
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["type"], "message");
        assert!(
            body["content"][0]["text"]
                .as_str()
                .unwrap()
                .starts_with("Hello from the mock upstream.")
        );
        // What was sent: the target's payload with the given headers.
        let seen = mock.requests();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].path, "/v1/messages");
        assert_eq!(seen[0].header("x-api-key"), Some("sk-upstream"));
        assert_eq!(seen[0].body, serde_json::from_str::<Value>(BODY).unwrap());
    }

    #[tokio::test]
    async fn an_error_answer_is_a_failure_with_status_body_and_retry_after() {
        let mock = mock().await;
        let relay = test_support::relay();
        let url = format!(
            "{}/v1/messages",
            mock.scenario_url("status=429,retry_after=7,error_code=QUOTA_EXHAUSTED")
        );
        let failed = expect_failure(send(&relay, &url, GENEROUS).await);
        assert_eq!(failed.failure.status, 429);
        assert_eq!(failed.failure.retry_after, Some(Duration::from_secs(7)));
        assert_eq!(failed.content_type.unwrap(), "application/json");
        let body: Value = serde_json::from_str(&failed.failure.body).unwrap();
        assert_eq!(body["type"], "error");
        assert!(failed.failure.body.contains("QUOTA_EXHAUSTED"));

        // Without a Retry-After header there is no hint.
        let url = format!("{}/v1/messages", mock.scenario_url("status=503"));
        let failed = expect_failure(send(&relay, &url, GENEROUS).await);
        assert_eq!(failed.failure.status, 503);
        assert_eq!(failed.failure.retry_after, None);
        assert!(!failed.failure.body.is_empty());
    }

    #[tokio::test]
    async fn no_answer_is_a_502() {
        let relay = test_support::relay();
        // A port that was just free: nothing listens there.
        let port = {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            listener.local_addr().unwrap().port()
        };
        let url = format!("http://127.0.0.1:{port}/v1/messages");
        let failed = expect_failure(send(&relay, &url, GENEROUS).await);
        assert_eq!(failed.failure.status, 502);
        assert_eq!(
            failed.failure.body,
            "no response from the upstream: connection failed"
        );
        assert_eq!(failed.failure.retry_after, None);
        assert!(failed.content_type.is_none());

        let failed = failed_of_bad_url(&relay).await;
        assert_eq!(failed.failure.status, 502);
        assert_eq!(
            failed.failure.body,
            "no response from the upstream: the channel's base URL is not a valid URL"
        );
    }

    async fn failed_of_bad_url(relay: &Relay) -> FailedAttempt {
        expect_failure(send(relay, "not a url/v1/messages", GENEROUS).await)
    }

    #[tokio::test]
    async fn no_response_headers_in_time_is_a_504() {
        let mock = mock().await;
        let relay = test_support::relay();
        let url = format!("{}/v1/messages", mock.scenario_url("latency=5000"));
        let started = std::time::Instant::now();
        let failed = expect_failure(send(&relay, &url, SECOND).await);
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(failed.failure.status, 504);
        assert_eq!(failed.failure.body, "no response headers within 1 s");
        assert_eq!(failed.failure.retry_after, None);
        assert!(failed.content_type.is_none());
    }

    #[tokio::test]
    async fn an_error_body_that_never_comes_counts_as_empty_after_its_bound() {
        let mock = mock().await;
        let relay = test_support::relay();
        let url = format!(
            "{}/v1/messages",
            mock.scenario_url("status=529,stall_after=0")
        );
        let started = std::time::Instant::now();
        let failed = expect_failure(send(&relay, &url, GENEROUS).await);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(failed.failure.status, 529);
        assert_eq!(failed.failure.body, "");
    }

    fn client_request(endpoint: Endpoint, query: Option<&str>, body: &str) -> ClientRequest {
        ClientRequest {
            endpoint,
            headers: HeaderMap::new(),
            query: query.map(str::to_string),
            path_model: None,
            body: Bytes::from(body.to_string()),
        }
    }

    #[test]
    fn the_query_loses_only_the_clients_key() {
        let query =
            |q: Option<&str>| upstream_query(&client_request(Endpoint::GeminiStream, q, "{}"));
        assert_eq!(query(None), None);
        assert_eq!(query(Some("key=AIza-client")), None);
        assert_eq!(
            query(Some("key=AIza-client&alt=sse")).as_deref(),
            Some("alt=sse")
        );
        assert_eq!(
            query(Some("alt=sse&&keyword=1&key=x")).as_deref(),
            Some("alt=sse&keyword=1")
        );
    }

    #[test]
    fn the_body_is_rewritten_only_when_it_must_be() {
        // Spacing kept: the client's bytes go out as they are.
        let spaced = r#"{ "model" : "claude-sonnet-4-5", "max_tokens": 16 }"#;
        let incoming = client_request(Endpoint::Messages, None, spaced);
        let mut parsed = None;
        let same = upstream_body(
            &incoming,
            &mut parsed,
            "claude-sonnet-4-5",
            "claude-sonnet-4-5",
            false,
        )
        .unwrap();
        assert_eq!(same, incoming.body);
        assert!(parsed.is_none(), "not parsed when nothing changes");

        // A mapped model is written into the body.
        let mapped = upstream_body(
            &incoming,
            &mut parsed,
            "claude-sonnet-4-5",
            "upstream-sonnet",
            false,
        )
        .unwrap();
        let mapped: Value = serde_json::from_slice(&mapped).unwrap();
        assert_eq!(
            mapped,
            json!({"model": "upstream-sonnet", "max_tokens": 16})
        );

        // Gemini carries the model in the path: its body stays.
        let gemini = client_request(Endpoint::GeminiGenerate, None, r#"{"contents":[]}"#);
        let kept = upstream_body(&gemini, &mut None, "gemini-a", "gemini-b", false).unwrap();
        assert_eq!(kept, gemini.body);

        // OpenAI Chat streams are asked for their usage.
        let chat = client_request(
            Endpoint::ChatCompletions,
            None,
            r#"{"model":"gpt-4o","stream":true}"#,
        );
        let asked = upstream_body(&chat, &mut None, "gpt-4o", "gpt-4o", true).unwrap();
        let asked: Value = serde_json::from_slice(&asked).unwrap();
        assert_eq!(
            asked,
            json!({"model": "gpt-4o", "stream": true, "stream_options": {"include_usage": true}})
        );
    }
}
