#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use super::*;
use crate::domain::{AuditRecord, Door, Timestamp};
use crate::store::{AuditFilter, SqliteStore, Store};

use crate::domain::audit::sample_entry as entry;

struct Log {
    store: Arc<dyn Store>,
    auditor: Auditor,
    url: String,
    _dir: tempfile::TempDir,
}

impl Log {
    /// A second writer over the same store and key, as after a restart.
    fn restarted(&self) -> Auditor {
        Auditor::start(
            self.store.clone(),
            self.auditor.signer(),
            FailMode::Open,
            None,
        )
        .unwrap()
    }
}

async fn log(export: Option<Export>) -> Log {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/vcm.db", dir.path().display());
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&url).await.unwrap());
    let signer = Arc::new(Signer::ephemeral().unwrap());
    let auditor = Auditor::start(store.clone(), signer, FailMode::Open, export).unwrap();
    Log {
        store,
        auditor,
        url,
        _dir: dir,
    }
}

async fn all(store: &dyn Store) -> Vec<AuditRecord> {
    store
        .audit_list(&AuditFilter {
            limit: 1000,
            ..AuditFilter::default()
        })
        .await
        .unwrap()
}

async fn verify(log: &Log) -> Result<Verified, Broken> {
    let anchor = log.auditor.anchor().await.unwrap();
    let mut walk = Walk::start(&anchor, &anchor.public_key)?;
    for r in all(log.store.as_ref()).await {
        walk.push(&r)?;
    }
    walk.finish()
}

/// Makes every insert into the audit table fail, as a full disk or a broken file would.
async fn break_inserts(url: &str, broken: bool) {
    let audit = SqliteStore::audit_file(url).unwrap();
    let url = format!("sqlite://{}", audit.display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let sql = if broken {
        "CREATE TRIGGER no_audit BEFORE INSERT ON audit_records \
         BEGIN SELECT RAISE(ABORT, 'disk full (test)'); END"
    } else {
        "DROP TRIGGER no_audit"
    };
    sqlx::query(sql).execute(&pool).await.unwrap();
    pool.close().await;
}

#[tokio::test]
async fn records_from_concurrent_requests_form_one_verifiable_chain() {
    // Arrange
    let log = log(None).await;

    // Act: 200 records from 20 tasks at once, some waited for.
    let mut tasks = Vec::new();
    for t in 0..20u64 {
        let auditor = log.auditor.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..10u64 {
                let e = entry(t * 10 + i);
                if i % 2 == 0 {
                    auditor.commit(e).await.unwrap();
                } else {
                    auditor.submit(e).await;
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    log.auditor.flush().await;

    // Assert
    let records = all(log.store.as_ref()).await;
    assert_eq!(records.len(), 200);
    let done = verify(&log).await.unwrap();
    assert_eq!((done.first_seq, done.last_seq), (Some(1), Some(200)));
    assert!(done.signed >= 1);
}

#[tokio::test]
async fn a_store_that_refuses_records_fails_waiters_and_keeps_the_rest() {
    // Arrange
    let log = log(None).await;
    log.auditor.commit(entry(1)).await.unwrap();
    break_inserts(&log.url, true).await;

    // Act
    let refused = log.auditor.commit(entry(2)).await;
    log.auditor.submit(entry(3)).await;
    log.auditor.flush().await;
    let unhealthy = !log.auditor.healthy();
    break_inserts(&log.url, false).await;
    log.auditor.commit(entry(4)).await.unwrap();

    // Assert
    assert_eq!(refused, Err(Unavailable));
    assert!(unhealthy);
    assert!(log.auditor.healthy());
    let ids: Vec<String> = all(log.store.as_ref())
        .await
        .into_iter()
        .map(|r| r.entry.request_id)
        .collect();
    assert_eq!(
        ids,
        ["r-1", "r-3", "r-4"],
        "the queued record was kept, the refused one not"
    );
    verify(&log).await.unwrap();
}

#[tokio::test]
async fn a_restarted_writer_with_the_same_key_continues_the_chain() {
    // Arrange
    let log = log(None).await;
    log.auditor.commit(entry(1)).await.unwrap();

    // Act: a second writer over the same store and key, as after a restart.
    let again = log.restarted();
    again.commit(entry(2)).await.unwrap();

    // Assert
    let records = all(log.store.as_ref()).await;
    assert_eq!(records.len(), 2, "no note about the head");
    assert_eq!(records[1].prev, records[0].hash);
    verify(&log).await.unwrap();
}

#[tokio::test]
async fn a_head_the_server_did_not_sign_is_noted_and_the_walk_stops_there() {
    // Arrange: a record appended behind vcm's back, linked and hashed but unsigned.
    let log = log(None).await;
    log.auditor.commit(entry(1)).await.unwrap();
    let first = all(log.store.as_ref()).await.remove(0);
    let forged = AuditRecord::link(2, entry(99), first.hash.clone());
    log.store.audit_append(&[forged]).await.unwrap();

    // Act: the server takes the log up again (a restart) and writes on.
    let again = log.restarted();
    again.commit(entry(3)).await.unwrap();

    // Assert
    let records = all(log.store.as_ref()).await;
    assert_eq!(records.len(), 4);
    assert_eq!(
        records[2].entry.code.as_deref(),
        Some(crate::domain::UNTRUSTED_HEAD)
    );
    assert_eq!(records[2].entry.door, Door::System);
    let broken = verify(&log).await.unwrap_err();
    assert_eq!(broken.seq, 2, "{}", broken.problem);
    assert!(
        broken.problem.contains("appended outside vcm"),
        "{}",
        broken.problem
    );
}

#[tokio::test]
async fn stored_records_are_exported_as_json_lines() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let log = log(Some(Export::File(path.clone()))).await;

    // Act
    for i in 1..=3 {
        log.auditor.commit(entry(i)).await.unwrap();
    }

    // Assert
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<AuditRecord> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines, all(log.store.as_ref()).await);
}

#[tokio::test]
async fn retention_purges_behind_a_signed_checkpoint_and_the_rest_verifies() {
    // Arrange: records at +1..+10 ms.
    let log = log(None).await;
    for i in 1..=10 {
        log.auditor.commit(entry(i)).await.unwrap();
    }

    // Act
    let cutoff = Timestamp::from_millisecond(1_764_470_000_005).unwrap();
    let purged = Retention::new(log.auditor.clone(), Duration::ZERO)
        .purge_before(cutoff)
        .await
        .unwrap();
    log.auditor.commit(entry(11)).await.unwrap();

    // Assert
    assert_eq!(purged, 4);
    let done = verify(&log).await.unwrap();
    assert_eq!(
        (done.purged, done.first_seq, done.last_seq),
        (4, Some(5), Some(11))
    );
}

#[tokio::test]
async fn replicas_sharing_a_database_and_a_key_write_one_chain() {
    // Arrange: three writers (three replicas) on one real PostgreSQL, one signing key.
    let pg = crate::testing::postgres::TestPostgres::start().await;
    let url = pg.database().await;
    let signer = Arc::new(Signer::ephemeral().unwrap());
    let mut replicas = Vec::new();
    for _ in 0..3 {
        let store = crate::store::open(&url).await.unwrap();
        replicas.push(Auditor::start(store, signer.clone(), FailMode::Open, None).unwrap());
    }

    // Act: 150 records, every one waited for, from all three at once.
    let mut tasks = Vec::new();
    for (r, auditor) in replicas.iter().enumerate() {
        for t in 0..5u64 {
            let auditor = auditor.clone();
            let base = (r as u64 * 5 + t) * 10;
            tasks.push(tokio::spawn(async move {
                for i in 0..10u64 {
                    auditor.commit(entry(base + i)).await.unwrap();
                }
            }));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }

    // Assert: no request was refused (above), one unbroken chain, no untrusted head marker.
    let store = replicas[0].store().clone();
    let records = all(store.as_ref()).await;
    assert_eq!(records.len(), 150, "no marker record, nothing lost");
    let anchor = replicas[0].anchor().await.unwrap();
    let mut walk = Walk::start(&anchor, &anchor.public_key).unwrap();
    for r in &records {
        walk.push(r).unwrap();
    }
    let done = walk.finish().unwrap();
    assert_eq!((done.first_seq, done.last_seq), (Some(1), Some(150)));
}
