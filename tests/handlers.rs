//! Admin and relay handlers through the in-process app (`common::in_process`): the router, the
//! admin auth layer and the relay pipeline run in the test's own runtime, with the mock
//! upstream as the provider. The end-to-end stories through the real binary are in
//! admin_story.rs, relay.rs and config_writes.rs.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod common;

use axum::http::StatusCode;
use common::in_process::{InProcessApp, MOCK_UPSTREAM_KEY};
use relaybox_mock_upstream::{MockOptions, MockUpstream};
use serde_json::{Value, json};

fn hello() -> Value {
    json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "Hello there, relay"}],
    })
}

/// The admin API's error shape: `{"error": {"code", "message"}}`.
fn assert_admin_error(body: &Value, code: &str) {
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_takes_an_active_admin_key_or_the_control_token() {
    let t = InProcessApp::start().await;

    let (status, body) = t.request("GET", "/admin/api/keys", &[], None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_admin_error(&body, "unauthorized");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Authorization: Bearer"),
        "the message says what to send: {body}"
    );

    for wrong in [
        "Bearer not-a-key",
        "Basic dXNlcjpwYXNz",
        "Bearer ",
        &format!("Bearer {}x", t.admin_key()),
    ] {
        let (status, body) = t
            .request("GET", "/admin/api/keys", &[("authorization", wrong)], None)
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{wrong}: {body}");
        assert_admin_error(&body, "unauthorized");
    }

    let control = format!("Bearer {}", t.control_token());
    let (status, body) = t
        .request(
            "GET",
            "/admin/api/keys",
            &[("authorization", &control)],
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = t.admin("GET", "/keys", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["keys"][0]["id"], t.admin_key_id(), "{body}");

    // A client key that is not an admin key, and an admin key once disabled, are refused.
    let (_, client) = t.create_key(json!({"name": "client"})).await;
    let (admin2_id, admin2) = t
        .create_key(json!({"name": "second admin", "isAdmin": true}))
        .await;
    let as_client = format!("Bearer {client}");
    let (status, _) = t
        .request(
            "GET",
            "/admin/api/keys",
            &[("authorization", &as_client)],
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let as_admin2 = format!("Bearer {admin2}");
    let (status, _) = t
        .request(
            "GET",
            "/admin/api/keys",
            &[("authorization", &as_admin2)],
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = t
        .admin(
            "PATCH",
            &format!("/keys/{admin2_id}"),
            Some(json!({"status": "disabled"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = t
        .request(
            "GET",
            "/admin/api/keys",
            &[("authorization", &as_admin2)],
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    t.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_key_shows_its_plaintext_once() {
    let t = InProcessApp::start().await;
    let (status, created) = t
        .admin("POST", "/keys", Some(json!({"name": "alice"})))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let plaintext = created["plaintext"].as_str().unwrap();
    let id = created["key"]["id"].as_str().unwrap();
    let prefix = t.app.config.snapshot().settings.key_prefix.clone();
    assert!(plaintext.starts_with(&prefix), "{plaintext} / {prefix}");
    assert!(plaintext.len() > prefix.len() + 20, "{plaintext}");
    assert_eq!(created["key"]["name"], "alice");
    assert_eq!(created["key"]["status"], "active");
    assert!(
        !created["key"].to_string().contains(plaintext),
        "the key record itself never holds the plaintext: {created}"
    );

    let (status, one) = t.admin("GET", &format!("/keys/{id}"), None).await;
    assert_eq!(status, StatusCode::OK, "{one}");
    assert_eq!(one["id"], id);
    assert!(one.get("plaintext").is_none(), "{one}");
    assert!(!one.to_string().contains(plaintext), "{one}");

    let (status, all) = t.admin("GET", "/keys", None).await;
    assert_eq!(status, StatusCode::OK, "{all}");
    assert_eq!(all["keys"].as_array().unwrap().len(), 2, "{all}");
    assert!(!all.to_string().contains(plaintext), "{all}");

    // A key needs a name; fields the API does not know are refused.
    let (status, body) = t.admin("POST", "/keys", Some(json!({"name": " "}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_admin_error(&body, "invalid_request");
    let (status, body) = t
        .admin("POST", "/keys", Some(json!({"name": "bob", "admin": true})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`admin`"),
        "{body}"
    );

    t.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patch_with_a_stale_version_conflicts_and_changes_nothing() {
    let t = InProcessApp::start().await;
    let (id, _) = t.create_key(json!({"name": "carol"})).await;
    let path = format!("/keys/{id}");
    let (_, key) = t.admin("GET", &path, None).await;
    let seen = key["version"].as_u64().unwrap().to_string();

    let (status, first) = t
        .admin_with(
            "PATCH",
            &path,
            &[("if-match", &seen)],
            Some(json!({"description": "first"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["description"], "first");
    assert!(first["version"].as_u64().unwrap() > seen.parse().unwrap());

    // The same version again (quoted, as an ETag): someone else's change came first.
    let quoted = format!("\"{seen}\"");
    let (status, body) = t
        .admin_with(
            "PATCH",
            &path,
            &[("if-match", &quoted)],
            Some(json!({"description": "second"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_admin_error(&body, "conflict");
    // A stale `version` in the patch itself is the same.
    let stale: u64 = seen.parse().unwrap();
    let (status, body) = t
        .admin(
            "PATCH",
            &path,
            Some(json!({"description": "third", "version": stale})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    let (_, now) = t.admin("GET", &path, None).await;
    assert_eq!(now["description"], "first", "{now}");
    assert_eq!(now["version"], first["version"], "{now}");

    let (status, body) = t
        .admin_with(
            "PATCH",
            &path,
            &[("if-match", "latest")],
            Some(json!({"description": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("If-Match")
    );

    t.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patch_with_an_unknown_field_is_refused_by_name() {
    let t = InProcessApp::start().await;
    let (id, _) = t.create_key(json!({"name": "dave"})).await;
    let path = format!("/keys/{id}");
    let (_, before) = t.admin("GET", &path, None).await;

    let (status, body) = t
        .admin(
            "PATCH",
            &path,
            Some(json!({"descripton": "typo", "name": "renamed"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_admin_error(&body, "invalid_request");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("'descripton'"), "{message}");
    assert!(
        message.contains("description"),
        "lists what can change: {message}"
    );

    // Fields that exist but are not the admin's to change are refused the same way.
    let (status, body) = t.admin("PATCH", &path, Some(json!({"hash": "0000"}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("'hash'")
    );

    let (_, after) = t.admin("GET", &path, None).await;
    assert_eq!(after, before, "a refused patch changes nothing");
    assert_eq!(after["name"], "dave");

    t.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_key_relays_at_once_and_a_revoked_key_is_refused_at_once() {
    let mock = MockUpstream::start(MockOptions::default()).await.unwrap();
    let t = InProcessApp::start().await;
    t.add_mock_channel(&mock.base_url(), json!({})).await;
    let (id, key) = t.create_key(json!({"name": "erin"})).await;

    let (status, body) = t.relay_messages(&key, hello()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["type"], "message", "{body}");
    assert!(
        body["usage"]["output_tokens"].as_u64().unwrap() > 0,
        "{body}"
    );
    let seen = mock.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].header("x-api-key"), Some(MOCK_UPSTREAM_KEY));

    let (status, body) = t
        .admin(
            "PATCH",
            &format!("/keys/{id}"),
            Some(json!({"status": "revoked"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "revoked");

    let (status, body) = t.relay_messages(&key, hello()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["type"], "error", "{body}");
    assert_eq!(body["error"]["type"], "authentication_error", "{body}");
    assert!(body["error"]["message"].as_str().is_some(), "{body}");
    assert_eq!(
        mock.requests().len(),
        1,
        "a refused key never reaches upstream"
    );

    // No key at all: the same refusal, in the same shape.
    let (status, body) = t.request("POST", "/v1/messages", &[], Some(hello())).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"]["type"], "authentication_error", "{body}");

    t.close().await;
    mock.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aliases_are_added_offered_and_removed() {
    let t = InProcessApp::start().await;
    let (_, key) = t.create_key(json!({"name": "frank"})).await;
    let bearer = format!("Bearer {key}");
    let model_ids = async || {
        let (status, body) = t
            .request("GET", "/v1/models", &[("authorization", &bearer)], None)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert!(!model_ids().await.contains(&"claude-alias-x".to_string()));

    let (status, body) = t
        .admin(
            "POST",
            "/aliases",
            Some(json!({"pool": "messages", "value": "claude-alias-x"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(
        body["messagesModels"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["value"] == "claude-alias-x"),
        "{body}"
    );
    let (_, listed) = t.admin("GET", "/aliases", None).await;
    assert_eq!(listed, body);
    assert!(model_ids().await.contains(&"claude-alias-x".to_string()));

    let (status, body) = t
        .admin(
            "POST",
            "/aliases",
            Some(json!({"pool": "messages", "value": "claude-alias-x"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, body) = t
        .admin(
            "POST",
            "/aliases",
            Some(json!({"pool": "nowhere", "value": "m"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nowhere")
    );

    let (status, body) = t
        .admin("DELETE", "/aliases/messages/claude-alias-x", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (_, listed) = t.admin("GET", "/aliases", None).await;
    assert!(
        listed["messagesModels"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["value"] != "claude-alias-x"),
        "{listed}"
    );
    assert!(!model_ids().await.contains(&"claude-alias-x".to_string()));

    let (status, body) = t
        .admin("DELETE", "/aliases/messages/claude-alias-x", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_admin_error(&body, "not_found");

    t.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_shows_the_config_revision_moving_on_each_write() {
    let t = InProcessApp::start().await;
    let health = async || {
        let (status, body) = t.request("GET", "/health", &[], None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["status"], "ok", "{body}");
        body
    };
    let first = health().await;
    let r0 = first["storage"]["config"]["revision"].as_u64().unwrap();
    let keys0 = first["counts"]["keys"].as_u64().unwrap();

    t.create_key(json!({"name": "grace"})).await;
    let second = health().await;
    let r1 = second["storage"]["config"]["revision"].as_u64().unwrap();
    assert!(r1 > r0, "{r0} -> {r1}");
    assert_eq!(second["counts"]["keys"].as_u64().unwrap(), keys0 + 1);

    // A refused write does not move it.
    let (status, _) = t.admin("POST", "/keys", Some(json!({"name": ""}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let third = health().await;
    assert_eq!(third["storage"]["config"]["revision"].as_u64().unwrap(), r1);

    t.close().await;
}

/// Rotating a channel's upstream key is a credentials change: the channel keeps its version
/// (an admin editing it meanwhile gets no 409), the next request uses the new key, and the
/// edit keeps the rotated key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_an_upstream_key_leaves_the_channel_version_alone() {
    let mock = MockUpstream::start(MockOptions::default()).await.unwrap();
    let t = InProcessApp::start().await;
    let channel = t.add_mock_channel(&mock.base_url(), json!({})).await;
    let (_, key) = t.create_key(json!({"name": "rotation"})).await;
    let (_, before) = t.admin("GET", &format!("/channels/{channel}"), None).await;
    let (version, credentials) = (
        before["version"].as_u64().unwrap(),
        before["credentialsVersion"].as_u64().unwrap(),
    );

    const ROTATED: &str = "sk-rotated-upstream-key-0002";
    let (status, rotated) = t
        .admin(
            "PATCH",
            &format!("/channels/{channel}"),
            Some(json!({"apiKeys": [ROTATED]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    assert_eq!(rotated["version"], version, "{rotated}");
    assert_eq!(rotated["credentialsVersion"], credentials + 1, "{rotated}");
    let (status, _) = t.relay_messages(&key, hello()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        mock.requests().last().unwrap().header("x-api-key"),
        Some(ROTATED)
    );

    // An admin who loaded the channel before the rotation edits it with that version.
    let (status, edited) = t
        .admin_with(
            "PATCH",
            &format!("/channels/{channel}"),
            &[("if-match", &version.to_string())],
            Some(json!({"priority": 3})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{edited}");
    assert_eq!(edited["version"], version + 1);
    assert_eq!(edited["credentialsVersion"], credentials + 1);
    let (status, _) = t.relay_messages(&key, hello()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        mock.requests().last().unwrap().header("x-api-key"),
        Some(ROTATED)
    );
    t.close().await;
}

/// A config.json reload that still names the secrets it named last time keeps a key rotated
/// through the admin API since; a file whose keys changed wins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_keeps_a_rotated_key_unless_the_file_changed_its_keys() {
    let mock = MockUpstream::start(MockOptions::default()).await.unwrap();
    let t = InProcessApp::start().await;
    let (_, key) = t.create_key(json!({"name": "reload"})).await;
    let write_config = |description: &str, upstream_key: &str| {
        let config = json!({"upstream": [{
            "id": "cafe0001", "name": "from-file", "serviceType": "claude",
            "baseUrl": mock.base_url(), "apiKeys": [upstream_key], "description": description,
        }]});
        std::fs::write(
            t.data_dir().join("config.json"),
            serde_json::to_vec_pretty(&config).unwrap(),
        )
        .unwrap();
        // A change is applied once it has been seen unchanged on two polls.
        t.app.reloader.poll_once();
        t.app.reloader.poll_once();
    };
    let upstream_key = async || {
        let (status, body) = t.relay_messages(&key, hello()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        mock.requests()
            .last()
            .unwrap()
            .header("x-api-key")
            .map(str::to_string)
    };

    write_config("first", "sk-file-key-one-0001");
    assert_eq!(
        upstream_key().await.as_deref(),
        Some("sk-file-key-one-0001")
    );

    let (status, body) = t
        .admin(
            "PATCH",
            "/channels/cafe0001",
            Some(json!({"apiKeys": ["sk-admin-rotated-0002"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // The file changes, but not its keys: the rotated key stays, the description follows.
    write_config("second, longer description", "sk-file-key-one-0001");
    let (_, channel) = t.admin("GET", "/channels/cafe0001", None).await;
    assert_eq!(channel["description"], "second, longer description");
    assert_eq!(
        upstream_key().await.as_deref(),
        Some("sk-admin-rotated-0002")
    );

    // The file's keys change: the file wins.
    write_config("third", "sk-file-key-three-0003");
    assert_eq!(
        upstream_key().await.as_deref(),
        Some("sk-file-key-three-0003")
    );
    t.close().await;
}

/// An admin key past its expiry has no admin rights (it could otherwise mint a fresh admin key);
/// the same key unexpired does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_admin_key_is_refused_by_the_admin_api() {
    let t = InProcessApp::start().await;
    let (expired_id, expired) = t
        .create_key(json!({
            "name": "old-admin", "isAdmin": true,
            "expiry": {"mode": "fixedAt", "expiresAt": "2020-01-01T00:00:00Z"},
        }))
        .await;
    let (_, current) = t
        .create_key(json!({
            "name": "new-admin", "isAdmin": true,
            "expiry": {"mode": "fixedAt", "expiresAt": "2999-01-01T00:00:00Z"},
        }))
        .await;
    let as_key = async |key: &str, method: &str, body: Option<Value>| {
        let bearer = format!("Bearer {key}");
        t.request(
            method,
            "/admin/api/keys",
            &[("authorization", bearer.as_str())],
            body,
        )
        .await
    };
    let (status, body) = as_key(&expired, "GET", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"]["code"], "unauthorized");
    let (status, body) = as_key(
        &expired,
        "POST",
        Some(json!({"name": "minted", "isAdmin": true})),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, body) = as_key(&current, "GET", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let names: Vec<&str> = body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    assert!(!names.contains(&"minted"), "{names:?}");

    // Extending the expiry gives the rights back.
    let (status, body) = t
        .admin(
            "PATCH",
            &format!("/keys/{expired_id}"),
            Some(json!({"expiry": {"mode": "fixedAt", "expiresAt": "2999-01-01T00:00:00Z"}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = as_key(&expired, "GET", None).await;
    assert_eq!(status, StatusCode::OK);
    t.close().await;
}

/// Limits no request could meet, or windows beyond ten years, are refused with 400 naming the
/// field, on create and on patch, and change nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_key_limits_are_refused_and_change_nothing() {
    let t = InProcessApp::start().await;
    for (limits, field) in [
        (json!({"costPerDay": -5}), "costPerDay"),
        (json!({"requestsPerMinute": 0}), "requestsPerMinute"),
        (json!({"costTotal": 0}), "costTotal"),
        (
            json!({"requestsPerWindow": {"limit": 10, "windowSeconds": 1_000_000_000_000u64}}),
            "requestsPerWindow.windowSeconds",
        ),
        (
            json!({"tokensPerWindow": {"limit": 0, "windowSeconds": 60}}),
            "tokensPerWindow.limit",
        ),
    ] {
        let (status, body) = t
            .admin(
                "POST",
                "/keys",
                Some(json!({"name": "bad", "limits": limits})),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{limits}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(field), "{message}");
    }
    let (_, keys) = t.admin("GET", "/keys", None).await;
    assert!(
        keys["keys"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["name"] != "bad"),
        "{keys}"
    );

    let (id, _) = t
        .create_key(json!({"name": "good", "limits": {"requestsPerMinute": 30}}))
        .await;
    let (status, body) = t
        .admin(
            "PATCH",
            &format!("/keys/{id}"),
            Some(json!({"limits": {"requestsPerMinute": 0}})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (_, key) = t.admin("GET", &format!("/keys/{id}"), None).await;
    assert_eq!(key["limits"]["requestsPerMinute"], 30, "{key}");
    t.close().await;
}
