//! `/v1/models` lists model names a key may use — aliases, mapped names, priced models (the
//! built-in list included) — filtered by the key's allowed models, in the shape of the
//! protocol that asks: Anthropic's (with `anthropic-version`), OpenAI's, Gemini's
//! (`/v1beta/models`).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod common;

use serde_json::{Value, json};

use common::bare_env::{Bare, start};

fn ids(list: &Value, field: &str, key: &str) -> Vec<String> {
    list[field]
        .as_array()
        .unwrap_or_else(|| panic!("no {field} in {list}"))
        .iter()
        .map(|m| m[key].as_str().unwrap().to_string())
        .collect()
}

fn env() -> Bare {
    // A family prefix (claude-3) and a model of its own (my-local-model).
    let pricing = r#"{"currency":"USD","models":{"claude-3":{"inputPrice":3,"outputPrice":15},"my-local-model":{"inputPrice":1,"outputPrice":2}}}"#;
    let env = start(&[("pricing.json", pricing)]);
    env.channel(
        None,
        &json!({"modelMapping": {"sonnet": "claude-sonnet-4-5-20250929"}}),
    );
    let (status, body) = env.server.admin(
        "POST",
        "/aliases",
        Some(&json!({"pool": "messages", "value": "claude-alias-x"})),
    );
    assert_eq!(status, 201, "{body}");
    env
}

#[test]
fn anthropic_clients_get_anthropic_model_names_in_anthropics_shape() {
    let env = env();
    let (key, _) = env.key(&json!({"name": "k"}));
    let (status, list) = env.get(
        "/v1/models",
        &[("x-api-key", &key), ("anthropic-version", "2023-06-01")],
    );
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["has_more"], false, "{list}");
    assert_eq!(list["data"][0]["type"], "model", "{list}");
    let names = ids(&list, "data", "id");
    for expected in [
        "claude-alias-x",             // alias
        "claude-sonnet-4-5-20250929", // mapping target
        "my-local-model",             // configured price naming a model
        "claude-sonnet-4-5",          // built-in list
        "claude-haiku-4-5",
        "claude-opus-4-1",
    ] {
        assert!(
            names.contains(&expected.to_string()),
            "{expected} in {names:?}"
        );
    }
    for absent in [
        "sonnet",   // a mapping source is a pattern, not a model
        "claude-3", // a pricing prefix, not a model
        "gpt-4o",   // no OpenAI channel, and not this protocol's
        "gemini-2.5-pro",
    ] {
        assert!(
            !names.contains(&absent.to_string()),
            "{absent} in {names:?}"
        );
    }
    assert_eq!(list["first_id"], names[0].as_str());
}

#[test]
fn the_keys_allowed_models_filter_the_list_and_gemini_gets_its_shape() {
    let env = env();
    env.channel(
        None,
        &json!({"name": "g", "pool": "gemini", "serviceType": "gemini"}),
    );
    let (key, _) =
        env.key(&json!({"name": "k", "allow": {"models": ["claude-s*", "gemini-2.5-*"]}}));
    let (status, list) = env.get("/v1/models", &[("authorization", &format!("Bearer {key}"))]);
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["object"], "list");
    let names = ids(&list, "data", "id");
    assert!(
        names.contains(&"claude-sonnet-4-5".to_string()),
        "{names:?}"
    );
    assert!(names.contains(&"gemini-2.5-pro".to_string()), "{names:?}");
    assert!(
        names
            .iter()
            .all(|n| n.starts_with("claude-s") || n.starts_with("gemini-2.5-")),
        "only allowed models: {names:?}"
    );

    let (status, list) = env.get(&format!("/v1beta/models?key={key}"), &[]);
    assert_eq!(status, 200, "{list}");
    let names = ids(&list, "models", "name");
    assert!(
        names.contains(&"models/gemini-2.5-flash".to_string()),
        "{names:?}"
    );
    assert!(
        names.iter().all(|n| n.starts_with("models/gemini-2.5-")),
        "{names:?}"
    );

    // A wrong key is refused in the caller's protocol.
    let (status, body) = env.get("/v1beta/models?key=nope", &[]);
    assert_eq!(status, 401, "{body}");
    assert!(
        body["error"]["status"].is_string(),
        "Gemini's error shape: {body}"
    );
}
