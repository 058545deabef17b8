//! The cluster's instances: each upserts its row (`instances`) on every heartbeat, with what the
//! others and the admin API want to know about it. Liveness and ages use PostgreSQL's `now()`;
//! each instance's clock is only compared with it (the clock skew).

use std::time::{Duration, Instant};

use time::OffsetDateTime;

use super::leases::{FencedError, Grant};
use super::{PgStore, pg_error};
use crate::limits::Clock;
use crate::store::StoreError;

/// How recently an instance must have been seen to count as live.
pub const LIVE_WITHIN: Duration = Duration::from_secs(15);

/// What one heartbeat says about its instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Beat {
    pub instance_id: String,
    pub hostname: String,
    pub version: String,
    /// The address it serves on, as it reports it.
    pub listen: String,
    /// The first beat of this process: `started_at` becomes now.
    pub first: bool,
    pub applied_rev: u64,
    pub log_backlog_rows: u64,
    pub log_backlog_age: Duration,
    /// Measured by an earlier beat (`None` until then).
    pub clock_skew_ms: Option<i64>,
    /// How long its config copy has been stale (`None`: fresh). Sent as a duration, so the
    /// stored time is PostgreSQL's, not the instance's possibly skewed clock.
    pub config_stale_for: Option<Duration>,
}

/// This instance's clock compared with PostgreSQL's, around one round trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockSkew {
    /// The instance's clock minus PostgreSQL's `now()` (positive: the instance is ahead).
    pub millis: i64,
    /// The round trip it was measured over; the estimate is good to about half of it.
    pub round_trip: Duration,
}

/// An instance as `GET /admin/api/cluster` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceInfo {
    pub instance_id: String,
    pub hostname: String,
    pub version: String,
    pub listen: String,
    /// RFC 3339, PostgreSQL's clock.
    pub started_at: String,
    pub last_seen: String,
    /// How long ago it was last seen, by PostgreSQL's clock.
    pub last_seen_ms_ago: u64,
    /// Seen within the live window and not stopped.
    pub live: bool,
    /// Stopped cleanly (it said goodbye).
    pub stopped: bool,
    pub applied_rev: u64,
    pub log_backlog_rows: u64,
    pub log_backlog_age_seconds: u64,
    pub clock_skew_ms: Option<i64>,
    pub config_stale_since: Option<String>,
}

fn as_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn to_u64(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// Microseconds since the Unix epoch as RFC 3339.
fn time_text(micros: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000)
        .map(crate::domain::format_time)
        .unwrap_or_default()
}

/// A timestamp column as microseconds since the Unix epoch.
macro_rules! micros {
    ($column:literal) => {
        concat!("(extract(epoch FROM ", $column, ") * 1000000)::bigint")
    };
}

impl PgStore {
    /// Upsert this instance's row (every time PostgreSQL's `now()`), and measure the skew of
    /// `clock` against PostgreSQL's clock around the statement's round trip.
    pub async fn heartbeat(&self, beat: &Beat, clock: &dyn Clock) -> Result<ClockSkew, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(concat!(
                "INSERT INTO instances AS i (instance_id, hostname, version, listen, started_at,
                     last_seen, stopped_at, applied_rev, log_backlog_rows, log_backlog_age_seconds,
                     clock_skew_ms, config_stale_since)
                 VALUES ($1, $2, $3, $4, now(), now(), NULL, $5, $6, $7, $8,
                     now() - $9::bigint * interval '1 millisecond')
                 ON CONFLICT (instance_id) DO UPDATE SET
                     hostname = excluded.hostname, version = excluded.version,
                     listen = excluded.listen,
                     started_at = CASE WHEN $10 THEN now() ELSE i.started_at END,
                     last_seen = now(), stopped_at = NULL,
                     applied_rev = excluded.applied_rev,
                     log_backlog_rows = excluded.log_backlog_rows,
                     log_backlog_age_seconds = excluded.log_backlog_age_seconds,
                     clock_skew_ms = excluded.clock_skew_ms,
                     config_stale_since = excluded.config_stale_since
                 RETURNING ",
                micros!("now()")
            ))
            .await
            .map_err(pg_error)?;
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 10] = [
            &beat.instance_id,
            &beat.hostname,
            &beat.version,
            &beat.listen,
            &as_i64(beat.applied_rev),
            &as_i64(beat.log_backlog_rows),
            &as_i64(beat.log_backlog_age.as_secs()),
            &beat.clock_skew_ms,
            &beat.config_stale_for.map(millis),
            &beat.first,
        ];
        let sent = Instant::now();
        let sent_at = clock.now();
        let row = client
            .query_one(&statement, &params)
            .await
            .map_err(pg_error)?;
        let round_trip = sent.elapsed();
        let postgres_now: i64 = row.get(0);
        // The statement ran about half-way through the round trip.
        let midway = sent_at + round_trip / 2;
        let instance_now = i64::try_from(midway.unix_timestamp_nanos() / 1000).unwrap_or(0);
        Ok(ClockSkew {
            millis: (instance_now - postgres_now) / 1000,
            round_trip,
        })
    }

    /// Say goodbye: the row stays (for the admin API) but no longer counts as live.
    pub async fn mark_stopped(&self, instance_id: &str) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "UPDATE instances SET stopped_at = now() WHERE instance_id = $1",
                &[&instance_id],
            )
            .await
            .map_err(pg_error)?;
        Ok(())
    }

    /// How many instances were seen within `within` and have not stopped.
    pub async fn live_instances(&self, within: Duration) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT count(*) FROM instances
                 WHERE stopped_at IS NULL AND last_seen > now() - $1::bigint * interval '1 millisecond'",
                &[&millis(within)],
            )
            .await
            .map_err(pg_error)?;
        Ok(to_u64(row.get(0)))
    }

    /// Every instance, by id; `live` by `live_within` (see [`LIVE_WITHIN`]).
    pub async fn list_instances(
        &self,
        live_within: Duration,
    ) -> Result<Vec<InstanceInfo>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                concat!(
                    "SELECT instance_id, hostname, version, listen, ",
                    micros!("started_at"),
                    ", ",
                    micros!("last_seen"),
                    ", greatest(0, (extract(epoch FROM now() - last_seen) * 1000)::bigint),
                     stopped_at IS NOT NULL, applied_rev, log_backlog_rows,
                     log_backlog_age_seconds, clock_skew_ms, ",
                    micros!("config_stale_since"),
                    " FROM instances ORDER BY instance_id"
                ),
                &[],
            )
            .await
            .map_err(pg_error)?;
        let live_ms = u64::try_from(live_within.as_millis()).unwrap_or(u64::MAX);
        Ok(rows
            .iter()
            .map(|row| {
                let last_seen_ms_ago = to_u64(row.get(6));
                let stopped: bool = row.get(7);
                InstanceInfo {
                    instance_id: row.get(0),
                    hostname: row.get(1),
                    version: row.get(2),
                    listen: row.get(3),
                    started_at: time_text(row.get(4)),
                    last_seen: time_text(row.get(5)),
                    last_seen_ms_ago,
                    live: !stopped && last_seen_ms_ago < live_ms,
                    stopped,
                    applied_rev: to_u64(row.get(8)),
                    log_backlog_rows: to_u64(row.get(9)),
                    log_backlog_age_seconds: to_u64(row.get(10)),
                    clock_skew_ms: row.get(11),
                    config_stale_since: row.get::<_, Option<i64>>(12).map(time_text),
                }
            })
            .collect())
    }

    /// Remove the rows of instances not seen for longer than `older_than` (a singleton job's
    /// work, fenced by `grant`). Returns how many went.
    pub async fn remove_gone_instances(
        &self,
        grant: &Grant,
        older_than: Duration,
    ) -> Result<u64, FencedError> {
        let older_than = millis(older_than);
        self.fenced(grant, move |tx| {
            Box::pin(async move {
                let removed = tx
                    .execute(
                        "DELETE FROM instances
                         WHERE last_seen < now() - $1::bigint * interval '1 millisecond'",
                        &[&older_than],
                    )
                    .await?;
                Ok(removed)
            })
        })
        .await
    }
}
