//! Who may pass the gateway to which cluster: a gateway credential for that cluster, or a
//! principal that may take the cluster's credentials; and only to a Ready cluster.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use axum::http::{Extensions, HeaderMap, header};

use crate::{
    domain::{Cluster, GATEWAY_PREFIX, GatewayCredential, Phase, Principal, TokenSecret, now_ms},
    error::{Error, Result},
    http::AppState,
    service::access::Action,
    tls::ClientCertAuth,
};

/// How long a checked gateway credential is trusted before the store is asked again: with
/// [`super::RECHECK_INTERVAL`], a revocation ends streams well within a second.
const CHECK_TTL: Duration = Duration::from_millis(400);

/// Who passes, to which cluster.
#[derive(Debug, Clone)]
pub(super) struct Grant {
    /// The caller (for a gateway credential: the principal it was issued to).
    pub principal: Principal,
    /// The gateway credential presented, if one was.
    pub credential: Option<String>,
    /// The cluster, Ready.
    pub cluster: Cluster,
}

/// Gateway credentials checked in the last [`CHECK_TTL`], by the SHA-256 of their secret.
#[derive(Default)]
pub(super) struct CheckCache(Mutex<HashMap<String, (Instant, GatewayCredential)>>);

// === impl CheckCache ===

impl CheckCache {
    fn get(&self, hash: &str) -> Option<GatewayCredential> {
        let cache = self.0.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .get(hash)
            .filter(|(at, _)| at.elapsed() < CHECK_TTL)
            .map(|(_, c)| c.clone())
    }

    fn put(&self, credential: &GatewayCredential) {
        let mut cache = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() > 10_000 {
            cache.retain(|_, (at, _)| at.elapsed() < CHECK_TTL);
        }
        cache.insert(
            credential.hash.clone(),
            (Instant::now(), credential.clone()),
        );
    }
}

/// The grant of a request to cluster `id` with these headers and connection extensions.
pub(super) async fn authorize(
    state: &AppState,
    checks: &CheckCache,
    headers: &HeaderMap,
    extensions: &Extensions,
    id: &str,
) -> Result<Grant> {
    let authorization = match headers.get(header::AUTHORIZATION).map(|v| v.to_str()) {
        Some(Ok(value)) => Some(value),
        Some(Err(_)) => {
            return Err(Error::Unauthenticated(
                "malformed Authorization header: send Authorization: Bearer <token>".into(),
            ));
        }
        None => None,
    };
    let bearer = authorization.map(crate::auth::bearer_value).transpose()?;
    let (principal, credential) = match bearer {
        Some(token) if token.starts_with(GATEWAY_PREFIX) => {
            let credential = gateway_credential(state, checks, token, id).await?;
            (credential.principal, Some(credential.id))
        }
        Some(_) => (state.auth.authenticate(authorization).await?, None),
        None => match extensions.get::<ClientCertAuth>() {
            Some(cert) => (cert.principal()?, None),
            None => (state.auth.authenticate(None).await?, None),
        },
    };
    let cluster = match &credential {
        // NB: the credential was issued to someone who could take this cluster's credentials.
        Some(_) => state.service.resolve(id).await?,
        None => {
            state
                .service
                .resolve_for(&principal, id, Action::Credentials)
                .await?
        }
    };
    ready(&cluster)?;
    Ok(Grant {
        principal,
        credential,
        cluster,
    })
}

/// The active gateway credential `token` for cluster `id`.
async fn gateway_credential(
    state: &AppState,
    checks: &CheckCache,
    token: &str,
    id: &str,
) -> Result<GatewayCredential> {
    let secret = TokenSecret::parse_gateway(token).ok_or_else(|| {
        Error::Unauthenticated(format!(
            "malformed gateway credential: they are `{GATEWAY_PREFIX}` followed by 64 hex characters"
        ))
    })?;
    let hash = secret.hash();
    let credential = match checks.get(&hash) {
        Some(c) => c,
        None => {
            let found = state
                .service
                .store()
                .gateway_credential_by_hash(&hash)
                .await?;
            let Some(found) = found else {
                return Err(Error::Unauthenticated(
                    "unknown gateway credential (its cluster may have been purged); get a new \
                     kubeconfig: vcm cluster kubeconfig <cluster>"
                        .into(),
                ));
            };
            checks.put(&found);
            found
        }
    };
    let now = now_ms();
    if let Some(at) = credential.revoked_at {
        return Err(Error::Unauthenticated(format!(
            "gateway credential {} was revoked at {at}; get a new kubeconfig: vcm cluster \
             kubeconfig {}",
            credential.id, credential.cluster_id
        )));
    }
    if !credential.is_active(now) {
        return Err(Error::Unauthenticated(format!(
            "gateway credential {} expired at {}; get a new kubeconfig: vcm cluster kubeconfig {}",
            credential.id, credential.expires_at, credential.cluster_id
        )));
    }
    if let Some(token_id) = credential.principal.subject.strip_prefix("token:") {
        parent_token_active(state, token_id, &credential).await?;
    }
    if credential.cluster_id != id {
        return Err(Error::Forbidden(format!(
            "gateway credential {} is for cluster {}, not {id}",
            credential.id, credential.cluster_id
        )));
    }
    Ok(credential)
}

/// A credential issued to an API token ends with that token.
async fn parent_token_active(
    state: &AppState,
    token_id: &str,
    credential: &GatewayCredential,
) -> Result<()> {
    let tokens = state.service.store().list_tokens().await?;
    let active = tokens
        .iter()
        .find(|t| t.id == token_id)
        .is_some_and(|t| t.is_active(now_ms()));
    if active {
        return Ok(());
    }
    Err(Error::Unauthenticated(format!(
        "gateway credential {} was issued to API token {token_id}, which is revoked or expired",
        credential.id
    )))
}

/// Only a Ready cluster is served: one being made says when to come back, one going or gone
/// is not found.
fn ready(cluster: &Cluster) -> Result<()> {
    match cluster.phase {
        Phase::Ready => Ok(()),
        Phase::Pending | Phase::Provisioning => Err(Error::TryLater {
            code: "cluster_not_ready",
            message: format!(
                "cluster {} is {}; its API is served once it is Ready (`vcm cluster create \
                 --wait` waits for that)",
                cluster.name, cluster.phase
            ),
            retry_after: Duration::from_secs(5),
        }),
        Phase::Deleting | Phase::Deleted => Err(Error::NotFound(format!(
            "cluster {} ({}) was deleted",
            cluster.name, cluster.id
        ))),
        Phase::Failed => Err(Error::NotFound(format!(
            "cluster {} ({}) failed: {}",
            cluster.name, cluster.id, cluster.message
        ))),
    }
}
