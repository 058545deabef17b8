//! `relaybox keys …`: the same operations as `/admin/api/keys`, locally or through the running
//! server.

use std::io::Write as _;
use std::process::ExitCode;

use serde_json::{Value, json};

use super::remote::{Target, connect};
use super::{KeyCreateArgs, KeyLimitArgs, KeyRefArgs, KeyUpdateArgs, KeysCommand, ListArgs};
use crate::config::services::{self, KeyView, NewKey};
use crate::domain::KeyStatus;

pub async fn run(command: KeysCommand) -> anyhow::Result<ExitCode> {
    match command {
        KeysCommand::Create(args) => create(args).await,
        KeysCommand::List(args) => list(args).await,
        KeysCommand::Show(args) => show(args).await,
        KeysCommand::Disable(args) => set_status(args, KeyStatus::Disabled).await,
        KeysCommand::Enable(args) => set_status(args, KeyStatus::Active).await,
        KeysCommand::Delete(args) => delete(args).await,
        KeysCommand::Update(args) => update(args).await,
        KeysCommand::Usage(args) => usage(args).await,
    }
}

fn view(key: &crate::domain::ClientKey) -> Value {
    serde_json::to_value(KeyView::of(key)).unwrap_or(Value::Null)
}

async fn create(args: KeyCreateArgs) -> anyhow::Result<ExitCode> {
    let patch = limits_patch(&json!({}), &args.limits)?;
    let mut body =
        json!({ "name": args.name, "description": args.description, "isAdmin": args.admin });
    if let (Some(body), Some(patch)) = (body.as_object_mut(), patch.as_object()) {
        body.extend(patch.clone());
    }
    let new = NewKey::from_json(body.clone())?;
    let result = match connect(args.data.options()).await? {
        Target::Local(local) => {
            let (key, plaintext) = services::create_key(&local.config, new)?;
            json!({ "key": view(&key), "plaintext": plaintext.as_str() })
        }
        Target::Remote(client) => client.call("POST", "/keys", Some(&body)).await?,
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&result)?)?;
    } else {
        let key = &result["key"];
        writeln!(
            out,
            "Created key {} ({})",
            key["name"].as_str().unwrap_or(""),
            key["id"].as_str().unwrap_or("")
        )?;
        writeln!(
            out,
            "\n    {}\n",
            result["plaintext"].as_str().unwrap_or("")
        )?;
        writeln!(out, "This is the only time the key is shown: store it now.")?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Find a key by id or name through either target; returns its JSON view.
async fn lookup(target: &Target, reference: &str) -> anyhow::Result<Value> {
    match target {
        Target::Local(local) => Ok(view(&services::resolve_key(&local.config, reference)?)),
        Target::Remote(client) => {
            let keys = client.call("GET", "/keys", None).await?;
            let list = keys["keys"].as_array().cloned().unwrap_or_default();
            let by_id = list.iter().find(|k| k["id"] == reference);
            let by_name: Vec<&Value> = list.iter().filter(|k| k["name"] == reference).collect();
            match (by_id, by_name.as_slice()) {
                (Some(key), _) | (None, &[key]) => Ok((*key).clone()),
                (None, []) => anyhow::bail!("key '{reference}' does not exist"),
                (None, several) => anyhow::bail!(
                    "several keys are named '{reference}' ({}); use the id",
                    several
                        .iter()
                        .filter_map(|k| k["id"].as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }
        }
    }
}

async fn list(args: ListArgs) -> anyhow::Result<ExitCode> {
    let keys: Vec<Value> = match connect(args.data.options()).await? {
        Target::Local(local) => services::list_keys(&local.config)
            .iter()
            .map(view)
            .collect(),
        Target::Remote(client) => client.call("GET", "/keys", None).await?["keys"]
            .as_array()
            .cloned()
            .unwrap_or_default(),
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&keys)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(
        out,
        "{:<34} {:<24} {:<9} {:<6} PREFIX",
        "ID", "NAME", "STATUS", "ADMIN"
    )?;
    for key in &keys {
        writeln!(
            out,
            "{:<34} {:<24} {:<9} {:<6} {}",
            key["id"].as_str().unwrap_or(""),
            key["name"].as_str().unwrap_or(""),
            key["status"].as_str().unwrap_or(""),
            if key["isAdmin"].as_bool().unwrap_or(false) {
                "yes"
            } else {
                "no"
            },
            key["displayPrefix"].as_str().unwrap_or(""),
        )?;
    }
    if keys.is_empty() {
        writeln!(out, "(no keys yet: relaybox keys create --name NAME)")?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn show(args: KeyRefArgs) -> anyhow::Result<ExitCode> {
    let target = connect(args.data.options()).await?;
    let key = lookup(&target, &args.key).await?;
    writeln!(
        std::io::stdout().lock(),
        "{}",
        serde_json::to_string_pretty(&key)?
    )?;
    Ok(ExitCode::SUCCESS)
}

async fn set_status(args: KeyRefArgs, status: KeyStatus) -> anyhow::Result<ExitCode> {
    let target = connect(args.data.options()).await?;
    let key = lookup(&target, &args.key).await?;
    let id = key["id"].as_str().unwrap_or_default().to_string();
    let updated = match &target {
        Target::Local(local) => view(&services::set_key_status(&local.config, &id, status)?),
        Target::Remote(client) => {
            client
                .call(
                    "PATCH",
                    &format!("/keys/{id}"),
                    Some(&json!({ "status": status.as_str() })),
                )
                .await?
        }
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&updated)?)?;
    } else {
        writeln!(
            out,
            "Key {} ({id}) is now {}",
            updated["name"].as_str().unwrap_or(""),
            status.as_str()
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn delete(args: KeyRefArgs) -> anyhow::Result<ExitCode> {
    let target = connect(args.data.options()).await?;
    let key = lookup(&target, &args.key).await?;
    let id = key["id"].as_str().unwrap_or_default().to_string();
    match &target {
        Target::Local(local) => services::delete_key(&local.config, &id, None)?,
        Target::Remote(client) => {
            client.call("DELETE", &format!("/keys/{id}"), None).await?;
        }
    }
    writeln!(
        std::io::stdout().lock(),
        "Deleted key {} ({id})",
        key["name"].as_str().unwrap_or("")
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Parse `N/WINDOW` (`1000000/5h`) into (N, seconds).
fn per_window(text: &str) -> anyhow::Result<(f64, u64)> {
    let (amount, window) = text
        .split_once('/')
        .ok_or_else(|| anyhow::anyhow!("'{text}': use AMOUNT/WINDOW, e.g. 1000000/5h"))?;
    let amount: f64 = amount
        .trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("'{amount}' is not a number"))?;
    let window = window.trim();
    let split = window
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(window.len());
    let (digits, unit) = window.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| anyhow::anyhow!("'{window}': use a number and s, m, h or d (e.g. 5h)"))?;
    let seconds = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        other => anyhow::bail!("unknown time unit '{other}' (use s, m, h or d)"),
    };
    anyhow::ensure!(seconds > 0, "the window must be longer than 0");
    Ok((amount, seconds))
}

fn comma_list(text: &str) -> Value {
    json!(
        text.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
    )
}

/// The JSON patch (`limits`, `allow`, `expiry`) the flags ask for, on top of the key's current
/// values (`current` is the key's JSON view, or `{}` for a new key).
fn limits_patch(current: &Value, args: &KeyLimitArgs) -> anyhow::Result<Value> {
    let mut limits = current.get("limits").cloned().unwrap_or_else(|| json!({}));
    let mut allow = current.get("allow").cloned().unwrap_or_else(|| json!({}));
    let mut patch = serde_json::Map::new();
    let set = |object: &mut Value, field: &str, value: Option<Value>| {
        if let Some(object) = object.as_object_mut() {
            match value {
                Some(value) => object.insert(field.to_string(), value),
                None => object.remove(field),
            };
        }
    };
    let number = |v: f64| (v > 0.0).then(|| json!(v));
    if let Some(v) = args.rpm {
        set(&mut limits, "requestsPerMinute", (v > 0).then(|| json!(v)));
    }
    if let Some(v) = args.concurrency {
        set(&mut limits, "concurrentRequests", (v > 0).then(|| json!(v)));
    }
    for (flag, field) in [
        (&args.tokens_per_window, "tokensPerWindow"),
        (&args.requests_per_window, "requestsPerWindow"),
        (&args.cost_per_window, "costPerWindow"),
    ] {
        if let Some(text) = flag {
            let (amount, seconds) = per_window(text)?;
            set(
                &mut limits,
                field,
                (amount > 0.0).then(|| json!({ "limit": amount, "windowSeconds": seconds })),
            );
        }
    }
    if let Some(v) = args.cost_per_day {
        set(&mut limits, "costPerDay", number(v));
    }
    if let Some(v) = args.cost_total {
        set(&mut limits, "costTotal", number(v));
    }
    for (flag, field) in [
        (&args.models, "models"),
        (&args.endpoints, "endpoints"),
        (&args.user_agents, "userAgents"),
    ] {
        if let Some(text) = flag {
            set(&mut allow, field, Some(comma_list(text)));
        }
    }
    if let Some(text) = &args.expires_at {
        if text == "never" {
            patch.insert("expiry".into(), Value::Null);
        } else {
            time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                .map_err(|_| {
                    anyhow::anyhow!(
                        "--expires-at '{text}': use RFC 3339, e.g. 2026-12-31T00:00:00Z"
                    )
                })?;
            patch.insert(
                "expiry".into(),
                json!({ "mode": "fixedAt", "expiresAt": text }),
            );
        }
    }
    if let Some(days) = args.expires_after_days {
        patch.insert(
            "expiry".into(),
            json!({ "mode": "afterFirstUse", "days": days }),
        );
    }
    patch.insert("limits".into(), limits);
    patch.insert("allow".into(), allow);
    Ok(Value::Object(patch))
}

async fn update(args: KeyUpdateArgs) -> anyhow::Result<ExitCode> {
    let target = connect(args.data.options()).await?;
    let key = lookup(&target, &args.key).await?;
    let id = key["id"].as_str().unwrap_or_default().to_string();
    let mut patch = limits_patch(&key, &args.limits)?;
    if let (Some(name), Some(object)) = (&args.name, patch.as_object_mut()) {
        object.insert("name".into(), json!(name));
    }
    let updated = match &target {
        Target::Local(local) => view(&services::update_key(&local.config, &id, &patch, None)?),
        Target::Remote(client) => {
            client
                .call("PATCH", &format!("/keys/{id}"), Some(&patch))
                .await?
        }
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&updated)?)?;
    } else {
        writeln!(
            out,
            "Updated key {} ({id})",
            updated["name"].as_str().unwrap_or("")
        )?;
        writeln!(
            out,
            "limits: {}",
            updated.get("limits").unwrap_or(&json!({}))
        )?;
        writeln!(
            out,
            "allow:  {}",
            updated.get("allow").unwrap_or(&json!({}))
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Without a server, the figures come from the log (the in-memory parts — the last minute and
/// requests in flight — are then 0).
async fn usage(args: KeyRefArgs) -> anyhow::Result<ExitCode> {
    let target = connect(args.data.options()).await?;
    let key = lookup(&target, &args.key).await?;
    let id = key["id"].as_str().unwrap_or_default().to_string();
    let usage = match &target {
        Target::Local(local) => {
            let key = services::get_key(&local.config, &id)?;
            let limiter =
                crate::limits::Limiter::new(std::sync::Arc::new(crate::limits::SystemClock));
            crate::limits::seed::seed_changed(
                &limiter,
                &local.config.snapshot().state,
                &local.stores().logs,
            )?;
            json!(limiter.key_usage(&key))
        }
        Target::Remote(client) => {
            client
                .call("GET", &format!("/keys/{id}/usage"), None)
                .await?
        }
    };
    writeln!(
        std::io::stdout().lock(),
        "{}",
        serde_json::to_string_pretty(&usage)?
    )?;
    Ok(ExitCode::SUCCESS)
}
