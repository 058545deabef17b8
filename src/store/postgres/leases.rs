//! Leases for the cluster's singleton jobs, with fencing.
//!
//! A lease is a row (`leases`): its holder, until when (PostgreSQL's `now()`, never an
//! instance clock) and an epoch that grows with every new holder. [`PgStore::acquire_or_renew`]
//! takes a free or expired lease, or renews one's own, in one statement.
//!
//! Holding a lease is not enough to write safely: a holder can be paused (a stalled VM, a long
//! GC-like hiccup, a lost network) past its expiry while another instance took over. So work
//! under a lease writes through [`PgStore::fenced`]: one transaction that first locks the lease
//! row and checks that it is still this holder's, at this epoch, unexpired — and aborts
//! otherwise. The row stays locked until the transaction ends, so a takeover waits for it: a
//! fenced transaction and another holder's never overlap. A fenced transaction that idles longer
//! than the lease's time to live is ended by PostgreSQL, so a holder paused inside one cannot
//! keep the lease past its expiry either.
//!
//! Never a session advisory lock: it is lost with its connection without anyone noticing, and
//! breaks behind a transaction-mode pooler.

use std::time::Duration;

use futures_util::future::BoxFuture;

use super::{PgStore, pg_error};
use crate::store::StoreError;

/// A lease held by a holder at an epoch (the fencing token its writes carry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub name: String,
    pub holder: String,
    pub epoch: u64,
    /// Its time to live: a fenced transaction idle for longer is ended by PostgreSQL.
    pub ttl: Duration,
}

/// A lease as the table holds it (for status pages).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LeaseInfo {
    pub name: String,
    pub holder: String,
    pub epoch: u64,
    /// Milliseconds until it expires by PostgreSQL's clock (negative: expired).
    pub expires_in_ms: i64,
}

/// Why fenced work did not commit.
#[derive(Debug, thiserror::Error)]
pub enum FencedError {
    /// Another holder took the lease over (or it expired, or was released): nothing was
    /// written. The holder must stop the work and acquire the lease again.
    #[error(
        "the lease '{name}' is no longer held by {holder} at epoch {epoch}; nothing was written"
    )]
    Lost {
        name: String,
        holder: String,
        epoch: u64,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<tokio_postgres::Error> for FencedError {
    fn from(err: tokio_postgres::Error) -> Self {
        FencedError::Store(pg_error(err))
    }
}

/// What fenced work gets: the open transaction, with the lease row locked.
pub type FencedTx<'t> = deadpool_postgres::Transaction<'t>;

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

impl PgStore {
    /// Take the lease `name` for `holder` for `ttl` when it is free or expired, or renew it when
    /// `holder` has it. Returns the epoch it is held at, or `None` while another holder has it.
    /// A new holder (or one whose lease had expired) gets the next epoch; a renewal keeps it.
    pub async fn acquire_or_renew(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Option<Grant>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "INSERT INTO leases AS l (name, holder, epoch, expires_at, acquired_at)
                 VALUES ($1, $2, 1, now() + $3::bigint * interval '1 millisecond', now())
                 ON CONFLICT (name) DO UPDATE SET
                     epoch = CASE WHEN l.holder = excluded.holder AND l.expires_at > now()
                                  THEN l.epoch ELSE l.epoch + 1 END,
                     acquired_at = CASE WHEN l.holder = excluded.holder AND l.expires_at > now()
                                        THEN l.acquired_at ELSE now() END,
                     holder = excluded.holder,
                     expires_at = excluded.expires_at
                 WHERE l.expires_at <= now() OR l.holder = excluded.holder
                 RETURNING epoch",
                &[&name, &holder, &millis(ttl)],
            )
            .await
            .map_err(pg_error)?;
        Ok(row.map(|row| Grant {
            name: name.to_string(),
            holder: holder.to_string(),
            epoch: u64::try_from(row.get::<_, i64>(0)).unwrap_or(0),
            ttl,
        }))
    }

    /// Give the lease up at once (a clean stop), so another instance need not wait for it to
    /// expire. Does nothing unless `grant` is still the lease's holder and epoch; returns whether
    /// it did.
    pub async fn release(&self, grant: &Grant) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let released = client
            .execute(
                "UPDATE leases SET expires_at = '-infinity'
                 WHERE name = $1 AND holder = $2 AND epoch = $3",
                &[&grant.name, &grant.holder, &epoch_i64(grant.epoch)],
            )
            .await
            .map_err(pg_error)?;
        Ok(released > 0)
    }

    /// Every lease, by name.
    pub async fn leases(&self) -> Result<Vec<LeaseInfo>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT name, holder, epoch,
                        CASE WHEN expires_at = '-infinity' THEN -1
                             ELSE (extract(epoch FROM expires_at - now()) * 1000)::bigint END
                 FROM leases ORDER BY name",
                &[],
            )
            .await
            .map_err(pg_error)?;
        Ok(rows
            .iter()
            .map(|row| LeaseInfo {
                name: row.get(0),
                holder: row.get(1),
                epoch: u64::try_from(row.get::<_, i64>(2)).unwrap_or(0),
                expires_in_ms: row.get(3),
            })
            .collect())
    }

    /// Run `work` in one transaction that commits only while `grant` still holds its lease: the
    /// lease row is locked first and checked (`holder`, `epoch`, unexpired by PostgreSQL's
    /// clock); when another holder took over, nothing runs and [`FencedError::Lost`] is the
    /// answer. The row stays locked until commit, so no takeover happens meanwhile; a
    /// transaction idle for longer than the lease's time to live is ended by PostgreSQL (its
    /// writes are lost, never committed late). Errors from `work` roll everything back.
    pub async fn fenced<T, F>(&self, grant: &Grant, work: F) -> Result<T, FencedError>
    where
        F: for<'t> FnOnce(&'t FencedTx<'t>) -> BoxFuture<'t, Result<T, FencedError>>,
    {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // A holder paused inside this transaction must not keep the lease row locked (and so
        // the lease) for longer than its time to live.
        let ttl = millis(grant.ttl).max(1);
        tx.batch_execute(&format!(
            "SET LOCAL idle_in_transaction_session_timeout = {ttl}; SET LOCAL statement_timeout = {ttl}"
        ))
        .await?;
        let held = tx
            .query_opt(
                "SELECT 1 FROM leases
                 WHERE name = $1 AND holder = $2 AND epoch = $3 AND expires_at > now()
                 FOR UPDATE",
                &[&grant.name, &grant.holder, &epoch_i64(grant.epoch)],
            )
            .await?;
        if held.is_none() {
            return Err(FencedError::Lost {
                name: grant.name.clone(),
                holder: grant.holder.clone(),
                epoch: grant.epoch,
            });
        }
        let value = work(&tx).await?;
        tx.commit().await?;
        Ok(value)
    }
}

fn epoch_i64(epoch: u64) -> i64 {
    i64::try_from(epoch).unwrap_or(i64::MAX)
}
