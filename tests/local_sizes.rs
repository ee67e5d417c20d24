//! Sizes mean something to the local driver: each size's limits reach its real kube-apiserver.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/kubectl.rs"]
mod kubectl;

use vcm::controlplane::{KubeBins, find_processes};
use vcm::domain::{Cluster, ClusterName, Phase};
use vcm::driver::local::LocalDriver;
use vcm::driver::{Driver, DriverError, Ensured, LocalSize};

struct Guard(LocalDriver, #[allow(dead_code)] tempfile::TempDir);

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.kill_all_processes();
    }
}

fn mk_cluster(size: &str) -> Cluster {
    let mut c = vcm::store::conformance::mk_cluster("local");
    c.name = ClusterName::from_id(&c.id);
    c.phase = Phase::Provisioning;
    c.size = size.into();
    c
}

/// The command line and environment of the API server of cluster `c`.
fn apiserver_of(guard: &Guard, c: &Cluster) -> (Vec<String>, String) {
    let flag = format!(
        "--cert-dir={}",
        guard
            .0
            .root()
            .join("clusters")
            .join(c.id.as_str())
            .display()
    );
    let (pid, argv) = find_processes(&flag)
        .into_iter()
        .find(|(_, argv)| argv.contains(&flag))
        .expect("the cluster's kube-apiserver runs");
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    (argv, String::from_utf8_lossy(&environ).replace('\0', "\n"))
}

#[tokio::test]
async fn each_size_sets_its_api_servers_limits_and_an_unconfigured_size_fails_permanently() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();
    let tiny = LocalSize {
        max_requests_inflight: 11,
        max_mutating_requests_inflight: 7,
        memory_limit_mib: 300,
        ..LocalSize::default()
    };
    let driver = LocalDriver::new(dir.path().join("local"), KubeBins::locate())
        .unwrap_or_else(|e| panic!("{e:#}"))
        .with_sizes(
            [
                ("tiny".to_string(), tiny),
                ("large".to_string(), LocalSize::builtin("large").unwrap()),
            ]
            .into(),
        );
    let guard = Guard(driver, dir);
    let (small, large, gone) = (
        mk_cluster("tiny"),
        mk_cluster("large"),
        mk_cluster("medium"),
    );

    // Act
    let a = guard.0.ensure(&small).await.unwrap();
    let b = guard.0.ensure(&large).await.unwrap();
    let c = guard.0.ensure(&gone).await;

    // Assert
    assert!(matches!(a, Ensured::Ready { .. }) && matches!(b, Ensured::Ready { .. }));
    let (argv, env) = apiserver_of(&guard, &small);
    assert!(
        argv.contains(&"--max-requests-inflight=11".to_string()),
        "{argv:?}"
    );
    assert!(
        argv.contains(&"--max-mutating-requests-inflight=7".to_string()),
        "{argv:?}"
    );
    assert!(env.lines().any(|l| l == "GOMEMLIMIT=300MiB"), "{env}");
    let (argv, env) = apiserver_of(&guard, &large);
    assert!(
        argv.contains(&"--max-requests-inflight=800".to_string()),
        "{argv:?}"
    );
    assert!(env.lines().any(|l| l == "GOMEMLIMIT=2048MiB"), "{env}");
    let mut l = large.clone();
    l.phase = Phase::Ready;
    let client = guard
        .0
        .admin_kubeconfig(&l)
        .await
        .unwrap()
        .client()
        .await
        .unwrap();
    let nodes = kube::Api::<k8s_openapi::api::core::v1::Node>::all(client)
        .list(&Default::default())
        .await
        .unwrap();
    assert_eq!(nodes.items.len(), 10, "a large cluster has 10 nodes");
    match c {
        Err(DriverError::Permanent(msg)) => assert!(msg.contains("medium"), "{msg}"),
        other => panic!("an unconfigured size fails permanently: {other:?}"),
    }
}

#[tokio::test]
async fn a_size_gives_its_nodes_their_capacity_and_a_pod_larger_than_a_node_stays_pending_with_the_schedulers_message()
 {
    // Arrange
    let dir = tempfile::tempdir().unwrap();
    let two_small_nodes = LocalSize {
        nodes: 2,
        node_cpu: "1".into(),
        node_memory: "2Gi".into(),
        node_pods: 5,
        ..LocalSize::default()
    };
    let driver = LocalDriver::new(dir.path().join("local"), KubeBins::locate())
        .unwrap_or_else(|e| panic!("{e:#}"))
        .with_sizes([("duo".to_string(), two_small_nodes)].into());
    let guard = Guard(driver, dir);
    let mut c = mk_cluster("duo");
    assert!(matches!(
        guard.0.ensure(&c).await.unwrap(),
        Ensured::Ready { .. }
    ));
    c.phase = Phase::Ready;
    let kubectl = kubectl::for_ci(&guard.0, &c, guard.1.path()).await;
    let manifest = guard.1.path().join("pods.yaml");
    std::fs::write(
        &manifest,
        r#"
apiVersion: v1
kind: Pod
metadata: {name: fits}
spec:
  containers: [{name: app, image: nginx, resources: {requests: {cpu: 500m, memory: 1Gi}}}]
---
apiVersion: v1
kind: Pod
metadata: {name: too-big}
spec:
  containers: [{name: app, image: nginx, resources: {requests: {cpu: "2"}}}]
"#,
    )
    .unwrap();

    // Act
    let nodes = kubectl
        .run(&[
            "get",
            "nodes",
            "-o",
            r#"jsonpath={range .items[*]}{.metadata.name} {.status.capacity.cpu} {.status.capacity.memory} {.status.capacity.pods}{"\n"}{end}"#,
        ])
        .await;
    kubectl
        .run(&["apply", "-f", manifest.to_str().unwrap()])
        .await;

    // Assert
    assert_eq!(nodes, "kwok-node-0 1 2Gi 5\nkwok-node-1 1 2Gi 5\n");
    kubectl
        .until(
            &["get", "pod", "fits", "-o", "jsonpath={.status.phase}"],
            |phase| phase == "Running",
        )
        .await;
    let why = kubectl
        .until(
            &[
                "get",
                "pod",
                "too-big",
                "-o",
                r#"jsonpath={.status.phase} {.status.conditions[?(@.type=="PodScheduled")].reason}: {.status.conditions[?(@.type=="PodScheduled")].message}"#,
            ],
            |s| s.contains("Unschedulable"),
        )
        .await;
    assert!(
        why.starts_with("Pending Unschedulable: 0/2 nodes are available"),
        "{why}"
    );
    assert!(
        why.contains("Insufficient cpu"),
        "the scheduler's own words: {why}"
    );
}
