//! Webhook signatures: HMAC-SHA256 over the raw body with a shared secret, as hex after
//! `sha256=`, compared in constant time, before anything reads the body.
//!
//! GitHub sends it in `X-Hub-Signature-256` (and the legacy SHA-1 in `X-Hub-Signature`, never
//! trusted alone); Bitbucket Cloud in `X-Hub-Signature` (same name as GitHub's legacy header,
//! but SHA-256).

use hmac::{Hmac, KeyInit as _, Mac as _};
use sha2::Sha256;

use super::Provider;

/// GitHub's signature header.
pub const GITHUB_HEADER: &str = "x-hub-signature-256";
/// GitHub's legacy SHA-1 header, and Bitbucket's SHA-256 one.
pub const HUB_HEADER: &str = "x-hub-signature";

/// Why a delivery's signature does not pass, for the 401's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// `sha256=<hex>` of `body` under `secret`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Whether `headers` carry a valid signature of `body` from `provider` under one of `secrets`.
pub fn verify(
    provider: Provider,
    headers: &axum::http::HeaderMap,
    body: &[u8],
    secrets: &[Vec<u8>],
) -> Result<(), Refused> {
    let header = match provider {
        Provider::Github => GITHUB_HEADER,
        Provider::Bitbucket => HUB_HEADER,
    };
    let Some(value) = headers.get(header) else {
        let legacy = provider == Provider::Github && headers.contains_key(HUB_HEADER);
        return Err(Refused(if legacy {
            "only the legacy SHA-1 signature (X-Hub-Signature) was sent; vcm checks \
             X-Hub-Signature-256, which GitHub sends when the webhook has a secret"
                .into()
        } else {
            format!(
                "no {} header: give the webhook a secret (the one in vcm's [webhooks.{provider}] secrets)",
                canonical(header)
            )
        }));
    };
    let value = value
        .to_str()
        .map_err(|_| Refused(format!("{} is not ASCII", canonical(header))))?;
    let Some(hex_digest) = value.strip_prefix("sha256=") else {
        let algorithm = value.split('=').next().unwrap_or_default();
        return Err(Refused(format!(
            "{} uses {algorithm:?}; only sha256= (HMAC-SHA256) is accepted",
            canonical(header)
        )));
    };
    let tag = hex::decode(hex_digest).map_err(|_| {
        Refused(format!(
            "{} is not sha256= followed by hex",
            canonical(header)
        ))
    })?;
    let passes = secrets.iter().any(|secret| {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
        mac.update(body);
        // NB: constant time (`verify_slice`), never `==` on the digests.
        mac.verify_slice(&tag).is_ok()
    });
    if passes {
        Ok(())
    } else {
        Err(Refused(format!(
            "{} does not match the body under any configured secret (a wrong secret, or a \
             body changed on the way)",
            canonical(header)
        )))
    }
}

fn canonical(header: &str) -> &'static str {
    if header == GITHUB_HEADER {
        "X-Hub-Signature-256"
    } else {
        "X-Hub-Signature"
    }
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderMap, HeaderValue};

    use super::*;

    fn with(name: &'static str, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_str(value).expect("a header value"));
        h
    }

    #[test]
    fn githubs_documented_test_vector_signs_and_verifies() {
        // From docs.github.com, "Validating webhook deliveries": testing the validation.
        let secret = b"It's a Secret to Everybody";
        let expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(sign(secret, b"Hello, World!"), expected);
        let headers = with(GITHUB_HEADER, expected);
        assert_eq!(
            verify(
                Provider::Github,
                &headers,
                b"Hello, World!",
                &[secret.to_vec()]
            ),
            Ok(())
        );
    }

    #[test]
    fn any_configured_secret_passes_so_secrets_can_be_rotated() {
        let old = b"old".to_vec();
        let new = b"new".to_vec();
        let body = br#"{"a":1}"#;
        let headers = with(HUB_HEADER, &sign(&old, body));
        assert_eq!(
            verify(Provider::Bitbucket, &headers, body, &[new.clone(), old]),
            Ok(())
        );
        assert!(verify(Provider::Bitbucket, &headers, body, &[new]).is_err());
    }

    #[test]
    fn tampered_missing_legacy_and_other_algorithm_signatures_are_refused_with_a_reason() {
        let secret = vec![b's'; 20];
        let body = br#"{"action":"opened"}"#;
        let good = sign(&secret, body);
        let cases = [
            (
                Provider::Github,
                with(GITHUB_HEADER, &good),
                &br#"{"action":"closed"}"#[..],
                "does not match",
            ),
            (
                Provider::Github,
                HeaderMap::new(),
                &body[..],
                "no X-Hub-Signature-256 header",
            ),
            (
                Provider::Github,
                with(HUB_HEADER, "sha1=0123"),
                &body[..],
                "legacy SHA-1",
            ),
            (
                Provider::Bitbucket,
                with(HUB_HEADER, "sha1=0123"),
                &body[..],
                "only sha256=",
            ),
            (
                Provider::Bitbucket,
                with(HUB_HEADER, "sha256=zz"),
                &body[..],
                "followed by hex",
            ),
            (
                Provider::Bitbucket,
                with(GITHUB_HEADER, &good),
                &body[..],
                "no X-Hub-Signature header",
            ),
        ];
        for (provider, headers, body, says) in cases {
            let err =
                verify(provider, &headers, body, std::slice::from_ref(&secret)).expect_err(says);
            assert!(err.0.contains(says), "{says}: {err}");
        }
    }
}
