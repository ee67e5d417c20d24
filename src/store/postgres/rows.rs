//! Rows ↔ domain values, and sqlx errors → `StoreError`, on PostgreSQL.

use anyhow::Context as _;
use sqlx::Row as _;
use sqlx::postgres::PgRow;

use super::Query;
use crate::domain::{
    ApiToken, Cluster, ClusterEvent, ClusterId, ClusterName, DeleteReason, GatewayCredential,
    Labels, Phase, Principal, RepoGrant, Role, Timestamp, Ttl,
};
use crate::store::{IdempotencyRecord, StoreError};

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

pub(super) fn cluster_from_row(r: &PgRow) -> Result<Cluster, StoreError> {
    let labels: String = get(r, "labels")?;
    let ttl: i64 = get(r, "ttl_secs")?;
    let idle: Option<i64> = get(r, "idle_timeout_secs")?;
    let attempts: i64 = get(r, "attempts")?;
    let delete_reason: Option<String> = get(r, "delete_reason")?;
    Ok(Cluster {
        id: ClusterId::from_stored(get(r, "id")?),
        name: ClusterName::from_stored(get(r, "name")?),
        owner: get(r, "owner")?,
        team: get(r, "team")?,
        phase: phase(get(r, "phase")?)?,
        message: get(r, "message")?,
        size: get(r, "size")?,
        kubernetes_version: get(r, "kubernetes_version")?,
        ttl: Ttl::from_secs(to_u64(ttl)?),
        idle_timeout: idle.map(|s| to_u64(s).map(Ttl::from_secs)).transpose()?,
        host: get(r, "host")?,
        labels: serde_json::from_str::<Labels>(&labels).context("decoding stored labels")?,
        created_at: ts(get(r, "created_ms")?)?,
        ready_at: opt_ts(get(r, "ready_ms")?)?,
        expires_at: ts(get(r, "expires_ms")?)?,
        last_activity_at: ts(get(r, "last_activity_ms")?)?,
        deleted_at: opt_ts(get(r, "deleted_ms")?)?,
        endpoint: get(r, "endpoint")?,
        delete_reason: delete_reason
            .map(|s| {
                DeleteReason::parse(&s)
                    .with_context(|| format!("unknown stored delete reason {s:?}"))
            })
            .transpose()?,
        attempts: u32::try_from(attempts).context("stored attempts out of range")?,
        next_reconcile_at: ts(get(r, "next_reconcile_ms")?)?,
        cleaned_up: get(r, "cleaned_up")?,
        request_id: get(r, "request_id")?,
        version: get(r, "version")?,
    })
}

pub(super) fn event_from_row(r: &PgRow) -> Result<ClusterEvent, StoreError> {
    let from: Option<String> = get(r, "from_phase")?;
    let to: Option<String> = get(r, "to_phase")?;
    Ok(ClusterEvent {
        id: get(r, "id")?,
        cluster_id: ClusterId::from_stored(get(r, "cluster_id")?),
        at: ts(get(r, "at_ms")?)?,
        kind: get(r, "kind")?,
        from_phase: from.map(phase).transpose()?,
        to_phase: to.map(phase).transpose()?,
        reason: get(r, "reason")?,
        message: get(r, "message")?,
    })
}

pub(super) fn idempotency_from_row(r: &PgRow) -> Result<IdempotencyRecord, StoreError> {
    Ok(IdempotencyRecord {
        principal: get(r, "principal")?,
        key: get(r, "key")?,
        request_hash: get(r, "request_hash")?,
        cluster_id: ClusterId::from_stored(get(r, "cluster_id")?),
    })
}

pub(super) fn token_from_row(r: &PgRow) -> Result<ApiToken, StoreError> {
    Ok(ApiToken {
        id: get(r, "id")?,
        name: get(r, "name")?,
        hash: get(r, "hash")?,
        role: role(get(r, "role")?)?,
        team: get(r, "team")?,
        created_at: ts(get(r, "created_ms")?)?,
        expires_at: opt_ts(get(r, "expires_ms")?)?,
        revoked_at: opt_ts(get(r, "revoked_ms")?)?,
        last_used_at: opt_ts(get(r, "last_used_ms")?)?,
    })
}

pub(super) fn gateway_credential_from_row(r: &PgRow) -> Result<GatewayCredential, StoreError> {
    Ok(GatewayCredential {
        id: get(r, "id")?,
        hash: get(r, "hash")?,
        cluster_id: get(r, "cluster_id")?,
        principal: Principal {
            subject: get(r, "subject")?,
            display: get(r, "display")?,
            role: role(get(r, "role")?)?,
            team: get(r, "team")?,
            repository: repo_grant(get(r, "grant_label")?, get(r, "grant_value")?),
            // NB: a gateway credential's principal decides access, not policy: no claims kept.
            claims: None,
        },
        created_at: ts(get(r, "created_ms")?)?,
        expires_at: ts(get(r, "expires_ms")?)?,
        revoked_at: opt_ts(get(r, "revoked_ms")?)?,
    })
}

/// A stored repository grant (`repo` or `repo-id` and its value); anything else is none.
fn repo_grant(label: Option<String>, value: Option<String>) -> Option<RepoGrant> {
    let label = match label.as_deref()? {
        "repo" => "repo",
        "repo-id" => "repo-id",
        _ => return None,
    };
    Some(RepoGrant {
        label,
        value: value?,
    })
}

pub(super) fn get<'r, T>(r: &'r PgRow, col: &str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    r.try_get(col).doing("decoding a row")
}

pub(super) fn role(s: String) -> Result<Role, StoreError> {
    Role::parse(&s).ok_or_else(|| StoreError::Other(anyhow::anyhow!("unknown stored role {s:?}")))
}

pub(super) fn phase(s: String) -> Result<Phase, StoreError> {
    Phase::parse(&s).ok_or_else(|| StoreError::Other(anyhow::anyhow!("unknown stored phase {s:?}")))
}

pub(super) fn ts(ms: i64) -> Result<Timestamp, StoreError> {
    Timestamp::from_millisecond(ms)
        .with_context(|| format!("stored time {ms} ms is out of range"))
        .map_err(StoreError::Other)
}

pub(super) fn opt_ts(ms: Option<i64>) -> Result<Option<Timestamp>, StoreError> {
    ms.map(ts).transpose()
}

pub(super) fn to_i64<N: TryInto<i64> + Copy + std::fmt::Display>(n: N) -> Result<i64, StoreError> {
    n.try_into()
        .map_err(|_| StoreError::Other(anyhow::anyhow!("{n} does not fit in an i64")))
}

pub(super) fn to_u64(n: i64) -> Result<u64, StoreError> {
    u64::try_from(n).map_err(|_| StoreError::Other(anyhow::anyhow!("stored {n} is negative")))
}

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
