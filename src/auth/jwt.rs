//! Compact JWTs: split and decode without trusting anything, then verify an RS256 or ES256
//! signature against a public key from a JWKS, and the time and audience claims.
//!
//! NB: verification is written against aws-lc-rs (already the TLS provider) rather than a JWT
//! crate: only two algorithms are accepted, the algorithm comes from the token *and* must fit
//! the key's type, and `none` or HMAC can never be selected by a token. crates.md also warns
//! that a direct `jsonwebtoken` would be a second, incompatible copy next to octocrab's.

use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents, UnparsedPublicKey,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

/// Longest bearer JWT looked at. GitHub's ID tokens are about 1.2 KB and ServiceAccount
/// tokens about 1 KB; anything far beyond that is not a token worth decoding.
pub const MAX_JWT_BYTES: usize = 16 * 1024;

/// Largest `exp`/`nbf`/`iat` accepted: year 9999. Larger numbers are garbage, not dates.
const MAX_NUMERIC_DATE: i64 = 253_402_300_799;

/// A signature algorithm vcm verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    /// RSASSA-PKCS1-v1_5 with SHA-256 (GitHub, Bitbucket).
    Rs256,
    /// ECDSA P-256 with SHA-256.
    Es256,
}

/// A JWT split and decoded, nothing verified yet.
#[derive(Debug, Clone)]
pub struct UnverifiedJwt {
    /// The header's `alg`, as written.
    pub alg: String,
    /// The header's `kid`, if any.
    pub kid: Option<String>,
    /// The payload.
    pub claims: Map<String, Value>,
    /// `base64url(header) "." base64url(payload)`: what was signed.
    signing_input: String,
    signature: Vec<u8>,
}

/// A public key from a JWKS.
#[derive(Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// RSA modulus and exponent, big-endian without leading zeros.
    Rsa {
        /// Modulus.
        n: Vec<u8>,
        /// Public exponent.
        e: Vec<u8>,
    },
    /// A P-256 point, uncompressed (`04 || x || y`).
    P256(Vec<u8>),
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Rsa { n, .. } => write!(f, "Rsa({} bits)", n.len() * 8),
            Self::P256(_) => f.write_str("P256"),
        }
    }
}

// === impl Alg ===

impl Alg {
    /// The algorithm a header names, or why it is refused.
    pub fn parse(alg: &str) -> Result<Self, String> {
        match alg {
            "RS256" => Ok(Self::Rs256),
            "ES256" => Ok(Self::Es256),
            a if a.eq_ignore_ascii_case("none") => {
                Err("unsigned tokens (alg none) are refused".into())
            }
            a if a.starts_with("HS") => Err(format!(
                "HMAC-signed tokens (alg {}) are refused: vcm verifies RS256 and ES256 \
                 signatures with the issuer's public keys",
                clip(a)
            )),
            a => Err(format!(
                "signature algorithm {:?} is not supported (RS256 and ES256 are)",
                clip(a)
            )),
        }
    }
}

// === impl UnverifiedJwt ===

impl UnverifiedJwt {
    /// Split and decode `token` (`header.payload.signature`, base64url without padding,
    /// header and payload JSON objects). Nothing is trusted yet.
    pub fn decode(token: &str) -> Result<Self, String> {
        if token.len() > MAX_JWT_BYTES {
            return Err(format!("token is longer than {MAX_JWT_BYTES} bytes"));
        }
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("a JWT has three dot-separated parts".into());
        };
        let header: Map<String, Value> = decode_json(h, "header")?;
        let claims: Map<String, Value> = decode_json(p, "payload")?;
        let signature = URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| "the signature is not base64url".to_owned())?;
        let Some(Value::String(alg)) = header.get("alg") else {
            return Err("the JWT header has no alg".into());
        };
        let kid = match header.get("kid") {
            None | Some(Value::Null) => None,
            Some(Value::String(k)) => Some(k.clone()),
            Some(_) => return Err("the JWT header's kid is not a string".into()),
        };
        Ok(Self {
            alg: alg.clone(),
            kid,
            claims,
            signing_input: format!("{h}.{p}"),
            signature,
        })
    }

    /// The string claim `name`, if it is one.
    pub fn claim_str(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }

    /// Does the signature verify with `key` under `alg`? A key of the wrong type never does.
    pub fn verify_signature(&self, alg: Alg, key: &PublicKey) -> bool {
        let msg = self.signing_input.as_bytes();
        match (alg, key) {
            (Alg::Rs256, PublicKey::Rsa { n, e }) => RsaPublicKeyComponents { n, e }
                .verify(&RSA_PKCS1_2048_8192_SHA256, msg, &self.signature)
                .is_ok(),
            (Alg::Es256, PublicKey::P256(point)) => {
                UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
                    .verify(msg, &self.signature)
                    .is_ok()
            }
            _ => false,
        }
    }

    /// `exp` (required), `nbf` and `iat` (optional) hold at `now` (seconds since the epoch),
    /// each with `skew` seconds of tolerance.
    pub fn check_times(&self, now: i64, skew: i64) -> Result<(), String> {
        let exp = self
            .numeric_date("exp")?
            .ok_or_else(|| "the token has no exp".to_owned())?;
        if exp.saturating_add(skew) <= now {
            return Err(format!("the token expired {}s ago", now - exp));
        }
        if let Some(nbf) = self.numeric_date("nbf")?
            && nbf.saturating_sub(skew) > now
        {
            return Err(format!(
                "the token is not valid before {nbf} (nbf); now is {now}"
            ));
        }
        if let Some(iat) = self.numeric_date("iat")?
            && iat.saturating_sub(skew) > now
        {
            return Err(format!(
                "the token was issued in the future (iat {iat}; now is {now})"
            ));
        }
        Ok(())
    }

    /// `aud` is `audience` or an array holding it.
    pub fn has_audience(&self, audience: &str) -> bool {
        match self.claims.get("aud") {
            Some(Value::String(a)) => a == audience,
            Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(audience)),
            _ => false,
        }
    }

    fn numeric_date(&self, claim: &str) -> Result<Option<i64>, String> {
        let Some(v) = self.claims.get(claim) else {
            return Ok(None);
        };
        let secs = match v {
            Value::Number(n) => n.as_i64().or_else(|| {
                n.as_f64()
                    .filter(|f| f.is_finite() && f.abs() < 1e15)
                    .map(|f| f as i64)
            }),
            _ => None,
        };
        match secs {
            Some(s) if (0..=MAX_NUMERIC_DATE).contains(&s) => Ok(Some(s)),
            _ => Err(format!(
                "claim {claim} is not a valid date (seconds since 1970)"
            )),
        }
    }
}

// === impl PublicKey ===

impl PublicKey {
    /// The key of one JWKS entry, with its `kid`; `None` for keys vcm cannot use (other key
    /// types or curves, encryption keys, malformed entries): a JWKS may hold those too.
    pub fn from_jwk(jwk: &Value) -> Option<(Option<String>, Self)> {
        let field = |name: &str| jwk.get(name).and_then(Value::as_str);
        let bytes = |name: &str| field(name).and_then(|v| URL_SAFE_NO_PAD.decode(v).ok());
        if field("use").is_some_and(|u| u != "sig") {
            return None;
        }
        let key = match (field("kty")?, field("alg")) {
            ("RSA", None | Some("RS256")) => {
                let n = strip_leading_zeros(bytes("n")?);
                let e = strip_leading_zeros(bytes("e")?);
                (n.len() >= 256 && !e.is_empty()).then_some(Self::Rsa { n, e })?
            }
            ("EC", None | Some("ES256")) if field("crv") == Some("P-256") => {
                let (x, y) = (bytes("x")?, bytes("y")?);
                if x.len() != 32 || y.len() != 32 {
                    return None;
                }
                let mut point = Vec::with_capacity(65);
                point.push(4);
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                Self::P256(point)
            }
            _ => return None,
        };
        Some((field("kid").map(str::to_owned), key))
    }

    /// Can this key verify `alg` signatures?
    pub fn fits(&self, alg: Alg) -> bool {
        matches!(
            (alg, self),
            (Alg::Rs256, Self::Rsa { .. }) | (Alg::Es256, Self::P256(_))
        )
    }
}

/// Does `s` look like a compact JWT (three base64url parts, the first two non-empty)? Only a
/// shape check, to route a bearer value.
pub fn looks_like_jwt(s: &str) -> bool {
    let base64url = |p: &str| {
        p.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    let parts: Vec<&str> = s.splitn(4, '.').collect();
    parts.len() == 3
        && !parts[0].is_empty()
        && !parts[1].is_empty()
        && parts.iter().all(|p| base64url(p))
}

/// At most 64 characters of an untrusted string, for messages.
pub fn clip(s: &str) -> String {
    s.chars().take(64).collect()
}

fn decode_json<T: serde::de::DeserializeOwned>(part: &str, what: &str) -> Result<T, String> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| format!("the JWT {what} is not base64url"))?;
    serde_json::from_slice(&bytes).map_err(|_| format!("the JWT {what} is not a JSON object"))
}

fn strip_leading_zeros(mut v: Vec<u8>) -> Vec<u8> {
    let zeros = v.iter().take_while(|b| **b == 0).count();
    v.drain(..zeros);
    v
}
