//! A read-through cache in front of a store that this process alone writes (the embedded SQLite
//! store): clusters by id and tokens by hash are served from memory, and every write through
//! the cache updates or drops what it holds, so reads are never stale.
//!
//! NB: correct only with a single writer. SQLite is the embedded, single-replica store, so
//! `store::open` wraps it; a store shared by several replicas (PostgreSQL) must not be wrapped.
//! Measured effect: `docs/PERFORMANCE.md` (GET /v1/clusters/{id} throughput).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;

use super::{ClusterFilter, IdempotencyRecord, Page, Store, StoreError};
use crate::domain::{ApiToken, Cluster, ClusterEvent, ClusterId, NewEvent, Timestamp};

/// The caching wrapper.
pub struct CachedStore {
    inner: Arc<dyn Store>,
    clusters: RwLock<HashMap<ClusterId, Cluster>>,
    tokens: RwLock<HashMap<String, ApiToken>>,
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
        }
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
        self.inner
            .insert_cluster(cluster, event, idempotency)
            .await?;
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
        self.inner.list_clusters(filter).await
    }

    async fn update_cluster(
        &self,
        cluster: &Cluster,
        events: &[NewEvent],
    ) -> Result<Cluster, StoreError> {
        match self.inner.update_cluster(cluster, events).await {
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

    async fn due_clusters(&self, now: Timestamp, limit: usize) -> Result<Vec<Cluster>, StoreError> {
        self.inner.due_clusters(now, limit).await
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
        let n = self.inner.purge_ended(before).await?;
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
