//! What a size means to the local driver. (The vcluster driver's part is
//! [`super::vcluster::SizeProfile`].) Both come from one place in the configuration,
//! `[clusters.sizes.<name>]`, resolved by `config::sizes`.

use serde::{Deserialize, Serialize};

/// The sizes offered when the configuration names none.
pub const BUILTIN_SIZES: [&str; 3] = ["small", "medium", "large"];

/// The local driver's part of a size profile: how much of this machine one cluster's control
/// plane may take. Applied to its kube-apiserver as flags and Go runtime limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalSize {
    /// `--max-requests-inflight`: read requests served at once before the API server answers 429.
    pub max_requests_inflight: u32,
    /// `--max-mutating-requests-inflight`: the same for writes.
    pub max_mutating_requests_inflight: u32,
    /// Soft memory limit of the API server in MiB (`GOMEMLIMIT`): past it, the Go runtime
    /// collects garbage harder instead of growing, so many small clusters share one machine.
    pub memory_limit_mib: u64,
    /// Fake nodes (kwok) the cluster gets, `kwok-node-0` up: workloads are scheduled over them.
    #[serde(default = "one")]
    pub nodes: u32,
    /// Each node's CPU capacity (a Kubernetes quantity: `4`, `500m`).
    #[serde(default = "node_cpu")]
    pub node_cpu: String,
    /// Each node's memory capacity (a Kubernetes quantity: `16Gi`).
    #[serde(default = "node_memory")]
    pub node_memory: String,
    /// Pods each node takes.
    #[serde(default = "node_pods")]
    pub node_pods: u32,
}

fn one() -> u32 {
    1
}

fn node_cpu() -> String {
    "4".into()
}

fn node_memory() -> String {
    "16Gi".into()
}

fn node_pods() -> u32 {
    110
}

// === impl LocalSize ===

impl LocalSize {
    /// The built-in profile for `name` (`small`, `medium`, `large`), if it is one.
    pub fn builtin(name: &str) -> Option<Self> {
        // NB: kube-apiserver's own defaults are 400 / 200 in flight; small CI clusters get a
        // quarter of that so one runaway test cannot starve its neighbours on a shared machine.
        // NB: nodes like one CI runner's worth each (4 CPU, 16 GiB, 110 pods); a size says how
        // many, so a chart's anti-affinity or a spread constraint has somewhere to go.
        let (reads, writes, mib, nodes) = match name {
            "small" => (100, 50, 512, 1),
            "medium" => (400, 200, 1024, 3),
            "large" => (800, 400, 2048, 10),
            _ => return None,
        };
        Some(Self {
            max_requests_inflight: reads,
            max_mutating_requests_inflight: writes,
            memory_limit_mib: mib,
            nodes,
            node_cpu: node_cpu(),
            node_memory: node_memory(),
            node_pods: node_pods(),
        })
    }

    /// The API server flags this size sets.
    pub fn apiserver_args(&self) -> Vec<String> {
        vec![
            format!("--max-requests-inflight={}", self.max_requests_inflight),
            format!(
                "--max-mutating-requests-inflight={}",
                self.max_mutating_requests_inflight
            ),
        ]
    }

    /// The names of this size's nodes.
    pub fn node_names(&self) -> Vec<String> {
        (0..self.nodes).map(|i| format!("kwok-node-{i}")).collect()
    }

    /// The environment this size sets for the API server.
    pub fn apiserver_env(&self) -> Vec<(String, String)> {
        vec![("GOMEMLIMIT".into(), format!("{}MiB", self.memory_limit_mib))]
    }
}

impl Default for LocalSize {
    fn default() -> Self {
        Self::builtin("small").expect("small is a built-in size")
    }
}
