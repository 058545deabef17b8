//! A `/v1/messages` request body ⇄ [`Request`].
//!
//! Decoding takes every field a converted request can honour and refuses, naming it, what
//! would change the answer the client relies on: server tools (`web_search_…`, `bash_…`,
//! `text_editor_…`, …) and their content blocks, `mcp_servers`, `container`, file-id sources,
//! citations. Hints with no counterpart elsewhere (`cache_control`, `service_tier`, `speed`,
//! `inference_geo`, `context_management`, tool `strict`, document `context`) are dropped.
//!
//! Encoding fills what the API requires and keeps within its rules, dropping (never failing
//! on) what would make it refuse the request:
//! - `max_tokens`: the request's, else [`DEFAULT_MAX_TOKENS`]; with thinking it must exceed
//!   `budget_tokens` (at least 1024), so it is raised to the budget + [`THINKING_HEADROOM`].
//! - Thinking is sent as `{"type":"enabled","budget_tokens":…}` (an effort becomes a budget,
//!   [`Reasoning::budget`]); it is left out when `tool_choice` forces a tool, or when the last
//!   assistant turn calls tools without starting with a signed thinking block (both are 400s).
//!   With thinking, `temperature` other than 1, `top_p` below 0.95 and `top_k` are dropped.
//! - `temperature` and `top_p` together are refused by current models: `top_p` is dropped.
//! - Thinking without a signature (another protocol's reasoning text) is dropped: Anthropic
//!   refuses unsigned thinking blocks. Empty text blocks are dropped (also refused).
//! - In a user turn, `tool_result` blocks go first (the API requires it).
//! - Response format: a JSON schema becomes `output_config.format` (structured outputs); a
//!   plain "JSON object" has no field, so an instruction is appended to the system prompt
//!   ([`JSON_OBJECT_INSTRUCTION`], best effort: nothing enforces it).
//! - Seeds and penalties have no field and are dropped.

use base64::Engine as _;
use serde_json::{Map, Value, json};

use super::PROTOCOL;
use crate::convert::ConvertError;
use crate::convert::ir::{
    Document, Effort, Media, Message, Part, Reasoning, Request, ResponseFormat, Role, Thinking,
    Tool, ToolCall, ToolChoice, ToolResult,
};

/// `max_tokens` when the request has none (Anthropic requires the field).
pub(super) const DEFAULT_MAX_TOKENS: u64 = 8192;
/// Room left for the answer when `max_tokens` has to be raised above a thinking budget.
pub(super) const THINKING_HEADROOM: u64 = 4096;
/// Anthropic's smallest thinking budget.
const MIN_THINKING_BUDGET: u64 = 1024;
/// The schema-less JSON mode, as an instruction (Anthropic has no field for it).
pub(super) const JSON_OBJECT_INSTRUCTION: &str =
    "Respond with a single valid JSON object and nothing else: no prose, no code fences.";
/// The name a decoded JSON schema gets (Anthropic's `output_config.format` has none).
pub(super) const SCHEMA_NAME: &str = "response";

type Object = Map<String, Value>;

fn invalid(message: impl Into<String>) -> ConvertError {
    ConvertError::invalid(message)
}

fn unsupported(feature: impl Into<String>) -> ConvertError {
    ConvertError::unsupported(feature, PROTOCOL)
}

// ---------------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------------

pub fn decode_request(body: &[u8]) -> Result<Request, ConvertError> {
    let body: Value = serde_json::from_slice(body)
        .map_err(|e| invalid(format!("the body is not valid JSON: {e}")))?;
    let Value::Object(body) = body else {
        return Err(invalid("the body must be a JSON object"));
    };
    refuse_stateful(&body)?;

    let (tool_choice, parallel_tool_calls) = decode_tool_choice(&body)?;
    let mut system = decode_system(body.get("system"))?;
    let (in_turns, messages) = decode_messages(body.get("messages"))?;
    system.extend(in_turns);
    Ok(Request {
        model: string_field(&body, "model", "")?
            .ok_or_else(|| invalid("model: missing"))?
            .to_owned(),
        system,
        messages,
        max_tokens: u64_field(&body, "max_tokens", "")?,
        temperature: f64_field(&body, "temperature", "")?,
        top_p: f64_field(&body, "top_p", "")?,
        top_k: u64_field(&body, "top_k", "")?,
        stop: decode_stop(body.get("stop_sequences"))?,
        stream: bool_field(&body, "stream", "")?.unwrap_or(false),
        tools: decode_tools(body.get("tools"))?,
        tool_choice,
        parallel_tool_calls,
        reasoning: decode_reasoning(&body)?,
        response_format: decode_response_format(&body)?,
        user: match object_field(&body, "metadata", "")? {
            Some(metadata) => string_field(metadata, "user_id", "metadata.")?.map(str::to_owned),
            None => None,
        },
        seed: None,
        presence_penalty: None,
        frequency_penalty: None,
    })
}

/// Fields that tie the answer to state on Anthropic's side.
fn refuse_stateful(body: &Object) -> Result<(), ConvertError> {
    if body.get("container").is_some_and(|v| !v.is_null()) {
        return Err(unsupported("container"));
    }
    if let Some(servers) = body.get("mcp_servers")
        && !(servers.is_null() || servers.as_array().is_some_and(Vec::is_empty))
    {
        return Err(unsupported("mcp_servers"));
    }
    Ok(())
}

fn decode_system(value: Option<&Value>) -> Result<Vec<String>, ConvertError> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(text)) if text.is_empty() => Ok(Vec::new()),
        Some(Value::String(text)) => Ok(vec![text.clone()]),
        Some(Value::Array(blocks)) => blocks
            .iter()
            .enumerate()
            .map(|(i, block)| {
                let path = format!("system[{i}]");
                let block = as_object(block, &path)?;
                match block.get("type").and_then(Value::as_str) {
                    Some("text") => required_string(block, "text", &path).map(str::to_owned),
                    _ => Err(invalid(format!("{path}.type: must be \"text\""))),
                }
            })
            .collect(),
        Some(_) => Err(invalid(
            "system: must be a string or an array of text blocks",
        )),
    }
}

/// The turns, and the text of any `system`-role message among them (Claude Code sends one
/// there; it joins the system prompt).
fn decode_messages(value: Option<&Value>) -> Result<(Vec<String>, Vec<Message>), ConvertError> {
    let Some(Value::Array(messages)) = value else {
        return Err(invalid("messages: must be an array of messages"));
    };
    let mut system = Vec::new();
    let mut turns = Vec::with_capacity(messages.len());
    for (i, message) in messages.iter().enumerate() {
        let path = format!("messages[{i}]");
        if message.get("role").and_then(Value::as_str) == Some("system") {
            system.extend(decode_system(message.get("content")).map_err(|_| {
                invalid(format!(
                    "{path}.content: a system message holds a string or text blocks"
                ))
            })?);
            continue;
        }
        turns.push(decode_message(message, &path)?);
    }
    Ok((system, turns))
}

fn decode_message(message: &Value, path: &str) -> Result<Message, ConvertError> {
    let message = as_object(message, path)?;
    let role = match message.get("role").and_then(Value::as_str) {
        Some("user") => Role::User,
        Some("assistant") => Role::Assistant,
        _ => {
            return Err(invalid(format!(
                "{path}.role: must be \"user\", \"assistant\" or \"system\""
            )));
        }
    };
    let parts = match message.get("content") {
        Some(Value::String(text)) => vec![Part::Text(text.clone())],
        Some(Value::Array(blocks)) => blocks
            .iter()
            .enumerate()
            .map(|(j, block)| decode_block(block, &format!("{path}.content[{j}]")))
            .collect::<Result<_, _>>()?,
        _ => {
            return Err(invalid(format!(
                "{path}.content: must be a string or an array of content blocks"
            )));
        }
    };
    Ok(Message { role, parts })
}

fn decode_block(block: &Value, path: &str) -> Result<Part, ConvertError> {
    let block = as_object(block, path)?;
    let kind = required_string(block, "type", path)?;
    match kind {
        "text" => Ok(Part::Text(required_string(block, "text", path)?.to_owned())),
        "image" => Ok(Part::Image(decode_image_source(block, path)?)),
        "document" => Ok(Part::Document(decode_document(block, path)?)),
        "tool_use" => Ok(Part::ToolCall(ToolCall {
            id: required_string(block, "id", path)?.to_owned(),
            name: required_string(block, "name", path)?.to_owned(),
            arguments: match block.get("input") {
                None | Some(Value::Null) => "{}".to_owned(),
                Some(input) => input.to_string(),
            },
        })),
        "tool_result" => Ok(Part::ToolResult(decode_tool_result(block, path)?)),
        "thinking" => Ok(Part::Thinking(Thinking {
            text: string_field(block, "thinking", path)?
                .unwrap_or_default()
                .to_owned(),
            signature: string_field(block, "signature", path)?
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
            redacted: false,
        })),
        "redacted_thinking" => Ok(Part::Thinking(Thinking {
            text: String::new(),
            signature: Some(required_string(block, "data", path)?.to_owned()),
            redacted: true,
        })),
        other => Err(unsupported(format!("`{other}` content blocks"))),
    }
}

fn decode_tool_result(block: &Object, path: &str) -> Result<ToolResult, ConvertError> {
    let content = match block.get("content") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(text)) if text.is_empty() => Vec::new(),
        Some(Value::String(text)) => vec![Part::Text(text.clone())],
        Some(Value::Array(blocks)) => blocks
            .iter()
            .enumerate()
            .map(|(j, inner)| {
                let inner_path = format!("{path}.content[{j}]");
                match decode_block(inner, &inner_path)? {
                    part @ (Part::Text(_) | Part::Image(_) | Part::Document(_)) => Ok(part),
                    _ => Err(invalid(format!(
                        "{inner_path}: a tool result holds text, images and documents only"
                    ))),
                }
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(invalid(format!(
                "{path}.content: must be a string or an array of content blocks"
            )));
        }
    };
    Ok(ToolResult {
        call_id: required_string(block, "tool_use_id", path)?.to_owned(),
        name: None,
        content,
        is_error: bool_field(block, "is_error", path)?.unwrap_or(false),
    })
}

fn decode_image_source(block: &Object, path: &str) -> Result<Media, ConvertError> {
    let source_path = format!("{path}.source");
    let source = object_field(block, "source", path)?
        .ok_or_else(|| invalid(format!("{source_path}: missing")))?;
    match required_string(source, "type", &source_path)? {
        "base64" => Ok(Media::Base64 {
            media_type: required_string(source, "media_type", &source_path)?.to_owned(),
            data: required_string(source, "data", &source_path)?.to_owned(),
        }),
        "url" => Ok(media_from_url(required_string(
            source,
            "url",
            &source_path,
        )?)),
        "file" => Err(unsupported("image file sources (file_id)")),
        other => Err(invalid(format!(
            "{source_path}.type: unknown image source type \"{other}\""
        ))),
    }
}

/// A document: a base64 PDF, a URL, plain text (carried as base64 `text/plain`, as the IR has
/// no raw-text media), or custom content (its text blocks joined, as a text document).
fn decode_document(block: &Object, path: &str) -> Result<Document, ConvertError> {
    if let Some(citations) = object_field(block, "citations", path)?
        && citations.get("enabled").and_then(Value::as_bool) == Some(true)
    {
        return Err(unsupported("document citations"));
    }
    let source_path = format!("{path}.source");
    let source = object_field(block, "source", path)?
        .ok_or_else(|| invalid(format!("{source_path}: missing")))?;
    let media = match required_string(source, "type", &source_path)? {
        "base64" => Media::Base64 {
            media_type: required_string(source, "media_type", &source_path)?.to_owned(),
            data: required_string(source, "data", &source_path)?.to_owned(),
        },
        "url" => media_from_url(required_string(source, "url", &source_path)?),
        "text" => text_media(required_string(source, "data", &source_path)?),
        "content" => text_media(&content_source_text(source, &source_path)?),
        "file" => return Err(unsupported("document file sources (file_id)")),
        other => {
            return Err(invalid(format!(
                "{source_path}.type: unknown document source type \"{other}\""
            )));
        }
    };
    Ok(Document {
        source: media,
        title: string_field(block, "title", path)?.map(str::to_owned),
    })
}

/// The text of a `content` document source (a string or text blocks).
fn content_source_text(source: &Object, path: &str) -> Result<String, ConvertError> {
    match source.get("content") {
        Some(Value::String(text)) => Ok(text.clone()),
        Some(Value::Array(blocks)) => {
            let mut texts = Vec::with_capacity(blocks.len());
            for (i, block) in blocks.iter().enumerate() {
                let block_path = format!("{path}.content[{i}]");
                let block = as_object(block, &block_path)?;
                match block.get("type").and_then(Value::as_str) {
                    Some("text") => texts.push(required_string(block, "text", &block_path)?),
                    _ => return Err(unsupported("non-text blocks in a document's content")),
                }
            }
            Ok(texts.join("\n\n"))
        }
        _ => Err(invalid(format!(
            "{path}.content: must be a string or an array of text blocks"
        ))),
    }
}

fn text_media(text: &str) -> Media {
    Media::Base64 {
        media_type: "text/plain".to_owned(),
        data: base64::engine::general_purpose::STANDARD.encode(text),
    }
}

/// A URL source; a `data:` URL is decoded into its base64 bytes and type.
fn media_from_url(url: &str) -> Media {
    if let Some(rest) = url.strip_prefix("data:")
        && let Some((meta, data)) = rest.split_once(',')
        && let Some(media_type) = meta.strip_suffix(";base64")
    {
        return Media::Base64 {
            media_type: media_type.to_owned(),
            data: data.to_owned(),
        };
    }
    Media::Url {
        url: url.to_owned(),
    }
}

fn decode_stop(value: Option<&Value>) -> Result<Vec<String>, ConvertError> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| invalid("stop_sequences: must be an array of strings"))
            })
            .collect(),
        Some(_) => Err(invalid("stop_sequences: must be an array of strings")),
    }
}

fn decode_tools(value: Option<&Value>) -> Result<Vec<Tool>, ConvertError> {
    let tools = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(tools)) => tools,
        Some(_) => return Err(invalid("tools: must be an array of tools")),
    };
    tools
        .iter()
        .enumerate()
        .map(|(i, tool)| {
            let path = format!("tools[{i}]");
            let tool = as_object(tool, &path)?;
            match string_field(tool, "type", &path)? {
                None | Some("custom") => {}
                Some(server_tool) => return Err(unsupported(format!("the `{server_tool}` tool"))),
            }
            let schema = tool
                .get("input_schema")
                .filter(|s| s.is_object())
                .ok_or_else(|| {
                    invalid(format!("{path}.input_schema: must be a JSON schema object"))
                })?;
            Ok(Tool {
                name: required_string(tool, "name", &path)?.to_owned(),
                description: string_field(tool, "description", &path)?.map(str::to_owned),
                parameters: schema.clone(),
            })
        })
        .collect()
}

fn decode_tool_choice(body: &Object) -> Result<(Option<ToolChoice>, Option<bool>), ConvertError> {
    let Some(choice) = object_field(body, "tool_choice", "")? else {
        return Ok((None, None));
    };
    let path = "tool_choice";
    let tool_choice = match required_string(choice, "type", path)? {
        "auto" => ToolChoice::Auto,
        "any" => ToolChoice::Required,
        "none" => ToolChoice::None,
        "tool" => ToolChoice::Tool(required_string(choice, "name", path)?.to_owned()),
        other => {
            return Err(invalid(format!(
                "tool_choice.type: unknown value \"{other}\""
            )));
        }
    };
    let one_call = bool_field(choice, "disable_parallel_tool_use", "tool_choice.")?;
    Ok((Some(tool_choice), (one_call == Some(true)).then_some(false)))
}

/// `thinking` and `output_config.effort`. `adaptive` thinking is reasoning of the model's
/// choosing (no budget); `disabled` and `between_tools` mean none. `xhigh` and `max` efforts
/// are the IR's highest.
fn decode_reasoning(body: &Object) -> Result<Option<Reasoning>, ConvertError> {
    let effort = match object_field(body, "output_config", "")? {
        Some(config) => match string_field(config, "effort", "output_config.")? {
            None => None,
            Some("low") => Some(Effort::Low),
            Some("medium") => Some(Effort::Medium),
            Some("high" | "xhigh" | "max") => Some(Effort::High),
            Some(other) => {
                return Err(invalid(format!(
                    "output_config.effort: unknown value \"{other}\""
                )));
            }
        },
        None => None,
    };
    let Some(thinking) = object_field(body, "thinking", "")? else {
        return Ok(effort.map(|effort| Reasoning {
            budget_tokens: None,
            effort: Some(effort),
        }));
    };
    match required_string(thinking, "type", "thinking")? {
        "enabled" => Ok(Some(Reasoning {
            budget_tokens: Some(
                u64_field(thinking, "budget_tokens", "thinking.")?
                    .ok_or_else(|| invalid("thinking.budget_tokens: missing"))?,
            ),
            effort,
        })),
        "adaptive" => Ok(Some(Reasoning {
            budget_tokens: None,
            effort,
        })),
        "disabled" | "between_tools" => Ok(None),
        other => Err(unsupported(format!("thinking type `{other}`"))),
    }
}

/// `output_config.format` (or the beta's top-level `output_format`).
fn decode_response_format(body: &Object) -> Result<Option<ResponseFormat>, ConvertError> {
    let (format, path) = match object_field(body, "output_config", "")? {
        Some(config) if config.get("format").is_some_and(|f| !f.is_null()) => {
            (config.get("format"), "output_config.format")
        }
        _ => (body.get("output_format"), "output_format"),
    };
    let format = match format {
        None | Some(Value::Null) => return Ok(None),
        Some(format) => as_object(format, path)?,
    };
    match required_string(format, "type", path)? {
        "json_schema" => Ok(Some(ResponseFormat::JsonSchema {
            name: SCHEMA_NAME.to_owned(),
            schema: format
                .get("schema")
                .filter(|s| s.is_object())
                .cloned()
                .ok_or_else(|| invalid(format!("{path}.schema: must be a JSON schema object")))?,
            strict: true,
        })),
        other => Err(invalid(format!("{path}.type: unknown value \"{other}\""))),
    }
}

// --- field helpers: `path` is the JSON path of the object, for the error message ---

fn as_object<'a>(value: &'a Value, path: &str) -> Result<&'a Object, ConvertError> {
    value
        .as_object()
        .ok_or_else(|| invalid(format!("{path}: must be an object")))
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() || path.ends_with('.') {
        format!("{path}{key}")
    } else {
        format!("{path}.{key}")
    }
}

/// An optional field (`null` = absent) of type `what`, read by `read`.
fn typed_field<'a, T>(
    object: &'a Object,
    key: &str,
    path: &str,
    read: impl FnOnce(&'a Value) -> Option<T>,
    what: &'static str,
) -> Result<Option<T>, ConvertError> {
    crate::convert::optional_field(object, key, read, what)
        .map_err(|what| invalid(format!("{}: must be {what}", join(path, key))))
}

fn string_field<'a>(
    object: &'a Object,
    key: &str,
    path: &str,
) -> Result<Option<&'a str>, ConvertError> {
    typed_field(object, key, path, Value::as_str, "a string")
}

fn required_string<'a>(object: &'a Object, key: &str, path: &str) -> Result<&'a str, ConvertError> {
    string_field(object, key, path)?.ok_or_else(|| invalid(format!("{}: missing", join(path, key))))
}

fn object_field<'a>(
    object: &'a Object,
    key: &str,
    path: &str,
) -> Result<Option<&'a Object>, ConvertError> {
    typed_field(object, key, path, Value::as_object, "an object")
}

fn u64_field(object: &Object, key: &str, path: &str) -> Result<Option<u64>, ConvertError> {
    typed_field(object, key, path, Value::as_u64, "a non-negative integer")
}

fn f64_field(object: &Object, key: &str, path: &str) -> Result<Option<f64>, ConvertError> {
    typed_field(object, key, path, Value::as_f64, "a number")
}

fn bool_field(object: &Object, key: &str, path: &str) -> Result<Option<bool>, ConvertError> {
    typed_field(object, key, path, Value::as_bool, "true or false")
}

// ---------------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------------

pub fn encode_request(request: &Request) -> Result<Vec<u8>, ConvertError> {
    let mut body = Object::new();
    body.insert("model".into(), request.model.clone().into());

    let messages = request
        .messages
        .iter()
        .map(encode_message)
        .filter_map(Result::transpose)
        .collect::<Result<Vec<_>, _>>()?;

    let budget = thinking_budget(request, &messages);
    let mut max_tokens = request.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS);
    if let Some(budget) = budget {
        if max_tokens <= budget {
            max_tokens = budget + THINKING_HEADROOM;
        }
        body.insert(
            "thinking".into(),
            json!({"type": "enabled", "budget_tokens": budget}),
        );
    }
    body.insert("max_tokens".into(), max_tokens.into());

    let mut system = request.system.clone();
    match &request.response_format {
        Some(ResponseFormat::JsonObject) => system.push(JSON_OBJECT_INSTRUCTION.to_owned()),
        Some(ResponseFormat::JsonSchema { schema, .. }) => {
            body.insert(
                "output_config".into(),
                json!({"format": {"type": "json_schema", "schema": schema}}),
            );
        }
        Some(ResponseFormat::Text) | None => {}
    }
    match system.as_slice() {
        [] => {}
        [one] => {
            body.insert("system".into(), one.clone().into());
        }
        several => {
            let blocks = several
                .iter()
                .map(|text| json!({"type": "text", "text": text}))
                .collect();
            body.insert("system".into(), Value::Array(blocks));
        }
    }
    body.insert("messages".into(), Value::Array(messages));

    encode_sampling(request, budget.is_some(), &mut body);
    if !request.stop.is_empty() {
        body.insert("stop_sequences".into(), request.stop.clone().into());
    }
    encode_tools(request, &mut body);
    if let Some(user) = &request.user {
        body.insert("metadata".into(), json!({"user_id": user}));
    }
    if request.stream {
        body.insert("stream".into(), true.into());
    }
    serde_json::to_vec(&Value::Object(body))
        .map_err(|e| invalid(format!("the request could not be serialised: {e}")))
}

/// The thinking budget to send, if thinking can be sent (see the module docs).
fn thinking_budget(request: &Request, messages: &[Value]) -> Option<u64> {
    let reasoning = request.reasoning?;
    if reasoning.budget_tokens == Some(0) {
        return None;
    }
    let forces_tool = !request.tools.is_empty()
        && matches!(
            request.tool_choice,
            Some(ToolChoice::Required | ToolChoice::Tool(_))
        );
    if forces_tool {
        return None;
    }
    // In a tool loop the last assistant turn must start with a (signed) thinking block.
    if let Some(last) = messages.iter().rev().find(|m| m["role"] == "assistant")
        && let Some(blocks) = last["content"].as_array()
        && blocks.iter().any(|b| b["type"] == "tool_use")
        && !blocks
            .first()
            .is_some_and(|b| b["type"] == "thinking" || b["type"] == "redacted_thinking")
    {
        return None;
    }
    Some(reasoning.budget().max(MIN_THINKING_BUDGET))
}

fn encode_sampling(request: &Request, thinking: bool, body: &mut Object) {
    let temperature = request
        .temperature
        .filter(|&t| !thinking || (t - 1.0).abs() < f64::EPSILON);
    let top_p = request
        .top_p
        .filter(|&p| !thinking || p >= 0.95)
        .filter(|_| temperature.is_none());
    let top_k = request.top_k.filter(|_| !thinking);
    if let Some(temperature) = temperature {
        body.insert("temperature".into(), temperature.into());
    }
    if let Some(top_p) = top_p {
        body.insert("top_p".into(), top_p.into());
    }
    if let Some(top_k) = top_k {
        body.insert("top_k".into(), top_k.into());
    }
}

fn encode_tools(request: &Request, body: &mut Object) {
    if request.tools.is_empty() {
        return;
    }
    let tools = request
        .tools
        .iter()
        .map(|tool| {
            let mut out = Object::new();
            out.insert("name".into(), tool.name.clone().into());
            if let Some(description) = &tool.description {
                out.insert("description".into(), description.clone().into());
            }
            let schema = match &tool.parameters {
                Value::Object(schema) if !schema.is_empty() => tool.parameters.clone(),
                _ => json!({"type": "object", "properties": {}}),
            };
            out.insert("input_schema".into(), schema);
            Value::Object(out)
        })
        .collect();
    body.insert("tools".into(), Value::Array(tools));

    let mut choice = match &request.tool_choice {
        None => None,
        Some(ToolChoice::Auto) => Some(json!({"type": "auto"})),
        Some(ToolChoice::None) => Some(json!({"type": "none"})),
        Some(ToolChoice::Required) => Some(json!({"type": "any"})),
        Some(ToolChoice::Tool(name)) => Some(json!({"type": "tool", "name": name})),
    };
    if request.parallel_tool_calls == Some(false) {
        let choice = choice.get_or_insert_with(|| json!({"type": "auto"}));
        if choice["type"] != "none" {
            choice["disable_parallel_tool_use"] = true.into();
        }
    }
    if let Some(choice) = choice {
        body.insert("tool_choice".into(), choice);
    }
}

/// One turn; `None` when nothing in it can be sent.
fn encode_message(message: &Message) -> Result<Option<Value>, ConvertError> {
    let mut blocks = Vec::with_capacity(message.parts.len());
    for part in &message.parts {
        if let Some(block) = encode_part(part)? {
            blocks.push(block);
        }
    }
    if blocks.is_empty() {
        return Ok(None);
    }
    let role = match message.role {
        Role::User => {
            // Tool results first, the rest after, each in its order.
            let (mut results, rest): (Vec<_>, Vec<_>) = blocks
                .into_iter()
                .partition(|block| block["type"] == "tool_result");
            results.extend(rest);
            blocks = results;
            "user"
        }
        Role::Assistant => "assistant",
    };
    Ok(Some(json!({"role": role, "content": blocks})))
}

fn encode_part(part: &Part) -> Result<Option<Value>, ConvertError> {
    Ok(match part {
        Part::Text(text) if text.is_empty() => None,
        Part::Text(text) => Some(json!({"type": "text", "text": text})),
        Part::Image(media) => Some(json!({"type": "image", "source": encode_image_source(media)})),
        Part::Document(document) => Some(encode_document(document)?),
        Part::ToolCall(call) => Some(json!({
            "type": "tool_use",
            "id": safe_tool_id(&call.id),
            "name": call.name,
            "input": tool_input(call)?,
        })),
        Part::ToolResult(result) => Some(encode_tool_result(result)?),
        Part::Thinking(Thinking {
            signature: Some(data),
            redacted: true,
            ..
        }) => Some(json!({"type": "redacted_thinking", "data": data})),
        Part::Thinking(Thinking {
            text,
            signature: Some(signature),
            redacted: false,
        }) => Some(json!({"type": "thinking", "thinking": text, "signature": signature})),
        // Unsigned thinking (another protocol's reasoning): Anthropic refuses it.
        Part::Thinking(_) => None,
    })
}

fn encode_tool_result(result: &ToolResult) -> Result<Value, ConvertError> {
    let mut block = Object::new();
    block.insert("type".into(), "tool_result".into());
    block.insert("tool_use_id".into(), safe_tool_id(&result.call_id).into());
    let mut content = Vec::with_capacity(result.content.len());
    for part in &result.content {
        match part {
            Part::Text(_) | Part::Image(_) | Part::Document(_) => {
                content.extend(encode_part(part)?);
            }
            _ => {}
        }
    }
    if !content.is_empty() {
        block.insert("content".into(), Value::Array(content));
    }
    if result.is_error {
        block.insert("is_error".into(), true.into());
    }
    Ok(Value::Object(block))
}

fn encode_image_source(media: &Media) -> Value {
    match media {
        Media::Base64 { media_type, data } => {
            json!({"type": "base64", "media_type": media_type, "data": data})
        }
        Media::Url { url } => json!({"type": "url", "url": url}),
    }
}

/// PDFs go as base64 or URL sources; any `text/*` document as a plain-text source. Anthropic
/// takes no other document type.
fn encode_document(document: &Document) -> Result<Value, ConvertError> {
    let source = match &document.source {
        Media::Url { url } => json!({"type": "url", "url": url}),
        Media::Base64 { media_type, data } if media_type == "application/pdf" => {
            json!({"type": "base64", "media_type": media_type, "data": data})
        }
        Media::Base64 { media_type, data } if media_type.starts_with("text/") => {
            let text = base64::engine::general_purpose::STANDARD
                .decode(data.trim())
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .ok_or_else(|| {
                    invalid(format!(
                        "a {media_type} document is not valid base64 UTF-8 text"
                    ))
                })?;
            json!({"type": "text", "media_type": "text/plain", "data": text})
        }
        Media::Base64 { media_type, .. } => {
            return Err(unsupported(format!("{media_type} documents")));
        }
    };
    let mut block = json!({"type": "document", "source": source});
    if let Some(title) = &document.title {
        block["title"] = title.clone().into();
    }
    Ok(block)
}

/// The call's arguments as the JSON object `input` must be (empty arguments are `{}`).
fn tool_input(call: &ToolCall) -> Result<Value, ConvertError> {
    if call.arguments.trim().is_empty() {
        return Ok(json!({}));
    }
    match serde_json::from_str::<Value>(&call.arguments) {
        Ok(input @ Value::Object(_)) => Ok(input),
        _ => Err(invalid(format!(
            "the arguments of tool call `{}` are not a JSON object",
            call.id
        ))),
    }
}

/// Anthropic tool ids match `^[a-zA-Z0-9_-]+$`; other characters become `_` (the same way in
/// calls and results, so they still pair up).
fn safe_tool_id(id: &str) -> String {
    if id.is_empty() {
        return "toolu_".to_owned();
    }
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}
