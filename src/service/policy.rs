//! The operators' Rego policy on the request path (`[policy]`, see `docs/POLICY.md`): after the
//! role checks, every create, update, delete and kubeconfig is put to it; a denial is a
//! `403 policy_denied` carrying the policy's messages.

use std::sync::Arc;

use super::ClusterService;
use crate::api::ClusterJson;
use crate::domain::{Cluster, Principal};
use crate::error::{Error, Result};
use crate::policy::{Decision, InputPrincipal, Policy, PolicyInput, Usage};
use crate::store::Store;

// === impl ClusterService ===

impl ClusterService {
    /// The same service, putting requests to `policy` (`None`: no policy).
    #[must_use]
    pub fn with_policy(mut self, policy: Option<Arc<Policy>>) -> Self {
        self.rego = policy;
        self
    }

    /// `Ok` when the policy allows `principal` to do `action` (an `action::*` name) to
    /// `cluster` with `request`, or there is no policy. vcm's own work (`system:vcm`: TTL and
    /// idle deletions, cleanup) is never put to it.
    pub(super) async fn check_policy(
        &self,
        principal: &Principal,
        action: &str,
        cluster: Option<&Cluster>,
        request: Option<serde_json::Value>,
    ) -> Result<()> {
        put_to_policy(
            self.rego.as_ref(),
            &self.store,
            principal,
            action,
            cluster,
            request,
        )
        .await
    }

    /// The policy in force, if any.
    pub fn rego(&self) -> Option<&Arc<Policy>> {
        self.rego.as_ref()
    }
}

/// `Ok` when `policy` (if any) allows `principal` to do `action` to `cluster` with `request`;
/// a denial is `403 policy_denied` with the policy's messages.
pub(super) async fn put_to_policy(
    policy: Option<&Arc<Policy>>,
    store: &Arc<dyn Store>,
    principal: &Principal,
    action: &str,
    cluster: Option<&Cluster>,
    request: Option<serde_json::Value>,
) -> Result<()> {
    let Some(policy) = policy else {
        return Ok(());
    };
    if principal.subject == Principal::system().subject {
        return Ok(());
    }
    // NB: one version for gathering and deciding, so a reload in between cannot evaluate a
    // quota rule on an input gathered without usage.
    let policy = policy.compiled();
    let claims = principal.claims.as_deref().cloned().unwrap_or_default();
    let mut input = PolicyInput::new(InputPrincipal::from_principal(principal, claims), action);
    input = if policy.reads_usage() {
        input.with_usage(usage_of(store, principal).await?)
    } else {
        // Two counts over the store saved; no module can tell.
        input.without_usage()
    };
    if let Some(c) = cluster {
        let json = serde_json::to_value(ClusterJson(c)).map_err(|e| Error::Other(e.into()))?;
        input = input.with_cluster(json);
    }
    if let Some(r) = request {
        input = input.with_request(r);
    }
    // NB: evaluation is CPU work bounded by `[policy] timeout_ms`: off the async workers,
    // unless this version's recent evaluations all took under a millisecond, where the hop to
    // the blocking pool (two thread wake-ups) costs more than it spares the worker.
    let decision = if policy.is_cheap() {
        policy.evaluate(&input)
    } else {
        tokio::task::spawn_blocking(move || policy.evaluate(&input))
            .await
            .map_err(|e| Error::Other(anyhow::anyhow!("policy evaluation: {e}")))?
    };
    match decision {
        Decision::Allow => Ok(()),
        Decision::Deny(messages) => Err(Error::Denied {
            code: "policy_denied",
            message: format!("denied by policy: {}", messages.join("; ")),
        }),
    }
}

/// The caller's live clusters and its team's, as the policy input states them.
async fn usage_of(store: &Arc<dyn Store>, principal: &Principal) -> Result<Usage> {
    // NB: two reads at once: each waits on its own connection.
    let team = async {
        match principal.team.as_deref() {
            Some(t) => store.team_use(t).await,
            None => Ok(Vec::new()),
        }
    };
    let (own, team) = tokio::join!(store.owner_use(&principal.subject), team);
    let (own, team) = (own?, team?);
    #[allow(clippy::cast_precision_loss)]
    let hours = |secs: u64| secs as f64 / 3600.0;
    Ok(Usage {
        team_live_clusters: team.iter().map(|u| u.clusters).sum(),
        principal_live_clusters: own.clusters,
        team_ttl_hours: hours(team.iter().map(|u| u.ttl_secs).sum()),
        principal_ttl_hours: hours(own.ttl_secs),
    })
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
