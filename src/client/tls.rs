//! TLS options of the client beyond the system's trust store: an extra CA to trust (a private
//! CA, or the self-signed certificate of a dev server) and a client certificate for mutual TLS.

use std::path::{Path, PathBuf};

use super::{ClientError, Result};

/// Environment variable naming a PEM file of CA certificates to trust.
pub const ENV_CACERT: &str = "VCM_CACERT";
/// Environment variable naming the PEM client certificate to present.
pub const ENV_CLIENT_CERT: &str = "VCM_CLIENT_CERT";
/// Environment variable naming the PEM private key of the client certificate.
pub const ENV_CLIENT_KEY: &str = "VCM_CLIENT_KEY";

/// TLS settings of a [`super::Client`]; the default trusts the system's CAs only and presents
/// no certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// PEM CA certificate(s) to trust besides the system's (`VCM_CACERT`).
    pub ca_cert: Option<PathBuf>,
    /// PEM client certificate (chain) to present for mutual TLS (`VCM_CLIENT_CERT`).
    pub client_cert: Option<PathBuf>,
    /// Private key of `client_cert`, PEM (`VCM_CLIENT_KEY`).
    pub client_key: Option<PathBuf>,
}

// === impl TlsOptions ===

impl TlsOptions {
    /// The options the `VCM_CACERT`, `VCM_CLIENT_CERT` and `VCM_CLIENT_KEY` variables give
    /// (an empty variable counts as unset).
    pub fn from_env() -> Self {
        let path = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        Self {
            ca_cert: path(ENV_CACERT),
            client_cert: path(ENV_CLIENT_CERT),
            client_key: path(ENV_CLIENT_KEY),
        }
    }

    /// Will the client present a certificate?
    pub fn has_client_cert(&self) -> bool {
        self.client_cert.is_some()
    }

    /// `builder` trusting the extra CA and presenting the client certificate; errors name the
    /// file and the variable to fix.
    pub(super) fn apply(
        &self,
        mut builder: reqwest::ClientBuilder,
    ) -> Result<reqwest::ClientBuilder> {
        if let Some(path) = &self.ca_cert {
            let pem = read(path, ENV_CACERT)?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                ClientError::Other(format!(
                    "{ENV_CACERT} {}: not PEM certificates: {e}",
                    path.display()
                ))
            })?;
            if certs.is_empty() {
                return Err(ClientError::Other(format!(
                    "{ENV_CACERT} {} holds no PEM CERTIFICATE block: point it at the CA \
                     (or the dev server's certificate) in PEM form",
                    path.display()
                )));
            }
            // NB: merged with the system's roots, so a public certificate still works.
            builder = builder.tls_certs_merge(certs);
        }
        match (&self.client_cert, &self.client_key) {
            (None, None) => {}
            (Some(cert), Some(key)) => {
                let mut pem = read(cert, ENV_CLIENT_CERT)?;
                pem.push(b'\n');
                pem.extend(read(key, ENV_CLIENT_KEY)?);
                let identity = reqwest::Identity::from_pem(&pem).map_err(|e| {
                    ClientError::Other(format!(
                        "{ENV_CLIENT_CERT} {} / {ENV_CLIENT_KEY} {}: not a PEM certificate and \
                         its private key: {e}",
                        cert.display(),
                        key.display()
                    ))
                })?;
                builder = builder.identity(identity);
            }
            (Some(_), None) => {
                return Err(ClientError::Other(format!(
                    "{ENV_CLIENT_CERT} is set without {ENV_CLIENT_KEY}: set both (PEM files) \
                     or neither"
                )));
            }
            (None, Some(_)) => {
                return Err(ClientError::Other(format!(
                    "{ENV_CLIENT_KEY} is set without {ENV_CLIENT_CERT}: set both (PEM files) \
                     or neither"
                )));
            }
        }
        Ok(builder)
    }
}

/// When `err` is a TLS failure, what went wrong and the setting that fixes it: the server's
/// certificate not trusted (`VCM_CACERT`), or the client certificate refused
/// (`VCM_CLIENT_CERT`).
pub(super) fn failure_hint(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut next = Some(err);
    while let Some(mut e) = next {
        // NB: rustls errors reach reqwest inside (nested) io::Errors, whose `source()` skips
        // the error they wrap.
        while let Some(inner) = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            e = inner;
        }
        if let Some(rustls::Error::InvalidCertificate(why)) = e.downcast_ref::<rustls::Error>() {
            return Some(format!(
                "the server's certificate is not trusted ({why:?}): trust its CA with \
                 {ENV_CACERT} or --cacert (a dev server logs where its certificate is)"
            ));
        }
        let alert = match e.downcast_ref::<rustls::Error>() {
            Some(rustls::Error::AlertReceived(alert)) => Some(*alert),
            // NB: a fatal alert read after the handshake (TLS 1.3 reports a refused client
            // certificate that way) comes as rustls's own text, not as the typed error.
            _ => CLIENT_CERT_ALERTS
                .into_iter()
                .find(|a| e.to_string() == rustls::Error::AlertReceived(*a).to_string()),
        };
        if let Some(alert) = alert.filter(|a| CLIENT_CERT_ALERTS.contains(a)) {
            return Some(format!(
                "the server refused the client certificate ({alert:?}): check \
                 {ENV_CLIENT_CERT} (expired, not yet valid, or not signed by the CA the server \
                 trusts for clients)"
            ));
        }
        next = e.source();
    }
    None
}

/// Alerts a server sends when it refuses a client certificate.
const CLIENT_CERT_ALERTS: [rustls::AlertDescription; 7] = [
    rustls::AlertDescription::BadCertificate,
    rustls::AlertDescription::UnsupportedCertificate,
    rustls::AlertDescription::CertificateRevoked,
    rustls::AlertDescription::CertificateExpired,
    rustls::AlertDescription::CertificateUnknown,
    rustls::AlertDescription::UnknownCA,
    rustls::AlertDescription::CertificateRequired,
];

fn read(path: &Path, var: &str) -> Result<Vec<u8>> {
    std::fs::read(path)
        .map_err(|e| ClientError::Other(format!("{var} {}: cannot read it: {e}", path.display())))
}
