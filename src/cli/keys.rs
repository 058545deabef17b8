//! `relaybox keys …`: the same operations as `/admin/api/keys`, locally or through the running
//! server.

use std::io::Write as _;
use std::process::ExitCode;

use serde_json::{Value, json};

use super::remote::{Target, connect};
use super::{KeyCreateArgs, KeyRefArgs, KeysCommand, ListArgs};
use crate::app::services::{self, KeyView, NewKey};
use crate::domain::KeyStatus;

pub async fn run(command: KeysCommand) -> anyhow::Result<ExitCode> {
    match command {
        KeysCommand::Create(args) => create(args).await,
        KeysCommand::List(args) => list(args).await,
        KeysCommand::Show(args) => show(args).await,
        KeysCommand::Disable(args) => set_status(args, KeyStatus::Disabled).await,
        KeysCommand::Enable(args) => set_status(args, KeyStatus::Active).await,
        KeysCommand::Delete(args) => delete(args).await,
    }
}

fn view(key: &crate::domain::ClientKey) -> Value {
    serde_json::to_value(KeyView::of(key)).unwrap_or(Value::Null)
}

async fn create(args: KeyCreateArgs) -> anyhow::Result<ExitCode> {
    let new = NewKey {
        name: args.name,
        description: args.description,
        is_admin: args.admin,
        ..NewKey::default()
    };
    let result = match connect(args.data.options()).await? {
        Target::Local(core) => {
            let (key, plaintext) = services::create_key(&core, new)?;
            json!({ "key": view(&key), "plaintext": plaintext.as_str() })
        }
        Target::Remote(client) => {
            let body = json!({ "name": new.name, "description": new.description, "isAdmin": new.is_admin });
            client.call("POST", "/keys", Some(&body)).await?
        }
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
        Target::Local(core) => Ok(view(&services::resolve_key(core, reference)?)),
        Target::Remote(client) => {
            let keys = client.call("GET", "/keys", None).await?;
            let list = keys["keys"].as_array().cloned().unwrap_or_default();
            let by_id = list.iter().find(|k| k["id"] == reference);
            let by_name: Vec<&Value> = list.iter().filter(|k| k["name"] == reference).collect();
            match (by_id, by_name.as_slice()) {
                (Some(key), _) | (None, &[key]) => Ok((*key).clone()),
                (None, []) => anyhow::bail!("key '{reference}' does not exist"),
                (None, _) => anyhow::bail!("several keys are named '{reference}'; use the id"),
            }
        }
    }
}

async fn list(args: ListArgs) -> anyhow::Result<ExitCode> {
    let keys: Vec<Value> = match connect(args.data.options()).await? {
        Target::Local(core) => services::list_keys(&core).iter().map(view).collect(),
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
        Target::Local(core) => view(&services::set_key_status(core, &id, status)?),
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
        Target::Local(core) => services::delete_key(core, &id, None)?,
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
