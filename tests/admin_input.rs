//! Hostile and careless admin input: numbers out of range, unknown and duplicate fields,
//! settings changed field by field, values already in a store, admin keys that must not work,
//! admin-key guessing, masking, and names that try to forge log lines.

mod common;

use std::time::Duration;

use axum::http::StatusCode;
use common::in_process::InProcessApp;
use common::raw_http::send;
use common::relay_env::{Setup, UPSTREAM_KEY, hello, setup};
use common::wait::wait_until;
use common::{ADMIN_KEY, TestServer, request};
use relaybox::store::{ConfigOp, Expect};
use relaybox_mock_upstream::{MockOptions, MockUpstream};
use serde_json::{Value, json};

/// The error of a refused admin call: (field, message).
fn refusal(body: &Value) -> (&str, &str) {
    (
        body["error"]["field"].as_str().unwrap_or(""),
        body["error"]["message"].as_str().unwrap_or(""),
    )
}

#[test]
fn out_of_range_numbers_are_refused_naming_the_field_and_the_range() {
    let tmp = tempfile::tempdir().unwrap();
    let server = TestServer::start(&tmp.path().join("data"), &[]);
    for (limits, field, range) in [
        (json!({"costPerDay": -5}), "limits.costPerDay", "above 0"),
        (
            json!({"requestsPerMinute": 0}),
            "limits.requestsPerMinute",
            "between 1 and",
        ),
        (
            json!({"tokensPerWindow": {"limit": 10, "windowSeconds": 1_000_000_000_000_u64}}),
            "limits.tokensPerWindow.windowSeconds",
            "between 1 and 315360000",
        ),
    ] {
        let (status, body) = server.admin(
            "POST",
            "/keys",
            Some(&json!({"name": "k", "limits": limits})),
        );
        assert_eq!(status, 400, "{limits}: {body}");
        let (named, message) = refusal(&body);
        assert_eq!(named, field, "{body}");
        assert!(message.contains(range), "{body}");
    }
    assert_eq!(
        server.admin("GET", "/keys", None).1["keys"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "only the admin key exists: nothing was created"
    );

    let (_, before) = server.admin("GET", "/settings", None);
    for (patch, field) in [
        (json!({"maxBodyBytes": 0}), "maxBodyBytes"),
        (
            json!({"circuitBreakerCooldownSeconds": u64::MAX - 1}),
            "circuitBreakerCooldownSeconds",
        ),
        (json!({"suspendSeconds": 0}), "suspendSeconds"),
        (
            json!({"streamIdleTimeoutSeconds": u64::MAX}),
            "streamIdleTimeoutSeconds",
        ),
        (
            json!({"requestDeadlineSeconds": 86_401}),
            "requestDeadlineSeconds",
        ),
    ] {
        let (status, body) = server.admin("PUT", "/settings", Some(&patch));
        assert_eq!(status, 400, "{patch}: {body}");
        assert_eq!(refusal(&body).0, field, "{body}");
        assert!(refusal(&body).1.contains("must be between"), "{body}");
    }
    assert_eq!(
        server.admin("GET", "/settings", None).1,
        before,
        "nothing changed"
    );

    let channel = json!({"pool": "messages", "name": "c", "serviceType": "claude",
        "baseUrl": "http://127.0.0.1:9", "apiKeys": ["sk-x"], "quotaType": "requests",
        "quotaLimit": 10, "quotaResetInterval": i64::MAX, "quotaResetUnit": "hours"});
    let (status, body) = server.admin("POST", "/channels", Some(&channel));
    assert_eq!(status, 400, "{body}");
    assert_eq!(refusal(&body).0, "quotaResetInterval");
    let (status, body) = server.admin(
        "POST",
        "/pricing",
        Some(&json!({"model": "m", "inputPrice": -1, "outputPrice": 1})),
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(refusal(&body).0, "inputPrice");
}

#[test]
fn a_settings_put_changes_only_what_it_names_and_refuses_unknown_fields() {
    let tmp = tempfile::tempdir().unwrap();
    let server = TestServer::start(&tmp.path().join("data"), &[]);
    let (_, mut before) = server.admin("GET", "/settings", None);
    let (status, body) = server.admin("PUT", "/settings", Some(&json!({"suspendSeconds": 120})));
    assert_eq!(status, 200, "{body}");
    before["suspendSeconds"] = json!(120);
    before["version"] = body["version"].clone();
    assert_eq!(body, before, "only suspendSeconds changed");
    let (status, body) = server.admin("PUT", "/settings", Some(&json!({"maxQueueLength": 7})));
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["suspendSeconds"], 120,
        "an earlier change is kept: {body}"
    );
    before["maxQueueLength"] = json!(7);
    before["version"] = body["version"].clone();
    assert_eq!(body, before);

    let (status, body) = server.admin("PUT", "/settings", Some(&json!({"bogusKnob": 1})));
    assert_eq!(status, 400, "{body}");
    assert_eq!(refusal(&body).0, "bogusKnob");
    let (_, after) = server.admin("GET", "/settings", None);
    assert_eq!(after, before, "nothing reset, nothing stored");
    assert!(after.get("bogusKnob").is_none());

    // Unknown fields deeper down, in keys and failover rules, are named with their path.
    let (status, body) = server.admin(
        "PUT",
        "/settings",
        Some(&json!({"failover": {"rules": [{"errorCodes": "500",
            "actionChain": [{"action": "retry", "waitSecs": 5}]}]}})),
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(refusal(&body).0, "failover.rules.0.actionChain.0.waitSecs");
    let (status, body) = server.admin(
        "POST",
        "/keys",
        Some(&json!({"name": "k", "limits": {"costPerDya": 5}})),
    );
    assert_eq!(status, 400, "{body}");
    assert!(refusal(&body).1.contains("limits.costPerDya"), "{body}");
    let (status, body) = server.admin(
        "POST",
        "/channels",
        Some(
            &json!({"pool": "messages", "name": "c", "serviceType": "claude",
            "baseUrl": "http://127.0.0.1:9", "priorty": 1}),
        ),
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(refusal(&body).0, "priorty");

    // A document read with GET goes back unchanged.
    let (status, body) = server.admin("PUT", "/settings", Some(&after));
    assert_eq!(status, 200, "{body}");
}

#[test]
fn duplicate_keys_in_an_admin_body_are_refused_naming_the_key() {
    let tmp = tempfile::tempdir().unwrap();
    let server = TestServer::start(&tmp.path().join("data"), &[]);
    let auth = format!("Bearer {ADMIN_KEY}");
    let (_, before) = server.admin("GET", "/settings", None);
    for (method, path, body, key) in [
        (
            "POST",
            "/keys",
            r#"{"name":"k","limits":{"costPerDay":1,"costPerDay":-5}}"#,
            "limits.costPerDay",
        ),
        (
            "PUT",
            "/settings",
            r#"{"maxBodyBytes":4096,"maxBodyBytes":0}"#,
            "maxBodyBytes",
        ),
        ("POST", "/keys", r#"{"name":"a","name":"b"}"#, "name"),
    ] {
        let answer = send(
            method,
            &format!("{}/admin/api{path}", server.url),
            &[("authorization", &auth)],
            Some(body),
        );
        assert_eq!(answer.status, 400, "{body}: {}", answer.body);
        assert!(
            answer.body.contains(&format!("'{key}' is given twice")),
            "{}",
            answer.body
        );
    }
    assert_eq!(server.admin("GET", "/settings", None).1, before);
    assert_eq!(
        server.admin("GET", "/keys", None).1["keys"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn disabled_and_revoked_admin_keys_have_no_admin_rights() {
    let tmp = tempfile::tempdir().unwrap();
    let server = TestServer::start(&tmp.path().join("data"), &[]);
    for status in ["disabled", "revoked"] {
        let (_, created) = server.admin(
            "POST",
            "/keys",
            Some(&json!({"name": status, "isAdmin": true})),
        );
        let plaintext = created["plaintext"].as_str().unwrap().to_string();
        let id = created["key"]["id"].as_str().unwrap();
        let keys_url = format!("{}/admin/api/keys", server.url);
        let bearer = format!("Bearer {plaintext}");
        assert_eq!(
            request("GET", &keys_url, &[("authorization", &bearer)], None)
                .unwrap()
                .0,
            200,
            "active, it works"
        );
        let (code, body) = server.admin(
            "PATCH",
            &format!("/keys/{id}"),
            Some(&json!({"status": status})),
        );
        assert_eq!(code, 200, "{body}");
        let (code, _) = request(
            "POST",
            &keys_url,
            &[("authorization", &bearer)],
            Some(&json!({"name": "minted", "isAdmin": true})),
        )
        .unwrap();
        assert_eq!(code, 401, "a {status} admin key mints nothing");
    }
}

#[test]
fn the_eleventh_wrong_admin_key_from_one_address_is_answered_429() {
    let tmp = tempfile::tempdir().unwrap();
    let server = TestServer::start(&tmp.path().join("data"), &[]);
    let url = format!("{}/admin/api/keys", server.url);
    for i in 0..10 {
        let answer = send(
            "GET",
            &url,
            &[("authorization", &format!("Bearer wrong-{i}"))],
            None,
        );
        assert_eq!(answer.status, 401, "attempt {}", i + 1);
    }
    let answer = send("GET", &url, &[("authorization", "Bearer wrong-11")], None);
    assert_eq!(answer.status, 429, "{}", answer.body);
    let retry_after: u64 = answer.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let error: Value = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(error["error"]["code"], "rate_limited");
    // Blocked means blocked: the right key waits too (a guesser learns nothing meanwhile).
    let answer = send(
        "GET",
        &url,
        &[("authorization", &format!("Bearer {ADMIN_KEY}"))],
        None,
    );
    assert_eq!(answer.status, 429);

    let metrics = send("GET", &format!("{}/metrics", server.url), &[], None).body;
    assert!(
        metrics.contains("relaybox_admin_auth_failures_total 10\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("relaybox_admin_auth_throttled_total 2\n"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_cooldown_near_u64_max_in_the_store_opens_the_circuit_and_requests_still_work() {
    let t = InProcessApp::start().await;
    let mock = MockUpstream::start(MockOptions::default()).await.unwrap();
    // Written past the admin API's checks, as an older version or an importer could have.
    let mut settings = t.app.config.snapshot().settings.clone();
    settings.circuit_breaker_threshold = 1;
    settings.circuit_breaker_cooldown_seconds = u64::MAX - 1;
    settings.suspend_seconds = u64::MAX;
    settings.failover = serde_json::from_value(json!({"enabled": true, "rules": [
        {"errorCodes": "500", "actionChain": [{"action": "failover"}]}]}))
    .unwrap();
    t.app
        .config
        .apply(&[ConfigOp::PutSettings(settings, Expect::Any)])
        .unwrap();
    t.add_mock_channel(
        &mock.scenario_url("status=500"),
        json!({"name": "broken", "priority": 1}),
    )
    .await;
    t.add_mock_channel(&mock.base_url(), json!({"name": "good", "priority": 2}))
        .await;
    let (_, key) = t.create_key(json!({"name": "client"})).await;
    for attempt in 0..2 {
        let (status, body) = t.relay_messages(&key, hello()).await;
        assert_eq!(status, StatusCode::OK, "request {attempt}: {body}");
    }
    let stats = mock.stats();
    let broken_calls: u64 = stats
        .per_path
        .iter()
        .filter(|(p, _)| p.contains("status=500"))
        .map(|(_, n)| n)
        .sum();
    assert_eq!(
        broken_calls, 1,
        "the circuit opened (for as long as the process runs)"
    );
    t.close().await;
}

#[test]
fn bad_values_already_in_the_store_are_reported_and_the_server_still_serves() {
    let env = setup(json!({}));
    let data = env.server.data_dir.clone();
    let mock_url = env.mock.base_url();
    let Setup { server, key, .. } = env;
    let key_id;
    {
        let _ = server.stop();
        let instance = offline(&data);
        let mut settings = instance.config.snapshot().settings.clone();
        settings.max_body_bytes = 0;
        settings.circuit_breaker_cooldown_seconds = u64::MAX;
        let mut client = relaybox::config::services::list_keys(&instance.config)
            .into_iter()
            .find(|k| k.name == "tester")
            .unwrap();
        key_id = client.id.clone();
        client.limits.cost_per_day = Some(-5.0);
        client.limits.tokens_per_window = Some(relaybox::domain::key::WindowLimit {
            limit: 1e6,
            window_seconds: u64::MAX,
        });
        instance
            .config
            .apply(&[
                ConfigOp::PutSettings(settings, Expect::Any),
                ConfigOp::PutKey(client, Expect::Exists),
            ])
            .unwrap();
        relaybox::config::services::create_channel(
            &instance.config,
            json!({"pool": "messages", "name": "mock", "serviceType": "claude",
                "baseUrl": mock_url, "apiKeys": [UPSTREAM_KEY]}),
        )
        .unwrap();
        let channel =
            relaybox::config::services::resolve_channel(&instance.config, "mock").unwrap();
        let mut hostile = channel.clone();
        hostile.quota_type = "requests".into();
        hostile.quota_limit = Some(1000.0);
        hostile.quota_reset_at = Some("2026-01-01T00:00:00Z".into());
        hostile.quota_reset_interval = Some(i64::MAX);
        hostile.quota_reset_unit = "hours".into();
        instance
            .config
            .apply(&[ConfigOp::PutChannel(hostile, Expect::Exists)])
            .unwrap();
    }
    let server = TestServer::start(&data, &[]);
    let log = server.log();
    for field in [
        "maxBodyBytes",
        "circuitBreakerCooldownSeconds",
        "limits.costPerDay",
    ] {
        assert!(
            log.contains("out of range") && log.contains(&format!("field={field}")),
            "{field} is reported:\n{log}"
        );
    }
    assert!(log.contains(&key_id), "the record is named:\n{log}");
    assert!(log.contains("field=quotaResetInterval"), "{log}");
    let (status, body) = request(
        "POST",
        &format!("{}/v1/messages", server.url),
        &[("x-api-key", &key), ("anthropic-version", "2023-06-01")],
        Some(&hello()),
    )
    .unwrap();
    assert_eq!(status, 200, "the default body limit applies: {body}");
}

/// The data dir opened as the offline CLI does.
fn offline(data: &std::path::Path) -> relaybox::app::Instance {
    let options = relaybox::app::DataDirOptions {
        path: data.to_path_buf(),
        ..relaybox::app::DataDirOptions::default()
    };
    let dir = relaybox::app::DataDir::open(&options, "admin_input test")
        .unwrap_or_else(|e| panic!("open the data dir: {e}"));
    relaybox::app::Instance::load(dir).unwrap_or_else(|e| panic!("load the data dir: {e}"))
}

#[test]
fn a_13_character_upstream_key_is_masked_to_a_third() {
    let tmp = tempfile::tempdir().unwrap();
    let server = TestServer::start(&tmp.path().join("data"), &[]);
    let (status, created) = server.admin(
        "POST",
        "/channels",
        Some(
            &json!({"pool": "messages", "name": "short", "serviceType": "claude",
            "baseUrl": "http://127.0.0.1:9", "apiKeys": ["sk-abcdefghij"]}),
        ),
    );
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["apiKeys"][0], "sk…ij", "4 of 13 characters shown");
    let listed = common::run_cli(&tmp.path().join("data"), &["channels", "show", "short"]);
    let text = String::from_utf8_lossy(&listed.stdout);
    assert!(
        text.contains("sk…ij") && !text.contains("abcdefghij"),
        "{text}"
    );
}

#[test]
fn a_channel_name_with_a_newline_and_ansi_codes_cannot_forge_a_text_log_line() {
    let tmp = tempfile::tempdir().unwrap();
    let server = TestServer::start(&tmp.path().join("data"), &[("RELAYBOX_LOG_FORMAT", "text")]);
    let forged = "evil\n2026-01-01T00:00:00.000000Z  INFO relaybox: admin key rotated\x1b[31m";
    let (status, body) = server.admin(
        "POST",
        "/channels",
        Some(
            &json!({"pool": "messages", "name": forged, "serviceType": "claude",
            "baseUrl": "http://127.0.0.1:9", "apiKeys": ["sk-upstream-0123456789"]}),
        ),
    );
    assert_eq!(status, 201, "{body}");
    let (_, created) = server.admin("POST", "/keys", Some(&json!({"name": "client"})));
    let key = created["plaintext"].as_str().unwrap().to_string();
    let (status, _) = request(
        "POST",
        &format!("{}/v1/messages", server.url),
        &[("x-api-key", &key), ("anthropic-version", "2023-06-01")],
        Some(&hello()),
    )
    .unwrap();
    assert_eq!(status, 502, "nothing listens on port 9");
    wait_until(
        Duration::from_secs(10),
        "the failed request is logged",
        || server.log().contains("request failed"),
    );
    let log = server.log();
    assert!(
        log.contains(
            r"evil\n2026-01-01T00:00:00.000000Z  INFO relaybox: admin key rotated\u{1b}[31m"
        ),
        "the name is written escaped:\n{log}"
    );
    assert!(
        !log.lines()
            .any(|line| line.starts_with("2026-01-01T00:00:00.000000Z")),
        "no forged line:\n{log}"
    );
    assert!(
        !log.contains("rotated\x1b[31m"),
        "no raw escape code from the name"
    );
}
