//! Prices that are never silently zero: the built-in list prices current models when nothing
//! is configured, configured prices (admin API, `pricing.json`) win over it, and a model with
//! no price anywhere is flagged in its row, counted in `/metrics`, shown in `/health` and
//! warned about once.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod common;

use serde_json::json;

use common::bare_env::{Bare, start};

/// 1000 input and 1000 output tokens per request.
const TOKENS: &str = "input_tokens=1000,output_tokens=1000";

fn price_of(row: &serde_json::Value) -> f64 {
    row["price"].as_str().unwrap().parse::<f64>().unwrap()
}

fn assert_close(actual: f64, expected: f64, what: &str) {
    assert!(
        (actual - expected).abs() < 1e-9,
        "{what}: {actual} != {expected}"
    );
}

/// What the claude-sonnet-4-5 request of [`TOKENS`] costs at `input`/`output` USD per
/// million tokens.
fn cost(input: f64, output: f64) -> f64 {
    1000.0 * input / 1e6 + 1000.0 * output / 1e6
}

#[test]
fn a_current_model_without_any_configured_price_costs_its_builtin_list_price() {
    let env = start(&[]);
    let (_, pricing) = env.server.admin("GET", "/pricing", None);
    assert!(
        pricing["models"].as_object().is_none_or(|m| m.is_empty()),
        "nothing is configured: {pricing}"
    );
    env.channel(Some(TOKENS), &json!({}));
    // claude-sonnet-4-5 lists at $3 / $15: one request costs $0.018. A daily budget of $0.02
    // admits two requests and refuses the third.
    let (key, _) = env.key(&json!({"name": "budget", "limits": {"costPerDay": 0.02}}));
    let (status, body) = env.messages(&key, "claude-sonnet-4-5-20250929");
    assert_eq!(status, 200, "{body}");
    let row = &env.rows(1)[0];
    assert_close(price_of(row), cost(3.0, 15.0), "built-in price");
    assert_close(
        row["input_cost"].as_str().unwrap().parse::<f64>().unwrap(),
        0.003,
        "input cost",
    );
    assert_eq!(row["unpriced"], false, "{row}");

    assert_eq!(env.messages(&key, "claude-sonnet-4-5-20250929").0, 200);
    env.rows(2);
    let (status, body) = env.messages(&key, "claude-sonnet-4-5-20250929");
    assert_eq!(status, 429, "the daily budget triggers: {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("daily budget"),
        "{body}"
    );
}

#[test]
fn a_model_without_a_price_anywhere_is_flagged_counted_shown_and_warned_about_once() {
    let env = start(&[]);
    env.channel(Some(TOKENS), &json!({}));
    let (key, _) = env.key(&json!({"name": "k"}));
    for _ in 0..3 {
        assert_eq!(env.messages(&key, "acme-private-7b").0, 200);
    }
    assert_eq!(env.messages(&key, "claude-haiku-4-5").0, 200);
    let rows = env.rows(4);
    let unknown: Vec<_> = rows
        .iter()
        .filter(|r| r["model"] == "acme-private-7b")
        .collect();
    assert_eq!(unknown.len(), 3);
    for row in unknown {
        assert_eq!(row["unpriced"], true, "{row}");
        assert_close(price_of(row), 0.0, "unpriced cost");
    }
    let haiku = rows
        .iter()
        .find(|r| r["model"] == "claude-haiku-4-5")
        .unwrap();
    assert_eq!(haiku["unpriced"], false);
    assert_close(price_of(haiku), cost(1.0, 5.0), "haiku 4.5");

    let (status, metrics) = env.get("/metrics", &[]);
    assert_eq!(status, 200);
    let metrics = metrics.as_str().unwrap();
    assert!(
        metrics.contains("relaybox_unpriced_requests_total{model=\"acme-private-7b\"} 3\n"),
        "{metrics}"
    );
    assert!(!metrics.contains("relaybox_unpriced_requests_total{model=\"claude-haiku-4-5\"}"));

    let (_, health) = env.get("/health", &[]);
    assert_eq!(
        health["unpricedModels"],
        json!(["acme-private-7b"]),
        "{health}"
    );
    assert!(!health["builtinPricesAsOf"].as_str().unwrap().is_empty());

    let log = env.server.log();
    let warnings = log
        .lines()
        .filter(|l| l.contains("no price for this model") && l.contains("acme-private-7b"))
        .count();
    assert_eq!(warnings, 1, "one warning per model:\n{log}");
}

/// A price through the admin API and one from `pricing.json` each beat the built-in one, even
/// where the built-in key is the longer prefix.
#[test]
fn configured_prices_override_the_builtin_list() {
    let pricing =
        r#"{"currency":"USD","models":{"claude-sonnet":{"inputPrice":30,"outputPrice":150}}}"#;
    let env: Bare = start(&[("pricing.json", pricing)]);
    env.channel(Some(TOKENS), &json!({}));
    let (key, _) = env.key(&json!({"name": "k"}));
    assert_eq!(env.messages(&key, "claude-sonnet-4-5-20250929").0, 200);
    let row = &env.rows(1)[0];
    assert_close(price_of(row), cost(30.0, 150.0), "pricing.json price");

    let (status, body) = env.server.admin(
        "POST",
        "/pricing",
        Some(&json!({"model": "claude-haiku-4-5", "inputPrice": 2.0, "outputPrice": 20.0})),
    );
    assert!(status == 200 || status == 201, "{body}");
    assert_eq!(env.messages(&key, "claude-haiku-4-5-20251001").0, 200);
    let rows = env.rows(2);
    let haiku = rows
        .iter()
        .find(|r| r["model"] == "claude-haiku-4-5-20251001")
        .unwrap();
    assert_close(price_of(haiku), cost(2.0, 20.0), "admin price");
    // The rest of the family still gets the built-in price.
    assert_eq!(env.messages(&key, "claude-opus-4-1").0, 200);
    let rows = env.rows(3);
    let opus = rows
        .iter()
        .find(|r| r["model"] == "claude-opus-4-1")
        .unwrap();
    assert_close(price_of(opus), cost(15.0, 75.0), "built-in opus 4.1");
}

/// Prices in another currency: the USD list would be wrong, so it is not used.
#[test]
fn the_builtin_list_is_not_mixed_with_prices_in_another_currency() {
    let pricing = r#"{"currency":"CNY","models":{"glm-4":{"inputPrice":5,"outputPrice":5}}}"#;
    let env = start(&[("pricing.json", pricing)]);
    env.channel(Some(TOKENS), &json!({}));
    let (key, _) = env.key(&json!({"name": "k"}));
    assert_eq!(env.messages(&key, "claude-sonnet-4-5").0, 200);
    let row = &env.rows(1)[0];
    assert_eq!(row["unpriced"], true, "{row}");
    assert_close(price_of(row), 0.0, "no USD price in a CNY table");
}
