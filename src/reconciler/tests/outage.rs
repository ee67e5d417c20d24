//! A database outage under the reconciler, on a real PostgreSQL that the tests stop and
//! restart: no cluster is failed or charged for it, and work resumes by itself.

use std::time::Duration;

use super::*;
use crate::store::PostgresStore;
use crate::testing::postgres::TestPostgres;

/// A service and reconciler over a PostgreSQL server of the test's own (it may stop it).
async fn mk_pg_service() -> (TestPostgres, ClusterService, Arc<FakeDriver>, Reconciler) {
    crate::telemetry::init_for_tests();
    let pg = TestPostgres::local().await;
    let store = Arc::new(PostgresStore::open(&pg.database().await).await.unwrap());
    let driver = Arc::new(FakeDriver::default());
    let wake = Arc::new(Notify::new());
    let service = ClusterService::new(
        store,
        driver.clone(),
        ClusterPolicy::default(),
        wake.clone(),
    );
    let reconciler = Reconciler::new(service.clone(), wake, 4);
    (pg, service, driver, reconciler)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_outage_neither_fails_a_provisioning_cluster_nor_counts_as_an_attempt() {
    // Arrange: a Provisioning cluster whose driver keeps failing transiently meanwhile.
    let (mut pg, service, driver, reconciler) = mk_pg_service().await;
    let c = mk_cluster(&service, "web").await;
    assert_eq!(reconciler.reconcile_until_idle(1).await, 1);
    let provisioning = phase_of(&service, &c.id).await;
    assert_eq!(provisioning.phase, Phase::Provisioning);
    let steps = MAX_PROVISION_ATTEMPTS as usize + 2;
    driver.script_ensure((0..steps).map(|_| Outcome::Transient("etcd starting".into())));

    // Act: more steps than the attempt limit while the database is down.
    pg.stop().await;
    let mut actions = vec![];
    for _ in 0..steps {
        actions.push(reconcile_one(&service, &Settings::default(), provisioning.clone()).await);
    }
    pg.restart().await;
    let after = phase_of(&service, &c.id).await;
    reconciler.reconcile_until_idle(20).await;
    let done = phase_of(&service, &c.id).await;

    // Assert
    assert!(
        actions.iter().all(|a| *a == Action::StoreUnavailable),
        "each step reports the outage: {actions:?}"
    );
    assert_eq!(after, provisioning, "nothing was recorded for the outage");
    assert!(
        after.next_reconcile_at <= crate::domain::Timestamp::now(),
        "the cluster is still due, not backed off"
    );
    assert_eq!(done.phase, Phase::Ready, "{}", done.message);
    assert_eq!(done.attempts, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_run_loop_pauses_through_a_store_outage_and_resumes_by_itself() {
    // Arrange: a new cluster, then the database stops before the reconciler runs.
    let (mut pg, service, _driver, reconciler) = mk_pg_service().await;
    let c = mk_cluster(&service, "web").await;
    pg.stop().await;
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(reconciler.run(shutdown.clone()));

    // Act: a few seconds down, then back; the reconciler is not restarted.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let alive_while_down = !running.is_finished();
    pg.restart().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut now = phase_of(&service, &c.id).await;
    while now.phase != Phase::Ready && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        now = phase_of(&service, &c.id).await;
    }
    shutdown.cancel();
    let stopped = running.await.unwrap();

    // Assert
    assert!(alive_while_down, "the reconciler outlives the outage");
    assert_eq!(
        now.phase,
        Phase::Ready,
        "resumed after the outage: {}",
        now.message
    );
    assert_eq!(now.attempts, 0);
    stopped.expect("the reconciler stops cleanly");
}
