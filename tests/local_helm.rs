//! Helm on a local cluster: the real `helm` binary (built with the Kubernetes binaries) installs
//! a chart with a Deployment, Service, ConfigMap, ServiceAccount and RBAC through the kubeconfig
//! vcm hands out, waits for it, and uninstalls it without leaving anything of the release.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/local_app.rs"]
mod local_app;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use local_app::{mk_app, processes_of, who};
use vcm::api::CreateClusterRequest;
use vcm::controlplane::KubeBins;
use vcm::domain::{DeleteReason, Phase};

/// The chart under test, in the repository's test data.
const CHART: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/charts/demo");
/// The namespace the release goes into (helm creates it).
const NS: &str = "demo";
/// Every kind the chart makes, plus Secrets (helm keeps its release record in one) and the
/// ReplicaSets and Pods the Deployment makes.
const KINDS: &str =
    "deployments,replicasets,pods,services,configmaps,serviceaccounts,roles,rolebindings,secrets";

/// Runs `program args…`; `Err(stderr)` if it fails.
async fn try_run(cmd: &mut tokio::process::Command, what: &str) -> Result<String, String> {
    let out = cmd
        .output()
        .await
        .unwrap_or_else(|e| panic!("running {what}: {e}"));
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// `kubectl` and `helm` with one kubeconfig; helm's cache, configuration and data in `home`.
struct Tools {
    kubeconfig: PathBuf,
    helm: PathBuf,
    home: PathBuf,
}

impl Tools {
    async fn kubectl(&self, args: &[&str]) -> Result<String, String> {
        let mut cmd = tokio::process::Command::new("kubectl");
        cmd.arg(format!("--kubeconfig={}", self.kubeconfig.display()))
            .args(args);
        try_run(&mut cmd, "kubectl (is it on PATH?)").await
    }

    async fn helm(&self, args: &[&str]) -> String {
        let mut cmd = tokio::process::Command::new(&self.helm);
        cmd.args(args)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .env("HELM_CACHE_HOME", self.home.join("cache"))
            .env("HELM_CONFIG_HOME", self.home.join("config"))
            .env("HELM_DATA_HOME", self.home.join("data"));
        try_run(&mut cmd, "helm")
            .await
            .unwrap_or_else(|e| panic!("helm {}: {e}", args.join(" ")))
    }

    /// Names (`kind/name`) of every object of `KINDS` in the release's namespace.
    async fn objects(&self) -> Vec<String> {
        let out = self
            .kubectl(&["-n", NS, "get", KINDS, "-o", "name"])
            .await
            .unwrap_or_else(|e| panic!("kubectl get {KINDS}: {e}"));
        let mut names: Vec<String> = out.lines().map(str::to_owned).collect();
        names.sort();
        names
    }

    /// `objects()` until `done` holds for them (60 s at most).
    async fn objects_until(&self, done: impl Fn(&[String]) -> bool) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let names = self.objects().await;
            if done(&names) {
                return names;
            }
            assert!(Instant::now() < deadline, "still {names:?} after 60s");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
}

fn has(names: &[String], name: &str) -> bool {
    names.iter().any(|n| n == name)
}

/// Objects of `KINDS` whose name is one of the release's.
fn of_release(names: &[String]) -> Vec<&String> {
    names
        .iter()
        .filter(|n| n.rsplit('/').next().unwrap().starts_with("demo"))
        .collect()
}

#[tokio::test]
async fn helm_installs_a_chart_on_a_local_cluster_and_uninstall_leaves_nothing_of_the_release() {
    // Arrange: a Ready cluster through the engine, the kubeconfig it hands out, and helm.
    let app = mk_app().await;
    let req = CreateClusterRequest {
        name: Some("helm".into()),
        ..Default::default()
    };
    let (c, _) = app.service.create(&who(), req, None).await.unwrap();
    app.reconciler.reconcile_until_idle(50).await;
    let store = app.service.store();
    let ready = store.get_cluster(&c.id).await.unwrap().unwrap();
    assert_eq!(ready.phase, Phase::Ready, "{}", ready.message);
    let tools = Tools {
        kubeconfig: app.dir.path().join("ci.kubeconfig"),
        helm: KubeBins::locate()
            .get("helm")
            .unwrap_or_else(|e| panic!("{e}")),
        home: app.dir.path().join("helm"),
    };
    let handed_out = app.service.kubeconfig(&who(), "helm", None).await.unwrap();
    handed_out.write(&tools.kubeconfig).unwrap();

    // Act: install and wait for the release.
    let started = Instant::now();
    tools
        .helm(&[
            "install",
            "demo",
            CHART,
            "--namespace",
            NS,
            "--create-namespace",
            "--wait",
            "--timeout",
            "120s",
        ])
        .await;
    eprintln!(
        "helm install --wait: {:.1}s",
        started.elapsed().as_secs_f64()
    );

    // Assert: the release is deployed, every object exists, the Deployment is available with
    // its two pods Running on the kwok node.
    let status = tools
        .helm(&["status", "demo", "--namespace", NS, "-o", "json"])
        .await;
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["info"]["status"], "deployed", "{status}");
    let names = tools.objects().await;
    for name in [
        "deployment.apps/demo",
        "service/demo",
        "configmap/demo-config",
        "serviceaccount/demo",
        "role.rbac.authorization.k8s.io/demo-reader",
        "rolebinding.rbac.authorization.k8s.io/demo-reader",
        "secret/sh.helm.release.v1.demo.v1",
    ] {
        assert!(has(&names, name), "{name} missing from {names:?}");
    }
    let available = tools
        .kubectl(&[
            "-n",
            NS,
            "get",
            "deployment",
            "demo",
            "-o",
            r#"jsonpath={.status.conditions[?(@.type=="Available")].status} {.status.availableReplicas}"#,
        ])
        .await
        .unwrap();
    assert_eq!(available, "True 2");
    let pods = tools
        .kubectl(&[
            "-n",
            NS,
            "get",
            "pods",
            "-l",
            "app.kubernetes.io/instance=demo",
            "-o",
            r#"jsonpath={range .items[*]}{.spec.nodeName} {.status.phase} {.spec.serviceAccountName}{"\n"}{end}"#,
        ])
        .await
        .unwrap();
    let pods: Vec<&str> = pods.lines().collect();
    assert_eq!(pods, ["kwok-node-0 Running demo"; 2], "{pods:?}");

    // Act: uninstall.
    tools
        .helm(&["uninstall", "demo", "--namespace", NS, "--wait"])
        .await;

    // Assert: nothing of the release is left (pods go after their ReplicaSet, so wait for them);
    // only the namespace's built-ins remain.
    let left = tools.objects_until(|n| of_release(n).is_empty()).await;
    assert_eq!(
        left,
        ["configmap/kube-root-ca.crt", "serviceaccount/default"],
        "only the namespace's built-ins remain"
    );
    let releases = tools
        .helm(&["list", "--namespace", NS, "--all", "-q"])
        .await;
    assert!(releases.trim().is_empty(), "{releases:?}");

    // Act: delete the cluster.
    app.service
        .delete(&who(), "helm", DeleteReason::Requested)
        .await
        .unwrap();
    app.reconciler.reconcile_until_idle(50).await;

    // Assert: Deleted, and none of its processes is left.
    assert_eq!(
        store.get_cluster(&c.id).await.unwrap().unwrap().phase,
        Phase::Deleted
    );
    let procs = processes_of(&app.driver, &c.id);
    assert!(procs.is_empty(), "processes left: {procs:?}");
}
