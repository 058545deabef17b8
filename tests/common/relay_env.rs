//! A relay test environment: the real binary, the in-process mock upstream, a client key and a
//! price, with helpers to add channels and read log rows.

use std::time::Duration;

use relaybox_mock_upstream::{MockOptions, MockUpstream};
use serde_json::{Value, json};

use super::{TestServer, eventually, request};

pub const UPSTREAM_KEY: &str = "sk-upstream-secret-relay-test-0001";

pub struct Setup {
    // Field order: the server stops before the mock's runtime goes away.
    pub server: TestServer,
    pub mock: MockUpstream,
    pub runtime: tokio::runtime::Runtime,
    pub key: String,
    pub key_id: String,
    pub tmp: tempfile::TempDir,
}

pub fn setup(settings_patch: Value) -> Setup {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mock = runtime
        .block_on(MockUpstream::start(MockOptions::default()))
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let server = TestServer::start(&tmp.path().join("data"), &[]);
    let (_, mut settings) = server.admin("GET", "/settings", None);
    for (k, v) in settings_patch.as_object().unwrap() {
        settings[k] = v.clone();
    }
    let (status, body) = server.admin("PUT", "/settings", Some(&settings));
    assert_eq!(status, 200, "{body}");
    let (_, created) = server.admin("POST", "/keys", Some(&json!({"name": "tester"})));
    let key = created["plaintext"].as_str().unwrap().to_string();
    let key_id = created["key"]["id"].as_str().unwrap().to_string();
    server.admin(
        "POST",
        "/pricing",
        Some(&json!({"model": "claude-sonnet-4-5", "inputPrice": 3.0, "outputPrice": 15.0})),
    );
    Setup {
        server,
        mock,
        runtime,
        key,
        key_id,
        tmp,
    }
}

impl Setup {
    pub fn channel(
        &self,
        pool: &str,
        name: &str,
        service_type: &str,
        directives: Option<&str>,
        priority: i64,
    ) -> String {
        let base = directives.map_or_else(|| self.mock.base_url(), |d| self.mock.scenario_url(d));
        self.add_channel(
            json!({"pool": pool, "name": name, "serviceType": service_type, "baseUrl": base, "priority": priority}),
        )
    }

    /// Add a channel through the admin API: a `messages` pool `claude` channel with
    /// [`UPSTREAM_KEY`], changed by `fields`. Returns its id.
    pub fn add_channel(&self, fields: Value) -> String {
        let mut channel =
            json!({"pool": "messages", "serviceType": "claude", "apiKeys": [UPSTREAM_KEY]});
        for (name, value) in fields.as_object().expect("channel fields are an object") {
            channel[name] = value.clone();
        }
        let (status, body) = self.server.admin("POST", "/channels", Some(&channel));
        assert_eq!(status, 201, "{body}");
        body["id"].as_str().unwrap().to_string()
    }

    pub fn messages(&self, body: &Value) -> (u16, Value) {
        request(
            "POST",
            &format!("{}/v1/messages", self.server.url),
            &[
                ("x-api-key", &self.key),
                ("anthropic-version", "2023-06-01"),
            ],
            Some(body),
        )
        .unwrap()
    }

    pub fn path_count(&self, fragment: &str) -> u64 {
        self.mock
            .stats()
            .per_path
            .iter()
            .filter(|(p, _)| p.contains(fragment))
            .map(|(_, n)| n)
            .sum()
    }

    /// The newest log rows (polls: rows are group-committed within ~100 ms).
    pub fn rows(&self, at_least: usize) -> Vec<Value> {
        let mut rows = Vec::new();
        eventually(Duration::from_secs(5), || {
            rows = self.server.admin("GET", "/logs?limit=1000", None).1["logs"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            rows.len() >= at_least
        });
        rows
    }
}

pub fn hello() -> Value {
    json!({"model": "claude-sonnet-4-5", "max_tokens": 64, "messages": [{"role": "user", "content": "Hello there, relay"}]})
}
