//! Errors in the protocol the client speaks (SPEC §2), and the upstream's own error read back
//! out of its body.

use bytes::Bytes;
use serde_json::{Value, json};

use super::protocol::Protocol;

/// relaybox's own classification of an error; decides the HTTP status and each protocol's
/// error type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    InvalidRequest,
    Authentication,
    PermissionDenied,
    NotFound,
    RequestTooLarge,
    RateLimited,
    Upstream,
    Overloaded,
    Timeout,
    Internal,
}

impl ErrorKind {
    /// The HTTP status: 400, 401, 403, 404, 413, 429, 502, 503, 504, 500.
    #[must_use]
    pub fn status(self) -> u16 {
        match self {
            Self::InvalidRequest => 400,
            Self::Authentication => 401,
            Self::PermissionDenied => 403,
            Self::NotFound => 404,
            Self::RequestTooLarge => 413,
            Self::RateLimited => 429,
            Self::Upstream => 502,
            Self::Overloaded => 503,
            Self::Timeout => 504,
            Self::Internal => 500,
        }
    }

    /// The kind an HTTP status stands for (unknown 4xx → `InvalidRequest`, unknown 5xx →
    /// `Upstream`; 408 is a timeout, 529 Anthropic's "overloaded").
    #[must_use]
    pub fn from_status(status: u16) -> Self {
        match status {
            401 => Self::Authentication,
            403 => Self::PermissionDenied,
            404 => Self::NotFound,
            408 | 504 => Self::Timeout,
            413 => Self::RequestTooLarge,
            429 => Self::RateLimited,
            500 => Self::Internal,
            503 | 529 => Self::Overloaded,
            400..=499 => Self::InvalidRequest,
            _ => Self::Upstream,
        }
    }

    /// Anthropic `error.type`.
    #[must_use]
    pub fn anthropic_type(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request_error",
            Self::Authentication => "authentication_error",
            Self::PermissionDenied => "permission_error",
            Self::NotFound => "not_found_error",
            Self::RequestTooLarge => "request_too_large",
            Self::RateLimited => "rate_limit_error",
            Self::Upstream | Self::Internal => "api_error",
            Self::Overloaded => "overloaded_error",
            Self::Timeout => "timeout_error",
        }
    }

    /// OpenAI `error.type` (Chat Completions and Responses).
    #[must_use]
    pub fn openai_type(self) -> &'static str {
        match self {
            Self::InvalidRequest | Self::RequestTooLarge => "invalid_request_error",
            Self::Authentication => "authentication_error",
            Self::PermissionDenied => "permission_error",
            Self::NotFound => "not_found_error",
            Self::RateLimited => "rate_limit_error",
            Self::Upstream => "upstream_error",
            Self::Overloaded => "overloaded_error",
            Self::Timeout => "timeout_error",
            Self::Internal => "server_error",
        }
    }

    /// Gemini (Google RPC) `error.status`.
    #[must_use]
    pub fn gemini_status(self) -> &'static str {
        match self {
            Self::InvalidRequest | Self::RequestTooLarge => "INVALID_ARGUMENT",
            Self::Authentication => "UNAUTHENTICATED",
            Self::PermissionDenied => "PERMISSION_DENIED",
            Self::NotFound => "NOT_FOUND",
            Self::RateLimited => "RESOURCE_EXHAUSTED",
            Self::Upstream | Self::Overloaded => "UNAVAILABLE",
            Self::Timeout => "DEADLINE_EXCEEDED",
            Self::Internal => "INTERNAL",
        }
    }

    /// A snake_case code for the kind, used where no more specific code is at hand (the error
    /// events sent into a running stream).
    #[must_use]
    pub fn default_code(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::Authentication => "authentication_failed",
            Self::PermissionDenied => "permission_denied",
            Self::NotFound => "not_found",
            Self::RequestTooLarge => "request_too_large",
            Self::RateLimited => "rate_limit_exceeded",
            Self::Upstream => "upstream_error",
            Self::Overloaded => "overloaded",
            Self::Timeout => "timeout",
            Self::Internal => "internal_error",
        }
    }
}

/// The JSON body of an error relaybox itself produces, in `protocol`'s shape:
/// - Anthropic `{"type":"error","error":{"type":…,"message":…}}`,
/// - OpenAI Chat and Responses `{"error":{"message":…,"type":…,"code":<code or null>,"param":null}}`,
/// - Gemini `{"error":{"code":<status>,"message":…,"status":…}}`, plus a Google `ErrorInfo`
///   detail carrying `code` (upper-cased) when there is one.
///
/// `code` is a short snake_case code (`invalid_api_key`, `model_not_allowed`); empty for none.
#[must_use]
pub fn error_body(protocol: Protocol, kind: ErrorKind, code: &str, message: &str) -> Value {
    let code = code.trim();
    match protocol {
        Protocol::Anthropic => json!({
            "type": "error",
            "error": {"type": kind.anthropic_type(), "message": message},
        }),
        Protocol::OpenAiChat | Protocol::OpenAiResponses => json!({
            "error": {
                "message": message,
                "type": kind.openai_type(),
                "code": if code.is_empty() { Value::Null } else { Value::from(code) },
                "param": null,
            },
        }),
        Protocol::Gemini => {
            let mut error = json!({
                "code": kind.status(),
                "message": message,
                "status": kind.gemini_status(),
            });
            if !code.is_empty() {
                error["details"] = json!([{
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": code.to_ascii_uppercase(),
                    "domain": "relaybox",
                }]);
            }
            json!({ "error": error })
        }
    }
}

/// The SSE bytes to send when an error happens after a stream has started, so the client's SDK
/// raises a proper error:
/// - Anthropic `event: error` with `{"type":"error","error":{…}}`,
/// - OpenAI Chat `data: {"error":{…}}`,
/// - Responses an `error` event carrying both the documented flat fields and the nested
///   `error` object the live API sends (which is what makes the official SDKs raise),
/// - Gemini `data: {"error":{…}}`.
///
/// Prefer [`StreamTap::error_event`](super::StreamTap::error_event) while a tap is at hand: it
/// continues the Responses `sequence_number`s (this function starts at 0).
#[must_use]
pub fn stream_error_event(protocol: Protocol, kind: ErrorKind, message: &str) -> Bytes {
    stream_error_event_numbered(protocol, kind, message, 0)
}

pub(crate) fn stream_error_event_numbered(
    protocol: Protocol,
    kind: ErrorKind,
    message: &str,
    sequence_number: u64,
) -> Bytes {
    let code = kind.default_code();
    let (name, data) = match protocol {
        Protocol::Anthropic => (Some("error"), error_body(protocol, kind, code, message)),
        Protocol::OpenAiChat => (None, error_body(protocol, kind, code, message)),
        Protocol::OpenAiResponses => (
            Some("error"),
            json!({
                "type": "error",
                "code": code,
                "message": message,
                "param": null,
                "sequence_number": sequence_number,
                "error": {
                    "type": kind.openai_type(),
                    "code": code,
                    "message": message,
                    "param": null,
                },
            }),
        ),
        Protocol::Gemini => (None, error_body(protocol, kind, "", message)),
    };
    let mut out = Vec::with_capacity(128 + message.len());
    if let Some(name) = name {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(name.as_bytes());
        out.push(b'\n');
    }
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(data.to_string().as_bytes());
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

/// Longest upstream error text kept (characters).
const MAX_UPSTREAM_ERROR_CHARS: usize = 2000;

/// What an upstream error body says, in any of the protocols' shapes (and the common
/// OpenAI-compatible variations: `{"error":"…"}`, `{"message":…}`, `{"detail":…}`, Gemini's
/// array-wrapped errors).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UpstreamError {
    pub message: Option<String>,
    /// `error.type` (Anthropic, OpenAI).
    pub error_type: Option<String>,
    /// `error.code` when it is a string (OpenAI `rate_limit_exceeded`, `model_cooldown`, …).
    pub code: Option<String>,
    /// `error.status` (Gemini `RESOURCE_EXHAUSTED`, …).
    pub status: Option<String>,
    /// `error.details[].reason` (Gemini `QUOTA_EXHAUSTED`, `API_KEY_INVALID`, …).
    pub reasons: Vec<String>,
    /// How long the upstream asks to wait: `reset_seconds`, or a Google `RetryInfo.retryDelay`.
    pub retry_after_secs: Option<f64>,
}

impl UpstreamError {
    /// True when `code` (case-insensitive) is the error's type, code, status or one of its
    /// reasons; for failover rules such as `429:QUOTA_EXHAUSTED`.
    #[must_use]
    pub fn has_code(&self, code: &str) -> bool {
        self.identifiers().any(|id| id.eq_ignore_ascii_case(code))
    }

    /// type, code, status and reasons, without repeats.
    fn identifiers(&self) -> impl Iterator<Item = &str> {
        let mut seen: Vec<&str> = Vec::new();
        self.error_type
            .iter()
            .chain(&self.code)
            .chain(&self.status)
            .chain(&self.reasons)
            .map(String::as_str)
            .filter(move |id| {
                if seen.iter().any(|s| s.eq_ignore_ascii_case(id)) {
                    false
                } else {
                    seen.push(id);
                    true
                }
            })
    }
}

/// Reads an upstream error body. `None` when it is not JSON or says nothing recognisable.
#[must_use]
pub fn parse_upstream_error(body: &[u8]) -> Option<UpstreamError> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let root = match &value {
        Value::Array(items) => items.iter().find(|v| v.get("error").is_some())?,
        other => other,
    };
    let root_obj = root.as_object()?;
    let (error, message_from_string) = match root_obj.get("error") {
        Some(Value::Object(_)) => (&root["error"], None),
        Some(Value::String(s)) => (root, Some(s.as_str())),
        _ => (root, None),
    };
    let text = |v: &Value, key: &str| {
        v.get(key)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let message = text(error, "message")
        .or_else(|| message_from_string.map(str::to_owned))
        .or_else(|| text(error, "msg"))
        .or_else(|| text(root, "message"))
        .or_else(|| text(root, "detail"));
    let error_type = text(error, "type").filter(|t| t != "error");
    let code = text(error, "code");
    let status = text(error, "status");
    let details = error.get("details").and_then(Value::as_array);
    let reasons: Vec<String> = details
        .into_iter()
        .flatten()
        .filter_map(|d| text(d, "reason"))
        .collect();
    let retry_after_secs = error
        .get("reset_seconds")
        .and_then(Value::as_f64)
        .or_else(|| {
            details.into_iter().flatten().find_map(|d| {
                let delay = d.get("retryDelay")?.as_str()?;
                delay.trim().strip_suffix('s')?.trim().parse::<f64>().ok()
            })
        });
    let parsed = UpstreamError {
        message,
        error_type,
        code,
        status,
        reasons,
        retry_after_secs,
    };
    let says_something = parsed.message.is_some() || parsed.identifiers().next().is_some();
    says_something.then_some(parsed)
}

/// The upstream's own error from its body, for the log's `upstream_error` and failover
/// matching: `"<type>, <code>, <status>, <reasons>: <message>"` when the body is a recognised
/// error, else the body text with whitespace collapsed. Things that look like API keys or
/// bearer tokens are masked; truncated to 2000 characters.
#[must_use]
pub fn upstream_error_text(body: &[u8]) -> String {
    let text = match parse_upstream_error(body) {
        Some(error) => {
            let ids: Vec<&str> = error.identifiers().collect();
            match (ids.is_empty(), error.message.as_deref()) {
                (true, Some(message)) => message.to_owned(),
                (false, Some(message)) => format!("{}: {message}", ids.join(", ")),
                (_, None) => ids.join(", "),
            }
        }
        None => String::from_utf8_lossy(body)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" "),
    };
    truncate_chars(&redact_secrets(&text), MAX_UPSTREAM_ERROR_CHARS)
}

/// `text` cut to at most `max` characters (the last one an ellipsis when cut).
pub(crate) fn truncate_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some(_) => {
            let keep = text
                .char_indices()
                .nth(max.saturating_sub(1))
                .map_or(0, |(i, _)| i);
            let mut out = text[..keep].to_owned();
            out.push('…');
            out
        }
    }
}

/// Prefixes of secrets that upstream errors sometimes echo back.
const SECRET_PREFIXES: [&str; 8] = ["sk-", "sk_", "AIza", "ya29.", "cr_", "xai-", "gsk_", "key-"];
/// Shortest run that counts as a secret.
const SECRET_MIN_LEN: usize = 16;

/// Masks things that look like API keys (`sk-…`, `AIza…`, …) and bearer tokens.
fn redact_secrets(text: &str) -> String {
    let is_token_byte = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut after_bearer = false;
    while i < bytes.len() {
        if !is_token_byte(bytes[i]) {
            let next = text[i..].chars().next().map_or(1, char::len_utf8);
            if !text[i..].starts_with(' ') {
                after_bearer = false;
            }
            out.push_str(&text[i..i + next]);
            i += next;
            continue;
        }
        let len = bytes[i..]
            .iter()
            .position(|&b| !is_token_byte(b))
            .unwrap_or(bytes.len() - i);
        let token = &text[i..i + len];
        let secret = len >= SECRET_MIN_LEN
            && (after_bearer || SECRET_PREFIXES.iter().any(|p| token.starts_with(p)));
        if secret {
            out.push_str(&token[..6]);
            out.push_str("…[redacted]");
        } else {
            out.push_str(token);
        }
        after_bearer = token.eq_ignore_ascii_case("bearer");
        i += len;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL_KINDS: [ErrorKind; 10] = [
        ErrorKind::InvalidRequest,
        ErrorKind::Authentication,
        ErrorKind::PermissionDenied,
        ErrorKind::NotFound,
        ErrorKind::RequestTooLarge,
        ErrorKind::RateLimited,
        ErrorKind::Upstream,
        ErrorKind::Overloaded,
        ErrorKind::Timeout,
        ErrorKind::Internal,
    ];

    #[test]
    fn statuses() {
        let statuses: Vec<u16> = ALL_KINDS.iter().map(|k| k.status()).collect();
        assert_eq!(statuses, [400, 401, 403, 404, 413, 429, 502, 503, 504, 500]);
        for kind in ALL_KINDS {
            if kind != ErrorKind::Internal {
                assert_eq!(ErrorKind::from_status(kind.status()), kind);
            }
        }
        assert_eq!(ErrorKind::from_status(529), ErrorKind::Overloaded);
        assert_eq!(ErrorKind::from_status(422), ErrorKind::InvalidRequest);
        assert_eq!(ErrorKind::from_status(520), ErrorKind::Upstream);
    }

    #[test]
    fn anthropic_error_body() {
        let body = error_body(
            Protocol::Anthropic,
            ErrorKind::Authentication,
            "invalid_api_key",
            "Invalid API key. Check the key you set in x-api-key.",
        );
        assert_eq!(
            body,
            json!({"type": "error", "error": {
                "type": "authentication_error",
                "message": "Invalid API key. Check the key you set in x-api-key.",
            }})
        );
        let types: Vec<&str> = ALL_KINDS.iter().map(|k| k.anthropic_type()).collect();
        assert_eq!(
            types,
            [
                "invalid_request_error",
                "authentication_error",
                "permission_error",
                "not_found_error",
                "request_too_large",
                "rate_limit_error",
                "api_error",
                "overloaded_error",
                "timeout_error",
                "api_error",
            ]
        );
    }

    #[test]
    fn openai_error_body() {
        for protocol in [Protocol::OpenAiChat, Protocol::OpenAiResponses] {
            let body = error_body(
                protocol,
                ErrorKind::NotFound,
                "model_not_found",
                "The model `gpt-9` does not exist.",
            );
            assert_eq!(
                body,
                json!({"error": {
                    "message": "The model `gpt-9` does not exist.",
                    "type": "not_found_error",
                    "code": "model_not_found",
                    "param": null,
                }})
            );
        }
        let body = error_body(
            Protocol::OpenAiChat,
            ErrorKind::RateLimited,
            " ",
            "slow down",
        );
        assert_eq!(body["error"]["code"], Value::Null);
        assert_eq!(body["error"]["type"], "rate_limit_error");
    }

    #[test]
    fn gemini_error_body() {
        let body = error_body(
            Protocol::Gemini,
            ErrorKind::RateLimited,
            "",
            "Quota exceeded.",
        );
        assert_eq!(
            body,
            json!({"error": {"code": 429, "message": "Quota exceeded.", "status": "RESOURCE_EXHAUSTED"}})
        );
        let body = error_body(
            Protocol::Gemini,
            ErrorKind::Authentication,
            "invalid_api_key",
            "x",
        );
        assert_eq!(body["error"]["status"], "UNAUTHENTICATED");
        assert_eq!(body["error"]["code"], 401);
        assert_eq!(body["error"]["details"][0]["reason"], "INVALID_API_KEY");
        let statuses: Vec<&str> = ALL_KINDS.iter().map(|k| k.gemini_status()).collect();
        assert_eq!(
            statuses,
            [
                "INVALID_ARGUMENT",
                "UNAUTHENTICATED",
                "PERMISSION_DENIED",
                "NOT_FOUND",
                "INVALID_ARGUMENT",
                "RESOURCE_EXHAUSTED",
                "UNAVAILABLE",
                "UNAVAILABLE",
                "DEADLINE_EXCEEDED",
                "INTERNAL",
            ]
        );
    }

    fn sse_parts(bytes: &Bytes) -> (Option<String>, Value) {
        let text = std::str::from_utf8(bytes).unwrap();
        assert!(text.ends_with("\n\n"), "{text:?}");
        let mut parser = crate::providers::SseParser::new();
        let events = parser.feed(bytes);
        assert_eq!(events.len(), 1);
        let event = &events[0];
        assert_eq!(event.raw_len, bytes.len());
        (
            event.event.clone(),
            serde_json::from_str(&event.data).unwrap(),
        )
    }

    #[test]
    fn stream_error_events() {
        let (name, data) = sse_parts(&stream_error_event(
            Protocol::Anthropic,
            ErrorKind::Overloaded,
            "Upstream is overloaded, try again shortly.",
        ));
        assert_eq!(name.as_deref(), Some("error"));
        assert_eq!(
            data,
            json!({"type": "error", "error": {"type": "overloaded_error", "message": "Upstream is overloaded, try again shortly."}})
        );

        let (name, data) = sse_parts(&stream_error_event(
            Protocol::OpenAiChat,
            ErrorKind::Timeout,
            "timed out",
        ));
        assert_eq!(name, None);
        assert_eq!(
            data,
            json!({"error": {"message": "timed out", "type": "timeout_error", "code": "timeout", "param": null}})
        );

        let (name, data) = sse_parts(&stream_error_event(
            Protocol::OpenAiResponses,
            ErrorKind::Upstream,
            "upstream closed the stream",
        ));
        assert_eq!(name.as_deref(), Some("error"));
        assert_eq!(data["type"], "error");
        assert_eq!(data["message"], "upstream closed the stream");
        assert_eq!(data["code"], "upstream_error");
        assert_eq!(data["sequence_number"], 0);
        assert_eq!(data["error"]["message"], "upstream closed the stream");
        assert_eq!(data["error"]["type"], "upstream_error");

        let (name, data) = sse_parts(&stream_error_event(
            Protocol::Gemini,
            ErrorKind::Internal,
            "boom",
        ));
        assert_eq!(name, None);
        assert_eq!(
            data,
            json!({"error": {"code": 500, "message": "boom", "status": "INTERNAL"}})
        );

        // A message with quotes and newlines stays one valid data line.
        let bytes = stream_error_event(Protocol::OpenAiChat, ErrorKind::Upstream, "a \"b\"\nc");
        let (_, data) = sse_parts(&bytes);
        assert_eq!(data["error"]["message"], "a \"b\"\nc");
    }

    #[test]
    fn upstream_error_shapes() {
        let anthropic = br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_011CSHoEeqs5C35K2UUqR7Fy"}"#;
        assert_eq!(
            upstream_error_text(anthropic),
            "overloaded_error: Overloaded"
        );

        let openai = br#"{"error":{"message":"Rate limit reached for gpt-4o in organization org-x on tokens per min (TPM): Limit 30000, Used 29000, Requested 2000.","type":"tokens","param":null,"code":"rate_limit_exceeded"}}"#;
        let parsed = parse_upstream_error(openai).unwrap();
        assert_eq!(parsed.code.as_deref(), Some("rate_limit_exceeded"));
        assert!(parsed.has_code("RATE_LIMIT_EXCEEDED"));
        assert!(
            upstream_error_text(openai)
                .starts_with("tokens, rate_limit_exceeded: Rate limit reached")
        );

        let gemini = br#"{"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"QUOTA_EXHAUSTED","domain":"googleapis.com"},{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"17s"}]}}"#;
        let parsed = parse_upstream_error(gemini).unwrap();
        assert_eq!(parsed.status.as_deref(), Some("RESOURCE_EXHAUSTED"));
        assert_eq!(parsed.code, None);
        assert_eq!(parsed.reasons, vec!["QUOTA_EXHAUSTED".to_owned()]);
        assert_eq!(parsed.retry_after_secs, Some(17.0));
        assert!(parsed.has_code("quota_exhausted"));
        assert_eq!(
            upstream_error_text(gemini),
            "RESOURCE_EXHAUSTED, QUOTA_EXHAUSTED: Resource has been exhausted (e.g. check quota)."
        );

        let gemini_array = br#"[{"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}]"#;
        assert_eq!(
            upstream_error_text(gemini_array),
            "UNAVAILABLE: The model is overloaded."
        );

        let cooldown = br#"{"error":{"code":"model_cooldown","message":"All credentials for model x are cooling down","reset_seconds":16.5}}"#;
        let parsed = parse_upstream_error(cooldown).unwrap();
        assert_eq!(parsed.retry_after_secs, Some(16.5));
        assert!(parsed.has_code("model_cooldown"));

        let responses_event = br#"{"type":"error","code":"ERR_SOMETHING","message":"Something went wrong","param":null,"sequence_number":1}"#;
        assert_eq!(
            upstream_error_text(responses_event),
            "ERR_SOMETHING: Something went wrong"
        );

        assert_eq!(
            upstream_error_text(br#"{"error":"upstream quota used up"}"#),
            "upstream quota used up"
        );
        assert_eq!(
            upstream_error_text(br#"{"detail":"Not authenticated"}"#),
            "Not authenticated"
        );
        assert_eq!(
            upstream_error_text(br#"{"message":"Bad gateway","code":502}"#),
            "Bad gateway"
        );
    }

    #[test]
    fn upstream_error_text_of_non_json_bodies() {
        let html = b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\n<center><h1>502 Bad Gateway</h1></center>\n</body>\n</html>\n";
        assert_eq!(
            upstream_error_text(html),
            "<html> <head><title>502 Bad Gateway</title></head> <body> <center><h1>502 Bad Gateway</h1></center> </body> </html>"
        );
        assert_eq!(upstream_error_text(b""), "");
        assert_eq!(upstream_error_text(b"{\"foo\":1}"), "{\"foo\":1}");
        assert_eq!(upstream_error_text(&[0xff, b'o', b'k']), "\u{fffd}ok");
    }

    #[test]
    fn upstream_error_text_is_truncated() {
        let long = format!("{{\"error\":{{\"message\":\"{}\"}}}}", "é".repeat(5000));
        let text = upstream_error_text(long.as_bytes());
        assert_eq!(text.chars().count(), 2000);
        assert!(text.ends_with('…'));
        assert_eq!(truncate_chars("abc", 3), "abc");
        assert_eq!(truncate_chars("abcd", 3), "ab…");
    }

    #[test]
    fn secrets_are_masked() {
        let body = br#"{"error":{"message":"Incorrect API key provided: sk-proj-abcdefghijklmnopqrstuvwxyz0123. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","code":"invalid_api_key"}}"#;
        let text = upstream_error_text(body);
        assert!(!text.contains("abcdefghijklmnop"), "{text}");
        assert!(text.contains("sk-pro…[redacted]"), "{text}");
        assert!(
            text.contains("https://platform.openai.com/account/api-keys"),
            "{text}"
        );
        let text =
            upstream_error_text(b"denied for Authorization: Bearer abcdefghijklmnopqrstuvwxyz");
        assert!(!text.contains("ghijklmnop"), "{text}");
        let text = upstream_error_text(b"key AIzaSyA1234567890abcdefghijklmnopqrstu is invalid");
        assert_eq!(text, "key AIzaSy…[redacted] is invalid");
        // Ordinary long words stay.
        let text = upstream_error_text(b"claude-sonnet-4-5-20250929 is not available");
        assert_eq!(text, "claude-sonnet-4-5-20250929 is not available");
    }
}
