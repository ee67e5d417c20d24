//! The cluster gateway: `/k8s/<cluster-id>/…` on vcm's own listener forwards to that cluster's
//! Kubernetes API, streaming both ways (watches, logs, exec, attach, port-forward).
//!
//! A request presents a gateway credential (`vcmgw_…`, what gateway kubeconfigs carry) or any
//! principal vcm accepts that may take the cluster's credentials. vcm talks to the cluster with
//! its own credential for it (the CI ServiceAccount's token, minted and renewed here, never
//! sent to the client). Each request is activity for the idle timeout and a log record. A
//! stream is re-checked twice a second: revoking its credential or the principal's token, or
//! deleting the cluster, ends it. Errors of the gateway itself are Kubernetes `Status` objects;
//! errors of the cluster pass through unchanged.

mod access;
mod audit;
mod limits;
mod proxy;
mod request_info;
mod status;
mod stream;
mod upstream;

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::Mutex,
    time::{Duration, Instant},
};

use axum::{Router, routing::any};
use serde::{Deserialize, Serialize};

pub use self::status::status_response;
use crate::{domain::ClusterId, http::AppState};

/// How often an open stream re-checks its credential and its cluster: revocation and deletion
/// end streams within about this long (plus one check).
pub const RECHECK_INTERVAL: Duration = Duration::from_millis(400);

/// Activity from the gateway is written at most this often per cluster.
const ACTIVITY_EVERY: Duration = Duration::from_secs(5);

/// What kind of kubeconfig `POST /v1/clusters/{id}/kubeconfig` hands out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KubeconfigMode {
    /// `gateway` when clients reach vcm over TLS (its listener speaks TLS, or `public_url` is
    /// `https://`), else `direct`: kubectl sends credentials only over TLS.
    #[default]
    Auto,
    /// `server: <public_url>/k8s/<id>` with a revocable gateway credential.
    Gateway,
    /// The cluster's own endpoint with a ServiceAccount token minted in it (cannot be revoked
    /// before it expires; the client must reach the endpoint).
    Direct,
}

/// `[gateway]` in the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewayConfig {
    /// The URL clients reach vcm at (`https://vcm.example.com`); gateway kubeconfigs point at
    /// `<public_url>/k8s/<id>`. Unset: the scheme and `Host` of the request that asks.
    pub public_url: Option<String>,
    /// `auto` (default: `gateway` when clients reach vcm over TLS), `gateway` or `direct`.
    pub kubeconfig: KubeconfigMode,
    /// PEM file of the CA written into gateway kubeconfigs. Unset: `[tls] cert_file` (a
    /// private or self-signed certificate then verifies itself); none on plain HTTP.
    pub ca_file: Option<PathBuf>,
    /// Requests a principal may send through the gateway per minute (all clusters).
    pub requests_per_minute: u32,
    /// Requests a principal may send at once above its per-minute rate.
    pub burst: u32,
    /// Requests (not streams) one principal may have in flight at once.
    pub max_in_flight_per_principal: u32,
    /// Open streams (watches, `logs -f`, exec, attach, port-forward) per cluster.
    pub max_streams_per_cluster: u32,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            public_url: None,
            kubeconfig: KubeconfigMode::Auto,
            ca_file: None,
            // NB: kubectl's discovery alone is ~40 requests; helm and informers are bursty.
            requests_per_minute: 6000,
            burst: 600,
            max_in_flight_per_principal: 64,
            max_streams_per_cluster: 256,
        }
    }
}

/// The gateway's state: configuration, upstream connections, limits, activity.
pub struct Gateway {
    config: GatewayConfig,
    /// `https` when vcm's listener speaks TLS.
    scheme: &'static str,
    /// `[gateway] ca_file`, else `[tls] cert_file`.
    ca_file: Option<PathBuf>,
    upstreams: upstream::Upstreams,
    limits: limits::Limits,
    checks: access::CheckCache,
    activity: Mutex<HashMap<ClusterId, Instant>>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

// === impl Gateway ===

impl Gateway {
    /// A gateway for a listener with (`tls`) or without TLS; `Err` names a bad setting.
    pub fn try_new(
        config: GatewayConfig,
        tls_cert_file: Option<PathBuf>,
        tls: bool,
    ) -> anyhow::Result<Self> {
        if let Some(url) = &config.public_url {
            let parsed: axum::http::Uri = url
                .parse()
                .map_err(|e| anyhow::anyhow!("public_url {url:?} is not a URL: {e}"))?;
            anyhow::ensure!(
                matches!(parsed.scheme_str(), Some("https" | "http"))
                    && parsed.authority().is_some()
                    && parsed.query().is_none(),
                "public_url {url:?} must be http(s)://host[:port][/path], as clients reach vcm"
            );
        }
        let https = tls
            || config
                .public_url
                .as_deref()
                .is_some_and(|u| u.starts_with("https://"));
        anyhow::ensure!(
            https || config.kubeconfig != KubeconfigMode::Gateway,
            "kubeconfig = \"gateway\" needs clients to reach vcm over TLS (kubectl sends \
             credentials only over TLS): configure [tls], or a https:// public_url for a \
             TLS-terminating proxy, or set kubeconfig = \"direct\""
        );
        Ok(Self::new(config, tls_cert_file, tls))
    }

    /// A gateway for a listener with (`tls`) or without TLS.
    pub fn new(config: GatewayConfig, tls_cert_file: Option<PathBuf>, tls: bool) -> Self {
        Self {
            ca_file: config.ca_file.clone().or(tls_cert_file),
            scheme: if tls { "https" } else { "http" },
            limits: limits::Limits::new(&config),
            config,
            upstreams: upstream::Upstreams::default(),
            checks: access::CheckCache::default(),
            activity: Mutex::default(),
        }
    }

    /// What kind of kubeconfig to hand out: `Gateway` or `Direct` (never `Auto`).
    pub fn mode(&self) -> KubeconfigMode {
        match self.config.kubeconfig {
            KubeconfigMode::Auto if self.https() => KubeconfigMode::Gateway,
            KubeconfigMode::Auto => KubeconfigMode::Direct,
            mode => mode,
        }
    }

    /// Whether clients reach vcm over TLS.
    pub fn https(&self) -> bool {
        match &self.config.public_url {
            Some(url) => url.starts_with("https://"),
            None => self.scheme == "https",
        }
    }

    /// Where clients reach vcm (no trailing `/`), for a request that reached it as `host` (its
    /// `Host` or `:authority`), unless `public_url` says otherwise.
    pub fn base_url(&self, host: Option<&str>) -> Result<String, String> {
        match (&self.config.public_url, host) {
            (Some(url), _) => Ok(url.trim_end_matches('/').to_owned()),
            (None, Some(host)) => Ok(format!("{}://{host}", self.scheme)),
            (None, None) => {
                Err("the request has no Host header, and [gateway] public_url is not set".into())
            }
        }
    }

    /// The server URL of a gateway kubeconfig for cluster `id` (see [`Gateway::base_url`]).
    pub fn server_url(&self, host: Option<&str>, id: &ClusterId) -> Result<String, String> {
        Ok(format!("{}/k8s/{id}", self.base_url(host)?))
    }

    /// The CA certificate(s) a gateway kubeconfig carries (PEM), if vcm's certificate is one to
    /// pin; empty on plain HTTP.
    pub fn ca_pem(&self) -> anyhow::Result<String> {
        use anyhow::Context as _;
        match &self.ca_file {
            None => Ok(String::new()),
            Some(path) => std::fs::read_to_string(path)
                .with_context(|| format!("reading the gateway CA {}", path.display())),
        }
    }

    /// Note activity on cluster `id`: at most one write per [`ACTIVITY_EVERY`], in the
    /// background.
    fn activity(&self, state: &AppState, id: &ClusterId) {
        let now = Instant::now();
        {
            let mut last = self.activity.lock().unwrap_or_else(|e| e.into_inner());
            if last
                .get(id)
                .is_some_and(|at| now.duration_since(*at) < ACTIVITY_EVERY)
            {
                return;
            }
            last.insert(id.clone(), now);
            if last.len() > 10_000 {
                last.retain(|_, at| now.duration_since(*at) < ACTIVITY_EVERY);
            }
        }
        let (service, id) = (state.service.clone(), id.clone());
        tokio::spawn(async move { service.gateway_activity(&id).await });
    }
}

/// The gateway's routes: every method on `/k8s/{id}` and below.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/k8s/{id}", any(proxy::handle))
        .route("/k8s/{id}/", any(proxy::handle))
        .route("/k8s/{id}/{*rest}", any(proxy::handle))
}

#[cfg(test)]
mod tests;
