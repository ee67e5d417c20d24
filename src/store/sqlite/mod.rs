//! The embedded store: one SQLite file in WAL mode (or an in-memory database for tests).
//!
//! Writes run in `BEGIN IMMEDIATE` transactions: they take SQLite's single write lock up front
//! and wait for it (`busy_timeout`) instead of failing half-way when another writer got there
//! first. Live-name uniqueness is a partial unique index, so the database, not a read-then-write
//! check, decides between two concurrent creates.

use async_trait::async_trait;
use sqlx::sqlite::{SqlitePool, SqliteRow};
use sqlx::{Sqlite, Transaction};

use super::{
    Attempt, AuditFilter, AuditHead, Census, ClusterFilter, IdempotencyRecord, OwnerUse, Page,
    Store, StoreError,
};
use crate::domain::{
    ApiToken, AuditCheckpoint, AuditRecord, Cluster, ClusterEvent, ClusterId, GatewayCredential,
    NewEvent, NewNotification, Notification, Phase, PrUpdate, PullRequest, StatusReport,
    StatusWant, Timestamp,
};

/// Page size when the caller asks for 0, and the largest page we hand out.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 500;
/// Takes the write lock at once, so a transaction never has to upgrade a read lock (which SQLite
/// refuses with `SQLITE_BUSY` without waiting).
const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";

/// Every column of `clusters` (rows are read by column name).
macro_rules! cluster_cols {
    () => {
        "id, created_ms, version, name, owner, team, phase, message, size, kubernetes_version, \
         ttl_secs, idle_timeout_secs, host, labels, ready_ms, expires_ms, last_activity_ms, \
         deleted_ms, endpoint, delete_reason, attempts, next_reconcile_ms, cleaned_up, \
         request_id"
    };
}

/// `SELECT <every cluster column> FROM clusters <tail>`, as one `&'static str` (what
/// `sqlx::query` takes without `AssertSqlSafe`).
macro_rules! select_clusters {
    ($tail:literal) => {
        concat!("SELECT ", cluster_cols!(), " FROM clusters ", $tail)
    };
}

type Query<'q> = sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments>;
type StoreResult<T> = Result<T, StoreError>;
type FromRow<T> = fn(&SqliteRow) -> StoreResult<T>;

/// [`Store`] on SQLite: `sqlite://<path>` for a file, `sqlite::memory:` for tests. The audit
/// log is a database of its own beside it ([`SqliteStore::audit_file`]).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// The audit log's database: its writes take their own lock, and leave the page caches of
    /// the cluster readers alone (a write to a file makes every other connection to it re-read
    /// its pages).
    audit: SqlitePool,
}

// === impl SqliteStore ===

impl SqliteStore {
    async fn begin_write(&self, doing: &str) -> Result<Transaction<'static, Sqlite>, StoreError> {
        self.pool.begin_with(BEGIN_WRITE).await.doing(doing)
    }

    /// Every row of `q`, converted by `from_row`.
    async fn all<T>(&self, q: Query<'_>, from_row: FromRow<T>, doing: &str) -> StoreResult<Vec<T>> {
        let rows = q.fetch_all(&self.pool).await.doing(doing)?;
        rows.iter().map(from_row).collect()
    }

    /// The row of `q`, if any, converted by `from_row`.
    async fn one<T>(
        &self,
        q: Query<'_>,
        from_row: FromRow<T>,
        doing: &str,
    ) -> StoreResult<Option<T>> {
        let row = q.fetch_optional(&self.pool).await.doing(doing)?;
        row.as_ref().map(from_row).transpose()
    }

    /// Run `q`; how many rows it changed.
    async fn exec(&self, q: Query<'_>, doing: &str) -> StoreResult<u64> {
        Ok(q.execute(&self.pool).await.doing(doing)?.rows_affected())
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.exec(sqlx::query("SELECT 1"), "ping").await.map(drop)
    }

    async fn insert_cluster(
        &self,
        cluster: &Cluster,
        event: &NewEvent,
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<(), StoreError> {
        self.insert_cluster_impl(cluster, event, idempotency).await
    }

    async fn get_cluster(&self, id: &ClusterId) -> Result<Option<Cluster>, StoreError> {
        let q = sqlx::query(select_clusters!("WHERE id = ?")).bind(id.as_str());
        self.one(q, cluster_from_row, "reading a cluster").await
    }

    async fn get_live_by_name(&self, name: &str) -> Result<Option<Cluster>, StoreError> {
        let q = sqlx::query(select_clusters!("WHERE name = ? AND phase <> 'Deleted'")).bind(name);
        self.one(q, cluster_from_row, "reading a cluster by name")
            .await
    }

    async fn update_cluster(
        &self,
        cluster: &Cluster,
        events: &[NewEvent],
    ) -> Result<Cluster, StoreError> {
        self.update_cluster_impl(cluster, events).await
    }

    async fn list_events(&self, id: &ClusterId) -> Result<Vec<ClusterEvent>, StoreError> {
        let sql = "SELECT id, cluster_id, at_ms, kind, from_phase, to_phase, reason, message \
                   FROM cluster_events WHERE cluster_id = ? ORDER BY id";
        let q = sqlx::query(sql).bind(id.as_str());
        self.all(q, event_from_row, "listing events").await
    }

    async fn due_clusters(
        &self,
        holder: &str,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<Cluster>, StoreError> {
        // NB: one process owns an SQLite store, so every claim here is its own and the filter
        // leaves nothing out; it is kept so the contract is the same on both backends.
        let sql = select_clusters!(
            "WHERE phase <> 'Deleted' AND NOT (phase = 'Failed' AND cleaned_up = 1) \
             AND next_reconcile_ms <= ?1 \
             AND NOT EXISTS (SELECT 1 FROM cluster_claims k WHERE k.cluster_id = clusters.id \
             AND k.holder <> ?3 AND k.until_ms >= ?1) \
             ORDER BY phase IN ('Deleting', 'Failed') DESC, next_reconcile_ms, id LIMIT ?2"
        );
        let q = sqlx::query(sql)
            .bind(now.as_millisecond())
            .bind(to_i64(limit)?)
            .bind(holder);
        self.all(q, cluster_from_row, "reading due clusters").await
    }

    async fn claim_cluster(
        &self,
        id: &ClusterId,
        holder: &str,
        until: Timestamp,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.claim_cluster_impl(id, holder, until, now).await
    }

    async fn release_claim(&self, id: &ClusterId, holder: &str) -> Result<(), StoreError> {
        self.release_claim_impl(id, holder).await
    }

    async fn placement_lock(&self) -> Result<crate::store::PlacementLock, StoreError> {
        // NB: one process owns an SQLite store; `ClusterService` serialises its placements.
        Ok(crate::store::PlacementLock::in_process())
    }

    async fn audit_lock(&self) -> Result<crate::store::PlacementLock, StoreError> {
        // NB: one process owns the store, and it has one audit writer.
        Ok(crate::store::PlacementLock::in_process())
    }

    async fn try_lead(
        &self,
        role: &str,
    ) -> Result<Option<Box<dyn crate::store::Leadership>>, StoreError> {
        let _ = role;
        Ok(Some(Box::new(crate::store::SoleProcess)))
    }

    async fn release_claims(&self, holder: &str) -> Result<u64, StoreError> {
        self.release_claims_impl(holder).await
    }

    async fn live_clusters(&self) -> Result<Vec<Cluster>, StoreError> {
        let sql = select_clusters!("WHERE phase <> 'Deleted' ORDER BY created_ms, id");
        self.all(sqlx::query(sql), cluster_from_row, "reading live clusters")
            .await
    }

    async fn get_idempotency(
        &self,
        principal: &str,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        let sql = "SELECT principal, key, request_hash, cluster_id FROM idempotency_keys \
                   WHERE principal = ? AND key = ?";
        let q = sqlx::query(sql).bind(principal).bind(key);
        self.one(q, idempotency_from_row, "reading an idempotency key")
            .await
    }

    async fn purge_ended(&self, before: Timestamp) -> Result<u64, StoreError> {
        self.purge_ended_impl(before).await
    }

    async fn installation_id(&self) -> Result<String, StoreError> {
        let q = sqlx::query("SELECT id FROM installation WHERE singleton = 1");
        let id = self
            .one(
                q,
                |row| get::<String>(row, "id"),
                "reading the installation id",
            )
            .await?;
        id.ok_or_else(|| StoreError::Unavailable("the store has no installation id".into()))
    }

    async fn list_clusters(&self, filter: &ClusterFilter) -> Result<Page<Cluster>, StoreError> {
        self.list_clusters_impl(filter).await
    }

    async fn insert_token(&self, token: &ApiToken) -> Result<(), StoreError> {
        self.insert_token_impl(token).await
    }

    async fn token_by_hash(&self, hash: &str) -> Result<Option<ApiToken>, StoreError> {
        self.token_by_hash_impl(hash).await
    }

    async fn list_tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        self.list_tokens_impl().await
    }

    async fn revoke_token(&self, id: &str, at: Timestamp) -> Result<(), StoreError> {
        self.revoke_token_impl(id, at).await
    }

    async fn token_used(&self, id: &str, at: Timestamp) -> Result<(), StoreError> {
        self.token_used_impl(id, at).await
    }

    async fn insert_gateway_credential(&self, c: &GatewayCredential) -> Result<(), StoreError> {
        self.insert_gateway_credential_impl(c).await
    }

    async fn gateway_credential_by_hash(
        &self,
        hash: &str,
    ) -> Result<Option<GatewayCredential>, StoreError> {
        self.gateway_credential_by_hash_impl(hash).await
    }

    async fn gateway_credentials_of(
        &self,
        cluster_id: &str,
    ) -> Result<Vec<GatewayCredential>, StoreError> {
        self.gateway_credentials_of_impl(cluster_id).await
    }

    async fn revoke_gateway_credentials(
        &self,
        cluster_id: &str,
        id: Option<&str>,
        at: Timestamp,
    ) -> Result<u64, StoreError> {
        self.revoke_gateway_credentials_impl(cluster_id, id, at)
            .await
    }

    async fn record_delivery(
        &self,
        provider: &str,
        delivery_id: &str,
        event: &str,
        update: Option<&PrUpdate>,
        now: Timestamp,
    ) -> Result<Option<bool>, StoreError> {
        self.record_delivery_impl(provider, delivery_id, event, update, now)
            .await
    }

    async fn pending_pull_requests(&self, limit: usize) -> Result<Vec<PullRequest>, StoreError> {
        self.pending_pull_requests_impl(limit).await
    }

    async fn get_pull_request(&self, key: &str) -> Result<Option<PullRequest>, StoreError> {
        self.get_pull_request_impl(key).await
    }

    async fn pull_request_done(
        &self,
        key: &str,
        generation: i64,
        cluster: Option<&ClusterId>,
    ) -> Result<(), StoreError> {
        self.pull_request_done_impl(key, generation, cluster).await
    }

    async fn purge_deliveries(&self, before: Timestamp) -> Result<u64, StoreError> {
        self.purge_deliveries_impl(before).await
    }

    async fn reportable_pull_requests(
        &self,
        changed_since: Timestamp,
        limit: usize,
    ) -> Result<Vec<PullRequest>, StoreError> {
        self.reportable_pull_requests_impl(changed_since, limit)
            .await
    }

    async fn want_status(&self, want: &StatusWant, now: Timestamp) -> Result<bool, StoreError> {
        self.want_status_impl(want, now).await
    }

    async fn due_statuses(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<StatusReport>, StoreError> {
        self.due_statuses_impl(now, limit).await
    }

    async fn status_reports(&self, pr_key: &str) -> Result<Vec<StatusReport>, StoreError> {
        self.status_reports_impl(pr_key).await
    }

    async fn status_attempted(
        &self,
        report: &StatusReport,
        attempt: Attempt<'_>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.status_attempted_impl(report, attempt, now).await
    }

    async fn purge_statuses(&self, before: Timestamp) -> Result<u64, StoreError> {
        self.purge_statuses_impl(before).await
    }

    async fn notify_cursor(&self) -> Result<i64, StoreError> {
        self.notify_cursor_impl().await
    }

    async fn set_notify_cursor(&self, event_id: i64) -> Result<(), StoreError> {
        self.set_notify_cursor_impl(event_id).await
    }

    async fn events_into(
        &self,
        phase: Phase,
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<ClusterEvent>, StoreError> {
        self.events_into_impl(phase, after_id, limit).await
    }

    async fn enqueue_notification(
        &self,
        alert: &NewNotification,
        now: Timestamp,
        repeat_since: Option<Timestamp>,
    ) -> Result<bool, StoreError> {
        self.enqueue_notification_impl(alert, now, repeat_since)
            .await
    }

    async fn due_notifications(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<Notification>, StoreError> {
        self.due_notifications_impl(now, limit).await
    }

    async fn notification_attempted(
        &self,
        id: i64,
        attempt: Attempt<'_>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.notification_attempted_impl(id, attempt, now).await
    }

    async fn purge_notifications(&self, before: Timestamp) -> Result<u64, StoreError> {
        self.purge_notifications_impl(before).await
    }

    async fn team_use(&self, team: &str) -> Result<Vec<OwnerUse>, StoreError> {
        self.team_use_impl(team).await
    }

    async fn owner_use(&self, owner: &str) -> Result<OwnerUse, StoreError> {
        self.owner_use_impl(owner).await
    }

    async fn census(&self) -> Result<Census, StoreError> {
        self.census_impl().await
    }

    async fn audit_head(&self) -> Result<Option<AuditHead>, StoreError> {
        self.audit_head_impl().await
    }

    async fn audit_append(&self, records: &[AuditRecord]) -> Result<(), StoreError> {
        self.audit_append_impl(records).await
    }

    async fn audit_list(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>, StoreError> {
        self.audit_list_impl(filter).await
    }

    async fn audit_checkpoint(&self) -> Result<Option<AuditCheckpoint>, StoreError> {
        self.audit_checkpoint_impl().await
    }

    async fn audit_last_before(
        &self,
        before: Timestamp,
    ) -> Result<Option<AuditRecord>, StoreError> {
        self.audit_last_before_impl(before).await
    }

    async fn audit_purge(&self, checkpoint: &AuditCheckpoint) -> Result<u64, StoreError> {
        self.audit_purge_impl(checkpoint).await
    }
}

mod audit;
mod credentials;
mod listing;
mod notifications;
mod open;
mod pull_requests;
mod rows;
mod status_reports;
mod writes;
use self::rows::*;

#[cfg(test)]
mod tests;
