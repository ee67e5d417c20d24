//! `[quotas]`: how many live clusters each team and each principal may hold at once, and which
//! sizes a team may create, without writing a policy.
//!
//! ```toml
//! [quotas.default]                 # every team without an entry, and principals without a team
//! max_clusters = 20
//! max_clusters_per_principal = 5
//!
//! [quotas.teams.web]
//! max_clusters = 10                # live clusters of the team at once
//! max_clusters_per_principal = 3   # each member (token, CI identity, webhook) at once
//! sizes = ["small", "medium"]      # the sizes the team may create
//! ```
//!
//! NB: sizes are named profiles without one order (a GPU size is neither larger nor smaller
//! than a big-memory one), so "the largest size a team may use" is stated as the list of sizes
//! it may use.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The `[quotas]` section.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuotasConfig {
    /// Limits of every team without an entry of its own, and of principals without a team.
    pub default: Option<QuotaLimits>,
    /// Limits per team name.
    pub teams: BTreeMap<String, QuotaLimits>,
}

/// One team's limits; an unset limit is no limit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuotaLimits {
    /// Live clusters (Pending, Provisioning, Ready) of the team at once.
    pub max_clusters: Option<u64>,
    /// Live clusters of each of its principals at once.
    pub max_clusters_per_principal: Option<u64>,
    /// The sizes it may create (default: every size).
    pub sizes: Option<Vec<String>>,
}

// === impl QuotasConfig ===

impl QuotasConfig {
    /// The limits that apply to `team` (`None`: a principal without a team).
    pub fn limits_for(&self, team: Option<&str>) -> Option<&QuotaLimits> {
        team.and_then(|t| self.teams.get(t))
            .or(self.default.as_ref())
    }

    /// Every size named is offered; errors name the entry.
    pub fn validate(&self, sizes: &[String]) -> anyhow::Result<()> {
        let entries = self
            .default
            .iter()
            .map(|l| ("quotas.default".to_owned(), l))
            .chain(
                self.teams
                    .iter()
                    .map(|(t, l)| (format!("quotas.teams.{t}"), l)),
            );
        for (at, limits) in entries {
            for size in limits.sizes.iter().flatten() {
                anyhow::ensure!(
                    sizes.contains(size),
                    "{at}.sizes: {size:?} is not a size this server offers ({})",
                    sizes.join(", ")
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_team_gets_its_own_limits_else_the_default_and_unknown_sizes_are_refused() {
        let q: QuotasConfig = toml_quotas(
            "[default]\nmax_clusters = 20\n[teams.web]\nmax_clusters = 3\nsizes = [\"small\"]\n",
        );
        assert_eq!(
            q.limits_for(Some("web")).and_then(|l| l.max_clusters),
            Some(3)
        );
        assert_eq!(
            q.limits_for(Some("data")).and_then(|l| l.max_clusters),
            Some(20)
        );
        assert_eq!(q.limits_for(None).and_then(|l| l.max_clusters), Some(20));
        let offered = ["small".to_owned(), "large".to_owned()];
        assert!(q.validate(&offered).is_ok());
        let bad = toml_quotas("[teams.web]\nsizes = [\"huge\"]\n");
        let err = bad.validate(&offered).expect_err("huge").to_string();
        assert!(
            err.contains("quotas.teams.web.sizes") && err.contains("huge"),
            "{err}"
        );
    }

    fn toml_quotas(toml: &str) -> QuotasConfig {
        use figment::Figment;
        use figment::providers::{Format as _, Toml};
        Figment::from(Toml::string(toml))
            .extract()
            .expect("a [quotas] section")
    }
}
