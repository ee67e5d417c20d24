//! The pruner: deletes clusters past `expires_at` (reason `expired`) and clusters idle longer
//! than `idle_timeout` (reason `idle`), purges ended records after the retention period, and
//! sweeps driver resources that no live record owns (orphans left by a crash).

use std::collections::HashSet;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::domain::{ClusterId, DeleteReason, Phase, Principal, Timestamp};
use crate::service::ClusterService;

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

    /// Run a pass every `interval` until `shutdown`. A failing pass is logged and retried.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        loop {
            match self.pass().await {
                Ok(r) if r != SweepReport::default() => tracing::info!(
                    expired = r.expired.len(),
                    idle = r.idle.len(),
                    orphans = r.orphans.len(),
                    purged = r.purged,
                    "pruner pass"
                ),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %format!("{e:#}"), "pruner pass failed"),
            }
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                () = tokio::time::sleep(self.config.interval) => {}
            }
        }
    }

    /// One pass: expiry, idleness, orphans, purge.
    pub async fn pass(&self) -> anyhow::Result<SweepReport> {
        let store = self.service.store();
        let system = Principal::system();
        let now = Timestamp::now();
        let mut report = SweepReport::default();
        let live = store.live_clusters().await?;
        for c in &live {
            let deletable = matches!(
                c.phase,
                Phase::Pending | Phase::Provisioning | Phase::Ready | Phase::Failed
            );
            if !deletable {
                continue;
            }
            if c.expires_at <= now {
                let why = format!("expired: its ttl of {} ran out at {}", c.ttl, c.expires_at);
                self.service
                    .request_delete(&system, &c.id, DeleteReason::Expired, Some(why))
                    .await?;
                report.expired.push(c.id.clone());
            } else if let Some(idle) = c.idle_timeout
                && c.phase == Phase::Ready
                && c.last_activity_at + idle.as_span() <= now
            {
                let why = format!(
                    "idle: no activity for {idle} (last at {})",
                    c.last_activity_at
                );
                self.service
                    .request_delete(&system, &c.id, DeleteReason::Idle, Some(why))
                    .await?;
                report.idle.push(c.id.clone());
            }
        }
        // Orphans: driver resources that no record holds. A Failed cluster not yet cleaned up
        // and every non-Deleted cluster still owns its resources.
        let owned: HashSet<&ClusterId> = live.iter().map(|c| &c.id).collect();
        for id in self.service.driver().list_managed().await? {
            if owned.contains(&id) {
                continue;
            }
            // Re-read: the cluster may have been created after `live` was read.
            if let Some(c) = store.get_cluster(&id).await?
                && c.phase.is_live()
            {
                continue;
            }
            tracing::warn!(cluster.id = %id, "deleting orphaned control plane");
            self.service.driver().delete(&id).await?;
            report.orphans.push(id);
        }
        let retention = jiff::SignedDuration::try_from(self.config.retention)?;
        report.purged = store.purge_ended(now - retention).await?;
        Ok(report)
    }
}
