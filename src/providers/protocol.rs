//! [`Protocol`]: which of the four wire protocols a request or channel speaks. Its own file so
//! every other file of the protocol layer can name it without depending on `mod.rs`.

/// The wire protocol of a client request or of an upstream channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    Anthropic,
    OpenAiChat,
    OpenAiResponses,
    Gemini,
}

impl Protocol {
    /// A short stable name, for logs and metrics labels.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Anthropic => "anthropic",
            Self::OpenAiChat => "openai_chat",
            Self::OpenAiResponses => "openai_responses",
            Self::Gemini => "gemini",
        }
    }
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_names() {
        assert_eq!(Protocol::OpenAiResponses.to_string(), "openai_responses");
        assert_eq!(Protocol::Gemini.as_str(), "gemini");
    }
}
