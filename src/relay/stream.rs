//! Stage 6 of the request path, for streams: SSE passed through chunk by chunk while a
//! [`StreamTap`] reads usage and the first token as they pass. When the stream ends the row is written; when the client goes
//! away the body is dropped, which drops the upstream response (cancelling it) and the
//! [`Recorder`] (which logs `client_disconnect`).

use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use super::record::{Outcome, Recorder};
use crate::convert::StreamConverter;
use crate::providers::{ErrorKind, Protocol, StreamTap};

type Upstream = Pin<Box<dyn Stream<Item = Result<Bytes, hyper::Error>> + Send>>;

const BROKE_OFF: &str =
    "the upstream connection broke off in the middle of the response; retry the request";

/// The error event for an upstream that broke off. It comes from the tap, so a Responses
/// stream's `sequence_number` continues after the events the client already received.
fn broke_off_event(tap: &StreamTap) -> Bytes {
    tap.error_event(ErrorKind::Upstream, BROKE_OFF)
}

pub struct RelayStream {
    upstream: Upstream,
    tap: StreamTap,
    /// The upstream speaks another protocol: what the tap let through is converted event by
    /// event (the tap still reads usage in the upstream's own protocol).
    converter: Option<StreamConverter>,
    recorder: Option<Recorder>,
    http_status: u16,
    /// The upstream has ended; only the tap's remainder was still to be sent.
    pending_end: bool,
    /// The stream idle timeout: no byte from the upstream for this long ends the stream.
    idle: Option<Idle>,
    /// Resolves when a shutdown's drain time is over.
    drain_over: Pin<Box<WaitForCancellationFutureOwned>>,
}

/// The idle timer is not reset on every chunk (that would touch the timer wheel per event):
/// each chunk notes the time, and when the timer fires it is moved to `last + limit` unless
/// that moment has passed.
struct Idle {
    limit: Duration,
    last: Instant,
    timer: Pin<Box<Sleep>>,
}

impl RelayStream {
    pub fn new(
        upstream: Upstream,
        protocol: Protocol,
        hide_usage_chunk: bool,
        recorder: Recorder,
        http_status: u16,
        idle: Option<Duration>,
        drain_over: CancellationToken,
    ) -> Self {
        Self {
            upstream,
            tap: StreamTap::new(protocol, hide_usage_chunk),
            converter: None,
            recorder: Some(recorder),
            http_status,
            pending_end: false,
            idle: idle.map(|limit| {
                let last = Instant::now();
                Idle {
                    limit,
                    last,
                    timer: Box::pin(tokio::time::sleep_until(last + limit)),
                }
            }),
            drain_over: Box::pin(drain_over.cancelled_owned()),
        }
    }

    /// Convert the stream for a client of another protocol.
    #[must_use]
    pub fn converting(mut self, converter: StreamConverter) -> Self {
        self.converter = Some(converter);
        self
    }

    /// The error event for the client: in its protocol (the converter's), else the tap's.
    fn error_event(&mut self, kind: ErrorKind, message: &str) -> Bytes {
        match self.converter.as_mut() {
            Some(converter) => converter.error(kind, message),
            None => self.tap.error_event(kind, message),
        }
    }

    /// The upstream's bytes as the client receives them.
    fn for_client(&mut self, forward: Bytes) -> Bytes {
        match self.converter.as_mut() {
            Some(converter) if !forward.is_empty() => converter.feed(&forward),
            _ => forward,
        }
    }

    /// The upstream has been quiet for longer than the idle limit (else the timer is re-armed).
    fn idle_expired(&mut self, cx: &mut Context<'_>) -> Option<Duration> {
        let idle = self.idle.as_mut()?;
        loop {
            if idle.timer.as_mut().poll(cx).is_pending() {
                return None;
            }
            let due = idle.last + idle.limit;
            if due <= Instant::now() {
                return Some(idle.limit);
            }
            idle.timer.as_mut().reset(due);
        }
    }

    /// End the stream early with an error event in the client's protocol and write the row.
    fn end_with(&mut self, kind: ErrorKind, message: &str) -> Bytes {
        if let Some(recorder) = self.recorder.as_mut() {
            recorder.set_upstream_error(message.to_string());
        }
        self.finish(Outcome::Error, message);
        self.error_event(kind, message)
    }

    fn finish(&mut self, outcome: Outcome, error: &str) {
        if let Some(mut recorder) = self.recorder.take() {
            recorder.set_usage(self.tap.usage(), self.tap.response_model());
            if let Some(stream_error) = self.tap.stream_error() {
                recorder.set_upstream_error(stream_error.to_string());
            }
            recorder.finish(outcome, self.http_status, error);
        }
    }
}

impl Stream for RelayStream {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if this.recorder.is_none() {
                return Poll::Ready(None);
            }
            let next = if this.pending_end {
                Poll::Ready(None)
            } else {
                this.upstream.as_mut().poll_next(cx)
            };
            match next {
                Poll::Pending => {
                    if this.drain_over.as_mut().poll(cx).is_ready() {
                        let event = this.end_with(ErrorKind::Overloaded, super::respond::SHUTDOWN);
                        return Poll::Ready(Some(Ok(event)));
                    }
                    if let Some(limit) = this.idle_expired(cx) {
                        let message = super::respond::idle_message(limit);
                        let event = this.end_with(ErrorKind::Timeout, &message);
                        return Poll::Ready(Some(Ok(event)));
                    }
                    return Poll::Pending;
                }
                Poll::Ready(Some(Ok(chunk))) => {
                    if let Some(idle) = this.idle.as_mut() {
                        idle.last = Instant::now();
                    }
                    let forward = this.tap.feed(chunk);
                    let forward = this.for_client(forward);
                    if this.tap.saw_first_token()
                        && let Some(recorder) = this.recorder.as_mut()
                    {
                        recorder.mark_first_token();
                    }
                    if !forward.is_empty() {
                        return Poll::Ready(Some(Ok(forward)));
                    }
                }
                Poll::Ready(Some(Err(err))) => {
                    // The upstream broke off mid-stream: tell the client in its protocol.
                    if let Some(recorder) = this.recorder.as_mut() {
                        recorder.set_upstream_error(format!("stream interrupted: {err}"));
                    }
                    this.finish(Outcome::Error, BROKE_OFF);
                    let event = match this.converter.as_mut() {
                        Some(converter) => converter.error(ErrorKind::Upstream, BROKE_OFF),
                        None => broke_off_event(&this.tap),
                    };
                    return Poll::Ready(Some(Ok(event)));
                }
                Poll::Ready(None) => {
                    // An upstream may end without a closing blank line: parse and forward the rest.
                    let mut rest = this.tap.finish();
                    if let Some(converter) = this.converter.as_mut() {
                        let mut out = converter.feed(&rest).to_vec();
                        out.extend_from_slice(&converter.finish());
                        rest = Bytes::from(out);
                    }
                    if !rest.is_empty() {
                        this.pending_end = true;
                        return Poll::Ready(Some(Ok(rest)));
                    }
                    if this.tap.completed() && this.tap.stream_error().is_none() {
                        this.finish(Outcome::Success, "");
                    } else if this.tap.stream_error().is_some() {
                        this.finish(
                            Outcome::Error,
                            "the upstream reported an error inside the stream",
                        );
                    } else {
                        this.finish(Outcome::Error, "the upstream ended the stream early");
                    }
                    return Poll::Ready(None);
                }
            }
        }
    }
}

impl Drop for RelayStream {
    fn drop(&mut self) {
        // Dropped before the end: the client went away. Keep what the stream told us so far;
        // the recorder's own Drop writes the row as `client_disconnect`.
        if let Some(mut recorder) = self.recorder.take() {
            recorder.set_usage(self.tap.usage(), self.tap.response_model());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broken_responses_stream_numbers_its_error_event_after_the_last_event() {
        let mut tap = StreamTap::new(Protocol::OpenAiResponses, false);
        tap.feed(Bytes::from_static(
            b"event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0}\n\n\
              event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"sequence_number\":1,\"delta\":\"Hi\"}\n\n",
        ));
        let event = broke_off_event(&tap);
        let text = std::str::from_utf8(&event).unwrap();
        let data = text
            .trim_end()
            .strip_prefix("event: error\ndata: ")
            .unwrap();
        let data: serde_json::Value = serde_json::from_str(data).unwrap();
        assert_eq!(data["sequence_number"], 2, "{text}");
        assert_eq!(data["message"], BROKE_OFF);
    }
}
