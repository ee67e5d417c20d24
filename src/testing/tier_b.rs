//! Tier B helpers: kube-controller-manager, kube-scheduler and kwok with one fake node.

use std::time::Duration;

use anyhow::Context as _;
use k8s_openapi::api::core::v1::{Node, ServiceAccount};
use kube::Api;
use kube::api::PostParams;

use super::{TestBed, eventually, failure, wait_node_ready};
use crate::controlplane::{PortLease, Supervised, SupervisedOptions};

/// The fake node's name.
pub const NODE_NAME: &str = "kwok-node-0";

/// How long the controllers may take to become healthy and do their first work.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Start the controller-manager, the scheduler and (with `fake_node`) kwok with its node, and
/// wait until each has done observable work.
pub(super) async fn start(
    bed: &TestBed,
    fake_node: bool,
) -> anyhow::Result<(Vec<Supervised>, Vec<PortLease>)> {
    let pki = bed.apiserver.pki();
    let kubeconfig = bed.kubeconfig_path().display().to_string();
    let spawn = |name: &str, args: Vec<String>| {
        let opts = SupervisedOptions {
            log_path: bed.dir().join(format!("{name}.log")),
            die_with_parent: true,
            env: vec![],
        };
        Supervised::spawn(name, &bed.bins.get(name)?, &args, &opts)
    };

    let kcm_port = PortLease::free()?;
    let kcm = spawn(
        "kube-controller-manager",
        vec![
            format!("--kubeconfig={kubeconfig}"),
            "--bind-address=127.0.0.1".into(),
            format!("--secure-port={}", kcm_port.port()),
            format!("--root-ca-file={}", pki.ca_cert().display()),
            format!(
                "--service-account-private-key-file={}",
                pki.sa_key().display()
            ),
            format!("--cluster-signing-cert-file={}", pki.ca_cert().display()),
            format!("--cluster-signing-key-file={}", pki.ca_key().display()),
            "--leader-elect=false".into(),
            "--use-service-account-credentials=false".into(),
            "--kube-api-qps=200".into(),
            "--kube-api-burst=400".into(),
        ],
    )?;
    let sched_port = PortLease::free()?;
    let scheduler = spawn(
        "kube-scheduler",
        vec![
            format!("--kubeconfig={kubeconfig}"),
            "--bind-address=127.0.0.1".into(),
            format!("--secure-port={}", sched_port.port()),
            "--leader-elect=false".into(),
        ],
    )?;
    let stages = bed.bins.dir_of("kwok")?.join("kwok-stages");
    let mut kwok_args = vec![
        format!("--kubeconfig={kubeconfig}"),
        "--manage-all-nodes=false".into(),
        "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake".into(),
        "--cidr=10.244.0.0/16".into(),
        "--node-ip=10.244.0.1".into(),
        "--node-lease-duration-seconds=40".into(),
    ];
    for stage in [
        "node-initialize.yaml",
        "node-heartbeat-with-lease.yaml",
        "pod-ready.yaml",
        "pod-complete.yaml",
        "pod-delete.yaml",
    ] {
        let path = stages.join(stage);
        anyhow::ensure!(
            path.is_file(),
            "kwok stage file {} is missing; rebuild with `{}`",
            path.display(),
            crate::controlplane::BUILD_COMMAND
        );
        kwok_args.push(format!("--config={}", path.display()));
    }
    let mut helpers = vec![kcm, scheduler];
    if fake_node {
        helpers.push(spawn("kwok", kwok_args)?);
    }

    let insecure = reqwest::Client::builder()
        // NB: the controllers serve /healthz with an in-memory self-signed certificate on
        // loopback; only their liveness is read here.
        .tls_danger_accept_invalid_certs(true)
        .timeout(Duration::from_secs(2))
        .build()
        .context("building an HTTP client")?;
    for (name, port) in [
        ("kube-controller-manager", kcm_port.port()),
        ("kube-scheduler", sched_port.port()),
    ] {
        let url = format!("https://127.0.0.1:{port}/healthz");
        let res = eventually(name, READY_TIMEOUT, || async {
            Ok(insecure
                .get(&url)
                .send()
                .await?
                .status()
                .is_success()
                .then_some(()))
        })
        .await;
        if let Err(e) = res {
            return Err(failure(&mut helpers, name, e));
        }
    }

    if fake_node {
        create_fake_node(&bed.client).await?;
        let node_ready = wait_node_ready(&bed.client, NODE_NAME, READY_TIMEOUT).await;
        if let Err(e) = node_ready {
            return Err(failure(&mut helpers, "kwok", e));
        }
    }
    let sas: Api<ServiceAccount> = Api::namespaced(bed.client.clone(), "default");
    let sa = eventually("default ServiceAccount", READY_TIMEOUT, || async {
        Ok(sas.get_opt("default").await?.map(|_| ()))
    })
    .await;
    if let Err(e) = sa {
        return Err(failure(&mut helpers, "kube-controller-manager", e));
    }
    Ok((helpers, vec![kcm_port, sched_port]))
}

async fn create_fake_node(client: &kube::Client) -> anyhow::Result<()> {
    let node: Node = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": NODE_NAME,
            "annotations": { "kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0" },
            "labels": {
                "type": "kwok",
                "kubernetes.io/hostname": NODE_NAME,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
            },
        },
        "spec": { "providerID": format!("kwok://{NODE_NAME}") },
        "status": {
            "allocatable": { "cpu": "32", "memory": "256Gi", "ephemeral-storage": "100Gi", "pods": "110" },
            "capacity": { "cpu": "32", "memory": "256Gi", "ephemeral-storage": "100Gi", "pods": "110" },
        },
    }))
    .context("building the fake node")?;
    Api::<Node>::all(client.clone())
        .create(&PostParams::default(), &node)
        .await
        .context("creating the kwok node")?;
    Ok(())
}
