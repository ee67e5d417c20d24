//! The alert notifier's outbox and its place in the cluster events, on PostgreSQL.

use sqlx::postgres::PgRow;

use super::rows::{Doing as _, event_from_row, get, to_i64, ts};
use super::{LOCK_NOTIFICATION, PostgresStore, StoreResult, lock};
use crate::domain::{ClusterEvent, NewNotification, Notification, Phase, Timestamp};
use crate::store::{Attempt, StoreError};

/// The one cursor row's name (a table of one row keeps room for a second reader later).
const CURSOR: &str = "notifier";

// === impl PostgresStore ===

impl PostgresStore {
    pub(super) async fn notify_cursor_impl(&self) -> StoreResult<i64> {
        let doing = "reading the notifier's place in the cluster events";
        // NB: started at the newest event by the statement that makes the row: of two first
        // calls at once, the second waits for the first's row and keeps it, so both agree.
        sqlx::query(
            "INSERT INTO notifier_cursor (name, event_id) \
             SELECT $1, COALESCE(MAX(id), 0) FROM cluster_events \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(CURSOR)
        .execute(&self.pool)
        .await
        .doing(doing)?;
        sqlx::query_scalar("SELECT event_id FROM notifier_cursor WHERE name = $1")
            .bind(CURSOR)
            .fetch_one(&self.pool)
            .await
            .doing(doing)
    }

    pub(super) async fn set_notify_cursor_impl(&self, event_id: i64) -> StoreResult<()> {
        let q = sqlx::query(
            "INSERT INTO notifier_cursor (name, event_id) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET event_id = excluded.event_id",
        )
        .bind(CURSOR)
        .bind(event_id);
        self.exec(q, "moving the notifier's place in the cluster events")
            .await
            .map(drop)
    }

    pub(super) async fn events_into_impl(
        &self,
        phase: Phase,
        after_id: i64,
        limit: usize,
    ) -> StoreResult<Vec<ClusterEvent>> {
        let q = sqlx::query(
            "SELECT id, cluster_id, at_ms, kind, from_phase, to_phase, reason, message \
             FROM cluster_events WHERE to_phase = $1 AND id > $2 ORDER BY id LIMIT $3",
        )
        .bind(phase.as_str())
        .bind(after_id)
        .bind(to_i64(limit)?);
        self.all(q, event_from_row, "listing events into a phase")
            .await
    }

    pub(super) async fn enqueue_notification_impl(
        &self,
        alert: &NewNotification,
        now: Timestamp,
        repeat_since: Option<Timestamp>,
    ) -> StoreResult<bool> {
        let doing = &format!("queueing notification {}", alert.dedupe_key);
        let mut tx = self.begin(doing).await?;
        // NB: two replicas offering the same alert at once check and insert one after the
        // other, so only the first queues it.
        let key = format!("{}\n{}", alert.target, alert.dedupe_key);
        lock(&mut tx, LOCK_NOTIFICATION, &key, doing).await?;
        let since = repeat_since.map_or(i64::MIN, Timestamp::as_millisecond);
        let held: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM notifications WHERE target = $1 AND dedupe_key = $2 \
             AND (state = 'queued' OR created_ms >= $3) LIMIT 1",
        )
        .bind(&alert.target)
        .bind(&alert.dedupe_key)
        .bind(since)
        .fetch_optional(&mut *tx)
        .await
        .doing(doing)?;
        if held.is_some() {
            return Ok(false);
        }
        let payload = serde_json::to_string(&alert.payload)
            .map_err(|e| StoreError::Other(anyhow::anyhow!("encoding a notification: {e}")))?;
        sqlx::query(
            "INSERT INTO notifications (target, dedupe_key, alert, payload, created_ms, \
             next_attempt_ms, attempts, state) VALUES ($1, $2, $3, $4, $5, $5, 0, 'queued')",
        )
        .bind(&alert.target)
        .bind(&alert.dedupe_key)
        .bind(&alert.alert)
        .bind(payload)
        .bind(now.as_millisecond())
        .execute(&mut *tx)
        .await
        .doing(doing)?;
        tx.commit().await.doing(doing)?;
        Ok(true)
    }

    pub(super) async fn due_notifications_impl(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<Notification>> {
        let q = sqlx::query(
            "SELECT id, target, dedupe_key, alert, payload, created_ms, next_attempt_ms, \
             attempts, last_error FROM notifications \
             WHERE state = 'queued' AND next_attempt_ms <= $1 ORDER BY next_attempt_ms, id \
             LIMIT $2",
        )
        .bind(now.as_millisecond())
        .bind(to_i64(limit)?);
        self.all(q, notification_from_row, "listing due notifications")
            .await
    }

    pub(super) async fn notification_attempted_impl(
        &self,
        id: i64,
        attempt: Attempt<'_>,
        now: Timestamp,
    ) -> StoreResult<()> {
        // Every statement ends `… WHERE id = $N AND state = 'queued'`, `$N` bound last.
        let q = match attempt {
            Attempt::Sent { .. } => sqlx::query(
                "UPDATE notifications SET state = 'sent', sent_ms = $1, attempts = attempts + 1, \
                 last_error = NULL WHERE id = $2 AND state = 'queued'",
            )
            .bind(now.as_millisecond()),
            Attempt::Retry { error, at } => sqlx::query(
                "UPDATE notifications SET attempts = attempts + 1, next_attempt_ms = $1, \
                 last_error = $2 WHERE id = $3 AND state = 'queued'",
            )
            .bind(at.as_millisecond())
            .bind(error),
            Attempt::GaveUp { error } => sqlx::query(
                "UPDATE notifications SET state = 'failed', attempts = attempts + 1, \
                 last_error = $1 WHERE id = $2 AND state = 'queued'",
            )
            .bind(error),
        };
        self.exec(q.bind(id), "recording a notification attempt")
            .await
            .map(drop)
    }

    pub(super) async fn purge_notifications_impl(&self, before: Timestamp) -> StoreResult<u64> {
        let q =
            sqlx::query("DELETE FROM notifications WHERE state <> 'queued' AND created_ms < $1")
                .bind(before.as_millisecond());
        self.exec(q, "purging old notifications").await
    }
}

fn notification_from_row(r: &PgRow) -> StoreResult<Notification> {
    let payload: String = get(r, "payload")?;
    Ok(Notification {
        id: get(r, "id")?,
        alert: NewNotification {
            target: get(r, "target")?,
            dedupe_key: get(r, "dedupe_key")?,
            alert: get(r, "alert")?,
            payload: serde_json::from_str(&payload).map_err(|e| {
                StoreError::Other(anyhow::anyhow!("stored notification payload: {e}"))
            })?,
        },
        created_at: ts(get(r, "created_ms")?)?,
        attempts: get(r, "attempts")?,
        next_attempt_at: ts(get(r, "next_attempt_ms")?)?,
        last_error: get(r, "last_error")?,
    })
}
