//! The server certificate, reloaded when its files change.
//!
//! NB: rustls asks a [`ResolvesServerCert`] for the certificate on every handshake, so
//! swapping the one it holds changes what new connections get, while connections already
//! established keep the session they negotiated. The files are polled (content, not mtime:
//! a rotation that keeps the mtime, or a `cp -p`, is still seen); a pair that does not load
//! (half-written, garbage, key of another certificate) is logged once and the previous pair
//! stays in service.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex, PoisonError, RwLock},
    time::Duration,
};

use rustls::{
    crypto::CryptoProvider,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject as _},
    server::{ClientHello, ResolvesServerCert},
    sign::CertifiedKey,
};
use sha2::{Digest as _, Sha256};
use tokio_util::sync::CancellationToken;

/// Serves the latest good certificate/key pair read from two PEM files.
#[derive(Debug)]
pub struct CertReloader {
    cert_file: PathBuf,
    key_file: PathBuf,
    provider: Arc<CryptoProvider>,
    interval: Duration,
    current: RwLock<Arc<CertifiedKey>>,
    /// What the files held at the last look (a digest of their bytes, or of the read error),
    /// so an unchanged pair is neither parsed nor reported again.
    last_seen: Mutex<[u8; 32]>,
}

// === impl CertReloader ===

impl CertReloader {
    /// Loads the pair now (an error names the files and what is wrong with them) and keeps
    /// looking at them every `interval` once [`CertReloader::run`] runs.
    pub fn load(
        cert_file: &Path,
        key_file: &Path,
        provider: Arc<CryptoProvider>,
        interval: Duration,
    ) -> anyhow::Result<Self> {
        let (digest, read) = read_pair(cert_file, key_file);
        let key = read
            .and_then(|(cert, key)| certified_key(&cert, &key, &provider))
            .map_err(|why| anyhow::anyhow!("tls.cert_file / tls.key_file: {why}"))?;
        Ok(Self {
            cert_file: cert_file.to_path_buf(),
            key_file: key_file.to_path_buf(),
            provider,
            interval,
            current: RwLock::new(Arc::new(key)),
            last_seen: Mutex::new(digest),
        })
    }

    /// Looks at the files every interval until `stop` is cancelled; never fails (a bad pair is
    /// logged and skipped), so it returns only when stopped.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) -> anyhow::Result<()> {
        loop {
            tokio::select! {
                () = stop.cancelled() => return Ok(()),
                () = tokio::time::sleep(self.interval) => {}
            }
            let this = self.clone();
            // NB: file reads and key parsing are blocking work; keep them off the workers
            // that run connections.
            let _ = tokio::task::spawn_blocking(move || this.reload_if_changed()).await;
        }
    }

    /// Reads the files; when they changed since the last look, serve them if they load, or
    /// log why not and keep serving the previous pair. True when a new pair was taken.
    pub fn reload_if_changed(&self) -> bool {
        let (digest, read) = read_pair(&self.cert_file, &self.key_file);
        {
            let mut last = self
                .last_seen
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if *last == digest {
                return false;
            }
            *last = digest;
        }
        match read.and_then(|(cert, key)| certified_key(&cert, &key, &self.provider)) {
            Ok(key) => {
                *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(key);
                tracing::info!(
                    cert_file = %self.cert_file.display(),
                    "loaded a new TLS certificate; new connections get it"
                );
                true
            }
            Err(why) => {
                tracing::error!(
                    cert_file = %self.cert_file.display(),
                    key_file = %self.key_file.display(),
                    error = %why,
                    "the TLS certificate files changed but do not load; still serving the \
                     previous certificate (fix or replace both files)"
                );
                false
            }
        }
    }

    /// The pair new handshakes get.
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl ResolvesServerCert for CertReloader {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

type Pair = (Vec<u8>, Vec<u8>);

/// Both files' bytes, with a digest of what was read (or of why it could not be).
fn read_pair(cert_file: &Path, key_file: &Path) -> ([u8; 32], Result<Pair, String>) {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
    };
    let pair = read(cert_file).and_then(|cert| Ok((cert, read(key_file)?)));
    let mut hasher = Sha256::new();
    match &pair {
        Ok((cert, key)) => {
            hasher.update((cert.len() as u64).to_be_bytes());
            hasher.update(cert);
            hasher.update(key);
        }
        Err(why) => hasher.update(why.as_bytes()),
    }
    (hasher.finalize().into(), pair)
}

/// A chain and its matching key from PEM bytes; the error says which part is wrong.
fn certified_key(
    cert: &[u8],
    key: &[u8],
    provider: &CryptoProvider,
) -> Result<CertifiedKey, String> {
    let chain = CertificateDer::pem_slice_iter(cert)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("the certificate file is not PEM: {e}"))?;
    if chain.is_empty() {
        return Err("the certificate file holds no PEM CERTIFICATE block".into());
    }
    let key = PrivateKeyDer::from_pem_slice(key)
        .map_err(|e| format!("the key file holds no PEM private key: {e}"))?;
    CertifiedKey::from_der(chain, key, provider).map_err(|e| {
        format!("the key does not fit the certificate, or the certificate does not parse: {e}")
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A self-signed pair for `name`, PEM.
    fn mk_pair(name: &str) -> (String, String) {
        let c = rcgen::generate_simple_self_signed(vec![name.to_owned()]).unwrap();
        (c.cert.pem(), c.signing_key.serialize_pem())
    }

    fn mk_reloader(dir: &Path, pair: &(String, String)) -> CertReloader {
        std::fs::write(dir.join("c.pem"), &pair.0).unwrap();
        std::fs::write(dir.join("k.pem"), &pair.1).unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        CertReloader::load(
            &dir.join("c.pem"),
            &dir.join("k.pem"),
            provider,
            Duration::from_secs(1),
        )
        .unwrap()
    }

    fn leaf(r: &CertReloader) -> Vec<u8> {
        r.current().cert[0].to_vec()
    }

    #[test]
    fn a_changed_good_pair_is_taken_and_an_unchanged_one_is_not_reloaded() {
        // Arrange
        let dir = tempfile::tempdir().unwrap();
        let reloader = mk_reloader(dir.path(), &mk_pair("one"));
        let before = leaf(&reloader);
        let two = mk_pair("two");

        // Act
        let unchanged = reloader.reload_if_changed();
        std::fs::write(dir.path().join("c.pem"), &two.0).unwrap();
        std::fs::write(dir.path().join("k.pem"), &two.1).unwrap();
        let changed = reloader.reload_if_changed();

        // Assert
        assert!(!unchanged);
        assert!(changed);
        assert_ne!(leaf(&reloader), before);
    }

    #[test]
    fn garbage_a_missing_file_or_a_foreign_key_keep_the_previous_pair() {
        // Arrange
        let dir = tempfile::tempdir().unwrap();
        let one = mk_pair("one");
        let reloader = mk_reloader(dir.path(), &one);
        let before = leaf(&reloader);
        let other = mk_pair("other");
        let cases: [(&str, &str, &str); 3] = [
            ("garbage\n", &one.1, "a certificate file that is not PEM"),
            (&one.0, &other.1, "the key of another certificate"),
            (&one.0, "", "an empty key file"),
        ];
        for (cert, key, why) in cases {
            // Act
            std::fs::write(dir.path().join("c.pem"), cert).unwrap();
            std::fs::write(dir.path().join("k.pem"), key).unwrap();
            let taken = reloader.reload_if_changed();

            // Assert
            assert!(!taken, "{why}");
            assert_eq!(leaf(&reloader), before, "{why}");
        }
        std::fs::remove_file(dir.path().join("c.pem")).unwrap();
        assert!(!reloader.reload_if_changed(), "a missing file");
        assert_eq!(leaf(&reloader), before, "a missing file");
    }

    #[test]
    fn a_pair_that_does_not_load_at_start_is_an_error_naming_the_keys() {
        // Arrange
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("c.pem"), "garbage").unwrap();
        std::fs::write(dir.path().join("k.pem"), "garbage").unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());

        // Act
        let err = CertReloader::load(
            &dir.path().join("c.pem"),
            &dir.path().join("k.pem"),
            provider,
            Duration::from_secs(1),
        )
        .unwrap_err();

        // Assert
        let msg = format!("{err:#}");
        assert!(
            msg.contains("tls.cert_file") && msg.contains("no PEM CERTIFICATE"),
            "{msg}"
        );
    }
}
