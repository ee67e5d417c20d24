//! Several Kubernetes versions on the local driver: a cluster runs every component of the
//! version it asked for, and a version that is not built is refused with the list of those
//! that are. Through the real `vcm` binary, its CLI and the real `kubectl`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/vcm_process.rs"]
mod vcm_process;

use vcm::controlplane::{
    KubeBins, extra_releases, find_processes, minor_of, pinned_kubernetes_minor,
};
use vcm_process::{Vcm, kubectl};

#[test]
fn clusters_of_two_versions_run_their_own_binaries_and_an_unbuilt_version_is_refused_with_the_list()
{
    // Arrange
    let extra = extra_releases()
        .first()
        .cloned()
        .expect("scripts/k8s-versions.env pins a second release in K8S_EXTRA_VERSIONS");
    let (newer, default) = (minor_of(&extra), pinned_kubernetes_minor());
    let built = KubeBins::locate().available_minors();
    assert!(
        built.contains(&newer),
        "Kubernetes {extra} is not built (built: {built:?}); run `make k8s-bins`"
    );
    let vcm = Vcm::start();
    let dir = tempfile::tempdir().unwrap();

    // Act
    let refused = vcm.cli(&[
        "cluster",
        "create",
        "--name",
        "old",
        "--kubernetes-version",
        "1.20",
    ]);
    for (name, version) in [("a", default.as_str()), ("b", newer.as_str())] {
        vcm.cli_ok(&[
            "cluster",
            "create",
            "--name",
            name,
            "--kubernetes-version",
            version,
            "--wait",
        ]);
    }
    let server_version = |name: &str| {
        let kc = dir.path().join(format!("{name}.yaml"));
        vcm.cli_ok(&[
            "cluster",
            "kubeconfig",
            name,
            "--output-file",
            kc.to_str().unwrap(),
        ]);
        let out = kubectl(&kc, &["version", "-o", "json"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["serverVersion"]["gitVersion"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (a, b) = (server_version("a"), server_version("b"));

    // Assert
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("1.20") && err.contains(&default) && err.contains(&newer),
        "the refusal lists the versions built here: {err}"
    );
    assert!(a.starts_with(&format!("v{default}.")), "{a}");
    assert_eq!(b, format!("v{extra}"));
    // Every process of cluster b is of its version: its binaries come from k8s-<release>/.
    let id_b = vcm.cluster("b")["id"].as_str().unwrap().to_owned();
    let procs: Vec<String> = find_processes(&id_b)
        .into_iter()
        .map(|(pid, _)| {
            std::fs::read_link(format!("/proc/{pid}/exe"))
                .unwrap()
                .display()
                .to_string()
        })
        .filter(|exe| !exe.ends_with("/kwok"))
        .collect();
    assert_eq!(
        procs.len(),
        3,
        "apiserver, controller-manager, scheduler: {procs:?}"
    );
    for exe in &procs {
        assert!(exe.contains(&format!("/k8s-{extra}/")), "{exe}");
    }
    for name in ["a", "b"] {
        vcm.cli_ok(&["cluster", "delete", name, "--wait"]);
    }
    assert!(find_processes(&id_b).is_empty(), "nothing of b is left");
}
