#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

use super::*;

fn expected_full_request() -> Request {
    Request {
        model: "gpt-5".into(),
        system: vec![
            "You are a travel assistant. Answer briefly.".into(),
            "Always give temperatures in Celsius.".into(),
        ],
        messages: vec![
            Message {
                role: Role::User,
                parts: vec![
                    Part::Text("What is in this picture, and what is the weather there and in Bogotá?".into()),
                    Part::Image(Media::Base64 {
                        media_type: "image/png".into(),
                        data: "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==".into(),
                    }),
                    Part::Image(Media::Url {
                        url: "https://upload.wikimedia.org/wikipedia/commons/a/af/Tour_eiffel_at_sunrise_from_the_trocadero.jpg".into(),
                    }),
                    Part::Document(Document {
                        source: Media::Base64 {
                            media_type: "application/pdf".into(),
                            data: "JVBERi0xLjQKJcOkw7zDtsOfCjIgMCBvYmoKPDwvTGVuZ3RoIDMgMCBSPj4Kc3RyZWFtCg==".into(),
                        },
                        title: Some("itinerary.pdf".into()),
                    }),
                ],
            },
            Message {
                role: Role::Assistant,
                parts: vec![
                    Part::Thinking(Thinking {
                        text: "**Identifying the landmark**\n\nThe photo shows the Eiffel Tower, so the city is Paris.\n\n**Planning tool calls**\n\nI need the weather for Paris and for Bogotá.".into(),
                        signature: Some("gAAAAABor0TgQ2h5cGhlcnRleHQtZm9yLXRoZS1yZWFzb25pbmctaXRlbQ==".into()),
                        redacted: false,
                    }),
                    Part::Text("That is the Eiffel Tower in Paris. Let me check the weather.".into()),
                    Part::ToolCall(ToolCall {
                        id: "call_kY5pQ2mVx8TnR3wZ1bC7dE9f".into(),
                        name: "get_weather".into(),
                        arguments: "{\"location\":\"Paris, France\"}".into(),
                    }),
                    Part::ToolCall(ToolCall {
                        id: "call_Hs2LmN4oP6qR8sT0uV1wX3yZ".into(),
                        name: "get_weather".into(),
                        arguments: "{\"location\":\"Bogotá, Colombia\"}".into(),
                    }),
                ],
            },
            Message {
                role: Role::User,
                parts: vec![
                    Part::ToolResult(ToolResult {
                        call_id: "call_kY5pQ2mVx8TnR3wZ1bC7dE9f".into(),
                        name: Some("get_weather".into()),
                        content: vec![Part::Text("{\"temperature_c\":18,\"sky\":\"sunny\"}".into())],
                        is_error: false,
                    }),
                    Part::ToolResult(ToolResult {
                        call_id: "call_Hs2LmN4oP6qR8sT0uV1wX3yZ".into(),
                        name: Some("get_weather".into()),
                        content: vec![
                            Part::Text("{\"temperature_c\":14,\"sky\":\"rain\"}".into()),
                            Part::Image(Media::Url {
                                url: "https://example.com/radar/bogota.png".into(),
                            }),
                        ],
                        is_error: false,
                    }),
                    Part::Text("Thanks. Reply as JSON.".into()),
                ],
            },
        ],
        max_tokens: Some(2048),
        temperature: Some(0.7),
        top_p: Some(0.9),
        top_k: None,
        stop: Vec::new(),
        stream: true,
        tools: vec![
            Tool {
                name: "get_weather".into(),
                description: Some("Get current temperature for a given location.".into()),
                parameters: json!({
                    "type": "object",
                    "properties": {"location": {"type": "string", "description": "City and country e.g. Bogotá, Colombia"}},
                    "required": ["location"],
                    "additionalProperties": false
                }),
            },
            Tool {
                name: "get_time".into(),
                description: None,
                parameters: json!({"type": "object", "properties": {"timezone": {"type": "string"}}, "required": ["timezone"]}),
            },
        ],
        tool_choice: Some(ToolChoice::Auto),
        parallel_tool_calls: Some(true),
        reasoning: Some(Reasoning {
            budget_tokens: None,
            effort: Some(Effort::High),
        }),
        response_format: Some(ResponseFormat::JsonSchema {
            name: "weather_report".into(),
            schema: json!({
                "type": "object",
                "properties": {"paris_c": {"type": "number"}, "bogota_c": {"type": "number"}},
                "required": ["paris_c", "bogota_c"],
                "additionalProperties": false
            }),
            strict: true,
        }),
        user: Some("user-7f3a9c".into()),
        seed: None,
        presence_penalty: None,
        frequency_penalty: None,
    }
}

#[test]
fn golden_full_request_decodes_every_feature() {
    let request = decode_request(REQUEST_FULL.as_bytes()).unwrap();
    let expected = expected_full_request();
    assert_eq!(request.system, expected.system);
    for (got, want) in request.messages.iter().zip(&expected.messages) {
        assert_eq!(got, want);
    }
    assert_eq!(request.messages.len(), 3);
    assert_eq!(request.tools, expected.tools);
    assert_eq!(request, expected);
}

#[test]
fn full_request_encodes_for_an_upstream_and_round_trips() {
    let request = decode_request(REQUEST_FULL.as_bytes()).unwrap();
    let encoded = encode_request(&request).unwrap();
    let body: Value = serde_json::from_slice(&encoded).unwrap();
    assert_eq!(body["model"], "gpt-5");
    assert_eq!(
        body["instructions"],
        "You are a travel assistant. Answer briefly."
    );
    assert_eq!(body["store"], false);
    assert_eq!(body["stream"], true);
    assert_eq!(body["include"], json!(["reasoning.encrypted_content"]));
    assert_eq!(
        body["reasoning"],
        json!({"effort": "high", "summary": "auto"})
    );
    assert_eq!(body["max_output_tokens"], 2048);
    assert_eq!(body["temperature"], 0.7);
    assert_eq!(body["top_p"], 0.9);
    assert_eq!(body["tool_choice"], "auto");
    assert_eq!(body["parallel_tool_calls"], true);
    assert_eq!(body["user"], "user-7f3a9c");
    assert_eq!(body["text"]["format"]["type"], "json_schema");
    assert_eq!(body["text"]["format"]["name"], "weather_report");
    assert_eq!(body["text"]["format"]["strict"], true);
    assert_eq!(body["tools"][0]["type"], "function");
    assert_eq!(body["tools"][0]["strict"], false);
    assert!(body["tools"][1].get("description").is_none());
    let input = body["input"].as_array().unwrap();
    let kinds: Vec<String> = input
        .iter()
        .map(|item| match item["type"].as_str().unwrap() {
            "message" => format!("message/{}", item["role"].as_str().unwrap()),
            other => other.to_owned(),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "message/developer",
            "message/user",
            "reasoning",
            "message/assistant",
            "function_call",
            "function_call",
            "function_call_output",
            "function_call_output",
            "message/user",
        ]
    );
    assert_eq!(
        input[1]["content"][1]["image_url"]
            .as_str()
            .unwrap()
            .get(..22),
        Some("data:image/png;base64,")
    );
    assert_eq!(input[1]["content"][3]["filename"], "itinerary.pdf");
    assert!(
        input[1]["content"][3]["file_data"]
            .as_str()
            .unwrap()
            .starts_with("data:application/pdf;base64,JVBER")
    );
    // Reasoning goes back by its encrypted content alone (with store false an id is looked up
    // and not found).
    assert!(input[2].get("id").is_none());
    assert_eq!(input[2]["summary"].as_array().unwrap().len(), 1);
    assert!(
        input[2]["encrypted_content"]
            .as_str()
            .unwrap()
            .starts_with("gAAAA")
    );
    assert_eq!(input[4]["call_id"], "call_kY5pQ2mVx8TnR3wZ1bC7dE9f");
    assert_eq!(
        input[6]["output"],
        "{\"temperature_c\":18,\"sky\":\"sunny\"}"
    );
    assert_eq!(input[7]["output"][1]["type"], "input_image");

    assert_eq!(decode_request(&encoded).unwrap(), request);
}

#[test]
fn requests_from_other_protocols_encode() {
    let request = Request {
        model: "gpt-4.1".into(),
        system: vec!["Be terse.".into()],
        messages: vec![
            Message {
                role: Role::User,
                parts: vec![Part::Text("hi".into())],
            },
            Message {
                role: Role::Assistant,
                parts: vec![
                    // No signature: nothing the upstream can take back.
                    Part::Thinking(Thinking {
                        text: "plain".into(),
                        signature: None,
                        redacted: false,
                    }),
                    Part::Text("hello".into()),
                ],
            },
        ],
        max_tokens: Some(100),
        top_k: Some(5),
        seed: Some(7),
        presence_penalty: Some(0.5),
        reasoning: Some(Reasoning {
            budget_tokens: Some(2_000),
            effort: None,
        }),
        tool_choice: Some(ToolChoice::Tool("lookup".into())),
        response_format: Some(ResponseFormat::JsonObject),
        ..Request::default()
    };
    let body: Value = serde_json::from_slice(&encode_request(&request).unwrap()).unwrap();
    assert_eq!(
        body["reasoning"],
        json!({"effort": "low", "summary": "auto"})
    );
    assert_eq!(
        body["tool_choice"],
        json!({"type": "function", "name": "lookup"})
    );
    assert_eq!(body["text"], json!({"format": {"type": "json_object"}}));
    assert_eq!(body["input"].as_array().unwrap().len(), 2);
    assert_eq!(body["input"][1]["content"][0]["type"], "output_text");
    for dropped in ["top_k", "seed", "presence_penalty", "stream"] {
        assert!(body.get(dropped).is_none(), "{dropped}");
    }

    let with_stop = Request {
        stop: vec!["END".into()],
        ..request
    };
    assert_eq!(
        encode_request(&with_stop),
        Err(unsupported("stop sequences"))
    );
}

#[test]
fn simple_inputs_and_ignored_fields() {
    let request = decode_json(&json!({
        "model": "gpt-4.1", "input": "Tell me a joke.", "store": true, "include": ["message.output_text.logprobs"],
        "metadata": {"a": "b"}, "service_tier": "flex", "prompt_cache_key": "k", "text": {"verbosity": "high"},
        "truncation": "auto", "user": "u1", "safety_identifier": "s1", "reasoning": {"effort": "none"},
        "tool_choice": "required", "top_logprobs": 0, "previous_response_id": null
    }))
    .unwrap();
    assert_eq!(
        request.messages,
        vec![Message {
            role: Role::User,
            parts: vec![Part::Text("Tell me a joke.".into())]
        }]
    );
    assert_eq!(request.user.as_deref(), Some("u1"));
    assert_eq!(request.reasoning, None);
    assert_eq!(request.response_format, None);
    assert_eq!(request.tool_choice, Some(ToolChoice::Required));
    assert!(!request.stream);

    let request = decode_json(&json!({
        "model": "o3", "safety_identifier": "s1", "reasoning": {"summary": "auto"},
        "input": [{"role": "system", "content": "sys"}, {"role": "assistant", "content": "earlier"},
                  {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAAAx"},
                  {"type": "function_call_output", "call_id": "call_unknown", "output": ""}]
    }))
    .unwrap();
    assert_eq!(request.user.as_deref(), Some("s1"));
    assert_eq!(request.reasoning, Some(Reasoning::default()));
    assert_eq!(request.system, vec!["sys".to_owned()]);
    assert_eq!(
        request.messages,
        vec![
            Message {
                role: Role::Assistant,
                parts: vec![
                    Part::Text("earlier".into()),
                    Part::Thinking(Thinking {
                        text: String::new(),
                        signature: Some("gAAAAx".into()),
                        redacted: true
                    }),
                ]
            },
            Message {
                role: Role::User,
                parts: vec![Part::ToolResult(ToolResult {
                    call_id: "call_unknown".into(),
                    name: None,
                    content: Vec::new(),
                    is_error: false
                })]
            },
        ]
    );
    // Reasoning without an effort asks for none on the way out (the model's default).
    let body: Value = serde_json::from_slice(&encode_request(&request).unwrap()).unwrap();
    assert_eq!(body["reasoning"], json!({"summary": "auto"}));
}

#[test]
fn unsupported_features_are_named() {
    let base = |extra: Value| {
        let mut body = json!({"model": "gpt-5", "input": "hi"});
        for (key, value) in extra.as_object().unwrap() {
            body[key] = value.clone();
        }
        decode_json(&body)
    };
    let cases = [
        (
            json!({"previous_response_id": "resp_123"}),
            "previous_response_id",
        ),
        (json!({"conversation": "conv_123"}), "conversation"),
        (json!({"prompt": {"id": "pmpt_1"}}), "prompt"),
        (json!({"background": true}), "background"),
        (json!({"top_logprobs": 5}), "top_logprobs"),
        (
            json!({"tools": [{"type": "web_search"}]}),
            "web_search tools",
        ),
        (
            json!({"tools": [{"type": "file_search", "vector_store_ids": ["vs_1"]}]}),
            "file_search tools",
        ),
        (
            json!({"tools": [{"type": "mcp", "server_label": "x"}]}),
            "mcp tools",
        ),
        (
            json!({"tool_choice": {"type": "allowed_tools", "mode": "auto", "tools": []}}),
            "tool_choice allowed_tools",
        ),
        (
            json!({"tool_choice": {"type": "web_search_preview"}}),
            "tool_choice web_search_preview",
        ),
        (
            json!({"input": [{"type": "item_reference", "id": "msg_1"}]}),
            "item_reference",
        ),
        (
            json!({"input": [{"type": "computer_call_output", "call_id": "c", "output": {}}]}),
            "computer_call_output input items",
        ),
        (
            json!({"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "file-1", "detail": "auto"}]}]}),
            "input_image.file_id",
        ),
        (
            json!({"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "file-1"}]}]}),
            "input_file.file_id",
        ),
        (
            json!({"input": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "", "format": "wav"}}]}]}),
            "input_audio",
        ),
    ];
    for (extra, feature) in cases {
        assert_eq!(base(extra.clone()), Err(unsupported(feature)), "{extra}");
    }
    let err = base(json!({"previous_response_id": "resp_123"})).unwrap_err();
    assert_eq!(
        err.to_string(),
        "previous_response_id cannot be converted to the openai_responses protocol of this channel's upstream"
    );
}

#[test]
fn malformed_requests_are_invalid_and_say_where() {
    let invalid = |body: &[u8]| match decode_request(body) {
        Err(ConvertError::Invalid(message)) => message,
        other => panic!("{other:?} for {}", String::from_utf8_lossy(body)),
    };
    assert!(invalid(b"{").contains("not valid JSON"));
    assert!(invalid(b"[1]").contains("JSON object"));
    assert_eq!(invalid(br#"{"input":"hi"}"#), "model is required");
    assert_eq!(invalid(br#"{"model":"m"}"#), "input is required");
    assert_eq!(
        invalid(br#"{"model":"m","input":"hi","temperature":"hot"}"#),
        "temperature must be a number"
    );
    assert_eq!(
        invalid(br#"{"model":"m","input":"hi","max_output_tokens":-1}"#),
        "max_output_tokens must be a non-negative integer"
    );
    assert!(
        invalid(br#"{"model":"m","input":[{"role":"robot","content":"x"}]}"#)
            .contains("input[0].role \"robot\"")
    );
    assert_eq!(
        invalid(br#"{"model":"m","input":[{"type":"function_call","name":"f"}]}"#),
        "input[0].call_id must be a string"
    );
    assert!(invalid(br#"{"model":"m","input":[{"role":"user","content":[{"type":"input_image","image_url":"data:image/png,abc"}]}]}"#).contains("input[0].content[0]: a data URL must be base64"));
    assert!(
        invalid(br#"{"model":"m","input":[{"role":"user","content":[{"type":"video"}]}]}"#)
            .contains("input[0].content[0].type \"video\"")
    );
    assert!(
        invalid(br#"{"model":"m","input":"hi","reasoning":{"effort":"extreme"}}"#)
            .contains("reasoning.effort \"extreme\"")
    );
    assert!(
        invalid(br#"{"model":"m","input":"hi","text":{"format":{"type":"yaml"}}}"#)
            .contains("text.format.type \"yaml\"")
    );
    assert!(
        invalid(br#"{"model":"m","input":"hi","tool_choice":"always"}"#)
            .contains("tool_choice \"always\"")
    );
    assert_eq!(
        invalid(br#"{"model":"m","input":"hi","tools":[{"type":"function"}]}"#),
        "tools[0].name is required"
    );
}
