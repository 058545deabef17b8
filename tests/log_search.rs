//! The admin log search (`GET /admin/api/logs`, `GET /admin/api/logs/{id}`) over a real
//! `logs.sqlite`, through the in-process app: every filter against seeded rows with known
//! answers, keys and channels by name, refused parameters, and cursor pages that stay stable
//! while rows are written between page fetches.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod common;

use std::collections::HashSet;

use axum::http::StatusCode;
use common::in_process::InProcessApp;
use relaybox::store::sqlite::RequestLog;
use serde_json::{Value, json};

const ROWS: usize = 30;

/// What a seeded row is made of, so each test can compute the expected answer itself.
struct Seed {
    laptop: String,
    alpha: String,
    rows: Vec<RequestLog>,
}

fn seed_row(i: usize, laptop: &str, alpha: &str) -> RequestLog {
    // Rows 10 and 11 share a start time: the cursor must order them by id.
    let second = if i == 11 { 10 } else { i };
    let http_status = if i.is_multiple_of(7) {
        529
    } else if i.is_multiple_of(6) {
        429
    } else {
        200
    };
    RequestLog {
        id: format!("req_{i:03}"),
        status: if http_status == 200 {
            "success"
        } else {
            "error"
        }
        .into(),
        initial_time: format!("2026-11-21T10:00:{second:02}.000Z"),
        duration_ms: 100,
        model: if i.is_multiple_of(2) {
            "claude-a"
        } else {
            "claude-b"
        }
        .into(),
        channel_id: if i.is_multiple_of(4) {
            alpha
        } else {
            "ch-other"
        }
        .into(),
        channel_name: if i.is_multiple_of(4) {
            "alpha"
        } else {
            "other"
        }
        .into(),
        endpoint: if i.is_multiple_of(5) {
            "openai_chat"
        } else {
            "messages"
        }
        .into(),
        client_id: if i.is_multiple_of(3) {
            laptop
        } else {
            "key-gone"
        }
        .into(),
        session_id: if i.is_multiple_of(10) {
            "sess-x".into()
        } else {
            String::new()
        },
        http_status,
        stream: i.is_multiple_of(2),
        error: if http_status == 529 {
            "Upstream Overloaded".into()
        } else {
            String::new()
        },
        failover_info: if i == 3 {
            r#"{"attempts":[{"channel":"a","status":529},{"channel":"b","status":200}]}"#.into()
        } else {
            String::new()
        },
        input_tokens: 10,
        output_tokens: 5,
        total_tokens: 15,
        ..RequestLog::default()
    }
}

async fn seeded() -> (InProcessApp, Seed) {
    let app = InProcessApp::start().await;
    let (laptop, _) = app.create_key(json!({ "name": "laptop" })).await;
    let alpha = app
        .add_mock_channel("http://127.0.0.1:9", json!({ "name": "alpha" }))
        .await;
    let rows: Vec<RequestLog> = (0..ROWS).map(|i| seed_row(i, &laptop, &alpha)).collect();
    assert_eq!(
        app.app.data.stores.logs.insert_logs(&rows).unwrap(),
        ROWS,
        "every seeded row is written"
    );
    (
        app,
        Seed {
            laptop,
            alpha,
            rows,
        },
    )
}

/// Newest first, as the API orders: start time, then id, both descending.
fn newest_first(rows: impl Iterator<Item = RequestLog>) -> Vec<String> {
    let mut rows: Vec<RequestLog> = rows.collect();
    rows.sort_by(|a, b| (&b.initial_time, &b.id).cmp(&(&a.initial_time, &a.id)));
    rows.into_iter().map(|r| r.id).collect()
}

fn ids(body: &Value) -> Vec<String> {
    body["logs"]
        .as_array()
        .unwrap_or_else(|| panic!("a list of logs: {body}"))
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

async fn search(app: &InProcessApp, query: &str) -> Vec<String> {
    let (status, body) = app.admin("GET", &format!("/logs?{query}"), None).await;
    assert_eq!(status, StatusCode::OK, "{query}: {body}");
    assert!(body["next_cursor"].is_null(), "{query}: one page: {body}");
    ids(&body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_filter_finds_exactly_the_matching_rows() {
    let (app, seed) = seeded().await;
    let expect = |keep: &dyn Fn(&RequestLog) -> bool| {
        newest_first(seed.rows.iter().filter(|r| keep(r)).cloned())
    };
    let all = expect(&|_| true);
    assert_eq!(all.len(), ROWS);
    assert_eq!(search(&app, "limit=500").await, all);
    // The tie at 10:00:10 is broken by id, newest (largest) first.
    let tie = all.iter().position(|id| id == "req_011").unwrap();
    assert_eq!(all[tie + 1], "req_010");

    let cases: Vec<(String, Vec<String>)> = vec![
        (
            "from=2026-11-21T10:00:05Z&to=2026-11-21T10:00:15Z".into(),
            expect(&|r| {
                r.initial_time.as_str() >= "2026-11-21T10:00:05.000Z"
                    && r.initial_time.as_str() < "2026-11-21T10:00:15.000Z"
            }),
        ),
        // Another offset, the same instant.
        (
            "from=2026-11-21T12:00:20%2B02:00".into(),
            expect(&|r| r.initial_time.as_str() >= "2026-11-21T10:00:20.000Z"),
        ),
        ("key=laptop".into(), expect(&|r| r.client_id == seed.laptop)),
        (
            format!("key={}", seed.laptop),
            expect(&|r| r.client_id == seed.laptop),
        ),
        // A key no longer in the configuration: its id still finds its rows.
        (
            "key=key-gone".into(),
            expect(&|r| r.client_id == "key-gone"),
        ),
        ("key=nobody".into(), vec![]),
        ("model=claude-b".into(), expect(&|r| r.model == "claude-b")),
        (
            "channel=alpha".into(),
            expect(&|r| r.channel_id == seed.alpha),
        ),
        (
            format!("channel={}", seed.alpha),
            expect(&|r| r.channel_id == seed.alpha),
        ),
        (
            "endpoint=openai_chat".into(),
            expect(&|r| r.endpoint == "openai_chat"),
        ),
        (
            "status=2xx".into(),
            expect(&|r| (200..300).contains(&r.http_status)),
        ),
        (
            "status=4xx".into(),
            expect(&|r| (400..500).contains(&r.http_status)),
        ),
        ("status=5XX".into(), expect(&|r| r.http_status >= 500)),
        ("status=529".into(), expect(&|r| r.http_status == 529)),
        ("status=404".into(), vec![]),
        ("outcome=error".into(), expect(&|r| r.status == "error")),
        ("stream=true".into(), expect(&|r| r.stream)),
        ("stream=false".into(), expect(&|r| !r.stream)),
        (
            "session=sess-x".into(),
            expect(&|r| r.session_id == "sess-x"),
        ),
        (
            "error=overloaded".into(),
            expect(&|r| r.error.contains("Overloaded")),
        ),
        (
            "key=laptop&model=claude-a&stream=true&status=5xx".into(),
            expect(&|r| {
                r.client_id == seed.laptop
                    && r.model == "claude-a"
                    && r.stream
                    && r.http_status >= 500
            }),
        ),
    ];
    for (query, expected) in cases {
        let found = search(&app, &format!("{query}&limit=500")).await;
        assert_eq!(found, expected, "{query}");
    }
    // Hand-counted, so the reference filters above are checked too.
    assert_eq!(search(&app, "key=laptop").await.len(), 10);
    assert_eq!(
        search(&app, "status=529").await,
        ["req_028", "req_021", "req_014", "req_007", "req_000"]
    );
    assert_eq!(
        search(&app, "session=sess-x").await,
        ["req_020", "req_010", "req_000"]
    );
    app.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_parameters_and_bad_values_are_refused_naming_them() {
    let (app, _seed) = seeded().await;
    for (query, field) in [
        ("colour=red", "colour"),
        ("limit=10&keyy=laptop", "keyy"),
        ("status=abc", "status"),
        ("status=6xx", "status"),
        ("status=99", "status"),
        ("stream=yes", "stream"),
        ("limit=0", "limit"),
        ("limit=ten", "limit"),
        ("from=yesterday", "from"),
        ("to=2026-11-21", "to"),
        ("cursor=garbage!", "cursor"),
        ("model=a&model=b", "model"),
    ] {
        let (status, body) = app.admin("GET", &format!("/logs?{query}"), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(body["error"]["field"], field, "{query}: {body}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(field),
            "{query}: the message names the field: {body}"
        );
    }
    // Without a limit a page holds 50 rows; a larger limit is served as at most 500.
    let extra: Vec<RequestLog> = (0..40)
        .map(|i| RequestLog {
            id: format!("extra_{i:03}"),
            status: "success".into(),
            initial_time: format!("2026-11-20T09:00:{i:02}.000Z"),
            ..RequestLog::default()
        })
        .collect();
    app.app.data.stores.logs.insert_logs(&extra).unwrap();
    let (status, body) = app.admin("GET", "/logs", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&body).len(), 50);
    assert!(body["next_cursor"].is_string());
    let (status, body) = app.admin("GET", "/logs?limit=100000", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&body).len(), ROWS + 40);
    app.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_neither_repeat_nor_skip_while_rows_are_written() {
    let (app, seed) = seeded().await;
    let expected = newest_first(seed.rows.iter().cloned());
    let originals: HashSet<&str> = expected.iter().map(String::as_str).collect();
    let mut seen: Vec<String> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let query = match &cursor {
            Some(c) => format!("/logs?limit=7&cursor={c}"),
            None => "/logs?limit=7".to_string(),
        };
        let (status, body) = app.admin("GET", &query, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let page = ids(&body);
        assert!(page.len() <= 7);
        seen.extend(
            page.into_iter()
                .filter(|id| originals.contains(id.as_str())),
        );
        pages += 1;
        // Between two fetches: newer rows, one at the exact start time of a seeded row and
        // one older than everything seeded.
        let fresh = [
            format!("2026-11-21T11:00:{pages:02}.000Z"),
            "2026-11-21T10:00:10.000Z".to_string(),
            format!("2026-11-21T09:00:{pages:02}.000Z"),
        ];
        let rows: Vec<RequestLog> = fresh
            .iter()
            .enumerate()
            .map(|(n, at)| RequestLog {
                id: format!("new_{pages}_{n}"),
                status: "success".into(),
                initial_time: at.clone(),
                ..RequestLog::default()
            })
            .collect();
        app.app.data.stores.logs.insert_logs(&rows).unwrap();
        match body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
        assert!(pages < 100, "the pages end");
    }
    assert!(pages > 2, "several pages: {pages}");
    assert_eq!(seen, expected, "every seeded row once, in order");
    app.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_row_by_id_has_everything_and_unknown_ids_are_404() {
    let (app, seed) = seeded().await;
    let (status, body) = app.admin("GET", "/logs/req_003", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let row = &seed.rows[3];
    assert_eq!(body["id"], "req_003");
    assert_eq!(body["failover_info"], row.failover_info.as_str());
    assert_eq!(body["client_id"], seed.laptop.as_str());
    assert_eq!(body["initial_time"], "2026-11-21T10:00:03.000Z");
    assert_eq!(body["total_tokens"], 15);
    assert_eq!(body["http_status"], 200);
    // The same row as the list shows it.
    let (_, list) = app.admin("GET", "/logs?key=laptop&limit=500", None).await;
    let listed = list["logs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "req_003")
        .unwrap();
    assert_eq!(listed, &body);

    let (status, body) = app.admin("GET", "/logs/req_nope", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"]["code"], "not_found");
    // Authentication still applies.
    let (status, _) = app
        .request("GET", "/admin/api/logs/req_003", &[], None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    app.close().await;
}

/// Rows over 40 days, one an hour: the busy key's traffic every hour, and a rare key, model
/// and status only in a few old hours (two rows at the same instant there, so pages split
/// inside an hour and order by id).
fn spread_rows(laptop: &str) -> Vec<RequestLog> {
    let start = time::macros::datetime!(2026-10-01 00:00 UTC);
    let mut rows = Vec::new();
    for hour in 0..40 * 24 {
        let at = start + time::Duration::hours(hour);
        let minute = hour % 60;
        let stamp = |second: i64| {
            format!(
                "{:04}-{:02}-{:02}T{:02}:{minute:02}:{second:02}.000Z",
                at.year(),
                u8::from(at.month()),
                at.day(),
                at.hour()
            )
        };
        let busy = RequestLog {
            id: format!("busy_{hour:04}"),
            status: "success".into(),
            initial_time: stamp(0),
            model: "claude-busy".into(),
            channel_id: "ch-busy".into(),
            endpoint: "messages".into(),
            client_id: "key-busy".into(),
            http_status: 200,
            stream: true,
            ..RequestLog::default()
        };
        rows.push(busy.clone());
        // Rare rows: every 19th hour up to day 30 (more days than one roll-up read), two at
        // the same instant.
        if hour % 19 == 0 && hour < 30 * 24 {
            for n in 0..2 {
                let failed = hour % 38 == 0;
                rows.push(RequestLog {
                    id: format!("rare_{hour:04}_{n}"),
                    status: if failed { "error" } else { "success" }.into(),
                    initial_time: stamp(30),
                    model: "claude-rare".into(),
                    client_id: laptop.into(),
                    http_status: if failed { 503 } else { 200 },
                    stream: n == 0,
                    error: if failed {
                        "Service Unavailable".into()
                    } else {
                        String::new()
                    },
                    session_id: format!("sess-day-{}", hour / 24),
                    ..busy.clone()
                });
            }
        }
    }
    rows
}

/// Every page of `query` (`limit` rows each), concatenated; panics past 1,000 pages.
async fn all_pages(app: &InProcessApp, query: &str, limit: u32) -> Vec<String> {
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..1000 {
        let mut path = format!("/logs?limit={limit}&{query}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let (status, body) = app.admin("GET", &path, None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        let page = ids(&body);
        assert!(page.len() <= limit as usize, "{path}");
        seen.extend(page);
        match body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return seen,
        }
    }
    panic!("{query}: the pages end");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_and_absent_matches_are_found_exactly_through_the_hours_that_hold_them() {
    let app = InProcessApp::start().await;
    let (laptop, _) = app.create_key(json!({ "name": "laptop" })).await;
    let rows = spread_rows(&laptop);
    assert_eq!(
        app.app.data.stores.logs.insert_logs(&rows).unwrap(),
        rows.len()
    );
    let expect =
        |keep: &dyn Fn(&RequestLog) -> bool| newest_first(rows.iter().filter(|r| keep(r)).cloned());
    let rare = |r: &RequestLog| r.model == "claude-rare";
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("key=laptop", expect(&|r| r.client_id == laptop)),
        ("model=claude-rare", expect(&rare)),
        ("status=5xx", expect(&|r| r.http_status >= 500)),
        (
            "status=503&stream=true",
            expect(&|r| r.http_status == 503 && r.stream),
        ),
        (
            "model=claude-rare&error=unavailable&key=laptop",
            expect(&|r| rare(r) && r.http_status == 503),
        ),
        // A window whose edges cut through hours, with the rare model.
        (
            "model=claude-rare&from=2026-10-05T02:10:00Z&to=2026-10-20T14:45:00Z",
            expect(&|r| {
                rare(r)
                    && r.initial_time.as_str() >= "2026-10-05T02:10:00.000Z"
                    && r.initial_time.as_str() < "2026-10-20T14:45:00.000Z"
            }),
        ),
        (
            "channel=ch-busy&status=2xx",
            expect(&|r| r.http_status == 200),
        ),
        ("endpoint=messages", expect(&|_| true)),
    ];
    for (query, expected) in &cases {
        assert!(!expected.is_empty(), "{query} matches seeded rows");
        let limits: &[u32] = if expected.len() < 200 {
            &[1, 3, 500]
        } else {
            &[7, 500]
        };
        for &limit in limits {
            let found = all_pages(&app, query, limit).await;
            assert_eq!(
                &found, expected,
                "{query}, {limit} a page: every match once, in order"
            );
        }
    }
    // The reference: the same rows through a filter the roll-ups cannot narrow (outcome),
    // read in one scan.
    assert_eq!(
        all_pages(&app, "outcome=error", 500).await,
        expect(&|r| r.status == "error")
    );
    // Values that never occurred: an empty page at once, also combined with others.
    for query in [
        "key=key-deleted-long-ago",
        "model=claude-never",
        "status=418",
        "status=1xx",
        "channel=ch-none",
        "endpoint=gemini",
        "model=claude-rare&status=429",
        "key=key-busy&model=claude-rare",
        "model=claude-rare&from=2026-11-01T00:00:00Z",
        "model=claude-rare&to=2026-10-01T00:00:00Z",
    ] {
        let (status, body) = app.admin("GET", &format!("/logs?{query}"), None).await;
        assert_eq!(status, StatusCode::OK, "{query}: {body}");
        assert_eq!(body, json!({ "logs": [], "next_cursor": null }), "{query}");
    }
    // Sessions (their own index, no roll-up): an old one, paged.
    let session = expect(&|r| r.session_id == "sess-day-3");
    assert_eq!(session.len(), 4, "two rare hours on day 3");
    assert_eq!(all_pages(&app, "session=sess-day-3", 3).await, session);
    assert_eq!(
        all_pages(&app, "session=sess-day-3&model=claude-rare", 1).await,
        session
    );
    assert!(all_pages(&app, "session=sess-none", 3).await.is_empty());
    app.close().await;
}
