//! Test bed tier C: a real node (kubelet, containerd, runc, CNI bridge, kube-proxy) in network
//! and mount namespaces of the bed's own, running locally built images. Needs root and the
//! images of `scripts/node-images.sh` (both `make test` provides).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/kubectl.rs"]
mod kubectl;

use std::path::Path;
use std::time::Duration;

use kubectl::Kubectl;
use vcm::testing::tier_c::{self, WORKLOAD_IMAGE};
use vcm::testing::{TestBed, eventually};

/// A pod of the test workload image on the real node, plus a NodePort Service in front of it.
fn workload_manifest(name: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: {name}, labels: {{app: {name}}}}}
spec:
  containers:
  - name: web
    image: {WORKLOAD_IMAGE}
    imagePullPolicy: Never
    ports: [{{containerPort: 8080}}]
---
apiVersion: v1
kind: Service
metadata: {{name: {name}}}
spec:
  type: NodePort
  selector: {{app: {name}}}
  ports: [{{port: 80, targetPort: 8080}}]
"#
    )
}

async fn run_workload(bed: &TestBed, dir: &Path, name: &str) -> Kubectl {
    let kubectl = Kubectl {
        kubeconfig: bed.kubeconfig_path(),
    };
    let manifest = dir.join(format!("{name}.yaml"));
    std::fs::write(&manifest, workload_manifest(name)).unwrap();
    kubectl
        .run(&["apply", "-f", manifest.to_str().unwrap()])
        .await;
    kubectl
        .run(&[
            "wait",
            "--for=condition=Ready",
            &format!("pod/{name}"),
            "--timeout=90s",
        ])
        .await;
    kubectl
}

#[tokio::test]
async fn a_pod_runs_as_a_real_container_with_logs_exec_and_a_node_port() {
    // Arrange
    let bed = TestBed::tier_c().await;
    let node = bed.node().unwrap();
    let dir = tempfile::tempdir().unwrap();

    // Act
    let kubectl = run_workload(&bed, dir.path(), "web").await;

    // Assert: the container runs in containerd, and logs and exec go through the API server
    // to the real kubelet.
    let containers = node.ctr(&["containers", "ls"]).unwrap();
    assert!(containers.contains(WORKLOAD_IMAGE), "{containers}");
    let logs = kubectl.run(&["logs", "web"]).await;
    assert!(
        logs.contains("workload serving /www on :8080 as web"),
        "{logs}"
    );
    let page = kubectl
        .run(&["exec", "web", "--", "cat", "/www/index.html"])
        .await;
    assert_eq!(page.trim(), "hello from vcm's test workload");
    // From the pod, the `kubernetes` Service (kube-proxy's rules) reaches the API server.
    let reach = kubectl
        .run(&[
            "exec",
            "web",
            "--",
            "sh",
            "-c",
            "busybox nc -w 3 10.0.0.1 443 </dev/null && echo connected",
        ])
        .await;
    assert_eq!(reach.trim(), "connected");
    // From the host, the NodePort on the node's address answers with the pod's page.
    let port = kubectl
        .run(&[
            "get",
            "svc",
            "web",
            "-o",
            "jsonpath={.spec.ports[0].nodePort}",
        ])
        .await;
    let url = format!("http://{}:{port}/index.html", node.addresses().node);
    let body = eventually("the node port", Duration::from_secs(30), || async {
        Ok(Some(
            reqwest::get(&url).await?.error_for_status()?.text().await?,
        ))
    })
    .await
    .unwrap();
    assert_eq!(body.trim(), "hello from vcm's test workload");
}

#[tokio::test]
async fn two_beds_run_side_by_side_and_leave_nothing_behind() {
    // Arrange
    let (a, b) = tokio::join!(TestBed::tier_c(), TestBed::tier_c());
    let dir = tempfile::tempdir().unwrap();
    let (na, nb) = (a.node().unwrap(), b.node().unwrap());
    assert_ne!(na.addresses().index, nb.addresses().index);

    // Act: the same pod name in both, each on its own node.
    tokio::join!(
        run_workload(&a, dir.path(), "same"),
        run_workload(&b, dir.path(), "same")
    );
    let state: Vec<_> = [&a, &b]
        .iter()
        .map(|bed| {
            let n = bed.node().unwrap();
            (
                n.addresses().clone(),
                n.processes(),
                bed.dir().to_path_buf(),
            )
        })
        .collect();
    assert!(state.iter().all(|(_, pids, _)| !pids.is_empty()));
    drop(a);
    drop(b);

    // Assert: no process, cgroup, veth, directory or iptables rule of either bed is left.
    for (addr, pids, dir) in state {
        for pid in pids {
            assert!(
                !vcm::controlplane::is_alive(pid),
                "process {pid} of bed {} outlived it",
                addr.index
            );
        }
        assert!(!dir.exists(), "{} is left", dir.display());
        assert!(
            !Path::new("/sys/class/net").join(&addr.veth).exists(),
            "veth {} is left",
            addr.veth
        );
        let cgroups = tier_c::existing_cgroups();
        assert!(
            !cgroups
                .iter()
                .any(|c| c.ends_with(&format!("/{}", addr.cgroup))),
            "{cgroups:?}"
        );
    }
    let host_rules = std::process::Command::new("iptables-save")
        .output()
        .unwrap();
    let host_rules = String::from_utf8_lossy(&host_rules.stdout);
    assert!(
        !host_rules.contains("KUBE-"),
        "kube-proxy rules on the host:\n{host_rules}"
    );
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains("vcm-testbed-"), "mounts left:\n{mounts}");
}
