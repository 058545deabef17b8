//! Usage roll-ups for the statistics API: `usage_hourly` and `usage_daily_detail` (migration
//! 0007), one row per (period, key, model, channel, endpoint, HTTP status).
//!
//! The log writer adds a batch to both in its own transaction: the batch's rows are summed in
//! memory first, then each distinct group is upserted once per table. Reads sum whole days from
//! the daily table and the partial days at a range's edges (or everything, when grouped by
//! hour) from the hourly one.

use std::fmt::Write as _;
use std::sync::LazyLock;

use rusqlite::types::{Type, Value};
use rusqlite::{Connection, Transaction, params_from_iter};
use time::OffsetDateTime;

use super::RequestLog;
use super::histogram;
use super::search::StatusFilter;
use super::usage_cache::{DayFigures, UsageCache};
use crate::domain::money::nanos_from_usd;

/// Upper bounds (exclusive, ms) of the latency and time-to-first-token buckets: 1 ms to 10 min,
/// each about 1.5 times the previous; a last bucket holds everything from 650 s on. Fixed for
/// good: the stored columns are counts per bucket.
pub const BUCKET_BOUNDS_MS: [i64; 33] = [
    1, 2, 3, 5, 8, 12, 18, 27, 40, 60, 90, 135, 200, 300, 450, 675, 1000, 1500, 2250, 3400, 5000,
    7500, 11_000, 17_000, 25_000, 38_000, 57_000, 85_000, 130_000, 190_000, 290_000, 430_000,
    650_000,
];
pub const BUCKETS: usize = BUCKET_BOUNDS_MS.len() + 1;

/// The bucket a duration in ms falls in.
#[must_use]
pub fn bucket_of(ms: i64) -> usize {
    BUCKET_BOUNDS_MS.partition_point(|&upper| upper <= ms)
}

/// The [lower, upper) ms of a bucket (the last one has no upper bound).
#[must_use]
pub fn bucket_range(bucket: usize) -> (i64, Option<i64>) {
    let lower = if bucket == 0 {
        0
    } else {
        BUCKET_BOUNDS_MS[bucket.min(BUCKETS - 1) - 1]
    };
    (lower, BUCKET_BOUNDS_MS.get(bucket).copied())
}

/// Summed figures of any number of request-log rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Figures {
    pub requests: i64,
    /// Rows with an HTTP status ≥ 400 or an `error`/`rejected` outcome.
    pub errors: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_creation_tokens: i64,
    pub cache_read_tokens: i64,
    pub total_tokens: i64,
    /// Exact sum of each row's cost rounded to nano-dollars.
    pub cost_nanos: i64,
    /// Requests per [`BUCKET_BOUNDS_MS`] bucket of `duration_ms`.
    pub latency: [i64; BUCKETS],
    /// Streams per bucket of first token time − start time.
    pub ttft: [i64; BUCKETS],
}

impl Default for Figures {
    fn default() -> Self {
        Self {
            requests: 0,
            errors: 0,
            input_tokens: 0,
            output_tokens: 0,
            cache_creation_tokens: 0,
            cache_read_tokens: 0,
            total_tokens: 0,
            cost_nanos: 0,
            latency: [0; BUCKETS],
            ttft: [0; BUCKETS],
        }
    }
}

/// Whether a row counts as an error in the statistics.
#[must_use]
pub fn is_error(r: &RequestLog) -> bool {
    r.http_status >= 400 || r.status == "error" || r.status == "rejected"
}

impl Figures {
    pub fn add_row(&mut self, r: &RequestLog) {
        self.requests += 1;
        self.errors += i64::from(is_error(r));
        self.input_tokens += r.input_tokens;
        self.output_tokens += r.output_tokens;
        self.cache_creation_tokens += r.cache_creation_input_tokens;
        self.cache_read_tokens += r.cache_read_input_tokens;
        self.total_tokens += r.total_tokens;
        self.cost_nanos = self.cost_nanos.saturating_add(nanos_from_usd(r.price));
        self.latency[bucket_of(r.duration_ms.max(0))] += 1;
        if r.stream
            && let Some(ttft) = r
                .first_token_time
                .as_deref()
                .and_then(|first| millis_between(&r.initial_time, first))
        {
            self.ttft[bucket_of(ttft.max(0))] += 1;
        }
    }

    pub fn merge(&mut self, other: &Figures) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.cache_creation_tokens += other.cache_creation_tokens;
        self.cache_read_tokens += other.cache_read_tokens;
        self.total_tokens += other.total_tokens;
        self.cost_nanos = self.cost_nanos.saturating_add(other.cost_nanos);
        for (mine, theirs) in self.latency.iter_mut().zip(other.latency) {
            *mine += theirs;
        }
        for (mine, theirs) in self.ttft.iter_mut().zip(other.ttft) {
            *mine += theirs;
        }
    }

    /// The `q` quantile (0..1) of a histogram in ms, or None without samples. Within its bucket
    /// the value is interpolated linearly between the bucket's bounds (samples taken as spread
    /// evenly), so it is off by at most the bucket's width (a factor of ~1.5); the open last
    /// bucket answers its lower bound.
    #[must_use]
    pub fn percentile(histogram: &[i64; BUCKETS], q: f64) -> Option<i64> {
        let total: i64 = histogram.iter().sum();
        if total <= 0 {
            return None;
        }
        #[allow(clippy::cast_precision_loss, reason = "counts far below 2^52")]
        let rank = q.clamp(0.0, 1.0) * total as f64;
        let mut below = 0i64;
        for (bucket, &count) in histogram.iter().enumerate() {
            if count == 0 {
                continue;
            }
            #[allow(clippy::cast_precision_loss, reason = "counts far below 2^52")]
            let reaches = (below + count) as f64 >= rank;
            if reaches {
                let (lower, upper) = bucket_range(bucket);
                let Some(upper) = upper else {
                    return Some(lower);
                };
                #[allow(clippy::cast_precision_loss, reason = "counts far below 2^52")]
                let within = ((rank - below as f64) / count as f64).clamp(0.0, 1.0);
                #[allow(clippy::cast_precision_loss, reason = "ms far below 2^52")]
                let span = (upper - lower) as f64;
                #[allow(
                    clippy::cast_possible_truncation,
                    reason = "within the bucket's bounds"
                )]
                let offset = (within * span).round() as i64;
                return Some((lower + offset).min(upper - 1));
            }
            below += count;
        }
        None
    }
}

/// Milliseconds from `start` to `end`, both RFC 3339 times as the relay stores them
/// (`2026-11-21T10:00:00.123Z`); other forms are parsed in full.
fn millis_between(start: &str, end: &str) -> Option<i64> {
    fn ms_of_day(t: &[u8]) -> Option<i64> {
        let digits = |range: std::ops::Range<usize>| -> Option<i64> {
            t.get(range)?.iter().try_fold(0i64, |n, &d| {
                d.is_ascii_digit().then(|| n * 10 + i64::from(d - b'0'))
            })
        };
        if t.len() != 24 || t[23] != b'Z' || t[19] != b'.' {
            return None;
        }
        Some(
            ((digits(11..13)? * 60 + digits(14..16)?) * 60 + digits(17..19)?) * 1000
                + digits(20..23)?,
        )
    }
    if start.get(..10).is_some()
        && start.get(..10) == end.get(..10)
        && let (Some(a), Some(b)) = (ms_of_day(start.as_bytes()), ms_of_day(end.as_bytes()))
    {
        return Some(b - a);
    }
    let parse =
        |t: &str| OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok();
    let millis = (parse(end)? - parse(start)?).whole_milliseconds();
    i64::try_from(millis).ok()
}

/// The dimensions of one roll-up row (the period is the hour, `YYYY-MM-DDTHH`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct GroupKey<'a> {
    period: &'a str,
    key_id: &'a str,
    model: &'a str,
    channel_id: &'a str,
    endpoint: &'a str,
    http_status: i64,
}

/// A batch's additions to both roll-up tables.
#[derive(Default)]
pub(crate) struct RollUps<'a> {
    /// A fast hasher although `model` comes from clients: a batch is bounded, so crafted
    /// collisions could only slow one batch.
    hours: crate::FastMap<GroupKey<'a>, Figures>,
}

impl<'a> RollUps<'a> {
    pub(crate) fn add(&mut self, r: &'a RequestLog) {
        let key = GroupKey {
            period: r.initial_time.get(..13).unwrap_or(&r.initial_time),
            key_id: &r.client_id,
            model: &r.model,
            channel_id: &r.channel_id,
            endpoint: &r.endpoint,
            http_status: r.http_status,
        };
        self.hours.entry(key).or_default().add_row(r);
    }

    /// Upsert each group once into `usage_hourly` and each day's group once into
    /// `usage_daily_detail`.
    pub(crate) fn write(self, tx: &Transaction<'_>) -> rusqlite::Result<()> {
        if self.hours.is_empty() {
            return Ok(());
        }
        let mut days: crate::FastMap<GroupKey<'a>, Figures> = crate::FastMap::default();
        {
            let mut upsert = tx.prepare_cached(&UPSERT_HOURLY)?;
            for (key, figures) in self.hours {
                upsert_group(&mut upsert, &key, &figures)?;
                let day = GroupKey {
                    period: key.period.get(..10).unwrap_or(key.period),
                    ..key
                };
                days.entry(day).or_default().merge(&figures);
            }
        }
        let mut touched: Vec<&str> = days.keys().map(|key| key.period).collect();
        touched.sort_unstable();
        touched.dedup();
        let mut upsert = tx.prepare_cached(&UPSERT_DAILY)?;
        for (key, figures) in days {
            upsert_group(&mut upsert, &key, &figures)?;
        }
        let mut bump = tx.prepare_cached(
            "INSERT INTO usage_day_generation (day, generation) VALUES (?1, 1)
             ON CONFLICT (day) DO UPDATE SET generation = generation + 1",
        )?;
        for day in touched {
            bump.execute([day])?;
        }
        Ok(())
    }
}

const FIGURE_COLUMNS: [&str; 8] = [
    "requests",
    "errors",
    "input_tokens",
    "output_tokens",
    "cache_creation_tokens",
    "cache_read_tokens",
    "total_tokens",
    "cost_nanos",
];

fn upsert_sql(table: &str) -> String {
    let sums = FIGURE_COLUMNS
        .iter()
        .map(|c| format!("{c} = {c} + excluded.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "INSERT INTO {table} (period, key_id, model, channel_id, endpoint, http_status, {columns}, latency, ttft)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)
         ON CONFLICT (period, key_id, model, channel_id, endpoint, http_status) DO UPDATE SET {sums},
           latency = hist_add(latency, excluded.latency), ttft = hist_add(ttft, excluded.ttft)",
        columns = FIGURE_COLUMNS.join(", ")
    )
}

static UPSERT_HOURLY: LazyLock<String> = LazyLock::new(|| upsert_sql("usage_hourly"));
static UPSERT_DAILY: LazyLock<String> = LazyLock::new(|| upsert_sql("usage_daily_detail"));

fn upsert_group(
    statement: &mut rusqlite::CachedStatement<'_>,
    key: &GroupKey<'_>,
    f: &Figures,
) -> rusqlite::Result<()> {
    statement.raw_bind_parameter(1, key.period)?;
    statement.raw_bind_parameter(2, key.key_id)?;
    statement.raw_bind_parameter(3, key.model)?;
    statement.raw_bind_parameter(4, key.channel_id)?;
    statement.raw_bind_parameter(5, key.endpoint)?;
    statement.raw_bind_parameter(6, key.http_status)?;
    let sums = [
        f.requests,
        f.errors,
        f.input_tokens,
        f.output_tokens,
        f.cache_creation_tokens,
        f.cache_read_tokens,
        f.total_tokens,
        f.cost_nanos,
    ];
    for (i, value) in sums.iter().enumerate() {
        statement.raw_bind_parameter(7 + i, *value)?;
    }
    statement.raw_bind_parameter(15, histogram::encode(&f.latency))?;
    statement.raw_bind_parameter(16, histogram::encode(&f.ttft))?;
    statement.raw_execute()?;
    Ok(())
}

/// Rows read per step of the back-fill.
const BACKFILL_CHUNK: i64 = 50_000;

/// Fill both tables from the `request_log` rows already there (an upgrade keeps its history),
/// inside the migration's transaction, a chunk of rows at a time in `seq` order, each chunk
/// through the same path as a writer batch.
pub(crate) fn backfill(tx: &Transaction<'_>) -> rusqlite::Result<u64> {
    histogram::register(tx)?;
    let mut after = i64::MIN;
    let mut total = 0u64;
    let mut read = tx.prepare(
        "SELECT seq, status, initial_time, first_token_time, duration_ms, model, input_tokens, output_tokens,
                cache_creation_input_tokens, cache_read_input_tokens, total_tokens, price, http_status, stream,
                channel_id, endpoint, client_id
         FROM request_log WHERE seq > ?1 ORDER BY seq LIMIT ?2",
    )?;
    loop {
        let mut chunk = Vec::new();
        let mut rows = read.query(rusqlite::params![after, BACKFILL_CHUNK])?;
        while let Some(row) = rows.next()? {
            after = row.get(0)?;
            chunk.push(RequestLog {
                status: std::borrow::Cow::Owned(row.get(1)?),
                initial_time: row.get(2)?,
                first_token_time: row.get(3)?,
                duration_ms: row.get(4)?,
                model: row.get(5)?,
                input_tokens: row.get(6)?,
                output_tokens: row.get(7)?,
                cache_creation_input_tokens: row.get(8)?,
                cache_read_input_tokens: row.get(9)?,
                total_tokens: row.get(10)?,
                price: row.get(11)?,
                http_status: row.get(12)?,
                stream: row.get(13)?,
                channel_id: row.get(14)?,
                endpoint: std::borrow::Cow::Owned(row.get(15)?),
                client_id: row.get(16)?,
                ..RequestLog::default()
            });
        }
        if chunk.is_empty() {
            return Ok(total);
        }
        total += chunk.len() as u64;
        let mut roll_ups = RollUps::default();
        chunk.iter().for_each(|r| roll_ups.add(r));
        roll_ups.write(tx)?;
    }
}

// ---- reads -----------------------------------------------------------------------------------

/// What a usage row can be grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Dimension {
    Hour,
    Day,
    Key,
    Model,
    Channel,
    Endpoint,
    Status,
}

impl Dimension {
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "hour" => Self::Hour,
            "day" => Self::Day,
            "key" => Self::Key,
            "model" => Self::Model,
            "channel" => Self::Channel,
            "endpoint" => Self::Endpoint,
            "status" => Self::Status,
            _ => return None,
        })
    }

    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Hour => "hour",
            Self::Day => "day",
            Self::Key => "key",
            Self::Model => "model",
            Self::Channel => "channel",
            Self::Endpoint => "endpoint",
            Self::Status => "status",
        }
    }
}

/// A usage question: `[from, to)` in whole UTC hours, grouped and filtered.
#[derive(Debug, Clone)]
pub struct UsageQuery {
    pub from: OffsetDateTime,
    pub to: OffsetDateTime,
    pub group_by: Vec<Dimension>,
    pub key_id: Option<String>,
    pub model: Option<String>,
    pub channel_id: Option<String>,
    pub endpoint: Option<String>,
    pub status: Option<StatusFilter>,
}

impl UsageQuery {
    /// The totals of `[from, to)` with no filter.
    #[must_use]
    pub fn totals(from: OffsetDateTime, to: OffsetDateTime) -> Self {
        Self {
            from,
            to,
            group_by: Vec::new(),
            key_id: None,
            model: None,
            channel_id: None,
            endpoint: None,
            status: None,
        }
    }
}

/// The values of one group; fields not grouped by stay `None`. Ordered as the rows are sorted:
/// time first, then key, model, channel, endpoint, status.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct UsageGroup {
    /// `YYYY-MM-DDTHH` (UTC).
    pub hour: Option<String>,
    /// `YYYY-MM-DD` (UTC).
    pub day: Option<String>,
    pub key_id: Option<String>,
    pub model: Option<String>,
    pub channel_id: Option<String>,
    pub endpoint: Option<String>,
    pub status: Option<i64>,
}

/// The answer: groups in order (at most `limit`), their totals, and whether groups were cut.
#[derive(Debug, Clone, Default)]
pub struct UsageReport {
    pub rows: Vec<(UsageGroup, Figures)>,
    pub totals: Figures,
    pub truncated: bool,
}

/// `2026-12-01T13` (an hour period) of a whole-hour time.
#[must_use]
pub fn hour_period(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour()
    )
}

fn day_period(at: OffsetDateTime) -> String {
    hour_period(at)[..10].to_string()
}

/// Start of the UTC day of `at`.
fn day_floor(at: OffsetDateTime) -> OffsetDateTime {
    at.to_offset(time::UtcOffset::UTC)
        .replace_time(time::Time::MIDNIGHT)
}

/// Which table reads which `[from, to)` periods: whole days from the daily table, the edges
/// (or everything when grouped by hour) from the hourly one.
fn segments(query: &UsageQuery) -> Vec<(&'static str, String, String)> {
    let hourly = |from: OffsetDateTime, to: OffsetDateTime| {
        ("usage_hourly", hour_period(from), hour_period(to))
    };
    let (from, to) = (query.from, query.to);
    if from >= to {
        return Vec::new();
    }
    let first_whole_day = if day_floor(from) == from {
        from
    } else {
        day_floor(from) + time::Duration::DAY
    };
    let last_day_end = day_floor(to);
    if query.group_by.contains(&Dimension::Hour) || first_whole_day >= last_day_end {
        return vec![hourly(from, to)];
    }
    let mut parts = Vec::with_capacity(3);
    if from < first_whole_day {
        parts.push(hourly(from, first_whole_day));
    }
    parts.push((
        "usage_daily_detail",
        day_period(first_whole_day),
        day_period(last_day_end),
    ));
    if last_day_end < to {
        parts.push(hourly(last_day_end, to));
    }
    parts
}

/// Groups being summed, found by a key made of the row's grouped values (each followed by a
/// unit separator), so a row of a group already seen allocates nothing.
type Groups = crate::FastMap<String, (UsageGroup, Figures)>;

/// Read a usage report, at most `limit` groups: the matching roll-up rows are read in period
/// order and summed here, so SQLite sorts nothing and sums no histogram.
/// Whole days before today come from `cache` when they have not changed since.
pub(crate) fn read_usage(
    conn: &Connection,
    query: &UsageQuery,
    limit: usize,
    cache: &UsageCache,
) -> rusqlite::Result<UsageReport> {
    // One snapshot, so the day counters read agree with the figures summed.
    let snapshot = conn.unchecked_transaction()?;
    let today = day_period(crate::domain::now());
    let mut groups = Groups::default();
    for (table, from, to) in segments(query) {
        if table == DAILY_TABLE {
            read_days(&snapshot, &from, &to, &today, query, cache, &mut groups)?;
        } else {
            read_segment(&snapshot, table, &from, &to, query, &mut groups)?;
        }
    }
    drop(snapshot);
    let mut rows: Vec<(UsageGroup, Figures)> = groups.into_values().collect();
    rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let mut report = UsageReport::default();
    for (_, figures) in &rows {
        report.totals.merge(figures);
    }
    report.truncated = rows.len() > limit;
    rows.truncate(limit);
    report.rows = rows;
    Ok(report)
}

const DAILY_TABLE: &str = "usage_daily_detail";

/// The day after a `YYYY-MM-DD` day.
fn next_day(day: &str) -> Option<String> {
    let number = |range: std::ops::Range<usize>| day.get(range)?.parse::<u16>().ok();
    let month = time::Month::try_from(u8::try_from(number(5..7)?).ok()?).ok()?;
    let date = time::Date::from_calendar_date(
        i32::from(number(0..4)?),
        month,
        u8::try_from(number(8..10)?).ok()?,
    )
    .ok()?
    .next_day()?;
    Some(format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    ))
}

/// The whole days `[from, to)` of the daily table, day by day: a day before `today` whose
/// counter has not moved since it was cached is taken from `cache`, any other is summed (and
/// cached when complete).
fn read_days(
    conn: &Connection,
    from: &str,
    to: &str,
    today: &str,
    query: &UsageQuery,
    cache: &UsageCache,
    groups: &mut Groups,
) -> rusqlite::Result<()> {
    let mut generations: crate::FastMap<String, i64> = crate::FastMap::default();
    {
        let mut statement = conn.prepare_cached(
            "SELECT day, generation FROM usage_day_generation WHERE day >= ?1 AND day < ?2",
        )?;
        let mut rows = statement.query([from, to])?;
        while let Some(row) = rows.next()? {
            generations.insert(row.get(0)?, row.get(1)?);
        }
    }
    let (sql, filters) = segment_sql(DAILY_TABLE, query);
    let shape = format!("{sql}\u{1f}{filters:?}");
    let mut day = from.to_string();
    while day.as_str() < to {
        let Some(next) = next_day(&day) else {
            break;
        };
        if day.as_str() >= today {
            read_segment(conn, DAILY_TABLE, &day, &next, query, groups)?;
        } else {
            let generation = generations.get(&day).copied().unwrap_or(0);
            let figures = if let Some(cached) = cache.get(&shape, &day, generation) {
                cached
            } else {
                let mut day_groups = Groups::default();
                read_segment(conn, DAILY_TABLE, &day, &next, query, &mut day_groups)?;
                let figures = DayFigures {
                    generation,
                    groups: day_groups
                        .into_iter()
                        .map(|(key, (group, figures))| (key, group, figures))
                        .collect(),
                };
                cache.put(&shape, &day, figures)
            };
            for (key, group, day_figures) in &figures.groups {
                if let Some((_, figures)) = groups.get_mut(key.as_str()) {
                    figures.merge(day_figures);
                } else {
                    groups.insert(key.clone(), (group.clone(), day_figures.clone()));
                }
            }
        }
        day = next;
    }
    Ok(())
}

fn column_of(dimension: Dimension) -> &'static str {
    match dimension {
        Dimension::Hour | Dimension::Day => "period",
        Dimension::Key => "key_id",
        Dimension::Model => "model",
        Dimension::Channel => "channel_id",
        Dimension::Endpoint => "endpoint",
        Dimension::Status => "http_status",
    }
}

/// The `SELECT` of one segment: the grouped columns, the figures, then both histograms.
fn segment_sql(table: &str, query: &UsageQuery) -> (String, Vec<Value>) {
    let mut sql = String::from("SELECT ");
    for dimension in &query.group_by {
        let _ = write!(sql, "{}, ", column_of(*dimension));
    }
    let _ = write!(
        sql,
        "{}, latency, ttft FROM {table} WHERE period >= ? AND period < ?",
        FIGURE_COLUMNS.join(", ")
    );
    let mut values = Vec::new();
    let mut equal = |column: &str, value: &Option<String>| {
        if let Some(value) = value {
            let _ = write!(sql, " AND {column} = ?");
            values.push(Value::Text(value.clone()));
        }
    };
    equal("key_id", &query.key_id);
    equal("model", &query.model);
    equal("channel_id", &query.channel_id);
    equal("endpoint", &query.endpoint);
    match query.status {
        Some(StatusFilter::Class(class)) => {
            sql.push_str(" AND http_status BETWEEN ? AND ?");
            values.push(Value::Integer(i64::from(class) * 100));
            values.push(Value::Integer(i64::from(class) * 100 + 99));
        }
        Some(StatusFilter::Exact(code)) => {
            sql.push_str(" AND http_status = ?");
            values.push(Value::Integer(i64::from(code)));
        }
        None => {}
    }
    (sql, values)
}

fn text<'r>(row: &'r rusqlite::Row<'_>, i: usize) -> rusqlite::Result<&'r str> {
    row.get_ref(i)?
        .as_str()
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(i, Type::Text, Box::new(e)))
}

/// Add one roll-up row's figures (from column `base` on) into `figures`.
fn add_figures(
    row: &rusqlite::Row<'_>,
    base: usize,
    figures: &mut Figures,
) -> rusqlite::Result<()> {
    let at = |n: usize| row.get::<_, i64>(base + n);
    figures.requests += at(0)?;
    figures.errors += at(1)?;
    figures.input_tokens += at(2)?;
    figures.output_tokens += at(3)?;
    figures.cache_creation_tokens += at(4)?;
    figures.cache_read_tokens += at(5)?;
    figures.total_tokens += at(6)?;
    figures.cost_nanos = figures.cost_nanos.saturating_add(at(7)?);
    for (offset, counts) in [(8, &mut figures.latency), (9, &mut figures.ttft)] {
        let i = base + offset;
        let blob = row
            .get_ref(i)?
            .as_blob()
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(i, Type::Blob, Box::new(e)))?;
        histogram::add_into(blob, counts)
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(i, Type::Blob, Box::new(e)))?;
    }
    Ok(())
}

fn read_segment(
    conn: &Connection,
    table: &str,
    from: &str,
    to: &str,
    query: &UsageQuery,
    groups: &mut Groups,
) -> rusqlite::Result<()> {
    let (sql, filters) = segment_sql(table, query);
    let mut statement = conn.prepare_cached(&sql)?;
    let values = [Value::Text(from.into()), Value::Text(to.into())]
        .into_iter()
        .chain(filters);
    let mut rows = statement.query(params_from_iter(values))?;
    let base = query.group_by.len();
    let mut key = String::new();
    while let Some(row) = rows.next()? {
        key.clear();
        for (i, dimension) in query.group_by.iter().enumerate() {
            match dimension {
                Dimension::Status => {
                    let _ = write!(key, "{}", row.get::<_, i64>(i)?);
                }
                Dimension::Day => {
                    let period = text(row, i)?;
                    key.push_str(period.get(..10).unwrap_or(period));
                }
                _ => key.push_str(text(row, i)?),
            }
            key.push('\u{1f}');
        }
        if let Some((_, figures)) = groups.get_mut(key.as_str()) {
            add_figures(row, base, figures)?;
            continue;
        }
        let mut group = UsageGroup::default();
        for (i, dimension) in query.group_by.iter().enumerate() {
            match dimension {
                Dimension::Hour => group.hour = Some(text(row, i)?.to_string()),
                Dimension::Day => {
                    let period = text(row, i)?;
                    group.day = Some(period.get(..10).unwrap_or(period).to_string());
                }
                Dimension::Key => group.key_id = Some(text(row, i)?.to_string()),
                Dimension::Model => group.model = Some(text(row, i)?.to_string()),
                Dimension::Channel => group.channel_id = Some(text(row, i)?.to_string()),
                Dimension::Endpoint => group.endpoint = Some(text(row, i)?.to_string()),
                Dimension::Status => group.status = Some(row.get(i)?),
            }
        }
        let mut figures = Figures::default();
        add_figures(row, base, &mut figures)?;
        groups.insert(key.clone(), (group, figures));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_duration_once() {
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(1), 1);
        assert_eq!(bucket_of(999), 16);
        assert_eq!(bucket_of(1000), 17);
        assert_eq!(bucket_of(10_000_000), BUCKETS - 1);
        for ms in [0, 1, 7, 99, 1000, 12_345, 649_999, 650_000, 9_999_999] {
            let (lower, upper) = bucket_range(bucket_of(ms));
            assert!(lower <= ms && upper.is_none_or(|u| ms < u), "{ms}");
        }
    }

    #[test]
    fn percentiles_fall_inside_the_right_bucket() {
        let mut histogram = [0; BUCKETS];
        assert_eq!(Figures::percentile(&histogram, 0.5), None);
        for ms in [100, 100, 100, 2000] {
            histogram[bucket_of(ms)] += 1;
        }
        let p50 = Figures::percentile(&histogram, 0.5).unwrap();
        let (lower, upper) = bucket_range(bucket_of(100));
        assert!(p50 >= lower && p50 < upper.unwrap(), "{p50}");
        let p95 = Figures::percentile(&histogram, 0.95).unwrap();
        let (lower, upper) = bucket_range(bucket_of(2000));
        assert!(p95 >= lower && p95 < upper.unwrap(), "{p95}");
    }

    #[test]
    fn time_differences_read_the_stored_form_and_others() {
        assert_eq!(
            millis_between("2026-11-21T10:00:00.000Z", "2026-11-21T10:00:01.250Z"),
            Some(1250)
        );
        assert_eq!(
            millis_between("2026-11-21T23:59:59.900Z", "2026-11-22T00:00:00.100Z"),
            Some(200)
        );
        assert_eq!(
            millis_between("2026-11-21T10:00:00Z", "2026-11-21T12:00:00.5+02:00"),
            Some(500)
        );
        assert_eq!(millis_between("garbage", "2026-11-21T10:00:00Z"), None);
    }

    #[test]
    fn long_ranges_read_whole_days_from_the_daily_table() {
        use time::macros::datetime;
        let query = UsageQuery::totals(
            datetime!(2026-11-20 22:00 UTC),
            datetime!(2026-11-23 03:00 UTC),
        );
        assert_eq!(
            segments(&query),
            vec![
                (
                    "usage_hourly",
                    "2026-11-20T22".into(),
                    "2026-11-21T00".into()
                ),
                (
                    "usage_daily_detail",
                    "2026-11-21".into(),
                    "2026-11-23".into()
                ),
                (
                    "usage_hourly",
                    "2026-11-23T00".into(),
                    "2026-11-23T03".into()
                ),
            ]
        );
        let mut by_hour = query.clone();
        by_hour.group_by = vec![Dimension::Hour];
        assert_eq!(segments(&by_hour).len(), 1);
    }
}
