//! `[crd]`: the VirtualCluster door (`docs` in the README, "Clusters from GitOps"): whether it is
//! on, which management cluster it watches, and which team each namespace's objects belong to.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::domain::Ttl;

/// `[crd]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CrdConfig {
    /// Run the VirtualCluster controller (on one replica at a time).
    pub enabled: bool,
    /// The management cluster's kubeconfig; none: the in-cluster configuration (vcm's own
    /// ServiceAccount), as in the Helm chart.
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use (default: its current context).
    pub context: Option<String>,
    /// Lifetime of the token in each kubeconfig Secret (renewed two thirds in; never beyond
    /// the cluster's expiry, nor `clusters.max_kubeconfig_ttl`).
    pub kubeconfig_ttl: String,
    /// Namespace → team: objects in a namespace listed here make clusters for that team (quota,
    /// policy and visibility as the team's); objects elsewhere are refused in their status.
    pub namespaces: BTreeMap<String, String>,
}

impl Default for CrdConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            kubeconfig: None,
            context: None,
            kubeconfig_ttl: "1h".into(),
            namespaces: BTreeMap::new(),
        }
    }
}

// === impl CrdConfig ===

impl CrdConfig {
    /// Checks that an enabled door can work, with messages that name the fix.
    pub fn validate(&self) -> Result<(), String> {
        if !self.enabled {
            return Ok(());
        }
        if self.namespaces.is_empty() {
            return Err(
                "[crd] enabled = true but [crd.namespaces] maps no namespace to a team, \
                 so every VirtualCluster would be refused: add lines such as `ci-web = \"web\"` \
                 under [crd.namespaces] (or set [crd] enabled = false)"
                    .into(),
            );
        }
        for (ns, team) in &self.namespaces {
            if !is_dns_label(ns) {
                return Err(format!(
                    "[crd.namespaces]: {ns:?} is not a namespace name (lowercase letters, digits \
                     and '-', at most 63, starting and ending with a letter or digit)"
                ));
            }
            crate::service::team_name(team)
                .map_err(|e| format!("[crd.namespaces] {ns} = {team:?}: {e}"))?;
        }
        Ttl::parse("kubeconfig_ttl", &self.kubeconfig_ttl)
            .map_err(|e| format!("[crd] kubeconfig_ttl: {e} (e.g. \"1h\")"))?;
        if let Some(path) = &self.kubeconfig
            && !path.is_file()
        {
            return Err(format!(
                "[crd] kubeconfig = {:?}: no such file; give the management cluster's \
                 kubeconfig, or leave kubeconfig out when vcm runs inside that cluster",
                path.display().to_string()
            ));
        }
        Ok(())
    }

    /// The team of `namespace`'s objects, if it is mapped.
    pub fn team_of(&self, namespace: &str) -> Option<&str> {
        self.namespaces.get(namespace).map(String::as_str)
    }
}

fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enabled(namespaces: &[(&str, &str)]) -> CrdConfig {
        CrdConfig {
            enabled: true,
            namespaces: namespaces
                .iter()
                .map(|(n, t)| ((*n).to_owned(), (*t).to_owned()))
                .collect(),
            ..CrdConfig::default()
        }
    }

    #[test]
    fn an_enabled_door_refuses_bad_settings_with_the_fix_in_the_message() {
        // Table: (config, what the message must contain, why).
        let missing = CrdConfig {
            kubeconfig: Some("/nonexistent/kubeconfig".into()),
            ..enabled(&[("ci", "web")])
        };
        let bad_ttl = CrdConfig {
            kubeconfig_ttl: "soon".into(),
            ..enabled(&[("ci", "web")])
        };
        let cases = [
            (
                enabled(&[]),
                "[crd.namespaces]",
                "no mapping refuses everything",
            ),
            (
                enabled(&[("Bad_NS", "web")]),
                "not a namespace name",
                "namespace syntax",
            ),
            (
                enabled(&[("ci", "Web Team")]),
                "not a team name",
                "team syntax",
            ),
            (
                missing,
                "no such file",
                "a kubeconfig path that is not there",
            ),
            (bad_ttl, "kubeconfig_ttl", "a ttl that does not parse"),
        ];
        for (config, expected, why) in cases {
            let err = config.validate().expect_err(why);
            assert!(err.contains(expected), "{why}: {err}");
        }
    }

    #[test]
    fn a_disabled_door_or_a_mapped_namespace_passes_and_maps_to_its_team() {
        assert_eq!(CrdConfig::default().validate(), Ok(()));
        let config = enabled(&[("ci-web", "web")]);
        assert_eq!(config.validate(), Ok(()));
        assert_eq!(config.team_of("ci-web"), Some("web"));
        assert_eq!(config.team_of("default"), None);
    }
}
