//! A local cluster is a whole control plane: kube-controller-manager, kube-scheduler and kwok
//! with one fake node run beside its kube-apiserver, so workloads behave as on a real cluster.
//! Everything here goes through the real `kubectl` with the CI kubeconfig vcm hands out.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use vcm::controlplane::{KubeBins, find_processes, is_alive, is_port_held, kill_group};
use vcm::domain::{Cluster, ClusterName, Phase};
use vcm::driver::local::LocalDriver;
use vcm::driver::{Driver, Ensured};

/// Kills every process under the driver's root when the test ends, however it ends.
struct Guard(LocalDriver, tempfile::TempDir);

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.kill_all_processes();
    }
}

/// `kubectl` with one kubeconfig.
struct Kubectl {
    kubeconfig: PathBuf,
}

impl Kubectl {
    /// Run `kubectl args…`; `Err(stderr)` if it fails.
    async fn try_run(&self, args: &[&str]) -> Result<String, String> {
        let out = tokio::process::Command::new("kubectl")
            .arg(format!("--kubeconfig={}", self.kubeconfig.display()))
            .args(args)
            .output()
            .await
            .unwrap_or_else(|e| panic!("running kubectl (is it on PATH?): {e}"));
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// Run `kubectl args…`, panicking with its output if it fails.
    async fn run(&self, args: &[&str]) -> String {
        self.try_run(args)
            .await
            .unwrap_or_else(|e| panic!("kubectl {}: {e}", args.join(" ")))
    }

    /// Run `kubectl args…` until `done` holds for its output (60 s at most).
    async fn until(&self, args: &[&str], done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let out = self.try_run(args).await;
            match &out {
                Ok(text) if done(text) => return text.clone(),
                _ if Instant::now() > deadline => {
                    panic!("kubectl {}: still {out:?} after 60s", args.join(" "))
                }
                _ => tokio::time::sleep(Duration::from_millis(300)).await,
            }
        }
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
    let admin = guard.0.admin_kubeconfig(&c).await.unwrap();
    let ci = vcm::driver::mint_ci_kubeconfig(&admin, "ci", 3600)
        .await
        .unwrap();
    let kubeconfig = guard.1.path().join("ci.kubeconfig");
    ci.write(&kubeconfig).unwrap();
    (guard, c, Kubectl { kubeconfig })
}

/// Every process of cluster `c` (API server and components) under the guard's root.
fn processes_of(guard: &Guard, c: &Cluster) -> Vec<(u32, Vec<String>)> {
    let root = guard.0.root().display().to_string();
    find_processes(c.id.as_str())
        .into_iter()
        .filter(|(_, argv)| argv.iter().any(|a| a.contains(&root)))
        .collect()
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
async fn a_killed_controller_manager_is_restarted_by_the_health_check_and_delete_leaves_no_process()
{
    // Arrange: a Ready cluster; its controller-manager is SIGKILLed.
    let (guard, c, kubectl) = ready_cluster().await;
    let port: u16 = guard
        .0
        .admin_kubeconfig(&c)
        .await
        .unwrap()
        .server
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let rss_kib: Vec<(String, u64)> = processes_of(&guard, &c)
        .into_iter()
        .map(|(pid, argv)| (argv[0].rsplit('/').next().unwrap().to_owned(), rss_kib(pid)))
        .collect();
    eprintln!(
        "memory of one idle cluster: {} MiB ({rss_kib:?} KiB)",
        rss_kib.iter().map(|(_, k)| k).sum::<u64>() / 1024
    );
    let kcm: Vec<u32> = processes_of(&guard, &c)
        .into_iter()
        .filter(|(_, argv)| argv.iter().any(|a| a.contains("kube-controller-manager")))
        .map(|(pid, _)| pid)
        .collect();
    assert_eq!(kcm.len(), 1, "one controller-manager per cluster");
    kill_group(kcm[0]);
    for _ in 0..100 {
        if !is_alive(kcm[0]) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Act: the health check of a Ready cluster (what the reconciler runs every interval).
    let healed = guard.0.ensure(&c).await.unwrap();

    // Assert: reported as a restart (the reconciler makes it an event), and controllers work.
    let Ensured::Restarted { message, .. } = healed else {
        panic!("expected a restart, got {healed:?}")
    };
    assert!(message.contains("kube-controller-manager"), "{message}");
    kubectl
        .run(&["create", "deployment", "after", "--image=nginx"])
        .await;
    kubectl
        .run(&["rollout", "status", "deploy/after", "--timeout=60s"])
        .await;
    let again = guard.0.ensure(&c).await.unwrap();
    assert!(matches!(again, Ensured::Ready { .. }), "{again:?}");

    // Act: delete.
    guard.0.delete(&c.id).await.unwrap();

    // Assert: no process, directory or port of the cluster is left.
    let left = processes_of(&guard, &c);
    assert!(left.is_empty(), "processes left: {left:?}");
    for dir in ["clusters", "components"] {
        let path = guard.0.root().join(dir).join(c.id.as_str());
        assert!(!path.exists(), "{} leaked", path.display());
    }
    assert!(!is_port_held(port), "the API server's port is given back");
}
