//! `/v1/tokens` wire types.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::{ApiToken, GatewayCredential, TokenSecret};

/// `POST /v1/tokens` body.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTokenRequest {
    /// A name for people (`github-ci`): 1 to 64 letters, digits, `.`, `_` or `-`. Not unique.
    #[schema(pattern = r"^[A-Za-z0-9._-]{1,64}$")]
    pub name: String,
    /// `admin`, `developer`, `ci` or `viewer`.
    #[schema(pattern = "^(admin|developer|ci|viewer)$")]
    pub role: String,
    /// The team (a DNS-1123 label): developers and viewers see their team's clusters, and
    /// clusters created with this token belong to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")]
    pub team: Option<String>,
    /// Valid for this long (`"90d"`); absent: until revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
}

/// A token as listed: never its secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TokenView {
    /// Id (`t-…`); clusters it creates are owned by `token:<id>`.
    pub id: String,
    /// Name.
    pub name: String,
    /// Role.
    pub role: String,
    /// Team, if any.
    pub team: Option<String>,
    /// Issued at (RFC 3339).
    pub created_at: String,
    /// Stops working at, if ever.
    pub expires_at: Option<String>,
    /// Last authenticated a request at (to the minute), if ever.
    pub last_used_at: Option<String>,
    /// Revoked at, if revoked.
    pub revoked_at: Option<String>,
}

impl From<&ApiToken> for TokenView {
    fn from(t: &ApiToken) -> Self {
        let ts = |t: &crate::domain::Timestamp| t.to_string();
        Self {
            id: t.id.clone(),
            name: t.name.clone(),
            role: t.role.to_string(),
            team: t.team.clone(),
            created_at: ts(&t.created_at),
            expires_at: t.expires_at.as_ref().map(ts),
            last_used_at: t.last_used_at.as_ref().map(ts),
            revoked_at: t.revoked_at.as_ref().map(ts),
        }
    }
}

/// `POST /v1/tokens` answer: the token and, this once, its secret.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedToken {
    /// The secret (`vcm_` + 64 hex): shown only here, stored only as a hash.
    pub secret: String,
    /// The token's record.
    pub token: TokenView,
}

impl CreatedToken {
    /// The answer for `token` with `secret`.
    pub fn new(token: &ApiToken, secret: &TokenSecret) -> Self {
        Self {
            secret: secret.expose().to_owned(),
            token: token.into(),
        }
    }
}

/// Every token.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenList {
    /// Newest first.
    pub items: Vec<TokenView>,
}

/// `GET /v1/whoami`: the caller as vcm sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WhoAmI {
    /// The stable subject clusters record as `owner` (`token:<id>`, `cert:…`, `oidc:…`).
    pub subject: String,
    /// A name for people (the token's name, a certificate's CN).
    pub name: String,
    /// Role.
    pub role: String,
    /// Team, if any.
    pub team: Option<String>,
}

/// A gateway credential as listed: never its secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GatewayCredentialView {
    /// Id (`g-…`); `vcm-credential-id` of the kubeconfig response that carried it.
    pub id: String,
    /// The cluster it opens.
    pub cluster_id: String,
    /// Who it speaks for (`token:t-…`, `oidc:github/…`).
    pub principal: String,
    /// Issued at (RFC 3339).
    pub created_at: String,
    /// Stops working at.
    pub expires_at: String,
    /// Revoked at, if revoked.
    pub revoked_at: Option<String>,
}

impl From<&GatewayCredential> for GatewayCredentialView {
    fn from(c: &GatewayCredential) -> Self {
        Self {
            id: c.id.clone(),
            cluster_id: c.cluster_id.clone(),
            principal: c.principal.subject.clone(),
            created_at: c.created_at.to_string(),
            expires_at: c.expires_at.to_string(),
            revoked_at: c.revoked_at.as_ref().map(ToString::to_string),
        }
    }
}

/// A cluster's gateway credentials.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GatewayCredentialList {
    /// Newest first.
    pub items: Vec<GatewayCredentialView>,
}

/// What a revocation did.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RevokedCredentials {
    /// How many credentials it revoked (those revoked before are not counted).
    pub revoked: u64,
}
