//! The audit log on PostgreSQL: `audit_records` (one row per record, every field a column) and
//! the one-row `audit_checkpoint`, in the store's database.

use sqlx::postgres::PgRow;

use super::rows::{Doing as _, get, to_i64, to_u64, ts};
use super::{PostgresStore, StoreResult};
use crate::domain::{AuditCheckpoint, AuditEntry, AuditRecord, Decision, Door, Stage, Timestamp};
use crate::store::{AuditFilter, AuditHead, StoreError};

/// The largest page handed out.
const MAX_LIMIT: usize = 1000;
/// Records per INSERT: 18 parameters each, and a statement takes at most 65535.
const ROWS_PER_INSERT: usize = 1000;

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

/// The filters of a listing, each skipped when its parameter is NULL; an action ending in
/// `*` matches as a prefix.
macro_rules! filtered {
    ($order:literal) => {
        select_records!(
            "WHERE ($1::bigint IS NULL OR time_ms >= $1) AND ($2::bigint IS NULL OR time_ms < $2) \
             AND ($3::text IS NULL OR principal = $3) \
             AND ($4::text IS NULL OR action = $4 OR (right($4, 1) = '*' \
                  AND starts_with(action, left($4, -1)))) \
             AND ($5::text IS NULL OR decision = $5) AND ($6::text IS NULL OR target = $6) \
             AND seq > $7 AND seq < $8 ORDER BY seq "
        )
        .to_owned()
            + $order
            + " LIMIT $9"
    };
}

// === impl PostgresStore ===

impl PostgresStore {
    pub(super) async fn audit_head_impl(&self) -> StoreResult<Option<AuditHead>> {
        let last = self
            .one(
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

    /// One multi-row INSERT per batch (a statement per record costs more than the row, and
    /// one statement is a transaction of its own); a batch too large for one statement is
    /// several in one transaction. A seq another replica took first is a `Conflict`, and
    /// nothing of the batch is stored.
    pub(super) async fn audit_append_impl(&self, records: &[AuditRecord]) -> StoreResult<()> {
        let doing = "appending audit records";
        if records.len() <= ROWS_PER_INSERT {
            if records.is_empty() {
                return Ok(());
            }
            let mut insert = insert_records(records, doing)?;
            insert.build().execute(&self.pool).await.doing(doing)?;
            return Ok(());
        }
        let mut tx = self.begin(doing).await?;
        for chunk in records.chunks(ROWS_PER_INSERT) {
            let mut insert = insert_records(chunk, doing)?;
            insert.build().execute(&mut *tx).await.doing(doing)?;
        }
        tx.commit().await.doing(doing)
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
        self.all(q, record_from_row, "listing audit records").await
    }

    pub(super) async fn audit_checkpoint_impl(&self) -> StoreResult<Option<AuditCheckpoint>> {
        self.one(
            sqlx::query(
                "SELECT through_seq, hash, at_ms, signature FROM audit_checkpoint WHERE id = 1",
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
        self.one(
            sqlx::query(select_records!(
                "WHERE time_ms < $1 ORDER BY seq DESC LIMIT 1"
            ))
            .bind(before.as_millisecond()),
            record_from_row,
            "finding where the audit log's retention ends",
        )
        .await
    }

    pub(super) async fn audit_purge_impl(&self, c: &AuditCheckpoint) -> StoreResult<u64> {
        let doing = "purging audit records";
        let mut tx = self.begin(doing).await?;
        let deleted = sqlx::query("DELETE FROM audit_records WHERE seq <= $1")
            .bind(to_i64(c.through_seq)?)
            .execute(&mut *tx)
            .await
            .doing(doing)?
            .rows_affected();
        sqlx::query(
            "INSERT INTO audit_checkpoint (id, through_seq, hash, at_ms, signature) \
             VALUES (1, $1, $2, $3, $4) ON CONFLICT (id) DO UPDATE SET \
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

/// `INSERT INTO audit_records … VALUES (…), (…)` of `records`.
fn insert_records(
    records: &[AuditRecord],
    doing: &str,
) -> StoreResult<sqlx::QueryBuilder<sqlx::Postgres>> {
    let mut insert = sqlx::QueryBuilder::<sqlx::Postgres>::new(
        "INSERT INTO audit_records (seq, time_ms, request_id, door, stage, principal, \
         auth_error, source, action, target, decision, code, messages, status, duration_us, \
         prev, hash, signature) ",
    );
    let mut rows = Vec::with_capacity(records.len());
    for r in records {
        let messages = serde_json::to_string(&r.entry.messages)
            .map_err(|err| StoreError::Other(anyhow::Error::new(err).context(doing.to_owned())))?;
        let duration = r.entry.duration_us.map(to_i64).transpose()?;
        rows.push((r, to_i64(r.seq)?, messages, duration));
    }
    insert.push_values(rows, |mut row, (r, seq, messages, duration)| {
        let e = &r.entry;
        row.push_bind(seq)
            .push_bind(e.time.as_millisecond())
            .push_bind(&e.request_id)
            .push_bind(door_str(e.door))
            .push_bind(stage_str(e.stage))
            .push_bind(&e.principal)
            .push_bind(&e.auth_error)
            .push_bind(&e.source)
            .push_bind(&e.action)
            .push_bind(&e.target)
            .push_bind(e.decision.map(Decision::as_str))
            .push_bind(&e.code)
            .push_bind(messages)
            .push_bind(e.status.map(i64::from))
            .push_bind(duration)
            .push_bind(&r.prev)
            .push_bind(&r.hash)
            .push_bind(&r.signature);
    });
    Ok(insert)
}

fn record_from_row(r: &PgRow) -> StoreResult<AuditRecord> {
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
