//! Command-line definitions only (clap derive types). Each command runs in its own file.

pub mod channels;
pub mod healthcheck;
pub mod import;
pub mod keys;
pub mod remote;
pub mod serve;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// relaybox — a self-hosted LLM API relay in one binary.
///
/// Clients (Claude Code, Codex CLI, the anthropic/openai SDKs) talk to relaybox with a relaybox
/// key; relaybox forwards to your upstream channels and keeps keys, channels, pricing and request
/// logs in one data folder. Every flag has a RELAYBOX_* environment twin.
#[derive(Debug, Parser)]
#[command(name = "relaybox", version, propagate_version = true)]
pub struct Cli {
    /// Log format: `text` for people, `json` for log collectors.
    #[arg(
        long,
        env = "RELAYBOX_LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    pub log_format: LogFormat,

    /// Log filter, e.g. `info`, `debug`, or `relaybox=debug,info`.
    #[arg(
        long,
        env = "RELAYBOX_LOG_LEVEL",
        default_value = "info",
        global = true,
        value_parser = crate::telemetry::parse_log_filter
    )]
    pub log_level: String,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the relay and its admin API (creates the data dir on first start).
    Serve(ServeArgs),
    /// Manage client keys (works with or without a running server on the data dir).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Manage upstream channels (works with or without a running server on the data dir).
    #[command(subcommand)]
    Channels(ChannelsCommand),
    /// Import data from another relay.
    #[command(subcommand)]
    Import(ImportCommand),
    /// Exit 0 when the running server answers /health, 1 otherwise (for Docker HEALTHCHECK).
    Healthcheck(HealthcheckArgs),
    /// Print a new random encryption key (for RELAYBOX_ENCRYPTION_KEY).
    Keygen,
}

/// Where the data lives and how to unlock it; shared by every command that opens a data dir.
#[derive(Debug, Clone, Args)]
pub struct DataDirArgs {
    /// The data folder: relaybox.redb, logs.sqlite, secret.key and the optional cc-bridge JSON files.
    #[arg(long, env = "RELAYBOX_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// relaybox's master secret that encrypts upstream keys at rest. Prefer the environment
    /// variable; when unset, a generated data/secret.key is used.
    #[arg(
        long,
        env = "RELAYBOX_ENCRYPTION_KEY",
        hide_env_values = true,
        alias = "relaybox-encryption-key"
    )]
    pub encryption_key: Option<String>,

    /// Start even when the data dir is on a network or FUSE file system (e.g. Unraid /mnt/user).
    /// SQLite then runs in exclusive-locking mode. A local disk is strongly preferred.
    #[arg(long, env = "RELAYBOX_ALLOW_NETWORK_FS", default_value_t = false)]
    pub allow_network_fs: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub data: DataDirArgs,

    /// Address to listen on. Use 0.0.0.0:8080 to accept connections from other machines.
    #[arg(long, env = "RELAYBOX_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,

    /// Admin key for the admin API. When unset, one is generated on the first start that
    /// listens and printed once (`relaybox keys create --name NAME --admin` makes another).
    #[arg(long, env = "RELAYBOX_ADMIN_KEY", hide_env_values = true)]
    pub admin_key: Option<String>,

    /// How often the cc-bridge JSON files in the data dir are checked for changes, in milliseconds.
    /// On a local disk a change is also noticed at once through file-system events.
    #[arg(long, env = "RELAYBOX_POLL_INTERVAL_MS", default_value_t = 2000)]
    pub poll_interval_ms: u64,

    /// Notice config-file edits through file-system events (inotify) as well as by polling;
    /// `false` polls only.
    #[arg(long, env = "RELAYBOX_FILE_EVENTS", default_value_t = true, action = clap::ArgAction::Set)]
    pub file_events: bool,

    /// Seconds a client has to send a complete request head, counted from when the connection
    /// opens or its previous response ended (so it also closes idle keep-alive connections).
    #[arg(long, env = "RELAYBOX_HEADER_READ_TIMEOUT_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub header_read_timeout_secs: u64,

    /// Seconds a client has to send a whole request body; slower bodies get 408.
    #[arg(long, env = "RELAYBOX_BODY_READ_TIMEOUT_SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub body_read_timeout_secs: u64,

    /// Largest request head in KiB (start line and headers); larger ones get 431.
    #[arg(long, env = "RELAYBOX_MAX_HEADER_KIB", default_value_t = 64, value_parser = clap::value_parser!(u64).range(8..=1024))]
    pub max_header_kib: u64,

    /// HTTP/2 connections: a ping after this many idle seconds; no answer within as many
    /// seconds closes the connection.
    #[arg(long, env = "RELAYBOX_HTTP2_KEEP_ALIVE_SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub http2_keep_alive_secs: u64,

    /// On SIGTERM, seconds in-flight requests get to finish; then they end with an error in
    /// their protocol, their rows are written and relaybox exits 0 (keep below Docker's 30 s).
    #[arg(long, env = "RELAYBOX_SHUTDOWN_TIMEOUT_SECS", default_value_t = 25, value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub shutdown_timeout_secs: u64,

    /// Cluster mode: share keys, channels, settings, budgets and request logs with other
    /// relaybox instances through this PostgreSQL, as a libpq URL
    /// (`postgres://user:password@host:5432/db?sslmode=verify-full`; `sslmode=require` or
    /// `verify-full` use TLS, anything else plain text). Every instance keeps serving from its
    /// own data dir's copy when PostgreSQL is down. All instances need the same
    /// RELAYBOX_ENCRYPTION_KEY. See the README, "Cluster mode".
    #[arg(long, env = "RELAYBOX_POSTGRES_URL", hide_env_values = true, value_parser = PostgresUrl)]
    pub postgres_url: Option<crate::store::postgres::Target>,
}

/// Parses `--postgres-url` without echoing it in the error (it may hold a password).
#[derive(Debug, Clone, Copy)]
pub struct PostgresUrl;

impl clap::builder::TypedValueParser for PostgresUrl {
    type Value = crate::store::postgres::Target;

    fn parse_ref(
        &self,
        _cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<Self::Value, clap::Error> {
        let invalid = |message: String| {
            clap::Error::raw(clap::error::ErrorKind::ValueValidation, message + "\n")
        };
        let text = value
            .to_str()
            .ok_or_else(|| invalid("--postgres-url: not UTF-8".into()))?;
        crate::store::postgres::Target::parse(text).map_err(|err| invalid(err.to_string()))
    }
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a client key and print it once.
    Create(KeyCreateArgs),
    /// List client keys.
    List(ListArgs),
    /// Show one key (by id or name).
    Show(KeyRefArgs),
    /// Disable a key: requests with it are refused until it is enabled again.
    Disable(KeyRefArgs),
    /// Enable a disabled key.
    Enable(KeyRefArgs),
    /// Delete a key for good.
    Delete(KeyRefArgs),
    /// Change a key's limits, allowlists or expiry (only the flags given change).
    Update(KeyUpdateArgs),
    /// Show a key's current usage against its limits.
    Usage(KeyRefArgs),
}

/// Limits, allowlists and expiry of a key. A limit of 0 removes it.
#[derive(Debug, Clone, Default, Args)]
pub struct KeyLimitArgs {
    /// Requests per minute.
    #[arg(long, value_name = "N")]
    pub rpm: Option<u32>,
    /// Requests in flight at once.
    #[arg(long, value_name = "N")]
    pub concurrency: Option<u32>,
    /// Tokens per rolling window, e.g. `1000000/5h` (units s, m, h, d).
    #[arg(long, value_name = "N/WINDOW")]
    pub tokens_per_window: Option<String>,
    /// Requests per rolling window, e.g. `500/1d`.
    #[arg(long, value_name = "N/WINDOW")]
    pub requests_per_window: Option<String>,
    /// USD per rolling window, e.g. `5/7d`.
    #[arg(long, value_name = "USD/WINDOW")]
    pub cost_per_window: Option<String>,
    /// USD per calendar day (UTC).
    #[arg(long, value_name = "USD")]
    pub cost_per_day: Option<f64>,
    /// USD in total, ever.
    #[arg(long, value_name = "USD")]
    pub cost_total: Option<f64>,
    /// The key stops working at this time (RFC 3339, e.g. 2026-12-31T00:00:00Z); `never` clears it.
    #[arg(long, value_name = "TIME")]
    pub expires_at: Option<String>,
    /// The key stops working N days after its first use.
    #[arg(long, value_name = "DAYS")]
    pub expires_after_days: Option<u32>,
    /// Allowed models, comma-separated globs (`claude-*,gpt-5*`); empty = all.
    #[arg(long, value_name = "GLOBS")]
    pub models: Option<String>,
    /// Allowed endpoints, comma-separated: messages, responses, gemini, chat; empty = all.
    #[arg(long, value_name = "LIST")]
    pub endpoints: Option<String>,
    /// Allowed clients: comma-separated user-agent substrings (`claude-cli,codex`); empty = all.
    #[arg(long, value_name = "LIST")]
    pub user_agents: Option<String>,
}

#[derive(Debug, Args)]
pub struct KeyUpdateArgs {
    #[command(flatten)]
    pub data: DataDirArgs,
    /// The key's id (or its name, when unique).
    pub key: String,
    /// A new name.
    #[arg(long)]
    pub name: Option<String>,
    #[command(flatten)]
    pub limits: KeyLimitArgs,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct KeyCreateArgs {
    #[command(flatten)]
    pub data: DataDirArgs,
    /// A name to recognise the key by (e.g. who uses it).
    #[arg(long)]
    pub name: String,
    #[arg(long, default_value = "")]
    pub description: String,
    /// Make it an admin key (it can use the admin API).
    #[arg(long)]
    pub admin: bool,
    #[command(flatten)]
    pub limits: KeyLimitArgs,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct KeyRefArgs {
    #[command(flatten)]
    pub data: DataDirArgs,
    /// The key's id (or its name, when unique).
    pub key: String,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub data: DataDirArgs,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum ChannelsCommand {
    /// List upstream channels.
    List(ChannelListArgs),
    /// Show one channel (by id or name); upstream keys are masked.
    Show(ChannelRefArgs),
    /// Create a channel (checked like the admin API's POST /channels).
    Create(ChannelCreateArgs),
    /// Change a channel (only the flags given change).
    Update(ChannelUpdateArgs),
    /// Delete a channel for good.
    Delete(ChannelRefArgs),
    /// Route to a channel again.
    Enable(ChannelRefArgs),
    /// Stop routing to a channel (it is kept, on standby) until it is enabled again.
    Disable(ChannelRefArgs),
    /// Send one tiny request to the channel's upstream and print the status and latency.
    Test(ChannelTestArgs),
}

/// A channel's fields as flags; any other field with `--set FIELD=VALUE`.
#[derive(Debug, Clone, Default, Args)]
pub struct ChannelFieldArgs {
    /// A name to recognise the channel by.
    #[arg(long)]
    pub name: Option<String>,
    /// How to talk to the upstream: claude (messages pool), openai (chat), responses or
    /// openai-oauth (responses), gemini (gemini).
    #[arg(long, value_name = "TYPE")]
    pub service_type: Option<String>,
    /// The upstream's base URL, e.g. https://api.anthropic.com.
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
    /// An upstream API key; repeat for several (replaces the channel's keys). `-` reads them
    /// from stdin, one per line, which keeps them out of the shell history.
    #[arg(long = "api-key", value_name = "KEY")]
    pub api_keys: Vec<String>,
    /// Lower numbers are tried first.
    #[arg(long, allow_hyphen_values = true)]
    pub priority: Option<i64>,
    /// Send model FROM upstream as TO; repeat for several (replaces the channel's mapping).
    #[arg(long = "map-model", value_name = "FROM=TO")]
    pub model_mapping: Vec<String>,
    #[arg(long)]
    pub description: Option<String>,
    /// Any other channel field (as in the admin API), e.g. `rateLimitRpm=60` or
    /// `insecureSkipVerify=true`; the value is read as JSON, else as text. Repeatable.
    #[arg(long = "set", value_name = "FIELD=VALUE")]
    pub set: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ChannelCreateArgs {
    #[command(flatten)]
    pub data: DataDirArgs,
    /// The pool the channel serves: messages, responses, gemini or chat.
    #[arg(long)]
    pub pool: String,
    #[command(flatten)]
    pub fields: ChannelFieldArgs,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ChannelUpdateArgs {
    #[command(flatten)]
    pub data: DataDirArgs,
    /// The channel's id (or its name, when unique).
    pub channel: String,
    #[command(flatten)]
    pub fields: ChannelFieldArgs,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ChannelTestArgs {
    #[command(flatten)]
    pub data: DataDirArgs,
    /// The channel's id (or its name, when unique).
    pub channel: String,
    /// The model to ask for (the channel's modelMapping applies); default: a small model of
    /// the channel's provider.
    #[arg(long)]
    pub model: Option<String>,
    /// Seconds to wait for the whole answer.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub timeout_secs: u64,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ChannelListArgs {
    #[command(flatten)]
    pub data: DataDirArgs,
    /// Only this pool: messages, responses, gemini or chat.
    #[arg(long)]
    pub pool: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ChannelRefArgs {
    #[command(flatten)]
    pub data: DataDirArgs,
    /// The channel's id (or its name, when unique).
    pub channel: String,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Import a cc-bridge `.config/` folder: config.json, pricing.json, model-aliases.json,
    /// quota_usage.json and request_logs.db / cc-bridge.db (keys, request history, user aliases).
    CcBridge(CcBridgeArgs),
    /// Import a claude-relay-service deployment from its Redis (read-only) or a JSON dump of it:
    /// API keys (they keep working), accounts as channels (secrets re-encrypted), usage history.
    ClaudeRelayService(CrsArgs),
}

#[derive(Debug, Args)]
pub struct CcBridgeArgs {
    #[command(flatten)]
    pub data: DataDirArgs,
    /// The cc-bridge `.config` folder to read (it is never modified).
    pub dir: PathBuf,
    /// Show what would be imported without writing anything.
    #[arg(long)]
    pub dry_run: bool,
}

/// `relaybox import claude-relay-service`. `--crs-encryption-key` is claude-relay-service's
/// `ENCRYPTION_KEY`; `--encryption-key` is relaybox's own master secret, as in every command.
#[derive(Debug, Args)]
pub struct CrsArgs {
    /// The data folder to import into (the server must be stopped).
    #[command(flatten)]
    pub data: DataDirArgs,

    /// Read this Redis, e.g. redis://:PASSWORD@127.0.0.1:6379/0. Only read commands are sent
    /// (SCAN, TYPE, HGETALL, GET, SMEMBERS).
    #[arg(long, conflicts_with = "dump", required_unless_present = "dump")]
    pub redis_url: Option<String>,

    /// Read a JSON dump of claude-relay-service's Redis instead of a live Redis.
    #[arg(long)]
    pub dump: Option<PathBuf>,

    /// claude-relay-service's ENCRYPTION_KEY (its .env): decrypts the account secrets, and is
    /// the salt of its API-key hashes.
    #[arg(long, env = "CRS_ENCRYPTION_KEY", hide_env_values = true)]
    pub crs_encryption_key: String,

    /// claude-relay-service's TIMEZONE_OFFSET in hours: the time zone of its daily statistics.
    #[arg(long, default_value_t = 8.0, allow_hyphen_values = true)]
    pub timezone_offset: f64,

    /// A key (cr_…) the clients use, to verify the ENCRYPTION_KEY against the key hashes too.
    #[arg(long = "check-key", hide_env_values = true)]
    pub check_keys: Vec<String>,

    /// Show what would be imported without writing anything.
    #[arg(long)]
    pub dry_run: bool,

    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct HealthcheckArgs {
    /// The server's address (defaults to RELAYBOX_LISTEN).
    #[arg(long, env = "RELAYBOX_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
}

/// Names of `RELAYBOX_*` variables in `vars` that no flag of any command reads (typos).
pub fn unknown_env<I: IntoIterator<Item = String>>(vars: I) -> Vec<String> {
    let known = known_env();
    vars.into_iter()
        .filter(|name| name.starts_with("RELAYBOX_"))
        .filter(|name| !known.contains(name) && !name.starts_with("RELAYBOX_TEST_"))
        .collect()
}

/// Every environment variable a flag of some command reads, from the flags themselves (so a
/// new flag can never be reported as a typo).
fn known_env() -> std::collections::BTreeSet<String> {
    fn walk(command: &clap::Command, known: &mut std::collections::BTreeSet<String>) {
        for arg in command.get_arguments() {
            if let Some(name) = arg.get_env() {
                known.insert(name.to_string_lossy().into_owned());
            }
        }
        for sub in command.get_subcommands() {
            walk(sub, known);
        }
    }
    let mut known = std::collections::BTreeSet::new();
    walk(&<Cli as clap::CommandFactory>::command(), &mut known);
    known
}

impl DataDirArgs {
    #[must_use]
    pub fn options(&self) -> crate::app::DataDirOptions {
        crate::app::DataDirOptions {
            path: self.data_dir.clone(),
            encryption_key: self.encryption_key.clone().filter(|k| !k.is_empty()),
            allow_network_fs: self.allow_network_fs,
            cluster_keyring: None,
        }
    }
}

/// Run one command.
pub async fn run(command: Command) -> anyhow::Result<std::process::ExitCode> {
    match command {
        Command::Serve(args) => serve::run(args).await,
        Command::Keys(command) => keys::run(command).await,
        Command::Channels(command) => channels::run(command).await,
        Command::Import(ImportCommand::CcBridge(args)) => import::cc_bridge(args).await,
        Command::Import(ImportCommand::ClaudeRelayService(args)) => {
            import::claude_relay_service(args).await
        }
        Command::Healthcheck(args) => healthcheck::run(args).await,
        Command::Keygen => {
            use std::io::Write as _;
            let key = crate::crypto::MasterSecret::generate_text()?;
            writeln!(std::io::stdout().lock(), "{}", key.as_str())?;
            Ok(std::process::ExitCode::SUCCESS)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_flags_variable_is_known_and_typos_are_not() {
        let names = [
            "RELAYBOX_SHUTDOWN_TIMEOUT_SECS",
            "RELAYBOX_DATA_DIR",
            "RELAYBOX_LISTNE",
            "PATH",
        ]
        .map(String::from);
        assert_eq!(unknown_env(names), vec!["RELAYBOX_LISTNE".to_string()]);
    }
}
