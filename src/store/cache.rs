//! A read-through cache in front of a store that this process alone writes (the embedded SQLite
//! store): clusters by id, tokens by hash and listing pages are served from memory, and every
//! write through the cache updates or drops what it holds, so reads are never stale.
//!
//! NB: correct only with a single writer. SQLite is the embedded, single-replica store, so
//! `store::open` wraps it; a store shared by several replicas (PostgreSQL) must not be wrapped.
//! Measured effect: `docs/PERFORMANCE.md` (GET /v1/clusters/{id} throughput).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;

use super::{
    Attempt, AuditFilter, AuditHead, Census, ClusterFilter, IdempotencyRecord, OwnerUse, Page,
    Store, StoreError, Visibility,
};
use crate::domain::{
    ApiToken, AuditCheckpoint, AuditRecord, Cluster, ClusterEvent, ClusterId, GatewayCredential,
    NewEvent, NewNotification, Notification, Phase, PrUpdate, PullRequest, StatusReport,
    StatusWant, Timestamp,
};

/// Most listing pages kept at once; a new one beyond that drops them all. Listings repeat the
/// same few queries (the first page, a CI job's label filter), and a page of 500 clusters is
/// about half a megabyte.
const MAX_PAGES: usize = 16;

/// The caching wrapper.
pub struct CachedStore {
    inner: Arc<dyn Store>,
    clusters: RwLock<HashMap<ClusterId, Cluster>>,
    tokens: RwLock<HashMap<String, ApiToken>>,
    pages: RwLock<Pages>,
}

/// Listing pages by the filter that produced them. Any write to a cluster drops them all and
/// bumps `generation`: a listing that read the database before the write and finishes after it
/// sees another generation and does not keep its (possibly older) page.
#[derive(Default)]
struct Pages {
    generation: u64,
    by_filter: HashMap<PageKey, Page<Cluster>>,
}

/// Everything in a [`ClusterFilter`], hashable.
#[derive(PartialEq, Eq, Hash)]
struct PageKey {
    phase: Option<Phase>,
    owner: Option<String>,
    visible_to: Option<Visibility>,
    labels: Vec<(String, String)>,
    limit: usize,
    after: Option<(i64, String)>,
}

impl PageKey {
    fn of(f: &ClusterFilter) -> Self {
        Self {
            phase: f.phase,
            owner: f.owner.clone(),
            visible_to: f.visible_to.clone(),
            labels: f.labels.requirements().to_vec(),
            limit: f.limit,
            after: f.after.as_ref().map(|a| (a.created_ms, a.id.clone())),
        }
    }
}

impl std::fmt::Debug for CachedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedStore").finish_non_exhaustive()
    }
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

/// Cache `c` unless a newer version is cached already: a read that raced with a write must not
/// put back the older record.
fn remember(cache: &RwLock<HashMap<ClusterId, Cluster>>, c: &Cluster) {
    write(cache)
        .entry(c.id.clone())
        .and_modify(|held| {
            if c.version > held.version {
                *held = c.clone();
            }
        })
        .or_insert_with(|| c.clone());
}

// === impl CachedStore ===

impl CachedStore {
    /// Cache in front of `inner`, which nothing else may write.
    pub fn new(inner: Arc<dyn Store>) -> Self {
        Self {
            inner,
            clusters: RwLock::default(),
            tokens: RwLock::default(),
            pages: RwLock::default(),
        }
    }

    /// Drop every listing page: called after each cluster write, whatever its outcome (a
    /// failed commit may still have changed the database).
    fn forget_pages(&self) {
        let mut pages = write(&self.pages);
        pages.generation += 1;
        pages.by_filter.clear();
    }
}

#[async_trait]
impl Store for CachedStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }

    async fn insert_cluster(
        &self,
        cluster: &Cluster,
        event: &NewEvent,
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<(), StoreError> {
        let res = self.inner.insert_cluster(cluster, event, idempotency).await;
        self.forget_pages();
        res?;
        // NB: not cached here: the stored row may differ in precision from `cluster`.
        write(&self.clusters).remove(&cluster.id);
        Ok(())
    }

    async fn get_cluster(&self, id: &ClusterId) -> Result<Option<Cluster>, StoreError> {
        if let Some(c) = read(&self.clusters).get(id) {
            return Ok(Some(c.clone()));
        }
        let found = self.inner.get_cluster(id).await?;
        if let Some(c) = &found {
            remember(&self.clusters, c);
        }
        Ok(found)
    }

    async fn get_live_by_name(&self, name: &str) -> Result<Option<Cluster>, StoreError> {
        self.inner.get_live_by_name(name).await
    }

    async fn list_clusters(&self, filter: &ClusterFilter) -> Result<Page<Cluster>, StoreError> {
        let key = PageKey::of(filter);
        let generation = {
            let pages = read(&self.pages);
            if let Some(page) = pages.by_filter.get(&key) {
                return Ok(page.clone());
            }
            pages.generation
        };
        let page = self.inner.list_clusters(filter).await?;
        let mut pages = write(&self.pages);
        if pages.generation == generation {
            if pages.by_filter.len() >= MAX_PAGES {
                pages.by_filter.clear();
            }
            pages.by_filter.insert(key, page.clone());
        }
        Ok(page)
    }

    async fn update_cluster(
        &self,
        cluster: &Cluster,
        events: &[NewEvent],
    ) -> Result<Cluster, StoreError> {
        let res = self.inner.update_cluster(cluster, events).await;
        self.forget_pages();
        match res {
            Ok(updated) => {
                remember(&self.clusters, &updated);
                Ok(updated)
            }
            Err(e) => {
                write(&self.clusters).remove(&cluster.id);
                Err(e)
            }
        }
    }

    async fn list_events(&self, id: &ClusterId) -> Result<Vec<ClusterEvent>, StoreError> {
        self.inner.list_events(id).await
    }

    async fn due_clusters(
        &self,
        holder: &str,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<Cluster>, StoreError> {
        self.inner.due_clusters(holder, now, limit).await
    }

    async fn claim_cluster(
        &self,
        id: &ClusterId,
        holder: &str,
        until: Timestamp,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.inner.claim_cluster(id, holder, until, now).await
    }

    async fn release_claim(&self, id: &ClusterId, holder: &str) -> Result<(), StoreError> {
        self.inner.release_claim(id, holder).await
    }

    async fn placement_lock(&self) -> Result<crate::store::PlacementLock, StoreError> {
        self.inner.placement_lock().await
    }

    async fn audit_lock(&self) -> Result<crate::store::PlacementLock, StoreError> {
        self.inner.audit_lock().await
    }

    async fn try_lead(
        &self,
        role: &str,
    ) -> Result<Option<Box<dyn crate::store::Leadership>>, StoreError> {
        self.inner.try_lead(role).await
    }

    async fn release_claims(&self, holder: &str) -> Result<u64, StoreError> {
        self.inner.release_claims(holder).await
    }

    async fn live_clusters(&self) -> Result<Vec<Cluster>, StoreError> {
        self.inner.live_clusters().await
    }

    async fn get_idempotency(
        &self,
        principal: &str,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        self.inner.get_idempotency(principal, key).await
    }

    async fn purge_ended(&self, before: Timestamp) -> Result<u64, StoreError> {
        let res = self.inner.purge_ended(before).await;
        self.forget_pages();
        let n = res?;
        if n > 0 {
            write(&self.clusters).clear();
        }
        Ok(n)
    }

    async fn insert_token(&self, token: &ApiToken) -> Result<(), StoreError> {
        self.inner.insert_token(token).await
    }

    async fn token_by_hash(&self, hash: &str) -> Result<Option<ApiToken>, StoreError> {
        if let Some(t) = read(&self.tokens).get(hash) {
            return Ok(Some(t.clone()));
        }
        let found = self.inner.token_by_hash(hash).await?;
        if let Some(t) = &found {
            write(&self.tokens).insert(hash.to_owned(), t.clone());
        }
        Ok(found)
    }

    async fn list_tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        self.inner.list_tokens().await
    }

    async fn revoke_token(&self, id: &str, at: Timestamp) -> Result<(), StoreError> {
        let res = self.inner.revoke_token(id, at).await;
        write(&self.tokens).clear();
        res
    }

    async fn token_used(&self, id: &str, at: Timestamp) -> Result<(), StoreError> {
        let res = self.inner.token_used(id, at).await;
        write(&self.tokens).retain(|_, t| t.id != id);
        res
    }

    async fn insert_gateway_credential(&self, c: &GatewayCredential) -> Result<(), StoreError> {
        self.inner.insert_gateway_credential(c).await
    }

    // NB: gateway credentials are not cached here: revoking one must be seen at once (the
    // gateway keeps its own short-lived cache of what it checked).
    async fn gateway_credential_by_hash(
        &self,
        hash: &str,
    ) -> Result<Option<GatewayCredential>, StoreError> {
        self.inner.gateway_credential_by_hash(hash).await
    }

    async fn gateway_credentials_of(
        &self,
        cluster_id: &str,
    ) -> Result<Vec<GatewayCredential>, StoreError> {
        self.inner.gateway_credentials_of(cluster_id).await
    }

    async fn revoke_gateway_credentials(
        &self,
        cluster_id: &str,
        id: Option<&str>,
        at: Timestamp,
    ) -> Result<u64, StoreError> {
        self.inner
            .revoke_gateway_credentials(cluster_id, id, at)
            .await
    }

    async fn installation_id(&self) -> Result<String, StoreError> {
        self.inner.installation_id().await
    }

    async fn record_delivery(
        &self,
        provider: &str,
        delivery_id: &str,
        event: &str,
        update: Option<&PrUpdate>,
        now: Timestamp,
    ) -> Result<Option<bool>, StoreError> {
        self.inner
            .record_delivery(provider, delivery_id, event, update, now)
            .await
    }

    async fn pending_pull_requests(&self, limit: usize) -> Result<Vec<PullRequest>, StoreError> {
        self.inner.pending_pull_requests(limit).await
    }

    async fn get_pull_request(&self, key: &str) -> Result<Option<PullRequest>, StoreError> {
        self.inner.get_pull_request(key).await
    }

    async fn pull_request_done(
        &self,
        key: &str,
        generation: i64,
        cluster: Option<&ClusterId>,
    ) -> Result<(), StoreError> {
        self.inner.pull_request_done(key, generation, cluster).await
    }

    async fn purge_deliveries(&self, before: Timestamp) -> Result<u64, StoreError> {
        self.inner.purge_deliveries(before).await
    }

    async fn reportable_pull_requests(
        &self,
        changed_since: Timestamp,
        limit: usize,
    ) -> Result<Vec<PullRequest>, StoreError> {
        self.inner
            .reportable_pull_requests(changed_since, limit)
            .await
    }

    async fn want_status(&self, want: &StatusWant, now: Timestamp) -> Result<bool, StoreError> {
        self.inner.want_status(want, now).await
    }

    async fn due_statuses(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<StatusReport>, StoreError> {
        self.inner.due_statuses(now, limit).await
    }

    async fn status_reports(&self, pr_key: &str) -> Result<Vec<StatusReport>, StoreError> {
        self.inner.status_reports(pr_key).await
    }

    async fn status_attempted(
        &self,
        report: &StatusReport,
        attempt: Attempt<'_>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.inner.status_attempted(report, attempt, now).await
    }

    async fn purge_statuses(&self, before: Timestamp) -> Result<u64, StoreError> {
        self.inner.purge_statuses(before).await
    }

    async fn notify_cursor(&self) -> Result<i64, StoreError> {
        self.inner.notify_cursor().await
    }

    async fn set_notify_cursor(&self, event_id: i64) -> Result<(), StoreError> {
        self.inner.set_notify_cursor(event_id).await
    }

    async fn events_into(
        &self,
        phase: Phase,
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<ClusterEvent>, StoreError> {
        self.inner.events_into(phase, after_id, limit).await
    }

    async fn enqueue_notification(
        &self,
        alert: &NewNotification,
        now: Timestamp,
        repeat_since: Option<Timestamp>,
    ) -> Result<bool, StoreError> {
        self.inner
            .enqueue_notification(alert, now, repeat_since)
            .await
    }

    async fn due_notifications(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<Notification>, StoreError> {
        self.inner.due_notifications(now, limit).await
    }

    async fn notification_attempted(
        &self,
        id: i64,
        attempt: Attempt<'_>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.inner.notification_attempted(id, attempt, now).await
    }

    async fn purge_notifications(&self, before: Timestamp) -> Result<u64, StoreError> {
        self.inner.purge_notifications(before).await
    }

    async fn team_use(&self, team: &str) -> Result<Vec<OwnerUse>, StoreError> {
        self.inner.team_use(team).await
    }

    async fn owner_use(&self, owner: &str) -> Result<OwnerUse, StoreError> {
        self.inner.owner_use(owner).await
    }

    async fn census(&self) -> Result<Census, StoreError> {
        self.inner.census().await
    }

    async fn audit_head(&self) -> Result<Option<AuditHead>, StoreError> {
        self.inner.audit_head().await
    }

    async fn audit_append(&self, records: &[AuditRecord]) -> Result<(), StoreError> {
        self.inner.audit_append(records).await
    }

    async fn audit_list(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>, StoreError> {
        self.inner.audit_list(filter).await
    }

    async fn audit_checkpoint(&self) -> Result<Option<AuditCheckpoint>, StoreError> {
        self.inner.audit_checkpoint().await
    }

    async fn audit_last_before(
        &self,
        before: Timestamp,
    ) -> Result<Option<AuditRecord>, StoreError> {
        self.inner.audit_last_before(before).await
    }

    async fn audit_purge(&self, checkpoint: &AuditCheckpoint) -> Result<u64, StoreError> {
        self.inner.audit_purge(checkpoint).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SqliteStore;

    #[tokio::test]
    async fn the_cached_store_passes_the_store_conformance_suite() {
        crate::store::conformance::run_suite(|| async {
            let inner = SqliteStore::open("sqlite::memory:")
                .await
                .expect("memory store");
            Arc::new(CachedStore::new(Arc::new(inner))) as Arc<dyn Store>
        })
        .await;
    }
}
