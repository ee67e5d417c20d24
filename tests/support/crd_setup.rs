//! The VirtualCluster door's test setup (included with `#[path]`): a tier-A test bed as the
//! management cluster with the CRD (the chart's copy) and two namespaces, a `vcm server --dev`
//! whose door maps `ci-web` to team `web`, and the real kubectl.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use vcm::testing::TestBed;

use super::vcm_process::{Vcm, text};

pub const EXAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/deploy/examples/virtualcluster.yaml"
);
const CRD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/deploy/chart/vcm/crds/virtualclusters.vcm.dev.yaml"
);
/// A local cluster starts in seconds; a busy 2-core CI machine is given much longer.
pub const READY_WITHIN: Duration = Duration::from_secs(240);

/// The management cluster with the CRD (the chart's copy) and the namespaces, and a vcm whose
/// door maps `ci-web` to team `web` (and nothing else).
pub struct Setup {
    pub bed: TestBed,
    pub vcm: Vcm,
    _dir: tempfile::TempDir,
}

pub async fn mk_setup() -> Setup {
    mk_setup_with("1h").await
}

/// [`mk_setup`] with this `[crd] kubeconfig_ttl`.
pub async fn mk_setup_with(kubeconfig_ttl: &str) -> Setup {
    let bed = TestBed::tier_a().await;
    let dir = tempfile::tempdir().unwrap();
    let kc = bed.kubeconfig_path();
    kubectl_ok(&kc, &["apply", "--server-side", "-f", CRD]);
    kubectl_ok(
        &kc,
        &[
            "wait",
            "--for=condition=Established",
            "crd/virtualclusters.vcm.dev",
        ],
    );
    for ns in ["ci-web", "elsewhere"] {
        kubectl_ok(&kc, &["create", "namespace", ns]);
    }
    let config = dir.path().join("vcm.toml");
    std::fs::write(
        &config,
        format!(
            "[crd]\nenabled = true\nkubeconfig = \"{}\"\nkubeconfig_ttl = \"{kubeconfig_ttl}\"\n\n\
             [crd.namespaces]\nci-web = \"web\"\n",
            kc.display()
        ),
    )
    .unwrap();
    let vcm = Vcm::start_with_env(&[("VCM_CONFIG", config.to_str().unwrap())]);
    Setup {
        bed,
        vcm,
        _dir: dir,
    }
}

pub fn kubectl(kubeconfig: &Path, args: &[&str]) -> std::process::Output {
    Command::new("kubectl")
        .arg(format!("--kubeconfig={}", kubeconfig.display()))
        .args(args)
        .output()
        .expect("kubectl is installed")
}

pub fn kubectl_ok(kubeconfig: &Path, args: &[&str]) -> String {
    let out = kubectl(kubeconfig, args);
    assert!(out.status.success(), "kubectl {args:?}: {}", text(&out));
    String::from_utf8(out.stdout).unwrap()
}

/// `kubectl apply --server-side` of `yaml` (as Argo CD and Flux apply).
pub fn apply(kubeconfig: &Path, yaml: &str) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("object.yaml");
    std::fs::write(&file, yaml).unwrap();
    kubectl(
        kubeconfig,
        &["apply", "--server-side", "-f", file.to_str().unwrap()],
    )
}

impl Setup {
    pub fn kc(&self) -> PathBuf {
        self.bed.kubeconfig_path()
    }

    /// The object as JSON, or `None` once it is gone.
    pub fn object(&self, ns: &str, name: &str) -> Option<Value> {
        let out = kubectl(
            &self.kc(),
            &["get", "virtualcluster", name, "-n", ns, "-o", "json"],
        );
        if !out.status.success() {
            assert!(text(&out).contains("NotFound"), "{}", text(&out));
            return None;
        }
        Some(serde_json::from_slice(&out.stdout).unwrap())
    }

    /// Polls the object until `done` holds, panicking with its last state after `within`.
    pub fn until(
        &self,
        ns: &str,
        name: &str,
        within: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let vc = self.object(ns, name).unwrap_or(Value::Null);
            if done(&vc) {
                return vc;
            }
            assert!(
                Instant::now() < deadline,
                "{ns}/{name} still {vc:#}\nvcm log: {}",
                self.vcm_log()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Every cluster vcm has for the object with `uid` (any phase).
    pub fn clusters_of(&self, uid: &str) -> Vec<Value> {
        let label = format!("vcm.dev/virtualcluster-uid={uid}");
        let out = self
            .vcm
            .cli_ok(&["cluster", "list", "--label", &label, "--output", "json"]);
        let v: Value = serde_json::from_str(&out).unwrap();
        let items = v.get("items").cloned().unwrap_or(v);
        items.as_array().unwrap().clone()
    }

    pub fn vcm_log(&self) -> String {
        let dir = self.vcm.data.parent().unwrap();
        let mut logs: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "log"))
            .collect();
        logs.sort();
        let last = logs
            .last()
            .map(std::fs::read_to_string)
            .and_then(Result::ok)
            .unwrap_or_default();
        last.lines().rev().take(30).collect::<Vec<_>>().join("\n")
    }
}

pub fn ready(vc: &Value) -> bool {
    vc["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}
