//! The manifests in `deploy/` apply to a real API server and do what they say.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use vcm::testing::{TestBed, eventually};

const VCM_SA: &str = "--as=system:serviceaccount:vcm-system:vcm";

fn kubectl(bed: &TestBed, args: &[&str]) -> std::process::Output {
    std::process::Command::new("kubectl")
        .arg(format!("--kubeconfig={}", bed.kubeconfig_path().display()))
        .args(args)
        .output()
        .expect("kubectl is installed")
}

#[tokio::test]
async fn host_rbac_lets_vcm_manage_vcm_namespaces_and_nothing_else() {
    // Arrange
    let bed = TestBed::tier_a().await;
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/host-rbac.yaml");

    // Act
    let applied = kubectl(&bed, &["apply", "-f", manifest]);

    // Assert: it applies, vcm may create a vcm-* namespace and objects in it, and is refused
    // (by RBAC or by the admission policy) everywhere else.
    assert!(
        applied.status.success(),
        "{}",
        String::from_utf8_lossy(&applied.stderr)
    );
    let allowed = eventually(
        "vcm can create vcm-* namespaces",
        Duration::from_secs(30),
        || async {
            let out = kubectl(&bed, &["create", "namespace", "vcm-c-test000001", VCM_SA]);
            Ok(out.status.success().then_some(()))
        },
    )
    .await;
    assert!(allowed.is_ok(), "{allowed:?}");
    let cm = kubectl(
        &bed,
        &["-n", "vcm-c-test000001", "create", "configmap", "x", VCM_SA],
    );
    assert!(
        cm.status.success(),
        "{}",
        String::from_utf8_lossy(&cm.stderr)
    );
    // The admission policy takes effect once the API server has loaded it (about a second).
    let denied = eventually(
        "policy denies other namespaces",
        Duration::from_secs(30),
        || async {
            let out = kubectl(
                &bed,
                &[
                    "create",
                    "namespace",
                    "payments",
                    "--dry-run=server",
                    VCM_SA,
                ],
            );
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            Ok((!out.status.success()).then_some(stderr))
        },
    )
    .await
    .expect("vcm must not create other namespaces");
    assert!(
        denied.contains("vcm may only change namespaces named vcm-*"),
        "{denied}"
    );
    let in_default = kubectl(&bed, &["-n", "default", "create", "configmap", "x", VCM_SA]);
    assert!(
        !in_default.status.success(),
        "vcm must not write outside vcm-* namespaces"
    );
    // Subresources and CONNECT: exec is granted by RBAC cluster-wide, so only the policy keeps
    // vcm out of other namespaces' pods. NB: the pod must exist (the API server looks it up
    // first); unscheduled, it has no kubelet to connect to, so an exec that passes admission
    // fails only at "no host assigned".
    for ns in ["default", "vcm-c-test000001"] {
        let run = kubectl(
            &bed,
            &["-n", ns, "run", "p", "--image=x", "--restart=Never"],
        );
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
    }
    let exec = |ns: &str| kubectl(&bed, &["-n", ns, "exec", "p", VCM_SA, "--", "true"]);
    let exec_elsewhere = exec("default");
    let stderr = String::from_utf8_lossy(&exec_elsewhere.stderr);
    assert!(
        stderr.contains("vcm may only change namespaces named vcm-*"),
        "exec outside vcm-* is denied by the policy: {stderr}"
    );
    let exec_own = exec("vcm-c-test000001");
    let stderr = String::from_utf8_lossy(&exec_own.stderr);
    assert!(
        !exec_own.status.success() && !stderr.contains("vcm may only change"),
        "exec in vcm-* passes admission (and fails only for want of a node): {stderr}"
    );
    // Secrets: nowhere until vcm binds `vcm-namespace` in its own namespace, then only there.
    let secrets = |ns: &str| {
        kubectl(&bed, &["-n", ns, "get", "secrets", VCM_SA])
            .status
            .success()
    };
    assert!(!secrets("default") && !secrets("vcm-c-test000001"));
    let whoami = kubectl(
        &bed,
        &[
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username}",
            VCM_SA,
        ],
    );
    let me = String::from_utf8_lossy(&whoami.stdout).into_owned();
    assert_eq!(me, "system:serviceaccount:vcm-system:vcm", "{whoami:?}");
    let bind = |role: &str| {
        kubectl(
            &bed,
            &[
                "-n",
                "vcm-c-test000001",
                "create",
                "rolebinding",
                &format!("b-{role}"),
                &format!("--clusterrole={role}"),
                &format!("--user={me}"),
                VCM_SA,
            ],
        )
    };
    let bound = bind("vcm-namespace");
    assert!(
        bound.status.success(),
        "{}",
        String::from_utf8_lossy(&bound.stderr)
    );
    // NB: not `admin`: without a controller-manager (tier A) that aggregated role is empty,
    // and binding an empty role escalates nothing.
    assert!(
        !bind("cluster-admin").status.success(),
        "vcm may bind no other role"
    );
    let readable = eventually(
        "the binding takes effect",
        Duration::from_secs(10),
        || async { Ok(secrets("vcm-c-test000001").then_some(())) },
    )
    .await;
    assert!(readable.is_ok(), "{readable:?}");
    assert!(!secrets("default"), "and still no Secrets elsewhere");
    let nodes = kubectl(&bed, &["get", "nodes", VCM_SA]);
    assert!(!nodes.status.success(), "vcm has no business reading nodes");
    // [[auth.kubernetes]]: vcm reviews the ServiceAccount tokens CI pods present.
    let review = std::io::Write::write_all(
        &mut std::fs::File::create(bed.dir().join("review.json")).unwrap(),
        br#"{"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview","spec":{"token":"not-a-token","audiences":["vcm"]}}"#,
    );
    review.unwrap();
    let reviewed = kubectl(
        &bed,
        &[
            "create",
            "--validate=false",
            "-o",
            "json",
            "-f",
            bed.dir().join("review.json").to_str().unwrap(),
            VCM_SA,
        ],
    );
    assert!(
        reviewed.status.success(),
        "vcm may create TokenReviews: {}",
        String::from_utf8_lossy(&reviewed.stderr)
    );
    let answer: serde_json::Value = serde_json::from_slice(&reviewed.stdout).unwrap();
    assert!(
        answer["status"].is_object() && answer["status"]["authenticated"] != true,
        "a made-up token is not authenticated: {answer}"
    );
}
