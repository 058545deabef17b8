//! `relaybox channels test`: one tiny request to a channel's upstream, through the relay's own
//! URL rule, headers and HTTP client, so what it reports is what a relayed request would meet.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt as _;
use hyper::HeaderMap;
use serde::Serialize;
use serde_json::{Value, json};

use crate::config::{LiveChannel, UpstreamKind};
use crate::relay::client::{Certificates, UpstreamClient};
use crate::relay::upstream::{upstream_headers, upstream_url};

/// What the upstream answered.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProbeReport {
    pub channel_id: String,
    pub channel: String,
    pub url: String,
    pub model: String,
    /// The HTTP status, or `None` when no answer came (`error` says why).
    pub status: Option<u16>,
    /// Until the response headers arrived.
    pub latency_ms: u64,
    /// The start of the answer's body (an upstream's error message is there).
    pub body: String,
    pub error: Option<String>,
}

impl ProbeReport {
    #[must_use]
    pub fn ok(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// A model every upstream of that kind serves; a channel's `modelMapping` still applies.
fn default_model(kind: UpstreamKind) -> &'static str {
    match kind {
        UpstreamKind::Anthropic => "claude-haiku-4-5",
        UpstreamKind::OpenAiChat => "gpt-4o-mini",
        UpstreamKind::OpenAiResponses | UpstreamKind::CodexOAuth => "gpt-5-mini",
        UpstreamKind::Gemini => "gemini-2.5-flash",
    }
}

/// The endpoint path and the smallest body that asks for an answer.
fn tiny_request(kind: UpstreamKind, model: &str) -> (String, Value) {
    let ping = "Reply with one word: pong";
    match kind {
        UpstreamKind::Anthropic => (
            "/v1/messages".into(),
            json!({"model": model, "max_tokens": 1, "messages": [{"role": "user", "content": ping}]}),
        ),
        UpstreamKind::OpenAiChat => (
            "/v1/chat/completions".into(),
            json!({"model": model, "max_tokens": 1, "messages": [{"role": "user", "content": ping}]}),
        ),
        // The Responses API refuses fewer than 16 output tokens.
        UpstreamKind::OpenAiResponses | UpstreamKind::CodexOAuth => (
            "/v1/responses".into(),
            json!({"model": model, "max_output_tokens": 16, "input": ping}),
        ),
        UpstreamKind::Gemini => (
            format!("/v1beta/models/{model}:generateContent"),
            json!({"contents": [{"role": "user", "parts": [{"text": ping}]}],
                   "generationConfig": {"maxOutputTokens": 1}}),
        ),
    }
}

/// Send one tiny request to `live`'s upstream (its first API key) and report the answer.
/// `Err` when the channel cannot be tried at all (no credential, no protocol for its pool).
pub async fn probe_channel(
    client: &UpstreamClient,
    live: &LiveChannel,
    model: Option<&str>,
    timeout: Duration,
) -> Result<ProbeReport, String> {
    let channel = &live.channel;
    let kind = live.upstream.clone()?;
    let asked = model.unwrap_or_else(|| default_model(kind));
    let model = live.mapper.map(asked).unwrap_or_else(|| asked.to_string());
    let (path, body) = tiny_request(kind, &model);
    let url = upstream_url(&channel.base_url, &path, None);
    let headers = upstream_headers(&HeaderMap::new(), kind, live, 0).ok_or_else(|| {
        format!(
            "channel '{}' has no usable API key or OAuth token to send",
            channel.name
        )
    })?;
    let certificates = if channel.insecure_skip_verify {
        Certificates::AcceptAny
    } else {
        Certificates::Verify
    };
    let mut report = ProbeReport {
        channel_id: channel.id.clone(),
        channel: channel.name.clone(),
        url: url.clone(),
        model,
        status: None,
        latency_ms: 0,
        body: String::new(),
        error: None,
    };
    let started = Instant::now();
    let sent = tokio::time::timeout(
        timeout,
        client.send(certificates, &url, headers, Bytes::from(body.to_string())),
    )
    .await;
    report.latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    match sent {
        Err(_) => report.error = Some(format!("no answer within {} s", timeout.as_secs())),
        Ok(Err(err)) => report.error = Some(err.describe().to_string()),
        Ok(Ok(response)) => {
            report.status = Some(response.status().as_u16());
            let remaining = timeout.saturating_sub(started.elapsed());
            match tokio::time::timeout(remaining, response.into_body().collect()).await {
                Ok(Ok(collected)) => {
                    let bytes = collected.to_bytes();
                    let text = String::from_utf8_lossy(&bytes);
                    report.body = text.chars().take(500).collect();
                }
                Ok(Err(err)) => report.error = Some(format!("the body broke off: {err}")),
                Err(_) => report.error = Some("the body did not finish in time".into()),
            }
        }
    }
    Ok(report)
}
