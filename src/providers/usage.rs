//! What a whole response says: token usage in relaybox's normalised form, and the answering
//! model.

use super::json;

/// Token usage in relaybox's normalised form.
///
/// `input` EXCLUDES cached tokens (Anthropic's meaning): for OpenAI, Responses and Gemini the
/// cached count is subtracted from the prompt count they report. `cache_creation` is only ever
/// reported by Anthropic; the others leave it 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Usage {
    pub input: u64,
    pub output: u64,
    pub cache_creation: u64,
    pub cache_read: u64,
}

impl Usage {
    /// `input + output + cache_creation + cache_read` (saturating).
    #[must_use]
    pub fn total(&self) -> u64 {
        self.input
            .saturating_add(self.output)
            .saturating_add(self.cache_creation)
            .saturating_add(self.cache_read)
    }

    /// True when every figure is 0.
    #[must_use]
    pub fn is_zero(&self) -> bool {
        *self == Self::default()
    }
}

/// What a complete (non-streamed) response body says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BodySummary {
    /// `None` when the body carries no usage figures (an error body, a count_tokens answer, or
    /// something that is not JSON).
    pub usage: Option<Usage>,
    /// The model the upstream says answered (`model`, Gemini `modelVersion`).
    pub response_model: Option<String>,
}

/// `usage` and `model` of a whole response object, read from its top level, where Anthropic,
/// OpenAI Chat and Responses all put them. Only `usage` is parsed (by `usage_of`, from its raw
/// JSON); the content, usually most of the body, is stepped over.
pub(crate) fn top_level_summary(body: &[u8], usage_of: fn(&[u8]) -> Option<Usage>) -> BodySummary {
    let mut summary = BodySummary::default();
    for (key, value) in json::members(body) {
        match key {
            b"usage" => summary.usage = usage_of(value),
            b"model" => {
                summary.response_model = json::string_value(value)
                    .map(std::borrow::Cow::into_owned)
                    .filter(|m| !m.is_empty());
            }
            _ => {}
        }
    }
    summary
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_total_adds_every_figure() {
        let usage = Usage {
            input: 1,
            output: 2,
            cache_creation: 3,
            cache_read: 4,
        };
        assert_eq!(usage.total(), 10);
        assert!(!usage.is_zero());
        assert!(Usage::default().is_zero());
        let huge = Usage {
            input: u64::MAX,
            output: 1,
            ..Usage::default()
        };
        assert_eq!(huge.total(), u64::MAX);
    }

    #[test]
    fn usage_serializes_with_its_field_names() {
        let usage = Usage {
            input: 1,
            output: 2,
            cache_creation: 3,
            cache_read: 4,
        };
        assert_eq!(
            serde_json::to_value(usage).unwrap(),
            serde_json::json!({"input": 1, "output": 2, "cache_creation": 3, "cache_read": 4})
        );
    }
}
