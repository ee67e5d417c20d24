//! The vcluster driver: each cluster is a vCluster in namespace `vcm-<id>` of a host cluster,
//! installed by the pinned `vclusterctl` with a pinned chart.
//!
//! Names: the Helm release (and the chart's StatefulSet, or Deployment when the size has no
//! volume, its Service and the pod label `release`) is the cluster **id** (`c-…`, DNS-safe and never reused), never the user's name; the namespace is
//! `vcm-<id>`; the syncer's kubeconfig secret is `vc-<id>`.
//!
//! `ensure` takes one step and returns:
//! 1. Namespace `vcm-<id>` (labels `app.kubernetes.io/managed-by=vcm`, `vcm.dev/cluster-id`)
//!    with ResourceQuota `vcm-quota`, LimitRange `vcm-limits` and NetworkPolicy
//!    `vcm-isolation`, each created only if missing.
//!    NB: vcm creates these itself instead of enabling the chart's `policies.*`: vcm then owns
//!    the exact rules (the chart's network policy, for one, has no notion of "vcm's
//!    namespace"), the same code serves every chart version (the `policies` keys changed
//!    between releases), and the objects exist *before* the CLI runs, so the control-plane pod
//!    is admitted under the quota and gets the limit range's defaults like every later pod.
//! 2. If the Helm release is not deployed, `vclusterctl create --upgrade` with a values file
//!    rendered from the size profile ([`values`]), on top of the host's `values_file`.
//!    NB: "deployed" is read from Helm's own release secrets (`owner=helm,name=<id>`, label
//!    `status=deployed`), the marker the CLI itself checks, rather than from the StatefulSet:
//!    the StatefulSet exists half-way through a failed install, the release secret only once
//!    Helm applied everything. A `pending-*` release left by a CLI killed mid-install is a
//!    stale lock that would block every retry, so it is removed once older than the CLI
//!    timeout.
//! 3. Readiness, decided by vcm ([`readiness`]): control-plane pod Ready, secret `vc-<id>`
//!    with key `config`, and `GET /version` answered with those credentials at the address
//!    vcm hands out (`server_template`; with `{node_port}`, resolved from the chart's Service
//!    by [`endpoint`]).
//!
//! `delete` runs `vclusterctl delete --delete-namespace --ignore-not-found --wait=false` (the
//! CLI's own wait loops without bound), deletes the namespace itself if it is still there, and
//! reports success only once the namespace is gone. If the CLI fails for any reason other
//! than connectivity, the namespace deletion still removes everything the chart made.
//!
//! The CLI always runs with explicit arguments, `PATH` = the pinned helm's directory first, a
//! fresh private `HOME`/working directory, a scrubbed environment, and a deadline after which
//! its whole process group is killed ([`cli`]).

mod cli;
mod config;
mod endpoint;
mod host;
mod objects;
mod output;
mod readiness;
mod release;
mod size;
mod steps;
mod template;
mod tunnel;
mod usage;
mod values;

use async_trait::async_trait;
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::ListParams;

pub use self::config::{
    ApiAccess, CHART_DIR_NAME, ChartSource, DEFAULT_SERVER_TEMPLATE, DEFAULT_VCM_NAMESPACE,
    HostConfig, VclusterConfig, default_kubernetes_versions,
};
use self::endpoint::Endpoint;
use self::host::Host;
pub use self::objects::{
    API_NETWORK_POLICY_NAME, LIMIT_RANGE_NAME, NETWORK_POLICY_NAME, QUOTA_NAME,
};
use self::readiness::Readiness;
pub use self::size::{PodSecurityLevel, SizeProfile};
pub use self::template::PLACEHOLDERS;
use super::{Driver, DriverError, Ensured, HostInfo};
use crate::controlplane::{BUILD_COMMAND, Kubeconfig, Tunnel};
use crate::domain::{Cluster, ClusterId, Phase, Timestamp};

/// Label marking everything vcm owns on a host.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Value of [`MANAGED_BY_LABEL`].
pub const MANAGED_BY_VALUE: &str = "vcm";
/// Label carrying the cluster id on its namespace and objects.
pub const CLUSTER_ID_LABEL: &str = "vcm.dev/cluster-id";
/// Label on each host namespace: the installation (store) that made it.
pub const INSTALLATION_LABEL: &str = "vcm.dev/installation";

/// Host namespace of cluster `id`.
pub fn namespace_name(id: &str) -> String {
    format!("vcm-{id}")
}

/// The syncer's kubeconfig secret of cluster `id`.
pub fn secret_name(id: &str) -> String {
    format!("vc-{id}")
}

/// Makes clusters with the vcluster CLI on host clusters.
#[derive(Debug)]
pub struct VclusterDriver {
    hosts: Vec<Host>,
    config: VclusterConfig,
}

// === impl VclusterDriver ===

impl VclusterDriver {
    /// A driver for `hosts`. Fails if the CLI or a local chart is missing (naming the build
    /// command), if two hosts share a name, if a host's `server_template` has an unknown
    /// placeholder, if its `values_file` is missing or not a YAML mapping, or if its
    /// kubeconfig cannot be loaded (or, without one, vcm is not running in a cluster). Hosts
    /// need not be reachable now.
    pub async fn new(hosts: Vec<HostConfig>, config: VclusterConfig) -> anyhow::Result<Self> {
        if !cli::is_executable(&config.cli) {
            anyhow::bail!("{}", cli::missing_cli(&config.cli));
        }
        if let ChartSource::LocalDir(chart) = &config.chart {
            anyhow::ensure!(
                chart.exists(),
                "the vcluster chart {} is missing; build it with `{BUILD_COMMAND}` or set the \
                 driver's `chart`",
                chart.display()
            );
        }
        let mut connected: Vec<Host> = Vec::with_capacity(hosts.len());
        for h in hosts {
            anyhow::ensure!(
                !connected.iter().any(|c| c.config.name == h.name),
                "host {} is configured twice",
                h.name
            );
            h.validate()
                .map_err(|e| anyhow::anyhow!("host {}: {e}", h.name))?;
            connected.push(Host::connect(h).await?);
        }
        Ok(Self {
            hosts: connected,
            config,
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &VclusterConfig {
        &self.config
    }

    fn host(&self, name: &str) -> Result<&Host, DriverError> {
        self.hosts
            .iter()
            .find(|h| h.config.name == name)
            .ok_or_else(|| {
                let known: Vec<&str> = self.hosts.iter().map(Host::name).collect();
                DriverError::Permanent(format!(
                    "unknown host {name:?} (configured: {})",
                    known.join(", ")
                ))
            })
    }
}

#[async_trait]
impl Driver for VclusterDriver {
    fn name(&self) -> &'static str {
        "vcluster"
    }

    async fn hosts(&self) -> Vec<HostInfo> {
        let mut checks = tokio::task::JoinSet::new();
        for (i, host) in self.hosts.iter().enumerate() {
            let host = host.clone();
            checks.spawn(async move { (i, host.check().await) });
        }
        let mut results: Vec<(usize, Result<String, String>)> =
            checks.join_all().await.into_iter().collect();
        results.sort_by_key(|(i, _)| *i);
        results
            .into_iter()
            .zip(&self.hosts)
            .map(|((_, check), host)| {
                let (reachable, message) = match check {
                    Ok(version) => (true, format!("Kubernetes {version}")),
                    Err(why) => (false, why),
                };
                HostInfo {
                    name: host.config.name.clone(),
                    labels: host.config.labels.clone(),
                    max_clusters: host.config.max_clusters,
                    reachable,
                    message,
                }
            })
            .collect()
    }

    #[tracing::instrument(skip_all, err(level = "warn"), fields(cluster.id = %cluster.id, host = %cluster.host))]
    async fn ensure(&self, cluster: &Cluster) -> Result<Ensured, DriverError> {
        let host = self.host(&cluster.host)?;
        let id = cluster.id.as_str();
        let ns = namespace_name(id);
        let nss: Api<Namespace> = Api::all(host.client.clone());
        let existing = nss
            .get_opt(&ns)
            .await
            .map_err(|e| host.error(&format!("reading namespace {ns}"), e))?;
        let terminating = existing
            .as_ref()
            .is_some_and(|n| n.metadata.deletion_timestamp.is_some());
        if cluster.phase == Phase::Ready && (existing.is_none() || terminating) {
            return Err(DriverError::Lost(format!(
                "namespace {ns} is {} on host {}",
                if terminating { "being deleted" } else { "gone" },
                host.name()
            )));
        }
        if terminating {
            return Err(DriverError::Transient(format!(
                "namespace {ns} is still being deleted on host {}; it is re-created once gone",
                host.name()
            )));
        }
        // NB: a Ready cluster whose release is gone is lost, not re-installed: a fresh install
        // would be an empty cluster behind the same name, and its users' work silently gone.
        if cluster.phase == Phase::Ready {
            if !release::deployed(host, &ns, id, self.config.cli_timeout).await? {
                return Err(DriverError::Lost(format!(
                    "the vCluster release {id} in namespace {ns} on host {} is gone",
                    host.name()
                )));
            }
            if !readiness::workload_exists(host, &ns, id).await? {
                return Err(DriverError::Lost(format!(
                    "the vCluster control plane (StatefulSet or Deployment {id}) in namespace \
                     {ns} on host {} is gone",
                    host.name()
                )));
            }
        }
        let deadline_passed = || {
            cluster.ready_at.is_none()
                && Timestamp::now().duration_since(cluster.created_at)
                    > jiff::SignedDuration::try_from(self.config.ready_timeout).unwrap_or_default()
        };
        let not_ready = |what: &str| {
            DriverError::Permanent(format!(
                "not ready after {}s: {what}",
                self.config.ready_timeout.as_secs()
            ))
        };
        match steps::install(&self.config, host, cluster, &ns).await {
            Ok(()) => {}
            Err(DriverError::Transient(m)) if deadline_passed() => return Err(not_ready(&m)),
            Err(e) => return Err(e),
        }
        let server = match endpoint::resolve(host, &ns, id, cluster.name.as_str()).await? {
            Endpoint::Known(server) => server,
            Endpoint::Waiting(what) if deadline_passed() => return Err(not_ready(&what)),
            Endpoint::Waiting(message) => return Ok(Ensured::InProgress { message }),
        };
        let via = self.tunnel(cluster);
        match readiness::check(host, &ns, id, cluster.name.as_str(), &server, via.as_ref()).await? {
            Readiness::Ready => Ok(Ensured::Ready { endpoint: server }),
            Readiness::Waiting(what) if deadline_passed() => Err(not_ready(&what)),
            Readiness::Waiting(message) => Ok(Ensured::InProgress { message }),
        }
    }

    #[tracing::instrument(skip_all, err(level = "warn"), fields(cluster.id = %id))]
    async fn delete(&self, id: &ClusterId) -> Result<(), DriverError> {
        let name = namespace_name(id.as_str());
        let mut unreachable = Vec::new();
        for host in &self.hosts {
            let nss: Api<Namespace> = Api::all(host.client.clone());
            match nss.get_opt(&name).await {
                // NB: the namespace name is unique per id, so the host that has it is the only
                // one that matters; other hosts being down does not block this delete.
                Ok(Some(ns)) => {
                    return steps::delete_on(&self.config, host, id.as_str(), &ns).await;
                }
                Ok(None) => {}
                Err(e) => unreachable.push(host.error(&format!("reading namespace {name}"), e)),
            }
        }
        match unreachable.first() {
            None => Ok(()),
            Some(e) => Err(DriverError::Transient(format!(
                "cannot confirm that namespace {name} is gone: {e}"
            ))),
        }
    }

    async fn delete_cluster(&self, cluster: &Cluster) -> Result<(), DriverError> {
        // NB: without its host, `delete` would find the namespace on no configured host and
        // report it gone: the cluster would end `Deleted` while its namespace lives on.
        if !self.hosts.iter().any(|h| h.name() == cluster.host) {
            return Err(DriverError::HostRemoved {
                host: cluster.host.clone(),
            });
        }
        self.delete(&cluster.id).await
    }

    async fn admin_kubeconfig(&self, cluster: &Cluster) -> Result<Kubeconfig, DriverError> {
        let host = self.host(&cluster.host)?;
        let id = cluster.id.as_str();
        let ns = namespace_name(id);
        let secret = secret_name(id);
        let Some(yaml) = readiness::read_kubeconfig(host, &ns, &secret).await? else {
            let nss: Api<Namespace> = Api::all(host.client.clone());
            return match nss.get_opt(&ns).await {
                Ok(None) => Err(DriverError::NotFound),
                Ok(Some(_)) => Err(DriverError::Transient(format!(
                    "secret {secret} has not been written yet on host {}",
                    host.name()
                ))),
                Err(e) => Err(host.error(&format!("reading namespace {ns}"), e)),
            };
        };
        let server = match endpoint::resolve(host, &ns, id, cluster.name.as_str()).await? {
            Endpoint::Known(server) => server,
            Endpoint::Waiting(what) => {
                return Err(DriverError::Transient(format!(
                    "the API address of cluster {id} on host {} is not known yet: {what}",
                    host.name()
                )));
            }
        };
        readiness::parse_kubeconfig(&yaml, cluster.name.as_str(), &server).map_err(|e| {
            DriverError::Transient(format!("secret {secret} holds no usable kubeconfig: {e:#}"))
        })
    }

    /// The host namespace's pods, requests, quotas and (where served) metrics.
    async fn host_usage(
        &self,
        cluster: &Cluster,
    ) -> Result<crate::domain::usage::HostUsage, DriverError> {
        let host = self.host(&cluster.host)?;
        let (namespace, notes) =
            usage::of_namespace(host, &namespace_name(cluster.id.as_str())).await?;
        Ok(crate::domain::usage::HostUsage {
            namespace: Some(namespace),
            notes,
            ..Default::default()
        })
    }

    fn tunnel(&self, cluster: &Cluster) -> Option<Tunnel> {
        let host = self.host(&cluster.host).ok()?;
        let id = cluster.id.as_str();
        (host.config.api_access == ApiAccess::Tunnel)
            .then(|| tunnel::to_control_plane(host, &namespace_name(id), id))
    }

    async fn list_managed(&self) -> Result<Vec<ClusterId>, DriverError> {
        let selector = match &self.config.installation {
            Some(me) => format!("{MANAGED_BY_LABEL}={MANAGED_BY_VALUE},{INSTALLATION_LABEL}={me}"),
            None => format!("{MANAGED_BY_LABEL}={MANAGED_BY_VALUE},!{INSTALLATION_LABEL}"),
        };
        let grace = jiff::SignedDuration::try_from(self.config.orphan_grace).unwrap_or_default();
        let now = Timestamp::now();
        let mut ids = Vec::new();
        let mut failures = Vec::new();
        for host in &self.hosts {
            let nss: Api<Namespace> = Api::all(host.client.clone());
            let list = match nss.list(&ListParams::default().labels(&selector)).await {
                Ok(l) => l,
                Err(e) => {
                    let err = host.error("listing vcm namespaces", e);
                    tracing::warn!(host = host.name(), error = %err, "skipping host in list_managed");
                    failures.push(err);
                    continue;
                }
            };
            for ns in list.items {
                let old_enough = ns
                    .metadata
                    .creation_timestamp
                    .as_ref()
                    .is_some_and(|t| now.duration_since(t.0) >= grace);
                // NB: only a namespace named exactly `vcm-<id>` for a well-formed id it is labelled
                // with: a label copied onto another namespace (or vcm's own) never makes it ours.
                let id = ns
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(CLUSTER_ID_LABEL))
                    .and_then(|id| ClusterId::parse(id))
                    .filter(|id| {
                        let name = ns.metadata.name.as_deref().unwrap_or_default();
                        name == namespace_name(id.as_str()) && name != host.config.vcm_namespace
                    });
                if let (true, Some(id)) = (old_enough, id) {
                    ids.push(id);
                }
            }
        }
        if !self.hosts.is_empty() && failures.len() == self.hosts.len() {
            let first = failures.swap_remove(0);
            return Err(DriverError::Transient(format!("no host answered: {first}")));
        }
        ids.sort();
        ids.dedup();
        Ok(ids)
    }
}
