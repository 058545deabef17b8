#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

use super::*;

#[test]
fn golden_text_answer_decodes() {
    let response = decode_response(ANSWER_TEXT.as_bytes()).unwrap();
    assert_eq!(
        response.id,
        "resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b"
    );
    assert_eq!(response.model, "gpt-4.1-2025-04-14");
    assert_eq!(response.parts.len(), 1);
    let Part::Text(text) = &response.parts[0] else {
        panic!("{:?}", response.parts)
    };
    assert!(text.starts_with("In a peaceful grove beneath a silver moon"));
    assert!(text.ends_with("her hoofprints sparkled like stardust."));
    assert_eq!(response.stop, StopReason::EndTurn);
    assert_eq!(response.usage, usage(36, 87, 0, 0));
}

#[test]
fn golden_tool_use_answer_decodes() {
    let response = decode_response(ANSWER_TOOL_USE.as_bytes()).unwrap();
    assert_eq!(
        response.parts,
        vec![
            Part::ToolCall(ToolCall {
                id: "call_12345xyz".into(),
                name: "get_weather".into(),
                arguments: "{\"location\":\"Paris, France\"}".into(),
            }),
            Part::ToolCall(ToolCall {
                id: "call_67890abc".into(),
                name: "send_email".into(),
                arguments:
                    "{\"to\":\"bob@email.com\",\"subject\":\"Weather\",\"body\":\"Sunny in Paris\"}"
                        .into(),
            }),
        ]
    );
    assert_eq!(response.stop, StopReason::ToolUse);
    // 2160 prompt tokens of which 2048 were cached.
    assert_eq!(response.usage, usage(112, 71, 2048, 0));
}

#[test]
fn golden_thinking_answer_decodes() {
    let response = decode_response(ANSWER_THINKING.as_bytes()).unwrap();
    assert_eq!(response.model, "o4-mini-2025-04-16");
    let [Part::Thinking(thinking), Part::Text(text)] = response.parts.as_slice() else {
        panic!("{:?}", response.parts)
    };
    assert_eq!(
        thinking.text,
        "**Determining the capital of France**\n\nThe user wants to know the capital of France. That's straightforward: it's Paris."
    );
    assert!(
        thinking
            .signature
            .as_deref()
            .unwrap()
            .starts_with("gAAAAABodm8E")
    );
    assert!(!thinking.redacted);
    assert_eq!(text, "The capital of France is Paris.");
    assert_eq!(response.stop, StopReason::EndTurn);
    assert_eq!(response.usage, usage(10, 148, 0, 128));
}

#[test]
fn answers_round_trip_through_the_encoder() {
    for fixture in [ANSWER_TEXT, ANSWER_TOOL_USE, ANSWER_THINKING] {
        let decoded = decode_response(fixture.as_bytes()).unwrap();
        let encoded = encode_response(&decoded);
        let body: Value = serde_json::from_slice(&encoded).unwrap();
        assert_eq!(body["object"], "response");
        assert_eq!(body["status"], "completed");
        assert_eq!(body["id"], decoded.id.as_str());
        assert!(body["created_at"].as_u64().unwrap() > 1_700_000_000);
        let original: Value = serde_json::from_str(fixture).unwrap();
        assert_eq!(
            body["usage"]["input_tokens"],
            original["usage"]["input_tokens"]
        );
        assert_eq!(
            body["usage"]["output_tokens"],
            original["usage"]["output_tokens"]
        );
        assert_eq!(
            body["usage"]["total_tokens"],
            original["usage"]["total_tokens"]
        );
        assert_eq!(
            body["usage"]["input_tokens_details"]["cached_tokens"],
            original["usage"]["input_tokens_details"]["cached_tokens"]
        );
        assert_eq!(
            body["usage"]["output_tokens_details"]["reasoning_tokens"],
            original["usage"]["output_tokens_details"]["reasoning_tokens"]
        );
        let types: Vec<&str> = body["output"]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| {
                let kind = item["type"].as_str().unwrap();
                let prefix = match kind {
                    "message" => "msg_",
                    "reasoning" => "rs_",
                    _ => "fc_",
                };
                assert!(item["id"].as_str().unwrap().starts_with(prefix), "{item}");
                kind
            })
            .collect();
        let original_types: Vec<&str> = original["output"]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| item["type"].as_str().unwrap())
            .collect();
        assert_eq!(types, original_types);
        assert_eq!(decode_response(&encoded).unwrap(), decoded);
    }
}

#[test]
fn stop_reasons_in_answers() {
    let mut response = Response {
        id: "msg_01XFDUDYJgAACzvnptvVoYEL".into(),
        model: "claude-sonnet-4-5".into(),
        parts: vec![Part::Text("cut".into())],
        stop: StopReason::MaxTokens,
        usage: Usage {
            input: 5,
            output: 7,
            cache_write: 11,
            cache_read: 13,
            reasoning: 0,
        },
    };
    let body: Value = serde_json::from_slice(&encode_response(&response)).unwrap();
    assert_eq!(body["id"], "resp_msg01XFDUDYJgAACzvnptvVoYEL");
    assert_eq!(body["status"], "incomplete");
    assert_eq!(body["incomplete_details"]["reason"], "max_output_tokens");
    assert_eq!(body["usage"]["input_tokens"], 29);
    assert_eq!(
        body["usage"]["input_tokens_details"]["cache_write_tokens"],
        11
    );
    assert_eq!(body["usage"]["total_tokens"], 36);
    let back = decode_response(body.to_string().as_bytes()).unwrap();
    assert_eq!(back.stop, StopReason::MaxTokens);
    assert_eq!(back.usage, response.usage);

    response.stop = StopReason::ContentFilter;
    let back = decode_response(&encode_response(&response)).unwrap();
    assert_eq!(back.stop, StopReason::ContentFilter);

    let failed = json!({"id": "resp_f", "object": "response", "status": "failed", "error": {"code": "server_error", "message": "boom"}, "output": []});
    assert_eq!(
        decode_response(failed.to_string().as_bytes()),
        Err(ConvertError::invalid(
            "the upstream's response failed: boom"
        ))
    );
    assert!(matches!(
        decode_response(b"not json"),
        Err(ConvertError::Invalid(_))
    ));
}
