//! TLS for the API listener (rustls, HTTP/1.1 and HTTP/2 by ALPN), with the certificate
//! reloaded when its files change, and mutual TLS: client certificates verified against
//! `tls.client_ca_file` and mapped to principals by `[[tls.client_rules]]`.
//!
//! NB: the client certificate is optional at the TLS layer (`allow_unauthenticated`): callers
//! without one still authenticate with a bearer token. A certificate that *is* presented must
//! chain to the CA and be within its validity period, or the handshake fails.

use std::{sync::Arc, time::Duration};

use anyhow::Context as _;
use rustls::{
    RootCertStore, ServerConfig,
    crypto::CryptoProvider,
    pki_types::{CertificateDer, pem::PemObject as _},
    server::WebPkiClientVerifier,
};

use crate::config::TlsConfig;

/// A self-signed certificate for `vcm server --dev` on a non-loopback address.
pub mod dev;
mod identity;
mod listener;
mod reload;

pub use identity::{CertNames, ClientCertAuth, ClientRules};
pub use listener::{TlsListener, TlsMakeService, WithConnection};
pub use reload::CertReloader;

/// ALPN protocols offered, preferred first.
const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// Everything the server needs to speak TLS, built from `[tls]`.
#[derive(Debug, Clone)]
pub struct TlsServer {
    /// rustls configuration of every connection.
    pub config: Arc<ServerConfig>,
    /// The certificate in service; its [`CertReloader::run`] task picks up new files.
    pub reloader: Arc<CertReloader>,
    /// Client-certificate rules.
    pub rules: Arc<ClientRules>,
}

// === impl TlsServer ===

impl TlsServer {
    /// Reads the files `config` names; `None` when TLS is not configured. Errors name the key
    /// whose file is wrong.
    pub fn from_config(config: &TlsConfig) -> anyhow::Result<Option<Self>> {
        let (Some(cert_file), Some(key_file)) = (&config.cert_file, &config.key_file) else {
            return Ok(None);
        };
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let reloader = Arc::new(CertReloader::load(
            cert_file,
            key_file,
            provider.clone(),
            Duration::from_secs(config.reload_interval_secs.max(1)),
        )?);
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .context("choosing TLS protocol versions")?;
        let builder = match &config.client_ca_file {
            None => builder.with_no_client_auth(),
            Some(ca_file) => {
                builder.with_client_cert_verifier(client_verifier(ca_file, provider.clone())?)
            }
        };
        let mut server = builder.with_cert_resolver(reloader.clone());
        server.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
        Ok(Some(Self {
            config: Arc::new(server),
            reloader,
            rules: Arc::new(ClientRules::new(config.client_rules.clone())),
        }))
    }

    /// The acceptor for [`TlsListener::new`].
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.config.clone())
    }
}

/// Verifies client certificates against the CA(s) in `ca_file`; clients without one pass.
fn client_verifier(
    ca_file: &std::path::Path,
    provider: Arc<CryptoProvider>,
) -> anyhow::Result<Arc<dyn rustls::server::danger::ClientCertVerifier>> {
    let what = || format!("tls.client_ca_file {}", ca_file.display());
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_file).with_context(what)? {
        roots
            .add(cert.with_context(what)?)
            .with_context(|| format!("{}: not a usable CA certificate", what()))?;
    }
    anyhow::ensure!(
        !roots.is_empty(),
        "{} holds no PEM CERTIFICATE block: put the CA that signs client certificates there",
        what()
    );
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .allow_unauthenticated()
        .build()
        .with_context(what)
}
