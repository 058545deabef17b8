//! `relaybox serve`: open the data dir → make sure an admin key exists → start the server →
//! serve until SIGTERM/ctrl-c → drain and close.

use std::io::Write as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;

use super::ServeArgs;
use crate::app::server::{App, ServerOptions};
use crate::app::{DataDir, Instance};
use crate::config::services::{self, NewKey};
use crate::config::{Configuration, WriteError};
use crate::crypto;
use crate::domain::{ClientKey, KeyStatus, now};
use crate::http::connections::ConnectionLimits;
use crate::store::{ConfigOp, Expect};

const ENV_ADMIN_KEY_ID: &str = "admin-env";
const MIN_ADMIN_KEY_LEN: usize = 20;

pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let options = args.data.options();
    let instance = crate::store::blocking(move || -> anyhow::Result<Instance> {
        let data = DataDir::open(&options, "serve")?;
        Ok(Instance::load(data)?)
    })
    .await?;
    ensure_admin_key(&instance.config, args.admin_key.as_deref())?;
    let app = App::new(
        instance,
        &ServerOptions {
            poll_interval: Duration::from_millis(args.poll_interval_ms.max(100)),
            body_read_timeout: Duration::from_secs(args.body_read_timeout_secs),
            ..ServerOptions::default()
        },
    )?;
    let listener = TcpListener::bind(&args.listen).await.with_context(|| {
        format!(
            "cannot listen on {} (is another program using it? change --listen)",
            args.listen
        )
    })?;
    let addr = listener.local_addr()?;
    tracing::info!(data_dir = %app.data.path.display(), "relaybox listening on http://{addr}");
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

/// First start: create an admin key and print it once. With RELAYBOX_ADMIN_KEY: make sure that
/// key is an admin key (changing the variable replaces the previous one).
fn ensure_admin_key(config: &Configuration, from_env: Option<&str>) -> anyhow::Result<()> {
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
        return Ok(());
    }
    let has_admin = config
        .snapshot()
        .state
        .keys
        .values()
        .any(|k| k.grants_admin(now()));
    if has_admin {
        return Ok(());
    }
    let (_, plaintext) = services::create_key(
        config,
        NewKey {
            name: "admin".into(),
            is_admin: true,
            ..NewKey::default()
        },
    )?;
    let mut err = std::io::stderr().lock();
    let _ = writeln!(
        err,
        "\n  Admin key (shown once, store it now):\n\n      {}\n\n  Use it as `Authorization: Bearer <key>` for /admin/api, or set RELAYBOX_ADMIN_KEY to choose your own.\n",
        plaintext.as_str()
    );
    Ok(())
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
