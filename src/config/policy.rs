//! `[policy]`: an optional Rego policy evaluated on every mutating request after the role checks
//! (see `docs/POLICY.md` and [`crate::policy`]).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Longest time limit accepted for one evaluation. The evaluation runs inside a request, so a
/// limit of seconds would turn a slow policy into slow requests for everyone; 10 s is already
/// far beyond any sensible policy (the shipped examples take microseconds).
const MAX_TIMEOUT_MS: u64 = 10_000;

/// The `[policy]` section. No `paths`: no policy, every request the roles allow goes through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyConfig {
    /// `.rego` files, or directories whose `*.rego` files (not those of subdirectories) are all
    /// loaded, in name order. Every file is one module of the policy; the decision is
    /// `data.vcm.deny`.
    pub paths: Vec<PathBuf>,
    /// A JSON (or YAML: `.yaml`/`.yml`) document loaded as `data`, e.g. per-team settings
    /// (`data.teams.<team>.sizes`). Must hold an object.
    pub data: Option<PathBuf>,
    /// Time limit of one evaluation, in milliseconds. A policy that takes longer denies the
    /// request with a message that says so (fail closed), it never hangs it.
    pub timeout_ms: u64,
    /// How often, in seconds, the files are checked for changes (modification time or size);
    /// a changed policy is recompiled, and one that does not compile leaves the previous one
    /// in force.
    pub reload_secs: u64,
}

// === impl PolicyConfig ===

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            paths: Vec::new(),
            data: None,
            timeout_ms: 100,
            reload_secs: 2,
        }
    }
}

impl PolicyConfig {
    /// Whether a policy is configured at all.
    pub fn enabled(&self) -> bool {
        !self.paths.is_empty()
    }

    /// Checks the values on their own (the files are read when the policy loads); the error
    /// names the key.
    pub fn validate(&self) -> Result<(), String> {
        if self.paths.iter().any(|p| p.as_os_str().is_empty()) {
            return Err("policy.paths: an entry is empty; give .rego files or directories".into());
        }
        if self.data.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
            return Err("policy.data is empty; give a JSON or YAML file, or leave it out".into());
        }
        if self.data.is_some() && self.paths.is_empty() {
            return Err(
                "policy.data is set but policy.paths is empty: data without a policy decides \
                 nothing; add the .rego files to policy.paths"
                    .into(),
            );
        }
        if self.timeout_ms == 0 || self.timeout_ms > MAX_TIMEOUT_MS {
            return Err(format!(
                "policy.timeout_ms = {}: between 1 and {MAX_TIMEOUT_MS} (each mutating request \
                 waits for the evaluation; the default is 100)",
                self.timeout_ms
            ));
        }
        if self.reload_secs == 0 {
            return Err(
                "policy.reload_secs = 0: at least 1 (the files are checked that often)".into(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_no_policy_and_valid() {
        let config = PolicyConfig::default();

        assert!(!config.enabled());
        assert_eq!(config.validate(), Ok(()));
        assert_eq!((config.timeout_ms, config.reload_secs), (100, 2));
    }

    #[test]
    fn bad_values_are_refused_naming_the_key() {
        let with_paths = PolicyConfig {
            paths: vec!["deploy/policies".into()],
            ..PolicyConfig::default()
        };
        let cases = [
            (
                PolicyConfig {
                    timeout_ms: 0,
                    ..with_paths.clone()
                },
                "policy.timeout_ms",
                "a zero time limit denies everything",
            ),
            (
                PolicyConfig {
                    timeout_ms: MAX_TIMEOUT_MS + 1,
                    ..with_paths.clone()
                },
                "policy.timeout_ms",
                "a limit of seconds makes every request slow",
            ),
            (
                PolicyConfig {
                    reload_secs: 0,
                    ..with_paths.clone()
                },
                "policy.reload_secs",
                "checking the files in a busy loop",
            ),
            (
                PolicyConfig {
                    data: Some("teams.json".into()),
                    ..PolicyConfig::default()
                },
                "policy.paths",
                "data without a policy",
            ),
            (
                PolicyConfig {
                    paths: vec![PathBuf::new()],
                    ..PolicyConfig::default()
                },
                "policy.paths",
                "an empty path",
            ),
        ];
        for (config, key, reason) in cases {
            let err = config.validate().expect_err(reason);
            assert!(err.contains(key), "{reason}: {err}");
        }
    }

    #[test]
    fn the_section_parses_from_toml_and_refuses_unknown_keys() {
        let parsed: PolicyConfig = toml_from(
            r#"
            paths = ["/etc/vcm/policies"]
            data = "/etc/vcm/policy-data.json"
            timeout_ms = 50
            "#,
        )
        .expect("a valid section");
        let typo = toml_from("path = [\"/etc/vcm/policies\"]");

        assert_eq!(parsed.paths, vec![PathBuf::from("/etc/vcm/policies")]);
        assert_eq!(parsed.timeout_ms, 50);
        assert_eq!(parsed.reload_secs, 2, "unset keys keep their default");
        assert!(
            typo.is_err(),
            "an unknown key is an error, not a silent default"
        );
    }

    fn toml_from(s: &str) -> Result<PolicyConfig, String> {
        use figment::providers::{Format as _, Toml};
        figment::Figment::from(Toml::string(s))
            .extract()
            .map_err(|e| e.to_string())
    }
}
