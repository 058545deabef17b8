//! Property tests of the admin input types, through the real admin handlers: any body — a valid
//! one with one value replaced by an odd one, an extra field, or bytes that are not JSON at all —
//! gets a 2xx or a 4xx with a JSON error, never a panic or a 5xx.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::in_process::InProcessApp;
use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::{Value, json};

fn config(cases: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

/// Valid bodies of every admin call that takes one: (method, path, body).
fn templates() -> Vec<(&'static str, &'static str, Value)> {
    vec![
        (
            "POST",
            "/keys",
            json!({"name": "k", "limits": {"requestsPerMinute": 5, "costPerDay": 1.5,
                "tokensPerWindow": {"limit": 1000, "windowSeconds": 3600}},
                "allow": {"models": ["claude-*"]},
                "expiry": {"mode": "afterFirstUse", "days": 30}}),
        ),
        (
            "POST",
            "/channels",
            json!({"pool": "messages", "name": "c", "serviceType": "claude",
                "baseUrl": "http://127.0.0.1:9", "apiKeys": ["sk-x"], "priority": 3,
                "quotaType": "requests", "quotaLimit": 10, "quotaResetInterval": 1,
                "quotaResetUnit": "hours", "rateLimitRpm": 60, "streamIdleTimeoutSeconds": 30,
                "priceMultipliers": {"_default": {"inputMultiplier": 1.2}}}),
        ),
        (
            "PUT",
            "/settings",
            json!({"maxBodyBytes": 1_048_576, "circuitBreakerThreshold": 3,
                "circuitBreakerCooldownSeconds": 60, "stickySessionTtlSeconds": 600,
                "requestDeadlineSeconds": 120, "loadBalance": "round-robin",
                "failover": {"enabled": true, "rules": [{"errorCodes": "429",
                    "actionChain": [{"action": "retry", "waitSeconds": 1, "maxAttempts": 2}]}]}}),
        ),
        (
            "POST",
            "/pricing",
            json!({"model": "m", "inputPrice": 3, "outputPrice": 15, "cacheReadPrice": 0.3}),
        ),
    ]
}

fn odd_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!(u64::MAX)),
        Just(json!(i64::MIN)),
        Just(json!(-1)),
        Just(json!(0)),
        Just(json!(1e308)),
        Just(json!(-0.0)),
        Just(json!(1.5)),
        Just(Value::Null),
        Just(json!("")),
        Just(json!("\u{1b}[31m\nforged")),
        Just(json!([])),
        Just(json!({})),
        Just(json!({"limit": -1, "windowSeconds": u64::MAX})),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "[ -~]{0,12}".prop_map(Value::from),
    ]
}

/// Replaces the value at the `choice`-th place of a depth-first walk (objects and arrays
/// included), or adds a field named `extra` to the object found there.
fn mutate(value: &mut Value, choice: &mut usize, new: &Value, extra: Option<&str>) -> bool {
    if *choice == 0 {
        match (extra, value.as_object_mut()) {
            (Some(name), Some(object)) => {
                object.insert(name.to_string(), new.clone());
            }
            _ => *value = new.clone(),
        }
        return true;
    }
    *choice -= 1;
    match value {
        Value::Object(object) => object
            .values_mut()
            .any(|child| mutate(child, choice, new, extra)),
        Value::Array(items) => items
            .iter_mut()
            .any(|child| mutate(child, choice, new, extra)),
        _ => false,
    }
}

fn assert_clear_answer(method: &str, path: &str, sent: &str, status: StatusCode, body: &Value) {
    assert!(
        status.is_success() || status.is_client_error(),
        "{method} {path} {sent} → {status} {body}"
    );
    if status.is_client_error() {
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{method} {path} {sent} → {status} without a message: {body}"
        );
    }
}

proptest! {
    #![proptest_config(config(96))]

    #[test]
    fn any_admin_body_gets_a_clear_answer(
        template in 0..4usize,
        place in 0..40usize,
        new in odd_value(),
        extra in prop::option::of("[a-zA-Z]{1,12}"),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let app = InProcessApp::start().await;
            let (method, path, mut body) = templates().swap_remove(template);
            let mut choice = place;
            mutate(&mut body, &mut choice, &new, extra.as_deref());
            let (status, answer) = app.admin(method, path, Some(body.clone())).await;
            assert_clear_answer(method, path, &body.to_string(), status, &answer);
            app.close().await;
        });
    }

    #[test]
    fn admin_bodies_that_are_not_json_objects_get_a_clear_answer(
        template in 0..4usize,
        bytes in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..64),
            "[ -~]{0,40}".prop_map(String::into_bytes),
            // A valid body cut short, or with a key given twice.
            (0..200usize).prop_map(|cut| {
                let text = templates()[0].2.to_string();
                text.as_bytes()[..cut.min(text.len())].to_vec()
            }),
            Just(br#"{"name":"a","name":"b"}"#.to_vec()),
        ],
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let app = InProcessApp::start().await;
            let (method, path, _) = templates().swap_remove(template);
            let request = Request::builder()
                .method(method)
                .uri(format!("/admin/api{path}"))
                .header("authorization", format!("Bearer {}", app.admin_key()))
                .header("content-type", "application/json")
                .body(Body::from(bytes.clone()))
                .unwrap();
            let response = app.call(request).await;
            let status = response.status();
            let raw = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
            let answer: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
            assert_clear_answer(method, path, &String::from_utf8_lossy(&bytes), status, &answer);
            app.close().await;
        });
    }
}

/// The templates themselves are accepted, so the mutations above start from bodies that reach
/// every check, not from ones refused at the first field.
#[tokio::test]
async fn the_templates_are_valid_admin_bodies() {
    let app = InProcessApp::start().await;
    for (method, path, body) in templates() {
        let (status, answer) = app.admin(method, path, Some(body)).await;
        assert!(status.is_success(), "{method} {path} → {status} {answer}");
    }
    app.close().await;
}
