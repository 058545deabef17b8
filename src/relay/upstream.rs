//! Talking to upstreams: which channel types can serve which pool, the upstream URL, headers
//! and credentials, and the one pooled HTTP client.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::app::live::LiveChannel;
use crate::domain::Pool;

/// How relaybox talks to a channel (only pass-through kinds exist so far).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamKind {
    /// Anthropic Messages, `x-api-key`.
    Anthropic,
    /// OpenAI-compatible Chat Completions, `Authorization: Bearer`.
    OpenAiChat,
    /// OpenAI Responses, `Authorization: Bearer`.
    OpenAiResponses,
    /// Codex OAuth (`openai-oauth`): Responses with the OAuth access token and account id.
    CodexOAuth,
    /// Gemini, `x-goog-api-key`.
    Gemini,
}

/// Whether a channel of `service_type` can serve requests of `pool` without a conversion.
pub fn kind_for(pool: Pool, service_type: &str) -> Result<UpstreamKind, String> {
    let kind = match (pool, service_type) {
        (Pool::Messages, "claude") => UpstreamKind::Anthropic,
        (Pool::Chat, "openai" | "openai_chat" | "openaiold") => UpstreamKind::OpenAiChat,
        (Pool::Responses, "responses") => UpstreamKind::OpenAiResponses,
        (Pool::Responses, "openai-oauth") => UpstreamKind::CodexOAuth,
        (Pool::Gemini, "gemini") => UpstreamKind::Gemini,
        (_, other) => {
            return Err(format!(
                "serviceType '{other}' in the {pool} pool needs a protocol conversion relaybox does not do yet"
            ));
        }
    };
    Ok(kind)
}

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
    match query.filter(|q| !q.is_empty()) {
        Some(query) => format!("{base}{path}?{query}"),
        None => format!("{base}{path}"),
    }
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

/// Headers for the upstream request: the client's (minus the dropped ones) plus the channel's
/// credential. Returns `None` when the channel has no credential to send.
pub fn upstream_headers(
    client: &HeaderMap,
    kind: UpstreamKind,
    channel: &LiveChannel,
    key_index: usize,
) -> Option<HeaderMap> {
    let mut headers = HeaderMap::with_capacity(client.len() + 2);
    for (name, value) in client {
        if !is_dropped(name) {
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
                    let access = oauth_access_token(channel)?;
                    headers.insert(
                        header::AUTHORIZATION,
                        HeaderValue::from_str(&format!("Bearer {access}")).ok()?,
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
            let access = oauth_access_token(channel)?;
            let tokens: serde_json::Value =
                serde_json::from_str(channel.oauth_tokens.as_deref()?).ok()?;
            headers.insert(
                header::AUTHORIZATION,
                HeaderValue::from_str(&format!("Bearer {access}")).ok()?,
            );
            if let Some(account) = tokens.get("account_id").and_then(|a| a.as_str()) {
                headers.insert(CHATGPT_ACCOUNT_ID, HeaderValue::from_str(account).ok()?);
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

/// `access_token` of a channel's OAuth token block.
fn oauth_access_token(channel: &LiveChannel) -> Option<String> {
    let tokens: serde_json::Value = serde_json::from_str(channel.oauth_tokens.as_deref()?).ok()?;
    Some(tokens.get("access_token")?.as_str()?.to_string())
}

/// The response of an upstream, its body still streaming.
pub type UpstreamResponse = hyper::Response<hyper::body::Incoming>;

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;
type PooledClient = Client<Connector, Full<Bytes>>;

/// Why an upstream request got no response.
#[derive(Debug)]
pub enum SendError {
    /// The URL of the channel does not parse.
    BadUrl,
    /// No connection (refused, DNS, TLS handshake).
    Connect,
    /// Anything else before the response headers.
    Request,
}

impl SendError {
    #[must_use]
    pub fn describe(&self) -> &'static str {
        match self {
            SendError::BadUrl => "the channel's base URL is not a valid URL",
            SendError::Connect => "connection failed",
            SendError::Request => "request failed",
        }
    }
}

/// The pooled HTTP clients (one verifying certificates, one for channels with
/// `insecureSkipVerify`): hyper's pooled client with rustls, keep-alive, TCP_NODELAY, and HTTP/2
/// where the upstream offers it (ALPN).
#[derive(Clone)]
pub struct UpstreamClient {
    verified: PooledClient,
    insecure: PooledClient,
}

impl std::fmt::Debug for UpstreamClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UpstreamClient")
    }
}

fn pooled(tls: rustls::ClientConfig) -> PooledClient {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(Duration::from_secs(10)));
    http.set_keepalive(Some(Duration::from_secs(60)));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(256)
        .build(https)
}

impl UpstreamClient {
    pub fn new() -> Result<Self, rustls::Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let verified = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let insecure = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth();
        Ok(Self {
            verified: pooled(verified),
            insecure: pooled(insecure),
        })
    }

    /// Send; resolves when the response headers arrive (the body streams afterwards).
    pub async fn send(
        &self,
        channel: &LiveChannel,
        url: &str,
        headers: HeaderMap,
        body: Bytes,
    ) -> Result<UpstreamResponse, SendError> {
        let uri: hyper::Uri = url.parse().map_err(|_| SendError::BadUrl)?;
        let mut request = hyper::Request::new(Full::new(body));
        *request.method_mut() = hyper::Method::POST;
        *request.uri_mut() = uri;
        *request.headers_mut() = headers;
        let client = if channel.channel.insecure_skip_verify {
            &self.insecure
        } else {
            &self.verified
        };
        client.request(request).await.map_err(|err| {
            if err.is_connect() {
                SendError::Connect
            } else {
                SendError::Request
            }
        })
    }
}

/// `insecureSkipVerify`: accept any certificate (signatures are still checked, so the session
/// keys belong to whoever holds the certificate's key — only the identity is not verified).
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

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

    #[test]
    fn service_types_per_pool() {
        assert_eq!(
            kind_for(Pool::Messages, "claude"),
            Ok(UpstreamKind::Anthropic)
        );
        assert!(kind_for(Pool::Messages, "openai").is_err());
        assert_eq!(
            kind_for(Pool::Chat, "openaiold"),
            Ok(UpstreamKind::OpenAiChat)
        );
        assert!(
            kind_for(Pool::Chat, "claude")
                .unwrap_err()
                .contains("conversion")
        );
    }
}
