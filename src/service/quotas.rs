//! Quotas per team and principal (`[quotas]`): checked on create under the placement locks, so
//! concurrent creates at the edge never exceed a quota (the in-process lock, and on PostgreSQL
//! the store's placement lock held across replicas, make count-then-insert atomic); and each
//! team's use against them.

use super::ClusterService;
use crate::config::quotas::{QuotaLimits, QuotasConfig};
use crate::domain::{Cluster, Principal};
use crate::error::{Error, Result};
use crate::store::OwnerUse;

/// A team's use against its quota (`GET /v1/teams/{team}/usage`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct TeamUsage {
    /// The team.
    pub team: String,
    /// Its live clusters (Pending, Provisioning, Ready).
    pub live_clusters: u64,
    /// Their TTLs, summed, in hours.
    pub ttl_hours: f64,
    /// Its quota: live clusters at once (absent: no limit).
    pub max_clusters: Option<u64>,
    /// Its quota: live clusters of each principal at once (absent: no limit).
    pub max_clusters_per_principal: Option<u64>,
    /// The sizes it may create (absent: every size).
    pub sizes: Option<Vec<String>>,
    /// Use by principal, most clusters first.
    pub principals: Vec<PrincipalUsage>,
}

/// One principal's live clusters in a team.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct PrincipalUsage {
    /// The principal's subject (`token:t-…`, `oidc:github/…`, `webhook:github/…`).
    pub subject: String,
    /// Its live clusters.
    pub live_clusters: u64,
    /// Their TTLs, summed, in hours.
    pub ttl_hours: f64,
}

// === impl ClusterService ===

impl ClusterService {
    /// The quotas in force.
    pub fn quotas(&self) -> &QuotasConfig {
        &self.policy.quotas
    }

    /// Refuse `cluster`'s size if its team may not create it (no store access: before the
    /// placement lock).
    pub(super) fn check_quota_size(&self, principal: &Principal, cluster: &Cluster) -> Result<()> {
        let Some(limits) = self.quotas().limits_for(principal.team.as_deref()) else {
            return Ok(());
        };
        match &limits.sizes {
            Some(sizes) if !sizes.contains(&cluster.size) => Err(Error::Denied {
                code: "quota_exceeded",
                message: format!(
                    "size {} is not allowed for {}; allowed: {} (quota sizes); ask for one of \
                     those or ask an admin to change [quotas]",
                    cluster.size,
                    team_words(principal),
                    sizes.join(", ")
                ),
            }),
            _ => Ok(()),
        }
    }

    /// Refuse one more live cluster for `principal` if its team or it is at its quota. Call
    /// under the placement lock, right before the insert.
    pub(super) async fn check_quota_count(&self, principal: &Principal) -> Result<()> {
        let Some(limits) = self.quotas().limits_for(principal.team.as_deref()) else {
            return Ok(());
        };
        if let (Some(max), Some(team)) = (limits.max_clusters, principal.team.as_deref()) {
            let used: u64 = self
                .store
                .team_use(team)
                .await?
                .iter()
                .map(|u| u.clusters)
                .sum();
            if used >= max {
                return Err(over("max_clusters", &format!("team {team}"), used, max));
            }
        }
        if let Some(max) = limits.max_clusters_per_principal {
            let used = self.store.owner_use(&principal.subject).await?.clusters;
            if used >= max {
                let who = format!("{} ({})", principal.display, principal.subject);
                return Err(over("max_clusters_per_principal", &who, used, max));
            }
        }
        Ok(())
    }

    /// `team`'s use against its quota. Admins may read any team's, others their own.
    pub async fn team_usage(&self, principal: &Principal, team: &str) -> Result<TeamUsage> {
        if !principal.is_admin() && principal.team.as_deref() != Some(team) {
            return Err(Error::Forbidden(format!(
                "only an admin or a member of team {team} may read its usage"
            )));
        }
        let mut owners = self.store.team_use(team).await?;
        owners.sort_by(|a, b| b.clusters.cmp(&a.clusters).then(a.owner.cmp(&b.owner)));
        let limits = self
            .quotas()
            .limits_for(Some(team))
            .cloned()
            .unwrap_or_else(QuotaLimits::default);
        Ok(TeamUsage {
            team: team.to_owned(),
            live_clusters: owners.iter().map(|u| u.clusters).sum(),
            ttl_hours: hours(owners.iter().map(|u| u.ttl_secs).sum()),
            max_clusters: limits.max_clusters,
            max_clusters_per_principal: limits.max_clusters_per_principal,
            sizes: limits.sizes,
            principals: owners.iter().map(principal_usage).collect(),
        })
    }
}

fn principal_usage(u: &OwnerUse) -> PrincipalUsage {
    PrincipalUsage {
        subject: u.owner.clone(),
        live_clusters: u.clusters,
        ttl_hours: hours(u.ttl_secs),
    }
}

#[allow(clippy::cast_precision_loss)]
fn hours(secs: u64) -> f64 {
    secs as f64 / 3600.0
}

fn team_words(p: &Principal) -> String {
    p.team.as_deref().map_or_else(
        || "principals without a team".to_owned(),
        |t| format!("team {t}"),
    )
}

fn over(quota: &str, whose: &str, used: u64, max: u64) -> Error {
    Error::Denied {
        code: "quota_exceeded",
        message: format!(
            "quota {quota} of {whose} reached: {used} live clusters of {max}; delete one \
             (vcm cluster list shows them) or ask an admin to raise [quotas]"
        ),
    }
}

#[cfg(test)]
#[path = "quotas_tests.rs"]
mod tests;
