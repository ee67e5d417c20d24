//! Stored rows → domain values, the same on every SQL backend (SQLite, PostgreSQL): each
//! backend's queries select the same column names with the same types (`i64` milliseconds,
//! text, booleans).

use anyhow::Context as _;
use sqlx::{ColumnIndex, Decode, Row, Type};

use crate::domain::{
    ApiToken, Cluster, ClusterEvent, ClusterId, ClusterName, DeleteReason, GatewayCredential,
    Labels, Phase, Principal, RepoGrant, Role, Timestamp, Ttl,
};
use crate::store::{IdempotencyRecord, StoreError};

/// A row whose column decodes to `T`.
pub(crate) trait Col<T> {
    fn col(&self, name: &str) -> Result<T, StoreError>;
}

impl<R, T> Col<T> for R
where
    R: Row,
    for<'c> &'c str: ColumnIndex<R>,
    for<'r> T: Decode<'r, R::Database> + Type<R::Database>,
{
    fn col(&self, name: &str) -> Result<T, StoreError> {
        self.try_get(name)
            .map_err(|e| StoreError::Other(anyhow::Error::new(e).context("decoding a row")))
    }
}

/// A row of either backend: its columns decode to the types stored records use.
pub(crate) trait Decoded:
    Col<String> + Col<Option<String>> + Col<i64> + Col<Option<i64>> + Col<bool>
{
}

impl<R> Decoded for R where
    R: Col<String> + Col<Option<String>> + Col<i64> + Col<Option<i64>> + Col<bool>
{
}

pub(crate) fn cluster_from_row(r: &impl Decoded) -> Result<Cluster, StoreError> {
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

pub(crate) fn event_from_row(r: &impl Decoded) -> Result<ClusterEvent, StoreError> {
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

pub(crate) fn idempotency_from_row(r: &impl Decoded) -> Result<IdempotencyRecord, StoreError> {
    Ok(IdempotencyRecord {
        principal: get(r, "principal")?,
        key: get(r, "key")?,
        request_hash: get(r, "request_hash")?,
        cluster_id: ClusterId::from_stored(get(r, "cluster_id")?),
    })
}

pub(crate) fn token_from_row(r: &impl Decoded) -> Result<ApiToken, StoreError> {
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

pub(crate) fn gateway_credential_from_row(
    r: &impl Decoded,
) -> Result<GatewayCredential, StoreError> {
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

/// Column `col` of `r`, decoded.
pub(crate) fn get<T>(r: &impl Col<T>, col: &str) -> Result<T, StoreError> {
    r.col(col)
}

pub(crate) fn role(s: String) -> Result<Role, StoreError> {
    Role::parse(&s).ok_or_else(|| StoreError::Other(anyhow::anyhow!("unknown stored role {s:?}")))
}

pub(crate) fn phase(s: String) -> Result<Phase, StoreError> {
    Phase::parse(&s).ok_or_else(|| StoreError::Other(anyhow::anyhow!("unknown stored phase {s:?}")))
}

pub(crate) fn ts(ms: i64) -> Result<Timestamp, StoreError> {
    Timestamp::from_millisecond(ms)
        .with_context(|| format!("stored time {ms} ms is out of range"))
        .map_err(StoreError::Other)
}

pub(crate) fn opt_ts(ms: Option<i64>) -> Result<Option<Timestamp>, StoreError> {
    ms.map(ts).transpose()
}

pub(crate) fn to_i64<N: TryInto<i64> + Copy + std::fmt::Display>(n: N) -> Result<i64, StoreError> {
    n.try_into()
        .map_err(|_| StoreError::Other(anyhow::anyhow!("{n} does not fit in an i64")))
}

pub(crate) fn to_u64(n: i64) -> Result<u64, StoreError> {
    u64::try_from(n).map_err(|_| StoreError::Other(anyhow::anyhow!("stored {n} is negative")))
}
