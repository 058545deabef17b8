//! The intermediate representation every conversion goes through: one request, one answer and
//! one stream-event vocabulary that all four protocols are decoded into and encoded from, so a
//! pair of protocols never needs code of its own.
//!
//! Meanings are fixed here once:
//! - Token figures follow relaybox's normalised [`Usage`](crate::providers::Usage) meaning:
//!   `input` excludes cache reads and cache writes (Anthropic's meaning); `output` includes
//!   reasoning tokens (OpenAI's meaning; Gemini's `thoughtsTokenCount` is added to it), and
//!   `reasoning` says how many of them were reasoning.
//! - Tool-call arguments are JSON text (an object), exactly as the model produced them.
//! - Thinking carries an opaque `signature` (Anthropic's `signature`, Responses'
//!   `encrypted_content`, Gemini's `thoughtSignature`); an encoder passes it where its protocol
//!   has a field for it, so a client can hand it back on its next turn.

use serde_json::Value;

use crate::providers::ErrorKind;

/// A request for one model answer, whatever protocol it came in.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Request {
    /// The model name as it goes upstream (after the channel's `modelMapping`).
    pub model: String,
    /// System / developer instructions, in order (Anthropic `system`, OpenAI `system` and
    /// `developer` messages, Responses `instructions`, Gemini `systemInstruction`).
    pub system: Vec<String>,
    pub messages: Vec<Message>,
    /// The most output tokens (Anthropic `max_tokens`, OpenAI `max_completion_tokens` /
    /// `max_tokens`, Responses `max_output_tokens`, Gemini `maxOutputTokens`).
    pub max_tokens: Option<u64>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub top_k: Option<u64>,
    pub stop: Vec<String>,
    pub stream: bool,
    pub tools: Vec<Tool>,
    pub tool_choice: Option<ToolChoice>,
    /// `Some(false)`: at most one tool call per turn.
    pub parallel_tool_calls: Option<bool>,
    pub reasoning: Option<Reasoning>,
    pub response_format: Option<ResponseFormat>,
    /// An end-user id (Anthropic `metadata.user_id`, OpenAI `user` / `safety_identifier`).
    pub user: Option<String>,
    pub seed: Option<i64>,
    pub presence_penalty: Option<f64>,
    pub frequency_penalty: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    User,
    Assistant,
}

/// One turn. Tool results travel in `User` turns (as Anthropic has them); decoders of
/// protocols with a separate tool role fold them in, encoders split them out again.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub role: Role,
    pub parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    Text(String),
    Image(Media),
    /// A document (PDF, plain text) where the protocol has one.
    Document(Document),
    ToolCall(ToolCall),
    ToolResult(ToolResult),
    Thinking(Thinking),
}

/// Where an image or document's bytes are.
#[derive(Debug, Clone, PartialEq)]
pub enum Media {
    /// Base64 data and its MIME type.
    Base64 { media_type: String, data: String },
    /// A URL the upstream fetches itself (`data:` URLs are decoded into `Base64` by decoders).
    Url { url: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub source: Media,
    pub title: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// JSON text of an object.
    pub arguments: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ToolResult {
    /// The [`ToolCall::id`] this answers.
    pub call_id: String,
    /// The tool's name when the protocol carries it (Gemini needs it; encoders that need it
    /// look the call up by id in the earlier turns when it is `None`).
    pub name: Option<String>,
    /// Text and images.
    pub content: Vec<Part>,
    pub is_error: bool,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Thinking {
    /// The visible reasoning (or its summary). May be empty when only a signature exists.
    pub text: String,
    /// Opaque proof or encrypted reasoning to hand back on the next turn.
    pub signature: Option<String>,
    /// Anthropic `redacted_thinking`: `text` is empty and `signature` holds its `data`.
    pub redacted: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tool {
    pub name: String,
    pub description: Option<String>,
    /// The JSON schema of the arguments (an object schema).
    pub parameters: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ToolChoice {
    Auto,
    /// No tool may be called.
    None,
    /// Some tool must be called.
    Required,
    /// This tool must be called.
    Tool(String),
}

/// How hard the model should think.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Reasoning {
    /// Anthropic `thinking.budget_tokens`, Gemini `thinkingBudget`.
    pub budget_tokens: Option<u64>,
    /// OpenAI `reasoning_effort` / Responses `reasoning.effort`.
    pub effort: Option<Effort>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effort {
    Minimal,
    Low,
    Medium,
    High,
}

impl Reasoning {
    /// A token budget for protocols that take one: the given budget, else one per effort.
    #[must_use]
    pub fn budget(&self) -> u64 {
        self.budget_tokens.unwrap_or(match self.effort {
            Some(Effort::Minimal) => 1_024,
            Some(Effort::Low) => 2_048,
            Some(Effort::Medium) | None => 8_192,
            Some(Effort::High) => 24_576,
        })
    }

    /// An effort for protocols that take one: the given effort, else one per budget.
    #[must_use]
    pub fn effort(&self) -> Effort {
        self.effort.unwrap_or(match self.budget_tokens {
            Some(0..=1_024) => Effort::Minimal,
            Some(1_025..=4_096) => Effort::Low,
            Some(4_097..=16_384) | None => Effort::Medium,
            Some(_) => Effort::High,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ResponseFormat {
    Text,
    /// Any JSON object.
    JsonObject,
    JsonSchema {
        name: String,
        schema: Value,
        strict: bool,
    },
}

/// A whole (non-streamed) answer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Response {
    pub id: String,
    pub model: String,
    /// Text, thinking and tool calls, in the order the model produced them.
    pub parts: Vec<Part>,
    pub stop: StopReason,
    pub usage: Usage,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum StopReason {
    #[default]
    EndTurn,
    MaxTokens,
    /// The stop sequence that matched, when the protocol says which.
    StopSequence(Option<String>),
    ToolUse,
    /// Refused or filtered by the provider's safety system.
    ContentFilter,
}

/// Token usage (see the module docs for the meaning of each figure).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub input: u64,
    pub output: u64,
    pub cache_write: u64,
    pub cache_read: u64,
    /// The part of `output` spent on reasoning.
    pub reasoning: u64,
}

impl Usage {
    /// All prompt tokens, cached or not (OpenAI's `prompt_tokens`, Gemini's
    /// `promptTokenCount`).
    #[must_use]
    pub fn prompt_total(&self) -> u64 {
        self.input + self.cache_read + self.cache_write
    }
}

/// One step of a streamed answer. Decoders emit a well-formed sequence, whatever the upstream
/// did: `Start` first; blocks opened one at a time with indices 0, 1, 2 … (a block is stopped
/// before the next starts), deltas only for the open block; then `Finish` exactly once. An
/// `Error` may come at any point and ends the sequence.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The answer begins. `usage` holds what is known so far (often only `input`).
    Start {
        id: String,
        model: String,
        usage: Usage,
    },
    BlockStart {
        index: usize,
        block: Block,
    },
    Delta {
        index: usize,
        delta: Delta,
    },
    BlockStop {
        index: usize,
    },
    /// The answer is complete: why it stopped and the final usage.
    Finish {
        stop: StopReason,
        usage: Usage,
    },
    /// The upstream reported an error inside the stream, or the stream broke off.
    Error {
        kind: ErrorKind,
        message: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    Text,
    Thinking,
    /// Anthropic `redacted_thinking` / encrypted reasoning with no visible text: the data
    /// comes whole, here.
    RedactedThinking {
        data: String,
    },
    ToolCall {
        id: String,
        name: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Delta {
    Text(String),
    Thinking(String),
    /// The thinking block's signature (Anthropic sends it as the block's last delta).
    Signature(String),
    /// A piece of the tool call's JSON arguments.
    ToolArguments(String),
}
