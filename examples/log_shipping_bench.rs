//! Request-log shipping alone: how many rows per second the cluster-mode shipper moves from a
//! filled `logs.sqlite` into PostgreSQL (bench/log_shipping.sh starts a PostgreSQL for it).
//!
//! ```sh
//! RELAYBOX_BENCH_PG_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!   cargo run --release --example log_shipping_bench [-- ROWS [BATCH]]   # default 500000 5000
//! ```
//!
//! 1. Fills a fresh `logs.sqlite` with ROWS realistic rows (ids, RFC 3339 times over the last
//!    hours, 20 keys, 3 models, 2 % errors with failover details).
//! 2. **loop**: `LogShipper::run` with the default options (BATCH rows per statement) from an
//!    empty database (created for the run, dropped after) until the backlog is 0. The clock
//!    starts before the loop does and stops when its status shows the backlog empty. This is
//!    the headline figure.
//! 3. **steps**: the same rows again, step by step from a copy of the file, timing each step
//!    (read after the cursor, the PostgreSQL statement, the cursor update), into the emptied
//!    table.
//! 4. The PostgreSQL part alone on the first 20 batches, both ways a batch can go in: binary
//!    `COPY` (what the shipper does first) and `INSERT … SELECT FROM unnest(…) ON CONFLICT DO
//!    NOTHING` (what a resent batch goes in as).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use relaybox::cluster::shipper::{LogShipper, ShipOptions};
use relaybox::domain::new_id;
use relaybox::store::postgres::{PgStore, Target};
use relaybox::store::sqlite::{LogDb, OpenOptions, RequestLog};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

const DEFAULT_ROWS: usize = 500_000;
const DEFAULT_BATCH: usize = 5_000;
const CLIENT_KEYS: usize = 20;
const MODELS: [&str; 3] = ["claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-1"];
const URL_VAR: &str = "RELAYBOX_BENCH_PG_URL";

fn realistic_row(n: usize, at: OffsetDateTime, client_id: &str) -> RequestLog {
    let duration_ms = 350 + (n % 900) as i64;
    let input_tokens = 800 + (n % 4000) as i64;
    let output_tokens = 40 + (n % 600) as i64;
    let cache_read = if n.is_multiple_of(3) { 2048 } else { 0 };
    let model = MODELS[n % MODELS.len()];
    let failed = n % 50 == 7;
    let time = |offset_ms: i64| {
        relaybox::domain::format_time(at + time::Duration::milliseconds(offset_ms))
    };
    #[expect(
        clippy::cast_precision_loss,
        reason = "token counts are far below 2^52"
    )]
    let cost = |tokens: i64, per_million: f64| tokens as f64 * per_million / 1_000_000.0;
    RequestLog {
        id: new_id(),
        status: if failed { "error" } else { "success" }.into(),
        initial_time: time(0),
        first_token_time: (!failed).then(|| time(120)),
        complete_time: Some(time(duration_ms)),
        duration_ms,
        provider: "claude".into(),
        provider_name: "api.anthropic.com".into(),
        model: model.into(),
        response_model: format!("{model}-20250929"),
        input_tokens,
        output_tokens,
        cache_creation_input_tokens: 0,
        cache_read_input_tokens: cache_read,
        total_tokens: input_tokens + output_tokens + cache_read,
        price: cost(input_tokens, 3.0) + cost(output_tokens, 15.0) + cost(cache_read, 0.3),
        input_cost: cost(input_tokens, 3.0),
        output_cost: cost(output_tokens, 15.0),
        cache_creation_cost: 0.0,
        cache_read_cost: cost(cache_read, 0.3),
        http_status: if failed { 529 } else { 200 },
        stream: n.is_multiple_of(2),
        channel_id: "c0ffee01".into(),
        channel_name: "anthropic-main".into(),
        endpoint: "messages".into(),
        client_id: client_id.into(),
        session_id: format!("session_{:08x}", n / 25),
        error: if failed {
            "upstream overloaded after 2 attempts".into()
        } else {
            String::new()
        },
        upstream_error: if failed {
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#.into()
        } else {
            String::new()
        },
        failover_info: if failed {
            r#"[{"channel":"anthropic-main","status":529},{"channel":"anthropic-backup","status":529}]"#.into()
        } else {
            String::new()
        },
        unpriced: false,
    }
}

fn arg(index: usize, default: usize, name: &str) -> anyhow::Result<usize> {
    match std::env::args().nth(index) {
        Some(text) => text
            .replace('_', "")
            .parse()
            .with_context(|| format!("{name} must be a number, not '{text}'")),
        None => Ok(default),
    }
}

#[expect(clippy::print_stdout, reason = "a benchmark example reports on stdout")]
#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let rows = arg(1, DEFAULT_ROWS, "ROWS")?;
    let batch = arg(2, DEFAULT_BATCH, "BATCH")?;
    let url = std::env::var(URL_VAR).with_context(|| {
        format!("{URL_VAR} must name a PostgreSQL server (bench/log_shipping.sh starts one)")
    })?;
    let server = Target::parse(&url).map_err(|e| anyhow::anyhow!("{URL_VAR}: {e}"))?;
    let dbname = format!("relaybox_ship_bench_{}", std::process::id());
    let admin = connect(&server).await?;
    admin
        .batch_execute(&format!("CREATE DATABASE {dbname}"))
        .await?;
    let target = server.with_dbname(&dbname);
    let outcome = run(rows, batch, &target).await;
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {dbname} WITH (FORCE)"))
        .await?;
    let report = outcome?;
    for line in report {
        println!("{line}");
    }
    Ok(())
}

#[expect(clippy::cast_precision_loss, reason = "row counts are far below 2^52")]
async fn run(rows: usize, batch: usize, target: &Target) -> anyhow::Result<Vec<String>> {
    let mut report = Vec::new();
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("logs.sqlite");
    let logs = LogDb::open(&path, OpenOptions::default())?;

    // 1. Fill.
    let clients: Vec<String> = (0..CLIENT_KEYS).map(|_| new_id()).collect();
    let start = relaybox::domain::now() - time::Duration::milliseconds(rows as i64 * 10);
    let filled = Instant::now();
    for first in (0..rows).step_by(10_000) {
        let chunk: Vec<RequestLog> = (first..rows.min(first + 10_000))
            .map(|n| {
                let at = start + time::Duration::milliseconds(n as i64 * 10);
                realistic_row(n, at, &clients[n % CLIENT_KEYS])
            })
            .collect();
        logs.insert_logs(&chunk)?;
    }
    let file_mb = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0) as f64 / 1_048_576.0;
    report.push(format!(
        "log shipping: {rows} rows ({file_mb:.0} MB logs.sqlite, filled in {:.1} s), batch {batch}",
        filled.elapsed().as_secs_f64()
    ));
    // A copy for the step pass, taken before anything is shipped.
    let copy_path = dir.path().join("copy.sqlite");
    logs.backup_to(&copy_path)?;

    // 2. The real loop.
    let pg = Arc::new(PgStore::connect(target).await?);
    let options = ShipOptions {
        batch_rows: batch,
        ..ShipOptions::default()
    };
    let shipper = LogShipper::new(logs.clone(), Arc::clone(&pg), "bench", options.clone());
    let status = shipper.status();
    let cancel = CancellationToken::new();
    let started = Instant::now();
    #[expect(
        clippy::disallowed_methods,
        reason = "the benchmark is the whole program"
    )]
    let running = tokio::spawn(shipper.run(cancel.clone()));
    loop {
        let snapshot = status.snapshot();
        if snapshot.cursor == rows as i64 && snapshot.backlog_rows == 0 {
            break;
        }
        if let Some(error) = snapshot.last_error {
            bail!("shipping failed: {error}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed();
    cancel.cancel();
    running.await??;
    let client = connect(target).await?;
    let in_pg: i64 = client
        .query_one("SELECT count(*) FROM request_log", &[])
        .await?
        .get(0);
    if in_pg != rows as i64 {
        bail!("PostgreSQL holds {in_pg} rows, not {rows}");
    }
    let rate = rows as f64 / elapsed.as_secs_f64();
    report.push(format!(
        "  loop   {rate:>9.0} rows/s  ({:.2} s for {rows} rows, LogShipper::run)",
        elapsed.as_secs_f64()
    ));

    // 3. Step by step, from the copy, into the emptied table.
    client.batch_execute("TRUNCATE request_log").await?;
    let copy = LogDb::open(&copy_path, OpenOptions::default())?;
    let mut shipper = LogShipper::new(copy.clone(), Arc::clone(&pg), "bench", options);
    let (mut read, mut send, mut mark) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let mut batches = Vec::new();
    loop {
        let t = Instant::now();
        let rows = shipper.next_batch().await?;
        read += t.elapsed();
        if rows.is_empty() {
            break;
        }
        let t = Instant::now();
        shipper.send(&rows).await?;
        send += t.elapsed();
        let t = Instant::now();
        shipper.mark_shipped(&rows).await?;
        mark += t.elapsed();
        if batches.len() < 20 {
            batches.push(rows);
        }
    }
    let total = read + send + mark;
    let per_s = |d: Duration| rows as f64 / d.as_secs_f64();
    report.push(format!(
        "  steps  {:>9.0} rows/s  (read {:.2} s = {:.0} rows/s, PostgreSQL {:.2} s = {:.0} rows/s, cursor {:.2} s)",
        per_s(total),
        read.as_secs_f64(),
        per_s(read),
        send.as_secs_f64(),
        per_s(send),
        mark.as_secs_f64()
    ));

    // 4. The PostgreSQL part alone, both ways, on the first batches, into an emptied table.
    let sample: usize = batches.iter().map(Vec::len).sum();
    let mut known = relaybox::store::postgres::logs::KnownPartitions::default();
    client.batch_execute("TRUNCATE request_log").await?;
    let t = Instant::now();
    for rows in &batches {
        pg.insert_log_batch("bench", rows, &mut known).await?;
    }
    let copy = t.elapsed();
    client.batch_execute("TRUNCATE request_log").await?;
    let t = Instant::now();
    for rows in &batches {
        pg.insert_log_batch_skipping_known("bench", rows, &mut known)
            .await?;
    }
    let unnest = t.elapsed();
    let sample_rate = |d: Duration| sample as f64 / d.as_secs_f64();
    report.push(format!(
        "  PostgreSQL part alone, {sample} rows: COPY {:.0} rows/s, INSERT … unnest … ON CONFLICT DO NOTHING (the resend path) {:.0} rows/s",
        sample_rate(copy),
        sample_rate(unnest)
    ));
    report.push(format!(
        "RESULT rows_per_sec={rate:.0} rows={rows} batch={batch} copy_rows_per_sec={:.0} unnest_rows_per_sec={:.0}",
        sample_rate(copy),
        sample_rate(unnest)
    ));
    Ok(report)
}

async fn connect(target: &Target) -> anyhow::Result<tokio_postgres::Client> {
    let (client, connection) = target.config.connect(tokio_postgres::NoTls).await?;
    // The bench's own connection, ended with the process.
    #[expect(clippy::disallowed_methods, reason = "a benchmark's connection driver")]
    tokio::spawn(connection);
    Ok(client)
}
