#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

use serde_json::{Value, json};

use super::super::ir::{
    Block, Delta, Document, Event, Media, Message, Part, Reasoning, Request, Response,
    ResponseFormat, Role, StopReason, Thinking, Tool, ToolCall, ToolChoice, ToolResult, Usage,
};
use super::super::{ConvertError, StreamDecoder, StreamEncoder, StreamOptions};
use super::*;
use crate::providers::{ErrorKind, Protocol, SseParser};

const REQUEST_FULL: &str = include_str!("../../../tests/golden/gemini/request_full.json");
const ANSWER_TEXT: &str = include_str!("../../../tests/golden/gemini/answer_text.json");
const ANSWER_TOOL_USE: &str = include_str!("../../../tests/golden/gemini/answer_tool_use.json");
const ANSWER_THINKING: &str = include_str!("../../../tests/golden/gemini/answer_thinking.json");
const STREAM_TEXT: &str = include_str!("../../../tests/golden/gemini/stream_text.sse");
const STREAM_TOOL_USE: &str = include_str!("../../../tests/golden/gemini/stream_tool_use.sse");
const STREAM_THINKING: &str = include_str!("../../../tests/golden/gemini/stream_thinking.sse");
const STREAM_ERROR: &str = include_str!("../../../tests/golden/gemini/stream_error.sse");

const SIG_CALL: &str = "CiQBcsjafBQ3Kx1W0Sx+V1bE0nTkGHAEhJ0b4Q2pQfS1lyZk1pgKYgFyyNp8";
const SIG_TEXT: &str = "EtYBCtMBAdHtim9Qa3Bq9MkV0i0CqLgfEnvW3qbz8K9oOV+2ypGxTUgA0Hk=";

fn text(t: &str) -> Part {
    Part::Text(t.to_owned())
}

fn thinking(t: &str, signature: Option<&str>) -> Part {
    Part::Thinking(Thinking {
        text: t.to_owned(),
        signature: signature.map(str::to_owned),
        redacted: false,
    })
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

fn unsupported(feature: &str) -> ConvertError {
    ConvertError::unsupported(feature, PROTOCOL)
}

fn invalid_message(result: Result<Request, ConvertError>) -> String {
    match result {
        Err(ConvertError::Invalid(message)) => message,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

// ---- requests ------------------------------------------------------------------------------

#[test]
fn request_full_decodes_field_by_field() {
    let request = decode_request(REQUEST_FULL.as_bytes()).unwrap();
    assert_eq!(request.model, "", "the model is in the URL");
    assert!(!request.stream);
    assert_eq!(
        request.system,
        ["You are a concise travel assistant.", "Answer in JSON."]
    );
    assert_eq!(request.messages.len(), 5);

    let user = &request.messages[0];
    assert_eq!(user.role, Role::User);
    assert_eq!(user.parts.len(), 4);
    assert_eq!(
        user.parts[0],
        text("What is the weather like where these photos were taken? The itinerary is attached.")
    );
    let Part::Image(Media::Base64 { media_type, data }) = &user.parts[1] else {
        panic!("{:?}", user.parts[1]);
    };
    assert_eq!(media_type, "image/png");
    assert!(data.starts_with("iVBORw0KGgo"));
    let Part::Image(Media::Url { url }) = &user.parts[2] else {
        panic!("{:?}", user.parts[2]);
    };
    assert!(url.starts_with("https://upload.wikimedia.org/") && url.ends_with(".jpg"));
    let Part::Document(Document {
        source: Media::Base64 { media_type, data },
        title: None,
    }) = &user.parts[3]
    else {
        panic!("{:?}", user.parts[3]);
    };
    assert_eq!(media_type, "application/pdf");
    assert!(data.starts_with("JVBERi0"));

    // The model turn: its thought, the signature that came on the first call, two parallel
    // calls without ids.
    let model = &request.messages[1];
    assert_eq!(model.role, Role::Assistant);
    assert_eq!(model.parts.len(), 4);
    assert_eq!(
        model.parts[0],
        thinking(
            "**Finding the cities**\n\nThe photos show Paris and London.",
            None
        )
    );
    assert_eq!(model.parts[1], thinking("", Some(SIG_CALL)));
    let Part::ToolCall(paris) = &model.parts[2] else {
        panic!("{:?}", model.parts[2]);
    };
    assert_eq!(paris.id, "call_get_weather_0");
    assert_eq!(paris.name, "get_weather");
    assert_eq!(
        json_of(&paris.arguments),
        json!({"location": "Paris, France", "unit": "celsius"})
    );
    let Part::ToolCall(london) = &model.parts[3] else {
        panic!("{:?}", model.parts[3]);
    };
    assert_eq!(london.id, "call_get_weather_1");
    assert_eq!(
        json_of(&london.arguments),
        json!({"location": "London, UK", "unit": "celsius"})
    );

    // The function responses are paired with the calls in order.
    let results = &request.messages[2];
    assert_eq!(results.role, Role::User);
    assert_eq!(
        results.parts,
        [
            Part::ToolResult(ToolResult {
                call_id: "call_get_weather_0".into(),
                name: Some("get_weather".into()),
                content: vec![text("18°C, sunny")],
                is_error: false,
            }),
            Part::ToolResult(ToolResult {
                call_id: "call_get_weather_1".into(),
                name: Some("get_weather".into()),
                content: vec![text("the weather service timed out")],
                is_error: true,
            }),
        ]
    );
    assert_eq!(
        request.messages[3],
        Message {
            role: Role::Assistant,
            parts: vec![
                thinking("", Some(SIG_TEXT)),
                text("Paris is 18°C and sunny; London's forecast is unavailable."),
            ],
        }
    );
    assert_eq!(
        request.messages[4].parts,
        [text("Try London again and save the result.")]
    );

    // `parameters` (OpenAPI subset) becomes JSON Schema; `parametersJsonSchema` stays.
    assert_eq!(request.tools.len(), 2);
    assert_eq!(
        request.tools[0],
        Tool {
            name: "get_weather".into(),
            description: Some("Get the current weather in a given location".into()),
            parameters: json!({
                "type": "object",
                "properties": {
                    "location": {"type": "string", "description": "The city and country, e.g. Paris, France"},
                    "unit": {"type": ["string", "null"], "enum": ["celsius", "fahrenheit"]},
                },
                "required": ["location"],
            }),
        }
    );
    assert_eq!(request.tools[1].name, "save_note");
    assert_eq!(
        request.tools[1].parameters["additionalProperties"],
        json!(false)
    );
    assert_eq!(
        request.tool_choice,
        Some(ToolChoice::Tool("get_weather".into()))
    );

    assert_eq!(request.stop, ["END"]);
    assert_eq!(request.temperature, Some(0.7));
    assert_eq!(request.top_p, Some(0.95));
    assert_eq!(request.top_k, Some(40));
    assert_eq!(request.max_tokens, Some(2048));
    assert_eq!(request.seed, Some(42));
    assert_eq!(request.presence_penalty, Some(0.5));
    assert_eq!(request.frequency_penalty, Some(0.25));
    let Some(ResponseFormat::JsonSchema {
        name,
        schema,
        strict,
    }) = &request.response_format
    else {
        panic!("{:?}", request.response_format);
    };
    assert_eq!(name, "response");
    assert!(!strict);
    assert_eq!(schema["required"], json!(["city", "temperature_c"]));
    assert_eq!(
        request.reasoning,
        Some(Reasoning {
            budget_tokens: Some(1024),
            effort: None
        })
    );
    assert_eq!(request.user, None);
    assert_eq!(request.parallel_tool_calls, None);
}

#[test]
fn request_round_trip() {
    let request = decode_request(REQUEST_FULL.as_bytes()).unwrap();
    let body = encode_request(&request).unwrap();
    let again = decode_request(&body).unwrap();
    assert_eq!(again, request);
}

#[test]
fn encoded_request_is_what_gemini_takes() {
    let request = decode_request(REQUEST_FULL.as_bytes()).unwrap();
    let body: Value = serde_json::from_slice(&encode_request(&request).unwrap()).unwrap();
    assert!(body.get("model").is_none(), "the model goes in the URL");
    assert_eq!(
        body["systemInstruction"],
        json!({"parts": [{"text": "You are a concise travel assistant."}, {"text": "Answer in JSON."}]})
    );
    let contents = body["contents"].as_array().unwrap();
    let roles: Vec<&str> = contents
        .iter()
        .map(|c| c["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["user", "model", "user", "model", "user"]);
    assert_eq!(
        contents[0]["parts"][1]["inlineData"]["mimeType"],
        "image/png"
    );
    assert_eq!(
        contents[0]["parts"][2]["fileData"]["mimeType"],
        "image/jpeg"
    );
    assert_eq!(
        contents[0]["parts"][3]["inlineData"]["mimeType"],
        "application/pdf"
    );
    // The thought, then the signature back on the first call, which keeps its id.
    let model = contents[1]["parts"].as_array().unwrap();
    assert_eq!(model.len(), 3);
    assert_eq!(model[0]["thought"], true);
    assert_eq!(model[1]["thoughtSignature"], SIG_CALL);
    assert_eq!(
        model[1]["functionCall"],
        json!({"id": "call_get_weather_0", "name": "get_weather", "args": {"location": "Paris, France", "unit": "celsius"}})
    );
    assert!(model[2].get("thoughtSignature").is_none());
    assert_eq!(
        contents[2]["parts"],
        json!([
            {"functionResponse": {"id": "call_get_weather_0", "name": "get_weather", "response": {"result": "18°C, sunny"}}},
            {"functionResponse": {"id": "call_get_weather_1", "name": "get_weather", "response": {"error": "the weather service timed out"}}},
        ])
    );
    assert_eq!(contents[3]["parts"][0]["thoughtSignature"], SIG_TEXT);
    let declarations = &body["tools"][0]["functionDeclarations"];
    assert_eq!(declarations[0]["parametersJsonSchema"]["type"], "object");
    assert!(declarations[0].get("parameters").is_none());
    assert_eq!(
        body["toolConfig"],
        json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}})
    );
    let config = &body["generationConfig"];
    assert_eq!(config["maxOutputTokens"], 2048);
    assert_eq!(config["topK"], 40);
    assert_eq!(config["stopSequences"], json!(["END"]));
    assert_eq!(config["responseMimeType"], "application/json");
    assert_eq!(config["responseJsonSchema"]["type"], "object");
    assert_eq!(
        config["thinkingConfig"],
        json!({"includeThoughts": true, "thinkingBudget": 1024})
    );
}

/// The REST docs' snake_case spelling (Google's JSON parser takes both).
#[test]
fn snake_case_request() {
    let body = json!({
        "system_instruction": {"parts": [{"text": "You are a cat."}]},
        "contents": [{"parts": [
            {"text": "Hi"},
            {"inline_data": {"mime_type": "image/jpeg", "data": "/9j/4AAQ"}},
        ]}],
        "tools": [{"function_declarations": [{"name": "meow", "parameters_json_schema": {"type": "object"}}]}],
        "tool_config": {"function_calling_config": {"mode": "any", "allowed_function_names": ["meow"]}},
        "generation_config": {"max_output_tokens": 100, "top_k": 3.0, "stop_sequences": ["x"],
            "response_mime_type": "application/json",
            "thinking_config": {"thinking_level": "LOW", "include_thoughts": true}},
    });
    let request = decode_request(body.to_string().as_bytes()).unwrap();
    assert_eq!(request.system, ["You are a cat."]);
    assert_eq!(request.messages[0].role, Role::User);
    assert_eq!(
        request.messages[0].parts[1],
        Part::Image(Media::Base64 {
            media_type: "image/jpeg".into(),
            data: "/9j/4AAQ".into()
        })
    );
    assert_eq!(request.tools[0].parameters, json!({"type": "object"}));
    assert_eq!(request.tool_choice, Some(ToolChoice::Tool("meow".into())));
    assert_eq!(request.max_tokens, Some(100));
    assert_eq!(request.top_k, Some(3));
    assert_eq!(request.stop, ["x"]);
    assert_eq!(request.response_format, Some(ResponseFormat::JsonObject));
    assert_eq!(
        request.reasoning,
        Some(Reasoning {
            budget_tokens: None,
            effort: Some(super::super::ir::Effort::Low)
        })
    );
}

#[test]
fn thinking_config_and_tool_modes() {
    let decode = |generation: Value, tool_config: Value| {
        let body = json!({
            "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
            "tools": [{"functionDeclarations": [{"name": "a"}, {"name": "b"}, {"name": "c"}]}],
            "toolConfig": tool_config,
            "generationConfig": generation,
        });
        decode_request(body.to_string().as_bytes()).unwrap()
    };
    let off = decode(json!({"thinkingConfig": {"thinkingBudget": 0}}), json!({}));
    assert_eq!(off.reasoning, None);
    let dynamic = decode(json!({"thinkingConfig": {"thinkingBudget": -1}}), json!({}));
    assert_eq!(dynamic.reasoning, Some(Reasoning::default()));
    let shown = decode(
        json!({"thinkingConfig": {"includeThoughts": true}}),
        json!({}),
    );
    assert_eq!(shown.reasoning, Some(Reasoning::default()));
    // A declaration without parameters takes no arguments.
    assert_eq!(
        off.tools[0].parameters,
        json!({"type": "object", "properties": {}})
    );

    let any = decode(
        json!({}),
        json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["a", "c"]}}),
    );
    assert_eq!(any.tool_choice, Some(ToolChoice::Required));
    let names: Vec<&str> = any.tools.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["a", "c"]);
    let none = decode(
        json!({}),
        json!({"functionCallingConfig": {"mode": "NONE"}}),
    );
    assert_eq!(none.tool_choice, Some(ToolChoice::None));
    assert_eq!(none.tools.len(), 3);
    let validated = decode(
        json!({}),
        json!({"functionCallingConfig": {"mode": "VALIDATED"}}),
    );
    assert_eq!(validated.tool_choice, Some(ToolChoice::Auto));

    // Encoding: an effort is a thinking level, or a budget on Gemini 2.x models.
    let mut request = Request {
        messages: vec![Message {
            role: Role::User,
            parts: vec![text("hi")],
        }],
        reasoning: Some(Reasoning {
            budget_tokens: None,
            effort: Some(super::super::ir::Effort::High),
        }),
        model: "gemini-3-pro-preview".into(),
        ..Request::default()
    };
    let body: Value = serde_json::from_slice(&encode_request(&request).unwrap()).unwrap();
    assert_eq!(
        body["generationConfig"]["thinkingConfig"],
        json!({"includeThoughts": true, "thinkingLevel": "high"})
    );
    request.model = "gemini-2.5-flash".into();
    let body: Value = serde_json::from_slice(&encode_request(&request).unwrap()).unwrap();
    assert_eq!(
        body["generationConfig"]["thinkingConfig"],
        json!({"includeThoughts": true, "thinkingBudget": 24576})
    );
    request.reasoning = Some(Reasoning::default());
    let body: Value = serde_json::from_slice(&encode_request(&request).unwrap()).unwrap();
    assert_eq!(
        body["generationConfig"]["thinkingConfig"],
        json!({"includeThoughts": true, "thinkingBudget": -1})
    );
}

/// History from another protocol: tool results without names, a call without a signature,
/// images in a tool result, a JSON result, hints Gemini has no field for.
#[test]
fn encode_request_from_another_protocol() {
    let request = Request {
        model: "gemini-3-flash-preview".into(),
        system: vec!["Be brief.".into()],
        messages: vec![
            Message {
                role: Role::User,
                parts: vec![text("Take a screenshot and read the config.")],
            },
            Message {
                role: Role::Assistant,
                parts: vec![
                    thinking("I need two tools.", Some("EqQBCkgIAhABGAIiQH")),
                    text("Working on it."),
                    Part::ToolCall(ToolCall {
                        id: "toolu_01A".into(),
                        name: "screenshot".into(),
                        arguments: String::new(),
                    }),
                    Part::ToolCall(ToolCall {
                        id: "toolu_01B".into(),
                        name: "read_file".into(),
                        arguments: r#"{"path": "config.toml"}"#.into(),
                    }),
                ],
            },
            Message {
                role: Role::User,
                parts: vec![
                    Part::ToolResult(ToolResult {
                        call_id: "toolu_01A".into(),
                        name: None,
                        content: vec![
                            text("Here it is."),
                            Part::Image(Media::Base64 {
                                media_type: "image/png".into(),
                                data: "iVBORw0KGgo=".into(),
                            }),
                        ],
                        is_error: false,
                    }),
                    Part::ToolResult(ToolResult {
                        call_id: "toolu_01B".into(),
                        name: None,
                        content: vec![text(r#"{"port": 8080, "host": "::1"}"#)],
                        is_error: false,
                    }),
                ],
            },
        ],
        user: Some("user-1".into()),
        parallel_tool_calls: Some(false),
        tool_choice: Some(ToolChoice::Required),
        tools: vec![Tool {
            name: "read_file".into(),
            description: None,
            parameters: json!({"type": "object", "properties": {"path": {"type": "string"}}, "$defs": {}}),
        }],
        response_format: Some(ResponseFormat::Text),
        ..Request::default()
    };
    let body: Value = serde_json::from_slice(&encode_request(&request).unwrap()).unwrap();
    let model = body["contents"][1]["parts"].as_array().unwrap();
    assert_eq!(
        model[0],
        json!({"text": "I need two tools.", "thought": true, "thoughtSignature": "EqQBCkgIAhABGAIiQH"})
    );
    assert_eq!(model[1], json!({"text": "Working on it."}));
    // Gemini 3 requires a signature on the first call of a turn: the documented placeholder.
    assert_eq!(
        model[2],
        json!({"functionCall": {"id": "toolu_01A", "name": "screenshot", "args": {}},
               "thoughtSignature": "skip_thought_signature_validator"})
    );
    assert_eq!(
        model[3],
        json!({"functionCall": {"id": "toolu_01B", "name": "read_file", "args": {"path": "config.toml"}}})
    );
    let results = body["contents"][2]["parts"].as_array().unwrap();
    assert_eq!(
        results[0],
        json!({"functionResponse": {"id": "toolu_01A", "name": "screenshot", "response": {"result": "Here it is."}}})
    );
    assert_eq!(
        results[1],
        json!({"functionResponse": {"id": "toolu_01B", "name": "read_file", "response": {"port": 8080, "host": "::1"}}})
    );
    assert_eq!(
        results[2],
        json!({"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}})
    );
    assert_eq!(
        body["tools"][0]["functionDeclarations"][0],
        json!({"name": "read_file", "parametersJsonSchema": {"type": "object", "properties": {"path": {"type": "string"}}, "$defs": {}}})
    );
    assert_eq!(
        body["toolConfig"],
        json!({"functionCallingConfig": {"mode": "ANY"}})
    );
    assert_eq!(
        body["generationConfig"],
        json!({"responseMimeType": "text/plain"})
    );
    let written = body.to_string();
    assert!(!written.contains("user-1") && !written.contains("parallel"));

    // The placeholder reads back as no signature.
    let again = decode_request(&encode_request(&request).unwrap()).unwrap();
    assert_eq!(again.messages[1].parts[..2], request.messages[1].parts[..2]);
    assert_eq!(
        again.messages[1].parts[2],
        Part::ToolCall(ToolCall {
            id: "toolu_01A".into(),
            name: "screenshot".into(),
            arguments: "{}".into(),
        })
    );
    assert_eq!(
        again.messages[2].parts[0],
        Part::ToolResult(ToolResult {
            call_id: "toolu_01A".into(),
            name: Some("screenshot".into()),
            content: vec![text("Here it is.")],
            is_error: false,
        })
    );
}

#[test]
fn encode_request_refusals() {
    let mut request = Request {
        messages: vec![Message {
            role: Role::User,
            parts: vec![text("hi")],
        }],
        stop: (0..6).map(|i| format!("s{i}")).collect(),
        ..Request::default()
    };
    assert_eq!(
        encode_request(&request),
        Err(unsupported("6 stop sequences (at most 5)"))
    );
    request.stop.clear();
    request.messages.push(Message {
        role: Role::User,
        parts: vec![Part::ToolResult(ToolResult {
            call_id: "call_x".into(),
            name: None,
            content: vec![],
            is_error: false,
        })],
    });
    assert_eq!(
        encode_request(&request),
        Err(ConvertError::invalid(
            "the tool result for call_x answers no earlier tool call"
        ))
    );
    request.messages.pop();
    request.messages.push(Message {
        role: Role::Assistant,
        parts: vec![Part::ToolCall(ToolCall {
            id: "call_y".into(),
            name: "f".into(),
            arguments: "[1, 2]".into(),
        })],
    });
    assert_eq!(
        encode_request(&request),
        Err(ConvertError::invalid(
            "the arguments of tool call call_y are not a JSON object"
        ))
    );
}

#[test]
fn unsupported_request_features() {
    let with = |extra: Value| {
        let mut body = json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]});
        for (key, value) in extra.as_object().unwrap() {
            body[key] = value.clone();
        }
        decode_request(body.to_string().as_bytes())
    };
    let part = |part: Value| with(json!({"contents": [{"role": "user", "parts": [part]}]}));
    assert_eq!(
        with(json!({"cachedContent": "cachedContents/abc"})),
        Err(unsupported("cachedContent"))
    );
    assert_eq!(
        with(json!({"tools": [{"googleSearch": {}}]})),
        Err(unsupported("the googleSearch tool"))
    );
    assert_eq!(
        with(json!({"tools": [{"codeExecution": {}}]})),
        Err(unsupported("the codeExecution tool"))
    );
    assert_eq!(
        with(json!({"tools": [{"url_context": {}}]})),
        Err(unsupported("the url_context tool"))
    );
    assert_eq!(
        with(json!({"generationConfig": {"candidateCount": 2}})),
        Err(unsupported("generationConfig.candidateCount"))
    );
    assert!(with(json!({"generationConfig": {"candidateCount": 1}})).is_ok());
    assert_eq!(
        with(json!({"generationConfig": {"responseModalities": ["TEXT", "IMAGE"]}})),
        Err(unsupported("generationConfig.responseModalities IMAGE"))
    );
    assert_eq!(
        with(json!({"generationConfig": {"responseMimeType": "text/x.enum"}})),
        Err(unsupported("generationConfig.responseMimeType text/x.enum"))
    );
    assert_eq!(
        with(json!({"generationConfig": {"responseLogprobs": true}})),
        Err(unsupported("generationConfig.responseLogprobs"))
    );
    assert_eq!(
        with(json!({"generationConfig": {"speechConfig": {"voiceConfig": {}}}})),
        Err(unsupported("generationConfig.speechConfig"))
    );
    assert_eq!(
        part(json!({"inlineData": {"mimeType": "audio/mp3", "data": "SUQz"}})),
        Err(unsupported("audio input"))
    );
    assert_eq!(
        part(
            json!({"fileData": {"mimeType": "video/mp4", "fileUri": "https://www.youtube.com/watch?v=9hE5-98ZeCg"}})
        ),
        Err(unsupported("video input"))
    );
    assert_eq!(
        part(
            json!({"fileData": {"mimeType": "application/pdf", "fileUri": "https://generativelanguage.googleapis.com/v1beta/files/abc-123"}})
        ),
        Err(unsupported(
            "fileData of a file uploaded to the Gemini Files API"
        ))
    );
    assert_eq!(
        part(json!({"fileData": {"mimeType": "image/png", "fileUri": "gs://bucket/cat.png"}})),
        Err(unsupported(
            "fileData.fileUri gs (only http(s) and data: URLs convert)"
        ))
    );
    assert_eq!(
        part(json!({"executableCode": {"language": "PYTHON", "code": "print(1)"}})),
        Err(unsupported("executableCode parts"))
    );
    assert_eq!(
        part(json!({"inlineData": {"mimeType": "application/zip", "data": "UEsDBA=="}})),
        Err(unsupported("application/zip input"))
    );
    // A data: URL is base64 data; safety settings are dropped.
    let request = with(json!({
        "contents": [{"role": "user", "parts": [{"fileData": {"fileUri": "data:image/gif;base64,R0lGODlhAQABAAAAACw="}}]}],
        "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
    }))
    .unwrap();
    assert_eq!(
        request.messages[0].parts[0],
        Part::Image(Media::Base64 {
            media_type: "image/gif".into(),
            data: "R0lGODlhAQABAAAAACw=".into()
        })
    );
}

#[test]
fn invalid_requests_name_the_field() {
    let decode = |body: Value| decode_request(body.to_string().as_bytes());
    assert_eq!(
        invalid_message(decode(
            json!({"contents": [{"role": "assistant", "parts": [{"text": "hi"}]}]})
        )),
        "contents[0].role must be \"user\" or \"model\", not \"assistant\""
    );
    assert_eq!(
        invalid_message(decode(json!({"contents": [{"role": "user", "parts": [
            {"functionResponse": {"name": "f", "response": {"result": 1}}}
        ]}]}))),
        "the functionResponse for \"f\" answers no earlier functionCall of that name"
    );
    assert_eq!(
        invalid_message(decode(json!({"contents": [{"role": "model", "parts": [
            {"functionCall": {"args": {}}}
        ]}]}))),
        "contents[0].parts[0].functionCall.name is missing"
    );
    assert_eq!(
        invalid_message(decode(json!({"contents": [{"role": "model", "parts": [
            {"functionCall": {"name": "f", "args": [1]}}
        ]}]}))),
        "contents[0].parts[0].functionCall.args must be an object"
    );
    assert_eq!(
        invalid_message(decode(json!({"contents": [{"role": "user", "parts": [
            {"inlineData": {"mimeType": "image/png"}}
        ]}]}))),
        "contents[0].parts[0].inlineData.data is missing"
    );
    let message = invalid_message(decode(
        json!({"contents": [], "generationConfig": {"temperature": "hot"}}),
    ));
    assert!(
        message.starts_with("generationConfig.temperature: invalid type"),
        "{message}"
    );
    assert_eq!(
        invalid_message(decode(
            json!({"contents": [], "generationConfig": {"topK": 2.5}})
        )),
        "generationConfig.topK must be a whole number ≥ 0, not 2.5"
    );
    assert_eq!(
        invalid_message(decode(
            json!({"contents": [], "toolConfig": {"functionCallingConfig": {"mode": "SOMETIMES"}}})
        )),
        "toolConfig.functionCallingConfig.mode \"SOMETIMES\" is not AUTO, ANY, NONE or VALIDATED"
    );
    assert!(matches!(
        decode_request(b"not json"),
        Err(ConvertError::Invalid(_))
    ));
}

/// A streamed answer kept chunk by chunk in the history (as `google-genai`'s chat does) is one
/// model turn: its text and its thoughts joined, the signature closing the thought run.
#[test]
fn streamed_history_is_one_turn() {
    let body = json!({"contents": [
        {"role": "user", "parts": [{"text": "Add 17 and 25."}]},
        {"role": "model", "parts": [{"text": "Adding", "thought": true}]},
        {"role": "model", "parts": [{"text": " them.", "thought": true}]},
        {"role": "model", "parts": [{"text": "", "thought": true, "thoughtSignature": "c2ln"}]},
        {"role": "model", "parts": [{"text": "17 + 25 = "}]},
        {"role": "model", "parts": [{"text": "42"}]},
        {"role": "model", "parts": [{"text": "", "thoughtSignature": "ZW5k"}]},
        {"role": "user", "parts": [{"text": "Thanks"}]},
    ]});
    let request = decode_request(body.to_string().as_bytes()).unwrap();
    assert_eq!(request.messages.len(), 3);
    assert_eq!(
        request.messages[1].parts,
        [
            thinking("Adding them.", Some("c2ln")),
            text("17 + 25 = 42"),
            thinking("", Some("ZW5k")),
        ]
    );
    // Encoded back: the last signature on an empty text part, as Gemini sent it.
    let out: Value = serde_json::from_slice(&encode_request(&request).unwrap()).unwrap();
    assert_eq!(
        out["contents"][1]["parts"],
        json!([
            {"text": "Adding them.", "thought": true, "thoughtSignature": "c2ln"},
            {"text": "17 + 25 = 42"},
            {"text": "", "thoughtSignature": "ZW5k"},
        ])
    );
}

// ---- whole answers -------------------------------------------------------------------------

#[test]
fn answer_text_decodes() {
    let response = decode_response(ANSWER_TEXT.as_bytes()).unwrap();
    assert_eq!(response.id, "Kp1oaOXeLsG1nvgPqdC1yA4");
    assert_eq!(response.model, "gemini-2.5-flash");
    assert_eq!(
        response.parts,
        [text(
            "AI learns patterns from data to make predictions and decisions."
        )]
    );
    assert_eq!(response.stop, StopReason::EndTurn);
    // Thoughts are output (and reasoning); the total adds up to Gemini's.
    assert_eq!(
        response.usage,
        Usage {
            input: 8,
            output: 49,
            cache_write: 0,
            cache_read: 0,
            reasoning: 37
        }
    );
    assert_eq!(response.usage.prompt_total() + response.usage.output, 57);
}

#[test]
fn answer_tool_use_decodes() {
    let response = decode_response(ANSWER_TOOL_USE.as_bytes()).unwrap();
    assert_eq!(response.model, "gemini-3-pro-preview");
    assert_eq!(response.parts.len(), 3);
    assert_eq!(response.parts[0], thinking("", Some(SIG_CALL)));
    let calls: Vec<&ToolCall> = response
        .parts
        .iter()
        .filter_map(|p| match p {
            Part::ToolCall(call) => Some(call),
            _ => None,
        })
        .collect();
    // No ids from Gemini: unique ones from the response id.
    assert_eq!(calls[0].id, "call_tGFoaamXH_iKz7IPy6mVsAg_0");
    assert_eq!(calls[1].id, "call_tGFoaamXH_iKz7IPy6mVsAg_1");
    assert!(calls.iter().all(|c| c.name == "get_weather"));
    assert_eq!(
        json_of(&calls[0].arguments),
        json!({"location": "Paris, France", "unit": "celsius"})
    );
    assert_eq!(
        json_of(&calls[1].arguments),
        json!({"location": "London, UK", "unit": "celsius"})
    );
    // Gemini says STOP; a function call is a tool-use stop.
    assert_eq!(response.stop, StopReason::ToolUse);
    assert_eq!(
        response.usage,
        Usage {
            input: 112,
            output: 96,
            reasoning: 64,
            ..Usage::default()
        }
    );
}

#[test]
fn answer_thinking_decodes() {
    let response = decode_response(ANSWER_THINKING.as_bytes()).unwrap();
    assert_eq!(
        response.parts,
        [
            // The text part's signature closes the thought run before it.
            thinking(
                "**Adding the numbers**\n\nI'm adding 17 and 25: 17 + 25 = 42. Checking: 42 - 25 = 17.",
                Some(SIG_TEXT)
            ),
            text("17 + 25 = **42**"),
        ]
    );
    assert_eq!(response.stop, StopReason::EndTurn);
    // The prompt includes the cached tokens; input excludes them.
    assert_eq!(
        response.usage,
        Usage {
            input: 18,
            output: 129,
            cache_write: 0,
            cache_read: 2048,
            reasoning: 120
        }
    );
}

#[test]
fn answers_round_trip() {
    for fixture in [ANSWER_TEXT, ANSWER_TOOL_USE, ANSWER_THINKING] {
        let response = decode_response(fixture.as_bytes()).unwrap();
        let encoded = encode_response(&response);
        assert_eq!(decode_response(&encoded).unwrap(), response);
        // The same figures Gemini sent, the content in the same shape.
        let original: Value = serde_json::from_str(fixture).unwrap();
        let mut ours: Value = serde_json::from_slice(&encoded).unwrap();
        // The ids given to the calls go out with them (the client hands them back).
        for part in ours["candidates"][0]["content"]["parts"]
            .as_array_mut()
            .unwrap()
        {
            if let Some(call) = part.get_mut("functionCall") {
                let id = call.as_object_mut().unwrap().remove("id").unwrap();
                assert!(
                    id.as_str()
                        .unwrap()
                        .starts_with("call_tGFoaamXH_iKz7IPy6mVsAg_")
                );
            }
        }
        for key in [
            "promptTokenCount",
            "candidatesTokenCount",
            "totalTokenCount",
            "cachedContentTokenCount",
            "thoughtsTokenCount",
        ] {
            assert_eq!(
                ours["usageMetadata"][key], original["usageMetadata"][key],
                "{key}"
            );
        }
        if fixture == ANSWER_THINKING {
            // The text part's signature closes the thought run before it, so it goes back on
            // the thought part: the same parts, the signature one part earlier.
            let parts = &ours["candidates"][0]["content"]["parts"];
            let sent = &original["candidates"][0]["content"]["parts"];
            assert_eq!(parts[0]["thoughtSignature"], sent[1]["thoughtSignature"]);
            assert_eq!(parts[0]["text"], sent[0]["text"]);
            assert_eq!(parts[1]["text"], sent[1]["text"]);
            assert_eq!(parts.as_array().map(Vec::len), Some(2));
        } else {
            assert_eq!(ours["candidates"][0], original["candidates"][0]);
        }
        assert_eq!(ours["modelVersion"], original["modelVersion"]);
        assert_eq!(ours["responseId"], original["responseId"]);
    }
}

#[test]
fn answer_encodes_ids_and_stops() {
    let response = Response {
        id: "msg_01XFDUDYJgAACzvnptvVoYEL".into(),
        model: "claude-sonnet-4-5".into(),
        parts: vec![
            Part::Thinking(Thinking {
                text: String::new(),
                signature: Some("EmwKAhgBEgy3va3pzix/LafPsn4a".into()),
                redacted: true,
            }),
            text("Let me look."),
            Part::ToolCall(ToolCall {
                id: "toolu_01T1x1fJ34qAmk2tNTrN7Up6".into(),
                name: "get_weather".into(),
                arguments: r#"{"location": "San Francisco, CA"}"#.into(),
            }),
        ],
        stop: StopReason::ToolUse,
        usage: Usage {
            input: 10,
            output: 20,
            cache_write: 5,
            cache_read: 100,
            reasoning: 0,
        },
    };
    let answer: Value = serde_json::from_slice(&encode_response(&response)).unwrap();
    assert_eq!(
        answer,
        json!({
            "candidates": [{
                "content": {"parts": [
                    {"text": "Let me look."},
                    {"functionCall": {"id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "name": "get_weather",
                                      "args": {"location": "San Francisco, CA"}}},
                ], "role": "model"},
                "finishReason": "STOP",
                "index": 0,
            }],
            "usageMetadata": {"promptTokenCount": 115, "candidatesTokenCount": 20, "totalTokenCount": 135,
                              "cachedContentTokenCount": 100},
            "modelVersion": "claude-sonnet-4-5",
            "responseId": "msg_01XFDUDYJgAACzvnptvVoYEL",
        })
    );
    let stops = [
        (StopReason::MaxTokens, "MAX_TOKENS"),
        (StopReason::ContentFilter, "SAFETY"),
        (StopReason::StopSequence(Some("END".into())), "STOP"),
        (StopReason::EndTurn, "STOP"),
    ];
    for (stop, finish) in stops {
        let answer: Value = serde_json::from_slice(&encode_response(&Response {
            stop,
            ..Response::default()
        }))
        .unwrap();
        assert_eq!(answer["candidates"][0]["finishReason"], finish);
        assert!(answer["candidates"][0].get("content").is_none());
    }
}

#[test]
fn answer_stops_and_refusals() {
    let finish = |reason: &str| {
        let body = json!({"candidates": [{"content": {"parts": [{"text": "x"}], "role": "model"},
                          "finishReason": reason, "index": 0}]});
        decode_response(body.to_string().as_bytes()).unwrap().stop
    };
    assert_eq!(finish("MAX_TOKENS"), StopReason::MaxTokens);
    assert_eq!(finish("SAFETY"), StopReason::ContentFilter);
    assert_eq!(finish("RECITATION"), StopReason::ContentFilter);
    assert_eq!(finish("PROHIBITED_CONTENT"), StopReason::ContentFilter);
    assert_eq!(finish("OTHER"), StopReason::EndTurn);
    // A prompt blocked before any candidate.
    let blocked = json!({"promptFeedback": {"blockReason": "SAFETY"},
                         "usageMetadata": {"promptTokenCount": 8, "totalTokenCount": 8},
                         "modelVersion": "gemini-2.5-pro"});
    let response = decode_response(blocked.to_string().as_bytes()).unwrap();
    assert_eq!(response.stop, StopReason::ContentFilter);
    assert!(response.parts.is_empty());
    assert_eq!(response.usage.input, 8);
    assert!(matches!(
        decode_response(br#"{"error": {"code": 400, "message": "API key not valid.", "status": "INVALID_ARGUMENT"}}"#),
        Err(ConvertError::Invalid(m)) if m.contains("API key not valid.")
    ));
    assert!(matches!(
        decode_response(br#"{"candidates": []}"#),
        Err(ConvertError::Invalid(_))
    ));
}

// ---- streams -------------------------------------------------------------------------------

/// The IR events of an upstream stream, as `StreamConverter` feeds them (SSE framing, then
/// `end`).
fn decode_stream(bytes: &str) -> Vec<Event> {
    let mut parser = SseParser::new();
    let mut decoder = Decoder::default();
    let mut events = Vec::new();
    for event in parser.feed(bytes.as_bytes()) {
        decoder.event(event.event.as_deref(), &event.data, &mut events);
    }
    decoder.end(&mut events);
    events
}

fn encode_stream(events: &[Event], gemini_sse: bool) -> Vec<u8> {
    let mut encoder = Encoder::new(StreamOptions {
        gemini_sse,
        ..StreamOptions::default()
    });
    let mut out = Vec::new();
    for event in events {
        encoder.event(event, &mut out);
    }
    encoder.close(&mut out);
    out
}

/// The chunks of an `alt=sse` stream, read as `google-genai` reads them: events end at a blank
/// line (Gemini frames with CRLF), each a `data: ` line holding one JSON object.
fn sse_chunks(bytes: &[u8]) -> Vec<Value> {
    let text = std::str::from_utf8(bytes).unwrap();
    if text.is_empty() {
        return Vec::new();
    }
    assert!(text.ends_with("\r\n\r\n"), "{text:?}");
    text.strip_suffix("\r\n\r\n")
        .unwrap()
        .split("\r\n\r\n")
        .map(|event| {
            let data = event.strip_prefix("data: ").expect(event);
            assert!(!data.contains('\n'), "one data line per event: {data:?}");
            serde_json::from_str(data).unwrap()
        })
        .collect()
}

fn start(id: &str, model: &str, usage: Usage) -> Event {
    Event::Start {
        id: id.into(),
        model: model.into(),
        usage,
    }
}

fn block_start(index: usize, block: Block) -> Event {
    Event::BlockStart { index, block }
}

fn delta(index: usize, delta: Delta) -> Event {
    Event::Delta { index, delta }
}

fn stop(index: usize) -> Event {
    Event::BlockStop { index }
}

#[test]
fn stream_text_decodes() {
    let events = decode_stream(STREAM_TEXT);
    assert_eq!(
        events,
        [
            start(
                "Kp1oaOXeLsG1nvgPqdC1yA4",
                "gemini-2.5-flash",
                Usage {
                    input: 8,
                    ..Usage::default()
                }
            ),
            block_start(0, Block::Text),
            delta(0, Delta::Text("AI learns patterns".into())),
            delta(0, Delta::Text(" from data to make predictions".into())),
            delta(0, Delta::Text(" and decisions.".into())),
            stop(0),
            Event::Finish {
                stop: StopReason::EndTurn,
                usage: Usage {
                    input: 8,
                    output: 49,
                    reasoning: 37,
                    ..Usage::default()
                }
            },
        ]
    );
}

#[test]
fn stream_tool_use_decodes() {
    let events = decode_stream(STREAM_TOOL_USE);
    let paris = r#"{"location": "Paris, France","unit": "celsius"}"#;
    let london = r#"{"location": "London, UK","unit": "celsius"}"#;
    assert_eq!(
        events,
        [
            start(
                "tGFoaamXH_iKz7IPy6mVsAg",
                "gemini-3-pro-preview",
                Usage {
                    input: 112,
                    ..Usage::default()
                }
            ),
            block_start(0, Block::Text),
            delta(
                0,
                Delta::Text("I'll check the weather in both cities.".into())
            ),
            stop(0),
            // The signature that came on the first call, right before it.
            block_start(1, Block::Thinking),
            delta(1, Delta::Signature(SIG_CALL.into())),
            stop(1),
            block_start(
                2,
                Block::ToolCall {
                    id: "call_tGFoaamXH_iKz7IPy6mVsAg_0".into(),
                    name: "get_weather".into()
                }
            ),
            delta(2, Delta::ToolArguments(paris.into())),
            stop(2),
            block_start(
                3,
                Block::ToolCall {
                    id: "call_tGFoaamXH_iKz7IPy6mVsAg_1".into(),
                    name: "get_weather".into()
                }
            ),
            delta(3, Delta::ToolArguments(london.into())),
            stop(3),
            Event::Finish {
                stop: StopReason::ToolUse,
                usage: Usage {
                    input: 112,
                    output: 105,
                    reasoning: 64,
                    ..Usage::default()
                }
            },
        ]
    );
}

#[test]
fn stream_thinking_decodes() {
    let events = decode_stream(STREAM_THINKING);
    let prompt = Usage {
        input: 18,
        cache_read: 2048,
        ..Usage::default()
    };
    assert_eq!(
        events,
        [
            start("3XNoaev4NpTXnvgP1ZaGuQk", "gemini-3-pro-preview", prompt),
            block_start(0, Block::Thinking),
            delta(
                0,
                Delta::Thinking(
                    "**Adding the numbers**\n\nI'm adding 17 and 25: 17 + 25 = 42.".into()
                )
            ),
            delta(0, Delta::Thinking(" Checking: 42 - 25 = 17.".into())),
            stop(0),
            block_start(1, Block::Text),
            delta(1, Delta::Text("17 + 25 = ".into())),
            delta(1, Delta::Text("**42**".into())),
            stop(1),
            // Gemini 3's signature in the last chunk, on an empty text part.
            block_start(2, Block::Thinking),
            delta(2, Delta::Signature(SIG_TEXT.into())),
            stop(2),
            Event::Finish {
                stop: StopReason::EndTurn,
                usage: Usage {
                    output: 129,
                    reasoning: 120,
                    ..prompt
                }
            },
        ]
    );
}

#[test]
fn stream_error_decodes() {
    let events = decode_stream(STREAM_ERROR);
    assert_eq!(events.len(), 5);
    assert_eq!(events[1], block_start(0, Block::Text));
    assert_eq!(
        events[3],
        delta(0, Delta::Text(", in a valley far away,".into()))
    );
    assert_eq!(
        events[4],
        Event::Error {
            kind: ErrorKind::Overloaded,
            message: "The model is overloaded. Please try again later.".into()
        }
    );
}

#[test]
fn stream_decoder_edges() {
    // Cut short: no finishReason.
    let first = STREAM_TEXT.split_inclusive("\r\n\r\n").next().unwrap();
    let events = decode_stream(first);
    assert_eq!(
        events.last().unwrap(),
        &Event::Error {
            kind: ErrorKind::Upstream,
            message: "the upstream ended the stream before the answer was complete".into()
        }
    );
    // Nothing at all.
    assert_eq!(decode_stream("").len(), 1);
    // Not JSON, comments and unknown fields are ignored.
    let noisy = format!(
        ": keep-alive\r\n\r\ndata: not json\r\n\r\n{}",
        STREAM_TEXT.replace(
            "\"index\": 0",
            "\"index\": 0,\"avgLogprobs\": -0.1,\"citationMetadata\": {}"
        )
    );
    assert_eq!(decode_stream(&noisy), decode_stream(STREAM_TEXT));
    // A blocked prompt ends the answer with a content-filter stop.
    let blocked = "data: {\"promptFeedback\": {\"blockReason\": \"PROHIBITED_CONTENT\"},\"usageMetadata\": {\"promptTokenCount\": 8,\"totalTokenCount\": 8},\"modelVersion\": \"gemini-2.5-pro\",\"responseId\": \"r1\"}\r\n\r\n";
    assert_eq!(
        decode_stream(blocked),
        [
            start(
                "r1",
                "gemini-2.5-pro",
                Usage {
                    input: 8,
                    ..Usage::default()
                }
            ),
            Event::Finish {
                stop: StopReason::ContentFilter,
                usage: Usage {
                    input: 8,
                    ..Usage::default()
                }
            },
        ]
    );
    // MAX_TOKENS, and an error by its status alone.
    let max = STREAM_TEXT.replace("\"STOP\"", "\"MAX_TOKENS\"");
    assert!(matches!(
        decode_stream(&max).last(),
        Some(Event::Finish {
            stop: StopReason::MaxTokens,
            ..
        })
    ));
    let quota = "data: {\"error\": {\"message\": \"Quota exceeded\",\"status\": \"RESOURCE_EXHAUSTED\"}}\r\n\r\n";
    assert_eq!(
        decode_stream(quota),
        [Event::Error {
            kind: ErrorKind::RateLimited,
            message: "Quota exceeded".into()
        }]
    );
}

#[test]
fn stream_encoder_chunks_are_what_the_sdk_reads() {
    // Text: a chunk per delta carrying the prompt's usage, then the finish chunk.
    let chunks = sse_chunks(&encode_stream(&decode_stream(STREAM_TEXT), true));
    assert_eq!(chunks.len(), 4);
    for chunk in &chunks {
        assert_eq!(chunk["modelVersion"], "gemini-2.5-flash");
        assert_eq!(chunk["responseId"], "Kp1oaOXeLsG1nvgPqdC1yA4");
        assert_eq!(chunk["candidates"][0]["index"], 0);
    }
    assert_eq!(
        chunks[0]["candidates"][0]["content"],
        json!({"parts": [{"text": "AI learns patterns"}], "role": "model"})
    );
    assert_eq!(
        chunks[0]["usageMetadata"],
        json!({"promptTokenCount": 8, "totalTokenCount": 8})
    );
    assert!(chunks[0]["candidates"][0].get("finishReason").is_none());
    assert_eq!(chunks[3]["candidates"][0]["finishReason"], "STOP");
    assert_eq!(
        chunks[3]["usageMetadata"],
        json!({"promptTokenCount": 8, "candidatesTokenCount": 12, "totalTokenCount": 57, "thoughtsTokenCount": 37})
    );

    // Tool use: each call whole, with its id, the signature on the first.
    let chunks = sse_chunks(&encode_stream(&decode_stream(STREAM_TOOL_USE), true));
    let parts: Vec<&Value> = chunks
        .iter()
        .filter_map(|c| c["candidates"][0]["content"]["parts"].as_array())
        .flatten()
        .collect();
    assert_eq!(parts.len(), 3);
    assert_eq!(
        *parts[1],
        json!({"functionCall": {"id": "call_tGFoaamXH_iKz7IPy6mVsAg_0", "name": "get_weather",
                                "args": {"location": "Paris, France", "unit": "celsius"}},
               "thoughtSignature": SIG_CALL})
    );
    assert_eq!(parts[2]["functionCall"]["args"]["location"], "London, UK");
    assert!(parts[2].get("thoughtSignature").is_none());
    let last = chunks.last().unwrap();
    assert_eq!(last["candidates"][0]["finishReason"], "STOP");
    assert_eq!(last["usageMetadata"]["candidatesTokenCount"], 41);
    assert_eq!(last["usageMetadata"]["thoughtsTokenCount"], 64);

    // Thinking: thought parts, then the signature on an empty text part in the last chunk.
    let chunks = sse_chunks(&encode_stream(&decode_stream(STREAM_THINKING), true));
    assert_eq!(
        chunks[0]["candidates"][0]["content"]["parts"][0]["thought"],
        true
    );
    let last = chunks.last().unwrap();
    assert_eq!(
        last["candidates"][0]["content"]["parts"],
        json!([{"text": "", "thoughtSignature": SIG_TEXT}])
    );
    assert_eq!(
        last["usageMetadata"],
        json!({"promptTokenCount": 2066, "candidatesTokenCount": 9, "totalTokenCount": 2195,
               "cachedContentTokenCount": 2048, "thoughtsTokenCount": 120})
    );

    // An error: the SDK raises on a chunk that starts `{"error":`.
    let bytes = encode_stream(&decode_stream(STREAM_ERROR), true);
    let last_event = std::str::from_utf8(&bytes)
        .unwrap()
        .rsplit("data: ")
        .next()
        .unwrap()
        .to_owned();
    assert!(last_event.starts_with("{\"error\":"), "{last_event}");
    assert_eq!(
        sse_chunks(&bytes).last().unwrap(),
        &json!({"error": {"code": 503, "message": "The model is overloaded. Please try again later.", "status": "UNAVAILABLE"}})
    );
}

/// Decoding what the encoder wrote gives back the same events, for every fixture and both
/// framings.
#[test]
fn stream_round_trip() {
    for fixture in [STREAM_TEXT, STREAM_TOOL_USE, STREAM_THINKING, STREAM_ERROR] {
        let events = decode_stream(fixture);
        let sse = encode_stream(&events, true);
        assert_eq!(
            decode_stream(std::str::from_utf8(&sse).unwrap()),
            events,
            "{fixture}"
        );
        // Without alt=sse: one JSON array of the same chunks.
        let array: Vec<Value> = serde_json::from_slice(&encode_stream(&events, false)).unwrap();
        assert_eq!(array, sse_chunks(&sse));
        let mut decoder = Decoder::default();
        let mut again = Vec::new();
        decoder.event(
            None,
            std::str::from_utf8(&encode_stream(&events, false)).unwrap(),
            &mut again,
        );
        decoder.end(&mut again);
        assert_eq!(again, events);
    }
}

#[test]
fn stream_encoder_from_another_protocol() {
    // Anthropic-style: thinking text then its signature, a redacted block, a tool call whose
    // arguments come in pieces, usage with cache writes.
    let events = [
        start(
            "msg_01",
            "claude-sonnet-4-5",
            Usage {
                input: 10,
                cache_write: 5,
                cache_read: 100,
                ..Usage::default()
            },
        ),
        block_start(0, Block::Thinking),
        delta(0, Delta::Thinking("Let me think".into())),
        delta(0, Delta::Signature("EqQBCkgIAhAB".into())),
        stop(0),
        block_start(
            1,
            Block::RedactedThinking {
                data: "EmwKAhgB".into(),
            },
        ),
        stop(1),
        block_start(
            2,
            Block::ToolCall {
                id: "toolu_01".into(),
                name: "get_weather".into(),
            },
        ),
        delta(2, Delta::ToolArguments(String::new())),
        delta(2, Delta::ToolArguments("{\"location\": \"San".into())),
        delta(2, Delta::ToolArguments(" Francisco\"}".into())),
        stop(2),
        Event::Finish {
            stop: StopReason::ToolUse,
            usage: Usage {
                input: 10,
                output: 30,
                cache_write: 5,
                cache_read: 100,
                reasoning: 0,
            },
        },
    ];
    let chunks = sse_chunks(&encode_stream(&events, true));
    let parts: Vec<Value> = chunks
        .iter()
        .filter_map(|c| c["candidates"][0]["content"]["parts"].as_array())
        .flatten()
        .cloned()
        .collect();
    assert_eq!(
        parts,
        [
            json!({"text": "Let me think", "thought": true}),
            json!({"text": "", "thought": true, "thoughtSignature": "EqQBCkgIAhAB"}),
            json!({"functionCall": {"id": "toolu_01", "name": "get_weather", "args": {"location": "San Francisco"}}}),
        ]
    );
    assert_eq!(
        chunks[0]["usageMetadata"],
        json!({"promptTokenCount": 115, "totalTokenCount": 115, "cachedContentTokenCount": 100})
    );
    assert_eq!(
        chunks.last().unwrap()["usageMetadata"],
        json!({"promptTokenCount": 115, "candidatesTokenCount": 30, "totalTokenCount": 145, "cachedContentTokenCount": 100})
    );
    // The thinking run reads back whole, with its signature.
    let again = decode_stream(std::str::from_utf8(&encode_stream(&events, true)).unwrap());
    assert_eq!(
        again[1..5],
        [
            block_start(0, Block::Thinking),
            delta(0, Delta::Thinking("Let me think".into())),
            delta(0, Delta::Signature("EqQBCkgIAhAB".into())),
            stop(0),
        ]
    );
    // An empty JSON-array stream is still an array.
    assert_eq!(encode_stream(&[], false), b"[]");
}

/// The events of a converted stream (SSE framing): each data payload.
fn output_events(bytes: &[u8]) -> Vec<String> {
    sse_chunks(bytes).iter().map(Value::to_string).collect()
}

/// Every stream cut at every byte gives a prefix of the whole stream's events, then at most
/// one clean error event; never a panic.
#[test]
fn streams_cut_at_every_byte() {
    let options = StreamOptions {
        gemini_sse: true,
        ..StreamOptions::default()
    };
    for fixture in [STREAM_TEXT, STREAM_TOOL_USE, STREAM_THINKING, STREAM_ERROR] {
        let bytes = fixture.as_bytes();
        let mut whole =
            crate::convert::StreamConverter::new(Protocol::Gemini, Protocol::Gemini, options);
        let mut full = whole.feed(bytes).to_vec();
        full.extend_from_slice(&whole.finish());
        let full = output_events(&full);
        for k in 0..=bytes.len() {
            let mut converter =
                crate::convert::StreamConverter::new(Protocol::Gemini, Protocol::Gemini, options);
            let mut out = converter.feed(&bytes[..k]).to_vec();
            out.extend_from_slice(&converter.finish());
            let events = output_events(&out);
            if events == full {
                continue;
            }
            // Otherwise: a prefix of the whole, then one error event saying the answer was cut.
            let (last, prefix) = events.split_last().expect("at least the error event");
            assert_eq!(prefix, &full[..prefix.len()], "cut at {k}");
            assert!(prefix.len() < full.len(), "cut at {k}");
            let error: Value = serde_json::from_str(last).unwrap();
            assert_eq!(
                error,
                json!({"error": {"code": 502, "status": "UNAVAILABLE",
                    "message": "the upstream ended the stream before the answer was complete"}}),
                "cut at {k}"
            );
        }
        // Fed in two pieces at every split, the output is the whole output.
        for k in 0..=bytes.len() {
            let mut converter =
                crate::convert::StreamConverter::new(Protocol::Gemini, Protocol::Gemini, options);
            let mut out = converter.feed(&bytes[..k]).to_vec();
            out.extend_from_slice(&converter.feed(&bytes[k..]));
            out.extend_from_slice(&converter.finish());
            assert_eq!(output_events(&out), full, "split at {k}");
        }
    }
}

/// Cut streams in the JSON-array framing stay one valid array, ending in the error element.
#[test]
fn json_array_streams_cut_at_every_byte() {
    let options = StreamOptions::default();
    for fixture in [STREAM_TEXT, STREAM_TOOL_USE, STREAM_THINKING] {
        let bytes = fixture.as_bytes();
        let mut whole =
            crate::convert::StreamConverter::new(Protocol::Gemini, Protocol::Gemini, options);
        let mut full = whole.feed(bytes).to_vec();
        full.extend_from_slice(&whole.finish());
        let full: Vec<Value> = serde_json::from_slice(&full).unwrap();
        for k in 0..bytes.len() {
            let mut converter =
                crate::convert::StreamConverter::new(Protocol::Gemini, Protocol::Gemini, options);
            let mut out = converter.feed(&bytes[..k]).to_vec();
            out.extend_from_slice(&converter.finish());
            let elements: Vec<Value> = serde_json::from_slice(&out).unwrap();
            let last = elements.last().unwrap();
            if last.get("error").is_some() {
                assert_eq!(
                    elements[..elements.len() - 1],
                    full[..elements.len() - 1],
                    "cut at {k}"
                );
            } else {
                assert_eq!(elements, full, "cut at {k}");
            }
        }
    }
}
