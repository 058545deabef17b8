//! Stage 7 of the request path: the request-log row. A [`Recorder`] is created as soon as a request has passed
//! authentication and is finished exactly once — with the outcome, or, if the request is dropped
//! first (the client went away), from its `Drop` as `client_disconnect`. Rows go to the
//! batching writer; nothing here waits for a disk.

use std::sync::Arc;
use std::time::Instant;

use time::OffsetDateTime;

use super::Relay;
use crate::config::LiveChannel;
use crate::config::Snapshot;
use crate::domain::{Channel, ClientKey, ModelPrice};
use crate::limits::KeyPermit;
use crate::providers::Usage;
use crate::store::sqlite::RequestLog;

/// USD cost of `usage`, split by token kind.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Costs {
    pub input: f64,
    pub output: f64,
    pub cache_creation: f64,
    pub cache_read: f64,
}

impl Costs {
    #[must_use]
    pub fn total(&self) -> f64 {
        self.input + self.output + self.cache_creation + self.cache_read
    }
}

fn multiplier(value: Option<f64>) -> f64 {
    match value {
        Some(v) if v > 0.0 => v,
        _ => 1.0,
    }
}

/// Longest-prefix price (configured, else built-in) × the channel's multipliers (`_default` ×
/// the longest specific prefix).
#[must_use]
pub fn costs(live: &Snapshot, channel: Option<&Channel>, model: &str, usage: Usage) -> Costs {
    match live.pricing.price(&[model]) {
        Some(found) => costs_at(found.price, channel, model, usage),
        None => Costs::default(),
    }
}

/// `usage` of `model` at `price` × the channel's multipliers.
fn costs_at(price: &ModelPrice, channel: Option<&Channel>, model: &str, usage: Usage) -> Costs {
    let mut factors = [1.0f64; 4];
    if let Some(channel) = channel {
        let specific = channel
            .price_multipliers
            .iter()
            .filter(|(prefix, _)| {
                prefix.as_str() != "_default" && model.starts_with(prefix.as_str())
            })
            .max_by_key(|(prefix, _)| prefix.len())
            .map(|(_, m)| m);
        for m in channel
            .price_multipliers
            .get("_default")
            .into_iter()
            .chain(specific)
        {
            factors[0] *= multiplier(m.input_multiplier);
            factors[1] *= multiplier(m.output_multiplier);
            factors[2] *= multiplier(m.cache_creation_multiplier);
            factors[3] *= multiplier(m.cache_read_multiplier);
        }
    }
    #[expect(
        clippy::cast_precision_loss,
        reason = "token counts are far below 2^52"
    )]
    let per_million =
        |tokens: u64, price: f64, factor: f64| tokens as f64 * price * factor / 1_000_000.0;
    Costs {
        input: per_million(usage.input, price.input_price, factors[0]),
        output: per_million(usage.output, price.output_price, factors[1]),
        cache_creation: per_million(usage.cache_creation, price.cache_creation(), factors[2]),
        cache_read: per_million(usage.cache_read, price.cache_read(), factors[3]),
    }
}

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Error,
    Rejected,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Error => "error",
            Outcome::Rejected => "rejected",
        }
    }
}

pub struct Recorder {
    relay: Arc<Relay>,
    live: Arc<Snapshot>,
    /// The row being filled in; `None` once it went to the writer. Boxed so that the request
    /// futures, which carry the recorder from stage to stage, stay small.
    row: Option<Box<RequestLog>>,
    started: Instant,
    channel: Option<Arc<LiveChannel>>,
    usage: Usage,
    started_at: OffsetDateTime,
    key: Option<Arc<ClientKey>>,
    /// The key's concurrency slot: released when the row is written (or the request dropped).
    permit: Option<KeyPermit>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("id", &self.row.as_ref().map(|row| &row.id))
            .finish_non_exhaustive()
    }
}

impl Recorder {
    pub fn start(
        relay: Arc<Relay>,
        live: Arc<Snapshot>,
        endpoint: &'static str,
        client_id: &str,
    ) -> Self {
        // `status` is set when the row is finished.
        let started_at = crate::domain::now();
        let row = Box::new(RequestLog {
            id: crate::domain::new_id(),
            initial_time: crate::domain::format_time(started_at),
            endpoint: endpoint.into(),
            client_id: client_id.to_string(),
            ..RequestLog::default()
        });
        Self {
            relay,
            live,
            row: Some(row),
            started: Instant::now(),
            channel: None,
            usage: Usage::default(),
            started_at,
            key: None,
            permit: None,
        }
    }

    /// The admitted key and its concurrency slot; its usage is counted when the row is written.
    pub fn attach_key(&mut self, key: Arc<ClientKey>, permit: KeyPermit) {
        self.key = Some(key);
        self.permit = Some(permit);
    }

    pub fn set_request(&mut self, model: &str, stream: bool, session_id: Option<&str>) {
        let Some(row) = self.row.as_deref_mut() else {
            return;
        };
        row.model = model.to_string();
        row.stream = stream;
        row.session_id = session_id.unwrap_or_default().to_string();
    }

    pub fn set_channel(&mut self, channel: &Arc<LiveChannel>) {
        if self
            .channel
            .as_ref()
            .is_some_and(|c| Arc::ptr_eq(c, channel))
        {
            return;
        }
        let Some(row) = self.row.as_deref_mut() else {
            return;
        };
        let channel_ref = &channel.channel;
        row.channel_id.clone_from(&channel_ref.id);
        row.channel_name.clone_from(&channel_ref.name);
        row.provider.clone_from(&channel_ref.service_type);
        row.provider_name = host_of(&channel_ref.base_url);
        self.channel = Some(Arc::clone(channel));
    }

    pub fn set_failover_info(&mut self, info: String) {
        if let Some(row) = self.row.as_deref_mut() {
            row.failover_info = info;
        }
    }

    pub fn set_upstream_error(&mut self, text: String) {
        if let Some(row) = self.row.as_deref_mut() {
            row.upstream_error = text;
        }
    }

    pub fn set_usage(&mut self, usage: Usage, response_model: Option<&str>) {
        self.usage = usage;
        if let Some(model) = response_model
            && let Some(row) = self.row.as_deref_mut()
        {
            row.response_model = model.to_string();
        }
    }

    pub fn mark_first_token(&mut self) {
        if let Some(row) = self.row.as_deref_mut()
            && row.first_token_time.is_none()
        {
            row.first_token_time = Some(crate::domain::format_time(crate::domain::now()));
        }
    }

    /// Write the row (once).
    pub fn finish(mut self, outcome: Outcome, http_status: u16, error: &str) {
        self.complete(outcome.as_str(), http_status, error);
    }

    fn complete(&mut self, status: &'static str, http_status: u16, error: &str) {
        // Taking the row makes this run once.
        let Some(mut row) = self.row.take() else {
            return;
        };
        let elapsed = self.started.elapsed();
        row.status = status.into();
        row.http_status = i64::from(http_status);
        row.error = error.to_string();
        row.complete_time = Some(crate::domain::format_time(crate::domain::now()));
        row.duration_ms = i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX);
        let usage = self.usage;
        let to_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        row.input_tokens = to_i64(usage.input);
        row.output_tokens = to_i64(usage.output);
        row.cache_creation_input_tokens = to_i64(usage.cache_creation);
        row.cache_read_input_tokens = to_i64(usage.cache_read);
        row.total_tokens = to_i64(usage.total());
        // Priced by the model the upstream served when we know it and have a price for it;
        // a configured price for either name beats a built-in one.
        let found = self
            .live
            .pricing
            .price(&[row.response_model.as_str(), row.model.as_str()]);
        let channel = self.channel.as_ref().map(|c| &c.channel);
        let costs = found.map_or_else(Costs::default, |found| {
            costs_at(found.price, channel, found.model, usage)
        });
        // Tokens without a price: the cost is unknown, not 0. Flag the row, count it, and
        // warn once per model.
        row.unpriced = found.is_none() && usage.total() > 0;
        if row.unpriced && self.relay.metrics.unpriced(&row.model) {
            tracing::warn!(model = %row.model, served_model = %row.response_model, "no price for this model (none configured, none built in): its requests are logged with cost 0 and flagged unpriced; add a price with the admin API or pricing.json");
        }
        row.input_cost = costs.input;
        row.output_cost = costs.output;
        row.cache_creation_cost = costs.cache_creation;
        row.cache_read_cost = costs.cache_read;
        row.price = costs.total();
        if http_status < 400 {
            tracing::debug!(endpoint = %row.endpoint, status = %row.status, http_status, channel = %row.channel_name, model = %row.model, duration_ms = row.duration_ms, "request");
        } else {
            tracing::info!(endpoint = %row.endpoint, status = %row.status, http_status, channel = %row.channel_name, model = %row.model, duration_ms = row.duration_ms, error = %row.error, "request failed");
        }
        let limits = &self.relay.limits;
        if let Some(key) = &self.key {
            limits.record_key_usage(key, self.started_at, usage.total(), row.price);
        }
        if row.status == "success"
            && let Some(channel) = &self.channel
        {
            limits.record_quota_usage(
                &channel.channel,
                channel.quota.as_ref(),
                &row.model,
                self.started_at,
                row.price,
            );
        }
        drop(self.permit.take());
        let metrics = &self.relay.metrics;
        metrics.request(&row.endpoint, http_status, &row.channel_name, elapsed);
        metrics.tokens(
            usage.input,
            usage.output,
            usage.cache_creation,
            usage.cache_read,
            row.price,
        );
        self.relay.logs.submit(row);
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if self.row.is_some() && self.relay.drain_over.is_cancelled() {
            // Dropped by a shutdown whose drain time ran out, not by the client.
            self.complete("error", 503, super::respond::SHUTDOWN);
            return;
        }
        // Dropped unfinished: the client went away (axum drops the handler or the body).
        self.complete(
            "client_disconnect",
            499,
            "the client closed the connection before the response was complete",
        );
    }
}

fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split(['/', '?']).next().unwrap_or("").to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use crate::domain::channel::PriceMultiplier;
    use crate::domain::{ModelPrice, PricingTable};

    use super::*;

    fn price(input: f64, output: f64) -> ModelPrice {
        ModelPrice {
            input_price: input,
            output_price: output,
            ..ModelPrice::default()
        }
    }

    /// A snapshot whose pricing table is `prices` (USD per million tokens).
    fn priced(prices: &[(&str, ModelPrice)]) -> Snapshot {
        let prices: Vec<(String, ModelPrice)> = prices
            .iter()
            .map(|(model, price)| ((*model).to_string(), price.clone()))
            .collect();
        Snapshot {
            pricing: Arc::new(PricingTable::new(prices.iter().map(|(m, p)| (m, p)))),
            ..Snapshot::default()
        }
    }

    fn multiplier(input: f64, output: f64, creation: f64, read: f64) -> PriceMultiplier {
        PriceMultiplier {
            input_multiplier: Some(input),
            output_multiplier: Some(output),
            cache_creation_multiplier: Some(creation),
            cache_read_multiplier: Some(read),
        }
    }

    fn channel_with(multipliers: &[(&str, PriceMultiplier)]) -> Channel {
        let mut channel =
            crate::relay::test_support::channel("c1", crate::domain::Pool::Messages, "claude", 0);
        channel.price_multipliers = multipliers
            .iter()
            .map(|(prefix, m)| ((*prefix).to_string(), m.clone()))
            .collect();
        channel
    }

    const USAGE: Usage = Usage {
        input: 1_000_000,
        output: 200_000,
        cache_creation: 100_000,
        cache_read: 2_000_000,
    };

    #[track_caller]
    fn assert_costs(actual: Costs, expected: [f64; 4]) {
        let got = [
            actual.input,
            actual.output,
            actual.cache_creation,
            actual.cache_read,
        ];
        for (i, (a, e)) in got.iter().zip(expected).enumerate() {
            assert!((a - e).abs() < 1e-9, "part {i}: {got:?} != {expected:?}");
        }
        let total: f64 = expected.iter().sum();
        assert!(
            (actual.total() - total).abs() < 1e-9,
            "total {}",
            actual.total()
        );
    }

    #[test]
    fn tokens_times_the_price_per_million() {
        let live = priced(&[("claude-sonnet-4", price(3.0, 15.0))]);
        // cache writes at input × 1.25, reads at input × 0.1 unless priced
        assert_costs(
            costs(&live, None, "claude-sonnet-4-5-20250929", USAGE),
            [3.0, 3.0, 0.375, 0.6],
        );
        let explicit = priced(&[(
            "claude-sonnet-4",
            ModelPrice {
                cache_creation_price: Some(6.0),
                cache_read_price: Some(0.0),
                ..price(3.0, 15.0)
            },
        )]);
        assert_costs(
            costs(&explicit, None, "claude-sonnet-4", USAGE),
            [3.0, 3.0, 0.6, 0.0],
        );
        assert_costs(
            costs(&live, None, "claude-sonnet-4", Usage::default()),
            [0.0; 4],
        );
    }

    #[test]
    fn the_longest_price_prefix_wins() {
        let live = priced(&[
            ("claude", price(1.0, 1.0)),
            ("claude-opus", price(15.0, 75.0)),
            ("claude-opus-4-1", price(20.0, 80.0)),
        ]);
        let usage = Usage {
            input: 1_000_000,
            output: 1_000_000,
            ..Usage::default()
        };
        assert_costs(
            costs(&live, None, "claude-opus-4-20250514", usage),
            [15.0, 75.0, 0.0, 0.0],
        );
        assert_costs(
            costs(&live, None, "claude-opus-4-1", usage),
            [20.0, 80.0, 0.0, 0.0],
        );
        assert_costs(
            costs(&live, None, "claude-haiku-4-5", usage),
            [1.0, 1.0, 0.0, 0.0],
        );
    }

    #[test]
    fn an_unknown_model_costs_nothing() {
        let live = priced(&[("claude-sonnet-4", price(3.0, 15.0))]);
        let channel = channel_with(&[("_default", multiplier(2.0, 2.0, 2.0, 2.0))]);
        assert_eq!(
            costs(&live, Some(&channel), "gpt-4o", USAGE),
            Costs::default()
        );
        assert_eq!(
            costs(&Snapshot::default(), None, "claude-sonnet-4", USAGE),
            Costs::default()
        );
    }

    #[test]
    fn channel_multipliers_default_times_the_longest_specific_prefix() {
        let live = priced(&[("claude-sonnet-4", price(3.0, 15.0))]);
        let channel = channel_with(&[
            ("_default", multiplier(2.0, 1.0, 1.0, 0.5)),
            ("claude", multiplier(10.0, 10.0, 10.0, 10.0)),
            ("claude-sonnet", multiplier(1.5, 0.5, 4.0, 1.0)),
            ("gpt", multiplier(100.0, 100.0, 100.0, 100.0)),
        ]);
        // input 3 × 2 × 1.5, output 3 × 1 × 0.5, creation 0.375 × 1 × 4, read 0.6 × 0.5 × 1;
        // the shorter "claude" prefix and the unrelated "gpt" do not apply.
        assert_costs(
            costs(&live, Some(&channel), "claude-sonnet-4-5", USAGE),
            [9.0, 1.5, 1.5, 0.3],
        );
        // Only `_default` when no specific prefix matches.
        let only_default = channel_with(&[
            ("_default", multiplier(2.0, 3.0, 4.0, 5.0)),
            ("gpt", multiplier(100.0, 100.0, 100.0, 100.0)),
        ]);
        assert_costs(
            costs(&live, Some(&only_default), "claude-sonnet-4", USAGE),
            [6.0, 9.0, 1.5, 3.0],
        );
        // Only the specific one when there is no `_default`.
        let only_specific = channel_with(&[("claude-sonnet-4", multiplier(0.5, 0.5, 0.5, 0.5))]);
        assert_costs(
            costs(&live, Some(&only_specific), "claude-sonnet-4", USAGE),
            [1.5, 1.5, 0.1875, 0.3],
        );
    }

    #[test]
    fn unset_zero_and_negative_multipliers_count_as_one() {
        let live = priced(&[("claude-sonnet-4", price(3.0, 15.0))]);
        let channel = channel_with(&[(
            "_default",
            PriceMultiplier {
                input_multiplier: None,
                output_multiplier: Some(0.0),
                cache_creation_multiplier: Some(-2.0),
                cache_read_multiplier: Some(3.0),
            },
        )]);
        assert_costs(
            costs(&live, Some(&channel), "claude-sonnet-4", USAGE),
            [3.0, 3.0, 0.375, 1.8],
        );
    }
}
