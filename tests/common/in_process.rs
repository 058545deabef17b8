//! relaybox in the test's own process, for fast handler tests: a temp data dir, the library's
//! [`Instance`] and [`App`], and requests handed straight to `relaybox::http::router` with
//! `tower::ServiceExt::oneshot` — no subprocess, no socket.
//!
//! What runs as in the server: the router with every route, the admin auth layer, the admin
//! and relay handlers, the configuration writer and snapshots, the log writer, the limiter and
//! the upstream client (so a channel pointing at a `MockUpstream` is really called).
//! What does not: the connection layer (`http::connections`, with its fast path for
//! fixed-path relay POSTs, which calls the same `relay_fixed` the router does) and the
//! background workers (config-file poller, instance-lock heartbeat, limits re-seeding after a
//! config change). A test that needs the workers can call `app.start_background(addr)`.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Method, Request, StatusCode, header};
use axum::response::Response;
use relaybox::app::server::{App, ServerOptions};
use relaybox::app::{DataDir, DataDirOptions, Instance};
use relaybox::config::services::{self, NewKey};
use serde_json::{Value, json};
use tower::ServiceExt as _;

/// The API key every channel made by [`InProcessApp::add_mock_channel`] sends upstream.
pub const MOCK_UPSTREAM_KEY: &str = "sk-test-in-process-upstream-0001";

pub struct InProcessApp {
    pub app: Arc<App>,
    router: Router,
    admin_key: String,
    admin_key_id: String,
    closed: bool,
    // Declared last so it is removed after the app above has been dropped.
    tmp: tempfile::TempDir,
}

impl std::fmt::Debug for InProcessApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcessApp")
            .field("data_dir", &self.tmp.path())
            .finish_non_exhaustive()
    }
}

impl InProcessApp {
    /// A fresh data dir with one admin key; the app is ready for requests when this returns.
    pub async fn start() -> InProcessApp {
        Self::start_with(ServerOptions::default()).await
    }

    pub async fn start_with(options: ServerOptions) -> InProcessApp {
        let tmp = tempfile::tempdir().unwrap();
        let data_options = DataDirOptions {
            path: tmp.path().join("data"),
            ..DataDirOptions::default()
        };
        // The stores are synchronous: open them off the runtime, as `relaybox serve` does.
        let instance = relaybox::store::blocking(move || {
            let data = DataDir::open(&data_options, "in-process test").unwrap();
            Instance::load(data).unwrap()
        })
        .await;
        let (admin, plaintext) = services::create_key(
            &instance.config,
            NewKey {
                name: "admin".into(),
                is_admin: true,
                ..NewKey::default()
            },
        )
        .unwrap();
        let app = App::new(instance, &options).unwrap();
        let router = relaybox::http::router(Arc::clone(&app));
        InProcessApp {
            app,
            router,
            admin_key: plaintext.as_str().to_string(),
            admin_key_id: admin.id,
            closed: false,
            tmp,
        }
    }

    /// The plaintext of the admin key made at start.
    pub fn admin_key(&self) -> &str {
        &self.admin_key
    }

    pub fn admin_key_id(&self) -> &str {
        &self.admin_key_id
    }

    /// The local control token (what `data/control.json` would hold).
    pub fn control_token(&self) -> &str {
        &self.app.control_token
    }

    pub fn data_dir(&self) -> std::path::PathBuf {
        self.tmp.path().join("data")
    }

    /// One request through the router, as a connection would hand it over.
    pub async fn call(&self, request: Request<Body>) -> Response {
        match self.router.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        }
    }

    /// One request; the answer's body is parsed as JSON (`Value::Null` when empty, a
    /// `Value::String` when it is not JSON).
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut builder = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).unwrap())
            .uri(path);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let request = match body {
            Some(value) => builder
                .header(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )
                .body(Body::from(value.to_string())),
            None => builder.body(Body::empty()),
        }
        .unwrap();
        let response = self.call(request).await;
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        (status, value)
    }

    /// `/admin/api{path}` with the admin key.
    pub async fn admin(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.admin_with(method, path, &[], body).await
    }

    /// `/admin/api{path}` with the admin key and more headers (`If-Match`, …).
    pub async fn admin_with(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let bearer = format!("Bearer {}", self.admin_key);
        let mut all = vec![("authorization", bearer.as_str())];
        all.extend_from_slice(headers);
        self.request(method, &format!("/admin/api{path}"), &all, body)
            .await
    }

    /// `POST /v1/messages` with `key` as `x-api-key`, as the Anthropic SDK sends it.
    pub async fn relay_messages(&self, key: &str, body: Value) -> (StatusCode, Value) {
        self.request(
            "POST",
            "/v1/messages",
            &[("x-api-key", key), ("anthropic-version", "2023-06-01")],
            Some(body),
        )
        .await
    }

    /// Create a client key through the admin API; returns (id, plaintext).
    pub async fn create_key(&self, fields: Value) -> (String, String) {
        let (status, body) = self.admin("POST", "/keys", Some(fields)).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        (
            body["key"]["id"].as_str().unwrap().to_string(),
            body["plaintext"].as_str().unwrap().to_string(),
        )
    }

    /// Add a `messages` pool `claude` channel to `base_url` with [`MOCK_UPSTREAM_KEY`],
    /// changed by `fields`; returns its id.
    pub async fn add_mock_channel(&self, base_url: &str, fields: Value) -> String {
        let mut channel = json!({
            "pool": "messages",
            "name": "mock",
            "serviceType": "claude",
            "baseUrl": base_url,
            "apiKeys": [MOCK_UPSTREAM_KEY],
        });
        for (name, value) in fields.as_object().unwrap() {
            channel[name] = value.clone();
        }
        let (status, body) = self.admin("POST", "/channels", Some(channel)).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().unwrap().to_string()
    }

    /// The server's shutdown sequence ([`App::finish`]): stop the workers, commit every queued
    /// log row.
    pub async fn close(mut self) {
        self.closed = true;
        self.app.finish().await;
    }
}

impl Drop for InProcessApp {
    /// Without [`InProcessApp::close`] (a test that returned early or panicked): stop the
    /// workers and commit the queued log rows without waiting for the tasks.
    fn drop(&mut self) {
        if !self.closed {
            self.app.tasks.begin_shutdown();
            self.app.relay.logs.close();
        }
    }
}
