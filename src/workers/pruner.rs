//! The pruner: deletes clusters past `expires_at` (reason `expired`) and clusters idle longer
//! than `idle_timeout` (reason `idle`), purges ended records after the retention period, and
//! sweeps driver resources that no live record owns (orphans left by a crash).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::domain::{Cluster, ClusterId, DeleteReason, NewEvent, Phase, Principal, Timestamp};
use crate::service::ClusterService;
use crate::store::StoreError;
use crate::store::outage::{Note, Outage};

/// Pruner settings.
#[derive(Debug, Clone)]
pub struct PrunerConfig {
    /// How often to look.
    pub interval: Duration,
    /// How long `Deleted` and `Failed` records stay readable.
    pub retention: Duration,
}

impl Default for PrunerConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(5),
            retention: Duration::from_secs(7 * 86_400),
        }
    }
}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Clusters whose TTL ran out.
    pub expired: Vec<ClusterId>,
    /// Clusters idle past their timeout.
    pub idle: Vec<ClusterId>,
    /// Driver resources without a live record, deleted.
    pub orphans: Vec<ClusterId>,
    /// Ended records purged.
    pub purged: u64,
    /// What failed this pass (retried next pass); the rest of the pass went on.
    pub failures: Vec<PruneFailure>,
    /// The store was unavailable: the pass stopped at its first read (logged once per
    /// outage by [`Pruner::run`], not per item).
    pub store_unavailable: bool,
}

/// One item the pruner could not handle this pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PruneFailure {
    /// What it was doing: `expire`, `idle`, `list_live`, `list_managed`, `orphan`, `purge`.
    pub task: &'static str,
    /// The cluster concerned, if any.
    pub cluster: Option<ClusterId>,
    /// The error, for logs and events.
    pub error: String,
}

/// The pruner worker.
#[derive(Debug, Clone)]
pub struct Pruner {
    service: ClusterService,
    config: PrunerConfig,
}

// === impl Pruner ===

impl Pruner {
    /// A pruner over `service`.
    pub fn new(service: ClusterService, config: PrunerConfig) -> Self {
        Self { service, config }
    }

    /// Run a pass every `interval` until `shutdown`. What fails in a pass is logged and retried
    /// on the next one.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let mut outage = Outage::default();
        loop {
            let r = self.pass().await;
            let note = if r.store_unavailable {
                outage.failed(Instant::now()).0
            } else {
                outage.answered(Instant::now())
            };
            match note {
                Note::Down => tracing::warn!(
                    "the store is unavailable; the pruner skips its passes until it answers"
                ),
                Note::Up { lasted } => tracing::info!(
                    down_secs = lasted.as_secs(),
                    "the store answers again; the pruner resumes"
                ),
                Note::Quiet => {}
            }
            if r != SweepReport::default() && !r.store_unavailable {
                tracing::info!(
                    expired = r.expired.len(),
                    idle = r.idle.len(),
                    orphans = r.orphans.len(),
                    purged = r.purged,
                    failures = r.failures.len(),
                    "pruner pass"
                );
            }
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                () = tokio::time::sleep(self.config.interval) => {}
            }
        }
    }

    /// One pass: expiry, idleness, orphans, purge. Each item is handled on its own: a failure
    /// is logged, recorded as an event where a record exists, reported, and retried next pass;
    /// it never stops the rest of the pass.
    pub async fn pass(&self) -> SweepReport {
        let mut report = SweepReport::default();
        match self.service.store().live_clusters().await {
            Ok(live) => {
                self.expire(&live, &mut report).await;
                self.sweep_orphans(&live, &mut report).await;
            }
            // NB: nothing else in this pass can be done without the store; run() says so
            // once per outage.
            Err(e @ StoreError::Unavailable(_)) => {
                report.store_unavailable = true;
                report.failures.push(PruneFailure {
                    task: "list_live",
                    cluster: None,
                    error: e.to_string(),
                });
                return report;
            }
            // NB: without the live records no orphan can be told apart from a live cluster,
            // so the sweep waits for the next pass; purging needs no such list.
            Err(e) => report.fail("list_live", None, &e),
        }
        self.purge(&mut report).await;
        report
    }

    async fn expire(&self, live: &[Cluster], report: &mut SweepReport) {
        let system = Principal::system();
        let now = Timestamp::now();
        for c in live {
            let deletable = matches!(
                c.phase,
                Phase::Pending | Phase::Provisioning | Phase::Ready | Phase::Failed
            );
            if !deletable {
                continue;
            }
            let (task, reason, why) = if c.expires_at <= now {
                let why = format!("expired: its ttl of {} ran out at {}", c.ttl, c.expires_at);
                ("expire", DeleteReason::Expired, why)
            } else if let Some(idle) = c.idle_timeout
                && c.phase == Phase::Ready
                && c.last_activity_at + idle.as_span() <= now
            {
                let why = format!(
                    "idle: no activity for {idle} (last at {})",
                    c.last_activity_at
                );
                ("idle", DeleteReason::Idle, why)
            } else {
                continue;
            };
            match self
                .service
                .request_delete(&system, &c.id, reason, Some(why))
                .await
            {
                Ok(_) if reason == DeleteReason::Expired => report.expired.push(c.id.clone()),
                Ok(_) => report.idle.push(c.id.clone()),
                Err(e) => {
                    report.fail(task, Some(&c.id), &e);
                    self.record(&c.id, task, &e).await;
                }
            }
        }
    }

    /// Orphans: driver resources that no record holds. A Failed cluster not yet cleaned up
    /// and every non-Deleted cluster still owns its resources.
    async fn sweep_orphans(&self, live: &[Cluster], report: &mut SweepReport) {
        let store = self.service.store();
        let managed = match self.service.driver().list_managed().await {
            Ok(ids) => ids,
            Err(e) => return report.fail("list_managed", None, &e),
        };
        let owned: HashSet<&ClusterId> = live.iter().map(|c| &c.id).collect();
        for id in managed {
            if owned.contains(&id) {
                continue;
            }
            // Re-read: the cluster may have been created after `live` was read.
            match store.get_cluster(&id).await {
                Ok(Some(c)) if c.phase.is_live() => continue,
                Ok(_) => {}
                Err(e) => {
                    report.fail("orphan", Some(&id), &e);
                    continue;
                }
            }
            tracing::warn!(cluster.id = %id, "deleting orphaned control plane");
            match self.service.driver().delete(&id).await {
                Ok(()) => report.orphans.push(id),
                Err(e) => {
                    report.fail("orphan", Some(&id), &e);
                    self.record(&id, "orphan", &e).await;
                }
            }
        }
    }

    async fn purge(&self, report: &mut SweepReport) {
        let before = match jiff::SignedDuration::try_from(self.config.retention) {
            Ok(retention) => Timestamp::now() - retention,
            Err(e) => return report.fail("purge", None, &e),
        };
        match self.service.store().purge_ended(before).await {
            Ok(n) => report.purged = n,
            Err(e) => report.fail("purge", None, &e),
        }
        // NB: GitHub redelivers on request for a few days; a week of delivery ids keeps every
        // redelivery a no-op.
        let week_ago = Timestamp::now() - jiff::SignedDuration::from_hours(24 * 7);
        if let Err(e) = self.service.store().purge_deliveries(week_ago).await {
            report.fail("purge", None, &e);
        }
        // Commit statuses the provider took, unchanged for a week (pending ones stay).
        if let Err(e) = self.service.store().purge_statuses(week_ago).await {
            report.fail("purge", None, &e);
        }
    }

    /// Best effort: an event `prune_failed` on the cluster's record, if there is one (an
    /// orphan's `Deleted` record, say), so `vcm cluster events` shows why it lingers.
    async fn record(&self, id: &ClusterId, task: &str, err: &(dyn std::fmt::Display + Sync)) {
        let store = self.service.store();
        let Ok(Some(c)) = store.get_cluster(id).await else {
            return;
        };
        // NB: a stuck item fails on every pass (every few seconds): record the first failure
        // and then only a changed reason, so the events stay readable and bounded.
        let message = format!("{task} failed; retried on the next pass: {err}");
        if let Ok(events) = store.list_events(id).await
            && events
                .iter()
                .rev()
                .find(|e| e.kind == "prune_failed")
                .is_some_and(|last| last.message == message)
        {
            return;
        }
        let ev = NewEvent::new("prune_failed", message).with_reason(task);
        if let Err(e) = store.update_cluster(&c, &[ev]).await {
            tracing::debug!(cluster.id = %id, error = %e, "prune failure not recorded");
        }
    }
}

/// Whether `err` is the store being unavailable (a database outage), as a store or a service
/// error.
fn is_store_outage<E: 'static>(err: &E) -> bool {
    let err: &dyn std::any::Any = err;
    matches!(
        err.downcast_ref::<StoreError>(),
        Some(StoreError::Unavailable(_))
    ) || matches!(
        err.downcast_ref::<crate::error::Error>(),
        Some(crate::error::Error::Store(StoreError::Unavailable(_)))
    )
}

// === impl SweepReport ===

impl SweepReport {
    fn fail<E: std::fmt::Display + 'static>(
        &mut self,
        task: &'static str,
        cluster: Option<&ClusterId>,
        err: &E,
    ) {
        let error = err.to_string();
        // NB: the store going away in the middle of a pass fails every item after it; that is
        // one outage, which `Pruner::run` logs once, not a WARN per item.
        if is_store_outage(err) {
            self.store_unavailable = true;
            tracing::debug!(task, cluster.id = ?cluster.map(ClusterId::as_str), %error, "pruner item failed: the store is unavailable");
        } else {
            tracing::warn!(task, cluster.id = ?cluster.map(ClusterId::as_str), %error, "pruner item failed; retrying next pass");
        }
        self.failures.push(PruneFailure {
            task,
            cluster: cluster.cloned(),
            error,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_outage_in_the_middle_of_a_pass_is_one_outage_not_a_failure_per_item() {
        // Arrange
        let down = StoreError::Unavailable("connection refused".into());
        let via_service = crate::error::Error::from(StoreError::Unavailable("gone".into()));
        let id = ClusterId::generate();
        let mut report = SweepReport::default();

        // Act
        report.fail("expire", Some(&id), &via_service);
        report.fail("purge", None, &down);

        // Assert: reported (the items are retried), and marked as the store's outage.
        assert!(report.store_unavailable);
        assert_eq!(report.failures.len(), 2);
        assert_eq!(report.failures[0].cluster, Some(id));
    }

    #[test]
    fn other_failures_are_no_outage() {
        // Arrange
        let mut report = SweepReport::default();

        // Act
        report.fail("purge", None, &StoreError::Conflict("version".into()));
        report.fail(
            "orphan",
            None,
            &crate::error::Error::from(StoreError::NotFound),
        );

        // Assert
        assert!(!report.store_unavailable);
        assert_eq!(report.failures.len(), 2);
    }
}
