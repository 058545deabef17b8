//! A relay environment with nothing configured but what a test adds: no price, no settings
//! changes (unlike `relay_env`, which adds a price). Files may be put into the data folder
//! before the server starts (`pricing.json`, `config.json`, …).

use relaybox_mock_upstream::{MockOptions, MockUpstream};
use serde_json::{Value, json};

use super::{TestServer, request};
use crate::common::relay_env::UPSTREAM_KEY;

pub struct Bare {
    // Field order: the server stops before the mock's runtime goes away.
    pub server: TestServer,
    pub mock: MockUpstream,
    pub runtime: tokio::runtime::Runtime,
    pub tmp: tempfile::TempDir,
}

/// Start the mock and the server; `files` are written into the data folder first.
pub fn start(files: &[(&str, &str)]) -> Bare {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mock = runtime
        .block_on(MockUpstream::start(MockOptions::default()))
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    for (name, text) in files {
        std::fs::write(data.join(name), text).unwrap();
    }
    let server = TestServer::start(&data, &[]);
    Bare {
        server,
        mock,
        runtime,
        tmp,
    }
}

impl Bare {
    /// A client key made with `fields` (`{"name": …, "limits": …}`): (plaintext, id).
    pub fn key(&self, fields: &Value) -> (String, String) {
        let (status, created) = self.server.admin("POST", "/keys", Some(fields));
        assert_eq!(status, 201, "{created}");
        (
            created["plaintext"].as_str().unwrap().to_string(),
            created["key"]["id"].as_str().unwrap().to_string(),
        )
    }

    /// A channel to the mock (at `directives`, if any) made with `fields` over the defaults
    /// (messages pool, `claude`, [`UPSTREAM_KEY`]). Returns its id.
    pub fn channel(&self, directives: Option<&str>, fields: &Value) -> String {
        let base = directives.map_or_else(|| self.mock.base_url(), |d| self.mock.scenario_url(d));
        let mut channel = json!({"pool": "messages", "name": "main", "serviceType": "claude", "apiKeys": [UPSTREAM_KEY], "baseUrl": base});
        for (name, value) in fields.as_object().expect("channel fields are an object") {
            channel[name] = value.clone();
        }
        let (status, body) = self.server.admin("POST", "/channels", Some(&channel));
        assert_eq!(status, 201, "{body}");
        body["id"].as_str().unwrap().to_string()
    }

    /// An Anthropic Messages request for `model` with `key`.
    pub fn messages(&self, key: &str, model: &str) -> (u16, Value) {
        let body = json!({"model": model, "max_tokens": 64, "messages": [{"role": "user", "content": "Hello there, relay"}]});
        request(
            "POST",
            &format!("{}/v1/messages", self.server.url),
            &[("x-api-key", key), ("anthropic-version", "2023-06-01")],
            Some(&body),
        )
        .unwrap()
    }

    /// GET `path` of the relay with `headers`.
    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> (u16, Value) {
        request("GET", &format!("{}{path}", self.server.url), headers, None).unwrap()
    }

    /// The newest log rows, newest first, once there are at least `at_least`.
    pub fn rows(&self, at_least: usize) -> Vec<Value> {
        crate::common::wait::wait_for(
            std::time::Duration::from_secs(5),
            &format!("{at_least} request-log rows"),
            || {
                let rows = self.server.admin("GET", "/logs?limit=1000", None).1["logs"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                (rows.len() >= at_least).then_some(rows)
            },
        )
    }
}
