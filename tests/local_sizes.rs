//! Sizes mean something to the local driver: each size's limits reach its real kube-apiserver.
#![allow(clippy::unwrap_used, clippy::expect_used)]

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
    match c {
        Err(DriverError::Permanent(msg)) => assert!(msg.contains("medium"), "{msg}"),
        other => panic!("an unconfigured size fails permanently: {other:?}"),
    }
}
