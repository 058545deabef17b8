//! Admin handlers: extract, call one service function off the runtime, shape the response.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::server::App;
use crate::config::Configuration;
use crate::config::services::{self, ChannelView, KeyView, NewKey, ServiceError};
use crate::domain::pricing::ModelAlias;
use crate::domain::{Channel, ChannelStatus, ModelAliases, ModelPrice, Pool, Settings};
use crate::http::admin::body::AdminJson;
use crate::http::error::AdminError;
use crate::store::blocking;
use crate::store::sqlite::{LogCursor, LogSearch, StatusFilter};

type Reply<T> = Result<T, AdminError>;

/// Run a service call on the blocking pool (stores are synchronous).
async fn run<T, F>(app: &Arc<App>, work: F) -> Result<T, AdminError>
where
    T: Send + 'static,
    F: FnOnce(&Configuration) -> Result<T, ServiceError> + Send + 'static,
{
    let config = Arc::clone(&app.config);
    Ok(blocking(move || work(&config)).await?)
}

/// `If-Match: 3` (or `"3"`) → optimistic-concurrency version.
fn if_match(headers: &HeaderMap) -> Reply<Option<u64>> {
    let Some(value) = headers.get(axum::http::header::IF_MATCH) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or("").trim().trim_matches('"');
    text.parse()
        .map(Some)
        .map_err(|_| AdminError::BadRequest("If-Match must be a version number".into()))
}

// ---- keys -----------------------------------------------------------------------------------

pub async fn list_keys(State(app): State<Arc<App>>) -> Reply<Json<Value>> {
    let keys: Vec<KeyView> = services::list_keys(&app.config)
        .iter()
        .map(KeyView::of)
        .collect();
    Ok(Json(json!({ "keys": keys })))
}

pub async fn create_key(
    State(app): State<Arc<App>>,
    AdminJson(payload): AdminJson,
) -> Reply<(StatusCode, Json<Value>)> {
    let new = NewKey::from_json(payload)?;
    let (key, plaintext) = run(&app, move |config| services::create_key(config, new)).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "key": KeyView::of(&key),
            "plaintext": plaintext.as_str(),
            "notice": "this is the only time the key is shown; store it now",
        })),
    ))
}

pub async fn get_key(State(app): State<Arc<App>>, Path(id): Path<String>) -> Reply<Json<KeyView>> {
    Ok(Json(KeyView::of(&services::get_key(&app.config, &id)?)))
}

pub async fn update_key(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    AdminJson(payload): AdminJson,
) -> Reply<Json<KeyView>> {
    let version = if_match(&headers)?;
    let patch = payload;
    let key = run(&app, move |config| {
        services::update_key(config, &id, &patch, version)
    })
    .await?;
    Ok(Json(KeyView::of(&key)))
}

pub async fn delete_key(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Reply<StatusCode> {
    let version = if_match(&headers)?;
    run(&app, move |config| {
        services::delete_key(config, &id, version)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- channels -------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
pub struct PoolFilter {
    pool: Option<String>,
}

fn parse_pool(text: Option<&str>) -> Reply<Option<Pool>> {
    text.map(|p| {
        Pool::parse(p).ok_or_else(|| {
            AdminError::BadRequest(format!(
                "unknown pool '{p}' (messages, responses, gemini, chat)"
            ))
        })
    })
    .transpose()
}

/// The channel's health as the dashboard shows it: its configured status first, then what the
/// relay's in-memory health holds against it (a failover rule's suspension, an open circuit),
/// then its quota. The state is one of `up`, `disabled`, `suspended`, `circuit_open`,
/// `over_quota`; the detail says why it is not up.
pub(super) fn channel_health(app: &App, channel: &Channel) -> (&'static str, Option<String>) {
    match channel.status {
        ChannelStatus::Disabled => (
            "disabled",
            Some("disabled in the configuration (standby: never routed to)".to_string()),
        ),
        ChannelStatus::Suspended => (
            "suspended",
            Some("suspended in the configuration until resumed".to_string()),
        ),
        ChannelStatus::Active => match app.relay.health.held_back(&channel.id) {
            Some(("suspended", why)) => ("suspended", Some(format!("{why} (failover rule)"))),
            Some((state, why)) => (state, Some(why)),
            None => match app.relay.limits.channel_usage(channel).quota {
                Some(quota) if quota.used >= quota.limit => (
                    "over_quota",
                    Some(quota_detail(
                        &quota.kind,
                        quota.used,
                        quota.limit,
                        quota.resets_at.as_deref(),
                    )),
                ),
                _ => ("up", None),
            },
        },
    }
}

fn quota_detail(kind: &str, used: f64, limit: f64, resets_at: Option<&str>) -> String {
    let figures = if kind == "credit" {
        format!("${used:.2} of ${limit:.2}")
    } else {
        format!("{used:.0} of {limit:.0} requests")
    };
    match resets_at {
        Some(at) => format!("quota used up ({figures}) until {at}"),
        None => format!("quota used up ({figures})"),
    }
}

fn with_health(app: &App, mut view: ChannelView, channel: &Channel) -> ChannelView {
    if let Some(object) = view.channel.as_object_mut() {
        let (state, detail) = channel_health(app, channel);
        object.insert("health".into(), json!({ "state": state, "detail": detail }));
    }
    view
}

pub async fn list_channels(
    State(app): State<Arc<App>>,
    Query(filter): Query<PoolFilter>,
) -> Reply<Json<Value>> {
    let pool = parse_pool(filter.pool.as_deref())?;
    let channels = services::list_channels(&app.config, pool)
        .iter()
        .map(|c| services::channel_view(&app.config, c).map(|view| with_health(&app, view, c)))
        .collect::<Result<Vec<ChannelView>, _>>()?;
    Ok(Json(json!({ "channels": channels })))
}

pub async fn create_channel(
    State(app): State<Arc<App>>,
    AdminJson(payload): AdminJson,
) -> Reply<(StatusCode, Json<ChannelView>)> {
    let (channel, view) = run(&app, move |config| {
        let channel = services::create_channel(config, payload)?;
        let view = services::channel_view(config, &channel)?;
        Ok((channel, view))
    })
    .await?;
    Ok((StatusCode::CREATED, Json(with_health(&app, view, &channel))))
}

/// `POST /channels/{id}/test` (`relaybox channels test` while a server runs): one tiny request
/// to the channel's upstream with the server's own client; body `{"model"?, "timeoutSecs"?}`.
pub async fn test_channel(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    AdminJson(payload): AdminJson,
) -> Reply<Json<crate::app::probe::ProbeReport>> {
    let model = payload
        .get("model")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let timeout = payload
        .get("timeoutSecs")
        .and_then(Value::as_u64)
        .unwrap_or(30)
        .clamp(1, 600);
    let channel = services::get_channel(&app.config, &id)?;
    let live = crate::config::LiveChannel::open(&channel, app.config.cipher())
        .map_err(ServiceError::from)?;
    let report = crate::app::probe::probe_channel(
        &app.relay.upstream,
        &live,
        model.as_deref(),
        std::time::Duration::from_secs(timeout),
    )
    .await
    .map_err(ServiceError::Invalid)?;
    Ok(Json(report))
}

pub async fn get_channel(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Reply<Json<ChannelView>> {
    let channel = services::get_channel(&app.config, &id)?;
    let view = services::channel_view(&app.config, &channel)?;
    Ok(Json(with_health(&app, view, &channel)))
}

pub async fn update_channel(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    AdminJson(payload): AdminJson,
) -> Reply<Json<ChannelView>> {
    let version = if_match(&headers)?;
    let patch = payload;
    let (channel, view) = run(&app, move |config| {
        let channel = services::update_channel(config, &id, &patch, version)?;
        let view = services::channel_view(config, &channel)?;
        Ok((channel, view))
    })
    .await?;
    Ok(Json(with_health(&app, view, &channel)))
}

pub async fn delete_channel(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Reply<StatusCode> {
    let version = if_match(&headers)?;
    run(&app, move |config| {
        services::delete_channel(config, &id, version)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- pricing --------------------------------------------------------------------------------

pub async fn list_pricing(State(app): State<Arc<App>>) -> Reply<Json<Value>> {
    let models: BTreeMap<String, ModelPrice> =
        services::list_pricing(&app.config).into_iter().collect();
    let currency = app.config.snapshot().settings.pricing_currency.clone();
    Ok(Json(json!({ "currency": currency, "models": models })))
}

pub async fn create_price(
    State(app): State<Arc<App>>,
    AdminJson(payload): AdminJson,
) -> Reply<(StatusCode, Json<ModelPrice>)> {
    let mut value = payload;
    let model = value
        .as_object_mut()
        .and_then(|o| o.remove("model"))
        .and_then(|m| m.as_str().map(str::to_string))
        .ok_or_else(|| {
            AdminError::BadRequest("a price needs \"model\" (a model id or prefix)".into())
        })?;
    let price = services::price_from_json(value)?;
    let price = run(&app, move |config| {
        services::create_price(config, &model, price)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(price)))
}

pub async fn get_price(
    State(app): State<Arc<App>>,
    Path(model): Path<String>,
) -> Reply<Json<ModelPrice>> {
    Ok(Json(services::get_price(&app.config, &model)?))
}

pub async fn update_price(
    State(app): State<Arc<App>>,
    Path(model): Path<String>,
    headers: HeaderMap,
    AdminJson(payload): AdminJson,
) -> Reply<Json<ModelPrice>> {
    let version = if_match(&headers)?;
    let patch = payload;
    Ok(Json(
        run(&app, move |config| {
            services::update_price(config, &model, &patch, version)
        })
        .await?,
    ))
}

pub async fn delete_price(
    State(app): State<Arc<App>>,
    Path(model): Path<String>,
    headers: HeaderMap,
) -> Reply<StatusCode> {
    let version = if_match(&headers)?;
    run(&app, move |config| {
        services::delete_price(config, &model, version)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- aliases, settings ----------------------------------------------------------------------

pub async fn get_aliases(State(app): State<Arc<App>>) -> Json<ModelAliases> {
    Json(app.config.snapshot().aliases.clone())
}

pub async fn put_aliases(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    AdminJson(payload): AdminJson,
) -> Reply<Json<ModelAliases>> {
    let version = if_match(&headers)?.or_else(|| payload.get("version").and_then(Value::as_u64));
    let aliases = services::aliases_from_json(payload)?;
    let saved = run(&app, move |config| {
        services::put_aliases(config, aliases, version)
    })
    .await?;
    Ok(Json(saved))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAlias {
    pool: String,
    value: String,
    #[serde(default)]
    description: Option<String>,
}

pub async fn add_alias(
    State(app): State<Arc<App>>,
    AdminJson(payload): AdminJson,
) -> Reply<(StatusCode, Json<ModelAliases>)> {
    let new: NewAlias = serde_json::from_value(payload)
        .map_err(|e| AdminError::BadRequest(format!("alias: {e}")))?;
    let pool = parse_pool(Some(&new.pool))?.unwrap_or(Pool::Messages);
    let aliases = run(&app, move |config| {
        services::add_alias(
            config,
            pool,
            ModelAlias {
                value: new.value,
                description: new.description,
            },
        )
    })
    .await?;
    Ok((StatusCode::CREATED, Json(aliases)))
}

pub async fn delete_alias(
    State(app): State<Arc<App>>,
    Path((pool, value)): Path<(String, String)>,
) -> Reply<StatusCode> {
    let pool = parse_pool(Some(&pool))?.unwrap_or(Pool::Messages);
    run(&app, move |config| {
        services::remove_alias(config, pool, &value)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn get_settings(State(app): State<Arc<App>>) -> Json<Settings> {
    Json(app.config.snapshot().settings.clone())
}

pub async fn put_settings(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    AdminJson(payload): AdminJson,
) -> Reply<Json<Settings>> {
    let version = if_match(&headers)?;
    let saved = run(&app, move |config| {
        services::update_settings(config, &payload, version)
    })
    .await?;
    Ok(Json(saved))
}

// ---- reload, logs ---------------------------------------------------------------------------

pub async fn reload_status(State(app): State<Arc<App>>) -> Json<Value> {
    Json(json!(app.reloader.status()))
}

pub async fn reload_now(State(app): State<Arc<App>>) -> (StatusCode, Json<Value>) {
    app.reloader.wake();
    (
        StatusCode::ACCEPTED,
        Json(json!({ "status": "poll scheduled" })),
    )
}

/// The page size of a log search without `limit`, and the most one page holds (a larger
/// `limit` is served as this many rows).
const LOG_PAGE_DEFAULT: u32 = 50;
const LOG_PAGE_MAX: u32 = 500;

pub(super) fn bad_field(field: &str, rule: impl Into<String>) -> AdminError {
    AdminError::Service(ServiceError::Field(
        crate::domain::bounds::InvalidField::new(field, rule),
    ))
}

/// An RFC 3339 time in the stored form (UTC, milliseconds), so it compares as text.
fn parse_log_time(field: &str, text: &str) -> Reply<String> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map(crate::domain::format_time)
        .map_err(|_| bad_field(field, "must be an RFC 3339 time, e.g. 2026-11-21T10:00:00Z"))
}

pub(super) fn parse_status(text: &str) -> Reply<StatusFilter> {
    let rule = "must be a status class (2xx, 4xx, 5xx, …) or a status code (100-599)";
    let lower = text.to_ascii_lowercase();
    if let Some(class) = lower.strip_suffix("xx") {
        return match class.parse::<u16>() {
            Ok(class @ 1..=5) => Ok(StatusFilter::Class(class)),
            _ => Err(bad_field("status", rule)),
        };
    }
    match text.parse::<u16>() {
        Ok(code @ 100..=599) => Ok(StatusFilter::Exact(code)),
        _ => Err(bad_field("status", rule)),
    }
}

/// A key or channel given by id or name → its id. A value that names nothing in the
/// configuration is taken as an id as it is (rows of deleted keys and channels keep theirs).
fn resolve_id<T>(
    field: &str,
    value: String,
    resolve: impl FnOnce(&str) -> Result<T, ServiceError>,
    id: impl FnOnce(T) -> String,
) -> Reply<String> {
    match resolve(&value) {
        Ok(found) => Ok(id(found)),
        Err(ServiceError::NotFound { .. }) => Ok(value),
        Err(err) => Err(bad_field(field, err.to_string())),
    }
}

/// The `key` query parameter (id or name) → the key's id.
pub(super) fn key_param(app: &App, value: String) -> Reply<String> {
    resolve_id(
        "key",
        value,
        |v| services::resolve_key(&app.config, v),
        |k| k.id,
    )
}

/// The `channel` query parameter (id or name) → the channel's id.
pub(super) fn channel_param(app: &App, value: String) -> Reply<String> {
    resolve_id(
        "channel",
        value,
        |v| services::resolve_channel(&app.config, v),
        |c| c.id,
    )
}

/// Query parameters, each at most once (a repeated one is refused, naming it).
pub(super) fn distinct_params(pairs: Vec<(String, String)>) -> Reply<Vec<(String, String)>> {
    let mut seen = std::collections::BTreeSet::new();
    for (name, _) in &pairs {
        if !seen.insert(name.as_str()) {
            return Err(bad_field(name, "is given more than once"));
        }
    }
    Ok(pairs)
}

/// `GET /admin/api/logs`: the log search (every filter must hold), newest first, one page at a
/// time: `{"logs": [...], "next_cursor": "…" | null}`; pass `cursor` for the next page.
/// Unknown and repeated parameters are refused, naming them.
pub async fn recent_logs(
    State(app): State<Arc<App>>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Reply<Json<Value>> {
    let mut search = LogSearch {
        limit: LOG_PAGE_DEFAULT,
        ..LogSearch::default()
    };
    for (name, value) in distinct_params(pairs)? {
        let text = Some(value.clone());
        match name.as_str() {
            "from" => search.from = Some(parse_log_time("from", &value)?),
            "to" => search.to = Some(parse_log_time("to", &value)?),
            "key" => search.client_id = Some(key_param(&app, value)?),
            "channel" => search.channel_id = Some(channel_param(&app, value)?),
            "model" => search.model = text,
            "endpoint" => search.endpoint = text,
            "outcome" => search.outcome = text,
            "session" => search.session_id = text,
            "error" => search.error = text,
            "status" => search.status = Some(parse_status(&value)?),
            "stream" => {
                search.stream = Some(match value.as_str() {
                    "true" => true,
                    "false" => false,
                    _ => return Err(bad_field("stream", "must be true or false")),
                });
            }
            "limit" => {
                search.limit = match value.parse::<u32>() {
                    Ok(n) if n >= 1 => n.min(LOG_PAGE_MAX),
                    _ => {
                        return Err(bad_field(
                            "limit",
                            "must be a whole number from 1 (at most 500 rows are returned)",
                        ));
                    }
                };
            }
            "cursor" => {
                search.after = Some(LogCursor::decode(&value).ok_or_else(|| {
                    bad_field("cursor", "is not a cursor this API returned (next_cursor)")
                })?);
            }
            _ => {
                return Err(bad_field(
                    &name,
                    "is not a known filter (from, to, key, model, channel, endpoint, status, outcome, stream, session, error, limit, cursor)",
                ));
            }
        }
    }
    let logs = app.data.stores.logs.reader();
    let page = blocking(move || logs.search_logs(&search))
        .await
        .map_err(ServiceError::from)?;
    Ok(Json(json!({
        "logs": page.logs,
        "next_cursor": page.next.map(|c| c.encode()),
    })))
}

/// `GET /admin/api/logs/{id}`: one whole row, `failover_info` included.
pub async fn get_log(State(app): State<Arc<App>>, Path(id): Path<String>) -> Reply<Json<Value>> {
    let logs = app.data.stores.logs.reader();
    let wanted = id.clone();
    let row = blocking(move || logs.log_by_id(&wanted))
        .await
        .map_err(ServiceError::from)?;
    match row {
        Some(row) => Ok(Json(json!(row))),
        None => Err(ServiceError::NotFound { kind: "log", id }.into()),
    }
}

// ---- usage and limits -----------------------------------------------------------------------

pub async fn key_usage(State(app): State<Arc<App>>, Path(id): Path<String>) -> Reply<Json<Value>> {
    let key = services::get_key(&app.config, &id)?;
    Ok(Json(json!(app.relay.limits.key_usage(&key))))
}

pub async fn channel_usage(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Reply<Json<Value>> {
    let channel = services::get_channel(&app.config, &id)?;
    Ok(Json(json!(app.relay.limits.channel_usage(&channel))))
}

/// Start the channel's quota period afresh now (durable: a restart keeps the reset).
pub async fn reset_channel_quota(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Reply<Json<Value>> {
    let channel = services::get_channel(&app.config, &id)?;
    let at = app.relay.limits.reset_channel_quota(&channel);
    let logs = app.data.stores.logs.clone();
    let channel_id = channel.id.clone();
    blocking(move || logs.put_channel_quota(&channel_id, 0.0, &crate::domain::format_time(at)))
        .await
        .map_err(ServiceError::from)?;
    Ok(Json(json!(app.relay.limits.channel_usage(&channel))))
}

/// `GET /admin/api/cluster`: this instance's part in a cluster (its config copy and what it
/// knows of the others); `{"mode": "single"}` without `--postgres-url`.
pub async fn cluster(State(app): State<Arc<App>>) -> Json<serde_json::Value> {
    let Some(cluster) = &app.cluster else {
        return Json(serde_json::json!({ "mode": "single" }));
    };
    Json(cluster.report())
}
