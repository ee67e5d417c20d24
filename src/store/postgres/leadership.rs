//! Singleton roles on PostgreSQL: a session-level advisory lock held on a connection taken out
//! of the pool, so the lock lives exactly as long as that session. A replica that dies, or
//! whose connection drops, loses it on the server's side, and another replica's next
//! `pg_try_advisory_lock` gets it.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::{Connection as _, PgConnection};

use super::rows::Doing as _;
use super::{LOCK_LEADER, PostgresStore, StoreResult};
use crate::store::Leadership;

/// How long the leader's liveness round trip may take before it counts as lost.
/// NB: well under the workers' intervals, so a replica cut off from the database stops
/// acting as leader before another one has waited long for the role.
const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

// === impl PostgresStore ===

impl PostgresStore {
    pub(super) async fn try_lead_impl(
        &self,
        role: &str,
    ) -> StoreResult<Option<Box<dyn Leadership>>> {
        let doing = "trying to lead a singleton role";
        // NB: detached from the pool: the lock must not outlive the role on a pooled
        // connection some request takes next.
        let mut conn = self.pool.acquire().await.doing(doing)?.detach();
        let won: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, hashtext($2))")
            .bind(LOCK_LEADER)
            .bind(role)
            .fetch_one(&mut conn)
            .await
            .doing(doing)?;
        if !won {
            let _ = conn.close().await;
            return Ok(None);
        }
        Ok(Some(Box::new(Held { conn: Some(conn) })))
    }
}

/// A held role: the session holding its lock.
struct Held {
    conn: Option<PgConnection>,
}

#[async_trait]
impl Leadership for Held {
    async fn still_leading(&mut self) -> bool {
        let Some(conn) = self.conn.as_mut() else {
            return false;
        };
        let ping = tokio::time::timeout(CHECK_TIMEOUT, sqlx::query("SELECT 1").execute(conn));
        if matches!(ping.await, Ok(Ok(_))) {
            return true;
        }
        // NB: closed (or dropped, which closes the socket) so the server ends the session
        // and frees the lock for another replica.
        if let Some(conn) = self.conn.take() {
            drop(tokio::time::timeout(CHECK_TIMEOUT, conn.close()).await);
        }
        false
    }
}
