//! What the mock "generates": the reasoning, the reply text or tool calls, their pieces for
//! streaming, and the usage figures, all deterministic from the request.
//!
//! Each protocol module reads its own request shapes into a [`Prompt`] (tools, the tool
//! results of the last turn, images and documents, whether reasoning is asked for); the
//! [`Generation`] made from it is what every protocol renders in its wire format.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use crate::scenario::Scenario;

/// Words in the default reply "Hello from the mock upstream. This is reply number K."
pub const DEFAULT_REPLY_WORDS: u64 = 10;

/// Words in the reasoning text "Let me think about this step by step. Reply number K needs a
/// friendly answer." (the default reasoning-token figure).
pub const DEFAULT_REASONING_WORDS: u64 = 15;

/// Request fields whose text counts towards the estimated input tokens.
const TEXT_ROOTS: [&str; 7] = [
    "system",
    "systemInstruction",
    "system_instruction",
    "instructions",
    "messages",
    "input",
    "contents",
];

/// The mock's input-token figure for a request body of any of the protocols:
/// `ceil(bytes / 4)`, at least 1, where `bytes` is the UTF-8 length of all text
/// in `system`/`systemInstruction`/`instructions`/`messages`/`input`/`contents`.
///
/// "Text" is every string that is such a field itself, or the value of a
/// `text` or `content` key anywhere beneath it (arrays of such strings
/// included). Roles, types, tool names, tool arguments, tool definitions and
/// media data do not count. A Gemini `countTokens` body that wraps its request
/// in `generateContentRequest` is counted from inside the wrapper.
pub fn estimate_input_tokens(body: &Value) -> u64 {
    let body = body.get("generateContentRequest").unwrap_or(body);
    let mut bytes = 0usize;
    if let Some(object) = body.as_object() {
        for root in TEXT_ROOTS {
            if let Some(value) = object.get(root) {
                text_bytes(value, true, &mut bytes);
            }
        }
    }
    (bytes as u64).div_ceil(4).max(1)
}

fn text_bytes(value: &Value, counts: bool, total: &mut usize) {
    match value {
        Value::String(s) if counts => *total += s.len(),
        Value::Array(items) => items.iter().for_each(|v| text_bytes(v, counts, total)),
        Value::Object(map) => map
            .iter()
            .for_each(|(k, v)| text_bytes(v, k == "text" || k == "content", total)),
        _ => {}
    }
}

/// Token figures of one reply. `input` is the uncached input (Anthropic's
/// meaning); protocols that report an all-inclusive prompt figure add the
/// cache tokens to it (see [`Usage::prompt_total`]). `output` is the answer
/// (text or tool calls) and `reasoning` the thinking before it: Anthropic and
/// OpenAI report `output + reasoning` as their output figure, Gemini reports
/// them apart (`candidatesTokenCount`, `thoughtsTokenCount`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Usage {
    pub input: u64,
    pub output: u64,
    pub reasoning: u64,
    pub cache_read: u64,
    pub cache_creation: u64,
}

impl Usage {
    /// OpenAI `prompt_tokens`/`input_tokens` and Gemini `promptTokenCount`.
    pub fn prompt_total(&self) -> u64 {
        self.input + self.cache_read + self.cache_creation
    }

    /// Anthropic `output_tokens`, OpenAI `completion_tokens`/`output_tokens`.
    pub fn output_total(&self) -> u64 {
        self.output + self.reasoning
    }
}

/// A tool the reply may call: its name and JSON schema, if any.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ToolSpec<'a> {
    pub name: &'a str,
    pub schema: Option<&'a Value>,
}

/// Whether an input medium is a picture or a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MediaKind {
    Image,
    Document,
}

/// An image or document the request carried, described for the reply text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Media {
    pub kind: MediaKind,
    /// `image/png, 68 bytes` (inline data, decoded), the URL, or `file ID`.
    pub detail: String,
}

impl Media {
    /// Inline base64 data: its MIME type and decoded byte count.
    pub fn base64(kind: MediaKind, mime: &str, data: &str) -> Result<Self, String> {
        let bytes = STANDARD
            .decode(data.trim())
            .map_err(|_| "invalid base64 data".to_owned())?;
        Ok(Self::inline(kind, mime, bytes.len()))
    }

    /// Inline data of a known length (plain text sources).
    pub fn inline(kind: MediaKind, mime: &str, bytes: usize) -> Self {
        Self {
            kind,
            detail: format!("{mime}, {bytes} bytes"),
        }
    }

    /// A URL the provider would fetch itself.
    pub fn url(kind: MediaKind, url: &str) -> Self {
        Self {
            kind,
            detail: url.to_owned(),
        }
    }

    /// An uploaded file named by its id.
    pub fn file(kind: MediaKind, id: &str) -> Self {
        Self {
            kind,
            detail: format!("file {id}"),
        }
    }

    /// An OpenAI-style `data:MIME;base64,DATA` URL, or any other URL as it is.
    pub fn data_url(kind: MediaKind, url: &str) -> Result<Self, String> {
        match url.strip_prefix("data:") {
            Some(rest) => {
                let (head, data) = rest
                    .split_once(',')
                    .ok_or_else(|| "invalid data URL".to_owned())?;
                let mime = head
                    .strip_suffix(";base64")
                    .ok_or_else(|| "a data URL must be base64 encoded".to_owned())?;
                Self::base64(kind, mime, data)
            }
            None => Ok(Self::url(kind, url)),
        }
    }
}

/// What a request asks of its answer, read from the protocol's own shapes.
#[derive(Debug, Default)]
pub(crate) struct Prompt<'a> {
    /// Tools the answer may call, in the request's order (empty when the tool choice is
    /// "none").
    pub tools: Vec<ToolSpec<'a>>,
    /// The text of each tool result the last turn carries (empty: not a tool-result turn).
    pub tool_results: Vec<String>,
    /// The images and documents anywhere in the conversation, in order.
    pub media: Vec<Media>,
    /// The request asks for reasoning before the answer.
    pub thinking: bool,
}

/// The reasoning that precedes the answer when the request asks for it.
#[derive(Debug, Clone)]
pub(crate) struct Reasoning {
    pub text: String,
    pub pieces: Vec<String>,
    /// Opaque and base64: Anthropic `signature`, Responses `encrypted_content`, Gemini
    /// `thoughtSignature`.
    pub signature: String,
}

/// One tool call of the reply.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub name: String,
    pub input: Value,
    pub arguments: String,
    pub pieces: Vec<String>,
}

/// The reply content: text, or calls of the request's tools.
#[derive(Debug, Clone)]
pub(crate) enum Content {
    Text { text: String, pieces: Vec<String> },
    Tools(Vec<Call>),
}

/// Everything a protocol module needs to render a successful reply.
#[derive(Debug, Clone)]
pub(crate) struct Generation {
    pub model: String,
    pub reasoning: Option<Reasoning>,
    pub content: Content,
    pub usage: Usage,
    /// Unique per reply; used for ids and the reply number.
    pub seq: u64,
}

impl Generation {
    pub fn new(
        model: &str,
        prompt: &Prompt<'_>,
        body: &Value,
        scenario: &Scenario,
        seq: u64,
    ) -> Self {
        let chunks = scenario.chunks;
        let content = if !prompt.tool_results.is_empty() {
            text_content(
                &format!("The tool said: {}", prompt.tool_results.join("; ")),
                chunks,
            )
        } else if !prompt.tools.is_empty() {
            let count = scenario.parallel_tools.unwrap_or(1);
            Content::Tools(
                (0..count)
                    .map(|i| call(prompt.tools[i % prompt.tools.len()], chunks))
                    .collect(),
            )
        } else if !prompt.media.is_empty() {
            text_content(&describe_media(&prompt.media), chunks)
        } else {
            let words = reply_words(seq, chunks, scenario.word_bytes);
            Content::Text {
                text: words.join(" "),
                pieces: group_words(&words, chunks),
            }
        };
        let reasoning = prompt.thinking.then(|| {
            let text = format!(
                "Let me think about this step by step. Reply number {seq} needs a friendly answer."
            );
            Reasoning {
                pieces: text_pieces(&text, chunks),
                text,
                signature: STANDARD.encode(format!("mock-signature-{seq:020}")),
            }
        });
        let default_output = match &content {
            Content::Text { text, .. } => text.split_whitespace().count() as u64,
            Content::Tools(calls) => calls
                .iter()
                .map(|c| (c.arguments.len() as u64).div_ceil(4).max(1))
                .sum(),
        };
        let default_reasoning = reasoning
            .as_ref()
            .map_or(0, |r| r.text.split_whitespace().count() as u64);
        let usage = Usage {
            input: scenario
                .input_tokens
                .unwrap_or_else(|| estimate_input_tokens(body)),
            output: scenario.output_tokens.unwrap_or(default_output),
            reasoning: scenario.reasoning_tokens.unwrap_or(default_reasoning),
            cache_read: scenario.cache_read.unwrap_or(0),
            cache_creation: scenario.cache_creation.unwrap_or(0),
        };
        Self {
            model: model.to_owned(),
            reasoning,
            content,
            usage,
            seq,
        }
    }

    /// A protocol-style id such as `msg_mock000…0042`.
    pub fn id(&self, prefix: &str) -> String {
        format!("{prefix}mock{:020}", self.seq)
    }

    /// The id of tool call `index`: [`Generation::id`] for the first, `_1`, `_2` … appended
    /// for the others.
    pub fn call_id(&self, prefix: &str, index: usize) -> String {
        match index {
            0 => self.id(prefix),
            n => format!("{}_{n}", self.id(prefix)),
        }
    }

    /// The calls of a tool-call reply (empty for text).
    #[cfg(test)]
    pub fn calls(&self) -> &[Call] {
        match &self.content {
            Content::Tools(calls) => calls,
            Content::Text { .. } => &[],
        }
    }
}

fn call(tool: ToolSpec<'_>, chunks: usize) -> Call {
    let input = arguments_from_schema(tool.schema);
    let arguments = input.to_string();
    Call {
        name: tool.name.to_owned(),
        pieces: split_even(&arguments, chunks),
        input,
        arguments,
    }
}

fn text_content(text: &str, chunks: usize) -> Content {
    Content::Text {
        pieces: text_pieces(text, chunks),
        text: text.to_owned(),
    }
}

/// "I see 1 image (image/png, 68 bytes) and 2 documents (application/pdf, 310 bytes; file
/// file-abc)."
fn describe_media(media: &[Media]) -> String {
    let mut groups = Vec::new();
    for (kind, noun) in [
        (MediaKind::Image, "image"),
        (MediaKind::Document, "document"),
    ] {
        let details: Vec<&str> = media
            .iter()
            .filter(|m| m.kind == kind)
            .map(|m| m.detail.as_str())
            .collect();
        if !details.is_empty() {
            let plural = if details.len() == 1 { "" } else { "s" };
            groups.push(format!(
                "{} {noun}{plural} ({})",
                details.len(),
                details.join("; ")
            ));
        }
    }
    format!("I see {}.", groups.join(" and "))
}

/// "Hello from the mock upstream. This is reply number K." padded with
/// "more" (or `word_bytes` letters) up to `chunks` words, so every delta carries at least one
/// word.
fn reply_words(number: u64, chunks: usize, word_bytes: Option<usize>) -> Vec<String> {
    let filler = word_bytes.map_or_else(|| "more".to_owned(), |n| "o".repeat(n));
    let mut words: Vec<String> = "Hello from the mock upstream. This is reply number"
        .split(' ')
        .map(str::to_owned)
        .collect();
    words.push(format!("{number}."));
    while words.len() < chunks {
        words.push(filler.clone());
    }
    words
}

/// A text in at most `chunks` pieces of whole words.
fn text_pieces(text: &str, chunks: usize) -> Vec<String> {
    let words: Vec<String> = text.split(' ').map(str::to_owned).collect();
    group_words(&words, chunks.min(words.len()).max(1))
}

/// Splits words into `n` runs; every run but the first starts with a space,
/// so concatenating the runs gives the words joined by spaces.
fn group_words(words: &[String], n: usize) -> Vec<String> {
    let len = words.len();
    (0..n)
        .map(|i| {
            let run = words[i * len / n..(i + 1) * len / n].join(" ");
            if i == 0 { run } else { format!(" {run}") }
        })
        .collect()
}

/// Splits a string into `n` pieces of (nearly) equal character counts.
pub(crate) fn split_even(s: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    let len = chars.len();
    (0..n)
        .map(|i| chars[i * len / n..(i + 1) * len / n].iter().collect())
        .collect()
}

/// The text of a tool result given as a string or as an array of text blocks (Anthropic
/// `tool_result.content`, Chat tool `content`, Responses `function_call_output.output`).
pub(crate) fn result_text(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(blocks)) => blocks
            .iter()
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(" "),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// The JSON Schema type names (lower case, as Anthropic and OpenAI require; Gemini's own
/// schema spells them `OBJECT`, `STRING` …).
const SCHEMA_TYPES: [&str; 7] = [
    "object", "array", "string", "number", "integer", "boolean", "null",
];

/// The first `type` anywhere in a JSON schema that is not a JSON Schema type name.
pub(crate) fn bad_schema_type(schema: &Value) -> Option<String> {
    match schema {
        Value::Object(map) => map.iter().find_map(|(key, value)| {
            let bad = |name: &str| !SCHEMA_TYPES.contains(&name);
            match (key.as_str(), value) {
                ("type", Value::String(name)) if bad(name) => Some(name.clone()),
                ("type", Value::Array(names)) => names
                    .iter()
                    .filter_map(Value::as_str)
                    .find(|name| bad(name))
                    .map(str::to_owned),
                ("enum" | "const" | "default" | "examples", _) => None,
                _ => bad_schema_type(value),
            }
        }),
        Value::Array(items) => items.iter().find_map(bad_schema_type),
        _ => None,
    }
}

/// Builds tool arguments that fit the schema's (required) properties.
fn arguments_from_schema(schema: Option<&Value>) -> Value {
    let mut args = Map::new();
    let Some(properties) = schema
        .and_then(|s| s.get("properties"))
        .and_then(Value::as_object)
    else {
        return Value::Object(args);
    };
    let required: Vec<&str> = schema
        .and_then(|s| s.get("required"))
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for (name, property) in properties {
        if required.is_empty() || required.contains(&name.as_str()) {
            args.insert(name.clone(), sample_value(property));
        }
    }
    Value::Object(args)
}

fn sample_value(property: &Value) -> Value {
    if let Some(first) = property
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        return first.clone();
    }
    let kind = match property.get("type") {
        Some(Value::String(kind)) => kind.to_ascii_lowercase(),
        Some(Value::Array(kinds)) => kinds
            .iter()
            .filter_map(Value::as_str)
            .find(|k| !k.eq_ignore_ascii_case("null"))
            .unwrap_or("string")
            .to_ascii_lowercase(),
        _ => "string".to_owned(),
    };
    match kind.as_str() {
        "integer" | "number" => json!(1),
        "boolean" => json!(true),
        "array" => json!([]),
        "object" => Value::Object(Map::new()),
        _ => json!("mock"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_anthropic_bodies() {
        // "You are terse." (14) + "Hi there" (8) + "tool said ok" (12) = 34 bytes -> 9 tokens.
        let body = json!({
            "model": "claude",
            "system": [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}],
            "messages": [
                {"role": "user", "content": "Hi there"},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "x", "content": "tool said ok"}]}
            ],
            "tools": [{"name": "lookup", "description": "not counted"}]
        });
        assert_eq!(estimate_input_tokens(&body), 9);
    }

    #[test]
    fn estimates_openai_gemini_and_responses_bodies() {
        let chat = json!({"messages": [{"role": "system", "content": "abcd"}, {"role": "user", "content": "efgh1"}]});
        assert_eq!(estimate_input_tokens(&chat), 3); // 9 bytes
        let responses = json!({"instructions": "abcd", "input": "efgh"});
        assert_eq!(estimate_input_tokens(&responses), 2);
        let responses_items = json!({"input": [{"role": "user", "content": [{"type": "input_text", "text": "abcdefgh"}]}]});
        assert_eq!(estimate_input_tokens(&responses_items), 2);
        let gemini = json!({
            "systemInstruction": {"parts": [{"text": "abcd"}]},
            "contents": [{"role": "user", "parts": [{"text": "héllo"}]}]
        });
        assert_eq!(estimate_input_tokens(&gemini), 3); // 4 + 6 bytes
        let wrapped = json!({"generateContentRequest": gemini});
        assert_eq!(estimate_input_tokens(&wrapped), 3);
    }

    #[test]
    fn estimate_is_at_least_one() {
        assert_eq!(estimate_input_tokens(&json!({})), 1);
        assert_eq!(estimate_input_tokens(&Value::Null), 1);
        assert_eq!(estimate_input_tokens(&json!({"messages": []})), 1);
    }

    fn text_of(generation: &Generation) -> (&str, &[String]) {
        match &generation.content {
            Content::Text { text, pieces } => (text, pieces),
            Content::Tools(_) => panic!("expected text"),
        }
    }

    #[test]
    fn text_reply_splits_into_chunks() {
        let scenario = Scenario::default();
        let generation = Generation::new("m", &Prompt::default(), &json!({}), &scenario, 7);
        let (text, pieces) = text_of(&generation);
        assert_eq!(
            text,
            "Hello from the mock upstream. This is reply number 7."
        );
        assert_eq!(pieces.len(), 3);
        assert_eq!(pieces.concat(), *text);
        assert_eq!(generation.usage.output, DEFAULT_REPLY_WORDS);
        assert_eq!(generation.usage.reasoning, 0);
        assert!(generation.reasoning.is_none());

        let many = Scenario {
            chunks: 25,
            ..Scenario::default()
        };
        let generation = Generation::new("m", &Prompt::default(), &json!({}), &many, 1);
        let (text, pieces) = text_of(&generation);
        assert_eq!(pieces.len(), 25);
        assert!(pieces.iter().all(|p| !p.trim().is_empty()));
        assert_eq!(pieces.concat(), *text);
        assert_eq!(generation.usage.output, 25);
    }

    #[test]
    fn tool_arguments_follow_the_schema() {
        let schema = json!({
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "days": {"type": "integer"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "verbose": {"type": "boolean"}
            },
            "required": ["city", "days", "unit"]
        });
        let prompt = Prompt {
            tools: vec![ToolSpec {
                name: "weather",
                schema: Some(&schema),
            }],
            ..Prompt::default()
        };
        let generation = Generation::new("m", &prompt, &json!({}), &Scenario::default(), 1);
        let [call] = generation.calls() else {
            panic!("expected one call")
        };
        assert_eq!(
            call.input,
            json!({"city": "mock", "days": 1, "unit": "celsius"})
        );
        assert_eq!(call.pieces.concat(), call.arguments);
        assert_eq!(
            generation.usage.output,
            (call.arguments.len() as u64).div_ceil(4)
        );
        assert_eq!(
            generation.call_id("toolu_", 0),
            "toolu_mock00000000000000000001"
        );
    }

    #[test]
    fn schema_types_must_be_json_schema_names() {
        let good = json!({"type": "object", "properties": {
            "type": {"type": "string", "enum": ["OBJECT"]},
            "tags": {"type": ["array", "null"], "items": {"type": "string"}}
        }});
        assert_eq!(bad_schema_type(&good), None);
        let gemini = json!({"type": "OBJECT", "properties": {"city": {"type": "STRING"}}});
        // Keys are walked in order: "properties" comes before "type".
        assert_eq!(bad_schema_type(&gemini).as_deref(), Some("STRING"));
        let nested =
            json!({"type": "object", "properties": {"a": {"anyOf": [{"type": "Integer"}]}}});
        assert_eq!(bad_schema_type(&nested).as_deref(), Some("Integer"));
    }

    #[test]
    fn parallel_calls_cycle_through_the_tools() {
        let prompt = Prompt {
            tools: vec![
                ToolSpec {
                    name: "a",
                    schema: None,
                },
                ToolSpec {
                    name: "b",
                    schema: None,
                },
            ],
            ..Prompt::default()
        };
        let scenario = Scenario {
            parallel_tools: Some(3),
            ..Scenario::default()
        };
        let generation = Generation::new("m", &prompt, &json!({}), &scenario, 2);
        let names: Vec<&str> = generation.calls().iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "a"]);
        // "{}" is 2 characters: 1 token per call.
        assert_eq!(generation.usage.output, 3);
        assert_eq!(
            generation.call_id("call_", 2),
            "call_mock00000000000000000002_2"
        );
    }

    #[test]
    fn tool_results_are_quoted_before_anything_else() {
        let prompt = Prompt {
            tools: vec![ToolSpec {
                name: "a",
                schema: None,
            }],
            tool_results: vec!["18 C".into(), "sunny".into()],
            media: vec![Media::url(MediaKind::Image, "https://x/y.png")],
            thinking: false,
        };
        let generation = Generation::new("m", &prompt, &json!({}), &Scenario::default(), 1);
        let (text, pieces) = text_of(&generation);
        assert_eq!(text, "The tool said: 18 C; sunny");
        assert_eq!(pieces.concat(), text);
        assert_eq!(generation.usage.output, 6);
    }

    #[test]
    fn media_are_named_with_their_type_and_size() {
        // 1x1 PNG.
        let png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";
        let media = vec![
            Media::base64(MediaKind::Image, "image/png", png).unwrap(),
            Media::data_url(MediaKind::Image, "https://example.com/cat.jpg").unwrap(),
            Media::data_url(MediaKind::Document, "data:application/pdf;base64,JVBERi0=").unwrap(),
        ];
        let prompt = Prompt {
            media,
            ..Prompt::default()
        };
        let generation = Generation::new("m", &prompt, &json!({}), &Scenario::default(), 1);
        assert_eq!(
            text_of(&generation).0,
            "I see 2 images (image/png, 70 bytes; https://example.com/cat.jpg) and 1 document \
             (application/pdf, 5 bytes)."
        );
        assert!(Media::base64(MediaKind::Image, "image/png", "not base64!").is_err());
        assert!(Media::data_url(MediaKind::Image, "data:image/png,raw").is_err());
    }

    #[test]
    fn thinking_comes_with_a_signature_and_its_own_tokens() {
        let prompt = Prompt {
            thinking: true,
            ..Prompt::default()
        };
        let generation = Generation::new("m", &prompt, &json!({}), &Scenario::default(), 3);
        let reasoning = generation.reasoning.as_ref().unwrap();
        assert_eq!(reasoning.pieces.concat(), reasoning.text);
        assert_eq!(reasoning.pieces.len(), 3);
        assert_eq!(
            STANDARD.decode(&reasoning.signature).unwrap(),
            b"mock-signature-00000000000000000003"
        );
        assert_eq!(generation.usage.reasoning, DEFAULT_REASONING_WORDS);
        assert_eq!(
            generation.usage.output_total(),
            DEFAULT_REPLY_WORDS + DEFAULT_REASONING_WORDS
        );

        let scenario = Scenario {
            reasoning_tokens: Some(40),
            ..Scenario::default()
        };
        let generation = Generation::new("m", &prompt, &json!({}), &scenario, 3);
        assert_eq!(generation.usage.reasoning, 40);
        // Without a request for thinking the directive still sets the figure (a model that
        // reasons without showing it).
        let generation = Generation::new("m", &Prompt::default(), &json!({}), &scenario, 3);
        assert!(generation.reasoning.is_none());
        assert_eq!(generation.usage.reasoning, 40);
    }
}
