//! Kubernetes ServiceAccount tokens: the cluster that issued a token says whether it is valid
//! (`TokenReview`, `authentication.k8s.io/v1`, with `spec.audiences = [audience]`), and
//! `[[auth.kubernetes.rules]]` map `system:serviceaccount:<ns>:<sa>` to a role and team.
//!
//! Answers, yes and no, are cached for `cache_secs` under the token's SHA-256 (never the token):
//! a CI job calling vcm in a loop costs its cluster one TokenReview per period. A cluster that
//! cannot be asked is not cached: the next request asks again.
//!
//! vcm's own identity on the cluster needs `create` on `tokenreviews` (the built-in
//! `system:auth-delegator` ClusterRole).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use kube::api::{Api, PostParams};
use sha2::{Digest as _, Sha256};

use super::jwt::UnverifiedJwt;
use crate::config::{HostConfig, KubernetesAuthConfig, ServiceAccountRule};
use crate::domain::Principal;
use crate::error::{Error, Result};

/// Most cached answers; beyond it expired ones are dropped, then all (a flood of distinct
/// garbage tokens must not grow memory without bound).
const MAX_CACHED: usize = 10_000;
/// Timeouts of the TokenReview calls: a request waits for them.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Prefix of a ServiceAccount's username.
const SA_PREFIX: &str = "system:serviceaccount:";

/// Checks bearer tokens with the TokenReview API of the configured clusters.
pub struct TokenReviewer {
    clusters: Vec<Cluster>,
}

struct Cluster {
    name: String,
    client: kube::Client,
    audience: String,
    cache_for: Duration,
    rules: Vec<ServiceAccountRule>,
    cache: Mutex<HashMap<[u8; 32], (Instant, Answer)>>,
}

/// A cluster's definite answer about a token.
#[derive(Debug, Clone)]
enum Answer {
    Accepted(Principal),
    Refused(String),
}

impl std::fmt::Debug for TokenReviewer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.clusters.iter().map(|c| c.name.as_str()).collect();
        f.debug_struct("TokenReviewer")
            .field("clusters", &names)
            .finish()
    }
}

// === impl TokenReviewer ===

impl TokenReviewer {
    /// Clients for each `[[auth.kubernetes]]` entry (`hosts` resolves `host = "…"`). Nothing
    /// is contacted yet.
    pub async fn new(
        configs: &[KubernetesAuthConfig],
        hosts: &[HostConfig],
    ) -> anyhow::Result<Self> {
        let mut clusters = Vec::with_capacity(configs.len());
        for c in configs {
            let name = c.cluster_name().to_owned();
            let (kubeconfig, context) = match &c.host {
                Some(host) => {
                    let h = hosts.iter().find(|h| &h.name == host).with_context(|| {
                        format!("auth.kubernetes: no [[hosts]] entry is named {host:?}")
                    })?;
                    (h.kubeconfig.clone(), h.context.clone())
                }
                None => (c.kubeconfig.clone(), c.context.clone()),
            };
            let client = client(&name, kubeconfig.as_deref(), context).await?;
            clusters.push(Cluster {
                name,
                client,
                audience: c.audience.clone(),
                cache_for: Duration::from_secs(c.cache_secs),
                rules: c.rules.clone(),
                cache: Mutex::default(),
            });
        }
        Ok(Self { clusters })
    }

    /// The principal of a ServiceAccount token one of the clusters vouches for.
    pub async fn authenticate(&self, token: &str) -> Result<Principal> {
        let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut why = Vec::new();
        for cluster in &self.clusters {
            match cluster.answer(token, &hash).await {
                Ok(Answer::Accepted(p)) => return Ok(p),
                Ok(Answer::Refused(m)) => why.push(m),
                Err(m) => why.push(m),
            }
        }
        Err(Error::Unauthenticated(format!(
            "Kubernetes ServiceAccount token refused: {}",
            why.join("; ")
        )))
    }
}

// === impl Cluster ===

impl Cluster {
    /// The cached answer, or the cluster's; `Err` when the cluster could not be asked.
    async fn answer(&self, token: &str, hash: &[u8; 32]) -> std::result::Result<Answer, String> {
        if let Some((at, answer)) = self.lock().get(hash)
            && at.elapsed() < self.cache_for
        {
            return Ok(answer.clone());
        }
        let answer = self.review(token).await?;
        let mut cache = self.lock();
        if cache.len() >= MAX_CACHED {
            cache.retain(|_, (at, _)| at.elapsed() < self.cache_for);
            if cache.len() >= MAX_CACHED {
                cache.clear();
            }
        }
        cache.insert(*hash, (Instant::now(), answer.clone()));
        Ok(answer)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], (Instant, Answer)>> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn review(&self, token: &str) -> std::result::Result<Answer, String> {
        let host = &self.name;
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: Some(token.to_owned()),
                audiences: Some(vec![self.audience.clone()]),
            },
            ..Default::default()
        };
        let api: Api<TokenReview> = Api::all(self.client.clone());
        let status = match api.create(&PostParams::default(), &review).await {
            Ok(r) => r.status.unwrap_or_default(),
            Err(e) => {
                let e = scrub(&e.to_string(), token);
                tracing::warn!(host = %host, error = %e, "TokenReview failed");
                return Err(format!(
                    "host {host} could not check the token ({e}); vcm needs create on \
                     tokenreviews there (ClusterRole system:auth-delegator)"
                ));
            }
        };
        if status.authenticated != Some(true) {
            let detail = status
                .error
                .map(|e| format!(": {}", scrub(&e, token)))
                .unwrap_or_default();
            return Ok(Answer::Refused(format!(
                "host {host} did not authenticate it (a token minted for audience {:?} by \
                 that cluster is needed{detail})",
                self.audience
            )));
        }
        if !status
            .audiences
            .unwrap_or_default()
            .contains(&self.audience)
        {
            return Ok(Answer::Refused(format!(
                "host {host} authenticated it, but not for audience {:?}: mint it with that \
                 audience (kubectl create token <sa> --audience {})",
                self.audience, self.audience
            )));
        }
        let username = status.user.and_then(|u| u.username).unwrap_or_default();
        let Some((ns, sa)) = username
            .strip_prefix(SA_PREFIX)
            .and_then(|rest| rest.split_once(':'))
        else {
            return Ok(Answer::Refused(format!(
                "host {host} says it belongs to {:?}, which is not a ServiceAccount",
                super::jwt::clip(&username)
            )));
        };
        let rule = self.rules.iter().find(|r| {
            r.namespace == ns && r.service_account.as_deref().is_none_or(|want| want == sa)
        });
        Ok(match rule {
            Some(r) => Answer::Accepted(Principal {
                subject: format!("sa:{host}/{ns}/{sa}"),
                display: format!("{ns}/{sa}"),
                role: r.role,
                team: r.team.clone(),
                repository: None,
                claims: None,
            }),
            None => Answer::Refused(format!(
                "ServiceAccount {ns}/{sa} of host {host} matches no [[auth.kubernetes.rules]] \
                 entry (add one for namespace {ns:?})"
            )),
        })
    }
}

/// Does the (unverified) payload look like a ServiceAccount token? Bound tokens (TokenRequest,
/// projected volumes) carry a `kubernetes.io` claim; legacy Secret-based tokens have issuer
/// `kubernetes/serviceaccount`.
pub fn looks_like_service_account_token(jwt: &UnverifiedJwt) -> bool {
    jwt.claims.contains_key("kubernetes.io")
        || jwt.claim_str("iss") == Some("kubernetes/serviceaccount")
}

/// `text` with every occurrence of `token` (and a long prefix of it) cut out.
fn scrub(text: &str, token: &str) -> String {
    let mut out = text.replace(token, "<token>");
    if token.len() >= 32
        && let Some(prefix) = token.get(..32)
    {
        out = out.replace(prefix, "<token>");
    }
    out.chars().take(300).collect()
}

async fn client(
    name: &str,
    kubeconfig: Option<&std::path::Path>,
    context: Option<String>,
) -> anyhow::Result<kube::Client> {
    let mut config = match kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path).with_context(|| {
                format!(
                    "auth.kubernetes {name}: reading kubeconfig {}",
                    path.display()
                )
            })?;
            let opts = kube::config::KubeConfigOptions {
                context,
                ..Default::default()
            };
            kube::Config::from_custom_kubeconfig(kc, &opts)
                .await
                .with_context(|| {
                    format!(
                        "auth.kubernetes {name}: loading kubeconfig {}",
                        path.display()
                    )
                })?
        }
        None => kube::Config::incluster().with_context(|| {
            format!("auth.kubernetes {name}: no kubeconfig, and vcm is not running in a cluster")
        })?,
    };
    config.connect_timeout = Some(CONNECT_TIMEOUT);
    config.read_timeout = Some(READ_TIMEOUT);
    kube::Client::try_from(config)
        .with_context(|| format!("auth.kubernetes {name}: building a Kubernetes client"))
}
