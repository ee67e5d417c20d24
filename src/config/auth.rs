//! The `[auth]` section: which bearer tokens besides vcm API tokens are accepted, and which
//! principal each becomes.
//!
//! ```toml
//! [[auth.oidc]]
//! name = "github"
//! issuer = "https://token.actions.githubusercontent.com"
//! audience = "vcm"
//! [[auth.oidc.rules]]
//! claims = { repository = "acme/web", ref = "refs/heads/main" }
//! role = "ci"
//! team = "web"
//!
//! [[auth.kubernetes]]
//! host = "eks-us-east-1"
//! [[auth.kubernetes.rules]]
//! namespace = "ci"
//! role = "ci"
//! ```
//!
//! NB: a rule must name at least one claim (or a namespace): a rule matching every token of an
//! issuer would let any repository on GitHub that picks the same audience in.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::HostConfig;
use crate::domain::Role;

/// Default for `clock_skew_secs`: tolerated clock difference between vcm and an issuer.
pub const DEFAULT_CLOCK_SKEW_SECS: u64 = 60;
/// Default for `jwks_min_refetch_secs`: a token with an unknown key id makes vcm refetch the
/// issuer's keys at most this often, so made-up key ids cannot hammer the issuer.
pub const DEFAULT_JWKS_MIN_REFETCH_SECS: u64 = 30;
/// Default for `audience` of `[[auth.kubernetes]]`.
pub const DEFAULT_KUBERNETES_AUDIENCE: &str = "vcm";
/// Default for `cache_secs` of `[[auth.kubernetes]]`.
pub const DEFAULT_TOKENREVIEW_CACHE_SECS: u64 = 30;

/// Bearer tokens accepted besides vcm API tokens.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// CI OIDC issuers (GitHub Actions, Bitbucket Pipelines, …) whose ID tokens are accepted.
    pub oidc: Vec<OidcIssuerConfig>,
    /// Kubernetes clusters whose ServiceAccount tokens are accepted (checked by TokenReview).
    pub kubernetes: Vec<KubernetesAuthConfig>,
}

/// One `[[auth.oidc]]` issuer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OidcIssuerConfig {
    /// Short name; principals are `oidc:<name>/<sub>`.
    pub name: String,
    /// The exact `iss` of the tokens (`https://token.actions.githubusercontent.com`).
    pub issuer: String,
    /// The `aud` tokens must carry (a CI job asks for it, e.g. `core.getIDToken("vcm")`).
    pub audience: String,
    /// Where the signing keys are; default: `jwks_uri` of the issuer's OIDC discovery document.
    pub jwks_url: Option<String>,
    /// Tolerated clock difference for `exp`, `nbf` and `iat`.
    pub clock_skew_secs: u64,
    /// Fewest seconds between two fetches of the keys caused by unknown key ids.
    pub jwks_min_refetch_secs: u64,
    /// Which tokens are accepted and as whom; the first matching rule wins.
    pub rules: Vec<OidcRule>,
}

/// One `[[auth.oidc.rules]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcRule {
    /// Name for logs (optional).
    #[serde(default)]
    pub name: Option<String>,
    /// Claim name -> exact value; every one must match.
    pub claims: BTreeMap<String, String>,
    /// Role of a matching token.
    pub role: Role,
    /// Team of a matching token.
    #[serde(default)]
    pub team: Option<String>,
    /// The claim naming the token's repository (`repository_id` or `repository` on GitHub,
    /// `repositoryUuid` on Bitbucket): a matching token may also read, take credentials of
    /// and keep alive the pull-request clusters vcm's webhooks made for that repository, with
    /// no other grant on its team's clusters.
    #[serde(default)]
    pub pull_request_clusters: Option<String>,
}

/// One `[[auth.kubernetes]]` cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KubernetesAuthConfig {
    /// A `[[hosts]]` entry whose kubeconfig and context reach the cluster.
    pub host: Option<String>,
    /// Or a kubeconfig file of its own (then `name` is needed).
    pub kubeconfig: Option<PathBuf>,
    /// Context in `kubeconfig` (default: its current context).
    pub context: Option<String>,
    /// The cluster's name in principals (`sa:<name>/<ns>/<sa>`); default: `host`.
    pub name: Option<String>,
    /// The audience tokens must be minted for (`TokenReview` `spec.audiences`).
    pub audience: String,
    /// Seconds a TokenReview answer (yes or no) is reused for the same token.
    pub cache_secs: u64,
    /// Which ServiceAccounts are accepted and as whom; the first matching rule wins.
    pub rules: Vec<ServiceAccountRule>,
}

/// One `[[auth.kubernetes.rules]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceAccountRule {
    /// The ServiceAccount's namespace.
    pub namespace: String,
    /// The ServiceAccount's name; `None`: any in the namespace.
    #[serde(default)]
    pub service_account: Option<String>,
    /// Role of a matching ServiceAccount.
    pub role: Role,
    /// Team of a matching ServiceAccount.
    #[serde(default)]
    pub team: Option<String>,
}

// === impl AuthConfig ===

impl AuthConfig {
    /// Every entry is usable; errors name the key and what to write instead.
    pub fn validate(&self, hosts: &[HostConfig]) -> anyhow::Result<()> {
        let mut names = HashSet::new();
        let mut issuers = HashSet::new();
        for (i, o) in self.oidc.iter().enumerate() {
            let at = format!("auth.oidc[{i}]");
            anyhow::ensure!(
                !o.name.is_empty(),
                "{at}: needs a name (principals are oidc:<name>/<sub>)"
            );
            anyhow::ensure!(
                names.insert(o.name.as_str()),
                "{at}: two [[auth.oidc]] entries are named {:?}",
                o.name
            );
            check_url(&o.issuer).map_err(|e| anyhow::anyhow!("{at}.issuer: {e}"))?;
            anyhow::ensure!(
                issuers.insert(o.issuer.trim_end_matches('/')),
                "{at}: issuer {:?} is configured twice",
                o.issuer
            );
            anyhow::ensure!(
                !o.audience.is_empty(),
                "{at}.audience: required; use a value only vcm accepts (e.g. \"vcm\") and \
                 request it in the job (GitHub: core.getIDToken(\"vcm\"); Bitbucket: \
                 oidc: audiences: [vcm])"
            );
            if let Some(url) = &o.jwks_url {
                check_url(url).map_err(|e| anyhow::anyhow!("{at}.jwks_url: {e}"))?;
            }
            anyhow::ensure!(
                !o.rules.is_empty(),
                "{at}: no [[auth.oidc.rules]]: without one no token of {} is accepted",
                o.issuer
            );
            for (j, r) in o.rules.iter().enumerate() {
                anyhow::ensure!(
                    !r.claims.is_empty(),
                    "{at}.rules[{j}]: claims is empty, which would accept every token of the \
                     issuer; name the repository (GitHub: repository or repository_id; \
                     Bitbucket: repositoryUuid)"
                );
            }
        }
        let mut clusters = HashSet::new();
        for (i, k) in self.kubernetes.iter().enumerate() {
            let at = format!("auth.kubernetes[{i}]");
            match (&k.host, &k.kubeconfig) {
                (Some(host), None) => anyhow::ensure!(
                    hosts.iter().any(|h| &h.name == host),
                    "{at}.host: no [[hosts]] entry is named {host:?}"
                ),
                (None, Some(_)) => anyhow::ensure!(
                    k.name.is_some(),
                    "{at}: a kubeconfig entry needs a name (principals are sa:<name>/<ns>/<sa>)"
                ),
                _ => anyhow::bail!(
                    "{at}: set exactly one of host (a [[hosts]] entry) and kubeconfig (a file)"
                ),
            }
            anyhow::ensure!(
                clusters.insert(k.cluster_name()),
                "{at}: two [[auth.kubernetes]] entries are named {:?}",
                k.cluster_name()
            );
            anyhow::ensure!(!k.audience.is_empty(), "{at}.audience: must not be empty");
            anyhow::ensure!(
                !k.rules.is_empty(),
                "{at}: no [[auth.kubernetes.rules]]: without one no ServiceAccount is accepted"
            );
            for (j, r) in k.rules.iter().enumerate() {
                anyhow::ensure!(
                    !r.namespace.is_empty(),
                    "{at}.rules[{j}].namespace: must not be empty"
                );
            }
        }
        Ok(())
    }
}

/// `url` is https, or http on a loopback address (for tests and sidecars).
pub fn check_url(url: &str) -> Result<reqwest::Url, String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    let loopback = match parsed.host_str() {
        Some("localhost") => true,
        Some(h) => h
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    };
    match parsed.scheme() {
        "https" if parsed.host().is_some() => Ok(parsed),
        "http" if loopback => Ok(parsed),
        "http" => Err(format!(
            "{url:?} uses plain http: use https (http is allowed only on loopback addresses)"
        )),
        _ => Err(format!("{url:?} must be an https:// URL")),
    }
}

// === impl OidcIssuerConfig ===

impl Default for OidcIssuerConfig {
    fn default() -> Self {
        Self {
            name: String::new(),
            issuer: String::new(),
            audience: String::new(),
            jwks_url: None,
            clock_skew_secs: DEFAULT_CLOCK_SKEW_SECS,
            jwks_min_refetch_secs: DEFAULT_JWKS_MIN_REFETCH_SECS,
            rules: vec![],
        }
    }
}

// === impl KubernetesAuthConfig ===

impl Default for KubernetesAuthConfig {
    fn default() -> Self {
        Self {
            host: None,
            kubeconfig: None,
            context: None,
            name: None,
            audience: DEFAULT_KUBERNETES_AUDIENCE.into(),
            cache_secs: DEFAULT_TOKENREVIEW_CACHE_SECS,
            rules: vec![],
        }
    }
}

impl KubernetesAuthConfig {
    /// The cluster's name in principals: `name`, else `host`.
    pub fn cluster_name(&self) -> &str {
        self.name
            .as_deref()
            .or(self.host.as_deref())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests;
