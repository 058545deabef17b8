//! `relaybox channels …`: list and show upstream channels (keys masked).

use std::io::Write as _;
use std::process::ExitCode;

use serde_json::Value;

use super::remote::{Target, connect};
use super::{ChannelListArgs, ChannelRefArgs, ChannelsCommand};
use crate::config::services;
use crate::domain::Pool;

pub async fn run(command: ChannelsCommand) -> anyhow::Result<ExitCode> {
    match command {
        ChannelsCommand::List(args) => list(args).await,
        ChannelsCommand::Show(args) => show(args).await,
    }
}

async fn list(args: ChannelListArgs) -> anyhow::Result<ExitCode> {
    let pool = match args.pool.as_deref() {
        Some(text) => Some(Pool::parse(text).ok_or_else(|| {
            anyhow::anyhow!("unknown pool '{text}': use messages, responses, gemini or chat")
        })?),
        None => None,
    };
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
            "(no channels: put a cc-bridge config.json in the data dir, or use the admin API)"
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn show(args: ChannelRefArgs) -> anyhow::Result<ExitCode> {
    let channel = match connect(args.data.options()).await? {
        Target::Local(local) => {
            let channel = services::resolve_channel(&local.config, &args.channel)?;
            services::channel_view(&local.config, &channel)?.channel
        }
        Target::Remote(client) => {
            let all = client.call("GET", "/channels", None).await?["channels"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let by_id = all.iter().find(|c| c["id"] == args.channel.as_str());
            let by_name: Vec<&Value> = all
                .iter()
                .filter(|c| {
                    c["name"]
                        .as_str()
                        .is_some_and(|n| n.eq_ignore_ascii_case(&args.channel))
                })
                .collect();
            match (by_id, by_name.as_slice()) {
                (Some(c), _) | (None, &[c]) => (*c).clone(),
                (None, []) => anyhow::bail!("channel '{}' does not exist", args.channel),
                (None, _) => {
                    anyhow::bail!("several channels are named '{}'; use the id", args.channel)
                }
            }
        }
    };
    writeln!(
        std::io::stdout().lock(),
        "{}",
        serde_json::to_string_pretty(&channel)?
    )?;
    Ok(ExitCode::SUCCESS)
}
