//! Who is calling. A bearer value is one of:
//!
//! * a vcm API token (`vcm_…`), resolved through the store, which keeps only the hashes;
//! * a JWT whose `iss` is a configured CI OIDC issuer ([`oidc`]), verified with its keys;
//! * any other JWT, when Kubernetes clusters are configured: a ServiceAccount token checked by
//!   TokenReview ([`tokenreview`]).
//!
//! Error messages say what to do and never echo the presented token.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;

use crate::domain::{ApiToken, Principal, Role, Timestamp, TokenSecret};
use crate::error::{Error, Result};
use crate::store::Store;

/// An OIDC issuer's signing keys: discovery, JWKS fetch and cache.
pub mod jwks;
/// Compact JWT decoding and RS256/ES256 verification.
pub mod jwt;
/// CI OIDC ID tokens (GitHub Actions, Bitbucket Pipelines) mapped to principals by rules.
pub mod oidc;
/// Kubernetes ServiceAccount tokens checked with TokenReview.
pub mod tokenreview;

pub use self::oidc::OidcVerifier;
pub use self::tokenreview::TokenReviewer;

/// What a client without a token is told.
const MISSING_TOKEN: &str =
    "missing bearer token: send Authorization: Bearer <token> (vcm token create / --dev-token)";

/// How vcm API tokens start (`TokenSecret` checks the rest): anything else is a JWT or garbage.
const API_TOKEN_PREFIX: &str = "vcm_";

/// How often a token's `last_used_at` is written at most: a write per request would make
/// every GET a store write.
const LAST_USED_RESOLUTION_MS: i64 = 60_000;

/// Resolves `Authorization` headers to principals.
#[derive(Clone)]
pub struct Authenticator {
    store: Arc<dyn Store>,
    /// Token id -> when its use was last written (ms since the epoch).
    used: Arc<Mutex<HashMap<String, i64>>>,
    /// CI OIDC issuers, if configured.
    oidc: Option<Arc<OidcVerifier>>,
    /// Clusters whose ServiceAccount tokens are accepted, if configured.
    kubernetes: Option<Arc<TokenReviewer>>,
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
            oidc: None,
            kubernetes: None,
        }
    }

    /// Also accept CI OIDC tokens of these issuers.
    pub fn with_oidc(mut self, oidc: OidcVerifier) -> Self {
        self.oidc = Some(Arc::new(oidc));
        self
    }

    /// Also accept ServiceAccount tokens of these clusters.
    pub fn with_kubernetes(mut self, reviewer: TokenReviewer) -> Self {
        self.kubernetes = Some(Arc::new(reviewer));
        self
    }

    /// The principal behind an `Authorization` header value; `Unauthenticated` when it is
    /// missing, malformed, unknown, revoked, expired, or refused by its issuer or cluster.
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Principal> {
        // NB: the branches below follow [`credential_kind`]; keep them in step.
        let Some(value) = authorization else {
            return Err(Error::Unauthenticated(MISSING_TOKEN.into()));
        };
        let token = bearer_value(value)?;
        if token.starts_with(API_TOKEN_PREFIX) {
            return self.authenticate_api_token(token).await;
        }
        if token.len() <= jwt::MAX_JWT_BYTES && jwt::looks_like_jwt(token) {
            return self.authenticate_jwt(token).await;
        }
        Err(Error::Unauthenticated(format!(
            "malformed bearer token: {}",
            self.accepted_kinds()
        )))
    }

    /// A JWT: a CI OIDC token of a configured issuer, else a ServiceAccount token if clusters
    /// are configured.
    async fn authenticate_jwt(&self, token: &str) -> Result<Principal> {
        let jwt = jwt::UnverifiedJwt::decode(token)
            .map_err(|e| Error::Unauthenticated(format!("malformed JWT bearer token: {e}")))?;
        let iss = jwt.claim_str("iss").unwrap_or_default();
        if let Some(oidc) = self.oidc.as_ref().filter(|o| o.knows(iss)) {
            return oidc.verify(&jwt).await;
        }
        // NB: only what looks like a ServiceAccount token goes to the clusters: a CI token of
        // an issuer nobody configured is not handed to them, and garbage costs them nothing.
        if let Some(kubernetes) = &self.kubernetes
            && tokenreview::looks_like_service_account_token(&jwt)
        {
            return kubernetes.authenticate(token).await;
        }
        let issuer = match iss {
            "" => "it names no issuer (iss)".to_owned(),
            iss => format!("issuer {:?} is not configured", jwt::clip(iss)),
        };
        Err(Error::Unauthenticated(format!(
            "JWT bearer token refused: {issuer}; {}",
            self.accepted_kinds()
        )))
    }

    /// What bearer tokens this server accepts, for messages.
    fn accepted_kinds(&self) -> String {
        let mut kinds = vec!["vcm API tokens (`vcm_` followed by 64 hex characters)".to_owned()];
        if self.oidc.is_some() {
            kinds.push("CI OIDC ID tokens of the issuers in [[auth.oidc]]".into());
        }
        if self.kubernetes.is_some() {
            kinds.push("ServiceAccount tokens of the clusters in [[auth.kubernetes]]".into());
        }
        format!("this server accepts {}", kinds.join(", "))
    }

    /// A `vcm_…` API token.
    async fn authenticate_api_token(&self, token: &str) -> Result<Principal> {
        let secret = TokenSecret::parse(token).ok_or_else(|| {
            Error::Unauthenticated(
                "malformed bearer token: vcm tokens are `vcm_` followed by 64 hex characters"
                    .into(),
            )
        })?;
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

/// The kind of credential an `Authorization` header carries, for
/// `vcm_auth_failures_total{kind}`: `missing`, `malformed` (not `Bearer <token>`), `api_token`
/// (`vcm_…`), `gateway_credential`, `jwt` (a CI OIDC or ServiceAccount token), or `malformed`
/// for anything else.
pub fn credential_kind(authorization: Option<&str>) -> &'static str {
    let Some(value) = authorization else {
        return "missing";
    };
    match bearer_value(value) {
        Ok(token) if token.starts_with(API_TOKEN_PREFIX) => "api_token",
        Ok(token) if token.starts_with(crate::domain::GATEWAY_PREFIX) => "gateway_credential",
        Ok(token) if token.len() <= jwt::MAX_JWT_BYTES && jwt::looks_like_jwt(token) => "jwt",
        _ => "malformed",
    }
}

/// The token of a `Bearer <token>` header value (the scheme is case-insensitive).
pub(crate) fn bearer_value(value: &str) -> Result<&str> {
    let (scheme, rest) = value.trim().split_once(' ').unwrap_or((value.trim(), ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Error::Unauthenticated(
            "unsupported authorization scheme: send Authorization: Bearer <token>".into(),
        ));
    }
    Ok(rest.trim())
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
