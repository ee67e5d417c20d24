//! Create-to-Ready of a real vCluster on a tier-C host (real kubelet and containerd, locally
//! built images): `vcm cluster create --wait` through a `vcm server` with the vcluster driver,
//! against `vclusterctl create` alone with the same chart values on the same host, in the
//! same run. vcm's overhead is the difference.
//!
//! "Ready" is the same for both: the control-plane pod Ready, secret `vc-<name>` written, and
//! `GET /version` answered with that secret's credentials through the NodePort on the node.
//! For `vclusterctl` alone the clock runs from just before the CLI starts until a poll loop (every
//! 200 ms, as `vcm --wait`) sees all three; for vcm from just before `vcm cluster create --wait`
//! starts until it returns.
//!
//!   cargo bench --bench vcluster_real            (needs root; ROUNDS=<n>, default 3)
//!
//! Measured (2 cores, quiet machine): vclusterctl alone 20.30 s, through vcm 21.21 s, +0.90 s
//! (1.04x), median of 3; see docs/PERFORMANCE.md.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/support/vcm_server.rs"]
mod vcm_server;

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Pod, Secret, Service};
use kube::Api;
use kube::api::{DeleteParams, ListParams};
use vcm::controlplane::KubeBins;
use vcm::testing::TestBed;
use vcm_server::{HOST_VALUES, Server, write_config};

/// The values vcm renders that matter for the comparison, on top of the host's values.
const BASELINE_VALUES: &str = r#"
controlPlane:
  distro:
    k8s:
      enabled: true
      version: v1.36.3
  statefulSet:
    persistence: {volumeClaim: {enabled: false}}
  service:
    spec: {type: NodePort}
telemetry: {enabled: false}
"#;

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    let bed = TestBed::tier_c().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &bed);
    let vcm = Server::start(dir.path(), &config);
    let host_values = dir.path().join("host-values.yaml");
    let baseline_values = dir.path().join("baseline-values.yaml");
    std::fs::write(&host_values, HOST_VALUES).unwrap();
    std::fs::write(&baseline_values, BASELINE_VALUES).unwrap();

    // NB: the first control plane on a fresh node starts slower (page cache, first image
    // unpack use); one uncounted round first.
    let t = vclusterctl_alone(&bed, "warmup", &[&host_values, &baseline_values]).await;
    eprintln!("warm-up (not counted): vclusterctl create + ready: {t:.2}s");
    delete_namespace(&bed, "warmup").await;
    let (mut cli, mut ours) = (vec![], vec![]);
    for round in 0..rounds {
        // NB: alternate the order, so neither always runs on a warmer node.
        for first in [round % 2 == 0, round % 2 != 0] {
            if first {
                let name = format!("b{round}");
                let t = vclusterctl_alone(&bed, &name, &[&host_values, &baseline_values]).await;
                eprintln!("round {round}: vclusterctl create + ready: {t:.2}s");
                cli.push(t);
                delete_namespace(&bed, &name).await;
            } else {
                let started = Instant::now();
                let created = vcm.create_ready(&format!("r{round}"));
                let t = started.elapsed().as_secs_f64();
                eprintln!("round {round}: vcm cluster create --wait: {t:.2}s");
                ours.push(t);
                let id = created["id"].as_str().unwrap();
                vcm.cli_ok(&["cluster", "delete", id, "--wait", "--timeout", "3m"]);
            }
        }
    }
    let (c, v) = (median(&mut cli), median(&mut ours));
    println!(
        "vcluster_real: create-to-Ready of a real vCluster, median of {rounds}: \
         vclusterctl alone {c:.2}s, through vcm {v:.2}s; vcm's overhead {:+.2}s ({:.2}x)",
        v - c,
        v / c
    );
}

/// `vclusterctl create` with `values`, then poll until Ready; seconds.
async fn vclusterctl_alone(bed: &TestBed, name: &str, values: &[&std::path::Path]) -> f64 {
    let bins = KubeBins::locate();
    let chart = bins.dir_of("vclusterctl").unwrap().join("vcluster-chart");
    let started = Instant::now();
    let mut cmd = tokio::process::Command::new(bins.get("vclusterctl").unwrap());
    cmd.args([
        "create",
        name,
        "--namespace",
        name,
        "--driver=helm",
        "--connect=false",
    ])
    .args([
        "--add=false",
        "--background-proxy=false",
        "--expose-local=false",
    ])
    .arg(format!("--local-chart-dir={}", chart.display()))
    .env("KUBECONFIG", bed.kubeconfig_path())
    .env(
        "PATH",
        format!("{}:/usr/bin:/bin", bins.dir_of("helm").unwrap().display()),
    );
    for v in values {
        cmd.arg("-f").arg(v);
    }
    let out = cmd.output().await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let node = bed.node().unwrap().addresses().node;
    loop {
        if ready(bed, name, &node.to_string()).await {
            return started.elapsed().as_secs_f64();
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "{name} never became ready"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Pod Ready, secret `vc-<name>`, and `/version` answered through the node port.
async fn ready(bed: &TestBed, name: &str, node: &str) -> bool {
    let pods: Api<Pod> = Api::namespaced(bed.client(), name);
    let Ok(list) = pods
        .list(&ListParams::default().labels(&format!("app=vcluster,release={name}")))
        .await
    else {
        return false;
    };
    let pod_ready = list.items.iter().any(|p| {
        p.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
    });
    if !pod_ready {
        return false;
    }
    let secrets: Api<Secret> = Api::namespaced(bed.client(), name);
    let Ok(Some(secret)) = secrets.get_opt(&format!("vc-{name}")).await else {
        return false;
    };
    let services: Api<Service> = Api::namespaced(bed.client(), name);
    let Ok(svc) = services.get(name).await else {
        return false;
    };
    let port = svc
        .spec
        .and_then(|s| s.ports)
        .and_then(|ps| ps.into_iter().find(|p| p.port == 443))
        .and_then(|p| p.node_port);
    let (Some(port), Some(data)) = (port, secret.data.and_then(|mut d| d.remove("config"))) else {
        return false;
    };
    let Ok(mut kc) = kube::config::Kubeconfig::from_yaml(&String::from_utf8_lossy(&data.0)) else {
        return false;
    };
    for c in &mut kc.clusters {
        if let Some(cluster) = c.cluster.as_mut() {
            cluster.server = Some(format!("https://{node}:{port}"));
        }
    }
    let Ok(config) = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await else {
        return false;
    };
    let Ok(client) = kube::Client::try_from(config) else {
        return false;
    };
    tokio::time::timeout(Duration::from_secs(5), client.apiserver_version())
        .await
        .is_ok_and(|r| r.is_ok())
}

async fn delete_namespace(bed: &TestBed, name: &str) {
    let nss: Api<Namespace> = Api::all(bed.client());
    let _ = nss.delete(name, &DeleteParams::default()).await;
    let t = Instant::now();
    while nss.get_opt(name).await.unwrap().is_some() {
        assert!(
            t.elapsed() < Duration::from_secs(180),
            "namespace {name} never went away"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}
