#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use tokio::sync::Notify;

use super::*;
use crate::api::CreateClusterRequest;
use crate::domain::{Cluster, DeleteReason, Phase, Principal, Role};
use crate::driver::Driver as _;
use crate::driver::fake::{FakeDriver, Outcome};
use crate::service::{ClusterPolicy, ClusterService};
use crate::store::SqliteStore;
use crate::workers::{Pruner, PrunerConfig};

fn mk_local_host() -> crate::driver::HostInfo {
    crate::driver::HostInfo {
        name: "local".into(),
        labels: Default::default(),
        max_clusters: None,
        reachable: true,
        message: String::new(),
    }
}

async fn mk_service() -> (ClusterService, Arc<FakeDriver>, Reconciler) {
    crate::telemetry::init_for_tests();
    let store = Arc::new(SqliteStore::open("sqlite::memory:").await.unwrap());
    let driver = Arc::new(FakeDriver::default());
    let wake = Arc::new(Notify::new());
    let service = ClusterService::new(
        store,
        driver.clone(),
        ClusterPolicy::default(),
        wake.clone(),
    );
    let reconciler = Reconciler::new(service.clone(), wake, 4);
    (service, driver, reconciler)
}

fn who() -> Principal {
    Principal::token("t-ci", "ci", Role::Admin, None)
}

async fn mk_cluster(service: &ClusterService, name: &str) -> Cluster {
    let req = CreateClusterRequest {
        name: Some(name.into()),
        ..Default::default()
    };
    service.create(&who(), req, None).await.unwrap().0
}

/// Make a backed-off cluster due now (instead of sleeping through the backoff).
async fn make_due(service: &ClusterService, id: &ClusterId) {
    let mut c = service.store().get_cluster(id).await.unwrap().unwrap();
    c.next_reconcile_at = crate::domain::Timestamp::now();
    service.store().update_cluster(&c, &[]).await.unwrap();
}

async fn phase_of(service: &ClusterService, id: &ClusterId) -> Cluster {
    service.store().get_cluster(id).await.unwrap().unwrap()
}

#[tokio::test]
async fn a_new_cluster_goes_pending_provisioning_ready_with_events() {
    // Arrange
    let (service, driver, reconciler) = mk_service().await;
    let c = mk_cluster(&service, "web").await;

    // Act
    reconciler.reconcile_until_idle(20).await;

    // Assert
    let c = phase_of(&service, &c.id).await;
    assert_eq!(c.phase, Phase::Ready, "{}", c.message);
    assert!(c.message.starts_with("ready in"), "{}", c.message);
    assert!(c.endpoint.is_some() && c.ready_at.is_some());
    let kinds: Vec<_> = service
        .store()
        .list_events(&c.id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.kind, e.to_phase))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("created".to_string(), None),
            ("phase_changed".to_string(), Some(Phase::Provisioning)),
            ("phase_changed".to_string(), Some(Phase::Ready)),
        ]
    );
    assert_eq!(driver.calls(), vec![format!("ensure {}", c.id)]);
}

#[tokio::test]
async fn transient_driver_errors_back_off_then_succeed() {
    // Arrange
    let (service, driver, reconciler) = mk_service().await;
    driver.script_ensure([
        Outcome::Transient("etcd starting".into()),
        Outcome::Transient("still".into()),
    ]);
    let c = mk_cluster(&service, "web").await;

    // Act / Assert: after the first error the cluster waits (backoff), then recovers.
    reconciler.reconcile_until_idle(20).await;
    let mid = phase_of(&service, &c.id).await;
    assert_eq!(mid.phase, Phase::Provisioning);
    assert_eq!(mid.attempts, 1);
    assert!(mid.message.contains("etcd starting"), "{}", mid.message);
    assert!(mid.next_reconcile_at > crate::domain::Timestamp::now());
    for _ in 0..2 {
        make_due(&service, &c.id).await;
        reconciler.reconcile_until_idle(20).await;
    }
    let done = phase_of(&service, &c.id).await;
    assert_eq!(done.phase, Phase::Ready);
    assert_eq!(done.attempts, 0);
}

#[tokio::test]
async fn a_permanent_error_fails_the_cluster_with_its_message_and_cleans_up() {
    // Arrange
    let (service, driver, reconciler) = mk_service().await;
    driver.script_ensure([Outcome::Permanent(
        "kube-apiserver not found; run make k8s-bins".into(),
    )]);
    let c = mk_cluster(&service, "web").await;

    // Act
    reconciler.reconcile_until_idle(20).await;

    // Assert
    let c = phase_of(&service, &c.id).await;
    assert_eq!(c.phase, Phase::Failed);
    assert!(c.message.contains("make k8s-bins"), "{}", c.message);
    assert!(c.cleaned_up, "a failed cluster's resources are released");
    assert!(driver.calls().contains(&format!("delete {}", c.id)));
    let metrics = service.metrics().render();
    assert!(
        metrics.contains(&format!(
            r#"vcm_cluster_failures_total{{driver="{}",reason="driver_permanent"}} 1"#,
            driver.name()
        )),
        "{metrics}"
    );
}

#[tokio::test]
async fn endless_transient_errors_fail_the_cluster_after_the_attempt_limit() {
    let (service, driver, reconciler) = mk_service().await;
    driver.script_ensure(
        (0..MAX_PROVISION_ATTEMPTS).map(|_| Outcome::Transient("host unreachable".into())),
    );
    let c = mk_cluster(&service, "web").await;
    for _ in 0..MAX_PROVISION_ATTEMPTS {
        make_due(&service, &c.id).await;
        reconciler.reconcile_until_idle(20).await;
    }
    let c = phase_of(&service, &c.id).await;
    assert_eq!(c.phase, Phase::Failed, "{}", c.message);
    assert!(
        c.message.contains("after 8 attempts") && c.message.contains("host unreachable"),
        "{}",
        c.message
    );
    let metrics = service.metrics().render();
    let retries: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("vcm_reconciler_retries_total{"))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum();
    assert_eq!(
        retries,
        f64::from(MAX_PROVISION_ATTEMPTS - 1),
        "every transient error but the last is a retry: {metrics}"
    );
}

#[tokio::test]
async fn deleting_a_ready_cluster_releases_it_and_ends_deleted() {
    // Arrange
    let (service, driver, reconciler) = mk_service().await;
    let c = mk_cluster(&service, "web").await;
    reconciler.reconcile_until_idle(20).await;

    // Act
    service
        .delete(&who(), "web", DeleteReason::Requested)
        .await
        .unwrap();
    service
        .delete(&who(), c.id.as_str(), DeleteReason::Requested)
        .await
        .unwrap();
    reconciler.reconcile_until_idle(20).await;

    // Assert
    let c = phase_of(&service, &c.id).await;
    assert_eq!(c.phase, Phase::Deleted);
    assert!(c.deleted_at.is_some());
    assert_eq!(
        driver
            .calls()
            .iter()
            .filter(|s| s.starts_with("delete"))
            .count(),
        1
    );
    // The name is free again.
    mk_cluster(&service, "web").await;
}

#[tokio::test]
async fn a_failed_delete_is_retried_until_it_succeeds() {
    let (service, driver, reconciler) = mk_service().await;
    let c = mk_cluster(&service, "web").await;
    reconciler.reconcile_until_idle(20).await;
    driver.script_delete([Outcome::Transient("etcd busy".into())]);
    service
        .delete(&who(), "web", DeleteReason::Requested)
        .await
        .unwrap();
    reconciler.reconcile_until_idle(20).await;
    assert_eq!(phase_of(&service, &c.id).await.phase, Phase::Deleting);
    make_due(&service, &c.id).await;
    reconciler.reconcile_until_idle(20).await;
    assert_eq!(phase_of(&service, &c.id).await.phase, Phase::Deleted);
}

/// Expiry, idleness, orphans, lost clusters and removed hosts.
mod cleanup;

/// A database outage: no cluster failed or charged, work resumes by itself.
mod outage;

/// Reconcile claims: one replica steps a cluster at a time; a dead one's claim runs out.
mod claims;

/// Three replicas on one PostgreSQL: claims hold, dead replicas' clusters are taken over.
mod replicas;
