//! The `VirtualCluster` resource (`vcm.dev/v1alpha1`) as Rust types; the CRD's schema is
//! generated from them (`vcm crd print`).

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

// NB: size and version cannot change after creation (REST answers 422); here the API server
// refuses the change itself (the CEL transition rules below), so `kubectl apply` fails at once
// instead of the object drifting from its cluster.
/// A temporary cluster asked for by a Kubernetes object: the REST create request, plus the
/// Secret its kubeconfig goes to.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "vcm.dev",
    version = "v1alpha1",
    kind = "VirtualCluster",
    plural = "virtualclusters",
    singular = "virtualcluster",
    shortname = "vc",
    shortname = "vcs",
    namespaced,
    status = "VirtualClusterStatus",
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Size","type":"string","jsonPath":".status.size"}"#,
    printcolumn = r#"{"name":"Version","type":"string","jsonPath":".status.kubernetesVersion"}"#,
    // NB: a string, not a date: kubectl prints a date in the future as `<invalid>`.
    printcolumn = r#"{"name":"Expires","type":"string","jsonPath":".status.expiresAt"}"#,
    printcolumn = r#"{"name":"Endpoint","type":"string","priority":1,"jsonPath":".status.endpoint"}"#,
    printcolumn = r#"{"name":"Cluster","type":"string","priority":1,"jsonPath":".status.clusterId"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "(has(self.size) ? self.size : '') == (has(oldSelf.size) ? oldSelf.size : '')",
        "message": "size cannot be changed after creation; delete this VirtualCluster and create a new one"
    },
    {
        "rule": "(has(self.kubernetesVersion) ? self.kubernetesVersion : '') == (has(oldSelf.kubernetesVersion) ? oldSelf.kubernetesVersion : '')",
        "message": "kubernetesVersion cannot be changed after creation; delete this VirtualCluster and create a new one"
    },
    {
        "rule": "self.kubeconfigSecretName == oldSelf.kubeconfigSecretName",
        "message": "kubeconfigSecretName cannot be changed after creation"
    }
]))]
pub struct VirtualClusterSpec {
    /// Size profile (`small`, `medium`, `large` by default); default from vcm's configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    /// Kubernetes minor version (`"1.36"`); default from vcm's configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes_version: Option<String>,
    /// Lifetime from creation (`"90m"`, `"2h"`, `"7d"`); changing it moves the expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
    /// Deleted after this long without activity (`"30m"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<String>,
    /// Labels of the cluster in vcm (Kubernetes label syntax); changing them updates it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// The Secret in this namespace that receives the kubeconfig (key `kubeconfig`), written
    /// once the cluster is Ready and renewed before its token expires.
    #[schemars(length(min = 1, max = 253))]
    pub kubeconfig_secret_name: String,
}

/// What vcm observed, written by its controller only.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VirtualClusterStatus {
    /// `Pending`, `Provisioning`, `Ready`, `Deleting`, `Failed`, `Expired` (ended by its TTL or
    /// idle timeout), `Deleted` (ended otherwise), or `Refused` (vcm would not create it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// What is going on, in words (the reason when something is refused or ended).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The cluster's id in vcm (`vcm cluster get <id>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
    /// The cluster's Kubernetes API address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Size profile in effect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    /// Kubernetes version in effect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes_version: Option<String>,
    /// When the TTL ends (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// When the token in the kubeconfig Secret expires (RFC 3339); renewed well before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubeconfig_expires_at: Option<String>,
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready` (and `Stalled` when the cluster ended or failed), in the Kubernetes shape.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// A status condition, as `metav1.Condition` (what kstatus, Flux and Argo CD read).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// `Ready` or `Stalled`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// A CamelCase reason (`Provisioning`, `Expired`, `NamespaceNotMapped`…).
    pub reason: String,
    /// The same as the status message.
    pub message: String,
    /// When `status` last changed (RFC 3339).
    pub last_transition_time: String,
    /// The generation it was set for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}
