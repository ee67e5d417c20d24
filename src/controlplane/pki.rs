//! A cluster's own certificate authority, serving certificate, client certificates and
//! service-account signing key, written as PEM files into the cluster's directory.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

/// The files of a cluster's PKI. One CA signs both the serving certificate and client
/// certificates: the API server trusts it as its client CA, and clients trust it as the server's.
#[derive(Debug, Clone)]
pub struct Pki {
    dir: PathBuf,
}

/// A client certificate and key, PEM-encoded.
#[derive(Clone)]
pub struct ClientCert {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The private key, PEM (PKCS#8).
    pub key_pem: String,
}

impl std::fmt::Debug for ClientCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCert")
            .field("key_pem", &"<redacted>")
            .finish_non_exhaustive()
    }
}

// === impl Pki ===

impl Pki {
    /// Generate a fresh CA, a serving certificate for `localhost` and 127.0.0.1 (plus
    /// `extra_sans`), an admin client certificate in `system:masters`, and a service-account key
    /// pair, all into `dir`. Keys are written with mode 0600.
    pub fn generate(dir: &Path, extra_sans: &[String]) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let pki = Self {
            dir: dir.to_path_buf(),
        };

        let issuer = new_ca("vcm-cluster-ca", &pki.ca_cert(), &pki.ca_key())?;

        let serving_key = KeyPair::generate().context("generating the serving key")?;
        let mut serving = CertificateParams::default();
        serving.distinguished_name = rcgen::DistinguishedName::new();
        serving
            .distinguished_name
            .push(DnType::CommonName, "kube-apiserver");
        serving.subject_alt_names = vec![
            SanType::DnsName("localhost".try_into().context("SAN localhost")?),
            SanType::DnsName("kubernetes.default.svc".try_into().context("SAN")?),
            SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        ];
        for san in extra_sans {
            serving.subject_alt_names.push(match san.parse::<IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName(
                    san.clone()
                        .try_into()
                        .with_context(|| format!("SAN {san}"))?,
                ),
            });
        }
        serving.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        serving.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let serving_cert = serving
            .signed_by(&serving_key, &issuer)
            .context("signing the serving cert")?;
        write_public(&pki.serving_cert(), &serving_cert.pem())?;
        crate::fsutil::write_private(&pki.serving_key(), serving_key.serialize_pem().as_bytes())?;

        let admin = Self::sign_client(&issuer, "vcm-admin", &["system:masters"])?;
        write_public(&pki.admin_cert(), &admin.cert_pem)?;
        crate::fsutil::write_private(&pki.admin_key(), admin.key_pem.as_bytes())?;

        let sa_key = KeyPair::generate().context("generating the service-account key")?;
        crate::fsutil::write_private(&pki.sa_key(), sa_key.serialize_pem().as_bytes())?;
        write_public(&pki.sa_pub(), &sa_key.public_key_pem())?;
        Ok(pki)
    }

    /// The PKI already in `dir` (after a restart), if its files are all there.
    pub fn existing(dir: &Path) -> Option<Self> {
        let pki = Self {
            dir: dir.to_path_buf(),
        };
        let all = [
            pki.ca_cert(),
            pki.ca_key(),
            pki.serving_cert(),
            pki.admin_cert(),
            pki.sa_key(),
        ];
        all.iter().all(|p| p.is_file()).then_some(pki)
    }

    /// Sign a client certificate for user `cn` in groups `orgs` with this cluster's CA.
    pub fn client_cert(&self, cn: &str, orgs: &[&str]) -> anyhow::Result<ClientCert> {
        Self::sign_client(&load_ca(&self.ca_cert(), &self.ca_key())?, cn, orgs)
    }

    pub(super) fn sign_client(
        issuer: &Issuer<'_, KeyPair>,
        cn: &str,
        orgs: &[&str],
    ) -> anyhow::Result<ClientCert> {
        let key = KeyPair::generate().context("generating a client key")?;
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, cn);
        for org in orgs {
            params
                .distinguished_name
                .push(DnType::OrganizationName, *org);
        }
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params
            .signed_by(&key, issuer)
            .context("signing a client cert")?;
        Ok(ClientCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// The CA certificate (trusted by clients and used as the client CA).
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }
    /// The CA key.
    pub fn ca_key(&self) -> PathBuf {
        self.dir.join("ca.key")
    }
    /// The API server's serving certificate.
    pub fn serving_cert(&self) -> PathBuf {
        self.dir.join("apiserver.crt")
    }
    /// The API server's serving key.
    pub fn serving_key(&self) -> PathBuf {
        self.dir.join("apiserver.key")
    }
    /// The admin (`system:masters`) client certificate.
    pub fn admin_cert(&self) -> PathBuf {
        self.dir.join("admin.crt")
    }
    /// The admin client key.
    pub fn admin_key(&self) -> PathBuf {
        self.dir.join("admin.key")
    }
    /// The service-account signing key (private).
    pub fn sa_key(&self) -> PathBuf {
        self.dir.join("sa.key")
    }
    /// The service-account verification key (public).
    pub fn sa_pub(&self) -> PathBuf {
        self.dir.join("sa.pub")
    }
    /// The admin client certificate and key, read back from disk.
    pub fn admin(&self) -> anyhow::Result<ClientCert> {
        Ok(ClientCert {
            cert_pem: read(&self.admin_cert())?,
            key_pem: read(&self.admin_key())?,
        })
    }
    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> anyhow::Result<String> {
        read(&self.ca_cert())
    }
}

/// A fresh self-signed CA named `cn`, its certificate written to `cert` and its key (0600) to
/// `key`; returns it ready to sign.
pub(super) fn new_ca(
    cn: &str,
    cert: &Path,
    key: &Path,
) -> anyhow::Result<Issuer<'static, KeyPair>> {
    let ca_key = KeyPair::generate().context("generating the CA key")?;
    let mut ca = CertificateParams::default();
    ca.distinguished_name = rcgen::DistinguishedName::new();
    ca.distinguished_name.push(DnType::CommonName, cn);
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca.self_signed(&ca_key).context("self-signing the CA")?;
    write_public(cert, &ca_cert.pem())?;
    crate::fsutil::write_private(key, ca_key.serialize_pem().as_bytes())?;
    Ok(Issuer::new(ca, ca_key))
}

/// The CA whose certificate and key are in `cert` and `key`, ready to sign.
pub(super) fn load_ca(cert: &Path, key: &Path) -> anyhow::Result<Issuer<'static, KeyPair>> {
    let ca_pem = read(cert)?;
    let key = KeyPair::from_pem(&read(key)?).context("parsing the CA key")?;
    Issuer::from_ca_cert_pem(&ca_pem, key).context("loading the CA")
}

/// A certificate or public key: readable by anyone.
pub(super) fn write_public(path: &Path, contents: &str) -> anyhow::Result<()> {
    std::fs::write(path, contents).with_context(|| format!("writing {}", path.display()))
}

pub(super) fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_pki_has_every_file_and_private_keys_are_owner_only() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().expect("tempdir");
        let pki = Pki::generate(dir.path(), &["vcm.example".into()]).expect("generate");
        for key in [
            pki.ca_key(),
            pki.serving_key(),
            pki.admin_key(),
            pki.sa_key(),
        ] {
            let mode = key.metadata().expect("key exists").permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{} must be 0600", key.display());
        }
        assert!(Pki::existing(dir.path()).is_some());
        let client = pki.client_cert("alice", &["devs"]).expect("client cert");
        assert!(client.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(
            !format!("{client:?}").contains("PRIVATE"),
            "Debug must redact the key"
        );
    }
}
