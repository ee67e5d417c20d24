//! The reconciler: claims due clusters from the store and drives each one step at a time
//! (`step::reconcile_one`), persisting before every side effect. Level-triggered and idempotent:
//! after a crash at any point, the next run reads what was persisted, asks the driver what is
//! there, and converges.

mod claim;
mod step;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::domain::{Cluster, ClusterId, Phase, Timestamp};
use crate::service::ClusterService;
use crate::store::StoreError;
use crate::store::outage::{Note, Outage};

pub use claim::CLAIM_TTL;
pub use step::{
    Action, HEALTH_CHECK_EVERY, MAX_PROVISION_ATTEMPTS, Settings, backoff, reconcile_one,
};

/// How often the store is polled when nothing wakes the reconciler.
const POLL_INTERVAL: Duration = Duration::from_millis(500);
/// Clusters read per poll.
/// NB: well above both slot counts, so the deletions due are seen even when many creates are
/// due (and in flight) ahead of them.
const BATCH: usize = 256;
/// Steps at once for deletions and clean-ups unless configured otherwise.
pub const DEFAULT_DELETE_PARALLEL: usize = 2;

/// Which slots a step takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Lane {
    /// Creating clusters and checking Ready ones.
    Build,
    /// Deleting clusters and cleaning up failed ones.
    Teardown,
}

impl Lane {
    fn of(c: &Cluster) -> Self {
        match c.phase {
            Phase::Deleting | Phase::Failed => Lane::Teardown,
            _ => Lane::Build,
        }
    }
}

/// Drives clusters towards their desired phase.
#[derive(Clone)]
pub struct Reconciler {
    service: ClusterService,
    wake: Arc<Notify>,
    max_parallel: usize,
    delete_parallel: usize,
    settings: Arc<Settings>,
    in_flight: Arc<Mutex<HashMap<ClusterId, Lane>>>,
    /// This replica's name in the store's reconcile claims.
    replica: Arc<str>,
    /// How long a claim lasts unrenewed ([`CLAIM_TTL`] unless a test shortens it).
    claim_ttl: Duration,
}

impl std::fmt::Debug for Reconciler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reconciler")
            .field("max_parallel", &self.max_parallel)
            .field("delete_parallel", &self.delete_parallel)
            .field("settings", &self.settings)
            .field("replica", &self.replica)
            .finish_non_exhaustive()
    }
}

// === impl Reconciler ===

impl Reconciler {
    /// A reconciler over `service`; `wake` is the notifier the service pings on new work.
    /// `max_parallel` steps for creates and health checks at once; deletions have
    /// [`DEFAULT_DELETE_PARALLEL`] slots of their own (see [`Reconciler::with_delete_parallel`]).
    pub fn new(service: ClusterService, wake: Arc<Notify>, max_parallel: usize) -> Self {
        Self {
            service,
            wake,
            max_parallel: max_parallel.max(1),
            delete_parallel: DEFAULT_DELETE_PARALLEL,
            settings: Arc::new(Settings::default()),
            in_flight: Arc::new(Mutex::new(HashMap::new())),
            replica: claim::new_replica_id().into(),
            claim_ttl: CLAIM_TTL,
        }
    }

    /// This replica's name in the store's reconcile claims (random per process start).
    pub fn replica(&self) -> &str {
        &self.replica
    }

    /// Slots for deleting clusters and cleaning up failed ones, apart from the create slots
    /// so expiry and deletion are never starved by slow creates.
    pub fn with_delete_parallel(mut self, n: usize) -> Self {
        self.delete_parallel = n.max(1);
        self
    }

    /// How long a cluster claim lasts unrenewed (default [`CLAIM_TTL`]): how soon a dead
    /// replica's clusters are taken over.
    pub fn with_claim_ttl(mut self, ttl: Duration) -> Self {
        self.claim_ttl = ttl.max(Duration::from_millis(300));
        self
    }

    /// How often a Ready cluster's control plane is checked (default [`HEALTH_CHECK_EVERY`]).
    pub fn with_health_check_interval(mut self, every: Duration) -> Self {
        Arc::make_mut(&mut self.settings).health_check_interval = every;
        self
    }

    /// Run until `shutdown` is cancelled. Steps run concurrently (one at a time per cluster, at
    /// most `max_parallel` creates and `delete_parallel` deletions). On shutdown, steps in
    /// flight are dropped: every step persisted its intent first, so the next start resumes
    /// them.
    ///
    /// While the store is unavailable the loop pauses (retrying at a growing interval, at most
    /// a few seconds apart), logs one WARN for the outage and one INFO when it is over, and
    /// resumes by itself; no cluster is failed or charged an attempt for it.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let mut tasks = JoinSet::new();
        let mut outage = Outage::default();
        let mut resume_at = Instant::now();
        tracing::info!(replica = %self.replica, "reconciler started");
        loop {
            if !outage.is_down() || Instant::now() >= resume_at {
                match self.dispatch(&mut tasks).await {
                    Ok(()) => log_note(outage.answered(Instant::now()), None),
                    Err(e) => {
                        let (note, pause) = outage.failed(Instant::now());
                        log_note(note, Some(&e));
                        resume_at = Instant::now() + pause;
                    }
                }
            }
            let wait = if outage.is_down() {
                resume_at.saturating_duration_since(Instant::now())
            } else {
                POLL_INTERVAL
            };
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                Some(res) = tasks.join_next(), if !tasks.is_empty() => match res {
                    Ok(Action::StoreUnavailable) => {
                        let (note, pause) = outage.failed(Instant::now());
                        log_note(note, None);
                        resume_at = resume_at.max(Instant::now() + pause);
                    }
                    Err(e) if e.is_panic() => {
                        tracing::error!(error = %e, "a reconcile step panicked");
                    }
                    _ => {}
                },
                // NB: new work cannot be taken while the store is down; the pause decides.
                () = self.wake.notified(), if !outage.is_down() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
        tasks.abort_all();
        // NB: every step has ended (an abort takes effect at a step's next await), so no
        // driver call of this replica follows the release.
        while tasks.join_next().await.is_some() {}
        // NB: the dropped steps' claims are given up now, so other replicas carry on with
        // those clusters at once instead of after CLAIM_TTL (after a crash they wait).
        match self.service.store().release_claims(&self.replica).await {
            Ok(n) => tracing::info!(released = n, "reconciler stopped"),
            Err(e) => {
                tracing::warn!(error = %e, "reconciler stopped; its claims run out by themselves")
            }
        }
        Ok(())
    }

    fn room(&self, busy: &HashMap<ClusterId, Lane>, lane: Lane) -> usize {
        let cap = match lane {
            Lane::Build => self.max_parallel,
            Lane::Teardown => self.delete_parallel,
        };
        cap.saturating_sub(busy.values().filter(|l| **l == lane).count())
    }

    /// Start a step for every due cluster there is room for. `Err` only when the store is
    /// unavailable; other read errors are logged here and retried at the next poll.
    async fn dispatch(&self, tasks: &mut JoinSet<Action>) -> Result<(), StoreError> {
        let due = match self
            .service
            .store()
            .due_clusters(&self.replica, Timestamp::now(), BATCH)
            .await
        {
            Ok(due) => due,
            Err(e @ StoreError::Unavailable(_)) => return Err(e),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read due clusters; retrying");
                return Ok(());
            }
        };
        self.service.metrics().queue_depth(due.len());
        for cluster in due {
            let lane = Lane::of(&cluster);
            {
                let mut busy = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
                if busy.contains_key(&cluster.id) || self.room(&busy, lane) == 0 {
                    continue;
                }
                busy.insert(cluster.id.clone(), lane);
            }
            let claim_ttl = self.claim_ttl;
            let (service, settings, in_flight, wake, replica) = (
                self.service.clone(),
                self.settings.clone(),
                self.in_flight.clone(),
                self.wake.clone(),
                self.replica.clone(),
            );
            tasks.spawn(async move {
                // NB: released on drop, so a step that panics (or is aborted) frees its cluster
                // and its lane's slot instead of holding them until a restart.
                let _slot = InFlight {
                    set: in_flight,
                    id: cluster.id.clone(),
                };
                // NB: claimed in the store, so no other replica steps this cluster meanwhile.
                let action =
                    claim::step_claimed(&service, &replica, claim_ttl, &cluster, |fresh| {
                        reconcile_one(&service, &settings, fresh)
                    })
                    .await;
                if matches!(action, Action::Now) {
                    wake.notify_one();
                }
                action
            });
        }
        Ok(())
    }

    /// Reconcile sequentially until no cluster is due (tests drive the reconciler
    /// deterministically with this). Gives up after `max_steps`.
    pub async fn reconcile_until_idle(&self, max_steps: usize) -> usize {
        let mut steps = 0;
        while steps < max_steps {
            let due = self
                .service
                .store()
                .due_clusters(&self.replica, Timestamp::now(), BATCH)
                .await;
            let Ok(due) = due else { break };
            if due.is_empty() {
                break;
            }
            for cluster in due {
                let action = reconcile_one(&self.service, &self.settings, cluster).await;
                steps += 1;
                if action == Action::StoreUnavailable {
                    return steps;
                }
            }
        }
        steps
    }
}

/// Log what [`Outage`] says about a store call (`err`: the failure, when there is one).
fn log_note(note: Note, err: Option<&StoreError>) {
    let error = err.map(ToString::to_string).unwrap_or_default();
    match note {
        Note::Down => tracing::warn!(
            error,
            "the store is unavailable; the reconciler pauses until it answers"
        ),
        Note::Up { lasted } => tracing::info!(
            down_secs = lasted.as_secs(),
            "the store answers again; the reconciler resumes"
        ),
        Note::Quiet if err.is_some() => tracing::debug!(error, "the store is still unavailable"),
        Note::Quiet => {}
    }
}

/// A cluster's claim on a reconciler slot, released when dropped.
struct InFlight<T> {
    set: Arc<Mutex<HashMap<ClusterId, T>>>,
    id: ClusterId,
}

impl<T> Drop for InFlight<T> {
    fn drop(&mut self) {
        self.set
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
    }
}

#[cfg(test)]
mod tests;
