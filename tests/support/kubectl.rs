//! The real `kubectl` with one kubeconfig, for integration tests (included with `#[path]`).
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

/// `kubectl` with one kubeconfig.
/// `kubectl` with the CI kubeconfig (a ServiceAccount token, as vcm hands out) of Ready
/// cluster `cluster`, written under `dir`.
pub async fn for_ci(
    driver: &vcm::driver::local::LocalDriver,
    cluster: &vcm::domain::Cluster,
    dir: &std::path::Path,
) -> Kubectl {
    use vcm::driver::Driver as _;
    let admin = driver.admin_kubeconfig(cluster).await.unwrap();
    let ci = vcm::driver::mint_ci_kubeconfig(&admin, "ci", 3600)
        .await
        .unwrap();
    let kubeconfig = dir.join("ci.kubeconfig");
    ci.write(&kubeconfig).unwrap();
    Kubectl { kubeconfig }
}

pub struct Kubectl {
    pub kubeconfig: PathBuf,
}

impl Kubectl {
    /// Run `kubectl args…`; `Err(stderr)` if it fails.
    pub async fn try_run(&self, args: &[&str]) -> Result<String, String> {
        let out = tokio::process::Command::new("kubectl")
            .arg(format!("--kubeconfig={}", self.kubeconfig.display()))
            .args(args)
            .output()
            .await
            .unwrap_or_else(|e| panic!("running kubectl (is it on PATH?): {e}"));
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// Run `kubectl args…`, panicking with its output if it fails.
    pub async fn run(&self, args: &[&str]) -> String {
        self.try_run(args)
            .await
            .unwrap_or_else(|e| panic!("kubectl {}: {e}", args.join(" ")))
    }

    /// Run `kubectl args…` until `done` holds for its output (60 s at most).
    pub async fn until(&self, args: &[&str], done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let out = self.try_run(args).await;
            match &out {
                Ok(text) if done(text) => return text.clone(),
                _ if Instant::now() > deadline => {
                    panic!("kubectl {}: still {out:?} after 60s", args.join(" "))
                }
                _ => tokio::time::sleep(Duration::from_millis(300)).await,
            }
        }
    }
}
