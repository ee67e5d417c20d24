//! The audit log on SQLite: `audit_records` (one row per record, every field a column) and
//! the one-row `audit_checkpoint`.

use sqlx::sqlite::SqliteRow;

use super::rows::{Doing as _, get, to_i64, to_u64, ts};
use super::{BEGIN_WRITE, FromRow, Query, SqliteStore, StoreResult};
use crate::domain::{AuditCheckpoint, AuditEntry, AuditRecord, Decision, Door, Stage, Timestamp};
use crate::store::{AuditFilter, AuditHead, StoreError};

/// The largest page handed out.
const MAX_LIMIT: usize = 1000;

/// `SELECT <every record column> FROM audit_records <tail>`.
macro_rules! select_records {
    ($tail:literal) => {
        concat!(
            "SELECT seq, time_ms, request_id, door, stage, principal, auth_error, source, \
             action, target, decision, code, messages, status, duration_us, prev, hash, \
             signature FROM audit_records ",
            $tail
        )
    };
}

/// The filters of a listing, each skipped when its parameter is NULL.
macro_rules! filtered {
    ($order:literal) => {
        select_records!(
            "WHERE (?1 IS NULL OR time_ms >= ?1) AND (?2 IS NULL OR time_ms < ?2) \
             AND (?3 IS NULL OR principal = ?3) \
             AND (?4 IS NULL OR action = ?4 OR (substr(?4, -1) = '*' \
                  AND substr(action, 1, length(?4) - 1) = substr(?4, 1, length(?4) - 1))) \
             AND (?5 IS NULL OR decision = ?5) AND (?6 IS NULL OR target = ?6) \
             AND seq > ?7 AND seq < ?8 ORDER BY seq "
        )
        .to_owned()
            + $order
            + " LIMIT ?9"
    };
}

// === impl SqliteStore ===

impl SqliteStore {
    /// The row of `q` on the audit database, if any, converted by `from_row`.
    async fn audit_one<T>(
        &self,
        q: Query<'_>,
        from_row: FromRow<T>,
        doing: &str,
    ) -> StoreResult<Option<T>> {
        let row = q.fetch_optional(&self.audit).await.doing(doing)?;
        row.as_ref().map(from_row).transpose()
    }

    pub(super) async fn audit_head_impl(&self) -> StoreResult<Option<AuditHead>> {
        let last = self
            .audit_one(
                sqlx::query(select_records!("ORDER BY seq DESC LIMIT 1")),
                record_from_row,
                "reading the audit log's head",
            )
            .await?;
        if let Some(last) = last {
            return Ok(Some(AuditHead::Record(Box::new(last))));
        }
        Ok(self
            .audit_checkpoint_impl()
            .await?
            .map(AuditHead::Checkpoint))
    }

    /// One multi-row INSERT per batch (a statement per record costs more than the row), in
    /// autocommit.
    pub(super) async fn audit_append_impl(&self, records: &[AuditRecord]) -> StoreResult<()> {
        let doing = "appending audit records";
        if records.is_empty() {
            return Ok(());
        }
        let mut insert = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
            "INSERT INTO audit_records (seq, time_ms, request_id, door, stage, principal, \
             auth_error, source, action, target, decision, code, messages, status, \
             duration_us, prev, hash, signature) ",
        );
        let mut rows = Vec::with_capacity(records.len());
        for r in records {
            let e = &r.entry;
            let messages = serde_json::to_string(&e.messages)
                .map_err(|err| StoreError::Other(anyhow::Error::new(err).context(doing)))?;
            let duration = e.duration_us.map(to_i64).transpose()?;
            rows.push((r, to_i64(r.seq)?, messages, duration));
        }
        insert.push_values(rows, |mut row, (r, seq, messages, duration)| {
            let e = &r.entry;
            row.push_bind(seq)
                .push_bind(e.time.as_millisecond())
                .push_bind(e.request_id.clone())
                .push_bind(door_str(e.door))
                .push_bind(stage_str(e.stage))
                .push_bind(e.principal.clone())
                .push_bind(e.auth_error.clone())
                .push_bind(e.source.clone())
                .push_bind(e.action.clone())
                .push_bind(e.target.clone())
                .push_bind(e.decision.map(Decision::as_str))
                .push_bind(e.code.clone())
                .push_bind(messages)
                .push_bind(e.status.map(i64::from))
                .push_bind(duration)
                .push_bind(r.prev.clone())
                .push_bind(r.hash.clone())
                .push_bind(r.signature.clone());
        });
        // NB: one statement is a transaction of its own (all rows or none), and one round trip
        // to the connection's thread where BEGIN, INSERT, COMMIT took three: the writer waits
        // for it with the mutating requests' `received` records.
        insert.build().execute(&self.audit).await.doing(doing)?;
        Ok(())
    }

    pub(super) async fn audit_list_impl(
        &self,
        filter: &AuditFilter,
    ) -> StoreResult<Vec<AuditRecord>> {
        let sql = if filter.descending {
            filtered!("DESC")
        } else {
            filtered!("ASC")
        };
        let limit = match filter.limit {
            0 => 100,
            n => n.min(MAX_LIMIT),
        };
        let q = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(filter.since.map(|t| t.as_millisecond()))
            .bind(filter.until.map(|t| t.as_millisecond()))
            .bind(&filter.principal)
            .bind(&filter.action)
            .bind(filter.decision.map(Decision::as_str))
            .bind(&filter.target)
            .bind(filter.after_seq.map(to_i64).transpose()?.unwrap_or(0))
            .bind(
                filter
                    .before_seq
                    .map(to_i64)
                    .transpose()?
                    .unwrap_or(i64::MAX),
            )
            .bind(to_i64(limit)?);
        let rows = q
            .fetch_all(&self.audit)
            .await
            .doing("listing audit records")?;
        rows.iter().map(record_from_row).collect()
    }

    pub(super) async fn audit_checkpoint_impl(&self) -> StoreResult<Option<AuditCheckpoint>> {
        self.audit_one(
            sqlx::query(
                "SELECT through_seq, hash, at_ms, signature FROM audit_checkpoint \
                 WHERE id = 1",
            ),
            |r| {
                Ok(AuditCheckpoint {
                    through_seq: to_u64(get(r, "through_seq")?)?,
                    hash: get(r, "hash")?,
                    at: ts(get(r, "at_ms")?)?,
                    signature: get(r, "signature")?,
                })
            },
            "reading the audit checkpoint",
        )
        .await
    }

    pub(super) async fn audit_last_before_impl(
        &self,
        before: Timestamp,
    ) -> StoreResult<Option<AuditRecord>> {
        self.audit_one(
            sqlx::query(select_records!(
                "WHERE time_ms < ? ORDER BY seq DESC LIMIT 1"
            ))
            .bind(before.as_millisecond()),
            record_from_row,
            "finding where the audit log's retention ends",
        )
        .await
    }

    pub(super) async fn audit_purge_impl(&self, c: &AuditCheckpoint) -> StoreResult<u64> {
        let doing = "purging audit records";
        let mut tx = self.audit.begin_with(BEGIN_WRITE).await.doing(doing)?;
        let deleted = sqlx::query("DELETE FROM audit_records WHERE seq <= ?")
            .bind(to_i64(c.through_seq)?)
            .execute(&mut *tx)
            .await
            .doing(doing)?
            .rows_affected();
        sqlx::query(
            "INSERT INTO audit_checkpoint (id, through_seq, hash, at_ms, signature) \
             VALUES (1, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET \
             through_seq = excluded.through_seq, hash = excluded.hash, \
             at_ms = excluded.at_ms, signature = excluded.signature",
        )
        .bind(to_i64(c.through_seq)?)
        .bind(&c.hash)
        .bind(c.at.as_millisecond())
        .bind(&c.signature)
        .execute(&mut *tx)
        .await
        .doing(doing)?;
        tx.commit().await.doing(doing)?;
        Ok(deleted)
    }
}

fn record_from_row(r: &SqliteRow) -> StoreResult<AuditRecord> {
    let bad = |what: &str, v: &str| StoreError::Other(anyhow::anyhow!("stored {what} {v:?}"));
    let door: String = get(r, "door")?;
    let stage: String = get(r, "stage")?;
    let decision: Option<String> = get(r, "decision")?;
    let messages: String = get(r, "messages")?;
    let status: Option<i64> = get(r, "status")?;
    let duration: Option<i64> = get(r, "duration_us")?;
    Ok(AuditRecord {
        seq: to_u64(get(r, "seq")?)?,
        entry: AuditEntry {
            time: ts(get(r, "time_ms")?)?,
            request_id: get(r, "request_id")?,
            door: match door.as_str() {
                "api" => Door::Api,
                "webhook" => Door::Webhook,
                "crd" => Door::Crd,
                "gateway" => Door::Gateway,
                "system" => Door::System,
                _ => return Err(bad("door", &door)),
            },
            stage: match stage.as_str() {
                "received" => Stage::Received,
                "completed" => Stage::Completed,
                _ => return Err(bad("stage", &stage)),
            },
            principal: get(r, "principal")?,
            auth_error: get(r, "auth_error")?,
            source: get(r, "source")?,
            action: get(r, "action")?,
            target: get(r, "target")?,
            decision: match decision {
                None => None,
                Some(d) => Some(Decision::parse(&d).ok_or_else(|| bad("decision", &d))?),
            },
            code: get(r, "code")?,
            messages: serde_json::from_str(&messages).map_err(|_| bad("messages", &messages))?,
            status: status
                .map(|s| u16::try_from(s).map_err(|_| bad("status", &s.to_string())))
                .transpose()?,
            duration_us: duration.map(to_u64).transpose()?,
        },
        prev: get(r, "prev")?,
        hash: get(r, "hash")?,
        signature: get(r, "signature")?,
    })
}

fn door_str(d: Door) -> &'static str {
    match d {
        Door::Api => "api",
        Door::Webhook => "webhook",
        Door::Crd => "crd",
        Door::Gateway => "gateway",
        Door::System => "system",
    }
}

fn stage_str(s: Stage) -> &'static str {
    match s {
        Stage::Received => "received",
        Stage::Completed => "completed",
    }
}
