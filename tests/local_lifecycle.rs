//! The whole engine against real things: service, reconciler and pruner over a SQLite file,
//! with the local driver running real etcd and kube-apiserver processes. The fake-driver tests
//! in `src/reconciler/tests.rs` cover the same paths step by step; these show the real
//! processes, ports, files and etcd keys behave.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/local_app.rs"]
mod local_app;

use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::ListParams;
use local_app::{App, mk_app, who};
use vcm::api::CreateClusterRequest;
use vcm::controlplane::{Pki, find_processes, is_alive, is_port_held, kill_group};
use vcm::domain::{Cluster, ClusterId, ClusterName, DeleteReason, Phase, Timestamp};
use vcm::driver::{Driver, Ensured};
use vcm::reconciler::MAX_PROVISION_ATTEMPTS;
use vcm::workers::{Pruner, PrunerConfig};

impl App {
    async fn create(&self, name: &str) -> Cluster {
        let req = CreateClusterRequest {
            name: Some(name.into()),
            ..Default::default()
        };
        self.service.create(&who(), req, None).await.unwrap().0
    }

    async fn get(&self, id: &ClusterId) -> Cluster {
        self.service.store().get_cluster(id).await.unwrap().unwrap()
    }

    /// Make the cluster due now (instead of sleeping through a backoff).
    async fn make_due(&self, id: &ClusterId) {
        let mut c = self.get(id).await;
        c.next_reconcile_at = Timestamp::now();
        self.service.store().update_cluster(&c, &[]).await.unwrap();
    }

    async fn reconcile(&self) {
        self.reconciler.reconcile_until_idle(50).await;
    }

    async fn event_kinds(&self, id: &ClusterId) -> Vec<(String, Option<String>, String)> {
        self.service
            .store()
            .list_events(id)
            .await
            .unwrap()
            .into_iter()
            .map(|e| (e.kind, e.reason, e.message))
            .collect()
    }

    fn apiserver_pids(&self, id: &ClusterId) -> Vec<u32> {
        find_processes(&format!("clusters/{id}"))
            .into_iter()
            .filter(|(_, argv)| {
                argv.iter()
                    .any(|a| a.contains(self.driver.root().to_str().unwrap()))
            })
            .map(|(pid, _)| pid)
            .collect()
    }

    /// Kill the cluster's kube-apiserver and wait until it is gone.
    async fn kill_apiserver(&self, id: &ClusterId) {
        let pids = self.apiserver_pids(id);
        assert_eq!(pids.len(), 1, "one kube-apiserver for {id}");
        kill_group(pids[0]);
        for _ in 0..200 {
            if !is_alive(pids[0]) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("kube-apiserver {} survived SIGKILL", pids[0]);
    }

    /// Nothing of cluster `id` is left: no process, directory or etcd key.
    async fn assert_nothing_left(&self, id: &ClusterId) {
        assert!(
            self.apiserver_pids(id).is_empty(),
            "kube-apiserver of {id} still runs"
        );
        assert!(
            !self
                .driver
                .root()
                .join("clusters")
                .join(id.as_str())
                .exists(),
            "directory of {id} leaked"
        );
        assert_eq!(
            self.driver.etcd_key_count(id).await.unwrap(),
            0,
            "etcd keys leaked"
        );
    }
}

fn port_of(endpoint: &str) -> u16 {
    endpoint.rsplit(':').next().unwrap().parse().unwrap()
}

async fn configmaps_visible(kubeconfig: &vcm::controlplane::Kubeconfig) -> anyhow::Result<usize> {
    let client = kubeconfig.client().await?;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    Ok(cms.list(&ListParams::default()).await?.items.len())
}

#[tokio::test]
async fn a_killed_kube_apiserver_of_a_ready_cluster_is_restarted_on_its_port_and_kubeconfigs_keep_working()
 {
    // Arrange: a Ready cluster and a CI kubeconfig handed out for it.
    let app = mk_app().await;
    let c = app.create("web").await;
    app.reconcile().await;
    let ready = app.get(&c.id).await;
    assert_eq!(ready.phase, Phase::Ready, "{}", ready.message);
    let endpoint = ready.endpoint.clone().unwrap();
    let port = port_of(&endpoint);
    let ci = app.service.kubeconfig(&who(), "web", None).await.unwrap();
    configmaps_visible(&ci)
        .await
        .expect("the CI kubeconfig works");

    // Act: the control plane dies; the health check comes round.
    app.kill_apiserver(&c.id).await;
    assert!(is_port_held(port), "a dead cluster's port is still ours");
    tokio::time::sleep(Duration::from_millis(250)).await;
    app.reconcile().await;

    // Assert: Ready on the same endpoint, the old kubeconfig works, and an event says so.
    let after = app.get(&c.id).await;
    assert_eq!(after.phase, Phase::Ready, "{}", after.message);
    assert_eq!(after.endpoint.as_deref(), Some(endpoint.as_str()));
    assert_eq!(app.apiserver_pids(&c.id).len(), 1);
    configmaps_visible(&ci)
        .await
        .expect("the kubeconfig handed out before the restart still works");
    let events = app.event_kinds(&c.id).await;
    assert!(
        events
            .iter()
            .any(|(kind, _, msg)| kind == "control_plane_restarted"
                && msg.contains(&format!("port {port}"))),
        "{events:?}"
    );

    // Act / Assert: deleting it leaves nothing and gives the port back.
    app.service
        .delete(&who(), "web", DeleteReason::Requested)
        .await
        .unwrap();
    app.reconcile().await;
    assert_eq!(app.get(&c.id).await.phase, Phase::Deleted);
    app.assert_nothing_left(&c.id).await;
    assert!(
        !is_port_held(port),
        "a deleted cluster's port is given back"
    );
}

#[tokio::test]
async fn a_ready_cluster_whose_kube_apiserver_cannot_come_back_on_its_port_fails_as_lost() {
    // Arrange: a Ready cluster.
    let app = mk_app().await;
    let c = app.create("web").await;
    app.reconcile().await;
    let ready = app.get(&c.id).await;
    assert_eq!(ready.phase, Phase::Ready, "{}", ready.message);
    let port = port_of(ready.endpoint.as_deref().unwrap());

    // Act: it dies, and another program takes its port before the health check.
    app.kill_apiserver(&c.id).await;
    let mut squatter = None;
    for _ in 0..100 {
        if let Ok(l) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            squatter = Some(l);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _squatter = squatter.expect("the dead server's port can be bound");
    tokio::time::sleep(Duration::from_millis(250)).await;
    app.reconcile().await;

    // Assert: Failed as lost, saying why, and its resources released.
    let after = app.get(&c.id).await;
    assert_eq!(after.phase, Phase::Failed, "{}", after.message);
    assert!(
        after.message.starts_with("lost:") && after.message.contains(&format!("port {port}")),
        "{}",
        after.message
    );
    let events = app.event_kinds(&c.id).await;
    assert!(
        events
            .iter()
            .any(|(_, reason, _)| reason.as_deref() == Some("lost")),
        "{events:?}"
    );
    assert!(
        after.cleaned_up,
        "a lost cluster's leftovers are cleaned up"
    );
    app.assert_nothing_left(&c.id).await;
}

#[tokio::test]
async fn an_idle_local_cluster_is_deleted_by_the_pruner_and_leaves_nothing() {
    // Arrange: a Ready cluster with an idle timeout whose last activity is long past.
    let app = mk_app().await;
    let c = app.create("idle").await;
    app.reconcile().await;
    let mut idle = app.get(&c.id).await;
    assert_eq!(idle.phase, Phase::Ready, "{}", idle.message);
    let port = port_of(idle.endpoint.as_deref().unwrap());
    idle.idle_timeout = Some(vcm::domain::Ttl::from_secs(60));
    idle.last_activity_at = Timestamp::now() - jiff::SignedDuration::from_secs(120);
    app.service
        .store()
        .update_cluster(&idle, &[])
        .await
        .unwrap();

    // Act
    let report = Pruner::new(app.service.clone(), PrunerConfig::default())
        .pass()
        .await;
    app.reconcile().await;

    // Assert
    assert_eq!(report.idle, vec![c.id.clone()], "{report:?}");
    let gone = app.get(&c.id).await;
    assert_eq!(
        (gone.phase, gone.delete_reason),
        (Phase::Deleted, Some(DeleteReason::Idle))
    );
    app.assert_nothing_left(&c.id).await;
    assert!(!is_port_held(port));
}

#[tokio::test]
async fn a_local_cluster_whose_kube_apiserver_keeps_failing_fails_after_the_attempt_limit() {
    // Arrange: the cluster's serving certificate is corrupt, so the real kube-apiserver exits
    // at every start.
    let app = mk_app().await;
    let c = app.create("broken").await;
    let dir = app.driver.root().join("clusters").join(c.id.as_str());
    Pki::generate(&dir, &[]).unwrap();
    std::fs::write(dir.join("apiserver.crt"), "not a certificate\n").unwrap();

    // Act: every attempt, without waiting out the backoff.
    for _ in 0..MAX_PROVISION_ATTEMPTS {
        app.make_due(&c.id).await;
        app.reconcile().await;
    }

    // Assert: Failed after the limit, with the API server's own complaint, and cleaned up.
    let failed = app.get(&c.id).await;
    assert_eq!(failed.phase, Phase::Failed, "{}", failed.message);
    assert!(
        failed
            .message
            .contains(&format!("after {MAX_PROVISION_ATTEMPTS} attempts"))
            && failed.message.contains("kube-apiserver exited"),
        "{}",
        failed.message
    );
    assert!(failed.cleaned_up);
    app.assert_nothing_left(&c.id).await;
}

#[tokio::test]
async fn the_sweeper_stops_a_local_control_plane_no_record_owns_and_keeps_the_rest() {
    // Arrange: a live cluster, and a control plane left by a crash with no record.
    let app = mk_app().await;
    let kept = app.create("kept").await;
    app.reconcile().await;
    let mut orphan = vcm::store::conformance::mk_cluster("orphan");
    orphan.name = ClusterName::from_id(&orphan.id);
    orphan.phase = Phase::Provisioning;
    let Ensured::Ready { endpoint } = app.driver.ensure(&orphan).await.unwrap() else {
        panic!("the orphan's control plane did not start")
    };

    // Act
    let report = Pruner::new(app.service.clone(), PrunerConfig::default())
        .pass()
        .await;

    // Assert
    assert_eq!(report.orphans, vec![orphan.id.clone()], "{report:?}");
    assert!(report.failures.is_empty(), "{report:?}");
    app.assert_nothing_left(&orphan.id).await;
    assert!(!is_port_held(port_of(&endpoint)));
    let kept = app.get(&kept.id).await;
    assert_eq!(kept.phase, Phase::Ready);
    assert_eq!(
        app.apiserver_pids(&kept.id).len(),
        1,
        "the live cluster still runs"
    );
}
