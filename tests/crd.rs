//! The VirtualCluster door end to end: a tier-A test bed is the management cluster, the real
//! `vcm server` binary (local driver: real control planes) runs the controller, and the real
//! `kubectl` applies objects as GitOps tools do (server-side apply) and uses the kubeconfig
//! Secret vcm writes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/crd_setup.rs"]
mod crd_setup;
#[path = "support/vcm_process.rs"]
mod vcm_process;

use std::time::Duration;

use crd_setup::{EXAMPLE, READY_WITHIN, apply, kubectl_ok, mk_setup, mk_setup_with, ready};
use serde_json::Value;
use vcm_process::{http_get, text};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_applied_virtualcluster_becomes_a_ready_cluster_with_a_working_kubeconfig_secret_and_goes_when_deleted()
 {
    // Arrange
    let setup = mk_setup().await;
    let kc = setup.kc();
    let example = std::fs::read_to_string(EXAMPLE).unwrap();

    // Act: apply the README's example; restart vcm once the cluster is being made.
    let out = apply(&kc, &example);
    assert!(out.status.success(), "{}", text(&out));
    let started = setup.until("ci-web", "pr-42-web", READY_WITHIN, |vc| {
        vc["status"]["clusterId"].is_string()
    });
    let mut setup = setup;
    setup.vcm.sigkill();
    setup.vcm.spawn();
    let vc = setup.until("ci-web", "pr-42-web", READY_WITHIN, ready);

    // Assert: one cluster, the one first recorded, Ready, with the object's finalizer.
    let id = vc["status"]["clusterId"].as_str().unwrap().to_owned();
    assert_eq!(
        started["status"]["clusterId"], id,
        "the restart adopted the cluster"
    );
    let uid = vc["metadata"]["uid"].as_str().unwrap().to_owned();
    assert_eq!(
        setup.clusters_of(&uid).len(),
        1,
        "no second cluster after the restart"
    );
    assert_eq!(vc["status"]["phase"], "Ready");
    assert_eq!(vc["status"]["size"], "small");
    assert!(vc["status"]["endpoint"].is_string(), "{vc:#}");
    assert_eq!(
        vc["status"]["observedGeneration"],
        vc["metadata"]["generation"]
    );
    assert_eq!(vc["metadata"]["finalizers"][0], "vcm.dev/cluster");
    let cluster = setup.vcm.cluster(&id);
    assert_eq!(cluster["team"], "web", "{cluster}");
    assert_eq!(cluster["owner"], "crd:ci-web/pr-42-web", "{cluster}");
    assert_eq!(cluster["labels"]["repo"], "acme-web", "{cluster}");

    // A restart that lost what the status said (as if vcm died between creating the cluster and
    // writing the status) finds the cluster by the object's uid: still the one cluster.
    setup.vcm.sigterm();
    kubectl_ok(
        &kc,
        &[
            "patch",
            "virtualcluster",
            "pr-42-web",
            "-n",
            "ci-web",
            "--subresource=status",
            "--type=json",
            "-p",
            r#"[{"op":"remove","path":"/status"}]"#,
        ],
    );
    setup.vcm.spawn();
    let readopted = setup.until("ci-web", "pr-42-web", READY_WITHIN, |vc| {
        ready(vc) && vc["status"]["clusterId"].is_string()
    });
    assert_eq!(readopted["status"]["clusterId"], id.as_str());
    assert_eq!(
        setup.clusters_of(&uid).len(),
        1,
        "a second cluster after losing the status"
    );

    // The Secret's kubeconfig works with kubectl against the virtual cluster.
    let secret: Value = serde_json::from_str(&kubectl_ok(
        &kc,
        &[
            "get",
            "secret",
            "pr-42-web-kubeconfig",
            "-n",
            "ci-web",
            "-o",
            "json",
        ],
    ))
    .unwrap();
    assert_eq!(
        secret["metadata"]["ownerReferences"][0]["uid"],
        uid.as_str()
    );
    use base64::Engine as _;
    let kubeconfig = base64::engine::general_purpose::STANDARD
        .decode(secret["data"]["kubeconfig"].as_str().unwrap())
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ci = dir.path().join("ci.kubeconfig");
    std::fs::write(&ci, kubeconfig).unwrap();
    let namespaces = kubectl_ok(&ci, &["get", "ns"]);
    assert!(namespaces.contains("kube-system"), "{namespaces}");
    assert!(vc["status"]["kubeconfigExpiresAt"].is_string(), "{vc:#}");

    // Re-applying the same object changes nothing: same generation, same cluster, no other.
    let out = apply(&kc, &example);
    assert!(out.status.success(), "{}", text(&out));
    std::thread::sleep(Duration::from_secs(3));
    let again = setup.object("ci-web", "pr-42-web").unwrap();
    assert_eq!(
        again["metadata"]["generation"],
        vc["metadata"]["generation"]
    );
    assert_eq!(again["status"]["clusterId"], id.as_str());
    assert_eq!(setup.clusters_of(&uid).len(), 1);

    // `kubectl get virtualclusters` shows the printer columns.
    let table = kubectl_ok(&kc, &["get", "virtualclusters", "-n", "ci-web"]);
    for column in [
        "PHASE", "SIZE", "VERSION", "EXPIRES", "AGE", "Ready", "small",
    ] {
        assert!(table.contains(column), "{column} missing:\n{table}");
    }
    let expires = again["status"]["expiresAt"].as_str().unwrap();
    assert!(table.contains(expires), "the expiry as a time:\n{table}");
    assert!(!table.contains("<invalid>"), "{table}");
    let short = kubectl_ok(&kc, &["get", "vc", "-n", "ci-web", "-o", "wide"]);
    assert!(
        short.contains(&id),
        "the wide view names the cluster:\n{short}"
    );

    // Size is immutable: the API server refuses the apply itself.
    let bigger = example.replace("size: small", "size: medium");
    let out = apply(&kc, &bigger);
    assert!(!out.status.success(), "a size change was accepted");
    assert!(
        text(&out).contains("size cannot be changed"),
        "{}",
        text(&out)
    );

    // A longer TTL is applied to the cluster through the service.
    let before = setup.vcm.cluster(&id)["expires_at"].clone();
    let out = apply(&kc, &example.replace("ttl: 2h", "ttl: 3h"));
    assert!(out.status.success(), "{}", text(&out));
    let extended = setup.until("ci-web", "pr-42-web", Duration::from_secs(60), |vc| {
        vc["status"]["observedGeneration"] == vc["metadata"]["generation"]
            && vc["status"]["expiresAt"] != before
    });
    assert_ne!(setup.vcm.cluster(&id)["expires_at"], before);
    assert_eq!(setup.vcm.cluster(&id)["ttl"], "3h", "{extended:#}");

    // Every change the door made is in the audit log, as the object.
    let (status, _, body) = http_get(
        setup.vcm.port,
        "/v1/audit?principal=crd:ci-web/pr-42-web",
        &setup.vcm.token,
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    for action in ["crd create", "crd kubeconfig", "crd update"] {
        assert!(body.contains(action), "{action} not audited: {body}");
    }

    // Act: delete the object.
    kubectl_ok(
        &kc,
        &[
            "delete",
            "virtualcluster",
            "pr-42-web",
            "-n",
            "ci-web",
            "--wait=false",
        ],
    );

    // Assert: the cluster goes first, then the object.
    setup.until("ci-web", "pr-42-web", READY_WITHIN, Value::is_null);
    assert_eq!(setup.vcm.cluster(&id)["phase"], "Deleted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_cluster_is_reported_and_not_recreated_and_an_unmapped_namespace_gets_none() {
    // Arrange
    let setup = mk_setup().await;
    let kc = setup.kc();
    let short = r#"
apiVersion: vcm.dev/v1alpha1
kind: VirtualCluster
metadata: {name: short, namespace: ci-web}
spec: {ttl: 25s, kubeconfigSecretName: short-kubeconfig}
"#;
    let unmapped = r#"
apiVersion: vcm.dev/v1alpha1
kind: VirtualCluster
metadata: {name: stray, namespace: elsewhere}
spec: {kubeconfigSecretName: stray-kubeconfig}
"#;

    // Act
    for yaml in [short, unmapped] {
        let out = apply(&kc, yaml);
        assert!(out.status.success(), "{}", text(&out));
    }

    // Assert: the unmapped namespace's object is refused in its status; no cluster is made.
    let stray = setup.until("elsewhere", "stray", Duration::from_secs(60), |vc| {
        vc["status"]["phase"] == "Refused"
    });
    let message = stray["status"]["message"].as_str().unwrap();
    assert!(message.contains("[crd.namespaces]"), "{message}");
    assert!(stray["status"]["clusterId"].is_null(), "{stray:#}");
    let uid = stray["metadata"]["uid"].as_str().unwrap();
    assert!(setup.clusters_of(uid).is_empty());

    // The short-lived cluster expires: the status says so, and it stays so.
    let expired = setup.until("ci-web", "short", READY_WITHIN, |vc| {
        vc["status"]["phase"] == "Expired"
    });
    let id = expired["status"]["clusterId"].as_str().unwrap().to_owned();
    let reason = &expired["status"]["conditions"][0];
    assert_eq!(
        (&reason["type"], &reason["status"], &reason["reason"]),
        (&"Ready".into(), &"False".into(), &"Expired".into())
    );
    assert!(
        expired["status"]["message"]
            .as_str()
            .unwrap()
            .contains("not recreated")
    );
    // Once vcm has deleted it, reconciles come from a change to the object and from a restart
    // of vcm (which lists every object again): still the one cluster, still Expired.
    setup
        .vcm
        .wait_phase(&id, "Deleted", Duration::from_secs(60));
    kubectl_ok(
        &kc,
        &[
            "annotate",
            "virtualcluster",
            "short",
            "-n",
            "ci-web",
            "poke=1",
        ],
    );
    std::thread::sleep(Duration::from_secs(3));
    let mut setup = setup;
    setup.vcm.sigterm();
    setup.vcm.spawn();
    std::thread::sleep(Duration::from_secs(5));
    let later = setup.object("ci-web", "short").unwrap();
    assert_eq!(later["status"]["phase"], "Expired");
    assert_eq!(later["status"]["clusterId"], id.as_str());
    let uid = later["metadata"]["uid"].as_str().unwrap();
    let clusters = setup.clusters_of(uid);
    assert_eq!(clusters.len(), 1, "recreated: {clusters:#?}");

    // Deleting an ended object lets it go at once.
    kubectl_ok(
        &kc,
        &[
            "delete",
            "virtualcluster",
            "short",
            "-n",
            "ci-web",
            "--timeout=60s",
        ],
    );
    kubectl_ok(
        &kc,
        &[
            "delete",
            "virtualcluster",
            "stray",
            "-n",
            "elsewhere",
            "--timeout=60s",
        ],
    );
    assert!(setup.object("ci-web", "short").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kubeconfig_secret_gets_a_new_working_token_before_the_old_one_expires() {
    // Arrange: tokens of 30 s, renewed two thirds in.
    let setup = mk_setup_with("30s").await;
    let kc = setup.kc();
    let yaml = r#"
apiVersion: vcm.dev/v1alpha1
kind: VirtualCluster
metadata: {name: renewed, namespace: ci-web}
spec: {kubeconfigSecretName: renewed-kubeconfig}
"#;
    let out = apply(&kc, yaml);
    assert!(out.status.success(), "{}", text(&out));
    let first = setup.until("ci-web", "renewed", READY_WITHIN, ready);
    let secret = |kc: &std::path::Path| -> Value {
        serde_json::from_str(&kubectl_ok(
            kc,
            &[
                "get",
                "secret",
                "renewed-kubeconfig",
                "-n",
                "ci-web",
                "-o",
                "json",
            ],
        ))
        .unwrap()
    };
    let before = secret(&kc);
    let issued = |s: &Value| s["metadata"]["annotations"]["vcm.dev/kubeconfig-issued-at"].clone();

    // Act: wait past two thirds of the token's life.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let after = loop {
        let now = secret(&kc);
        if issued(&now) != issued(&before) {
            break now;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never renewed: {now:#}"
        );
        std::thread::sleep(Duration::from_secs(1));
    };

    // Assert: renewed before the old token's expiry, with a new token that works.
    let old_expiry: jiff::Timestamp = first["status"]["kubeconfigExpiresAt"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let renewed_at: jiff::Timestamp = issued(&after).as_str().unwrap().parse().unwrap();
    assert!(
        renewed_at < old_expiry,
        "renewed at {renewed_at}, after {old_expiry}"
    );
    assert_ne!(after["data"]["kubeconfig"], before["data"]["kubeconfig"]);
    use base64::Engine as _;
    let kubeconfig = base64::engine::general_purpose::STANDARD
        .decode(after["data"]["kubeconfig"].as_str().unwrap())
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ci = dir.path().join("ci.kubeconfig");
    std::fs::write(&ci, kubeconfig).unwrap();
    assert!(kubectl_ok(&ci, &["get", "ns"]).contains("default"));
    let later = setup.until("ci-web", "renewed", Duration::from_secs(30), |vc| {
        vc["status"]["kubeconfigExpiresAt"] != first["status"]["kubeconfigExpiresAt"]
    });
    assert_eq!(later["status"]["phase"], "Ready");
}

#[test]
fn the_readme_shows_the_example_manifest_as_it_is() {
    let example = std::fs::read_to_string(EXAMPLE).unwrap();
    let body: String = example
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    assert!(
        readme.contains(&format!("```yaml\n{body}```")),
        "README.md's VirtualCluster example differs from deploy/examples/virtualcluster.yaml"
    );
}
