//! SQLite-specific tests; the shared contract is `store::conformance`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::store::conformance::{self, mk_cluster, mk_event};

fn url(dir: &std::path::Path, file: &str) -> String {
    format!("sqlite://{}", dir.join(file).display())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_store_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let n = AtomicUsize::new(0);
    conformance::run_suite(|| {
        let url = url(
            dir.path(),
            &format!("case-{}.db", n.fetch_add(1, Ordering::Relaxed)),
        );
        async move { Arc::new(SqliteStore::open(&url).await.unwrap()) as Arc<dyn Store> }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_memory_store_passes_the_conformance_suite() {
    conformance::run_suite(|| async {
        Arc::new(SqliteStore::open("sqlite::memory:").await.unwrap()) as Arc<dyn Store>
    })
    .await;
}

#[tokio::test]
async fn data_survives_a_restart_and_migrations_run_once() {
    // Arrange: a database in a directory that does not exist yet.
    let dir = tempfile::tempdir().unwrap();
    let url = url(&dir.path().join("nested/state"), "vcm.db");
    let c = mk_cluster("durable");
    let store = SqliteStore::open(&url).await.unwrap();
    store
        .insert_cluster(&c, &mk_event("created"), None)
        .await
        .unwrap();
    store.pool.close().await;

    // Act: open the same file twice more (migrations must be a no-op on an up-to-date file).
    let reopened = SqliteStore::open(&url).await.unwrap();
    let reopened_id = reopened.installation_id().await.unwrap();
    drop(reopened);
    let again = SqliteStore::open(&url).await.unwrap();

    // Assert
    assert_eq!(again.get_cluster(&c.id).await.unwrap(), Some(c.clone()));
    assert_eq!(again.list_events(&c.id).await.unwrap().len(), 1);
    let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
        .fetch_one(&again.pool)
        .await
        .unwrap();
    let migrations = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite"))
        .unwrap()
        .count();
    assert_eq!(
        applied as usize, migrations,
        "each migration is recorded once"
    );
    assert_eq!(
        again.installation_id().await.unwrap(),
        reopened_id,
        "the installation id survives restarts"
    );
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&again.pool)
        .await
        .unwrap();
    assert_eq!(mode, "wal", "file databases use write-ahead logging");
}

#[tokio::test]
async fn two_memory_stores_do_not_share_data() {
    let a = SqliteStore::open("sqlite::memory:").await.unwrap();
    let b = SqliteStore::open("sqlite::memory:").await.unwrap();
    let c = mk_cluster("only-in-a");
    a.insert_cluster(&c, &mk_event("created"), None)
        .await
        .unwrap();
    assert_eq!(b.get_cluster(&c.id).await.unwrap(), None);
}

#[tokio::test]
async fn a_bad_url_is_an_error_not_a_panic() {
    let err = SqliteStore::open("sqlite://x.db?mode=bogus")
        .await
        .unwrap_err();
    assert!(
        format!("{err:#}").contains("x.db"),
        "the error names the URL: {err:#}"
    );
}

#[tokio::test]
async fn a_restarted_server_drops_its_earlier_runs_claims_at_once() {
    // Arrange: a run claimed a cluster for a long while, then died.
    let dir = tempfile::tempdir().unwrap();
    let url = url(dir.path(), "vcm.db");
    let c = mk_cluster("held");
    let now = crate::domain::Timestamp::now();
    let later = now + jiff::SignedDuration::from_secs(3600);
    {
        let store = SqliteStore::open(&url).await.unwrap();
        store
            .insert_cluster(&c, &mk_event("created"), None)
            .await
            .unwrap();
        assert!(
            store
                .claim_cluster(&c.id, "r-dead", later, now)
                .await
                .unwrap()
        );
    }

    // Act: the next run opens the store.
    let store = SqliteStore::open(&url).await.unwrap();

    // Assert: its claim succeeds now, not an hour later.
    assert!(
        store
            .claim_cluster(&c.id, "r-next", later, now)
            .await
            .unwrap()
    );
}
