//! The local driver against real kube-apiserver and etcd processes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{ListParams, PostParams};
use vcm::controlplane::KubeBins;
use vcm::domain::{Cluster, ClusterName, Phase};
use vcm::driver::local::LocalDriver;
use vcm::driver::{Driver, Ensured};

/// Kills every process under the driver's root when the test ends, however it ends.
struct Guard(LocalDriver, #[allow(dead_code)] tempfile::TempDir);

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.kill_all_processes();
    }
}

fn mk_guard() -> Guard {
    let dir = tempfile::tempdir().unwrap();
    let driver = LocalDriver::new(dir.path().join("local"), KubeBins::locate())
        .unwrap_or_else(|e| panic!("{e:#}"));
    Guard(driver, dir)
}

fn mk_cluster() -> Cluster {
    let mut c = vcm::store::conformance::mk_cluster("local");
    c.name = ClusterName::from_id(&c.id);
    c.phase = Phase::Provisioning;
    c
}

#[tokio::test]
async fn a_local_cluster_serves_the_api_isolated_and_leaves_nothing_after_delete() {
    // Arrange
    let guard = mk_guard();
    let driver = &guard.0;
    let (a, b) = (mk_cluster(), mk_cluster());

    // Act: create two clusters.
    let started = Instant::now();
    let Ensured::Ready { endpoint } = driver.ensure(&a).await.unwrap() else {
        panic!("not ready")
    };
    eprintln!(
        "first cluster (with etcd start) ready in {:?}",
        started.elapsed()
    );
    let started = Instant::now();
    driver.ensure(&b).await.unwrap();
    eprintln!("second cluster ready in {:?}", started.elapsed());
    assert!(endpoint.starts_with("https://127.0.0.1:"));

    // Assert: each is a separate API; CI credentials work and see only their own cluster.
    let admin_a = driver.admin_kubeconfig(&a).await.unwrap();
    let ci_a = vcm::driver::mint_ci_kubeconfig(&admin_a, "a", 600)
        .await
        .unwrap();
    let ci_b =
        vcm::driver::mint_ci_kubeconfig(&driver.admin_kubeconfig(&b).await.unwrap(), "b", 600)
            .await
            .unwrap();
    let cms_a: Api<ConfigMap> = Api::namespaced(ci_a.client().await.unwrap(), "default");
    let cm: ConfigMap =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "only-in-a"}})).unwrap();
    cms_a.create(&PostParams::default(), &cm).await.unwrap();
    let cms_b: Api<ConfigMap> = Api::namespaced(ci_b.client().await.unwrap(), "default");
    let in_b = cms_b.list(&ListParams::default()).await.unwrap();
    assert!(
        in_b.items
            .iter()
            .all(|c| c.metadata.name.as_deref() != Some("only-in-a"))
    );
    assert!(driver.etcd_key_count(&a.id).await.unwrap() > 0);

    // Act: delete A (twice: idempotent).
    driver.delete(&a.id).await.unwrap();
    driver.delete(&a.id).await.unwrap();

    // Assert: no process, directory or etcd key of A is left; B still serves.
    assert_eq!(
        driver.etcd_key_count(&a.id).await.unwrap(),
        0,
        "etcd keys leaked"
    );
    assert!(
        !driver.root().join("clusters").join(a.id.as_str()).exists(),
        "directory leaked"
    );
    assert!(!driver.list_managed().await.unwrap().contains(&a.id));
    let a_procs = vcm::controlplane::find_processes(&format!("clusters/{}", a.id));
    assert!(
        a_procs.is_empty(),
        "kube-apiserver of A still runs: {a_procs:?}"
    );
    cms_b
        .list(&ListParams::default())
        .await
        .expect("B unaffected");
}

#[tokio::test]
async fn a_restarted_driver_readopts_running_control_planes() {
    // Arrange
    let guard = mk_guard();
    let c = mk_cluster();
    let Ensured::Ready { endpoint } = guard.0.ensure(&c).await.unwrap() else {
        panic!()
    };
    let pids = guard.0.process_ids();

    // Act: a new driver over the same directory (what a vcm restart does).
    let again = LocalDriver::new(guard.0.root(), KubeBins::locate()).unwrap();
    let Ensured::Ready {
        endpoint: again_endpoint,
    } = again.ensure(&c).await.unwrap()
    else {
        panic!()
    };

    // Assert: same endpoint, same processes (adopted, not restarted).
    assert_eq!(endpoint, again_endpoint);
    let mut after = again.process_ids();
    let mut before = pids.clone();
    after.sort();
    before.sort();
    assert_eq!(before, after);
}

#[tokio::test]
async fn a_killed_control_plane_is_restarted_by_ensure() {
    let guard = mk_guard();
    let c = mk_cluster();
    guard.0.ensure(&c).await.unwrap();
    let procs = vcm::controlplane::find_processes(&format!("clusters/{}", c.id));
    assert_eq!(procs.len(), 1);
    vcm::controlplane::kill_group(procs[0].0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let Ensured::Ready { .. } = guard.0.ensure(&c).await.unwrap() else {
        panic!()
    };
    let admin = guard.0.admin_kubeconfig(&c).await.unwrap();
    admin
        .client()
        .await
        .unwrap()
        .apiserver_version()
        .await
        .expect("restarted API answers");
}
