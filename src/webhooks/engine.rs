//! Carries out what webhook deliveries recorded: for each pull request with a change not yet
//! carried out, makes, moves or deletes its cluster through the cluster use-cases, then marks
//! that generation done. Runs every second and whenever a delivery was recorded.
//!
//! Crash-safe by construction: the change is in the store before the door answers, a create
//! carries an idempotency key per pull request and generation (a retry after a crash gets the
//! cluster the first attempt made), and a generation is marked done only after its work.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::Provider;
use crate::config::{OnNewCommit, PrRule, rule_for};
use crate::domain::{Cluster, DeleteReason, Phase, Principal, PullRequest, Role};
use crate::error::{ErrorKind, Result};
use crate::service::{ClusterService, ClusterSpec, ClusterUpdate, IdempotencyKey};

/// How often pending pull requests are looked at without a new delivery.
const EVERY: Duration = Duration::from_secs(1);
/// Pull requests taken per pass.
const BATCH: usize = 50;

/// The engine: the cluster use-cases, the rules, and the doorbell the doors ring.
#[derive(Clone)]
pub struct Engine {
    service: ClusterService,
    rules: Arc<Vec<PrRule>>,
    wake: Arc<Notify>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("rules", &self.rules.len())
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
        }
    }

    /// The rules it acts on.
    pub fn rules(&self) -> &[PrRule] {
        &self.rules
    }

    /// Ask for a pass now (a delivery was recorded).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Run until `shutdown` is cancelled.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
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
            if let Err(e) = self.carry_out(&pr).await {
                tracing::warn!(pull_request = %pr.key, error = %e, "pull request not carried out yet");
            }
        }
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
        let mut labels = rule.labels.clone();
        labels.insert("provider".into(), pr.provider.clone());
        labels.insert("repo".into(), repo_label(&pr.repository));
        labels.insert("pr".into(), pr.number.to_string());
        labels.insert("sha".into(), pr.head_sha.clone());
        let spec = ClusterSpec {
            name: Some(super::cluster_name(provider, &pr.repository, pr.number)),
            size: rule.size.clone(),
            kubernetes_version: rule.kubernetes_version.clone(),
            ttl: rule.ttl.clone(),
            idle_timeout: rule.idle_timeout.clone(),
            host: rule.host.clone(),
            host_selector: rule.host_selector.clone(),
            labels: Some(labels),
        };
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
        subject: format!("webhook:{provider}/{}", repository.to_ascii_lowercase()),
        display: format!("{provider} pull requests of {repository}"),
        role: Role::Developer,
        team: Some(rule.team.clone()),
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
