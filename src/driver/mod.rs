//! How a virtual cluster is made. Everything above this module is driver-agnostic.
//!
//! Contract: every call is safe to repeat. `ensure` on a cluster that exists continues or
//! confirms it; `delete` of a missing cluster succeeds. Errors say whether retrying can help.

#[cfg(any(test, feature = "testing"))]
pub mod fake;
pub mod local;
/// What a size profile means to the local driver.
mod sizes;
/// vCluster virtual clusters on host clusters, made by the pinned `vclusterctl` and chart.
pub mod vcluster;

use async_trait::async_trait;

/// CI credentials minted inside a cluster (TokenRequest for a ServiceAccount).
mod credentials;

pub use self::credentials::{
    CI_NAMESPACE, CI_SERVICE_ACCOUNT, mint_ci_kubeconfig, mint_ci_kubeconfig_via,
};
pub use self::sizes::{BUILTIN_SIZES, LocalSize};
/// A kubeconfig: what drivers hand out (admin access in memory, CI credentials to callers).
pub use crate::controlplane::Kubeconfig;
use crate::controlplane::Tunnel;
use crate::domain::{Cluster, ClusterId};

/// A driver failure. `Transient` is retried with backoff; `Permanent` fails the cluster with the
/// message, which must tell a person what to fix.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// Worth retrying (a process still starting, a host unreachable, a timeout).
    #[error("{0}")]
    Transient(String),
    /// Retrying cannot help (a binary missing, bad values).
    #[error("{0}")]
    Permanent(String),
    /// The driver has nothing for this cluster.
    #[error("cluster not found on the driver")]
    NotFound,
    /// The cluster's host is no longer in the configuration: nothing on it can be reached,
    /// changed or confirmed gone. Add the host back, or have an admin forget the cluster.
    #[error(
        "host {host:?} of this cluster is no longer configured, so its namespace there cannot be \
         deleted or confirmed gone; add the host back to the configuration, or an admin can \
         forget the cluster (`vcm cluster delete --forget`), leaving whatever is on that host"
    )]
    HostRemoved {
        /// The host's name.
        host: String,
    },
    /// The cluster's resources vanished underneath it (its host namespace was deleted by
    /// someone else): the cluster fails with reason `lost`.
    #[error("lost: {0}")]
    Lost(String),
}

impl DriverError {
    /// Stable label for metrics and events.
    pub fn metric_label(&self) -> &'static str {
        match self {
            DriverError::Transient(_) => "driver_transient",
            DriverError::Permanent(_) => "driver_permanent",
            DriverError::NotFound => "driver_not_found",
            DriverError::Lost(_) => "lost",
            DriverError::HostRemoved { .. } => "host_removed",
        }
    }
}

/// What `ensure` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ensured {
    /// The control plane answers; `endpoint` is its API server URL.
    Ready {
        /// `https://…`.
        endpoint: String,
    },
    /// Ready again after the driver repaired it (a dead control plane restarted at the same
    /// endpoint); `message` says what happened, for the cluster's events.
    Restarted {
        /// `https://…`.
        endpoint: String,
        /// What was repaired.
        message: String,
    },
    /// Still coming up; call again later.
    InProgress {
        /// What it is waiting for.
        message: String,
    },
}

/// A place clusters run: a host cluster (vcluster driver) or this machine (local driver).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostInfo {
    /// Name clusters refer to in `host`.
    pub name: String,
    /// Labels a `host_selector` matches against.
    pub labels: std::collections::BTreeMap<String, String>,
    /// Most clusters this host takes (`None`: no limit).
    pub max_clusters: Option<u32>,
    /// Whether the host answered its last check.
    pub reachable: bool,
    /// Why it is unreachable, or other notes, for people.
    pub message: String,
}

/// A back-end that makes virtual clusters.
#[async_trait]
pub trait Driver: Send + Sync + 'static {
    /// Short name (`local`, `vcluster`).
    fn name(&self) -> &'static str;

    /// The hosts this driver places clusters on, with their reachability now.
    async fn hosts(&self) -> Vec<HostInfo>;

    /// Create the cluster's control plane, or continue or confirm an earlier attempt.
    async fn ensure(&self, cluster: &Cluster) -> Result<Ensured, DriverError>;

    /// Remove everything the cluster with this id had, wherever it is (the orphan sweeper has
    /// no record to go by). Succeeds if there is nothing.
    async fn delete(&self, id: &ClusterId) -> Result<(), DriverError>;

    /// Remove everything `cluster` had, on its host. Succeeds if there is nothing; fails with
    /// [`DriverError::HostRemoved`] if its host is no longer configured (then nothing can be
    /// confirmed gone).
    async fn delete_cluster(&self, cluster: &Cluster) -> Result<(), DriverError> {
        self.delete(&cluster.id).await
    }

    /// Admin access to the cluster's API (read on demand, never stored or handed to CI).
    async fn admin_kubeconfig(&self, cluster: &Cluster) -> Result<Kubeconfig, DriverError>;

    /// A kubeconfig for CI: a ServiceAccount token minted in the cluster, valid for `secs`
    /// seconds (never the admin credential). The default mints it through the admin kubeconfig.
    async fn ci_kubeconfig(&self, cluster: &Cluster, secs: u64) -> Result<Kubeconfig, DriverError> {
        let admin = self.admin_kubeconfig(cluster).await?;
        let tunnel = self.tunnel(cluster);
        mint_ci_kubeconfig_via(&admin, cluster.name.as_str(), secs, tunnel.as_ref()).await
    }

    /// How vcm itself reaches the cluster's API when it cannot dial the kubeconfig's server
    /// address (a vCluster behind a host it reaches only through the host's API server); `None`
    /// means dial the address.
    fn tunnel(&self, _cluster: &Cluster) -> Option<Tunnel> {
        None
    }

    /// Ids of every cluster the driver holds resources for (for the orphan sweeper).
    async fn list_managed(&self) -> Result<Vec<ClusterId>, DriverError>;

    /// What the cluster takes on its host now: its processes, or its host namespace. The
    /// default knows nothing of the host.
    async fn host_usage(
        &self,
        _cluster: &Cluster,
    ) -> Result<crate::domain::usage::HostUsage, DriverError> {
        Ok(crate::domain::usage::HostUsage::default())
    }
}
