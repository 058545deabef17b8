//! Browser sessions: a random cookie value maps to the admin key that logged in and a CSRF
//! token. Kept in memory only (a restart logs everyone out); the map is keyed by the SHA-256
//! of the cookie value, so the map itself never holds a usable cookie.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use sha2::{Digest as _, Sha256};

use crate::config::snapshot::Snapshot;
use crate::crypto::digests_equal;

/// The cookie that carries a session.
pub const COOKIE_NAME: &str = "relaybox_session";
/// Sessions kept at most; past it the least recently used goes (only admin-key holders can
/// create sessions, so this only bounds a misbehaving script).
const MAX_SESSIONS: usize = 1_000;

/// How long a session lives: `idle` without use, `max` after login at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    pub idle: Duration,
    pub max: Duration,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self {
            idle: Duration::from_secs(12 * 3600),
            max: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// What a live session tells its holder (the body of `POST`/`GET /admin/session`).
#[derive(Debug, Clone)]
pub struct SessionView {
    pub csrf_token: String,
    pub key_id: String,
    pub key_name: String,
    /// Time left until it ends if unused (the sooner of idle and maximum lifetime).
    pub remaining: Duration,
}

#[derive(Debug)]
struct Session {
    key_id: String,
    csrf_token: String,
    created: Instant,
    last_used: Instant,
}

impl Session {
    fn end(&self, policy: SessionPolicy) -> Instant {
        (self.last_used + policy.idle).min(self.created + policy.max)
    }
}

/// Why a cookie does not open a session.
#[derive(Debug, PartialEq, Eq)]
pub enum SessionRefused {
    /// Unknown, expired, or its key no longer grants admin (the session is gone now).
    NotLive,
    /// Live, but the change carried no or a wrong `X-CSRF-Token`.
    Csrf,
}

#[derive(Debug, Default)]
pub struct Sessions {
    policy: SessionPolicy,
    by_digest: Mutex<HashMap<[u8; 32], Session>>,
}

impl Sessions {
    #[must_use]
    pub fn new(policy: SessionPolicy) -> Self {
        Self {
            policy,
            by_digest: Mutex::default(),
        }
    }

    #[must_use]
    pub fn policy(&self) -> SessionPolicy {
        self.policy
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Session>> {
        self.by_digest
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A new session for the admin key `key_id`: the cookie value and what the holder sees.
    pub fn create(
        &self,
        key_id: &str,
        key_name: &str,
        now: Instant,
    ) -> Result<(String, SessionView), getrandom::Error> {
        let cookie = random_token()?;
        let csrf_token = random_token()?;
        let session = Session {
            key_id: key_id.to_owned(),
            csrf_token: csrf_token.clone(),
            created: now,
            last_used: now,
        };
        let view = SessionView {
            csrf_token,
            key_id: key_id.to_owned(),
            key_name: key_name.to_owned(),
            remaining: session.end(self.policy).saturating_duration_since(now),
        };
        let mut map = self.lock();
        prune(&mut map, self.policy, now);
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, s)| s.last_used)
                .map(|(digest, _)| *digest)
        {
            map.remove(&oldest);
        }
        map.insert(digest(&cookie), session);
        Ok((cookie, view))
    }

    /// The live session of `cookie`, touched (its idle time starts again). With `csrf` given
    /// (a change), the token must equal the session's. A session past its time, or whose key
    /// no longer grants admin in `snapshot`, is removed.
    pub fn use_session(
        &self,
        cookie: &str,
        csrf: Option<Option<&str>>,
        snapshot: &Snapshot,
        now: Instant,
    ) -> Result<SessionView, SessionRefused> {
        let digest = digest(cookie);
        let mut map = self.lock();
        prune(&mut map, self.policy, now);
        let session = map.get_mut(&digest).ok_or(SessionRefused::NotLive)?;
        let Some(key) = snapshot
            .state
            .keys
            .get(session.key_id.as_str())
            .filter(|key| key.grants_admin(crate::domain::now()))
        else {
            map.remove(&digest);
            return Err(SessionRefused::NotLive);
        };
        if let Some(presented) = csrf
            && !presented.is_some_and(|token| digests_equal(token, &session.csrf_token))
        {
            return Err(SessionRefused::Csrf);
        }
        session.last_used = now;
        Ok(SessionView {
            csrf_token: session.csrf_token.clone(),
            key_id: key.id.clone(),
            key_name: key.name.clone(),
            remaining: session.end(self.policy).saturating_duration_since(now),
        })
    }

    /// End the session of `cookie` (no-op when there is none).
    pub fn end(&self, cookie: &str) {
        self.lock().remove(&digest(cookie));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

fn prune(map: &mut HashMap<[u8; 32], Session>, policy: SessionPolicy, now: Instant) {
    map.retain(|_, session| now < session.end(policy));
}

fn digest(cookie: &str) -> [u8; 32] {
    Sha256::digest(cookie.as_bytes()).into()
}

/// 32 random bytes, base64url without padding (43 characters).
fn random_token() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// The value of the session cookie among a request's `Cookie` headers.
pub fn cookie_value(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == COOKIE_NAME && !value.is_empty()).then_some(value)
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly")]

    use super::*;

    #[test]
    fn cookies_are_found_among_others() {
        let mut headers = axum::http::HeaderMap::new();
        headers.append("cookie", "a=1; relaybox_session=abc; b=2".parse().unwrap());
        assert_eq!(cookie_value(&headers), Some("abc"));
        headers.clear();
        headers.append("cookie", "relaybox_session=".parse().unwrap());
        assert_eq!(cookie_value(&headers), None);
    }

    #[test]
    fn expired_sessions_are_pruned_and_tokens_are_random() {
        let sessions = Sessions::new(SessionPolicy {
            idle: Duration::from_secs(10),
            max: Duration::from_secs(100),
        });
        let t0 = Instant::now();
        let (a, view_a) = sessions.create("k1", "admin", t0).unwrap();
        let (b, view_b) = sessions.create("k1", "admin", t0).unwrap();
        assert_ne!(a, b);
        assert_ne!(view_a.csrf_token, view_b.csrf_token);
        assert_eq!(a.len(), 43);
        assert_eq!(view_a.remaining, Duration::from_secs(10));
        sessions
            .create("k1", "admin", t0 + Duration::from_secs(11))
            .unwrap();
        assert_eq!(sessions.len(), 1, "the two idle ones were pruned");
    }
}
