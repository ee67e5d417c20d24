//! The use-cases every door calls (HTTP today; webhooks and the CRD controller later). Parsing,
//! defaults, policy bounds, idempotency and events happen here, once.

pub mod access;
mod clusters;
mod create;
mod credentials;
mod forget;
mod host_cache;
mod placement;
mod policy;
mod quotas;
mod requests;
mod tokens;
mod usage;

use std::sync::Arc;

use tokio::sync::Notify;

use crate::domain::Ttl;
use crate::driver::Driver;
use crate::store::Store;

pub use create::IdempotencyKey;
pub use forget::FORGOTTEN;
pub use host_cache::HOST_VIEW_MAX_AGE;
pub use quotas::{PrincipalUsage, TeamUsage};
pub use requests::{ClusterSpec, ClusterUpdate, HostUse};
pub use tokens::{TokenService, TokenSpec, team_name};

/// Defaults and bounds for new clusters (from configuration).
#[derive(Debug, Clone)]
pub struct ClusterPolicy {
    /// Size used when a request names none.
    pub default_size: String,
    /// Every size a request may name.
    pub sizes: Vec<String>,
    /// Kubernetes version used when a request names none.
    pub default_kubernetes_version: String,
    /// Every version a request may name.
    pub kubernetes_versions: Vec<String>,
    /// TTL used when a request names none.
    pub default_ttl: Ttl,
    /// Longest TTL a request may ask for.
    pub max_ttl: Ttl,
    /// Idle timeout used when a request names none (`None`: no idle deletion by default).
    pub default_idle_timeout: Option<Ttl>,
    /// Longest kubeconfig token a request may ask for.
    pub max_kubeconfig_ttl: Ttl,
    /// Live clusters per team and principal, and the sizes a team may create.
    pub quotas: crate::config::quotas::QuotasConfig,
}

impl Default for ClusterPolicy {
    fn default() -> Self {
        Self {
            default_size: "small".into(),
            sizes: vec!["small".into(), "medium".into(), "large".into()],
            default_kubernetes_version: "1.36".into(),
            kubernetes_versions: vec!["1.36".into()],
            default_ttl: Ttl::from_secs(2 * 3600),
            max_ttl: Ttl::from_secs(7 * 86_400),
            default_idle_timeout: None,
            max_kubeconfig_ttl: Ttl::from_secs(24 * 3600),
            quotas: crate::config::quotas::QuotasConfig::default(),
        }
    }
}

/// The cluster use-cases with what they need.
#[derive(Clone)]
pub struct ClusterService {
    store: Arc<dyn Store>,
    driver: Arc<dyn Driver>,
    policy: Arc<ClusterPolicy>,
    wake: Arc<Notify>,
    /// NB: placement reads each host's load and inserts the new cluster under this lock, so
    /// concurrent creates cannot both take a host's last slot; across replicas on PostgreSQL
    /// the store's placement lock (`Store::placement_lock`) is taken inside it.
    placing: Arc<tokio::sync::Mutex<()>>,
    /// Hosts as last probed: placement reads this instead of probing under the lock.
    hosts: Arc<host_cache::HostCache>,
    /// The operators' Rego policy, if `[policy]` names one.
    rego: Option<Arc<crate::policy::Policy>>,
    /// What `/metrics` exports; the service, the reconciler and the doors count into it.
    metrics: Arc<crate::metrics::Metrics>,
}

impl std::fmt::Debug for ClusterService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterService")
            .field("driver", &self.driver.name())
            .finish_non_exhaustive()
    }
}

// === impl ClusterService ===

impl ClusterService {
    /// A service over `store` and `driver`; `wake` is notified whenever the reconciler has new
    /// work (a create or delete), so it need not wait for its next poll.
    pub fn new(
        store: Arc<dyn Store>,
        driver: Arc<dyn Driver>,
        policy: ClusterPolicy,
        wake: Arc<Notify>,
    ) -> Self {
        Self {
            store,
            driver,
            policy: Arc::new(policy),
            wake,
            placing: Arc::new(tokio::sync::Mutex::new(())),
            hosts: Arc::new(host_cache::HostCache::new(HOST_VIEW_MAX_AGE)),
            rego: None,
            metrics: Arc::new(crate::metrics::Metrics::new()),
        }
    }

    /// The metrics this service and everything built on it count into.
    pub fn metrics(&self) -> &Arc<crate::metrics::Metrics> {
        &self.metrics
    }

    /// Use host probes up to `max_age` old for placement (default [`HOST_VIEW_MAX_AGE`]);
    /// older ones are refreshed in the background.
    pub fn with_host_view_max_age(mut self, max_age: std::time::Duration) -> Self {
        self.hosts = Arc::new(host_cache::HostCache::new(max_age));
        self
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The driver.
    pub fn driver(&self) -> &Arc<dyn Driver> {
        &self.driver
    }

    /// The policy.
    pub fn policy(&self) -> &ClusterPolicy {
        &self.policy
    }
}

#[cfg(test)]
#[path = "replicas_tests.rs"]
mod replicas_tests;
