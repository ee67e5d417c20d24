//! `vcm server --dev` on a non-loopback address: plain HTTP would put the dev token on the
//! network in the clear, so the server makes itself a self-signed certificate instead, keeps
//! it in the data directory (the key mode 0600) and logs where it is so clients can trust it.
//! A restarted dev server reuses it while it still names the address, so clients keep
//! trusting it.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    path::Path,
};

use anyhow::Context as _;
use x509_parser::{certificate::X509Certificate, extensions::GeneralName, prelude::FromDer as _};

use crate::config::Config;

/// The generated certificate, under the data directory.
pub const DEV_CERT_FILE: &str = "tls/dev-cert.pem";
/// Its private key, under the data directory (mode 0600).
pub const DEV_KEY_FILE: &str = "tls/dev-key.pem";
/// Subject common name of the generated certificate.
const DEV_CN: &str = "vcm dev server";

/// When `config` is a dev server without `[tls]` that would listen on the non-loopback
/// `addr`, points `config.tls` at a self-signed certificate for `addr` (made now unless one is
/// there already). Any other configuration is left as it is.
pub fn ensure_certificate(config: &mut Config, addr: SocketAddr) -> anyhow::Result<()> {
    if !config.dev || config.tls.enabled() || addr.ip().is_loopback() {
        return Ok(());
    }
    let cert_file = config.data_dir.join(DEV_CERT_FILE);
    let key_file = config.data_dir.join(DEV_KEY_FILE);
    let names = subject_alt_names(addr.ip());
    if !still_fits(&cert_file, &key_file, &names) {
        let dir = cert_file.parent().unwrap_or(&config.data_dir);
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut params =
            rcgen::CertificateParams::new(names).context("making the dev certificate's names")?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, DEV_CN);
        let key = rcgen::KeyPair::generate().context("generating the dev certificate's key")?;
        let cert = params
            .self_signed(&key)
            .context("signing the dev certificate")?;
        crate::fsutil::write_private(&key_file, key.serialize_pem().as_bytes())?;
        std::fs::write(&cert_file, cert.pem())
            .with_context(|| format!("writing {}", cert_file.display()))?;
    }
    tracing::info!(
        cert_file = %cert_file.display(),
        "development mode on a non-loopback address: serving HTTPS with a self-signed \
         certificate; clients trust it with VCM_CACERT={} (or curl --cacert)",
        cert_file.display()
    );
    config.tls.cert_file = Some(cert_file);
    config.tls.key_file = Some(key_file);
    Ok(())
}

/// The names the certificate must carry: loopback, this host's name, and the listen address
/// unless it is the wildcard.
fn subject_alt_names(ip: IpAddr) -> Vec<String> {
    let mut names = vec![
        "localhost".to_owned(),
        Ipv4Addr::LOCALHOST.to_string(),
        Ipv6Addr::LOCALHOST.to_string(),
    ];
    if !ip.is_unspecified() {
        names.push(ip.to_string());
    }
    if let Ok(host) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        let host = host.trim();
        if !host.is_empty() && host != "localhost" {
            names.push(host.to_owned());
        }
    }
    names
}

/// Is there a saved pair whose certificate names every IP address in `names`?
fn still_fits(cert_file: &Path, key_file: &Path, names: &[String]) -> bool {
    let Ok(pem) = std::fs::read(cert_file) else {
        return false;
    };
    if !key_file.exists() {
        return false;
    }
    let Ok((_, pem)) = x509_parser::pem::parse_x509_pem(&pem) else {
        return false;
    };
    let Ok((_, cert)) = X509Certificate::from_der(&pem.contents) else {
        return false;
    };
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return false;
    };
    let has: Vec<IpAddr> = san
        .value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::IPAddress(b) => match b.len() {
                4 => <[u8; 4]>::try_from(*b).ok().map(IpAddr::from),
                16 => <[u8; 16]>::try_from(*b).ok().map(IpAddr::from),
                _ => None,
            },
            _ => None,
        })
        .collect();
    cert.validity().is_valid()
        && names
            .iter()
            .filter_map(|n| n.parse::<IpAddr>().ok())
            .all(|ip| has.contains(&ip))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn mk_dev_config(dir: &Path) -> Config {
        Config {
            data_dir: dir.to_path_buf(),
            dev: true,
            ..Config::default()
        }
    }

    #[test]
    fn a_dev_server_on_a_non_loopback_address_gets_a_private_key_and_a_certificate_naming_it() {
        // Arrange
        let dir = tempfile::tempdir().unwrap();
        let mut config = mk_dev_config(dir.path());
        let addr: SocketAddr = "192.0.2.7:8443".parse().unwrap();

        // Act
        ensure_certificate(&mut config, addr).unwrap();

        // Assert
        use std::os::unix::fs::PermissionsExt as _;
        let key_file = config.tls.key_file.clone().unwrap();
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let cert_file = config.tls.cert_file.clone().unwrap();
        assert!(still_fits(&cert_file, &key_file, &["192.0.2.7".into()]));
        assert!(!still_fits(&cert_file, &key_file, &["192.0.2.8".into()]));
    }

    #[test]
    fn a_restarted_dev_server_reuses_its_certificate_so_clients_keep_trusting_it() {
        // Arrange
        let dir = tempfile::tempdir().unwrap();
        let addr: SocketAddr = "0.0.0.0:0".parse().unwrap();
        let mut first = mk_dev_config(dir.path());
        ensure_certificate(&mut first, addr).unwrap();
        let before = std::fs::read(first.tls.cert_file.as_ref().unwrap()).unwrap();

        // Act
        let mut second = mk_dev_config(dir.path());
        ensure_certificate(&mut second, addr).unwrap();

        // Assert
        let after = std::fs::read(second.tls.cert_file.as_ref().unwrap()).unwrap();
        assert_eq!(before, after);
    }

    #[test]
    fn loopback_configured_tls_and_production_servers_are_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            (
                mk_dev_config(dir.path()),
                "127.0.0.1:0",
                "loopback stays plain HTTP",
            ),
            (
                Config {
                    dev: false,
                    ..mk_dev_config(dir.path())
                },
                "0.0.0.0:0",
                "not dev: the plain-HTTP rule decides",
            ),
        ];
        for (mut config, addr, why) in cases {
            // Act
            ensure_certificate(&mut config, addr.parse().unwrap()).unwrap();

            // Assert
            assert!(!config.tls.enabled(), "{why}");
        }
    }
}
