//! Incremental framing of event streams: Server-Sent Events (events end at a blank line, lines
//! end with `\n` or `\r\n`) and, for Gemini without `alt=sse`, a streamed JSON array of objects.
//!
//! Both splitters take chunks as they arrive, in whatever pieces the network delivers, and hand
//! out each complete event. An event lying wholly inside one chunk is handed out as a slice of
//! that chunk (no copy); only the part of an event that spans chunks is buffered, and that buffer
//! is bounded: an event larger than the limit is skipped (reported without its bytes) and
//! framing resumes at the next event.

use std::borrow::Cow;

use memchr::memchr_iter;

/// Largest event kept for parsing (4 MiB); larger ones are passed through unparsed.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 4 * 1024 * 1024;

/// A buffer that grew past this for one large event is released afterwards rather than kept
/// for the rest of the stream.
const KEEP_BUFFER_BYTES: usize = 64 * 1024;

/// Empties a buffer, releasing it when one large event made it big.
fn reset(buffer: &mut Vec<u8>) {
    if buffer.capacity() > KEEP_BUFFER_BYTES {
        *buffer = Vec::new();
    } else {
        buffer.clear();
    }
}

/// One complete event as found by a splitter.
pub(crate) struct RawEvent<'a> {
    /// The whole event, terminator included; `None` when it outgrew the buffer limit.
    pub bytes: Option<&'a [u8]>,
    /// Where the event's part in the current chunk starts and ends.
    pub start: usize,
    pub end: usize,
    /// The event began in an earlier chunk.
    pub carried: bool,
}

/// What is left at the end of a chunk.
pub(crate) struct ChunkEnd {
    /// `chunk[tail_start..]` belongs to an event that is not complete yet.
    pub tail_start: usize,
    /// Bytes of that incomplete event from earlier chunks, released because the event outgrew
    /// the limit (a caller that holds incomplete events back must forward them now).
    pub released: Option<Vec<u8>>,
    /// The incomplete event is being skipped (it outgrew the limit): its bytes are not kept.
    pub skipping: bool,
}

/// Splits an SSE byte stream into events. See the module docs.
#[derive(Debug)]
pub(crate) struct Splitter {
    /// Bytes of the current incomplete event from earlier chunks (empty while skipping).
    partial: Vec<u8>,
    /// Some bytes of the current event came in earlier chunks.
    in_event: bool,
    /// The current event outgrew `max` and is being skipped.
    skipping: bool,
    /// The current line, so far, is blank (nothing or only `\r`).
    line_blank: bool,
    max: usize,
}

impl Splitter {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            partial: Vec::new(),
            in_event: false,
            skipping: false,
            line_blank: true,
            max,
        }
    }

    /// Frames `chunk`, calling `on_event` for each event it completes, in order.
    pub(crate) fn split(
        &mut self,
        chunk: &[u8],
        mut on_event: impl FnMut(RawEvent<'_>),
    ) -> ChunkEnd {
        let mut event_start = 0;
        let mut line_start = 0;
        for newline in memchr_iter(b'\n', chunk) {
            let blank = self.line_blank && chunk[line_start..newline].iter().all(|&b| b == b'\r');
            line_start = newline + 1;
            self.line_blank = true;
            if !blank {
                continue;
            }
            let end = newline + 1;
            if self.skipping {
                on_event(RawEvent {
                    bytes: None,
                    start: event_start,
                    end,
                    carried: true,
                });
                self.skipping = false;
            } else if self.in_event {
                self.partial.extend_from_slice(&chunk[event_start..end]);
                on_event(RawEvent {
                    bytes: Some(&self.partial),
                    start: event_start,
                    end,
                    carried: true,
                });
                reset(&mut self.partial);
            } else {
                on_event(RawEvent {
                    bytes: Some(&chunk[event_start..end]),
                    start: event_start,
                    end,
                    carried: false,
                });
            }
            self.in_event = false;
            event_start = end;
        }
        let rest = &chunk[line_start..];
        self.line_blank = self.line_blank && rest.iter().all(|&b| b == b'\r');

        let tail = &chunk[event_start..];
        let mut released = None;
        if !tail.is_empty() {
            self.in_event = true;
            if !self.skipping {
                if self.partial.len() + tail.len() > self.max {
                    self.skipping = true;
                    released = Some(std::mem::take(&mut self.partial));
                } else {
                    self.partial.extend_from_slice(tail);
                }
            }
        }
        ChunkEnd {
            tail_start: event_start,
            released,
            skipping: self.skipping,
        }
    }

    /// At the end of the stream: the bytes of an unterminated last event, if any were kept.
    pub(crate) fn finish(&mut self) -> Option<Vec<u8>> {
        let kept = std::mem::take(&mut self.partial);
        let skipped = self.skipping;
        self.in_event = false;
        self.skipping = false;
        self.line_blank = true;
        (!skipped && !kept.is_empty()).then_some(kept)
    }
}

/// The fields of one SSE event that matter here.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Fields<'a> {
    /// The `event:` name, if any.
    pub event: Option<&'a [u8]>,
    /// The `data:` lines joined with `\n` (borrowed when there is one line).
    pub data: Cow<'a, [u8]>,
    /// At least one `data:` line was present.
    pub has_data: bool,
}

/// Reads `event:` and `data:` out of a raw event. Comment lines (`:…`), `id:` and `retry:` are
/// ignored; one space after the colon is stripped, as the SSE spec says.
pub(crate) fn fields(raw: &[u8]) -> Fields<'_> {
    let raw = raw.strip_prefix("\u{feff}".as_bytes()).unwrap_or(raw);
    let mut event = None;
    let mut data: Option<Cow<'_, [u8]>> = None;
    let mut line_start = 0;
    let ends = memchr_iter(b'\n', raw).chain(std::iter::once(raw.len()));
    for end in ends {
        if line_start > raw.len() {
            break;
        }
        let line = &raw[line_start..end];
        line_start = end + 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some(value) = line.strip_prefix(b"data:") {
            let value = value.strip_prefix(b" ").unwrap_or(value);
            data = Some(match data {
                None => Cow::Borrowed(value),
                Some(previous) => {
                    let mut joined = previous.into_owned();
                    joined.push(b'\n');
                    joined.extend_from_slice(value);
                    Cow::Owned(joined)
                }
            });
        } else if let Some(value) = line.strip_prefix(b"event:") {
            event = Some(value.strip_prefix(b" ").unwrap_or(value));
        }
    }
    let has_data = data.is_some();
    Fields {
        event,
        data: data.unwrap_or(Cow::Borrowed(&[])),
        has_data,
    }
}

/// One parsed SSE event, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` name, if the event has one.
    pub event: Option<String>,
    /// The `data:` lines joined with `\n` (empty when there were none).
    pub data: String,
    /// Length of the event on the wire, its terminating blank line included.
    pub raw_len: usize,
}

/// Incremental SSE parser: feed byte chunks in any split (events may span chunks, lines may end
/// in `\n` or `\r\n`, a separator may be cut in the middle), get complete events back.
///
/// Every framed event is returned, comment-only ones too (with no name and empty data), so the
/// `raw_len`s add up to the bytes consumed. An event larger than the limit is dropped and
/// counted in [`SseParser::dropped`].
#[derive(Debug)]
pub struct SseParser {
    splitter: Splitter,
    dropped: usize,
}

impl Default for SseParser {
    fn default() -> Self {
        Self::new()
    }
}

impl SseParser {
    /// A parser that keeps events up to [`DEFAULT_MAX_EVENT_BYTES`].
    #[must_use]
    pub fn new() -> Self {
        Self::with_max_event_len(DEFAULT_MAX_EVENT_BYTES)
    }

    /// A parser that keeps events up to `max` bytes.
    #[must_use]
    pub fn with_max_event_len(max: usize) -> Self {
        Self {
            splitter: Splitter::new(max),
            dropped: 0,
        }
    }

    /// Feeds the next chunk; returns the events it completes, in order.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        let mut events = Vec::new();
        let dropped = &mut self.dropped;
        self.splitter.split(chunk, |raw| match raw.bytes {
            Some(bytes) => events.push(owned_event(bytes)),
            None => *dropped += 1,
        });
        events
    }

    /// At the end of the stream: the last event if it was not terminated by a blank line.
    pub fn finish(&mut self) -> Option<SseEvent> {
        self.splitter.finish().map(|bytes| owned_event(&bytes))
    }

    /// How many events were dropped for being larger than the limit.
    #[must_use]
    pub fn dropped(&self) -> usize {
        self.dropped
    }
}

fn owned_event(raw: &[u8]) -> SseEvent {
    let f = fields(raw);
    SseEvent {
        event: f.event.map(|e| String::from_utf8_lossy(e).into_owned()),
        data: String::from_utf8_lossy(&f.data).into_owned(),
        raw_len: raw.len(),
    }
}

/// Splits a streamed JSON array (`[{…},\r\n{…}]`, Gemini's `:streamGenerateContent` without
/// `alt=sse`) into its top-level objects. The same contract as [`Splitter`]; the bytes between
/// objects (`[`, `,`, `]`, whitespace) belong to no event.
#[derive(Debug)]
pub(crate) struct ArraySplitter {
    partial: Vec<u8>,
    in_object: bool,
    skipping: bool,
    depth: usize,
    in_string: bool,
    escaped: bool,
    max: usize,
}

impl ArraySplitter {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            partial: Vec::new(),
            in_object: false,
            skipping: false,
            depth: 0,
            in_string: false,
            escaped: false,
            max,
        }
    }

    /// Frames `chunk`, calling `on_event` with each top-level array element it completes.
    pub(crate) fn split(&mut self, chunk: &[u8], mut on_event: impl FnMut(RawEvent<'_>)) {
        // Start of the current element within this chunk (0 when it began earlier).
        let mut start = 0;
        for (i, &b) in chunk.iter().enumerate() {
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if b == b'\\' {
                    self.escaped = true;
                } else if b == b'"' {
                    self.in_string = false;
                }
                continue;
            }
            match b {
                b'"' => self.in_string = true,
                b'{' | b'[' => {
                    self.depth += 1;
                    // depth 1 is the outer array; an element starts at depth 2.
                    if self.depth == 2 {
                        self.in_object = true;
                        start = i;
                    }
                }
                b'}' | b']' => {
                    self.depth = self.depth.saturating_sub(1);
                    if self.depth == 1 && self.in_object {
                        let end = i + 1;
                        let carried = !self.partial.is_empty() || self.skipping;
                        if self.skipping {
                            on_event(RawEvent {
                                bytes: None,
                                start,
                                end,
                                carried,
                            });
                        } else if carried {
                            self.partial.extend_from_slice(&chunk[start..end]);
                            on_event(RawEvent {
                                bytes: Some(&self.partial),
                                start,
                                end,
                                carried,
                            });
                            reset(&mut self.partial);
                        } else {
                            on_event(RawEvent {
                                bytes: Some(&chunk[start..end]),
                                start,
                                end,
                                carried,
                            });
                        }
                        self.in_object = false;
                        self.skipping = false;
                    }
                }
                _ => {}
            }
        }
        if self.in_object && !self.skipping {
            let tail = &chunk[start..];
            if self.partial.len() + tail.len() > self.max {
                self.skipping = true;
                self.partial = Vec::new();
            } else {
                self.partial.extend_from_slice(tail);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame_all(input: &[u8], cuts: &[usize], max: usize) -> (Vec<Vec<u8>>, usize) {
        let mut splitter = Splitter::new(max);
        let mut events = Vec::new();
        let mut skipped = 0;
        let mut from = 0;
        for &cut in cuts.iter().chain(std::iter::once(&input.len())) {
            splitter.split(&input[from..cut], |e| match e.bytes {
                Some(b) => events.push(b.to_vec()),
                None => skipped += 1,
            });
            from = cut;
        }
        if let Some(last) = splitter.finish() {
            events.push(last);
        }
        (events, skipped)
    }

    const STREAM: &str = "event: a\ndata: {\"x\":1}\n\n: keep-alive\n\ndata: one\ndata: two\n\n\
                          event: b\r\ndata: {\"y\":2}\r\n\r\ndata: [DONE]\n\n";

    fn expected() -> Vec<Vec<u8>> {
        [
            "event: a\ndata: {\"x\":1}\n\n",
            ": keep-alive\n\n",
            "data: one\ndata: two\n\n",
            "event: b\r\ndata: {\"y\":2}\r\n\r\n",
            "data: [DONE]\n\n",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect()
    }

    #[test]
    fn splits_whole_stream() {
        let (events, skipped) = frame_all(STREAM.as_bytes(), &[], DEFAULT_MAX_EVENT_BYTES);
        assert_eq!(events, expected());
        assert_eq!(skipped, 0);
    }

    #[test]
    fn splits_identically_at_every_cut() {
        let input = STREAM.as_bytes();
        for cut in 0..=input.len() {
            let (events, _) = frame_all(input, &[cut], DEFAULT_MAX_EVENT_BYTES);
            assert_eq!(events, expected(), "cut at {cut}");
        }
        // And byte by byte.
        let cuts: Vec<usize> = (1..input.len()).collect();
        assert_eq!(
            frame_all(input, &cuts, DEFAULT_MAX_EVENT_BYTES).0,
            expected()
        );
    }

    #[test]
    fn crlf_separator_cut_in_the_middle() {
        let input = b"data: a\r\n\r\ndata: b\r\n\r\n";
        for cut in [8, 9, 10, 11] {
            let (events, _) = frame_all(input, &[cut], 1024);
            assert_eq!(
                events,
                vec![b"data: a\r\n\r\n".to_vec(), b"data: b\r\n\r\n".to_vec()],
                "cut at {cut}"
            );
        }
        // `\r` then `\n` in the next chunk ends the line, not the event.
        let (events, _) = frame_all(b"data: a\r\ndata: b\r\n\r\n", &[8], 1024);
        assert_eq!(events, vec![b"data: a\r\ndata: b\r\n\r\n".to_vec()]);
    }

    #[test]
    fn events_inside_one_chunk_are_not_copied() {
        let mut splitter = Splitter::new(1024);
        let chunk = b"data: 1\n\ndata: 2\n\ndata: 3";
        let mut seen = Vec::new();
        let end = splitter.split(chunk, |e| {
            assert!(!e.carried);
            let bytes = e.bytes.unwrap();
            assert!(std::ptr::eq(bytes.as_ptr(), chunk[e.start..].as_ptr()));
            seen.push((e.start, e.end));
        });
        assert_eq!(seen, vec![(0, 9), (9, 18)]);
        assert_eq!(end.tail_start, 18);
        let mut carried = Vec::new();
        splitter.split(b"\n\n", |e| {
            carried.push((e.carried, e.bytes.unwrap().to_vec()))
        });
        assert_eq!(carried, vec![(true, b"data: 3\n\n".to_vec())]);
    }

    #[test]
    fn oversized_event_is_skipped_and_framing_resumes() {
        let big = format!("data: {}\n\n", "x".repeat(100));
        let input = format!("data: small\n\n{big}data: after\n\n");
        let bytes = input.as_bytes();
        for first in [15, 20, 40] {
            // Held back piece by piece until more than 64 bytes of it are waiting.
            let cuts: Vec<usize> = (first..first + 100).step_by(10).collect();
            let (events, skipped) = frame_all(bytes, &cuts, 64);
            assert_eq!(skipped, 1, "cuts from {first}");
            assert_eq!(
                events,
                vec![b"data: small\n\n".to_vec(), b"data: after\n\n".to_vec()]
            );
        }
        // Inside one chunk nothing is buffered, so nothing outgrows the limit.
        let (events, skipped) = frame_all(bytes, &[], 64);
        assert_eq!((events.len(), skipped), (3, 0));
    }

    #[test]
    fn releases_held_bytes_when_an_event_outgrows_the_limit() {
        let mut splitter = Splitter::new(10);
        let end = splitter.split(b"data: 12", |_| panic!("no event yet"));
        assert!(end.released.is_none());
        let end = splitter.split(b"345678", |_| panic!("no event yet"));
        assert_eq!(end.released.as_deref(), Some(&b"data: 12"[..]));
        assert!(end.skipping);
        let mut skipped = 0;
        let end = splitter.split(b"\n\ndata: z\n\n", |e| {
            if e.bytes.is_none() {
                skipped += 1;
                assert_eq!((e.start, e.end), (0, 2));
            }
        });
        assert_eq!(skipped, 1);
        assert!(!end.skipping);
    }

    #[test]
    fn fields_of_an_event() {
        let f = fields(b"event: message_start\r\ndata: {\"a\":1}\r\n\r\n");
        assert_eq!(f.event, Some(&b"message_start"[..]));
        assert_eq!(&*f.data, b"{\"a\":1}");
        assert!(matches!(f.data, Cow::Borrowed(_)));
        let f = fields(b"data:one\ndata:  two\nid: 7\nretry: 10\n: note\n\n");
        assert_eq!(f.event, None);
        assert_eq!(&*f.data, b"one\n two");
        let f = fields(b": comment only\n\n");
        assert!(!f.has_data);
        assert!(f.data.is_empty());
        let f = fields("\u{feff}event: x\ndata: y".as_bytes());
        assert_eq!((f.event, &*f.data), (Some(&b"x"[..]), &b"y"[..]));
    }

    #[test]
    fn public_parser_owned_events() {
        let mut parser = SseParser::new();
        let mut events = parser.feed(b"event: ping\ndata: {}\n\nda");
        events.extend(parser.feed(b"ta: [DONE]\r\n\r\ndata: tail"));
        assert_eq!(
            events,
            vec![
                SseEvent {
                    event: Some("ping".into()),
                    data: "{}".into(),
                    raw_len: 22
                },
                SseEvent {
                    event: None,
                    data: "[DONE]".into(),
                    raw_len: 16
                },
            ]
        );
        assert_eq!(
            parser.finish(),
            Some(SseEvent {
                event: None,
                data: "tail".into(),
                raw_len: 10
            })
        );
        assert_eq!(parser.finish(), None);
        let mut small = SseParser::with_max_event_len(4);
        assert!(small.feed(b"data: long").is_empty());
        assert_eq!(small.feed(b" event\n\ndata: 1\n\n").len(), 1);
        assert_eq!(small.dropped(), 1);
    }

    fn array_elements(input: &[u8], cuts: &[usize], max: usize) -> (Vec<Vec<u8>>, usize) {
        let mut splitter = ArraySplitter::new(max);
        let mut events = Vec::new();
        let mut skipped = 0;
        let mut from = 0;
        for &cut in cuts.iter().chain(std::iter::once(&input.len())) {
            splitter.split(&input[from..cut], |e| match e.bytes {
                Some(b) => events.push(b.to_vec()),
                None => skipped += 1,
            });
            from = cut;
        }
        (events, skipped)
    }

    #[test]
    fn json_array_elements_at_every_cut() {
        let input = b"[{\"a\":\"}{[\\\"\",\"b\":[1,{\"c\":2}]}\r\n,\r\n{\"d\":\"x\"}]";
        let want = vec![
            b"{\"a\":\"}{[\\\"\",\"b\":[1,{\"c\":2}]}".to_vec(),
            b"{\"d\":\"x\"}".to_vec(),
        ];
        for cut in 0..=input.len() {
            assert_eq!(
                array_elements(input, &[cut], 1024),
                (want.clone(), 0),
                "cut at {cut}"
            );
        }
        let cuts: Vec<usize> = (1..input.len()).collect();
        assert_eq!(array_elements(input, &cuts, 1024).0, want);
        // Too large when buffered across chunks: skipped, the next element still framed.
        assert_eq!(
            array_elements(input, &[10], 8),
            (vec![b"{\"d\":\"x\"}".to_vec()], 1)
        );
    }
}

#[cfg(test)]
mod proptests {
    //! Any split of the bytes frames the same events as the whole; generated streams parse back
    //! to what was generated; arbitrary bytes never panic and are all accounted for.

    use proptest::prelude::*;

    use super::*;
    use crate::providers::proptest_support::{
        awkward_text, config, cut_points, cuts_of, json_value, line_end,
    };

    /// One generated SSE event and what a parser must read from it.
    #[derive(Debug, Clone)]
    struct Generated {
        wire: String,
        event: Option<String>,
        data: String,
    }

    /// A field value: no line breaks (those end the line).
    fn value() -> impl Strategy<Value = String> {
        awkward_text().prop_map(|t| t.replace(['\r', '\n'], " "))
    }

    #[derive(Debug, Clone)]
    enum Line {
        Event(String),
        Data(String),
        Comment(String),
        Id(String),
        Retry(u32),
    }

    fn line() -> impl Strategy<Value = Line> {
        prop_oneof![
            1 => "[a-z_.]{1,20}".prop_map(Line::Event),
            4 => value().prop_map(Line::Data),
            1 => value().prop_map(Line::Comment),
            1 => "[0-9a-f]{0,8}".prop_map(Line::Id),
            1 => any::<u32>().prop_map(Line::Retry),
        ]
    }

    fn event() -> impl Strategy<Value = Generated> {
        prop::collection::vec((line(), line_end()), 0..6).prop_flat_map(|lines| {
            line_end().prop_map(move |terminator| {
                let mut wire = String::new();
                let mut event = None;
                let mut data: Option<String> = None;
                for (line, end) in &lines {
                    match line {
                        Line::Event(name) => {
                            wire.push_str(&format!("event: {name}"));
                            event = Some(name.clone());
                        }
                        Line::Data(value) => {
                            wire.push_str(&format!("data: {value}"));
                            data = Some(match data.take() {
                                None => value.clone(),
                                Some(before) => format!("{before}\n{value}"),
                            });
                        }
                        Line::Comment(text) => wire.push_str(&format!(":{text}")),
                        Line::Id(id) => wire.push_str(&format!("id: {id}")),
                        Line::Retry(ms) => wire.push_str(&format!("retry: {ms}")),
                    }
                    wire.push_str(end);
                }
                wire.push_str(terminator);
                Generated {
                    wire,
                    event: event.clone(),
                    data: data.clone().unwrap_or_default(),
                }
            })
        })
    }

    fn stream() -> impl Strategy<Value = Vec<Generated>> {
        prop::collection::vec(event(), 0..12)
    }

    fn expected(events: &[Generated]) -> Vec<SseEvent> {
        events
            .iter()
            .map(|e| SseEvent {
                event: e.event.clone(),
                data: e.data.clone(),
                raw_len: e.wire.len(),
            })
            .collect()
    }

    fn parse(input: &[u8], cuts: &[usize]) -> (Vec<SseEvent>, Option<SseEvent>) {
        let mut parser = SseParser::new();
        let mut events = Vec::new();
        let mut from = 0;
        for &cut in cuts.iter().chain(std::iter::once(&input.len())) {
            events.extend(parser.feed(&input[from..cut]));
            from = cut;
        }
        (events, parser.finish())
    }

    /// Raw events (`None` = skipped for size) and the unterminated rest.
    fn frame(input: &[u8], cuts: &[usize], max: usize) -> (Vec<Option<Vec<u8>>>, Option<Vec<u8>>) {
        let mut splitter = Splitter::new(max);
        let mut events = Vec::new();
        let mut from = 0;
        for &cut in cuts.iter().chain(std::iter::once(&input.len())) {
            splitter.split(&input[from..cut], |e| {
                events.push(e.bytes.map(<[u8]>::to_vec))
            });
            from = cut;
        }
        (events, splitter.finish())
    }

    fn array_elements(input: &[u8], cuts: &[usize], max: usize) -> Vec<Option<Vec<u8>>> {
        let mut splitter = ArraySplitter::new(max);
        let mut events = Vec::new();
        let mut from = 0;
        for &cut in cuts.iter().chain(std::iter::once(&input.len())) {
            splitter.split(&input[from..cut], |e| {
                events.push(e.bytes.map(<[u8]>::to_vec))
            });
            from = cut;
        }
        events
    }

    proptest! {
        #![proptest_config(config(256))]

        #[test]
        fn generated_streams_parse_back_at_any_split(
            events in stream(),
            fractions in cut_points(),
        ) {
            let input: String = events.iter().map(|e| e.wire.as_str()).collect();
            let cuts = cuts_of(&fractions, input.len());
            let (parsed, rest) = parse(input.as_bytes(), &cuts);
            prop_assert_eq!(parsed, expected(&events));
            prop_assert_eq!(rest, None);
        }

        #[test]
        fn unterminated_last_event_is_read_at_finish(
            mut events in prop::collection::vec(event(), 1..6),
            fractions in cut_points(),
        ) {
            // Drop the last event's blank line: only `finish` can hand it out.
            let last = events.pop().unwrap_or_else(|| unreachable!());
            let terminator = if last.wire.ends_with("\r\n") { 2 } else { 1 };
            let body = &last.wire[..last.wire.len() - terminator];
            prop_assume!(!body.is_empty());
            let mut input: String = events.iter().map(|e| e.wire.as_str()).collect();
            input.push_str(body);
            let cuts = cuts_of(&fractions, input.len());
            let (parsed, rest) = parse(input.as_bytes(), &cuts);
            prop_assert_eq!(parsed, expected(&events));
            let rest = rest.expect("the unterminated event");
            prop_assert_eq!(rest.event, last.event);
            prop_assert_eq!(rest.data, last.data);
            prop_assert_eq!(rest.raw_len, body.len());
        }

        #[test]
        fn arbitrary_bytes_are_framed_whole_and_alike_at_any_split(
            input in prop::collection::vec(
                prop_oneof![4 => any::<u8>(), 2 => Just(b'\n'), 1 => Just(b'\r')],
                0..400,
            ),
            fractions in cut_points(),
        ) {
            let whole = frame(&input, &[], DEFAULT_MAX_EVENT_BYTES);
            let cut = frame(&input, &cuts_of(&fractions, input.len()), DEFAULT_MAX_EVENT_BYTES);
            prop_assert_eq!(&cut, &whole);
            // Every byte belongs to exactly one event, in order.
            let (events, rest) = whole;
            let mut joined: Vec<u8> = events.into_iter().map(Option::unwrap_or_default).collect::<Vec<_>>().concat();
            joined.extend(rest.unwrap_or_default());
            prop_assert_eq!(joined, input.clone());
            // The public parser accounts for the same bytes.
            let (parsed, rest) = parse(&input, &cuts_of(&fractions, input.len()));
            let total: usize = parsed.iter().chain(rest.iter()).map(|e| e.raw_len).sum();
            prop_assert_eq!(total, input.len());
        }

        #[test]
        fn a_size_limit_skips_events_but_never_shifts_them(
            events in stream(),
            fractions in cut_points(),
            max in 1usize..64,
        ) {
            let input: String = events.iter().map(|e| e.wire.as_str()).collect();
            let (whole, _) = frame(input.as_bytes(), &[], DEFAULT_MAX_EVENT_BYTES);
            let (cut, _) = frame(input.as_bytes(), &cuts_of(&fractions, input.len()), max);
            prop_assert_eq!(cut.len(), whole.len());
            for (got, want) in cut.iter().zip(&whole) {
                if let Some(got) = got {
                    prop_assert_eq!(Some(got), want.as_ref());
                }
            }
        }

        #[test]
        fn json_array_elements_at_any_split(
            elements in prop::collection::vec(
                prop::collection::btree_map("[a-z]{1,8}", json_value(), 0..4),
                0..6,
            ),
            separators in prop::collection::vec(prop_oneof![Just(","), Just(",\r\n"), Just("\n,\n"), Just(" , ")], 6),
            fractions in cut_points(),
        ) {
            let texts: Vec<String> = elements
                .iter()
                .map(|m| serde_json::to_string(m).unwrap_or_default())
                .collect();
            let mut input = String::from("[");
            for (i, text) in texts.iter().enumerate() {
                if i > 0 {
                    input.push_str(separators[i % separators.len()]);
                }
                input.push_str(text);
            }
            input.push(']');
            let cuts = cuts_of(&fractions, input.len());
            let got = array_elements(input.as_bytes(), &cuts, DEFAULT_MAX_EVENT_BYTES);
            let want: Vec<Option<Vec<u8>>> = texts.into_iter().map(|t| Some(t.into_bytes())).collect();
            prop_assert_eq!(got, want);
        }

        #[test]
        fn json_array_arbitrary_bytes_alike_at_any_split(
            input in prop::collection::vec(
                prop_oneof![3 => any::<u8>(), 1 => prop::sample::select(b"[]{}\",\\".to_vec())],
                0..400,
            ),
            fractions in cut_points(),
        ) {
            let whole = array_elements(&input, &[], DEFAULT_MAX_EVENT_BYTES);
            let cut = array_elements(&input, &cuts_of(&fractions, input.len()), DEFAULT_MAX_EVENT_BYTES);
            prop_assert_eq!(cut, whole);
        }

        #[test]
        fn fields_of_arbitrary_bytes_never_panic(raw in prop::collection::vec(any::<u8>(), 0..200)) {
            let f = fields(&raw);
            if f.has_data {
                prop_assert!(raw.windows(5).any(|w| w == b"data:"));
            } else {
                prop_assert!(f.data.is_empty());
            }
        }
    }
}
