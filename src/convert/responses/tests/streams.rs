#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

use super::*;
use crate::convert::ir::{Block, Delta, Event};
use crate::convert::responses::{Decoder, Encoder};
use crate::convert::{StreamConverter, StreamDecoder, StreamEncoder, StreamOptions};
use crate::providers::{ErrorKind, SseParser};

const STREAM_TEXT: &str = include_str!("../../../../tests/golden/responses/stream_text.sse");
const STREAM_TOOL_USE: &str =
    include_str!("../../../../tests/golden/responses/stream_tool_use.sse");
const STREAM_THINKING: &str =
    include_str!("../../../../tests/golden/responses/stream_thinking.sse");
const STREAM_ERROR: &str = include_str!("../../../../tests/golden/responses/stream_error.sse");
const STREAMS: [(&str, &str); 4] = [
    ("stream_text", STREAM_TEXT),
    ("stream_tool_use", STREAM_TOOL_USE),
    ("stream_thinking", STREAM_THINKING),
    ("stream_error", STREAM_ERROR),
];

const SUMMARY_1: &str = "**Comparing the two numbers**\n\nThe user asks which is larger, 9.11 or 9.9. Comparing the tenths digit: 1 versus 9.";
const SUMMARY_2: &str = "**Giving the answer**\n\n9.9 is larger, since 0.9 > 0.11.";
const ENCRYPTED: &str =
    "gAAAAABorz2R3kPq8mVtZsYw1bXcF9uJ2nLh0eT4aQdKr6WgHy7iOpM5vN3xC8zB1lD-_eRfT2gU9hS4jA6kP0oI7uY==";

// Helpers

/// The IR events a Decoder makes of a whole stream (without `end()`).
fn decode_stream(bytes: &[u8]) -> Vec<Event> {
    let mut parser = SseParser::new();
    let mut decoder = Decoder::default();
    let mut events = Vec::new();
    let mut sse = parser.feed(bytes);
    sse.extend(parser.finish());
    for event in sse {
        decoder.event(event.event.as_deref(), &event.data, &mut events);
    }
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

/// SSE bytes → (event name, data as JSON), checking the framing is exactly
/// `event: NAME\ndata: JSON\n\n`.
fn wire_events(bytes: &[u8]) -> Vec<(String, Value)> {
    let text = std::str::from_utf8(bytes).unwrap();
    assert!(
        text.is_empty() || text.ends_with("\n\n"),
        "unterminated: {text:?}"
    );
    text.split_terminator("\n\n")
        .map(|frame| {
            let (name, data) = frame.split_once('\n').expect("two lines");
            let name = name.strip_prefix("event: ").expect("an event line");
            let data = data.strip_prefix("data: ").expect("a data line");
            assert!(!data.contains('\n'), "one data line");
            (name.to_owned(), serde_json::from_str(data).unwrap())
        })
        .collect()
}

fn names(events: &[(String, Value)]) -> Vec<&str> {
    events.iter().map(|(name, _)| name.as_str()).collect()
}

fn text_delta(index: usize, text: &str) -> Event {
    Event::Delta {
        index,
        delta: Delta::Text(text.into()),
    }
}

fn args_delta(index: usize, text: &str) -> Event {
    Event::Delta {
        index,
        delta: Delta::ToolArguments(text.into()),
    }
}

fn thinking_delta(index: usize, text: &str) -> Event {
    Event::Delta {
        index,
        delta: Delta::Thinking(text.into()),
    }
}

// ---------------------------------------------------------------------------------------------
// Golden streams → IR

#[test]
fn golden_text_stream_decodes() {
    let events = decode_stream(STREAM_TEXT.as_bytes());
    assert_eq!(
        events,
        vec![
            Event::Start {
                id: "resp_67c9fdcecf488190bdd9a0409de3a1ec07b8b0ad4e5eb654".into(),
                model: "gpt-4.1-2025-04-14".into(),
                usage: Usage::default(),
            },
            Event::BlockStart {
                index: 0,
                block: Block::Text
            },
            text_delta(0, "Hi"),
            text_delta(0, " there! How can I"),
            text_delta(0, " help you today? é你好"),
            Event::BlockStop { index: 0 },
            Event::Finish {
                stop: StopReason::EndTurn,
                // input_tokens 1337 includes the 1024 cached.
                usage: usage(313, 12, 1024, 0),
            },
        ]
    );
}

#[test]
fn golden_tool_use_stream_decodes_two_parallel_calls() {
    let events = decode_stream(STREAM_TOOL_USE.as_bytes());
    assert_eq!(
        events,
        vec![
            Event::Start {
                id: "resp_68af3b1e5c5481a0b8f2a1c7d9e04b2f0c1a2b3c4d5e6f70".into(),
                model: "gpt-4.1-2025-04-14".into(),
                usage: Usage::default(),
            },
            Event::BlockStart {
                index: 0,
                block: Block::ToolCall {
                    id: "call_kY5pQ2mVx8TnR3wZ1bC7dE9f".into(),
                    name: "get_weather".into()
                }
            },
            args_delta(0, "{\"location\":"),
            args_delta(0, "\"Paris, France\"}"),
            Event::BlockStop { index: 0 },
            Event::BlockStart {
                index: 1,
                block: Block::ToolCall {
                    id: "call_Hs2LmN4oP6qR8sT0uV1wX3yZ".into(),
                    name: "get_weather".into()
                }
            },
            args_delta(1, "{\"location\":\"Bogot"),
            args_delta(1, "á, Colombia\"}"),
            Event::BlockStop { index: 1 },
            Event::Finish {
                stop: StopReason::ToolUse,
                usage: usage(291, 48, 0, 0),
            },
        ]
    );
}

#[test]
fn golden_thinking_stream_decodes_summary_parts_and_encrypted_content() {
    let events = decode_stream(STREAM_THINKING.as_bytes());
    assert_eq!(
        events,
        vec![
            Event::Start {
                id: "resp_68af3d8c1f4c819fa0c6b8e3d2a1f09e0b7c6d5e4f3a2b10".into(),
                model: "gpt-5-2025-08-07".into(),
                usage: Usage::default(),
            },
            Event::BlockStart {
                index: 0,
                block: Block::Thinking
            },
            thinking_delta(
                0,
                "**Comparing the two numbers**\n\nThe user asks which is larger, 9.11 or 9.9."
            ),
            thinking_delta(0, " Comparing the tenths digit: 1 versus 9."),
            thinking_delta(0, "\n\n"),
            thinking_delta(0, SUMMARY_2),
            Event::Delta {
                index: 0,
                delta: Delta::Signature(ENCRYPTED.into())
            },
            Event::BlockStop { index: 0 },
            Event::BlockStart {
                index: 1,
                block: Block::Text
            },
            text_delta(1, "9.9 is larger"),
            text_delta(1, " than 9.11."),
            Event::BlockStop { index: 1 },
            Event::Finish {
                stop: StopReason::EndTurn,
                usage: usage(156, 398, 1920, 384),
            },
        ]
    );
    let thinking: String = events
        .iter()
        .filter_map(|e| match e {
            Event::Delta {
                delta: Delta::Thinking(t),
                ..
            } => Some(t.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(thinking, format!("{SUMMARY_1}\n\n{SUMMARY_2}"));
}

#[test]
fn golden_error_stream_decodes_to_an_error_after_the_partial_text() {
    let events = decode_stream(STREAM_ERROR.as_bytes());
    assert_eq!(
        events,
        vec![
            Event::Start {
                id: "resp_68af40a2e1d8819db7a3c5f0e2d4b6a80d9e8f7a6b5c4d30".into(),
                model: "gpt-4.1-2025-04-14".into(),
                usage: Usage::default(),
            },
            Event::BlockStart {
                index: 0,
                block: Block::Text
            },
            text_delta(0, "Once upon"),
            Event::Error {
                kind: ErrorKind::Upstream,
                message: "The server had an error while processing your request. Sorry about that!"
                    .into(),
            },
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Decoder details

fn decode_events(frames: &[(&str, Value)]) -> Vec<Event> {
    let mut decoder = Decoder::default();
    let mut events = Vec::new();
    for (name, data) in frames {
        decoder.event(Some(name), &data.to_string(), &mut events);
    }
    decoder.end(&mut events);
    events
}

#[test]
fn end_without_a_finished_answer_is_an_upstream_error() {
    let cut = &STREAM_TEXT[..STREAM_TEXT
        .find("event: response.output_text.done")
        .unwrap()];
    let mut decoder = Decoder::default();
    let mut events = Vec::new();
    for event in SseParser::new().feed(cut.as_bytes()) {
        decoder.event(event.event.as_deref(), &event.data, &mut events);
    }
    assert_eq!(events.len(), 5);
    decoder.end(&mut events);
    assert_eq!(
        events.last(),
        Some(&Event::Error {
            kind: ErrorKind::Upstream,
            message: "the upstream ended the stream before the answer was complete".into(),
        })
    );
    // After a finished answer, end() adds nothing, and later events are ignored.
    let mut decoder = Decoder::default();
    let mut events = Vec::new();
    let mut parser = SseParser::new();
    for event in parser.feed(STREAM_TEXT.as_bytes()) {
        decoder.event(event.event.as_deref(), &event.data, &mut events);
    }
    let finished = events.len();
    decoder.event(
        Some("response.output_text.delta"),
        r#"{"type":"response.output_text.delta","output_index":0,"delta":"late"}"#,
        &mut events,
    );
    decoder.end(&mut events);
    assert_eq!(events.len(), finished);
}

#[test]
fn incomplete_failed_and_nested_error_events() {
    let events = decode_events(&[(
        "response.incomplete",
        json!({"type": "response.incomplete", "sequence_number": 3, "response": {"id": "resp_1", "model": "gpt-5", "status": "incomplete",
            "incomplete_details": {"reason": "max_output_tokens"}, "output": [],
            "usage": {"input_tokens": 10, "input_tokens_details": {"cached_tokens": 4}, "output_tokens": 64, "output_tokens_details": {"reasoning_tokens": 64}, "total_tokens": 74}}}),
    )]);
    assert_eq!(
        events,
        vec![
            Event::Start {
                id: "resp_1".into(),
                model: "gpt-5".into(),
                usage: usage(6, 64, 4, 64)
            },
            Event::Finish {
                stop: StopReason::MaxTokens,
                usage: usage(6, 64, 4, 64)
            },
        ]
    );
    let events = decode_events(&[(
        "response.incomplete",
        json!({"type": "response.incomplete", "response": {"status": "incomplete", "incomplete_details": {"reason": "content_filter"}}}),
    )]);
    assert!(matches!(
        events.last(),
        Some(Event::Finish {
            stop: StopReason::ContentFilter,
            ..
        })
    ));

    let events = decode_events(&[(
        "response.failed",
        json!({"type": "response.failed", "sequence_number": 1, "response": {"id": "resp_2", "status": "failed",
            "error": {"code": "server_error", "message": "The model failed to generate a response."}}}),
    )]);
    assert_eq!(
        events,
        vec![Event::Error {
            kind: ErrorKind::Upstream,
            message: "The model failed to generate a response.".into()
        }]
    );
    let events = decode_events(&[(
        "error",
        json!({"type": "error", "sequence_number": 2, "error": {"type": "too_many_requests", "code": "too_many_requests", "message": "Too Many Requests", "param": null}}),
    )]);
    assert_eq!(
        events,
        vec![Event::Error {
            kind: ErrorKind::RateLimited,
            message: "Too Many Requests".into()
        }]
    );
}

#[test]
fn data_only_events_and_non_json_data_are_handled() {
    // Some compatible upstreams send no `event:` lines and end with `[DONE]`.
    let input = "data: {\"sequence_number\":0,\"type\":\"response.created\",\"response\":{\"id\":\"resp_q\",\"model\":\"qwen3-max\",\"status\":\"in_progress\"}}\n\n\
                 : keep-alive\n\n\
                 data: {\"sequence_number\":1,\"type\":\"response.output_text.delta\",\"output_index\":0,\"content_index\":0,\"delta\":\"Hi\"}\n\n\
                 data: {\"sequence_number\":2,\"type\":\"response.completed\",\"response\":{\"id\":\"resp_q\",\"model\":\"qwen3-max\",\"status\":\"completed\",\"usage\":{\"input_tokens\":20,\"output_tokens\":3,\"total_tokens\":23}}}\n\n\
                 data: [DONE]\n\n";
    let events = decode_stream(input.as_bytes());
    assert_eq!(
        events,
        vec![
            Event::Start {
                id: "resp_q".into(),
                model: "qwen3-max".into(),
                usage: Usage::default()
            },
            Event::BlockStart {
                index: 0,
                block: Block::Text
            },
            text_delta(0, "Hi"),
            Event::BlockStop { index: 0 },
            Event::Finish {
                stop: StopReason::EndTurn,
                usage: usage(20, 3, 0, 0)
            },
        ]
    );
}

#[test]
fn whole_items_without_deltas_still_make_blocks() {
    // A function call whose arguments come only in the done events, an encrypted reasoning
    // item without summary, and a message whose text comes only in output_item.done.
    let events = decode_events(&[
        (
            "response.created",
            json!({"type": "response.created", "response": {"id": "resp_w", "model": "m"}}),
        ),
        (
            "response.output_item.added",
            json!({"type": "response.output_item.added", "output_index": 0,
            "item": {"id": "rs_1", "type": "reasoning", "summary": []}}),
        ),
        (
            "response.output_item.done",
            json!({"type": "response.output_item.done", "output_index": 0,
            "item": {"id": "rs_1", "type": "reasoning", "summary": [], "encrypted_content": "gAAAAenc"}}),
        ),
        (
            "response.output_item.added",
            json!({"type": "response.output_item.added", "output_index": 1,
            "item": {"id": "fc_1", "type": "function_call", "call_id": "call_1", "name": "f", "arguments": ""}}),
        ),
        (
            "response.function_call_arguments.done",
            json!({"type": "response.function_call_arguments.done", "output_index": 1, "item_id": "fc_1", "arguments": "{\"a\":1}"}),
        ),
        (
            "response.output_item.done",
            json!({"type": "response.output_item.done", "output_index": 1,
            "item": {"id": "fc_1", "type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{\"a\":1}"}}),
        ),
        (
            "response.output_item.done",
            json!({"type": "response.output_item.done", "output_index": 2,
            "item": {"id": "msg_1", "type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "done"}]}}),
        ),
        (
            "response.completed",
            json!({"type": "response.completed", "response": {"id": "resp_w", "status": "completed", "usage": null}}),
        ),
    ]);
    assert_eq!(
        events,
        vec![
            Event::Start {
                id: "resp_w".into(),
                model: "m".into(),
                usage: Usage::default()
            },
            Event::BlockStart {
                index: 0,
                block: Block::RedactedThinking {
                    data: "gAAAAenc".into()
                }
            },
            Event::BlockStop { index: 0 },
            Event::BlockStart {
                index: 1,
                block: Block::ToolCall {
                    id: "call_1".into(),
                    name: "f".into()
                }
            },
            args_delta(1, "{\"a\":1}"),
            Event::BlockStop { index: 1 },
            Event::BlockStart {
                index: 2,
                block: Block::Text
            },
            text_delta(2, "done"),
            Event::BlockStop { index: 2 },
            Event::Finish {
                stop: StopReason::ToolUse,
                usage: Usage::default()
            },
        ]
    );
}

#[test]
fn a_completed_response_alone_is_replayed_as_blocks() {
    let answer: Value = serde_json::from_str(ANSWER_THINKING).unwrap();
    let events = decode_events(&[(
        "response.completed",
        json!({"type": "response.completed", "sequence_number": 0, "response": answer}),
    )]);
    let Some(Event::Finish { stop, usage: u }) = events.last() else {
        panic!("{events:?}")
    };
    assert_eq!(*stop, StopReason::EndTurn);
    assert_eq!(*u, usage(10, 148, 0, 128));
    assert!(matches!(
        events[1],
        Event::BlockStart {
            index: 0,
            block: Block::Thinking
        }
    ));
    assert!(
        events.contains(&Event::Delta {
            index: 0,
            delta: Delta::Signature(
                answer["output"][0]["encrypted_content"]
                    .as_str()
                    .unwrap()
                    .into()
            )
        })
    );
    assert!(events.contains(&text_delta(1, "The capital of France is Paris.")));
}

// ---------------------------------------------------------------------------------------------
// The stream encoder

/// The members the openai SDK's models require, per event type (besides `type` and
/// `sequence_number`).
fn required_members(kind: &str) -> &'static [&'static str] {
    match kind {
        "response.created"
        | "response.in_progress"
        | "response.completed"
        | "response.incomplete"
        | "response.failed" => &["response"],
        "response.output_item.added" | "response.output_item.done" => &["output_index", "item"],
        "response.content_part.added" | "response.content_part.done" => {
            &["item_id", "output_index", "content_index", "part"]
        }
        "response.output_text.delta" => &[
            "item_id",
            "output_index",
            "content_index",
            "delta",
            "logprobs",
        ],
        "response.output_text.done" => &[
            "item_id",
            "output_index",
            "content_index",
            "text",
            "logprobs",
        ],
        "response.function_call_arguments.delta" => &["item_id", "output_index", "delta"],
        "response.function_call_arguments.done" => &["item_id", "output_index", "arguments"],
        "response.reasoning_summary_part.added" | "response.reasoning_summary_part.done" => {
            &["item_id", "output_index", "summary_index", "part"]
        }
        "response.reasoning_summary_text.delta" => {
            &["item_id", "output_index", "summary_index", "delta"]
        }
        "response.reasoning_summary_text.done" => {
            &["item_id", "output_index", "summary_index", "text"]
        }
        "error" => &["message"],
        other => panic!("unexpected event {other}"),
    }
}

/// Checks a stream the way the openai SDK's ResponseStreamState reads it: names match types,
/// sequence numbers count from 0, required members are there, the lifecycle keeps one id,
/// items are added before their events and done with the same identity, and the final
/// Response's output is the items that were done.
fn check_like_the_sdk(events: &[(String, Value)]) {
    let mut id: Option<String> = None;
    let mut added: Vec<Value> = Vec::new();
    let mut done: Vec<Value> = Vec::new();
    for (i, (name, data)) in events.iter().enumerate() {
        assert_eq!(data["type"], name.as_str());
        assert_eq!(data["sequence_number"], i as u64, "{name}");
        for member in required_members(name) {
            assert!(data.get(*member).is_some(), "{name} lacks {member}");
        }
        if let Some(response) = data.get("response") {
            for member in [
                "id",
                "object",
                "created_at",
                "model",
                "output",
                "parallel_tool_calls",
                "tool_choice",
                "tools",
            ] {
                assert!(
                    response.get(member).is_some(),
                    "{name}.response lacks {member}"
                );
            }
            let this = response["id"].as_str().unwrap().to_owned();
            assert!(this.starts_with("resp_"));
            assert_eq!(
                id.get_or_insert(this.clone()),
                &this,
                "the response id changed"
            );
        } else {
            assert!(id.is_some(), "{name} before response.created");
        }
        if let Some(index) = data.get("output_index").and_then(Value::as_u64) {
            let index = usize::try_from(index).unwrap();
            if name == "response.output_item.added" {
                assert_eq!(index, added.len());
                added.push(data["item"].clone());
            } else {
                let item = added.get(index).expect("an event for an item never added");
                if let Some(item_id) = data.get("item_id") {
                    assert_eq!(item_id, &item["id"]);
                }
            }
            if name == "response.output_item.done" {
                let item = &data["item"];
                assert_eq!(item["type"], added[index]["type"]);
                assert_eq!(item["id"], added[index]["id"]);
                assert_eq!(item.get("call_id"), added[index].get("call_id"));
                assert_eq!(index, done.len());
                done.push(item.clone());
            }
        }
        if name == "response.completed" || name == "response.incomplete" {
            assert_eq!(data["response"]["output"], Value::Array(done.clone()));
            assert_eq!(i, events.len() - 1, "the terminal event is last");
        }
    }
}

#[test]
fn encoder_reproduces_the_golden_streams_event_by_event() {
    for (name, fixture) in [
        ("stream_text", STREAM_TEXT),
        ("stream_tool_use", STREAM_TOOL_USE),
        ("stream_error", STREAM_ERROR),
    ] {
        let events = decode_stream(fixture.as_bytes());
        let encoded = wire_events(&encode_stream(&events));
        let original = wire_events(fixture.as_bytes());
        assert_eq!(names(&encoded), names(&original), "{name}");
        check_like_the_sdk(&encoded);
        // Same texts, ids and figures where the fixture has them.
        for ((kind, got), (_, want)) in encoded.iter().zip(&original) {
            for member in [
                "delta",
                "text",
                "arguments",
                "output_index",
                "content_index",
            ] {
                assert_eq!(got.get(member), want.get(member), "{name} {kind} {member}");
            }
            if kind == "response.output_item.added" || kind == "response.output_item.done" {
                for member in ["type", "call_id", "name", "arguments", "status", "role"] {
                    assert_eq!(
                        got["item"].get(member),
                        want["item"].get(member),
                        "{name} {kind} item.{member}"
                    );
                }
            }
            if let Some(response) = got.get("response") {
                assert_eq!(response["id"], want["response"]["id"]);
                assert_eq!(response["model"], want["response"]["model"]);
                assert_eq!(response["status"], want["response"]["status"]);
                if kind == "response.completed" {
                    let (got, want) = (&response["usage"], &want["response"]["usage"]);
                    for member in ["input_tokens", "output_tokens", "total_tokens"] {
                        assert_eq!(got[member], want[member], "{name} usage.{member}");
                    }
                    assert_eq!(
                        got["input_tokens_details"]["cached_tokens"],
                        want["input_tokens_details"]["cached_tokens"]
                    );
                    assert_eq!(
                        got["output_tokens_details"]["reasoning_tokens"],
                        want["output_tokens_details"]["reasoning_tokens"]
                    );
                }
            }
        }
    }
}

#[test]
fn encoder_streams_thinking_as_one_summary_part_with_its_encrypted_content() {
    let events = decode_stream(STREAM_THINKING.as_bytes());
    let encoded = wire_events(&encode_stream(&events));
    check_like_the_sdk(&encoded);
    assert_eq!(
        names(&encoded),
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.reasoning_summary_part.added",
            "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.done",
            "response.reasoning_summary_part.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    let whole = format!("{SUMMARY_1}\n\n{SUMMARY_2}");
    assert_eq!(encoded[8].1["text"], whole.as_str());
    let reasoning = &encoded[10].1["item"];
    assert_eq!(reasoning["type"], "reasoning");
    assert_eq!(reasoning["encrypted_content"], ENCRYPTED);
    assert_eq!(
        reasoning["summary"],
        json!([{"type": "summary_text", "text": whole}])
    );
    let usage = &encoded[18].1["response"]["usage"];
    assert_eq!(usage["input_tokens"], 2076);
    assert_eq!(usage["input_tokens_details"]["cached_tokens"], 1920);
    assert_eq!(usage["output_tokens"], 398);
    assert_eq!(usage["output_tokens_details"]["reasoning_tokens"], 384);
    assert_eq!(usage["total_tokens"], 2474);
}

#[test]
fn decoder_reads_back_what_the_encoder_wrote() {
    for (name, fixture) in STREAMS {
        let events = decode_stream(fixture.as_bytes());
        let encoded = encode_stream(&events);
        assert_eq!(decode_stream(&encoded), events, "{name}");
    }
}

#[test]
fn encoder_shapes_other_protocols_events() {
    let events = vec![
        Event::Start {
            id: "msg_01XFDUDYJgAACzvnptvVoYEL".into(),
            model: "claude-sonnet-4-5".into(),
            usage: usage(10, 1, 0, 0),
        },
        Event::BlockStart {
            index: 0,
            block: Block::RedactedThinking {
                data: "EmwKAhgBEgy3va3pzix".into(),
            },
        },
        Event::BlockStop { index: 0 },
        Event::BlockStart {
            index: 1,
            block: Block::Thinking,
        },
        Event::Delta {
            index: 1,
            delta: Delta::Signature("sig".into()),
        },
        Event::BlockStop { index: 1 },
        Event::BlockStart {
            index: 2,
            block: Block::Text,
        },
        text_delta(2, "partial"),
        Event::Finish {
            stop: StopReason::MaxTokens,
            usage: Usage {
                input: 10,
                output: 20,
                cache_write: 30,
                cache_read: 40,
                reasoning: 5,
            },
        },
    ];
    let encoded = wire_events(&encode_stream(&events));
    check_like_the_sdk(&encoded);
    assert_eq!(
        encoded[0].1["response"]["id"],
        "resp_msg01XFDUDYJgAACzvnptvVoYEL"
    );
    assert_eq!(encoded[0].1["response"]["status"], "in_progress");
    assert_eq!(
        encoded[2].1["item"]["encrypted_content"],
        "EmwKAhgBEgy3va3pzix"
    );
    // A thinking block with only a signature: no summary part, the signature on the item.
    assert_eq!(encoded[5].0, "response.output_item.done");
    assert_eq!(encoded[5].1["item"]["encrypted_content"], "sig");
    assert_eq!(encoded[5].1["item"]["summary"], json!([]));
    let last = encoded.last().unwrap();
    assert_eq!(last.0, "response.incomplete");
    assert_eq!(last.1["response"]["status"], "incomplete");
    assert_eq!(
        last.1["response"]["incomplete_details"]["reason"],
        "max_output_tokens"
    );
    assert_eq!(last.1["response"]["usage"]["input_tokens"], 80);
    assert_eq!(last.1["response"]["usage"]["total_tokens"], 100);
    // The open text block was finished before the terminal event.
    assert_eq!(encoded[encoded.len() - 2].0, "response.output_item.done");

    let decoded = decode_stream(&encode_stream(&events));
    assert_eq!(
        decoded.last(),
        Some(&Event::Finish {
            stop: StopReason::MaxTokens,
            usage: Usage {
                input: 10,
                output: 20,
                cache_write: 30,
                cache_read: 40,
                reasoning: 5,
            },
        })
    );
}

#[test]
fn encoder_error_event_continues_the_sequence_and_carries_the_nested_error() {
    let events = decode_stream(STREAM_ERROR.as_bytes());
    let encoded = wire_events(&encode_stream(&events));
    let (name, error) = encoded.last().unwrap();
    assert_eq!(name, "error");
    assert_eq!(error["sequence_number"], 5);
    assert_eq!(
        error["message"],
        "The server had an error while processing your request. Sorry about that!"
    );
    assert_eq!(error["code"], "upstream_error");
    // The nested object is what makes the openai SDK raise.
    assert_eq!(error["error"]["message"], error["message"]);
    assert_eq!(error["error"]["type"], "upstream_error");
}

// ---------------------------------------------------------------------------------------------
// Streams cut at every byte

fn convert(bytes: &[&[u8]]) -> Vec<u8> {
    let mut converter = StreamConverter::new(
        Protocol::OpenAiResponses,
        Protocol::OpenAiResponses,
        StreamOptions::default(),
    );
    let mut out = Vec::new();
    for chunk in bytes {
        out.extend_from_slice(&converter.feed(chunk));
    }
    out.extend_from_slice(&converter.finish());
    // The encoder stamps its own `created_at`; a second may pass between two runs.
    let text = String::from_utf8(out).unwrap();
    let mut normal = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(at) = rest.find("\"created_at\":") {
        let (head, tail) = rest.split_at(at + "\"created_at\":".len());
        normal.push_str(head);
        normal.push('0');
        rest = tail.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    normal.push_str(rest);
    normal.into_bytes()
}

#[test]
fn streams_cut_at_every_byte_give_a_prefix_and_at_most_one_error() {
    for (name, fixture) in STREAMS {
        let bytes = fixture.as_bytes();
        let full = convert(&[bytes]);
        for k in 0..=bytes.len() {
            let cut = convert(&[&bytes[..k]]);
            // Whole events of the full stream, then possibly one error event.
            let common = cut.iter().zip(&full).take_while(|(a, b)| a == b).count();
            let boundary = cut[..common]
                .windows(2)
                .rposition(|w| w == b"\n\n")
                .map_or(0, |i| i + 2);
            let boundary = if common == cut.len() && cut.ends_with(b"\n\n") {
                common
            } else {
                boundary
            };
            let tail = wire_events(&cut[boundary..]);
            match tail.as_slice() {
                [] => {}
                [(event, error)] if event == "error" => {
                    assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
                }
                other => panic!("{name} cut at {k}: after the common prefix {other:?}"),
            }
            if k == bytes.len() {
                assert_eq!(cut, full);
            }
        }
        // The same bytes in two chunks give the same stream as in one.
        for k in (0..=bytes.len()).step_by(3) {
            assert_eq!(
                convert(&[&bytes[..k], &bytes[k..]]),
                full,
                "{name} split at {k}"
            );
        }
        check_like_the_sdk(&wire_events(&full));
    }
}
