//! The cluster gateway end to end on the local driver: the real `vcm` binary (`--dev`), the
//! kubeconfigs its CLI hands out (pointing at `/k8s/<id>` on vcm), and the real `kubectl` and
//! `helm` through them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/python_client.rs"]
mod python_client;
#[path = "support/streaming.rs"]
mod streaming;
#[path = "support/vcm_process.rs"]
mod vcm_process;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use python_client::python_client;
use streaming::{Streaming, http_get};
use vcm::controlplane::KubeBins;
use vcm_process::{Vcm, kubectl};

/// A Ready cluster and a gateway kubeconfig for it.
struct Cluster {
    id: String,
    kubeconfig: PathBuf,
    credential: String,
}

fn ready_cluster(vcm: &Vcm, dir: &Path, name: &str, extra: &[&str]) -> Cluster {
    let mut args = vec![
        "cluster", "create", "--name", name, "--wait", "--output", "json",
    ];
    args.extend_from_slice(extra);
    let created: serde_json::Value = serde_json::from_str(&vcm.cli_ok(&args)).unwrap();
    let (kubeconfig, credential) = gateway_kubeconfig(vcm, dir, name, "1");
    Cluster {
        id: created["id"].as_str().unwrap().to_owned(),
        kubeconfig,
        credential,
    }
}

/// Another kubeconfig for cluster `name` (file `<name>-<n>.yaml`) and its credential's id.
fn gateway_kubeconfig(vcm: &Vcm, dir: &Path, name: &str, n: &str) -> (PathBuf, String) {
    let path = dir.join(format!("{name}-{n}.yaml"));
    vcm.cli_ok(&[
        "cluster",
        "kubeconfig",
        name,
        "--output-file",
        path.to_str().unwrap(),
    ]);
    let creds: serde_json::Value =
        serde_json::from_str(&vcm.cli_ok(&["cluster", "credentials", name, "--output", "json"]))
            .unwrap();
    let newest = creds["items"][0]["id"].as_str().unwrap().to_owned();
    (path, newest)
}

fn kubectl_ok(kubeconfig: &Path, args: &[&str]) -> String {
    let out = kubectl(kubeconfig, args);
    assert!(
        out.status.success(),
        "kubectl {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn kubectl_err(kubeconfig: &Path, args: &[&str]) -> String {
    let out = kubectl(kubeconfig, args);
    assert!(!out.status.success(), "kubectl {args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Status and body of a request to vcm (trusting its certificate only).
fn http(vcm: &Vcm, method: &str, path: &str, token: Option<&str>) -> (u16, String) {
    let ca = std::fs::read(vcm.cacert.as_ref().unwrap()).unwrap();
    let url = format!("{}{path}", vcm.addr);
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(async move {
            let client = reqwest::Client::builder()
                .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
                .build()
                .unwrap();
            let mut request = client.request(method, url);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.text().await.unwrap())
        })
}

fn token_of(kubeconfig: &Path) -> String {
    let yaml: serde_json::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(kubeconfig).unwrap()).unwrap();
    yaml["users"][0]["user"]["token"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A CustomResourceDefinition of about `bytes` bytes of JSON (a long schema description).
fn big_crd(bytes: usize) -> String {
    serde_json::json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "bigs.gateway.vcm.dev"},
        "spec": {
            "group": "gateway.vcm.dev",
            "names": {"kind": "Big", "plural": "bigs", "singular": "big"},
            "scope": "Namespaced",
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "description": "x".repeat(bytes),
                    "x-kubernetes-preserve-unknown-fields": true,
                }},
            }],
        },
    })
    .to_string()
}

#[test]
fn kubectl_and_helm_work_through_the_gateway_and_its_own_errors_are_kubernetes_statuses() {
    // Arrange
    let vcm = Vcm::start_tls();
    let dir = tempfile::tempdir().unwrap();
    let c = ready_cluster(&vcm, dir.path(), "gw", &[]);
    let kc = &c.kubeconfig;

    // The kubeconfig points at vcm, with a gateway credential, not at the cluster.
    let doc: serde_json::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(kc).unwrap()).unwrap();
    assert_eq!(
        doc["clusters"][0]["cluster"]["server"],
        format!("{}/k8s/{}", vcm.addr, c.id)
    );
    assert!(token_of(kc).starts_with("vcmgw_"), "{doc}");
    assert!(c.credential.starts_with("g-"));

    // Act + Assert: verbs, server-side apply, patch, delete.
    kubectl_ok(kc, &["create", "namespace", "t"]);
    let cm = dir.path().join("cm.yaml");
    std::fs::write(
        &cm,
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: conf, namespace: t}\ndata: {a: '1'}\n",
    )
    .unwrap();
    kubectl_ok(kc, &["apply", "--server-side", "-f", cm.to_str().unwrap()]);
    kubectl_ok(
        kc,
        &[
            "patch",
            "configmap",
            "conf",
            "-n",
            "t",
            "-p",
            r#"{"data":{"b":"2"}}"#,
        ],
    );
    let data = kubectl_ok(
        kc,
        &[
            "get",
            "configmap",
            "conf",
            "-n",
            "t",
            "-o",
            "jsonpath={.data}",
        ],
    );
    assert_eq!(data, r#"{"a":"1","b":"2"}"#);
    kubectl_ok(kc, &["delete", "configmap", "conf", "-n", "t"]);

    // The official Python client (urllib3, its own kubeconfig loader) works the same way.
    let python = python_client(kc);
    assert!(python.contains("python client ok"), "{python}");

    // A watch sees an event within a second of it happening.
    let watch = Streaming::start(
        kc,
        &["get", "configmaps", "-n", "t", "--watch-only", "-o", "name"],
    );
    std::thread::sleep(Duration::from_secs(2));
    // NB: timed from before the create, so the figure includes kubectl's own start-up: an
    // upper bound on the event's way through the gateway.
    let before = Instant::now();
    kubectl_ok(kc, &["create", "configmap", "w1", "-n", "t"]);
    let seen = watch.line_with("configmap/w1", Duration::from_secs(10));
    let latency = seen.saturating_duration_since(before);
    eprintln!("watch event through the gateway after {latency:?}");
    assert!(latency < Duration::from_secs(1), "{latency:?}");
    drop(watch);

    // A body beyond vcm's own 1 MiB API limit streams through to the API server and back.
    let crd = dir.path().join("crd.json");
    std::fs::write(&crd, big_crd(1_300_000)).unwrap();
    kubectl_ok(kc, &["create", "-f", crd.to_str().unwrap()]);
    let got = kubectl_ok(kc, &["get", "crd", "bigs.gateway.vcm.dev", "-o", "json"]);
    assert!(got.len() > 1_300_000, "{} bytes came back", got.len());

    // helm installs and uninstalls a chart through it.
    let helm = KubeBins::locate()
        .get("helm")
        .expect("helm is built with the Kubernetes binaries (make k8s-bins)");
    let home = dir.path().join("helm");
    let run_helm = |args: &[&str]| {
        let out = Command::new(&helm)
            .args(args)
            .arg(format!("--kubeconfig={}", kc.display()))
            .env("HELM_CACHE_HOME", home.join("cache"))
            .env("HELM_CONFIG_HOME", home.join("config"))
            .env("HELM_DATA_HOME", home.join("data"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "helm {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let chart = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/charts/demo");
    run_helm(&[
        "install",
        "demo",
        chart.to_str().unwrap(),
        "--namespace",
        "demo",
        "--create-namespace",
        "--wait",
        "--timeout",
        "120s",
    ]);
    run_helm(&["uninstall", "demo", "--namespace", "demo", "--wait"]);

    // kubectl proxy in front of it serves the cluster's API on plain loopback HTTP (with
    // --append-server-path, or it drops the server URL's /k8s/<id>).
    let port = vcm::controlplane::free_port().unwrap();
    let proxy = Streaming::start(
        kc,
        &["proxy", "--append-server-path", &format!("--port={port}")],
    );
    proxy.line_with("Starting to serve", Duration::from_secs(10));
    let answer = http_get(port, "/api/v1/namespaces/t/configmaps/w1");
    assert!(answer.contains(r#""name":"w1""#), "{answer}");
    drop(proxy);

    // The gateway's own refusals are Kubernetes Status objects.
    let (status, body) = http(&vcm, "GET", &format!("/k8s/{}/api", c.id), None);
    assert_eq!(status, 401, "{body}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["kind"], "Status");
    assert_eq!(body["reason"], "Unauthorized");
    let token = token_of(kc);
    let (status, body) = http(&vcm, "GET", "/k8s/c-0000000000/api", Some(&token));
    assert_eq!(status, 403, "{body}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["reason"], "Forbidden");
    assert!(
        body["message"].as_str().unwrap().contains(&c.id),
        "the message names the cluster the credential is for: {body}"
    );
    // kubectl prints a Status like the API server's own.
    let stderr = kubectl_err(
        kc,
        &[
            &format!("--server={}/k8s/c-0000000000", vcm.addr),
            "get",
            "ns",
        ],
    );
    assert!(stderr.contains("Forbidden"), "{stderr}");
    // Errors from the cluster pass through unchanged.
    let stderr = kubectl_err(kc, &["get", "configmap", "missing", "-n", "t"]);
    assert!(
        stderr.contains(r#"configmaps "missing" not found"#),
        "{stderr}"
    );
}

#[test]
fn revoking_a_credential_or_deleting_the_cluster_ends_open_watches_within_a_second() {
    // Arrange: one cluster, two kubeconfigs (two credentials), a watch on each.
    let vcm = Vcm::start_tls();
    let dir = tempfile::tempdir().unwrap();
    let c = ready_cluster(&vcm, dir.path(), "rv", &[]);
    let (second, _) = gateway_kubeconfig(&vcm, dir.path(), "rv", "2");
    let mut first_watch =
        Streaming::start(&c.kubeconfig, &["get", "namespaces", "-w", "-o", "name"]);
    let mut second_watch = Streaming::start(&second, &["get", "namespaces", "-w", "-o", "name"]);
    first_watch.line_with("namespace/default", Duration::from_secs(10));
    second_watch.line_with("namespace/default", Duration::from_secs(10));

    // Act: revoke the first credential.
    let revoked = Instant::now();
    let out = vcm.cli_ok(&["cluster", "revoke", "rv", "--credential", &c.credential]);
    assert_eq!(out.trim(), "1 credential(s) revoked");

    // Assert: its watch ends within a second; requests with it are refused; the other goes on.
    let ended = first_watch.ended_after(revoked, Duration::from_secs(5));
    eprintln!("watch ended {ended:?} after revocation");
    assert!(
        ended.is_some_and(|d| d < Duration::from_secs(1)),
        "the revoked credential's watch ran on: {ended:?}"
    );
    let stderr = kubectl_err(&c.kubeconfig, &["get", "ns"]);
    assert!(
        stderr.contains("Unauthorized") || stderr.contains("logged in"),
        "{stderr}"
    );
    let (status, body) = http(
        &vcm,
        "GET",
        &format!("/k8s/{}/api", c.id),
        Some(&token_of(&c.kubeconfig)),
    );
    assert_eq!(status, 401);
    assert!(body.contains("was revoked"), "{body}");
    assert!(
        second_watch.running(),
        "the other credential's watch was ended too"
    );
    kubectl_ok(&second, &["get", "ns"]);

    // Act: delete the cluster.
    let deleted = Instant::now();
    vcm.cli_ok(&["cluster", "delete", "rv"]);

    // Assert: the remaining watch ends within a second, and the gateway answers 404.
    let ended = second_watch.ended_after(deleted, Duration::from_secs(5));
    eprintln!("watch ended {ended:?} after deletion");
    assert!(
        ended.is_some_and(|d| d < Duration::from_secs(1)),
        "the deleted cluster's watch ran on: {ended:?}"
    );
    let stderr = kubectl_err(&second, &["get", "ns"]);
    assert!(
        stderr.contains("NotFound") || stderr.contains("not found"),
        "{stderr}"
    );
    let (status, body) = http(
        &vcm,
        "GET",
        &format!("/k8s/{}/api", c.id),
        Some(&token_of(&second)),
    );
    assert_eq!(status, 404, "{body}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["kind"], "Status");
    assert!(
        body["message"].as_str().unwrap().contains("was deleted"),
        "{body}"
    );
}

#[test]
fn kubectl_use_keeps_a_cluster_alive_and_an_untouched_or_only_watched_one_is_deleted_as_idle() {
    // Arrange: three clusters that go after 20 s without activity.
    let vcm = Vcm::start_tls();
    let dir = tempfile::tempdir().unwrap();
    let idle = ["--idle-timeout", "20s"];
    let busy = ready_cluster(&vcm, dir.path(), "busy", &idle);
    let quiet = ready_cluster(&vcm, dir.path(), "quiet", &idle);
    let watched = ready_cluster(&vcm, dir.path(), "watched", &idle);
    let mut watch = Streaming::start(
        &watched.kubeconfig,
        &["get", "namespaces", "-w", "-o", "name"],
    );
    watch.line_with("namespace/default", Duration::from_secs(10));

    // Act: a pipeline that only uses kubectl, for twice the idle timeout.
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(40) {
        kubectl_ok(&busy.kubeconfig, &["get", "namespaces"]);
        std::thread::sleep(Duration::from_secs(3));
    }

    // Assert
    assert_eq!(vcm.cluster(&busy.id)["phase"], "Ready");
    for c in [&quiet, &watched] {
        let gone = vcm.cluster(&c.id);
        assert!(
            matches!(gone["phase"].as_str(), Some("Deleting" | "Deleted")),
            "{gone}"
        );
        assert_eq!(gone["delete_reason"], "idle", "{gone}");
    }
    assert!(
        !watch.running(),
        "the watch on a deleted cluster stayed open"
    );
}

#[test]
fn a_principal_past_its_gateway_rate_is_refused_with_a_429_status_naming_the_setting() {
    // Arrange: a gateway that allows a burst of 5 requests, then one a minute.
    let vcm = Vcm::start_tls_with_env(&[
        ("VCM_GATEWAY__BURST", "5"),
        ("VCM_GATEWAY__REQUESTS_PER_MINUTE", "1"),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let c = ready_cluster(&vcm, dir.path(), "limited", &[]);
    let token = token_of(&c.kubeconfig);

    // Act
    let answers: Vec<(u16, String)> = (0..6)
        .map(|_| http(&vcm, "GET", &format!("/k8s/{}/version", c.id), Some(&token)))
        .collect();

    // Assert
    for (status, body) in &answers[..5] {
        assert_eq!(*status, 200, "{body}");
    }
    let (status, body) = &answers[5];
    assert_eq!(*status, 429, "{body}");
    let body: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["kind"], "Status");
    assert_eq!(body["reason"], "TooManyRequests");
    assert!(
        body["details"]["retryAfterSeconds"].as_u64().unwrap() >= 1,
        "{body}"
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("[gateway] requests_per_minute"),
        "{body}"
    );
}
