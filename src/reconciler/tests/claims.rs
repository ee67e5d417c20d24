use std::sync::atomic::{AtomicUsize, Ordering};

use jiff::SignedDuration;

use super::*;
use crate::reconciler::claim::step_claimed;

fn secs_from_now(secs: i64) -> Timestamp {
    Timestamp::now() + SignedDuration::from_secs(secs)
}

#[tokio::test]
async fn a_cluster_another_replica_holds_is_skipped() {
    // Arrange: replica "other" holds the cluster's claim for 30 s more.
    let (service, _driver, _reconciler) = mk_service().await;
    let c = mk_cluster(&service, "web").await;
    let now = Timestamp::now();
    assert!(
        service
            .store()
            .claim_cluster(&c.id, "other", secs_from_now(30), now)
            .await
            .unwrap()
    );
    let steps = AtomicUsize::new(0);

    // Act
    let action = step_claimed(&service, "me", CLAIM_TTL, &c, |_| async {
        steps.fetch_add(1, Ordering::SeqCst);
        Action::Now
    })
    .await;

    // Assert
    assert_eq!(action, Action::Later);
    assert_eq!(steps.load(Ordering::SeqCst), 0, "no step on a held cluster");
}

#[tokio::test]
async fn a_dead_replicas_expired_claim_is_taken_over_and_released_after_the_step() {
    // Arrange: replica "dead" claimed the cluster and stopped renewing; its claim ran out.
    let (service, _driver, _reconciler) = mk_service().await;
    let c = mk_cluster(&service, "web").await;
    let store = service.store().clone();
    assert!(
        store
            .claim_cluster(&c.id, "dead", secs_from_now(-1), secs_from_now(-31))
            .await
            .unwrap()
    );

    // Act: the step runs on the record as it is now, while "me" holds the claim.
    let want = c.id.clone();
    let action = step_claimed(&service, "me", CLAIM_TTL, &c, |fresh| {
        let store = store.clone();
        async move {
            assert_eq!(fresh.id, want);
            let now = Timestamp::now();
            let held = store
                .claim_cluster(&fresh.id, "third", secs_from_now(30), now)
                .await
                .unwrap();
            assert!(
                !held,
                "while the step runs, no one else may claim the cluster"
            );
            Action::Now
        }
    })
    .await;

    // Assert: done, and the claim is free again.
    assert_eq!(action, Action::Now);
    let now = Timestamp::now();
    assert!(
        store
            .claim_cluster(&c.id, "third", secs_from_now(30), now)
            .await
            .unwrap(),
        "the claim is released after the step"
    );
}

#[tokio::test]
async fn a_cluster_another_replica_stepped_meanwhile_is_not_stepped_again() {
    // Arrange: read due, then stepped elsewhere (its next reconcile moved into the future).
    let (service, _driver, _reconciler) = mk_service().await;
    let due = mk_cluster(&service, "web").await;
    let mut stepped = service.store().get_cluster(&due.id).await.unwrap().unwrap();
    stepped.next_reconcile_at = secs_from_now(30);
    service.store().update_cluster(&stepped, &[]).await.unwrap();

    // Act
    let action = step_claimed(&service, "me", CLAIM_TTL, &due, |_| async {
        panic!("a cluster that is no longer due must not be stepped")
    })
    .await;

    // Assert
    assert_eq!(action, Action::Later);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_reconcilers_on_one_store_create_each_cluster_once() {
    // Arrange: two replicas (two reconcilers, each its own replica id) over one store, and a
    // slow driver, so both see the same due clusters while steps run.
    let (service, driver, a) = mk_service().await;
    driver.set_ensure_delay(std::time::Duration::from_millis(300));
    let b = Reconciler::new(service.clone(), Arc::new(Notify::new()), 4);
    assert_ne!(a.replica(), b.replica());
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(mk_cluster(&service, &format!("c{i}")).await.id);
    }

    // Act
    let shutdown = CancellationToken::new();
    let runs = [
        tokio::spawn(a.run(shutdown.clone())),
        tokio::spawn(b.run(shutdown.clone())),
    ];
    let deadline = Instant::now() + Duration::from_secs(20);
    for id in &ids {
        while phase_of(&service, id).await.phase != Phase::Ready {
            assert!(
                Instant::now() < deadline,
                "cluster {id} did not become Ready"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    shutdown.cancel();
    for r in runs {
        r.await.unwrap().unwrap();
    }

    // Assert: without claims both replicas would call ensure on every cluster at once.
    for id in &ids {
        let ensures = driver
            .calls()
            .iter()
            .filter(|c| c.starts_with("ensure") && c.contains(id.as_str()))
            .count();
        assert_eq!(ensures, 1, "cluster {id} was created {ensures} times");
    }
}
