//! Carries out what webhook deliveries recorded: for each pull request with a change not yet
//! carried out, makes, moves or deletes its cluster through the cluster use-cases, then marks
//! that generation done. Runs every second and whenever a delivery was recorded.
//!
//! Crash-safe by construction: the change is in the store before the door answers, a create
//! carries an idempotency key per pull request and generation (a retry after a crash gets the
//! cluster the first attempt made), and a generation is marked done only after its work.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::Provider;
use super::status::Reporter;
use crate::config::{OnNewCommit, PrRule, rule_for};
use crate::domain::{Cluster, DeleteReason, Phase, Principal, PullRequest, RepoGrant, Role};
use crate::error::{ErrorKind, Result};
use crate::service::{ClusterService, ClusterSpec, ClusterUpdate, IdempotencyKey};

/// How often pending pull requests are looked at without a new delivery.
const EVERY: Duration = Duration::from_secs(1);
/// Pull requests taken per pass.
const BATCH: usize = 50;
/// Longest wait before a pull request whose work keeps failing is tried again.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// A pull request whose work failed: when to try again, how many failures in a row, the
/// last error.
type Failing = (Instant, u32, String);

/// The engine: the cluster use-cases, the rules, and the doorbell the doors ring.
#[derive(Clone)]
pub struct Engine {
    service: ClusterService,
    rules: Arc<Vec<PrRule>>,
    wake: Arc<Notify>,
    /// Pull requests whose work failed: when to try again, how many failures so far, and
    /// the last error.
    backoff: Arc<Mutex<HashMap<String, Failing>>>,
    /// Shows each pull request's cluster on its commit, if a door reports statuses.
    reporter: Option<Arc<Reporter>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("rules", &self.rules.len())
            .field("reporter", &self.reporter)
            .finish_non_exhaustive()
    }
}

// === impl Engine ===

impl Engine {
    /// An engine acting on `rules` through `service`.
    pub fn new(service: ClusterService, rules: Vec<PrRule>) -> Self {
        Self {
            service,
            rules: Arc::new(rules),
            wake: Arc::new(Notify::new()),
            backoff: Arc::default(),
            reporter: None,
        }
    }

    /// The same engine, showing each pull request's cluster on its commit through `reporter`.
    #[must_use]
    pub fn with_reporter(self, reporter: Option<Reporter>) -> Self {
        Self {
            reporter: reporter.map(Arc::new),
            ..self
        }
    }

    /// The error of `key`'s last failed attempt, while its work keeps failing.
    pub fn failing(&self, key: &str) -> Option<String> {
        let map = self.backoff.lock().unwrap_or_else(|e| e.into_inner());
        map.get(key).map(|(_, _, error)| error.clone())
    }

    /// The rules it acts on.
    pub fn rules(&self) -> &[PrRule] {
        &self.rules
    }

    /// Refuses a rule whose clusters could never be made (an unknown size or version, a bad
    /// duration or label), so that shows when the server starts, not on a pull request.
    pub fn check_rules(&self) -> anyhow::Result<()> {
        for rule in self.rules.iter() {
            rule.validate()
                .map_err(|e| anyhow::anyhow!("[[pull_requests]] {}: {e}", rule.repository))?;
            let sample = rule.repository.replace(['*', '?'], "x");
            let spec = spec(rule, rule.provider, &sample, 1, &"0".repeat(40), Some("1"));
            self.service
                .check_spec(&principal(rule.provider, &sample, rule), spec)
                .map_err(|e| anyhow::anyhow!("[[pull_requests]] {}: {e}", rule.repository))?;
        }
        Ok(())
    }

    /// Ask for a pass now (a delivery was recorded).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Run until `shutdown` is cancelled.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        if let Some(reporter) = self.reporter.clone() {
            let engine = self.clone();
            let stop = shutdown.clone();
            tokio::spawn(async move {
                loop {
                    reporter.pass(&|key| engine.failing(key)).await;
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep(EVERY) => {}
                    }
                }
            });
        }
        loop {
            self.pass().await;
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                () = self.wake.notified() => {}
                () = tokio::time::sleep(EVERY) => {}
            }
        }
    }

    /// Carry out every pending pull request once; failures are logged and retried next pass.
    pub async fn pass(&self) {
        let pending = match self.service.store().pending_pull_requests(BATCH).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "listing pending pull requests");
                return;
            }
        };
        for pr in pending {
            if self.backing_off(&pr.key) {
                continue;
            }
            match self.carry_out(&pr).await {
                Ok(()) => self.succeeded(&pr.key),
                Err(e) => {
                    let wait = self.failed(&pr.key, &e.to_string());
                    tracing::warn!(
                        pull_request = %pr.key, error = %e, retry_in_secs = wait.as_secs(),
                        "pull request not carried out yet"
                    );
                }
            }
        }
    }

    fn backing_off(&self, key: &str) -> bool {
        let map = self.backoff.lock().unwrap_or_else(|e| e.into_inner());
        map.get(key).is_some_and(|(at, _, _)| Instant::now() < *at)
    }

    fn succeeded(&self, key: &str) {
        let mut map = self.backoff.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(key);
    }

    /// Note a failure of `key`'s work; how long until it is tried again (1 s, doubling, at
    /// most [`MAX_BACKOFF`]).
    fn failed(&self, key: &str, error: &str) -> Duration {
        let mut map = self.backoff.lock().unwrap_or_else(|e| e.into_inner());
        let failures = map.get(key).map_or(0, |(_, n, _)| *n).saturating_add(1);
        let wait = backoff_after(failures);
        map.insert(
            key.to_owned(),
            (Instant::now() + wait, failures, error.to_owned()),
        );
        wait
    }

    async fn carry_out(&self, pr: &PullRequest) -> Result<()> {
        let provider = provider_of(pr);
        let store = self.service.store();
        let current = match &pr.cluster_id {
            Some(id) => store
                .get_cluster(id)
                .await?
                .filter(|c| !matches!(c.phase, Phase::Deleting | Phase::Deleted)),
            None => None,
        };
        let Some(rule) = rule_for(&self.rules, provider, &pr.repository) else {
            // NB: the rule was removed from the configuration: its clusters live out their TTL.
            return self.done(pr, current.as_ref()).await;
        };
        let principal = principal(provider, &pr.repository, rule);
        if !pr.open {
            if let Some(c) = &current {
                self.delete(&principal, c).await?;
            }
            return self.done(pr, None).await;
        }
        match current {
            Some(c) if c.labels.get("sha") == Some(pr.head_sha.as_str()) => {
                self.done(pr, Some(&c)).await
            }
            Some(c) if c.phase != Phase::Failed && rule.on_new_commit == OnNewCommit::Keep => {
                let mut labels: BTreeMap<String, String> = c.labels.as_map().clone();
                labels.insert("sha".into(), pr.head_sha.clone());
                let update = ClusterUpdate {
                    labels: Some(labels),
                    ..ClusterUpdate::default()
                };
                let moved = self
                    .service
                    .update(&principal, c.id.as_str(), update)
                    .await?;
                self.done(pr, Some(&moved)).await
            }
            Some(c) => {
                // NB: recreate (or replace a failed one): the name is free once the old one is
                // gone, so the create comes in a later pass.
                self.delete(&principal, &c).await
            }
            None => self.create(pr, rule, &principal).await,
        }
    }

    async fn create(&self, pr: &PullRequest, rule: &PrRule, principal: &Principal) -> Result<()> {
        let provider = provider_of(pr);
        let spec = spec(
            rule,
            provider,
            &pr.repository,
            pr.number,
            &pr.head_sha,
            pr.repository_id.as_deref(),
        );
        let key = IdempotencyKey::parse(&format!("pr:{}:{}", pr.key, pr.generation))
            .map_err(|e| crate::error::Error::Other(anyhow::anyhow!("{e}")))?;
        match self.service.create(principal, spec, Some(key)).await {
            Ok((cluster, _)) => self.done(pr, Some(&cluster)).await,
            // NB: the previous cluster of this pull request still holds the name (deleting):
            // the next pass tries again.
            Err(e) if e.code() == "name_taken" => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn delete(&self, principal: &Principal, cluster: &Cluster) -> Result<()> {
        match self
            .service
            .delete(
                principal,
                cluster.id.as_str(),
                DeleteReason::PullRequestClosed,
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn done(&self, pr: &PullRequest, cluster: Option<&Cluster>) -> Result<()> {
        self.service
            .store()
            .pull_request_done(&pr.key, pr.generation, cluster.map(|c| &c.id))
            .await?;
        Ok(())
    }
}

/// The wait after the `failures`-th failure in a row (at least 1): 1 s, doubling, at most
/// [`MAX_BACKOFF`].
fn backoff_after(failures: u32) -> Duration {
    EVERY
        .saturating_mul(2u32.saturating_pow(failures.saturating_sub(1)))
        .min(MAX_BACKOFF)
}

/// The cluster a rule makes for pull request `number` of `repository` at `sha`.
fn spec(
    rule: &PrRule,
    provider: Provider,
    repository: &str,
    number: u64,
    sha: &str,
    repository_id: Option<&str>,
) -> ClusterSpec {
    let mut labels = rule.labels.clone();
    // NB: what a CI job's OIDC token names its repository by (`pull_request_clusters`).
    if let Some(id) = repository_id {
        labels.insert("repo-id".into(), id.to_owned());
    }
    labels.insert("provider".into(), provider.as_str().to_owned());
    labels.insert("repo".into(), repo_label(repository));
    labels.insert("pr".into(), number.to_string());
    labels.insert("sha".into(), sha.to_owned());
    ClusterSpec {
        name: Some(super::cluster_name(provider, repository, number)),
        size: rule.size.clone(),
        kubernetes_version: rule.kubernetes_version.clone(),
        ttl: rule.ttl.clone(),
        idle_timeout: rule.idle_timeout.clone(),
        host: rule.host.clone(),
        host_selector: rule.host_selector.clone(),
        labels: Some(labels),
    }
}

fn provider_of(pr: &PullRequest) -> Provider {
    if pr.provider == "github" {
        Provider::Github
    } else {
        Provider::Bitbucket
    }
}

/// Who makes a repository's pull-request clusters: `webhook:github/acme/web`, a developer of
/// the rule's team (so the team sees and uses them, and nobody else's clusters are reachable).
fn principal(provider: Provider, repository: &str, rule: &PrRule) -> Principal {
    Principal {
        subject: format!(
            "{}{provider}/{}",
            RepoGrant::OWNER_PREFIX,
            repository.to_ascii_lowercase()
        ),
        display: format!("{provider} pull requests of {repository}"),
        role: Role::Developer,
        team: Some(rule.team.clone()),
        repository: None,
        claims: None,
    }
}

/// `acme/web` as a label value: `acme.web` (a label value holds no `/`; at most 63 characters).
pub fn repo_label(repository: &str) -> String {
    let mut v: String = repository
        .to_ascii_lowercase()
        .chars()
        .map(|c| match c {
            '/' => '.',
            c if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') => c,
            _ => '-',
        })
        .collect();
    v.truncate(63);
    v.trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_pull_request_is_retried_after_1_2_4_seconds_and_at_most_a_minute() {
        let waits: Vec<u64> = [1, 2, 3, 6, 7, 40]
            .into_iter()
            .map(|n| backoff_after(n).as_secs())
            .collect();
        assert_eq!(waits, vec![1, 2, 4, 32, 60, 60]);
    }

    #[test]
    fn a_repository_is_a_label_value() {
        assert_eq!(repo_label("Acme/Web_App"), "acme.web_app");
        assert_eq!(repo_label("acme/--x--"), "acme.--x");
        assert!(repo_label(&format!("acme/{}", "r".repeat(80))).len() <= 63);
    }
}
