//! `[clusters]`: the defaults and bounds of new clusters, and the size profiles they may name.

use serde::{Deserialize, Serialize};

use super::{ConfigError, SizeConfig};

/// Defaults and bounds for clusters. Durations are written like the API's: `90s`, `30m`, `2h`,
/// `7d`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClustersConfig {
    /// Size profiles a request may name, with what each means to each driver (empty: the
    /// built-ins `small`, `medium`, `large`). See [`super::sizes`].
    pub sizes: std::collections::BTreeMap<String, SizeConfig>,
    /// Size used when a request names none.
    pub default_size: String,
    /// TTL used when a request names none.
    pub default_ttl: String,
    /// Longest TTL a request may ask for.
    pub max_ttl: String,
    /// Idle timeout used when a request names none (empty: none).
    pub default_idle_timeout: String,
    /// Longest kubeconfig token a request may ask for.
    pub max_kubeconfig_ttl: String,
    /// How long Deleted and Failed records stay readable before they are purged.
    pub retention: String,
}

impl Default for ClustersConfig {
    fn default() -> Self {
        Self {
            sizes: std::collections::BTreeMap::new(),
            default_size: "small".into(),
            default_ttl: "2h".into(),
            max_ttl: "7d".into(),
            default_idle_timeout: String::new(),
            max_kubeconfig_ttl: "24h".into(),
            retention: "7d".into(),
        }
    }
}

// === impl ClustersConfig ===

impl ClustersConfig {
    /// Every duration-valued key parses (`default_idle_timeout` may also be empty: none).
    pub(super) fn validate_durations(&self) -> Result<(), ConfigError> {
        let keys = [
            ("default_ttl", &self.default_ttl),
            ("max_ttl", &self.max_ttl),
            ("default_idle_timeout", &self.default_idle_timeout),
            ("max_kubeconfig_ttl", &self.max_kubeconfig_ttl),
            ("retention", &self.retention),
        ];
        for (key, value) in keys {
            if key == "default_idle_timeout" && value.is_empty() {
                continue;
            }
            crate::domain::Ttl::parse(key, value).map_err(|e| ConfigError::InvalidDuration {
                key,
                reason: e.reason,
            })?;
        }
        Ok(())
    }
}
