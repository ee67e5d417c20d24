//! What a size means to the vcluster driver: the host namespace's quota and limits, the
//! control plane's resources and the Pod Security Standard of its pods. Configured once for
//! every driver under `[clusters.sizes.<name>.vcluster]` (see `config::sizes`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One size: the host namespace's ResourceQuota and LimitRange, and the control plane's
/// resources.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SizeProfile {
    /// ResourceQuota `hard` of the host namespace (control plane and synced workloads).
    pub quota: BTreeMap<String, String>,
    /// LimitRange default limits per container.
    pub limit_default: BTreeMap<String, String>,
    /// LimitRange default requests per container.
    pub limit_default_request: BTreeMap<String, String>,
    /// Control-plane CPU request.
    pub cpu_request: String,
    /// Control-plane memory request.
    pub memory_request: String,
    /// Control-plane memory limit.
    pub memory_limit: String,
    /// Control-plane CPU limit. NB: `None` renders no limit, but the namespace's LimitRange
    /// then gives the control plane `limit_default.cpu` (a workload's default, 500m for
    /// `small`), and one throttled container runs the API server, controller manager, kine
    /// and the syncer: measured on a real vCluster, that alone added 6.7 s to create-to-Ready
    /// (`cargo bench --bench vcluster_real`). Every built-in size sets one.
    pub cpu_limit: Option<String>,
    /// Size of the control plane's data volume (`None`: no PVC; faster start, state lost if
    /// the pod restarts, which suits throwaway clusters).
    pub storage: Option<String>,
    /// Pod Security Standard enforced on the host namespace (`privileged`, `baseline`,
    /// `restricted`): a synced pod that breaks it is refused by the host's admission.
    #[serde(default = "baseline")]
    pub pod_security: PodSecurityLevel,
}

/// A Pod Security Standard level (`pod-security.kubernetes.io/enforce`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PodSecurityLevel {
    /// Anything goes (only for hosts that trust every CI job).
    Privileged,
    /// No privileged, hostPath, hostNetwork or host ports: what a CI workload rarely needs.
    #[default]
    Baseline,
    /// Baseline plus non-root, no privilege escalation, dropped capabilities.
    Restricted,
}

impl PodSecurityLevel {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Privileged => "privileged",
            Self::Baseline => "baseline",
            Self::Restricted => "restricted",
        }
    }
}

fn baseline() -> PodSecurityLevel {
    PodSecurityLevel::Baseline
}

// === impl SizeProfile ===

impl SizeProfile {
    /// `small`, `medium` and `large`, after the presets in the vCluster research notes (§2.6):
    /// small has no PVC and a tight quota; large is a docs P2 control plane.
    pub fn defaults() -> BTreeMap<String, SizeProfile> {
        [
            ("small", Self::small()),
            ("medium", Self::medium()),
            ("large", Self::large()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// Unit and integration tests, one app, throwaway: no PVC, a tight quota.
    pub fn small() -> Self {
        SizeProfile {
            quota: map(&[
                ("requests.cpu", "2"),
                ("requests.memory", "4Gi"),
                ("limits.cpu", "6"),
                ("limits.memory", "8Gi"),
                ("count/pods", "30"),
                ("services.loadbalancers", "0"),
                ("services.nodeports", "0"),
            ]),
            limit_default: map(&[("cpu", "500m"), ("memory", "512Mi")]),
            limit_default_request: map(&[("cpu", "100m"), ("memory", "128Mi")]),
            cpu_request: "200m".into(),
            memory_request: "256Mi".into(),
            memory_limit: "1Gi".into(),
            cpu_limit: Some("2".into()),
            storage: None,
            pod_security: PodSecurityLevel::Baseline,
        }
    }

    /// End-to-end tests with several services or an operator under test.
    pub fn medium() -> Self {
        SizeProfile {
            quota: map(&[
                ("requests.cpu", "6"),
                ("requests.memory", "12Gi"),
                ("limits.cpu", "14"),
                ("limits.memory", "24Gi"),
                ("count/pods", "100"),
                ("services.loadbalancers", "1"),
            ]),
            limit_default: map(&[("cpu", "1"), ("memory", "1Gi")]),
            limit_default_request: map(&[("cpu", "100m"), ("memory", "128Mi")]),
            cpu_request: "500m".into(),
            memory_request: "1Gi".into(),
            memory_limit: "2Gi".into(),
            cpu_limit: Some("2".into()),
            storage: Some("5Gi".into()),
            pod_security: PodSecurityLevel::Baseline,
        }
    }

    /// Preview environments, heavy API churn, many CRDs (docs P2 control plane).
    pub fn large() -> Self {
        SizeProfile {
            quota: map(&[
                ("requests.cpu", "16"),
                ("requests.memory", "32Gi"),
                ("limits.cpu", "32"),
                ("limits.memory", "64Gi"),
                ("count/pods", "300"),
                ("services.loadbalancers", "2"),
            ]),
            limit_default: map(&[("cpu", "1"), ("memory", "1Gi")]),
            limit_default_request: map(&[("cpu", "100m"), ("memory", "128Mi")]),
            cpu_request: "1".into(),
            memory_request: "2Gi".into(),
            memory_limit: "4Gi".into(),
            cpu_limit: Some("2".into()),
            storage: Some("10Gi".into()),
            pod_security: PodSecurityLevel::Baseline,
        }
    }
}

impl Default for SizeProfile {
    fn default() -> Self {
        Self::small()
    }
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_sizes_are_small_medium_and_large_and_only_small_has_no_volume() {
        let sizes = SizeProfile::defaults();
        assert_eq!(
            sizes.keys().collect::<Vec<_>>(),
            ["large", "medium", "small"]
        );
        assert_eq!(sizes["small"].storage, None);
        assert!(sizes["medium"].storage.is_some());
    }
}
