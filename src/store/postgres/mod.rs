//! The shared store: PostgreSQL, for several vcm replicas on one database.
//!
//! Every write is one statement or one short transaction at PostgreSQL's default isolation
//! (read committed); what would otherwise race between replicas is decided by the database:
//!
//! * a cluster's version check is `UPDATE … WHERE id = $1 AND version = $2`: a second writer
//!   from the same version waits for the first's row lock, then finds the version moved and
//!   changes nothing (`Conflict`);
//! * live-name, token and idempotency-key uniqueness are unique indexes (`23505` → `Conflict`);
//! * read-then-write steps on rows that may not exist yet (a pull request's next generation, a
//!   notification's dedupe check) hold a transaction-level advisory lock on their key;
//! * cluster events take one advisory lock from their insert to their commit, so event ids
//!   become visible in id order and the notifier's cursor ([`Store::events_into`]) never steps
//!   over an event committed late.
//!
//! Nothing is cached in this process: other replicas write to the same tables.

use std::str::FromStr as _;
use std::time::Duration;

use anyhow::Context as _;
use sqlx::postgres::{PgArguments, PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Postgres, Transaction};

use super::{StoreError, redact_url};

/// Every column of `clusters`, in the order inserts bind them.
macro_rules! cluster_cols {
    () => {
        "id, created_ms, version, name, owner, team, phase, message, size, kubernetes_version, \
         ttl_secs, idle_timeout_secs, host, labels, ready_ms, expires_ms, last_activity_ms, \
         deleted_ms, endpoint, delete_reason, attempts, next_reconcile_ms, cleaned_up, \
         request_id"
    };
}

/// Every column of `clusters` as rows are read (by name): the labels as JSON text.
macro_rules! cluster_select_cols {
    () => {
        "id, created_ms, version, name, owner, team, phase, message, size, kubernetes_version, \
         ttl_secs, idle_timeout_secs, host, labels::text AS labels, ready_ms, expires_ms, \
         last_activity_ms, deleted_ms, endpoint, delete_reason, attempts, next_reconcile_ms, \
         cleaned_up, request_id"
    };
}

/// `SELECT <every cluster column> FROM clusters <tail>`, as one `&'static str`.
macro_rules! select_clusters {
    ($tail:literal) => {
        concat!("SELECT ", cluster_select_cols!(), " FROM clusters ", $tail)
    };
}

mod audit;
mod clusters;
mod contract;
mod credentials;
mod leadership;
mod listing;
mod notifications;
mod pull_requests;
mod rows;
mod status_reports;

#[cfg(test)]
mod tests;

/// How long a caller waits for a pooled connection (or a new one, while the server refuses
/// them) before the store answers `Unavailable`: the HTTP layer turns that into a 503 with
/// `Retry-After`, which is better than a request hanging on a database that is down.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections per replica: the reconciler, the workers and request handlers share them.
const MAX_CONNECTIONS: u32 = 16;
/// Page size when the caller asks for 0, and the largest page we hand out.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 500;

/// Classes of the transaction-level advisory locks (`pg_advisory_xact_lock(class, key)`);
/// "vcm" in the high bytes keeps them apart from other users of the same database.
const LOCK_EVENTS: i32 = 0x7663_6d01;
const LOCK_PULL_REQUEST: i32 = 0x7663_6d02;
const LOCK_NOTIFICATION: i32 = 0x7663_6d03;
/// Placement: counting load and quotas and inserting the placed cluster, one replica at a time.
const LOCK_PLACEMENT: i32 = 0x7663_6d04;
/// Singleton roles (session-level: `pg_try_advisory_lock(LOCK_LEADER, hashtext(role))`).
const LOCK_LEADER: i32 = 0x7663_6d05;
/// Appending to the audit chain: reading its head, linking and inserting, one replica at a
/// time ([`crate::store::Store::audit_lock`]).
const LOCK_AUDIT: i32 = 0x7663_6d06;

type Query<'q> = sqlx::query::Query<'q, Postgres, PgArguments>;
type StoreResult<T> = Result<T, StoreError>;
type FromRow<T> = fn(&PgRow) -> StoreResult<T>;

use self::rows::Doing as _;

/// [`Store`](super::Store) on PostgreSQL: `postgres://user:password@host:5432/database` (or
/// `postgresql://…`; `?sslmode=require` for TLS, `?host=/run/postgresql` for a unix socket).
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

// === impl PostgresStore ===

impl PostgresStore {
    /// Connect to the database at `url` and bring its schema up to date. Several replicas may
    /// do this at once: the migrator holds an advisory lock while it runs.
    pub async fn open(url: &str) -> anyhow::Result<Self> {
        // NB: errors name the URL without its password.
        let shown = redact_url(url);
        let opts = PgConnectOptions::from_str(url)
            .with_context(|| format!("parsing PostgreSQL URL {shown:?}"))?;
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            // A connection the server dropped (a restart, a failover) is found out before a
            // caller gets it, and replaced.
            .test_before_acquire(true)
            .connect_with(opts)
            .await
            .with_context(|| format!("connecting to PostgreSQL at {shown:?}"))?;
        sqlx::migrate!("./migrations/postgres")
            .run(&pool)
            .await
            .with_context(|| format!("running PostgreSQL migrations on {shown:?}"))?;
        Ok(Self { pool })
    }

    async fn begin(&self, doing: &str) -> StoreResult<Transaction<'static, Postgres>> {
        self.pool.begin().await.doing(doing)
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

/// Take the advisory lock `(class, hashtext(key))` until the end of `tx`.
async fn lock(
    tx: &mut Transaction<'static, Postgres>,
    class: i32,
    key: &str,
    doing: &str,
) -> StoreResult<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
        .bind(class)
        .bind(key)
        .execute(&mut **tx)
        .await
        .doing(doing)?;
    Ok(())
}
