//! Scenario directives: the `/s/{directives}/` path prefix that makes one
//! channel of the relay fail, stall or cut while another succeeds against the
//! same mock.
//!
//! `POST /s/status=429,retry_after=2/v1/messages` is an Anthropic Messages
//! request answered with a 429 and a `retry-after: 2` header. Without the
//! prefix every request succeeds.
//!
//! Directives shape the answer too: `chunks=N` (stream pieces), `input_tokens=N`,
//! `output_tokens=N`, `cache_read=N`, `cache_creation=N` and `reasoning_tokens=N` (the usage
//! figures; `output_tokens` is the answer without its reasoning), `parallel_tools=N` (N tool
//! calls in one answer). What the answer contains — reasoning, tool calls, a quote of the tool
//! results, the images it saw — follows from the request itself (see the crate docs).

use serde::{Deserialize, Serialize};

/// Number of text deltas in a streamed reply unless `chunks=N` says otherwise.
pub const DEFAULT_CHUNKS: usize = 3;
/// Upper bound for `chunks=N`, so one request cannot ask for unbounded memory.
pub const MAX_CHUNKS: usize = 10_000;

/// Upper bound for `word_bytes=N`.
pub const MAX_WORD_BYTES: usize = 65_536;

/// Upper bound for `parallel_tools=N`.
pub const MAX_PARALLEL_TOOLS: usize = 64;

/// The behaviour selected by a request's directive string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scenario {
    /// The directive string exactly as it appeared in the path ("" without a prefix).
    pub directives: String,
    /// `latency=MS`: delay before the response headers.
    pub latency_ms: u64,
    /// `chunk_delay=MS`: delay between two stream events.
    pub chunk_delay_ms: u64,
    /// `chunks=N`: number of text deltas in the reply.
    pub chunks: usize,
    /// `status=CODE`: answer with this error status, shaped for the protocol.
    pub status: Option<u16>,
    /// `retry_after=S`: `retry-after` header on error responses.
    pub retry_after: Option<u64>,
    /// `error_code=X`: a code string put into the error body and message.
    pub error_code: Option<String>,
    /// `fail_times=N`: only the first N requests with this directive string fail.
    pub fail_times: Option<u64>,
    /// `cut_after=N`: send N stream events, then abort the connection.
    pub cut_after: Option<usize>,
    /// `input_tokens=N`: reported uncached input tokens.
    pub input_tokens: Option<u64>,
    /// `output_tokens=N`: reported output tokens.
    pub output_tokens: Option<u64>,
    /// `cache_read=N`: reported cache-read input tokens.
    pub cache_read: Option<u64>,
    /// `cache_creation=N`: reported cache-creation input tokens.
    pub cache_creation: Option<u64>,
    /// `require_key=K`: answer 401 unless the presented credential equals K.
    pub require_key: Option<String>,
    /// `stall=head`: never send the response headers (the request hangs until the client
    /// gives up).
    pub stall_head: bool,
    /// `stall_after=N`: send the headers and N pieces of the body (stream events; a JSON
    /// reply in two halves; an error body as one piece), then send nothing more while keeping
    /// the connection open. `status=529,stall_after=0` is an error whose body never comes.
    pub stall_after: Option<usize>,
    /// `word_bytes=N`: the filler words of a text reply are N letters long instead of "more"
    /// (large streams from few events: a client that stops reading fills its buffers).
    pub word_bytes: Option<usize>,
    /// `reasoning_tokens=N`: reported reasoning tokens (default: the reasoning text's word
    /// count when the request asks for reasoning, else 0). Anthropic and OpenAI add them to
    /// their output figure; Gemini reports them as `thoughtsTokenCount`.
    pub reasoning_tokens: Option<u64>,
    /// `parallel_tools=N`: a tool-call reply makes N calls in one answer (the request's tools
    /// in turn) instead of one.
    pub parallel_tools: Option<usize>,
}

impl Default for Scenario {
    fn default() -> Self {
        Self {
            directives: String::new(),
            latency_ms: 0,
            chunk_delay_ms: 0,
            chunks: DEFAULT_CHUNKS,
            status: None,
            retry_after: None,
            error_code: None,
            fail_times: None,
            cut_after: None,
            input_tokens: None,
            output_tokens: None,
            cache_read: None,
            cache_creation: None,
            require_key: None,
            stall_head: false,
            stall_after: None,
            word_bytes: None,
            reasoning_tokens: None,
            parallel_tools: None,
        }
    }
}

impl Scenario {
    /// Parses a comma-separated `key=value` directive string.
    ///
    /// Unknown keys and malformed values are errors: a typo in a test should
    /// fail loudly rather than silently succeed.
    pub fn parse(directives: &str) -> Result<Self, String> {
        let mut scenario = Self {
            directives: directives.to_owned(),
            ..Self::default()
        };
        let decoded = percent_decode(directives);
        for item in decoded.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (key, value) = item
                .split_once('=')
                .ok_or_else(|| format!("directive `{item}` is not key=value"))?;
            let (key, value) = (key.trim(), value.trim());
            match key {
                "latency" => scenario.latency_ms = number(key, value)?,
                "chunk_delay" => scenario.chunk_delay_ms = number(key, value)?,
                "chunks" => {
                    let chunks: usize = number(key, value)?;
                    if !(1..=MAX_CHUNKS).contains(&chunks) {
                        return Err(format!("chunks must be between 1 and {MAX_CHUNKS}"));
                    }
                    scenario.chunks = chunks;
                }
                "status" => {
                    let status: u16 = number(key, value)?;
                    if !(400..=599).contains(&status) {
                        return Err(format!("status must be a 4xx or 5xx code, got {status}"));
                    }
                    scenario.status = Some(status);
                }
                "retry_after" => scenario.retry_after = Some(number(key, value)?),
                "error_code" => scenario.error_code = Some(non_empty(key, value)?),
                "fail_times" => scenario.fail_times = Some(number(key, value)?),
                "cut_after" => scenario.cut_after = Some(number(key, value)?),
                "word_bytes" => {
                    let bytes: usize = number(key, value)?;
                    if !(1..=MAX_WORD_BYTES).contains(&bytes) {
                        return Err(format!("word_bytes must be between 1 and {MAX_WORD_BYTES}"));
                    }
                    scenario.word_bytes = Some(bytes);
                }
                "input_tokens" => scenario.input_tokens = Some(number(key, value)?),
                "output_tokens" => scenario.output_tokens = Some(number(key, value)?),
                "cache_read" => scenario.cache_read = Some(number(key, value)?),
                "cache_creation" => scenario.cache_creation = Some(number(key, value)?),
                "reasoning_tokens" => scenario.reasoning_tokens = Some(number(key, value)?),
                "parallel_tools" => {
                    let calls: usize = number(key, value)?;
                    if !(1..=MAX_PARALLEL_TOOLS).contains(&calls) {
                        return Err(format!(
                            "parallel_tools must be between 1 and {MAX_PARALLEL_TOOLS}"
                        ));
                    }
                    scenario.parallel_tools = Some(calls);
                }
                "require_key" => scenario.require_key = Some(non_empty(key, value)?),
                "stall" if value == "head" => scenario.stall_head = true,
                "stall" => return Err(format!("stall takes `head`, got `{value}`")),
                "stall_after" => scenario.stall_after = Some(number(key, value)?),
                _ => return Err(format!("unknown directive `{key}`")),
            }
        }
        if scenario.fail_times.is_some() && scenario.status.is_none() {
            return Err("fail_times needs status=CODE".to_owned());
        }
        Ok(scenario)
    }
}

/// Splits a request path into its directive string and the real API path.
///
/// `/s/status=429/v1/messages` gives `("status=429", "/v1/messages")`;
/// a path without the prefix gives `("", path)`.
pub fn split_path(path: &str) -> (&str, &str) {
    match path.strip_prefix("/s/") {
        Some(rest) => match rest.find('/') {
            Some(slash) => (&rest[..slash], &rest[slash..]),
            None => (rest, "/"),
        },
        None => ("", path),
    }
}

fn number<T: std::str::FromStr>(key: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("{key} needs a non-negative integer, got `{value}`"))
}

fn non_empty(key: &str, value: &str) -> Result<String, String> {
    if value.is_empty() {
        Err(format!("{key} needs a value"))
    } else {
        Ok(value.to_owned())
    }
}

/// Decodes `%XX` escapes (a client may escape `,` or `=` in the path).
pub(crate) fn percent_decode(input: &str) -> String {
    if !input.contains('%') {
        return input.to_owned();
    }
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_directive() {
        let s = Scenario::parse(
            "latency=5,chunk_delay=7,chunks=4,status=429,retry_after=2,error_code=QUOTA_EXHAUSTED,\
             fail_times=1,cut_after=3,input_tokens=11,output_tokens=12,cache_read=13,\
             cache_creation=14,require_key=sk-test,stall=head,stall_after=2,reasoning_tokens=15,\
             parallel_tools=2",
        )
        .unwrap();
        assert_eq!(s.latency_ms, 5);
        assert_eq!(s.chunk_delay_ms, 7);
        assert_eq!(s.chunks, 4);
        assert_eq!(s.status, Some(429));
        assert_eq!(s.retry_after, Some(2));
        assert_eq!(s.error_code.as_deref(), Some("QUOTA_EXHAUSTED"));
        assert_eq!(s.fail_times, Some(1));
        assert_eq!(s.cut_after, Some(3));
        assert_eq!(s.input_tokens, Some(11));
        assert_eq!(s.output_tokens, Some(12));
        assert_eq!(s.cache_read, Some(13));
        assert_eq!(s.cache_creation, Some(14));
        assert_eq!(s.require_key.as_deref(), Some("sk-test"));
        assert!(s.stall_head);
        assert_eq!(s.stall_after, Some(2));
        assert_eq!(s.reasoning_tokens, Some(15));
        assert_eq!(s.parallel_tools, Some(2));
    }

    #[test]
    fn empty_directives_are_the_default() {
        assert_eq!(Scenario::parse("").unwrap(), Scenario::default());
        assert_eq!(Scenario::default().chunks, DEFAULT_CHUNKS);
    }

    #[test]
    fn rejects_bad_directives() {
        for bad in [
            "bogus=1",
            "status=abc",
            "status=200",
            "chunks=0",
            "fail_times=2",
            "latency",
            "require_key=",
            "stall=body",
            "stall_after=x",
            "parallel_tools=0",
            "parallel_tools=65",
            "reasoning_tokens=-1",
        ] {
            assert!(Scenario::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn accepts_percent_escapes() {
        let s = Scenario::parse("status%3D503%2Cretry_after%3D1").unwrap();
        assert_eq!(s.status, Some(503));
        assert_eq!(s.retry_after, Some(1));
        assert_eq!(s.directives, "status%3D503%2Cretry_after%3D1");
    }

    #[test]
    fn splits_the_prefix() {
        assert_eq!(
            split_path("/s/status=429,retry_after=2/v1/messages"),
            ("status=429,retry_after=2", "/v1/messages")
        );
        assert_eq!(split_path("/v1/messages"), ("", "/v1/messages"));
        assert_eq!(split_path("/s/latency=5"), ("latency=5", "/"));
        assert_eq!(split_path("/s//v1/models"), ("", "/v1/models"));
    }
}
