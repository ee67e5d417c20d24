//! Where state lives: one narrow async trait, backends chosen by URL at start-up, and one
//! conformance suite every backend passes.
//!
//! Every write that changes a cluster carries the version it read (`Cluster::version`); the store
//! refuses a stale one with [`StoreError::Conflict`], so a lost update is impossible. A cluster
//! and the events describing its change are written in one transaction.

mod cache;
#[cfg(any(test, feature = "testing"))]
pub mod conformance;
mod locks;
pub(crate) mod outage;
mod postgres;
mod rows;
mod sqlite;
mod types;
mod url;

use std::sync::Arc;

use async_trait::async_trait;

use crate::domain::{
    ApiToken, AuditCheckpoint, AuditRecord, Cluster, ClusterEvent, ClusterId, GatewayCredential,
    NewEvent, NewNotification, Notification, Phase, PrUpdate, PullRequest, StatusReport,
    StatusWant, Timestamp,
};

pub use cache::CachedStore;
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;
pub use url::redact_url;

pub use locks::{HeldLock, Leadership, PlacementLock, SoleProcess};
pub use types::{
    Attempt, AuditFilter, AuditHead, Census, CensusGroup, ClusterFilter, Cursor, IdempotencyRecord,
    OwnerUse, Page, Visibility,
};

/// What a store can fail with. Callers branch on `NotFound` and `Conflict`; everything else is
/// `Unavailable` (retry later) or `Other`.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No such record.
    #[error("not found")]
    NotFound,
    /// A uniqueness rule or a version check refused the write.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database cannot be reached or is locked; worth retrying.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Anything else.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// The storage contract. Implementations: [`SqliteStore`] (embedded, one writer) and
/// [`PostgresStore`] (shared by several replicas).
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Cheap liveness check (for `/readyz`).
    async fn ping(&self) -> Result<(), StoreError>;

    /// Insert a new cluster with its first event and, optionally, its idempotency key.
    /// `Conflict` if a live cluster has the same name or the key is taken.
    async fn insert_cluster(
        &self,
        cluster: &Cluster,
        event: &NewEvent,
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<(), StoreError>;

    /// One cluster by id.
    async fn get_cluster(&self, id: &ClusterId) -> Result<Option<Cluster>, StoreError>;

    /// The live (not `Deleted`) cluster with this name.
    async fn get_live_by_name(&self, name: &str) -> Result<Option<Cluster>, StoreError>;

    /// A page of clusters in (`created_at`, `id`) order.
    async fn list_clusters(&self, filter: &ClusterFilter) -> Result<Page<Cluster>, StoreError>;

    /// Write `cluster` if its stored version is still `cluster.version`, with `events`; returns
    /// the cluster with its new version. `Conflict` if someone else wrote first, `NotFound` if
    /// it is gone.
    async fn update_cluster(
        &self,
        cluster: &Cluster,
        events: &[NewEvent],
    ) -> Result<Cluster, StoreError>;

    /// Events of one cluster, oldest first.
    async fn list_events(&self, id: &ClusterId) -> Result<Vec<ClusterEvent>, StoreError>;

    /// Clusters the reconciler should look at now: not `Deleted`, not a cleaned-up `Failed`,
    /// and `next_reconcile_at <= now`; at most `limit`: teardown (`Deleting`, `Failed`) first,
    /// so deletions are never crowded out by overdue creates and health checks, then most
    /// overdue first. Clusters whose claim another holder than `holder` has and has not let run
    /// out by `now` ([`Store::claim_cluster`]) are left out: several replicas share the due
    /// work instead of each reading all of it and trying to claim every cluster at every poll.
    async fn due_clusters(
        &self,
        holder: &str,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<Cluster>, StoreError>;

    /// Claim cluster `id`'s reconcile step for `holder` until `until`: `true` if `holder` now
    /// holds it (it was free, its claim ran out before `now`, or `holder` held it already, in
    /// which case this renews it), `false` if another holder's claim is still running. One
    /// statement decides, so of several replicas claiming at once exactly one wins.
    async fn claim_cluster(
        &self,
        id: &ClusterId,
        holder: &str,
        until: Timestamp,
        now: Timestamp,
    ) -> Result<bool, StoreError>;

    /// Give up `holder`'s claim on `id`; nothing happens if it holds none.
    async fn release_claim(&self, id: &ClusterId, holder: &str) -> Result<(), StoreError>;

    /// Give up every claim `holder` has (a replica shutting down); returns how many.
    async fn release_claims(&self, holder: &str) -> Result<u64, StoreError>;

    /// Hold the placement lock until the returned guard is released (or dropped): among every
    /// process sharing this store, one at a time counts hosts' load and quotas and inserts the
    /// cluster it placed, so capacity is never over-committed across replicas. On SQLite, one
    /// process owns the store and serialises placement itself: the guard holds nothing.
    async fn placement_lock(&self) -> Result<PlacementLock, StoreError>;

    /// Hold the audit lock until the returned guard is released (or dropped): among every
    /// process sharing this store, one at a time reads the audit chain's head, links its
    /// records after it and appends them, so a replica's writer is never starved by others
    /// taking its place in the chain. On SQLite the guard holds nothing (one process, one
    /// writer).
    async fn audit_lock(&self) -> Result<PlacementLock, StoreError>;

    /// Try to become the one process running singleton worker `role` (the pruner, say) among
    /// every process sharing this store: `Some` while this process leads (until the
    /// [`Leadership`] is dropped or says it is lost), `None` if another leads now. On
    /// PostgreSQL a session-level advisory lock on a connection of its own: if that connection
    /// or this process dies, the lock is gone and another replica takes the role. On SQLite
    /// the one process owning the store always leads.
    async fn try_lead(&self, role: &str) -> Result<Option<Box<dyn Leadership>>, StoreError>;

    /// Every cluster that is not `Deleted` (for the sweeper and start-up adoption).
    async fn live_clusters(&self) -> Result<Vec<Cluster>, StoreError>;

    /// The idempotency record of `(principal, key)`.
    async fn get_idempotency(
        &self,
        principal: &str,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError>;

    /// Remove `Deleted` and `Failed` clusters (and their events and keys) that ended before
    /// `before`; returns how many.
    async fn purge_ended(&self, before: Timestamp) -> Result<u64, StoreError>;

    /// Store a token (hash only).
    async fn insert_token(&self, token: &ApiToken) -> Result<(), StoreError>;

    /// The token with this hash.
    async fn token_by_hash(&self, hash: &str) -> Result<Option<ApiToken>, StoreError>;

    /// Every token, newest first.
    async fn list_tokens(&self) -> Result<Vec<ApiToken>, StoreError>;

    /// Mark a token revoked; `NotFound` if there is no such id.
    async fn revoke_token(&self, id: &str, at: Timestamp) -> Result<(), StoreError>;

    /// Record that token `id` authenticated a request at `at` (a later time wins; an unknown
    /// id is not an error: the token may have been purged meanwhile).
    async fn token_used(&self, id: &str, at: Timestamp) -> Result<(), StoreError>;

    /// Store a gateway credential (hash only).
    async fn insert_gateway_credential(
        &self,
        credential: &GatewayCredential,
    ) -> Result<(), StoreError>;

    /// The gateway credential with this hash.
    async fn gateway_credential_by_hash(
        &self,
        hash: &str,
    ) -> Result<Option<GatewayCredential>, StoreError>;

    /// The gateway credentials of cluster `cluster_id`, newest first.
    async fn gateway_credentials_of(
        &self,
        cluster_id: &str,
    ) -> Result<Vec<GatewayCredential>, StoreError>;

    /// Revoke the gateway credentials of cluster `cluster_id` (only the one called `id` when
    /// given) that are not revoked yet; returns how many.
    async fn revoke_gateway_credentials(
        &self,
        cluster_id: &str,
        id: Option<&str>,
        at: Timestamp,
    ) -> Result<u64, StoreError>;

    /// This store's installation id (16 hex digits), made once when the store was created and
    /// never changed: what marks the host namespaces of this installation.
    async fn installation_id(&self) -> Result<String, StoreError>;

    /// Record webhook delivery `delivery_id` of `provider` at most once and, in the same
    /// transaction, what `update` changes of its pull request ([`PullRequest::next`]).
    /// `Ok(None)`: seen before, nothing done; `Ok(Some(changed))`: recorded.
    async fn record_delivery(
        &self,
        provider: &str,
        delivery_id: &str,
        event: &str,
        update: Option<&PrUpdate>,
        now: Timestamp,
    ) -> Result<Option<bool>, StoreError>;

    /// Pull requests with a change the engine has not carried out, least recently changed
    /// first.
    async fn pending_pull_requests(&self, limit: usize) -> Result<Vec<PullRequest>, StoreError>;

    /// Pull request `key`.
    async fn get_pull_request(&self, key: &str) -> Result<Option<PullRequest>, StoreError>;

    /// The engine carried out `generation` of pull request `key`; its cluster is `cluster`.
    async fn pull_request_done(
        &self,
        key: &str,
        generation: i64,
        cluster: Option<&ClusterId>,
    ) -> Result<(), StoreError>;

    /// Forget deliveries received before `before` (a redelivery after that is taken again).
    async fn purge_deliveries(&self, before: Timestamp) -> Result<u64, StoreError>;

    /// Open pull requests, and closed ones changed since `changed_since`: those whose
    /// commit status may still change. Most recently changed first.
    async fn reportable_pull_requests(
        &self,
        changed_since: Timestamp,
        limit: usize,
    ) -> Result<Vec<PullRequest>, StoreError>;

    /// Queue `want` in the status outbox, unless it is what its commit already wants; `true`
    /// when queued (a new `seq`, due at once).
    async fn want_status(&self, want: &StatusWant, now: Timestamp) -> Result<bool, StoreError>;

    /// Outbox entries whose latest state the provider has yet to take and whose next attempt
    /// is due at `now`, the longest waiting first.
    async fn due_statuses(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<StatusReport>, StoreError>;

    /// Every outbox entry of pull request `pr_key`.
    async fn status_reports(&self, pr_key: &str) -> Result<Vec<StatusReport>, StoreError>;

    /// How the attempt to send `report` (at its `seq`) went.
    async fn status_attempted(
        &self,
        report: &StatusReport,
        attempt: Attempt<'_>,
        now: Timestamp,
    ) -> Result<(), StoreError>;

    /// Forget outbox entries sent and unchanged since before `before`.
    async fn purge_statuses(&self, before: Timestamp) -> Result<u64, StoreError>;

    /// The alert notifier's place in the cluster events: the id of the last one it looked at.
    /// The first call starts it at the newest event, so turning notifications on does not
    /// report every failure the store remembers.
    async fn notify_cursor(&self) -> Result<i64, StoreError>;

    /// Move the notifier's place to event `event_id`.
    async fn set_notify_cursor(&self, event_id: i64) -> Result<(), StoreError>;

    /// Events that moved a cluster into `phase`, with ids above `after_id`, oldest first, at
    /// most `limit`. Ids become visible in order, whoever writes them: no event with an id at
    /// or below one returned appears later, so a cursor moved past what was read misses
    /// nothing.
    async fn events_into(
        &self,
        phase: Phase,
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<ClusterEvent>, StoreError>;

    /// Queue `alert` in the notification outbox, due at once, unless one with the same target
    /// and dedupe key is still queued or was queued at or after `repeat_since` (`None`: ever,
    /// while its row is kept); `true` when queued.
    async fn enqueue_notification(
        &self,
        alert: &NewNotification,
        now: Timestamp,
        repeat_since: Option<Timestamp>,
    ) -> Result<bool, StoreError>;

    /// Queued notifications whose next attempt is due at `now`, the longest waiting first.
    async fn due_notifications(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<Notification>, StoreError>;

    /// How the attempt to send notification `id` went (`Attempt::Sent`'s `check_run` is
    /// ignored).
    async fn notification_attempted(
        &self,
        id: i64,
        attempt: Attempt<'_>,
        now: Timestamp,
    ) -> Result<(), StoreError>;

    /// Forget notifications sent or given up on that were queued before `before`.
    async fn purge_notifications(&self, before: Timestamp) -> Result<u64, StoreError>;

    /// The live clusters (Pending, Provisioning, Ready) of team `team`, by owner.
    async fn team_use(&self, team: &str) -> Result<Vec<OwnerUse>, StoreError>;

    /// The live clusters of `owner`, whatever their team.
    async fn owner_use(&self, owner: &str) -> Result<OwnerUse, StoreError>;

    /// What `/metrics` states of the store: cluster records by phase, host, size and version,
    /// when the longest-waiting cluster of each waiting phase entered it, and the status
    /// reports and notifications not yet sent.
    async fn census(&self) -> Result<Census, StoreError>;

    /// The audit log's head: its last record, or the checkpoint when retention purged every
    /// record; `None` for a log never written.
    async fn audit_head(&self) -> Result<Option<AuditHead>, StoreError>;

    /// Append `records` (consecutive seqs after the head) in one transaction: all or none.
    async fn audit_append(&self, records: &[AuditRecord]) -> Result<(), StoreError>;

    /// Records matching `filter`, in its order, at most `filter.limit` (capped at 1000).
    async fn audit_list(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>, StoreError>;

    /// Where retention last cut the log, if it did.
    async fn audit_checkpoint(&self) -> Result<Option<AuditCheckpoint>, StoreError>;

    /// The last record written before `before`.
    async fn audit_last_before(&self, before: Timestamp)
    -> Result<Option<AuditRecord>, StoreError>;

    /// Delete the records up to `checkpoint.through_seq` and keep `checkpoint` in their place,
    /// in one transaction; returns how many were deleted.
    async fn audit_purge(&self, checkpoint: &AuditCheckpoint) -> Result<u64, StoreError>;
}

/// Open the store a URL names: `sqlite://<path>` (created if missing), `sqlite::memory:`, or
/// `postgres://user:password@host:5432/database` (also `postgresql://…`).
pub async fn open(url: &str) -> anyhow::Result<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        // The embedded store has exactly one writer, this process: reads can be cached.
        let sqlite: Arc<dyn Store> = Arc::new(SqliteStore::open(url).await?);
        Ok(Arc::new(CachedStore::new(sqlite)))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        // NB: never behind `CachedStore`: other replicas write to the same database, and a
        // cached read would miss their writes (a cluster deleted elsewhere, a revoked token).
        Ok(Arc::new(PostgresStore::open(url).await?))
    } else {
        anyhow::bail!(
            "unsupported store URL {:?}: use sqlite://<path> or postgres://<user>:<password>@<host>/<database>",
            redact_url(url)
        )
    }
}
