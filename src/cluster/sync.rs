//! Keeping the local copy current: pull every [`POLL_INTERVAL`] regardless, at once when
//! PostgreSQL NOTIFYs a commit, and right after every LISTEN (re)connect — notifications sent
//! while the listener was away are gone, so the poll after a reconnect picks up what they said.

use std::future::poll_fn;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_postgres::AsyncMessage;
use tokio_postgres::tls::MakeTlsConnect;
use tokio_util::sync::CancellationToken;

use super::replica::Replica;
use crate::store::postgres::{NOTIFY_CHANNEL, Target};

/// Kong's and cc-bridge's default; NOTIFY makes it sooner.
pub const POLL_INTERVAL: Duration = Duration::from_secs(5);
/// Waits between LISTEN reconnects grow to this.
const MAX_LISTEN_BACKOFF: Duration = Duration::from_secs(30);

/// The pull loop and its listener (one supervised task).
pub struct ConfigSync {
    replica: Arc<Replica>,
    target: Target,
    interval: Duration,
}

impl ConfigSync {
    #[must_use]
    pub fn new(replica: Arc<Replica>, target: Target, interval: Duration) -> Self {
        Self {
            replica,
            target,
            interval,
        }
    }

    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let wake = Notify::new();
        // Polled alongside the waits; while a pull runs, notifications queue in its connection.
        let listener = listen(self.target.clone(), &wake, shutdown.clone());
        tokio::pin!(listener);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = &mut listener => break,
                () = wake.notified() => {}
                () = tokio::time::sleep(self.interval) => {}
            }
            let replica = Arc::clone(&self.replica);
            // Errors are kept in the replica's status (and logged once per outage there).
            let _ = crate::store::blocking(move || replica.sync()).await;
        }
        Ok(())
    }
}

/// LISTEN on a connection of its own, reconnecting with growing waits; every notification and
/// every (re)connect wakes the puller.
async fn listen(target: Target, wake: &Notify, shutdown: CancellationToken) {
    let mut backoff = Duration::from_millis(500);
    loop {
        let outcome = match target.rustls_config() {
            Ok(None) => listen_once(&target, tokio_postgres::NoTls, wake, &shutdown).await,
            Ok(Some(tls)) => {
                let tls = tokio_postgres_rustls::MakeRustlsConnect::new(tls);
                listen_once(&target, tls, wake, &shutdown).await
            }
            Err(err) => Err(err.to_string()),
        };
        if shutdown.is_cancelled() {
            return;
        }
        match outcome {
            Ok(()) => {
                tracing::debug!("the LISTEN connection to PostgreSQL ended; reconnecting");
                backoff = Duration::from_millis(500);
            }
            Err(error) => {
                tracing::debug!(%error, "LISTEN connection to PostgreSQL failed");
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_LISTEN_BACKOFF);
    }
}

/// One LISTEN connection, until it ends. `Ok` once it had been listening.
async fn listen_once<T>(
    target: &Target,
    tls: T,
    wake: &Notify,
    shutdown: &CancellationToken,
) -> Result<(), String>
where
    T: MakeTlsConnect<tokio_postgres::Socket>,
    T::Stream: Send + 'static,
{
    let (client, mut connection) = target
        .config
        .connect(tls)
        .await
        .map_err(|e| e.to_string())?;
    // The connection is driven here, beside the LISTEN statement and then alone: it delivers
    // the notifications.
    let statement = format!("LISTEN {NOTIFY_CHANNEL}");
    let listening = client.batch_execute(&statement);
    tokio::pin!(listening);
    loop {
        tokio::select! {
            done = &mut listening => {
                done.map_err(|e| e.to_string())?;
                break;
            }
            message = poll_fn(|cx| connection.poll_message(cx)) => match message {
                Some(Ok(_)) => {}
                Some(Err(err)) => return Err(err.to_string()),
                None => return Err("the connection closed".into()),
            },
        }
    }
    // What was committed while no one listened.
    wake.notify_one();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            message = poll_fn(|cx| connection.poll_message(cx)) => match message {
                Some(Ok(AsyncMessage::Notification(_))) => wake.notify_one(),
                Some(Ok(_)) => {}
                Some(Err(err)) => return Err(err.to_string()),
                None => return Ok(()),
            },
        }
    }
}
