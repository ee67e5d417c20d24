//! The reconciler: claims due clusters from the store and drives each one step at a time
//! (`step::reconcile_one`), persisting before every side effect. Level-triggered and idempotent:
//! after a crash at any point, the next run reads what was persisted, asks the driver what is
//! there, and converges.

mod step;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::domain::{ClusterId, Timestamp};
use crate::service::ClusterService;

pub use step::{Action, MAX_PROVISION_ATTEMPTS, backoff, reconcile_one};

/// How often the store is polled when nothing wakes the reconciler.
const POLL_INTERVAL: Duration = Duration::from_millis(500);
/// Clusters claimed per poll.
const BATCH: usize = 64;

/// Drives clusters towards their desired phase.
#[derive(Clone)]
pub struct Reconciler {
    service: ClusterService,
    wake: Arc<Notify>,
    max_parallel: usize,
    in_flight: Arc<Mutex<HashSet<ClusterId>>>,
}

impl std::fmt::Debug for Reconciler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reconciler")
            .field("max_parallel", &self.max_parallel)
            .finish_non_exhaustive()
    }
}

// === impl Reconciler ===

impl Reconciler {
    /// A reconciler over `service`; `wake` is the notifier the service pings on new work.
    pub fn new(service: ClusterService, wake: Arc<Notify>, max_parallel: usize) -> Self {
        Self {
            service,
            wake,
            max_parallel: max_parallel.max(1),
            in_flight: Arc::new(Mutex::new(HashSet::new())),
        }
    }

    /// Run until `shutdown` is cancelled. Steps run concurrently (one at a time per cluster, at
    /// most `max_parallel` in all). On shutdown, steps in flight are dropped: every step
    /// persisted its intent first, so the next start resumes them.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let mut tasks = JoinSet::new();
        loop {
            self.dispatch(&mut tasks).await;
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                Some(res) = tasks.join_next(), if !tasks.is_empty() => {
                    if let Err(e) = res && e.is_panic() {
                        tracing::error!(error = %e, "a reconcile step panicked");
                    }
                }
                () = self.wake.notified() => {}
                () = tokio::time::sleep(POLL_INTERVAL) => {}
            }
        }
        tasks.abort_all();
        tracing::info!("reconciler stopped");
        Ok(())
    }

    async fn dispatch(&self, tasks: &mut JoinSet<()>) {
        let room = self.max_parallel.saturating_sub(tasks.len());
        if room == 0 {
            return;
        }
        let due = match self
            .service
            .store()
            .due_clusters(Timestamp::now(), BATCH)
            .await
        {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read due clusters; retrying");
                return;
            }
        };
        for cluster in due.into_iter().take(room) {
            {
                let mut busy = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
                if !busy.insert(cluster.id.clone()) {
                    continue;
                }
            }
            let (service, in_flight, wake) = (
                self.service.clone(),
                self.in_flight.clone(),
                self.wake.clone(),
            );
            tasks.spawn(async move {
                let id = cluster.id.clone();
                let action = reconcile_one(&service, cluster).await;
                in_flight
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&id);
                if matches!(action, Action::Now) {
                    wake.notify_one();
                }
            });
        }
    }

    /// Reconcile sequentially until no cluster is due (tests drive the reconciler
    /// deterministically with this). Gives up after `max_steps`.
    pub async fn reconcile_until_idle(&self, max_steps: usize) -> usize {
        let mut steps = 0;
        while steps < max_steps {
            let due = self
                .service
                .store()
                .due_clusters(Timestamp::now(), BATCH)
                .await;
            let Ok(due) = due else { break };
            if due.is_empty() {
                break;
            }
            for cluster in due {
                reconcile_one(&self.service, cluster).await;
                steps += 1;
            }
        }
        steps
    }
}

#[cfg(test)]
mod tests;
