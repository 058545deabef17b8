//! Usage counters shared by the instances of a cluster: what budgets, quotas and rolling
//! windows count, per bucket and per instance (`usage_counter`, migration 0004).
//!
//! Each instance publishes its **own** rows with **absolute** totals ([`Counters::publish`]):
//! the upsert is idempotent (publishing the same figures twice changes nothing, a retry after a
//! lost answer is harmless) and no row is ever written by two instances, so publishers never
//! wait on each other's row locks nor deadlock, however many there are. What the rest of the
//! cluster used is the sum of the other instances' rows ([`Counters::others`]); an instance adds
//! it to its own in-memory figures.
//!
//! The instance id must stay the same across restarts of one data dir: after a restart the
//! instance rebuilds its counters from its own request log and publishes them again under
//! that id; under a new id its old rows would count twice.

use time::OffsetDateTime;

use super::{PgStore, pg_error};
use crate::store::StoreError;

/// What a bucket counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// A key's requests, tokens and cost in one minute (`bucket` = unix minute): its rolling
    /// windows.
    KeyMinute,
    /// A key's cost on one UTC day (`bucket` = unix day).
    KeyDay,
    /// A key's cost ever (`bucket` = 0).
    KeyTotal,
    /// A channel's quota usage in one fixed period (`bucket` = period start, unix seconds):
    /// `requests` for a requests quota, `cost_micros` for a credit quota.
    ChannelPeriod,
    /// A channel's rolling quota usage in one minute (`bucket` = unix minute), in the same
    /// columns as [`Scope::ChannelPeriod`].
    ChannelMinute,
}

impl Scope {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::KeyMinute => "key_minute",
            Scope::KeyDay => "key_day",
            Scope::KeyTotal => "key_total",
            Scope::ChannelPeriod => "channel_period",
            Scope::ChannelMinute => "channel_minute",
        }
    }

    /// `None` for a scope this version does not know (written by a newer relaybox): skipped.
    #[must_use]
    pub fn parse(text: &str) -> Option<Scope> {
        Some(match text {
            "key_minute" => Scope::KeyMinute,
            "key_day" => Scope::KeyDay,
            "key_total" => Scope::KeyTotal,
            "channel_period" => Scope::ChannelPeriod,
            "channel_minute" => Scope::ChannelMinute,
            _ => return None,
        })
    }

    /// Minute buckets: the ones [`Counters::others`] folds into hours when they are old.
    #[must_use]
    pub fn is_minutes(self) -> bool {
        matches!(self, Scope::KeyMinute | Scope::ChannelMinute)
    }
}

/// One bucket's figures: an instance's own (published), or the sum of the others (fetched).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterRow {
    pub scope: Scope,
    /// The key id or channel id.
    pub subject: String,
    pub bucket: i64,
    pub requests: i64,
    pub tokens: i64,
    pub cost_micros: i64,
    /// Unix seconds when the bucket ends; `None` when it never does.
    pub ends_at: Option<i64>,
}

/// Minute buckets younger than this come back one by one; older ones are summed per hour.
pub const FINE_SECONDS: i64 = 2 * 3600;

/// Rows per upsert statement.
const CHUNK: usize = 2000;

/// The counter queries of a [`PgStore`].
#[derive(Debug, Clone, Copy)]
pub struct Counters<'a> {
    store: &'a PgStore,
}

impl PgStore {
    /// The shared usage counters.
    #[must_use]
    pub fn counters(&self) -> Counters<'_> {
        Counters { store: self }
    }
}

impl Counters<'_> {
    /// Upsert `instance_id`'s own rows (absolute values) in one transaction.
    pub async fn publish(&self, instance_id: &str, rows: &[CounterRow]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut client = self.store.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        let statement = tx
            .prepare(
                "INSERT INTO usage_counter
                     (scope, subject, bucket, instance_id, requests, tokens, cost_micros, ends_at, updated_at)
                 SELECT scope, subject, bucket, $1, requests, tokens, cost_micros, ends_at, now()
                 FROM unnest($2::text[], $3::text[], $4::int8[], $5::int8[], $6::int8[], $7::int8[], $8::int8[])
                      AS r(scope, subject, bucket, requests, tokens, cost_micros, ends_at)
                 ON CONFLICT (scope, subject, bucket, instance_id) DO UPDATE SET
                     requests = excluded.requests, tokens = excluded.tokens,
                     cost_micros = excluded.cost_micros, ends_at = excluded.ends_at,
                     updated_at = excluded.updated_at",
            )
            .await
            .map_err(pg_error)?;
        for chunk in rows.chunks(CHUNK) {
            let scopes: Vec<&str> = chunk.iter().map(|r| r.scope.as_str()).collect();
            let subjects: Vec<&str> = chunk.iter().map(|r| r.subject.as_str()).collect();
            let buckets: Vec<i64> = chunk.iter().map(|r| r.bucket).collect();
            let requests: Vec<i64> = chunk.iter().map(|r| r.requests).collect();
            let tokens: Vec<i64> = chunk.iter().map(|r| r.tokens).collect();
            let costs: Vec<i64> = chunk.iter().map(|r| r.cost_micros).collect();
            let ends: Vec<Option<i64>> = chunk.iter().map(|r| r.ends_at).collect();
            tx.execute(
                &statement,
                &[
                    &instance_id,
                    &scopes,
                    &subjects,
                    &buckets,
                    &requests,
                    &tokens,
                    &costs,
                    &ends,
                ],
            )
            .await
            .map_err(pg_error)?;
        }
        tx.commit().await.map_err(pg_error)
    }

    /// What every other instance used, summed per (scope, subject, bucket), for the buckets
    /// that end after `since` (or never). Minute buckets older than [`FINE_SECONDS`] before
    /// `now` come back summed per hour, as the hour's last minute: such a sum leaves a rolling
    /// window only when all of its hour has (never early, up to an hour late), and a long window
    /// costs one row per hour instead of sixty. Ordered by scope, subject and bucket.
    pub async fn others(
        &self,
        instance_id: &str,
        since: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<Vec<CounterRow>, StoreError> {
        let client = self.store.client().await?;
        let fine_from = (now.unix_timestamp() - FINE_SECONDS).div_euclid(60);
        let rows = client
            .query(
                "SELECT scope, subject, b, sum(requests)::int8, sum(tokens)::int8,
                        sum(cost_micros)::int8, max(ends_at)
                 FROM (SELECT scope, subject, requests, tokens, cost_micros,
                              CASE WHEN scope IN ('key_minute', 'channel_minute') AND bucket < $3
                                   THEN (bucket / 60) * 60 + 59 ELSE bucket END AS b,
                              CASE WHEN scope IN ('key_minute', 'channel_minute') AND bucket < $3
                                   THEN ((bucket / 60) + 1) * 3600 ELSE ends_at END AS ends_at
                       FROM usage_counter
                       WHERE instance_id <> $1 AND (ends_at IS NULL OR ends_at > $2)) AS c
                 GROUP BY scope, subject, b
                 ORDER BY scope, subject, b",
                &[&instance_id, &since.unix_timestamp(), &fine_from],
            )
            .await
            .map_err(pg_error)?;
        Ok(rows
            .iter()
            .filter_map(|row| {
                Some(CounterRow {
                    scope: Scope::parse(row.get::<_, &str>(0))?,
                    subject: row.get(1),
                    bucket: row.get(2),
                    requests: row.get(3),
                    tokens: row.get(4),
                    cost_micros: row.get(5),
                    ends_at: row.get(6),
                })
            })
            .collect())
    }

    /// Delete every row whose bucket ended before `before`; returns how many. For the cluster's
    /// singleton jobs: call it with `now` minus the longest window any limit has
    /// ([`crate::limits::Limiter::counter_retention`]). Totals and periods that never end stay.
    pub async fn prune_before(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let client = self.store.client().await?;
        client
            .execute(
                "DELETE FROM usage_counter WHERE ends_at < $1",
                &[&before.unix_timestamp()],
            )
            .await
            .map_err(pg_error)
    }
}
