//! The request body: `POST /v1/responses` ⇄ [`Request`].

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use super::super::ConvertError;
use super::super::ir::{
    Document, Effort, Media, Message, Part, Reasoning, Request, ResponseFormat, Role, Tool,
    ToolCall, ToolChoice, ToolResult,
};
use super::PROTOCOL;
use super::answer::thinking_of;

/// A client's Responses request → IR.
///
/// Ignored (hints, or relaybox's own business): `store`, `include`, `metadata`,
/// `service_tier`, `prompt_cache_key`, `prompt_cache_retention`, `text.verbosity`,
/// `truncation`, `stream_options`, `max_tool_calls`, a function tool's `strict`, an image's
/// `detail`. Refused as unsupported: server-side state (`previous_response_id`,
/// `conversation`, `item_reference` items, `prompt`, `background`), file ids, audio,
/// `top_logprobs`, built-in tools and the input items they produce.
pub fn decode_request(body: &[u8]) -> Result<Request, ConvertError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ConvertError::invalid(format!("the request body is not valid JSON: {e}")))?;
    let Value::Object(body) = value else {
        return Err(ConvertError::invalid(
            "the request body must be a JSON object",
        ));
    };
    for key in ["previous_response_id", "conversation", "prompt"] {
        if present(&body, key).is_some() {
            return Err(ConvertError::unsupported(key, PROTOCOL));
        }
    }
    if opt_bool(&body, "background")? == Some(true) {
        return Err(ConvertError::unsupported("background", PROTOCOL));
    }
    if opt_u64(&body, "top_logprobs")?.is_some_and(|n| n > 0) {
        return Err(ConvertError::unsupported("top_logprobs", PROTOCOL));
    }

    let mut request = Request {
        model: opt_str(&body, "model")?
            .ok_or_else(|| ConvertError::invalid("model is required"))?
            .to_owned(),
        max_tokens: opt_u64(&body, "max_output_tokens")?,
        temperature: opt_f64(&body, "temperature")?,
        top_p: opt_f64(&body, "top_p")?,
        stream: opt_bool(&body, "stream")?.unwrap_or(false),
        parallel_tool_calls: opt_bool(&body, "parallel_tool_calls")?,
        user: match opt_str(&body, "user")? {
            Some(user) => Some(user.to_owned()),
            None => opt_str(&body, "safety_identifier")?.map(str::to_owned),
        },
        ..Request::default()
    };
    if let Some(instructions) = opt_str(&body, "instructions")?
        && !instructions.is_empty()
    {
        request.system.push(instructions.to_owned());
    }
    let mut turns = Turns::default();
    match present(&body, "input") {
        None => return Err(ConvertError::invalid("input is required")),
        Some(Value::String(text)) => turns.push(Role::User, Part::Text(text.clone())),
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                turns.item(i, item, &mut request.system)?;
            }
        }
        Some(_) => {
            return Err(ConvertError::invalid(
                "input must be a string or an array of items",
            ));
        }
    }
    request.messages = turns.messages;
    if let Some(tools) = present(&body, "tools") {
        let tools = tools
            .as_array()
            .ok_or_else(|| ConvertError::invalid("tools must be an array"))?;
        for (i, tool) in tools.iter().enumerate() {
            request.tools.push(decode_tool(i, tool)?);
        }
    }
    request.tool_choice = present(&body, "tool_choice")
        .map(decode_tool_choice)
        .transpose()?;
    request.reasoning = match present(&body, "reasoning") {
        None => None,
        Some(reasoning) => decode_reasoning(reasoning)?,
    };
    if let Some(text) = present(&body, "text") {
        let text = text
            .as_object()
            .ok_or_else(|| ConvertError::invalid("text must be an object"))?;
        request.response_format = present(text, "format").map(decode_format).transpose()?;
    }
    Ok(request)
}

/// The IR request as a Responses body. `store` is false (relaybox keeps no state upstream, so
/// reasoning travels back as `encrypted_content`); system texts after the first become
/// `developer` messages at the start of `input`.
pub fn encode_request(request: &Request) -> Result<Vec<u8>, ConvertError> {
    if !request.stop.is_empty() {
        return Err(ConvertError::unsupported("stop sequences", PROTOCOL));
    }
    let mut body = Map::new();
    body.insert("model".into(), Value::from(request.model.as_str()));
    if let Some(first) = request.system.first() {
        body.insert("instructions".into(), Value::from(first.as_str()));
    }
    let mut input = Vec::new();
    for text in request.system.iter().skip(1) {
        input.push(json!({
            "type": "message",
            "role": "developer",
            "content": [{"type": "input_text", "text": text}],
        }));
    }
    for message in &request.messages {
        encode_message(message, &mut input)?;
    }
    body.insert("input".into(), Value::Array(input));
    if !request.tools.is_empty() {
        let tools: Vec<Value> = request.tools.iter().map(encode_tool).collect();
        body.insert("tools".into(), Value::Array(tools));
    }
    if let Some(choice) = &request.tool_choice {
        let choice = match choice {
            ToolChoice::Auto => json!("auto"),
            ToolChoice::None => json!("none"),
            ToolChoice::Required => json!("required"),
            ToolChoice::Tool(name) => json!({"type": "function", "name": name}),
        };
        body.insert("tool_choice".into(), choice);
    }
    if let Some(parallel) = request.parallel_tool_calls {
        body.insert("parallel_tool_calls".into(), Value::from(parallel));
    }
    if let Some(max) = request.max_tokens {
        body.insert("max_output_tokens".into(), Value::from(max));
    }
    if let Some(temperature) = request.temperature {
        body.insert("temperature".into(), Value::from(temperature));
    }
    if let Some(top_p) = request.top_p {
        body.insert("top_p".into(), Value::from(top_p));
    }
    if let Some(reasoning) = &request.reasoning {
        let mut config = json!({"summary": "auto"});
        if reasoning.effort.is_some() || reasoning.budget_tokens.is_some() {
            config["effort"] = Value::from(effort_name(reasoning.effort()));
        }
        body.insert("reasoning".into(), config);
        body.insert("include".into(), json!(["reasoning.encrypted_content"]));
    }
    if let Some(format) = &request.response_format {
        let format = match format {
            ResponseFormat::Text => json!({"type": "text"}),
            ResponseFormat::JsonObject => json!({"type": "json_object"}),
            ResponseFormat::JsonSchema {
                name,
                schema,
                strict,
            } => json!({"type": "json_schema", "name": name, "schema": schema, "strict": strict}),
        };
        body.insert("text".into(), json!({ "format": format }));
    }
    if let Some(user) = &request.user {
        body.insert("user".into(), Value::from(user.as_str()));
    }
    if request.stream {
        body.insert("stream".into(), Value::Bool(true));
    }
    body.insert("store".into(), Value::Bool(false));
    Ok(Value::Object(body).to_string().into_bytes())
}

/// The conversation being rebuilt from `input` items: consecutive items of one role become
/// one IR turn (an assistant message, its reasoning and function calls; function call
/// outputs and the user's next message).
#[derive(Default)]
struct Turns {
    messages: Vec<Message>,
    /// call_id → function name, for the tool results that answer them.
    call_names: HashMap<String, String>,
}

impl Turns {
    fn push(&mut self, role: Role, part: Part) {
        match self.messages.last_mut() {
            Some(last) if last.role == role => last.parts.push(part),
            _ => self.messages.push(Message {
                role,
                parts: vec![part],
            }),
        }
    }

    fn item(
        &mut self,
        i: usize,
        item: &Value,
        system: &mut Vec<String>,
    ) -> Result<(), ConvertError> {
        let Value::Object(item) = item else {
            return Err(ConvertError::invalid(format!(
                "input[{i}] must be an object"
            )));
        };
        let kind = opt_str(item, "type")
            .map_err(|_| ConvertError::invalid(format!("input[{i}].type must be a string")))?
            .unwrap_or("message");
        match kind {
            "message" => self.message(i, item, system),
            "function_call" => {
                let call_id = required_str(item, "call_id", i)?;
                let name = required_str(item, "name", i)?;
                let arguments = match present(item, "arguments") {
                    None => "{}".to_owned(),
                    Some(Value::String(s)) => s.clone(),
                    Some(other) => other.to_string(),
                };
                self.call_names.insert(call_id.to_owned(), name.to_owned());
                self.push(
                    Role::Assistant,
                    Part::ToolCall(ToolCall {
                        id: call_id.to_owned(),
                        name: name.to_owned(),
                        arguments,
                    }),
                );
                Ok(())
            }
            "function_call_output" => {
                let call_id = required_str(item, "call_id", i)?;
                let content = match present(item, "output") {
                    None => Vec::new(),
                    Some(Value::String(s)) if s.is_empty() => Vec::new(),
                    Some(Value::String(s)) => vec![Part::Text(s.clone())],
                    Some(Value::Array(parts)) => parts
                        .iter()
                        .enumerate()
                        .map(|(j, part)| user_part(part, &format!("input[{i}].output[{j}]")))
                        .collect::<Result<_, _>>()?,
                    Some(_) => {
                        return Err(ConvertError::invalid(format!(
                            "input[{i}].output must be a string or an array of content parts"
                        )));
                    }
                };
                let result = ToolResult {
                    call_id: call_id.to_owned(),
                    name: self.call_names.get(call_id).cloned(),
                    content,
                    is_error: false,
                };
                self.push(Role::User, Part::ToolResult(result));
                Ok(())
            }
            "reasoning" => {
                let thinking = thinking_of(
                    item.get("summary"),
                    item.get("content"),
                    item.get("encrypted_content"),
                );
                if let Some(thinking) = thinking {
                    self.push(Role::Assistant, Part::Thinking(thinking));
                }
                Ok(())
            }
            "item_reference" => Err(ConvertError::unsupported("item_reference", PROTOCOL)),
            other => Err(ConvertError::unsupported(
                format!("{other} input items"),
                PROTOCOL,
            )),
        }
    }

    fn message(
        &mut self,
        i: usize,
        item: &Map<String, Value>,
        system: &mut Vec<String>,
    ) -> Result<(), ConvertError> {
        let role_name = required_str(item, "role", i)?;
        // `None`: a system or developer message, which goes to the IR's system texts.
        let role = match role_name {
            "user" => Some(Role::User),
            "assistant" => Some(Role::Assistant),
            "system" | "developer" => None,
            other => {
                return Err(ConvertError::invalid(format!(
                    "input[{i}].role {other:?} is not one of user, assistant, system, developer"
                )));
            }
        };
        let parts = match present(item, "content") {
            Some(Value::String(text)) => {
                match role {
                    Some(role) => self.push(role, Part::Text(text.clone())),
                    None => system.push(text.clone()),
                }
                return Ok(());
            }
            Some(Value::Array(parts)) => parts,
            _ => {
                return Err(ConvertError::invalid(format!(
                    "input[{i}].content must be a string or an array of content parts"
                )));
            }
        };
        let mut system_texts = Vec::new();
        for (j, part) in parts.iter().enumerate() {
            let at = format!("input[{i}].content[{j}]");
            match (role, part_type(part, &at)?) {
                (Some(Role::User), _) => self.push(Role::User, user_part(part, &at)?),
                (Some(Role::Assistant), "output_text" | "input_text") => {
                    let text = part_text(part, "text", &at)?;
                    self.push(Role::Assistant, Part::Text(text.to_owned()));
                }
                (Some(Role::Assistant), "refusal") => {
                    let text = part_text(part, "refusal", &at)?;
                    self.push(Role::Assistant, Part::Text(text.to_owned()));
                }
                (None, "input_text") => system_texts.push(part_text(part, "text", &at)?),
                (None, "input_image" | "input_file") => {
                    return Err(ConvertError::unsupported(
                        format!("files and images in {role_name} messages"),
                        PROTOCOL,
                    ));
                }
                (_, other) => {
                    return Err(ConvertError::invalid(format!(
                        "{at}.type {other:?} is not a content part of {role_name} messages"
                    )));
                }
            }
        }
        if role.is_none() {
            system.push(system_texts.join("\n\n"));
        }
        Ok(())
    }
}

/// A user content part (also a part of a function call's output): text, image or file.
fn user_part(part: &Value, at: &str) -> Result<Part, ConvertError> {
    match part_type(part, at)? {
        "input_text" => Ok(Part::Text(part_text(part, "text", at)?.to_owned())),
        "input_image" => {
            if let Some(url) = part.get("image_url").and_then(Value::as_str) {
                Ok(Part::Image(media_url(url, at)?))
            } else if part.get("file_id").is_some_and(|id| !id.is_null()) {
                Err(ConvertError::unsupported("input_image.file_id", PROTOCOL))
            } else {
                Err(ConvertError::invalid(format!("{at}.image_url is required")))
            }
        }
        "input_file" => {
            let title = part
                .get("filename")
                .and_then(Value::as_str)
                .map(str::to_owned);
            let source = if let Some(data) = part.get("file_data").and_then(Value::as_str) {
                if data.starts_with("data:") {
                    media_url(data, at)?
                } else {
                    // Bare base64, as some clients send it: the type from the file name.
                    Media::Base64 {
                        media_type: media_type_of(title.as_deref()).to_owned(),
                        data: data.to_owned(),
                    }
                }
            } else if let Some(url) = part.get("file_url").and_then(Value::as_str) {
                Media::Url {
                    url: url.to_owned(),
                }
            } else if part.get("file_id").is_some_and(|id| !id.is_null()) {
                return Err(ConvertError::unsupported("input_file.file_id", PROTOCOL));
            } else {
                return Err(ConvertError::invalid(format!(
                    "{at} needs file_data or file_url"
                )));
            };
            Ok(Part::Document(Document { source, title }))
        }
        "input_audio" => Err(ConvertError::unsupported("input_audio", PROTOCOL)),
        other => Err(ConvertError::invalid(format!(
            "{at}.type {other:?} is not a user content part"
        ))),
    }
}

fn part_type<'a>(part: &'a Value, at: &str) -> Result<&'a str, ConvertError> {
    part.get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| ConvertError::invalid(format!("{at}.type is required")))
}

fn part_text<'a>(part: &'a Value, key: &str, at: &str) -> Result<&'a str, ConvertError> {
    part.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| ConvertError::invalid(format!("{at}.{key} must be a string")))
}

/// An image or file URL: a `data:` URL becomes base64 and its type, anything else stays a URL.
fn media_url(url: &str, at: &str) -> Result<Media, ConvertError> {
    let Some(rest) = url.strip_prefix("data:") else {
        return Ok(Media::Url {
            url: url.to_owned(),
        });
    };
    let (meta, data) = rest
        .split_once(',')
        .ok_or_else(|| ConvertError::invalid(format!("{at}: a data URL needs a comma")))?;
    let media_type = meta
        .strip_suffix(";base64")
        .ok_or_else(|| ConvertError::invalid(format!("{at}: a data URL must be base64")))?;
    Ok(Media::Base64 {
        media_type: media_type.to_owned(),
        data: data.to_owned(),
    })
}

fn media_type_of(filename: Option<&str>) -> &'static str {
    let extension = filename
        .and_then(|name| name.rsplit_once('.'))
        .map(|(_, ext)| ext.to_ascii_lowercase());
    match extension.as_deref() {
        Some("txt") => "text/plain",
        Some("md") => "text/markdown",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        _ => "application/pdf",
    }
}

fn decode_tool(i: usize, tool: &Value) -> Result<Tool, ConvertError> {
    let kind = tool
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| ConvertError::invalid(format!("tools[{i}].type is required")))?;
    if kind != "function" {
        return Err(ConvertError::unsupported(format!("{kind} tools"), PROTOCOL));
    }
    let name = tool
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| ConvertError::invalid(format!("tools[{i}].name is required")))?;
    let parameters = match tool.get("parameters") {
        None | Some(Value::Null) => json!({"type": "object", "properties": {}}),
        Some(schema @ Value::Object(_)) => schema.clone(),
        Some(_) => {
            return Err(ConvertError::invalid(format!(
                "tools[{i}].parameters must be a JSON schema object"
            )));
        }
    };
    Ok(Tool {
        name: name.to_owned(),
        description: tool
            .get("description")
            .and_then(Value::as_str)
            .map(str::to_owned),
        parameters,
    })
}

fn encode_tool(tool: &Tool) -> Value {
    let mut value = json!({
        "type": "function",
        "name": tool.name,
        "parameters": tool.parameters,
        // Strict mode needs schemas written for it (every property required, no additional
        // ones); schemas from other protocols are not.
        "strict": false,
    });
    if let Some(description) = &tool.description {
        value["description"] = Value::from(description.as_str());
    }
    value
}

fn decode_tool_choice(choice: &Value) -> Result<ToolChoice, ConvertError> {
    match choice {
        Value::String(mode) => match mode.as_str() {
            "auto" => Ok(ToolChoice::Auto),
            "none" => Ok(ToolChoice::None),
            "required" => Ok(ToolChoice::Required),
            other => Err(ConvertError::invalid(format!(
                "tool_choice {other:?} is not one of auto, none, required"
            ))),
        },
        Value::Object(object) => match object.get("type").and_then(Value::as_str) {
            Some("function") => object
                .get("name")
                .and_then(Value::as_str)
                .map(|name| ToolChoice::Tool(name.to_owned()))
                .ok_or_else(|| ConvertError::invalid("tool_choice.name is required")),
            Some(kind) => Err(ConvertError::unsupported(
                format!("tool_choice {kind}"),
                PROTOCOL,
            )),
            None => Err(ConvertError::invalid("tool_choice.type is required")),
        },
        _ => Err(ConvertError::invalid(
            "tool_choice must be a string or an object",
        )),
    }
}

/// `reasoning.effort` (`none` asks for no reasoning; `xhigh` is the IR's highest).
fn decode_reasoning(reasoning: &Value) -> Result<Option<Reasoning>, ConvertError> {
    let Value::Object(reasoning) = reasoning else {
        return Err(ConvertError::invalid("reasoning must be an object"));
    };
    let effort = match opt_str(reasoning, "effort")
        .map_err(|_| ConvertError::invalid("reasoning.effort must be a string"))?
    {
        None => None,
        Some("none") => return Ok(None),
        Some("minimal") => Some(Effort::Minimal),
        Some("low") => Some(Effort::Low),
        Some("medium") => Some(Effort::Medium),
        Some("high" | "xhigh") => Some(Effort::High),
        Some(other) => {
            return Err(ConvertError::invalid(format!(
                "reasoning.effort {other:?} is not one of none, minimal, low, medium, high, xhigh"
            )));
        }
    };
    Ok(Some(Reasoning {
        budget_tokens: None,
        effort,
    }))
}

fn effort_name(effort: Effort) -> &'static str {
    match effort {
        Effort::Minimal => "minimal",
        Effort::Low => "low",
        Effort::Medium => "medium",
        Effort::High => "high",
    }
}

fn decode_format(format: &Value) -> Result<ResponseFormat, ConvertError> {
    match format.get("type").and_then(Value::as_str) {
        Some("text") => Ok(ResponseFormat::Text),
        Some("json_object") => Ok(ResponseFormat::JsonObject),
        Some("json_schema") => {
            let schema = format
                .get("schema")
                .filter(|s| s.is_object())
                .ok_or_else(|| ConvertError::invalid("text.format.schema must be an object"))?;
            Ok(ResponseFormat::JsonSchema {
                name: format
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("response")
                    .to_owned(),
                schema: schema.clone(),
                strict: format
                    .get("strict")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
            })
        }
        Some(other) => Err(ConvertError::invalid(format!(
            "text.format.type {other:?} is not one of text, json_object, json_schema"
        ))),
        None => Err(ConvertError::invalid("text.format.type is required")),
    }
}

/// One IR turn as `input` items.
fn encode_message(message: &Message, input: &mut Vec<Value>) -> Result<(), ConvertError> {
    // Content parts waiting to become one `message` item.
    let mut content: Vec<Value> = Vec::new();
    let role = match message.role {
        Role::User => "user",
        Role::Assistant => "assistant",
    };
    let flush = |content: &mut Vec<Value>, input: &mut Vec<Value>| {
        if !content.is_empty() {
            input.push(json!({
                "type": "message",
                "role": role,
                "content": std::mem::take(content),
            }));
        }
    };
    for part in &message.parts {
        match (message.role, part) {
            (Role::User, Part::Text(text)) => {
                content.push(json!({"type": "input_text", "text": text}));
            }
            (Role::Assistant, Part::Text(text)) => {
                content.push(json!({"type": "output_text", "text": text, "annotations": []}));
            }
            (Role::User, Part::Image(media)) => content.push(image_part(media)),
            (Role::User, Part::Document(document)) => content.push(file_part(document)),
            (Role::User, Part::ToolResult(result)) => {
                flush(&mut content, input);
                input.push(function_call_output(result)?);
            }
            (Role::Assistant, Part::ToolCall(call)) => {
                flush(&mut content, input);
                input.push(json!({
                    "type": "function_call",
                    "call_id": call.id,
                    "name": call.name,
                    "arguments": call.arguments,
                }));
            }
            (Role::Assistant, Part::Thinking(thinking)) => {
                // Only encrypted reasoning can go back; a summary alone is not accepted.
                let Some(signature) = &thinking.signature else {
                    continue;
                };
                flush(&mut content, input);
                let summary: Vec<Value> = if thinking.text.is_empty() {
                    Vec::new()
                } else {
                    vec![json!({"type": "summary_text", "text": thinking.text})]
                };
                input.push(json!({
                    "type": "reasoning",
                    "summary": summary,
                    "encrypted_content": signature,
                }));
            }
            (Role::Assistant, Part::Image(_) | Part::Document(_)) => {
                return Err(ConvertError::unsupported(
                    "images and documents in assistant turns",
                    PROTOCOL,
                ));
            }
            (Role::User, Part::Thinking(_)) => {}
            (Role::User, Part::ToolCall(_)) | (Role::Assistant, Part::ToolResult(_)) => {
                return Err(ConvertError::invalid(format!(
                    "a {} in a {role} turn",
                    if matches!(part, Part::ToolCall(_)) {
                        "tool call"
                    } else {
                        "tool result"
                    }
                )));
            }
        }
    }
    flush(&mut content, input);
    Ok(())
}

fn function_call_output(result: &ToolResult) -> Result<Value, ConvertError> {
    let all_text = result.content.iter().all(|p| matches!(p, Part::Text(_)));
    let output = if all_text {
        let mut text = String::new();
        for part in &result.content {
            if let Part::Text(piece) = part {
                text.push_str(piece);
            }
        }
        Value::String(text)
    } else {
        let mut parts = Vec::with_capacity(result.content.len());
        for part in &result.content {
            parts.push(match part {
                Part::Text(text) => json!({"type": "input_text", "text": text}),
                Part::Image(media) => image_part(media),
                Part::Document(document) => file_part(document),
                _ => {
                    return Err(ConvertError::invalid(
                        "a tool result holds only text, images and documents",
                    ));
                }
            });
        }
        Value::Array(parts)
    };
    Ok(json!({
        "type": "function_call_output",
        "call_id": result.call_id,
        "output": output,
    }))
}

fn image_part(media: &Media) -> Value {
    json!({"type": "input_image", "image_url": media_as_url(media), "detail": "auto"})
}

fn file_part(document: &Document) -> Value {
    let mut part = json!({"type": "input_file"});
    match &document.source {
        Media::Base64 { media_type, .. } => {
            let filename = document.title.clone().unwrap_or_else(|| {
                match media_type.as_str() {
                    "text/plain" => "document.txt",
                    "text/markdown" => "document.md",
                    _ => "document.pdf",
                }
                .to_owned()
            });
            part["filename"] = Value::from(filename);
            part["file_data"] = Value::from(media_as_url(&document.source));
        }
        Media::Url { url } => {
            if let Some(title) = &document.title {
                part["filename"] = Value::from(title.as_str());
            }
            part["file_url"] = Value::from(url.as_str());
        }
    }
    part
}

fn media_as_url(media: &Media) -> String {
    match media {
        Media::Base64 { media_type, data } => format!("data:{media_type};base64,{data}"),
        Media::Url { url } => url.clone(),
    }
}

/// A member that is there and not `null`.
fn present<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    object.get(key).filter(|v| !v.is_null())
}

fn required_str<'a>(
    object: &'a Map<String, Value>,
    key: &str,
    i: usize,
) -> Result<&'a str, ConvertError> {
    present(object, key)
        .and_then(Value::as_str)
        .ok_or_else(|| ConvertError::invalid(format!("input[{i}].{key} must be a string")))
}

/// An optional field (`null` = absent) of type `what`, read by `read`.
fn typed<'a, T>(
    object: &'a Map<String, Value>,
    key: &str,
    read: impl FnOnce(&'a Value) -> Option<T>,
    what: &'static str,
) -> Result<Option<T>, ConvertError> {
    crate::convert::optional_field(object, key, read, what)
        .map_err(|what| ConvertError::invalid(format!("{key} must be {what}")))
}

fn opt_str<'a>(object: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, ConvertError> {
    typed(object, key, Value::as_str, "a string")
}

fn opt_bool(object: &Map<String, Value>, key: &str) -> Result<Option<bool>, ConvertError> {
    typed(object, key, Value::as_bool, "true or false")
}

fn opt_u64(object: &Map<String, Value>, key: &str) -> Result<Option<u64>, ConvertError> {
    typed(object, key, Value::as_u64, "a non-negative integer")
}

fn opt_f64(object: &Map<String, Value>, key: &str) -> Result<Option<f64>, ConvertError> {
    typed(object, key, Value::as_f64, "a number")
}
