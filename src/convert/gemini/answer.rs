//! Whole answers: `GenerateContentResponse` ⇄ [`ir::Response`].

use super::super::ConvertError;
use super::super::ir::{Part, Response, StopReason};
use super::parts::{self, CallIds};
use super::wire::{self, Answer, OutAnswer, OutCandidate, OutContent, OutUsage};

/// A `generateContent` answer → the IR. Only the first candidate is read (the request side
/// refuses `candidateCount` > 1). A function call makes the stop `ToolUse` (Gemini says
/// `STOP`); a prompt blocked before any candidate is a content-filter stop with no parts.
pub fn decode_response(body: &[u8]) -> Result<Response, ConvertError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let answer: Answer<'_> = serde_path_to_error::deserialize(&mut deserializer)
        .map_err(|e| ConvertError::invalid(format!("{}: {}", e.path(), e.inner())))?;
    if let Some(error) = &answer.error {
        return Err(ConvertError::invalid(format!(
            "the answer is an error: {}",
            error.message.as_deref().unwrap_or("(no message)")
        )));
    }
    let id = answer.response_id.as_deref().unwrap_or_default();
    let mut response = Response {
        id: id.to_owned(),
        model: answer
            .model_version
            .as_deref()
            .unwrap_or_default()
            .to_owned(),
        usage: answer
            .usage_metadata
            .as_ref()
            .map(wire::UsageMetadata::to_ir)
            .unwrap_or_default(),
        ..Response::default()
    };
    let Some(candidate) = answer.candidates.first() else {
        let blocked = answer
            .prompt_feedback
            .as_ref()
            .is_some_and(|f| f.block_reason.is_some());
        if blocked {
            response.stop = StopReason::ContentFilter;
            return Ok(response);
        }
        return Err(ConvertError::invalid("the answer has no candidates"));
    };
    let mut ids = CallIds::for_answer(id);
    if let Some(content) = &candidate.content {
        for (j, part) in content.parts.iter().enumerate() {
            let path = || format!("candidates[0].content.parts[{j}]");
            parts::model_part(part, &path, &mut ids, &mut response.parts)?;
        }
    }
    let called = response
        .parts
        .iter()
        .any(|p| matches!(p, Part::ToolCall(_)));
    response.stop = stop_reason(candidate.finish_reason.as_deref().unwrap_or("STOP"), called);
    Ok(response)
}

/// A `finishReason` → the IR's stop reason (`called`: the answer has a function call).
pub(super) fn stop_reason(finish: &str, called: bool) -> StopReason {
    match finish {
        "MAX_TOKENS" => StopReason::MaxTokens,
        "SAFETY"
        | "RECITATION"
        | "BLOCKLIST"
        | "PROHIBITED_CONTENT"
        | "SPII"
        | "IMAGE_SAFETY"
        | "IMAGE_PROHIBITED_CONTENT"
        | "IMAGE_RECITATION" => StopReason::ContentFilter,
        _ if called => StopReason::ToolUse,
        _ => StopReason::EndTurn,
    }
}

/// The IR's stop reason → a `finishReason` (Gemini says `STOP` for a finished answer, tool
/// calls and stop sequences alike).
pub(super) fn finish_reason(stop: &StopReason) -> &'static str {
    match stop {
        StopReason::EndTurn | StopReason::ToolUse | StopReason::StopSequence(_) => "STOP",
        StopReason::MaxTokens => "MAX_TOKENS",
        StopReason::ContentFilter => "SAFETY",
    }
}

/// The IR answer as a `generateContent` answer. Tool-call arguments that are not a JSON object
/// become `{}` (Gemini's `args` is an object); redacted thinking is left out.
#[must_use]
pub fn encode_response(response: &Response) -> Vec<u8> {
    let parts = parts::model_parts_out(&response.parts, false).unwrap_or_default();
    let answer = OutAnswer {
        candidates: [OutCandidate {
            content: (!parts.is_empty()).then_some(OutContent {
                parts,
                role: "model",
            }),
            finish_reason: Some(finish_reason(&response.stop)),
            index: 0,
        }],
        usage_metadata: Some(OutUsage::of(&response.usage)),
        model_version: &response.model,
        response_id: &response.id,
    };
    wire::to_json(&answer)
}
