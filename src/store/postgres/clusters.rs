//! Cluster records on PostgreSQL: reads, inserts, version-checked updates, their events, and
//! purges of ended ones.

use sqlx::postgres::PgRow;
use sqlx::{AssertSqlSafe, Postgres, Transaction};

use super::rows::{
    Doing as _, bind_mutable, cluster_from_row, event_from_row, get, idempotency_from_row, to_i64,
};
use super::{LOCK_EVENTS, LOCK_PLACEMENT, PostgresStore, StoreResult, lock};
use crate::domain::{Cluster, ClusterEvent, ClusterId, NewEvent, Phase, Timestamp};
use crate::store::{HeldLock, IdempotencyRecord, PlacementLock, StoreError};

// === impl PostgresStore ===

impl PostgresStore {
    pub(super) async fn insert_cluster_impl(
        &self,
        cluster: &Cluster,
        event: &NewEvent,
        idempotency: Option<&IdempotencyRecord>,
    ) -> StoreResult<()> {
        let doing = &format!("inserting cluster {}", cluster.name);
        let mut tx = self.begin(doing).await?;
        let sql = concat!(
            "INSERT INTO clusters (",
            cluster_cols!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14::jsonb, $15, \
             $16, $17, $18, $19, $20, $21, $22, $23, $24)"
        );
        let q = sqlx::query(sql)
            .bind(cluster.id.as_str())
            .bind(cluster.created_at.as_millisecond());
        let q = bind_mutable(q.bind(cluster.version), cluster)?;
        q.execute(&mut *tx).await.doing(doing)?;
        if let Some(rec) = idempotency {
            sqlx::query(
                "INSERT INTO idempotency_keys (principal, key, request_hash, cluster_id, \
                 created_ms) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&rec.principal)
            .bind(&rec.key)
            .bind(&rec.request_hash)
            .bind(rec.cluster_id.as_str())
            .bind(cluster.created_at.as_millisecond())
            .execute(&mut *tx)
            .await
            .doing(doing)?;
        }
        // NB: the event last, just before the commit: it takes the events lock.
        insert_events(&mut tx, &cluster.id, std::slice::from_ref(event)).await?;
        tx.commit().await.doing(doing)
    }

    pub(super) async fn update_cluster_impl(
        &self,
        cluster: &Cluster,
        events: &[NewEvent],
    ) -> StoreResult<Cluster> {
        let doing = &format!("updating cluster {}", cluster.id);
        let mut tx = self.begin(doing).await?;
        // NB: `id` and `created_at` are fixed at insert (the listing order must not move), so
        // they are not written here. A concurrent writer from the same version waits for this
        // row's lock, then finds `version` moved on and updates nothing. RETURNING hands back
        // exactly what was stored.
        let sql = concat!(
            "UPDATE clusters SET name = $1, owner = $2, team = $3, phase = $4, message = $5, \
             size = $6, kubernetes_version = $7, ttl_secs = $8, idle_timeout_secs = $9, \
             host = $10, labels = $11::jsonb, ready_ms = $12, expires_ms = $13, \
             last_activity_ms = $14, deleted_ms = $15, endpoint = $16, delete_reason = $17, \
             attempts = $18, next_reconcile_ms = $19, cleaned_up = $20, request_id = $21, \
             version = version + 1 WHERE id = $22 AND version = $23 RETURNING ",
            cluster_select_cols!()
        );
        let q = bind_mutable(sqlx::query(sql), cluster)?;
        let q = q.bind(cluster.id.as_str()).bind(cluster.version);
        let Some(row) = q.fetch_optional(&mut *tx).await.doing(doing)? else {
            let exists = sqlx::query("SELECT 1 FROM clusters WHERE id = $1")
                .bind(cluster.id.as_str())
                .fetch_optional(&mut *tx)
                .await
                .doing(doing)?;
            return Err(match exists {
                None => StoreError::NotFound,
                Some(_) => StoreError::Conflict(format!(
                    "cluster {} was changed concurrently (version {} is stale)",
                    cluster.id, cluster.version
                )),
            });
        };
        let updated = cluster_from_row(&row)?;
        insert_events(&mut tx, &cluster.id, events).await?;
        tx.commit().await.doing(doing)?;
        Ok(updated)
    }

    pub(super) async fn get_cluster_impl(&self, id: &ClusterId) -> StoreResult<Option<Cluster>> {
        let q = sqlx::query(select_clusters!("WHERE id = $1")).bind(id.as_str());
        self.one(q, cluster_from_row, "reading a cluster").await
    }

    pub(super) async fn get_live_by_name_impl(&self, name: &str) -> StoreResult<Option<Cluster>> {
        let q = sqlx::query(select_clusters!("WHERE name = $1 AND phase <> 'Deleted'")).bind(name);
        self.one(q, cluster_from_row, "reading a cluster by name")
            .await
    }

    pub(super) async fn list_events_impl(&self, id: &ClusterId) -> StoreResult<Vec<ClusterEvent>> {
        let sql = "SELECT id, cluster_id, at_ms, kind, from_phase, to_phase, reason, message \
                   FROM cluster_events WHERE cluster_id = $1 ORDER BY id";
        let q = sqlx::query(sql).bind(id.as_str());
        self.all(q, event_from_row, "listing events").await
    }

    pub(super) async fn due_clusters_impl(
        &self,
        holder: &str,
        now: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<Cluster>> {
        // NB: a claim another replica holds (until_ms >= now, as `claim_cluster` counts it) is
        // work that replica is doing: left out here, so this replica spends neither a claim
        // statement nor a slot of its batch on it. Two replicas may still read the same free
        // cluster at once; `claim_cluster` lets one of them have it.
        let sql = select_clusters!(
            "WHERE phase <> 'Deleted' AND NOT (phase = 'Failed' AND cleaned_up) \
             AND next_reconcile_ms <= $1 \
             AND NOT EXISTS (SELECT 1 FROM cluster_claims k WHERE k.cluster_id = clusters.id \
             AND k.holder <> $3 AND k.until_ms >= $1) \
             ORDER BY phase IN ('Deleting', 'Failed') DESC, next_reconcile_ms, id LIMIT $2"
        );
        let q = sqlx::query(sql)
            .bind(now.as_millisecond())
            .bind(to_i64(limit)?)
            .bind(holder);
        self.all(q, cluster_from_row, "reading due clusters").await
    }

    pub(super) async fn live_clusters_impl(&self) -> StoreResult<Vec<Cluster>> {
        let sql = select_clusters!("WHERE phase <> 'Deleted' ORDER BY created_ms, id");
        self.all(sqlx::query(sql), cluster_from_row, "reading live clusters")
            .await
    }

    pub(super) async fn get_idempotency_impl(
        &self,
        principal: &str,
        key: &str,
    ) -> StoreResult<Option<IdempotencyRecord>> {
        let sql = "SELECT principal, key, request_hash, cluster_id FROM idempotency_keys \
                   WHERE principal = $1 AND key = $2";
        let q = sqlx::query(sql).bind(principal).bind(key);
        self.one(q, idempotency_from_row, "reading an idempotency key")
            .await
    }

    pub(super) async fn installation_id_impl(&self) -> StoreResult<String> {
        let q = sqlx::query("SELECT id FROM installation WHERE singleton = 1");
        let id: Option<String> = self
            .one(
                q,
                |row: &PgRow| get(row, "id"),
                "reading the installation id",
            )
            .await?;
        id.ok_or_else(|| StoreError::Unavailable("the store has no installation id".into()))
    }

    pub(super) async fn claim_cluster_impl(
        &self,
        id: &ClusterId,
        holder: &str,
        until: Timestamp,
        now: Timestamp,
    ) -> StoreResult<bool> {
        // NB: one statement: two replicas inserting the same new claim meet on the primary
        // key, and the second then sees the first's committed row in the WHERE (read
        // committed re-checks it), so exactly one gets a row back.
        let sql = "INSERT INTO cluster_claims (cluster_id, holder, until_ms) VALUES ($1, $2, $3) \
                   ON CONFLICT (cluster_id) DO UPDATE SET holder = EXCLUDED.holder, \
                   until_ms = EXCLUDED.until_ms \
                   WHERE cluster_claims.holder = EXCLUDED.holder \
                   OR cluster_claims.until_ms < $4 RETURNING holder";
        let q = sqlx::query(sql)
            .bind(id.as_str())
            .bind(holder)
            .bind(until.as_millisecond())
            .bind(now.as_millisecond());
        let won = self
            .one(q, |_: &PgRow| Ok(()), "claiming a cluster")
            .await?;
        Ok(won.is_some())
    }

    pub(super) async fn release_claim_impl(&self, id: &ClusterId, holder: &str) -> StoreResult<()> {
        let q = sqlx::query("DELETE FROM cluster_claims WHERE cluster_id = $1 AND holder = $2")
            .bind(id.as_str())
            .bind(holder);
        self.exec(q, "releasing a cluster claim").await.map(drop)
    }

    pub(super) async fn release_claims_impl(&self, holder: &str) -> StoreResult<u64> {
        let q = sqlx::query("DELETE FROM cluster_claims WHERE holder = $1").bind(holder);
        self.exec(q, "releasing a replica's cluster claims").await
    }

    pub(super) async fn placement_lock_impl(&self) -> StoreResult<PlacementLock> {
        self.held_lock(LOCK_PLACEMENT, "placement", "taking the placement lock")
            .await
    }

    /// A transaction-level advisory lock `(class, key)`, held until the guard is released.
    pub(super) async fn held_lock(
        &self,
        class: i32,
        key: &str,
        doing: &str,
    ) -> StoreResult<PlacementLock> {
        let mut tx = self.begin(doing).await?;
        // NB: a replica stuck while holding the lock (its work under it takes milliseconds)
        // costs the others a 503 after this long, not a request hanging forever.
        sqlx::query("SET LOCAL lock_timeout = '10s'")
            .execute(&mut *tx)
            .await
            .doing(doing)?;
        lock(&mut tx, class, key, doing).await?;
        Ok(PlacementLock::held(Box::new(HeldTx(tx))))
    }

    pub(super) async fn purge_ended_impl(&self, before: Timestamp) -> StoreResult<u64> {
        const ENDED: &str = "(phase = 'Deleted' OR (phase = 'Failed' AND cleaned_up)) \
             AND COALESCE(deleted_ms, created_ms) < $1";
        let doing = "purging ended clusters";
        let mut tx = self.begin(doing).await?;
        // Children first; the last statement, on `clusters`, counts what was purged.
        let mut removed = 0;
        let tables = [
            ("cluster_events", "cluster_id"),
            ("idempotency_keys", "cluster_id"),
            ("gateway_credentials", "cluster_id"),
            ("cluster_claims", "cluster_id"),
        ];
        for (table, key) in tables.into_iter().chain([("clusters", "id")]) {
            let sql = format!(
                "DELETE FROM {table} WHERE {key} IN (SELECT id FROM clusters WHERE {ENDED})"
            );
            let q = sqlx::query(AssertSqlSafe(sql)).bind(before.as_millisecond());
            removed = q.execute(&mut *tx).await.doing(doing)?.rows_affected();
        }
        tx.commit().await.doing(doing)?;
        Ok(removed)
    }
}

/// The placement lock: a transaction-level advisory lock, so it ends with its transaction
/// whatever happens to this process (a crash, a dropped connection).
struct HeldTx(Transaction<'static, Postgres>);

#[async_trait::async_trait]
impl HeldLock for HeldTx {
    async fn release(self: Box<Self>) -> StoreResult<()> {
        self.0.commit().await.doing("releasing the placement lock")
    }
}

/// Record `events` of `cluster` in `tx`, which must commit right after.
///
/// NB: an identity column hands out ids in call order, but transactions commit in their own
/// order, so without a lock a reader could see event 11 before event 10 commits, and a cursor
/// moved past 11 would never see 10 (the notifier's, [`crate::store::Store::events_into`]).
/// Holding one lock from the insert to the commit makes ids visible in id order; the lock is
/// taken last in every transaction, so its holder waits for nothing but its commit.
async fn insert_events(
    tx: &mut Transaction<'static, Postgres>,
    cluster: &ClusterId,
    events: &[NewEvent],
) -> StoreResult<()> {
    let doing = "recording an event";
    if events.is_empty() {
        return Ok(());
    }
    lock(tx, LOCK_EVENTS, "cluster_events", doing).await?;
    for e in events {
        sqlx::query(
            "INSERT INTO cluster_events (cluster_id, at_ms, kind, from_phase, to_phase, reason, \
             message) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(cluster.as_str())
        .bind(e.at.as_millisecond())
        .bind(&e.kind)
        .bind(e.from_phase.map(Phase::as_str))
        .bind(e.to_phase.map(Phase::as_str))
        .bind(&e.reason)
        .bind(&e.message)
        .execute(&mut **tx)
        .await
        .doing(doing)?;
    }
    Ok(())
}
