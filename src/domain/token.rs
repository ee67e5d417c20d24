//! API tokens: `vcm_` + 64 hex characters (256 random bits), stored only as a SHA-256 hash.

use secrecy::{ExposeSecret as _, SecretString};
use sha2::{Digest as _, Sha256};

use super::{Principal, Role, Timestamp};

/// The prefix that makes a vcm token recognisable (secret scanners, logs).
pub const TOKEN_PREFIX: &str = "vcm_";

/// The prefix of a gateway credential: the bearer token of a kubeconfig that points at the
/// cluster gateway (one cluster, one principal, short-lived). Not a `vcm_` token: the REST API
/// refuses it.
pub const GATEWAY_PREFIX: &str = "vcmgw_";

/// A token's secret value: `Debug` never shows it, and its memory is wiped when dropped
/// (`secrecy`).
#[derive(Clone)]
pub struct TokenSecret(SecretString);

impl std::fmt::Debug for TokenSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSecret(<redacted>)")
    }
}

impl PartialEq for TokenSecret {
    /// Compares the hashes: equal secrets have equal hashes, and comparing fixed-size digests
    /// does not leak how much of a presented secret matched.
    fn eq(&self, other: &Self) -> bool {
        self.hash() == other.hash()
    }
}

impl Eq for TokenSecret {}

// === impl TokenSecret ===

impl TokenSecret {
    /// A new random token.
    pub fn generate() -> Self {
        Self::generate_with(TOKEN_PREFIX)
    }

    /// A new random gateway credential (`vcmgw_…`).
    pub fn generate_gateway() -> Self {
        Self::generate_with(GATEWAY_PREFIX)
    }

    fn generate_with(prefix: &str) -> Self {
        let mut bytes = [0u8; 32];
        rand::fill(&mut bytes[..]);
        Self(format!("{prefix}{}", hex::encode(bytes)).into())
    }

    /// Parse a presented token; `None` unless it has the vcm shape.
    pub fn parse(s: &str) -> Option<Self> {
        Self::parse_with(TOKEN_PREFIX, s)
    }

    /// Parse a presented gateway credential; `None` unless it has the `vcmgw_` shape.
    pub fn parse_gateway(s: &str) -> Option<Self> {
        Self::parse_with(GATEWAY_PREFIX, s)
    }

    fn parse_with(prefix: &str, s: &str) -> Option<Self> {
        let hexpart = s.strip_prefix(prefix)?;
        (hexpart.len() == 64 && hexpart.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| Self(s.into()))
    }

    /// The hash stored and looked up (lowercase hex SHA-256). 256-bit random tokens need no
    /// salt or slow hash: guessing is hopeless, and a plain hash allows an indexed lookup.
    pub fn hash(&self) -> String {
        hex::encode(Sha256::digest(self.0.expose_secret().as_bytes()))
    }

    /// The secret itself: shown once, at creation.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

/// A stored token (no secret, only its hash).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiToken {
    /// Public id (`t-…`).
    pub id: String,
    /// Human name (`github-ci`), not unique; the principal is `token:<id>`.
    pub name: String,
    /// SHA-256 of the secret.
    pub hash: String,
    /// What it may do.
    pub role: Role,
    /// Team, if any.
    pub team: Option<String>,
    /// Created at.
    pub created_at: Timestamp,
    /// Expires at, if ever.
    pub expires_at: Option<Timestamp>,
    /// Revoked at, if revoked.
    pub revoked_at: Option<Timestamp>,
    /// Last authenticated a request at (written at most once a minute), if ever.
    pub last_used_at: Option<Timestamp>,
}

impl ApiToken {
    /// A new record (fresh id, created now) for a token whose hash is still to be set.
    pub fn new(
        name: &str,
        role: Role,
        team: Option<String>,
        expires_at: Option<Timestamp>,
    ) -> Self {
        let mut id = [0u8; 6];
        rand::fill(&mut id[..]);
        Self {
            id: format!("t-{}", hex::encode(id)),
            name: name.to_owned(),
            hash: String::new(),
            role,
            team,
            created_at: super::now_ms(),
            expires_at,
            revoked_at: None,
            last_used_at: None,
        }
    }

    /// Usable now: not revoked, not expired.
    pub fn is_active(&self, now: Timestamp) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| e > now)
    }
}

/// A stored gateway credential (no secret, only its hash): what a gateway kubeconfig carries.
/// It speaks for the principal that asked for it, for one cluster, until it expires or is
/// revoked; revoking the principal's API token or deleting the cluster ends it too.
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayCredential {
    /// Public id (`g-…`).
    pub id: String,
    /// SHA-256 of the secret.
    pub hash: String,
    /// The one cluster it opens.
    pub cluster_id: String,
    /// The principal it was issued to.
    pub principal: Principal,
    /// Issued at.
    pub created_at: Timestamp,
    /// Expires at.
    pub expires_at: Timestamp,
    /// Revoked at, if revoked.
    pub revoked_at: Option<Timestamp>,
}

impl GatewayCredential {
    /// A new record (fresh id, issued now) for a credential whose hash is still to be set.
    pub fn new(cluster_id: &str, principal: &Principal, expires_at: Timestamp) -> Self {
        let mut id = [0u8; 6];
        rand::fill(&mut id[..]);
        Self {
            id: format!("g-{}", hex::encode(id)),
            hash: String::new(),
            cluster_id: cluster_id.to_owned(),
            principal: principal.clone(),
            created_at: super::now_ms(),
            expires_at,
            revoked_at: None,
        }
    }

    /// Usable now: not revoked, not expired.
    pub fn is_active(&self, now: Timestamp) -> bool {
        self.revoked_at.is_none() && self.expires_at > now
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn any_presented_string_is_a_token_or_not(s in any::<String>()) {
            if let Some(token) = TokenSecret::parse(&s) {
                prop_assert_eq!(token.expose(), s.as_str());
            }
        }
    }

    #[test]
    fn tokens_round_trip_and_hash_stably_without_showing_in_debug() {
        let t = TokenSecret::generate();
        assert_eq!(TokenSecret::parse(t.expose()), Some(t.clone()));
        assert_eq!(
            t.hash(),
            TokenSecret::parse(t.expose()).expect("valid").hash()
        );
        assert!(!format!("{t:?}").contains(&t.expose()[4..]));
        assert_eq!(TokenSecret::parse("vcm_short"), None);
        assert_eq!(TokenSecret::parse("Bearer x"), None);
    }
}
