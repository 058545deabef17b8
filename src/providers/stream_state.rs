//! [`TapState`]: what the protocol files learn from a stream's events. Its own file so the
//! protocol files can fill it without depending on [`super::tap`], which calls them.

use super::errors;
use super::usage::Usage;

/// Longest in-stream error message kept (characters).
const MAX_ERROR_CHARS: usize = 2000;

/// What the protocol handlers learn from the events.
#[derive(Debug, Default)]
pub(crate) struct TapState {
    /// Cut the OpenAI usage-only chunk out of the stream.
    pub hide_usage_chunk: bool,
    pub usage: Usage,
    pub usage_seen: bool,
    pub usage_since_overflow: bool,
    pub overflowed: bool,
    pub first_token: bool,
    pub completed: bool,
    pub model: Option<String>,
    pub error: Option<String>,
    pub error_code: Option<String>,
    /// Events with data seen so far.
    pub events: u64,
    /// Events that were JSON-parsed (the tap's main cost).
    pub parsed: u64,
    /// Events cut out of the stream.
    pub hidden: u64,
}

impl TapState {
    pub(crate) fn set_usage(&mut self, usage: Usage) {
        self.usage = usage;
        self.usage_seen = true;
        self.usage_since_overflow = true;
    }

    pub(crate) fn set_model(&mut self, model: &str) {
        let model = model.trim();
        if self.model.is_none() && !model.is_empty() {
            self.model = Some(model.to_owned());
        }
    }

    /// Records an in-stream error; the first one is kept.
    pub(crate) fn set_error(&mut self, message: Option<&str>, code: Option<&str>) {
        if self.error.is_some() {
            return;
        }
        let message = message.map(str::trim).filter(|m| !m.is_empty());
        let code = code.map(str::trim).filter(|c| !c.is_empty());
        let text = message.or(code).unwrap_or("error event without a message");
        self.error = Some(errors::truncate_chars(text, MAX_ERROR_CHARS));
        self.error_code = code.map(str::to_owned);
    }

    pub(crate) fn mark_overflow(&mut self) {
        self.overflowed = true;
        self.usage_since_overflow = false;
    }
}
