//! What the doors ask of the cluster use-cases, in the service's own terms: every door (HTTP
//! today, webhooks and the CRD controller later) converts its wire shape into these, so the
//! service depends on no door.

use std::collections::BTreeMap;

use serde::Serialize;

/// A cluster to create. Every field is optional; defaults come from configuration.
///
/// NB: `Serialize` with absent fields skipped: its JSON is what an idempotent retry is compared
/// by, so two requests that say the same thing compare equal.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ClusterSpec {
    /// DNS-1123 label, at most 40 characters; default: the id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Size profile.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    /// Kubernetes minor version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kubernetes_version: Option<String>,
    /// Lifetime.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
    /// Idle timeout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<String>,
    /// Host to place it on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Labels a host must have.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_selector: Option<BTreeMap<String, String>>,
    /// Labels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
}

/// Changes to a cluster's mutable spec; what is `None` stays as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterUpdate {
    /// New lifetime, counted from creation.
    pub ttl: Option<String>,
    /// New idle timeout.
    pub idle_timeout: Option<String>,
    /// Replacement labels.
    pub labels: Option<BTreeMap<String, String>>,
    /// Immutable fields the caller tried to change, named in the 422.
    pub immutable: Vec<&'static str>,
}

/// A host with the live clusters placed on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostUse {
    /// The host as the driver sees it.
    pub host: crate::driver::HostInfo,
    /// Live clusters on it.
    pub clusters: u32,
}
