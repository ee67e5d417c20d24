//! The /v1 wire types, shared by the HTTP handlers, the typed client and the CLI. Requests deny
//! unknown fields (a typo is a 422, never silently ignored); the cluster resource is flat so
//! `jq .phase` works.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::{Cluster, ClusterEvent};

/// `POST /v1/clusters` body. Every field is optional; defaults come from configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateClusterRequest {
    /// DNS-1123 label, at most 40 characters, unique among live clusters. Default: the id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Size profile (`small`, `medium`, `large` by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    /// Kubernetes minor version, e.g. `"1.36"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes_version: Option<String>,
    /// Lifetime, e.g. `"2h"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
    /// Delete after this long without activity, e.g. `"30m"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<String>,
    /// Host cluster to place it on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Place it on a host whose labels include all of these (instead of naming `host`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_selector: Option<BTreeMap<String, String>>,
    /// Labels (Kubernetes label syntax).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
}

/// `PUT /v1/clusters/{id}` body: what it leaves out stays as it is.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateClusterRequest {
    /// New lifetime, counted from creation (moves `expires_at`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
    /// New idle timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<String>,
    /// Replaces the labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// Immutable: present only so the error can say so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    /// Immutable: present only so the error can say so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes_version: Option<String>,
    /// Immutable: present only so the error can say so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Immutable: present only so the error can say so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

impl From<CreateClusterRequest> for crate::service::ClusterSpec {
    fn from(r: CreateClusterRequest) -> Self {
        Self {
            name: r.name,
            size: r.size,
            kubernetes_version: r.kubernetes_version,
            ttl: r.ttl,
            idle_timeout: r.idle_timeout,
            host: r.host,
            host_selector: r.host_selector,
            labels: r.labels,
        }
    }
}

impl From<UpdateClusterRequest> for crate::service::ClusterUpdate {
    fn from(r: UpdateClusterRequest) -> Self {
        let immutable = [
            ("size", r.size.is_some()),
            ("kubernetes_version", r.kubernetes_version.is_some()),
            ("name", r.name.is_some()),
            ("host", r.host.is_some()),
        ]
        .into_iter()
        .filter_map(|(field, given)| given.then_some(field))
        .collect();
        Self {
            ttl: r.ttl,
            idle_timeout: r.idle_timeout,
            labels: r.labels,
            immutable,
        }
    }
}

/// `POST /v1/clusters/{id}/kubeconfig` body.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KubeconfigRequest {
    /// Token lifetime (default 1h); never beyond the cluster's expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
    /// `gateway` (`server` is vcm's `/k8s/<id>`, the credential revocable) or `direct` (the
    /// cluster's own endpoint and a ServiceAccount token); default: the server's
    /// `[gateway] kubeconfig` setting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<KubeconfigKind>,
}

/// Which way a kubeconfig reaches its cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum KubeconfigKind {
    /// Through vcm's gateway, with a revocable gateway credential.
    Gateway,
    /// To the cluster's own endpoint, with a ServiceAccount token.
    Direct,
}

/// The cluster resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ClusterView {
    /// Generated id (`c-…`).
    pub id: String,
    /// Name, unique among live clusters.
    pub name: String,
    /// Creating principal (`token:<id>`, `cert:<name>`, `oidc:<issuer>/<sub>`, `sa:<host>/<ns>/<sa>`).
    pub owner: String,
    /// Owner's team.
    pub team: Option<String>,
    /// `Pending`, `Provisioning`, `Ready`, `Deleting`, `Deleted` or `Failed`.
    pub phase: String,
    /// Latest step or failure cause, for people.
    pub message: String,
    /// Size profile.
    pub size: String,
    /// Kubernetes minor version.
    pub kubernetes_version: String,
    /// Lifetime.
    pub ttl: String,
    /// Idle timeout.
    pub idle_timeout: Option<String>,
    /// Host cluster.
    pub host: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub ready_at: Option<String>,
    /// RFC 3339.
    pub expires_at: String,
    /// RFC 3339.
    pub last_activity_at: String,
    /// RFC 3339.
    pub deleted_at: Option<String>,
    /// API server URL.
    pub endpoint: Option<String>,
    /// Why it is being (or was) deleted.
    #[serde(default)]
    pub delete_reason: Option<String>,
}

impl From<&Cluster> for ClusterView {
    fn from(c: &Cluster) -> Self {
        let ts = |t: &crate::domain::Timestamp| t.to_string();
        Self {
            id: c.id.to_string(),
            name: c.name.to_string(),
            owner: c.owner.clone(),
            team: c.team.clone(),
            phase: c.phase.to_string(),
            message: c.message.clone(),
            size: c.size.clone(),
            kubernetes_version: c.kubernetes_version.clone(),
            ttl: c.ttl.to_string(),
            idle_timeout: c.idle_timeout.map(|t| t.to_string()),
            host: c.host.clone(),
            labels: c.labels.as_map().clone(),
            created_at: ts(&c.created_at),
            ready_at: c.ready_at.as_ref().map(ts),
            expires_at: ts(&c.expires_at),
            last_activity_at: ts(&c.last_activity_at),
            deleted_at: c.deleted_at.as_ref().map(ts),
            endpoint: c.endpoint.clone(),
            delete_reason: c.delete_reason.map(|r| r.as_str().to_owned()),
        }
    }
}

/// A page of clusters.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ClusterList {
    /// The clusters.
    pub items: Vec<ClusterView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// A page of audit records (`GET /v1/audit`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditPage {
    /// The records, newest first unless `order=asc`.
    pub items: Vec<crate::domain::AuditRecord>,
    /// Pass as `cursor` for the next page; absent on the last one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Result of a bulk delete.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeletedClusters {
    /// Ids of the clusters now being deleted.
    pub ids: Vec<String>,
}

/// A lifecycle event.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EventView {
    /// Monotonic id.
    pub id: i64,
    /// RFC 3339.
    pub at: String,
    /// `created`, `phase_changed`, `delete_requested`, `updated`, `kubeconfig_issued`…
    pub kind: String,
    /// Phase before.
    pub from_phase: Option<String>,
    /// Phase after.
    pub to_phase: Option<String>,
    /// Stable reason (`expired`, `idle`, `requested`…).
    pub reason: Option<String>,
    /// Detail.
    pub message: String,
}

impl From<&ClusterEvent> for EventView {
    fn from(e: &ClusterEvent) -> Self {
        Self {
            id: e.id,
            at: e.at.to_string(),
            kind: e.kind.clone(),
            from_phase: e.from_phase.map(|p| p.to_string()),
            to_phase: e.to_phase.map(|p| p.to_string()),
            reason: e.reason.clone(),
            message: e.message.clone(),
        }
    }
}

/// Events of a cluster.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EventList {
    /// Oldest first.
    pub items: Vec<EventView>,
}

/// The error body of every non-2xx answer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// Inside [`ErrorBody`].
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable snake_case code.
    pub code: String,
    /// What happened and what to do.
    pub message: String,
    /// Correlates with server logs.
    pub request_id: String,
}

/// A host cluster with its capacity and use.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HostView {
    /// Name clusters refer to.
    pub name: String,
    /// Labels a `host_selector` matches.
    pub labels: BTreeMap<String, String>,
    /// Whether it answered its last check.
    pub reachable: bool,
    /// Most clusters it takes (absent: no limit).
    pub max_clusters: Option<u32>,
    /// Live clusters on it now.
    pub clusters: u32,
    /// `clusters` as a percentage of `max_clusters` (absent: no limit).
    #[serde(default)]
    pub used_percent: Option<f64>,
    /// Notes, or why it is unreachable.
    pub message: String,
}

impl From<crate::service::HostUse> for HostView {
    fn from(u: crate::service::HostUse) -> Self {
        let h = u.host;
        Self {
            name: h.name,
            labels: h.labels,
            reachable: h.reachable,
            max_clusters: h.max_clusters,
            clusters: u.clusters,
            used_percent: h
                .max_clusters
                .filter(|max| *max > 0)
                .map(|max| (f64::from(u.clusters) * 1000.0 / f64::from(max)).round() / 10.0),
            message: h.message,
        }
    }
}

/// Every host.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HostList {
    /// The hosts.
    pub items: Vec<HostView>,
}

/// Fast JSON of the cluster resource, written straight from the stored record.
mod json;
/// `/v1/tokens` bodies.
mod tokens;

pub use self::tokens::{
    CreateTokenRequest, CreatedToken, GatewayCredentialList, GatewayCredentialView,
    RevokedCredentials, TokenList, TokenView, WhoAmI,
};

pub use self::json::{ClusterJson, ClusterListJson};

#[cfg(test)]
mod tests;
