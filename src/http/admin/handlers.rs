//! Admin handlers: extract, call one service function off the runtime, shape the response.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::Core;
use crate::app::server::Server;
use crate::app::services::{self, ChannelView, KeyView, NewKey, ServiceError};
use crate::domain::pricing::ModelAlias;
use crate::domain::{ModelAliases, ModelPrice, Pool, Settings};
use crate::http::error::AdminError;
use crate::store::blocking;

type Reply<T> = Result<T, AdminError>;

/// Run a service call on the blocking pool (stores are synchronous).
async fn run<T, F>(server: &Arc<Server>, work: F) -> Result<T, AdminError>
where
    T: Send + 'static,
    F: FnOnce(&Core) -> Result<T, ServiceError> + Send + 'static,
{
    let core = Arc::clone(&server.core);
    Ok(blocking(move || work(&core)).await?)
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

fn body(value: Result<Json<Value>, axum::extract::rejection::JsonRejection>) -> Reply<Value> {
    value
        .map(|Json(v)| v)
        .map_err(|e| AdminError::BadRequest(e.body_text()))
}

// ---- keys -----------------------------------------------------------------------------------

pub async fn list_keys(State(server): State<Arc<Server>>) -> Reply<Json<Value>> {
    let keys: Vec<KeyView> = services::list_keys(&server.core)
        .iter()
        .map(KeyView::of)
        .collect();
    Ok(Json(json!({ "keys": keys })))
}

pub async fn create_key(
    State(server): State<Arc<Server>>,
    payload: Result<Json<Value>, axum::extract::rejection::JsonRejection>,
) -> Reply<(StatusCode, Json<Value>)> {
    let new: NewKey = serde_json::from_value(body(payload)?)
        .map_err(|e| AdminError::BadRequest(format!("key: {e}")))?;
    let (key, plaintext) = run(&server, move |core| services::create_key(core, new)).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "key": KeyView::of(&key),
            "plaintext": plaintext.as_str(),
            "notice": "this is the only time the key is shown; store it now",
        })),
    ))
}

pub async fn get_key(
    State(server): State<Arc<Server>>,
    Path(id): Path<String>,
) -> Reply<Json<KeyView>> {
    Ok(Json(KeyView::of(&services::get_key(&server.core, &id)?)))
}

pub async fn update_key(
    State(server): State<Arc<Server>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    payload: Result<Json<Value>, axum::extract::rejection::JsonRejection>,
) -> Reply<Json<KeyView>> {
    let version = if_match(&headers)?;
    let patch = body(payload)?;
    let key = run(&server, move |core| {
        services::update_key(core, &id, &patch, version)
    })
    .await?;
    Ok(Json(KeyView::of(&key)))
}

pub async fn delete_key(
    State(server): State<Arc<Server>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Reply<StatusCode> {
    let version = if_match(&headers)?;
    run(&server, move |core| {
        services::delete_key(core, &id, version)
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

pub async fn list_channels(
    State(server): State<Arc<Server>>,
    Query(filter): Query<PoolFilter>,
) -> Reply<Json<Value>> {
    let pool = parse_pool(filter.pool.as_deref())?;
    let channels = services::list_channels(&server.core, pool)
        .iter()
        .map(|c| services::channel_view(&server.core, c))
        .collect::<Result<Vec<ChannelView>, _>>()?;
    Ok(Json(json!({ "channels": channels })))
}

pub async fn create_channel(
    State(server): State<Arc<Server>>,
    payload: Result<Json<Value>, axum::extract::rejection::JsonRejection>,
) -> Reply<(StatusCode, Json<ChannelView>)> {
    let value = body(payload)?;
    let view = run(&server, move |core| {
        let channel = services::create_channel(core, value)?;
        services::channel_view(core, &channel)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(view)))
}

pub async fn get_channel(
    State(server): State<Arc<Server>>,
    Path(id): Path<String>,
) -> Reply<Json<ChannelView>> {
    let channel = services::get_channel(&server.core, &id)?;
    Ok(Json(services::channel_view(&server.core, &channel)?))
}

pub async fn update_channel(
    State(server): State<Arc<Server>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    payload: Result<Json<Value>, axum::extract::rejection::JsonRejection>,
) -> Reply<Json<ChannelView>> {
    let version = if_match(&headers)?;
    let patch = body(payload)?;
    let view = run(&server, move |core| {
        let channel = services::update_channel(core, &id, &patch, version)?;
        services::channel_view(core, &channel)
    })
    .await?;
    Ok(Json(view))
}

pub async fn delete_channel(
    State(server): State<Arc<Server>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Reply<StatusCode> {
    let version = if_match(&headers)?;
    run(&server, move |core| {
        services::delete_channel(core, &id, version)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- pricing --------------------------------------------------------------------------------

pub async fn list_pricing(State(server): State<Arc<Server>>) -> Reply<Json<Value>> {
    let models: BTreeMap<String, ModelPrice> =
        services::list_pricing(&server.core).into_iter().collect();
    let currency = server.core.live().settings.pricing_currency.clone();
    Ok(Json(json!({ "currency": currency, "models": models })))
}

pub async fn create_price(
    State(server): State<Arc<Server>>,
    payload: Result<Json<Value>, axum::extract::rejection::JsonRejection>,
) -> Reply<(StatusCode, Json<ModelPrice>)> {
    let mut value = body(payload)?;
    let model = value
        .as_object_mut()
        .and_then(|o| o.remove("model"))
        .and_then(|m| m.as_str().map(str::to_string))
        .ok_or_else(|| {
            AdminError::BadRequest("a price needs \"model\" (a model id or prefix)".into())
        })?;
    let price: ModelPrice =
        serde_json::from_value(value).map_err(|e| AdminError::BadRequest(format!("price: {e}")))?;
    let price = run(&server, move |core| {
        services::create_price(core, &model, price)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(price)))
}

pub async fn get_price(
    State(server): State<Arc<Server>>,
    Path(model): Path<String>,
) -> Reply<Json<ModelPrice>> {
    Ok(Json(services::get_price(&server.core, &model)?))
}

pub async fn update_price(
    State(server): State<Arc<Server>>,
    Path(model): Path<String>,
    headers: HeaderMap,
    payload: Result<Json<Value>, axum::extract::rejection::JsonRejection>,
) -> Reply<Json<ModelPrice>> {
    let version = if_match(&headers)?;
    let patch = body(payload)?;
    Ok(Json(
        run(&server, move |core| {
            services::update_price(core, &model, &patch, version)
        })
        .await?,
    ))
}

pub async fn delete_price(
    State(server): State<Arc<Server>>,
    Path(model): Path<String>,
    headers: HeaderMap,
) -> Reply<StatusCode> {
    let version = if_match(&headers)?;
    run(&server, move |core| {
        services::delete_price(core, &model, version)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- aliases, settings ----------------------------------------------------------------------

pub async fn get_aliases(State(server): State<Arc<Server>>) -> Json<ModelAliases> {
    Json(server.core.live().aliases.clone())
}

pub async fn put_aliases(
    State(server): State<Arc<Server>>,
    headers: HeaderMap,
    payload: Result<Json<Value>, axum::extract::rejection::JsonRejection>,
) -> Reply<Json<ModelAliases>> {
    let (aliases, version) = document::<ModelAliases>(&headers, payload, "aliases")?;
    let saved = run(&server, move |core| {
        services::put_aliases(core, aliases, version)
    })
    .await?;
    Ok(Json(saved))
}

/// A whole-document PUT: the document, and its version from `If-Match` or its `version` field.
fn document<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    payload: Result<Json<Value>, axum::extract::rejection::JsonRejection>,
    what: &str,
) -> Reply<(T, Option<u64>)> {
    let value = body(payload)?;
    let version = if_match(headers)?.or_else(|| value.get("version").and_then(Value::as_u64));
    let parsed = serde_json::from_value(value)
        .map_err(|e| AdminError::BadRequest(format!("{what}: {e}")))?;
    Ok((parsed, version))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAlias {
    pool: String,
    value: String,
    #[serde(default)]
    description: Option<String>,
}

fn alias_list(aliases: &mut ModelAliases, pool: Pool) -> &mut Vec<ModelAlias> {
    match pool {
        Pool::Messages => &mut aliases.messages_models,
        Pool::Responses => &mut aliases.responses_models,
        Pool::Gemini => &mut aliases.gemini_models,
        Pool::Chat => &mut aliases.chat_models,
    }
}

pub async fn add_alias(
    State(server): State<Arc<Server>>,
    payload: Result<Json<Value>, axum::extract::rejection::JsonRejection>,
) -> Reply<(StatusCode, Json<ModelAliases>)> {
    let new: NewAlias = serde_json::from_value(body(payload)?)
        .map_err(|e| AdminError::BadRequest(format!("alias: {e}")))?;
    let pool = parse_pool(Some(&new.pool))?.unwrap_or(Pool::Messages);
    let aliases = run(&server, move |core| {
        let mut aliases = core.live().aliases.clone();
        let version = aliases.version;
        let list = alias_list(&mut aliases, pool);
        if list.iter().any(|a| a.value == new.value) {
            return Err(ServiceError::Conflict(format!(
                "the {pool} pool already offers '{}'",
                new.value
            )));
        }
        list.push(ModelAlias {
            value: new.value,
            description: new.description,
        });
        services::put_aliases(core, aliases, Some(version))
    })
    .await?;
    Ok((StatusCode::CREATED, Json(aliases)))
}

pub async fn delete_alias(
    State(server): State<Arc<Server>>,
    Path((pool, value)): Path<(String, String)>,
) -> Reply<StatusCode> {
    let pool = parse_pool(Some(&pool))?.unwrap_or(Pool::Messages);
    run(&server, move |core| {
        let mut aliases = core.live().aliases.clone();
        let version = aliases.version;
        let list = alias_list(&mut aliases, pool);
        let before = list.len();
        list.retain(|a| a.value != value);
        if list.len() == before {
            return Err(ServiceError::NotFound {
                kind: "alias",
                id: format!("{pool}/{value}"),
            });
        }
        services::put_aliases(core, aliases, Some(version))
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn get_settings(State(server): State<Arc<Server>>) -> Json<Settings> {
    Json(server.core.live().settings.clone())
}

pub async fn put_settings(
    State(server): State<Arc<Server>>,
    headers: HeaderMap,
    payload: Result<Json<Value>, axum::extract::rejection::JsonRejection>,
) -> Reply<Json<Settings>> {
    let (settings, version) = document::<Settings>(&headers, payload, "settings")?;
    let saved = run(&server, move |core| {
        services::put_settings(core, settings, version)
    })
    .await?;
    Ok(Json(saved))
}

// ---- reload, logs ---------------------------------------------------------------------------

pub async fn reload_status(State(server): State<Arc<Server>>) -> Json<Value> {
    Json(json!(server.reloader.status()))
}

pub async fn reload_now(State(server): State<Arc<Server>>) -> (StatusCode, Json<Value>) {
    server.reloader.wake();
    (
        StatusCode::ACCEPTED,
        Json(json!({ "status": "poll scheduled" })),
    )
}

#[derive(Debug, Deserialize)]
pub struct LogQuery {
    limit: Option<u32>,
    key: Option<String>,
}

pub async fn recent_logs(
    State(server): State<Arc<Server>>,
    Query(query): Query<LogQuery>,
) -> Reply<Json<Value>> {
    let limit = query.limit.unwrap_or(100).min(1000);
    let logs = server.core.stores().logs.clone();
    let rows = blocking(move || logs.recent_logs(limit, query.key.as_deref()))
        .await
        .map_err(ServiceError::from)?;
    Ok(Json(json!({ "logs": rows })))
}

// ---- usage and limits -----------------------------------------------------------------------

pub async fn key_usage(
    State(server): State<Arc<Server>>,
    Path(id): Path<String>,
) -> Reply<Json<Value>> {
    let key = services::get_key(&server.core, &id)?;
    Ok(Json(json!(server.limits.key_usage(&key))))
}

pub async fn channel_usage(
    State(server): State<Arc<Server>>,
    Path(id): Path<String>,
) -> Reply<Json<Value>> {
    let channel = services::get_channel(&server.core, &id)?;
    Ok(Json(json!(server.limits.channel_usage(&channel))))
}

/// Start the channel's quota period afresh now (durable: a restart keeps the reset).
pub async fn reset_channel_quota(
    State(server): State<Arc<Server>>,
    Path(id): Path<String>,
) -> Reply<Json<Value>> {
    let channel = services::get_channel(&server.core, &id)?;
    let at = server.limits.reset_channel_quota(&channel);
    let logs = server.core.stores().logs.clone();
    let channel_id = channel.id.clone();
    blocking(move || logs.put_channel_quota(&channel_id, 0.0, &crate::domain::format_time(at)))
        .await
        .map_err(ServiceError::from)?;
    Ok(Json(json!(server.limits.channel_usage(&channel))))
}
