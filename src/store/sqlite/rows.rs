//! Binding clusters and events, and sqlx errors → `StoreError`, on SQLite (rows → domain
//! values are shared with PostgreSQL: `crate::store::rows`).

use anyhow::Context as _;

use super::Query;
use crate::domain::{Cluster, ClusterId, DeleteReason, NewEvent, Phase};
use crate::store::StoreError;

/// Bind the columns an update may change, in the order of `cluster_cols!` after `version`.
pub(super) fn bind_mutable<'q>(q: Query<'q>, c: &Cluster) -> Result<Query<'q>, StoreError> {
    let labels = serde_json::to_string(&c.labels).context("encoding labels")?;
    Ok(q.bind(c.name.as_str())
        .bind(&c.owner)
        .bind(&c.team)
        .bind(c.phase.as_str())
        .bind(&c.message)
        .bind(&c.size)
        .bind(&c.kubernetes_version)
        .bind(to_i64(c.ttl.as_secs())?)
        .bind(c.idle_timeout.map(|t| to_i64(t.as_secs())).transpose()?)
        .bind(&c.host)
        .bind(labels)
        .bind(c.ready_at.map(|t| t.as_millisecond()))
        .bind(c.expires_at.as_millisecond())
        .bind(c.last_activity_at.as_millisecond())
        .bind(c.deleted_at.map(|t| t.as_millisecond()))
        .bind(&c.endpoint)
        .bind(c.delete_reason.map(DeleteReason::as_str))
        .bind(i64::from(c.attempts))
        .bind(c.next_reconcile_at.as_millisecond())
        .bind(c.cleaned_up)
        .bind(&c.request_id))
}

pub(super) async fn insert_event(
    tx: &mut sqlx::SqliteConnection,
    cluster: &ClusterId,
    e: &NewEvent,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO cluster_events (cluster_id, at_ms, kind, from_phase, to_phase, reason, message) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(cluster.as_str())
    .bind(e.at.as_millisecond())
    .bind(&e.kind)
    .bind(e.from_phase.map(Phase::as_str))
    .bind(e.to_phase.map(Phase::as_str))
    .bind(&e.reason)
    .bind(&e.message)
    .execute(tx)
    .await
    .doing("recording an event")?;
    Ok(())
}

pub(super) use crate::store::rows::{
    cluster_from_row, event_from_row, gateway_credential_from_row, get, idempotency_from_row,
    phase, to_i64, to_u64, token_from_row, ts,
};

// === errors ===

/// Attach what we were doing to a driver error and classify it.
pub(super) trait Doing<T> {
    fn doing(self, what: &str) -> Result<T, StoreError>;
}

impl<T> Doing<T> for Result<T, sqlx::Error> {
    fn doing(self, what: &str) -> Result<T, StoreError> {
        self.map_err(|e| db_err(e, what))
    }
}

/// What each uniqueness rule means, keyed by SQLite's `UNIQUE constraint failed: table.column`.
/// The messages start with the thing that is taken, which callers may show as is.
const UNIQUE_RULES: [(&str, &str); 5] = [
    ("clusters.name", "name is already used by a live cluster"),
    ("clusters.id", "cluster id already exists"),
    (
        "idempotency_keys.",
        "idempotency key was already used by this principal",
    ),
    ("api_tokens.hash", "token hash already exists"),
    ("api_tokens.id", "token id already exists"),
];

/// SQLite primary result codes that mean "try again later" rather than "this request is wrong":
/// BUSY, LOCKED, IOERR, FULL, CANTOPEN.
const TRANSIENT_CODES: [i32; 5] = [5, 6, 10, 13, 14];

pub(super) fn db_err(e: sqlx::Error, doing: &str) -> StoreError {
    let transient = match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => {
            let rule = UNIQUE_RULES
                .iter()
                .find(|(key, _)| d.message().contains(key));
            let meaning = rule.map_or("a uniqueness rule refused the write", |(_, m)| m);
            return StoreError::Conflict(format!("{meaning} ({doing})"));
        }
        // Extended result codes keep the primary code in the low byte.
        sqlx::Error::Database(d) => d
            .code()
            .and_then(|c| c.parse::<i32>().ok())
            .is_some_and(|c| TRANSIENT_CODES.contains(&(c & 0xff))),
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Io(_) => true,
        _ => false,
    };
    if transient {
        StoreError::Unavailable(format!("{doing}: {e}"))
    } else {
        StoreError::Other(anyhow::Error::new(e).context(doing.to_owned()))
    }
}
