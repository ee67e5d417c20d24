//! `[webhooks]` and `[[pull_requests]]`: which webhook doors are open and with which secrets,
//! and which repositories' pull requests get clusters, of what kind, owned by which team.

use std::collections::BTreeMap;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use crate::webhooks::Provider;

/// The webhook doors. A door without a section answers 404: nothing is accepted unsigned.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhooksConfig {
    /// `POST /v1/webhooks/github`.
    pub github: Option<DoorConfig>,
    /// `POST /v1/webhooks/bitbucket`.
    pub bitbucket: Option<DoorConfig>,
    /// vcm's address as people reach it (`https://vcm.example.com`): the link on each commit
    /// status. Needed once a door reports statuses.
    pub public_url: Option<String>,
}

/// One door's shared secrets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DoorConfig {
    /// Where each secret is: `env:NAME` or `file:/path` (one trailing newline is dropped). A
    /// delivery signed with any of them passes, so a secret is rotated by adding the new one,
    /// changing it at the provider, then removing the old one.
    pub secrets: Vec<String>,
    /// The provider's REST API: `https://api.github.com` (GitHub Enterprise Server:
    /// `https://HOST/api/v3`) or `https://api.bitbucket.org/2.0` (the defaults).
    pub api_url: Option<String>,
    /// Report each pull request's cluster on its commit with this token (`env:NAME` or
    /// `file:/path`): a GitHub fine-grained token with "Commit statuses: write", or a Bitbucket
    /// repository, project or workspace access token allowed to write pull requests' build
    /// statuses. Without `token` or `app_id` nothing is reported.
    pub token: Option<String>,
    /// GitHub only: report as this GitHub App (its client ID, or its numeric App ID), with an
    /// installation token for the installation each delivery names.
    pub app_id: Option<String>,
    /// GitHub only: the App's private key, PEM (`file:/path` or `env:NAME`).
    pub private_key: Option<String>,
    /// The status's name: GitHub's `context` (default `vcm/cluster`), Bitbucket's build status
    /// `key` (default `vcm-cluster`, at most 40 characters).
    pub context: Option<String>,
    /// GitHub App only: report check runs (in the Checks tab, with a summary, neutral when the
    /// pull request closes) instead of commit statuses. The App needs "Checks: write".
    pub check_runs: bool,
}

/// What a new commit on a pull request does to its cluster.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnNewCommit {
    /// Keep the cluster; its `sha` label moves to the new head (fast; state carries over).
    #[default]
    Keep,
    /// Delete the cluster and make a fresh one for the new head (clean; slower).
    Recreate,
}

/// One `[[pull_requests]]` rule: the repositories it matches and the clusters their pull
/// requests get. The first matching rule wins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrRule {
    /// `github` or `bitbucket`.
    pub provider: Provider,
    /// `owner/name` (`workspace/repo` on Bitbucket); `*` matches any run of characters but
    /// `/`, `?` one character. Compared without regard to case, as both providers do.
    pub repository: String,
    /// The team that owns the clusters: its members see and use them.
    pub team: String,
    /// Size profile (default: the server's).
    #[serde(default)]
    pub size: Option<String>,
    /// Kubernetes minor version (default: the server's).
    #[serde(default)]
    pub kubernetes_version: Option<String>,
    /// Lifetime (`4h`; default: the server's). A PR open longer gets a new cluster on its next
    /// commit.
    #[serde(default)]
    pub ttl: Option<String>,
    /// Idle timeout (default: the server's).
    #[serde(default)]
    pub idle_timeout: Option<String>,
    /// Host to place the clusters on.
    #[serde(default)]
    pub host: Option<String>,
    /// Labels the host must have.
    #[serde(default)]
    pub host_selector: Option<BTreeMap<String, String>>,
    /// Extra labels on each cluster (`provider`, `repo`, `repo-id`, `pr` and `sha` are vcm's).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Draft pull requests get no cluster until they are ready for review.
    #[serde(default = "yes")]
    pub skip_drafts: bool,
    /// What a new commit does to the cluster.
    #[serde(default)]
    pub on_new_commit: OnNewCommit,
}

fn yes() -> bool {
    true
}

// === impl DoorConfig ===

impl DoorConfig {
    /// The secrets, read now. Fails naming the entry that is unset, unreadable or empty.
    pub fn load(&self) -> anyhow::Result<Vec<Vec<u8>>> {
        self.load_with(|name| std::env::var(name).ok())
    }

    /// [`DoorConfig::load`] with `env` for the environment.
    fn load_with(&self, env: impl Fn(&str) -> Option<String>) -> anyhow::Result<Vec<Vec<u8>>> {
        anyhow::ensure!(
            !self.secrets.is_empty(),
            "no secrets: set `secrets = [\"env:NAME\"]` or `[\"file:/path\"]`"
        );
        self.secrets.iter().map(|s| load_secret(s, &env)).collect()
    }
}

/// The value of a secret entry (`env:NAME` or `file:/path`), read now.
pub fn read_secret(entry: &str) -> anyhow::Result<Vec<u8>> {
    load_secret(entry, &|name: &str| std::env::var(name).ok())
}

fn load_secret(entry: &str, env: &impl Fn(&str) -> Option<String>) -> anyhow::Result<Vec<u8>> {
    let value = if let Some(name) = entry.strip_prefix("env:") {
        env(name)
            .with_context(|| format!("secret {entry:?}: environment variable {name} is not set"))?
            .into_bytes()
    } else if let Some(path) = entry.strip_prefix("file:") {
        let mut bytes =
            std::fs::read(path).with_context(|| format!("secret {entry:?}: reading {path}"))?;
        if bytes.ends_with(b"\n") {
            bytes.pop();
            if bytes.ends_with(b"\r") {
                bytes.pop();
            }
        }
        bytes
    } else {
        anyhow::bail!("secret {entry:?}: write `env:NAME` or `file:/path`");
    };
    anyhow::ensure!(!value.is_empty(), "secret {entry:?} is empty");
    Ok(value)
}

// === impl PrRule ===

impl PrRule {
    /// Whether this rule is for `repository` of `provider`.
    pub fn matches(&self, provider: Provider, repository: &str) -> bool {
        self.provider == provider
            && glob(
                self.repository.to_ascii_lowercase().as_bytes(),
                repository.to_ascii_lowercase().as_bytes(),
            )
    }

    /// Refuses a rule that can never match or names no team.
    pub fn validate(&self) -> Result<(), String> {
        if self.repository.matches('/').count() != 1 {
            return Err(format!(
                "repository {:?} must be `owner/name` (globs allowed: `acme/*`)",
                self.repository
            ));
        }
        if self.team.trim().is_empty() {
            return Err("team must name the team that owns the clusters".into());
        }
        Ok(())
    }
}

/// The first rule for `repository` of `provider`.
pub fn rule_for<'a>(
    rules: &'a [PrRule],
    provider: Provider,
    repository: &str,
) -> Option<&'a PrRule> {
    rules.iter().find(|r| r.matches(provider, repository))
}

/// `*` (any run without `/`) and `?` (one character but `/`) against `text`.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match (pattern.split_first(), text.split_first()) {
        (None, None) => true,
        (None, Some(_)) => false,
        (Some((b'*', rest)), _) => {
            glob(rest, text)
                || matches!(text.split_first(), Some((c, more)) if *c != b'/' && glob(pattern, more))
        }
        (Some((b'?', rest)), Some((c, more))) => *c != b'/' && glob(rest, more),
        (Some((p, rest)), Some((c, more))) => p == c && glob(rest, more),
        (Some(_), None) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(provider: Provider, repository: &str) -> PrRule {
        serde_json::from_value(serde_json::json!({
            "provider": provider, "repository": repository, "team": "web",
        }))
        .expect("a rule")
    }

    #[test]
    fn rules_match_by_provider_and_repository_glob_without_regard_to_case() {
        let cases = [
            ("acme/*", "acme/web", true),
            ("acme/*", "Acme/Web", true),
            ("acme/*", "other/web", false),
            ("acme/web-?", "acme/web-1", true),
            ("acme/web-?", "acme/web-12", false),
            ("*/*", "anyone/anything", true),
            ("acme*", "acme/web", false),
            ("acme/web", "acme/web", true),
        ];
        for (pattern, repo, expected) in cases {
            assert_eq!(
                rule(Provider::Github, pattern).matches(Provider::Github, repo),
                expected,
                "{pattern} against {repo}"
            );
        }
        assert!(!rule(Provider::Github, "acme/*").matches(Provider::Bitbucket, "acme/web"));
    }

    #[test]
    fn a_rule_defaults_to_skipping_drafts_and_keeping_the_cluster_on_new_commits() {
        let r = rule(Provider::Bitbucket, "team/*");
        assert!(r.skip_drafts);
        assert_eq!(r.on_new_commit, OnNewCommit::Keep);
        assert_eq!(r.validate(), Ok(()));
        let bad = rule(Provider::Bitbucket, "team");
        assert!(bad.validate().expect_err("no owner").contains("owner/name"));
    }

    #[test]
    fn secrets_come_from_files_and_the_environment_and_each_failure_names_its_entry() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let file = dir.path().join("secret");
        std::fs::write(&file, "from-a-file\n").expect("written");
        let env = |name: &str| (name == "HOOK_SECRET").then(|| "from-env".to_owned());
        let door = DoorConfig {
            secrets: vec![format!("file:{}", file.display()), "env:HOOK_SECRET".into()],
            ..DoorConfig::default()
        };
        assert_eq!(
            door.load_with(env).expect("loaded"),
            vec![b"from-a-file".to_vec(), b"from-env".to_vec()]
        );
        for (entry, says) in [
            ("env:UNSET", "is not set"),
            ("file:/nonexistent/secret", "reading /nonexistent/secret"),
            ("plain-secret", "write `env:NAME` or `file:/path`"),
        ] {
            let err = DoorConfig {
                secrets: vec![entry.into()],
                ..DoorConfig::default()
            }
            .load_with(env)
            .expect_err(entry);
            assert!(format!("{err:#}").contains(says), "{entry}: {err:#}");
        }
    }
}
