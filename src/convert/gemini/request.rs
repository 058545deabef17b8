//! `GenerateContentRequest` ⇄ [`ir::Request`].

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use super::super::ConvertError;
use super::super::ir::{
    self, Effort, Message, Part, Reasoning, Request, ResponseFormat, Role, Tool, ToolChoice,
};
use super::PROTOCOL;
use super::parts::{self, CallIds, DUMMY_SIGNATURES};
use super::wire::{self, Content, OutContent, OutFunctionResponse, OutPart};

/// Gemini takes at most this many stop sequences.
const MAX_STOP_SEQUENCES: usize = 5;

/// The schema name a Gemini response schema gets (Gemini's schemas have none).
const SCHEMA_NAME: &str = "response";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireRequest<'a> {
    #[serde(borrow, default)]
    contents: Vec<Content<'a>>,
    #[serde(borrow, default, alias = "system_instruction")]
    system_instruction: Option<Content<'a>>,
    #[serde(default)]
    tools: Vec<WireTool>,
    #[serde(default, alias = "tool_config")]
    tool_config: Option<ToolConfig>,
    #[serde(default, alias = "generation_config")]
    generation_config: Option<GenerationConfig>,
    #[serde(borrow, default, alias = "cached_content")]
    cached_content: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireTool {
    #[serde(default, alias = "function_declarations")]
    function_declarations: Vec<FunctionDeclaration>,
    /// Built-in tools (`googleSearch`, `codeExecution`, `urlContext`, …): refused.
    #[serde(flatten)]
    other: BTreeMap<String, IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FunctionDeclaration {
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    parameters: Option<Value>,
    #[serde(default, alias = "parameters_json_schema")]
    parameters_json_schema: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ToolConfig {
    #[serde(default, alias = "function_calling_config")]
    function_calling_config: Option<FunctionCallingConfig>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FunctionCallingConfig {
    #[serde(default)]
    mode: Option<String>,
    #[serde(default, alias = "allowed_function_names")]
    allowed_function_names: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GenerationConfig {
    #[serde(default, alias = "max_output_tokens")]
    max_output_tokens: Option<u64>,
    #[serde(default)]
    temperature: Option<f64>,
    #[serde(default, alias = "top_p")]
    top_p: Option<f64>,
    /// An integer, though the Python SDK types it as a float.
    #[serde(default, alias = "top_k")]
    top_k: Option<f64>,
    #[serde(default, alias = "stop_sequences")]
    stop_sequences: Vec<String>,
    #[serde(default, alias = "candidate_count")]
    candidate_count: Option<i64>,
    #[serde(default, alias = "response_mime_type")]
    response_mime_type: Option<String>,
    #[serde(default, alias = "response_schema")]
    response_schema: Option<Value>,
    #[serde(default, alias = "response_json_schema")]
    response_json_schema: Option<Value>,
    #[serde(default, alias = "thinking_config")]
    thinking_config: Option<ThinkingConfig>,
    #[serde(default)]
    seed: Option<i64>,
    #[serde(default, alias = "presence_penalty")]
    presence_penalty: Option<f64>,
    #[serde(default, alias = "frequency_penalty")]
    frequency_penalty: Option<f64>,
    #[serde(default, alias = "response_modalities")]
    response_modalities: Vec<String>,
    #[serde(default, alias = "speech_config")]
    speech_config: Option<IgnoredAny>,
    #[serde(default, alias = "response_logprobs")]
    response_logprobs: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ThinkingConfig {
    #[serde(default, alias = "thinking_budget")]
    thinking_budget: Option<i64>,
    #[serde(default, alias = "include_thoughts")]
    include_thoughts: Option<bool>,
    #[serde(default, alias = "thinking_level")]
    thinking_level: Option<String>,
}

/// A `generateContent` body → the IR. `model` and `stream` come from the URL: left empty
/// (`false`) for the wiring to set.
///
/// Dropped: `safetySettings` (Gemini's own filter levels; no other protocol has them) and
/// `labels`. Refused: `cachedContent`, built-in tools, `candidateCount` > 1, audio, video and
/// uploaded files, non-text output modalities, logprobs, code execution parts.
pub fn decode_request(body: &[u8]) -> Result<Request, ConvertError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let wire: WireRequest<'_> = serde_path_to_error::deserialize(&mut deserializer)
        .map_err(|e| ConvertError::invalid(format!("{}: {}", e.path(), e.inner())))?;
    if wire.cached_content.is_some() {
        return Err(ConvertError::unsupported("cachedContent", PROTOCOL));
    }
    let mut request = Request::default();
    if let Some(system) = &wire.system_instruction {
        for (j, part) in system.parts.iter().enumerate() {
            match &part.text {
                Some(text) if part.inline_data.is_none() && part.file_data.is_none() => {
                    if !text.is_empty() {
                        request.system.push(text.to_string());
                    }
                }
                _ if part.text.is_none()
                    && part.inline_data.is_none()
                    && part.file_data.is_none() => {}
                _ => {
                    return Err(ConvertError::unsupported(
                        format!("systemInstruction.parts[{j}] that is not text"),
                        PROTOCOL,
                    ));
                }
            }
        }
    }
    request.messages = messages(&wire.contents)?;
    request.tools = tools(&wire.tools)?;
    if let Some(config) = wire
        .tool_config
        .as_ref()
        .and_then(|c| c.function_calling_config.as_ref())
    {
        request.tool_choice = tool_choice(config, &mut request.tools)?;
    }
    if let Some(config) = &wire.generation_config {
        generation_config(config, &mut request)?;
    }
    Ok(request)
}

fn messages(contents: &[Content<'_>]) -> Result<Vec<Message>, ConvertError> {
    let mut messages: Vec<Message> = Vec::with_capacity(contents.len());
    let mut ids = CallIds::for_request();
    for (i, content) in contents.iter().enumerate() {
        let role = match content.role.as_deref() {
            None | Some("" | "user" | "function") => Role::User,
            Some("model") => Role::Assistant,
            Some(other) => {
                return Err(ConvertError::invalid(format!(
                    "contents[{i}].role must be \"user\" or \"model\", not {other:?}"
                )));
            }
        };
        // Consecutive turns of one role are one turn (a streamed answer kept chunk by chunk).
        if messages.last().is_none_or(|m| m.role != role) {
            messages.push(Message {
                role,
                parts: Vec::new(),
            });
        }
        let Some(message) = messages.last_mut() else {
            continue;
        };
        for (j, part) in content.parts.iter().enumerate() {
            let path = || format!("contents[{i}].parts[{j}]");
            match role {
                Role::Assistant => parts::model_part(part, &path, &mut ids, &mut message.parts)?,
                Role::User => user_part(part, &path, &mut message.parts)?,
            }
        }
    }
    messages.retain(|m| !m.parts.is_empty());
    pair_results(&mut messages)?;
    Ok(messages)
}

fn user_part(
    part: &wire::Part<'_>,
    path: &dyn Fn() -> String,
    out: &mut Vec<Part>,
) -> Result<(), ConvertError> {
    if let Some(text) = &part.text {
        if !text.is_empty() {
            out.push(Part::Text(text.to_string()));
        }
    } else if let Some(response) = &part.function_response {
        let name = response.name.as_deref().unwrap_or_default();
        if name.is_empty() {
            return Err(ConvertError::invalid(format!(
                "{}.functionResponse.name is missing",
                path()
            )));
        }
        let (mut content, is_error) = result_content(response.response);
        for (k, inner) in response.parts.iter().enumerate() {
            let inner_path = || format!("{}.functionResponse.parts[{k}]", path());
            content.push(parts::media_part(inner, &inner_path)?);
        }
        out.push(Part::ToolResult(ir::ToolResult {
            // Paired with its call by name once every turn is read (`pair_results`).
            call_id: response.id.as_deref().unwrap_or_default().to_owned(),
            name: Some(name.to_owned()),
            content,
            is_error,
        }));
    } else if part.inline_data.is_some() || part.file_data.is_some() {
        out.push(parts::media_part(part, path)?);
    } else if part.function_call.is_some() {
        return Err(ConvertError::invalid(format!(
            "{}.functionCall belongs in a model turn, not a user turn",
            path()
        )));
    } else {
        parts::refuse_code_execution(part)?;
    }
    Ok(())
}

/// `functionResponse.response` → the result's content. `{"output": x}` and `{"result": x}`
/// (what the SDKs write) are `x`; `{"error": x}` is an error `x`; any other object is the
/// result as it is (its JSON text).
fn result_content(response: Option<&RawValue>) -> (Vec<Part>, bool) {
    let Some(response) = response else {
        return (Vec::new(), false);
    };
    let text_of = |value: &RawValue| match serde_json::from_str::<Cow<'_, str>>(value.get()) {
        Ok(text) => text.into_owned(),
        Err(_) => value.get().to_owned(),
    };
    let (text, is_error) =
        match serde_json::from_str::<BTreeMap<Cow<'_, str>, &RawValue>>(response.get()) {
            Ok(map) if map.len() == 1 => match map.iter().next() {
                Some((key, value)) if matches!(key.as_ref(), "output" | "result") => {
                    (text_of(value), false)
                }
                Some((key, value)) if key == "error" => (text_of(value), true),
                _ => (response.get().to_owned(), false),
            },
            _ => (response.get().to_owned(), false),
        };
    (vec![Part::Text(text)], is_error)
}

/// Gives each function response the id of its call: its own `id` when it has one, else the
/// earliest unanswered call of that name.
fn pair_results(messages: &mut [Message]) -> Result<(), ConvertError> {
    // (id, name, answered)
    let mut calls: Vec<(String, String, bool)> = Vec::new();
    for message in messages.iter_mut() {
        for part in &mut message.parts {
            match part {
                Part::ToolCall(call) => calls.push((call.id.clone(), call.name.clone(), false)),
                Part::ToolResult(result) if result.call_id.is_empty() => {
                    let name = result.name.as_deref().unwrap_or_default();
                    let Some(call) = calls
                        .iter_mut()
                        .find(|(_, call_name, answered)| !answered && call_name == name)
                    else {
                        return Err(ConvertError::invalid(format!(
                            "the functionResponse for {name:?} answers no earlier functionCall \
                             of that name"
                        )));
                    };
                    call.2 = true;
                    result.call_id.clone_from(&call.0);
                }
                Part::ToolResult(result) => {
                    if let Some(call) = calls.iter_mut().find(|(id, _, _)| *id == result.call_id) {
                        call.2 = true;
                    }
                }
                _ => {}
            }
        }
    }
    Ok(())
}

fn tools(wire: &[WireTool]) -> Result<Vec<Tool>, ConvertError> {
    let mut tools = Vec::new();
    for (i, tool) in wire.iter().enumerate() {
        if let Some(key) = tool.other.keys().next() {
            return Err(ConvertError::unsupported(
                format!("the {key} tool"),
                PROTOCOL,
            ));
        }
        for (j, declaration) in tool.function_declarations.iter().enumerate() {
            if declaration.name.is_empty() {
                return Err(ConvertError::invalid(format!(
                    "tools[{i}].functionDeclarations[{j}].name is missing"
                )));
            }
            let parameters = match (&declaration.parameters_json_schema, &declaration.parameters) {
                (Some(schema), _) => schema.clone(),
                (None, Some(schema)) => json_schema_of(schema),
                (None, None) => serde_json::json!({"type": "object", "properties": {}}),
            };
            tools.push(Tool {
                name: declaration.name.clone(),
                description: declaration.description.clone().filter(|d| !d.is_empty()),
                parameters,
            });
        }
    }
    Ok(tools)
}

/// Gemini's OpenAPI-subset `Schema` (`parameters`, `responseSchema`) as JSON Schema: type
/// names in lower case, `nullable` folded into the type, `propertyOrdering` left out.
fn json_schema_of(schema: &Value) -> Value {
    match schema {
        Value::Object(map) => {
            let mut out = serde_json::Map::with_capacity(map.len());
            let nullable = map.get("nullable").and_then(Value::as_bool) == Some(true);
            for (key, value) in map {
                match key.as_str() {
                    "nullable" | "propertyOrdering" | "property_ordering" => {}
                    "type" => {
                        let Some(name) = value.as_str() else {
                            out.insert(key.clone(), value.clone());
                            continue;
                        };
                        let name = name.to_ascii_lowercase();
                        if name == "type_unspecified" {
                            continue;
                        }
                        let kind = if nullable {
                            serde_json::json!([name, "null"])
                        } else {
                            Value::String(name)
                        };
                        out.insert(key.clone(), kind);
                    }
                    "properties" => {
                        let properties = value.as_object().map_or_else(
                            || value.clone(),
                            |props| {
                                Value::Object(
                                    props
                                        .iter()
                                        .map(|(k, v)| (k.clone(), json_schema_of(v)))
                                        .collect(),
                                )
                            },
                        );
                        out.insert(key.clone(), properties);
                    }
                    "items" => {
                        out.insert(key.clone(), json_schema_of(value));
                    }
                    "anyOf" | "any_of" => {
                        let options = value.as_array().map_or_else(
                            || value.clone(),
                            |options| Value::Array(options.iter().map(json_schema_of).collect()),
                        );
                        out.insert("anyOf".to_owned(), options);
                    }
                    _ => {
                        out.insert(key.clone(), value.clone());
                    }
                }
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

/// `functionCallingConfig` → a tool choice. `ANY` with one allowed function is that function;
/// with several, the tools are narrowed to those (the same choice, in a shape every protocol
/// has). `VALIDATED` (calls checked against their schemas) is `AUTO`.
fn tool_choice(
    config: &FunctionCallingConfig,
    tools: &mut Vec<Tool>,
) -> Result<Option<ToolChoice>, ConvertError> {
    let mode = config.mode.as_deref().unwrap_or_default();
    let allowed = &config.allowed_function_names;
    let narrow = |tools: &mut Vec<Tool>| {
        if !allowed.is_empty() {
            tools.retain(|t| allowed.contains(&t.name));
        }
    };
    Ok(match mode.to_ascii_uppercase().as_str() {
        "" | "MODE_UNSPECIFIED" => None,
        "AUTO" => Some(ToolChoice::Auto),
        "NONE" => Some(ToolChoice::None),
        "ANY" => {
            if let [only] = allowed.as_slice() {
                Some(ToolChoice::Tool(only.clone()))
            } else {
                narrow(tools);
                Some(ToolChoice::Required)
            }
        }
        "VALIDATED" => {
            narrow(tools);
            Some(ToolChoice::Auto)
        }
        other => {
            return Err(ConvertError::invalid(format!(
                "toolConfig.functionCallingConfig.mode {other:?} is not AUTO, ANY, NONE or VALIDATED"
            )));
        }
    })
}

fn generation_config(config: &GenerationConfig, request: &mut Request) -> Result<(), ConvertError> {
    if config.candidate_count.is_some_and(|n| n > 1) {
        return Err(ConvertError::unsupported(
            "generationConfig.candidateCount",
            PROTOCOL,
        ));
    }
    if let Some(modality) = config
        .response_modalities
        .iter()
        .find(|m| !m.eq_ignore_ascii_case("text"))
    {
        return Err(ConvertError::unsupported(
            format!("generationConfig.responseModalities {modality}"),
            PROTOCOL,
        ));
    }
    if config.speech_config.is_some() {
        return Err(ConvertError::unsupported(
            "generationConfig.speechConfig",
            PROTOCOL,
        ));
    }
    if config.response_logprobs == Some(true) {
        return Err(ConvertError::unsupported(
            "generationConfig.responseLogprobs",
            PROTOCOL,
        ));
    }
    request.max_tokens = config.max_output_tokens;
    request.temperature = config.temperature;
    request.top_p = config.top_p;
    if let Some(k) = config.top_k {
        if k < 0.0 || k.fract() != 0.0 || k > 1e15 {
            return Err(ConvertError::invalid(format!(
                "generationConfig.topK must be a whole number ≥ 0, not {k}"
            )));
        }
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "checked whole and in range just above"
        )]
        let k = k as u64;
        request.top_k = Some(k);
    }
    request.stop.clone_from(&config.stop_sequences);
    request.seed = config.seed;
    request.presence_penalty = config.presence_penalty;
    request.frequency_penalty = config.frequency_penalty;
    request.response_format = response_format(config)?;
    if let Some(thinking) = &config.thinking_config {
        request.reasoning = reasoning(thinking)?;
    }
    Ok(())
}

fn response_format(config: &GenerationConfig) -> Result<Option<ResponseFormat>, ConvertError> {
    let schema = config
        .response_json_schema
        .clone()
        .or_else(|| config.response_schema.as_ref().map(json_schema_of));
    let json_schema = |schema| ResponseFormat::JsonSchema {
        name: SCHEMA_NAME.to_owned(),
        schema,
        // Gemini's schemas do not follow OpenAI's strict rules (every property required, no
        // additional properties): asking for strict would get many of them refused.
        strict: false,
    };
    let mime = config.response_mime_type.as_deref().unwrap_or_default();
    Ok(match mime.to_ascii_lowercase().as_str() {
        "" => schema.map(json_schema),
        "application/json" => Some(schema.map_or(ResponseFormat::JsonObject, json_schema)),
        "text/plain" => Some(ResponseFormat::Text),
        _ => {
            return Err(ConvertError::unsupported(
                format!("generationConfig.responseMimeType {mime}"),
                PROTOCOL,
            ));
        }
    })
}

/// `thinkingConfig` → reasoning. A budget of 0 (thinking off) is no reasoning; -1 (dynamic) or
/// `includeThoughts` alone is reasoning at the upstream's default effort.
fn reasoning(config: &ThinkingConfig) -> Result<Option<Reasoning>, ConvertError> {
    let effort = match config.thinking_level.as_deref() {
        None => None,
        Some(level) => match level.to_ascii_lowercase().as_str() {
            "" | "thinking_level_unspecified" => None,
            "minimal" => Some(Effort::Minimal),
            "low" => Some(Effort::Low),
            "medium" => Some(Effort::Medium),
            "high" => Some(Effort::High),
            _ => {
                return Err(ConvertError::invalid(format!(
                    "generationConfig.thinkingConfig.thinkingLevel {level:?} is not minimal, low, \
                     medium or high"
                )));
            }
        },
    };
    let budget = match config.thinking_budget {
        None | Some(-1) => None,
        Some(0) if effort.is_none() => return Ok(None),
        Some(0) => None,
        Some(n) => Some(u64::try_from(n).map_err(|_| {
            ConvertError::invalid(format!(
                "generationConfig.thinkingConfig.thinkingBudget must be -1, 0 or positive, not {n}"
            ))
        })?),
    };
    let asked = effort.is_some()
        || budget.is_some()
        || config.thinking_budget == Some(-1)
        || config.include_thoughts == Some(true);
    Ok(asked.then_some(Reasoning {
        budget_tokens: budget,
        effort,
    }))
}

// ---- encode --------------------------------------------------------------------------------

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OutRequest<'a> {
    contents: Vec<OutContent<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    system_instruction: Option<OutSystem<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<OutTools<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_config: Option<OutToolConfig<'a>>,
    #[serde(skip_serializing_if = "OutGenerationConfig::is_empty")]
    generation_config: OutGenerationConfig<'a>,
}

#[derive(Serialize)]
struct OutSystem<'a> {
    parts: Vec<OutPart<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OutTools<'a> {
    function_declarations: Vec<OutDeclaration<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OutDeclaration<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    parameters_json_schema: &'a Value,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OutToolConfig<'a> {
    function_calling_config: OutFunctionCallingConfig<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OutFunctionCallingConfig<'a> {
    mode: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    allowed_function_names: Option<[&'a str; 1]>,
}

#[derive(Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct OutGenerationConfig<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    max_output_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_k: Option<u64>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop_sequences: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    presence_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    frequency_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_mime_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_json_schema: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking_config: Option<OutThinkingConfig>,
}

impl OutGenerationConfig<'_> {
    fn is_empty(&self) -> bool {
        self.max_output_tokens.is_none()
            && self.temperature.is_none()
            && self.top_p.is_none()
            && self.top_k.is_none()
            && self.stop_sequences.is_empty()
            && self.seed.is_none()
            && self.presence_penalty.is_none()
            && self.frequency_penalty.is_none()
            && self.response_mime_type.is_none()
            && self.response_json_schema.is_none()
            && self.thinking_config.is_none()
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OutThinkingConfig {
    include_thoughts: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking_budget: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking_level: Option<&'static str>,
}

/// The body for a Gemini upstream (the model goes in the URL).
///
/// - Tool schemas go in `parametersJsonSchema`: the other protocols' schemas are full JSON
///   Schema (`$ref`, `additionalProperties`, type arrays), which `parameters` (an OpenAPI
///   subset) refuses.
/// - A tool result is `{"result": text}` (`{"error": text}` when it failed); a result whose
///   text is a JSON object goes in as that object, so the model reads the tool's own
///   structure. Images in a tool result follow the function responses as parts of the same
///   turn (every Gemini model reads those; `functionResponse.parts` is Gemini 3 only).
/// - The first function call of a model turn with no thought signature gets Google's
///   documented placeholder, which Gemini 3 requires for history that came from elsewhere.
/// - Reasoning: a budget is `thinkingBudget`; an effort alone is `thinkingLevel`, or a budget
///   for Gemini 1.x/2.x models, which have no levels; thoughts are always asked for
///   (`includeThoughts`), so the client sees the reasoning it asked for.
/// - Dropped (no field): the user id, `parallel_tool_calls`, document titles, redacted
///   thinking. Refused: more than 5 stop sequences.
pub fn encode_request(request: &Request) -> Result<Vec<u8>, ConvertError> {
    let mut contents = Vec::with_capacity(request.messages.len());
    for (index, message) in request.messages.iter().enumerate() {
        let (role, mut parts) = match message.role {
            Role::User => ("user", user_parts_out(message, &request.messages[..index])?),
            Role::Assistant => ("model", parts::model_parts_out(&message.parts, true)?),
        };
        if parts.is_empty() {
            continue;
        }
        if let Some(first_call) = parts.iter_mut().find(|p| p.function_call.is_some())
            && first_call.thought_signature.is_none()
        {
            first_call.thought_signature = Some(DUMMY_SIGNATURES[0]);
        }
        contents.push(OutContent { parts, role });
    }
    if request.stop.len() > MAX_STOP_SEQUENCES {
        return Err(ConvertError::unsupported(
            format!(
                "{} stop sequences (at most {MAX_STOP_SEQUENCES})",
                request.stop.len()
            ),
            PROTOCOL,
        ));
    }
    let body = OutRequest {
        contents,
        system_instruction: (!request.system.is_empty()).then(|| OutSystem {
            parts: request
                .system
                .iter()
                .map(|text| OutPart {
                    text: Some(text),
                    ..OutPart::default()
                })
                .collect(),
        }),
        tools: if request.tools.is_empty() {
            Vec::new()
        } else {
            vec![OutTools {
                function_declarations: request
                    .tools
                    .iter()
                    .map(|tool| OutDeclaration {
                        name: &tool.name,
                        description: tool.description.as_deref(),
                        parameters_json_schema: &tool.parameters,
                    })
                    .collect(),
            }]
        },
        tool_config: request.tool_choice.as_ref().map(|choice| OutToolConfig {
            function_calling_config: match choice {
                ToolChoice::Auto => calling("AUTO", None),
                ToolChoice::None => calling("NONE", None),
                ToolChoice::Required => calling("ANY", None),
                ToolChoice::Tool(name) => calling("ANY", Some([name.as_str()])),
            },
        }),
        generation_config: generation_config_out(request),
    };
    Ok(wire::to_json(&body))
}

fn calling<'a>(mode: &'static str, names: Option<[&'a str; 1]>) -> OutFunctionCallingConfig<'a> {
    OutFunctionCallingConfig {
        mode,
        allowed_function_names: names,
    }
}

fn generation_config_out(request: &Request) -> OutGenerationConfig<'_> {
    let (response_mime_type, response_json_schema) = match &request.response_format {
        None => (None, None),
        Some(ResponseFormat::Text) => (Some("text/plain"), None),
        Some(ResponseFormat::JsonObject) => (Some("application/json"), None),
        Some(ResponseFormat::JsonSchema { schema, .. }) => (Some("application/json"), Some(schema)),
    };
    OutGenerationConfig {
        max_output_tokens: request.max_tokens,
        temperature: request.temperature,
        top_p: request.top_p,
        top_k: request.top_k,
        stop_sequences: &request.stop,
        seed: request.seed,
        presence_penalty: request.presence_penalty,
        frequency_penalty: request.frequency_penalty,
        response_mime_type,
        response_json_schema,
        thinking_config: request
            .reasoning
            .as_ref()
            .map(|r| thinking_out(r, &request.model)),
    }
}

fn thinking_out(reasoning: &Reasoning, model: &str) -> OutThinkingConfig {
    let older = ["gemini-1", "gemini-2"]
        .iter()
        .any(|prefix| model.trim_start_matches("models/").starts_with(prefix));
    let (budget, level) = match (reasoning.budget_tokens, reasoning.effort) {
        (Some(budget), _) => (Some(i64::try_from(budget).unwrap_or(i64::MAX)), None),
        (None, Some(_)) if older => (
            Some(i64::try_from(reasoning.budget()).unwrap_or(i64::MAX)),
            None,
        ),
        (None, Some(effort)) => (
            None,
            Some(match effort {
                Effort::Minimal => "minimal",
                Effort::Low => "low",
                Effort::Medium => "medium",
                Effort::High => "high",
            }),
        ),
        // Thinking, at the model's own dynamic budget.
        (None, None) => (Some(-1), None),
    };
    OutThinkingConfig {
        include_thoughts: true,
        thinking_budget: budget,
        thinking_level: level,
    }
}

/// A user turn: text, media and function responses (each named: by the IR, else by the call
/// it answers in an earlier turn). Images and documents in tool results follow the turn's
/// other parts.
fn user_parts_out<'a>(
    message: &'a Message,
    earlier: &'a [Message],
) -> Result<Vec<OutPart<'a>>, ConvertError> {
    let mut out = Vec::with_capacity(message.parts.len());
    let mut trailing = Vec::new();
    for part in &message.parts {
        match part {
            Part::Text(text) => {
                if !text.is_empty() {
                    out.push(OutPart {
                        text: Some(text),
                        ..OutPart::default()
                    });
                }
            }
            Part::Image(media) => out.push(parts::media_out(media, false)),
            Part::Document(document) => out.push(parts::media_out(&document.source, true)),
            Part::ToolResult(result) => {
                let name = match result.name.as_deref() {
                    Some(name) if !name.is_empty() => name,
                    _ => call_name(earlier, &result.call_id).ok_or_else(|| {
                        ConvertError::invalid(format!(
                            "the tool result for {} answers no earlier tool call",
                            result.call_id
                        ))
                    })?,
                };
                let mut text = String::new();
                for inner in &result.content {
                    match inner {
                        Part::Text(t) => {
                            if !text.is_empty() {
                                text.push('\n');
                            }
                            text.push_str(t);
                        }
                        Part::Image(media) => trailing.push(parts::media_out(media, false)),
                        Part::Document(document) => {
                            trailing.push(parts::media_out(&document.source, true));
                        }
                        _ => {}
                    }
                }
                out.push(OutPart {
                    function_response: Some(OutFunctionResponse {
                        id: Some(result.call_id.as_str()).filter(|id| !id.is_empty()),
                        name,
                        response: response_object(&text, result.is_error),
                    }),
                    ..OutPart::default()
                });
            }
            Part::ToolCall(call) => {
                return Err(ConvertError::invalid(format!(
                    "tool call {} is in a user turn",
                    call.id
                )));
            }
            // Reasoning is the model's; a user turn has none to hand back.
            Part::Thinking(_) => {}
        }
    }
    out.extend(trailing);
    Ok(out)
}

fn call_name<'a>(earlier: &'a [Message], id: &str) -> Option<&'a str> {
    earlier.iter().rev().find_map(|message| {
        message.parts.iter().find_map(|part| match part {
            Part::ToolCall(call) if call.id == id => Some(call.name.as_str()),
            _ => None,
        })
    })
}

fn response_object(text: &str, is_error: bool) -> Box<RawValue> {
    if !is_error
        && text.trim_start().starts_with('{')
        && let Some(object) = wire::raw(text)
    {
        return object;
    }
    let key = if is_error { "error" } else { "result" };
    let mut map = serde_json::Map::with_capacity(1);
    map.insert(key.to_owned(), Value::String(text.to_owned()));
    serde_json::value::to_raw_value(&map).unwrap_or_else(|_| wire::empty_object())
}
