//! The status-report outbox on SQLite.

use sqlx::sqlite::SqliteRow;

use super::rows::{Doing as _, get, to_i64, to_u64, ts};
use super::{SqliteStore, StoreResult};
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

// === impl SqliteStore ===

impl SqliteStore {
    pub(super) async fn want_status_impl(
        &self,
        want: &StatusWant,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let doing = &format!("queueing a status for {} at {}", want.pr_key, want.sha);
        let mut tx = self.begin_write(doing).await?;
        let row = sqlx::query(select_reports!("WHERE pr_key = ? AND sha = ?"))
            .bind(&want.pr_key)
            .bind(&want.sha)
            .fetch_optional(&mut *tx)
            .await
            .doing(doing)?;
        let current = row.as_ref().map(report_from_row).transpose()?;
        if current.as_ref().is_some_and(|c| same(&c.want, want)) {
            return Ok(false);
        }
        let seq = current.as_ref().map_or(1, |c| c.seq + 1);
        sqlx::query(
            "INSERT INTO status_reports (pr_key, sha, provider, repository, branch, \
             installation_id, state, description, target_url, seq, sent_seq, attempts, \
             next_attempt_ms, last_error, updated_ms) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, ?, NULL, ?) \
             ON CONFLICT (pr_key, sha) DO UPDATE SET branch = excluded.branch, \
             installation_id = excluded.installation_id, state = excluded.state, \
             description = excluded.description, target_url = excluded.target_url, \
             seq = excluded.seq, attempts = 0, next_attempt_ms = excluded.next_attempt_ms, \
             last_error = NULL, updated_ms = excluded.updated_ms",
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
        .bind(seq)
        .bind(now.as_millisecond())
        .bind(now.as_millisecond())
        .execute(&mut *tx)
        .await
        .doing(doing)?;
        tx.commit().await.doing(doing)?;
        Ok(true)
    }

    pub(super) async fn due_statuses_impl(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<StatusReport>> {
        let q = sqlx::query(select_reports!(
            "WHERE sent_seq < seq AND next_attempt_ms <= ? ORDER BY next_attempt_ms LIMIT ?"
        ))
        .bind(now.as_millisecond())
        .bind(to_i64(limit)?);
        self.all(q, report_from_row, "listing due status reports")
            .await
    }

    pub(super) async fn status_reports_impl(&self, pr_key: &str) -> StoreResult<Vec<StatusReport>> {
        let q = sqlx::query(select_reports!("WHERE pr_key = ? ORDER BY updated_ms")).bind(pr_key);
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
        let mut tx = self.begin_write(doing).await?;
        let q = match attempt {
            Attempt::Sent { check_run } => sqlx::query(
                "UPDATE status_reports SET sent_seq = MAX(sent_seq, ?), attempts = 0, \
                 last_error = NULL, check_run_id = COALESCE(?, check_run_id), updated_ms = ? \
                 WHERE pr_key = ? AND sha = ?",
            )
            .bind(report.seq)
            .bind(check_run.map(to_i64).transpose()?)
            .bind(now.as_millisecond()),
            Attempt::GaveUp { error } => sqlx::query(
                "UPDATE status_reports SET sent_seq = MAX(sent_seq, ?), attempts = attempts + 1, \
                 last_error = ?, updated_ms = ? WHERE pr_key = ? AND sha = ?",
            )
            .bind(report.seq)
            .bind(error)
            .bind(now.as_millisecond()),
            // NB: only an attempt at the current seq counts; a newer wanted state was queued
            // with a clean slate and is due at once.
            Attempt::Retry { error, at } => sqlx::query(
                "UPDATE status_reports SET attempts = attempts + 1, next_attempt_ms = ?, \
                 last_error = ?, updated_ms = ? WHERE seq = ? AND pr_key = ? AND sha = ?",
            )
            .bind(at.as_millisecond())
            .bind(error)
            .bind(now.as_millisecond())
            .bind(report.seq),
        };
        q.bind(&w.pr_key)
            .bind(&w.sha)
            .execute(&mut *tx)
            .await
            .doing(doing)?;
        tx.commit().await.doing(doing)
    }

    pub(super) async fn purge_statuses_impl(&self, before: Timestamp) -> StoreResult<u64> {
        let q = sqlx::query("DELETE FROM status_reports WHERE sent_seq >= seq AND updated_ms < ?")
            .bind(before.as_millisecond());
        self.exec(q, "purging old status reports").await
    }
}

/// The same thing to show (what the provider would display does not change).
fn same(a: &StatusWant, b: &StatusWant) -> bool {
    a.state == b.state
        && a.description == b.description
        && a.target_url == b.target_url
        && a.branch == b.branch
}

fn report_from_row(r: &SqliteRow) -> StoreResult<StatusReport> {
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
