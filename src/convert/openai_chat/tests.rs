#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

use serde_json::{Value, json};

use super::*;
use crate::convert::ir::{
    Document, Effort, Media, Message, Part, Reasoning, ResponseFormat, Role, Thinking, Tool,
    ToolCall, ToolChoice, ToolResult,
};

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
