//! Whole answers: the fixtures field by field, round trips, answers from other protocols.

use serde_json::json;

use super::{invalid_message, json_of, text};
use crate::convert::anthropic::{decode_response, encode_response};
use crate::convert::ir::{Part, Response, StopReason, Thinking, ToolCall, Usage};

const ANSWER_TEXT: &str = include_str!("../../../../tests/golden/anthropic/answer_text.json");
const ANSWER_TOOL_USE: &str =
    include_str!("../../../../tests/golden/anthropic/answer_tool_use.json");
const ANSWER_THINKING: &str =
    include_str!("../../../../tests/golden/anthropic/answer_thinking.json");

#[test]
fn answer_text_decodes() {
    let answer = decode_response(ANSWER_TEXT.as_bytes()).unwrap();
    assert_eq!(answer.id, "msg_013Zva2CMHLNnXjNJJKqJ2EF");
    assert_eq!(answer.model, "claude-sonnet-4-5-20250929");
    assert_eq!(answer.parts, [text("Hi! My name is Claude.")]);
    assert_eq!(answer.stop, StopReason::EndTurn);
    assert_eq!(
        answer.usage,
        Usage {
            input: 21,
            output: 393,
            cache_write: 188_086,
            cache_read: 0,
            reasoning: 0
        }
    );
}

#[test]
fn answer_tool_use_decodes() {
    let answer = decode_response(ANSWER_TOOL_USE.as_bytes()).unwrap();
    assert_eq!(
        answer.parts,
        [
            text("I'll check the current weather and time in San Francisco for you."),
            Part::ToolCall(ToolCall {
                id: "toolu_01A09q90qw90lq917835lq9".into(),
                name: "get_weather".into(),
                arguments: r#"{"location": "San Francisco, CA", "unit": "celsius"}"#.into(),
            }),
            Part::ToolCall(ToolCall {
                id: "toolu_01B2d4f6h8j0k2m4n6p8r0t2".into(),
                name: "get_time".into(),
                arguments: r#"{"timezone": "America/Los_Angeles"}"#.into(),
            }),
        ]
    );
    assert_eq!(answer.stop, StopReason::ToolUse);
    assert_eq!(
        answer.usage,
        Usage {
            input: 512,
            output: 104,
            cache_write: 0,
            cache_read: 2048,
            reasoning: 0
        }
    );
}

#[test]
fn answer_thinking_decodes() {
    let answer = decode_response(ANSWER_THINKING.as_bytes()).unwrap();
    assert_eq!(answer.parts.len(), 3);
    assert_eq!(
        answer.parts[0],
        Part::Thinking(Thinking {
            text: "Let me analyze this step by step...".into(),
            signature: Some("WaUjzkypQ2mUEVM36O2TxuC06KN8xyfbJwyem2dw3URve/op91XWHOEBLLqIOMfFG/UvLEczmEsUjavL....".into()),
            redacted: false,
        })
    );
    let Part::Thinking(redacted) = &answer.parts[1] else {
        panic!("{:?}", answer.parts[1])
    };
    assert!(redacted.redacted && redacted.text.is_empty());
    assert!(
        redacted
            .signature
            .as_deref()
            .unwrap()
            .starts_with("EmwKAhgBEgy3va3pzix")
    );
    assert_eq!(
        answer.parts[2],
        text("Based on my analysis, the answer is 12,231.")
    );
    assert_eq!(
        answer.usage,
        Usage {
            input: 44,
            output: 312,
            cache_write: 0,
            cache_read: 0,
            reasoning: 257
        }
    );
}

#[test]
fn answers_round_trip_in_the_apis_shape() {
    for fixture in [ANSWER_TEXT, ANSWER_TOOL_USE, ANSWER_THINKING] {
        let answer = decode_response(fixture.as_bytes()).unwrap();
        let body = encode_response(&answer);
        assert_eq!(decode_response(&body).unwrap(), answer);
        // The API's field order, and every field the SDK's Message requires.
        let text = String::from_utf8(body).unwrap();
        assert!(
            text.starts_with(r#"{"id":"msg_"#)
                && text.contains(r#","type":"message","role":"assistant","model":""#),
            "{text}"
        );
        let value = json_of(&text);
        let original = json_of(fixture);
        for field in ["id", "model", "stop_reason", "stop_sequence"] {
            assert_eq!(value[field], original[field], "{field}");
        }
        for figure in [
            "input_tokens",
            "output_tokens",
            "cache_creation_input_tokens",
            "cache_read_input_tokens",
        ] {
            assert_eq!(
                value["usage"][figure], original["usage"][figure],
                "{figure}"
            );
        }
        assert_eq!(value["content"], original["content"]);
    }
    let thinking = json_of(
        &String::from_utf8(encode_response(
            &decode_response(ANSWER_THINKING.as_bytes()).unwrap(),
        ))
        .unwrap(),
    );
    assert_eq!(
        thinking["usage"]["output_tokens_details"],
        json!({"thinking_tokens": 257})
    );
}

#[test]
fn answers_from_other_protocols_take_anthropics_shape() {
    let answer = Response {
        id: "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT".into(),
        model: "gpt-4.1".into(),
        parts: vec![
            Part::Thinking(Thinking {
                text: "reasoning without a signature".into(),
                signature: None,
                redacted: false,
            }),
            Part::ToolCall(ToolCall {
                id: String::new(),
                name: "f".into(),
                arguments: r#"{"cut": "off mid"#.into(),
            }),
        ],
        stop: StopReason::StopSequence(Some("END".into())),
        usage: Usage {
            input: 10,
            output: 20,
            cache_write: 0,
            cache_read: 5,
            reasoning: 0,
        },
    };
    let body = json_of(&String::from_utf8(encode_response(&answer)).unwrap());
    assert_eq!(body["id"], "msg_chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT");
    assert_eq!(
        body["content"][0],
        json!({"type": "thinking", "thinking": "reasoning without a signature", "signature": ""})
    );
    assert_eq!(body["content"][1]["input"], json!({}));
    assert!(
        body["content"][1]["id"]
            .as_str()
            .unwrap()
            .starts_with("toolu_")
    );
    assert_eq!(
        (body["stop_reason"].clone(), body["stop_sequence"].clone()),
        (json!("stop_sequence"), json!("END"))
    );
    assert_eq!(
        body["usage"],
        json!({"input_tokens": 10, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 5, "output_tokens": 20})
    );

    let refused = Response {
        stop: StopReason::ContentFilter,
        ..Response::default()
    };
    let body = json_of(&String::from_utf8(encode_response(&refused)).unwrap());
    assert_eq!(body["stop_reason"], "refusal");
    assert!(body["id"].as_str().unwrap().len() > "msg_".len());
    assert_eq!(body["content"], json!([]));

    let error = br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
    assert!(invalid_message(decode_response(error)).contains("overloaded_error: Overloaded"));
    assert!(decode_response(b"not json").is_err());
}
