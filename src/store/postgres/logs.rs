//! The cluster's `request_log`: every instance's rows, shipped from its local outbox
//! ([`crate::store::sqlite::outbox`]), partitioned by calendar month (UTC) of `initial_time`.
//!
//! A batch is one binary `COPY` into `request_log`: one statement, streamed, its own
//! transaction. When a row is there already (a batch resent after a crash between this commit
//! and the local cursor update) the COPY fails as a whole, changing nothing, and the batch goes
//! in again as one `INSERT … SELECT FROM unnest(…) ON CONFLICT (id, initial_time) DO NOTHING`
//! (each column one binary array), which skips the rows already there.
//!
//! There is no default partition, so a row needs its month's partition:
//! [`PgStore::ensure_log_partitions`] creates the coming months ahead, and
//! [`PgStore::insert_log_batch`] creates the month of any row it ships (old backlog, a clock
//! far off) before inserting, so no row is ever refused for its date.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::sync::LazyLock;
use std::time::SystemTime;

use time::OffsetDateTime;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{ToSql, Type};

use super::{PgStore, pg_error};
use crate::store::StoreError;
use crate::store::sqlite::outbox::OutboxRow;

/// Serialises partition creation across instances for the length of one transaction (two
/// instances creating the same month would otherwise race in the catalog).
const PARTITION_LOCK: i64 = 0x7262_6c6f_6770_6172; // "rblogpar"

/// A calendar month (UTC): one partition of `request_log`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month {
    pub year: i32,
    pub month: time::Month,
}

impl Month {
    #[must_use]
    pub fn of(at: OffsetDateTime) -> Self {
        let at = at.to_offset(time::UtcOffset::UTC);
        Self {
            year: at.year(),
            month: at.month(),
        }
    }

    #[must_use]
    pub fn next(self) -> Self {
        match self.month {
            time::Month::December => Self {
                year: self.year + 1,
                month: time::Month::January,
            },
            month => Self {
                year: self.year,
                month: month.next(),
            },
        }
    }

    /// `request_log_y2026m01`.
    #[must_use]
    pub fn partition_name(self) -> String {
        format!("request_log_y{:04}m{:02}", self.year, u8::from(self.month))
    }

    /// `2026-01-01 00:00:00+00`, the first instant of the month.
    fn start(self) -> String {
        format!(
            "{:04}-{:02}-01 00:00:00+00",
            self.year,
            u8::from(self.month)
        )
    }
}

/// Months known to have their partition (what this process created or found), so a batch
/// asks PostgreSQL only about new months. A partition dropped meanwhile is noticed by the
/// insert (no partition for a row) and created again.
#[derive(Debug, Default, Clone)]
pub struct KnownPartitions(BTreeSet<Month>);

impl KnownPartitions {
    #[must_use]
    pub fn contains(&self, month: Month) -> bool {
        self.0.contains(&month)
    }
}

/// `(column, PostgreSQL array type)` in the order [`Columns::params`] binds them after the
/// instance id (`$1`).
const BATCH_COLUMNS: [(&str, &str); 32] = [
    ("id", "text"),
    ("initial_time", "timestamptz"),
    ("instance_seq", "int8"),
    ("status", "text"),
    ("first_token_time", "timestamptz"),
    ("complete_time", "timestamptz"),
    ("duration_ms", "int8"),
    ("provider", "text"),
    ("provider_name", "text"),
    ("model", "text"),
    ("response_model", "text"),
    ("input_tokens", "int8"),
    ("output_tokens", "int8"),
    ("cache_creation_input_tokens", "int8"),
    ("cache_read_input_tokens", "int8"),
    ("total_tokens", "int8"),
    ("price", "float8"),
    ("input_cost", "float8"),
    ("output_cost", "float8"),
    ("cache_creation_cost", "float8"),
    ("cache_read_cost", "float8"),
    ("http_status", "int4"),
    ("stream", "bool"),
    ("channel_id", "text"),
    ("channel_name", "text"),
    ("endpoint", "text"),
    ("client_id", "text"),
    ("session_id", "text"),
    ("error", "text"),
    ("upstream_error", "text"),
    ("failover_info", "text"),
    ("unpriced", "bool"),
];

/// The batch as new rows, in binary `COPY` format: the usual case, and the cheapest for
/// PostgreSQL (measured by examples/log_shipping_bench.rs: 1.4 to 1.7 times the rows per second
/// of the `unnest` statement). COPY cannot skip a row that is there already: it then fails as a
/// whole, changing nothing.
static COPY_BATCH: LazyLock<String> = LazyLock::new(|| {
    let names: Vec<&str> = BATCH_COLUMNS.iter().map(|(name, _)| *name).collect();
    format!(
        "COPY request_log (instance_id, {}) FROM STDIN (FORMAT binary)",
        names.join(", ")
    )
});

/// The batch with rows already there skipped, one array per column: after a unique violation
/// (a batch resent after a crash, or an id two instances imported alike).
static INSERT_BATCH_SKIPPING_KNOWN: LazyLock<String> = LazyLock::new(|| {
    let names: Vec<&str> = BATCH_COLUMNS.iter().map(|(name, _)| *name).collect();
    let arrays: Vec<String> = BATCH_COLUMNS
        .iter()
        .enumerate()
        .map(|(i, (_, ty))| format!("${}::{ty}[]", i + 2))
        .collect();
    format!(
        "INSERT INTO request_log (instance_id, {names})
         SELECT $1::text, {names} FROM unnest({arrays}) AS r ({names})
         ON CONFLICT (id, initial_time) DO NOTHING",
        names = names.join(", "),
        arrays = arrays.join(", "),
    )
});

/// The types of the COPY's columns: the instance id, then [`BATCH_COLUMNS`].
fn copy_types() -> Vec<Type> {
    std::iter::once(Type::TEXT)
        .chain(BATCH_COLUMNS.iter().map(|(_, ty)| match *ty {
            "timestamptz" => Type::TIMESTAMPTZ,
            "int8" => Type::INT8,
            "int4" => Type::INT4,
            "float8" => Type::FLOAT8,
            "bool" => Type::BOOL,
            _ => Type::TEXT,
        }))
        .collect()
}

/// How a batch goes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Write {
    Copy,
    SkippingKnown,
}

impl PgStore {
    /// Create the partitions of the month of `now` and of the `months_ahead` months after it
    /// where missing. Idempotent; safe while other instances do the same. Returns the names of
    /// the partitions created.
    pub async fn ensure_log_partitions(
        &self,
        now: OffsetDateTime,
        months_ahead: u32,
    ) -> Result<Vec<String>, StoreError> {
        let mut months = vec![Month::of(now)];
        for _ in 0..months_ahead {
            let last = months[months.len() - 1];
            months.push(last.next());
        }
        self.create_partitions(&months).await
    }

    /// Insert `rows` of instance `instance_id` in one statement (its own transaction: committed
    /// when this returns `Ok`). Rows already there (same id and time) are skipped; returns how
    /// many were new. Creates the partition of any month not in `known` first.
    pub async fn insert_log_batch(
        &self,
        instance_id: &str,
        rows: &[OutboxRow],
        known: &mut KnownPartitions,
    ) -> Result<u64, StoreError> {
        self.write_log_batch(instance_id, rows, known, Write::Copy)
            .await
    }

    /// [`PgStore::insert_log_batch`] as the statement that skips rows already there, without
    /// trying COPY first (what a resent batch ends up with; the benchmark compares the two).
    pub async fn insert_log_batch_skipping_known(
        &self,
        instance_id: &str,
        rows: &[OutboxRow],
        known: &mut KnownPartitions,
    ) -> Result<u64, StoreError> {
        self.write_log_batch(instance_id, rows, known, Write::SkippingKnown)
            .await
    }

    async fn write_log_batch(
        &self,
        instance_id: &str,
        rows: &[OutboxRow],
        known: &mut KnownPartitions,
        mut write: Write,
    ) -> Result<u64, StoreError> {
        if rows.is_empty() {
            return Ok(0);
        }
        let columns = Columns::of(rows);
        let missing: Vec<Month> = columns
            .months
            .iter()
            .copied()
            .filter(|month| !known.contains(*month))
            .collect();
        if !missing.is_empty() {
            self.create_partitions(&missing).await?;
            known.0.extend(missing);
        }
        let mut partitions_created = false;
        loop {
            let mut client = self.client().await?;
            let outcome = match write {
                Write::Copy => copy_rows(&mut client, instance_id, &columns).await,
                Write::SkippingKnown => {
                    let statement = client
                        .prepare_cached(&INSERT_BATCH_SKIPPING_KNOWN)
                        .await
                        .map_err(pg_error)?;
                    client
                        .execute(&statement, &columns.params(&instance_id))
                        .await
                }
            };
            drop(client);
            let err = match outcome {
                Ok(inserted) => return Ok(inserted),
                Err(err) => err,
            };
            match err.code() {
                Some(code) if *code == SqlState::UNIQUE_VIOLATION && write == Write::Copy => {
                    write = Write::SkippingKnown;
                }
                // A partition was dropped since this process created or saw it.
                Some(code) if *code == SqlState::CHECK_VIOLATION && !partitions_created => {
                    tracing::warn!(error = %err, "request_log: a month's partition is missing; creating it again");
                    let months: Vec<Month> = columns.months.iter().copied().collect();
                    self.create_partitions(&months).await?;
                    known.0 = months.into_iter().collect();
                    partitions_created = true;
                }
                _ => return Err(pg_error(err)),
            }
        }
    }

    async fn create_partitions(&self, months: &[Month]) -> Result<Vec<String>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&PARTITION_LOCK])
            .await
            .map_err(pg_error)?;
        let mut created = Vec::new();
        for month in months {
            let name = month.partition_name();
            let exists = tx
                .query_one("SELECT to_regclass($1) IS NOT NULL", &[&name])
                .await
                .map_err(pg_error)?
                .get::<_, bool>(0);
            if exists {
                continue;
            }
            // Names and bounds come from numbers only: nothing from outside reaches this text.
            tx.batch_execute(&format!(
                "CREATE TABLE {name} PARTITION OF request_log FOR VALUES FROM ('{}') TO ('{}')",
                month.start(),
                month.next().start()
            ))
            .await
            .map_err(pg_error)?;
            created.push(name);
        }
        tx.commit().await.map_err(pg_error)?;
        if !created.is_empty() {
            tracing::info!(partitions = ?created, "request_log: monthly partitions created");
        }
        Ok(created)
    }
}

/// The batch through `COPY … FROM STDIN (FORMAT binary)` in a transaction of its own; returns
/// the rows written, once committed.
///
/// The explicit transaction is what makes `Ok` mean committed: tokio-postgres finishes a COPY
/// at its CommandComplete, which PostgreSQL sends *before* it commits an implicit transaction
/// (at the following Sync; see `exec_execute_message`), so a server stopped in between would
/// lose a batch counted as shipped. `COMMIT` is answered only once the commit is durable.
async fn copy_rows(
    client: &mut tokio_postgres::Client,
    instance_id: &str,
    c: &Columns<'_>,
) -> Result<u64, tokio_postgres::Error> {
    static TYPES: LazyLock<Vec<Type>> = LazyLock::new(copy_types);
    let tx = client.transaction().await?;
    let sink = tx.copy_in(COPY_BATCH.as_str()).await?;
    let mut writer = std::pin::pin!(BinaryCopyInWriter::new(sink, &TYPES));
    for i in 0..c.id.len() {
        // In BATCH_COLUMNS order, after the instance id.
        let row: [&(dyn ToSql + Sync); 33] = [
            &instance_id,
            &c.id[i],
            &c.initial_time[i],
            &c.instance_seq[i],
            &c.status[i],
            &c.first_token_time[i],
            &c.complete_time[i],
            &c.duration_ms[i],
            &c.provider[i],
            &c.provider_name[i],
            &c.model[i],
            &c.response_model[i],
            &c.input_tokens[i],
            &c.output_tokens[i],
            &c.cache_creation_input_tokens[i],
            &c.cache_read_input_tokens[i],
            &c.total_tokens[i],
            &c.price[i],
            &c.input_cost[i],
            &c.output_cost[i],
            &c.cache_creation_cost[i],
            &c.cache_read_cost[i],
            &c.http_status[i],
            &c.stream[i],
            &c.channel_id[i],
            &c.channel_name[i],
            &c.endpoint[i],
            &c.client_id[i],
            &c.session_id[i],
            &c.error[i],
            &c.upstream_error[i],
            &c.failover_info[i],
            &c.unpriced[i],
        ];
        writer.as_mut().write(&row).await?;
    }
    let written = writer.finish().await?;
    tx.commit().await?;
    Ok(written)
}

/// A batch as one array per column, borrowing the rows' text.
struct Columns<'a> {
    id: Vec<Cow<'a, str>>,
    initial_time: Vec<SystemTime>,
    instance_seq: Vec<i64>,
    status: Vec<Cow<'a, str>>,
    first_token_time: Vec<Option<SystemTime>>,
    complete_time: Vec<Option<SystemTime>>,
    duration_ms: Vec<i64>,
    provider: Vec<Cow<'a, str>>,
    provider_name: Vec<Cow<'a, str>>,
    model: Vec<Cow<'a, str>>,
    response_model: Vec<Cow<'a, str>>,
    input_tokens: Vec<i64>,
    output_tokens: Vec<i64>,
    cache_creation_input_tokens: Vec<i64>,
    cache_read_input_tokens: Vec<i64>,
    total_tokens: Vec<i64>,
    price: Vec<f64>,
    input_cost: Vec<f64>,
    output_cost: Vec<f64>,
    cache_creation_cost: Vec<f64>,
    cache_read_cost: Vec<f64>,
    http_status: Vec<i32>,
    stream: Vec<bool>,
    channel_id: Vec<Cow<'a, str>>,
    channel_name: Vec<Cow<'a, str>>,
    endpoint: Vec<Cow<'a, str>>,
    client_id: Vec<Cow<'a, str>>,
    session_id: Vec<Cow<'a, str>>,
    error: Vec<Cow<'a, str>>,
    upstream_error: Vec<Cow<'a, str>>,
    failover_info: Vec<Cow<'a, str>>,
    unpriced: Vec<bool>,
    /// The months the rows fall in.
    months: BTreeSet<Month>,
}

impl<'a> Columns<'a> {
    fn of(rows: &'a [OutboxRow]) -> Self {
        let n = rows.len();
        let mut c = Columns {
            id: Vec::with_capacity(n),
            initial_time: Vec::with_capacity(n),
            instance_seq: Vec::with_capacity(n),
            status: Vec::with_capacity(n),
            first_token_time: Vec::with_capacity(n),
            complete_time: Vec::with_capacity(n),
            duration_ms: Vec::with_capacity(n),
            provider: Vec::with_capacity(n),
            provider_name: Vec::with_capacity(n),
            model: Vec::with_capacity(n),
            response_model: Vec::with_capacity(n),
            input_tokens: Vec::with_capacity(n),
            output_tokens: Vec::with_capacity(n),
            cache_creation_input_tokens: Vec::with_capacity(n),
            cache_read_input_tokens: Vec::with_capacity(n),
            total_tokens: Vec::with_capacity(n),
            price: Vec::with_capacity(n),
            input_cost: Vec::with_capacity(n),
            output_cost: Vec::with_capacity(n),
            cache_creation_cost: Vec::with_capacity(n),
            cache_read_cost: Vec::with_capacity(n),
            http_status: Vec::with_capacity(n),
            stream: Vec::with_capacity(n),
            channel_id: Vec::with_capacity(n),
            channel_name: Vec::with_capacity(n),
            endpoint: Vec::with_capacity(n),
            client_id: Vec::with_capacity(n),
            session_id: Vec::with_capacity(n),
            error: Vec::with_capacity(n),
            upstream_error: Vec::with_capacity(n),
            failover_info: Vec::with_capacity(n),
            unpriced: Vec::with_capacity(n),
            months: BTreeSet::new(),
        };
        let mut unreadable_times = 0_usize;
        for OutboxRow { seq, log: r } in rows {
            let initial = parse_time(&r.initial_time).unwrap_or_else(|| {
                unreadable_times += 1;
                OffsetDateTime::UNIX_EPOCH
            });
            c.months.insert(Month::of(initial));
            c.id.push(text(&r.id));
            c.initial_time.push(initial.into());
            c.instance_seq.push(*seq);
            c.status.push(text(&r.status));
            c.first_token_time.push(
                r.first_token_time
                    .as_deref()
                    .and_then(parse_time)
                    .map(Into::into),
            );
            c.complete_time.push(
                r.complete_time
                    .as_deref()
                    .and_then(parse_time)
                    .map(Into::into),
            );
            c.duration_ms.push(r.duration_ms);
            c.provider.push(text(&r.provider));
            c.provider_name.push(text(&r.provider_name));
            c.model.push(text(&r.model));
            c.response_model.push(text(&r.response_model));
            c.input_tokens.push(r.input_tokens);
            c.output_tokens.push(r.output_tokens);
            c.cache_creation_input_tokens
                .push(r.cache_creation_input_tokens);
            c.cache_read_input_tokens.push(r.cache_read_input_tokens);
            c.total_tokens.push(r.total_tokens);
            c.price.push(r.price);
            c.input_cost.push(r.input_cost);
            c.output_cost.push(r.output_cost);
            c.cache_creation_cost.push(r.cache_creation_cost);
            c.cache_read_cost.push(r.cache_read_cost);
            c.http_status
                .push(i32::try_from(r.http_status).unwrap_or(0));
            c.stream.push(r.stream);
            c.channel_id.push(text(&r.channel_id));
            c.channel_name.push(text(&r.channel_name));
            c.endpoint.push(text(&r.endpoint));
            c.client_id.push(text(&r.client_id));
            c.session_id.push(text(&r.session_id));
            c.error.push(text(&r.error));
            c.upstream_error.push(text(&r.upstream_error));
            c.failover_info.push(text(&r.failover_info));
            c.unpriced.push(r.unpriced);
        }
        if unreadable_times > 0 {
            // The row still ships (a row is never held back for its content); its time says
            // 1970 so it stands out.
            tracing::warn!(
                rows = unreadable_times,
                "request_log: rows with an unreadable initial_time are shipped as 1970-01-01"
            );
        }
        c
    }

    /// `$1` = the instance id, then one array per column in [`BATCH_COLUMNS`] order.
    fn params<'p>(&'p self, instance_id: &'p &str) -> [&'p (dyn ToSql + Sync); 33] {
        [
            instance_id,
            &self.id,
            &self.initial_time,
            &self.instance_seq,
            &self.status,
            &self.first_token_time,
            &self.complete_time,
            &self.duration_ms,
            &self.provider,
            &self.provider_name,
            &self.model,
            &self.response_model,
            &self.input_tokens,
            &self.output_tokens,
            &self.cache_creation_input_tokens,
            &self.cache_read_input_tokens,
            &self.total_tokens,
            &self.price,
            &self.input_cost,
            &self.output_cost,
            &self.cache_creation_cost,
            &self.cache_read_cost,
            &self.http_status,
            &self.stream,
            &self.channel_id,
            &self.channel_name,
            &self.endpoint,
            &self.client_id,
            &self.session_id,
            &self.error,
            &self.upstream_error,
            &self.failover_info,
            &self.unpriced,
        ]
    }
}

/// PostgreSQL text cannot hold NUL; SQLite can (a model name a client sent as `\u0000`). Such
/// a character becomes U+FFFD, so the batch is never refused.
fn text(value: &str) -> Cow<'_, str> {
    if memchr::memchr(0, value.as_bytes()).is_some() {
        Cow::Owned(value.replace('\0', "\u{FFFD}"))
    } else {
        Cow::Borrowed(value)
    }
}

/// An RFC 3339 time as logs.sqlite stores it.
fn parse_time(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_roll_over_the_year_and_name_their_partition() {
        let december = Month::of(time::macros::datetime!(2025-12-31 23:59:59.999 UTC));
        assert_eq!(december.partition_name(), "request_log_y2025m12");
        assert_eq!(december.next().partition_name(), "request_log_y2026m01");
        assert_eq!(december.start(), "2025-12-01 00:00:00+00");
        assert_eq!(december.next().start(), "2026-01-01 00:00:00+00");
        // Another offset is taken in UTC.
        let local = time::macros::datetime!(2026-03-01 00:30:00 +01:00);
        assert_eq!(Month::of(local).partition_name(), "request_log_y2026m02");
    }

    #[test]
    fn the_insert_binds_every_column_once() {
        assert!(INSERT_BATCH_SKIPPING_KNOWN.contains("$33::bool[]"));
        assert!(!INSERT_BATCH_SKIPPING_KNOWN.contains("$34"));
        assert!(INSERT_BATCH_SKIPPING_KNOWN.ends_with("ON CONFLICT (id, initial_time) DO NOTHING"));
        assert_eq!(copy_types().len(), BATCH_COLUMNS.len() + 1);
        assert_eq!(COPY_BATCH.matches(", ").count(), BATCH_COLUMNS.len());
        let rows = [OutboxRow {
            seq: 1,
            log: crate::store::sqlite::RequestLog::default(),
        }];
        let columns = Columns::of(&rows);
        assert_eq!(columns.params(&"i").len(), BATCH_COLUMNS.len() + 1);
    }

    #[test]
    fn nul_characters_are_replaced() {
        assert_eq!(text("a\0b"), "a\u{FFFD}b");
        assert!(matches!(text("plain"), Cow::Borrowed("plain")));
    }
}
