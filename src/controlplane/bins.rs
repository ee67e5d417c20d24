//! Where the Kubernetes binaries come from.

use std::path::{Path, PathBuf};

/// The versions `scripts/k8s-bins.sh` builds; the same file feeds the script and this module.
const VERSIONS: &str = include_str!("../../scripts/k8s-versions.env");

/// The command that builds the binaries, named in every "missing binary" error.
pub const BUILD_COMMAND: &str = "make k8s-bins   (or: scripts/k8s-bins.sh)";

/// A binary that is not where vcm looked; the message says where it looked and how to build it.
#[derive(Debug, thiserror::Error)]
#[error(
    "Kubernetes binary `{name}` not found (looked in {searched}). Build it with `{build}` \
     from the vcm repository, or point VCM_K8S_BIN_DIR at a directory that has it"
)]
pub struct MissingBinary {
    /// The binary's file name.
    pub name: String,
    /// The places searched, for the message.
    pub searched: String,
    /// The build command.
    pub build: &'static str,
}

/// A directory of Kubernetes binaries (kube-apiserver, etcd, …), or `PATH` as the last resort.
#[derive(Debug, Clone)]
pub struct KubeBins {
    dirs: Vec<PathBuf>,
}

// === impl KubeBins ===

impl KubeBins {
    /// Look in `$VCM_K8S_BIN_DIR`, then the repository's versioned cache (when running from a
    /// checkout), then `PATH`.
    pub fn locate() -> Self {
        let mut dirs = Vec::new();
        if let Some(dir) = std::env::var_os("VCM_K8S_BIN_DIR").filter(|d| !d.is_empty()) {
            dirs.push(PathBuf::from(dir));
        }
        dirs.push(Self::repo_cache_dir());
        if let Some(path) = std::env::var_os("PATH") {
            dirs.extend(std::env::split_paths(&path));
        }
        Self { dirs }
    }

    /// Only this directory.
    pub fn in_dir(dir: impl Into<PathBuf>) -> Self {
        Self {
            dirs: vec![dir.into()],
        }
    }

    /// `<repo>/.cache/k8s/<version key>`: the default output of `scripts/k8s-bins.sh`.
    pub fn repo_cache_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(".cache/k8s")
            .join(cache_key())
    }

    /// The path of binary `name`, or an error naming the build command.
    pub fn get(&self, name: &str) -> Result<PathBuf, MissingBinary> {
        self.dirs
            .iter()
            .map(|d| d.join(name))
            .find(|p| is_executable(p))
            .ok_or_else(|| MissingBinary {
                name: name.to_owned(),
                searched: self.searched(),
                build: BUILD_COMMAND,
            })
    }

    /// The directory a binary was found in (for data files that sit beside it, such as kwok's
    /// stage files).
    pub fn dir_of(&self, name: &str) -> Result<PathBuf, MissingBinary> {
        let bin = self.get(name)?;
        Ok(bin.parent().map(Path::to_path_buf).unwrap_or_default())
    }

    fn searched(&self) -> String {
        let mut shown: Vec<String> = self
            .dirs
            .iter()
            .take(2)
            .map(|d| d.display().to_string())
            .collect();
        if self.dirs.len() > 2 {
            shown.push("PATH".into());
        }
        shown.join(", ")
    }
}

/// The pinned Kubernetes release as `major.minor` (`"1.36"`): the version local clusters run.
pub fn pinned_kubernetes_minor() -> String {
    let full = version_of("K8S_VERSION");
    let mut parts = full.split('.');
    match (parts.next(), parts.next()) {
        (Some(major), Some(minor)) => format!("{major}.{minor}"),
        _ => full,
    }
}

fn version_of(key: &str) -> String {
    VERSIONS
        .lines()
        .find_map(|l| l.trim().strip_prefix(key)?.strip_prefix('='))
        .unwrap_or("unknown")
        .trim()
        .to_owned()
}

/// `k8s-<v>_etcd-<v>_kwok-<v>_helm-<v>_vcluster-<v>`, exactly as the build script names its output.
pub fn cache_key() -> String {
    let get = version_of;
    format!(
        "k8s-{}_etcd-{}_kwok-{}_helm-{}_vcluster-{}",
        get("K8S_VERSION"),
        get("ETCD_VERSION"),
        get("KWOK_VERSION"),
        get("HELM_VERSION"),
        get("VCLUSTER_VERSION")
    )
}

/// Whether `path` is an executable file.
pub fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_key_names_every_pinned_version() {
        let key = cache_key();
        assert!(key.starts_with("k8s-1."), "{key}");
        assert!(!key.contains("unknown"), "{key}");
    }

    #[test]
    fn missing_binary_error_names_the_build_command() {
        let bins = KubeBins::in_dir("/nonexistent");
        let err = bins
            .get("kube-apiserver")
            .expect_err("binary cannot exist there");
        let msg = err.to_string();
        assert!(msg.contains("make k8s-bins"), "{msg}");
        assert!(msg.contains("VCM_K8S_BIN_DIR"), "{msg}");
    }
}
