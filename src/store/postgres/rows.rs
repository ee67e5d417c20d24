//! Binding clusters, and sqlx errors → `StoreError`, on PostgreSQL (rows → domain values are
//! shared with SQLite: `crate::store::rows`).

use anyhow::Context as _;

use super::Query;
use crate::domain::{Cluster, DeleteReason};
use crate::store::StoreError;

/// Bind the columns an update may change, in the order of `cluster_cols!` after `version`
/// (the labels as JSON text, which the SQL casts to `jsonb`).
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

/// What each uniqueness rule means, keyed by the name of the constraint or unique index
/// (`migrations/postgres`). The messages start with the thing that is taken, which callers may
/// show as is; they are the SQLite backend's.
const UNIQUE_RULES: [(&str, &str); 5] = [
    (
        "clusters_live_name",
        "name is already used by a live cluster",
    ),
    ("clusters_pkey", "cluster id already exists"),
    (
        "idempotency_keys_pkey",
        "idempotency key was already used by this principal",
    ),
    ("api_tokens_hash_key", "token hash already exists"),
    ("api_tokens_pkey", "token id already exists"),
];

/// SQLSTATEs that mean "try again later" rather than "this request is wrong": the server
/// shutting down, crashed or starting up (57P01-57P03), out of connection slots (53300), a
/// serialization failure or deadlock the next attempt will not meet (40001, 40P01), a lock
/// not granted within `lock_timeout` (55P03: another replica holds the placement lock too
/// long). Class 08 (connection exceptions) is matched as a class.
const TRANSIENT_STATES: [&str; 7] = [
    "57P01", "57P02", "57P03", "53300", "40001", "40P01", "55P03",
];

/// Map a driver error: a uniqueness violation (`23505`) to `Conflict`; a server that is
/// going away or unreachable, pool exhaustion and I/O to `Unavailable`; the rest to `Other`
/// with what we were doing.
pub(super) fn db_err(e: sqlx::Error, doing: &str) -> StoreError {
    let transient = match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => {
            let rule = d
                .constraint()
                .and_then(|c| UNIQUE_RULES.iter().find(|(name, _)| *name == c));
            let meaning = rule.map_or("a uniqueness rule refused the write", |(_, m)| m);
            return StoreError::Conflict(format!("{meaning} ({doing})"));
        }
        sqlx::Error::Database(d) => d
            .code()
            .is_some_and(|c| c.starts_with("08") || TRANSIENT_STATES.contains(&c.as_ref())),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_errors_are_unavailable_and_other_errors_are_not() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let cases = [
            (sqlx::Error::PoolTimedOut, true, "pool timeout"),
            (sqlx::Error::PoolClosed, true, "pool closed"),
            (sqlx::Error::Io(refused), true, "connection refused"),
            (sqlx::Error::RowNotFound, false, "a missing row is a bug"),
            (
                sqlx::Error::Protocol("garbage".into()),
                false,
                "a protocol error is not retried",
            ),
        ];
        for (e, unavailable, why) in cases {
            let got = db_err(e, "testing");
            assert_eq!(
                matches!(got, StoreError::Unavailable(_)),
                unavailable,
                "{why}: {got:?}"
            );
        }
    }
}
