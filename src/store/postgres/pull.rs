//! Reading the shared configuration: all of it, or what changed since a revision.

use tokio_postgres::IsolationLevel;

use super::commit::Kind;
use super::{PgStore, decode, pg_error};
use crate::domain::channel::Credentials;
use crate::domain::{Channel, ModelAliases, Settings};
use crate::store::{ConfigState, RecordWrite, StoreError, Table};

/// The head row: which cluster, at which revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub cluster_id: String,
    pub rev: u64,
    /// Tombstones below this revision may be gone: a copy applied before it must resync.
    pub min_rev: u64,
}

/// One record or tombstone as a pull returns it: the write that brings a local copy up to date
/// (`None` in a record write is a tombstone), and the revision that wrote it.
#[derive(Debug, Clone, PartialEq)]
pub struct PulledRecord {
    pub rev: u64,
    pub write: RecordWrite,
}

/// A page of changes after a revision, read in one snapshot.
#[derive(Debug, Clone)]
pub struct ChangePage {
    pub head: Head,
    /// In revision order; every revision in the page is complete.
    pub records: Vec<PulledRecord>,
    /// The revision a copy that applied `records` is at: the head when the page holds the rest,
    /// otherwise the last revision in the page.
    pub through: u64,
}

impl ChangePage {
    /// Whether more pages follow.
    #[must_use]
    pub fn has_more(&self) -> bool {
        self.through < self.head.rev
    }
}

/// Why a local copy cannot be brought up to date page by page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResyncReason {
    /// The copy belongs to another cluster (the database was re-created or replaced).
    OtherCluster { local: String, remote: String },
    /// PostgreSQL's revision is behind the copy: it was restored from an older backup.
    RevisionWentBack { applied: u64, head: u64 },
    /// Tombstones the copy has not seen may have been removed.
    TooOld { applied: u64, min_rev: u64 },
}

impl std::fmt::Display for ResyncReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ResyncReason::OtherCluster { local, remote } => write!(
                f,
                "the local copy belongs to cluster {local}, PostgreSQL holds cluster {remote}"
            ),
            ResyncReason::RevisionWentBack { applied, head } => write!(
                f,
                "PostgreSQL is at revision {head}, behind the local copy's {applied}: it was restored from an older backup; changes after that backup are gone"
            ),
            ResyncReason::TooOld { applied, min_rev } => write!(
                f,
                "the local copy (revision {applied}) is older than the oldest kept tombstone (revision {min_rev})"
            ),
        }
    }
}

impl Head {
    /// Whether a copy of cluster `cluster_id` at `applied` must be replaced whole rather than
    /// pulled page by page.
    #[must_use]
    pub fn resync_reason(&self, cluster_id: &str, applied: u64) -> Option<ResyncReason> {
        if cluster_id != self.cluster_id {
            return Some(ResyncReason::OtherCluster {
                local: cluster_id.to_string(),
                remote: self.cluster_id.clone(),
            });
        }
        if self.rev < applied {
            return Some(ResyncReason::RevisionWentBack {
                applied,
                head: self.rev,
            });
        }
        if applied < self.min_rev {
            return Some(ResyncReason::TooOld {
                applied,
                min_rev: self.min_rev,
            });
        }
        None
    }
}

fn to_u64(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

fn head_from(row: &tokio_postgres::Row) -> Head {
    Head {
        cluster_id: row.get(0),
        rev: to_u64(row.get(1)),
        min_rev: to_u64(row.get(2)),
    }
}

const HEAD: &str = "SELECT cluster_id::text, rev, min_rev FROM cfg_head WHERE singleton";

/// A row of `cfg_record` as the write it stands for (`None`: a kind this binary does not know,
/// written by a newer relaybox; it has nothing to apply it to).
fn pulled(kind: &str, id: String, body: Option<String>) -> Result<Option<RecordWrite>, StoreError> {
    fn typed<T: serde::de::DeserializeOwned>(
        kind: Kind,
        id: &str,
        body: Option<&str>,
    ) -> Result<Option<T>, StoreError> {
        body.map(|text| decode(kind.as_str(), id, text)).transpose()
    }
    let Some(kind) = Kind::parse(kind) else {
        return Ok(None);
    };
    let body = body.as_deref();
    Ok(Some(match kind {
        Kind::Key => RecordWrite::Key(id.clone(), typed(kind, &id, body)?),
        Kind::Channel => RecordWrite::Channel(id.clone(), typed(kind, &id, body)?),
        Kind::Credentials => RecordWrite::Credentials(id.clone(), typed(kind, &id, body)?),
        Kind::Price => RecordWrite::Price(id.clone(), typed(kind, &id, body)?),
        Kind::Aliases => {
            RecordWrite::Aliases(typed::<ModelAliases>(kind, &id, body)?.unwrap_or_default())
        }
        Kind::Settings => {
            RecordWrite::Settings(typed::<Settings>(kind, &id, body)?.unwrap_or_default())
        }
    }))
}

impl PgStore {
    /// The head row.
    pub async fn head(&self) -> Result<Head, StoreError> {
        let client = self.client().await?;
        let row = client.query_one(HEAD, &[]).await.map_err(pg_error)?;
        Ok(head_from(&row))
    }

    /// The whole configuration at one revision (a start or a full resync), with the head it
    /// was read at.
    pub async fn snapshot(&self) -> Result<(Head, ConfigState), StoreError> {
        let mut client = self.client().await?;
        let tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(pg_error)?;
        let head = head_from(&tx.query_one(HEAD, &[]).await.map_err(pg_error)?);
        let rows = tx
            .query(
                "SELECT kind, id, body::text FROM cfg_record WHERE NOT deleted ORDER BY kind, id",
                &[],
            )
            .await
            .map_err(pg_error)?;
        tx.commit().await.map_err(pg_error)?;
        let mut state = ConfigState {
            revision: head.rev,
            ..ConfigState::default()
        };
        let mut credentials: Vec<(String, Credentials)> = Vec::new();
        for row in rows {
            let write = pulled(row.get(0), row.get(1), row.get(2))?;
            match write {
                Some(RecordWrite::Key(id, Some(key))) => {
                    state.key_hashes.insert(key.hash.clone(), id.clone());
                    state.keys.insert(id, key);
                }
                Some(RecordWrite::Channel(id, Some(channel))) => {
                    state.channels.insert(id, channel);
                }
                Some(RecordWrite::Credentials(id, Some(secrets))) => {
                    credentials.push((id, secrets));
                }
                Some(RecordWrite::Price(model, Some(price))) => {
                    state.pricing.insert(model, price);
                }
                Some(RecordWrite::Aliases(aliases)) => state.aliases = aliases,
                Some(RecordWrite::Settings(settings)) => state.settings = settings,
                _ => {}
            }
        }
        attach_credentials(&mut state.channels, credentials);
        Ok((head, state))
    }

    pub(super) async fn load_async(&self) -> Result<ConfigState, StoreError> {
        Ok(self.snapshot().await?.1)
    }

    /// Records and tombstones written after revision `since`, in revision order: at most
    /// `limit` rows unless one revision alone holds more (a page never splits a revision).
    /// Check [`Head::resync_reason`] first: a page cannot repair a copy it names.
    pub async fn changes_since(&self, since: u64, limit: usize) -> Result<ChangePage, StoreError> {
        let mut client = self.client().await?;
        let tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(pg_error)?;
        let head = head_from(&tx.query_one(HEAD, &[]).await.map_err(pg_error)?);
        let since_i = i64::try_from(since).unwrap_or(i64::MAX);
        let limit_i = i64::try_from(limit.max(1)).unwrap_or(i64::MAX);
        // The revisions of the first row and of the first row past the limit: the page stops
        // before the latter, or takes that whole revision when it is the page's first.
        let bounds = tx
            .query_one(
                "SELECT (SELECT rev FROM cfg_record WHERE rev > $1 ORDER BY rev LIMIT 1),
                        (SELECT rev FROM cfg_record WHERE rev > $1 ORDER BY rev OFFSET $2 LIMIT 1)",
                &[&since_i, &limit_i],
            )
            .await
            .map_err(pg_error)?;
        let first: Option<i64> = bounds.get(0);
        let past: Option<i64> = bounds.get(1);
        let through = match (first, past) {
            (Some(first), Some(past)) if first < past => to_u64(past) - 1,
            (_, Some(past)) => to_u64(past),
            (_, None) => head.rev.max(since),
        };
        let rows = tx
            .query(
                "SELECT rev, kind, id, body::text FROM cfg_record WHERE rev > $1 AND rev <= $2
                 ORDER BY rev, kind, id",
                &[&since_i, &i64::try_from(through).unwrap_or(i64::MAX)],
            )
            .await
            .map_err(pg_error)?;
        tx.commit().await.map_err(pg_error)?;
        let mut records = Vec::with_capacity(rows.len());
        for row in rows {
            if let Some(write) = pulled(row.get(1), row.get(2), row.get(3))? {
                records.push(PulledRecord {
                    rev: to_u64(row.get(0)),
                    write,
                });
            }
        }
        Ok(ChangePage {
            head,
            records,
            through,
        })
    }
}

/// Each channel gets its credentials record (they are stored apart).
fn attach_credentials(channels: &mut Table<Channel>, credentials: Vec<(String, Credentials)>) {
    for (id, secrets) in credentials {
        if let Some(channel) = channels.get(&id) {
            let channel = Channel {
                credentials: secrets,
                ..channel.clone()
            };
            channels.insert(id, channel);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(rev: u64, min_rev: u64) -> Head {
        Head {
            cluster_id: "c1".into(),
            rev,
            min_rev,
        }
    }

    #[test]
    fn resync_when_the_cluster_changed_the_revision_went_back_or_the_copy_is_too_old() {
        assert_eq!(head(10, 0).resync_reason("c1", 4), None);
        assert_eq!(head(10, 0).resync_reason("c1", 10), None);
        assert_eq!(head(10, 4).resync_reason("c1", 4), None);
        assert_eq!(
            head(10, 0).resync_reason("c2", 4),
            Some(ResyncReason::OtherCluster {
                local: "c2".into(),
                remote: "c1".into()
            })
        );
        assert_eq!(
            head(3, 0).resync_reason("c1", 4),
            Some(ResyncReason::RevisionWentBack {
                applied: 4,
                head: 3
            })
        );
        assert_eq!(
            head(10, 5).resync_reason("c1", 4),
            Some(ResyncReason::TooOld {
                applied: 4,
                min_rev: 5
            })
        );
        let text = ResyncReason::RevisionWentBack {
            applied: 4,
            head: 3,
        }
        .to_string();
        assert!(text.contains("older backup"), "{text}");
    }
}
