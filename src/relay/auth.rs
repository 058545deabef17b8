//! Stages 1 and 3 of the request path: who is calling, and may this key make this request.

use std::sync::Arc;

use axum::http::HeaderMap;
use time::OffsetDateTime;

use super::Endpoint;
use super::error::RelayError;
use crate::config::Snapshot;
use crate::domain::{ClientKey, KeyStatus, Pool};
use crate::providers::ErrorKind;

/// The key as presented: `x-api-key`, `Authorization: Bearer`, and for Gemini also
/// `x-goog-api-key` or `?key=`.
#[must_use]
pub fn presented_key<'a>(
    headers: &'a HeaderMap,
    query: Option<&'a str>,
    endpoint: Endpoint,
) -> Option<&'a str> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    if let Some(key) = header("x-api-key") {
        return Some(key);
    }
    if let Some(bearer) = header("authorization").and_then(|v| {
        v.strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
    }) {
        return Some(bearer.trim());
    }
    if endpoint.pool() == Some(Pool::Gemini) || endpoint == Endpoint::Models {
        if let Some(key) = header("x-goog-api-key") {
            return Some(key);
        }
        return query
            .and_then(|q| q.split('&').find_map(|pair| pair.strip_prefix("key=")))
            .filter(|k| !k.is_empty());
    }
    None
}

/// Find the key and check that it may be used at all (status, expiry).
pub fn authenticate(
    live: &Snapshot,
    presented: Option<&str>,
    now: OffsetDateTime,
) -> Result<Arc<ClientKey>, RelayError> {
    let Some(presented) = presented else {
        return Err(RelayError::new(
            ErrorKind::Authentication,
            "missing_api_key",
            "no API key: send your relaybox key as `x-api-key: <key>` or `Authorization: Bearer <key>`",
        ));
    };
    let Some(key) = live.find_key(presented) else {
        return Err(RelayError::new(
            ErrorKind::Authentication,
            "invalid_api_key",
            "invalid API key: check the key you were given (ask the relay's admin for a new one if it was deleted)",
        ));
    };
    match key.status {
        KeyStatus::Active => {}
        KeyStatus::Disabled => {
            return Err(RelayError::new(
                ErrorKind::PermissionDenied,
                "key_disabled",
                "this API key is disabled; ask the relay's admin to enable it",
            ));
        }
        KeyStatus::Revoked => {
            return Err(RelayError::new(
                ErrorKind::Authentication,
                "key_revoked",
                "this API key was revoked; ask the relay's admin for a new one",
            ));
        }
    }
    if key.is_expired(now) {
        return Err(RelayError::new(
            ErrorKind::PermissionDenied,
            "key_expired",
            "this API key has expired; ask the relay's admin to extend it",
        ));
    }
    Ok(Arc::clone(key))
}

/// Check the key's allowlists against this request (endpoint, model, user agent).
pub fn authorize(
    key: &ClientKey,
    endpoint: Endpoint,
    model: &str,
    user_agent: &str,
) -> Result<(), RelayError> {
    if let Some(pool) = endpoint.pool()
        && !key.allow.endpoints.is_empty()
        && !key.allow.endpoints.iter().any(|e| e == pool.as_str())
    {
        return Err(RelayError::new(
            ErrorKind::PermissionDenied,
            "endpoint_not_allowed",
            format!(
                "this API key may not use the {} endpoints (allowed: {})",
                pool,
                key.allow.endpoints.join(", ")
            ),
        ));
    }
    if !model.is_empty()
        && !key.allow.models.is_empty()
        && !key.allow.models.iter().any(|glob| glob_match(glob, model))
    {
        return Err(RelayError::new(
            ErrorKind::PermissionDenied,
            "model_not_allowed",
            format!(
                "this API key may not use model '{model}' (allowed: {})",
                key.allow.models.join(", ")
            ),
        ));
    }
    if !key.allow.user_agents.is_empty()
        && !key
            .allow
            .user_agents
            .iter()
            .any(|allowed| user_agent.contains(allowed.as_str()))
    {
        return Err(RelayError::new(
            ErrorKind::PermissionDenied,
            "client_not_allowed",
            "this API key may only be used from specific clients",
        ));
    }
    Ok(())
}

/// `*` matches any run of characters, `?` one character; everything else literally.
#[must_use]
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn globs() {
        assert!(glob_match("claude-*", "claude-sonnet-4-5"));
        assert!(glob_match("*sonnet*", "claude-sonnet-4-5"));
        assert!(glob_match("gpt-?", "gpt-5"));
        assert!(!glob_match("gpt-?", "gpt-55"));
        assert!(!glob_match("claude-*", "gpt-5"));
        assert!(glob_match("exact", "exact"));
        assert!(glob_match("*", ""));
    }
}
