//! Who is calling: bearer API tokens (`Authorization: Bearer vcm_…`) resolved to a
//! [`Principal`] through the store, which keeps only the tokens' hashes.
//!
//! Error messages say what to do and never echo the presented token.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;

use crate::domain::{ApiToken, Principal, Role, Timestamp, TokenSecret};
use crate::error::{Error, Result};
use crate::store::Store;

/// What a client without a token is told.
const MISSING_TOKEN: &str =
    "missing bearer token: send Authorization: Bearer <token> (vcm token create / --dev-token)";

/// How often a token's `last_used_at` is written at most: a write per request would make
/// every GET a store write.
const LAST_USED_RESOLUTION_MS: i64 = 60_000;

/// Resolves `Authorization` headers to principals.
#[derive(Clone)]
pub struct Authenticator {
    store: Arc<dyn Store>,
    /// Token id -> when its use was last written (ms since the epoch).
    used: Arc<Mutex<HashMap<String, i64>>>,
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
        Self {
            store,
            used: Arc::default(),
        }
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
        let now = Timestamp::now();
        check_active(&token, now)?;
        self.note_use(&token.id, now);
        Ok(Principal::token(
            &token.id,
            &token.name,
            token.role,
            token.team,
        ))
    }

    /// Write `last_used_at` of token `id`, in the background and at most once a minute.
    fn note_use(&self, id: &str, now: Timestamp) {
        let now_ms = now.as_millisecond();
        {
            let mut used = self
                .used
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match used.get_mut(id) {
                Some(at) if now_ms - *at < LAST_USED_RESOLUTION_MS => return,
                Some(at) => *at = now_ms,
                None => {
                    used.insert(id.to_owned(), now_ms);
                }
            }
        }
        let store = self.store.clone();
        let id = id.to_owned();
        tokio::spawn(async move {
            if let Err(e) = store.token_used(&id, now).await {
                tracing::warn!(token.id = %id, error = %e, "could not record a token's use");
            }
        });
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
    role: Role,
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
    let token = ApiToken {
        hash,
        ..ApiToken::new(name, role, None, None)
    };
    store
        .insert_token(&token)
        .await
        .with_context(|| format!("storing the bootstrap token {name:?}"))?;
    tracing::info!(
        token.name = name,
        token.role = %role,
        "bootstrap token stored"
    );
    Ok(())
}

#[cfg(test)]
mod tests;
