//! End to end: the real `vcm` binary with `--dev` (SQLite + local driver, real kube-apiserver and
//! etcd processes), driven by the real CLI, used with the real `kubectl`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/vcm_process.rs"]
mod vcm_process;

use std::time::{Duration, Instant};

use vcm::controlplane::{find_processes, kill_group};
use vcm_process::{TOKEN, Vcm, kubectl};

#[test]
fn clusters_are_created_used_with_kubectl_isolated_expired_and_deleted_without_leaks() {
    // Arrange
    let vcm = Vcm::start();

    // Act: two clusters through the CLI, waiting for Ready.
    let one: serde_json::Value = serde_json::from_str(&vcm.cli_ok(&[
        "cluster", "create", "--name", "one", "--wait", "--output", "json",
    ]))
    .unwrap();
    let two: serde_json::Value = serde_json::from_str(&vcm.cli_ok(&[
        "cluster", "create", "--name", "two", "--wait", "--output", "json",
    ]))
    .unwrap();
    assert_eq!(one["phase"], "Ready");
    assert_eq!(two["phase"], "Ready");
    let secs = |v: &serde_json::Value| v.as_str().unwrap().parse::<jiff::Timestamp>().unwrap();
    let took = secs(&one["ready_at"]).duration_since(secs(&one["created_at"]));
    assert!(
        took.as_secs_f64() > 0.3,
        "ready_at must be when it became ready: {one}"
    );
    assert!(
        one["message"].as_str().unwrap().starts_with("ready in"),
        "{one}"
    );
    let short = vcm.cli_ok(&[
        "cluster", "create", "--name", "short", "--ttl", "20s", "--output", "json",
    ]);
    let short: serde_json::Value = serde_json::from_str(&short).unwrap();

    // Kubeconfigs for each, used with kubectl: a ConfigMap in one is not seen in two.
    let dir = tempfile::tempdir().unwrap();
    let (k1, k2) = (dir.path().join("one.yaml"), dir.path().join("two.yaml"));
    vcm.cli_ok(&[
        "cluster",
        "kubeconfig",
        "one",
        "--output-file",
        k1.to_str().unwrap(),
    ]);
    vcm.cli_ok(&[
        "cluster",
        "kubeconfig",
        "two",
        "--output-file",
        k2.to_str().unwrap(),
    ]);
    let yaml = std::fs::read_to_string(&k1).unwrap();
    assert!(
        yaml.contains("token:") && !yaml.contains("client-key-data"),
        "CI gets a token, never the admin certificate"
    );
    let created = kubectl(&k1, &["create", "configmap", "hello", "--from-literal=k=v"]);
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let seen = kubectl(
        &k1,
        &["get", "configmap", "hello", "-o", "jsonpath={.data.k}"],
    );
    assert_eq!(String::from_utf8_lossy(&seen.stdout), "v");
    let other = kubectl(&k2, &["get", "configmap", "hello"]);
    assert!(
        !other.status.success(),
        "cluster two must not see cluster one's ConfigMap"
    );
    assert!(
        String::from_utf8_lossy(&other.stderr).contains("NotFound"),
        "{}",
        String::from_utf8_lossy(&other.stderr)
    );

    // The 20s cluster expires on its own.
    let id = short["id"].as_str().unwrap();
    let gone = vcm.wait_phase(id, "Deleted", Duration::from_secs(90));
    assert_eq!(gone["delete_reason"], "expired");
    let events = vcm.cli_ok(&["cluster", "events", id, "--output", "json"]);
    assert!(events.contains("expired"), "{events}");

    // Delete the rest, waiting.
    vcm.cli_ok(&["cluster", "delete", "one", "two", "--wait"]);

    // Assert: no kube-apiserver of this vcm is left.
    assert_eq!(vcm.cluster(one["id"].as_str().unwrap())["phase"], "Deleted");
    assert!(
        vcm.apiserver_pids().is_empty(),
        "kube-apiserver processes left: {:?}",
        vcm.apiserver_pids()
    );
}

#[test]
fn sigkill_while_provisioning_and_while_deleting_converges_after_restart_without_leaks() {
    // Arrange
    let mut vcm = Vcm::start();
    let created = vcm.cli_ok(&["cluster", "create", "--name", "crashy", "--output", "json"]);
    let id = serde_json::from_str::<serde_json::Value>(&created).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Act 1: SIGKILL while Provisioning, restart.
    vcm.wait_phase(&id, "Provisioning", Duration::from_secs(30));
    vcm.sigkill();
    vcm.spawn();

    // Assert 1: it converges to Ready with exactly one API server.
    vcm.wait_phase(&id, "Ready", Duration::from_secs(120));
    assert_eq!(
        vcm.apiserver_pids().len(),
        1,
        "exactly one kube-apiserver after restart"
    );
    let endpoint = vcm.cluster(&id)["endpoint"].as_str().unwrap().to_owned();

    // Act 2: SIGKILL while Deleting, restart.
    vcm.cli_ok(&["cluster", "delete", "crashy"]);
    // NB: the reconciler may finish the deletion before this read (a local delete takes well
    // under a second), so either phase is right here; what matters is where it ends below.
    let phase = vcm.cluster(&id)["phase"].clone();
    assert!(
        phase == "Deleting" || phase == "Deleted",
        "a deleted cluster is Deleting or Deleted, not {phase}"
    );
    vcm.sigkill();
    vcm.spawn();

    // Assert 2: deleted, with no process, directory or port left behind.
    vcm.wait_phase(&id, "Deleted", Duration::from_secs(120));
    assert!(
        vcm.apiserver_pids().is_empty(),
        "kube-apiserver left after the crash: {:?}",
        vcm.apiserver_pids()
    );
    assert!(
        !vcm.data.join("local/clusters").join(&id).exists(),
        "cluster directory leaked"
    );
    let port: u16 = endpoint.rsplit(':').next().unwrap().parse().unwrap();
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "port {port} still served"
    );

    // A graceful stop with no live cluster leaves nothing running at all.
    vcm.sigterm();
    let left = find_processes(&vcm.data.display().to_string());
    assert!(
        left.is_empty(),
        "processes left after a graceful stop: {left:?}"
    );
}

#[test]
fn a_ready_clusters_dead_api_server_comes_back_on_its_port_and_the_issued_kubeconfig_works() {
    // Arrange
    let vcm = Vcm::start();
    let created: serde_json::Value = serde_json::from_str(&vcm.cli_ok(&[
        "cluster", "create", "--name", "phoenix", "--wait", "--output", "json",
    ]))
    .unwrap();
    let kubeconfig = vcm.data.parent().unwrap().join("phoenix.yaml");
    vcm.cli_ok(&[
        "cluster",
        "kubeconfig",
        "phoenix",
        "--output-file",
        kubeconfig.to_str().unwrap(),
    ]);
    let before = vcm.apiserver_pids();
    assert_eq!(before.len(), 1, "one cluster, one API server");

    // Act: the API server dies under the cluster.
    kill_group(before[0]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let events = loop {
        let events = vcm.cli_ok(&["cluster", "events", "phoenix", "--output", "json"]);
        if events.contains("control_plane_restarted") {
            break events;
        }
        assert!(Instant::now() < deadline, "no restart event: {events}");
        std::thread::sleep(Duration::from_millis(250));
    };
    let after = vcm.cluster("phoenix");
    let used = kubectl(&kubeconfig, &["get", "namespaces", "-o", "name"]);

    // Assert
    assert_eq!(after["phase"], "Ready", "{after}");
    assert_eq!(
        after["endpoint"], created["endpoint"],
        "same port: kubeconfigs keep working"
    );
    assert!(events.contains("restarted on port"), "{events}");
    assert!(
        used.status.success(),
        "the kubeconfig issued before the crash works: {}",
        String::from_utf8_lossy(&used.stderr)
    );
    assert_ne!(vcm.apiserver_pids(), before, "a new process serves it");
}

#[tokio::test]
async fn a_create_past_the_local_capacity_is_a_503_with_retry_after_and_hosts_shows_the_capacity() {
    // Arrange
    let vcm = Vcm::start_with_env(&[("VCM_LOCAL__MAX_CLUSTERS", "1")]);
    let http = reqwest::Client::new();
    let create = |name: &'static str| {
        http.post(format!("{}/v1/clusters", vcm.addr))
            .bearer_auth(TOKEN)
            .json(&serde_json::json!({ "name": name }))
            .send()
    };

    // Act
    let first = create("first").await.unwrap();
    let second = create("second").await.unwrap();
    let hosts: serde_json::Value = http
        .get(format!("{}/v1/hosts", vcm.addr))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    // Assert
    assert_eq!(first.status(), 202, "accepted, provisioning");
    assert_eq!(second.status(), 503);
    assert!(second.headers().contains_key("retry-after"));
    let body: serde_json::Value = second.json().await.unwrap();
    assert_eq!(body["error"]["code"], "no_capacity", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("local 1/1"), "{message}");
    let local = &hosts["items"][0];
    assert_eq!(local["max_clusters"], 1, "{hosts}");
    assert!(
        local["message"]
            .as_str()
            .unwrap()
            .contains("local.max_clusters"),
        "{hosts}"
    );
    vcm.cli_ok(&["cluster", "delete", "first", "--wait"]);
}
