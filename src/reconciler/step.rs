//! One reconcile step for one cluster, and the error policy.

use std::time::Duration;

use crate::domain::{Cluster, NewEvent, Phase, PhaseEvent, now_ms as now};
use crate::driver::{DriverError, Ensured};
use crate::error::{Error, Result};
use crate::service::ClusterService;
use crate::store::StoreError;

/// A Ready cluster's control plane is checked (and re-adopted or restarted) this often, unless
/// configured otherwise ([`Settings::health_check_interval`]).
pub const HEALTH_CHECK_EVERY: Duration = Duration::from_secs(30);
/// While the driver reports progress, look again after this long.
const IN_PROGRESS_RECHECK: Duration = Duration::from_secs(1);
/// Transient failures while provisioning are retried this many times, then the cluster fails:
/// a CI job waiting on it deserves an answer, not an endless spinner.
pub const MAX_PROVISION_ATTEMPTS: u32 = 8;
/// Backoff ceiling.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// How steps are taken.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How often a Ready cluster's control plane is checked (the driver restarts a dead one
    /// or reports it lost).
    pub health_check_interval: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            health_check_interval: HEALTH_CHECK_EVERY,
        }
    }
}

/// What to do after a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// There is more to do right away.
    Now,
    /// Nothing until the stored `next_reconcile_at`.
    Later,
    /// The store did not answer: nothing was recorded, the cluster stays due, and the run
    /// loop pauses until the store answers again (see `outage.rs`).
    StoreUnavailable,
}

/// Exponential backoff: 1 s, 2 s, 4 s … capped at a minute.
pub fn backoff(attempts: u32) -> Duration {
    let secs = 1u64 << attempts.saturating_sub(1).min(6);
    Duration::from_secs(secs).min(MAX_BACKOFF)
}

/// Take one step for `cluster` (as read from the store) and persist its outcome. Never fails:
/// errors go through [`error_policy`] into the cluster's record.
#[tracing::instrument(skip_all, fields(
    cluster.id = %cluster.id,
    phase = %cluster.phase,
    request_id = cluster.request_id.as_deref().unwrap_or_default(),
))]
pub async fn reconcile_one(
    service: &ClusterService,
    settings: &Settings,
    cluster: Cluster,
) -> Action {
    let started = std::time::Instant::now();
    let name = step_name(cluster.phase);
    let action = match step(service, settings, &cluster).await {
        Ok(action) => action,
        Err(Error::Store(StoreError::Conflict(_))) => Action::Now, // someone wrote first: re-read
        // NB: the database is down, not the cluster. No attempt is counted (an outage must
        // never fail a cluster) and nothing could be written anyway; every step is safe to
        // repeat, so the cluster is simply taken up again once the store answers.
        Err(Error::Store(StoreError::Unavailable(detail))) => {
            tracing::debug!(error = %detail, "the store is unavailable; step left for later");
            Action::StoreUnavailable
        }
        Err(e) => error_policy(service, cluster, e).await,
    };
    service.metrics().step(name, started.elapsed());
    action
}

/// The `step` label of a step from `phase`.
fn step_name(phase: Phase) -> &'static str {
    match phase {
        Phase::Pending => "pending",
        Phase::Provisioning => "provisioning",
        Phase::Ready => "ready",
        Phase::Deleting => "deleting",
        Phase::Deleted => "deleted",
        Phase::Failed => "failed",
    }
}

async fn step(service: &ClusterService, settings: &Settings, c: &Cluster) -> Result<Action> {
    let store = service.store();
    let driver = service.driver();
    let now = now();
    match c.phase {
        Phase::Pending => {
            let mut next = c.clone();
            next.phase = c.phase.transition(PhaseEvent::StartProvisioning)?;
            next.message = format!("provisioning with the {} driver", driver.name());
            next.next_reconcile_at = now;
            let ev = NewEvent::phase(c.phase, next.phase, None, next.message.clone());
            store.update_cluster(&next, &[ev]).await?;
            Ok(Action::Now)
        }
        Phase::Provisioning | Phase::Ready => {
            let (endpoint, repaired) = match driver.ensure(c).await? {
                Ensured::Ready { endpoint } => (endpoint, None),
                Ensured::Restarted { endpoint, message } => (endpoint, Some(message)),
                Ensured::InProgress { message } => {
                    let mut next = c.clone();
                    next.message = message;
                    next.next_reconcile_at = now + IN_PROGRESS_RECHECK;
                    store.update_cluster(&next, &[]).await?;
                    return Ok(Action::Later);
                }
            };
            let now = self::now(); // after the driver call, which may take seconds
            let mut next = c.clone();
            let mut events = vec![];
            if let Some(message) = repaired {
                events.push(NewEvent::new("control_plane_restarted", message));
                next.message = format!("ready; control plane restarted at {now}");
            } else if c.phase == Phase::Ready && c.attempts > 0 {
                next.message = "ready".into(); // the error it recovered from is over
            }
            if c.phase == Phase::Provisioning {
                next.phase = c.phase.transition(PhaseEvent::BecameReady)?;
                let took = now.duration_since(c.created_at).as_secs_f64();
                next.message = format!("ready in {took:.1}s");
                next.ready_at = Some(now);
                events.push(NewEvent::phase(
                    c.phase,
                    next.phase,
                    None,
                    next.message.clone(),
                ));
            } else if c.endpoint.as_deref() != Some(endpoint.as_str()) {
                events.push(NewEvent::new(
                    "endpoint_changed",
                    format!("control plane restarted at {endpoint}"),
                ));
            }
            next.endpoint = Some(endpoint);
            next.attempts = 0;
            next.next_reconcile_at = now + settings.health_check_interval;
            if next != *c {
                store.update_cluster(&next, &events).await?;
            }
            if c.phase == Phase::Provisioning {
                let took = now.duration_since(c.created_at).as_secs_f64().max(0.0);
                service
                    .metrics()
                    .ready(driver.name(), &c.host, Duration::from_secs_f64(took));
            }
            Ok(Action::Later)
        }
        Phase::Deleting => {
            driver.delete_cluster(c).await?;
            let now = self::now();
            let mut next = c.clone();
            next.phase = c.phase.transition(PhaseEvent::ConfirmDeleted)?;
            next.deleted_at = Some(now);
            let reason = c.delete_reason.map(|r| r.as_str()).unwrap_or("requested");
            next.message = format!("deleted ({reason})");
            next.attempts = 0;
            let ev = NewEvent::phase(c.phase, next.phase, Some(reason), "every resource released");
            store.update_cluster(&next, &[ev]).await?;
            service.metrics().deletion(reason);
            Ok(Action::Later)
        }
        Phase::Failed if !c.cleaned_up => {
            driver.delete_cluster(c).await?;
            let mut next = c.clone();
            next.cleaned_up = true;
            next.attempts = 0;
            let ev = NewEvent::new("cleaned_up", "resources of the failed cluster released");
            store.update_cluster(&next, &[ev]).await?;
            Ok(Action::Later)
        }
        Phase::Failed | Phase::Deleted => Ok(Action::Later),
    }
}

/// Record a failed step: transient errors back off (and fail a cluster that keeps failing to
/// provision), permanent ones fail it with the driver's message.
async fn error_policy(service: &ClusterService, c: Cluster, err: Error) -> Action {
    let label = err.metric_label();
    let detail = err.to_string();
    let permanent = matches!(err, Error::Driver(DriverError::Permanent(_)));
    let lost = matches!(err, Error::Driver(DriverError::Lost(_)));
    let mut next = c.clone();
    next.attempts = c.attempts.saturating_add(1);
    let mut events = vec![];
    let provisioning = matches!(c.phase, Phase::Pending | Phase::Provisioning);
    let live = provisioning || c.phase == Phase::Ready;
    if (provisioning && (permanent || next.attempts >= MAX_PROVISION_ATTEMPTS)) || (live && lost) {
        let Ok(failed) = c.phase.transition(PhaseEvent::Fail) else {
            return Action::Later;
        };
        next.phase = failed;
        next.message = if lost {
            detail.clone()
        } else if permanent {
            format!("provisioning failed: {detail}")
        } else {
            format!(
                "provisioning failed after {} attempts: {detail}",
                next.attempts
            )
        };
        next.attempts = 0;
        next.next_reconcile_at = now();
        events.push(NewEvent::phase(
            c.phase,
            failed,
            Some(label),
            next.message.clone(),
        ));
        tracing::warn!(error = %detail, "cluster failed");
    } else {
        let wait = backoff(next.attempts);
        next.message = format!(
            "{} (retry {} in {}s)",
            detail,
            next.attempts,
            wait.as_secs()
        );
        next.next_reconcile_at = now() + wait;
        // Record the first error and then every fourth, so a long outage does not flood events.
        if next.attempts == 1 || next.attempts.is_multiple_of(4) {
            events.push(NewEvent::new("reconcile_error", detail.clone()).with_reason(label));
        }
        tracing::info!(error = %detail, attempts = next.attempts, "step failed; backing off");
        service.metrics().retry(step_name(c.phase));
    }
    match service.store().update_cluster(&next, &events).await {
        Ok(_) if next.phase == Phase::Failed => {
            service.metrics().failure(service.driver().name(), label);
            Action::Now
        }
        Ok(_) => Action::Later,
        Err(StoreError::Conflict(_)) => Action::Now,
        Err(StoreError::Unavailable(detail)) => {
            tracing::debug!(error = %detail, "the store is unavailable; failure not recorded");
            Action::StoreUnavailable
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot record the failure; will retry");
            Action::Later
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps_at_a_minute() {
        let got: Vec<u64> = (1..=9).map(|a| backoff(a).as_secs()).collect();
        assert_eq!(got, vec![1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }
}
