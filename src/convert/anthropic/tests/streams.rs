//! Streams: the fixtures decoded event by event, the encoder's bytes as the SDK accumulates
//! them, decoder ∘ encoder round trips, and every cut of every fixture.

use serde_json::{Value, json};

use super::json_of;
use crate::convert::anthropic::{Decoder, Encoder};
use crate::convert::ir::{Block, Delta, Event, StopReason, Usage};
use crate::convert::{StreamConverter, StreamDecoder, StreamEncoder, StreamOptions};
use crate::providers::{ErrorKind, Protocol, SseParser};

const STREAM_TEXT: &str = include_str!("../../../../tests/golden/anthropic/stream_text.sse");
const STREAM_TOOL_USE: &str =
    include_str!("../../../../tests/golden/anthropic/stream_tool_use.sse");
const STREAM_THINKING: &str =
    include_str!("../../../../tests/golden/anthropic/stream_thinking.sse");
const STREAM_ERROR: &str = include_str!("../../../../tests/golden/anthropic/stream_error.sse");

const STREAMS: [(&str, &str); 4] = [
    ("stream_text", STREAM_TEXT),
    ("stream_tool_use", STREAM_TOOL_USE),
    ("stream_thinking", STREAM_THINKING),
    ("stream_error", STREAM_ERROR),
];

/// The upstream's stream through the decoder, as the relay runs it (end() at the end).
fn decode_stream(sse: &[u8]) -> Vec<Event> {
    let mut parser = SseParser::new();
    let mut decoder = Decoder::default();
    let mut events = Vec::new();
    for event in parser.feed(sse).into_iter().chain(parser.finish()) {
        decoder.event(event.event.as_deref(), &event.data, &mut events);
    }
    decoder.end(&mut events);
    events
}

fn encode_stream(events: &[Event]) -> Vec<u8> {
    let mut encoder = Encoder::new(StreamOptions::default());
    let mut out = Vec::new();
    for event in events {
        encoder.event(event, &mut out);
    }
    encoder.close(&mut out);
    out
}

/// (event name, data) of each wire event.
fn wire_events(bytes: &[u8]) -> Vec<(String, Value)> {
    let mut parser = SseParser::new();
    parser
        .feed(bytes)
        .into_iter()
        .chain(parser.finish())
        .map(|e| (e.event.unwrap_or_default(), json_of(&e.data)))
        .collect()
}

/// What the anthropic SDK's `accumulate_event` builds from a stream: the message snapshot
/// (content appended at `content_block_start`, deltas applied by index, `message_delta`'s
/// usage overwriting), or the error an `error` event raises.
fn accumulate(bytes: &[u8]) -> Result<Value, Value> {
    let mut snapshot: Option<Value> = None;
    let mut json_bufs: std::collections::HashMap<u64, String> = std::collections::HashMap::new();
    for (name, data) in wire_events(bytes) {
        assert_eq!(
            data["type"],
            name.as_str(),
            "the data's type is the event's name"
        );
        if name == "error" {
            return Err(data["error"].clone());
        }
        let Some(message) = snapshot.as_mut() else {
            assert_eq!(name, "message_start", "unexpected event order");
            snapshot = Some(data["message"].clone());
            continue;
        };
        let content = message["content"].as_array_mut().unwrap();
        match name.as_str() {
            "content_block_start" => {
                assert_eq!(data["index"], content.len(), "blocks arrive in index order");
                content.push(data["content_block"].clone());
            }
            "content_block_delta" => {
                let index = data["index"].as_u64().unwrap();
                let block = &mut content[usize::try_from(index).unwrap()];
                let delta = &data["delta"];
                let append = |block: &mut Value, field: &str, piece: &Value| {
                    let joined = format!(
                        "{}{}",
                        block[field].as_str().unwrap(),
                        piece.as_str().unwrap()
                    );
                    block[field] = joined.into();
                };
                match delta["type"].as_str().unwrap() {
                    "text_delta" => append(block, "text", &delta["text"]),
                    "thinking_delta" => append(block, "thinking", &delta["thinking"]),
                    "signature_delta" => block["signature"] = delta["signature"].clone(),
                    "input_json_delta" => {
                        // (The SDK parses the partial JSON at every delta; the value it
                        // ends with is the whole text's, read here at the block's stop.)
                        let buf = json_bufs.entry(index).or_default();
                        buf.push_str(delta["partial_json"].as_str().unwrap());
                    }
                    other => panic!("unknown delta {other}"),
                }
            }
            "content_block_stop" => {
                let index = data["index"].as_u64().unwrap();
                if let Some(buf) = json_bufs.get(&index).filter(|buf| !buf.is_empty()) {
                    content[usize::try_from(index).unwrap()]["input"] = json_of(buf);
                }
            }
            "message_delta" => {
                message["stop_reason"] = data["delta"]["stop_reason"].clone();
                message["stop_sequence"] = data["delta"]["stop_sequence"].clone();
                let usage = data["usage"].as_object().unwrap();
                assert!(usage.contains_key("output_tokens"));
                for (figure, value) in usage {
                    message["usage"][figure] = value.clone();
                }
            }
            "message_stop" | "ping" => {}
            other => panic!("unexpected event {other}"),
        }
    }
    Ok(snapshot.expect("a message_start"))
}

#[test]
fn stream_text_decodes() {
    assert_eq!(
        decode_stream(STREAM_TEXT.as_bytes()),
        [
            Event::Start {
                id: "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY".into(),
                model: "claude-sonnet-4-5-20250929".into(),
                usage: Usage {
                    input: 25,
                    output: 1,
                    ..Usage::default()
                },
            },
            Event::BlockStart {
                index: 0,
                block: Block::Text
            },
            Event::Delta {
                index: 0,
                delta: Delta::Text("Hello".into())
            },
            Event::Delta {
                index: 0,
                delta: Delta::Text("!".into())
            },
            Event::BlockStop { index: 0 },
            Event::Finish {
                stop: StopReason::EndTurn,
                usage: Usage {
                    input: 25,
                    output: 15,
                    ..Usage::default()
                },
            },
        ]
    );
}

/// Each block's kind and its deltas joined, per IR index.
fn blocks_of(events: &[Event]) -> Vec<(Block, String, String)> {
    let mut blocks: Vec<(Block, String, String)> = Vec::new();
    for event in events {
        match event {
            Event::BlockStart { index, block } => {
                assert_eq!(*index, blocks.len());
                blocks.push((block.clone(), String::new(), String::new()));
            }
            Event::Delta { index, delta } => {
                let block = &mut blocks[*index];
                match delta {
                    Delta::Text(s) | Delta::Thinking(s) | Delta::ToolArguments(s) => {
                        block.1.push_str(s)
                    }
                    Delta::Signature(s) => block.2.push_str(s),
                }
            }
            _ => {}
        }
    }
    blocks
}

#[test]
fn stream_tool_use_decodes() {
    let events = decode_stream(STREAM_TOOL_USE.as_bytes());
    let blocks = blocks_of(&events);
    assert_eq!(blocks.len(), 3);
    assert_eq!(blocks[0].0, Block::Text);
    assert_eq!(
        blocks[0].1,
        "Okay, let's check the weather and time for San Francisco, CA:"
    );
    assert_eq!(
        blocks[1].0,
        Block::ToolCall {
            id: "toolu_01T1x1fJ34qAmk2tNTrN7Up6".into(),
            name: "get_weather".into()
        }
    );
    assert_eq!(
        blocks[1].1,
        r#"{"location": "San Francisco, CA", "unit": "fahrenheit"}"#
    );
    assert_eq!(
        blocks[2].0,
        Block::ToolCall {
            id: "toolu_01GN8dkqRiHbVGcTwAGfPaMd".into(),
            name: "get_time".into()
        }
    );
    assert_eq!(
        json_of(&blocks[2].1),
        json!({"timezone": "America/Los_Angeles"})
    );
    // Blocks are closed one by one, in order.
    let stops: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::BlockStop { index } => Some(*index),
            _ => None,
        })
        .collect();
    assert_eq!(stops, [0, 1, 2]);
    assert_eq!(
        events.last(),
        Some(&Event::Finish {
            stop: StopReason::ToolUse,
            usage: Usage {
                input: 472,
                output: 121,
                cache_write: 0,
                cache_read: 1536,
                reasoning: 0
            },
        })
    );
    assert!(
        matches!(&events[0], Event::Start { usage, .. } if usage.cache_read == 1536 && usage.output == 2)
    );
}

#[test]
fn stream_thinking_decodes() {
    let events = decode_stream(STREAM_THINKING.as_bytes());
    let blocks = blocks_of(&events);
    assert_eq!(blocks.len(), 2);
    assert_eq!(blocks[0].0, Block::Thinking);
    assert_eq!(
        blocks[0].1,
        "Let me solve this step by step:\n\n1. First break down 27 * 453\n2. 453 = 400 + 50 + 3\n3. 27 * 400 = 10,800\n4. 27 * 50 = 1,350\n5. 27 * 3 = 81\n6. 10,800 + 1,350 + 81 = 12,231"
    );
    assert_eq!(
        blocks[0].2,
        "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds..."
    );
    assert_eq!(
        (blocks[1].0.clone(), blocks[1].1.as_str()),
        (Block::Text, "27 * 453 = 12,231")
    );
    assert_eq!(
        events.last(),
        Some(&Event::Finish {
            stop: StopReason::EndTurn,
            usage: Usage {
                input: 44,
                output: 187,
                ..Usage::default()
            },
        })
    );
}

#[test]
fn stream_error_decodes() {
    let events = decode_stream(STREAM_ERROR.as_bytes());
    assert_eq!(blocks_of(&events)[0].1, "Once upon a time");
    assert!(!events.iter().any(|e| matches!(e, Event::Finish { .. })));
    assert_eq!(
        events.last(),
        Some(&Event::Error {
            kind: ErrorKind::Overloaded,
            message: "Overloaded".into()
        })
    );
}

#[test]
fn encoded_stream_is_byte_exact() {
    let bytes = encode_stream(&decode_stream(STREAM_TEXT.as_bytes()));
    let expected = concat!(
        "event: message_start\n",
        r#"data: {"type":"message_start","message":{"id":"msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1}}}"#,
        "\n\n",
        "event: content_block_start\n",
        r#"data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
        "\n\n",
        "event: content_block_delta\n",
        r#"data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}"#,
        "\n\n",
        "event: content_block_delta\n",
        r#"data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"!"}}"#,
        "\n\n",
        "event: content_block_stop\n",
        r#"data: {"type":"content_block_stop","index":0}"#,
        "\n\n",
        "event: message_delta\n",
        r#"data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"input_tokens":25,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":15}}"#,
        "\n\n",
        "event: message_stop\n",
        r#"data: {"type":"message_stop"}"#,
        "\n\n",
    );
    assert_eq!(String::from_utf8(bytes).unwrap(), expected);
}

#[test]
fn encoded_streams_are_what_the_sdk_accumulates() {
    for (name, fixture) in STREAMS {
        let bytes = encode_stream(&decode_stream(fixture.as_bytes()));
        // The upstream's event names in order, pings aside.
        let names = |bytes: &[u8]| -> Vec<String> {
            wire_events(bytes)
                .into_iter()
                .map(|(n, _)| n)
                .filter(|n| n != "ping")
                .collect()
        };
        assert_eq!(names(&bytes), names(fixture.as_bytes()), "{name}");

        let accumulated = accumulate(&bytes);
        let expected = accumulate(fixture.as_bytes());
        match (accumulated, expected) {
            (Ok(message), Ok(original)) => {
                for field in [
                    "id",
                    "type",
                    "role",
                    "model",
                    "stop_reason",
                    "stop_sequence",
                ] {
                    assert_eq!(message[field], original[field], "{name}: {field}");
                }
                assert_eq!(message["content"], original["content"], "{name}: content");
                for figure in ["input_tokens", "output_tokens"] {
                    assert_eq!(
                        message["usage"][figure], original["usage"][figure],
                        "{name}: {figure}"
                    );
                }
                let cache = |m: &Value, f: &str| m["usage"][f].as_u64().unwrap_or(0);
                for figure in ["cache_creation_input_tokens", "cache_read_input_tokens"] {
                    assert_eq!(
                        cache(&message, figure),
                        cache(&original, figure),
                        "{name}: {figure}"
                    );
                }
            }
            (Err(error), Err(original)) => assert_eq!(error, original, "{name}"),
            (got, want) => panic!("{name}: {got:?} vs {want:?}"),
        }
    }
}

#[test]
fn decoding_the_encoders_output_gives_the_same_events() {
    for (name, fixture) in STREAMS {
        let events = decode_stream(fixture.as_bytes());
        assert_eq!(decode_stream(&encode_stream(&events)), events, "{name}");
    }
}

#[test]
fn encoder_errors_and_gaps() {
    // An error is Anthropic's in-stream error event; nothing follows it.
    let mut encoder = Encoder::new(StreamOptions::default());
    let mut out = Vec::new();
    encoder.event(
        &Event::Error {
            kind: ErrorKind::RateLimited,
            message: "slow down".into(),
        },
        &mut out,
    );
    encoder.event(
        &Event::Finish {
            stop: StopReason::EndTurn,
            usage: Usage::default(),
        },
        &mut out,
    );
    encoder.close(&mut out);
    assert_eq!(
        wire_events(&out),
        [(
            "error".to_owned(),
            json!({"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}})
        )]
    );

    // Content without a Start still opens with a message_start (an id is made up); an open
    // block is closed before the message ends; reasoning tokens are reported.
    let bytes = encode_stream(&[
        Event::BlockStart {
            index: 0,
            block: Block::RedactedThinking {
                data: "EmwK".into(),
            },
        },
        Event::Finish {
            stop: StopReason::MaxTokens,
            usage: Usage {
                input: 3,
                output: 9,
                reasoning: 4,
                ..Usage::default()
            },
        },
    ]);
    let events = wire_events(&bytes);
    let names: Vec<_> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert!(
        events[0].1["message"]["id"]
            .as_str()
            .unwrap()
            .starts_with("msg_")
    );
    assert_eq!(
        events[1].1["content_block"],
        json!({"type": "redacted_thinking", "data": "EmwK"})
    );
    assert_eq!(events[3].1["delta"]["stop_reason"], "max_tokens");
    assert_eq!(
        events[3].1["usage"]["output_tokens_details"],
        json!({"thinking_tokens": 4})
    );
    let message = accumulate(&bytes).unwrap();
    assert_eq!(message["usage"]["output_tokens"], 9);
}

#[test]
fn decoder_tolerates_what_upstreams_do() {
    let feed = |events: &[(Option<&str>, &str)]| {
        let mut decoder = Decoder::default();
        let mut out = Vec::new();
        for (name, data) in events {
            decoder.event(*name, data, &mut out);
        }
        decoder.end(&mut out);
        out
    };
    // No message_start, nameless events, pings, unknown events, a server-tool block skipped
    // (the IR's indices stay contiguous), a delta of an unknown type, cumulative figures with
    // proxy zeros.
    let events = feed(&[
        (
            None,
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"server_tool_use","id":"srvtoolu_1","name":"web_search","input":{}}}"#,
        ),
        (
            None,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{}"}}"#,
        ),
        (None, r#"{"type":"content_block_stop","index":0}"#),
        (Some("ping"), "not even json"),
        (Some("future_event"), r#"{"type":"future_event"}"#),
        (None, ""),
        (
            Some("content_block_start"),
            r#"{"type":"content_block_start","index":1,"content_block":{"type":"text","text":"Hi"}}"#,
        ),
        (
            Some("content_block_delta"),
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"citations_delta","citation":{}}}"#,
        ),
        (
            Some("content_block_delta"),
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":" there"}}"#,
        ),
        (
            Some("content_block_start"),
            r#"{"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_9","name":"f","input":{"a":1}}}"#,
        ),
        (
            Some("message_delta"),
            r#"{"type":"message_delta","delta":{"stop_reason":"stop_sequence","stop_sequence":"END"},"usage":{"input_tokens":7,"output_tokens":5,"cache_read_input_tokens":0}}"#,
        ),
        (
            Some("message_delta"),
            r#"{"type":"message_delta","delta":{},"usage":{"input_tokens":0,"output_tokens":6,"output_tokens_details":{"thinking_tokens":2}}}"#,
        ),
        (Some("message_stop"), r#"{"type":"message_stop"}"#),
        (
            Some("message_start"),
            r#"{"type":"message_start","message":{"id":"msg_late"}}"#,
        ),
    ]);
    assert_eq!(
        events,
        [
            Event::Start {
                id: String::new(),
                model: String::new(),
                usage: Usage::default()
            },
            Event::BlockStart {
                index: 0,
                block: Block::Text
            },
            Event::Delta {
                index: 0,
                delta: Delta::Text("Hi".into())
            },
            Event::Delta {
                index: 0,
                delta: Delta::Text(" there".into())
            },
            Event::BlockStop { index: 0 },
            Event::BlockStart {
                index: 1,
                block: Block::ToolCall {
                    id: "toolu_9".into(),
                    name: "f".into()
                }
            },
            Event::Delta {
                index: 1,
                delta: Delta::ToolArguments(r#"{"a":1}"#.into())
            },
            Event::BlockStop { index: 1 },
            Event::Finish {
                stop: StopReason::StopSequence(Some("END".into())),
                usage: Usage {
                    input: 7,
                    output: 6,
                    reasoning: 2,
                    ..Usage::default()
                },
            },
        ]
    );

    // A known event that is not JSON breaks the answer: an error, then nothing.
    let events = feed(&[
        (
            Some("message_start"),
            r#"{"type":"message_start","message":{"id":"msg_1","model":"m","usage":{"input_tokens":3,"output_tokens":1}}}"#,
        ),
        (
            Some("content_block_delta"),
            r#"{"type":"content_block_delta","ind"#,
        ),
        (Some("message_stop"), r#"{"type":"message_stop"}"#),
    ]);
    assert_eq!(events.len(), 2);
    assert!(matches!(&events[1],
        Event::Error { kind: ErrorKind::Upstream, message } if message.contains("content_block_delta")));

    // A stream that stops after message_delta is not complete.
    let events = feed(&[
        (
            Some("message_start"),
            r#"{"type":"message_start","message":{"id":"msg_1","model":"m"}}"#,
        ),
        (
            Some("message_delta"),
            r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":2}}"#,
        ),
    ]);
    assert_eq!(
        events.last(),
        Some(&Event::Error {
            kind: ErrorKind::Upstream,
            message: "the upstream ended the stream before the answer was complete".into()
        })
    );
    // A message_stop with no stop reason after a tool call is a tool-use stop.
    let events = feed(&[
        (
            Some("content_block_start"),
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"t","name":"f","input":{}}}"#,
        ),
        (Some("message_stop"), r#"{"type":"message_stop"}"#),
    ]);
    assert!(matches!(
        events.last(),
        Some(Event::Finish {
            stop: StopReason::ToolUse,
            ..
        })
    ));
    // An error event with an unknown type.
    let events = feed(&[(
        Some("error"),
        r#"{"type":"error","error":{"type":"billing_error","message":"Out of credit"}}"#,
    )]);
    assert_eq!(
        events,
        [Event::Error {
            kind: ErrorKind::PermissionDenied,
            message: "Out of credit".into()
        }]
    );
}

/// Splits the converter's output into its events (the encoder frames each with a blank line).
fn split_events(bytes: &[u8]) -> Vec<String> {
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    assert!(
        text.is_empty() || text.ends_with("\n\n"),
        "whole events only: {text:?}"
    );
    text.split_terminator("\n\n").map(str::to_owned).collect()
}

fn is_error_event(event: &str) -> bool {
    let (name, data) = event.split_once('\n').unwrap();
    name == "event: error" && json_of(data.strip_prefix("data: ").unwrap())["type"] == "error"
}

#[test]
fn every_cut_gives_a_prefix_and_at_most_one_error() {
    let convert = |bytes: &[u8]| {
        let mut converter = StreamConverter::new(
            Protocol::Anthropic,
            Protocol::Anthropic,
            StreamOptions::default(),
        );
        let mut out = converter.feed(bytes).to_vec();
        out.extend_from_slice(&converter.finish());
        out
    };
    for (name, fixture) in STREAMS {
        let bytes = fixture.as_bytes();
        let full = split_events(&convert(bytes));
        assert!(
            full.last().unwrap().starts_with("event: message_stop")
                || is_error_event(full.last().unwrap())
        );
        for cut in 0..=bytes.len() {
            let events = split_events(&convert(&bytes[..cut]));
            let (last, before) = events.split_last().unwrap();
            if events.len() <= full.len() && events[..] == full[..events.len()] {
                assert!(
                    events.len() == full.len() || is_error_event(last),
                    "{name} cut at {cut}: a shorter answer must end with an error"
                );
                continue;
            }
            assert_eq!(
                before,
                &full[..before.len()],
                "{name} cut at {cut}: not a prefix"
            );
            assert!(is_error_event(last), "{name} cut at {cut}: {last}");
        }
    }
}

#[test]
fn streams_split_anywhere_decode_the_same() {
    for (name, fixture) in STREAMS {
        let whole = decode_stream(fixture.as_bytes());
        let bytes = fixture.as_bytes();
        for split in [1, 7, 64, 333] {
            let mut parser = SseParser::new();
            let mut decoder = Decoder::default();
            let mut events = Vec::new();
            for chunk in bytes.chunks(split) {
                for event in parser.feed(chunk) {
                    decoder.event(event.event.as_deref(), &event.data, &mut events);
                }
            }
            if let Some(event) = parser.finish() {
                decoder.event(event.event.as_deref(), &event.data, &mut events);
            }
            decoder.end(&mut events);
            assert_eq!(events, whole, "{name} in chunks of {split}");
        }
    }
}
