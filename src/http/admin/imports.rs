//! Imports started from the browser. `POST /admin/api/import` checks the body (what can be
//! known then: fields, the folder or file exists, one Redis source), then runs the same
//! importer as `relaybox import …` in the background against the RUNNING server's
//! configuration: its config changes go through the one write path, so the server serves them
//! at once. `GET /admin/api/import/{job}` tells how far it got, then its report (the JSON of the
//! report the CLI prints) or its error. One import at a time; the last few finished jobs are
//! kept for `GET`.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::app::server::App;
use crate::config::services::ServiceError;
use crate::domain::bounds::InvalidField;
use crate::http::admin::body::AdminJson;
use crate::http::error::AdminError;
use crate::importers::{cc_bridge, crs};

/// Finished jobs kept for `GET /admin/api/import/{job}`.
const KEPT_JOBS: usize = 10;

/// The routes' state: the app the imports run against and its jobs.
#[derive(Clone)]
pub struct Imports {
    app: Arc<App>,
    jobs: Arc<Mutex<Jobs>>,
}

impl Imports {
    pub fn new(app: Arc<App>) -> Self {
        Self {
            app,
            jobs: Arc::default(),
        }
    }

    fn jobs(&self) -> MutexGuard<'_, Jobs> {
        self.jobs.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[derive(Debug, Default)]
struct Jobs {
    /// Oldest first; at most one is running (the last one).
    list: VecDeque<Job>,
}

impl Jobs {
    fn get_mut(&mut self, id: &str) -> Option<&mut Job> {
        self.list.iter_mut().find(|job| job.job == id)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Phase {
    Pending,
    Running,
    Done,
    Failed,
}

#[derive(Debug, Clone, Serialize)]
struct Step {
    name: &'static str,
    state: Phase,
    detail: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
struct JobError {
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
}

/// What `GET /admin/api/import/{job}` answers.
#[derive(Debug, Clone, Serialize)]
struct Job {
    job: String,
    state: Phase,
    dry_run: bool,
    steps: Vec<Step>,
    report: Option<Value>,
    error: Option<JobError>,
}

impl Job {
    /// Steps before `index` are done, `index` runs and says `detail`.
    fn advance(&mut self, index: usize, detail: Option<String>) {
        for (at, step) in self.steps.iter_mut().enumerate() {
            if at < index {
                step.state = Phase::Done;
            } else if at == index {
                step.state = Phase::Running;
                if detail.is_some() {
                    step.detail = detail.clone();
                }
            }
        }
    }

    fn finish(&mut self, outcome: Result<Value, String>) {
        match outcome {
            Ok(report) => {
                self.state = Phase::Done;
                for step in &mut self.steps {
                    step.state = Phase::Done;
                }
                self.report = Some(report);
            }
            Err(message) => {
                self.state = Phase::Failed;
                if let Some(step) = self.steps.iter_mut().find(|step| step.state != Phase::Done) {
                    step.state = Phase::Failed;
                }
                self.error = Some(JobError {
                    message,
                    field: None,
                });
            }
        }
    }
}

/// A checked request: what to import and how.
enum Request {
    CcBridge {
        path: PathBuf,
    },
    Crs {
        source: crs::Source,
        encryption_key: String,
    },
}

impl Request {
    fn step_names(&self) -> &'static [&'static str] {
        match self {
            Request::CcBridge { .. } => &["configuration", "request logs"],
            Request::Crs { .. } => &["read and decrypt the source", "import"],
        }
    }
}

fn field(name: &str, rule: impl Into<String>) -> AdminError {
    AdminError::Service(ServiceError::Field(InvalidField::new(name, rule)))
}

fn text<'a>(body: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, AdminError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(value)) if value.trim().is_empty() => Err(field(name, "is empty")),
        Some(Value::String(value)) => Ok(Some(value)),
        Some(_) => Err(field(name, "must be a string")),
    }
}

fn absolute(name: &str, value: &str) -> Result<PathBuf, AdminError> {
    let path = PathBuf::from(value);
    if !path.is_absolute() {
        return Err(field(
            name,
            format!("must be an absolute path on the server, not '{value}'"),
        ));
    }
    Ok(path)
}

/// The body of `POST /admin/api/import`, checked whole before anything runs.
fn parse(body: &Value) -> Result<(Request, bool), AdminError> {
    let Some(body) = body.as_object() else {
        return Err(AdminError::BadRequest(
            "the body must be a JSON object".into(),
        ));
    };
    let source = text(body, "source")?.ok_or_else(|| field("source", "is required"))?;
    let allowed: &[&str] = match source {
        cc_bridge::SOURCE => &["source", "dry_run", "path"],
        crs::SOURCE => &[
            "source",
            "dry_run",
            "redis_url",
            "dump_path",
            "encryption_key",
        ],
        other => {
            return Err(field(
                "source",
                format!("must be cc-bridge or claude-relay-service, not '{other}'"),
            ));
        }
    };
    if let Some(unknown) = body.keys().find(|name| !allowed.contains(&name.as_str())) {
        return Err(field(
            unknown,
            format!(
                "is not a field of a {source} import ({})",
                allowed.join(", ")
            ),
        ));
    }
    let dry_run = match body.get("dry_run") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(value)) => *value,
        Some(_) => return Err(field("dry_run", "must be true or false")),
    };
    let request = if source == cc_bridge::SOURCE {
        let value = text(body, "path")?
            .ok_or_else(|| field("path", "is required: the cc-bridge .config folder"))?;
        let path = absolute("path", value)?;
        if !path.is_dir() {
            return Err(field(
                "path",
                format!("{value} is not an existing folder on the server"),
            ));
        }
        Request::CcBridge { path }
    } else {
        let source = match (text(body, "redis_url")?, text(body, "dump_path")?) {
            (Some(url), None) => {
                if url.starts_with("rediss://") {
                    // The importer's Redis client has no TLS: say so now, not in a failed job.
                    return Err(field(
                        "redis_url",
                        "rediss:// (TLS) is not supported: reach Redis through a local tunnel, or use a JSON dump (dump_path)",
                    ));
                }
                if !url.starts_with("redis://") {
                    return Err(field("redis_url", "must start with redis://"));
                }
                crs::Source::Redis(url.to_string())
            }
            (None, Some(value)) => {
                let path = absolute("dump_path", value)?;
                if !path.is_file() {
                    return Err(field(
                        "dump_path",
                        format!("{value} is not an existing file on the server"),
                    ));
                }
                crs::Source::Dump(path)
            }
            (Some(_), Some(_)) => {
                return Err(field("dump_path", "give redis_url or dump_path, not both"));
            }
            (None, None) => {
                return Err(field(
                    "redis_url",
                    "is required (or dump_path): where to read claude-relay-service's data",
                ));
            }
        };
        let encryption_key = text(body, "encryption_key")?
            .ok_or_else(|| {
                field(
                    "encryption_key",
                    "is required: claude-relay-service's ENCRYPTION_KEY (from its .env)",
                )
            })?
            .to_string();
        Request::Crs {
            source,
            encryption_key,
        }
    };
    Ok((request, dry_run))
}

/// `POST /admin/api/import` → 202 `{"job"}`; 409 while another import runs.
pub async fn start(
    State(imports): State<Imports>,
    AdminJson(body): AdminJson,
) -> Result<(StatusCode, Json<Value>), AdminError> {
    let (request, dry_run) = parse(&body)?;
    let id = crate::domain::new_id();
    {
        let mut jobs = imports.jobs();
        if let Some(running) = jobs.list.iter().find(|job| job.state == Phase::Running) {
            return Err(ServiceError::Conflict(format!(
                "import {} is still running; one import at a time",
                running.job
            ))
            .into());
        }
        jobs.list.push_back(Job {
            job: id.clone(),
            state: Phase::Running,
            dry_run,
            steps: request
                .step_names()
                .iter()
                .map(|name| Step {
                    name,
                    state: Phase::Pending,
                    detail: None,
                })
                .collect(),
            report: None,
            error: None,
        });
        while jobs.list.len() > KEPT_JOBS + 1 {
            jobs.list.pop_front();
        }
        if let Some(job) = jobs.get_mut(&id) {
            job.advance(0, None);
        }
    }
    let job = id.clone();
    let background = imports.clone();
    imports.app.tasks.spawn("import", async move {
        let worker = background.clone();
        let id = job.clone();
        // Not `store::blocking`: an importer that panics fails its job, never the server.
        let outcome = tokio::task::spawn_blocking(move || run(&worker, &id, &request, dry_run))
            .await
            .unwrap_or_else(|_| {
                Err("the import stopped on an internal error; see the server log".into())
            });
        if let Err(message) = &outcome {
            tracing::warn!(job = %job, error = %message, "import failed");
        }
        if let Some(entry) = background.jobs().get_mut(&job) {
            entry.finish(outcome);
        }
        Ok(())
    });
    Ok((StatusCode::ACCEPTED, Json(json!({ "job": id }))))
}

/// `GET /admin/api/import/{job}`.
pub async fn status(
    State(imports): State<Imports>,
    Path(job): Path<String>,
) -> Result<Json<Value>, AdminError> {
    let jobs = imports.jobs();
    let found = jobs
        .list
        .iter()
        .find(|entry| entry.job == job)
        .ok_or(ServiceError::NotFound {
            kind: "import job",
            id: job.clone(),
        })?;
    Ok(Json(json!(found)))
}

/// The import itself, on a blocking thread: the importer the CLI runs, on the app's stores.
fn run(imports: &Imports, id: &str, request: &Request, dry_run: bool) -> Result<Value, String> {
    let app = &imports.app;
    let progress = {
        let imports = imports.clone();
        let id = id.to_string();
        move |index: usize, detail: String| {
            if let Some(job) = imports.jobs().get_mut(&id) {
                job.advance(index, Some(detail));
            }
        }
    };
    let report = match request {
        Request::CcBridge { path } => {
            let options = cc_bridge::ImportOptions {
                dry_run,
                progress: Some(Box::new(move |p: &cc_bridge::Progress| {
                    progress(1, format!("{}/{}", p.done, p.total));
                })),
                ..cc_bridge::ImportOptions::default()
            };
            let report = cc_bridge::import_dir(
                path,
                &app.config,
                &app.data.stores.logs,
                &app.data.cipher,
                &options,
            )
            .map_err(|e| e.to_string())?;
            serde_json::to_value(report)
        }
        Request::Crs {
            source,
            encryption_key,
        } => {
            let step = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let mut options = crs::CrsOptions::new(encryption_key);
            options.dry_run = dry_run;
            options.progress = Some(Box::new({
                let step = Arc::clone(&step);
                move |line: &str| {
                    progress(
                        step.load(std::sync::atomic::Ordering::Relaxed),
                        line.to_string(),
                    );
                }
            }));
            let prepared = crs::prepare(source, &options).map_err(|e| e.to_string())?;
            step.store(1, std::sync::atomic::Ordering::Relaxed);
            if let Some(job) = imports.jobs().get_mut(id) {
                job.advance(1, None);
            }
            let report = crs::import(
                &prepared,
                &app.config,
                &app.data.stores.logs,
                &app.data.cipher,
                &options,
            )
            .map_err(|e| e.to_string())?;
            serde_json::to_value(report)
        }
    };
    report.map_err(|e| format!("cannot render the report: {e}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly")]

    use super::*;

    fn field_of(body: Value) -> String {
        match parse(&body) {
            Err(AdminError::Service(ServiceError::Field(invalid))) => invalid.field,
            Err(other) => panic!("not a field error: {other}"),
            Ok(_) => panic!("accepted: {body}"),
        }
    }

    #[test]
    fn each_bad_body_names_its_field() {
        let dir = std::env::temp_dir();
        let dir = dir.to_str().unwrap();
        assert_eq!(field_of(json!({})), "source");
        assert_eq!(field_of(json!({"source": "sub2api"})), "source");
        assert_eq!(field_of(json!({"source": "cc-bridge"})), "path");
        assert_eq!(
            field_of(json!({"source": "cc-bridge", "path": "rel/dir"})),
            "path"
        );
        assert_eq!(
            field_of(json!({"source": "cc-bridge", "path": "/no/such/folder/here"})),
            "path"
        );
        assert_eq!(
            field_of(json!({"source": "cc-bridge", "path": dir, "dryRun": true})),
            "dryRun"
        );
        assert_eq!(
            field_of(json!({"source": "cc-bridge", "path": dir, "dry_run": "yes"})),
            "dry_run"
        );
        assert_eq!(
            field_of(json!({"source": "cc-bridge", "path": dir, "redis_url": "redis://x"})),
            "redis_url"
        );
        let crs = |extra: Value| {
            let mut body = json!({"source": "claude-relay-service", "encryption_key": "k"});
            for (name, value) in extra.as_object().unwrap() {
                body[name] = value.clone();
            }
            body
        };
        assert_eq!(field_of(crs(json!({}))), "redis_url");
        assert_eq!(field_of(crs(json!({"redis_url": "http://x"}))), "redis_url");
        assert_eq!(
            field_of(crs(json!({"redis_url": "rediss://x"}))),
            "redis_url"
        );
        assert_eq!(
            field_of(crs(json!({"redis_url": "redis://x", "dump_path": dir}))),
            "dump_path"
        );
        assert_eq!(field_of(crs(json!({"dump_path": dir}))), "dump_path");
        assert_eq!(
            field_of(json!({"source": "claude-relay-service", "redis_url": "redis://x"})),
            "encryption_key"
        );
        assert_eq!(field_of(crs(json!({"path": dir}))), "path");
    }

    #[test]
    fn a_good_body_is_accepted() {
        let dir = std::env::temp_dir();
        let (request, dry_run) =
            parse(&json!({"source": "cc-bridge", "path": dir, "dry_run": true})).unwrap();
        assert!(dry_run);
        assert!(matches!(request, Request::CcBridge { path } if path == dir));
        let (request, dry_run) = parse(&json!({
            "source": "claude-relay-service", "redis_url": "redis://127.0.0.1:6379/0",
            "encryption_key": "k"
        }))
        .unwrap();
        assert!(!dry_run);
        assert!(matches!(
            request,
            Request::Crs {
                source: crs::Source::Redis(_),
                ..
            }
        ));
    }
}
