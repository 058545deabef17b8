//! The replicated commit: one transaction serialised on the head row.

use std::collections::HashMap;

use super::{NOTIFY_CHANNEL, PgStore, encode, pg_error};
use crate::store::{ConfigState, RecordWrite, StoreError};

/// What a change was planned against.
#[derive(Debug, Clone, Copy)]
pub enum Base<'a> {
    /// The store's state at revision `base` ([`crate::store::ConfigStore::commit`]): refused
    /// with [`StoreError::RevisionMoved`] unless the head is still there; the change becomes
    /// `revision`.
    Revision { base: u64, revision: u64 },
    /// An instance's local copy, which may be behind PostgreSQL: the head may have moved, but
    /// every record the change writes must still be at the version this copy holds (stale →
    /// [`StoreError::Conflict`]); key hashes and channel names are checked against
    /// PostgreSQL. The change becomes the next revision.
    Records(&'a ConfigState),
}

/// A record's kind in `cfg_record`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Kind {
    Key,
    Channel,
    Credentials,
    Price,
    Aliases,
    Settings,
}

impl Kind {
    pub(super) const ALL: [Kind; 6] = [
        Kind::Key,
        Kind::Channel,
        Kind::Credentials,
        Kind::Price,
        Kind::Aliases,
        Kind::Settings,
    ];

    pub(super) fn as_str(self) -> &'static str {
        match self {
            Kind::Key => "key",
            Kind::Channel => "channel",
            Kind::Credentials => "credentials",
            Kind::Price => "price",
            Kind::Aliases => "aliases",
            Kind::Settings => "settings",
        }
    }

    pub(super) fn parse(text: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|kind| kind.as_str() == text)
    }

    /// How the local store names it in its errors.
    fn label(self) -> &'static str {
        match self {
            Kind::Credentials => "credentials of channel",
            other => other.as_str(),
        }
    }
}

/// One row to write: a record (`body`) or a tombstone (`None`).
struct Row<'a> {
    kind: Kind,
    id: &'a str,
    version: u64,
    body: Option<String>,
}

fn row(write: &RecordWrite) -> Result<Option<Row<'_>>, StoreError> {
    fn put<'a, T: serde::Serialize>(
        kind: Kind,
        id: &'a str,
        record: Option<&T>,
        version: impl Fn(&T) -> u64,
    ) -> Result<Option<Row<'a>>, StoreError> {
        Ok(Some(Row {
            kind,
            id,
            version: record.map_or(0, &version),
            body: record.map(encode).transpose()?,
        }))
    }
    match write {
        RecordWrite::Key(id, key) => put(Kind::Key, id, key.as_ref(), |k| k.version),
        // Derived from the keys (each key's `hash`); not a record of its own here.
        RecordWrite::KeyHash(..) => Ok(None),
        RecordWrite::Channel(id, channel) => {
            put(Kind::Channel, id, channel.as_ref(), |c| c.version)
        }
        RecordWrite::Credentials(id, credentials) => {
            put(Kind::Credentials, id, credentials.as_ref(), |c| c.version)
        }
        RecordWrite::Price(model, price) => put(Kind::Price, model, price.as_ref(), |p| p.version),
        RecordWrite::Aliases(aliases) => {
            put(Kind::Aliases, "aliases", Some(aliases), |a| a.version)
        }
        RecordWrite::Settings(settings) => {
            put(Kind::Settings, "settings", Some(settings), |s| s.version)
        }
    }
}

/// The version `state` holds for a record (0: absent).
fn version_in(state: &ConfigState, kind: Kind, id: &str) -> u64 {
    match kind {
        Kind::Key => state.keys.get(id).map_or(0, |k| k.version),
        Kind::Channel => state.channels.get(id).map_or(0, |c| c.version),
        Kind::Credentials => state.channels.get(id).map_or(0, |c| c.credentials.version),
        Kind::Price => state.pricing.get(id).map_or(0, |p| p.version),
        Kind::Aliases => state.aliases.version,
        Kind::Settings => state.settings.version,
    }
}

fn stale(kind: Kind, id: &str, current: u64, expected: u64) -> StoreError {
    let label = kind.label();
    StoreError::Conflict(match (expected, current) {
        (0, _) => format!("{label} '{id}' already exists"),
        (_, 0) => format!("{label} '{id}' was deleted by someone else; reload and retry"),
        _ => format!(
            "{label} '{id}' was changed by someone else (version {current}, you sent {expected}); reload and retry"
        ),
    })
}

fn as_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl PgStore {
    /// Commit `writes` as one revision (see [`Base`]); returns that revision. Refused changes
    /// write nothing. When the connection breaks during the commit the outcome is unknown
    /// ([`StoreError::Unreachable`]): a pull tells whether the revision landed.
    pub async fn commit_records(
        &self,
        base: Base<'_>,
        writes: &[RecordWrite],
    ) -> Result<u64, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        // The head row's lock serialises writers until this transaction ends.
        let head = tx
            .query_one("SELECT rev FROM cfg_head WHERE singleton FOR UPDATE", &[])
            .await
            .map_err(pg_error)?;
        let found = u64::try_from(head.get::<_, i64>(0)).unwrap_or(0);
        let revision = match base {
            Base::Revision { base, revision } => {
                if found != base {
                    return Err(StoreError::RevisionMoved {
                        expected: base,
                        found,
                    });
                }
                if revision <= base {
                    return Err(StoreError::Backend(format!(
                        "a commit must move the revision forward ({base} → {revision})"
                    )));
                }
                revision
            }
            Base::Records(_) => found + 1,
        };
        let rev = as_i64(revision);
        let check_version = tx
            .prepare("SELECT version, deleted FROM cfg_record WHERE kind = $1 AND id = $2")
            .await
            .map_err(pg_error)?;
        let upsert = tx
            .prepare(
                "INSERT INTO cfg_record (kind, id, version, rev, deleted, body, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6::text::jsonb, now())
                 ON CONFLICT (kind, id) DO UPDATE SET version = excluded.version,
                     rev = excluded.rev, deleted = excluded.deleted, body = excluded.body,
                     updated_at = now()",
            )
            .await
            .map_err(pg_error)?;
        // Versions this transaction wrote: a record written twice in one change expects its
        // first write's version the second time.
        let mut written: HashMap<(Kind, &str), u64> = HashMap::new();
        for write in writes {
            let Some(row) = row(write)? else { continue };
            if let Base::Records(state) = base {
                let expected = written
                    .get(&(row.kind, row.id))
                    .copied()
                    .unwrap_or_else(|| version_in(state, row.kind, row.id));
                let current = tx
                    .query_opt(&check_version, &[&row.kind.as_str(), &row.id])
                    .await
                    .map_err(pg_error)?
                    .map_or(0, |r| {
                        if r.get::<_, bool>(1) {
                            0
                        } else {
                            u64::try_from(r.get::<_, i64>(0)).unwrap_or(0)
                        }
                    });
                if current != expected {
                    return Err(stale(row.kind, row.id, current, expected));
                }
                check_unique(&tx, write).await?;
            }
            tx.execute(
                &upsert,
                &[
                    &row.kind.as_str(),
                    &row.id,
                    &as_i64(row.version),
                    &rev,
                    &row.body.is_none(),
                    &row.body,
                ],
            )
            .await
            .map_err(pg_error)?;
            written.insert((row.kind, row.id), row.version);
        }
        tx.execute(
            "UPDATE cfg_head SET rev = $1, updated_at = now() WHERE singleton",
            &[&rev],
        )
        .await
        .map_err(pg_error)?;
        // Delivered at commit, never for a rolled-back change.
        tx.execute(
            "SELECT pg_notify($1, $2)",
            &[&NOTIFY_CHANNEL, &revision.to_string()],
        )
        .await
        .map_err(pg_error)?;
        tx.commit().await.map_err(pg_error)?;
        Ok(revision)
    }
}

/// The uniqueness rules of `ConfigState::apply_ops`, against PostgreSQL's records (a local
/// copy that is behind cannot see a key or channel created elsewhere).
async fn check_unique(
    tx: &deadpool_postgres::Transaction<'_>,
    write: &RecordWrite,
) -> Result<(), StoreError> {
    match write {
        RecordWrite::Key(id, Some(key)) => {
            let owner = tx
                .query_opt(
                    "SELECT id FROM cfg_record WHERE kind = 'key' AND NOT deleted
                       AND body ->> 'hash' = $1 AND id <> $2",
                    &[&key.hash, id],
                )
                .await
                .map_err(pg_error)?;
            if let Some(owner) = owner {
                return Err(StoreError::Conflict(format!(
                    "another key ('{}') already has this key's hash",
                    owner.get::<_, String>(0)
                )));
            }
        }
        RecordWrite::Channel(id, Some(channel)) => {
            let rows = tx
                .query(
                    "SELECT id, body ->> 'name' FROM cfg_record WHERE kind = 'channel'
                       AND NOT deleted AND body ->> 'pool' = $1 AND id <> $2",
                    &[&channel.pool.as_str(), id],
                )
                .await
                .map_err(pg_error)?;
            for row in rows {
                let name: String = row.get(1);
                if name.eq_ignore_ascii_case(&channel.name) {
                    return Err(StoreError::Conflict(format!(
                        "the {} pool already has a channel named '{}' (id {})",
                        channel.pool,
                        name,
                        row.get::<_, String>(0)
                    )));
                }
            }
        }
        _ => {}
    }
    Ok(())
}

impl PgStore {
    /// First start of a cluster: fill an empty PostgreSQL with `state` (an instance's local
    /// configuration), at `state`'s revision so the instance's copy needs no resync. Returns
    /// the head after seeding, or `None` (nothing written) when PostgreSQL is not empty — another
    /// instance seeded it first.
    pub async fn seed(&self, state: &ConfigState) -> Result<Option<super::Head>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        let head = tx
            .query_one(
                "SELECT cluster_id::text, rev, min_rev FROM cfg_head WHERE singleton FOR UPDATE",
                &[],
            )
            .await
            .map_err(pg_error)?;
        let rev: i64 = head.get(1);
        let populated: bool = tx
            .query_one("SELECT EXISTS (SELECT 1 FROM cfg_record)", &[])
            .await
            .map_err(pg_error)?
            .get(0);
        if rev != 0 || populated {
            return Ok(None);
        }
        let revision = as_i64(state.revision.max(1));
        let insert = tx
            .prepare(
                "INSERT INTO cfg_record (kind, id, version, rev, deleted, body)
                 VALUES ($1, $2, $3, $4, false, $5::text::jsonb)",
            )
            .await
            .map_err(pg_error)?;
        for write in state.all_writes() {
            let Some(row) = row(&write)? else { continue };
            tx.execute(
                &insert,
                &[
                    &row.kind.as_str(),
                    &row.id,
                    &as_i64(row.version),
                    &revision,
                    &row.body,
                ],
            )
            .await
            .map_err(pg_error)?;
        }
        tx.execute(
            "UPDATE cfg_head SET rev = $1, updated_at = now() WHERE singleton",
            &[&revision],
        )
        .await
        .map_err(pg_error)?;
        tx.execute(
            "SELECT pg_notify($1, $2)",
            &[&NOTIFY_CHANNEL, &revision.to_string()],
        )
        .await
        .map_err(pg_error)?;
        tx.commit().await.map_err(pg_error)?;
        Ok(Some(super::Head {
            cluster_id: head.get(0),
            rev: u64::try_from(revision).unwrap_or(0),
            min_rev: u64::try_from(head.get::<_, i64>(2)).unwrap_or(0),
        }))
    }
}
