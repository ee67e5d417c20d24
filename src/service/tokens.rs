//! API token administration: issue (the secret is returned once and stored only as a hash),
//! list, read and revoke. Admins only.

use std::sync::Arc;

use super::access::authorize_admin;
use crate::domain::{ApiToken, InvalidField, Principal, ROLES, Role, TokenSecret, Ttl, quoted};
use crate::error::{Error, Result};
use crate::store::{Store, StoreError};

/// Longest token name.
pub const MAX_TOKEN_NAME: usize = 64;
/// Longest team name (a DNS label, so it can name Kubernetes objects later).
pub const MAX_TEAM_NAME: usize = 63;

/// What a new token should be.
#[derive(Debug, Clone, Default)]
pub struct TokenSpec {
    /// Its name (letters, digits, `.`, `_`, `-`).
    pub name: String,
    /// `admin`, `developer`, `ci` or `viewer`.
    pub role: String,
    /// Its team, if any.
    pub team: Option<String>,
    /// How long it is valid (`"90d"`); `None`: until revoked.
    pub ttl: Option<String>,
}

/// The token use-cases.
#[derive(Clone)]
pub struct TokenService {
    store: Arc<dyn Store>,
    /// The operators' Rego policy, if any (`token.create`, `token.revoke`).
    rego: Option<Arc<crate::policy::Policy>>,
}

impl std::fmt::Debug for TokenService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenService").finish_non_exhaustive()
    }
}

// === impl TokenService ===

impl TokenService {
    /// Tokens kept in `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store, rego: None }
    }

    /// `Ok` when the policy (if any) allows `principal` the token operation `action`.
    async fn check_policy(
        &self,
        principal: &Principal,
        action: &str,
        request: serde_json::Value,
    ) -> Result<()> {
        let policy = self.rego.as_ref();
        super::policy::put_to_policy(policy, &self.store, principal, action, None, Some(request))
            .await
    }

    /// The same service, putting token operations to `policy`.
    #[must_use]
    pub fn with_policy(mut self, policy: Option<Arc<crate::policy::Policy>>) -> Self {
        self.rego = policy;
        self
    }

    /// Issue a token: its record, and its secret (shown once, never stored).
    pub async fn create(
        &self,
        principal: &Principal,
        spec: TokenSpec,
    ) -> Result<(ApiToken, TokenSecret)> {
        authorize_admin(principal, "issue tokens")?;
        let request = serde_json::json!({
            "name": spec.name, "role": spec.role, "team": spec.team, "ttl": spec.ttl,
        });
        self.check_policy(principal, crate::policy::action::TOKEN_CREATE, request)
            .await?;
        let name = token_name(&spec.name)?;
        let role = role(&spec.role)?;
        let team = spec.team.as_deref().map(team_name).transpose()?;
        let expires_at = match spec.ttl.as_deref() {
            None => None,
            Some(t) => Some(crate::domain::now_ms() + Ttl::parse("ttl", t)?.as_span()),
        };
        let secret = TokenSecret::generate();
        let token = ApiToken {
            hash: secret.hash(),
            ..ApiToken::new(name, role, team, expires_at)
        };
        self.store.insert_token(&token).await?;
        tracing::info!(
            token.id = %token.id, token.name = %token.name, token.role = %token.role,
            by = %principal, "token issued"
        );
        Ok((token, secret))
    }

    /// Every token, newest first (revoked and expired ones included).
    pub async fn list(&self, principal: &Principal) -> Result<Vec<ApiToken>> {
        authorize_admin(principal, "list tokens")?;
        Ok(self.store.list_tokens().await?)
    }

    /// One token by id.
    pub async fn get(&self, principal: &Principal, id: &str) -> Result<ApiToken> {
        authorize_admin(principal, "read tokens")?;
        self.store
            .list_tokens()
            .await?
            .into_iter()
            .find(|t| t.id == id)
            .ok_or_else(|| not_found(id))
    }

    /// Revoke a token: the next request that presents it is refused. Revoking a revoked token
    /// changes nothing; the last active admin token cannot be revoked (nobody could
    /// administer the server afterwards).
    pub async fn revoke(&self, principal: &Principal, id: &str) -> Result<ApiToken> {
        authorize_admin(principal, "revoke tokens")?;
        let request = serde_json::json!({ "id": id });
        self.check_policy(principal, crate::policy::action::TOKEN_REVOKE, request)
            .await?;
        let now = crate::domain::now_ms();
        let tokens = self.store.list_tokens().await?;
        let target = tokens
            .iter()
            .find(|t| t.id == id)
            .ok_or_else(|| not_found(id))?;
        let other_admins = tokens
            .iter()
            .filter(|t| t.id != id && t.role == Role::Admin && t.is_active(now))
            .count();
        if target.role == Role::Admin && target.is_active(now) && other_admins == 0 {
            return Err(Error::conflict(
                "last_admin_token",
                format!(
                    "token {id} is the last active admin token; issue another admin token first \
                     (vcm token create --role admin), then revoke this one"
                ),
            ));
        }
        match self.store.revoke_token(id, now).await {
            Ok(()) => {}
            Err(StoreError::NotFound) => return Err(not_found(id)),
            Err(e) => return Err(e.into()),
        }
        tracing::info!(token.id = %id, by = %principal, "token revoked");
        self.get(principal, id).await
    }
}

fn not_found(id: &str) -> Error {
    Error::NotFound(format!("no token with id {}", quoted(id)))
}

/// A token name: 1 to 64 letters, digits, `.`, `_` or `-`.
fn token_name(s: &str) -> Result<&str> {
    let ok = !s.is_empty()
        && s.len() <= MAX_TOKEN_NAME
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    ok.then_some(s).ok_or_else(|| {
        InvalidField::new(
            "name",
            format!(
                "{} is not a token name: 1 to {MAX_TOKEN_NAME} letters, digits, '.', '_' or '-'",
                quoted(s)
            ),
        )
        .into()
    })
}

fn role(s: &str) -> Result<Role> {
    Role::parse(s).ok_or_else(|| {
        let valid: Vec<&str> = ROLES.iter().map(|r| r.as_str()).collect();
        InvalidField::new(
            "role",
            format!(
                "{} is not a role; use one of {}",
                quoted(s),
                valid.join(", ")
            ),
        )
        .into()
    })
}

/// A team: a DNS-1123 label (lowercase letters, digits and `-`, at most 63).
pub fn team_name(s: &str) -> Result<String> {
    let b = s.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= MAX_TEAM_NAME
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-';
    if ok {
        return Ok(s.to_owned());
    }
    Err(InvalidField::new(
        "team",
        format!(
            "{} is not a team name: lowercase letters, digits and '-', at most {MAX_TEAM_NAME}, \
             starting and ending with a letter or digit",
            quoted(s)
        ),
    )
    .into())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn any_name_team_or_role_is_a_value_or_an_error_naming_its_field(s in any::<String>()) {
            if let Err(e) = token_name(&s) { prop_assert!(e.to_string().starts_with("name")); }
            if let Err(e) = team_name(&s) { prop_assert!(e.to_string().starts_with("team")); }
            if let Err(e) = role(&s) { prop_assert!(e.to_string().starts_with("role")); }
        }
    }

    #[test]
    fn names_teams_and_roles_follow_their_rules() {
        assert!(token_name("github-ci.web_1").is_ok());
        assert!(token_name("").is_err());
        assert!(token_name("a b").is_err());
        assert!(token_name(&"a".repeat(65)).is_err());
        assert!(team_name("web-2").is_ok());
        assert!(team_name("Web").is_err());
        assert!(team_name("-web").is_err());
        assert_eq!(role("ci").unwrap(), Role::Ci);
        assert!(
            role("root")
                .unwrap_err()
                .to_string()
                .contains("admin, developer, ci, viewer")
        );
    }
}
