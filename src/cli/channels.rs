//! `relaybox channels …`: the same operations as `/admin/api/channels` (same services, same
//! checks), locally or through the running server; upstream keys are shown masked.

use std::io::{BufRead as _, Write as _};
use std::process::ExitCode;
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::remote::{Target, connect};
use super::{
    ChannelCreateArgs, ChannelFieldArgs, ChannelListArgs, ChannelRefArgs, ChannelTestArgs,
    ChannelUpdateArgs, ChannelsCommand,
};
use crate::config::services;
use crate::domain::{ChannelStatus, Pool};

pub async fn run(command: ChannelsCommand) -> anyhow::Result<ExitCode> {
    match command {
        ChannelsCommand::List(args) => list(args).await,
        ChannelsCommand::Show(args) => show(args).await,
        ChannelsCommand::Create(args) => create(args).await,
        ChannelsCommand::Update(args) => update(args).await,
        ChannelsCommand::Delete(args) => delete(args).await,
        ChannelsCommand::Enable(args) => set_status(args, ChannelStatus::Active).await,
        ChannelsCommand::Disable(args) => set_status(args, ChannelStatus::Disabled).await,
        ChannelsCommand::Test(args) => test(args).await,
    }
}

fn parse_pool(text: &str) -> anyhow::Result<Pool> {
    Pool::parse(text).ok_or_else(|| {
        anyhow::anyhow!("unknown pool '{text}': use messages, responses, gemini or chat")
    })
}

/// Find a channel by id or name through either target; returns its admin JSON view.
async fn lookup(target: &Target, reference: &str) -> anyhow::Result<Value> {
    match target {
        Target::Local(local) => {
            let channel = services::resolve_channel(&local.config, reference)?;
            Ok(services::channel_view(&local.config, &channel)?.channel)
        }
        Target::Remote(client) => {
            let all = client.call("GET", "/channels", None).await?["channels"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let by_id = all.iter().find(|c| c["id"] == reference);
            let by_name: Vec<&Value> = all
                .iter()
                .filter(|c| {
                    c["name"]
                        .as_str()
                        .is_some_and(|n| n.eq_ignore_ascii_case(reference))
                })
                .collect();
            match (by_id, by_name.as_slice()) {
                (Some(c), _) | (None, &[c]) => Ok(c.clone()),
                (None, []) => anyhow::bail!("channel '{reference}' does not exist"),
                (None, several) => anyhow::bail!(
                    "several channels are named '{reference}' ({}); use the id",
                    several
                        .iter()
                        .filter_map(|c| c["id"].as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }
        }
    }
}

/// The JSON fields the flags set (admin API names).
fn fields_body(fields: &ChannelFieldArgs) -> anyhow::Result<Map<String, Value>> {
    let mut body = Map::new();
    for (field, value) in [
        ("name", &fields.name),
        ("serviceType", &fields.service_type),
        ("baseUrl", &fields.base_url),
        ("description", &fields.description),
    ] {
        if let Some(value) = value {
            body.insert(field.into(), json!(value));
        }
    }
    if let Some(priority) = fields.priority {
        body.insert("priority".into(), json!(priority));
    }
    if !fields.api_keys.is_empty() {
        let mut keys = Vec::new();
        for key in &fields.api_keys {
            if key == "-" {
                for line in std::io::stdin().lock().lines() {
                    let line = line?;
                    let line = line.trim();
                    if !line.is_empty() {
                        keys.push(line.to_string());
                    }
                }
            } else {
                keys.push(key.clone());
            }
        }
        body.insert("apiKeys".into(), json!(keys));
    }
    if !fields.model_mapping.is_empty() {
        let mut mapping = Map::new();
        for pair in &fields.model_mapping {
            let (from, to) = pair
                .split_once('=')
                .filter(|(from, to)| !from.trim().is_empty() && !to.trim().is_empty())
                .ok_or_else(|| {
                    anyhow::anyhow!("--map-model '{pair}': use FROM=TO, e.g. haiku=my-model")
                })?;
            mapping.insert(from.trim().into(), json!(to.trim()));
        }
        body.insert("modelMapping".into(), Value::Object(mapping));
    }
    for pair in &fields.set {
        let (field, value) = pair
            .split_once('=')
            .filter(|(field, _)| !field.trim().is_empty())
            .ok_or_else(|| {
                anyhow::anyhow!("--set '{pair}': use FIELD=VALUE, e.g. rateLimitRpm=60")
            })?;
        let value = serde_json::from_str(value).unwrap_or_else(|_| json!(value));
        body.insert(field.trim().into(), value);
    }
    Ok(body)
}

fn print_channel(json: bool, verb: &str, channel: &Value) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(channel)?)?;
    } else {
        writeln!(
            out,
            "{verb} channel {} ({}), {} pool, {}",
            channel["name"].as_str().unwrap_or(""),
            channel["id"].as_str().unwrap_or(""),
            channel["pool"].as_str().unwrap_or(""),
            channel["status"].as_str().unwrap_or("")
        )?;
    }
    Ok(())
}

async fn create(args: ChannelCreateArgs) -> anyhow::Result<ExitCode> {
    let pool = parse_pool(&args.pool)?;
    let fields = &args.fields;
    let missing: Vec<&str> = [
        ("--name", fields.name.is_none()),
        ("--service-type", fields.service_type.is_none()),
        ("--base-url", fields.base_url.is_none()),
    ]
    .into_iter()
    .filter_map(|(flag, absent)| absent.then_some(flag))
    .collect();
    anyhow::ensure!(
        missing.is_empty(),
        "a new channel needs {}",
        missing.join(", ")
    );
    let mut body = fields_body(fields)?;
    body.insert("pool".into(), json!(pool.as_str()));
    let body = Value::Object(body);
    let created = match connect(args.data.options()).await? {
        Target::Local(local) => {
            let channel = services::create_channel(&local.config, body)?;
            services::channel_view(&local.config, &channel)?.channel
        }
        Target::Remote(client) => client.call("POST", "/channels", Some(&body)).await?,
    };
    print_channel(args.json, "Created", &created)?;
    Ok(ExitCode::SUCCESS)
}

async fn update(args: ChannelUpdateArgs) -> anyhow::Result<ExitCode> {
    let patch = fields_body(&args.fields)?;
    anyhow::ensure!(
        !patch.is_empty(),
        "nothing to change: give at least one of --name, --service-type, --base-url, --api-key, --priority, --map-model, --description, --set"
    );
    let patch = Value::Object(patch);
    let target = connect(args.data.options()).await?;
    let channel = lookup(&target, &args.channel).await?;
    let id = channel["id"].as_str().unwrap_or_default().to_string();
    let updated = patch_channel(&target, &id, &patch).await?;
    print_channel(args.json, "Updated", &updated)?;
    Ok(ExitCode::SUCCESS)
}

async fn patch_channel(target: &Target, id: &str, patch: &Value) -> anyhow::Result<Value> {
    Ok(match target {
        Target::Local(local) => {
            let channel = services::update_channel(&local.config, id, patch, None)?;
            services::channel_view(&local.config, &channel)?.channel
        }
        Target::Remote(client) => {
            client
                .call("PATCH", &format!("/channels/{id}"), Some(patch))
                .await?
        }
    })
}

async fn set_status(args: ChannelRefArgs, status: ChannelStatus) -> anyhow::Result<ExitCode> {
    let target = connect(args.data.options()).await?;
    let channel = lookup(&target, &args.channel).await?;
    let id = channel["id"].as_str().unwrap_or_default().to_string();
    let updated = patch_channel(&target, &id, &json!({ "status": status })).await?;
    let verb = match status {
        ChannelStatus::Active => "Enabled",
        _ => "Disabled",
    };
    print_channel(args.json, verb, &updated)?;
    Ok(ExitCode::SUCCESS)
}

async fn delete(args: ChannelRefArgs) -> anyhow::Result<ExitCode> {
    let target = connect(args.data.options()).await?;
    let channel = lookup(&target, &args.channel).await?;
    let id = channel["id"].as_str().unwrap_or_default().to_string();
    match &target {
        Target::Local(local) => services::delete_channel(&local.config, &id, None)?,
        Target::Remote(client) => {
            client
                .call("DELETE", &format!("/channels/{id}"), None)
                .await?;
        }
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", json!({ "deleted": id }))?;
    } else {
        writeln!(
            out,
            "Deleted channel {} ({id})",
            channel["name"].as_str().unwrap_or("")
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn test(args: ChannelTestArgs) -> anyhow::Result<ExitCode> {
    let timeout = Duration::from_secs(args.timeout_secs);
    let target = connect(args.data.options()).await?;
    let channel = lookup(&target, &args.channel).await?;
    let id = channel["id"].as_str().unwrap_or_default().to_string();
    let report = match &target {
        Target::Local(local) => {
            let channel = services::get_channel(&local.config, &id)?;
            let live = crate::config::LiveChannel::open(&channel, local.config.cipher())?;
            let client = crate::relay::client::UpstreamClient::new()
                .map_err(|e| anyhow::anyhow!("cannot set up the TLS client: {e}"))?;
            let report =
                crate::app::probe::probe_channel(&client, &live, args.model.as_deref(), timeout)
                    .await
                    .map_err(anyhow::Error::msg)?;
            serde_json::to_value(report)?
        }
        Target::Remote(client) => {
            let body = json!({ "model": args.model, "timeoutSecs": args.timeout_secs });
            client
                .call("POST", &format!("/channels/{id}/test"), Some(&body))
                .await?
        }
    };
    let status = report["status"].as_u64();
    let ok = status.is_some_and(|s| (200..300).contains(&s));
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        let answer = status.map_or_else(
            || report["error"].as_str().unwrap_or("no answer").to_string(),
            |s| format!("HTTP {s}"),
        );
        writeln!(
            out,
            "{} channel {} ({id}): {answer} in {} ms",
            if ok { "OK" } else { "FAILED" },
            report["channel"].as_str().unwrap_or(""),
            report["latencyMs"].as_u64().unwrap_or(0),
        )?;
        writeln!(
            out,
            "  POST {}  model {}",
            report["url"].as_str().unwrap_or(""),
            report["model"].as_str().unwrap_or("")
        )?;
        if !ok {
            if let Some(error) = report["error"].as_str().filter(|_| status.is_some()) {
                writeln!(out, "  {error}")?;
            }
            let body = report["body"].as_str().unwrap_or("");
            if !body.is_empty() {
                writeln!(out, "  upstream said: {body}")?;
            }
        }
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn list(args: ChannelListArgs) -> anyhow::Result<ExitCode> {
    let pool = args.pool.as_deref().map(parse_pool).transpose()?;
    let channels: Vec<Value> = match connect(args.data.options()).await? {
        Target::Local(local) => services::list_channels(&local.config, pool)
            .iter()
            .map(|c| services::channel_view(&local.config, c).map(|v| v.channel))
            .collect::<Result<_, _>>()?,
        Target::Remote(client) => {
            let query = pool.map(|p| format!("?pool={p}")).unwrap_or_default();
            client
                .call("GET", &format!("/channels{query}"), None)
                .await?["channels"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        }
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&channels)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(
        out,
        "{:<10} {:<10} {:<24} {:<13} {:<9} {:>8} {:>5}  BASE URL",
        "ID", "POOL", "NAME", "SERVICE", "STATUS", "PRIORITY", "KEYS"
    )?;
    for c in &channels {
        writeln!(
            out,
            "{:<10} {:<10} {:<24} {:<13} {:<9} {:>8} {:>5}  {}",
            c["id"].as_str().unwrap_or(""),
            c["pool"].as_str().unwrap_or(""),
            c["name"].as_str().unwrap_or(""),
            c["serviceType"].as_str().unwrap_or(""),
            c["status"].as_str().unwrap_or(""),
            c["priority"].as_i64().unwrap_or(0),
            c["apiKeys"].as_array().map_or(0, Vec::len),
            c["baseUrl"].as_str().unwrap_or(""),
        )?;
    }
    if channels.is_empty() {
        writeln!(
            out,
            "(no channels: relaybox channels create, a cc-bridge config.json in the data dir, or the admin API)"
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn show(args: ChannelRefArgs) -> anyhow::Result<ExitCode> {
    let target = connect(args.data.options()).await?;
    let channel = lookup(&target, &args.channel).await?;
    writeln!(
        std::io::stdout().lock(),
        "{}",
        serde_json::to_string_pretty(&channel)?
    )?;
    Ok(ExitCode::SUCCESS)
}
