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
        global = true
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
    /// Look at upstream channels (works with or without a running server on the data dir).
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

    /// Master secret that encrypts upstream keys at rest. Prefer the environment variable;
    /// when unset, a generated data/secret.key is used.
    #[arg(long, env = "RELAYBOX_ENCRYPTION_KEY", hide_env_values = true)]
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

    /// Admin key for the admin API. When unset, one is generated on first start and printed once.
    #[arg(long, env = "RELAYBOX_ADMIN_KEY", hide_env_values = true)]
    pub admin_key: Option<String>,

    /// How often the cc-bridge JSON files in the data dir are checked for changes, in milliseconds.
    #[arg(long, env = "RELAYBOX_POLL_INTERVAL_MS", default_value_t = 2000)]
    pub poll_interval_ms: u64,
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

#[derive(Debug, Args)]
pub struct HealthcheckArgs {
    /// The server's address (defaults to RELAYBOX_LISTEN).
    #[arg(long, env = "RELAYBOX_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
}

/// Every RELAYBOX_* variable relaybox reads; others are warned about (typos).
pub const KNOWN_ENV: &[&str] = &[
    "RELAYBOX_DATA_DIR",
    "RELAYBOX_LISTEN",
    "RELAYBOX_ENCRYPTION_KEY",
    "RELAYBOX_ADMIN_KEY",
    "RELAYBOX_LOG_FORMAT",
    "RELAYBOX_LOG_LEVEL",
    "RELAYBOX_POLL_INTERVAL_MS",
    "RELAYBOX_ALLOW_NETWORK_FS",
];

/// Names of `RELAYBOX_*` variables in `vars` that relaybox does not know.
pub fn unknown_env<I: IntoIterator<Item = String>>(vars: I) -> Vec<String> {
    vars.into_iter()
        .filter(|name| name.starts_with("RELAYBOX_"))
        .filter(|name| !KNOWN_ENV.contains(&name.as_str()) && !name.starts_with("RELAYBOX_TEST_"))
        .collect()
}

impl DataDirArgs {
    #[must_use]
    pub fn options(&self) -> crate::app::DataDirOptions {
        crate::app::DataDirOptions {
            path: self.data_dir.clone(),
            encryption_key: self.encryption_key.clone().filter(|k| !k.is_empty()),
            allow_network_fs: self.allow_network_fs,
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
        Command::Healthcheck(args) => healthcheck::run(args).await,
        Command::Keygen => {
            use std::io::Write as _;
            let key = crate::crypto::MasterSecret::generate_text()?;
            writeln!(std::io::stdout().lock(), "{}", key.as_str())?;
            Ok(std::process::ExitCode::SUCCESS)
        }
    }
}
