//! Who may pass the gateway to which cluster: a gateway credential for that cluster, or a
//! principal that may take the cluster's credentials; and only to a Ready cluster.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
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

/// How old a checked gateway credential may be before it is checked again, in the background:
/// requests keep using the last check meanwhile.
const REFRESH_AFTER: Duration = Duration::from_millis(300);
/// How old a check may be at most: past it, the request waits for a fresh one. With
/// [`super::RECHECK_INTERVAL`], a revocation ends requests and streams within about a second.
const MAX_AGE: Duration = Duration::from_millis(700);

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

/// Gateway credentials checked lately, by the SHA-256 of their secret: the stored record, and
/// whether the API token it was issued to (if any) was active then. A check older than
/// [`REFRESH_AFTER`] is redone in the background, so requests rarely wait on the store.
#[derive(Clone, Default)]
pub(super) struct CheckCache {
    entries: Arc<Mutex<HashMap<String, (Instant, Checked)>>>,
    refreshing: Arc<Mutex<HashSet<String>>>,
}

#[derive(Clone)]
struct Checked {
    credential: GatewayCredential,
    parent_active: bool,
}

// === impl CheckCache ===

impl CheckCache {
    /// The check of `hash`: the cached one while it is young enough (starting a background
    /// refresh when it is getting old), else a fresh one.
    async fn check(&self, state: &AppState, hash: &str) -> Result<Option<Checked>> {
        let cached = {
            let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            entries.get(hash).cloned()
        };
        match cached {
            Some((at, checked)) if at.elapsed() < REFRESH_AFTER => Ok(Some(checked)),
            Some((at, checked)) if at.elapsed() < MAX_AGE => {
                let first = {
                    let mut refreshing = self.refreshing.lock().unwrap_or_else(|e| e.into_inner());
                    refreshing.insert(hash.to_owned())
                };
                if first {
                    let (cache, state, hash) = (self.clone(), state.clone(), hash.to_owned());
                    tokio::spawn(async move {
                        // NB: a failed refresh leaves the entry to age out; the next request
                        // past MAX_AGE checks for itself and reports the error.
                        let _ = cache.fetch(&state, &hash).await;
                        let mut refreshing =
                            cache.refreshing.lock().unwrap_or_else(|e| e.into_inner());
                        refreshing.remove(&hash);
                    });
                }
                Ok(Some(checked))
            }
            _ => self.fetch(state, hash).await,
        }
    }

    /// Check `hash` against the store now, and remember the answer.
    async fn fetch(&self, state: &AppState, hash: &str) -> Result<Option<Checked>> {
        let store = state.service.store();
        let Some(credential) = store.gateway_credential_by_hash(hash).await? else {
            return Ok(None);
        };
        let parent_active = match credential.principal.subject.strip_prefix("token:") {
            Some(token_id) => token_active(state, token_id).await?,
            None => true,
        };
        let checked = Checked {
            credential,
            parent_active,
        };
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() > 10_000 {
            entries.retain(|_, (at, _)| at.elapsed() < MAX_AGE);
        }
        entries.insert(hash.to_owned(), (Instant::now(), checked.clone()));
        Ok(Some(checked))
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
    let Some(Checked {
        credential,
        parent_active,
    }) = checks.check(state, &hash).await?
    else {
        return Err(Error::Unauthenticated(
            "unknown gateway credential (its cluster may have been purged); get a new \
             kubeconfig: vcm cluster kubeconfig <cluster>"
                .into(),
        ));
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
    if !parent_active {
        return Err(Error::Unauthenticated(format!(
            "gateway credential {} was issued to {}, an API token that is revoked or expired",
            credential.id, credential.principal.subject
        )));
    }
    if credential.cluster_id != id {
        return Err(Error::Forbidden(format!(
            "gateway credential {} is for cluster {}, not {id}",
            credential.id, credential.cluster_id
        )));
    }
    Ok(credential)
}

/// Whether API token `token_id` is active (a credential issued to it ends with it).
async fn token_active(state: &AppState, token_id: &str) -> Result<bool> {
    let tokens = state.service.store().list_tokens().await?;
    Ok(tokens
        .iter()
        .find(|t| t.id == token_id)
        .is_some_and(|t| t.is_active(now_ms())))
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
