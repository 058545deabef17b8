//! Reading a claude-relay-service database: a live Redis (read-only commands only: `SCAN`,
//! `TYPE`, `HGETALL`, `GET`, `SMEMBERS`) or a JSON dump written by `tools/redis_dump_json.py`.
//!
//! Both give the same [`Snapshot`]: the keys the importer reads ([`wanted`]) with their values.
//! Sessions, locks, indexes, caches, hourly statistics and request records are never fetched.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use serde::Deserialize;

use super::CrsError;

/// Where the data comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// `redis://[:password@]host:port[/db]`
    Redis(String),
    /// A JSON dump of `tools/redis_dump_json.py`.
    Dump(PathBuf),
}

impl Source {
    /// How the source is shown in the report (a Redis password is never shown).
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Source::Redis(url) => redact_url(url),
            Source::Dump(path) => path.display().to_string(),
        }
    }
}

/// `redis://user:secret@host/0` → `redis://user:…@host/0`.
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.rsplit_once('@') {
        Some((credentials, host)) => {
            let user = credentials.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:…@{host}")
        }
        None => url.to_string(),
    }
}

/// One Redis value, as far as the importer cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    String(String),
    Hash(BTreeMap<String, String>),
    Set(BTreeSet<String>),
    /// Another type (list, zset, stream): never read.
    Other(String),
}

/// The keys the importer reads, with their values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub keys: BTreeMap<String, Value>,
    /// Keys seen in the source in all (also those not read).
    pub scanned: u64,
}

impl Snapshot {
    #[must_use]
    pub fn hash(&self, key: &str) -> Option<&BTreeMap<String, String>> {
        match self.keys.get(key) {
            Some(Value::Hash(fields)) => Some(fields),
            _ => None,
        }
    }

    #[must_use]
    pub fn string(&self, key: &str) -> Option<&str> {
        match self.keys.get(key) {
            Some(Value::String(text)) => Some(text),
            _ => None,
        }
    }

    #[must_use]
    pub fn set(&self, key: &str) -> Option<&BTreeSet<String>> {
        match self.keys.get(key) {
            Some(Value::Set(members)) => Some(members),
            _ => None,
        }
    }

    /// `(rest of the name, value)` of every key starting with `prefix`, in name order.
    pub fn with_prefix<'a>(
        &'a self,
        prefix: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a Value)> + 'a {
        self.keys
            .range::<str, _>((
                std::ops::Bound::Included(prefix),
                std::ops::Bound::Unbounded,
            ))
            .take_while(move |(name, _)| name.starts_with(prefix))
            .map(move |(name, value)| (&name[prefix.len()..], value))
    }
}

/// Record prefixes of upstream accounts, current and legacy (format notes §3).
pub(crate) const ACCOUNT_PREFIXES: [&str; 13] = [
    "claude:account:",
    "claude_account:",
    "claude_console_account:",
    "ccr_account:",
    "gemini_account:",
    "gemini_api_account:",
    "openai:account:",
    "openai_account:",
    "openai_responses_account:",
    "azure_openai:account:",
    "droid:account:",
    "bedrock_account:",
    "bedrock:account:",
];

/// `{id}` alone after the prefix: a record, not an index or a per-record side key.
fn is_record_id(rest: &str) -> bool {
    !rest.is_empty() && !rest.contains(':') && rest != "index"
}

/// Whether the importer reads this key.
#[must_use]
pub fn wanted(name: &str) -> bool {
    if let Some(rest) = name.strip_prefix("apikey:") {
        return is_record_id(rest) && rest != "hash_map";
    }
    if ACCOUNT_PREFIXES
        .iter()
        .any(|prefix| name.strip_prefix(prefix).is_some_and(is_record_id))
    {
        return true;
    }
    if name == "account_groups"
        || name
            .strip_prefix("account_group:")
            .or_else(|| name.strip_prefix("account_group_members:"))
            .is_some_and(is_record_id)
        || (name.starts_with("shared_") && name.ends_with("_accounts"))
    {
        return true;
    }
    if let Some(id) = name.strip_prefix("usage:cost:total:") {
        return is_record_id(id);
    }
    if let Some(rest) = name.strip_prefix("usage:") {
        return match rest.split_once(':') {
            None => is_record_id(rest),
            Some((id, tail)) => {
                !matches!(
                    id,
                    "cost" | "daily" | "monthly" | "hourly" | "model" | "global" | "records"
                ) && ["model:daily:", "model:monthly:", "model:alltime:"]
                    .iter()
                    .any(|kind| tail.starts_with(kind))
            }
        };
    }
    false
}

/// Read the source. `progress` receives one line now and then.
pub fn read(source: &Source, progress: &dyn Fn(&str)) -> Result<Snapshot, CrsError> {
    match source {
        Source::Redis(url) => read_redis(url, progress),
        Source::Dump(path) => read_dump(path, progress),
    }
}

// ---- JSON dump -------------------------------------------------------------------------------

#[derive(Deserialize)]
struct Dump {
    keys: BTreeMap<String, DumpEntry>,
}

#[derive(Deserialize)]
struct DumpEntry {
    #[serde(rename = "type")]
    kind: String,
    value: serde_json::Value,
}

fn read_dump(path: &Path, progress: &dyn Fn(&str)) -> Result<Snapshot, CrsError> {
    let bad = |reason: String| CrsError::Source(format!("{}: {reason}", path.display()));
    let bytes = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let dump: Dump = serde_json::from_slice(&bytes).map_err(|e| {
        bad(format!(
            "not a dump of tools/redis_dump_json.py ({e}); it must be a JSON object with \"keys\""
        ))
    })?;
    progress(&format!("dump: {} keys", dump.keys.len()));
    let mut snapshot = Snapshot {
        scanned: dump.keys.len() as u64,
        ..Snapshot::default()
    };
    for (name, entry) in dump.keys {
        if !wanted(&name) {
            continue;
        }
        let value =
            match entry.kind.as_str() {
                "string" => Value::String(dump_text(&entry.value).ok_or_else(|| {
                    bad(format!("key {name}: a string value must be a JSON string"))
                })?),
                "hash" => {
                    let object = entry.value.as_object().ok_or_else(|| {
                        bad(format!("key {name}: a hash value must be an object"))
                    })?;
                    let mut fields = BTreeMap::new();
                    for (field, value) in object {
                        let text = dump_text(value).ok_or_else(|| {
                            bad(format!("key {name} field {field}: not a string"))
                        })?;
                        fields.insert(field.clone(), text);
                    }
                    Value::Hash(fields)
                }
                "set" => {
                    let items = entry
                        .value
                        .as_array()
                        .ok_or_else(|| bad(format!("key {name}: a set value must be an array")))?;
                    let mut members = BTreeSet::new();
                    for item in items {
                        members.insert(dump_text(item).ok_or_else(|| {
                            bad(format!("key {name}: a set member is not a string"))
                        })?);
                    }
                    Value::Set(members)
                }
                other => Value::Other(other.to_string()),
            };
        snapshot.keys.insert(name, value);
    }
    Ok(snapshot)
}

/// A dumped string: text, or `{"$base64": …}` for bytes that are not UTF-8 (read lossily, like
/// the live path).
fn dump_text(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(text) => Some(text.clone()),
        serde_json::Value::Object(object) => {
            let encoded = object.get("$base64")?.as_str()?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .ok()?;
            Some(String::from_utf8_lossy(&bytes).into_owned())
        }
        _ => None,
    }
}

// ---- live Redis ------------------------------------------------------------------------------

/// Keys per pipelined round trip.
const FETCH_BATCH: usize = 500;

fn read_redis(url: &str, progress: &dyn Fn(&str)) -> Result<Snapshot, CrsError> {
    let shown = redact_url(url);
    let fail =
        |what: &str, e: redis::RedisError| CrsError::Source(format!("Redis {shown}: {what}: {e}"));
    if url.starts_with("rediss://") {
        return Err(CrsError::Source(format!(
            "Redis {shown}: TLS (rediss://) is not supported by this build; reach Redis through a local tunnel, or dump it with tools/redis_dump_json.py and use --dump"
        )));
    }
    let client = redis::Client::open(url).map_err(|e| fail("invalid URL", e))?;
    let mut con = client
        .get_connection_with_timeout(Duration::from_secs(10))
        .map_err(|e| fail("cannot connect", e))?;
    con.set_read_timeout(Some(Duration::from_secs(120)))
        .map_err(|e| fail("cannot connect", e))?;

    // 1. Names, by SCAN (never KEYS: it would block a busy server).
    let mut names: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut cursor: u64 = 0;
    let mut scanned: u64 = 0;
    loop {
        let (next, batch): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
            .cursor_arg(cursor)
            .arg("COUNT")
            .arg(1000)
            .query(&mut con)
            .map_err(|e| fail("SCAN", e))?;
        scanned += batch.len() as u64;
        for raw in batch {
            let name = String::from_utf8_lossy(&raw).into_owned();
            if wanted(&name) {
                names.insert(name, raw);
            }
        }
        if next == 0 {
            break;
        }
        cursor = next;
    }
    progress(&format!(
        "redis: {scanned} keys scanned, {} to read",
        names.len()
    ));

    // 2. Types and values, pipelined.
    let mut snapshot = Snapshot {
        scanned,
        ..Snapshot::default()
    };
    let all: Vec<(String, Vec<u8>)> = names.into_iter().collect();
    let mut done = 0;
    for chunk in all.chunks(FETCH_BATCH) {
        let mut types = redis::pipe();
        for (_, raw) in chunk {
            types.cmd("TYPE").arg(raw);
        }
        let kinds: Vec<redis::Value> = types.query(&mut con).map_err(|e| fail("TYPE", e))?;
        let kinds: Vec<String> = kinds.iter().map(|v| text(v).unwrap_or_default()).collect();
        let mut fetch = redis::pipe();
        let mut fetched = Vec::new();
        for ((name, raw), kind) in chunk.iter().zip(&kinds) {
            let command = match kind.as_str() {
                "string" => "GET",
                "hash" => "HGETALL",
                "set" => "SMEMBERS",
                // Gone meanwhile (expired), or a type that is never read.
                "none" => continue,
                other => {
                    snapshot
                        .keys
                        .insert(name.clone(), Value::Other(other.to_string()));
                    continue;
                }
            };
            fetch.cmd(command).arg(raw);
            fetched.push((name.clone(), kind.clone()));
        }
        if !fetched.is_empty() {
            let values: Vec<redis::Value> = fetch
                .query(&mut con)
                .map_err(|e| fail("reading values", e))?;
            for ((name, kind), value) in fetched.into_iter().zip(values) {
                let value = match kind.as_str() {
                    "string" => match text(&value) {
                        Some(text) => Value::String(text),
                        None => continue, // expired between TYPE and GET
                    },
                    "hash" => Value::Hash(pairs(&value).into_iter().collect()),
                    _ => Value::Set(items(&value).into_iter().collect()),
                };
                snapshot.keys.insert(name, value);
            }
        }
        done += chunk.len();
        progress(&format!("redis: {done}/{} keys read", all.len()));
    }
    Ok(snapshot)
}

/// A reply as text (bulk, simple or verbatim string; integers as decimal).
fn text(value: &redis::Value) -> Option<String> {
    match value {
        redis::Value::BulkString(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
        redis::Value::SimpleString(text) => Some(text.clone()),
        redis::Value::VerbatimString { text, .. } => Some(text.clone()),
        redis::Value::Okay => Some("OK".to_string()),
        redis::Value::Int(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `HGETALL`: a flat array (RESP2) or a map (RESP3).
fn pairs(value: &redis::Value) -> Vec<(String, String)> {
    match value {
        redis::Value::Map(entries) => entries
            .iter()
            .filter_map(|(k, v)| Some((text(k)?, text(v)?)))
            .collect(),
        redis::Value::Array(flat) => flat
            .chunks(2)
            .filter_map(|pair| match pair {
                [k, v] => Some((text(k)?, text(v)?)),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// `SMEMBERS`: an array (RESP2) or a set (RESP3).
fn items(value: &redis::Value) -> Vec<String> {
    match value {
        redis::Value::Array(items) | redis::Value::Set(items) => {
            items.iter().filter_map(text).collect()
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wanted_keys() {
        for yes in [
            "apikey:111c4b27-098b-4b5c-bd5a-da6420edff2e",
            "claude:account:8b1f",
            "bedrock_account:2f6a",
            "account_groups",
            "account_group:929",
            "account_group_members:929",
            "shared_claude_console_accounts",
            "usage:111c",
            "usage:111c:model:daily:claude-sonnet-4:2026-11-21",
            "usage:111c:model:monthly:claude-sonnet-4:2026-11",
            "usage:111c:model:alltime:claude-sonnet-4",
            "usage:cost:total:111c",
        ] {
            assert!(wanted(yes), "{yes}");
        }
        for no in [
            "apikey:hash_map",
            "apikey:idx:all",
            "apikey:set:active",
            "claude:account:index",
            "claude_account:8b1f:401_errors",
            "usage:daily:111c:2026-11-21",
            "usage:111c:model:hourly:m:2026-11-21:13",
            "usage:records:111c",
            "usage:global:total",
            "usage:cost:daily:111c:2026-11-21",
            "usage:model:daily:m:2026-11-21",
            "session:abc",
            "rate_limit:requests:111c",
        ] {
            assert!(!wanted(no), "{no}");
        }
    }

    #[test]
    fn redis_password_is_not_shown() {
        assert_eq!(
            redact_url("redis://:hunter2@127.0.0.1:6379/0"),
            "redis://:…@127.0.0.1:6379/0"
        );
        assert_eq!(redact_url("redis://127.0.0.1/1"), "redis://127.0.0.1/1");
    }

    #[test]
    fn prefix_iteration() {
        let mut snapshot = Snapshot::default();
        for name in ["a:1", "a:2", "b:1", "a"] {
            snapshot
                .keys
                .insert(name.into(), Value::String(String::new()));
        }
        let rest: Vec<&str> = snapshot.with_prefix("a:").map(|(r, _)| r).collect();
        assert_eq!(rest, ["1", "2"]);
    }
}
