//! The CLI's two ways to reach a data dir: open it directly when no server runs on it, or talk
//! to the running server's admin API (found through `data/control.json`) when one does.

use std::path::Path;

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use crate::app::server::{CONTROL_FILE, ControlFile};
use crate::app::{DataDir, DataDirOptions, Instance, StartupError};

pub enum Target {
    /// No server runs: the data dir is opened (and locked) by this process.
    Local(Box<Instance>),
    /// A server runs: requests go through its admin API.
    Remote(Box<AdminClient>),
}

/// Open the data dir, or — when a running server holds it — connect to that server.
pub async fn connect(options: DataDirOptions) -> anyhow::Result<Target> {
    let path = options.path.clone();
    let opened = crate::store::blocking(move || {
        DataDir::open_existing(&options, "cli").and_then(Instance::load)
    })
    .await;
    match opened {
        Ok(core) => Ok(Target::Local(Box::new(core))),
        Err(StartupError::Locked(message))
        | Err(StartupError::Store(crate::store::StoreError::Locked(message))) => {
            let client = AdminClient::from_control_file(&path).with_context(|| {
                format!("{message}\n(the running server's {CONTROL_FILE} could not be used)")
            })?;
            Ok(Target::Remote(Box::new(client)))
        }
        Err(other) => Err(other.into()),
    }
}

pub struct AdminClient {
    base: String,
    token: String,
    http: Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
}

impl AdminClient {
    pub fn from_control_file(data_dir: &Path) -> anyhow::Result<Self> {
        let path = data_dir.join(CONTROL_FILE);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let control: ControlFile = serde_json::from_str(&text)
            .with_context(|| format!("{} is not valid", path.display()))?;
        Ok(Self {
            base: control.url,
            token: control.token,
            http: Client::builder(TokioExecutor::new()).build_http(),
        })
    }

    /// Call the admin API; a non-2xx answer becomes an error carrying the server's message.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let uri = format!("{}/admin/api{path}", self.base);
        let payload = body.map(Value::to_string).unwrap_or_default();
        let request = hyper::Request::builder()
            .method(method)
            .uri(&uri)
            .header("authorization", format!("Bearer {}", self.token))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(payload)))?;
        let response = tokio::time::timeout(
            std::time::Duration::from_secs(30),
            self.http.request(request),
        )
        .await
        .context("the running server did not answer within 30 s")?
        .with_context(|| format!("cannot reach the running server at {}", self.base))?;
        let status = response.status();
        let bytes = response.into_body().collect().await?.to_bytes();
        let value: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        if !status.is_success() {
            let message = value
                .pointer("/error/message")
                .and_then(Value::as_str)
                .unwrap_or("the server refused the request")
                .to_string();
            anyhow::bail!("{message} (HTTP {})", status.as_u16());
        }
        Ok(value)
    }
}
