//! Writes of cluster records on SQLite: inserts, optimistic updates, purges of ended ones.

use sqlx::AssertSqlSafe;

use super::rows::{Doing as _, bind_mutable, cluster_from_row, insert_event};
use super::{IdempotencyRecord, SqliteStore, StoreError};
use crate::domain::{Cluster, ClusterId, NewEvent, Timestamp};

// === impl SqliteStore ===

impl SqliteStore {
    pub(super) async fn insert_cluster_impl(
        &self,
        cluster: &Cluster,
        event: &NewEvent,
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<(), StoreError> {
        let doing = &format!("inserting cluster {}", cluster.name);
        let mut tx = self.begin_write(doing).await?;
        let sql = concat!(
            "INSERT INTO clusters (",
            cluster_cols!(),
            ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        );
        let q = sqlx::query(sql)
            .bind(cluster.id.as_str())
            .bind(cluster.created_at.as_millisecond());
        let q = bind_mutable(q.bind(cluster.version), cluster)?;
        q.execute(&mut *tx).await.doing(doing)?;
        insert_event(&mut tx, &cluster.id, event).await?;
        if let Some(rec) = idempotency {
            sqlx::query(
                "INSERT INTO idempotency_keys (principal, key, request_hash, cluster_id, created_ms) \
                 VALUES (?, ?, ?, ?, ?)",
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
        tx.commit().await.doing(doing)
    }

    pub(super) async fn update_cluster_impl(
        &self,
        cluster: &Cluster,
        events: &[NewEvent],
    ) -> Result<Cluster, StoreError> {
        let doing = &format!("updating cluster {}", cluster.id);
        let mut tx = self.begin_write(doing).await?;
        // NB: `id` and `created_at` are fixed at insert (the listing order must not move), so
        // they are not written here. RETURNING hands back exactly what was stored.
        let sql = concat!(
            "UPDATE clusters SET name = ?, owner = ?, team = ?, phase = ?, message = ?, size = ?, \
             kubernetes_version = ?, ttl_secs = ?, idle_timeout_secs = ?, host = ?, labels = ?, \
             ready_ms = ?, expires_ms = ?, last_activity_ms = ?, deleted_ms = ?, endpoint = ?, \
             delete_reason = ?, attempts = ?, next_reconcile_ms = ?, cleaned_up = ?, \
             request_id = ?, version = version + 1 WHERE id = ? AND version = ? RETURNING ",
            cluster_cols!()
        );
        let q = bind_mutable(sqlx::query(sql), cluster)?;
        let q = q.bind(cluster.id.as_str()).bind(cluster.version);
        let Some(row) = q.fetch_optional(&mut *tx).await.doing(doing)? else {
            let exists = sqlx::query("SELECT 1 FROM clusters WHERE id = ?")
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
        for event in events {
            insert_event(&mut tx, &cluster.id, event).await?;
        }
        tx.commit().await.doing(doing)?;
        Ok(updated)
    }

    pub(super) async fn claim_cluster_impl(
        &self,
        id: &ClusterId,
        holder: &str,
        until: Timestamp,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        // The same statement as on PostgreSQL; SQLite's single writer makes it atomic.
        let sql = "INSERT INTO cluster_claims (cluster_id, holder, until_ms) VALUES (?, ?, ?) \
                   ON CONFLICT (cluster_id) DO UPDATE SET holder = excluded.holder, \
                   until_ms = excluded.until_ms \
                   WHERE cluster_claims.holder = excluded.holder \
                   OR cluster_claims.until_ms < ? RETURNING holder";
        let q = sqlx::query(sql)
            .bind(id.as_str())
            .bind(holder)
            .bind(until.as_millisecond())
            .bind(now.as_millisecond());
        let won = self
            .one(
                q,
                |_: &sqlx::sqlite::SqliteRow| Ok(()),
                "claiming a cluster",
            )
            .await?;
        Ok(won.is_some())
    }

    pub(super) async fn release_claim_impl(
        &self,
        id: &ClusterId,
        holder: &str,
    ) -> Result<(), StoreError> {
        let q = sqlx::query("DELETE FROM cluster_claims WHERE cluster_id = ? AND holder = ?")
            .bind(id.as_str())
            .bind(holder);
        self.exec(q, "releasing a cluster claim").await.map(drop)
    }

    pub(super) async fn release_claims_impl(&self, holder: &str) -> Result<u64, StoreError> {
        let q = sqlx::query("DELETE FROM cluster_claims WHERE holder = ?").bind(holder);
        self.exec(q, "releasing a replica's cluster claims").await
    }

    pub(super) async fn purge_ended_impl(&self, before: Timestamp) -> Result<u64, StoreError> {
        const ENDED: &str = "(phase = 'Deleted' OR (phase = 'Failed' AND cleaned_up = 1)) \
             AND COALESCE(deleted_ms, created_ms) < ?";
        let doing = "purging ended clusters";
        let mut tx = self.begin_write(doing).await?;
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
