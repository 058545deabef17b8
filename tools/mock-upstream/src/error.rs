//! Protocol-neutral description of an error reply; each protocol module
//! renders it in its own wire shape.

use crate::scenario::Scenario;

/// The wire family of a route, which decides credentials and error shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    Anthropic,
    OpenAi,
    Gemini,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub status: u16,
    /// A code string (`error_code=` or a protocol default such as `invalid_api_key`).
    pub code: Option<String>,
    pub message: String,
    /// The request field at fault (OpenAI's `param`).
    pub param: Option<String>,
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            code: None,
            message: message.into(),
            param: None,
            retry_after: None,
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(400, message)
    }

    /// A 400 naming the request field at fault.
    pub fn invalid_param(message: impl Into<String>, param: impl Into<String>) -> Self {
        Self {
            param: Some(param.into()),
            ..Self::new(400, message)
        }
    }

    /// The error a `status=CODE` scenario asks for.
    pub fn from_scenario(status: u16, scenario: &Scenario) -> Self {
        let mut message = format!("mock-upstream scenario: {}", reason(status));
        if let Some(code) = &scenario.error_code {
            message.push_str(&format!(" [{code}]"));
        }
        Self {
            status,
            code: scenario.error_code.clone(),
            message,
            param: None,
            retry_after: scenario.retry_after,
        }
    }

    /// No credential at all was presented.
    pub fn missing_key(protocol: Protocol) -> Self {
        let message = match protocol {
            Protocol::Anthropic => "x-api-key header is required",
            Protocol::OpenAi => {
                "You didn't provide an API key. You need to provide your API key in an \
                 Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
            }
            Protocol::Gemini => {
                "Method doesn't allow unregistered callers. Please use an API key \
                 (x-goog-api-key header or key= query parameter)."
            }
        };
        Self::new(401, message).with_default_code(protocol)
    }

    /// A credential was presented but `require_key=K` wants another one.
    pub fn wrong_key(protocol: Protocol) -> Self {
        let message = match protocol {
            Protocol::Anthropic => "invalid x-api-key",
            Protocol::OpenAi => "Incorrect API key provided.",
            Protocol::Gemini => "API key not valid. Please pass a valid API key.",
        };
        Self::new(401, message).with_default_code(protocol)
    }

    fn with_default_code(mut self, protocol: Protocol) -> Self {
        if protocol == Protocol::OpenAi {
            self.code = Some("invalid_api_key".to_owned());
        }
        self
    }
}

/// A short human description of an HTTP error status.
pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        400 => "invalid request",
        401 => "authentication failed",
        403 => "permission denied",
        404 => "not found",
        408 => "request timeout",
        413 => "request too large",
        429 => "rate limit exceeded",
        500 => "internal server error",
        502 => "bad gateway",
        503 => "service unavailable",
        504 => "gateway timeout",
        529 => "overloaded",
        _ => "simulated error",
    }
}
