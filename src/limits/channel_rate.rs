//! A channel's `rateLimitRpm`, with the optional bounded queue that waits for a slot.

use std::time::Duration;

use super::{Limiter, RPM_WINDOW, channel_state, local_share, lock};
use crate::domain::Channel;

impl Limiter {
    /// Take a slot of the channel's `rateLimitRpm`; with `queueEnabled`, wait for one (up to
    /// `queueTimeout`, at most `max_queue` waiting). `Err(reason)` when none can be had. In a
    /// cluster the slots are this instance's share of `rateLimitRpm`.
    pub async fn acquire_channel_slot(
        &self,
        channel: &Channel,
        max_queue: u32,
    ) -> Result<(), String> {
        let rpm = channel.rate_limit_rpm;
        if rpm == 0 {
            return Ok(());
        }
        let instances = self.live_instances();
        let allowed = local_share(rpm, instances);
        // Only a refusal needs the words.
        let rpm_text = || {
            if instances > 1 {
                format!(
                    "{rpm} requests per minute across {instances} instances ({allowed} on this one)"
                )
            } else {
                format!("{rpm} requests per minute")
            }
        };
        let timeout = Duration::from_secs(channel.queue_timeout.unwrap_or(60));
        let started = std::time::Instant::now();
        let mut queued = false;
        let result = loop {
            let wait = {
                let t = self.clock.now().unix_timestamp();
                let mut channels = lock(&self.channels);
                let state = channel_state(&mut channels, &channel.id);
                if state.recent.sum(t, RPM_WINDOW) < f64::from(allowed) {
                    state.recent.add(t, 1.0);
                    state.recent.prune(t, RPM_WINDOW);
                    if queued {
                        state.queued = state.queued.saturating_sub(1);
                    }
                    return Ok(());
                }
                if !channel.queue_enabled {
                    break Err(format!("at its rate limit of {}", rpm_text()));
                }
                if !queued {
                    if state.queued >= max_queue {
                        break Err(format!(
                            "at its rate limit of {} and its queue is full",
                            rpm_text()
                        ));
                    }
                    state.queued += 1;
                    queued = true;
                }
                state.recent.seconds_until_oldest_expires(t, RPM_WINDOW)
            };
            if started.elapsed() >= timeout {
                break Err(format!(
                    "at its rate limit of {} (waited {} s in its queue)",
                    rpm_text(),
                    timeout.as_secs()
                ));
            }
            // Short naps: the slot is re-checked against the clock, which tests control.
            let nap = Duration::from_secs(u64::try_from(wait).unwrap_or(1))
                .min(Duration::from_millis(50));
            tokio::time::sleep(nap).await;
        };
        if queued && let Some(state) = lock(&self.channels).get_mut(&channel.id) {
            state.queued = state.queued.saturating_sub(1);
        }
        result
    }
}
