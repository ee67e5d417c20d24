//! Webhook deliveries and pull requests on PostgreSQL.

use sqlx::postgres::PgRow;
use sqlx::{Postgres, Transaction};

use super::rows::{Doing as _, get, to_i64, to_u64, ts};
use super::{LOCK_PULL_REQUEST, PostgresStore, StoreResult, lock};
use crate::domain::{ClusterId, PrUpdate, PullRequest, Timestamp};
use crate::store::StoreError;

/// `SELECT <every pull request column> FROM pull_requests <tail>`.
macro_rules! select_pull_requests {
    ($tail:literal) => {
        concat!(
            "SELECT key, provider, repository, number, open, head_sha, branch, url, \
             installation_id, repository_id, version_ms, generation, done_generation, cluster_id, \
             updated_ms FROM pull_requests ",
            $tail
        )
    };
}

// === impl PostgresStore ===

impl PostgresStore {
    pub(super) async fn record_delivery_impl(
        &self,
        provider: &str,
        delivery_id: &str,
        event: &str,
        update: Option<&PrUpdate>,
        now: Timestamp,
    ) -> StoreResult<Option<bool>> {
        let doing = &format!("recording {provider} delivery {delivery_id}");
        let mut tx = self.begin(doing).await?;
        // NB: a second replica taking the same delivery id waits here for this transaction,
        // then inserts nothing.
        let inserted = sqlx::query(
            "INSERT INTO webhook_deliveries (provider, delivery_id, event, received_ms) \
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(provider)
        .bind(delivery_id)
        .bind(event)
        .bind(now.as_millisecond())
        .execute(&mut *tx)
        .await
        .doing(doing)?
        .rows_affected();
        if inserted == 0 {
            return Ok(None);
        }
        let mut changed = false;
        if let Some(update) = update {
            // NB: two deliveries of one pull request (other ids) are taken one after the other,
            // so the second computes its generation from the first's, even when the row does
            // not exist yet (a row lock cannot cover that).
            lock(&mut tx, LOCK_PULL_REQUEST, &update.key, doing).await?;
            let row = sqlx::query(select_pull_requests!("WHERE key = $1"))
                .bind(&update.key)
                .fetch_optional(&mut *tx)
                .await
                .doing(doing)?;
            let current = row.as_ref().map(pull_request_from_row).transpose()?;
            if let Some(next) = PullRequest::next(current.as_ref(), update, now) {
                upsert(&mut tx, &next, doing).await?;
                changed = true;
            }
        }
        tx.commit().await.doing(doing)?;
        Ok(Some(changed))
    }

    pub(super) async fn pending_pull_requests_impl(
        &self,
        limit: usize,
    ) -> StoreResult<Vec<PullRequest>> {
        let q = sqlx::query(select_pull_requests!(
            "WHERE generation > done_generation ORDER BY updated_ms LIMIT $1"
        ))
        .bind(to_i64(limit)?);
        self.all(q, pull_request_from_row, "listing pending pull requests")
            .await
    }

    pub(super) async fn get_pull_request_impl(
        &self,
        key: &str,
    ) -> StoreResult<Option<PullRequest>> {
        let q = sqlx::query(select_pull_requests!("WHERE key = $1")).bind(key);
        self.one(q, pull_request_from_row, "reading a pull request")
            .await
    }

    pub(super) async fn reportable_pull_requests_impl(
        &self,
        changed_since: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<PullRequest>> {
        let q = sqlx::query(select_pull_requests!(
            "WHERE open OR updated_ms >= $1 ORDER BY updated_ms DESC LIMIT $2"
        ))
        .bind(changed_since.as_millisecond())
        .bind(to_i64(limit)?);
        self.all(
            q,
            pull_request_from_row,
            "listing pull requests to report on",
        )
        .await
    }

    pub(super) async fn pull_request_done_impl(
        &self,
        key: &str,
        generation: i64,
        cluster: Option<&ClusterId>,
    ) -> StoreResult<()> {
        let q = sqlx::query(
            "UPDATE pull_requests SET done_generation = GREATEST(done_generation, $1), \
             cluster_id = $2 WHERE key = $3",
        )
        .bind(generation)
        .bind(cluster.map(ClusterId::as_str))
        .bind(key);
        self.exec(q, &format!("recording pull request {key} carried out"))
            .await
            .map(drop)
    }

    pub(super) async fn purge_deliveries_impl(&self, before: Timestamp) -> StoreResult<u64> {
        let q = sqlx::query("DELETE FROM webhook_deliveries WHERE received_ms < $1")
            .bind(before.as_millisecond());
        self.exec(q, "purging old webhook deliveries").await
    }
}

async fn upsert(
    tx: &mut Transaction<'static, Postgres>,
    pr: &PullRequest,
    doing: &str,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO pull_requests (key, provider, repository, number, open, head_sha, branch, \
         url, installation_id, repository_id, version_ms, generation, done_generation, cluster_id, \
         updated_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
         ON CONFLICT (key) DO UPDATE SET open = excluded.open, head_sha = excluded.head_sha, \
         branch = excluded.branch, url = excluded.url, installation_id = excluded.installation_id, \
         repository_id = excluded.repository_id, \
         version_ms = excluded.version_ms, generation = excluded.generation, \
         updated_ms = excluded.updated_ms",
    )
    .bind(&pr.key)
    .bind(&pr.provider)
    .bind(&pr.repository)
    .bind(to_i64(pr.number)?)
    .bind(pr.open)
    .bind(&pr.head_sha)
    .bind(&pr.branch)
    .bind(&pr.url)
    .bind(pr.installation_id.map(to_i64).transpose()?)
    .bind(&pr.repository_id)
    .bind(pr.version_ms)
    .bind(pr.generation)
    .bind(pr.done_generation)
    .bind(pr.cluster_id.as_ref().map(ClusterId::as_str))
    .bind(pr.updated_at.as_millisecond())
    .execute(&mut **tx)
    .await
    .doing(doing)?;
    Ok(())
}

fn pull_request_from_row(r: &PgRow) -> StoreResult<PullRequest> {
    let cluster_id: Option<String> = get(r, "cluster_id")?;
    Ok(PullRequest {
        key: get(r, "key")?,
        provider: get(r, "provider")?,
        repository: get(r, "repository")?,
        number: to_u64(get(r, "number")?)?,
        open: get(r, "open")?,
        head_sha: get(r, "head_sha")?,
        branch: get(r, "branch")?,
        url: get(r, "url")?,
        installation_id: get::<Option<i64>>(r, "installation_id")?
            .map(to_u64)
            .transpose()?,
        repository_id: get(r, "repository_id")?,
        version_ms: get(r, "version_ms")?,
        generation: get(r, "generation")?,
        done_generation: get(r, "done_generation")?,
        cluster_id: cluster_id
            .map(|id| {
                ClusterId::parse(&id).ok_or_else(|| {
                    StoreError::Other(anyhow::anyhow!("stored cluster id {id:?} is malformed"))
                })
            })
            .transpose()?,
        updated_at: ts(get(r, "updated_ms")?)?,
    })
}
