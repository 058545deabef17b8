//! Whole `chat.completion` bodies ⇄ [`Response`].

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{UsageOut, WireUsage, completion_id, finish_reason, stop_reason, unix_now};
use crate::convert::ConvertError;
use crate::convert::ir::{Part, Response, Thinking, ToolCall};

#[derive(Debug, Deserialize)]
struct Completion {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    choices: Option<Vec<Choice>>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct Choice {
    #[serde(default)]
    index: u64,
    #[serde(default)]
    message: Option<WireMessage>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WireMessage {
    #[serde(default)]
    content: Option<Value>,
    #[serde(default)]
    reasoning_content: Option<Value>,
    #[serde(default)]
    reasoning: Option<Value>,
    #[serde(default)]
    refusal: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<WireToolCall>>,
}

#[derive(Debug, Deserialize)]
struct WireToolCall {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<WireFunction>,
}

#[derive(Debug, Deserialize)]
struct WireFunction {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<Value>,
}

/// Only the first choice is read (`n` > 1 is refused in requests). The parts come in the
/// order reasoning, text, tool calls (the order a Chat answer has them).
pub(super) fn decode(body: &[u8]) -> Result<Response, ConvertError> {
    let completion: Completion = serde_json::from_slice(body).map_err(|e| {
        ConvertError::invalid(format!(
            "the upstream's answer is not a chat completion: {e}"
        ))
    })?;
    if let Some(error) = completion.error.as_ref().filter(|e| !e.is_null()) {
        return Err(ConvertError::invalid(format!(
            "the upstream answered with an error: {}",
            super::error_message(error)
        )));
    }
    let choice = completion
        .choices
        .unwrap_or_default()
        .into_iter()
        .min_by_key(|c| c.index)
        .ok_or_else(|| ConvertError::invalid("the upstream's answer has no choices"))?;
    let mut parts = Vec::new();
    let mut refused = false;
    let mut called_tools = false;
    if let Some(message) = choice.message {
        let reasoning = message
            .reasoning_content
            .as_ref()
            .and_then(Value::as_str)
            .or_else(|| message.reasoning.as_ref().and_then(Value::as_str))
            .filter(|t| !t.is_empty());
        if let Some(text) = reasoning {
            parts.push(Part::Thinking(Thinking {
                text: text.to_owned(),
                ..Thinking::default()
            }));
        }
        match message.content {
            Some(Value::String(text)) if !text.is_empty() => parts.push(Part::Text(text)),
            // Some compatible servers answer with text parts.
            Some(Value::Array(items)) => parts.extend(
                items
                    .iter()
                    .filter_map(|p| p.get("text").and_then(Value::as_str))
                    .filter(|t| !t.is_empty())
                    .map(|t| Part::Text(t.to_owned())),
            ),
            _ => {}
        }
        if let Some(refusal) = message.refusal.filter(|r| !r.is_empty()) {
            refused = true;
            parts.push(Part::Text(refusal));
        }
        for (i, call) in message
            .tool_calls
            .unwrap_or_default()
            .into_iter()
            .enumerate()
        {
            called_tools = true;
            let function = call.function;
            let (name, arguments) = match function {
                Some(f) => (f.name.unwrap_or_default(), f.arguments),
                None => (String::new(), None),
            };
            let arguments = match arguments {
                Some(Value::String(s)) if !s.trim().is_empty() => s,
                Some(object @ Value::Object(_)) => object.to_string(),
                _ => "{}".to_owned(),
            };
            parts.push(Part::ToolCall(ToolCall {
                id: call
                    .id
                    .filter(|id| !id.is_empty())
                    .unwrap_or_else(|| format!("call_{i}")),
                name,
                arguments,
            }));
        }
    }
    Ok(Response {
        id: completion.id.unwrap_or_default(),
        model: completion.model.unwrap_or_default(),
        parts,
        stop: stop_reason(choice.finish_reason.as_deref(), called_tools, refused),
        usage: completion.usage.map(|u| u.to_ir()).unwrap_or_default(),
    })
}

#[derive(Serialize)]
struct CompletionOut<'a> {
    id: String,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: [ChoiceOut<'a>; 1],
    usage: UsageOut,
}

#[derive(Serialize)]
struct ChoiceOut<'a> {
    index: u32,
    message: MessageOut<'a>,
    logprobs: Option<()>,
    finish_reason: &'static str,
}

#[derive(Serialize)]
struct MessageOut<'a> {
    role: &'static str,
    content: Option<String>,
    /// Not OpenAI's own: the field DeepSeek and vLLM answer reasoning in.
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_content: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<ToolCallOut<'a>>,
    refusal: Option<()>,
    annotations: [(); 0],
}

#[derive(Serialize)]
struct ToolCallOut<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: FunctionOut<'a>,
}

#[derive(Serialize)]
struct FunctionOut<'a> {
    name: &'a str,
    arguments: &'a str,
}

/// Text parts are joined into `content` (`null` when the answer is only tool calls), thinking
/// into `reasoning_content`; signatures and redacted thinking have no field and are dropped.
pub(super) fn encode(response: &Response) -> Vec<u8> {
    let mut content: Option<String> = None;
    let mut reasoning: Option<String> = None;
    let mut tool_calls = Vec::new();
    for part in &response.parts {
        match part {
            Part::Text(text) => content.get_or_insert_with(String::new).push_str(text),
            Part::Thinking(thinking) if !thinking.redacted && !thinking.text.is_empty() => {
                reasoning
                    .get_or_insert_with(String::new)
                    .push_str(&thinking.text);
            }
            Part::ToolCall(call) => tool_calls.push(ToolCallOut {
                id: &call.id,
                kind: "function",
                function: FunctionOut {
                    name: &call.name,
                    arguments: if call.arguments.is_empty() {
                        "{}"
                    } else {
                        &call.arguments
                    },
                },
            }),
            _ => {}
        }
    }
    if content.is_none() && tool_calls.is_empty() {
        content = Some(String::new());
    }
    let completion = CompletionOut {
        id: completion_id(&response.id),
        object: "chat.completion",
        created: unix_now(),
        model: &response.model,
        choices: [ChoiceOut {
            index: 0,
            message: MessageOut {
                role: "assistant",
                content,
                reasoning_content: reasoning,
                tool_calls,
                refusal: None,
                annotations: [],
            },
            logprobs: None,
            finish_reason: finish_reason(&response.stop),
        }],
        usage: UsageOut::from_ir(&response.usage),
    };
    serde_json::to_vec(&completion).unwrap_or_default()
}
