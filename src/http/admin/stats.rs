//! Usage statistics: `GET /admin/api/usage` (grouped figures over a time range, from the
//! roll-up tables) and `GET /admin/api/summary` (flat figures for homelab dashboard widgets).
//! Money is a decimal string of dollars ([`crate::domain::money`]).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use serde_json::{Map, Value, json};
use time::{Duration, OffsetDateTime};

use super::handlers::{bad_field, channel_param, distinct_params, key_param, parse_status};
use crate::app::server::App;
use crate::config::services::ServiceError;
use crate::domain::KeyStatus;
use crate::domain::money::format_usd;
use crate::http::error::AdminError;
use crate::store::blocking;
use crate::store::sqlite::{Dimension, Figures, UsageGroup, UsageQuery, UsageReport};

type Reply<T> = Result<T, AdminError>;

/// The most rows one usage answer holds (`truncated` says when groups were left out).
const MAX_ROWS: usize = 10_000;

/// How long dropped request-log rows keep the summary degraded (as `/health`).
const RECENT_DROP_MS: u64 = 300_000;

fn parse_time(field: &str, text: &str) -> Reply<OffsetDateTime> {
    OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map(|t| t.to_offset(time::UtcOffset::UTC))
        .map_err(|_| bad_field(field, "must be an RFC 3339 time, e.g. 2026-11-21T10:00:00Z"))
}

fn floor_hour(at: OffsetDateTime) -> OffsetDateTime {
    let at = at.to_offset(time::UtcOffset::UTC);
    at.replace_time(time::Time::from_hms(at.hour(), 0, 0).unwrap_or(time::Time::MIDNIGHT))
}

fn ceil_hour(at: OffsetDateTime) -> OffsetDateTime {
    let floor = floor_hour(at);
    if floor == at {
        floor
    } else {
        floor + Duration::HOUR
    }
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// `GET /admin/api/usage?from=&to=&group_by=&key=&model=&channel=&endpoint=&status=`.
/// Unknown and repeated parameters and bad values are refused, naming the parameter.
pub async fn usage(
    State(app): State<Arc<App>>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Reply<Json<Value>> {
    let now = crate::domain::now();
    let mut from = None;
    let mut to = None;
    let mut query = UsageQuery::totals(now, now);
    for (name, value) in distinct_params(pairs)? {
        match name.as_str() {
            "from" => from = Some(parse_time("from", &value)?),
            "to" => to = Some(parse_time("to", &value)?),
            "group_by" => query.group_by = parse_group_by(&value)?,
            "key" => query.key_id = Some(key_param(&app, value)?),
            "channel" => query.channel_id = Some(channel_param(&app, value)?),
            "model" => query.model = Some(value),
            "endpoint" => query.endpoint = Some(value),
            "status" => query.status = Some(parse_status(&value)?),
            _ => {
                return Err(bad_field(
                    &name,
                    "is not a known parameter (from, to, group_by, key, model, channel, endpoint, status)",
                ));
            }
        }
    }
    // Rounded outward to whole hours: the hourly roll-up is the finest grain.
    query.to = ceil_hour(to.unwrap_or(now));
    query.from = floor_hour(from.unwrap_or(query.to - Duration::DAY));
    if query.from >= query.to {
        return Err(bad_field("to", "must be later than from"));
    }
    let report = read(&app, query.clone(), MAX_ROWS).await?;
    let live = app.config.snapshot();
    let names = Names {
        keys: &live.state.keys,
        channels: &live.state.channels,
    };
    let rows: Vec<Value> = report
        .rows
        .iter()
        .map(|(group, figures)| row_json(group, figures, &names))
        .collect();
    Ok(Json(json!({
        "from": rfc3339(query.from),
        "to": rfc3339(query.to),
        "group_by": query.group_by.iter().map(|d| d.name()).collect::<Vec<_>>(),
        "rows": rows,
        "totals": figures_json(&report.totals),
        "truncated": report.truncated,
    })))
}

fn parse_group_by(text: &str) -> Reply<Vec<Dimension>> {
    let mut dimensions = Vec::new();
    for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let dimension = Dimension::parse(name).ok_or_else(|| {
            bad_field(
                "group_by",
                format!("{name:?} is not one of hour, day, key, model, channel, endpoint, status"),
            )
        })?;
        if dimensions.contains(&dimension) {
            return Err(bad_field("group_by", format!("{name:?} is given twice")));
        }
        dimensions.push(dimension);
    }
    Ok(dimensions)
}

async fn read(app: &Arc<App>, query: UsageQuery, limit: usize) -> Reply<UsageReport> {
    let logs = app.data.stores.logs.reader();
    Ok(blocking(move || logs.usage(&query, limit))
        .await
        .map_err(ServiceError::from)?)
}

struct Names<'a> {
    keys: &'a crate::store::table::Table<crate::domain::ClientKey>,
    channels: &'a crate::store::table::Table<crate::domain::Channel>,
}

fn row_json(group: &UsageGroup, figures: &Figures, names: &Names<'_>) -> Value {
    let Value::Object(mut row) = figures_json(figures) else {
        return Value::Null;
    };
    let mut put = |name: &str, value: Value| {
        row.insert(name.to_string(), value);
    };
    if let Some(hour) = &group.hour {
        put("hour", json!(format!("{hour}:00:00Z")));
    }
    if let Some(day) = &group.day {
        put("day", json!(day));
    }
    if let Some(key_id) = &group.key_id {
        put("key_id", json!(key_id));
        put("key_name", json!(names.keys.get(key_id).map(|k| &k.name)));
    }
    if let Some(model) = &group.model {
        put("model", json!(model));
    }
    if let Some(channel_id) = &group.channel_id {
        put("channel_id", json!(channel_id));
        put(
            "channel_name",
            json!(names.channels.get(channel_id).map(|c| &c.name)),
        );
    }
    if let Some(endpoint) = &group.endpoint {
        put("endpoint", json!(endpoint));
    }
    if let Some(status) = group.status {
        put("status", json!(status));
    }
    Value::Object(row)
}

fn figures_json(f: &Figures) -> Value {
    let mut object = Map::new();
    for (name, value) in [
        ("requests", f.requests),
        ("errors", f.errors),
        ("input_tokens", f.input_tokens),
        ("output_tokens", f.output_tokens),
        ("cache_creation_tokens", f.cache_creation_tokens),
        ("cache_read_tokens", f.cache_read_tokens),
        ("total_tokens", f.total_tokens),
    ] {
        object.insert(name.into(), json!(value));
    }
    object.insert("cost".into(), json!(format_usd(f.cost_nanos)));
    let quantiles = |histogram| {
        json!({
            "p50": Figures::percentile(histogram, 0.5),
            "p95": Figures::percentile(histogram, 0.95),
        })
    };
    object.insert("latency_ms".into(), quantiles(&f.latency));
    object.insert("ttft_ms".into(), quantiles(&f.ttft));
    Value::Object(object)
}

/// Errors ÷ requests, 4 decimals, 0 without requests.
fn error_rate(f: &Figures) -> f64 {
    if f.requests == 0 {
        return 0.0;
    }
    #[allow(clippy::cast_precision_loss, reason = "counts far below 2^52")]
    let rate = f.errors as f64 / f.requests as f64;
    (rate * 10_000.0).round() / 10_000.0
}

/// `GET /admin/api/summary`: today's and this month's figures (UTC), keys, channels and the
/// config-file reload state, flat for dashboard widgets.
pub async fn summary(State(app): State<Arc<App>>) -> Reply<Json<Value>> {
    let now = crate::domain::now().to_offset(time::UtcOffset::UTC);
    let end = ceil_hour(now);
    let today = now.replace_time(time::Time::MIDNIGHT);
    let month = today.replace_day(1).unwrap_or(today);
    let today_figures = read(&app, UsageQuery::totals(today, end), 1).await?.totals;
    let month_figures = read(&app, UsageQuery::totals(month, end), 1).await?.totals;

    let live = app.config.snapshot();
    let keys = &live.state.keys;
    let keys_active = keys
        .values()
        .filter(|k| k.status == KeyStatus::Active && !k.is_expired(now))
        .count();
    // Up = active in the configuration; suspended and standby (disabled) channels are down.
    // Up as the channel views say it: configured active, not held back by the relay's
    // circuit breaker or a failover rule, quota not used up.
    let channels = &live.state.channels;
    let channels_up = channels
        .values()
        .filter(|c| super::handlers::channel_health(&app, c).0 == "up")
        .count();

    let reload = app.reloader.status();
    let reload_error = reload.last_error.as_ref().map(ToString::to_string);
    let degraded = degraded(&app, reload.last_error.is_some()).await;
    Ok(Json(json!({
        "status": if degraded { "degraded" } else { "ok" },
        "today_requests": today_figures.requests,
        "today_tokens": today_figures.total_tokens,
        "today_cost": format_usd(today_figures.cost_nanos),
        "today_errors": today_figures.errors,
        "today_error_rate": error_rate(&today_figures),
        "month_requests": month_figures.requests,
        "month_tokens": month_figures.total_tokens,
        "month_cost": format_usd(month_figures.cost_nanos),
        "month_errors": month_figures.errors,
        "month_error_rate": error_rate(&month_figures),
        "keys_active": keys_active,
        "keys_total": keys.len(),
        "channels_total": channels.len(),
        "channels_up": channels_up,
        "channels_down": channels.len() - channels_up,
        "config_reload_ok": reload_error.is_none(),
        "config_reload_error": reload_error,
    })))
}

/// What makes `/health` say degraded: a config store fault, a log writer that cannot commit or
/// dropped rows lately, a failed config-file reload, cluster problems.
async fn degraded(app: &Arc<App>, reload_failed: bool) -> bool {
    if reload_failed || app.relay.logs.fault().is_some() {
        return true;
    }
    let writer = app.relay.logs.stats();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    if writer.dropped > 0 && now_ms.saturating_sub(writer.last_drop_ms) < RECENT_DROP_MS {
        return true;
    }
    if app
        .cluster
        .as_ref()
        .is_some_and(|cluster| !cluster.problems().is_empty())
    {
        return true;
    }
    let config_store = Arc::clone(&app.data.stores.config);
    blocking(move || config_store.fault().is_some()).await
}
