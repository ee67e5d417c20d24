//! The vcluster driver end to end with the real thing: the real `vcm` binary as server
//! (`driver = "vcluster"`) and CLI, a tier-C host (real kubelet, containerd, kube-proxy), the real
//! `vclusterctl` and chart, and the vCluster control plane running as a real container from the
//! locally built images. Nothing plays the syncer here.
//!
//! vcm runs outside the host's network (on the machine, the host's pods inside the bed's
//! namespace), as in the README's EKS example, and reaches a vCluster both ways a host can be
//! configured: through a NodePort on the node's address (`server_template =
//! "https://<node>:{node_port}"`), and only through the host's API server (`api_access =
//! "tunnel"`: a port-forward to the control-plane pod; the cluster's address is a `.svc` name
//! that resolves nowhere on this machine).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/kubectl.rs"]
mod kubectl;
#[path = "support/streaming.rs"]
mod streaming;
#[path = "support/vcm_server.rs"]
mod vcm_server;

use std::path::Path;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::Api;
use kube::api::ListParams;
use kubectl::Kubectl;
use streaming::{Streaming, http_get};
use vcm::testing::tier_c::WORKLOAD_IMAGE;
use vcm::testing::{TestBed, eventually};
use vcm_server::{Server, write_config};

/// `vcm cluster kubeconfig` into `path` (`--mode direct` when `direct`, else the server's
/// default: the gateway), and the server URL it names.
async fn kubeconfig(vcm: &Server, id: &str, path: &Path, direct: bool) -> (Kubectl, String) {
    let mut args = vec![
        "cluster",
        "kubeconfig",
        id,
        "--output-file",
        path.to_str().unwrap(),
    ];
    if direct {
        args.extend(["--mode", "direct"]);
    }
    vcm.cli_ok(&args);
    let kubectl = Kubectl {
        kubeconfig: path.to_owned(),
    };
    let jsonpath = "jsonpath={.clusters[0].cluster.server}";
    let server = kubectl.run(&["config", "view", "-o", jsonpath]).await;
    (kubectl, server)
}

/// What streams through the gateway to a workload on the real node: `logs -f`, `exec -i` with
/// stdin, `port-forward` serving a real HTTP response, `cp` both ways; then a revoked credential
/// ends an open exec session within a second.
async fn gateway_streams(vcm: &Server, id: &str, kc: &Path, dir: &Path) {
    let kubectl = Kubectl {
        kubeconfig: kc.to_owned(),
    };
    let logs = Streaming::start(kc, &["logs", "-f", "deployment/web"]);
    logs.line_with("workload serving /www on :8080", Duration::from_secs(30));

    let mut exec = Streaming::start(kc, &["exec", "-i", "deployment/web", "--", "cat"]);
    exec.send("ping through the gateway");
    exec.line_with("ping through the gateway", Duration::from_secs(30));

    let port = vcm::controlplane::free_port().unwrap();
    let forward = Streaming::start(
        kc,
        &["port-forward", "deployment/web", &format!("{port}:8080")],
    );
    forward.line_with("Forwarding from", Duration::from_secs(30));
    let page = http_get(port, "/index.html");
    assert!(page.contains("hello from vcm's test workload"), "{page}");
    drop(forward);

    let pod = kubectl
        .run(&[
            "get",
            "pods",
            "-l",
            "app=web",
            "-o",
            "jsonpath={.items[0].metadata.name}",
        ])
        .await;
    let local = dir.join("copied-in.txt");
    std::fs::write(&local, "copied through the gateway\n").unwrap();
    kubectl
        .run(&[
            "cp",
            local.to_str().unwrap(),
            &format!("{pod}:/tmp/copied.txt"),
        ])
        .await;
    let back = dir.join("copied-out.txt");
    kubectl
        .run(&[
            "cp",
            &format!("{pod}:/tmp/copied.txt"),
            back.to_str().unwrap(),
        ])
        .await;
    assert_eq!(
        std::fs::read_to_string(&back).unwrap(),
        "copied through the gateway\n"
    );

    // attach: a pod whose process reads its stdin gets a line through the gateway.
    let echo = dir.join("echo.yaml");
    std::fs::write(&echo, ECHO_POD.replace("IMAGE", WORKLOAD_IMAGE)).unwrap();
    kubectl.run(&["apply", "-f", echo.to_str().unwrap()]).await;
    kubectl
        .run(&[
            "wait",
            "--for=condition=Ready",
            "pod/echo",
            "--timeout=120s",
        ])
        .await;
    let mut attach = Streaming::start(kc, &["attach", "-i", "echo"]);
    // NB: attach connects asynchronously; a line sent before it is attached is not seen, so
    // send until one comes back.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        attach.send("hello over attach");
        if attach.try_line_with("hello over attach", Duration::from_secs(1)) {
            break;
        }
        assert!(Instant::now() < deadline, "attach never echoed a line");
    }
    drop(attach);

    // Revoking every credential of the cluster ends the open exec session and log stream.
    let revoked = Instant::now();
    vcm.cli_ok(&["cluster", "revoke", id]);
    let ended = exec.ended_after(revoked, Duration::from_secs(5));
    eprintln!("exec session ended {ended:?} after revocation");
    assert!(
        ended.is_some_and(|d| d < Duration::from_secs(1)),
        "the exec session ran on after its credential was revoked: {ended:?}"
    );
    let mut logs = logs;
    assert!(
        logs.ended_after(revoked, Duration::from_secs(2)).is_some(),
        "logs -f ran on after its credential was revoked"
    );
}

/// A pod whose one process echoes its stdin (for `kubectl attach`).
const ECHO_POD: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: echo}
spec:
  containers:
  - name: echo
    image: IMAGE
    imagePullPolicy: Never
    command: ["cat"]
    stdin: true
"#;

/// A workload for inside the virtual cluster.
const DEPLOYMENT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: IMAGE
        imagePullPolicy: Never
"#;

#[tokio::test(flavor = "multi_thread")]
async fn real_vclusters_are_created_used_and_deleted_through_vcm() {
    // Arrange
    let bed = TestBed::tier_c().await;
    let node = bed.node().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &bed);
    let vcm = Server::start(dir.path(), &config);

    // Act: create and wait, as two pipelines would at once: one cluster on the host vcm
    // reaches by address (a node port), one on the host it reaches only through the host's
    // API server (a tunnel; its address, a `.svc` name, resolves nowhere here).
    let tunneled = vcm
        .create_command("tunneled", "bed-tunnel")
        .spawn()
        .unwrap();
    let started = Instant::now();
    let created = vcm.create_ready("real");
    let took = started.elapsed();
    let tunneled = tunneled.wait_with_output().unwrap();
    assert!(
        tunneled.status.success(),
        "create on the tunnel host: {}",
        vcm_server::text(&tunneled)
    );
    let tunneled: serde_json::Value = serde_json::from_slice(&tunneled.stdout).unwrap();

    // Assert: Ready, with the real control plane running as a container on the node.
    assert_eq!(created["phase"], "Ready", "{created}");
    assert_eq!(tunneled["phase"], "Ready", "{tunneled}");
    let id = created["id"].as_str().unwrap().to_owned();
    let ns = format!("vcm-{id}");
    let tid = tunneled["id"].as_str().unwrap().to_owned();
    let tns = format!("vcm-{tid}");
    eprintln!(
        "vcm cluster create --wait: Ready in {:.1}s (with a second cluster created at once)",
        took.as_secs_f64()
    );
    let pods: Api<Pod> = Api::namespaced(bed.client(), &ns);
    let control = pods
        .list(&ListParams::default().labels(&format!("app=vcluster,release={id}")))
        .await
        .unwrap();
    let status = control.items[0].status.clone().unwrap();
    let syncer = status
        .container_statuses
        .unwrap()
        .into_iter()
        .find(|c| c.name == "syncer")
        .unwrap();
    assert!(syncer.ready, "{syncer:?}");
    assert_eq!(syncer.image, "vcm.local/vcluster:0.36.1");
    let containers = node.ctr(&["containers", "ls"]).unwrap();
    assert!(
        containers.contains("vcm.local/vcluster:0.36.1"),
        "{containers}"
    );
    let endpoint = created["endpoint"].as_str().unwrap();
    let node_ip = node.addresses().node.to_string();
    assert!(
        endpoint.starts_with(&format!("https://{node_ip}:")),
        "{endpoint}"
    );
    // The tunnelled cluster's address is the in-cluster Service name: vcm never dialled it.
    assert_eq!(
        tunneled["endpoint"],
        format!("https://{tid}.{tns}.svc:443"),
        "{tunneled}"
    );

    // Both kinds of kubeconfig vcm hands out work with kubectl from outside the host's network:
    // the direct one (the cluster's own endpoint) and the default one, through vcm's gateway.
    let (direct, server) = kubeconfig(&vcm, &id, &dir.path().join("direct.yaml"), true).await;
    assert_eq!(server, endpoint);
    let nss = direct.run(&["get", "namespaces", "-o", "name"]).await;
    assert!(nss.contains("namespace/kube-system"), "{nss}");
    let (kubectl, server) = kubeconfig(&vcm, &id, &dir.path().join("ci.yaml"), false).await;
    assert_eq!(server, format!("{}/k8s/{id}", vcm.addr));
    let nss = kubectl.run(&["get", "namespaces", "-o", "name"]).await;
    assert!(nss.contains("namespace/kube-system"), "{nss}");

    // The tunnelled cluster through the gateway: a Deployment inside it is synced to the host
    // namespace and its pod runs as a real container; logs, exec and every stream go through
    // vcm, the host's API server and the kubelet.
    let tkc = dir.path().join("tunneled.yaml");
    let (tkubectl, server) = kubeconfig(&vcm, &tid, &tkc, false).await;
    assert_eq!(server, format!("{}/k8s/{tid}", vcm.addr));
    let manifest = dir.path().join("web.yaml");
    std::fs::write(&manifest, DEPLOYMENT.replace("IMAGE", WORKLOAD_IMAGE)).unwrap();
    tkubectl
        .run(&["apply", "-f", manifest.to_str().unwrap()])
        .await;
    tkubectl
        .run(&["rollout", "status", "deployment/web", "--timeout=180s"])
        .await;
    let tpods: Api<Pod> = Api::namespaced(bed.client(), &tns);
    let synced = eventually(
        "the synced pod Running",
        Duration::from_secs(60),
        || async {
            let list = tpods.list(&ListParams::default()).await?;
            Ok(list.items.into_iter().find(|p| {
                p.metadata
                    .name
                    .as_deref()
                    .is_some_and(|n| n.starts_with("web-"))
                    && p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
            }))
        },
    )
    .await
    .unwrap();
    let synced_name = synced.metadata.name.unwrap();
    assert!(
        synced_name.ends_with(&format!("-x-default-x-{tid}")),
        "{synced_name}"
    );
    let containers = node.ctr(&["containers", "ls"]).unwrap();
    assert!(containers.contains(WORKLOAD_IMAGE), "{containers}");
    let logs = tkubectl.run(&["logs", "deployment/web"]).await;
    assert!(logs.contains("workload serving /www on :8080"), "{logs}");
    let page = tkubectl
        .run(&["exec", "deployment/web", "--", "cat", "/www/index.html"])
        .await;
    assert_eq!(page.trim(), "hello from vcm's test workload");
    gateway_streams(&vcm, &tid, &tkc, dir.path()).await;

    // A privileged pod (a CI job asking for the node) is accepted by the virtual cluster but
    // refused by the host's Pod Security admission when synced; the user sees why in the
    // virtual cluster's events, and nothing of it runs on the host.
    let root = dir.path().join("root.yaml");
    std::fs::write(&root, PRIVILEGED_POD.replace("IMAGE", WORKLOAD_IMAGE)).unwrap();
    kubectl.run(&["apply", "-f", root.to_str().unwrap()]).await;
    let events = kubectl
        .until(
            &[
                "get",
                "events",
                "--field-selector=involvedObject.name=root",
                "-o",
                "jsonpath={.items[*].message}",
            ],
            |out| out.contains("violates PodSecurity"),
        )
        .await;
    eprintln!("what the user sees: {events}");
    assert!(
        events.contains("violates PodSecurity \"baseline:latest\": privileged"),
        "{events}"
    );
    let on_host = pods.list(&ListParams::default()).await.unwrap();
    assert!(
        !on_host.items.iter().any(|p| p
            .metadata
            .name
            .as_deref()
            .unwrap_or("")
            .starts_with("root-")),
        "the privileged pod reached the host"
    );

    // Delete, and nothing of either cluster is left on the node.
    vcm.cli_ok(&["cluster", "delete", &id, &tid, "--wait", "--timeout", "3m"]);
    let namespaces: Api<Namespace> = Api::all(bed.client());
    assert!(namespaces.get_opt(&ns).await.unwrap().is_none());
    assert!(namespaces.get_opt(&tns).await.unwrap().is_none());
    eventually(
        "no container left on the node",
        Duration::from_secs(60),
        || async {
            let left = node.ctr(&["containers", "ls", "-q"])?;
            Ok(left.trim().is_empty().then_some(()))
        },
    )
    .await
    .unwrap();
    let tasks = node.ctr(&["tasks", "ls", "-q"]).unwrap();
    assert!(tasks.trim().is_empty(), "tasks left: {tasks}");
    let netns = node_netns(bed.dir());
    assert!(netns.is_empty(), "pod network namespaces left: {netns:?}");
    let rules = node.run_inside(&["iptables-save"]).unwrap();
    for ns in [&ns, &tns] {
        assert!(
            !rules.contains(ns.as_str()),
            "iptables rules of {ns} left:\n{rules}"
        );
    }
}

/// A pod asking for a privileged container.
const PRIVILEGED_POD: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: root}
spec:
  containers:
  - name: c
    image: IMAGE
    imagePullPolicy: Never
    securityContext: {privileged: true}
"#;

/// Pod network namespaces containerd keeps under its state directory.
fn node_netns(bed_dir: &Path) -> Vec<String> {
    let dir = bed_dir.join("containerd/state/io.containerd.grpc.v1.cri/netns");
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}
