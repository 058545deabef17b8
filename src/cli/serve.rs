//! `relaybox serve`: check `--listen` → open (or create) the data dir → listen → make sure an
//! admin key exists (a new one is printed only now, once the port is ours) → serve until
//! SIGTERM/ctrl-c → drain and close.

use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use zeroize::Zeroizing;

use super::ServeArgs;
use crate::app::server::{App, ServerOptions};
use crate::app::{DataDir, Instance, StartupError};
use crate::config::services::{self, NewKey};
use crate::config::{Configuration, WriteError};
use crate::crypto;
use crate::domain::{ClientKey, KeyStatus, now};
use crate::http::connections::ConnectionLimits;
use crate::store::postgres::PgStore;
use crate::store::{ConfigOp, Expect, StoreError};

const ENV_ADMIN_KEY_ID: &str = "admin-env";
const MIN_ADMIN_KEY_LEN: usize = 20;

pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let addresses = listen_addresses(&args.listen).await?;
    let mut options = args.data.options();
    let cluster = match &args.postgres_url {
        Some(target) => {
            let pg = Arc::new(PgStore::new(target)?);
            options.cluster_keyring = cluster_keyring(&pg, &options.path).await?;
            Some(pg)
        }
        None => None,
    };
    let instance = crate::store::blocking(move || -> anyhow::Result<Instance> {
        let Some(pg) = cluster else {
            return Ok(Instance::load(DataDir::open(&options, "serve")?)?);
        };
        let data = DataDir::open(&options, "serve")?;
        match Instance::join(data, Arc::clone(&pg)) {
            // Two first instances at once: take the keyring the other one stored.
            Err(StartupError::KeyringRace(keyring)) => {
                options.cluster_keyring = Some(*keyring);
                let data = DataDir::open(&options, "serve")?;
                Ok(Instance::join(data, pg)?)
            }
            other => Ok(other?),
        }
    })
    .await?;
    let app = App::new(
        instance,
        &ServerOptions {
            poll_interval: Duration::from_millis(args.poll_interval_ms.max(100)),
            file_events: args.file_events,
            body_read_timeout: Duration::from_secs(args.body_read_timeout_secs),
            ..ServerOptions::default()
        },
    )?;
    let listener = TcpListener::bind(addresses.as_slice())
        .await
        .map_err(|err| bind_error(&args.listen, &err))?;
    let addr = listener.local_addr()?;
    // Only now, with the port ours: a start that cannot listen must not use up the one showing
    // of a new admin key.
    let new_admin_key = ensure_admin_key(&app.config, args.admin_key.as_deref())?;
    tracing::info!(data_dir = %app.data.path.display(), "relaybox listening on http://{addr}");
    if let Some((name, plaintext)) = new_admin_key {
        print_admin_banner(&name, &plaintext);
    }
    watch_sighup(&app);
    let limits = ConnectionLimits {
        header_read_timeout: Duration::from_secs(args.header_read_timeout_secs),
        max_header_bytes: usize::try_from(args.max_header_kib.saturating_mul(1024))
            .unwrap_or(usize::MAX),
        http2_keep_alive: Duration::from_secs(args.http2_keep_alive_secs),
        drain_timeout: Duration::from_secs(args.shutdown_timeout_secs),
    };
    crate::http::serve(app, listener, shutdown_signal(), limits).await?;
    Ok(ExitCode::SUCCESS)
}

/// Cluster mode, before the data dir opens: bring PostgreSQL's schema up to date and read the
/// cluster's keyring. PostgreSQL may start after relaybox (compose, a reboot): wait for it a
/// while — briefly when this data dir can serve its own copy meanwhile.
async fn cluster_keyring(
    pg: &PgStore,
    data_dir: &std::path::Path,
) -> anyhow::Result<Option<crate::crypto::KeyringRecord>> {
    let patience = if crate::app::is_data_dir(data_dir) {
        Duration::from_secs(10)
    } else {
        Duration::from_secs(60)
    };
    let started = std::time::Instant::now();
    let mut said = None::<std::time::Instant>;
    loop {
        let contact = async {
            pg.prepare().await?;
            pg.keyring_async().await
        };
        match contact.await {
            Ok(keyring) => return Ok(keyring),
            Err(StoreError::Unreachable(error)) if started.elapsed() < patience => {
                if said.is_none_or(|at| at.elapsed() >= Duration::from_secs(10)) {
                    tracing::warn!(%error, "waiting for PostgreSQL ({})", pg.target());
                    said = Some(std::time::Instant::now());
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            // Unreachable for too long: the join decides whether the local copy may serve.
            Err(StoreError::Unreachable(_)) => return Ok(None),
            Err(err) => return Err(err.into()),
        }
    }
}

/// `--listen` as socket addresses, or a sentence saying what is wrong with it. Checked before
/// the data dir is opened, so a typo creates nothing.
async fn listen_addresses(text: &str) -> anyhow::Result<Vec<SocketAddr>> {
    let text = text.trim();
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(vec![addr]);
    }
    let example = "e.g. 127.0.0.1:8080 (this machine only) or 0.0.0.0:8080 (every interface)";
    if let Ok(port) = text.parse::<u16>() {
        anyhow::bail!(
            "--listen '{text}' has no host: use 127.0.0.1:{port} (this machine only) or 0.0.0.0:{port} (every interface)"
        );
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        anyhow::bail!(
            "--listen '{text}' has no port: use {}",
            SocketAddr::new(ip, 8080)
        );
    }
    let Some((host, port)) = text.rsplit_once(':') else {
        anyhow::bail!("--listen '{text}' has no port: use HOST:PORT, {example}");
    };
    if port.parse::<u16>().is_err() {
        anyhow::bail!("--listen '{text}': '{port}' is not a port number (0 to 65535); {example}");
    }
    if host.is_empty() {
        anyhow::bail!("--listen '{text}' has no host: use HOST:PORT, {example}");
    }
    let resolved: Vec<SocketAddr> = tokio::net::lookup_host(text)
        .await
        .map_err(|err| {
            anyhow::anyhow!(
                "--listen '{text}': the host '{host}' cannot be resolved ({err}); {example}"
            )
        })?
        .collect();
    anyhow::ensure!(
        !resolved.is_empty(),
        "--listen '{text}': the host '{host}' has no address; {example}"
    );
    Ok(resolved)
}

/// Why the port could not be taken, in words that say what to do.
fn bind_error(listen: &str, err: &std::io::Error) -> anyhow::Error {
    use std::io::ErrorKind;
    let why = match err.kind() {
        ErrorKind::AddrInUse => "the address is in use: another program (or another relaybox) listens there. Stop it, or choose another port with --listen".to_string(),
        ErrorKind::AddrNotAvailable => "that IP address is not one of this machine's: use 127.0.0.1 (this machine only) or 0.0.0.0 (every interface)".to_string(),
        ErrorKind::PermissionDenied => "permission denied: ports below 1024 need root (or CAP_NET_BIND_SERVICE); choose a port from 1024 up".to_string(),
        _ => err.to_string(),
    };
    anyhow::anyhow!("cannot listen on {listen}: {why}")
}

/// The first-start banner: the new admin key, where it is shown and how to replace it.
fn print_admin_banner(name: &str, plaintext: &str) {
    let _ = writeln!(
        std::io::stderr().lock(),
        "\n  Admin key (shown only this once, here in the log of relaybox's first start; store it now):\n\n      {plaintext}\n\n  Use it as `Authorization: Bearer <key>` for /admin/api.\n  Lost it? `relaybox keys create --name NAME --admin` prints a new admin key (also while\n  the server runs; same --data-dir), then `relaybox keys disable {name}` retires this one.\n  Or set RELAYBOX_ADMIN_KEY to choose your own.\n"
    );
}

/// First start: create an admin key and return it, to be printed once. With
/// RELAYBOX_ADMIN_KEY: make sure that key is an admin key (changing the variable replaces the
/// previous one).
fn ensure_admin_key(
    config: &Configuration,
    from_env: Option<&str>,
) -> anyhow::Result<Option<(String, Zeroizing<String>)>> {
    if let Some(plaintext) = from_env.map(str::trim).filter(|k| !k.is_empty()) {
        anyhow::ensure!(
            plaintext.len() >= MIN_ADMIN_KEY_LEN,
            "RELAYBOX_ADMIN_KEY is too short: use at least {MIN_ADMIN_KEY_LEN} random characters (relaybox keygen prints one)"
        );
        let hash = crypto::hash_client_key(plaintext);
        let at = now();
        let key = ClientKey {
            id: ENV_ADMIN_KEY_ID.into(),
            name: "admin (RELAYBOX_ADMIN_KEY)".into(),
            description: String::new(),
            status: KeyStatus::Active,
            is_admin: true,
            hash,
            display_prefix: crypto::display_prefix(plaintext),
            legacy_hash: None,
            created_at: at,
            updated_at: at,
            expiry: None,
            first_used_at: None,
            limits: Default::default(),
            allow: Default::default(),
            version: 0,
            extra: Default::default(),
        };
        config.write(|committed| {
            let unchanged = committed
                .keys
                .get(ENV_ADMIN_KEY_ID)
                .is_some_and(|k| k.hash == key.hash);
            Ok::<_, WriteError>(if unchanged {
                Vec::new()
            } else {
                vec![ConfigOp::PutKey(key.clone(), Expect::Any)]
            })
        })?;
        return Ok(None);
    }
    let has_admin = config
        .snapshot()
        .state
        .keys
        .values()
        .any(|k| k.grants_admin(now()));
    if has_admin {
        return Ok(None);
    }
    // Key names are unique: a key already named "admin" (say, a disabled one) is left alone.
    let taken = |name: &str| {
        config
            .snapshot()
            .state
            .keys
            .values()
            .any(|k| k.name == name)
    };
    let name = std::iter::once("admin".to_string())
        .chain((2..).map(|n| format!("admin-{n}")))
        .find(|name| !taken(name))
        .unwrap_or_else(|| "admin".into());
    let (key, plaintext) = services::create_key(
        config,
        NewKey {
            name,
            is_admin: true,
            ..NewKey::default()
        },
    )?;
    Ok(Some((key.name, plaintext)))
}

fn watch_sighup(server: &Arc<App>) {
    let reloader = Arc::clone(&server.reloader);
    let shutdown = server.tasks.shutdown_token();
    server.tasks.spawn("sighup", async move {
        let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                _ = hangup.recv() => {
                    tracing::info!("SIGHUP: checking config files now");
                    reloader.wake();
                }
            }
        }
    });
}

async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}
