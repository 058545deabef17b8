//! The request-log writer alone: how many rows per second `LogWriter` commits to `logs.sqlite`
//! (WAL, `synchronous=FULL`, group commit with the usage roll-ups), without any HTTP around it.
//!
//! ```sh
//! cargo run --release --example log_writer_bench [-- ROWS]     # default 200000
//! ```
//!
//! Rows are built like the relay builds them (new ids, RFC 3339 times, 20 client keys, tokens
//! and costs) and submitted as fast as possible. `submit` never blocks and drops a row when the
//! queue is full, so the producer pauses briefly whenever more than `QUEUE_HIGH_WATER` rows are
//! waiting; the number of pauses is reported. The clock stops when `flush()` returns, i.e. when
//! every row is committed.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use relaybox::domain::new_id;
use relaybox::store::sqlite::writer::{LogWriter, WriterConfig};
use relaybox::store::sqlite::{LogDb, OpenOptions, RequestLog};
use time::OffsetDateTime;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;

const DEFAULT_ROWS: u64 = 200_000;
const QUEUE_HIGH_WATER: u64 = 50_000;
const CLIENT_KEYS: usize = 20;
const MODELS: [&str; 3] = ["claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-1"];

const TIMESTAMP: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

fn timestamp(at: OffsetDateTime) -> String {
    at.format(TIMESTAMP).unwrap_or_default()
}

/// One row as the relay would write it for a successful Anthropic Messages request.
fn realistic_row(n: u64, client_id: &str, channel_id: &str) -> RequestLog {
    let start = OffsetDateTime::now_utc();
    let duration_ms = 350 + i64::try_from(n % 900).unwrap_or(0);
    let first_token = start + Duration::from_millis(120);
    let complete = start + Duration::from_millis(u64::try_from(duration_ms).unwrap_or(0));
    let input_tokens = 800 + i64::try_from(n % 4000).unwrap_or(0);
    let output_tokens = 40 + i64::try_from(n % 600).unwrap_or(0);
    let cache_read = if n.is_multiple_of(3) { 2048 } else { 0 };
    let cache_creation = if n.is_multiple_of(7) { 1024 } else { 0 };
    #[expect(
        clippy::cast_precision_loss,
        reason = "token counts are far below 2^52"
    )]
    let cost = |tokens: i64, per_million: f64| tokens as f64 * per_million / 1_000_000.0;
    let input_cost = cost(input_tokens, 3.0);
    let output_cost = cost(output_tokens, 15.0);
    let cache_creation_cost = cost(cache_creation, 3.75);
    let cache_read_cost = cost(cache_read, 0.3);
    let model = MODELS[usize::try_from(n).unwrap_or(0) % MODELS.len()];
    let stream = n.is_multiple_of(2);
    RequestLog {
        id: new_id(),
        status: "success".into(),
        initial_time: timestamp(start),
        first_token_time: Some(timestamp(first_token)),
        complete_time: Some(timestamp(complete)),
        duration_ms,
        provider: "claude".into(),
        provider_name: "api.anthropic.com".into(),
        model: model.into(),
        response_model: format!("{model}-20250929"),
        input_tokens,
        output_tokens,
        cache_creation_input_tokens: cache_creation,
        cache_read_input_tokens: cache_read,
        total_tokens: input_tokens + output_tokens + cache_creation + cache_read,
        price: input_cost + output_cost + cache_creation_cost + cache_read_cost,
        input_cost,
        output_cost,
        cache_creation_cost,
        cache_read_cost,
        http_status: 200,
        stream,
        channel_id: channel_id.into(),
        channel_name: "anthropic-main".into(),
        endpoint: "/v1/messages".into(),
        client_id: client_id.into(),
        session_id: format!("session_{:08x}", n / 25),
        error: String::new(),
        upstream_error: String::new(),
        failover_info: String::new(),
        unpriced: false,
    }
}

#[expect(clippy::print_stdout, reason = "a benchmark example reports on stdout")]
#[expect(clippy::cast_precision_loss, reason = "row counts are far below 2^52")]
fn main() -> anyhow::Result<()> {
    let rows: u64 = match std::env::args().nth(1) {
        Some(text) => text
            .replace('_', "")
            .parse()
            .with_context(|| format!("ROWS must be a number, not '{text}'"))?,
        None => DEFAULT_ROWS,
    };
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("logs.sqlite");
    let db = LogDb::open(&path, OpenOptions::default())?;
    let config = WriterConfig::default();
    let writer = LogWriter::start(db.clone(), config)?;
    let client_ids: Vec<String> = (0..CLIENT_KEYS).map(|_| new_id()).collect();
    let channel_id = new_id()[24..].to_string();

    let started = Instant::now();
    let mut pauses: u64 = 0;
    let mut rejected: u64 = 0;
    for n in 0..rows {
        while writer.stats().queued > QUEUE_HIGH_WATER {
            pauses += 1;
            std::thread::sleep(Duration::from_micros(200));
        }
        let client = &client_ids[usize::try_from(n).unwrap_or(0) % CLIENT_KEYS];
        if !writer.submit(realistic_row(n, client, &channel_id)) {
            rejected += 1;
        }
    }
    let submitted_in = started.elapsed();
    writer.flush();
    let elapsed = started.elapsed();
    let stats = writer.stats();
    writer.close();

    let in_db = db.count_logs()?;
    let file_mb = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0) as f64 / 1_048_576.0;
    let rate = stats.written as f64 / elapsed.as_secs_f64();
    println!(
        "log writer: {rows} rows, batch {} / min interval {} ms, queue {}",
        config.max_batch,
        config.min_interval.as_millis(),
        config.capacity
    );
    println!("  submitted in      {:.3} s", submitted_in.as_secs_f64());
    println!(
        "  committed in      {:.3} s (until flush() returned)",
        elapsed.as_secs_f64()
    );
    println!(
        "  written {} in {} batches, failed commits {}, dropped {} ({} submits refused)",
        stats.written, stats.batches, stats.commit_failures, stats.dropped, rejected
    );
    println!("  producer pauses   {pauses} (queue above {QUEUE_HIGH_WATER})");
    println!("  rows in db        {in_db}, logs.sqlite {file_mb:.1} MB");
    // Machine-readable summary for bench/run.sh.
    println!(
        "RESULT rows_per_sec={rate:.0} rows={rows} written={} dropped={} failed={} pauses={pauses} in_db={in_db}",
        stats.written, stats.dropped, stats.commit_failures
    );
    Ok(())
}
