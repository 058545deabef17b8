#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

use serde_json::{Value, json};

use super::*;
use crate::convert::ir::{
    Document, Effort, Media, Message, Part, Reasoning, ResponseFormat, Role, StopReason, Thinking,
    Tool, ToolCall, ToolChoice, ToolResult, Usage,
};

const ANSWER_TEXT: &str = include_str!("../../../tests/golden/openai_chat/answer_text.json");
const ANSWER_TOOL_USE: &str =
    include_str!("../../../tests/golden/openai_chat/answer_tool_use.json");
const ANSWER_THINKING: &str =
    include_str!("../../../tests/golden/openai_chat/answer_thinking.json");
const REQUEST_FULL: &str = include_str!("../../../tests/golden/openai_chat/request_full.json");

// ---------------------------------------------------------------------------------------------
// Helpers

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
