//! What the mock "generates": the reply text or tool call, its pieces for
//! streaming, and the usage figures, all deterministic from the request.

use serde_json::{Map, Value, json};

use crate::scenario::Scenario;

/// Words in the default reply "Hello from the mock upstream. This is reply number K."
pub const DEFAULT_REPLY_WORDS: u64 = 10;

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
/// included). Roles, types, tool names, tool arguments and tool definitions do
/// not count.
pub fn estimate_input_tokens(body: &Value) -> u64 {
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
/// cache tokens to it (see [`Usage::prompt_total`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Usage {
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_creation: u64,
}

impl Usage {
    /// OpenAI `prompt_tokens`/`input_tokens` and Gemini `promptTokenCount`.
    pub fn prompt_total(&self) -> u64 {
        self.input + self.cache_read + self.cache_creation
    }
}

/// The reply content: plain text or one call of the request's first tool.
#[derive(Debug, Clone)]
pub(crate) enum Content {
    Text {
        text: String,
        pieces: Vec<String>,
    },
    Tool {
        name: String,
        input: Value,
        arguments: String,
        pieces: Vec<String>,
    },
}

/// Everything a protocol module needs to render a successful reply.
#[derive(Debug, Clone)]
pub(crate) struct Generation {
    pub model: String,
    pub content: Content,
    pub usage: Usage,
    /// Unique per reply; used for ids and the reply number.
    pub seq: u64,
}

/// A tool the reply should call: its name and JSON schema, if any.
pub(crate) struct ToolSpec<'a> {
    pub name: &'a str,
    pub schema: Option<&'a Value>,
}

impl Generation {
    pub fn new(
        model: &str,
        tool: Option<ToolSpec<'_>>,
        body: &Value,
        scenario: &Scenario,
        seq: u64,
    ) -> Self {
        let content = match tool {
            Some(tool) => {
                let input = arguments_from_schema(tool.schema);
                let arguments = input.to_string();
                Content::Tool {
                    name: tool.name.to_owned(),
                    pieces: split_even(&arguments, scenario.chunks),
                    input,
                    arguments,
                }
            }
            None => {
                let words = reply_words(seq, scenario.chunks, scenario.word_bytes);
                Content::Text {
                    text: words.join(" "),
                    pieces: group_words(&words, scenario.chunks),
                }
            }
        };
        let default_output = match &content {
            Content::Text { text, .. } => text.split_whitespace().count() as u64,
            Content::Tool { arguments, .. } => (arguments.len() as u64).div_ceil(4).max(1),
        };
        let usage = Usage {
            input: scenario
                .input_tokens
                .unwrap_or_else(|| estimate_input_tokens(body)),
            output: scenario.output_tokens.unwrap_or(default_output),
            cache_read: scenario.cache_read.unwrap_or(0),
            cache_creation: scenario.cache_creation.unwrap_or(0),
        };
        Self {
            model: model.to_owned(),
            content,
            usage,
            seq,
        }
    }

    /// A protocol-style id such as `msg_mock000…0042`.
    pub fn id(&self, prefix: &str) -> String {
        format!("{prefix}mock{:020}", self.seq)
    }
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
    }

    #[test]
    fn estimate_is_at_least_one() {
        assert_eq!(estimate_input_tokens(&json!({})), 1);
        assert_eq!(estimate_input_tokens(&Value::Null), 1);
        assert_eq!(estimate_input_tokens(&json!({"messages": []})), 1);
    }

    #[test]
    fn text_reply_splits_into_chunks() {
        let scenario = Scenario::default();
        let generation = Generation::new("m", None, &json!({}), &scenario, 7);
        let Content::Text { text, pieces } = &generation.content else {
            panic!("expected text")
        };
        assert_eq!(
            text,
            "Hello from the mock upstream. This is reply number 7."
        );
        assert_eq!(pieces.len(), 3);
        assert_eq!(pieces.concat(), *text);
        assert_eq!(generation.usage.output, DEFAULT_REPLY_WORDS);

        let many = Scenario {
            chunks: 25,
            ..Scenario::default()
        };
        let generation = Generation::new("m", None, &json!({}), &many, 1);
        let Content::Text { text, pieces } = &generation.content else {
            panic!("expected text")
        };
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
        let tool = ToolSpec {
            name: "weather",
            schema: Some(&schema),
        };
        let generation = Generation::new("m", Some(tool), &json!({}), &Scenario::default(), 1);
        let Content::Tool {
            input,
            arguments,
            pieces,
            ..
        } = &generation.content
        else {
            panic!("expected tool")
        };
        assert_eq!(
            input,
            &json!({"city": "mock", "days": 1, "unit": "celsius"})
        );
        assert_eq!(pieces.concat(), *arguments);
        assert_eq!(
            generation.usage.output,
            (arguments.len() as u64).div_ceil(4)
        );
    }
}
