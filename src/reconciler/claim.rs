//! Reconcile claims: several vcm replicas on one PostgreSQL store step each cluster one at a
//! time. Before a step, a replica claims the cluster in the store for [`CLAIM_TTL`]
//! ([`Store::claim_cluster`]); a cluster another replica holds is skipped (the store's
//! `due_clusters` already leaves such clusters out of a poll, so only two replicas reading
//! the same free cluster at once meet here). While the step runs
//! the claim is renewed every third of that; after it, it is released. A replica that dies
//! mid-step stops renewing, and its claim runs out within [`CLAIM_TTL`]: another replica then
//! takes the cluster over and, the reconciler being level-triggered, converges it from what
//! was persisted.
//!
//! NB: a step whose claim could not be renewed before it ran out is dropped, not finished:
//! another replica may already hold the cluster, and two replicas must never make driver calls
//! for one cluster at once. Dropping a step is what a crash does, and every step survives that.

use std::future::Future;
use std::time::Duration;

use jiff::SignedDuration;

use super::Action;
use crate::domain::{Cluster, ClusterId, Phase, Timestamp};
use crate::service::ClusterService;
use crate::store::{Store, StoreError};

/// How long a claim lasts without renewal: how long a dead replica's clusters wait before
/// another replica takes them over.
pub const CLAIM_TTL: Duration = Duration::from_secs(30);
/// A running step's claim is renewed every `ttl / RENEWALS_PER_TTL`.
/// NB: three, so two renewals may fail (a slow store) before the claim runs out.
const RENEWALS_PER_TTL: u32 = 3;

/// This process's name as a claim holder: random per start, so a restarted replica never
/// mistakes the claims of its previous life for its own.
pub fn new_replica_id() -> String {
    let mut bytes = [0u8; 6];
    rand::fill(&mut bytes[..]);
    format!("r-{}", hex::encode(bytes))
}

fn until(now: Timestamp, ttl: Duration) -> Timestamp {
    now + SignedDuration::try_from(ttl).expect("the claim TTL is a few seconds")
}

/// Claim `due` for `holder`, re-read it, and, if it is still due, run `step` on the fresh
/// record while renewing the claim; then release it. A cluster another replica holds, or one
/// that is no longer due (another replica stepped it meanwhile), is left alone (`Later`).
pub async fn step_claimed<F, Fut>(
    service: &ClusterService,
    holder: &str,
    ttl: Duration,
    due: &Cluster,
    step: F,
) -> Action
where
    F: FnOnce(Cluster) -> Fut,
    Fut: Future<Output = Action>,
{
    let store = service.store();
    let now = Timestamp::now();
    match store
        .claim_cluster(&due.id, holder, until(now, ttl), now)
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            tracing::debug!(cluster.id = %due.id, "another replica holds this cluster; skipped");
            return Action::Later;
        }
        Err(e) => return store_failed(&due.id, &e),
    }
    let fresh = match store.get_cluster(&due.id).await {
        Ok(Some(c)) if still_due(&c) => c,
        Ok(_) => {
            release(store.as_ref(), &due.id, holder).await;
            return Action::Later;
        }
        Err(e) => {
            release(store.as_ref(), &due.id, holder).await;
            return store_failed(&due.id, &e);
        }
    };
    let action = tokio::select! {
        action = step(fresh) => action,
        () = keep_claim(store.as_ref(), &due.id, holder, ttl) => {
            tracing::warn!(
                cluster.id = %due.id,
                "lost this cluster's claim mid-step (the store did not renew it in time); \
                 the step is dropped and the cluster left to whoever holds it"
            );
            return Action::Later;
        }
    };
    release(store.as_ref(), &due.id, holder).await;
    action
}

/// A cluster the reconciler should step now (as `due_clusters` chooses them).
fn still_due(c: &Cluster) -> bool {
    c.phase != Phase::Deleted
        && !(c.phase == Phase::Failed && c.cleaned_up)
        && c.next_reconcile_at <= Timestamp::now()
}

/// Renew `holder`'s claim on `id` (for `ttl`) every third of `ttl`; returns only when the claim
/// is lost (another holder has it, or it ran out without a renewal).
async fn keep_claim(store: &dyn Store, id: &ClusterId, holder: &str, ttl: Duration) {
    let every = ttl / RENEWALS_PER_TTL;
    let mut held_until = tokio::time::Instant::now() + ttl;
    loop {
        tokio::time::sleep(every).await;
        let now = Timestamp::now();
        match store.claim_cluster(id, holder, until(now, ttl), now).await {
            Ok(true) => held_until = tokio::time::Instant::now() + ttl,
            Ok(false) => return,
            Err(e) => {
                tracing::warn!(cluster.id = %id, error = %e, "cannot renew a cluster claim");
                // NB: a margin of one renewal period: the store's clock and ours differ a little.
                if tokio::time::Instant::now() + every >= held_until {
                    return;
                }
            }
        }
    }
}

async fn release(store: &dyn Store, id: &ClusterId, holder: &str) {
    // NB: a claim that cannot be released runs out by itself within its TTL.
    if let Err(e) = store.release_claim(id, holder).await {
        tracing::debug!(cluster.id = %id, error = %e, "cannot release a cluster claim");
    }
}

fn store_failed(id: &ClusterId, e: &StoreError) -> Action {
    match e {
        StoreError::Unavailable(_) => Action::StoreUnavailable,
        _ => {
            tracing::warn!(cluster.id = %id, error = %e, "cannot claim a cluster; retrying");
            Action::Later
        }
    }
}
