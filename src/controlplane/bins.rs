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

/// The binaries that make up one Kubernetes release: a cluster runs all three of one release.
pub const RELEASE_BINARIES: [&str; 3] = [
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
];

/// A directory of Kubernetes binaries (kube-apiserver, etcd, …), or `PATH` as the last resort.
#[derive(Debug, Clone)]
pub struct KubeBins {
    dirs: Vec<PathBuf>,
    /// For a release other than the default: the only places [`RELEASE_BINARIES`] are taken
    /// from (`<dir>/k8s-<release>/`), so a missing one is an error, never the default's.
    release_dirs: Option<Vec<PathBuf>>,
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
        Self {
            dirs,
            release_dirs: None,
        }
    }

    /// Only this directory.
    pub fn in_dir(dir: impl Into<PathBuf>) -> Self {
        Self {
            dirs: vec![dir.into()],
            release_dirs: None,
        }
    }

    /// The binaries of Kubernetes `minor` (`"1.37"`): the default release's are these; another
    /// pinned release's kube-apiserver, kube-controller-manager and kube-scheduler come from
    /// `k8s-<release>/` under each directory searched (etcd, kwok and helm stay shared).
    /// `None` if `minor` is not a pinned release.
    pub fn for_minor(&self, minor: &str) -> Option<Self> {
        if minor == pinned_kubernetes_minor() {
            return Some(self.clone());
        }
        let release = extra_releases()
            .into_iter()
            .find(|r| minor_of(r) == minor)?;
        Some(Self {
            dirs: self.dirs.clone(),
            release_dirs: Some(
                self.dirs
                    .iter()
                    .map(|d| d.join(format!("k8s-{release}")))
                    .collect(),
            ),
        })
    }

    /// The pinned minors whose three release binaries are all found, the default first.
    pub fn available_minors(&self) -> Vec<String> {
        std::iter::once(pinned_kubernetes_minor())
            .chain(extra_releases().iter().map(|r| minor_of(r)))
            .filter(|m| {
                self.for_minor(m)
                    .is_some_and(|b| RELEASE_BINARIES.iter().all(|n| b.get(n).is_ok()))
            })
            .collect()
    }

    /// `<repo>/.cache/k8s/<version key>`: the default output of `scripts/k8s-bins.sh`.
    pub fn repo_cache_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(".cache/k8s")
            .join(cache_key())
    }

    /// The path of binary `name`, or an error naming the build command.
    pub fn get(&self, name: &str) -> Result<PathBuf, MissingBinary> {
        let dirs = match &self.release_dirs {
            Some(release) if RELEASE_BINARIES.contains(&name) => release,
            _ => &self.dirs,
        };
        dirs.iter()
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
            .release_dirs
            .as_ref()
            .unwrap_or(&self.dirs)
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

/// The default pinned Kubernetes release as `major.minor` (`"1.36"`): what local clusters run
/// unless they ask for another.
pub fn pinned_kubernetes_minor() -> String {
    minor_of(&version_of("K8S_VERSION"))
}

/// The other pinned releases (`K8S_EXTRA_VERSIONS`, e.g. `["1.37.2"]`).
pub fn extra_releases() -> Vec<String> {
    version_of("K8S_EXTRA_VERSIONS")
        .trim_matches('"')
        .split_whitespace()
        .filter(|v| *v != "unknown")
        .map(str::to_owned)
        .collect()
}

/// `"1.37.2"` → `"1.37"`.
pub fn minor_of(release: &str) -> String {
    let mut parts = release.split('.');
    match (parts.next(), parts.next()) {
        (Some(major), Some(minor)) => format!("{major}.{minor}"),
        _ => release.to_owned(),
    }
}

/// A pinned version from `scripts/k8s-versions.env` (`"VCLUSTER_VERSION"` → `"0.36.1"`),
/// `"unknown"` if the key is missing.
pub fn version_of(key: &str) -> String {
    VERSIONS
        .lines()
        .find_map(|l| l.trim().strip_prefix(key)?.strip_prefix('='))
        .unwrap_or("unknown")
        .trim()
        .to_owned()
}

/// `k8s-<v>_etcd-<v>_kwok-<v>_helm-<v>_vcluster-<v>_kine-<v>_coredns-<v>`, exactly as the build script
/// names its output.
pub fn cache_key() -> String {
    let get = version_of;
    let extra: String = extra_releases().iter().map(|r| format!("+{r}")).collect();
    format!(
        "k8s-{}{extra}_etcd-{}_kwok-{}_helm-{}_vcluster-{}_kine-{}_coredns-{}",
        get("K8S_VERSION"),
        get("ETCD_VERSION"),
        get("KWOK_VERSION"),
        get("HELM_VERSION"),
        get("VCLUSTER_VERSION"),
        get("KINE_VERSION"),
        get("COREDNS_VERSION")
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
#[allow(clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn cache_key_names_every_pinned_version() {
        let key = cache_key();
        assert!(key.starts_with("k8s-1."), "{key}");
        assert!(!key.contains("unknown"), "{key}");
    }

    #[test]
    fn another_release_never_falls_back_to_the_default_releases_binaries() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let exe = |p: &Path| {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::create_dir_all(p.parent().unwrap_or(p)).unwrap_or_else(|e| panic!("{e}"));
            std::fs::write(p, "").unwrap_or_else(|e| panic!("{e}"));
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755))
                .unwrap_or_else(|e| panic!("{e}"));
        };
        for name in RELEASE_BINARIES.iter().chain(&["etcd"]) {
            exe(&dir.path().join(name));
        }
        let bins = KubeBins::in_dir(dir.path());
        assert_eq!(bins.available_minors(), vec![pinned_kubernetes_minor()]);
        let Some(extra) = extra_releases().first().cloned() else {
            return; // NB: only one release pinned: nothing else to check.
        };
        let other = bins.for_minor(&minor_of(&extra)).expect("a pinned release");
        assert!(
            other.get("kube-apiserver").is_err(),
            "the default's must not be used"
        );
        assert_eq!(other.get("etcd").ok(), Some(dir.path().join("etcd")));
        for name in RELEASE_BINARIES {
            exe(&dir.path().join(format!("k8s-{extra}")).join(name));
        }
        assert_eq!(
            other.get("kube-scheduler").ok(),
            Some(dir.path().join(format!("k8s-{extra}/kube-scheduler")))
        );
        assert_eq!(bins.available_minors().len(), 2);
        assert!(bins.for_minor("1.2").is_none());
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
