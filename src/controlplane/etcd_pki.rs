//! The certificate authority of a shared etcd: etcd's serving (and peer) certificate for
//! 127.0.0.1, and client certificates for whoever may talk to it.
//!
//! NB: its own CA, apart from every cluster's: a cluster's CA signs certificates that its users
//! hold (admin kubeconfigs), and none of them may reach etcd. Only etcd's CA key signs etcd
//! clients, and it never leaves the directory (0700, keys 0600).

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use rcgen::{
    CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair, KeyUsagePurpose, SanType,
};

use super::pki::{ClientCert, Pki, load_ca, new_ca, read, write_public};

/// The CN of the client certificate vcm itself uses (health, key counts, deleting a prefix).
const VCM_CLIENT: &str = "vcm";

/// The files of an etcd's PKI in one directory.
#[derive(Debug, Clone)]
pub struct EtcdPki {
    dir: PathBuf,
}

// === impl EtcdPki ===

impl EtcdPki {
    /// The PKI in `dir`, with what is missing generated: the CA, etcd's certificate and vcm's
    /// client certificate. Files already there are kept (clusters hold certificates from this
    /// CA); a new CA replaces every certificate it signed. `dir` is made 0700, keys 0600.
    pub fn ensure(dir: &Path) -> anyhow::Result<Self> {
        create_private_dir(dir)?;
        let pki = Self {
            dir: dir.to_path_buf(),
        };
        let fresh_ca = !(pki.ca_cert().is_file() && pki.ca_key().is_file());
        let issuer = if fresh_ca {
            new_ca("vcm-etcd-ca", &pki.ca_cert(), &pki.ca_key())?
        } else {
            load_ca(&pki.ca_cert(), &pki.ca_key())?
        };
        if fresh_ca || !pki.server_cert().is_file() || !pki.server_key().is_file() {
            let key = KeyPair::generate().context("generating etcd's key")?;
            let mut params = CertificateParams::default();
            params.distinguished_name = rcgen::DistinguishedName::new();
            params.distinguished_name.push(DnType::CommonName, "etcd");
            params.subject_alt_names = vec![
                SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
                SanType::DnsName("localhost".try_into().context("SAN localhost")?),
            ];
            params.key_usages = vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyEncipherment,
            ];
            // NB: client auth too: etcd presents this certificate as a client to its peers
            // and from its JSON gateway to its own gRPC server.
            params.extended_key_usages = vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ];
            let cert = params
                .signed_by(&key, &issuer)
                .context("signing etcd's certificate")?;
            write_public(&pki.server_cert(), &cert.pem())?;
            crate::fsutil::write_private(&pki.server_key(), key.serialize_pem().as_bytes())?;
        }
        if fresh_ca || !pki.vcm_cert().is_file() || !pki.vcm_key().is_file() {
            let client = Pki::sign_client(&issuer, VCM_CLIENT, &[])?;
            write_public(&pki.vcm_cert(), &client.cert_pem)?;
            crate::fsutil::write_private(&pki.vcm_key(), client.key_pem.as_bytes())?;
        }
        Ok(pki)
    }

    /// Sign a client certificate named `cn` (a cluster's API server).
    pub fn client_cert(&self, cn: &str) -> anyhow::Result<ClientCert> {
        Pki::sign_client(&load_ca(&self.ca_cert(), &self.ca_key())?, cn, &[])
    }

    /// An HTTPS client that trusts only this CA and presents vcm's client certificate.
    pub fn http_client(&self, timeout: Duration) -> anyhow::Result<reqwest::Client> {
        let ca = reqwest::Certificate::from_pem(self.ca_pem()?.as_bytes())
            .context("parsing the etcd CA")?;
        let identity = format!("{}{}", read(&self.vcm_cert())?, read(&self.vcm_key())?);
        reqwest::Client::builder()
            .tls_certs_only([ca])
            .identity(
                reqwest::Identity::from_pem(identity.as_bytes())
                    .context("loading vcm's etcd client certificate")?,
            )
            .timeout(timeout)
            .build()
            .context("building the etcd client")
    }

    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> anyhow::Result<String> {
        read(&self.ca_cert())
    }
    /// The CA certificate: etcd's `--trusted-ca-file`, and what clients trust.
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }
    /// The CA key.
    pub fn ca_key(&self) -> PathBuf {
        self.dir.join("ca.key")
    }
    /// etcd's certificate (client and peer listeners).
    pub fn server_cert(&self) -> PathBuf {
        self.dir.join("etcd.crt")
    }
    /// etcd's key.
    pub fn server_key(&self) -> PathBuf {
        self.dir.join("etcd.key")
    }
    /// vcm's own client certificate.
    pub fn vcm_cert(&self) -> PathBuf {
        self.dir.join("vcm.crt")
    }
    /// vcm's own client key.
    pub fn vcm_key(&self) -> PathBuf {
        self.dir.join("vcm.key")
    }
    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// `dir` and its parents, `dir` itself mode 0700 even if it existed with a wider mode.
pub(super) fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("making {} private", dir.display()))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn etcd_pki_is_private_and_kept_across_calls() {
        // Arrange
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("pki");

        // Act
        let pki = EtcdPki::ensure(&dir).expect("generate");
        let ca = pki.ca_pem().expect("ca");
        let again = EtcdPki::ensure(&dir).expect("reuse");

        // Assert
        let mode = |p: &Path| p.metadata().expect("exists").permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700, "the directory is the owner's only");
        for key in [pki.ca_key(), pki.server_key(), pki.vcm_key()] {
            assert_eq!(mode(&key), 0o600, "{} must be 0600", key.display());
        }
        assert_eq!(again.ca_pem().expect("ca"), ca, "an existing CA is kept");
        let client = pki.client_cert("vcm-cluster-x").expect("client cert");
        assert!(client.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        pki.http_client(Duration::from_secs(1)).expect("client");
    }
}
