//! Event framing and the streaming body that plays events one by one.

use std::io;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use serde_json::Value;

use crate::state::{InFlight, StreamGuard};

/// `event: NAME\ndata: JSON\n\n` (Anthropic, OpenAI Responses).
pub(crate) fn named_event(name: &str, data: &Value) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

/// `data: JSON\n\n` (OpenAI Chat Completions).
pub(crate) fn data_event(data: &Value) -> Bytes {
    Bytes::from(format!("data: {data}\n\n"))
}

/// `data: JSON\r\n\r\n` (Gemini, which frames its events with CRLF).
pub(crate) fn data_event_crlf(data: &Value) -> Bytes {
    Bytes::from(format!("data: {data}\r\n\r\n"))
}

/// Shortest pause before a deliberate cut, so the events already sent are
/// flushed to the socket before the connection is aborted.
const CUT_FLUSH_PAUSE: Duration = Duration::from_millis(5);

/// A response body that yields pre-rendered events with a delay between
/// them, optionally aborting after `cut_after` events.
pub(crate) struct Playback {
    pub events: Vec<Bytes>,
    pub delay: Duration,
    pub cut_after: Option<usize>,
    /// After this many events the body sends nothing more (the connection stays open).
    pub stall_after: Option<usize>,
    /// Present for streamed replies; absent for a cut non-streamed body.
    pub guard: Option<StreamGuard>,
    /// Held for its `Drop`: the request stays in flight while the body lives.
    pub _in_flight: InFlight,
}

struct State {
    playback: Playback,
    next: usize,
}

impl Playback {
    pub fn into_body(self) -> Body {
        let state = State {
            playback: self,
            next: 0,
        };
        Body::from_stream(futures_util::stream::unfold(state, step))
    }
}

async fn step(mut state: State) -> Option<(Result<Bytes, io::Error>, State)> {
    let p = &mut state.playback;
    if state.next >= p.events.len() {
        return None;
    }
    if p.stall_after.is_some_and(|stall| state.next >= stall) {
        std::future::pending::<()>().await;
    }
    if p.cut_after.is_some_and(|cut| state.next >= cut) {
        tokio::time::sleep(p.delay.max(CUT_FLUSH_PAUSE)).await;
        if let Some(guard) = p.guard.as_mut() {
            guard.abort();
        }
        state.next = p.events.len();
        let error = io::Error::other("mock-upstream: connection cut by cut_after");
        return Some((Err(error), state));
    }
    if state.next > 0 && !p.delay.is_zero() {
        tokio::time::sleep(p.delay).await;
    }
    let event = std::mem::take(&mut p.events[state.next]);
    state.next += 1;
    if state.next == p.events.len()
        && let Some(guard) = p.guard.as_mut()
    {
        guard.complete();
    }
    Some((Ok(event), state))
}
