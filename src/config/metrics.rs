//! `[metrics]`: whether `GET /metrics` is served, who may read it, and an optional listen
//! address of its own (see `docs/MONITORING.md`).

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// Who may read `/metrics` on the API's address.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricsAuth {
    /// A credential of an `admin` or `viewer` principal (a `viewer` token is the usual
    /// Prometheus scrape credential).
    #[default]
    Token,
    /// Anyone who reaches the address.
    None,
}

/// The `[metrics]` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Count and serve metrics at all. `false`: no `/metrics`, and requests are not counted.
    pub enabled: bool,
    /// Who may read `/metrics` on the API's address.
    pub auth: MetricsAuth,
    /// Also serve `/metrics` (and nothing else), without authentication and over plain HTTP,
    /// on this address: for a Prometheus on the same host or network that should need no
    /// credential. Bind it to a loopback or private address.
    pub listen: Option<SocketAddr>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            auth: MetricsAuth::Token,
            listen: None,
        }
    }
}
