#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

use serde_json::{Value, json};

use super::*;
use crate::convert::ir::{
    Block, Delta, Document, Effort, Event, Media, Message, Part, Reasoning, ResponseFormat, Role,
    StopReason, Thinking, Tool, ToolCall, ToolChoice, ToolResult, Usage,
};
use crate::convert::{StreamConverter, StreamDecoder, StreamEncoder, StreamOptions};
use crate::providers::{ErrorKind, SseParser};

const STREAM_TEXT: &str = include_str!("../../../tests/golden/openai_chat/stream_text.sse");
const STREAM_TOOL_USE: &str = include_str!("../../../tests/golden/openai_chat/stream_tool_use.sse");
const STREAM_THINKING: &str = include_str!("../../../tests/golden/openai_chat/stream_thinking.sse");
const STREAM_ERROR: &str = include_str!("../../../tests/golden/openai_chat/stream_error.sse");
const ANSWER_TEXT: &str = include_str!("../../../tests/golden/openai_chat/answer_text.json");
const ANSWER_TOOL_USE: &str =
    include_str!("../../../tests/golden/openai_chat/answer_tool_use.json");
const ANSWER_THINKING: &str =
    include_str!("../../../tests/golden/openai_chat/answer_thinking.json");
const REQUEST_FULL: &str = include_str!("../../../tests/golden/openai_chat/request_full.json");

const WITH_USAGE: StreamOptions = StreamOptions {
    include_usage: true,
    gemini_sse: false,
};
const WITHOUT_USAGE: StreamOptions = StreamOptions {
    include_usage: false,
    gemini_sse: false,
};

// ---------------------------------------------------------------------------------------------
// Helpers

/// (event name, data) of every SSE event in `bytes`, as an SDK reads them.
fn sse_events(bytes: &[u8]) -> Vec<(Option<String>, String)> {
    let mut parser = SseParser::new();
    let mut events: Vec<_> = parser
        .feed(bytes)
        .into_iter()
        .chain(parser.finish())
        .filter(|e| !e.data.is_empty())
        .map(|e| (e.event, e.data))
        .collect();
    events.shrink_to_fit();
    events
}

/// The IR events a whole upstream stream decodes to (with `end()` after it).
fn decode_stream(bytes: &[u8]) -> Vec<Event> {
    let mut decoder = Decoder::default();
    let mut out = Vec::new();
    for (name, data) in sse_events(bytes) {
        decoder.event(name.as_deref(), &data, &mut out);
    }
    decoder.end(&mut out);
    out
}

fn encode_stream(events: &[Event], options: StreamOptions) -> Vec<u8> {
    let mut encoder = Encoder::new(options);
    let mut out = Vec::new();
    for event in events {
        encoder.event(event, &mut out);
    }
    encoder.close(&mut out);
    out
}

/// Checks the IR stream contract and returns each block with its accumulated content
/// (text, thinking text, or tool arguments).
fn blocks(events: &[Event]) -> Vec<(Block, String)> {
    assert!(
        matches!(
            events.first(),
            Some(Event::Start { .. } | Event::Error { .. })
        ),
        "Start first: {events:?}"
    );
    let mut blocks: Vec<(Block, String)> = Vec::new();
    let mut open: Option<usize> = None;
    for (i, event) in events.iter().enumerate() {
        let last = i + 1 == events.len();
        match event {
            Event::Start { .. } => assert_eq!(i, 0, "one Start, first"),
            Event::BlockStart { index, block } => {
                assert_eq!(open, None, "a block opens only after the last one stopped");
                assert_eq!(*index, blocks.len(), "indices 0, 1, 2 …");
                blocks.push((block.clone(), String::new()));
                open = Some(*index);
            }
            Event::Delta { index, delta } => {
                assert_eq!(open, Some(*index), "deltas only for the open block");
                let (block, content) = &mut blocks[*index];
                match (block, delta) {
                    (Block::Text, Delta::Text(t))
                    | (Block::Thinking, Delta::Thinking(t))
                    | (Block::ToolCall { .. }, Delta::ToolArguments(t)) => content.push_str(t),
                    (Block::Thinking, Delta::Signature(_)) => {}
                    (block, delta) => panic!("{delta:?} in a {block:?} block"),
                }
            }
            Event::BlockStop { index } => {
                assert_eq!(open, Some(*index), "stop the open block");
                open = None;
            }
            Event::Finish { .. } => {
                assert!(last, "Finish ends the sequence");
                assert_eq!(open, None, "every block stopped before Finish");
            }
            Event::Error { .. } => assert!(last, "Error ends the sequence"),
        }
    }
    blocks
}

fn finish_of(events: &[Event]) -> (StopReason, Usage) {
    match events.last() {
        Some(Event::Finish { stop, usage }) => (stop.clone(), *usage),
        other => panic!("no Finish at the end: {other:?}"),
    }
}

fn json_of(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

fn invalid_message(result: Result<impl std::fmt::Debug, ConvertError>) -> String {
    match result {
        Err(ConvertError::Invalid(message)) => message,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

fn unsupported_feature(result: Result<impl std::fmt::Debug, ConvertError>) -> String {
    match result {
        Err(ConvertError::Unsupported { feature, target }) => {
            assert_eq!(target, PROTOCOL);
            feature
        }
        other => panic!("expected Unsupported, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Requests

#[test]
fn request_full_decodes_field_by_field() {
    let request = decode_request(REQUEST_FULL.as_bytes()).unwrap();
    assert_eq!(request.model, "gpt-4.1");
    assert_eq!(
        request.system,
        ["You are a helpful travel assistant.", "Answer in JSON."]
    );
    assert_eq!(request.messages.len(), 5);

    let user = &request.messages[0];
    assert_eq!(user.role, Role::User);
    assert_eq!(
        user.parts[0],
        Part::Text("What is in these pictures, and what is the weather in both places?".into())
    );
    assert_eq!(
        user.parts[1],
        Part::Image(Media::Base64 {
            media_type: "image/png".into(),
            data: "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==".into(),
        })
    );
    assert!(
        matches!(&user.parts[2], Part::Image(Media::Url { url }) if url.starts_with("https://upload.wikimedia.org/"))
    );
    assert_eq!(
        user.parts[3],
        Part::Document(Document {
            source: Media::Base64 {
                media_type: "application/pdf".into(),
                data: "JVBERi0xLjQKJcOkw7zDtsOfCjIgMCBvYmoKPDwvTGVuZ3RoIDMgMCBSPj4Kc3RyZWFtCg=="
                    .into(),
            },
            title: Some("itinerary.pdf".into()),
        })
    );

    let calls = &request.messages[1];
    assert_eq!(calls.role, Role::Assistant);
    assert_eq!(
        calls.parts,
        [
            Part::ToolCall(ToolCall {
                id: "call_DdmO9pD3xa9XTPNJ32zg2hcA".into(),
                name: "get_weather".into(),
                arguments: r#"{"location":"Paris, France"}"#.into(),
            }),
            Part::ToolCall(ToolCall {
                id: "call_ABCDEFGHIJKLMNOPQRSTUVWX".into(),
                name: "get_weather".into(),
                arguments: r#"{"location":"Bogotá, Colombia"}"#.into(),
            }),
        ]
    );

    // The two tool messages fold into one user turn, named after the calls they answer.
    let results = &request.messages[2];
    assert_eq!(results.role, Role::User);
    assert_eq!(
        results.parts,
        [
            Part::ToolResult(ToolResult {
                call_id: "call_DdmO9pD3xa9XTPNJ32zg2hcA".into(),
                name: Some("get_weather".into()),
                content: vec![Part::Text("14°C, light rain".into())],
                is_error: false,
            }),
            Part::ToolResult(ToolResult {
                call_id: "call_ABCDEFGHIJKLMNOPQRSTUVWX".into(),
                name: Some("get_weather".into()),
                content: vec![Part::Text("19°C".into()), Part::Text("sunny".into())],
                is_error: false,
            }),
        ]
    );
    assert_eq!(
        request.messages[3],
        Message {
            role: Role::Assistant,
            parts: vec![Part::Text(
                "Paris: 14°C and rain. Bogotá: 19°C and sunny.".into()
            )],
        }
    );
    assert_eq!(
        request.messages[4].parts,
        [Part::Text("Thanks! Which one should I visit first?".into())]
    );

    assert_eq!(request.tools.len(), 2);
    assert_eq!(
        request.tools[0],
        Tool {
            name: "get_weather".into(),
            description: Some("Get current temperature for a given location.".into()),
            parameters: json!({
                "type": "object",
                "properties": {"location": {"type": "string", "description": "City and country e.g. Bogotá, Colombia"}},
                "required": ["location"],
                "additionalProperties": false,
            }),
        }
    );
    assert_eq!(request.tools[1].name, "get_time");
    assert_eq!(request.tools[1].description, None);
    assert_eq!(request.tool_choice, Some(ToolChoice::Auto));
    assert_eq!(request.parallel_tool_calls, Some(true));
    assert_eq!(
        request.reasoning,
        Some(Reasoning {
            budget_tokens: None,
            effort: Some(Effort::Low),
        })
    );
    assert_eq!(request.stop, ["\n\nUser:", "END"]);
    assert_eq!(request.temperature, Some(0.7));
    assert_eq!(request.top_p, Some(0.9));
    assert_eq!(request.top_k, None);
    assert_eq!(request.presence_penalty, Some(0.5));
    assert_eq!(request.frequency_penalty, Some(0.25));
    assert_eq!(request.seed, Some(42));
    assert_eq!(request.max_tokens, Some(1024));
    assert_eq!(
        request.response_format,
        Some(ResponseFormat::JsonSchema {
            name: "trip_advice".into(),
            schema: json!({
                "type": "object",
                "properties": {"first": {"type": "string"}, "why": {"type": "string"}},
                "required": ["first", "why"],
                "additionalProperties": false,
            }),
            strict: true,
        })
    );
    assert_eq!(request.user.as_deref(), Some("user-7f3c2a"));
    assert!(request.stream);
}

#[test]
fn request_round_trips() {
    let request = decode_request(REQUEST_FULL.as_bytes()).unwrap();
    let encoded = encode_request(&request).unwrap();
    assert_eq!(decode_request(&encoded).unwrap(), request);

    let body = json_of(&encoded);
    assert_eq!(body["max_completion_tokens"], 1024);
    assert!(body.get("max_tokens").is_none());
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"], json!({"include_usage": true}));
    assert_eq!(body["reasoning_effort"], "low");
    assert_eq!(body["user"], "user-7f3c2a");
    let roles: Vec<&str> = body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(
        roles,
        [
            "system",
            "system",
            "user",
            "assistant",
            "tool",
            "tool",
            "assistant",
            "user"
        ]
    );
    let messages = &body["messages"];
    assert_eq!(
        messages[2]["content"][1]["image_url"]["url"]
            .as_str()
            .unwrap()[..22],
        *"data:image/png;base64,"
    );
    assert_eq!(
        messages[2]["content"][3],
        json!({"type": "file", "file": {
            "filename": "itinerary.pdf",
            "file_data": "data:application/pdf;base64,JVBERi0xLjQKJcOkw7zDtsOfCjIgMCBvYmoKPDwvTGVuZ3RoIDMgMCBSPj4Kc3RyZWFtCg==",
        }})
    );
    assert_eq!(messages[3]["content"], Value::Null);
    assert_eq!(messages[3]["tool_calls"][1]["type"], "function");
    assert_eq!(messages[4]["tool_call_id"], "call_DdmO9pD3xa9XTPNJ32zg2hcA");
    assert_eq!(messages[4]["content"], "14°C, light rain");
    assert_eq!(body["tools"][0]["type"], "function");
    assert_eq!(body["tools"][0]["function"]["name"], "get_weather");
    assert_eq!(
        body["response_format"]["json_schema"]["name"],
        "trip_advice"
    );
}

/// A request as other protocols decode it (Anthropic-style): what Chat has no field for is
/// dropped, what it cannot carry is refused.
#[test]
fn request_from_another_protocol_encodes() {
    let request = Request {
        model: "gpt-4o".into(),
        system: vec!["Be brief.".into()],
        messages: vec![
            Message {
                role: Role::User,
                parts: vec![Part::Text("Look at this file.".into())],
            },
            Message {
                role: Role::Assistant,
                parts: vec![
                    Part::Thinking(Thinking {
                        text: "I should read it.".into(),
                        signature: Some("EqQBCgIYAhIM".into()),
                        redacted: false,
                    }),
                    Part::ToolCall(ToolCall {
                        id: "toolu_01A09q90qw90lq917835lq9".into(),
                        name: "read".into(),
                        arguments: String::new(),
                    }),
                ],
            },
            Message {
                role: Role::User,
                parts: vec![
                    Part::ToolResult(ToolResult {
                        call_id: "toolu_01A09q90qw90lq917835lq9".into(),
                        name: None,
                        content: vec![
                            Part::Text("a picture:".into()),
                            Part::Image(Media::Base64 {
                                media_type: "image/jpeg".into(),
                                data: "/9j/4AAQ".into(),
                            }),
                        ],
                        is_error: true,
                    }),
                    Part::Text("What is it?".into()),
                ],
            },
        ],
        max_tokens: Some(4096),
        top_k: Some(40),
        parallel_tool_calls: Some(false),
        reasoning: Some(Reasoning {
            budget_tokens: Some(10_000),
            effort: None,
        }),
        ..Request::default()
    };
    let body = json_of(&encode_request(&request).unwrap());
    assert_eq!(
        body["messages"],
        json!([
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Look at this file."},
            {"role": "assistant", "content": null, "tool_calls": [{
                "id": "toolu_01A09q90qw90lq917835lq9",
                "type": "function",
                "function": {"name": "read", "arguments": "{}"},
            }]},
            {"role": "tool", "tool_call_id": "toolu_01A09q90qw90lq917835lq9", "content": "a picture:"},
            {"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}},
                {"type": "text", "text": "What is it?"},
            ]},
        ])
    );
    assert_eq!(body["reasoning_effort"], "medium");
    assert_eq!(body["max_completion_tokens"], 4096);
    // No field for these; `parallel_tool_calls` only with tools.
    for absent in [
        "top_k",
        "parallel_tool_calls",
        "stream",
        "stream_options",
        "tools",
    ] {
        assert!(body.get(absent).is_none(), "{absent} in {body}");
    }

    let document_url = Request {
        messages: vec![Message {
            role: Role::User,
            parts: vec![Part::Document(Document {
                source: Media::Url {
                    url: "https://example.com/a.pdf".into(),
                },
                title: None,
            })],
        }],
        ..Request::default()
    };
    assert_eq!(
        unsupported_feature(encode_request(&document_url)),
        "a document given by URL"
    );
}

#[test]
fn request_refusals_name_the_feature() {
    let with = |extra: Value| {
        let mut body = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        decode_request(body.to_string().as_bytes())
    };
    let unsupported = [
        (json!({"n": 2}), "n > 1 (several choices)"),
        (json!({"logprobs": true}), "logprobs"),
        (json!({"top_logprobs": 3}), "top_logprobs"),
        (
            json!({"modalities": ["text", "audio"]}),
            "audio output (modalities)",
        ),
        (
            json!({"audio": {"voice": "alloy", "format": "wav"}}),
            "audio",
        ),
        (json!({"functions": [{"name": "f"}]}), "functions"),
        (json!({"web_search_options": {}}), "web_search_options"),
        (
            json!({"tools": [{"type": "custom", "custom": {"name": "grammar"}}]}),
            "tools of type \"custom\"",
        ),
        (
            json!({"tool_choice": {"type": "allowed_tools", "allowed_tools": {}}}),
            "tool_choice of type \"allowed_tools\"",
        ),
        (
            json!({"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "AAA", "format": "wav"}}]}]}),
            "input_audio",
        ),
        (
            json!({"messages": [{"role": "user", "content": [{"type": "file", "file": {"file_id": "file-abc"}}]}]}),
            "file_id",
        ),
        (
            json!({"messages": [{"role": "assistant", "audio": {"id": "audio_abc"}}]}),
            "assistant audio",
        ),
    ];
    for (extra, feature) in unsupported {
        assert_eq!(unsupported_feature(with(extra.clone())), feature, "{extra}");
    }
    // Allowed as they are: one choice, no logprobs, text only.
    assert!(with(json!({"n": 1, "logprobs": false, "modalities": ["text"]})).is_ok());

    let invalid = [
        (json!({"messages": "hi"}), "messages: must be an array"),
        (json!({"model": 5}), "model: must be a string"),
        (
            json!({"messages": [{"content": "hi"}]}),
            "messages[0].role: missing",
        ),
        (
            json!({"messages": [{"role": "robot", "content": "hi"}]}),
            "messages[0].role: unknown role \"robot\"",
        ),
        (
            json!({"messages": [{"role": "tool", "content": "42"}]}),
            "messages[0].tool_call_id: missing",
        ),
        (
            json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x/y.png"}}]}]}),
            "messages[0].content[0].image_url.url: must be an http(s) URL or a base64 data: URL",
        ),
        (
            json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png,abc"}}]}]}),
            "messages[0].content[0].image_url.url: a data: URL must be base64",
        ),
        (
            json!({"messages": [{"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {"arguments": "{}"}}]}]}),
            "messages[0].tool_calls[0].function.name: missing",
        ),
        (
            json!({"max_completion_tokens": -1}),
            "max_completion_tokens: must be a non-negative integer",
        ),
        (
            json!({"temperature": "hot"}),
            "temperature: must be a number",
        ),
        (json!({"stop": 5}), "stop: must be a string or strings"),
        (
            json!({"reasoning_effort": "extreme"}),
            "reasoning_effort: must be one of none, minimal, low, medium, high",
        ),
        (
            json!({"response_format": {"type": "yaml"}}),
            "response_format.type: must be text, json_object or json_schema",
        ),
        (
            json!({"tool_choice": "sometimes"}),
            "tool_choice: must be \"auto\", \"none\", \"required\" or a function to call",
        ),
    ];
    for (extra, message) in invalid {
        assert_eq!(invalid_message(with(extra.clone())), message, "{extra}");
    }
    assert!(
        invalid_message(decode_request(b"{not json")).starts_with("the body is not valid JSON")
    );
}

#[test]
fn request_variants_decode() {
    let body = json!({
        "model": "deepseek-reasoner",
        "max_tokens": 300,
        "stop": "###",
        "user": "u-1",
        "reasoning_effort": "none",
        "tool_choice": {"type": "function", "function": {"name": "get_time"}},
        "response_format": {"type": "json_object"},
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "reasoning_content": "Say hello.", "content": "Hello!"},
            {"role": "system", "content": "late instructions"},
            {"role": "user", "content": [{"type": "file", "file": {"filename": "notes.txt", "file_data": "aGVsbG8="}}]},
        ],
    });
    let request = decode_request(body.to_string().as_bytes()).unwrap();
    assert_eq!(request.max_tokens, Some(300));
    assert_eq!(request.stop, ["###"]);
    assert_eq!(request.user.as_deref(), Some("u-1"));
    assert_eq!(request.reasoning, None);
    assert_eq!(
        request.tool_choice,
        Some(ToolChoice::Tool("get_time".into()))
    );
    assert_eq!(request.response_format, Some(ResponseFormat::JsonObject));
    assert_eq!(request.system, ["late instructions"]);
    assert_eq!(
        request.messages[1].parts,
        [
            Part::Thinking(Thinking {
                text: "Say hello.".into(),
                signature: None,
                redacted: false,
            }),
            Part::Text("Hello!".into()),
        ]
    );
    assert_eq!(
        request.messages[2].parts,
        [Part::Document(Document {
            source: Media::Base64 {
                media_type: "text/plain".into(),
                data: "aGVsbG8=".into(),
            },
            title: Some("notes.txt".into()),
        })]
    );
    // Thinking in the history has no field in a Chat request.
    let body = json_of(&encode_request(&request).unwrap());
    assert_eq!(
        body["messages"][2],
        json!({"role": "assistant", "content": "Hello!"})
    );
    assert!(body.get("reasoning_effort").is_none());
}

// ---------------------------------------------------------------------------------------------
// Whole answers

#[test]
fn answer_text_decodes() {
    let response = decode_response(ANSWER_TEXT.as_bytes()).unwrap();
    assert_eq!(response.id, "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT");
    assert_eq!(response.model, "gpt-4.1-2025-04-14");
    assert_eq!(
        response.parts,
        [Part::Text("Hello! How can I assist you today?".into())]
    );
    assert_eq!(response.stop, StopReason::EndTurn);
    assert_eq!(
        response.usage,
        Usage {
            input: 147,
            output: 10,
            cache_write: 0,
            cache_read: 1920,
            reasoning: 0,
        }
    );
}

#[test]
fn answer_tool_use_decodes() {
    let response = decode_response(ANSWER_TOOL_USE.as_bytes()).unwrap();
    assert_eq!(
        response.parts,
        [
            Part::ToolCall(ToolCall {
                id: "call_DdmO9pD3xa9XTPNJ32zg2hcA".into(),
                name: "get_weather".into(),
                arguments: r#"{"location":"Paris, France"}"#.into(),
            }),
            Part::ToolCall(ToolCall {
                id: "call_ABCDEFGHIJKLMNOPQRSTUVWX".into(),
                name: "get_weather".into(),
                arguments: r#"{"location":"Bogotá, Colombia"}"#.into(),
            }),
        ]
    );
    assert_eq!(response.stop, StopReason::ToolUse);
    assert_eq!(
        response.usage,
        Usage {
            input: 82,
            output: 46,
            ..Usage::default()
        }
    );
}

#[test]
fn answer_thinking_decodes() {
    let response = decode_response(ANSWER_THINKING.as_bytes()).unwrap();
    assert_eq!(response.id, "930c60df-bf64-41c9-a88e-3ec75f81e00e");
    assert_eq!(response.model, "deepseek-reasoner");
    assert_eq!(
        response.parts,
        [
            Part::Thinking(Thinking {
                text: "Okay, the user asks for 9.11 vs 9.8. 9.8 is 9.80, which is larger.".into(),
                signature: None,
                redacted: false,
            }),
            Part::Text("9.8 is greater than 9.11.".into()),
        ]
    );
    assert_eq!(response.stop, StopReason::EndTurn);
    assert_eq!(
        response.usage,
        Usage {
            input: 18,
            output: 251,
            cache_write: 0,
            cache_read: 64,
            reasoning: 233,
        }
    );
}

#[test]
fn answers_encode_and_round_trip() {
    for fixture in [ANSWER_TEXT, ANSWER_TOOL_USE, ANSWER_THINKING] {
        let response = decode_response(fixture.as_bytes()).unwrap();
        let encoded = encode_response(&response);
        let body = json_of(&encoded);
        let original = json_of(fixture.as_bytes());
        assert_eq!(body["object"], "chat.completion");
        assert!(body["id"].as_str().unwrap().starts_with("chatcmpl-"));
        assert!(body["created"].as_u64().unwrap() > 1_700_000_000);
        assert_eq!(body["model"], original["model"]);
        let choice = &body["choices"][0];
        assert_eq!(choice["index"], 0);
        assert_eq!(choice["logprobs"], Value::Null);
        assert_eq!(
            choice["finish_reason"],
            original["choices"][0]["finish_reason"]
        );
        assert_eq!(choice["message"]["role"], "assistant");
        assert_eq!(
            choice["message"]["content"],
            original["choices"][0]["message"]["content"]
        );
        assert_eq!(
            choice["message"]["tool_calls"],
            original["choices"][0]["message"]["tool_calls"]
        );
        for key in ["prompt_tokens", "completion_tokens", "total_tokens"] {
            assert_eq!(body["usage"][key], original["usage"][key], "{key}");
        }
        assert_eq!(
            body["usage"]["prompt_tokens_details"]["cached_tokens"],
            original["usage"]["prompt_tokens_details"]["cached_tokens"]
        );
        assert_eq!(
            body["usage"]["completion_tokens_details"]["reasoning_tokens"],
            original["usage"]["completion_tokens_details"]["reasoning_tokens"]
        );

        let again = decode_response(&encoded).unwrap();
        assert_eq!(again.parts, response.parts);
        assert_eq!(again.stop, response.stop);
        assert_eq!(again.usage, response.usage);
        assert_eq!(again.model, response.model);
    }
    let thinking = json_of(&encode_response(
        &decode_response(ANSWER_THINKING.as_bytes()).unwrap(),
    ));
    assert_eq!(
        thinking["choices"][0]["message"]["reasoning_content"],
        "Okay, the user asks for 9.11 vs 9.8. 9.8 is 9.80, which is larger."
    );
    assert_eq!(
        thinking["id"],
        "chatcmpl-930c60df-bf64-41c9-a88e-3ec75f81e00e"
    );
}

#[test]
fn answer_from_another_protocol_encodes() {
    let response = Response {
        id: "msg_013Zva2CMHLNnXjNJJKqJ2EF".into(),
        model: "claude-sonnet-4-5".into(),
        parts: vec![
            Part::Thinking(Thinking {
                text: String::new(),
                signature: Some("EqQBCgIYAhIM".into()),
                redacted: true,
            }),
            Part::Text("Let me check.".into()),
            Part::ToolCall(ToolCall {
                id: "toolu_01".into(),
                name: "get_weather".into(),
                arguments: r#"{"location":"Paris"}"#.into(),
            }),
        ],
        stop: StopReason::ToolUse,
        usage: Usage {
            input: 10,
            output: 20,
            cache_write: 100,
            cache_read: 1000,
            reasoning: 0,
        },
    };
    let body = json_of(&encode_response(&response));
    assert_eq!(body["id"], "chatcmpl-msg_013Zva2CMHLNnXjNJJKqJ2EF");
    let message = &body["choices"][0]["message"];
    assert_eq!(message["content"], "Let me check.");
    assert!(message.get("reasoning_content").is_none());
    assert_eq!(message["tool_calls"][0]["id"], "toolu_01");
    assert_eq!(body["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(body["usage"]["prompt_tokens"], 1110);
    assert_eq!(body["usage"]["total_tokens"], 1130);
    assert_eq!(
        body["usage"]["prompt_tokens_details"]["cached_tokens"],
        1000
    );
}

#[test]
fn answer_errors_and_odd_shapes() {
    let error =
        br#"{"error":{"message":"bad","type":"invalid_request_error","param":null,"code":null}}"#;
    assert_eq!(
        invalid_message(decode_response(error)),
        "the upstream answered with an error: bad"
    );
    assert_eq!(
        invalid_message(decode_response(br#"{"id":"x","choices":[]}"#)),
        "the upstream's answer has no choices"
    );
    assert!(
        invalid_message(decode_response(b"<html>"))
            .starts_with("the upstream's answer is not a chat completion")
    );
    // A compatible server that says "stop" with tool calls, and a refusal.
    let odd = br#"{"id":"x","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"","tool_calls":[{"type":"function","function":{"name":"f","arguments":""}}]},"finish_reason":"stop"}]}"#;
    let response = decode_response(odd).unwrap();
    assert_eq!(response.stop, StopReason::ToolUse);
    assert_eq!(
        response.parts,
        [Part::ToolCall(ToolCall {
            id: "call_0".into(),
            name: "f".into(),
            arguments: "{}".into(),
        })]
    );
    let refusal = br#"{"id":"x","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":null,"refusal":"I can't help with that."},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":6}}"#;
    let response = decode_response(refusal).unwrap();
    assert_eq!(response.stop, StopReason::ContentFilter);
    assert_eq!(
        response.parts,
        [Part::Text("I can't help with that.".into())]
    );
    assert_eq!(response.usage.input, 5);
}

// ---------------------------------------------------------------------------------------------
// Streams: decoding

#[test]
fn stream_text_decodes() {
    let events = decode_stream(STREAM_TEXT.as_bytes());
    assert_eq!(
        events[0],
        Event::Start {
            id: "chatcmpl-BQ7XLkNBEjAoNUUqcRwJ1yYpZYMcE".into(),
            model: "gpt-4o-2024-08-06".into(),
            usage: Usage::default(),
        }
    );
    assert_eq!(
        blocks(&events),
        [(
            Block::Text,
            "Bright sun on the bay,\ngulls call — \"good day\".".into()
        )]
    );
    // One delta per content chunk: nothing waits for the end.
    let deltas = events
        .iter()
        .filter(|e| matches!(e, Event::Delta { .. }))
        .count();
    assert_eq!(deltas, 14);
    assert_eq!(
        finish_of(&events),
        (
            StopReason::EndTurn,
            Usage {
                input: 142,
                output: 14,
                cache_write: 0,
                cache_read: 1024,
                reasoning: 0,
            }
        )
    );
}

#[test]
fn stream_tool_use_decodes() {
    let events = decode_stream(STREAM_TOOL_USE.as_bytes());
    assert_eq!(
        blocks(&events),
        [
            (
                Block::ToolCall {
                    id: "call_DdmO9pD3xa9XTPNJ32zg2hcA".into(),
                    name: "get_weather".into(),
                },
                r#"{"location":"Paris, France"}"#.into()
            ),
            (
                Block::ToolCall {
                    id: "call_ABCDEFGHIJKLMNOPQRSTUVWX".into(),
                    name: "get_weather".into(),
                },
                r#"{"location":"Bogotá, Colombia"}"#.into()
            ),
        ]
    );
    // The arguments stream piece by piece, in order.
    let deltas: Vec<&Event> = events
        .iter()
        .filter(|e| matches!(e, Event::Delta { .. }))
        .collect();
    assert_eq!(deltas.len(), 14);
    assert_eq!(
        deltas[0],
        &Event::Delta {
            index: 0,
            delta: Delta::ToolArguments("{\"".into()),
        }
    );
    assert_eq!(
        finish_of(&events),
        (
            StopReason::ToolUse,
            Usage {
                input: 82,
                output: 46,
                ..Usage::default()
            }
        )
    );
}

#[test]
fn stream_thinking_decodes() {
    let events = decode_stream(STREAM_THINKING.as_bytes());
    assert_eq!(
        events[0],
        Event::Start {
            id: "5a0b6c1e-4f7d-4d8a-9a4b-1c2d3e4f5a6b".into(),
            model: "deepseek-reasoner".into(),
            usage: Usage::default(),
        }
    );
    assert_eq!(
        blocks(&events),
        [
            (
                Block::Thinking,
                "Okay, the user asks for 9.11 vs 9.8. 9.8 is 9.80, which is larger.".into()
            ),
            (Block::Text, "9.8 is greater than 9.11.".into()),
        ]
    );
    // No signature in Chat.
    assert!(!events.iter().any(|e| matches!(
        e,
        Event::Delta {
            delta: Delta::Signature(_),
            ..
        }
    )));
    assert_eq!(
        finish_of(&events),
        (
            StopReason::EndTurn,
            Usage {
                input: 18,
                output: 251,
                cache_write: 0,
                cache_read: 0,
                reasoning: 233,
            }
        )
    );
}

#[test]
fn stream_error_decodes() {
    let events = decode_stream(STREAM_ERROR.as_bytes());
    assert_eq!(blocks(&events), [(Block::Text, "Once upon a".into())]);
    assert_eq!(
        events.last(),
        Some(&Event::Error {
            kind: ErrorKind::Internal,
            message: "The server had an error while processing your request. Sorry about that!"
                .into(),
        })
    );
}

/// Feeds `data:` payloads straight to a decoder.
fn decode_datas(datas: &[&str], end: bool) -> Vec<Event> {
    let mut decoder = Decoder::default();
    let mut out = Vec::new();
    for data in datas {
        decoder.event(None, data, &mut out);
    }
    if end {
        decoder.end(&mut out);
    }
    out
}

#[test]
fn tool_call_pieces_out_of_order_land_in_their_blocks() {
    let chunk = |delta: Value| {
        json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m",
               "choices": [{"index": 0, "delta": delta, "finish_reason": null}]})
        .to_string()
    };
    let piece = |index: u64, arguments: &str| {
        chunk(json!({"tool_calls": [{"index": index, "function": {"arguments": arguments}}]}))
    };
    let datas = [
        chunk(json!({"role": "assistant", "content": "Checking."})),
        chunk(json!({"tool_calls": [{"index": 0, "id": "call_a", "type": "function", "function": {"name": "f", "arguments": "{\"x\":"}}]})),
        // The second call starts before the first is complete …
        chunk(json!({"tool_calls": [{"index": 1, "id": "call_b", "type": "function", "function": {"name": "g", "arguments": "{\"y\""}}]})),
        piece(1, ":2}"),
        // … and text comes while the first is still open.
        chunk(json!({"content": " More."})),
        piece(0, "1}"),
        // Whitespace after a complete call is dropped.
        piece(0, " "),
        // A third call whose name comes in its second piece, with no id.
        chunk(json!({"tool_calls": [{"index": 2, "function": {"arguments": "{}"}}]})),
        chunk(json!({"tool_calls": [{"index": 2, "function": {"name": "h"}}]})),
        json!({"id": "chatcmpl-1", "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}).to_string(),
        "[DONE]".to_owned(),
    ];
    let datas: Vec<&str> = datas.iter().map(String::as_str).collect();
    let events = decode_datas(&datas, true);
    assert_eq!(
        blocks(&events),
        [
            (Block::Text, "Checking.".into()),
            (
                Block::ToolCall {
                    id: "call_a".into(),
                    name: "f".into()
                },
                "{\"x\":1}".into()
            ),
            (
                Block::ToolCall {
                    id: "call_b".into(),
                    name: "g".into()
                },
                "{\"y\":2}".into()
            ),
            (Block::Text, " More.".into()),
            (
                Block::ToolCall {
                    id: "call_1_2".into(),
                    name: "h".into()
                },
                "{}".into()
            ),
        ]
    );
    assert_eq!(finish_of(&events).0, StopReason::ToolUse);
}

#[test]
fn tool_calls_told_apart_by_id_at_one_index() {
    let call = |id: &str, name: &str, arguments: &str| {
        json!({"id": "chatcmpl-2", "choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": 0, "id": id, "type": "function", "function": {"name": name, "arguments": arguments}}
        ]}, "finish_reason": null}]})
        .to_string()
    };
    let finish =
        r#"{"id":"chatcmpl-2","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#;
    // Ollama: every call of a parallel batch at index 0, each whole, with its own id.
    let (a, b) = (
        call("call_a", "f", r#"{"a":1}"#),
        call("call_b", "g", r#"{"b":2}"#),
    );
    let events = decode_datas(&[&a, &b, finish, "[DONE]"], false);
    assert_eq!(
        blocks(&events),
        [
            (
                Block::ToolCall {
                    id: "call_a".into(),
                    name: "f".into()
                },
                r#"{"a":1}"#.into()
            ),
            (
                Block::ToolCall {
                    id: "call_b".into(),
                    name: "g".into()
                },
                r#"{"b":2}"#.into()
            ),
        ]
    );
    // A fresh id on every piece of one call: still one call.
    let (first, second) = (call("x1", "f", r#"{"a":"#), call("x2", "", "1}"));
    let events = decode_datas(&[&first, &second, finish, "[DONE]"], false);
    assert_eq!(
        blocks(&events),
        [(
            Block::ToolCall {
                id: "x1".into(),
                name: "f".into()
            },
            r#"{"a":1}"#.into()
        )]
    );
}

#[test]
fn stream_ends_and_odd_events() {
    let role = r#"{"id":"chatcmpl-9","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#;
    let text = r#"{"id":"chatcmpl-9","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}"#;
    let finish = r#"{"id":"chatcmpl-9","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"length"}]}"#;
    let cut = Event::Error {
        kind: ErrorKind::Upstream,
        message: "the upstream ended the stream before the answer was complete".into(),
    };

    // Cut before the finish_reason: an error, after what was sent.
    let events = decode_datas(&[role, text], true);
    assert_eq!(events.last(), Some(&cut));
    assert_eq!(events.len(), 4);
    // Nothing at all, or [DONE] alone: an error.
    assert_eq!(decode_datas(&[], true), std::slice::from_ref(&cut));
    assert_eq!(decode_datas(&["[DONE]"], false), std::slice::from_ref(&cut));
    // finish_reason seen, no usage chunk and no [DONE]: finished at the end.
    let events = decode_datas(&[role, text, finish], false);
    assert!(
        !events.iter().any(|e| matches!(e, Event::Finish { .. })),
        "Finish waits for the usage"
    );
    let events = decode_datas(&[role, text, finish], true);
    assert_eq!(
        finish_of(&events),
        (StopReason::MaxTokens, Usage::default())
    );
    // Comments, keep-alives and garbage are ignored; nothing after [DONE] counts.
    let events = decode_datas(
        &[
            "",
            ": keep-alive",
            "not json",
            role,
            "{\"broken",
            text,
            finish,
            "[DONE]",
            text,
        ],
        true,
    );
    assert_eq!(blocks(&events), [(Block::Text, "Hi".into())]);
    assert_eq!(finish_of(&events).0, StopReason::MaxTokens);
    // Other choices are not this answer's (n > 1 is refused in requests).
    let other_choice =
        r#"{"id":"c","choices":[{"index":1,"delta":{"content":"other"},"finish_reason":null}]}"#;
    let events = decode_datas(&[role, other_choice, text, finish, "[DONE]"], false);
    assert_eq!(blocks(&events), [(Block::Text, "Hi".into())]);
}

#[test]
fn stream_error_kinds() {
    let kind_of = |error: &str| match decode_datas(&[error], false).as_slice() {
        [Event::Error { kind, message }] => (*kind, message.clone()),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        kind_of(
            r#"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#
        ),
        (ErrorKind::RateLimited, "Rate limit reached".into())
    );
    assert_eq!(
        kind_of(r#"{"error":{"message":"overloaded","type":"overloaded_error"}}"#).0,
        ErrorKind::Overloaded
    );
    assert_eq!(
        kind_of(r#"{"error":{"message":"x","code":429}}"#).0,
        ErrorKind::RateLimited
    );
    assert_eq!(
        kind_of(r#"{"error":"something broke"}"#),
        (ErrorKind::Upstream, "something broke".into())
    );
}

// ---------------------------------------------------------------------------------------------
// Streams: encoding

/// The chunks of an encoded stream, parsed, with `[DONE]` as `None`.
fn wire_chunks(bytes: &[u8]) -> Vec<Option<Value>> {
    sse_events(bytes)
        .into_iter()
        .map(|(name, data)| {
            assert_eq!(name, None, "Chat events have no names");
            (data != "[DONE]").then(|| serde_json::from_str(&data).unwrap())
        })
        .collect()
}

#[test]
fn encoder_writes_what_the_sdk_reads() {
    for fixture in [STREAM_TEXT, STREAM_TOOL_USE, STREAM_THINKING] {
        let events = decode_stream(fixture.as_bytes());
        let bytes = encode_stream(&events, WITH_USAGE);
        let text = std::str::from_utf8(&bytes).unwrap();
        // Byte-exact framing: `data: <json>\n\n` and nothing else.
        for frame in text.split_terminator("\n\n") {
            assert!(
                frame.starts_with("data: ") && !frame.contains('\n'),
                "{frame:?}"
            );
        }
        assert!(text.ends_with("data: [DONE]\n\n"));

        let chunks = wire_chunks(&bytes);
        let (done, chunks) = chunks.split_last().unwrap();
        assert_eq!(done, &None, "[DONE] last");
        let chunks: Vec<Value> = chunks.iter().map(|c| c.clone().unwrap()).collect();
        let first = &chunks[0];
        for chunk in &chunks {
            assert_eq!(chunk["object"], "chat.completion.chunk");
            assert_eq!(chunk["id"], first["id"]);
            assert_eq!(chunk["created"], first["created"]);
            assert_eq!(chunk["model"], first["model"]);
        }
        assert!(first["id"].as_str().unwrap().starts_with("chatcmpl-"));
        // The first chunk announces the answer as the upstream's did (`content: ""` before
        // text, `null` with a tool call, `reasoning_content: ""` before reasoning).
        let original = sse_events(fixture.as_bytes());
        let upstream_first: Value = serde_json::from_str(&original[0].1).unwrap();
        assert_eq!(
            first["choices"][0]["delta"],
            upstream_first["choices"][0]["delta"]
        );
        // Every chunk but the last has "usage": null; the last has no choices and the usage.
        let (usage_chunk, rest) = chunks.split_last().unwrap();
        assert!(
            rest.iter()
                .all(|c| c["usage"].is_null() && c["choices"].as_array().unwrap().len() == 1)
        );
        assert_eq!(usage_chunk["choices"], json!([]));
        let finish = rest.last().unwrap();
        assert_eq!(finish["choices"][0]["delta"], json!({}));
        let original_usage: Value = original
            .iter()
            .filter_map(|(_, d)| serde_json::from_str::<Value>(d).ok())
            .find(|c| !c["usage"].is_null())
            .unwrap()["usage"]
            .clone();
        for key in ["prompt_tokens", "completion_tokens", "total_tokens"] {
            assert_eq!(usage_chunk["usage"][key], original_usage[key], "{key}");
        }
        assert_eq!(
            usage_chunk["usage"]["prompt_tokens_details"]["cached_tokens"],
            original_usage["prompt_tokens_details"]["cached_tokens"]
        );
        assert_eq!(
            usage_chunk["usage"]["completion_tokens_details"]["reasoning_tokens"],
            original_usage["completion_tokens_details"]["reasoning_tokens"]
        );

        // Accumulated as the SDK does: the same answer as the upstream's.
        let accumulate = |chunks: &[Value]| {
            let mut content = String::new();
            let mut reasoning = String::new();
            let mut calls: Vec<(String, String, String)> = Vec::new();
            let mut finish = None;
            for chunk in chunks {
                for choice in chunk["choices"].as_array().unwrap() {
                    let delta = &choice["delta"];
                    content.push_str(delta["content"].as_str().unwrap_or_default());
                    reasoning.push_str(delta["reasoning_content"].as_str().unwrap_or_default());
                    for call in delta["tool_calls"].as_array().into_iter().flatten() {
                        let index = usize::try_from(call["index"].as_u64().unwrap()).unwrap();
                        if index == calls.len() {
                            calls.push(Default::default());
                        }
                        let entry = &mut calls[index];
                        entry.0.push_str(call["id"].as_str().unwrap_or_default());
                        entry
                            .1
                            .push_str(call["function"]["name"].as_str().unwrap_or_default());
                        entry
                            .2
                            .push_str(call["function"]["arguments"].as_str().unwrap_or_default());
                    }
                    if let Some(reason) = choice["finish_reason"].as_str() {
                        finish = Some(reason.to_owned());
                    }
                }
            }
            (content, reasoning, calls, finish)
        };
        let upstream: Vec<Value> = original
            .iter()
            .filter_map(|(_, d)| serde_json::from_str(d).ok())
            .collect();
        assert_eq!(accumulate(&chunks), accumulate(&upstream));

        // Round trip: the encoder's stream decodes to the same events (ids in OpenAI's shape).
        let mut expected = events.clone();
        if let Some(Event::Start { id, .. }) = expected.first_mut() {
            *id = completion_id(id);
        }
        assert_eq!(decode_stream(&bytes), expected);
    }
}

#[test]
fn encoder_tool_pieces_name_the_call_once() {
    let bytes = encode_stream(&decode_stream(STREAM_TOOL_USE.as_bytes()), WITHOUT_USAGE);
    let chunks: Vec<Value> = wire_chunks(&bytes).into_iter().flatten().collect();
    let pieces: Vec<&Value> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"].get(0))
        .collect();
    assert_eq!(
        pieces[0],
        &json!({"index": 0, "id": "call_DdmO9pD3xa9XTPNJ32zg2hcA", "type": "function", "function": {"name": "get_weather", "arguments": ""}})
    );
    assert_eq!(
        pieces[1],
        &json!({"index": 0, "function": {"arguments": "{\""}})
    );
    let second = pieces.iter().position(|p| p["index"] == 1).unwrap();
    assert_eq!(pieces[second]["id"], "call_ABCDEFGHIJKLMNOPQRSTUVWX");
    assert!(
        pieces[second + 1..]
            .iter()
            .all(|p| p.get("id").is_none() && p["function"].get("name").is_none())
    );
    // Without include_usage: no usage field anywhere, no usage chunk.
    assert!(
        chunks
            .iter()
            .all(|c| c.get("usage").is_none() && c["choices"].as_array().unwrap().len() == 1)
    );
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "tool_calls"
    );
}

#[test]
fn encoder_errors_and_foreign_events() {
    let events = decode_stream(STREAM_ERROR.as_bytes());
    let bytes = encode_stream(&events, WITH_USAGE);
    let text = std::str::from_utf8(&bytes).unwrap();
    assert!(!text.contains("[DONE]"), "no [DONE] after an error");
    let last = wire_chunks(&bytes).pop().unwrap().unwrap();
    assert_eq!(
        last,
        json!({"error": {
            "message": "The server had an error while processing your request. Sorry about that!",
            "type": "server_error",
            "code": "internal_error",
            "param": null,
        }})
    );
    assert_eq!(decode_stream(&bytes), events);

    // Events from another protocol: a redacted thinking block and signatures have no field.
    let events = vec![
        Event::Start {
            id: "msg_01".into(),
            model: "claude".into(),
            usage: Usage {
                input: 5,
                ..Usage::default()
            },
        },
        Event::BlockStart {
            index: 0,
            block: Block::RedactedThinking { data: "abc".into() },
        },
        Event::BlockStop { index: 0 },
        Event::BlockStart {
            index: 1,
            block: Block::Thinking,
        },
        Event::Delta {
            index: 1,
            delta: Delta::Thinking("hmm".into()),
        },
        Event::Delta {
            index: 1,
            delta: Delta::Signature("sig".into()),
        },
        Event::BlockStop { index: 1 },
        Event::Finish {
            stop: StopReason::StopSequence(Some("END".into())),
            usage: Usage {
                input: 5,
                output: 7,
                cache_write: 2,
                cache_read: 3,
                reasoning: 0,
            },
        },
    ];
    let chunks: Vec<Value> = wire_chunks(&encode_stream(&events, WITH_USAGE))
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(chunks.len(), 4);
    assert_eq!(chunks[0]["id"], "chatcmpl-msg_01");
    assert_eq!(
        chunks[1]["choices"][0]["delta"],
        json!({"reasoning_content": "hmm"})
    );
    assert_eq!(chunks[2]["choices"][0]["finish_reason"], "stop");
    assert_eq!(chunks[3]["usage"]["prompt_tokens"], 10);
    assert_eq!(chunks[3]["usage"]["total_tokens"], 17);

    // An empty answer still has its role chunk; an error before any block is alone.
    let empty = [
        Event::Start {
            id: String::new(),
            model: "m".into(),
            usage: Usage::default(),
        },
        Event::Finish {
            stop: StopReason::EndTurn,
            usage: Usage::default(),
        },
    ];
    let chunks: Vec<Value> = wire_chunks(&encode_stream(&empty, WITHOUT_USAGE))
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": "", "refusal": null})
    );
    assert!(chunks[0]["id"].as_str().unwrap().len() > "chatcmpl-".len());
    assert_eq!(chunks[1]["choices"][0]["finish_reason"], "stop");
    let early_error = [
        empty[0].clone(),
        Event::Error {
            kind: ErrorKind::Overloaded,
            message: "busy".into(),
        },
    ];
    let bytes = encode_stream(&early_error, WITH_USAGE);
    assert_eq!(
        std::str::from_utf8(&bytes).unwrap(),
        "data: {\"error\":{\"code\":\"overloaded\",\"message\":\"busy\",\"param\":null,\"type\":\"overloaded_error\"}}\n\n"
    );
}

// ---------------------------------------------------------------------------------------------
// Streams: cut at every byte

/// The client's events as text: each `data:` payload with its `created` value blanked (it is
/// the encoder's clock), and the usage figures of usage chunks too when `blank_usage`.
fn client_events(bytes: &[u8], blank_usage: bool) -> Vec<String> {
    let text = std::str::from_utf8(bytes).unwrap();
    text.split_terminator("\n\n")
        .map(|frame| {
            let data = frame.strip_prefix("data: ").unwrap();
            let mut event = match data.find("\"created\":") {
                Some(at) => {
                    let digits = at + "\"created\":".len();
                    let end = data[digits..]
                        .find(|c: char| !c.is_ascii_digit())
                        .map_or(data.len(), |n| digits + n);
                    format!("{}{}", &data[..digits], &data[end..])
                }
                None => data.to_owned(),
            };
            if blank_usage && let Some(at) = event.find("\"usage\":{") {
                event.truncate(at);
            }
            event
        })
        .collect()
}

#[test]
fn every_cut_gives_a_prefix_and_at_most_one_error() {
    for options in [WITHOUT_USAGE, WITH_USAGE] {
        // With usage, a cut between the finish_reason chunk and the usage chunk finishes with
        // the usage known so far: only the figures may differ.
        let blank = options.include_usage;
        for fixture in [STREAM_TEXT, STREAM_TOOL_USE, STREAM_THINKING, STREAM_ERROR] {
            let input = fixture.as_bytes();
            let mut whole =
                StreamConverter::new(Protocol::OpenAiChat, Protocol::OpenAiChat, options);
            let mut full_bytes = whole.feed(input).to_vec();
            full_bytes.extend_from_slice(&whole.finish());
            let full = client_events(&full_bytes, blank);

            // The same bytes fed one at a time give the same output.
            let mut trickle =
                StreamConverter::new(Protocol::OpenAiChat, Protocol::OpenAiChat, options);
            let mut bytes = Vec::new();
            for byte in input.chunks(1) {
                bytes.extend_from_slice(&trickle.feed(byte));
            }
            bytes.extend_from_slice(&trickle.finish());
            assert_eq!(client_events(&bytes, blank), full, "fed byte by byte");

            for k in 0..=input.len() {
                // Cut at k.
                let mut cut =
                    StreamConverter::new(Protocol::OpenAiChat, Protocol::OpenAiChat, options);
                let mut bytes = cut.feed(&input[..k]).to_vec();
                bytes.extend_from_slice(&cut.finish());
                let events = client_events(&bytes, blank);
                let prefix = events.iter().zip(&full).take_while(|(a, b)| a == b).count();
                let rest = &events[prefix..];
                match rest {
                    [] => {}
                    [error] => {
                        let error: Value = serde_json::from_str(error).unwrap();
                        assert!(error["error"]["message"].is_string(), "cut at {k}: {error}");
                        assert!(!events[..prefix].iter().any(|e| e.contains("\"error\"")));
                    }
                    more => panic!("cut at {k}: more than one event after the prefix: {more:?}"),
                }
                if events.last().is_some_and(|e| e == "[DONE]") {
                    assert_eq!(
                        events, full,
                        "cut at {k}: [DONE] only after the whole answer"
                    );
                }
            }
        }
    }
}
