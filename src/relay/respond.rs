//! Stage 6 of the request path: hand the upstream's successful answer to the client —
//! non-stream: read the body and its usage; stream: [`RelayStream`] passes events through
//! while its tap reads usage and the first token.

use axum::body::Body;
use axum::http::header;
use axum::response::Response;
use http_body_util::BodyExt as _;

use super::client::UpstreamResponse;
use super::error::RelayError;
use super::error::fail;
use super::record::{Outcome, Recorder};
use super::stream::RelayStream;
use super::upstream;
use crate::providers::{self, ErrorKind, Protocol};

/// Which protocol each side of a forwarded request speaks: the client's shapes what relaybox
/// says itself (errors), the upstream's is what its answer is read as (usage, stream events).
/// Equal today; protocol conversion goes between them.
#[derive(Debug, Clone, Copy)]
pub(super) struct Protocols {
    pub(super) client: Protocol,
    pub(super) upstream: Protocol,
}

/// Stage 6: hand the upstream's successful answer to the client.
pub(super) async fn respond(
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
