//! The Kubernetes test bed is real: each test runs against real etcd, kube-apiserver and (tier B)
//! controller-manager, scheduler and kwok built by `scripts/k8s-bins.sh`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::Api;
use kube::api::{DeleteParams, ListParams, PostParams};
use vcm::controlplane::{Kubeconfig, KubeconfigUser};
use vcm::testing::{TestBed, eventually};

fn json<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
    serde_json::from_value(v).expect("valid object")
}

#[tokio::test]
async fn namespace_is_created_and_then_fully_deleted() {
    // Arrange
    let bed = TestBed::tier_b().await;
    let nss: Api<Namespace> = Api::all(bed.client());
    nss.create(
        &PostParams::default(),
        &json(serde_json::json!({"metadata": {"name": "doomed"}})),
    )
    .await
    .unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(bed.client(), "doomed");
    cms.create(
        &PostParams::default(),
        &json(serde_json::json!({"metadata": {"name": "x"}})),
    )
    .await
    .unwrap();

    // Act
    nss.delete("doomed", &DeleteParams::default())
        .await
        .unwrap();

    // Assert: the namespace controller empties it and removes the finalizer.
    eventually("namespace gone", Duration::from_secs(60), || async {
        Ok(nss.get_opt("doomed").await?.is_none().then_some(()))
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn deployment_pod_becomes_running_on_the_kwok_node() {
    // Arrange
    let bed = TestBed::tier_b().await;
    let deploys: Api<Deployment> = Api::namespaced(bed.client(), "default");
    let deploy = json(serde_json::json!({
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
            },
        },
    }));

    // Act
    deploys
        .create(&PostParams::default(), &deploy)
        .await
        .unwrap();

    // Assert
    let pods: Api<Pod> = Api::namespaced(bed.client(), "default");
    let node = eventually("pod Running", Duration::from_secs(60), || async {
        let list = pods.list(&ListParams::default().labels("app=web")).await?;
        Ok(list.items.into_iter().find_map(|p| {
            let running = p.status.as_ref()?.phase.as_deref() == Some("Running");
            running.then(|| p.spec?.node_name).flatten()
        }))
    })
    .await
    .unwrap();
    assert_eq!(node, "kwok-node-0");
    // The pod was admitted with the `default` ServiceAccount the controller-manager created.
    let sa: Api<ServiceAccount> = Api::namespaced(bed.client(), "default");
    assert!(sa.get_opt("default").await.unwrap().is_some());
}

#[tokio::test]
async fn token_request_token_works_until_its_role_binding_is_removed() {
    // Arrange: a ServiceAccount allowed to list ConfigMaps in `default`, and nothing else.
    let bed = TestBed::tier_a().await;
    let pp = PostParams::default();
    let sas: Api<ServiceAccount> = Api::namespaced(bed.client(), "default");
    sas.create(&pp, &json(serde_json::json!({"metadata": {"name": "ci"}})))
        .await
        .unwrap();
    let roles: Api<Role> = Api::namespaced(bed.client(), "default");
    roles
        .create(
            &pp,
            &json(serde_json::json!({
                "metadata": {"name": "cm-reader"},
                "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}],
            })),
        )
        .await
        .unwrap();
    let bindings: Api<RoleBinding> = Api::namespaced(bed.client(), "default");
    bindings
        .create(&pp, &json(serde_json::json!({
            "metadata": {"name": "ci-reads"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "cm-reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "ci", "namespace": "default"}],
        })))
        .await
        .unwrap();

    // Act: mint a token with the TokenRequest API and use it.
    let req: TokenRequest =
        json(serde_json::json!({"spec": {"audiences": [], "expirationSeconds": 600}}));
    let token = sas.create_token_request("ci", &pp, &req).await.unwrap();
    let token = token.status.expect("TokenRequest returns a status").token;
    let kubeconfig = Kubeconfig {
        user: KubeconfigUser::Token(token),
        ..bed.kubeconfig()
    };
    let as_ci: Api<ConfigMap> = Api::namespaced(kubeconfig.client().await.unwrap(), "default");

    // Assert: allowed with the binding, refused in other namespaces and once it is gone.
    as_ci
        .list(&ListParams::default())
        .await
        .expect("the bound token may list configmaps");
    let elsewhere: Api<ConfigMap> =
        Api::namespaced(kubeconfig.client().await.unwrap(), "kube-system");
    let err = elsewhere
        .list(&ListParams::default())
        .await
        .expect_err("no access there");
    assert!(err.to_string().contains("forbidden"), "{err}");
    bindings
        .delete("ci-reads", &DeleteParams::default())
        .await
        .unwrap();
    eventually("token refused", Duration::from_secs(30), || async {
        Ok(match as_ci.list(&ListParams::default()).await {
            Err(kube::Error::Api(s)) if s.code == 403 => Some(()),
            _ => None,
        })
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn kubectl_works_with_the_generated_kubeconfig() {
    // Arrange
    let bed = TestBed::tier_a().await;
    let kubectl = |args: &[&str]| {
        let out = std::process::Command::new("kubectl")
            .arg(format!("--kubeconfig={}", bed.kubeconfig_path().display()))
            .args(args)
            .output()
            .expect("kubectl is installed (see README: it is a prerequisite)");
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };

    // Act
    kubectl(&["create", "configmap", "hello", "--from-literal=greeting=hi"]);
    let got = kubectl(&[
        "get",
        "configmap",
        "hello",
        "-o",
        "jsonpath={.data.greeting}",
    ]);

    // Assert
    assert_eq!(got, "hi");
    let version = kubectl(&["version", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&version).unwrap();
    let server = v["serverVersion"]["gitVersion"].as_str().unwrap();
    assert!(
        server.starts_with("v1.") && !server.contains("0.0.0"),
        "{server}"
    );
}

#[tokio::test]
async fn kube_apiserver_reports_its_pinned_release() {
    // Arrange
    let bed = TestBed::tier_a().await;
    let pinned = include_str!("../scripts/k8s-versions.env")
        .lines()
        .find_map(|l| l.strip_prefix("K8S_VERSION="))
        .unwrap()
        .trim()
        .to_string();

    // Act
    let out = std::process::Command::new(bed.bins().get("kube-apiserver").unwrap())
        .arg("--version")
        .output()
        .unwrap();
    let served = bed.client().apiserver_version().await.unwrap();

    // Assert
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("Kubernetes v{pinned}")
    );
    assert_eq!(served.git_version, format!("v{pinned}"));
}

#[tokio::test]
async fn dropping_a_test_bed_leaves_no_process_or_directory() {
    // Arrange
    let bed = TestBed::tier_b().await;
    let pids = bed.pids();
    let dir = bed.dir().to_path_buf();
    assert!(
        pids.iter().all(|p| alive(*p)),
        "all processes run while the bed lives"
    );

    // Act
    drop(bed);

    // Assert
    assert!(
        pids.iter().all(|p| !alive(*p)),
        "processes left behind: {pids:?}"
    );
    assert!(!dir.exists(), "{} left behind", dir.display());
}

/// Whether `pid` is a live (non-zombie) process.
fn alive(pid: u32) -> bool {
    vcm::controlplane::is_alive(pid)
}

/// Env var that turns this test's own process into the "victim" that is interrupted.
const CHILD_ENV: &str = "VCM_TESTBED_CTRL_C_CHILD";

#[tokio::test]
async fn interrupting_a_test_midway_leaves_no_kubernetes_process_running() {
    if let Some(report) = std::env::var_os(CHILD_ENV) {
        // The victim: start a full bed, report its pids, and wait to be interrupted.
        let bed = TestBed::tier_b().await;
        let pids = bed
            .pids()
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",");
        std::fs::write(format!("{}.tmp", report.to_string_lossy()), pids).unwrap();
        std::fs::rename(format!("{}.tmp", report.to_string_lossy()), &report).unwrap();
        tokio::time::sleep(Duration::from_secs(300)).await;
        panic!("the parent test should have interrupted this process");
    }

    // Arrange: run this very test in a child process in victim mode.
    let report_dir = tempfile::tempdir().unwrap();
    let report = report_dir.path().join("pids");
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "interrupting_a_test_midway_leaves_no_kubernetes_process_running",
            "--exact",
        ])
        .args(["--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, &report)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let line = eventually(
        "the child reports its pids",
        Duration::from_secs(90),
        || async { Ok(std::fs::read_to_string(&report).ok()) },
    )
    .await
    .unwrap();
    let pids: Vec<u32> = line.split(',').map(|p| p.parse().unwrap()).collect();
    assert!(pids.iter().all(|p| alive(*p)));

    // Act: what Ctrl-C does to a test binary (SIGINT, default action: die without unwinding).
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    child.wait().unwrap();

    // Assert
    let left = eventually("processes gone", Duration::from_secs(10), || async {
        let left: Vec<u32> = pids.iter().copied().filter(|p| alive(*p)).collect();
        Ok(left.is_empty().then_some(()))
    })
    .await;
    assert!(left.is_ok(), "processes survived the interrupt: {pids:?}");
}
