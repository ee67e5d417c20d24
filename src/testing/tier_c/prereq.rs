//! What tier C needs from the machine (root, Debian's container runtime, the images), checked
//! before a bed creates anything, and running its tools.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context as _;

use crate::controlplane::KubeBins;

/// How the images are built.
pub const IMAGES_COMMAND: &str = "scripts/node-images.sh (run by `make test`)";
/// The image tarballs `scripts/node-images.sh` builds (named after the pinned versions); every
/// bed imports them all.
pub fn image_files() -> Vec<String> {
    let v = crate::controlplane::version_of;
    vec![
        "pause_3.10.tar".into(),
        "workload_2.tar".into(),
        format!("vcluster_{}.tar", v("VCLUSTER_VERSION")),
        format!("vcluster-k8s_v{}.tar", v("K8S_VERSION")),
        format!("coredns_{}.tar", v("COREDNS_VERSION")),
    ]
}
/// Check everything tier C needs before anything is created; the error says how to get it.
pub fn preflight(bins: &KubeBins) -> anyhow::Result<PathBuf> {
    anyhow::ensure!(
        nix::unistd::geteuid().is_root(),
        "test bed tier C runs containers and network namespaces and needs root"
    );
    for b in ["kubelet", "kube-proxy"] {
        bins.get(b)?;
    }
    for tool in [
        "containerd",
        "containerd-shim-runc-v2",
        "runc",
        "ctr",
        "nsenter",
        "unshare",
        "ip",
        "iptables",
    ] {
        anyhow::ensure!(
            which(tool).is_some(),
            "`{tool}` is not installed; {IMAGES_COMMAND} installs it from Debian"
        );
    }
    anyhow::ensure!(
        Path::new("/usr/lib/cni/bridge").is_file(),
        "the CNI plugins are missing (/usr/lib/cni/bridge); {IMAGES_COMMAND} installs them"
    );
    let images = bins.dir_of("kubelet")?.join("images");
    for image in image_files() {
        anyhow::ensure!(
            images.join(&image).is_file(),
            "image {} is missing; build it with {IMAGES_COMMAND}",
            images.join(&image).display()
        );
    }
    Ok(images)
}

pub(super) fn run(program: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("running {program}"))?;
    anyhow::ensure!(
        out.status.success(),
        "`{program} {}` failed ({}): {}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub(super) fn which(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join(tool))
            .find(|p| p.is_file())
    })
}
