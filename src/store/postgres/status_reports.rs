//! The status-report outbox on PostgreSQL.

use sqlx::postgres::PgRow;

use super::rows::{Doing as _, get, to_i64, to_u64, ts};
use super::{PostgresStore, StoreResult};
use crate::domain::{ReportState, StatusReport, StatusWant, Timestamp};
use crate::store::{Attempt, StoreError};

/// `SELECT <every outbox column> FROM status_reports <tail>`.
macro_rules! select_reports {
    ($tail:literal) => {
        concat!(
            "SELECT pr_key, sha, provider, repository, branch, installation_id, state, \
             description, target_url, seq, sent_seq, attempts, next_attempt_ms, last_error, \
             check_run_id FROM status_reports ",
            $tail
        )
    };
}

// === impl PostgresStore ===

impl PostgresStore {
    /// One statement: the insert, or the update of the row it conflicts with (under that row's
    /// lock) when what would be shown changes, so two replicas wanting states for one commit
    /// at once each get their own `seq`.
    pub(super) async fn want_status_impl(
        &self,
        want: &StatusWant,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let doing = &format!("queueing a status for {} at {}", want.pr_key, want.sha);
        let q = sqlx::query(
            "INSERT INTO status_reports AS r (pr_key, sha, provider, repository, branch, \
             installation_id, state, description, target_url, seq, sent_seq, attempts, \
             next_attempt_ms, last_error, updated_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1, 0, 0, $10, NULL, $10) \
             ON CONFLICT (pr_key, sha) DO UPDATE SET branch = excluded.branch, \
             installation_id = excluded.installation_id, state = excluded.state, \
             description = excluded.description, target_url = excluded.target_url, \
             seq = r.seq + 1, attempts = 0, next_attempt_ms = excluded.next_attempt_ms, \
             last_error = NULL, updated_ms = excluded.updated_ms \
             WHERE (r.state, r.description, r.target_url, r.branch) IS DISTINCT FROM \
             (excluded.state, excluded.description, excluded.target_url, excluded.branch) \
             RETURNING seq",
        )
        .bind(&want.pr_key)
        .bind(&want.sha)
        .bind(&want.provider)
        .bind(&want.repository)
        .bind(&want.branch)
        .bind(want.installation_id.map(to_i64).transpose()?)
        .bind(want.state.as_str())
        .bind(&want.description)
        .bind(&want.target_url)
        .bind(now.as_millisecond());
        let queued = q.fetch_optional(&self.pool).await.doing(doing)?;
        Ok(queued.is_some())
    }

    pub(super) async fn due_statuses_impl(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<StatusReport>> {
        let q = sqlx::query(select_reports!(
            "WHERE sent_seq < seq AND next_attempt_ms <= $1 ORDER BY next_attempt_ms LIMIT $2"
        ))
        .bind(now.as_millisecond())
        .bind(to_i64(limit)?);
        self.all(q, report_from_row, "listing due status reports")
            .await
    }

    pub(super) async fn status_reports_impl(&self, pr_key: &str) -> StoreResult<Vec<StatusReport>> {
        let q = sqlx::query(select_reports!("WHERE pr_key = $1 ORDER BY updated_ms")).bind(pr_key);
        self.all(q, report_from_row, "listing status reports").await
    }

    pub(super) async fn status_attempted_impl(
        &self,
        report: &StatusReport,
        attempt: Attempt<'_>,
        now: Timestamp,
    ) -> StoreResult<()> {
        let w = &report.want;
        let doing = &format!("recording a status sent for {} at {}", w.pr_key, w.sha);
        // Every statement ends `… WHERE pr_key = $4 AND sha = $5`.
        let q = match attempt {
            Attempt::Sent { check_run } => sqlx::query(
                "UPDATE status_reports SET sent_seq = GREATEST(sent_seq, $1), attempts = 0, \
                 last_error = NULL, check_run_id = COALESCE($2, check_run_id), updated_ms = $3 \
                 WHERE pr_key = $4 AND sha = $5",
            )
            .bind(report.seq)
            .bind(check_run.map(to_i64).transpose()?)
            .bind(now.as_millisecond()),
            Attempt::GaveUp { error } => sqlx::query(
                "UPDATE status_reports SET sent_seq = GREATEST(sent_seq, $1), \
                 attempts = attempts + 1, last_error = $2, updated_ms = $3 \
                 WHERE pr_key = $4 AND sha = $5",
            )
            .bind(report.seq)
            .bind(error)
            .bind(now.as_millisecond()),
            // NB: only an attempt at the current seq counts; a newer wanted state was queued
            // with a clean slate and is due at once.
            Attempt::Retry { error, at } => sqlx::query(
                "UPDATE status_reports SET attempts = attempts + 1, next_attempt_ms = $1, \
                 last_error = $2, updated_ms = $3 WHERE seq = $6 AND pr_key = $4 AND sha = $5",
            )
            .bind(at.as_millisecond())
            .bind(error)
            .bind(now.as_millisecond()),
        };
        let mut q = q.bind(&w.pr_key).bind(&w.sha);
        if let Attempt::Retry { .. } = attempt {
            q = q.bind(report.seq);
        }
        self.exec(q, doing).await.map(drop)
    }

    pub(super) async fn purge_statuses_impl(&self, before: Timestamp) -> StoreResult<u64> {
        let q = sqlx::query("DELETE FROM status_reports WHERE sent_seq >= seq AND updated_ms < $1")
            .bind(before.as_millisecond());
        self.exec(q, "purging old status reports").await
    }
}

fn report_from_row(r: &PgRow) -> StoreResult<StatusReport> {
    let state: String = get(r, "state")?;
    Ok(StatusReport {
        want: StatusWant {
            pr_key: get(r, "pr_key")?,
            sha: get(r, "sha")?,
            provider: get(r, "provider")?,
            repository: get(r, "repository")?,
            branch: get(r, "branch")?,
            installation_id: get::<Option<i64>>(r, "installation_id")?
                .map(to_u64)
                .transpose()?,
            state: ReportState::parse(&state).ok_or_else(|| {
                StoreError::Other(anyhow::anyhow!("stored report state {state:?} is unknown"))
            })?,
            description: get(r, "description")?,
            target_url: get(r, "target_url")?,
        },
        seq: get(r, "seq")?,
        sent_seq: get(r, "sent_seq")?,
        attempts: get(r, "attempts")?,
        next_attempt_at: ts(get(r, "next_attempt_ms")?)?,
        last_error: get(r, "last_error")?,
        check_run_id: get::<Option<i64>>(r, "check_run_id")?
            .map(to_u64)
            .transpose()?,
    })
}
