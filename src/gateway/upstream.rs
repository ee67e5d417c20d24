//! The gateway's side of each cluster: its API server's address, vcm's own credential there (the
//! CI ServiceAccount's token, minted through the driver and renewed before it expires), and
//! HTTP clients that trust only the cluster's CA.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::Context as _;
use axum::{body::Body, http::HeaderValue};
use hyper_rustls::{FixedServerNameResolver, HttpsConnector};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject as _};

use crate::{
    controlplane::{KubeconfigUser, Tunnel, TunnelConnector},
    domain::{Cluster, ClusterId},
    error::{Error, Result},
    service::ClusterService,
};

/// Lifetime asked for vcm's upstream token; it is renewed after three quarters of it.
const TOKEN_SECS: u64 = 3600;
/// An upstream nobody used for this long is dropped (with its pooled connections).
const UNUSED: Duration = Duration::from_secs(600);

/// The pooled HTTP client of one upstream: TCP to the cluster's address, or through the
/// driver's tunnel when vcm cannot reach that address itself.
pub(super) enum HttpClient {
    /// TCP to the address in the base URL.
    Address(Client<HttpsConnector<HttpConnector>, Body>),
    /// Each connection through a tunnel (a port-forward through the host's API server).
    Tunnel(Client<HttpsConnector<TunnelConnector>, Body>),
}

impl HttpClient {
    /// Send `req`, reusing a pooled connection when one is free.
    pub(super) fn request(
        &self,
        req: axum::http::Request<Body>,
    ) -> hyper_util::client::legacy::ResponseFuture {
        match self {
            Self::Address(c) => c.request(req),
            Self::Tunnel(c) => c.request(req),
        }
    }
}

/// One cluster's API server, as the gateway reaches it.
pub(super) struct Upstream {
    /// `https://host:port` (and any path prefix), no trailing `/`.
    pub base: String,
    /// `Bearer <token>` of vcm's credential in the cluster (marked sensitive).
    pub authorization: HeaderValue,
    /// HTTP/1.1 with pooled keep-alive connections, for requests and upgrades alike.
    ///
    /// NB: not HTTP/2: measured through the gateway (`bench/run.sh gateway`), one multiplexed
    /// HTTP/2 connection gave 0.70x the direct throughput and 1.8x the LIST latency, pooled
    /// HTTP/1.1 connections 0.90x and 1.0x. Upgrades need HTTP/1.1 anyway.
    pub client: HttpClient,
    /// The endpoint it was made for: a moved cluster gets a new upstream.
    endpoint: Option<String>,
    renew_at: Instant,
    used_at: Mutex<Instant>,
}

/// Upstreams by cluster.
#[derive(Default)]
pub(super) struct Upstreams {
    by_cluster: Mutex<HashMap<ClusterId, Arc<Upstream>>>,
    /// One mint at a time: a burst of first requests to a cluster mints once.
    minting: tokio::sync::Mutex<()>,
}

// === impl Upstreams ===

impl Upstreams {
    /// The upstream of `cluster`, minting vcm's credential for it when there is none or it is
    /// due for renewal.
    pub(super) async fn get(
        &self,
        service: &ClusterService,
        cluster: &Cluster,
    ) -> Result<Arc<Upstream>> {
        if let Some(up) = self.current(cluster) {
            return Ok(up);
        }
        let _minting = self.minting.lock().await;
        if let Some(up) = self.current(cluster) {
            return Ok(up);
        }
        let up = Arc::new(mint(service, cluster).await?);
        let mut map = self.by_cluster.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, u| {
            u.used_at
                .lock()
                .map(|t| t.elapsed() < UNUSED)
                .unwrap_or(false)
        });
        map.insert(cluster.id.clone(), up.clone());
        Ok(up)
    }

    /// Drop the upstream of cluster `id` (its credential was refused): the next request mints.
    pub(super) fn forget(&self, id: &ClusterId) {
        let mut map = self.by_cluster.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(id);
    }

    fn current(&self, cluster: &Cluster) -> Option<Arc<Upstream>> {
        let map = self.by_cluster.lock().unwrap_or_else(|e| e.into_inner());
        let up = map.get(&cluster.id)?;
        if up.renew_at <= Instant::now() || up.endpoint != cluster.endpoint {
            return None;
        }
        *up.used_at.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        Some(up.clone())
    }
}

async fn mint(service: &ClusterService, cluster: &Cluster) -> Result<Upstream> {
    let minted_at = Instant::now();
    let kubeconfig = service.driver().ci_kubeconfig(cluster, TOKEN_SECS).await?;
    let KubeconfigUser::Token(token) = &kubeconfig.user else {
        return Err(Error::Other(anyhow::anyhow!(
            "the driver minted a CI kubeconfig without a token"
        )));
    };
    let mut authorization = HeaderValue::from_str(&format!("Bearer {token}"))
        .context("the minted token is not a header value")
        .map_err(Error::Other)?;
    authorization.set_sensitive(true);
    let tls = tls_config(&kubeconfig.ca_pem).map_err(Error::Other)?;
    let client = match service.driver().tunnel(cluster) {
        Some(tunnel) => tunnel_client(tls, &tunnel).map_err(Error::Other)?,
        None => client(tls),
    };
    Ok(Upstream {
        base: kubeconfig.server.trim_end_matches('/').to_owned(),
        authorization,
        client,
        endpoint: cluster.endpoint.clone(),
        renew_at: minted_at + Duration::from_secs(TOKEN_SECS * 3 / 4),
        used_at: Mutex::new(minted_at),
    })
}

/// TLS that trusts only the cluster's CA.
fn tls_config(ca_pem: &str) -> anyhow::Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots
            .add(cert.context("parsing the cluster CA")?)
            .context("adding the cluster CA")?;
    }
    anyhow::ensure!(!roots.is_empty(), "the cluster has no CA certificate");
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("choosing TLS versions")?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

fn client(tls: rustls::ClientConfig) -> HttpClient {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(Duration::from_secs(5)));
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .enable_http1()
        .wrap_connector(http);
    HttpClient::Address(pool().build(connector))
}

/// The same over `tunnel`: the base URL's host is not dialled, TLS checks the tunnel's name.
fn tunnel_client(tls: rustls::ClientConfig, tunnel: &Tunnel) -> anyhow::Result<HttpClient> {
    let name = ServerName::try_from(tunnel.tls_server_name().to_owned())
        .with_context(|| format!("TLS server name {:?}", tunnel.tls_server_name()))?;
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .with_server_name_resolver(FixedServerNameResolver::new(name))
        .enable_http1()
        .wrap_connector(tunnel.connector());
    Ok(HttpClient::Tunnel(pool().build(connector)))
}

fn pool() -> hyper_util::client::legacy::Builder {
    let mut builder = Client::builder(TokioExecutor::new());
    builder.pool_idle_timeout(Duration::from_secs(90));
    builder
}
