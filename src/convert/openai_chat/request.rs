//! Chat Completions request bodies ⇄ [`Request`].
//!
//! Decoding reads a `serde_json::Value`, so every complaint names the field it is about
//! (`messages[2].content[1].image_url.url: …`). Refused as unsupported (the answer the client
//! relies on could not be given): `n` > 1, `logprobs` / `top_logprobs`, audio (`modalities`,
//! `audio`, `input_audio` parts, assistant `audio`), `file_id` references, non-function tools
//! and tool choices, the deprecated `functions` / `function_call`, `web_search_options`.
//! Dropped (hints with no IR field): `logit_bias`, `prediction`, `store`, `metadata`,
//! `service_tier`, `prompt_cache_key`, `verbosity`, message `name`s, image `detail`, tools'
//! `strict`.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use super::PROTOCOL;
use crate::convert::ConvertError;
use crate::convert::ir::{
    Document, Effort, Media, Message, Part, Reasoning, Request, ResponseFormat, Role, Tool,
    ToolCall, ToolChoice, ToolResult,
};

pub(super) fn decode(body: &[u8]) -> Result<Request, ConvertError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ConvertError::invalid(format!("the body is not valid JSON: {e}")))?;
    let Value::Object(body) = value else {
        return Err(ConvertError::invalid("the body must be a JSON object"));
    };
    refuse_unsupported(&body)?;

    let model = match body.get("model") {
        Some(Value::String(model)) => model.clone(),
        Some(_) => return Err(ConvertError::invalid("model: must be a string")),
        None => return Err(ConvertError::invalid("model: missing")),
    };
    let (system, messages) = match body.get("messages") {
        Some(Value::Array(messages)) => decode_messages(messages)?,
        Some(_) => return Err(ConvertError::invalid("messages: must be an array")),
        None => return Err(ConvertError::invalid("messages: missing")),
    };
    let max_tokens = match non_null(&body, "max_completion_tokens") {
        Some(_) => count(&body, "max_completion_tokens")?,
        None => count(&body, "max_tokens")?,
    };
    let stop = match non_null(&body, "stop") {
        None => Vec::new(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|s| s.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| ConvertError::invalid("stop: must be a string or strings"))?,
        Some(_) => return Err(ConvertError::invalid("stop: must be a string or strings")),
    };
    let tools = match non_null(&body, "tools") {
        None => Vec::new(),
        Some(Value::Array(tools)) => tools
            .iter()
            .enumerate()
            .map(|(i, tool)| decode_tool(i, tool))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(ConvertError::invalid("tools: must be an array")),
    };
    let user = match non_null(&body, "safety_identifier") {
        Some(_) => string(&body, "safety_identifier")?,
        None => string(&body, "user")?,
    };
    Ok(Request {
        model,
        system,
        messages,
        max_tokens,
        temperature: number(&body, "temperature")?,
        top_p: number(&body, "top_p")?,
        top_k: count(&body, "top_k")?,
        stop,
        stream: flag(&body, "stream")?.unwrap_or(false),
        tools,
        tool_choice: decode_tool_choice(non_null(&body, "tool_choice"))?,
        parallel_tool_calls: flag(&body, "parallel_tool_calls")?,
        reasoning: decode_effort(&body)?,
        response_format: decode_response_format(non_null(&body, "response_format"))?,
        user,
        seed: match non_null(&body, "seed") {
            None => None,
            Some(seed) => Some(
                seed.as_i64()
                    .ok_or_else(|| ConvertError::invalid("seed: must be an integer"))?,
            ),
        },
        presence_penalty: number(&body, "presence_penalty")?,
        frequency_penalty: number(&body, "frequency_penalty")?,
    })
}

/// Fields whose meaning the IR cannot carry.
fn refuse_unsupported(body: &Map<String, Value>) -> Result<(), ConvertError> {
    let unsupported = |feature: &str| Err(ConvertError::unsupported(feature, PROTOCOL));
    if non_null(body, "n").and_then(Value::as_u64).unwrap_or(1) > 1 {
        return unsupported("n > 1 (several choices)");
    }
    if non_null(body, "logprobs").and_then(Value::as_bool) == Some(true) {
        return unsupported("logprobs");
    }
    if non_null(body, "top_logprobs").is_some() {
        return unsupported("top_logprobs");
    }
    if let Some(Value::Array(modalities)) = non_null(body, "modalities")
        && modalities.iter().any(|m| m.as_str() == Some("audio"))
    {
        return unsupported("audio output (modalities)");
    }
    for field in ["audio", "functions", "function_call", "web_search_options"] {
        if non_null(body, field).is_some() {
            return unsupported(field);
        }
    }
    Ok(())
}

/// `messages` → system prompts and turns.
fn decode_messages(items: &[Value]) -> Result<(Vec<String>, Vec<Message>), ConvertError> {
    let mut system = Vec::new();
    let mut messages: Vec<Message> = Vec::new();
    // Tool names by call id, so a tool result can say which tool it answers.
    let mut names: HashMap<String, String> = HashMap::new();
    // The last turn is the one consecutive `tool` messages fold into.
    let mut folding_tools = false;
    for (i, item) in items.iter().enumerate() {
        let at = format!("messages[{i}]");
        let Value::Object(message) = item else {
            return Err(ConvertError::invalid(format!("{at}: must be an object")));
        };
        let role = message
            .get("role")
            .and_then(Value::as_str)
            .ok_or_else(|| ConvertError::invalid(format!("{at}.role: missing")))?;
        let content = message.get("content").unwrap_or(&Value::Null);
        let is_tool = role == "tool";
        match role {
            // System messages are hoisted to the front, wherever they stood.
            "system" | "developer" => {
                system.extend(
                    text_only(content, &format!("{at}.content"))?
                        .into_iter()
                        .filter(|t| !t.is_empty()),
                );
            }
            "user" => messages.push(Message {
                role: Role::User,
                parts: decode_content(content, &format!("{at}.content"), true)?,
            }),
            "assistant" => {
                let parts = decode_assistant(message, &at, &mut names)?;
                messages.push(Message {
                    role: Role::Assistant,
                    parts,
                });
            }
            "tool" => {
                let call_id = message
                    .get("tool_call_id")
                    .and_then(Value::as_str)
                    .ok_or_else(|| ConvertError::invalid(format!("{at}.tool_call_id: missing")))?;
                let result = Part::ToolResult(ToolResult {
                    call_id: call_id.to_owned(),
                    name: names.get(call_id).cloned(),
                    content: text_only(content, &format!("{at}.content"))?
                        .into_iter()
                        .filter(|t| !t.is_empty())
                        .map(Part::Text)
                        .collect(),
                    is_error: false,
                });
                match messages.last_mut() {
                    Some(last) if folding_tools => last.parts.push(result),
                    _ => messages.push(Message {
                        role: Role::User,
                        parts: vec![result],
                    }),
                }
            }
            "function" => return Err(ConvertError::unsupported("function messages", PROTOCOL)),
            other => {
                return Err(ConvertError::invalid(format!(
                    "{at}.role: unknown role \"{other}\""
                )));
            }
        }
        if !matches!(role, "system" | "developer") {
            folding_tools = is_tool;
        }
    }
    Ok((system, messages))
}

/// An assistant message: reasoning (compatible servers), content, tool calls, in that order.
fn decode_assistant(
    message: &Map<String, Value>,
    at: &str,
    names: &mut HashMap<String, String>,
) -> Result<Vec<Part>, ConvertError> {
    if non_null(message, "audio").is_some() {
        return Err(ConvertError::unsupported("assistant audio", PROTOCOL));
    }
    if non_null(message, "function_call").is_some() {
        return Err(ConvertError::unsupported("function_call", PROTOCOL));
    }
    let mut parts = Vec::new();
    let reasoning =
        non_null(message, "reasoning_content").or_else(|| non_null(message, "reasoning"));
    if let Some(reasoning) = reasoning {
        let text = reasoning.as_str().ok_or_else(|| {
            ConvertError::invalid(format!("{at}.reasoning_content: must be a string"))
        })?;
        if !text.is_empty() {
            parts.push(Part::Thinking(crate::convert::ir::Thinking {
                text: text.to_owned(),
                ..Default::default()
            }));
        }
    }
    let content = message.get("content").unwrap_or(&Value::Null);
    parts.extend(decode_content(content, &format!("{at}.content"), false)?);
    if let Some(Value::String(refusal)) = non_null(message, "refusal")
        && !refusal.is_empty()
    {
        parts.push(Part::Text(refusal.clone()));
    }
    match non_null(message, "tool_calls") {
        None => {}
        Some(Value::Array(calls)) => {
            for (j, call) in calls.iter().enumerate() {
                let call = decode_tool_call(call, &format!("{at}.tool_calls[{j}]"))?;
                names.insert(call.id.clone(), call.name.clone());
                parts.push(Part::ToolCall(call));
            }
        }
        Some(_) => {
            return Err(ConvertError::invalid(format!(
                "{at}.tool_calls: must be an array"
            )));
        }
    }
    Ok(parts)
}

fn decode_tool_call(call: &Value, at: &str) -> Result<ToolCall, ConvertError> {
    match call.get("type").and_then(Value::as_str) {
        None | Some("function") => {}
        Some(other) => {
            return Err(ConvertError::unsupported(
                format!("\"{other}\" tool calls"),
                PROTOCOL,
            ));
        }
    }
    let id = call
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| ConvertError::invalid(format!("{at}.id: missing")))?;
    let function = call
        .get("function")
        .ok_or_else(|| ConvertError::invalid(format!("{at}.function: missing")))?;
    let name = function
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| ConvertError::invalid(format!("{at}.function.name: missing")))?;
    let arguments = match function.get("arguments") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        // Lenient: some clients send the object itself.
        Some(object @ Value::Object(_)) => object.to_string(),
        Some(_) => {
            return Err(ConvertError::invalid(format!(
                "{at}.function.arguments: must be a string"
            )));
        }
    };
    Ok(ToolCall {
        id: id.to_owned(),
        name: name.to_owned(),
        arguments: if arguments.trim().is_empty() {
            "{}".to_owned()
        } else {
            arguments
        },
    })
}

/// Content that may only hold text (system, developer and tool messages): one string per
/// text part.
fn text_only(content: &Value, at: &str) -> Result<Vec<String>, ConvertError> {
    match content {
        Value::Null => Ok(Vec::new()),
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(parts) => parts
            .iter()
            .enumerate()
            .map(|(k, part)| match part.get("type").and_then(Value::as_str) {
                Some("text") => part
                    .get("text")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .ok_or_else(|| ConvertError::invalid(format!("{at}[{k}].text: missing"))),
                Some(other) => Err(ConvertError::invalid(format!(
                    "{at}[{k}].type: \"{other}\" is not allowed here (text only)"
                ))),
                None => Err(ConvertError::invalid(format!("{at}[{k}].type: missing"))),
            })
            .collect(),
        _ => Err(ConvertError::invalid(format!(
            "{at}: must be a string or an array of parts"
        ))),
    }
}

/// User or assistant content: a string or parts. Empty text is skipped.
fn decode_content(content: &Value, at: &str, user: bool) -> Result<Vec<Part>, ConvertError> {
    let parts = match content {
        Value::Null => return Ok(Vec::new()),
        Value::String(s) if s.is_empty() => return Ok(Vec::new()),
        Value::String(s) => return Ok(vec![Part::Text(s.clone())]),
        Value::Array(parts) => parts,
        _ => {
            return Err(ConvertError::invalid(format!(
                "{at}: must be a string or an array of parts"
            )));
        }
    };
    let mut out = Vec::with_capacity(parts.len());
    for (k, part) in parts.iter().enumerate() {
        let at = format!("{at}[{k}]");
        let kind = part
            .get("type")
            .and_then(Value::as_str)
            .ok_or_else(|| ConvertError::invalid(format!("{at}.type: missing")))?;
        let field = |key: &str| {
            part.get(key)
                .and_then(Value::as_str)
                .ok_or_else(|| ConvertError::invalid(format!("{at}.{key}: missing")))
        };
        match kind {
            "text" => {
                let text = field("text")?;
                if !text.is_empty() {
                    out.push(Part::Text(text.to_owned()));
                }
            }
            "refusal" if !user => out.push(Part::Text(field("refusal")?.to_owned())),
            "image_url" if user => {
                let url = match part.get("image_url") {
                    Some(Value::String(url)) => url.as_str(),
                    Some(image) => image.get("url").and_then(Value::as_str).ok_or_else(|| {
                        ConvertError::invalid(format!("{at}.image_url.url: missing"))
                    })?,
                    None => return Err(ConvertError::invalid(format!("{at}.image_url: missing"))),
                };
                out.push(Part::Image(media_of_url(
                    url,
                    &format!("{at}.image_url.url"),
                )?));
            }
            "file" if user => out.push(decode_file(part, &at)?),
            "input_audio" => return Err(ConvertError::unsupported("input_audio", PROTOCOL)),
            other => {
                return Err(ConvertError::invalid(format!(
                    "{at}.type: \"{other}\" is not a content part of this message"
                )));
            }
        }
    }
    Ok(out)
}

/// `{"type":"file","file":{"file_data","filename"}}` → a document; `file_id` is refused.
fn decode_file(part: &Value, at: &str) -> Result<Part, ConvertError> {
    let file = part
        .get("file")
        .ok_or_else(|| ConvertError::invalid(format!("{at}.file: missing")))?;
    if file.get("file_id").is_some_and(|v| !v.is_null()) {
        return Err(ConvertError::unsupported("file_id", PROTOCOL));
    }
    let title = file
        .get("filename")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let data = file
        .get("file_data")
        .and_then(Value::as_str)
        .ok_or_else(|| ConvertError::invalid(format!("{at}.file.file_data: missing")))?;
    let source = if data.starts_with("data:") {
        media_of_url(data, &format!("{at}.file.file_data"))?
    } else {
        // Bare base64: the type from the file name's extension.
        Media::Base64 {
            media_type: media_type_of(title.as_deref()).to_owned(),
            data: data.to_owned(),
        }
    };
    Ok(Part::Document(Document { source, title }))
}

/// An `image_url` or `file_data` URL: `data:<type>;base64,<data>` → base64, http(s) → URL.
fn media_of_url(url: &str, at: &str) -> Result<Media, ConvertError> {
    let Some(rest) = url.strip_prefix("data:") else {
        if url.starts_with("http://") || url.starts_with("https://") {
            return Ok(Media::Url {
                url: url.to_owned(),
            });
        }
        return Err(ConvertError::invalid(format!(
            "{at}: must be an http(s) URL or a base64 data: URL"
        )));
    };
    let (meta, data) = rest
        .split_once(',')
        .ok_or_else(|| ConvertError::invalid(format!("{at}: a data: URL needs a comma")))?;
    let media_type = meta
        .strip_suffix(";base64")
        .ok_or_else(|| ConvertError::invalid(format!("{at}: a data: URL must be base64")))?;
    Ok(Media::Base64 {
        media_type: media_type.to_owned(),
        data: data.to_owned(),
    })
}

/// A MIME type from a file name (documents given as bare base64).
fn media_type_of(filename: Option<&str>) -> &'static str {
    let extension = filename
        .and_then(|name| name.rsplit_once('.'))
        .map(|(_, ext)| ext.to_ascii_lowercase());
    match extension.as_deref() {
        Some("txt") => "text/plain",
        Some("md") => "text/markdown",
        Some("csv") => "text/csv",
        Some("html" | "htm") => "text/html",
        Some("json") => "application/json",
        _ => "application/pdf",
    }
}

fn decode_tool(i: usize, tool: &Value) -> Result<Tool, ConvertError> {
    let at = format!("tools[{i}]");
    match tool.get("type").and_then(Value::as_str) {
        Some("function") => {}
        Some(other) => {
            return Err(ConvertError::unsupported(
                format!("tools of type \"{other}\""),
                PROTOCOL,
            ));
        }
        None => return Err(ConvertError::invalid(format!("{at}.type: missing"))),
    }
    let function = tool
        .get("function")
        .ok_or_else(|| ConvertError::invalid(format!("{at}.function: missing")))?;
    let name = function
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ConvertError::invalid(format!("{at}.function.name: missing")))?;
    let parameters = match function.get("parameters") {
        None | Some(Value::Null) => json!({"type": "object", "properties": {}}),
        Some(schema @ Value::Object(_)) => schema.clone(),
        Some(_) => {
            return Err(ConvertError::invalid(format!(
                "{at}.function.parameters: must be an object"
            )));
        }
    };
    Ok(Tool {
        name: name.to_owned(),
        description: function
            .get("description")
            .and_then(Value::as_str)
            .map(str::to_owned),
        parameters,
    })
}

fn decode_tool_choice(choice: Option<&Value>) -> Result<Option<ToolChoice>, ConvertError> {
    let invalid = || {
        ConvertError::invalid(
            "tool_choice: must be \"auto\", \"none\", \"required\" or a function to call",
        )
    };
    let Some(choice) = choice else {
        return Ok(None);
    };
    let choice = match choice {
        Value::String(s) => match s.as_str() {
            "auto" => ToolChoice::Auto,
            "none" => ToolChoice::None,
            "required" => ToolChoice::Required,
            _ => return Err(invalid()),
        },
        Value::Object(object) => match object.get("type").and_then(Value::as_str) {
            Some("function") => ToolChoice::Tool(
                object
                    .get("function")
                    .and_then(|f| f.get("name"))
                    .and_then(Value::as_str)
                    .ok_or_else(|| ConvertError::invalid("tool_choice.function.name: missing"))?
                    .to_owned(),
            ),
            Some(other) => {
                return Err(ConvertError::unsupported(
                    format!("tool_choice of type \"{other}\""),
                    PROTOCOL,
                ));
            }
            None => return Err(invalid()),
        },
        _ => return Err(invalid()),
    };
    Ok(Some(choice))
}

/// `reasoning_effort`: `none` asks for no reasoning; `xhigh` is the most the IR has, `high`.
fn decode_effort(body: &Map<String, Value>) -> Result<Option<Reasoning>, ConvertError> {
    let Some(effort) = non_null(body, "reasoning_effort") else {
        return Ok(None);
    };
    let effort = match effort.as_str() {
        Some("none") => return Ok(None),
        Some("minimal") => Effort::Minimal,
        Some("low") => Effort::Low,
        Some("medium") => Effort::Medium,
        Some("high" | "xhigh") => Effort::High,
        _ => {
            return Err(ConvertError::invalid(
                "reasoning_effort: must be one of none, minimal, low, medium, high",
            ));
        }
    };
    Ok(Some(Reasoning {
        budget_tokens: None,
        effort: Some(effort),
    }))
}

fn decode_response_format(format: Option<&Value>) -> Result<Option<ResponseFormat>, ConvertError> {
    let Some(format) = format else {
        return Ok(None);
    };
    let format = match format.get("type").and_then(Value::as_str) {
        Some("text") => ResponseFormat::Text,
        Some("json_object") => ResponseFormat::JsonObject,
        Some("json_schema") => {
            let spec = format
                .get("json_schema")
                .ok_or_else(|| ConvertError::invalid("response_format.json_schema: missing"))?;
            ResponseFormat::JsonSchema {
                name: spec
                    .get("name")
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        ConvertError::invalid("response_format.json_schema.name: missing")
                    })?
                    .to_owned(),
                schema: spec
                    .get("schema")
                    .cloned()
                    .unwrap_or_else(|| json!({"type": "object"})),
                strict: spec.get("strict").and_then(Value::as_bool).unwrap_or(false),
            }
        }
        _ => {
            return Err(ConvertError::invalid(
                "response_format.type: must be text, json_object or json_schema",
            ));
        }
    };
    Ok(Some(format))
}

fn non_null<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    object.get(key).filter(|v| !v.is_null())
}

/// An optional field (`null` = absent) of type `what`, read by `read`.
fn typed<'a, T>(
    object: &'a Map<String, Value>,
    key: &str,
    read: impl FnOnce(&'a Value) -> Option<T>,
    what: &'static str,
) -> Result<Option<T>, ConvertError> {
    crate::convert::optional_field(object, key, read, what)
        .map_err(|what| ConvertError::invalid(format!("{key}: must be {what}")))
}

fn number(object: &Map<String, Value>, key: &str) -> Result<Option<f64>, ConvertError> {
    typed(object, key, Value::as_f64, "a number")
}

fn count(object: &Map<String, Value>, key: &str) -> Result<Option<u64>, ConvertError> {
    typed(object, key, Value::as_u64, "a non-negative integer")
}

fn flag(object: &Map<String, Value>, key: &str) -> Result<Option<bool>, ConvertError> {
    typed(object, key, Value::as_bool, "true or false")
}

fn string(object: &Map<String, Value>, key: &str) -> Result<Option<String>, ConvertError> {
    typed(object, key, |v| v.as_str().map(str::to_owned), "a string")
}

// ---------------------------------------------------------------------------------------------
// Encoding

/// The body for a Chat Completions upstream. `max_completion_tokens` carries the limit (OpenAI
/// refuses `max_tokens` for its reasoning models); a streaming request always asks for usage.
pub(super) fn encode(request: &Request) -> Result<Vec<u8>, ConvertError> {
    let mut body = Map::new();
    body.insert("model".into(), Value::from(request.model.as_str()));
    let mut messages: Vec<Value> = request
        .system
        .iter()
        .map(|text| json!({"role": "system", "content": text}))
        .collect();
    for message in &request.messages {
        match message.role {
            Role::User => encode_user(&message.parts, &mut messages)?,
            Role::Assistant => encode_assistant(&message.parts, &mut messages)?,
        }
    }
    body.insert("messages".into(), Value::Array(messages));
    if let Some(max) = request.max_tokens {
        body.insert("max_completion_tokens".into(), Value::from(max));
    }
    let mut put_number = |key: &str, value: Option<f64>| {
        if let Some(value) = value {
            body.insert(key.into(), Value::from(value));
        }
    };
    put_number("temperature", request.temperature);
    put_number("top_p", request.top_p);
    put_number("presence_penalty", request.presence_penalty);
    put_number("frequency_penalty", request.frequency_penalty);
    if !request.stop.is_empty() {
        body.insert("stop".into(), json!(request.stop));
    }
    if request.stream {
        body.insert("stream".into(), Value::Bool(true));
        body.insert("stream_options".into(), json!({"include_usage": true}));
    }
    if !request.tools.is_empty() {
        let tools = request
            .tools
            .iter()
            .map(|tool| {
                let mut function = Map::new();
                function.insert("name".into(), Value::from(tool.name.as_str()));
                if let Some(description) = &tool.description {
                    function.insert("description".into(), Value::from(description.as_str()));
                }
                function.insert("parameters".into(), tool.parameters.clone());
                json!({"type": "function", "function": function})
            })
            .collect();
        body.insert("tools".into(), Value::Array(tools));
        // OpenAI refuses `parallel_tool_calls` without tools.
        if let Some(parallel) = request.parallel_tool_calls {
            body.insert("parallel_tool_calls".into(), Value::Bool(parallel));
        }
    }
    if let Some(choice) = &request.tool_choice {
        let choice = match choice {
            ToolChoice::Auto => json!("auto"),
            ToolChoice::None => json!("none"),
            ToolChoice::Required => json!("required"),
            ToolChoice::Tool(name) => json!({"type": "function", "function": {"name": name}}),
        };
        body.insert("tool_choice".into(), choice);
    }
    if let Some(reasoning) = &request.reasoning {
        let effort = match reasoning.effort() {
            Effort::Minimal => "minimal",
            Effort::Low => "low",
            Effort::Medium => "medium",
            Effort::High => "high",
        };
        body.insert("reasoning_effort".into(), Value::from(effort));
    }
    if let Some(format) = &request.response_format {
        let format = match format {
            ResponseFormat::Text => json!({"type": "text"}),
            ResponseFormat::JsonObject => json!({"type": "json_object"}),
            ResponseFormat::JsonSchema {
                name,
                schema,
                strict,
            } => json!({
                "type": "json_schema",
                "json_schema": {"name": name, "schema": schema, "strict": strict},
            }),
        };
        body.insert("response_format".into(), format);
    }
    if let Some(user) = &request.user {
        body.insert("user".into(), Value::from(user.as_str()));
    }
    if let Some(seed) = request.seed {
        body.insert("seed".into(), Value::from(seed));
    }
    serde_json::to_vec(&Value::Object(body))
        .map_err(|e| ConvertError::invalid(format!("the request could not be written: {e}")))
}

/// A user turn: its tool results first, as `tool` messages (they must follow the assistant's
/// calls), then one user message with the rest. Images and documents inside tool results move
/// to that user message: a `tool` message carries text only.
fn encode_user(parts: &[Part], messages: &mut Vec<Value>) -> Result<(), ConvertError> {
    let mut content = Vec::new();
    let mut moved = Vec::new();
    for part in parts {
        match part {
            Part::ToolResult(result) => {
                let mut texts = Vec::new();
                for inner in &result.content {
                    match inner {
                        Part::Text(text) => texts.push(text.as_str()),
                        Part::Image(_) | Part::Document(_) => moved.push(user_part(inner)?),
                        _ => {}
                    }
                }
                let content = match texts.as_slice() {
                    [one] => Value::from(*one),
                    [] => Value::from(""),
                    many => Value::Array(
                        many.iter()
                            .map(|t| json!({"type": "text", "text": t}))
                            .collect(),
                    ),
                };
                messages.push(json!({
                    "role": "tool",
                    "tool_call_id": result.call_id,
                    "content": content,
                }));
            }
            Part::Text(_) | Part::Image(_) | Part::Document(_) => content.push(user_part(part)?),
            // Thinking has no place in a user turn; calls are the assistant's.
            Part::Thinking(_) | Part::ToolCall(_) => {}
        }
    }
    moved.extend(content);
    if moved.is_empty() {
        return Ok(());
    }
    let content = match moved.as_slice() {
        [Value::Object(part)] if part.get("type").and_then(Value::as_str) == Some("text") => {
            part.get("text").cloned().unwrap_or_default()
        }
        _ => Value::Array(moved),
    };
    messages.push(json!({"role": "user", "content": content}));
    Ok(())
}

fn user_part(part: &Part) -> Result<Value, ConvertError> {
    Ok(match part {
        Part::Text(text) => json!({"type": "text", "text": text}),
        Part::Image(media) => json!({"type": "image_url", "image_url": {"url": media_url(media)}}),
        Part::Document(document) => {
            let Media::Base64 { media_type, .. } = &document.source else {
                return Err(ConvertError::unsupported(
                    "a document given by URL",
                    PROTOCOL,
                ));
            };
            let filename = document.title.clone().unwrap_or_else(|| {
                let extension = media_type.rsplit('/').next().unwrap_or("pdf");
                format!("document.{extension}")
            });
            json!({
                "type": "file",
                "file": {"filename": filename, "file_data": media_url(&document.source)},
            })
        }
        _ => Value::Null,
    })
}

fn media_url(media: &Media) -> String {
    match media {
        Media::Base64 { media_type, data } => format!("data:{media_type};base64,{data}"),
        Media::Url { url } => url.clone(),
    }
}

/// An assistant turn: its text as `content` (one string, or text parts when there are
/// several), its calls as `tool_calls`. Thinking is dropped: Chat has no field for it in a
/// request.
fn encode_assistant(parts: &[Part], messages: &mut Vec<Value>) -> Result<(), ConvertError> {
    let mut texts = Vec::new();
    let mut calls = Vec::new();
    for part in parts {
        match part {
            Part::Text(text) => texts.push(text.as_str()),
            Part::ToolCall(call) => calls.push(json!({
                "id": call.id,
                "type": "function",
                "function": {
                    "name": call.name,
                    "arguments": if call.arguments.trim().is_empty() { "{}" } else { &call.arguments },
                },
            })),
            Part::Image(_) | Part::Document(_) => {
                return Err(ConvertError::unsupported(
                    "images or documents in an assistant turn",
                    PROTOCOL,
                ));
            }
            Part::Thinking(_) | Part::ToolResult(_) => {}
        }
    }
    if texts.is_empty() && calls.is_empty() {
        return Ok(());
    }
    let content = match texts.as_slice() {
        [] => Value::Null,
        [one] => Value::from(*one),
        many => Value::Array(
            many.iter()
                .map(|t| json!({"type": "text", "text": t}))
                .collect(),
        ),
    };
    let mut message = Map::new();
    message.insert("role".into(), Value::from("assistant"));
    message.insert("content".into(), content);
    if !calls.is_empty() {
        message.insert("tool_calls".into(), Value::Array(calls));
    }
    messages.push(Value::Object(message));
    Ok(())
}
