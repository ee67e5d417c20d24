//! The Helm chart installed on a real node (test bed tier C) with vcm's image built here
//! (`scripts/vcm-image.sh`, from this test's own vcm binary, no Docker daemon): the vcm pod
//! passes its probes, and, driven as the README says (a token of the chart's admin
//! ServiceAccount, `kubectl port-forward` to its Service, the vcm CLI), makes a real vCluster on
//! the same cluster in-cluster, hands out a kubeconfig that works, deletes it; `helm uninstall`
//! leaves nothing behind. Also: the image is laid out like the Dockerfile's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/kubectl.rs"]
mod kubectl;
#[path = "support/streaming.rs"]
mod streaming;
#[path = "support/vcm_server.rs"]
mod vcm_server;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::Api;
use kube::api::ListParams;
use kubectl::Kubectl;
use streaming::Streaming;
use vcm::controlplane::{KubeBins, free_port};
use vcm::testing::{TestBed, eventually};

const REPO: &str = env!("CARGO_MANIFEST_DIR");
const NAMESPACE: &str = "vcm-system";
const RELEASE: &str = "vcm";
const IMAGE: &str = "vcm.local/vcm:test";

/// `scripts/vcm-image.sh` on this test's vcm binary: the image tarball, its build time.
fn build_image(dir: &Path) -> (PathBuf, Duration) {
    let tar = dir.join("vcm-image.tar");
    let started = Instant::now();
    let out = Command::new(format!("{REPO}/scripts/vcm-image.sh"))
        .args([env!("CARGO_BIN_EXE_vcm"), tar.to_str().unwrap(), "test"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", vcm_server::text(&out));
    (tar, started.elapsed())
}

/// A blob of the image layout `tar` named by `digest` (`sha256:…`), as text (JSON) or raw.
fn blob(tar: &Path, digest: &str) -> Vec<u8> {
    let member = format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"));
    let out = Command::new("tar")
        .args(["-xOf", tar.to_str().unwrap(), &member])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", vcm_server::text(&out));
    out.stdout
}

/// The final stage of the Dockerfile: `(instruction, arguments)` from its last `FROM` on.
fn dockerfile_final_stage() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(format!("{REPO}/Dockerfile")).unwrap();
    let mut lines: Vec<(String, String)> = Vec::new();
    let mut logical = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with('#') {
            continue;
        }
        logical.push_str(line.trim_end_matches('\\'));
        if line.ends_with('\\') {
            continue;
        }
        let full = std::mem::take(&mut logical);
        if let Some((op, args)) = full.trim().split_once(' ') {
            if op == "FROM" {
                lines.clear();
            }
            lines.push((op.to_owned(), args.trim().to_owned()));
        }
    }
    lines
}

#[test]
fn the_image_built_without_docker_is_laid_out_like_the_dockerfiles() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();
    let (tar, took) = build_image(dir.path());
    let size = std::fs::metadata(&tar).unwrap().len();
    eprintln!(
        "scripts/vcm-image.sh: {IMAGE} in {:.1}s, {} MiB",
        took.as_secs_f64(),
        size / (1 << 20)
    );

    // Act: the image's config and file list, and the Dockerfile's final stage.
    let index: serde_json::Value = serde_json::from_slice(
        &Command::new("tar")
            .args(["-xOf"])
            .arg(&tar)
            .arg("index.json")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let entry = &index["manifests"][0];
    assert_eq!(entry["annotations"]["io.containerd.image.name"], IMAGE);
    let manifest: serde_json::Value =
        serde_json::from_slice(&blob(&tar, entry["digest"].as_str().unwrap())).unwrap();
    let config: serde_json::Value =
        serde_json::from_slice(&blob(&tar, manifest["config"]["digest"].as_str().unwrap()))
            .unwrap();
    let config = &config["config"];
    let layer = dir.path().join("layer.tar");
    std::fs::write(
        &layer,
        blob(&tar, manifest["layers"][0]["digest"].as_str().unwrap()),
    )
    .unwrap();
    let listing = Command::new("tar")
        .args(["-tvf", layer.to_str().unwrap()])
        .output()
        .unwrap();
    let listing = String::from_utf8(listing.stdout).unwrap();
    let stage = dockerfile_final_stage();
    let op = |name: &str| -> Vec<&str> {
        stage
            .iter()
            .filter(|(o, _)| o == name)
            .map(|(_, a)| a.as_str())
            .collect()
    };

    // Assert: the same user, working directory, entrypoint, command, HOME and ports…
    assert_eq!(op("FROM"), ["gcr.io/distroless/cc-debian12:nonroot"]);
    assert_eq!(op("USER"), ["65532:65532"]);
    assert_eq!(config["User"], "65532:65532");
    assert_eq!(op("WORKDIR"), [config["WorkingDir"].as_str().unwrap()]);
    let json = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap();
    assert_eq!(json(op("ENTRYPOINT")[0]), config["Entrypoint"]);
    assert_eq!(json(op("CMD")[0]), config["Cmd"]);
    for env in op("ENV") {
        assert!(
            config["Env"].as_array().unwrap().iter().any(|e| e == env),
            "ENV {env} is not in the image's {}",
            config["Env"]
        );
    }
    for port in op("EXPOSE")[0].split_whitespace() {
        assert!(
            config["ExposedPorts"].get(format!("{port}/tcp")).is_some(),
            "{port}"
        );
    }
    // …and every path the Dockerfile copies to, with the owner it gives.
    for copy in op("COPY") {
        let words: Vec<&str> = copy.split_whitespace().collect();
        let dest = words.last().unwrap().trim_end_matches('/');
        let owner = words
            .iter()
            .find_map(|w| w.strip_prefix("--chown="))
            .map_or("0/0".to_owned(), |o| o.replace(':', "/"));
        let sources = words.iter().filter(|w| !w.starts_with("--")).count() - 1;
        let paths: Vec<String> = if sources > 1 {
            // `COPY a/x a/y dest/`: dest/x and dest/y.
            words[words.len() - 1 - sources..words.len() - 1]
                .iter()
                .map(|s| {
                    format!(
                        "{dest}/{}",
                        Path::new(s).file_name().unwrap().to_str().unwrap()
                    )
                })
                .collect()
        } else {
            vec![dest.to_owned()]
        };
        for path in paths {
            let line = listing
                .lines()
                .find(|l| l.ends_with(&format!(" .{path}")) || l.ends_with(&format!(" .{path}/")))
                .unwrap_or_else(|| panic!("COPY … {path}: not in the image:\n{listing}"));
            assert!(line.contains(&format!(" {owner} ")), "{path}: {line}");
        }
    }
    // The distroless base's part: CA certificates and the nonroot user.
    assert!(listing.contains(" ./etc/ssl/certs/ca-certificates.crt"));
    let passwd = Command::new("tar")
        .args(["-xOf", layer.to_str().unwrap(), "./etc/passwd"])
        .output()
        .unwrap();
    let passwd = String::from_utf8(passwd.stdout).unwrap();
    assert!(passwd.contains("nonroot:x:65532:65532:"), "{passwd}");
}

/// Everything that says why the vcm pod is not what it should be: pods, events, logs.
async fn diagnostics(kubectl: &Kubectl) -> String {
    let mut out = String::new();
    for args in [
        vec!["get", "pods", "-A", "-o", "wide"],
        vec!["describe", "pods", "-n", NAMESPACE],
        vec!["get", "events", "-A", "--sort-by=.lastTimestamp"],
        vec![
            "logs",
            "-n",
            NAMESPACE,
            "-l",
            "app.kubernetes.io/name=vcm",
            "--tail=200",
        ],
        vec![
            "logs",
            "-n",
            NAMESPACE,
            "-l",
            "app.kubernetes.io/name=vcm",
            "--previous",
            "--tail=100",
        ],
    ] {
        let res = kubectl.try_run(&args).await;
        out.push_str(&format!(
            "\n--- kubectl {}\n{}",
            args.join(" "),
            res.unwrap_or_else(|e| e)
        ));
    }
    out
}

/// The chart's values for the bed: the image imported into the node, a throw-away store, the
/// Service and handed-out addresses as the node's, the images of `scripts/node-images.sh` for
/// every vCluster.
fn values(node: std::net::Ipv4Addr) -> serde_json::Value {
    let host_values: serde_json::Value = serde_yaml_ng::from_str(vcm_server::HOST_VALUES).unwrap();
    let (repository, tag) = IMAGE.split_once(':').unwrap();
    serde_json::json!({
        "image": {"repository": repository, "tag": tag, "pullPolicy": "Never"},
        "persistence": {"enabled": false},
        "store": {"ephemeral": true},
        // NB: the node has no cluster DNS, so vcm cannot resolve the default `.svc` address of
        // a vCluster: it reaches (and hands out) a node port of the node instead, as
        // tests/vcluster_real.rs does from outside. kube-proxy runs on the node, so the pod
        // reaches the API server at the `kubernetes` Service like any in-cluster client.
        "host": {
            "serverTemplate": format!("https://{node}:{{node_port}}"),
            "values": host_values,
        },
        "vcluster": {"kubernetesVersions": {"1.36": "v1.36.3"}},
    })
}

/// The vcm CLI at `addr` with `token`.
fn vcm_cli(addr: &str, token: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = vcm_server::vcm_cmd(args)
        .env("VCM_ADDR", addr)
        .env("VCM_TOKEN", token)
        .output()?;
    ensure!(
        out.status.success(),
        "vcm {}: {}",
        args.join(" "),
        vcm_server::text(&out)
    );
    Ok(String::from_utf8(out.stdout)?)
}

/// `helm` against the bed, with its own empty configuration and cache.
fn helm(bed: &TestBed, home: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(KubeBins::locate().get("helm")?)
        .args(args)
        .arg(format!("--kubeconfig={}", bed.kubeconfig_path().display()))
        .env("HELM_CACHE_HOME", home)
        .env("HELM_CONFIG_HOME", home)
        .env("HELM_DATA_HOME", home)
        .output()?;
    ensure!(
        out.status.success(),
        "helm {}: {}",
        args.join(" "),
        vcm_server::text(&out)
    );
    Ok(String::from_utf8(out.stdout)?)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_chart_on_a_real_node_runs_vcm_which_makes_a_vcluster_in_cluster() {
    let started = Instant::now();
    let bed = TestBed::tier_c().await;
    let kubectl = Kubectl {
        kubeconfig: bed.kubeconfig_path(),
    };
    let dir = tempfile::tempdir().unwrap();
    if let Err(e) = install_use_uninstall(&bed, &kubectl, dir.path()).await {
        let why = diagnostics(&kubectl).await;
        panic!("{e:#}\n{why}");
    }
    eprintln!(
        "chart on tier C: {:.1}s in all (bed {:.1}s)",
        started.elapsed().as_secs_f64(),
        bed.started_in().as_secs_f64()
    );
}

async fn install_use_uninstall(bed: &TestBed, kubectl: &Kubectl, dir: &Path) -> anyhow::Result<()> {
    let node = bed.node().context("a tier-C bed has a node")?;
    let step = Instant::now();

    // Arrange: the image, in the node's containerd.
    let (tar, took) = build_image(dir);
    eprintln!(
        "image {IMAGE} built in {:.1}s ({} MiB)",
        took.as_secs_f64(),
        std::fs::metadata(&tar)?.len() / (1 << 20)
    );
    let t = Instant::now();
    node.ctr(&[
        "images",
        "import",
        "--no-unpack=false",
        tar.to_str().unwrap(),
    ])?;
    let images = node.ctr(&["images", "ls", "-q"])?;
    ensure!(images.lines().any(|l| l == IMAGE), "not imported: {images}");
    eprintln!("imported in {:.1}s", t.elapsed().as_secs_f64());

    // Act: install as the README says, into a vcm-* namespace.
    let values_file = dir.join("values.json");
    std::fs::write(&values_file, values(node.addresses().node).to_string())?;
    let home = dir.join("helm");
    std::fs::create_dir_all(&home)?;
    kubectl
        .try_run(&["create", "namespace", NAMESPACE])
        .await
        .map_err(anyhow::Error::msg)?;
    let t = Instant::now();
    helm(
        bed,
        &home,
        &[
            "install",
            RELEASE,
            &format!("{REPO}/deploy/chart/vcm"),
            "--namespace",
            NAMESPACE,
            "--values",
            values_file.to_str().unwrap(),
        ],
    )?;

    // Assert: the pod becomes Ready (its startup and readiness probes pass), from our image,
    // as 65532, without a restart.
    let pods: Api<Pod> = Api::namespaced(bed.client(), NAMESPACE);
    let selector = ListParams::default().labels("app.kubernetes.io/name=vcm");
    let pod = eventually("the vcm pod Ready", Duration::from_secs(120), || async {
        let list = pods.list(&selector).await?;
        Ok(list.items.into_iter().find(|p| {
            p.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        }))
    })
    .await?;
    eprintln!(
        "vcm pod Ready {:.1}s after helm install",
        t.elapsed().as_secs_f64()
    );
    let status = pod.status.clone().unwrap_or_default();
    let container = status
        .container_statuses
        .unwrap_or_default()
        .into_iter()
        .next()
        .context("a container status")?;
    ensure!(container.image == IMAGE, "{container:?}");
    ensure!(container.restart_count == 0, "{container:?}");
    // Act: an admin token of the chart's admin ServiceAccount, and the API through a
    // port-forward to the Service (the chart's NOTES).
    let token = kubectl
        .try_run(&[
            "create",
            "token",
            &format!("{RELEASE}-admin"),
            "-n",
            NAMESPACE,
            "--audience",
            "vcm",
            "--duration",
            "1h",
        ])
        .await
        .map_err(anyhow::Error::msg)?;
    let token = token.trim();
    let port = free_port()?;
    let forward = Streaming::start(
        &bed.kubeconfig_path(),
        &[
            "port-forward",
            "-n",
            NAMESPACE,
            &format!("svc/{RELEASE}"),
            &format!("{port}:8080"),
        ],
    );
    ensure!(
        forward.try_line_with("Forwarding from", Duration::from_secs(30)),
        "kubectl port-forward to svc/{RELEASE} did not start"
    );
    let addr = format!("http://127.0.0.1:{port}");
    let whoami = vcm_cli(&addr, token, &["whoami", "-o", "json"])?;
    ensure!(whoami.contains("admin"), "not an admin: {whoami}");

    // A vCluster, made by the vcm pod on this same cluster.
    let t = Instant::now();
    let created = vcm_cli(
        &addr,
        token,
        &[
            "cluster",
            "create",
            "--name",
            "chart",
            "--wait",
            "--timeout",
            "5m",
            "--output",
            "json",
        ],
    )?;
    let created: serde_json::Value = serde_json::from_str(&created)?;
    ensure!(created["phase"] == "Ready", "{created}");
    ensure!(created["host"] == "in-cluster", "{created}");
    let node_ip = node.addresses().node;
    ensure!(
        created["endpoint"]
            .as_str()
            .is_some_and(|e| e.starts_with(&format!("https://{node_ip}:"))),
        "the handed-out address is not a node port of the node: {created}"
    );
    eprintln!("vCluster Ready in {:.1}s", t.elapsed().as_secs_f64());
    let id = created["id"].as_str().context("an id")?.to_owned();
    let ns = format!("vcm-{id}");
    let namespaces: Api<Namespace> = Api::all(bed.client());
    ensure!(
        namespaces.get_opt(&ns).await?.is_some(),
        "no namespace {ns}"
    );

    // Its kubeconfig works with kubectl.
    let kc = dir.join("cluster.yaml");
    vcm_cli(
        &addr,
        token,
        &[
            "cluster",
            "kubeconfig",
            &id,
            "--mode",
            "direct",
            "--output-file",
            kc.to_str().unwrap(),
        ],
    )?;
    let inside = Kubectl { kubeconfig: kc };
    let nss = inside
        .try_run(&["get", "namespaces", "-o", "name"])
        .await
        .map_err(anyhow::Error::msg)?;
    ensure!(nss.contains("namespace/kube-system"), "{nss}");

    // Deleted, its host namespace goes.
    let t = Instant::now();
    vcm_cli(
        &addr,
        token,
        &["cluster", "delete", &id, "--wait", "--timeout", "3m"],
    )?;
    ensure!(
        namespaces.get_opt(&ns).await?.is_none(),
        "{ns} is still there after the delete"
    );
    eprintln!("vCluster deleted in {:.1}s", t.elapsed().as_secs_f64());
    drop(forward);

    // `helm uninstall` leaves nothing: no pod, no cluster-wide object of the release, no vcm-*
    // namespace but the one this test made.
    helm(
        bed,
        &home,
        &["uninstall", RELEASE, "--namespace", NAMESPACE, "--wait"],
    )?;
    eventually("the vcm pod gone", Duration::from_secs(90), || async {
        Ok(pods.list(&selector).await?.items.is_empty().then_some(()))
    })
    .await?;
    let left = kubectl
        .try_run(&[
            "get",
            "all,configmaps,secrets,serviceaccounts,roles,rolebindings,clusterroles,clusterrolebindings,validatingadmissionpolicies,validatingadmissionpolicybindings",
            "-A",
            "-l",
            &format!("app.kubernetes.io/instance={RELEASE}"),
            "-o",
            "name",
        ])
        .await
        .map_err(anyhow::Error::msg)?;
    ensure!(left.trim().is_empty(), "left by helm uninstall: {left}");
    let vcm_namespaces: Vec<String> = namespaces
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .filter(|n| n.starts_with("vcm-") && n != NAMESPACE)
        .collect();
    ensure!(vcm_namespaces.is_empty(), "left: {vcm_namespaces:?}");
    kubectl
        .try_run(&["delete", "namespace", NAMESPACE, "--wait"])
        .await
        .map_err(anyhow::Error::msg)?;
    eventually(
        "no container left on the node",
        Duration::from_secs(60),
        || async {
            let left = node.ctr(&["containers", "ls", "-q"])?;
            Ok(left.trim().is_empty().then_some(()))
        },
    )
    .await?;
    eprintln!(
        "installed, used, uninstalled in {:.1}s",
        step.elapsed().as_secs_f64()
    );
    Ok(())
}
