//! The foundation story through the real binary: create, update and delete every entity over
//! the admin API, restart, and find everything as it was left. Secrets never reach the disk in
//! plaintext, and a wrong encryption key refuses to start.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod common;

use common::{ADMIN_KEY, TestServer, all_bytes, contains, request};
use serde_json::{Value, json};

const UPSTREAM_SECRET_1: &str = "sk-ant-api03-STORYSECRET-one-0123456789";
const UPSTREAM_SECRET_2: &str = "sk-ant-api03-STORYSECRET-two-0123456789";
const OAUTH_SECRET: &str = "oauth-refresh-STORYSECRET-xyz";

fn snapshot(server: &TestServer) -> Value {
    let mut keys = server.admin("GET", "/keys", None).1;
    // last-used style timestamps are not part of this comparison; keys are compared whole
    keys["keys"]
        .as_array_mut()
        .unwrap()
        .sort_by_key(|k| k["id"].as_str().unwrap().to_string());
    json!({
        "keys": keys,
        "channels": server.admin("GET", "/channels", None).1,
        "pricing": server.admin("GET", "/pricing", None).1,
        "aliases": server.admin("GET", "/aliases", None).1,
        "settings": server.admin("GET", "/settings", None).1,
    })
}

#[test]
fn every_entity_survives_a_restart_as_left() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let server = TestServer::start(&data, &[]);

    // Unauthenticated and wrong-key requests are refused and change nothing.
    let (status, body) =
        request("GET", &format!("{}/admin/api/keys", server.url), &[], None).unwrap();
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "unauthorized");
    let (status, _) = request(
        "GET",
        &format!("{}/admin/api/keys", server.url),
        &[("authorization", "Bearer nope")],
        None,
    )
    .unwrap();
    assert_eq!(status, 401);

    // ---- keys
    let (status, created) = server.admin(
        "POST",
        "/keys",
        Some(&json!({"name": "alice", "limits": {"requestsPerMinute": 30}})),
    );
    assert_eq!(status, 201, "{created}");
    let plaintext = created["plaintext"].as_str().unwrap().to_string();
    assert!(
        plaintext.starts_with("cr_") && plaintext.len() == 67,
        "{plaintext}"
    );
    let alice = created["key"]["id"].as_str().unwrap().to_string();
    assert_eq!(created["key"]["version"], 1);
    assert!(created["key"].get("plaintext").is_none());
    let (_, bob) = server.admin("POST", "/keys", Some(&json!({"name": "bob"})));
    let bob = bob["key"]["id"].as_str().unwrap().to_string();
    let (status, body) = server.admin(
        "POST",
        "/keys",
        Some(&json!({"name": "x", "hash": "forged"})),
    );
    assert_eq!(status, 400, "unknown fields are refused: {body}");

    let (status, patched) = server.admin(
        "PATCH",
        &format!("/keys/{alice}"),
        Some(&json!({"version": 1, "description": "laptop", "limits": {"costPerDay": 5.0}})),
    );
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["version"], 2);
    assert_eq!(patched["limits"]["costPerDay"], 5.0);
    let (status, stale) = server.admin(
        "PATCH",
        &format!("/keys/{alice}"),
        Some(&json!({"version": 1, "description": "stale"})),
    );
    assert_eq!(status, 409, "a stale version is a conflict: {stale}");
    let (status, _) = server.admin(
        "PATCH",
        &format!("/keys/{alice}"),
        Some(&json!({"hash": "00"})),
    );
    assert_eq!(status, 400, "the hash cannot be patched");
    let (status, _) = server.admin("DELETE", &format!("/keys/{bob}"), None);
    assert_eq!(status, 204);
    assert_eq!(server.admin("GET", &format!("/keys/{bob}"), None).0, 404);
    // The new key is an admin-API credential only when it is an admin key.
    let (status, _) = request(
        "GET",
        &format!("{}/admin/api/keys", server.url),
        &[("authorization", &format!("Bearer {plaintext}"))],
        None,
    )
    .unwrap();
    assert_eq!(status, 401);

    // ---- channels
    let channel = json!({
        "pool": "messages", "name": "anthropic-main", "serviceType": "claude",
        "baseUrl": "https://api.anthropic.com", "apiKeys": [UPSTREAM_SECRET_1],
        "priority": 2, "modelMapping": {"haiku": "claude-haiku-4-5"},
        "oauthTokens": {"access_token": "a", "refresh_token": OAUTH_SECRET},
        "contentFilter": {"enabled": true, "rules": [{"keyword": "quota", "statusCode": 429}]}
    });
    let (status, created) = server.admin("POST", "/channels", Some(&channel));
    assert_eq!(status, 201, "{created}");
    let channel_id = created["id"].as_str().unwrap().to_string();
    let masked = created["apiKeys"][0].as_str().unwrap();
    assert!(
        masked.contains('…') && !masked.contains("STORYSECRET"),
        "keys are masked: {masked}"
    );
    assert_eq!(created["oauthTokens"], "(set)");
    assert_eq!(
        created["contentFilter"]["rules"][0]["statusCode"], 429,
        "unknown cc-bridge fields are kept"
    );
    // Keep the first (masked) key, add a second.
    let (status, patched) = server.admin(
        "PATCH",
        &format!("/channels/{channel_id}"),
        Some(&json!({"priority": 1, "apiKeys": [masked, UPSTREAM_SECRET_2]})),
    );
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["apiKeys"].as_array().unwrap().len(), 2);
    assert_eq!(patched["priority"], 1);
    let (status, _) = server.admin("POST", "/channels", Some(&json!({"pool": "messages", "name": "ANTHROPIC-MAIN", "serviceType": "claude", "baseUrl": "https://x"})));
    assert_eq!(status, 409, "names are unique per pool, case-insensitively");
    let (status, _) = server.admin("POST", "/channels", Some(&json!({"pool": "nowhere", "name": "n", "serviceType": "claude", "baseUrl": "https://x"})));
    assert_eq!(status, 400);
    let (_, temp) = server.admin("POST", "/channels", Some(&json!({"pool": "chat", "name": "temp", "serviceType": "openai", "baseUrl": "http://127.0.0.1:9"})));
    let temp = temp["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{temp}"))
        .to_string();
    assert_eq!(
        server.admin("DELETE", &format!("/channels/{temp}"), None).0,
        204
    );

    // ---- pricing
    let (status, _) = server.admin("POST", "/pricing", Some(&json!({"model": "claude-sonnet-4-5", "inputPrice": 3.0, "outputPrice": 15.0, "cacheCreationPrice": null, "cacheReadPrice": 0.3})));
    assert_eq!(status, 201);
    let (status, price) = server.admin(
        "PATCH",
        "/pricing/claude-sonnet-4-5",
        Some(&json!({"outputPrice": 14.0})),
    );
    assert_eq!(status, 200, "{price}");
    assert_eq!(price["outputPrice"], 14.0);
    let (status, _) = server.admin(
        "POST",
        "/pricing",
        Some(&json!({"model": "bad", "inputPrice": -1.0, "outputPrice": 1.0})),
    );
    assert_eq!(status, 400, "negative prices are refused");
    server.admin(
        "POST",
        "/pricing",
        Some(&json!({"model": "gpt-5", "inputPrice": 1.25, "outputPrice": 10.0})),
    );
    assert_eq!(server.admin("DELETE", "/pricing/gpt-5", None).0, 204);

    // ---- aliases
    assert_eq!(
        server
            .admin(
                "POST",
                "/aliases",
                Some(&json!({"pool": "messages", "value": "opus", "description": "Claude Opus"}))
            )
            .0,
        201
    );
    assert_eq!(
        server
            .admin(
                "POST",
                "/aliases",
                Some(&json!({"pool": "responses", "value": "codex"}))
            )
            .0,
        201
    );
    assert_eq!(
        server
            .admin(
                "POST",
                "/aliases",
                Some(&json!({"pool": "messages", "value": "opus"}))
            )
            .0,
        409
    );
    assert_eq!(
        server.admin("DELETE", "/aliases/responses/codex", None).0,
        204
    );

    // ---- settings
    let (_, mut settings) = server.admin("GET", "/settings", None);
    settings["loadBalance"] = json!("round-robin");
    settings["failover"] = json!({"enabled": true, "rules": [{"errorCodes": "429", "actionChain": [{"action": "retry", "waitSeconds": 5, "maxAttempts": 3}, {"action": "failover"}]}]});
    let (status, saved) = server.admin("PUT", "/settings", Some(&settings));
    assert_eq!(status, 200, "{saved}");
    let mut bad = saved.clone();
    bad["loadBalance"] = json!("fastest");
    assert_eq!(server.admin("PUT", "/settings", Some(&bad)).0, 400);
    let mut stale = saved.clone();
    stale["version"] = json!(0);
    assert_eq!(server.admin("PUT", "/settings", Some(&stale)).0, 409);

    let before = snapshot(&server);
    assert_eq!(
        before["settings"]["loadBalance"], "round-robin",
        "the refused PUTs changed nothing"
    );
    let status = server.stop();
    assert!(status.success(), "clean exit on SIGTERM: {status}");

    // ---- restart: everything as left
    let server = TestServer::start(&data, &[]);
    let after = snapshot(&server);
    assert_eq!(before, after);
    drop(server);

    // ---- secrets: only ever encrypted on disk
    let bytes = all_bytes(&data);
    for secret in [
        UPSTREAM_SECRET_1,
        UPSTREAM_SECRET_2,
        OAUTH_SECRET,
        &plaintext,
        ADMIN_KEY,
    ] {
        assert!(
            !contains(&bytes, secret),
            "a secret is in plaintext in the data dir"
        );
    }
    assert!(
        contains(&bytes, "anthropic-main"),
        "sanity: the channel is in the files"
    );
}

#[test]
fn secret_key_is_private_and_a_wrong_encryption_key_refuses_to_start() {
    use std::os::unix::fs::PermissionsExt as _;
    let tmp = tempfile::tempdir().unwrap();

    // Generated secret.key: mode 0600.
    let generated = tmp.path().join("generated");
    TestServer::start(&generated, &[]).stop();
    let mode = std::fs::metadata(generated.join("secret.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    // Given key: no secret.key; another key is refused with a clear message.
    let given = tmp.path().join("given");
    let key_a = "6JvqIdQ3n0a5m0JcYqkq8rXxWb7aUj0yN9WcGZ8Zc0M=";
    let key_b = "T0pSZWRlZmluZWRLZXlUaGF0SXNXcm9uZzEyMzQ1Njc=";
    let server = TestServer::start(&given, &[("RELAYBOX_ENCRYPTION_KEY", key_a)]);
    let (status, _) = server.admin("POST", "/channels", Some(&json!({"pool": "messages", "name": "c", "serviceType": "claude", "baseUrl": "https://x", "apiKeys": ["sk-given-1234567890"]})));
    assert_eq!(status, 201);
    server.stop();
    assert!(!given.join("secret.key").exists());
    let err = TestServer::try_start(&given, &[("RELAYBOX_ENCRYPTION_KEY", key_b)])
        .err()
        .expect("must refuse");
    assert!(err.contains("does not match this data dir"), "{err}");
    // Without any key at all: refused too, saying what to do.
    let err = TestServer::try_start(&given, &[])
        .err()
        .expect("must refuse");
    assert!(err.contains("RELAYBOX_ENCRYPTION_KEY"), "{err}");
    // The right key still works, and the data is intact.
    let server = TestServer::start(&given, &[("RELAYBOX_ENCRYPTION_KEY", key_a)]);
    assert_eq!(
        server.admin("GET", "/channels", None).1["channels"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn health_reports_storage_and_reload_state() {
    let tmp = tempfile::tempdir().unwrap();
    let server = TestServer::start(&tmp.path().join("data"), &[]);
    let (status, health) = common::get(&format!("{}/health", server.url)).unwrap();
    assert_eq!(status, 200);
    assert_eq!(health["status"], "ok");
    assert_eq!(health["storage"]["config"]["engine"], "redb");
    assert_eq!(health["storage"]["logs"]["engine"], "sqlite");
    assert_eq!(health["configSource"], "local");
    assert!(health["reload"]["lastError"].is_null());
    assert!(
        !server.log().contains(ADMIN_KEY),
        "the admin key is never logged"
    );
}
