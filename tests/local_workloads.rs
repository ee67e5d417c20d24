//! A local cluster is a whole control plane: kube-controller-manager, kube-scheduler and kwok
//! with one fake node run beside its kube-apiserver, so workloads behave as on a real cluster.
//! Everything here goes through the real `kubectl` with the CI kubeconfig vcm hands out.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/local_app.rs"]
mod local_app;

#[path = "support/kubectl.rs"]
mod kubectl;

use std::time::{Duration, Instant};

use kubectl::Kubectl;
use local_app::{mk_app, processes_of, who};
use vcm::api::CreateClusterRequest;
use vcm::controlplane::{KubeBins, is_alive, is_port_held, kill_group};
use vcm::domain::{Cluster, ClusterName, DeleteReason, Phase};
use vcm::driver::local::LocalDriver;
use vcm::driver::{Driver, Ensured};

/// Kills every process under the driver's root when the test ends, however it ends.
struct Guard(LocalDriver, tempfile::TempDir);

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.kill_all_processes();
    }
}

/// A driver over a temp directory and a Ready cluster in it, with a CI kubeconfig for kubectl.
async fn ready_cluster() -> (Guard, Cluster, Kubectl) {
    let dir = tempfile::tempdir().unwrap();
    let driver = LocalDriver::new(dir.path().join("local"), KubeBins::locate())
        .unwrap_or_else(|e| panic!("{e:#}"));
    let guard = Guard(driver, dir);
    let mut c = vcm::store::conformance::mk_cluster("local");
    c.name = ClusterName::from_id(&c.id);
    c.phase = Phase::Provisioning;
    let started = Instant::now();
    let ensured = guard.0.ensure(&c).await.unwrap();
    assert!(matches!(ensured, Ensured::Ready { .. }), "{ensured:?}");
    eprintln!(
        "create-to-Ready (etcd, kube-apiserver, controllers, node): {:.1}s",
        started.elapsed().as_secs_f64()
    );
    c.phase = Phase::Ready;
    let kubectl = kubectl::for_ci(&guard.0, &c, guard.1.path()).await;
    (guard, c, kubectl)
}

/// Resident memory of `pid` in KiB (0 if it is gone).
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_local_cluster_rolls_out_deployments_completes_jobs_cascades_and_deletes_namespaces() {
    // Arrange
    let (_guard, _c, kubectl) = ready_cluster().await;

    // Act / Assert (e): a new namespace gets its ServiceAccount and root CA.
    kubectl.run(&["create", "namespace", "work"]).await;
    kubectl
        .until(
            &[
                "-n",
                "work",
                "get",
                "serviceaccount",
                "default",
                "-o",
                "name",
            ],
            |o| o.contains("serviceaccount/default"),
        )
        .await;
    kubectl
        .until(
            &[
                "-n",
                "work",
                "get",
                "configmap",
                "kube-root-ca.crt",
                "-o",
                "name",
            ],
            |o| o.contains("kube-root-ca.crt"),
        )
        .await;

    // Act / Assert (a): a Deployment rolls out, its pods Running on the kwok node.
    kubectl
        .run(&[
            "-n",
            "work",
            "create",
            "deployment",
            "web",
            "--image=nginx",
            "--replicas=2",
        ])
        .await;
    let started = Instant::now();
    kubectl
        .run(&[
            "-n",
            "work",
            "rollout",
            "status",
            "deploy/web",
            "--timeout=60s",
        ])
        .await;
    eprintln!(
        "rollout of 2 replicas: {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let pods = kubectl
        .run(&[
            "-n",
            "work",
            "get",
            "pods",
            "-l",
            "app=web",
            "-o",
            r#"jsonpath={range .items[*]}{.spec.nodeName} {.status.phase}{"\n"}{end}"#,
        ])
        .await;
    let pods: Vec<&str> = pods.lines().collect();
    assert_eq!(pods, ["kwok-node-0 Running"; 2], "{pods:?}");

    // Act / Assert (b): a Job completes.
    kubectl
        .run(&[
            "-n",
            "work",
            "create",
            "job",
            "once",
            "--image=busybox",
            "--",
            "true",
        ])
        .await;
    kubectl
        .run(&[
            "-n",
            "work",
            "wait",
            "--for=condition=complete",
            "job/once",
            "--timeout=60s",
        ])
        .await;

    // Act / Assert (d): deleting the Deployment takes its ReplicaSets and pods with it.
    kubectl
        .run(&["-n", "work", "delete", "deployment", "web"])
        .await;
    kubectl
        .until(
            &[
                "-n",
                "work",
                "get",
                "replicasets,pods",
                "-l",
                "app=web",
                "-o",
                "name",
            ],
            |o| o.trim().is_empty(),
        )
        .await;

    // Act / Assert (c): deleting the namespace completes.
    kubectl
        .run(&["delete", "namespace", "work", "--timeout=60s"])
        .await;
    let gone = kubectl.try_run(&["get", "namespace", "work"]).await;
    assert!(
        gone.as_ref().is_err_and(|e| e.contains("NotFound")),
        "{gone:?}"
    );
}

#[tokio::test]
async fn killed_controller_manager_scheduler_and_kwok_are_restarted_by_the_health_check_and_delete_leaves_no_process()
 {
    // Arrange: a Ready cluster, its kubeconfig, and its controller-manager, scheduler and kwok
    // SIGKILLed.
    let app = mk_app().await;
    let req = CreateClusterRequest {
        name: Some("heal".into()),
        ..Default::default()
    };
    let (c, _) = app.service.create(&who(), req, None).await.unwrap();
    app.reconciler.reconcile_until_idle(50).await;
    let store = app.service.store();
    let ready = store.get_cluster(&c.id).await.unwrap().unwrap();
    assert_eq!(ready.phase, Phase::Ready, "{}", ready.message);
    eprintln!("through the engine: {}", ready.message);
    let dir = tempfile::tempdir().unwrap();
    let kubectl = Kubectl {
        kubeconfig: dir.path().join("ci.kubeconfig"),
    };
    let handed_out = app.service.kubeconfig(&who(), "heal", None).await.unwrap();
    handed_out.write(&kubectl.kubeconfig).unwrap();
    let rss_kib: Vec<(String, u64)> = processes_of(&app.driver, &c.id)
        .into_iter()
        .map(|(pid, argv)| (argv[0].rsplit('/').next().unwrap().to_owned(), rss_kib(pid)))
        .collect();
    eprintln!(
        "memory of one idle cluster: {} MiB ({rss_kib:?} KiB)",
        rss_kib.iter().map(|(_, k)| k).sum::<u64>() / 1024
    );
    let components: Vec<u32> = processes_of(&app.driver, &c.id)
        .into_iter()
        .filter(|(_, argv)| !argv[0].ends_with("kube-apiserver"))
        .map(|(pid, _)| pid)
        .collect();
    assert_eq!(components.len(), 3, "controller-manager, scheduler, kwok");
    for pid in &components {
        kill_group(*pid);
    }
    for _ in 0..100 {
        if !components.iter().any(|p| is_alive(*p)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Act: the health check comes round.
    tokio::time::sleep(Duration::from_millis(250)).await;
    app.reconciler.reconcile_until_idle(50).await;

    // Assert: Ready, an event names the restart, and controllers work again.
    let after = store.get_cluster(&c.id).await.unwrap().unwrap();
    assert_eq!(after.phase, Phase::Ready, "{}", after.message);
    let events = store.list_events(&c.id).await.unwrap();
    assert!(
        events.iter().any(|e| e.kind == "control_plane_restarted"
            && ["kube-controller-manager", "kube-scheduler", "kwok "]
                .iter()
                .all(|name| e.message.contains(name))),
        "{events:?}"
    );
    kubectl
        .run(&["create", "deployment", "after", "--image=nginx"])
        .await;
    // NB: well under kwok's 40 s node lease: a new kwok must not wait for the dead one's lease
    // to expire before it runs the node's pods.
    kubectl
        .run(&["rollout", "status", "deploy/after", "--timeout=20s"])
        .await;

    // Act: delete.
    app.service
        .delete(&who(), "heal", DeleteReason::Requested)
        .await
        .unwrap();
    app.reconciler.reconcile_until_idle(50).await;

    // Assert: no process, directory or port of the cluster is left.
    assert_eq!(
        store.get_cluster(&c.id).await.unwrap().unwrap().phase,
        Phase::Deleted
    );
    let left = processes_of(&app.driver, &c.id);
    assert!(left.is_empty(), "processes left: {left:?}");
    for dir in ["clusters", "components"] {
        let path = app.driver.root().join(dir).join(c.id.as_str());
        assert!(!path.exists(), "{} leaked", path.display());
    }
    let port: u16 = after
        .endpoint
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(!is_port_held(port), "the API server's port is given back");
}
