//! Sticky sessions: a conversation stays on the channel that served it first.

use super::{Limiter, lock};

impl Limiter {
    /// The channel this conversation is bound to, if the binding is still fresh.
    #[must_use]
    pub fn sticky_channel(&self, session: &str) -> Option<String> {
        let t = self.clock.now().unix_timestamp();
        lock(&self.sessions)
            .get(session)
            .filter(|(_, expires)| *expires > t)
            .map(|(id, _)| id.clone())
    }

    /// Bind (or refresh) a conversation to a channel for `ttl_seconds`.
    pub fn stick(&self, session: &str, channel_id: &str, ttl_seconds: u64) {
        let t = self.clock.now().unix_timestamp();
        let expires = t + i64::try_from(ttl_seconds).unwrap_or(i64::MAX / 2);
        let mut sessions = lock(&self.sessions);
        // Most requests continue a conversation already bound here: refresh it in place.
        if let Some((bound, at)) = sessions.get_mut(session) {
            if bound != channel_id {
                channel_id.clone_into(bound);
            }
            *at = expires;
            return;
        }
        if sessions.len() > 10_000 {
            sessions.retain(|_, (_, expires)| *expires > t);
        }
        sessions.insert(session.to_string(), (channel_id.to_string(), expires));
    }
}
