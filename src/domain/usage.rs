//! What a cluster uses: on its host (processes, or a host namespace) and inside (objects).
//! `GET /v1/clusters/{id}/usage` and `vcm cluster usage` show it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Timestamp;

/// A cluster's use, read now.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ClusterUsage {
    /// The cluster's id.
    pub cluster: String,
    /// When it was read.
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    /// The driver that made it.
    pub driver: String,
    /// Its host.
    pub host: String,
    /// What it takes on its host.
    #[serde(flatten)]
    pub on_host: HostUsage,
    /// Objects in its API, by resource (`namespaces`, `pods`, `deployments.apps`, … the kinds
    /// CI workloads make); `null` when they could not be read (see `notes`).
    pub objects: Option<BTreeMap<String, u64>>,
    /// What could not be read, and why.
    pub notes: Vec<String>,
}

/// What a cluster takes on its host: its processes (local driver) or its host namespace
/// (vcluster driver).
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HostUsage {
    /// Its own processes (local driver; the etcd every local cluster shares is not counted).
    pub processes: Vec<ProcessUsage>,
    /// CPU time of those processes since they started, seconds.
    pub cpu_seconds: Option<f64>,
    /// Their resident memory, bytes.
    pub memory_bytes: Option<u64>,
    /// Its namespace on the host cluster (vcluster driver).
    pub namespace: Option<NamespaceUsage>,
    /// What could not be read on the host, and why.
    #[serde(skip)]
    pub notes: Vec<String>,
}

/// One process of a cluster.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProcessUsage {
    /// What it is (`kube-apiserver`, `kube-scheduler`, …).
    pub name: String,
    /// Its process id.
    pub pid: u32,
    /// CPU time since it started, seconds.
    pub cpu_seconds: f64,
    /// Resident memory, bytes.
    pub memory_bytes: u64,
}

/// A vCluster's host namespace.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NamespaceUsage {
    /// The namespace.
    pub name: String,
    /// Pods in it (the control plane's and the synced workloads').
    pub pods: u64,
    /// Of which Running.
    pub running_pods: u64,
    /// CPU its pods request, millicores.
    pub cpu_requests_millicores: u64,
    /// Memory its pods request, bytes.
    pub memory_requests_bytes: u64,
    /// CPU its pods use now, millicores, where the host serves the metrics API.
    pub cpu_used_millicores: Option<u64>,
    /// Memory its pods use now, bytes, where the host serves the metrics API.
    pub memory_used_bytes: Option<u64>,
    /// Its ResourceQuotas: each resource's hard limit and use.
    pub quotas: Vec<QuotaUse>,
}

/// One resource of a ResourceQuota.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct QuotaUse {
    /// The ResourceQuota's name.
    pub quota: String,
    /// The resource (`requests.cpu`, `pods`, …).
    pub resource: String,
    /// Its limit, as Kubernetes writes quantities.
    pub hard: String,
    /// Its use.
    pub used: String,
}

/// A CPU quantity (`250m`, `1`, `0.5`) in millicores; `None` when it does not parse.
pub fn millicores(q: &str) -> Option<u64> {
    let q = q.trim();
    if let Some(m) = q.strip_suffix('m') {
        return m.parse::<u64>().ok();
    }
    let cores: f64 = q.parse().ok()?;
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    (cores >= 0.0).then(|| (cores * 1000.0).round() as u64)
}

/// A memory quantity (`128Mi`, `1G`, `1e3`, `512`) in bytes; `None` when it does not parse.
pub fn bytes(q: &str) -> Option<u64> {
    let q = q.trim();
    const SUFFIXES: [(&str, f64); 13] = [
        ("Ki", 1024.0),
        ("Mi", 1_048_576.0),
        ("Gi", 1_073_741_824.0),
        ("Ti", 1_099_511_627_776.0),
        ("Pi", 1_125_899_906_842_624.0),
        ("Ei", 1_152_921_504_606_846_976.0),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
        ("E", 1e18),
        ("m", 1e-3),
    ];
    let (number, factor) = SUFFIXES
        .iter()
        .find_map(|(s, f)| q.strip_suffix(s).map(|n| (n, *f)))
        .unwrap_or((q, 1.0));
    let value: f64 = number.parse().ok()?;
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    (value >= 0.0).then(|| (value * factor).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_quantities_in_millicores() {
        for (q, want) in [("250m", 250), ("1", 1000), ("0.5", 500), ("2.25", 2250)] {
            assert_eq!(millicores(q), Some(want), "{q}");
        }
        assert_eq!(millicores("lots"), None);
    }

    #[test]
    fn memory_quantities_in_bytes() {
        for (q, want) in [
            ("128Mi", 134_217_728),
            ("1Gi", 1_073_741_824),
            ("1G", 1_000_000_000),
            ("512", 512),
            ("1e3", 1000),
            ("1500k", 1_500_000),
        ] {
            assert_eq!(bytes(q), Some(want), "{q}");
        }
        assert_eq!(bytes("-1Mi"), None);
        assert_eq!(bytes("many"), None);
    }
}
