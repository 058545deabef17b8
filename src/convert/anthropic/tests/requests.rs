//! Requests: `request_full.json` field by field and round trip, the API's rules on encoding,
//! refused and malformed inputs.

use base64::Engine as _;
use serde_json::{Value, json};

use super::{assistant, invalid_message, json_of, text, user};
use crate::convert::ConvertError;
use crate::convert::anthropic::{decode_request, encode_request, request};
use crate::convert::ir::{
    Document, Effort, Media, Part, Reasoning, Request, ResponseFormat, Role, Thinking, Tool,
    ToolCall, ToolChoice, ToolResult,
};
use crate::providers::Protocol;

const REQUEST_FULL: &str = include_str!("../../../../tests/golden/anthropic/request_full.json");

fn minimal_request() -> Request {
    Request {
        model: "claude-sonnet-4-5".into(),
        messages: vec![user(vec![text("Hello")])],
        ..Request::default()
    }
}

fn encoded(request: &Request) -> Value {
    serde_json::from_slice(&encode_request(request).unwrap()).unwrap()
}

fn unsupported_feature(result: Result<Request, ConvertError>) -> String {
    match result {
        Err(ConvertError::Unsupported { feature, target }) => {
            assert_eq!(target, Protocol::Anthropic);
            feature
        }
        other => panic!("expected an unsupported feature, got {other:?}"),
    }
}

#[test]
fn request_full_decodes_field_by_field() {
    let request = decode_request(REQUEST_FULL.as_bytes()).unwrap();
    assert_eq!(request.model, "claude-sonnet-4-5-20250929");
    assert_eq!(
        request.system,
        [
            "You are a helpful travel assistant.",
            "Answer in the requested JSON format."
        ]
    );
    assert_eq!(request.max_tokens, Some(4096));
    assert_eq!(request.temperature, Some(1.0));
    assert_eq!((request.top_p, request.top_k), (None, None));
    assert_eq!(request.stop, ["\n\nHuman:", "END_OF_ANSWER"]);
    assert!(request.stream);
    assert_eq!(
        request.user.as_deref(),
        Some("13803d75-b4b5-4c3e-b2a2-6f21399b021b")
    );
    assert_eq!(
        request.reasoning,
        Some(Reasoning {
            budget_tokens: Some(2048),
            effort: None
        })
    );
    assert_eq!(request.tool_choice, Some(ToolChoice::Auto));
    assert_eq!(request.parallel_tool_calls, Some(false));
    match &request.response_format {
        Some(ResponseFormat::JsonSchema {
            name,
            schema,
            strict,
        }) => {
            assert_eq!(name, "response");
            assert!(strict);
            assert_eq!(schema["required"], json!(["packing_list", "summary"]));
        }
        other => panic!("response format: {other:?}"),
    }

    assert_eq!(request.tools.len(), 2);
    assert_eq!(request.tools[0].name, "get_weather");
    assert_eq!(
        request.tools[0].description.as_deref(),
        Some("Get the current weather in a given location")
    );
    assert_eq!(request.tools[0].parameters["required"], json!(["location"]));
    assert_eq!(request.tools[1].name, "get_time");
    assert!(request.tools[1].parameters.get("cache_control").is_none());

    assert_eq!(request.messages.len(), 3);
    let [first, second, third] = &request.messages[..] else {
        unreachable!()
    };
    assert_eq!(first.role, Role::User);
    assert_eq!(first.parts.len(), 6);
    assert!(matches!(&first.parts[0], Part::Text(t) if t.starts_with("I am flying")));
    assert!(matches!(&first.parts[1],
        Part::Image(Media::Base64 { media_type, data }) if media_type == "image/png" && data.starts_with("iVBOR")));
    assert!(matches!(&first.parts[2],
        Part::Image(Media::Url { url }) if url.ends_with("Camponotus_flavomarginatus_ant.jpg")));
    assert!(matches!(&first.parts[3],
        Part::Document(Document { source: Media::Base64 { media_type, data }, title: Some(title) })
            if media_type == "application/pdf" && data.starts_with("JVBERi0") && title == "Boarding pass"));
    match &first.parts[4] {
        Part::Document(Document {
            source: Media::Base64 { media_type, data },
            title,
        }) => {
            assert_eq!(media_type, "text/plain");
            let text = base64::engine::general_purpose::STANDARD
                .decode(data)
                .unwrap();
            assert_eq!(text, b"Day 1: Golden Gate Bridge. Day 2: Alcatraz.");
            assert_eq!(title.as_deref(), Some("Itinerary"));
        }
        other => panic!("text document: {other:?}"),
    }
    assert!(matches!(&first.parts[5],
        Part::Document(Document { source: Media::Url { url }, title: None }) if url.ends_with(".pdf")));

    assert_eq!(second.role, Role::Assistant);
    assert_eq!(
        second.parts[0],
        Part::Thinking(Thinking {
            text: "The user wants the weather and the local time in San Francisco. I should call both tools at once.".into(),
            signature: Some("EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds...".into()),
            redacted: false,
        })
    );
    assert_eq!(
        second.parts[1],
        text("Let me check the weather and the local time.")
    );
    let Part::ToolCall(weather) = &second.parts[2] else {
        panic!("{:?}", second.parts[2])
    };
    assert_eq!(weather.id, "toolu_01A09q90qw90lq917835lq9");
    assert_eq!(weather.name, "get_weather");
    assert_eq!(
        json_of(&weather.arguments),
        json!({"location": "San Francisco, CA", "unit": "celsius"})
    );
    let Part::ToolCall(time) = &second.parts[3] else {
        panic!("{:?}", second.parts[3])
    };
    assert_eq!(
        (time.id.as_str(), time.name.as_str()),
        ("toolu_01B2d4f6h8j0k2m4n6p8r0t2", "get_time")
    );
    assert_eq!(
        json_of(&time.arguments),
        json!({"timezone": "America/Los_Angeles"})
    );

    assert_eq!(third.role, Role::User);
    assert_eq!(
        third.parts[0],
        Part::ToolResult(ToolResult {
            call_id: "toolu_01A09q90qw90lq917835lq9".into(),
            name: None,
            content: vec![text("15 degrees, foggy")],
            is_error: false,
        })
    );
    let Part::ToolResult(clock) = &third.parts[1] else {
        panic!("{:?}", third.parts[1])
    };
    assert_eq!(clock.call_id, "toolu_01B2d4f6h8j0k2m4n6p8r0t2");
    assert!(clock.is_error);
    assert_eq!(clock.content.len(), 2);
    assert!(matches!(&clock.content[1],
        Part::Image(Media::Base64 { media_type, .. }) if media_type == "image/jpeg"));
    assert_eq!(third.parts[2], text("What should I pack?"));
}

#[test]
fn request_full_round_trips() {
    let request = decode_request(REQUEST_FULL.as_bytes()).unwrap();
    let body = encode_request(&request).unwrap();
    assert_eq!(decode_request(&body).unwrap(), request);
}

#[test]
fn encoded_request_is_what_the_api_takes() {
    let request = decode_request(REQUEST_FULL.as_bytes()).unwrap();
    let body = encoded(&request);
    assert_eq!(body["max_tokens"], 4096);
    assert_eq!(
        body["thinking"],
        json!({"type": "enabled", "budget_tokens": 2048})
    );
    assert_eq!(body["temperature"], 1.0);
    assert_eq!(body["stream"], true);
    assert_eq!(
        body["metadata"],
        json!({"user_id": "13803d75-b4b5-4c3e-b2a2-6f21399b021b"})
    );
    assert_eq!(
        body["tool_choice"],
        json!({"type": "auto", "disable_parallel_tool_use": true})
    );
    assert_eq!(body["output_config"]["format"]["type"], "json_schema");
    assert_eq!(
        body["system"][1],
        json!({"type": "text", "text": "Answer in the requested JSON format."})
    );
    // cache_control and document context are hints: dropped.
    assert!(!body.to_string().contains("cache_control"));
    assert!(!body.to_string().contains("Written by the traveller"));
    let documents = &body["messages"][0]["content"];
    assert_eq!(
        documents[4],
        json!({"type": "document", "title": "Itinerary", "source": {
            "type": "text", "media_type": "text/plain",
            "data": "Day 1: Golden Gate Bridge. Day 2: Alcatraz."}})
    );
    assert_eq!(
        body["messages"][2]["content"][0],
        json!({"type": "tool_result", "tool_use_id": "toolu_01A09q90qw90lq917835lq9",
               "content": [{"type": "text", "text": "15 degrees, foggy"}]})
    );
    assert_eq!(body["messages"][2]["content"][1]["is_error"], true);
    assert_eq!(
        body["messages"][1]["content"][2]["input"],
        json!({"location": "San Francisco, CA", "unit": "celsius"})
    );
}

#[test]
fn encoding_fills_what_anthropic_requires() {
    let body = encoded(&minimal_request());
    assert_eq!(
        body,
        json!({
            "model": "claude-sonnet-4-5",
            "max_tokens": 8192,
            "messages": [{"role": "user", "content": [{"type": "text", "text": "Hello"}]}],
        })
    );

    let request = Request {
        tools: vec![Tool {
            name: "noop".into(),
            description: None,
            parameters: Value::Null,
        }],
        parallel_tool_calls: Some(false),
        seed: Some(7),
        presence_penalty: Some(0.5),
        frequency_penalty: Some(0.5),
        system: vec!["Be brief.".into()],
        ..minimal_request()
    };
    let body = encoded(&request);
    assert_eq!(
        body["tools"],
        json!([{"name": "noop", "input_schema": {"type": "object", "properties": {}}}])
    );
    assert_eq!(
        body["tool_choice"],
        json!({"type": "auto", "disable_parallel_tool_use": true})
    );
    assert_eq!(body["system"], "Be brief.");
    for dropped in ["seed", "presence_penalty", "frequency_penalty"] {
        assert!(body.get(dropped).is_none(), "{dropped}");
    }
}

#[test]
fn thinking_keeps_within_the_apis_rules() {
    let request = Request {
        max_tokens: Some(1000),
        temperature: Some(0.5),
        top_p: Some(0.9),
        top_k: Some(40),
        reasoning: Some(Reasoning {
            budget_tokens: None,
            effort: Some(Effort::High),
        }),
        ..minimal_request()
    };
    let body = encoded(&request);
    assert_eq!(
        body["thinking"],
        json!({"type": "enabled", "budget_tokens": 24576})
    );
    assert_eq!(body["max_tokens"], 24576 + 4096);
    for dropped in ["temperature", "top_p", "top_k"] {
        assert!(body.get(dropped).is_none(), "{dropped}");
    }

    // A budget under Anthropic's minimum is raised; a max_tokens above it is kept; top_p ≥
    // 0.95 and temperature 1 are allowed with thinking.
    let request = Request {
        max_tokens: Some(4000),
        temperature: None,
        top_p: Some(0.95),
        reasoning: Some(Reasoning {
            budget_tokens: Some(500),
            effort: None,
        }),
        ..minimal_request()
    };
    let body = encoded(&request);
    assert_eq!(body["thinking"]["budget_tokens"], 1024);
    assert_eq!(body["max_tokens"], 4000);
    assert_eq!(body["top_p"], 0.95);

    // A zero budget means no thinking.
    let request = Request {
        reasoning: Some(Reasoning {
            budget_tokens: Some(0),
            effort: None,
        }),
        ..minimal_request()
    };
    assert!(encoded(&request).get("thinking").is_none());
}

#[test]
fn temperature_wins_over_top_p() {
    let request = Request {
        temperature: Some(0.7),
        top_p: Some(0.9),
        top_k: Some(40),
        ..minimal_request()
    };
    let body = encoded(&request);
    assert_eq!(body["temperature"], 0.7);
    assert!(body.get("top_p").is_none());
    assert_eq!(body["top_k"], 40);

    let decoded = decode_request(
        br#"{"model":"m","max_tokens":10,"top_p":0.9,"top_k":40,"messages":[{"role":"user","content":"Hi"}]}"#,
    )
    .unwrap();
    assert_eq!((decoded.top_p, decoded.top_k), (Some(0.9), Some(40)));
    let body = encoded(&decoded);
    assert_eq!(
        (body["top_p"].clone(), body["top_k"].clone()),
        (json!(0.9), json!(40))
    );
}

#[test]
fn thinking_is_left_out_where_anthropic_refuses_it() {
    let reasoning = Some(Reasoning {
        budget_tokens: Some(2048),
        effort: None,
    });
    let tool = Tool {
        name: "get_weather".into(),
        description: None,
        parameters: json!({"type": "object"}),
    };
    // A forced tool.
    let request = Request {
        tools: vec![tool.clone()],
        tool_choice: Some(ToolChoice::Tool("get_weather".into())),
        reasoning,
        ..minimal_request()
    };
    let body = encoded(&request);
    assert!(body.get("thinking").is_none());
    assert_eq!(
        body["tool_choice"],
        json!({"type": "tool", "name": "get_weather"})
    );

    // A tool loop whose assistant turn has no signed thinking (it came from another protocol).
    let call = ToolCall {
        id: "call_1".into(),
        name: "get_weather".into(),
        arguments: r#"{"location":"Paris"}"#.into(),
    };
    let result = ToolResult {
        call_id: "call_1".into(),
        name: Some("get_weather".into()),
        content: vec![text("sunny")],
        is_error: false,
    };
    let mut request = Request {
        tools: vec![tool],
        reasoning,
        messages: vec![
            user(vec![text("Weather in Paris?")]),
            assistant(vec![
                Part::Thinking(Thinking {
                    text: "unsigned reasoning".into(),
                    signature: None,
                    redacted: false,
                }),
                Part::ToolCall(call),
            ]),
            user(vec![Part::ToolResult(result)]),
        ],
        ..minimal_request()
    };
    let body = encoded(&request);
    assert!(body.get("thinking").is_none());
    assert_eq!(body["messages"][1]["content"][0]["type"], "tool_use");

    // The same loop with a signed thinking block keeps thinking.
    request.messages[1].parts[0] = Part::Thinking(Thinking {
        text: "signed".into(),
        signature: Some("sig".into()),
        redacted: false,
    });
    let body = encoded(&request);
    assert_eq!(body["thinking"]["budget_tokens"], 2048);
    assert_eq!(
        body["messages"][1]["content"][0],
        json!({"type": "thinking", "thinking": "signed", "signature": "sig"})
    );
}

#[test]
fn encoding_orders_and_cleans_the_turns() {
    let request = Request {
        messages: vec![
            user(vec![text("Hi"), text("")]),
            // Nothing sendable: the turn is left out.
            assistant(vec![Part::Thinking(Thinking {
                text: "hmm".into(),
                signature: None,
                redacted: false,
            })]),
            assistant(vec![
                Part::Thinking(Thinking {
                    text: String::new(),
                    signature: Some("EmwKAhgB".into()),
                    redacted: true,
                }),
                Part::ToolCall(ToolCall {
                    id: "call:1/2".into(),
                    name: "f".into(),
                    arguments: String::new(),
                }),
            ]),
            user(vec![
                text("and then?"),
                Part::ToolResult(ToolResult {
                    call_id: "call:1/2".into(),
                    name: None,
                    content: vec![],
                    is_error: false,
                }),
            ]),
        ],
        ..minimal_request()
    };
    let body = encoded(&request);
    assert_eq!(
        body["messages"],
        json!([
            {"role": "user", "content": [{"type": "text", "text": "Hi"}]},
            {"role": "assistant", "content": [
                {"type": "redacted_thinking", "data": "EmwKAhgB"},
                {"type": "tool_use", "id": "call_1_2", "name": "f", "input": {}},
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "call_1_2"},
                {"type": "text", "text": "and then?"},
            ]},
        ])
    );
}

#[test]
fn response_formats() {
    let request = Request {
        system: vec!["Be brief.".into()],
        response_format: Some(ResponseFormat::JsonObject),
        ..minimal_request()
    };
    let body = encoded(&request);
    assert_eq!(
        body["system"],
        json!([
            {"type": "text", "text": "Be brief."},
            {"type": "text", "text": request::JSON_OBJECT_INSTRUCTION},
        ])
    );
    assert!(body.get("output_config").is_none());

    let request = Request {
        response_format: Some(ResponseFormat::JsonSchema {
            name: "weather".into(),
            schema: json!({"type": "object", "properties": {"t": {"type": "number"}}}),
            strict: false,
        }),
        ..minimal_request()
    };
    assert_eq!(
        encoded(&request)["output_config"],
        json!({"format": {"type": "json_schema",
            "schema": {"type": "object", "properties": {"t": {"type": "number"}}}}})
    );
    let request = Request {
        response_format: Some(ResponseFormat::Text),
        ..minimal_request()
    };
    assert!(encoded(&request).get("output_config").is_none());

    // The structured-outputs beta's top-level field reads the same.
    let decoded = decode_request(
        br#"{"model":"m","max_tokens":10,"messages":[{"role":"user","content":"Hi"}],
            "output_format":{"type":"json_schema","schema":{"type":"object"}}}"#,
    )
    .unwrap();
    assert_eq!(
        decoded.response_format,
        Some(ResponseFormat::JsonSchema {
            name: "response".into(),
            schema: json!({"type": "object"}),
            strict: true
        })
    );
}

#[test]
fn documents_anthropic_cannot_take_are_refused() {
    let document = |media_type: &str, data: &str| Request {
        messages: vec![user(vec![Part::Document(Document {
            source: Media::Base64 {
                media_type: media_type.into(),
                data: data.into(),
            },
            title: None,
        })])],
        ..minimal_request()
    };
    match encode_request(&document("application/msword", "AAAA")) {
        Err(ConvertError::Unsupported { feature, .. }) => {
            assert_eq!(feature, "application/msword documents");
        }
        other => panic!("{other:?}"),
    }
    let csv = base64::engine::general_purpose::STANDARD.encode("a,b\n1,2\n");
    assert_eq!(
        encoded(&document("text/csv", &csv))["messages"][0]["content"][0]["source"],
        json!({"type": "text", "media_type": "text/plain", "data": "a,b\n1,2\n"})
    );
    let message = invalid_message(encode_request(&document("text/plain", "%%%")));
    assert!(message.contains("text/plain document"), "{message}");

    let bad_arguments = Request {
        messages: vec![assistant(vec![Part::ToolCall(ToolCall {
            id: "call_9".into(),
            name: "f".into(),
            arguments: "[1, 2".into(),
        })])],
        ..minimal_request()
    };
    let message = invalid_message(encode_request(&bad_arguments));
    assert!(message.contains("call_9"), "{message}");
}

#[test]
fn decoding_other_request_shapes() {
    let decoded = decode_request(
        br#"{"model":"m","max_tokens":64,"system":"Be brief.","messages":[
            {"role":"user","content":[{"type":"image","source":{"type":"url","url":"data:image/png;base64,iVBOR"}}]},
            {"role":"assistant","content":"Sure"}],
            "thinking":{"type":"adaptive"},"output_config":{"effort":"max"},
            "service_tier":"auto","context_management":{"edits":[]},"cache_control":{"type":"ephemeral"}}"#,
    )
    .unwrap();
    assert_eq!(decoded.system, ["Be brief."]);
    assert_eq!(
        decoded.messages,
        [
            user(vec![Part::Image(Media::Base64 {
                media_type: "image/png".into(),
                data: "iVBOR".into()
            })]),
            assistant(vec![text("Sure")]),
        ]
    );
    assert_eq!(
        decoded.reasoning,
        Some(Reasoning {
            budget_tokens: None,
            effort: Some(Effort::High)
        })
    );
    assert_eq!(decoded.stop, Vec::<String>::new());
    assert!(!decoded.stream);

    let body = |thinking: &str| {
        format!(
            r#"{{"model":"m","max_tokens":64,"messages":[{{"role":"user","content":"Hi"}}],{thinking}}}"#
        )
    };
    let reasoning = |extra: &str| decode_request(body(extra).as_bytes()).unwrap().reasoning;
    assert_eq!(reasoning(r#""thinking":{"type":"disabled"}"#), None);
    assert_eq!(
        reasoning(r#""thinking":{"type":"disabled"},"output_config":{"effort":"low"}"#),
        None
    );
    assert_eq!(
        reasoning(r#""output_config":{"effort":"low"}"#),
        Some(Reasoning {
            budget_tokens: None,
            effort: Some(Effort::Low)
        })
    );
    assert_eq!(
        reasoning(r#""tool_choice":{"type":"any"},"thinking":{"type":"between_tools"}"#),
        None
    );
    let choice = |extra: &str| {
        let r = decode_request(body(extra).as_bytes()).unwrap();
        (r.tool_choice, r.parallel_tool_calls)
    };
    assert_eq!(
        choice(r#""tool_choice":{"type":"any"}"#),
        (Some(ToolChoice::Required), None)
    );
    assert_eq!(
        choice(r#""tool_choice":{"type":"none"}"#),
        (Some(ToolChoice::None), None)
    );
    assert_eq!(
        choice(r#""tool_choice":{"type":"tool","name":"f","disable_parallel_tool_use":true}"#),
        (Some(ToolChoice::Tool("f".into())), Some(false))
    );
}

#[test]
fn features_a_conversion_cannot_carry_are_refused_by_name() {
    let with = |extra: &str, content: &str| {
        decode_request(
            format!(r#"{{"model":"m","max_tokens":64,"messages":[{{"role":"user","content":{content}}}]{extra}}}"#)
                .as_bytes(),
        )
    };
    let cases = [
        (
            r#","tools":[{"type":"web_search_20250305","name":"web_search","max_uses":5}]"#,
            r#""Hi""#,
            "the `web_search_20250305` tool",
        ),
        (
            r#","tools":[{"type":"bash_20250124","name":"bash"}]"#,
            r#""Hi""#,
            "the `bash_20250124` tool",
        ),
        (
            r#","tools":[{"type":"text_editor_20250728","name":"str_replace_based_edit_tool"}]"#,
            r#""Hi""#,
            "the `text_editor_20250728` tool",
        ),
        (
            r#","mcp_servers":[{"type":"url","url":"https://example.com/sse","name":"x"}]"#,
            r#""Hi""#,
            "mcp_servers",
        ),
        (
            r#","container":"container_011CQUKGYPTAi4k5pzB3PDeN""#,
            r#""Hi""#,
            "container",
        ),
        (
            r#","thinking":{"type":"interleaved"}"#,
            r#""Hi""#,
            "thinking type `interleaved`",
        ),
        (
            "",
            r#"[{"type":"image","source":{"type":"file","file_id":"file_011CNha8iCJcU1wXNR6q4V8w"}}]"#,
            "image file sources (file_id)",
        ),
        (
            "",
            r#"[{"type":"document","source":{"type":"file","file_id":"file_011CNha8iCJcU1wXNR6q4V8w"}}]"#,
            "document file sources (file_id)",
        ),
        (
            "",
            r#"[{"type":"document","source":{"type":"text","media_type":"text/plain","data":"x"},"citations":{"enabled":true}}]"#,
            "document citations",
        ),
        (
            "",
            r#"[{"type":"server_tool_use","id":"srvtoolu_014hJH82Qum7Td6UV8gDXThB","name":"web_search","input":{}}]"#,
            "`server_tool_use` content blocks",
        ),
        (
            "",
            r#"[{"type":"search_result","source":"https://example.com","title":"t","content":[]}]"#,
            "`search_result` content blocks",
        ),
    ];
    for (extra, content, feature) in cases {
        assert_eq!(unsupported_feature(with(extra, content)), feature);
    }
    // An empty list of MCP servers and a null container ask for nothing.
    assert!(with(r#","mcp_servers":[],"container":null"#, r#""Hi""#).is_ok());
}

#[test]
fn malformed_requests_name_the_field() {
    let cases: [(&[u8], &str); 10] = [
        (b"{", "not valid JSON"),
        (b"[]", "JSON object"),
        (br#"{"model":"m","max_tokens":1}"#, "messages"),
        (br#"{"max_tokens":1,"messages":[]}"#, "model: missing"),
        (
            br#"{"model":"m","messages":[{"role":"tool","content":"x"}]}"#,
            "messages[0].role",
        ),
        (
            br#"{"model":"m","messages":[{"role":"user","content":3}]}"#,
            "messages[0].content",
        ),
        (
            br#"{"model":"m","messages":[{"role":"user","content":[{"type":"tool_result"}]}]}"#,
            "messages[0].content[0].tool_use_id: missing",
        ),
        (
            br#"{"model":"m","max_tokens":"lots","messages":[]}"#,
            "max_tokens: must be a non-negative integer",
        ),
        (
            br#"{"model":"m","messages":[],"tools":[{"name":"f"}]}"#,
            "tools[0].input_schema",
        ),
        (
            br#"{"model":"m","messages":[],"thinking":{"type":"enabled"}}"#,
            "thinking.budget_tokens: missing",
        ),
    ];
    for (body, expected) in cases {
        let message = invalid_message(decode_request(body));
        assert!(
            message.contains(expected),
            "{message:?} should name {expected:?}"
        );
    }
}

#[test]
fn a_system_message_among_the_turns_joins_the_system_prompt() {
    // Claude Code sends its instructions both in `system` and as a `system`-role message.
    let body = json!({
        "model": "claude-sonnet-4-5", "max_tokens": 100,
        "system": [{"type": "text", "text": "You are Claude Code."}],
        "messages": [
            {"role": "system", "content": [{"type": "text", "text": "Mind the repository."}]},
            {"role": "user", "content": "hi"}
        ]
    });
    let request = decode_request(body.to_string().as_bytes()).unwrap();
    assert_eq!(
        request.system,
        ["You are Claude Code.", "Mind the repository."]
    );
    assert_eq!(request.messages.len(), 1);
    assert_eq!(request.messages[0].role, Role::User);
}
