//! The local driver's controller-manager, scheduler and kwok follow their API server: one that
//! came back on a new port while the cluster was still being provisioned (nothing handed out)
//! gets its components restarted against the new port.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use vcm::controlplane::{KubeBins, find_processes, is_alive, kill_group};
use vcm::domain::{ClusterName, Phase};
use vcm::driver::local::LocalDriver;
use vcm::driver::{Driver, Ensured};

/// Kills every process under the driver's root when the test ends, however it ends.
struct Guard(LocalDriver, tempfile::TempDir);

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.kill_all_processes();
    }
}

fn port_of(endpoint: &str) -> u16 {
    endpoint.rsplit(':').next().unwrap().parse().unwrap()
}

#[tokio::test]
async fn components_follow_an_api_server_that_came_back_on_a_new_port_during_provisioning() {
    // Arrange: a provisioned control plane whose API server dies, and its port is taken.
    let dir = tempfile::tempdir().unwrap();
    let driver = LocalDriver::new(dir.path().join("local"), KubeBins::locate())
        .unwrap_or_else(|e| panic!("{e:#}"));
    let guard = Guard(driver, dir);
    let mut c = vcm::store::conformance::mk_cluster("local");
    c.name = ClusterName::from_id(&c.id);
    c.phase = Phase::Provisioning;
    let Ensured::Ready { endpoint: first } = guard.0.ensure(&c).await.unwrap() else {
        panic!("not ready")
    };
    let flag = format!(
        "--cert-dir={}",
        guard
            .0
            .root()
            .join("clusters")
            .join(c.id.as_str())
            .display()
    );
    let (pid, _) = find_processes(&flag)
        .into_iter()
        .find(|(_, argv)| argv.contains(&flag))
        .expect("the API server runs");
    kill_group(pid);
    let mut squatter = None;
    for _ in 0..100 {
        if !is_alive(pid)
            && let Ok(l) = std::net::TcpListener::bind(("127.0.0.1", port_of(&first)))
        {
            squatter = Some(l);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _squatter = squatter.expect("the dead API server's port can be bound");

    // Act
    let Ensured::Ready { endpoint: second } = guard.0.ensure(&c).await.unwrap() else {
        panic!("not ready after the restart")
    };

    // Assert: a new port, every component's kubeconfig names it, and a Deployment rolls out.
    assert_ne!(first, second);
    let components = guard.0.root().join("components").join(c.id.as_str());
    for name in ["kube-controller-manager", "kube-scheduler", "kwok"] {
        let file =
            kube::config::Kubeconfig::read_from(components.join(format!("{name}.kubeconfig")))
                .unwrap();
        let server = file.clusters[0].cluster.as_ref().unwrap().server.clone();
        assert_eq!(server.as_deref(), Some(second.as_str()), "{name}");
    }
    let admin = guard.0.admin_kubeconfig(&c).await.unwrap();
    let path = guard.1.path().join("admin.kubeconfig");
    admin.write(&path).unwrap();
    let kubectl = |args: &[&str]| {
        let out = std::process::Command::new("kubectl")
            .arg(format!("--kubeconfig={}", path.display()))
            .args(args)
            .output()
            .expect("kubectl runs");
        assert!(
            out.status.success(),
            "kubectl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    kubectl(&["create", "deployment", "moved", "--image=nginx"]);
    kubectl(&["rollout", "status", "deploy/moved", "--timeout=30s"]);
}
