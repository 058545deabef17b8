//! Usage statistics (`GET /admin/api/usage`, `GET /admin/api/summary`) over a real
//! `logs.sqlite`: rows written through the log writer's path, then every grouping and filter
//! compared with a reference computed here from the seeded rows; range edges; refused
//! parameters; the summary; costs as decimal strings; and the back-fill of rows logged before
//! the roll-up tables existed.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod common;

use std::collections::BTreeMap;

use axum::http::StatusCode;
use common::in_process::InProcessApp;
use relaybox::store::sqlite::RequestLog;
use relaybox::store::sqlite::rollup::{bucket_of, bucket_range};
use serde_json::{Value, json};

const ROWS: usize = 240;

/// Start of the seeded traffic; a row every 13 minutes from here spans about 52 hours.
const BASE_MS: i64 = 1_795_615_200_000; // 2026-11-25T20:00:00Z

fn rfc3339_ms(unix_ms: i64) -> String {
    let at =
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ms) * 1_000_000).unwrap();
    relaybox::domain::format_time(at)
}

fn seed_row(i: usize, start_ms: i64, laptop: &str, alpha: &str) -> RequestLog {
    let n = i as i64;
    let http_status = [200, 200, 429, 200, 529, 200, 400, 200][i % 8];
    let status = match (http_status, i % 11) {
        (200, 0) => "client_disconnect",
        (200, _) => "success",
        (429, _) if i.is_multiple_of(3) => "rejected",
        _ => "error",
    };
    let stream = i % 3 != 1;
    RequestLog {
        id: format!("req_{i:04}"),
        status: status.into(),
        initial_time: rfc3339_ms(start_ms),
        first_token_time: stream.then(|| rfc3339_ms(start_ms + (n * 37) % 3000 + 5)),
        duration_ms: (n * n * 7) % 20_000 + 1,
        model: ["claude-a", "claude-b", "gpt-x"][i % 3].into(),
        channel_id: if i.is_multiple_of(4) {
            alpha
        } else {
            "ch-other"
        }
        .into(),
        endpoint: if i.is_multiple_of(5) {
            "openai_chat"
        } else {
            "messages"
        }
        .into(),
        client_id: if i.is_multiple_of(2) {
            laptop
        } else {
            "key-gone"
        }
        .into(),
        input_tokens: 10 + n,
        output_tokens: 3 * n % 50,
        cache_creation_input_tokens: n % 4,
        cache_read_input_tokens: n % 9,
        total_tokens: 10 + n + 3 * n % 50 + n % 4 + n % 9,
        // Costs that are not exact in binary: summing floats would show noise.
        price: 0.000_861_7 * (n % 7) as f64 + 0.000_000_1 * n as f64,
        http_status,
        stream,
        ..RequestLog::default()
    }
}

struct Seed {
    app: InProcessApp,
    laptop: String,
    alpha: String,
    rows: Vec<RequestLog>,
}

async fn seeded() -> Seed {
    let app = InProcessApp::start().await;
    let (laptop, _) = app.create_key(json!({ "name": "laptop" })).await;
    let alpha = app
        .add_mock_channel("http://127.0.0.1:9", json!({ "name": "alpha" }))
        .await;
    let rows: Vec<RequestLog> = (0..ROWS)
        .map(|i| {
            seed_row(
                i,
                BASE_MS + i as i64 * 13 * 60_000 + (i as i64 * 7919) % 60_000,
                &laptop,
                &alpha,
            )
        })
        .collect();
    // Batches of several sizes, so groups are added to across commits.
    let logs = &app.app.data.stores.logs;
    let mut written = 0;
    for chunk in rows.chunks(37) {
        written += logs.insert_logs(chunk).unwrap();
    }
    assert_eq!(written, ROWS);
    Seed {
        app,
        laptop,
        alpha,
        rows,
    }
}

fn nanos(usd: f64) -> i64 {
    (usd * 1e9).round() as i64
}

fn usd(nanos: i64) -> String {
    let text = format!("{}.{:09}", nanos / 1_000_000_000, nanos % 1_000_000_000);
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// What the test expects of one group.
#[derive(Default, Debug)]
struct Expected {
    requests: i64,
    errors: i64,
    input_tokens: i64,
    output_tokens: i64,
    cache_creation_tokens: i64,
    cache_read_tokens: i64,
    total_tokens: i64,
    cost_nanos: i64,
    latencies: Vec<i64>,
    ttfts: Vec<i64>,
}

fn ms_of(time: &str) -> i64 {
    let at =
        time::OffsetDateTime::parse(time, &time::format_description::well_known::Rfc3339).unwrap();
    (at.unix_timestamp_nanos() / 1_000_000) as i64
}

impl Expected {
    fn add(&mut self, r: &RequestLog) {
        self.requests += 1;
        self.errors +=
            i64::from(r.http_status >= 400 || r.status == "error" || r.status == "rejected");
        self.input_tokens += r.input_tokens;
        self.output_tokens += r.output_tokens;
        self.cache_creation_tokens += r.cache_creation_input_tokens;
        self.cache_read_tokens += r.cache_read_input_tokens;
        self.total_tokens += r.total_tokens;
        self.cost_nanos += nanos(r.price);
        self.latencies.push(r.duration_ms);
        if r.stream {
            let first = r.first_token_time.as_deref().unwrap();
            self.ttfts.push(ms_of(first) - ms_of(&r.initial_time));
        }
    }

    /// Compare with an API figure object.
    fn check(&self, what: &str, got: &Value) {
        for (field, value) in [
            ("requests", self.requests),
            ("errors", self.errors),
            ("input_tokens", self.input_tokens),
            ("output_tokens", self.output_tokens),
            ("cache_creation_tokens", self.cache_creation_tokens),
            ("cache_read_tokens", self.cache_read_tokens),
            ("total_tokens", self.total_tokens),
        ] {
            assert_eq!(got[field], json!(value), "{what}: {field} of {got}");
        }
        assert_eq!(got["cost"], json!(usd(self.cost_nanos)), "{what}: cost");
        check_quantiles(what, "latency_ms", &self.latencies, &got["latency_ms"]);
        check_quantiles(what, "ttft_ms", &self.ttfts, &got["ttft_ms"]);
    }
}

/// p50/p95 fall in the histogram bucket of the exact quantile (the sample at rank ⌈q·n⌉).
fn check_quantiles(what: &str, field: &str, samples: &[i64], got: &Value) {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    for (name, q) in [("p50", 0.5), ("p95", 0.95)] {
        if sorted.is_empty() {
            assert!(
                got[name].is_null(),
                "{what}: {field}.{name} without samples"
            );
            continue;
        }
        let rank = ((q * sorted.len() as f64).ceil() as usize).max(1);
        let exact = sorted[rank - 1];
        let (lower, upper) = bucket_range(bucket_of(exact));
        let value = got[name]
            .as_i64()
            .unwrap_or_else(|| panic!("{what}: {field}.{name} = {got}"));
        assert!(
            value >= lower && upper.is_none_or(|u| value < u),
            "{what}: {field}.{name} = {value}, exact {exact} is in [{lower}, {upper:?})"
        );
    }
}

/// The group fields of a row, as the API names and orders them.
type GroupFields = Vec<(&'static str, Value)>;

fn group_of(r: &RequestLog, group_by: &[&str], seed: &Seed) -> GroupFields {
    let mut fields = Vec::new();
    for dimension in group_by {
        match *dimension {
            "hour" => fields.push(("hour", json!(format!("{}:00:00Z", &r.initial_time[..13])))),
            "day" => fields.push(("day", json!(r.initial_time[..10]))),
            "key" => {
                fields.push(("key_id", json!(r.client_id)));
                let name = (r.client_id == seed.laptop).then_some("laptop");
                fields.push(("key_name", json!(name)));
            }
            "model" => fields.push(("model", json!(r.model))),
            "channel" => {
                fields.push(("channel_id", json!(r.channel_id)));
                let name = (r.channel_id == seed.alpha).then_some("alpha");
                fields.push(("channel_name", json!(name)));
            }
            "endpoint" => fields.push(("endpoint", json!(r.endpoint))),
            "status" => fields.push(("status", json!(r.http_status))),
            other => panic!("{other}"),
        }
    }
    fields
}

/// The sort key the API orders rows by: time, key id, model, channel id, endpoint, status.
fn order_key(fields: &GroupFields) -> Vec<String> {
    [
        "hour",
        "day",
        "key_id",
        "model",
        "channel_id",
        "endpoint",
        "status",
    ]
    .iter()
    .map(|name| {
        fields
            .iter()
            .find(|(field, _)| field == name)
            .map_or(String::new(), |(_, v)| match v {
                Value::Number(n) => format!("{:05}", n.as_i64().unwrap()),
                other => other.as_str().unwrap_or("").to_string(),
            })
    })
    .collect()
}

async fn usage(app: &InProcessApp, query: &str) -> Value {
    let (status, body) = app.admin("GET", &format!("/usage?{query}"), None).await;
    assert_eq!(status, StatusCode::OK, "{query}: {body}");
    body
}

/// Ask the API and compare every row and the totals with the reference over `[from, to)`.
async fn check_query(
    seed: &Seed,
    range: (&str, &str),
    group_by: &[&str],
    filter: &str,
    keep: &dyn Fn(&RequestLog) -> bool,
) -> Value {
    let query = format!(
        "from={}&to={}&group_by={}{}",
        range.0,
        range.1,
        group_by.join(","),
        if filter.is_empty() {
            String::new()
        } else {
            format!("&{filter}")
        }
    );
    let body = usage(&seed.app, &query).await;
    let (from_ms, to_ms) = (
        ms_of(body["from"].as_str().unwrap()),
        ms_of(body["to"].as_str().unwrap()),
    );
    let mut expected: BTreeMap<Vec<String>, (GroupFields, Expected)> = BTreeMap::new();
    let mut totals = Expected::default();
    for r in seed.rows.iter().filter(|r| {
        let at = ms_of(&r.initial_time);
        at >= from_ms && at < to_ms && keep(r)
    }) {
        let fields = group_of(r, group_by, seed);
        expected
            .entry(order_key(&fields))
            .or_insert_with(|| (fields, Expected::default()))
            .1
            .add(r);
        totals.add(r);
    }
    assert_eq!(body["group_by"], json!(group_by), "{query}");
    totals.check(&format!("{query} totals"), &body["totals"]);
    let rows = body["rows"].as_array().unwrap();
    assert_eq!(
        rows.len(),
        if group_by.is_empty() && totals.requests > 0 {
            1
        } else {
            expected.len()
        },
        "{query}: {body}"
    );
    if group_by.is_empty() {
        return body;
    }
    for (row, (order, (fields, figures))) in rows.iter().zip(&expected) {
        for (name, value) in fields {
            assert_eq!(
                &row[*name], value,
                "{query}: {name} of {row} (expected group {order:?})"
            );
        }
        figures.check(&format!("{query} {order:?}"), row);
    }
    body
}

/// Which seeded rows a filter keeps.
type Keep = Box<dyn Fn(&RequestLog) -> bool>;

const ALL_DAYS: (&str, &str) = ("2026-11-25T00:00:00Z", "2026-11-29T00:00:00Z");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_grouping_matches_the_seeded_rows() {
    let seed = seeded().await;
    for group_by in [
        &[][..],
        &["hour"],
        &["day"],
        &["key"],
        &["model"],
        &["channel"],
        &["endpoint"],
        &["status"],
        &["day", "model"],
        &["key", "channel", "endpoint", "status"],
        &["hour", "key"],
    ] {
        check_query(&seed, ALL_DAYS, group_by, "", &|_| true).await;
    }
    let body = usage(&seed.app, &format!("from={}&to={}", ALL_DAYS.0, ALL_DAYS.1)).await;
    assert_eq!(body["totals"]["requests"], json!(ROWS));
    assert_eq!(body["from"], json!("2026-11-25T00:00:00Z"));
    seed.app.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_filter_matches_the_seeded_rows() {
    let seed = seeded().await;
    let (laptop, alpha) = (seed.laptop.clone(), seed.alpha.clone());
    let cases: Vec<(String, Keep)> = vec![
        (
            "key=laptop".into(),
            Box::new(move |r| r.client_id == laptop),
        ),
        (
            format!("key={}", seed.laptop),
            Box::new({
                let laptop = seed.laptop.clone();
                move |r| r.client_id == laptop
            }),
        ),
        // A deleted key: its id still finds its rows.
        (
            "key=key-gone".into(),
            Box::new(|r| r.client_id == "key-gone"),
        ),
        ("key=nobody".into(), Box::new(|_| false)),
        ("model=claude-b".into(), Box::new(|r| r.model == "claude-b")),
        (
            "channel=alpha".into(),
            Box::new(move |r| r.channel_id == alpha),
        ),
        (
            "channel=ch-other".into(),
            Box::new(|r| r.channel_id == "ch-other"),
        ),
        (
            "endpoint=openai_chat".into(),
            Box::new(|r| r.endpoint == "openai_chat"),
        ),
        (
            "status=2xx".into(),
            Box::new(|r| (200..300).contains(&r.http_status)),
        ),
        (
            "status=4xx".into(),
            Box::new(|r| (400..500).contains(&r.http_status)),
        ),
        ("status=529".into(), Box::new(|r| r.http_status == 529)),
        (
            "model=gpt-x&status=4xx&endpoint=messages".into(),
            Box::new(|r| {
                r.model == "gpt-x"
                    && (400..500).contains(&r.http_status)
                    && r.endpoint == "messages"
            }),
        ),
    ];
    for (filter, keep) in &cases {
        check_query(&seed, ALL_DAYS, &["day", "key"], filter, keep.as_ref()).await;
        check_query(&seed, ALL_DAYS, &[], filter, keep.as_ref()).await;
    }
    seed.app.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_days_at_the_edges_equal_the_hourly_sums() {
    let seed = seeded().await;
    // Rounded outward to 21:00 and 06:00: two partial days around one whole day.
    let range = ("2026-11-25T21:30:00Z", "2026-11-27T05:10:00%2B00:00");
    let totals = check_query(&seed, range, &[], "", &|_| true).await;
    assert_eq!(totals["from"], json!("2026-11-25T21:00:00Z"));
    assert_eq!(totals["to"], json!("2026-11-27T06:00:00Z"));
    let hourly = check_query(&seed, range, &["hour"], "", &|_| true).await;
    let by_day = check_query(&seed, range, &["day", "model"], "", &|_| true).await;
    for field in ["requests", "errors", "total_tokens", "input_tokens"] {
        let sum = |body: &Value| -> i64 {
            body["rows"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r[field].as_i64().unwrap())
                .sum()
        };
        assert_eq!(
            sum(&hourly),
            totals["totals"][field].as_i64().unwrap(),
            "{field}"
        );
        assert_eq!(
            sum(&by_day),
            totals["totals"][field].as_i64().unwrap(),
            "{field}"
        );
    }
    assert_eq!(hourly["totals"], totals["totals"]);
    // Another offset, the same instants.
    let shifted = usage(
        &seed.app,
        "from=2026-11-25T23:30:00%2B02:00&to=2026-11-27T07:10:00%2B02:00",
    )
    .await;
    assert_eq!(shifted["totals"], totals["totals"]);
    seed.app.close().await;
}

/// Completed days are answered from memory once summed; a row written into one of them later
/// (a late or imported row) shows up in the next answer, for every question shape.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_written_into_a_cached_past_day_shows_up_in_the_next_read() {
    let mut seed = seeded().await;
    let laptop = seed.laptop.clone();
    let asks: [(&[&str], String); 3] = [
        (&["day", "model"], String::new()),
        (&["key"], String::new()),
        (&[], format!("key={laptop}")),
    ];
    let keep_for = |filter: &str| -> Keep {
        let laptop = laptop.clone();
        if filter.is_empty() {
            Box::new(|_| true)
        } else {
            Box::new(move |r| r.client_id == laptop)
        }
    };
    for (group_by, filter) in &asks {
        check_query(&seed, ALL_DAYS, group_by, filter, &*keep_for(filter)).await;
    }
    // Asked again: the same answers (now from the cached days).
    let before = usage(
        &seed.app,
        "from=2026-11-25T00:00:00Z&to=2026-11-29T00:00:00Z&group_by=day",
    )
    .await;
    for (group_by, filter) in &asks {
        check_query(&seed, ALL_DAYS, group_by, filter, &*keep_for(filter)).await;
    }
    let mut late = seed_row(8, BASE_MS + 20 * 3_600_000, &seed.laptop, &seed.alpha);
    late.id = "req_late".into();
    late.model = "claude-late".into();
    assert!(
        late.initial_time.starts_with("2026-11-26T"),
        "{}",
        late.initial_time
    );
    assert_eq!(
        seed.app
            .app
            .data
            .stores
            .logs
            .insert_logs(std::slice::from_ref(&late))
            .unwrap(),
        1
    );
    seed.rows.push(late);
    for (group_by, filter) in &asks {
        check_query(&seed, ALL_DAYS, group_by, filter, &*keep_for(filter)).await;
    }
    let after = usage(
        &seed.app,
        "from=2026-11-25T00:00:00Z&to=2026-11-29T00:00:00Z&group_by=day",
    )
    .await;
    let requests_of = |body: &Value, day: &str| {
        body["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["day"] == json!(day))
            .map(|r| r["requests"].as_i64().unwrap())
            .unwrap()
    };
    assert_eq!(
        requests_of(&after, "2026-11-26"),
        requests_of(&before, "2026-11-26") + 1
    );
    assert_eq!(
        requests_of(&after, "2026-11-25"),
        requests_of(&before, "2026-11-25")
    );
    seed.app.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_parameters_are_refused_naming_them() {
    let seed = seeded().await;
    for (query, field) in [
        ("colour=red", "colour"),
        ("model=a&model=b", "model"),
        ("group_by=week", "group_by"),
        ("group_by=day,day", "group_by"),
        ("from=yesterday", "from"),
        ("to=2026-13-01T00:00:00Z", "to"),
        ("status=7xx", "status"),
        ("status=abc", "status"),
        ("from=2026-11-26T00:00:00Z&to=2026-11-25T00:00:00Z", "to"),
    ] {
        let (status, body) = seed
            .app
            .admin("GET", &format!("/usage?{query}"), None)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(body["error"]["field"], json!(field), "{query}: {body}");
    }
    // Nothing is written by a read, refused or not.
    assert_eq!(
        seed.app.app.data.stores.logs.count_logs().unwrap(),
        ROWS as u64
    );
    seed.app.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_rows_carry_costs_as_decimal_strings() {
    let seed = seeded().await;
    for r in seed.rows.iter().take(8) {
        let (status, row) = seed
            .app
            .admin("GET", &format!("/logs/{}", r.id), None)
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(row["price"], json!(usd(nanos(r.price))), "{row}");
        assert_eq!(row["input_cost"], json!("0"), "{row}");
    }
    let (_, page) = seed.app.admin("GET", "/logs?limit=3", None).await;
    for row in page["logs"].as_array().unwrap() {
        assert!(row["price"].is_string(), "{row}");
    }
    seed.app.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_summary_counts_today_and_this_month() {
    let seed = seeded().await;
    let now = relaybox::domain::now();
    let now_ms = (now.unix_timestamp_nanos() / 1_000_000) as i64;
    // Rows from the last hours (today where they fall on today) and the earlier month.
    let recent: Vec<RequestLog> = (0..30)
        .map(|i| {
            seed_row(
                1000 + i,
                now_ms - i as i64 * 47 * 60_000 - 1000,
                &seed.laptop,
                &seed.alpha,
            )
        })
        .collect();
    seed.app.app.data.stores.logs.insert_logs(&recent).unwrap();
    let today = relaybox::domain::format_time(now)[..10].to_string();
    let month = today[..7].to_string();
    let all: Vec<&RequestLog> = seed.rows.iter().chain(&recent).collect();
    let mut expected_today = Expected::default();
    let mut expected_month = Expected::default();
    for r in &all {
        if r.initial_time.starts_with(&today) {
            expected_today.add(r);
        }
        if r.initial_time.starts_with(&month) {
            expected_month.add(r);
        }
    }
    let (status, summary) = seed.app.admin("GET", "/summary", None).await;
    assert_eq!(status, StatusCode::OK, "{summary}");
    for (prefix, expected) in [("today", &expected_today), ("month", &expected_month)] {
        assert_eq!(
            summary[format!("{prefix}_requests")],
            json!(expected.requests),
            "{summary}"
        );
        assert_eq!(
            summary[format!("{prefix}_tokens")],
            json!(expected.total_tokens)
        );
        assert_eq!(
            summary[format!("{prefix}_cost")],
            json!(usd(expected.cost_nanos))
        );
        assert_eq!(summary[format!("{prefix}_errors")], json!(expected.errors));
        let rate = if expected.requests == 0 {
            0.0
        } else {
            (expected.errors as f64 / expected.requests as f64 * 10_000.0).round() / 10_000.0
        };
        assert_eq!(summary[format!("{prefix}_error_rate")], json!(rate));
    }
    assert!(expected_today.requests > 0);
    assert_eq!(summary["status"], "ok");
    assert_eq!(summary["keys_total"], 2, "the admin key and laptop");
    assert_eq!(summary["keys_active"], 2);
    assert_eq!(summary["channels_total"], 1);
    assert_eq!(summary["channels_up"], 1);
    assert_eq!(summary["channels_down"], 0);
    assert_eq!(summary["config_reload_ok"], true);
    assert!(summary["config_reload_error"].is_null());
    seed.app.close().await;
}

/// Rows logged by a version without the roll-up tables are counted after the upgrade.
#[test]
fn rows_logged_before_the_upgrade_are_back_filled() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let rows: Vec<RequestLog> = (0..ROWS)
        .map(|i| seed_row(i, BASE_MS + i as i64 * 11 * 60_000, "key-old", "ch-old"))
        .collect();
    {
        let mut conn = rusqlite::Connection::open(data.join("logs.sqlite")).unwrap();
        relaybox::store::sqlite::migrate::run_to(&mut conn, 6).unwrap();
        let mut insert = conn
            .prepare(
                "INSERT INTO request_log (id, status, initial_time, first_token_time, duration_ms, model,
                   input_tokens, output_tokens, cache_creation_input_tokens, cache_read_input_tokens,
                   total_tokens, price, http_status, stream, channel_id, endpoint, client_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
            )
            .unwrap();
        for r in &rows {
            insert
                .execute(rusqlite::params![
                    r.id,
                    &*r.status,
                    r.initial_time,
                    r.first_token_time,
                    r.duration_ms,
                    r.model,
                    r.input_tokens,
                    r.output_tokens,
                    r.cache_creation_input_tokens,
                    r.cache_read_input_tokens,
                    r.total_tokens,
                    r.price,
                    r.http_status,
                    r.stream,
                    r.channel_id,
                    &*r.endpoint,
                    r.client_id,
                ])
                .unwrap();
        }
    }
    let server = common::TestServer::start(&data, &[]);
    let (status, body) = server.admin(
        "GET",
        &format!("/usage?from={}&to={}&group_by=day", ALL_DAYS.0, ALL_DAYS.1),
        None,
    );
    assert_eq!(status, 200, "{body}");
    let mut by_day: BTreeMap<String, Expected> = BTreeMap::new();
    for r in &rows {
        by_day
            .entry(r.initial_time[..10].to_string())
            .or_default()
            .add(r);
    }
    let got = body["rows"].as_array().unwrap();
    assert_eq!(got.len(), by_day.len(), "{body}");
    for (row, (day, expected)) in got.iter().zip(&by_day) {
        assert_eq!(row["day"], json!(day));
        expected.check(day, row);
    }
    // Keys by id (a key not in the configuration has no name).
    let (status, body) = server.admin(
        "GET",
        &format!("/usage?from={}&to={}&group_by=key", ALL_DAYS.0, ALL_DAYS.1),
        None,
    );
    assert_eq!(status, 200, "{body}");
    let old = rows.iter().filter(|r| r.client_id == "key-old").count();
    assert_eq!(body["rows"][1]["key_id"], "key-old", "{body}");
    assert!(body["rows"][1]["key_name"].is_null(), "{body}");
    assert_eq!(body["rows"][1]["requests"], json!(old), "{body}");
    server.stop();
}

/// Throughput of the writer path with the roll-ups, and the back-fill of a million rows.
/// `cargo test --release --test usage_stats -- --ignored --nocapture`
#[test]
#[ignore = "a measurement, run by hand in release mode"]
fn measure_writer_and_back_fill() {
    use relaybox::store::sqlite::{LogDb, OpenOptions};
    let tmp = tempfile::tempdir().unwrap();
    let rows: Vec<RequestLog> = (0..200_000)
        .map(|i| {
            let mut r = seed_row(i, BASE_MS + i as i64 * 400, "key-1", "ch-1");
            r.id = format!("bench-{i:07}");
            r
        })
        .collect();
    let db = LogDb::open(&tmp.path().join("writer.sqlite"), OpenOptions::default()).unwrap();
    let started = std::time::Instant::now();
    for batch in rows.chunks(500) {
        db.insert_logs(batch).unwrap();
    }
    let elapsed = started.elapsed();
    println!(
        "insert_logs: {} rows in {:.2} s = {:.0} rows/s (batches of 500)",
        rows.len(),
        elapsed.as_secs_f64(),
        rows.len() as f64 / elapsed.as_secs_f64()
    );

    let path = tmp.path().join("old.sqlite");
    {
        let mut conn = rusqlite::Connection::open(&path).unwrap();
        relaybox::store::sqlite::migrate::run_to(&mut conn, 6).unwrap();
        let tx = conn.transaction().unwrap();
        {
            let mut insert = tx
                .prepare(
                    "INSERT INTO request_log (id, status, initial_time, first_token_time, duration_ms, model,
                       input_tokens, output_tokens, total_tokens, price, http_status, stream, channel_id, endpoint, client_id)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
                )
                .unwrap();
            for i in 0..1_000_000usize {
                // 90 days of traffic: one row every ~7.8 s.
                let r = seed_row(
                    i,
                    BASE_MS + i as i64 * 7_776,
                    ["k1", "k2", "k3", "k4"][i % 4],
                    "ch-1",
                );
                insert
                    .execute(rusqlite::params![
                        format!("old-{i:07}"),
                        &*r.status,
                        r.initial_time,
                        r.first_token_time,
                        r.duration_ms,
                        r.model,
                        r.input_tokens,
                        r.output_tokens,
                        r.total_tokens,
                        r.price,
                        r.http_status,
                        r.stream,
                        r.channel_id,
                        &*r.endpoint,
                        r.client_id,
                    ])
                    .unwrap();
            }
        }
        tx.commit().unwrap();
    }
    let started = std::time::Instant::now();
    let db = LogDb::open(&path, OpenOptions::default()).unwrap();
    println!(
        "back-fill of 1,000,000 rows over 90 days: {:.2} s",
        started.elapsed().as_secs_f64()
    );
    let hourly: i64 = db
        .lock()
        .query_row("SELECT COUNT(*) FROM usage_hourly", [], |r| r.get(0))
        .unwrap();
    let daily: i64 = db
        .lock()
        .query_row("SELECT COUNT(*) FROM usage_daily_detail", [], |r| r.get(0))
        .unwrap();
    println!("roll-up rows: {hourly} hourly, {daily} daily");
    let reader = db.reader();
    let query = relaybox::store::sqlite::UsageQuery::totals(
        time::OffsetDateTime::from_unix_timestamp(BASE_MS / 1000).unwrap(),
        time::OffsetDateTime::from_unix_timestamp(BASE_MS / 1000 + 91 * 86_400).unwrap(),
    );
    let started = std::time::Instant::now();
    let report = reader.usage(&query, 10_000).unwrap();
    println!(
        "90-day totals: {} requests in {:.1} ms",
        report.totals.requests,
        started.elapsed().as_secs_f64() * 1000.0
    );
    assert_eq!(report.totals.requests, 1_000_000);
}
