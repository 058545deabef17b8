//! Talking to upstreams: the upstream URL, headers and credentials. Which channel types can
//! serve which pool is decided once per snapshot (`config::channel`); the HTTP client itself
//! is in `client.rs`.

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};

use crate::config::{LiveChannel, UpstreamKind};

/// cc-bridge's URL rule: a base URL that already ends in a version segment (`/v1`, `/v1beta`)
/// gets the endpoint path without its own version prefix; the client's query string is kept.
#[must_use]
pub fn upstream_url(base_url: &str, endpoint_path: &str, query: Option<&str>) -> String {
    let base = base_url.trim_end_matches('/');
    let last = base.rsplit('/').next().unwrap_or("");
    let ends_in_version = last.len() > 1
        && last.starts_with('v')
        && last[1..].chars().next().is_some_and(|c| c.is_ascii_digit())
        && last[1..]
            .trim_start_matches(|c: char| c.is_ascii_digit())
            .chars()
            .all(|c| c.is_ascii_lowercase());
    let path = if ends_in_version {
        let rest = endpoint_path.trim_start_matches('/');
        rest.find('/').map_or("", |i| &rest[i..])
    } else {
        endpoint_path
    };
    let query = query.filter(|q| !q.is_empty());
    let mut url = String::with_capacity(base.len() + path.len() + query.map_or(0, |q| q.len() + 1));
    url.push_str(base);
    url.push_str(path);
    if let Some(query) = query {
        url.push('?');
        url.push_str(query);
    }
    url
}

/// Client headers that are never forwarded: hop-by-hop headers, the client's credentials,
/// proxy traces, and `accept-encoding` (usage is read from the body, so it must arrive plain).
fn is_dropped(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "host"
            | "connection"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authorization"
            | "proxy-authenticate"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "content-length"
            | "authorization"
            | "x-api-key"
            | "x-goog-api-key"
            | "cookie"
            | "accept-encoding"
            | "forwarded"
            | "x-real-ip"
    ) || name.as_str().starts_with("x-forwarded-")
        || name.as_str().starts_with("cf-")
}

const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");
const X_GOOG_API_KEY: HeaderName = HeaderName::from_static("x-goog-api-key");
const ANTHROPIC_VERSION: HeaderName = HeaderName::from_static("anthropic-version");
const ANTHROPIC_BETA: HeaderName = HeaderName::from_static("anthropic-beta");
const CHATGPT_ACCOUNT_ID: HeaderName = HeaderName::from_static("chatgpt-account-id");

/// Headers of an upstream response that must not be copied to the client: those of one
/// connection, and the length, which hyper sets for the body it sends.
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::TRANSFER_ENCODING,
    header::TE,
    header::TRAILER,
    header::UPGRADE,
    header::CONTENT_LENGTH,
    HeaderName::from_static("proxy-connection"),
];

/// Remove the hop-by-hop headers in place.
pub fn remove_hop_by_hop(headers: &mut HeaderMap) {
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
}

/// Headers for the upstream request: the client's (minus the dropped ones, and minus another
/// protocol's `anthropic-*` headers) plus the channel's credential. Returns `None` when the
/// channel has no credential to send.
pub fn upstream_headers(
    client: &HeaderMap,
    kind: UpstreamKind,
    channel: &LiveChannel,
    key_index: usize,
) -> Option<HeaderMap> {
    let mut headers = HeaderMap::with_capacity(client.len() + 2);
    let anthropic = kind == UpstreamKind::Anthropic;
    for (name, value) in client {
        if !is_dropped(name) && (anthropic || !name.as_str().starts_with("anthropic-")) {
            headers.append(name.clone(), value.clone());
        }
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    // `None`: the channel has no API key; `Some(None)`: this key is not a valid header value.
    let credential = || {
        let keys = &channel.credentials;
        (!keys.is_empty()).then(|| keys[key_index % keys.len()].as_ref())
    };
    match kind {
        UpstreamKind::Anthropic => {
            match credential() {
                Some(key) => {
                    headers.insert(X_API_KEY, key?.raw.clone());
                }
                // A Claude OAuth account (no API key): its access token as a Bearer credential.
                None => {
                    headers.insert(
                        header::AUTHORIZATION,
                        channel.oauth.as_ref()?.bearer.clone(),
                    );
                    let beta = match headers.get(&ANTHROPIC_BETA).and_then(|v| v.to_str().ok()) {
                        Some(existing) if existing.contains(OAUTH_BETA) => existing.to_string(),
                        Some(existing) => format!("{existing},{OAUTH_BETA}"),
                        None => OAUTH_BETA.to_string(),
                    };
                    headers.insert(ANTHROPIC_BETA, HeaderValue::from_str(&beta).ok()?);
                }
            }
            if !headers.contains_key(&ANTHROPIC_VERSION) {
                headers.insert(ANTHROPIC_VERSION, HeaderValue::from_static("2023-06-01"));
            }
        }
        UpstreamKind::OpenAiChat | UpstreamKind::OpenAiResponses => {
            headers.insert(header::AUTHORIZATION, credential()??.bearer.clone());
        }
        UpstreamKind::CodexOAuth => {
            let oauth = channel.oauth.as_ref()?;
            headers.insert(header::AUTHORIZATION, oauth.bearer.clone());
            if let Some(account) = &oauth.account_id {
                headers.insert(CHATGPT_ACCOUNT_ID, account.clone());
            }
        }
        UpstreamKind::Gemini => {
            headers.insert(X_GOOG_API_KEY, credential()??.raw.clone());
        }
    }
    Some(headers)
}

/// The beta flag Anthropic requires for OAuth access tokens.
const OAUTH_BETA: &str = "oauth-2025-04-20";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_joining_follows_cc_bridge() {
        assert_eq!(
            upstream_url("https://api.anthropic.com", "/v1/messages", None),
            "https://api.anthropic.com/v1/messages"
        );
        assert_eq!(
            upstream_url("https://api.anthropic.com/", "/v1/messages", None),
            "https://api.anthropic.com/v1/messages"
        );
        assert_eq!(
            upstream_url("https://x.ai/api/v1", "/v1/chat/completions", None),
            "https://x.ai/api/v1/chat/completions"
        );
        assert_eq!(
            upstream_url(
                "https://g.dev/v1beta",
                "/v1beta/models/g:generateContent",
                Some("alt=sse")
            ),
            "https://g.dev/v1beta/models/g:generateContent?alt=sse"
        );
        assert_eq!(
            upstream_url("http://127.0.0.1:9/s/status=429", "/v1/messages", None),
            "http://127.0.0.1:9/s/status=429/v1/messages"
        );
        assert_eq!(
            upstream_url("https://h/v2", "/v1/responses", None),
            "https://h/v2/responses"
        );
        assert_eq!(
            upstream_url("https://h/version", "/v1/responses", None),
            "https://h/version/v1/responses"
        );
    }
}
