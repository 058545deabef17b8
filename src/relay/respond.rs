//! Stage 6 of the request path: hand the upstream's successful answer to the client —
//! non-stream: read the body and its usage; stream: [`RelayStream`] passes events through
//! while its tap reads usage and the first token.

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use bytes::Bytes;
use http_body_util::BodyExt as _;
use tokio_util::sync::CancellationToken;

use super::client::UpstreamResponse;
use super::conversion;
use super::error::RelayError;
use super::error::fail;
use super::record::{Outcome, Recorder};
use super::stream::RelayStream;
use super::upstream;
use crate::providers::{self, ErrorKind, Protocol};

/// Which protocol each side of a forwarded request speaks: the client's shapes what relaybox
/// says itself (errors), the upstream's is what its answer is read as (usage, stream events).
/// When they differ the answer is converted (`conversion.rs`), shaped by what the client asked.
#[derive(Debug, Clone, Copy)]
pub(super) struct Protocols<'a> {
    pub(super) client: Protocol,
    pub(super) upstream: Protocol,
    pub(super) endpoint: super::Endpoint,
    /// The client's query string (Gemini's `alt=sse`).
    pub(super) client_query: Option<&'a str>,
    /// OpenAI Chat: the client asked for the usage chunk.
    pub(super) wants_usage_chunk: bool,
}

impl Protocols<'_> {
    fn converting(&self) -> bool {
        self.client != self.upstream
    }
}

/// What ends an answer early: the upstream sending nothing for `idle`, or the end of a
/// shutdown's drain time.
pub(super) struct Watch<'a> {
    pub(super) idle: Option<Duration>,
    pub(super) drain_over: &'a CancellationToken,
}

/// The row's error and the client's message when the upstream went quiet.
pub(super) fn idle_message(idle: Duration) -> String {
    format!(
        "upstream_timeout: the upstream sent nothing for {} s; retry the request",
        idle.as_secs()
    )
}

/// Stage 6: hand the upstream's successful answer to the client.
pub(super) async fn respond(
    response: UpstreamResponse,
    mut recorder: Recorder,
    protocols: Protocols<'_>,
    stream: bool,
    hide_usage_chunk: bool,
    watch: Watch<'_>,
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
        let mut body = RelayStream::new(
            Box::pin(body.into_data_stream()),
            protocols.upstream,
            hide_usage_chunk,
            recorder,
            status.as_u16(),
            watch.idle,
            watch.drain_over.clone(),
        );
        if protocols.converting() {
            let (converter, content_type) = conversion::stream_converter(
                protocols.client_query,
                protocols.client,
                protocols.upstream,
                protocols.wants_usage_chunk,
            );
            body = body.converting(converter);
            head.headers
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        }
        return Response::from_parts(head, Body::from_stream(body));
    }
    match collect(body, watch).await {
        Ok(bytes) => {
            let summary = providers::summarize_body(protocols.upstream, &bytes);
            recorder.set_usage(
                summary.usage.unwrap_or_default(),
                summary.response_model.as_deref(),
            );
            recorder.mark_first_token();
            let bytes = if protocols.converting() {
                match conversion::answer(protocols.endpoint, protocols.upstream, &bytes) {
                    Ok((converted, content_type)) => {
                        head.headers
                            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
                        converted
                    }
                    Err(error) => {
                        recorder.set_upstream_error(error.message.clone());
                        return fail(recorder, error, protocols.client);
                    }
                }
            } else {
                bytes
            };
            recorder.finish(Outcome::Success, status.as_u16(), "");
            Response::from_parts(head, Body::from(bytes))
        }
        Err(Unfinished::Idle(idle)) => {
            let message = idle_message(idle);
            recorder.set_upstream_error(message.clone());
            let error = RelayError::new(ErrorKind::Timeout, "upstream_timeout", message);
            fail(recorder, error, protocols.client)
        }
        Err(Unfinished::Shutdown) => {
            let error = RelayError::new(ErrorKind::Overloaded, "server_shutdown", SHUTDOWN);
            fail(recorder, error, protocols.client)
        }
        Err(Unfinished::BrokeOff) => {
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

/// The error of an answer cut by a shutdown's deadline.
pub(super) const SHUTDOWN: &str = "server_shutdown: the relay is shutting down and could not finish this response in time; retry the request";

enum Unfinished {
    Idle(Duration),
    Shutdown,
    BrokeOff,
}

/// A whole non-stream body, as long as no gap between two of its pieces exceeds `watch.idle`.
async fn collect(
    mut body: super::client::UpstreamBody,
    watch: Watch<'_>,
) -> Result<Bytes, Unfinished> {
    let mut first: Option<Bytes> = None;
    let mut rest: Vec<u8> = Vec::new();
    loop {
        let frame = async {
            match watch.idle {
                Some(idle) => tokio::time::timeout(idle, body.frame())
                    .await
                    .map_err(|_| Unfinished::Idle(idle)),
                None => Ok(body.frame().await),
            }
        };
        let frame = tokio::select! {
            biased;
            frame = frame => frame?,
            () = watch.drain_over.cancelled() => return Err(Unfinished::Shutdown),
        };
        match frame {
            None => break,
            Some(Err(_)) => return Err(Unfinished::BrokeOff),
            Some(Ok(frame)) => {
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                // One piece (the usual case) is passed on without a copy.
                match &first {
                    None if rest.is_empty() => first = Some(data),
                    _ => {
                        if let Some(first) = first.take() {
                            rest.extend_from_slice(&first);
                        }
                        rest.extend_from_slice(&data);
                    }
                }
            }
        }
    }
    Ok(first.unwrap_or_else(|| Bytes::from(rest)))
}
