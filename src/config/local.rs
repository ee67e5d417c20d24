//! `[local]`: how the local driver uses this machine.
//!
//! ```toml
//! [local]
//! max_clusters = 20            # default: derived from memory (see `LocalConfig::capacity`)
//! cluster_memory_mib = 512     # what one cluster is counted as when deriving the default
//! reserved_memory_mib = 2048   # kept for vcm, etcd and the rest of the machine
//! etcd_unsafe_no_fsync = false # true: faster creates, but a machine crash can lose every cluster
//! ```

use serde::{Deserialize, Serialize};

/// The `[local]` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LocalConfig {
    /// Clusters this machine holds at once (not Deleted or Failed); a create past it is a 503.
    /// Unset: derived from the machine's memory, see [`LocalConfig::capacity`].
    pub max_clusters: Option<u32>,
    /// Memory one cluster is counted as (MiB) when the capacity is derived: its kube-apiserver,
    /// controller-manager, scheduler and kwok (measured: about 480 MiB with one node; see
    /// docs/PERFORMANCE.md).
    pub cluster_memory_mib: u64,
    /// Memory (MiB) left out of the derivation for vcm, the shared etcd and everything else.
    pub reserved_memory_mib: u64,
    /// Run the shared etcd with `--unsafe-no-fsync`: creates get faster, but a machine crash
    /// (not a vcm crash) can corrupt every local cluster's data.
    pub etcd_unsafe_no_fsync: bool,
}

impl Default for LocalConfig {
    fn default() -> Self {
        Self {
            max_clusters: None,
            cluster_memory_mib: 512,
            reserved_memory_mib: 2048,
            etcd_unsafe_no_fsync: false,
        }
    }
}

// === impl LocalConfig ===

impl LocalConfig {
    /// The number of clusters this machine holds: `max_clusters` if set, else what fits in
    /// `total_memory_mib` after the reserve, at least one.
    pub fn capacity(&self, total_memory_mib: u64) -> u32 {
        if let Some(max) = self.max_clusters {
            return max;
        }
        let usable = total_memory_mib.saturating_sub(self.reserved_memory_mib);
        let fits = usable / self.cluster_memory_mib.max(1);
        u32::try_from(fits).unwrap_or(u32::MAX).max(1)
    }

    /// Checks values that would make the capacity meaningless.
    pub fn validate(&self) -> Result<(), String> {
        if self.cluster_memory_mib < 64 {
            return Err(format!(
                "local.cluster_memory_mib = {}: at least 64 (one cluster's processes take \
                 hundreds of MiB; see docs/PERFORMANCE.md)",
                self.cluster_memory_mib
            ));
        }
        if self.max_clusters == Some(0) {
            return Err(
                "local.max_clusters = 0 would refuse every create; leave it unset to \
                        derive it from memory"
                    .into(),
            );
        }
        Ok(())
    }
}

/// Total memory of this machine in MiB (`MemTotal` in /proc/meminfo), if readable.
pub fn total_memory_mib() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn capacity_is_what_fits_after_the_reserve_or_the_configured_maximum() {
        let c = LocalConfig::default();
        assert_eq!(c.capacity(24 * 1024), (24 * 1024 - 2048) / 512);
        assert_eq!(
            c.capacity(1024),
            1,
            "a small machine still holds one cluster"
        );
        let fixed = LocalConfig {
            max_clusters: Some(3),
            ..LocalConfig::default()
        };
        assert_eq!(fixed.capacity(24 * 1024), 3);
    }

    #[test]
    fn nonsense_values_are_refused_with_the_key() {
        let zero = LocalConfig {
            max_clusters: Some(0),
            ..LocalConfig::default()
        };
        assert!(zero.validate().unwrap_err().contains("local.max_clusters"));
        let tiny = LocalConfig {
            cluster_memory_mib: 1,
            ..LocalConfig::default()
        };
        assert!(tiny.validate().unwrap_err().contains("cluster_memory_mib"));
        assert!(total_memory_mib().is_some_and(|m| m > 0));
    }
}
