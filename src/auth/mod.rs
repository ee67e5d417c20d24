//! Who is calling: bearer API tokens (`Authorization: Bearer vcm_…`) resolved to a
//! [`Principal`] through the store, which keeps only the tokens' hashes.
//!
//! Error messages say what to do and never echo the presented token.

use std::sync::Arc;

use anyhow::Context as _;

use crate::domain::{ApiToken, Principal, Timestamp, TokenSecret};
use crate::error::{Error, Result};
use crate::store::Store;

/// What a client without a token is told.
const MISSING_TOKEN: &str =
    "missing bearer token: send Authorization: Bearer <token> (vcm token create / --dev-token)";

/// Resolves `Authorization` headers to principals.
#[derive(Clone)]
pub struct Authenticator {
    store: Arc<dyn Store>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator").finish_non_exhaustive()
    }
}

// === impl Authenticator ===

impl Authenticator {
    /// An authenticator looking tokens up in `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    /// The principal behind an `Authorization` header value; `Unauthenticated` when it is
    /// missing, not a vcm bearer token, unknown, revoked or expired.
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Principal> {
        let Some(value) = authorization else {
            return Err(Error::Unauthenticated(MISSING_TOKEN.into()));
        };
        let secret = parse_bearer(value)?;
        let Some(token) = self.store.token_by_hash(&secret.hash()).await? else {
            return Err(Error::Unauthenticated(
                "invalid bearer token: no such token (it may have been mistyped or deleted)".into(),
            ));
        };
        check_active(&token, Timestamp::now())?;
        Ok(Principal::token(&token.name, &token.role, token.team))
    }
}

/// The token of a `Bearer <token>` header value (the scheme is case-insensitive).
fn parse_bearer(value: &str) -> Result<TokenSecret> {
    let (scheme, rest) = value.trim().split_once(' ').unwrap_or((value.trim(), ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Error::Unauthenticated(
            "unsupported authorization scheme: send Authorization: Bearer <token>".into(),
        ));
    }
    TokenSecret::parse(rest.trim()).ok_or_else(|| {
        Error::Unauthenticated(
            "malformed bearer token: vcm tokens are `vcm_` followed by 64 hex characters".into(),
        )
    })
}

fn check_active(token: &ApiToken, now: Timestamp) -> Result<()> {
    if let Some(at) = token.revoked_at {
        return Err(Error::Unauthenticated(format!(
            "token {:?} was revoked at {at}; ask an admin for a new one",
            token.name
        )));
    }
    if let Some(at) = token.expires_at.filter(|at| *at <= now) {
        return Err(Error::Unauthenticated(format!(
            "token {:?} expired at {at}; ask an admin for a new one",
            token.name
        )));
    }
    Ok(())
}

/// Store `secret` as token `name` with `role` unless its hash is stored already, so a
/// restarted `vcm server --dev --dev-token …` keeps accepting the same token.
pub async fn bootstrap_token(
    store: &dyn Store,
    name: &str,
    role: &str,
    secret: &TokenSecret,
) -> anyhow::Result<()> {
    let hash = secret.hash();
    if store
        .token_by_hash(&hash)
        .await
        .context("looking up the bootstrap token")?
        .is_some()
    {
        return Ok(());
    }
    let mut id = [0u8; 6];
    rand::fill(&mut id[..]);
    let token = ApiToken {
        id: format!("t-{}", hex::encode(id)),
        name: name.to_owned(),
        hash,
        role: role.to_owned(),
        team: None,
        created_at: Timestamp::now(),
        expires_at: None,
        revoked_at: None,
    };
    store
        .insert_token(&token)
        .await
        .with_context(|| format!("storing the bootstrap token {name:?}"))?;
    tracing::info!(
        token.name = name,
        token.role = role,
        "bootstrap token stored"
    );
    Ok(())
}

#[cfg(test)]
mod tests;
