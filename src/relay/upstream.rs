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

    mod headers {
        #![allow(clippy::unwrap_used, clippy::expect_used)]

        use super::super::*;
        use crate::domain::Pool;
        use crate::relay::test_support::{channel, cipher, live, with_api_keys, with_oauth};

        fn client(pairs: &[(&'static str, &str)]) -> HeaderMap {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.append(*name, HeaderValue::from_str(value).unwrap());
            }
            map
        }

        fn value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
            headers.get(name).map(|v| v.to_str().unwrap())
        }

        /// A channel of `service_type` with these API keys, opened.
        fn keyed(pool: Pool, service_type: &str, keys: &[&str]) -> LiveChannel {
            let cipher = cipher();
            live(
                &with_api_keys(channel("c1", pool, service_type, 0), &cipher, keys),
                &cipher,
            )
        }

        fn oauth(pool: Pool, service_type: &str, tokens: &str) -> LiveChannel {
            let cipher = cipher();
            live(
                &with_oauth(channel("c1", pool, service_type, 0), &cipher, tokens),
                &cipher,
            )
        }

        #[test]
        fn client_credentials_and_hop_by_hop_headers_are_dropped() {
            let incoming = client(&[
                ("authorization", "Bearer client-key"),
                ("x-api-key", "client-key"),
                ("x-goog-api-key", "client-key"),
                ("cookie", "session=1"),
                ("proxy-authorization", "Basic eA=="),
                ("host", "relay.example"),
                ("connection", "keep-alive"),
                ("keep-alive", "timeout=5"),
                ("transfer-encoding", "chunked"),
                ("te", "trailers"),
                ("upgrade", "h2c"),
                ("content-length", "123"),
                ("accept-encoding", "gzip, br"),
                ("forwarded", "for=1.2.3.4"),
                ("x-forwarded-for", "1.2.3.4"),
                ("x-forwarded-proto", "https"),
                ("x-real-ip", "1.2.3.4"),
                ("cf-connecting-ip", "1.2.3.4"),
                ("content-type", "text/plain"),
                ("user-agent", "claude-cli/2.0"),
                ("accept", "text/event-stream"),
                ("x-stainless-lang", "js"),
                ("x-custom", "one"),
                ("x-custom", "two"),
            ]);
            let channel = keyed(Pool::Chat, "openai", &["sk-upstream"]);
            let headers =
                upstream_headers(&incoming, UpstreamKind::OpenAiChat, &channel, 0).unwrap();
            let mut names: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
            names.sort_unstable();
            assert_eq!(
                names,
                [
                    "accept",
                    "authorization",
                    "content-type",
                    "user-agent",
                    "x-custom",
                    "x-stainless-lang"
                ]
            );
            assert_eq!(value(&headers, "authorization"), Some("Bearer sk-upstream"));
            // The body is always sent as JSON, whatever the client said.
            assert_eq!(value(&headers, "content-type"), Some("application/json"));
            assert_eq!(value(&headers, "user-agent"), Some("claude-cli/2.0"));
            let custom: Vec<&str> = headers
                .get_all("x-custom")
                .iter()
                .map(|v| v.to_str().unwrap())
                .collect();
            assert_eq!(custom, ["one", "two"]);
        }

        #[test]
        fn each_upstream_kind_gets_its_credential_header() {
            let none = HeaderMap::new();
            let anthropic = keyed(Pool::Messages, "claude", &["sk-ant-1"]);
            let headers = upstream_headers(&none, UpstreamKind::Anthropic, &anthropic, 0).unwrap();
            assert_eq!(value(&headers, "x-api-key"), Some("sk-ant-1"));
            assert!(headers.get("x-api-key").unwrap().is_sensitive());
            assert_eq!(value(&headers, "anthropic-version"), Some("2023-06-01"));
            assert!(!headers.contains_key("authorization"));

            for kind in [UpstreamKind::OpenAiChat, UpstreamKind::OpenAiResponses] {
                let openai = keyed(Pool::Chat, "openai", &["sk-oa-1"]);
                let headers = upstream_headers(&none, kind, &openai, 0).unwrap();
                assert_eq!(value(&headers, "authorization"), Some("Bearer sk-oa-1"));
                assert!(headers.get("authorization").unwrap().is_sensitive());
                assert!(!headers.contains_key("x-api-key"));
                assert!(!headers.contains_key("anthropic-version"));
            }

            let gemini = keyed(Pool::Gemini, "gemini", &["AIza-1"]);
            let headers = upstream_headers(&none, UpstreamKind::Gemini, &gemini, 0).unwrap();
            assert_eq!(value(&headers, "x-goog-api-key"), Some("AIza-1"));
            assert!(!headers.contains_key("authorization"));
            assert!(!headers.contains_key("anthropic-version"));
        }

        #[test]
        fn the_key_index_picks_among_the_channels_keys() {
            let channel = keyed(Pool::Messages, "claude", &["k0", "k1", "k2"]);
            let picked: Vec<String> = (0..5)
                .map(|i| {
                    let headers =
                        upstream_headers(&HeaderMap::new(), UpstreamKind::Anthropic, &channel, i)
                            .unwrap();
                    value(&headers, "x-api-key").unwrap().to_string()
                })
                .collect();
            assert_eq!(picked, ["k0", "k1", "k2", "k0", "k1"]);
        }

        #[test]
        fn no_usable_credential_means_no_request() {
            let none = HeaderMap::new();
            let cipher = cipher();
            let bare = live(&channel("c1", Pool::Chat, "openai", 0), &cipher);
            for kind in [
                UpstreamKind::Anthropic,
                UpstreamKind::OpenAiChat,
                UpstreamKind::OpenAiResponses,
                UpstreamKind::CodexOAuth,
                UpstreamKind::Gemini,
            ] {
                assert!(
                    upstream_headers(&none, kind, &bare, 0).is_none(),
                    "{kind:?}"
                );
            }
            // A key that cannot be a header value is skipped, not sent.
            let broken = keyed(Pool::Chat, "openai", &["good", "bad\nkey"]);
            assert!(upstream_headers(&none, UpstreamKind::OpenAiChat, &broken, 0).is_some());
            assert!(upstream_headers(&none, UpstreamKind::OpenAiChat, &broken, 1).is_none());
            // An OAuth block without an access token is no credential either.
            let tokenless = oauth(Pool::Messages, "claude", r#"{"refresh_token":"r"}"#);
            assert!(upstream_headers(&none, UpstreamKind::Anthropic, &tokenless, 0).is_none());
        }

        #[test]
        fn anthropic_headers_reach_only_anthropic_upstreams() {
            let incoming = client(&[
                ("anthropic-version", "2024-10-22"),
                ("anthropic-beta", "prompt-caching-2024-07-31"),
                ("anthropic-dangerous-direct-browser-access", "true"),
                ("x-app", "cli"),
            ]);
            let anthropic = keyed(Pool::Messages, "claude", &["sk-ant"]);
            let headers =
                upstream_headers(&incoming, UpstreamKind::Anthropic, &anthropic, 0).unwrap();
            // The client's version is kept, not replaced by the default.
            assert_eq!(value(&headers, "anthropic-version"), Some("2024-10-22"));
            assert_eq!(
                value(&headers, "anthropic-beta"),
                Some("prompt-caching-2024-07-31")
            );
            assert_eq!(
                value(&headers, "anthropic-dangerous-direct-browser-access"),
                Some("true")
            );

            for (kind, channel) in [
                (
                    UpstreamKind::OpenAiChat,
                    keyed(Pool::Chat, "openai", &["sk-oa"]),
                ),
                (
                    UpstreamKind::Gemini,
                    keyed(Pool::Gemini, "gemini", &["AIza"]),
                ),
            ] {
                let headers = upstream_headers(&incoming, kind, &channel, 0).unwrap();
                let anthropic_named: Vec<&str> = headers
                    .keys()
                    .map(HeaderName::as_str)
                    .filter(|n| n.starts_with("anthropic-"))
                    .collect();
                assert!(anthropic_named.is_empty(), "{kind:?}: {anthropic_named:?}");
                assert_eq!(value(&headers, "x-app"), Some("cli"), "{kind:?}");
            }
        }

        #[test]
        fn an_oauth_only_anthropic_channel_sends_a_bearer_token_and_the_beta_flag() {
            let channel = oauth(
                Pool::Messages,
                "claude",
                r#"{"access_token":"sk-ant-oat-1","refresh_token":"r","expires_at":1}"#,
            );
            let headers =
                upstream_headers(&HeaderMap::new(), UpstreamKind::Anthropic, &channel, 0).unwrap();
            assert_eq!(
                value(&headers, "authorization"),
                Some("Bearer sk-ant-oat-1")
            );
            assert_eq!(value(&headers, "anthropic-beta"), Some("oauth-2025-04-20"));
            assert_eq!(value(&headers, "anthropic-version"), Some("2023-06-01"));
            assert!(!headers.contains_key("x-api-key"));

            // The flag joins the client's betas, once.
            let with_betas = client(&[("anthropic-beta", "prompt-caching-2024-07-31")]);
            let headers =
                upstream_headers(&with_betas, UpstreamKind::Anthropic, &channel, 0).unwrap();
            assert_eq!(
                value(&headers, "anthropic-beta"),
                Some("prompt-caching-2024-07-31,oauth-2025-04-20")
            );
            let already = client(&[("anthropic-beta", "oauth-2025-04-20,x")]);
            let headers = upstream_headers(&already, UpstreamKind::Anthropic, &channel, 0).unwrap();
            assert_eq!(
                value(&headers, "anthropic-beta"),
                Some("oauth-2025-04-20,x")
            );

            // An API key, when the channel has one, is preferred over the OAuth token.
            let cipher = cipher();
            let both = live(
                &with_oauth(
                    with_api_keys(channel_of("c2"), &cipher, &["sk-ant-key"]),
                    &cipher,
                    r#"{"access_token":"sk-ant-oat-2"}"#,
                ),
                &cipher,
            );
            let headers =
                upstream_headers(&HeaderMap::new(), UpstreamKind::Anthropic, &both, 0).unwrap();
            assert_eq!(value(&headers, "x-api-key"), Some("sk-ant-key"));
            assert!(!headers.contains_key("authorization"));
            assert!(!headers.contains_key("anthropic-beta"));
        }

        fn channel_of(id: &str) -> crate::domain::Channel {
            channel(id, Pool::Messages, "claude", 0)
        }

        #[test]
        fn codex_oauth_sends_the_access_token_and_account() {
            let channel = oauth(
                Pool::Responses,
                "openai-oauth",
                r#"{"access_token":"eyJ-codex","account_id":"acct-9"}"#,
            );
            let incoming = client(&[("authorization", "Bearer client"), ("anthropic-beta", "x")]);
            let headers =
                upstream_headers(&incoming, UpstreamKind::CodexOAuth, &channel, 0).unwrap();
            assert_eq!(value(&headers, "authorization"), Some("Bearer eyJ-codex"));
            assert_eq!(value(&headers, "chatgpt-account-id"), Some("acct-9"));
            assert!(!headers.contains_key("anthropic-beta"));
        }
    }
}
