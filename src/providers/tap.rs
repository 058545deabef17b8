//! [`StreamTap`]: watches a streamed response as the relay forwards it, reading usage, the
//! answering model, first-token time, proper completion and in-stream errors.
//!
//! The bytes are forwarded as they come: `feed` returns the very `Bytes` it was given. The one
//! exception is an OpenAI Chat stream where the relay asked for `include_usage` on the client's
//! behalf; there the usage-only chunk is cut out, and so that it can be, incomplete events are
//! held back until their end arrives (the client could not use half an event anyway).
//!
//! Cost: events are framed with SIMD byte searches; an event is JSON-parsed only when it can
//! change what the tap reports (see each protocol's `on_stream_event`), and then into small
//! typed structs that skip everything else without allocating.

use bytes::{Bytes, BytesMut};

use super::errors::{self, ErrorKind};
use super::protocol::Protocol;
use super::sse::{self, ArraySplitter, DEFAULT_MAX_EVENT_BYTES, RawEvent, Splitter};
use super::stream_state::TapState;
use super::usage::Usage;
use super::{anthropic, gemini, openai, responses};

/// Watches one streamed response. See the module docs.
#[derive(Debug)]
pub struct StreamTap {
    protocol: Protocol,
    framing: Framing,
    sse: Splitter,
    array: Option<ArraySplitter>,
    max_event: usize,
    /// Reused between `feed` calls when hiding.
    segments: Vec<Segment>,
    state: TapState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// Gemini before the first non-blank byte: SSE (`alt=sse`) or a JSON array.
    Undecided,
    Sse,
    JsonArray,
}

/// A piece of the bytes to forward for one chunk.
#[derive(Debug)]
enum Segment {
    Range(usize, usize),
    Owned(Vec<u8>),
}

impl StreamTap {
    /// A tap for a stream in `protocol`. `hide_usage_chunk` (OpenAI Chat only; ignored for the
    /// others): the relay added `stream_options.include_usage` although the client did not ask,
    /// so the usage-only chunk is removed from what the client receives.
    #[must_use]
    pub fn new(protocol: Protocol, hide_usage_chunk: bool) -> Self {
        Self::with_max_event_len(protocol, hide_usage_chunk, DEFAULT_MAX_EVENT_BYTES)
    }

    /// As [`StreamTap::new`], keeping events of up to `max_event` bytes for parsing. A larger
    /// event is forwarded unparsed, and usage counts as unknown unless usage arrives after it.
    #[must_use]
    pub fn with_max_event_len(
        protocol: Protocol,
        hide_usage_chunk: bool,
        max_event: usize,
    ) -> Self {
        Self {
            protocol,
            framing: if protocol == Protocol::Gemini {
                Framing::Undecided
            } else {
                Framing::Sse
            },
            sse: Splitter::new(max_event),
            array: None,
            max_event,
            segments: Vec::new(),
            state: TapState {
                hide_usage_chunk: hide_usage_chunk && protocol == Protocol::OpenAiChat,
                ..TapState::default()
            },
        }
    }

    /// The protocol this tap reads.
    #[must_use]
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// Feeds the next upstream chunk; returns the bytes to forward to the client: the same
    /// `Bytes` (no copy) unless the usage chunk is being hidden, in which case every byte but
    /// that event's is forwarded, in order (incomplete events wait for their end).
    pub fn feed(&mut self, chunk: Bytes) -> Bytes {
        if chunk.is_empty() {
            return chunk;
        }
        if self.framing == Framing::Undecided {
            match chunk.iter().find(|b| !b.is_ascii_whitespace()) {
                None => return chunk,
                Some(b'[') => {
                    self.framing = Framing::JsonArray;
                    self.array = Some(ArraySplitter::new(self.max_event));
                }
                Some(_) => self.framing = Framing::Sse,
            }
        }
        let protocol = self.protocol;
        let state = &mut self.state;
        match self.framing {
            Framing::JsonArray => {
                if let Some(array) = &mut self.array {
                    array.split(&chunk, |event| on_element(state, &event));
                }
                chunk
            }
            _ if !state.hide_usage_chunk => {
                self.sse.split(&chunk, |event| {
                    on_event(state, protocol, &event);
                });
                chunk
            }
            _ => self.feed_hiding(chunk),
        }
    }

    fn feed_hiding(&mut self, chunk: Bytes) -> Bytes {
        let protocol = self.protocol;
        let state = &mut self.state;
        let segments = &mut self.segments;
        segments.clear();
        let end = self.sse.split(&chunk, |event| {
            if on_event(state, protocol, &event) {
                state.hidden += 1;
                return;
            }
            match (event.carried, event.bytes) {
                // Its earlier part was held back: forward the whole event now.
                (true, Some(bytes)) => segments.push(Segment::Owned(bytes.to_vec())),
                // In this chunk only, or skipped (its earlier part was already forwarded).
                _ => push_range(segments, event.start, event.end),
            }
        });
        if let Some(released) = end.released {
            segments.push(Segment::Owned(released));
        }
        if end.skipping {
            push_range(segments, end.tail_start, chunk.len());
        }
        assemble(chunk, segments)
    }

    /// Call when the upstream body ends. Reads an unterminated last event, and returns bytes
    /// still to forward (non-empty only when hiding held back that unterminated event).
    pub fn finish(&mut self) -> Bytes {
        if self.framing != Framing::Sse {
            return Bytes::new();
        }
        let Some(rest) = self.sse.finish() else {
            return Bytes::new();
        };
        let event = RawEvent {
            bytes: Some(&rest),
            start: 0,
            end: rest.len(),
            carried: true,
        };
        let hide = on_event(&mut self.state, self.protocol, &event);
        if hide {
            self.state.hidden += 1;
        }
        if self.state.hide_usage_chunk && !hide {
            Bytes::from(rest)
        } else {
            Bytes::new()
        }
    }

    /// True once the first content token has been seen (for time-to-first-token).
    #[must_use]
    pub fn saw_first_token(&self) -> bool {
        self.state.first_token
    }

    /// Whether the stream reached its proper end: Anthropic `message_stop`, OpenAI `[DONE]`,
    /// Responses `response.completed` / `.failed` / `.incomplete`, Gemini a `finishReason`.
    #[must_use]
    pub fn completed(&self) -> bool {
        self.state.completed
    }

    /// Best knowledge of the usage so far.
    #[must_use]
    pub fn usage(&self) -> Usage {
        self.state.usage
    }

    /// Usage figures were read, and none could have been missed: no event since the last
    /// figures was too large to parse.
    #[must_use]
    pub fn usage_known(&self) -> bool {
        self.state.usage_seen && (!self.state.overflowed || self.state.usage_since_overflow)
    }

    /// At least one event was too large to parse and was forwarded unread.
    #[must_use]
    pub fn overflowed(&self) -> bool {
        self.state.overflowed
    }

    /// The model the upstream says is answering.
    #[must_use]
    pub fn response_model(&self) -> Option<&str> {
        self.state.model.as_deref()
    }

    /// The message of an error event inside the stream (Anthropic `event: error`, Responses
    /// `error` / `response.failed`, OpenAI and Gemini `{"error":…}` data), for the log.
    #[must_use]
    pub fn stream_error(&self) -> Option<&str> {
        self.state.error.as_deref()
    }

    /// The type or code of that error (`overloaded_error`, `rate_limit_exceeded`,
    /// `RESOURCE_EXHAUSTED`, …), when it had one.
    #[must_use]
    pub fn stream_error_code(&self) -> Option<&str> {
        self.state.error_code.as_deref()
    }

    /// How many data events have been seen.
    #[must_use]
    pub fn events_seen(&self) -> u64 {
        self.state.events
    }

    /// The error event to send when relaybox must end this stream early: as
    /// [`errors::stream_error_event`], with the Responses `sequence_number` continuing the
    /// stream's own numbering.
    #[must_use]
    pub fn error_event(&self, kind: ErrorKind, message: &str) -> Bytes {
        errors::stream_error_event_numbered(self.protocol, kind, message, self.state.events)
    }

    #[cfg(test)]
    pub(crate) fn parsed_events(&self) -> u64 {
        self.state.parsed
    }

    #[cfg(test)]
    pub(crate) fn hidden_events(&self) -> u64 {
        self.state.hidden
    }
}

/// One framed event; returns true when it must be cut out of the stream.
fn on_event(state: &mut TapState, protocol: Protocol, event: &RawEvent<'_>) -> bool {
    let Some(raw) = event.bytes else {
        state.mark_overflow();
        return false;
    };
    let fields = sse::fields(raw);
    if !fields.has_data {
        return false;
    }
    state.events += 1;
    match protocol {
        Protocol::Anthropic => anthropic::on_stream_event(state, fields.event, &fields.data),
        Protocol::OpenAiChat => return openai::on_stream_event(state, &fields.data),
        Protocol::OpenAiResponses => {
            responses::on_stream_event(state, fields.event, &fields.data);
        }
        Protocol::Gemini => gemini::on_stream_event(state, &fields.data),
    }
    false
}

/// One element of a Gemini JSON-array stream.
fn on_element(state: &mut TapState, event: &RawEvent<'_>) {
    match event.bytes {
        Some(raw) => {
            state.events += 1;
            gemini::on_stream_event(state, raw);
        }
        None => state.mark_overflow(),
    }
}

fn push_range(segments: &mut Vec<Segment>, start: usize, end: usize) {
    if start == end {
        return;
    }
    if let Some(Segment::Range(_, last_end)) = segments.last_mut()
        && *last_end == start
    {
        *last_end = end;
        return;
    }
    segments.push(Segment::Range(start, end));
}

fn assemble(chunk: Bytes, segments: &mut Vec<Segment>) -> Bytes {
    let out = match segments.as_slice() {
        [] => Bytes::new(),
        [Segment::Range(0, end)] if *end == chunk.len() => chunk,
        [Segment::Range(start, end)] => chunk.slice(*start..*end),
        parts => {
            let len = parts
                .iter()
                .map(|s| match s {
                    Segment::Range(a, b) => b - a,
                    Segment::Owned(v) => v.len(),
                })
                .sum();
            let mut out = BytesMut::with_capacity(len);
            for part in parts {
                match part {
                    Segment::Range(a, b) => out.extend_from_slice(&chunk[*a..*b]),
                    Segment::Owned(v) => out.extend_from_slice(v),
                }
            }
            out.freeze()
        }
    };
    segments.clear();
    out
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Drives a tap over a fixture cut in every possible way.

    use bytes::Bytes;

    use super::StreamTap;
    use crate::providers::{Protocol, Usage};

    /// What a tap reported after a whole stream.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub(crate) struct Outcome {
        pub forwarded: Vec<u8>,
        pub usage: Usage,
        pub usage_known: bool,
        pub first_token: bool,
        pub completed: bool,
        pub model: Option<String>,
        pub error: Option<String>,
        pub error_code: Option<String>,
    }

    pub(crate) fn run(protocol: Protocol, hide: bool, input: &[u8], cuts: &[usize]) -> Outcome {
        let mut tap = StreamTap::new(protocol, hide);
        run_tap(&mut tap, input, cuts)
    }

    pub(crate) fn run_tap(tap: &mut StreamTap, input: &[u8], cuts: &[usize]) -> Outcome {
        let mut forwarded = Vec::new();
        let mut from = 0;
        for &cut in cuts.iter().chain(std::iter::once(&input.len())) {
            let out = tap.feed(Bytes::copy_from_slice(&input[from..cut]));
            forwarded.extend_from_slice(&out);
            from = cut;
        }
        forwarded.extend_from_slice(&tap.finish());
        Outcome {
            forwarded,
            usage: tap.usage(),
            usage_known: tap.usage_known(),
            first_token: tap.saw_first_token(),
            completed: tap.completed(),
            model: tap.response_model().map(str::to_owned),
            error: tap.stream_error().map(str::to_owned),
            error_code: tap.stream_error_code().map(str::to_owned),
        }
    }

    /// Runs the stream whole, cut once at every position, cut twice (first cut near the middle,
    /// second spread over the rest), and byte by byte; every run must report the same as the
    /// whole run.
    pub(crate) fn run_every_split(protocol: Protocol, hide: bool, input: &[u8]) -> Outcome {
        let whole = run(protocol, hide, input, &[]);
        for cut in 0..=input.len() {
            assert_eq!(
                run(protocol, hide, input, &[cut]),
                whole,
                "one cut at {cut}"
            );
        }
        let mid = input.len() / 2;
        let step = (input.len() / 100).max(7);
        for a in mid.saturating_sub(12)..mid {
            for b in (a..input.len()).step_by(step) {
                assert_eq!(
                    run(protocol, hide, input, &[a, b]),
                    whole,
                    "cuts at {a}, {b}"
                );
            }
        }
        let every: Vec<usize> = (1..input.len()).collect();
        assert_eq!(run(protocol, hide, input, &every), whole, "byte by byte");
        whole
    }

    /// `\n` line ends turned into `\r\n`.
    pub(crate) fn crlf(input: &str) -> String {
        input.replace('\n', "\r\n")
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{crlf, run, run_every_split};
    use super::*;

    #[test]
    fn forwards_the_same_bytes_without_copying() {
        let mut tap = StreamTap::new(Protocol::OpenAiChat, false);
        let chunk =
            Bytes::from_static(b"data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\n");
        let out = tap.feed(chunk.clone());
        assert_eq!(out.as_ptr(), chunk.as_ptr());
        assert_eq!(out.len(), chunk.len());
        assert!(tap.saw_first_token());
        // Even when hiding, a chunk with nothing to hide comes back as is.
        let mut tap = StreamTap::new(Protocol::OpenAiChat, true);
        let out = tap.feed(chunk.clone());
        assert_eq!(out.as_ptr(), chunk.as_ptr());
        assert_eq!(out.len(), chunk.len());
    }

    #[test]
    fn hide_flag_only_applies_to_openai_chat() {
        let input = "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
        let outcome = run(Protocol::Anthropic, true, input.as_bytes(), &[10]);
        assert_eq!(outcome.forwarded, input.as_bytes());
        assert!(outcome.completed);
    }

    #[test]
    fn empty_chunks_and_unknown_events_pass() {
        let mut tap = StreamTap::new(Protocol::Anthropic, false);
        assert!(tap.feed(Bytes::new()).is_empty());
        let input = ": keep-alive\n\nevent: future_event\ndata: {\"type\":\"future_event\"}\n\n";
        let outcome = run_every_split(Protocol::Anthropic, false, crlf(input).as_bytes());
        assert_eq!(outcome.forwarded, crlf(input).as_bytes());
        assert!(!outcome.completed && !outcome.first_token && !outcome.usage_known);
    }

    #[test]
    fn oversized_event_is_forwarded_and_marks_usage_unknown() {
        // The final usage arrives after the oversized event: usage is known again.
        let big = "x".repeat(400);
        let input = format!(
            "event: message_start\ndata: {{\"type\":\"message_start\",\"message\":{{\"model\":\"m\",\"usage\":{{\"input_tokens\":5,\"output_tokens\":1}}}}}}\n\n\
             event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"delta\":{{\"type\":\"text_delta\",\"text\":\"{big}\"}}}}\n\n\
             event: message_delta\ndata: {{\"type\":\"message_delta\",\"usage\":{{\"output_tokens\":9}}}}\n\n"
        );
        // Chunks of 40 bytes: the big event is held piece by piece until it outgrows 180.
        let cuts: Vec<usize> = (40..input.len()).step_by(40).collect();
        let mut tap = StreamTap::with_max_event_len(Protocol::Anthropic, false, 180);
        let outcome = test_support::run_tap(&mut tap, input.as_bytes(), &cuts);
        assert!(tap.overflowed());
        assert_eq!(outcome.forwarded, input.as_bytes());
        assert!(outcome.usage_known);
        assert_eq!(
            outcome.usage,
            Usage {
                input: 5,
                output: 9,
                ..Usage::default()
            }
        );
        // Cut before the message_delta arrives: the oversized event may have held usage.
        let mut tap = StreamTap::with_max_event_len(Protocol::Anthropic, false, 180);
        let end = input.find("event: message_delta").unwrap();
        let cuts: Vec<usize> = cuts.into_iter().filter(|&c| c < end).collect();
        test_support::run_tap(&mut tap, &input.as_bytes()[..end], &cuts);
        assert!(tap.overflowed());
        assert!(!tap.usage_known());
        assert_eq!(tap.usage().input, 5);
    }

    #[test]
    fn oversized_event_while_hiding_is_forwarded_whole() {
        let big = "y".repeat(300);
        let input = format!(
            "data: {{\"model\":\"gpt-4o\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{big}\"}}}}]}}\n\n\
             data: {{\"model\":\"gpt-4o\",\"choices\":[],\"usage\":{{\"prompt_tokens\":3,\"completion_tokens\":4}}}}\n\n\
             data: [DONE]\n\n"
        );
        let usage_event = input
            .find("data: {\"model\":\"gpt-4o\",\"choices\":[]")
            .unwrap();
        let done = input.find("data: [DONE]").unwrap();
        let mut expected = input.as_bytes()[..usage_event].to_vec();
        expected.extend_from_slice(&input.as_bytes()[done..]);
        let every = |n: usize| (n..input.len()).step_by(n).collect::<Vec<_>>();
        for cuts in [every(1), every(30), every(45), vec![50, 120, 200, 300]] {
            let mut tap = StreamTap::with_max_event_len(Protocol::OpenAiChat, true, 100);
            let outcome = test_support::run_tap(&mut tap, input.as_bytes(), &cuts);
            assert_eq!(outcome.forwarded, expected, "cuts {cuts:?}");
            assert!(tap.overflowed());
            assert!(outcome.usage_known);
            assert_eq!(outcome.usage.output, 4);
            assert!(outcome.completed);
        }
    }

    #[test]
    fn unterminated_last_event_is_read_at_finish() {
        let input = b"data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: [DONE]";
        let outcome = run_every_split(Protocol::OpenAiChat, true, input);
        assert!(outcome.completed);
        assert_eq!(outcome.forwarded, input);
    }

    #[test]
    fn error_event_numbers_responses_events() {
        let mut tap = StreamTap::new(Protocol::OpenAiResponses, false);
        tap.feed(Bytes::from_static(
            b"event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"model\":\"gpt-5\"}}\n\n\
              event: response.in_progress\ndata: {\"type\":\"response.in_progress\",\"sequence_number\":1}\n\n",
        ));
        assert_eq!(tap.events_seen(), 2);
        let event = tap.error_event(ErrorKind::Timeout, "upstream stalled");
        let text = std::str::from_utf8(&event).unwrap();
        assert!(text.starts_with("event: error\ndata: "), "{text}");
        let data: serde_json::Value = serde_json::from_str(
            text.trim_end()
                .strip_prefix("event: error\ndata: ")
                .unwrap(),
        )
        .unwrap();
        assert_eq!(data["sequence_number"], 2);
        assert_eq!(data["message"], "upstream stalled");
        assert_eq!(tap.response_model(), Some("gpt-5"));
    }
}

#[cfg(test)]
mod proptests {
    //! Generated streams of each protocol, built from the real wire formats (random text, usage
    //! figures, LF/CRLF, comments, multi-line data) and cut anywhere: the tap reports what the
    //! stream says, the same at every split, and forwards the bytes it was given, minus exactly
    //! the hidden OpenAI usage chunk. Arbitrary and damaged bytes never panic and are also
    //! reported alike at every split.

    use proptest::prelude::*;

    use super::test_support::{Outcome, run};
    use crate::providers::proptest_support::{awkward_text, config, cut_points, cuts_of, line_end};
    use crate::providers::{Protocol, Usage};

    /// How one event is laid out on the wire.
    #[derive(Debug, Clone, Copy)]
    struct Layout {
        end: &'static str,
        multiline: bool,
        comment_before: bool,
        named: bool,
    }

    fn layouts() -> impl Strategy<Value = Vec<Layout>> {
        prop::collection::vec(
            (
                line_end(),
                prop::bool::weighted(0.2),
                prop::bool::weighted(0.15),
                prop::bool::weighted(0.8),
            )
                .prop_map(|(end, multiline, comment_before, named)| Layout {
                    end,
                    multiline,
                    comment_before,
                    named,
                }),
            1..16,
        )
    }

    /// Token counts: usually modest, sometimes near the top of the range.
    fn figure() -> impl Strategy<Value = u64> {
        prop_oneof![9 => 0u64..200_000, 1 => (u64::MAX / 4)..=(u64::MAX / 4 + 1000)]
    }

    fn model() -> impl Strategy<Value = String> {
        "[a-z][a-z0-9.-]{0,24}"
    }

    fn quoted(text: &str) -> String {
        serde_json::to_string(text).unwrap_or_default()
    }

    /// A generated stream: its bytes, where the usage chunk is (to hide), and the facts.
    #[derive(Debug, Clone)]
    struct Stream {
        wire: String,
        usage_chunk: Option<std::ops::Range<usize>>,
        expected: Outcome,
    }

    /// Writes SSE events with the given layouts (cycled).
    struct Writer {
        wire: String,
        layouts: Vec<Layout>,
        next: usize,
    }

    impl Writer {
        fn new(layouts: Vec<Layout>) -> Self {
            Self {
                wire: String::new(),
                layouts,
                next: 0,
            }
        }

        /// Appends one event; returns its byte range.
        fn event(&mut self, name: Option<&str>, json: &str) -> std::ops::Range<usize> {
            let layout = self.layouts[self.next % self.layouts.len()];
            self.next += 1;
            let end = layout.end;
            if layout.comment_before {
                self.wire.push_str(&format!(": keep-alive{end}{end}"));
            }
            let start = self.wire.len();
            if let Some(name) = name.filter(|_| layout.named) {
                self.wire.push_str(&format!("event: {name}{end}"));
            }
            let data = match serde_json::from_str::<serde_json::Value>(json) {
                Ok(value) if layout.multiline => {
                    serde_json::to_string_pretty(&value).unwrap_or_default()
                }
                _ => json.to_owned(),
            };
            for line in data.split('\n') {
                self.wire.push_str(&format!("data: {line}{end}"));
            }
            self.wire.push_str(end);
            start..self.wire.len()
        }
    }

    fn outcome(usage: Option<Usage>, first_token: bool, completed: bool, model: &str) -> Outcome {
        Outcome {
            forwarded: Vec::new(),
            usage: usage.unwrap_or_default(),
            usage_known: usage.is_some(),
            first_token,
            completed,
            model: Some(model.to_owned()),
            error: None,
            error_code: None,
        }
    }

    fn anthropic() -> impl Strategy<Value = Stream> {
        (
            layouts(),
            model(),
            prop::collection::vec(awkward_text(), 0..6),
            [figure(), figure(), figure(), figure()],
            any::<bool>(),
        )
            .prop_map(|(layouts, model, texts, [input, creation, read, output], stop)| {
                let mut w = Writer::new(layouts);
                w.event(
                    Some("message_start"),
                    &format!(
                        r#"{{"type":"message_start","message":{{"id":"msg_01","type":"message","role":"assistant","model":{},"content":[],"stop_reason":null,"usage":{{"input_tokens":{input},"cache_creation_input_tokens":{creation},"cache_read_input_tokens":{read},"output_tokens":1}}}}}}"#,
                        quoted(&model)
                    ),
                );
                w.event(
                    Some("content_block_start"),
                    r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
                );
                w.event(Some("ping"), r#"{"type": "ping"}"#);
                for text in &texts {
                    w.event(
                        Some("content_block_delta"),
                        &format!(
                            r#"{{"type":"content_block_delta","index":0,"delta":{{"type":"text_delta","text":{}}}}}"#,
                            quoted(text)
                        ),
                    );
                }
                w.event(Some("content_block_stop"), r#"{"type":"content_block_stop","index":0}"#);
                w.event(
                    Some("message_delta"),
                    &format!(
                        r#"{{"type":"message_delta","delta":{{"stop_reason":"end_turn","stop_sequence":null}},"usage":{{"output_tokens":{output}}}}}"#
                    ),
                );
                if stop {
                    w.event(Some("message_stop"), r#"{"type":"message_stop"}"#);
                }
                let usage = Usage {
                    input,
                    output,
                    cache_creation: creation,
                    cache_read: read,
                };
                Stream {
                    wire: w.wire,
                    usage_chunk: None,
                    expected: outcome(Some(usage), !texts.is_empty(), stop, &model),
                }
            })
    }

    fn openai_chat() -> impl Strategy<Value = Stream> {
        (
            layouts(),
            model(),
            prop::collection::vec(awkward_text(), 0..6),
            prop::option::of([figure(), figure(), figure()]),
            any::<bool>(),
        )
            .prop_map(|(layouts, model, texts, figures, done)| {
                let mut w = Writer::new(layouts);
                let chunk = |delta: &str, finish: &str| {
                    format!(
                        r#"{{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1741570283,"model":{},"choices":[{{"index":0,"delta":{delta},"logprobs":null,"finish_reason":{finish}}}],"usage":null}}"#,
                        quoted(&model)
                    )
                };
                w.event(None, &chunk(r#"{"role":"assistant","content":"","refusal":null}"#, "null"));
                for text in &texts {
                    w.event(None, &chunk(&format!(r#"{{"content":{}}}"#, quoted(text)), "null"));
                }
                w.event(None, &chunk("{}", r#""stop""#));
                let mut usage_chunk = None;
                let usage = figures.map(|[prompt, cached, completion]| {
                    let cached = cached.min(prompt);
                    usage_chunk = Some(w.event(
                        None,
                        &format!(
                            r#"{{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1741570283,"model":{},"choices":[],"usage":{{"prompt_tokens":{prompt},"completion_tokens":{completion},"total_tokens":0,"prompt_tokens_details":{{"cached_tokens":{cached},"audio_tokens":0}}}}}}"#,
                            quoted(&model)
                        ),
                    ));
                    Usage {
                        input: prompt - cached,
                        output: completion,
                        cache_creation: 0,
                        cache_read: cached,
                    }
                });
                if done {
                    w.wire.push_str("data: [DONE]\n\n");
                }
                Stream {
                    wire: w.wire,
                    usage_chunk,
                    expected: outcome(usage, texts.iter().any(|t| !t.is_empty()), done, &model),
                }
            })
    }

    fn responses() -> impl Strategy<Value = Stream> {
        (
            layouts(),
            model(),
            prop::collection::vec(awkward_text(), 0..6),
            [figure(), figure(), figure()],
            prop::sample::select(vec!["", "response.completed", "response.incomplete"]),
        )
            .prop_map(|(layouts, model, texts, [input, cached, output], end)| {
                let mut w = Writer::new(layouts);
                let mut seq = 0;
                let mut next = || {
                    seq += 1;
                    seq - 1
                };
                for kind in ["response.created", "response.in_progress"] {
                    w.event(
                        Some(kind),
                        &format!(
                            r#"{{"type":"{kind}","sequence_number":{},"response":{{"id":"resp_1","object":"response","status":"in_progress","model":{},"output":[],"usage":null}}}}"#,
                            next(),
                            quoted(&model)
                        ),
                    );
                }
                for text in &texts {
                    w.event(
                        Some("response.output_text.delta"),
                        &format!(
                            r#"{{"type":"response.output_text.delta","sequence_number":{},"item_id":"msg_1","output_index":0,"content_index":0,"delta":{}}}"#,
                            next(),
                            quoted(text)
                        ),
                    );
                }
                let cached = cached.min(input);
                let usage = (!end.is_empty()).then(|| {
                    w.event(
                        Some(end),
                        &format!(
                            r#"{{"type":"{end}","sequence_number":{},"response":{{"id":"resp_1","object":"response","status":"completed","model":{},"output":[],"usage":{{"input_tokens":{input},"input_tokens_details":{{"cached_tokens":{cached}}},"output_tokens":{output},"output_tokens_details":{{"reasoning_tokens":0}},"total_tokens":0}}}}}}"#,
                            next(),
                            quoted(&model)
                        ),
                    );
                    Usage {
                        input: input - cached,
                        output,
                        cache_creation: 0,
                        cache_read: cached,
                    }
                });
                Stream {
                    wire: w.wire,
                    usage_chunk: None,
                    expected: outcome(usage, !texts.is_empty(), usage.is_some(), &model),
                }
            })
    }

    fn gemini() -> impl Strategy<Value = Stream> {
        (
            layouts(),
            model(),
            prop::collection::vec((awkward_text(), figure()), 1..6),
            [figure(), figure(), figure()],
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(|(layouts, model, chunks, [prompt, cached, thoughts], finish, array)| {
                let cached = cached.min(prompt);
                let separator = layouts[0].end;
                let mut w = Writer::new(layouts);
                let last = chunks.len() - 1;
                let mut array_wire = String::from("[");
                for (i, (text, candidates)) in chunks.iter().enumerate() {
                    let finish = if i == last && finish { r#","finishReason":"STOP""# } else { "" };
                    let json = format!(
                        r#"{{"candidates":[{{"content":{{"parts":[{{"text":{}}}],"role":"model"}}{finish},"index":0}}],"usageMetadata":{{"promptTokenCount":{prompt},"candidatesTokenCount":{candidates},"cachedContentTokenCount":{cached},"thoughtsTokenCount":{thoughts}}},"modelVersion":{},"responseId":"r1"}}"#,
                        quoted(text),
                        quoted(&model)
                    );
                    if i > 0 {
                        array_wire.push_str(&format!(",{separator}"));
                    }
                    array_wire.push_str(&json);
                    w.event(None, &json);
                }
                array_wire.push(']');
                let usage = Usage {
                    input: prompt - cached,
                    output: chunks[last].1.saturating_add(thoughts),
                    cache_creation: 0,
                    cache_read: cached,
                };
                Stream {
                    wire: if array { array_wire } else { w.wire },
                    usage_chunk: None,
                    expected: outcome(Some(usage), true, finish, &model),
                }
            })
    }

    fn protocol() -> impl Strategy<Value = Protocol> {
        prop::sample::select(vec![
            Protocol::Anthropic,
            Protocol::OpenAiChat,
            Protocol::OpenAiResponses,
            Protocol::Gemini,
        ])
    }

    fn any_stream() -> impl Strategy<Value = (Protocol, Stream)> {
        prop_oneof![
            anthropic().prop_map(|s| (Protocol::Anthropic, s)),
            openai_chat().prop_map(|s| (Protocol::OpenAiChat, s)),
            responses().prop_map(|s| (Protocol::OpenAiResponses, s)),
            gemini().prop_map(|s| (Protocol::Gemini, s)),
        ]
    }

    /// Checks one generated stream at one split, with and without hiding.
    fn check(protocol: Protocol, stream: &Stream, fractions: &[f64]) -> Result<(), TestCaseError> {
        let input = stream.wire.as_bytes();
        let cuts = cuts_of(fractions, input.len());
        for hide in [false, true] {
            let whole = run(protocol, hide, input, &[]);
            let split = run(protocol, hide, input, &cuts);
            prop_assert_eq!(&split, &whole, "hide {}, cuts {:?}", hide, cuts);
            let mut expected = stream.expected.clone();
            expected.forwarded = match &stream.usage_chunk {
                Some(range) if hide && protocol == Protocol::OpenAiChat => {
                    [&input[..range.start], &input[range.end..]].concat()
                }
                _ => input.to_vec(),
            };
            prop_assert_eq!(whole, expected, "hide {}", hide);
        }
        Ok(())
    }

    /// Up to a few bytes replaced: broken JSON, broken framing.
    fn damage(wire: &[u8], edits: &[(f64, u8)]) -> Vec<u8> {
        let mut bytes = wire.to_vec();
        for &(at, byte) in edits {
            if bytes.is_empty() {
                break;
            }
            let i = ((bytes.len() as f64) * at) as usize % bytes.len();
            bytes[i] = byte;
        }
        bytes
    }

    proptest! {
        #![proptest_config(config(128))]

        #[test]
        fn anthropic_streams_at_any_split(stream in anthropic(), fractions in cut_points()) {
            check(Protocol::Anthropic, &stream, &fractions)?;
        }

        #[test]
        fn openai_chat_streams_at_any_split(stream in openai_chat(), fractions in cut_points()) {
            check(Protocol::OpenAiChat, &stream, &fractions)?;
        }

        #[test]
        fn responses_streams_at_any_split(stream in responses(), fractions in cut_points()) {
            check(Protocol::OpenAiResponses, &stream, &fractions)?;
        }

        #[test]
        fn gemini_streams_at_any_split(stream in gemini(), fractions in cut_points()) {
            check(Protocol::Gemini, &stream, &fractions)?;
        }

        #[test]
        fn damaged_streams_report_alike_at_any_split(
            (protocol, stream) in any_stream(),
            edits in prop::collection::vec(
                (0.0..1.0f64, prop::sample::select(b"\n\r\"{}[]:,\\ x0".to_vec())),
                1..6,
            ),
            fractions in cut_points(),
        ) {
            let input = damage(stream.wire.as_bytes(), &edits);
            let cuts = cuts_of(&fractions, input.len());
            for hide in [false, true] {
                let whole = run(protocol, hide, &input, &[]);
                prop_assert_eq!(run(protocol, hide, &input, &cuts), whole.clone());
                if !hide {
                    prop_assert_eq!(whole.forwarded, input.clone());
                }
            }
        }

        #[test]
        fn arbitrary_bytes_report_alike_at_any_split(
            protocol in protocol(),
            input in prop::collection::vec(
                prop_oneof![
                    4 => any::<u8>(),
                    2 => prop::sample::select(b"\n\r{}[]\":,".to_vec()),
                ],
                0..400,
            ),
            fractions in cut_points(),
        ) {
            let cuts = cuts_of(&fractions, input.len());
            for hide in [false, true] {
                let whole = run(protocol, hide, &input, &[]);
                prop_assert_eq!(run(protocol, hide, &input, &cuts), whole.clone());
                if !hide || protocol != Protocol::OpenAiChat {
                    prop_assert_eq!(whole.forwarded, input.clone());
                }
            }
        }
    }
}
