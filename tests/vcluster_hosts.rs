//! Several real host API servers behind the vcluster driver: placement by label and by load, a
//! full set of hosts answering 503, an unreachable host skipped, and the orphan sweeper deleting
//! exactly the labelled namespaces that no record owns.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::PostParams;
use tokio::sync::Notify;
use vcm::api::CreateClusterRequest;
use vcm::controlplane::KubeBins;
use vcm::domain::{Principal, Role};
use vcm::driver::vcluster::{HostConfig, VclusterConfig, VclusterDriver};
use vcm::error::ErrorKind;
use vcm::service::{ClusterPolicy, ClusterService};
use vcm::store::SqliteStore;
use vcm::testing::{TestBed, eventually};
use vcm::workers::{Pruner, PrunerConfig};

fn mk_host(name: &str, bed: &TestBed, region: &str, max: u32) -> HostConfig {
    let mut host = HostConfig::new(name, Some(bed.kubeconfig_path()));
    host.labels = [("region".to_string(), region.to_string())].into();
    host.max_clusters = Some(max);
    host
}

async fn mk_service(hosts: Vec<HostConfig>, orphan_grace: Duration) -> ClusterService {
    let mut config = VclusterConfig::from_bins(&KubeBins::locate())
        .unwrap_or_else(|e| panic!("{e} (the vcluster CLI comes with `make k8s-bins`)"));
    config.orphan_grace = orphan_grace;
    let driver = Arc::new(VclusterDriver::new(hosts, config).await.unwrap());
    let store = Arc::new(SqliteStore::open("sqlite::memory:").await.unwrap());
    ClusterService::new(
        store,
        driver,
        ClusterPolicy::default(),
        Arc::new(Notify::new()),
    )
}

fn who() -> Principal {
    Principal::token("t-ci", "ci", Role::Admin, None)
}

fn with_region(region: &str) -> CreateClusterRequest {
    CreateClusterRequest {
        host_selector: Some([("region".to_string(), region.to_string())].into()),
        ..Default::default()
    }
}

#[tokio::test]
async fn placement_follows_labels_and_load_refuses_when_full_and_skips_unreachable_hosts() {
    // Arrange: two real host API servers.
    let (eu, us) = (TestBed::tier_a().await, TestBed::tier_a().await);
    let service = mk_service(
        vec![mk_host("eu-1", &eu, "eu", 1), mk_host("us-1", &us, "us", 2)],
        Duration::from_secs(300),
    )
    .await;

    // Act / Assert: by label.
    let c = service
        .create(&who(), with_region("us"), None)
        .await
        .unwrap()
        .0;
    assert_eq!(c.host, "us-1");
    // By load: eu-1 is empty (0/1), us-1 half full (1/2): the least-loaded share wins.
    let c = service
        .create(&who(), CreateClusterRequest::default(), None)
        .await
        .unwrap()
        .0;
    assert_eq!(c.host, "eu-1");
    let c = service
        .create(&who(), CreateClusterRequest::default(), None)
        .await
        .unwrap()
        .0;
    assert_eq!(c.host, "us-1");
    // Full everywhere: 503 naming each host's use.
    let err = service
        .create(&who(), CreateClusterRequest::default(), None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(
        err.to_string().contains("eu-1 1/1") && err.to_string().contains("us-1 2/2"),
        "{err}"
    );
    let hosts = service.hosts().await.unwrap();
    assert!(hosts.iter().all(|h| h.host.reachable), "{hosts:?}");
    assert_eq!(hosts.iter().map(|h| h.clusters).sum::<u32>(), 3);

    // An unreachable host is reported and skipped.
    drop(eu);
    let hosts = service.hosts().await.unwrap();
    let eu_view = hosts.iter().find(|h| h.host.name == "eu-1").unwrap();
    assert!(
        !eu_view.host.reachable && !eu_view.host.message.is_empty(),
        "{eu_view:?}"
    );
    let err = service
        .create(&who(), with_region("eu"), None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(err.to_string().contains("no reachable host"), "{err}");
}

#[tokio::test]
async fn the_sweeper_deletes_only_labelled_namespaces_without_a_record() {
    // Arrange: a host with a vcm-labelled namespace nobody owns, and an unrelated namespace.
    let bed = TestBed::tier_b().await;
    let service = mk_service(vec![mk_host("h1", &bed, "eu", 10)], Duration::ZERO).await;
    let nss: Api<Namespace> = Api::all(bed.client());
    let mk_ns = |name: &str, labelled: bool| {
        let mut ns = serde_json::json!({"metadata": {"name": name}});
        if labelled {
            ns["metadata"]["labels"] = serde_json::json!({
                "app.kubernetes.io/managed-by": "vcm",
                "vcm.dev/cluster-id": name.trim_start_matches("vcm-"),
            });
        }
        serde_json::from_value::<Namespace>(ns).unwrap()
    };
    nss.create(&PostParams::default(), &mk_ns("vcm-c-orphan0001", true))
        .await
        .unwrap();
    nss.create(&PostParams::default(), &mk_ns("payments", false))
        .await
        .unwrap();

    // Act
    let report = Pruner::new(service.clone(), PrunerConfig::default())
        .pass()
        .await;

    // Assert
    assert_eq!(
        report
            .orphans
            .iter()
            .map(|id| id.to_string())
            .collect::<Vec<_>>(),
        vec!["c-orphan0001"]
    );
    eventually("orphan namespace gone", Duration::from_secs(60), || async {
        Ok(nss
            .get_opt("vcm-c-orphan0001")
            .await?
            .is_none()
            .then_some(()))
    })
    .await
    .unwrap();
    assert!(
        nss.get_opt("payments").await.unwrap().is_some(),
        "an unlabelled namespace is never touched"
    );
}

#[tokio::test]
async fn a_cli_failure_fails_the_cluster_through_the_reconciler_with_the_cli_message_and_no_namespace_left()
 {
    // Arrange: the whole path (service, reconciler, vcluster driver, real CLI, real host) with a
    // chart directory that is not a chart.
    let bed = TestBed::tier_b().await;
    let not_a_chart = tempfile::tempdir().unwrap();
    let mut config = VclusterConfig::from_bins(&KubeBins::locate()).unwrap();
    config.chart = vcm::driver::vcluster::ChartSource::LocalDir(not_a_chart.path().to_path_buf());
    let driver = Arc::new(
        VclusterDriver::new(vec![mk_host("h1", &bed, "eu", 5)], config)
            .await
            .unwrap(),
    );
    let store = Arc::new(SqliteStore::open("sqlite::memory:").await.unwrap());
    let wake = Arc::new(Notify::new());
    let service = ClusterService::new(store, driver, ClusterPolicy::default(), wake.clone());
    let reconciler = vcm::reconciler::Reconciler::new(service.clone(), wake, 2);
    let (cluster, _) = service
        .create(&who(), CreateClusterRequest::default(), None)
        .await
        .unwrap();

    // Act
    reconciler.reconcile_until_idle(20).await;

    // Assert: Failed with the CLI's own words, resources released, namespace gone.
    let c = service
        .store()
        .get_cluster(&cluster.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.phase, vcm::domain::Phase::Failed, "{}", c.message);
    assert!(
        c.message.contains("Chart.yaml"),
        "the message says what to fix: {}",
        c.message
    );
    assert!(c.cleaned_up, "{c:?}");
    let nss: Api<Namespace> = Api::all(bed.client());
    assert!(
        nss.get_opt(&format!("vcm-{}", cluster.id))
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn deleting_a_cluster_whose_host_was_removed_stays_deleting_until_an_admin_forgets_it() {
    // Arrange: a cluster on host "h1" whose namespace is there, then h1 is dropped from the
    // configuration (a new vcm knows only "h2", another real host).
    let (old, new) = (TestBed::tier_a().await, TestBed::tier_a().await);
    let before = mk_service(vec![mk_host("h1", &old, "eu", 5)], Duration::from_secs(300)).await;
    let (cluster, _) = before
        .create(&who(), CreateClusterRequest::default(), None)
        .await
        .unwrap();
    let ns = format!("vcm-{}", cluster.id);
    let old_nss: Api<Namespace> = Api::all(old.client());
    let ns_obj: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": ns}})).unwrap();
    old_nss
        .create(&PostParams::default(), &ns_obj)
        .await
        .unwrap();
    let mut config = VclusterConfig::from_bins(&KubeBins::locate()).unwrap();
    config.orphan_grace = Duration::from_secs(300);
    let driver = Arc::new(
        VclusterDriver::new(vec![mk_host("h2", &new, "eu", 5)], config)
            .await
            .unwrap(),
    );
    let wake = Arc::new(Notify::new());
    let service = ClusterService::new(
        before.store().clone(),
        driver,
        ClusterPolicy::default(),
        wake.clone(),
    );
    let mut ready = service
        .store()
        .get_cluster(&cluster.id)
        .await
        .unwrap()
        .unwrap();
    ready.phase = vcm::domain::Phase::Ready;
    service.store().update_cluster(&ready, &[]).await.unwrap();
    let reconciler = vcm::reconciler::Reconciler::new(service.clone(), wake, 2);

    // Act
    service
        .delete(
            &who(),
            cluster.id.as_str(),
            vcm::domain::DeleteReason::Requested,
        )
        .await
        .unwrap();
    reconciler.reconcile_until_idle(20).await;

    // Assert: not Deleted (its namespace lives on h1), and the message names the host.
    let stuck = service
        .store()
        .get_cluster(&cluster.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stuck.phase,
        vcm::domain::Phase::Deleting,
        "{}",
        stuck.message
    );
    assert!(stuck.message.contains("\"h1\""), "{}", stuck.message);
    assert!(old_nss.get_opt(&ns).await.unwrap().is_some());

    // Act / Assert: an admin forgets it; the events say who, and the namespace is left alone.
    let forgotten = service
        .forget(
            &Principal::token("t-ops", "ops", Role::Admin, None),
            cluster.id.as_str(),
        )
        .await
        .unwrap();
    assert_eq!(forgotten.phase, vcm::domain::Phase::Deleted);
    let events = service.store().list_events(&cluster.id).await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.kind == "forgotten" && e.message.contains("ops (token:t-ops)")),
        "{events:?}"
    );
    assert!(old_nss.get_opt(&ns).await.unwrap().is_some());
}
