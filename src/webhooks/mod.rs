//! Pull-request clusters: GitHub and Bitbucket webhooks get a cluster for each open pull
//! request of a repository a `[[pull_requests]]` rule names, keep it at the head commit, and
//! delete it when the pull request closes.
//!
//! The door (`http::webhooks`) checks the signature over the raw body, reads the event
//! ([`event`]), and records the delivery and what it changes of its pull request in one
//! transaction ([`crate::domain::PullRequest::next`]), then answers. The [`Engine`] carries
//! the recorded changes out through the same cluster use-cases as the API: a crash after the
//! answer loses nothing, and a redelivery (same delivery id) is a no-op.

mod engine;
pub mod event;
pub mod signature;
pub mod status;

use sha2::{Digest as _, Sha256};

pub use self::engine::{Engine, repo_label};
pub use self::event::{
    Change, ParseError, Parsed, PrEvent, Provider, parse_bitbucket, parse_github,
};
use crate::config::{DoorConfig, WebhooksConfig};
use crate::domain::{PrUpdate, PrWant};

/// Cluster names are at most this long (the API's limit).
const MAX_NAME: usize = 40;

/// The open webhook doors: each configured provider's secrets, and the engine they wake.
pub struct Doors {
    github: Option<Vec<Vec<u8>>>,
    bitbucket: Option<Vec<Vec<u8>>>,
    engine: Engine,
}

impl std::fmt::Debug for Doors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Doors")
            .field("github", &self.github.is_some())
            .field("bitbucket", &self.bitbucket.is_some())
            .finish_non_exhaustive()
    }
}

// === impl Doors ===

impl Doors {
    /// The doors `config` opens, their secrets read now (a missing one fails the start,
    /// naming it), waking `engine`.
    pub fn new(config: &WebhooksConfig, engine: Engine) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        let load = |door: &Option<DoorConfig>, name: &str| {
            door.as_ref()
                .map(|d| d.load().with_context(|| format!("[webhooks.{name}]")))
                .transpose()
        };
        engine.check_rules()?;
        Ok(Self {
            github: load(&config.github, "github")?,
            bitbucket: load(&config.bitbucket, "bitbucket")?,
            engine,
        })
    }

    /// The secrets of `provider`'s door, `None` if it is not open.
    pub fn secrets(&self, provider: Provider) -> Option<&[Vec<u8>]> {
        match provider {
            Provider::Github => self.github.as_deref(),
            Provider::Bitbucket => self.bitbucket.as_deref(),
        }
    }

    /// The engine carrying out what the doors record.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }
}

/// The store's key of a pull request: `github:acme/web#42` (repository lowercased: both
/// providers treat names without regard to case).
pub fn key(provider: Provider, repository: &str, number: u64) -> String {
    format!("{provider}:{}#{number}", repository.to_ascii_lowercase())
}

/// The cluster name of a pull request: `gh-<repo>-<number>-<hash>` (`bb-` for Bitbucket), a
/// DNS-1123 label of at most 40 characters. Stable per provider, repository and number; the
/// hash of the key keeps two repositories of the same name (other owners) apart.
pub fn cluster_name(provider: Provider, repository: &str, number: u64) -> String {
    let prefix = match provider {
        Provider::Github => "gh",
        Provider::Bitbucket => "bb",
    };
    let hash = hex::encode(&Sha256::digest(key(provider, repository, number).as_bytes())[..3]);
    let tail = format!("-{number}-{hash}");
    let name = repository.rsplit('/').next().unwrap_or(repository);
    let mut slug = String::new();
    for c in name.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    let room = MAX_NAME.saturating_sub(prefix.len() + 1 + tail.len());
    slug.truncate(room);
    let slug = slug.trim_end_matches('-');
    if slug.is_empty() {
        format!("{prefix}{tail}")
    } else {
        format!("{prefix}-{slug}{tail}")
    }
}

/// What `event` asks of its pull request, for the store.
pub fn update_of(event: &PrEvent) -> PrUpdate {
    PrUpdate {
        key: key(event.provider, &event.repository, event.number),
        provider: event.provider.as_str().to_owned(),
        repository: event.repository.clone(),
        number: event.number,
        want: match event.change {
            Change::Open => PrWant::Open,
            Change::Move => PrWant::Move,
            Change::Close => PrWant::Close,
        },
        head_sha: event.head_sha.clone(),
        branch: event.branch.clone(),
        url: event.url.clone(),
        installation_id: event.installation_id,
        repository_id: event.repository_id.clone(),
        version_ms: event.updated_at_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ClusterName;

    #[test]
    fn cluster_names_are_stable_valid_short_and_apart_for_same_named_repositories() {
        let a = cluster_name(Provider::Github, "acme/web", 42);
        assert_eq!(a, cluster_name(Provider::Github, "Acme/Web", 42), "case");
        assert!(a.starts_with("gh-web-42-"), "{a}");
        let other_owner = cluster_name(Provider::Github, "other/web", 42);
        let bitbucket = cluster_name(Provider::Bitbucket, "acme/web", 42);
        assert_ne!(a, other_owner);
        assert!(bitbucket.starts_with("bb-web-42-"), "{bitbucket}");
        let long = cluster_name(
            Provider::Github,
            "acme/An_Extremely..Long Repository-Name-That-Goes-On",
            123_456,
        );
        for name in [&a, &other_owner, &bitbucket, &long] {
            assert!(name.len() <= MAX_NAME, "{name}");
            ClusterName::parse(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        assert!(long.starts_with("gh-an-extremely-long-"), "{long}");
        let symbols = cluster_name(Provider::Github, "acme/___", 1);
        ClusterName::parse(&symbols).unwrap_or_else(|e| panic!("{symbols}: {e}"));
    }
}
