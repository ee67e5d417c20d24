//! PostgreSQL-specific tests, on a real server ([`TestPostgres`]); the shared contract is
//! `store::conformance`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use super::*;
use crate::domain::Cluster;
use crate::store::conformance::{self, mk_cluster, mk_event};
use crate::store::{Store, StoreError};
use crate::testing::postgres::TestPostgres;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_passes_the_conformance_suite() {
    let pg = TestPostgres::start().await;
    conformance::run_suite(|| async {
        let url = pg.database().await;
        Arc::new(PostgresStore::open(&url).await.unwrap()) as Arc<dyn Store>
    })
    .await;
}

#[tokio::test]
async fn migrations_run_once_and_the_installation_id_survives_a_reopen() {
    // Arrange
    let pg = TestPostgres::start().await;
    let url = pg.database().await;
    let c = mk_cluster("durable");
    let store = PostgresStore::open(&url).await.unwrap();
    store
        .insert_cluster(&c, &mk_event("created"), None)
        .await
        .unwrap();
    let id = store.installation_id().await.unwrap();
    store.pool.close().await;

    // Act: open the same database again (migrations must be a no-op on an up-to-date one).
    let again = PostgresStore::open(&url).await.unwrap();

    // Assert
    assert_eq!(again.get_cluster(&c.id).await.unwrap(), Some(c.clone()));
    assert_eq!(again.installation_id().await.unwrap(), id);
    let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
        .fetch_one(&again.pool)
        .await
        .unwrap();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres");
    let migrations = std::fs::read_dir(dir).unwrap().count();
    assert_eq!(
        applied as usize, migrations,
        "each migration is recorded once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_see_each_others_writes_and_only_one_wins_a_version() {
    // Arrange: two stores as two vcm replicas open them, through both URL schemes.
    let pg = TestPostgres::start().await;
    let url = pg.database().await;
    let a = crate::store::open(&url).await.unwrap();
    let b = crate::store::open(&url.replacen("postgres://", "postgresql://", 1))
        .await
        .unwrap();
    let c = mk_cluster("shared");
    a.insert_cluster(&c, &mk_event("created"), None)
        .await
        .unwrap();
    let read_by_a = a.get_cluster(&c.id).await.unwrap().unwrap();

    // Act: B changes the cluster, then both write from the version A read.
    let by_b = Cluster {
        message: "changed by b".into(),
        ..b.get_cluster(&c.id).await.unwrap().unwrap()
    };
    let written = b.update_cluster(&by_b, &[]).await.unwrap();
    let stale = Cluster {
        message: "changed by a".into(),
        ..read_by_a
    };
    let from_a = a.update_cluster(&stale, &[mk_event("lost")]).await;

    // Assert: nothing is cached in A, and A's stale write is refused.
    assert_eq!(
        a.get_cluster(&c.id).await.unwrap(),
        Some(written.clone()),
        "a replica reads what another wrote (no cache in front of PostgreSQL)"
    );
    assert!(
        matches!(from_a, Err(StoreError::Conflict(_))),
        "a write from a version another replica moved on: {from_a:?}"
    );
    let races: Vec<_> = [a.clone(), b.clone()]
        .into_iter()
        .enumerate()
        .map(|(i, store)| {
            let mine = Cluster {
                message: format!("racer {i}"),
                ..written.clone()
            };
            tokio::spawn(async move { store.update_cluster(&mine, &[]).await })
        })
        .collect();
    let mut wins = 0;
    for race in races {
        match race.await.unwrap() {
            Ok(_) => wins += 1,
            Err(StoreError::Conflict(_)) => {}
            Err(e) => panic!("only Conflict may refuse a racing write: {e:?}"),
        }
    }
    assert_eq!(wins, 1, "two replicas from one version: exactly one wins");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_goes_away_is_unavailable_until_it_returns() {
    // Arrange: a server of our own (this test stops it), a store with a cluster in it.
    let mut pg = TestPostgres::local().await;
    let store = PostgresStore::open(&pg.database().await).await.unwrap();
    let c = mk_cluster("outage");
    store
        .insert_cluster(&c, &mk_event("created"), None)
        .await
        .unwrap();

    // Act: the server stops.
    pg.stop().await;

    // Assert: every call answers Unavailable (a 503 with Retry-After at the HTTP door).
    let ping = store.ping().await;
    assert!(
        matches!(ping, Err(StoreError::Unavailable(_))),
        "ping: {ping:?}"
    );
    let read = store.get_cluster(&c.id).await;
    assert!(
        matches!(read, Err(StoreError::Unavailable(_))),
        "get_cluster: {read:?}"
    );
    let err = crate::error::Error::from(read.unwrap_err());
    assert_eq!(err.kind(), crate::error::ErrorKind::Unavailable);

    // Act: it comes back; the same store (not reopened) works again.
    pg.restart().await;

    // Assert
    store.ping().await.expect("ping after the restart");
    let back = store.get_cluster(&c.id).await.unwrap();
    assert_eq!(back, Some(c.clone()), "the data survived the restart");
    let moved = Cluster {
        message: "after the outage".into(),
        ..c
    };
    store
        .update_cluster(&moved, &[mk_event("updated")])
        .await
        .expect("a write after the restart");
}

#[tokio::test]
async fn sessions_the_server_ends_are_replaced_without_an_error() {
    // Arrange
    let pg = TestPostgres::start().await;
    let url = pg.database().await;
    let store = PostgresStore::open(&url).await.unwrap();
    store.ping().await.unwrap();

    // Act: an administrator (or a failover) ends every session of the store (57P01).
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    let ended: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .fetch_all(&mut admin)
    .await
    .unwrap();

    // Assert: the pool notices before handing a dead connection out.
    assert!(!ended.is_empty(), "the store had a session to end");
    store.ping().await.expect("a new session");
    assert_eq!(store.live_clusters().await.unwrap(), vec![]);
}

#[tokio::test]
async fn an_unreachable_server_is_an_error_that_hides_the_password() {
    let url = "postgres://vcm:hunter2@localhost/vcm?host=/nonexistent/vcm-test";
    let err = PostgresStore::open(url).await.unwrap_err();
    let text = format!("{err:#}");
    assert!(!text.contains("hunter2"), "{text}");
    assert!(
        text.contains("vcm:***@localhost"),
        "names the server: {text}"
    );
    let err = crate::store::open(url).await.err().expect("an error");
    assert!(!format!("{err:#}").contains("hunter2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_replica_leads_a_role_until_its_session_dies_then_another_takes_it() {
    // Arrange: two replicas' stores on one database.
    let pg = TestPostgres::start().await;
    let url = pg.database().await;
    let a = PostgresStore::open(&url).await.unwrap();
    let b = PostgresStore::open(&url).await.unwrap();

    // Act and assert: a leads, b is refused, another role is independent.
    let mut lead_a = a
        .try_lead("pruner")
        .await
        .unwrap()
        .expect("a free role is taken");
    assert!(
        b.try_lead("pruner").await.unwrap().is_none(),
        "one leader per role"
    );
    assert!(
        b.try_lead("audit-retention").await.unwrap().is_some(),
        "roles are apart"
    );
    assert!(lead_a.still_leading().await);

    // The leader's session dies (a crash, a dropped connection): the server frees the lock.
    let killed: i64 = sqlx::query_scalar(
        "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_locks \
         WHERE locktype = 'advisory' AND classid = $1::oid AND granted",
    )
    .bind(i64::from(LOCK_LEADER))
    .fetch_one(&b.pool)
    .await
    .unwrap();
    assert!(killed >= 1, "the leader's session holds an advisory lock");
    assert!(!lead_a.still_leading().await, "the old leader finds out");
    let mut lead_b = None;
    for _ in 0..50 {
        lead_b = b.try_lead("pruner").await.unwrap();
        if lead_b.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let mut lead_b = lead_b.expect("another replica takes the role over");
    assert!(lead_b.still_leading().await);
    assert!(
        a.try_lead("pruner").await.unwrap().is_none(),
        "and keeps it"
    );

    // Dropping a leadership gives the role up.
    drop(lead_b);
    let mut again = None;
    for _ in 0..50 {
        again = a.try_lead("pruner").await.unwrap();
        if again.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(again.is_some(), "a dropped leadership frees the role");
}
