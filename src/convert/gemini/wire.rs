//! Gemini's JSON shapes: what is read (borrowed from the body, every multi-word field also under
//! its snake_case name, which Google's JSON parser accepts and the REST docs often use) and
//! what is written (camelCase, as Google sends it).

use std::borrow::Cow;

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::providers::json::{Count, count};

use super::super::ir;

// ---- read ----------------------------------------------------------------------------------

/// A `Content`: a turn of the conversation, or the system instruction.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Content<'a> {
    #[serde(borrow, default)]
    pub role: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub parts: Vec<Part<'a>>,
}

/// A `Part`: one of text, inline data, file data, a function call or response (or code
/// execution, refused), plus the flags that may come with any of them.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Part<'a> {
    #[serde(borrow, default)]
    pub text: Option<Cow<'a, str>>,
    #[serde(default)]
    pub thought: Option<bool>,
    #[serde(borrow, default, alias = "thought_signature")]
    pub thought_signature: Option<Cow<'a, str>>,
    #[serde(borrow, default, alias = "inline_data")]
    pub inline_data: Option<Blob<'a>>,
    #[serde(borrow, default, alias = "file_data")]
    pub file_data: Option<FileData<'a>>,
    #[serde(borrow, default, alias = "function_call")]
    pub function_call: Option<FunctionCall<'a>>,
    #[serde(borrow, default, alias = "function_response")]
    pub function_response: Option<FunctionResponse<'a>>,
    #[serde(default, alias = "executable_code")]
    pub executable_code: Option<IgnoredAny>,
    #[serde(default, alias = "code_execution_result")]
    pub code_execution_result: Option<IgnoredAny>,
    #[serde(default, alias = "video_metadata")]
    pub video_metadata: Option<IgnoredAny>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Blob<'a> {
    #[serde(borrow, default, alias = "mime_type")]
    pub mime_type: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub data: Option<Cow<'a, str>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct FileData<'a> {
    #[serde(borrow, default, alias = "mime_type")]
    pub mime_type: Option<Cow<'a, str>>,
    #[serde(borrow, default, alias = "file_uri")]
    pub file_uri: Option<Cow<'a, str>>,
}

#[derive(Debug, Deserialize)]
pub(super) struct FunctionCall<'a> {
    #[serde(borrow, default)]
    pub id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub args: Option<&'a RawValue>,
}

#[derive(Debug, Deserialize)]
pub(super) struct FunctionResponse<'a> {
    #[serde(borrow, default)]
    pub id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub response: Option<&'a RawValue>,
    /// Gemini 3's multimodal function responses: inline or file data.
    #[serde(borrow, default)]
    pub parts: Vec<Part<'a>>,
}

/// A `GenerateContentResponse` (a whole answer, or one stream chunk), or an error object.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Answer<'a> {
    #[serde(borrow, default)]
    pub candidates: Vec<Candidate<'a>>,
    #[serde(borrow, default, alias = "prompt_feedback")]
    pub prompt_feedback: Option<PromptFeedback<'a>>,
    #[serde(default, alias = "usage_metadata")]
    pub usage_metadata: Option<UsageMetadata>,
    #[serde(borrow, default, alias = "model_version")]
    pub model_version: Option<Cow<'a, str>>,
    #[serde(borrow, default, alias = "response_id")]
    pub response_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub error: Option<WireError<'a>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Candidate<'a> {
    #[serde(borrow, default)]
    pub content: Option<Content<'a>>,
    #[serde(borrow, default, alias = "finish_reason")]
    pub finish_reason: Option<Cow<'a, str>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct PromptFeedback<'a> {
    #[serde(borrow, default, alias = "block_reason")]
    pub block_reason: Option<Cow<'a, str>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct UsageMetadata {
    #[serde(default, alias = "prompt_token_count")]
    prompt_token_count: Option<Count>,
    #[serde(default, alias = "candidates_token_count")]
    candidates_token_count: Option<Count>,
    #[serde(default, alias = "cached_content_token_count")]
    cached_content_token_count: Option<Count>,
    #[serde(default, alias = "thoughts_token_count")]
    thoughts_token_count: Option<Count>,
    #[serde(default, alias = "tool_use_prompt_token_count")]
    tool_use_prompt_token_count: Option<Count>,
}

impl UsageMetadata {
    /// relaybox's meaning (see `ir`): the prompt (with tool-use prompt tokens, billed as input)
    /// minus the cached part; candidates plus thoughts.
    pub fn to_ir(&self) -> ir::Usage {
        let prompt =
            count(self.prompt_token_count).saturating_add(count(self.tool_use_prompt_token_count));
        let cached = count(self.cached_content_token_count).min(prompt);
        let thoughts = count(self.thoughts_token_count);
        ir::Usage {
            input: prompt - cached,
            output: count(self.candidates_token_count).saturating_add(thoughts),
            cache_write: 0,
            cache_read: cached,
            reasoning: thoughts,
        }
    }
}

/// `{"error": {"code": 429, "message": …, "status": "RESOURCE_EXHAUSTED"}}`.
#[derive(Debug, Deserialize)]
pub(super) struct WireError<'a> {
    #[serde(default)]
    pub code: Option<serde_json::Value>,
    #[serde(borrow, default)]
    pub message: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub status: Option<Cow<'a, str>>,
}

// ---- write ---------------------------------------------------------------------------------

#[derive(Debug, Serialize)]
pub(super) struct OutContent<'a> {
    pub parts: Vec<OutPart<'a>>,
    pub role: &'static str,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct OutPart<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thought: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inline_data: Option<OutBlob<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_data: Option<OutFileData<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function_call: Option<OutFunctionCall<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function_response: Option<OutFunctionResponse<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thought_signature: Option<&'a str>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct OutBlob<'a> {
    pub mime_type: &'a str,
    pub data: &'a str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct OutFileData<'a> {
    pub mime_type: &'a str,
    pub file_uri: &'a str,
}

#[derive(Debug, Serialize)]
pub(super) struct OutFunctionCall<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<&'a str>,
    pub name: &'a str,
    pub args: Box<RawValue>,
}

#[derive(Debug, Serialize)]
pub(super) struct OutFunctionResponse<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<&'a str>,
    pub name: &'a str,
    pub response: Box<RawValue>,
}

/// A whole answer or one stream chunk.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct OutAnswer<'a> {
    pub candidates: [OutCandidate<'a>; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage_metadata: Option<OutUsage>,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub model_version: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub response_id: &'a str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct OutCandidate<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<OutContent<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<&'static str>,
    pub index: u32,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct OutUsage {
    pub prompt_token_count: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub candidates_token_count: Option<u64>,
    pub total_token_count: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cached_content_token_count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thoughts_token_count: Option<u64>,
}

impl OutUsage {
    /// The whole usage of an answer: the prompt includes the cache; candidates exclude the
    /// thoughts.
    pub fn of(usage: &ir::Usage) -> Self {
        let prompt = usage.prompt_total();
        let reasoning = usage.reasoning.min(usage.output);
        Self {
            prompt_token_count: prompt,
            candidates_token_count: Some(usage.output - reasoning),
            total_token_count: prompt.saturating_add(usage.output),
            cached_content_token_count: (usage.cache_read > 0).then_some(usage.cache_read),
            thoughts_token_count: (reasoning > 0).then_some(reasoning),
        }
    }

    /// The prompt side only (chunks before the last): `None` when nothing is known yet.
    pub fn prompt_side(usage: &ir::Usage) -> Option<Self> {
        let prompt = usage.prompt_total();
        (prompt > 0).then(|| Self {
            prompt_token_count: prompt,
            candidates_token_count: None,
            total_token_count: prompt,
            cached_content_token_count: (usage.cache_read > 0).then_some(usage.cache_read),
            thoughts_token_count: None,
        })
    }
}

/// A value as JSON text. Serializing these types cannot fail (no maps with non-string keys).
pub(super) fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

/// JSON text as a raw value (`None` when it is not valid JSON).
pub(super) fn raw(text: &str) -> Option<Box<RawValue>> {
    RawValue::from_string(text.trim().to_owned()).ok()
}

/// An empty argument object.
pub(super) fn empty_object() -> Box<RawValue> {
    RawValue::from_string("{}".to_owned()).unwrap_or_default()
}
