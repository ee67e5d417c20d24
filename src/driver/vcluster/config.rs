//! What the vcluster driver is told: where the CLI, helm and chart are, the host clusters, and
//! the size profiles. Every struct (de)serialises, so it can sit in vcm's TOML configuration.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::size::SizeProfile;
use super::template;
use crate::controlplane::{KubeBins, MissingBinary};

/// The default handed-out API address: the vCluster Service, reachable from pods in the host
/// cluster (vcm itself runs there).
pub const DEFAULT_SERVER_TEMPLATE: &str = "https://{release}.{namespace}.svc:443";
/// The namespace vcm runs in on a host; the network policy admits traffic from it.
pub const DEFAULT_VCM_NAMESPACE: &str = "vcm-system";
/// Name of the chart directory beside `vclusterctl` in the binaries directory.
pub const CHART_DIR_NAME: &str = "vcluster-chart";

/// How the vcluster CLI, helm and the chart are found and run: the `[vcluster]` section of
/// vcm's configuration (keys as in the README) and what the driver runs with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "VclusterFile", into = "VclusterFile")]
pub struct VclusterConfig {
    /// The pinned `vclusterctl` binary.
    pub cli: PathBuf,
    /// Directory holding `helm` (put first on the CLI's `PATH`, so it never downloads one).
    pub helm_dir: PathBuf,
    /// Where the chart comes from.
    pub chart: ChartSource,
    /// How long one CLI call may take before it is killed.
    pub cli_timeout: Duration,
    /// How long a new cluster may take to become ready before it fails.
    pub ready_timeout: Duration,
    /// How old a labelled namespace must be before `list_managed` reports it, so a cluster
    /// being created is never mistaken for an orphan.
    pub orphan_grace: Duration,
    /// Size profiles by name. NB: not part of `[vcluster]`: sizes are configured once for every
    /// driver in `[clusters.sizes]`, and the server fills this in from there.
    pub sizes: BTreeMap<String, SizeProfile>,
    /// Kubernetes minor (`"1.36"`) → `ghcr.io/loft-sh/kubernetes` tag the chart runs. Only
    /// tags that exist can be used, so this is a table rather than `v<minor>.0`.
    pub kubernetes_versions: BTreeMap<String, String>,
    /// This installation's id (from the store; not configuration): host namespaces carry it as
    /// `vcm.dev/installation`, and the orphan sweeper only looks at namespaces that carry it.
    /// `None` (a driver built without a store): namespaces without that label only.
    pub installation: Option<String>,
}

/// Where the vCluster chart comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ChartSource {
    /// A chart directory (or `.tgz`) on this machine: no network needed.
    LocalDir(PathBuf),
    /// A chart repository and a pinned version.
    Repo {
        /// `https://charts.loft.sh`.
        repo: String,
        /// `0.36.1`.
        version: String,
    },
}

/// One host cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HostConfig {
    /// Name clusters refer to (`host` in requests).
    pub name: String,
    /// Kubeconfig file; `None` means the in-cluster configuration.
    pub kubeconfig: Option<PathBuf>,
    /// Context in the kubeconfig (default: its current context).
    pub context: Option<String>,
    /// Labels a `host_selector` matches.
    pub labels: BTreeMap<String, String>,
    /// Most clusters this host takes.
    pub max_clusters: Option<u32>,
    /// The API address handed out; placeholders `{release}`, `{namespace}`, `{id}`, `{name}`
    /// and `{node_port}` (the chart's Service becomes a NodePort, and this is its node port).
    pub server_template: String,
    /// Namespace vcm runs in on this host; the network policy admits traffic from it.
    pub vcm_namespace: String,
    /// Address ranges cluster namespaces may not reach besides the cloud metadata address, e.g.
    /// the pod CIDR on a CNI that applies `ipBlock` to pod addresses (Calico).
    pub egress_except: Vec<String>,
    /// A YAML file of chart values for every cluster of this host (a private registry, say),
    /// read when the driver is built. vcm's own values are merged on top of it and win.
    pub values_file: Option<PathBuf>,
    /// How vcm itself reaches each cluster's API (readiness, CI credentials, the gateway).
    pub api_access: ApiAccess,
}

/// How vcm reaches the API of a vCluster on a host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApiAccess {
    /// At the address `server_template` gives (vcm runs in the host's network, or the address
    /// is a load balancer, ingress or node port it can reach).
    #[default]
    Address,
    /// Through the host's API server: a port-forward to the control-plane pod, so vcm needs
    /// nothing of the host but its API (vcm outside the host's network, a private address).
    Tunnel,
}

// === impl VclusterConfig ===

impl VclusterConfig {
    /// The CLI, helm and chart from a binaries directory built by `make k8s-bins`
    /// (`vclusterctl`, `helm` and `vcluster-chart/` side by side), other fields default.
    pub fn from_bins(bins: &KubeBins) -> Result<Self, MissingBinary> {
        let cli = bins.get("vclusterctl")?;
        let chart = bins.dir_of("vclusterctl")?.join(CHART_DIR_NAME);
        Ok(Self {
            cli,
            helm_dir: bins.dir_of("helm")?,
            chart: ChartSource::LocalDir(chart),
            ..Self::defaults_in(&KubeBins::repo_cache_dir())
        })
    }

    /// The profile named `size`.
    pub fn size(&self, size: &str) -> Option<&SizeProfile> {
        self.sizes.get(size)
    }
}

impl Default for VclusterConfig {
    /// The CLI, helm and chart from `make k8s-bins` (found like every Kubernetes binary:
    /// `$VCM_K8S_BIN_DIR`, then the repository's cache), and default timeouts and sizes.
    fn default() -> Self {
        if let Ok(found) = Self::from_bins(&KubeBins::locate()) {
            return found;
        }
        Self::defaults_in(&KubeBins::repo_cache_dir())
    }
}

impl VclusterConfig {
    fn defaults_in(dir: &std::path::Path) -> Self {
        let dir = dir.to_path_buf();
        Self {
            cli: dir.join("vclusterctl"),
            helm_dir: dir.clone(),
            chart: ChartSource::LocalDir(dir.join(CHART_DIR_NAME)),
            cli_timeout: Duration::from_secs(300),
            ready_timeout: Duration::from_secs(600),
            orphan_grace: Duration::from_secs(300),
            sizes: SizeProfile::defaults(),
            kubernetes_versions: default_kubernetes_versions(),
            installation: None,
        }
    }
}

/// The tags of chart v0.36.1 (`config/default_extra_values.go: K8SVersionMap`).
pub fn default_kubernetes_versions() -> BTreeMap<String, String> {
    [
        ("1.30", "v1.30.2"),
        ("1.31", "v1.31.1"),
        ("1.32", "v1.32.1"),
        ("1.33", "v1.33.4"),
        ("1.34", "v1.34.0"),
        ("1.35", "v1.35.0"),
        ("1.36", "v1.36.0"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

// === impl HostConfig ===

impl HostConfig {
    /// A host reached through `kubeconfig` (its current context), other fields default.
    pub fn new(name: impl Into<String>, kubeconfig: Option<PathBuf>) -> Self {
        Self {
            name: name.into(),
            kubeconfig,
            ..Self::default()
        }
    }

    /// The API address handed out for a cluster (`server_template` with its placeholders
    /// filled in), without a trailing `/`. `{node_port}` is left in place: it is only known
    /// once the chart's Service exists (see [`super::endpoint`]).
    pub fn server_for(&self, id: &str, name: &str) -> String {
        template::fill(&self.server_template, id, name)
    }

    /// Whether the handed-out address is a node port of the chart's Service.
    pub fn uses_node_port(&self) -> bool {
        self.server_template.contains(template::NODE_PORT)
    }

    /// Refuses a `server_template` with a placeholder vcm does not know (or a stray brace),
    /// naming the valid ones.
    pub fn validate(&self) -> Result<(), String> {
        template::check(&self.server_template)
            .map_err(|e| format!("server_template {:?}: {e}", self.server_template))
    }
}

impl Default for HostConfig {
    fn default() -> Self {
        Self {
            name: String::new(),
            kubeconfig: None,
            context: None,
            labels: BTreeMap::new(),
            max_clusters: None,
            server_template: DEFAULT_SERVER_TEMPLATE.into(),
            vcm_namespace: DEFAULT_VCM_NAMESPACE.into(),
            egress_except: vec![],
            values_file: None,
            api_access: ApiAccess::Address,
        }
    }
}

/// The `[vcluster]` section as written in vcm's configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct VclusterFile {
    /// The pinned `vclusterctl` (default: from `make k8s-bins`).
    cli: PathBuf,
    /// Directory holding `helm` >= 3.10.
    helm_dir: PathBuf,
    /// A local chart directory (or `.tgz`).
    #[serde(default)]
    chart_dir: Option<PathBuf>,
    /// A chart repository; with `chart_version`, used instead of `chart_dir`.
    #[serde(default)]
    chart_repo: Option<String>,
    /// The chart version in `chart_repo`.
    #[serde(default)]
    chart_version: Option<String>,
    /// Seconds a CLI call may take before it is killed.
    cli_timeout_secs: u64,
    /// Seconds a new cluster may take to become ready before it fails.
    ready_timeout_secs: u64,
    /// Seconds a labelled namespace without a record is left alone before it is swept.
    orphan_grace_secs: u64,
    /// Kubernetes minor → `ghcr.io/loft-sh/kubernetes` tag.
    kubernetes_versions: BTreeMap<String, String>,
}

impl TryFrom<VclusterFile> for VclusterConfig {
    type Error = String;

    fn try_from(f: VclusterFile) -> Result<Self, String> {
        let chart = match (f.chart_repo, f.chart_version, f.chart_dir) {
            (Some(repo), Some(version), _) => ChartSource::Repo { repo, version },
            (Some(_), None, _) | (None, Some(_), _) => {
                return Err("vcluster.chart_repo and vcluster.chart_version go together".into());
            }
            (None, None, Some(dir)) => ChartSource::LocalDir(dir),
            (None, None, None) => {
                return Err("vcluster: set chart_dir, or chart_repo and chart_version".into());
            }
        };
        if f.cli_timeout_secs == 0 || f.ready_timeout_secs == 0 {
            return Err(
                "vcluster.cli_timeout_secs and ready_timeout_secs must be at least 1".into(),
            );
        }
        if f.kubernetes_versions.is_empty() {
            return Err("vcluster.kubernetes_versions must name at least one version".into());
        }
        Ok(Self {
            cli: f.cli,
            helm_dir: f.helm_dir,
            chart,
            cli_timeout: Duration::from_secs(f.cli_timeout_secs),
            ready_timeout: Duration::from_secs(f.ready_timeout_secs),
            orphan_grace: Duration::from_secs(f.orphan_grace_secs),
            sizes: SizeProfile::defaults(),
            kubernetes_versions: f.kubernetes_versions,
            installation: None,
        })
    }
}

impl From<VclusterConfig> for VclusterFile {
    fn from(c: VclusterConfig) -> Self {
        let (chart_dir, chart_repo, chart_version) = match c.chart {
            ChartSource::LocalDir(dir) => (Some(dir), None, None),
            ChartSource::Repo { repo, version } => (None, Some(repo), Some(version)),
        };
        Self {
            cli: c.cli,
            helm_dir: c.helm_dir,
            chart_dir,
            chart_repo,
            chart_version,
            cli_timeout_secs: c.cli_timeout.as_secs(),
            ready_timeout_secs: c.ready_timeout.as_secs(),
            orphan_grace_secs: c.orphan_grace.as_secs(),
            kubernetes_versions: c.kubernetes_versions,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_repo_needs_its_version_and_wins_over_the_default_directory() {
        let mut v = serde_json::to_value(VclusterConfig::default()).expect("serialisable");
        v["chart_repo"] = "https://charts.example".into();
        let err = serde_json::from_value::<VclusterConfig>(v.clone()).expect_err("no version");
        assert!(err.to_string().contains("go together"), "{err}");
        v["chart_version"] = "0.36.1".into();
        let cfg: VclusterConfig = serde_json::from_value(v).expect("deserialisable");
        assert_eq!(
            cfg.chart,
            ChartSource::Repo {
                repo: "https://charts.example".into(),
                version: "0.36.1".into()
            }
        );
    }

    #[test]
    fn a_host_is_reached_by_address_unless_it_asks_for_the_tunnel() {
        let host: HostConfig =
            serde_json::from_value(serde_json::json!({"name": "eks"})).expect("deserialisable");
        assert_eq!(host.api_access, ApiAccess::Address);
        let host: HostConfig =
            serde_json::from_value(serde_json::json!({"name": "eks", "api_access": "tunnel"}))
                .expect("deserialisable");
        assert_eq!(host.api_access, ApiAccess::Tunnel);
        let err = serde_json::from_value::<HostConfig>(
            serde_json::json!({"name": "eks", "api_access": "vpn"}),
        )
        .expect_err("unknown way");
        assert!(
            err.to_string().contains("expected `address` or `tunnel`"),
            "{err}"
        );
    }

    #[test]
    fn config_round_trips_through_toml_shaped_json_with_seconds() {
        let cfg = VclusterConfig::default();
        let v = serde_json::to_value(&cfg).expect("serialisable");
        assert_eq!(v["cli_timeout_secs"], 300);
        assert!(
            v.get("sizes").is_none(),
            "sizes live in [clusters.sizes], not here"
        );
        let back: VclusterConfig = serde_json::from_value(v).expect("deserialisable");
        assert_eq!(back, cfg);
    }
}
