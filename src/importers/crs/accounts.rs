//! Upstream accounts → channels (format notes §3).
//!
//! | platform | pool | serviceType | credential |
//! |---|---|---|---|
//! | Claude OAuth | messages | `claude` | `oauthTokens` (`access_token`, `refresh_token`, `expires_at`, `scopes`) |
//! | Claude Console, CCR | messages | `claude` | `apiKeys` |
//! | OpenAI Responses | responses | `responses` | `apiKeys` |
//! | OpenAI OAuth (Codex) | responses | `openai-oauth` | `oauthTokens` (`access_token`, `account_id`, …) |
//! | Gemini API | gemini | `gemini` | `apiKeys` |
//! | Azure OpenAI | chat | `azure-openai` | `apiKeys` — imported disabled |
//! | Gemini OAuth | gemini | `gemini-oauth` | `oauthTokens` — imported disabled |
//! | Bedrock | messages | `bedrock` | sealed in `extra` — imported disabled |
//! | Droid | by endpointType | `droid` | `apiKeys` / `oauthTokens` — imported disabled |
//!
//! Every other decrypted secret (login e-mail and password, id tokens, the proxy password, AWS
//! credentials) is sealed into `extra.claudeRelayService.secrets` (AAD [`super::secret_aad`]).
//! What relaybox does not act on is kept in `extra.claudeRelayService.fields`.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};
use zeroize::Zeroizing;

use super::record::Record;
use super::secrets::{DecryptError, Decryptor, salt};
use super::source::{ACCOUNT_PREFIXES, Snapshot, Value as RedisValue};
use crate::domain::channel::ChannelOrigin;
use crate::domain::{Channel, ChannelStatus, Pool};

/// The account platforms, named as claude-relay-service's usage records name them
/// (`accountType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum Platform {
    #[serde(rename = "claude-official")]
    ClaudeOAuth,
    #[serde(rename = "claude-console")]
    ClaudeConsole,
    #[serde(rename = "ccr")]
    Ccr,
    #[serde(rename = "openai-responses")]
    OpenAiResponses,
    #[serde(rename = "openai")]
    OpenAiOAuth,
    #[serde(rename = "azure-openai")]
    AzureOpenAi,
    #[serde(rename = "gemini")]
    GeminiOAuth,
    #[serde(rename = "gemini-api")]
    GeminiApi,
    #[serde(rename = "bedrock")]
    Bedrock,
    #[serde(rename = "droid")]
    Droid,
}

impl Platform {
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Platform::ClaudeOAuth => "Claude OAuth",
            Platform::ClaudeConsole => "Claude Console",
            Platform::Ccr => "CCR",
            Platform::OpenAiResponses => "OpenAI Responses",
            Platform::OpenAiOAuth => "OpenAI OAuth (Codex)",
            Platform::AzureOpenAi => "Azure OpenAI",
            Platform::GeminiOAuth => "Gemini OAuth",
            Platform::GeminiApi => "Gemini API",
            Platform::Bedrock => "AWS Bedrock",
            Platform::Droid => "Droid (Factory.ai)",
        }
    }

    /// The record prefix → platform (legacy prefixes included).
    fn of_prefix(prefix: &str) -> Option<Platform> {
        Some(match prefix {
            "claude:account:" | "claude_account:" => Platform::ClaudeOAuth,
            "claude_console_account:" => Platform::ClaudeConsole,
            "ccr_account:" => Platform::Ccr,
            "gemini_account:" => Platform::GeminiOAuth,
            "gemini_api_account:" => Platform::GeminiApi,
            "openai:account:" | "openai_account:" => Platform::OpenAiOAuth,
            "openai_responses_account:" => Platform::OpenAiResponses,
            "azure_openai:account:" => Platform::AzureOpenAi,
            "droid:account:" => Platform::Droid,
            "bedrock_account:" | "bedrock:account:" => Platform::Bedrock,
            _ => return None,
        })
    }

    fn shared_set(self) -> Option<&'static str> {
        Some(match self {
            Platform::ClaudeConsole => "shared_claude_console_accounts",
            Platform::Ccr => "shared_ccr_accounts",
            Platform::GeminiOAuth => "shared_gemini_accounts",
            Platform::GeminiApi => "shared_gemini_api_accounts",
            Platform::OpenAiOAuth => "shared_openai_accounts",
            Platform::OpenAiResponses => "shared_openai_responses_accounts",
            Platform::AzureOpenAi => "shared_azure_openai_accounts",
            Platform::ClaudeOAuth | Platform::Bedrock | Platform::Droid => return None,
        })
    }

    /// Why relaybox cannot route to this platform yet (the channel is imported disabled).
    #[must_use]
    pub fn unservable(self) -> Option<&'static str> {
        Some(match self {
            Platform::AzureOpenAi => {
                "relaybox has no Azure OpenAI upstream type yet (deployment URLs, api-version, api-key header)"
            }
            Platform::GeminiOAuth => {
                "relaybox cannot call Google's Code Assist API with Gemini OAuth tokens yet"
            }
            Platform::Bedrock => "relaybox does not sign AWS Bedrock requests (SigV4) yet",
            Platform::Droid => "relaybox does not speak Factory.ai's Droid API yet",
            _ => return None,
        })
    }
}

/// One account, mapped: the channel without its secrets, and the secrets in plaintext.
pub struct AccountPlan {
    pub crs_id: String,
    pub platform: Platform,
    /// `api_keys` and `oauth_tokens` empty; `extra.claudeRelayService` without `secrets`.
    pub channel: Channel,
    pub api_keys: Vec<Zeroizing<String>>,
    pub oauth_tokens: Option<Map<String, Value>>,
    /// Other secrets, sealed into `extra.claudeRelayService.secrets.<name>`.
    pub secrets: BTreeMap<String, Zeroizing<String>>,
    /// In the platform's shared pool (serves keys without a binding).
    pub shared: bool,
    /// Creation time (unix seconds; 0 when unknown), to order new channels.
    pub created: i64,
    pub notes: Vec<String>,
}

impl std::fmt::Debug for AccountPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountPlan")
            .field("crs_id", &self.crs_id)
            .field("platform", &self.platform)
            .field("channel", &self.channel.id)
            .finish_non_exhaustive()
    }
}

/// An account that cannot be imported, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountFailure {
    pub item: String,
    pub reason: String,
}

/// An account group (§3.3).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    pub id: String,
    pub name: String,
    pub platform: String,
    pub members: Vec<String>,
}

/// Fields that change at runtime (usage, windows, refresh times, the scheduler's status): not
/// kept, so a re-import of a live deployment does not see every used account as changed. (A
/// status that matters is the channel's own status, with the reason in its description.)
const RUNTIME_FIELDS: &[&str] = &[
    "status",
    "errorMessage",
    "lastUsedAt",
    "lastRequestTime",
    "lastRefreshAt",
    "lastRefresh",
    "updatedAt",
    "dailyUsage",
    "lastResetDate",
    "totalUsedTokens",
    "rateLimitedAt",
    "rateLimitStatus",
    "rateLimitEndAt",
    "quotaStoppedAt",
    "profileUpdatedAt",
    "claudeUsageUpdatedAt",
    "stoppedReason",
];
const RUNTIME_PREFIXES: &[&str] = &[
    "sessionWindow",
    "claudeFiveHour",
    "claudeSevenDay",
    "fiveHour",
];

fn is_runtime(field: &str) -> bool {
    RUNTIME_FIELDS.contains(&field) || RUNTIME_PREFIXES.iter().any(|p| field.starts_with(p))
}

/// Read every account record of the snapshot.
pub fn read_accounts(
    snapshot: &Snapshot,
    decryptor: &Decryptor,
    offset_minutes: i32,
) -> (Vec<AccountPlan>, Vec<AccountFailure>, u64) {
    let mut plans: Vec<AccountPlan> = Vec::new();
    let mut failures = Vec::new();
    let mut found = 0;
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let shared_sets: BTreeSet<(Platform, String)> = [
        Platform::ClaudeConsole,
        Platform::Ccr,
        Platform::GeminiOAuth,
        Platform::GeminiApi,
        Platform::OpenAiOAuth,
        Platform::OpenAiResponses,
        Platform::AzureOpenAi,
    ]
    .into_iter()
    .flat_map(|p| {
        p.shared_set()
            .and_then(|set| snapshot.set(set))
            .into_iter()
            .flatten()
            .map(move |id| (p, id.clone()))
    })
    .collect();
    for prefix in ACCOUNT_PREFIXES {
        let Some(platform) = Platform::of_prefix(prefix) else {
            continue;
        };
        for (id, value) in snapshot.with_prefix(prefix) {
            if id.contains(':') || id == "index" {
                continue;
            }
            let name = format!("{prefix}{id}");
            found += 1;
            let record = match (platform, value) {
                (Platform::Bedrock, RedisValue::String(text)) => Record::from_json(text),
                (_, RedisValue::Hash(fields)) => Ok(Record::from_hash(fields)),
                (_, RedisValue::String(_)) => Err("a string where a hash was expected".into()),
                (_, RedisValue::Set(_)) => Err("a set where a hash was expected".into()),
                (_, RedisValue::Other(kind)) => Err(format!("a {kind} where a hash was expected")),
            };
            let record = match record {
                Ok(record) => record,
                Err(reason) => {
                    failures.push(AccountFailure { item: name, reason });
                    continue;
                }
            };
            if !seen.insert(id.to_string()) {
                failures.push(AccountFailure {
                    item: name,
                    reason: format!(
                        "account id {id} was already read under another key (a legacy prefix); this copy is ignored"
                    ),
                });
                continue;
            }
            let shared = record.text("accountType") == "shared"
                || shared_sets.contains(&(platform, id.to_string()));
            match map_account(platform, id, &record, shared, decryptor, offset_minutes) {
                Ok(plan) => plans.push(plan),
                Err(reason) => failures.push(AccountFailure {
                    item: format!("{name} ({})", record.text("name")),
                    reason,
                }),
            }
        }
    }
    (plans, failures, found)
}

/// The account groups.
pub fn read_groups(snapshot: &Snapshot) -> Vec<Group> {
    let mut ids: BTreeSet<String> = snapshot.set("account_groups").cloned().unwrap_or_default();
    ids.extend(
        snapshot
            .with_prefix("account_group:")
            .map(|(id, _)| id.to_string()),
    );
    ids.into_iter()
        .map(|id| {
            let record = snapshot
                .hash(&format!("account_group:{id}"))
                .map(Record::from_hash);
            let members = snapshot
                .set(&format!("account_group_members:{id}"))
                .map(|m| m.iter().cloned().collect())
                .unwrap_or_default();
            Group {
                name: record
                    .as_ref()
                    .map(|r| r.text("name").to_string())
                    .unwrap_or_default(),
                platform: record
                    .as_ref()
                    .map(|r| r.text("platform").to_string())
                    .unwrap_or_default(),
                id,
                members,
            }
        })
        .collect()
}

/// Decrypts the fields of one record with one salt.
struct Secrets<'a> {
    decryptor: &'a Decryptor,
    record: &'a Record,
    salt: &'static str,
}

impl<'a> Secrets<'a> {
    fn new(decryptor: &'a Decryptor, record: &'a Record, salt: &'static str) -> Self {
        Self {
            decryptor,
            record,
            salt,
        }
    }

    /// A string field; `None` when it is empty (CRS stores an empty value unencrypted).
    fn text(&mut self, field: &str) -> Result<Option<Zeroizing<String>>, String> {
        let Some(stored) = self.record.get(field) else {
            return Ok(None);
        };
        self.decryptor
            .decrypt(self.salt, stored)
            .map(|v| Some(v).filter(|v| !v.is_empty()))
            .map_err(|e| self.error(field, &e))
    }

    /// A JSON-object field.
    fn object(&mut self, field: &str) -> Result<Option<Map<String, Value>>, String> {
        let Some(stored) = self.record.get(field) else {
            return Ok(None);
        };
        self.decryptor
            .decrypt_json(self.salt, stored)
            .map(Some)
            .map_err(|e| self.error(field, &e))
    }

    /// A secret that is kept but not needed to serve: a failure becomes a note, not an error.
    fn optional(&mut self, field: &str, notes: &mut Vec<String>) -> Option<Zeroizing<String>> {
        match self.text(field) {
            Ok(value) => value,
            Err(reason) => {
                notes.push(format!("{reason}; this field was not imported"));
                None
            }
        }
    }

    fn error(&self, field: &str, error: &DecryptError) -> String {
        format!(
            "{field} does not decrypt with salt '{}': {error}",
            self.salt
        )
    }
}

fn map_account(
    platform: Platform,
    id: &str,
    record: &Record,
    shared: bool,
    decryptor: &Decryptor,
    offset_minutes: i32,
) -> Result<AccountPlan, String> {
    let mut notes = Vec::new();
    let mut api_keys: Vec<Zeroizing<String>> = Vec::new();
    let mut oauth: Option<Map<String, Value>> = None;
    let mut secrets: BTreeMap<String, Zeroizing<String>> = BTreeMap::new();
    let mut model_mapping = BTreeMap::new();
    let mut mapped: Vec<&str> = vec![
        "id",
        "name",
        "description",
        "priority",
        "isActive",
        "schedulable",
        "createdAt",
        "proxy",
        "supportedModels",
    ];
    // Why the channel cannot serve even though relaybox supports the platform.
    let mut no_credential: Option<String> = None;

    let (pool, service_type, base_url) = match platform {
        Platform::ClaudeOAuth => {
            let mut s = Secrets::new(decryptor, record, salt::CLAUDE_OAUTH);
            let block = s.object("claudeAiOauth")?;
            let access = s.text("accessToken")?;
            let refresh = s.text("refreshToken")?;
            if let Some(email) = s.optional("email", &mut notes) {
                secrets.insert("email".into(), email);
            }
            if let Some(password) = s.optional("password", &mut notes) {
                secrets.insert("password".into(), password);
            }
            mapped.extend([
                "claudeAiOauth",
                "accessToken",
                "refreshToken",
                "email",
                "password",
                "expiresAt",
                "scopes",
            ]);
            let mut tokens = normalize_tokens(block.as_ref());
            if let Some(access) = &access {
                tokens.insert("access_token".into(), Value::String(access.to_string()));
            }
            if let Some(refresh) = &refresh {
                tokens.insert("refresh_token".into(), Value::String(refresh.to_string()));
            }
            if !tokens.contains_key("expires_at")
                && let Some(ms) = record.int("expiresAt")
            {
                tokens.insert("expires_at".into(), json!(ms));
            }
            if !tokens.contains_key("scopes") && !record.text("scopes").is_empty() {
                let scopes: Vec<&str> = record.text("scopes").split_whitespace().collect();
                tokens.insert("scopes".into(), json!(scopes));
            }
            if !tokens.contains_key("access_token") {
                no_credential = Some(
                    "it has no access token (only a refresh token: claude-relay-service refreshes it on first use; relaybox does not refresh Claude OAuth tokens yet)"
                        .into(),
                );
            }
            if !tokens.is_empty() {
                tokens
                    .entry("token_type")
                    .or_insert_with(|| Value::String("Bearer".into()));
                oauth = Some(tokens);
            }
            (
                Pool::Messages,
                "claude",
                "https://api.anthropic.com".to_string(),
            )
        }
        Platform::ClaudeConsole | Platform::Ccr => {
            let salt = if platform == Platform::Ccr {
                salt::CCR
            } else {
                salt::CLAUDE_CONSOLE
            };
            let mut s = Secrets::new(decryptor, record, salt);
            let key = s
                .text("apiKey")?
                .ok_or_else(|| "it has no apiKey".to_string())?;
            api_keys.push(key);
            mapped.extend(["apiKey", "apiUrl"]);
            let url = record.text("apiUrl");
            let base = url
                .trim_end_matches('/')
                .trim_end_matches("/v1/messages")
                .to_string();
            let base = if base.is_empty() {
                "https://api.anthropic.com".to_string()
            } else {
                base
            };
            if platform == Platform::Ccr
                && api_keys.first().is_some_and(|k| !k.starts_with("sk-ant-"))
            {
                notes.push(
                    "claude-relay-service sends this key as `Authorization: Bearer`; relaybox sends `x-api-key` for serviceType claude".into(),
                );
            }
            (Pool::Messages, "claude", base)
        }
        Platform::OpenAiResponses => {
            let mut s = Secrets::new(decryptor, record, salt::OPENAI_RESPONSES);
            let key = s
                .text("apiKey")?
                .ok_or_else(|| "it has no apiKey".to_string())?;
            api_keys.push(key);
            mapped.extend(["apiKey", "baseApi"]);
            let base = record
                .get("baseApi")
                .unwrap_or("https://api.openai.com")
                .trim_end_matches('/')
                .to_string();
            (Pool::Responses, "responses", base)
        }
        Platform::OpenAiOAuth => {
            let mut s = Secrets::new(decryptor, record, salt::OPENAI_OAUTH);
            let block = s.object("openaiOauth")?;
            let access = s.text("accessToken")?;
            let refresh = s.text("refreshToken")?;
            let id_token = s.optional("idToken", &mut notes);
            if let Some(email) = s.optional("email", &mut notes) {
                secrets.insert("email".into(), email);
            }
            mapped.extend([
                "openaiOauth",
                "accessToken",
                "refreshToken",
                "idToken",
                "email",
                "accountId",
            ]);
            let mut tokens = normalize_tokens(block.as_ref());
            for (name, value) in [
                ("access_token", &access),
                ("refresh_token", &refresh),
                ("id_token", &id_token),
            ] {
                if let Some(value) = value {
                    tokens.insert(name.into(), Value::String(value.to_string()));
                }
            }
            if let Some(account) = record.get("accountId") {
                tokens.insert("account_id".into(), Value::String(account.into()));
            }
            if !tokens.contains_key("access_token") {
                no_credential = Some("it has no access token".into());
            }
            if !tokens.is_empty() {
                oauth = Some(tokens);
            }
            (
                Pool::Responses,
                "openai-oauth",
                "https://chatgpt.com/backend-api/codex".to_string(),
            )
        }
        Platform::AzureOpenAi => {
            let mut s = Secrets::new(decryptor, record, salt::AZURE_OPENAI);
            let key = s.text("apiKey").map_err(|e| {
                format!(
                    "{e} (a deployment that sets config.security.azureOpenaiSalt uses another salt)"
                )
            })?;
            api_keys.extend(key);
            mapped.extend(["apiKey", "azureEndpoint"]);
            let base = record
                .get("azureEndpoint")
                .unwrap_or("https://invalid.openai.azure.com")
                .trim_end_matches('/')
                .to_string();
            (Pool::Chat, "azure-openai", base)
        }
        Platform::GeminiOAuth => {
            let mut s = Secrets::new(decryptor, record, salt::GEMINI_OAUTH);
            let block = s.object("geminiOauth")?;
            let access = s.text("accessToken")?;
            let refresh = s.text("refreshToken")?;
            mapped.extend(["geminiOauth", "accessToken", "refreshToken"]);
            let mut tokens = normalize_tokens(block.as_ref());
            if let Some(access) = &access {
                tokens.insert("access_token".into(), Value::String(access.to_string()));
            }
            if let Some(refresh) = &refresh {
                tokens.insert("refresh_token".into(), Value::String(refresh.to_string()));
            }
            if !tokens.is_empty() {
                oauth = Some(tokens);
            }
            (
                Pool::Gemini,
                "gemini-oauth",
                "https://cloudcode-pa.googleapis.com".to_string(),
            )
        }
        Platform::GeminiApi => {
            let mut s = Secrets::new(decryptor, record, salt::GEMINI_API);
            let key = s
                .text("apiKey")?
                .ok_or_else(|| "it has no apiKey".to_string())?;
            api_keys.push(key);
            mapped.extend(["apiKey", "baseUrl"]);
            let base = record
                .get("baseUrl")
                .unwrap_or("https://generativelanguage.googleapis.com")
                .trim_end_matches('/')
                .to_string();
            (Pool::Gemini, "gemini", base)
        }
        Platform::Bedrock => {
            for field in ["awsCredentials", "bearerToken"] {
                let Some(wrapped) = record.json(field) else {
                    continue;
                };
                let (Some(encrypted), Some(iv)) = (
                    wrapped.get("encrypted").and_then(Value::as_str),
                    wrapped.get("iv").and_then(Value::as_str),
                ) else {
                    return Err(format!("{field} is not an {{encrypted, iv}} object"));
                };
                let plain = decryptor.decrypt_bedrock(encrypted, iv).map_err(|e| {
                    format!("{field} does not decrypt with SHA-256(ENCRYPTION_KEY): {e}")
                })?;
                secrets.insert(
                    field.into(),
                    Zeroizing::new(Value::Object(plain).to_string()),
                );
            }
            mapped.extend(["awsCredentials", "bearerToken", "region"]);
            let region = record.get("region").unwrap_or("us-east-1");
            (
                Pool::Messages,
                "bedrock",
                format!("https://bedrock-runtime.{region}.amazonaws.com"),
            )
        }
        Platform::Droid => {
            let mut s = Secrets::new(decryptor, record, salt::DROID);
            let access = s.text("accessToken")?;
            let refresh = s.text("refreshToken")?;
            let mut key_meta = Vec::new();
            if let Some(raw) = record.get("apiKeys") {
                let entries: Vec<Value> = serde_json::from_str(raw)
                    .map_err(|e| format!("apiKeys is not a JSON list: {e}"))?;
                for (index, entry) in entries.iter().enumerate() {
                    let Some(stored) = entry.get("encryptedKey").and_then(Value::as_str) else {
                        continue;
                    };
                    let plain = decryptor.decrypt(salt::DROID, stored).map_err(|e| {
                        format!(
                            "apiKeys[{index}].encryptedKey does not decrypt with salt '{}': {e}",
                            salt::DROID
                        )
                    })?;
                    api_keys.push(plain);
                    key_meta.push(json!({
                        "id": entry.get("id"),
                        "status": entry.get("status"),
                        "createdAt": entry.get("createdAt"),
                    }));
                }
            }
            let mut tokens = Map::new();
            if let Some(access) = &access {
                tokens.insert("access_token".into(), Value::String(access.to_string()));
            }
            if let Some(refresh) = &refresh {
                tokens.insert("refresh_token".into(), Value::String(refresh.to_string()));
            }
            if !tokens.is_empty() {
                oauth = Some(tokens);
            }
            mapped.extend(["accessToken", "refreshToken", "apiKeys"]);
            if !key_meta.is_empty() {
                notes.push(format!("{} upstream key(s)", key_meta.len()));
            }
            let pool = match record.text("endpointType") {
                "openai" => Pool::Responses,
                "comm" => Pool::Chat,
                _ => Pool::Messages,
            };
            (pool, "droid", "https://app.factory.ai/api/llm".to_string())
        }
    };

    // Model list or mapping.
    match record.json("supportedModels") {
        Some(Value::Object(map)) => {
            for (from, to) in map {
                if let Some(to) = to.as_str() {
                    model_mapping.insert(from, to.to_string());
                }
            }
        }
        Some(Value::Array(models)) if !models.is_empty() => notes.push(format!(
            "supportedModels {} kept in extra; relaybox does not limit the models of a channel",
            Value::Array(models)
        )),
        _ => {}
    }

    // Proxy: kept (relaybox does not use per-channel proxies yet); its password sealed.
    let mut proxy = None;
    if let Some(Value::Object(mut object)) = record.json("proxy") {
        if let Some(Value::String(password)) = object.remove("password")
            && !password.is_empty()
        {
            secrets.insert("proxyPassword".into(), Zeroizing::new(password));
        }
        notes.push(format!(
            "proxy {}://{}:{} kept in extra; relaybox does not use per-channel proxies yet",
            object.get("type").and_then(Value::as_str).unwrap_or("?"),
            object.get("host").and_then(Value::as_str).unwrap_or("?"),
            object.get("port").map(Value::to_string).unwrap_or_default()
        ));
        proxy = Some(Value::Object(object));
    }

    // Status.
    let crs_status = record.text("status");
    let (status, why) = if let Some(reason) = platform.unservable() {
        (ChannelStatus::Disabled, Some(reason.to_string()))
    } else if let Some(reason) = no_credential {
        (ChannelStatus::Disabled, Some(reason))
    } else if !record.flag("isActive", true) {
        (
            ChannelStatus::Disabled,
            Some("it is inactive in claude-relay-service".into()),
        )
    } else if !record.flag("schedulable", true) {
        (
            ChannelStatus::Suspended,
            Some("it is not schedulable in claude-relay-service".into()),
        )
    } else if !matches!(
        crs_status,
        "" | "active" | "created" | "rateLimited" | "rate_limited" | "temp_error" | "overloaded"
    ) {
        let message = record.text("errorMessage");
        (
            ChannelStatus::Suspended,
            Some(if message.is_empty() {
                format!("its status in claude-relay-service is '{crs_status}'")
            } else {
                format!("its status in claude-relay-service is '{crs_status}' ({message})")
            }),
        )
    } else {
        (ChannelStatus::Active, None)
    };
    let mut description = record.text("description").to_string();
    if let Some(why) = &why {
        let state = if status == ChannelStatus::Disabled {
            "disabled"
        } else {
            "suspended"
        };
        let sentence = format!("Imported from claude-relay-service as {state}: {why}.");
        description = if description.is_empty() {
            sentence
        } else {
            format!("{description} — {sentence}")
        };
        notes.push(format!("imported {state}: {why}"));
    }

    // Credit quota (Console, CCR, OpenAI Responses: USD per day, reset at quotaResetTime).
    let (mut quota_type, mut quota_limit, mut quota_unit) = (String::new(), None, String::new());
    let (mut quota_interval, mut quota_reset_at) = (None, None);
    if let Some(limit) = record.positive("dailyQuota") {
        let reset = record.get("quotaResetTime").unwrap_or("00:00");
        quota_type = "credit".into();
        quota_limit = Some(limit);
        quota_interval = Some(1);
        quota_unit = "days".into();
        quota_reset_at = daily_anchor(record.time("createdAt"), reset, offset_minutes);
        notes.push(format!(
            "dailyQuota ${limit} → a credit quota of ${limit} per day, reset daily at {reset} claude-relay-service time"
        ));
        mapped.extend(["dailyQuota", "quotaResetTime"]);
    }

    // Everything else relaybox does not act on.
    let mut fields = Map::new();
    for (field, value) in &record.fields {
        if value.is_empty() || mapped.contains(&field.as_str()) || is_runtime(field) {
            continue;
        }
        fields.insert(field.clone(), Value::String(value.clone()));
    }
    let mut crs = Map::new();
    crs.insert("id".into(), Value::String(id.to_string()));
    crs.insert("platform".into(), json!(platform));
    crs.insert("shared".into(), Value::Bool(shared));
    if let Some(proxy) = proxy {
        crs.insert("proxy".into(), proxy);
    }
    if let Some(Value::Array(models)) = record.json("supportedModels")
        && !models.is_empty()
    {
        crs.insert("supportedModels".into(), Value::Array(models));
    }
    if !fields.is_empty() {
        crs.insert("fields".into(), Value::Object(fields));
    }
    let mut extra = Map::new();
    extra.insert(super::EXTRA.into(), Value::Object(crs));

    let created = record
        .time("createdAt")
        .map(|t| t.unix_timestamp())
        .unwrap_or(0);
    let name = match record.get("name") {
        Some(name) => name.trim().to_string(),
        None => format!("crs-{}", &id[..id.len().min(8)]),
    };
    let channel = Channel {
        id: super::channel_id(id),
        pool,
        name,
        service_type: service_type.to_string(),
        base_url,
        key_load_balance: String::new(),
        description,
        website: String::new(),
        insecure_skip_verify: false,
        model_mapping,
        response_header_timeout: None,
        priority: record.int("priority").unwrap_or(50),
        status,
        promotion_until: None,
        price_multipliers: BTreeMap::new(),
        credentials: Default::default(),
        quota_type,
        quota_limit,
        quota_reset_at,
        quota_reset_interval: quota_interval,
        quota_reset_unit: quota_unit,
        quota_reset_mode: String::new(),
        quota_models: Vec::new(),
        rate_limit_rpm: 0,
        queue_enabled: false,
        queue_timeout: None,
        composite_mappings: Vec::new(),
        // Set by the planner.
        position: 0,
        origin: ChannelOrigin::Import,
        version: 0,
        extra,
        stream_idle_timeout_seconds: None,
    };
    Ok(AccountPlan {
        crs_id: id.to_string(),
        platform,
        channel,
        api_keys,
        oauth_tokens: oauth,
        secrets,
        shared,
        created,
        notes,
    })
}

/// The first daily reset at `HH:mm` local time (UTC + `offset_minutes`) on the local day the
/// account was created, as RFC 3339 UTC: the anchor of a daily quota period.
fn daily_anchor(
    created: Option<time::OffsetDateTime>,
    reset: &str,
    offset_minutes: i32,
) -> Option<String> {
    let (hour, minute) = reset.split_once(':')?;
    let time =
        time::Time::from_hms(hour.trim().parse().ok()?, minute.trim().parse().ok()?, 0).ok()?;
    let offset = time::Duration::minutes(i64::from(offset_minutes));
    let local_day = created.map_or(
        time::Date::from_calendar_date(2024, time::Month::January, 1).ok()?,
        |c| (c + offset).date(),
    );
    let at = time::PrimitiveDateTime::new(local_day, time).assume_utc() - offset;
    at.format(&time::format_description::well_known::Rfc3339)
        .ok()
}

/// A token block with the snake_case names relaybox reads (`access_token`, `refresh_token`,
/// `expires_at`, `id_token`); other fields are kept as they are.
fn normalize_tokens(block: Option<&Map<String, Value>>) -> Map<String, Value> {
    let mut out = Map::new();
    let Some(block) = block else {
        return out;
    };
    for (field, value) in block {
        let name = match field.as_str() {
            "accessToken" => "access_token",
            "refreshToken" => "refresh_token",
            "expiresAt" => "expires_at",
            "idToken" => "id_token",
            other => other,
        };
        out.insert(name.to_string(), value.clone());
    }
    out
}
