//! Expiry, idleness, the orphan sweep, lost clusters and removed hosts.

use super::*;

#[tokio::test]
async fn the_pruner_deletes_expired_and_idle_clusters_with_their_reasons() {
    // Arrange
    let (service, _driver, reconciler) = mk_service().await;
    let expired = mk_cluster(&service, "old").await;
    let idle = mk_cluster(&service, "idle").await;
    let fresh = mk_cluster(&service, "fresh").await;
    reconciler.reconcile_until_idle(20).await;
    let past = crate::domain::Timestamp::now() - jiff::SignedDuration::from_secs(3600);
    let mut e = phase_of(&service, &expired.id).await;
    e.expires_at = past;
    service.store().update_cluster(&e, &[]).await.unwrap();
    let mut i = phase_of(&service, &idle.id).await;
    i.idle_timeout = Some(crate::domain::Ttl::from_secs(60));
    i.last_activity_at = past;
    service.store().update_cluster(&i, &[]).await.unwrap();

    // Act
    let report = Pruner::new(service.clone(), PrunerConfig::default())
        .pass()
        .await;

    // Assert
    assert_eq!(report.expired, vec![expired.id.clone()]);
    assert_eq!(report.idle, vec![idle.id.clone()]);
    let e = phase_of(&service, &expired.id).await;
    assert_eq!(
        (e.phase, e.delete_reason),
        (Phase::Deleting, Some(DeleteReason::Expired))
    );
    let i = phase_of(&service, &idle.id).await;
    assert_eq!(
        (i.phase, i.delete_reason),
        (Phase::Deleting, Some(DeleteReason::Idle))
    );
    assert_eq!(phase_of(&service, &fresh.id).await.phase, Phase::Ready);
    let events = service.store().list_events(&e.id).await.unwrap();
    assert!(
        events
            .iter()
            .any(|ev| ev.reason.as_deref() == Some("expired"))
    );
}

#[tokio::test]
async fn the_sweeper_deletes_only_resources_without_a_live_record() {
    let (service, driver, reconciler) = mk_service().await;
    let kept = mk_cluster(&service, "kept").await;
    reconciler.reconcile_until_idle(20).await;
    let orphan = ClusterId::generate();
    driver.add_managed(orphan.clone());
    let report = Pruner::new(service.clone(), PrunerConfig::default())
        .pass()
        .await;
    assert_eq!(report.orphans, vec![orphan.clone()]);
    assert!(driver.calls().contains(&format!("delete {orphan}")));
    assert!(!driver.calls().contains(&format!("delete {}", kept.id)));
}

#[tokio::test]
async fn a_ready_cluster_whose_resources_vanished_fails_as_lost() {
    // Arrange
    let (service, driver, reconciler) = mk_service().await;
    let c = mk_cluster(&service, "web").await;
    reconciler.reconcile_until_idle(20).await;
    driver.script_ensure([Outcome::Lost(
        "namespace vcm-x was deleted on host h1".into(),
    )]);

    // Act: the periodic health check runs.
    make_due(&service, &c.id).await;
    reconciler.reconcile_until_idle(20).await;

    // Assert
    let c = phase_of(&service, &c.id).await;
    assert_eq!(c.phase, Phase::Failed);
    assert!(
        c.message.starts_with("lost: namespace vcm-x"),
        "{}",
        c.message
    );
    let events = service.store().list_events(&c.id).await.unwrap();
    assert!(
        events.iter().any(|e| e.reason.as_deref() == Some("lost")),
        "{events:?}"
    );
}

#[tokio::test]
async fn one_orphan_that_cannot_be_deleted_does_not_stop_the_rest_of_the_pruner_pass() {
    // Arrange: a stuck orphan (its Deleted record still readable), a second orphan, a
    // record past retention and an expired cluster.
    let (service, driver, reconciler) = mk_service().await;
    let stuck = mk_cluster(&service, "stuck").await;
    let old = mk_cluster(&service, "old").await;
    let expired = mk_cluster(&service, "expired").await;
    reconciler.reconcile_until_idle(20).await;
    for c in [&stuck, &old] {
        service
            .delete(&who(), c.id.as_str(), DeleteReason::Requested)
            .await
            .unwrap();
    }
    reconciler.reconcile_until_idle(20).await;
    let long_ago = crate::domain::Timestamp::now() - jiff::SignedDuration::from_secs(7200);
    let mut o = phase_of(&service, &old.id).await;
    o.deleted_at = Some(long_ago);
    service.store().update_cluster(&o, &[]).await.unwrap();
    let mut e = phase_of(&service, &expired.id).await;
    e.expires_at = long_ago;
    service.store().update_cluster(&e, &[]).await.unwrap();
    let other = ClusterId::generate();
    driver.add_managed(stuck.id.clone());
    driver.add_managed(other.clone());
    driver.script_delete([Outcome::Transient("etcd timed out".into())]);
    let pruner = Pruner::new(
        service.clone(),
        PrunerConfig {
            retention: std::time::Duration::from_secs(3600),
            ..PrunerConfig::default()
        },
    );

    // Act
    let first = pruner.pass().await;

    // Assert: everything but the stuck orphan was done, and its failure is on record.
    assert_eq!(first.expired, vec![expired.id.clone()]);
    assert_eq!(first.orphans, vec![other.clone()]);
    assert_eq!(first.purged, 1, "the record past retention is purged");
    assert_eq!(first.failures.len(), 1, "{:?}", first.failures);
    assert_eq!(first.failures[0].cluster.as_ref(), Some(&stuck.id));
    assert!(first.failures[0].error.contains("etcd timed out"));
    let events = service.store().list_events(&stuck.id).await.unwrap();
    assert!(
        events
            .iter()
            .any(|ev| ev.kind == "prune_failed" && ev.message.contains("etcd timed out")),
        "{events:?}"
    );

    // Act / Assert: the next pass retries it.
    let second = pruner.pass().await;
    assert_eq!(second.orphans, vec![stuck.id.clone()]);
    assert!(second.failures.is_empty(), "{:?}", second.failures);
}

#[tokio::test]
async fn a_cluster_whose_host_was_removed_stays_deleting_until_an_admin_forgets_it() {
    // Arrange: a Ready cluster whose host is no longer configured.
    let (service, driver, reconciler) = mk_service().await;
    let c = mk_cluster(&service, "web").await;
    reconciler.reconcile_until_idle(20).await;
    driver.script_delete([Outcome::HostRemoved("eks-old".into())]);

    // Act
    service
        .delete(&who(), "web", DeleteReason::Requested)
        .await
        .unwrap();
    reconciler.reconcile_until_idle(20).await;

    // Assert: still Deleting, saying which host and what to do.
    let stuck = phase_of(&service, &c.id).await;
    assert_eq!(stuck.phase, Phase::Deleting, "{}", stuck.message);
    assert!(
        stuck.message.contains("\"eks-old\"") && stuck.message.contains("forget"),
        "{}",
        stuck.message
    );

    // Act / Assert: only an admin may forget it; then it is Deleted and the events say who.
    let ci = Principal::token("t-pipeline", "pipeline", Role::Ci, None);
    let denied = service.forget(&ci, "web").await.unwrap_err();
    assert_eq!(denied.kind(), crate::error::ErrorKind::Forbidden);
    let admin = Principal::token("t-ops", "ops", Role::Admin, None);
    let configured = service.forget(&admin, "web").await.unwrap_err();
    assert_eq!(
        configured.code(),
        "host_still_configured",
        "forgetting is only for a host that is gone"
    );
    driver.set_hosts(vec![]);
    let forgotten = service.forget(&admin, "web").await.unwrap();
    assert_eq!(forgotten.phase, Phase::Deleted);
    assert!(forgotten.deleted_at.is_some());
    let events = service.store().list_events(&c.id).await.unwrap();
    assert!(
        events.iter().any(|e| e.kind == crate::service::FORGOTTEN
            && e.message.contains("ops (token:t-ops)")
            && e.message.contains(&format!("{:?}", c.host))),
        "{events:?}"
    );
    // Repeating is harmless; a live cluster must be deleted first.
    service.forget(&admin, c.id.as_str()).await.unwrap();
    driver.set_hosts(vec![mk_local_host()]);
    mk_cluster(&service, "live").await;
    let live = service.forget(&admin, "live").await.unwrap_err();
    assert_eq!(live.kind(), crate::error::ErrorKind::Conflict);
}

#[tokio::test]
async fn deletions_have_their_own_slots_and_are_not_starved_by_slow_creates() {
    // Arrange: one create slot, taken by a create that needs three seconds.
    let (service, driver, reconciler) = mk_service().await;
    let reconciler = Reconciler::new(service.clone(), reconciler.wake.clone(), 1);
    let done = mk_cluster(&service, "done").await;
    reconciler.reconcile_until_idle(20).await;
    driver.set_ensure_delay(std::time::Duration::from_secs(3));
    let slow = mk_cluster(&service, "slow").await;
    let stop = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn(reconciler.clone().run(stop.clone()));
    let ensuring = format!("ensure {}", slow.id);
    for _ in 0..100 {
        if driver.calls().contains(&ensuring) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(
        driver.calls().contains(&ensuring),
        "the slow create is in flight"
    );

    // Act: delete the other cluster while the create holds its slot.
    let started = std::time::Instant::now();
    service
        .delete(&who(), "done", DeleteReason::Requested)
        .await
        .unwrap();
    while phase_of(&service, &done.id).await.phase != Phase::Deleted
        && started.elapsed() < std::time::Duration::from_secs(5)
    {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let took = started.elapsed();
    stop.cancel();
    running.await.unwrap().unwrap();

    // Assert: deleted well before the create finished.
    assert_eq!(phase_of(&service, &done.id).await.phase, Phase::Deleted);
    assert!(
        took < std::time::Duration::from_secs(2),
        "deletion waited {took:?}"
    );
}
