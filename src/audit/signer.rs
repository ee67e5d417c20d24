//! The Ed25519 key that signs the audit log: the last record of every batch, and retention's
//! checkpoints. Kept as a PKCS#8 PEM file (`openssl pkey -in <file> -pubout` reads it).

use std::path::Path;

use anyhow::Context as _;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

const PEM_BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
const PEM_END: &str = "-----END PRIVATE KEY-----";

/// Signs with the audit key.
pub struct Signer {
    key: Ed25519KeyPair,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("public_key", &self.public_key())
            .finish_non_exhaustive()
    }
}

// === impl Signer ===

impl Signer {
    /// A key that lives as long as the process: for tests and servers built in code.
    pub fn ephemeral() -> anyhow::Result<Self> {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .map_err(|_| anyhow::anyhow!("generating an Ed25519 key"))?;
        Self::from_pkcs8(pkcs8.as_ref())
    }

    /// The key in `path`, generated there (mode 0600) when the file does not exist.
    pub fn load_or_create(path: &Path) -> anyhow::Result<Self> {
        if !path.exists() {
            let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
                .map_err(|_| anyhow::anyhow!("generating an Ed25519 key"))?;
            crate::fsutil::write_private(path, pem(pkcs8.as_ref()).as_bytes())
                .with_context(|| format!("writing the audit signing key {}", path.display()))?;
            tracing::info!(path = %path.display(), "generated the audit signing key");
        }
        let text = crate::fsutil::read_private(path)
            .with_context(|| format!("reading the audit signing key {}", path.display()))?;
        let der = unpem(&text).with_context(|| {
            format!(
                "{} is not a PEM \"PRIVATE KEY\": give an Ed25519 key in PKCS#8 \
                 (openssl genpkey -algorithm ed25519), or remove the file to have one generated",
                path.display()
            )
        })?;
        Self::from_pkcs8(&der).with_context(|| format!("{} is not an Ed25519 key", path.display()))
    }

    fn from_pkcs8(der: &[u8]) -> anyhow::Result<Self> {
        let key = Ed25519KeyPair::from_pkcs8(der)
            .map_err(|e| anyhow::anyhow!("reading the Ed25519 key: {e}"))?;
        Ok(Self { key })
    }

    /// The signature of `message`, base64.
    pub fn sign(&self, message: &[u8]) -> String {
        B64.encode(self.key.sign(message).as_ref())
    }

    /// The public key, base64 of its 32 bytes.
    pub fn public_key(&self) -> String {
        B64.encode(self.key.public_key().as_ref())
    }
}

/// Whether `signature` (base64) is `public_key`'s (base64) over `message`.
pub fn verify(public_key: &str, message: &[u8], signature: &str) -> bool {
    let (Ok(key), Ok(sig)) = (B64.decode(public_key.trim()), B64.decode(signature)) else {
        return false;
    };
    UnparsedPublicKey::new(&ED25519, key)
        .verify(message, &sig)
        .is_ok()
}

fn pem(der: &[u8]) -> String {
    let b64 = B64.encode(der);
    let mut out = format!("{PEM_BEGIN}\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(PEM_END);
    out.push('\n');
    out
}

fn unpem(text: &str) -> Option<Vec<u8>> {
    let start = text.find(PEM_BEGIN)? + PEM_BEGIN.len();
    let end = start + text[start..].find(PEM_END)?;
    let b64: String = text[start..end].split_whitespace().collect();
    B64.decode(b64).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_generated_key_file_is_reused_and_its_signatures_verify() {
        // Arrange
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.key");

        // Act
        let first = Signer::load_or_create(&path).unwrap();
        let again = Signer::load_or_create(&path).unwrap();
        let sig = first.sign(b"hello");

        // Assert
        assert_eq!(first.public_key(), again.public_key());
        assert!(verify(&again.public_key(), b"hello", &sig));
        assert!(!verify(&again.public_key(), b"hullo", &sig));
        let other = Signer::ephemeral().unwrap();
        assert!(!verify(&other.public_key(), b"hello", &sig));
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the key is private: {mode:o}");
    }

    #[test]
    fn a_file_that_is_not_a_key_is_refused_with_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.key");
        crate::fsutil::write_private(&path, b"not a key").unwrap();
        let err = format!("{:#}", Signer::load_or_create(&path).unwrap_err());
        assert!(err.contains("openssl genpkey -algorithm ed25519"), "{err}");
    }
}
