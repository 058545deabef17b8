//! Stage 7 for streams: SSE passed through chunk by chunk while a [`StreamTap`] reads usage and
//! the first token as they pass. When the stream ends the row is written; when the client goes
//! away the body is dropped, which drops the upstream response (cancelling it) and the
//! [`Recorder`] (which logs `client_disconnect`).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;

use super::record::{Outcome, Recorder};
use crate::providers::{self, ErrorKind, Protocol, StreamTap};

type Upstream = Pin<Box<dyn Stream<Item = Result<Bytes, hyper::Error>> + Send>>;

pub struct RelayStream {
    upstream: Upstream,
    tap: StreamTap,
    protocol: Protocol,
    recorder: Option<Recorder>,
    http_status: u16,
    /// The upstream has ended; only the tap's remainder was still to be sent.
    pending_end: bool,
}

impl RelayStream {
    pub fn new(
        upstream: Upstream,
        protocol: Protocol,
        hide_usage_chunk: bool,
        recorder: Recorder,
        http_status: u16,
    ) -> Self {
        Self {
            upstream,
            tap: StreamTap::new(protocol, hide_usage_chunk),
            protocol,
            recorder: Some(recorder),
            http_status,
            pending_end: false,
        }
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
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(chunk))) => {
                    let forward = this.tap.feed(chunk);
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
                    let message = "the upstream connection broke off in the middle of the response; retry the request";
                    if let Some(recorder) = this.recorder.as_mut() {
                        recorder.set_upstream_error(format!("stream interrupted: {err}"));
                    }
                    this.finish(Outcome::Error, message);
                    return Poll::Ready(Some(Ok(providers::stream_error_event(
                        this.protocol,
                        ErrorKind::Upstream,
                        message,
                    ))));
                }
                Poll::Ready(None) => {
                    // An upstream may end without a closing blank line: parse and forward the rest.
                    let rest = this.tap.finish();
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
