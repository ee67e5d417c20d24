//! Singleton workers: with several replicas on one store, the pruner (and its orphan sweep),
//! audit retention, the alert notifier and the pull-request engine (with its commit-status
//! outbox) run on one replica at a time, the one holding the role in the store
//! ([`Store::try_lead`]). The others wait and ask again every [`ELECTION_EVERY`]; the leader
//! checks as often that it still holds the role and, when it does not, stops its worker and
//! goes back to waiting. On SQLite the only process always leads.
//!
//! NB: the leader finds out it lost the role within one check; another replica may take the
//! role as soon as the leader's session ends, so one pass can overlap. The singleton workers
//! are idempotent (deletes are version-checked, a purge of what is gone removes nothing, the
//! notification outbox dedupes what it queues), so an overlap costs repeated work, and at
//! worst an alert posted twice, never a wrong state.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

use crate::store::Store;

/// How often a replica asks for a role it does not hold, and the leader checks its hold.
pub const ELECTION_EVERY: Duration = Duration::from_secs(5);

/// Run the worker `start` makes while this process holds `role` in `store`, until `shutdown`.
/// `start` is called each time the role is (re)gained, with a token cancelled when it is lost
/// or at shutdown. A worker that fails fails this too (the server then stops loudly).
pub async fn run_singleton<F, Fut>(
    store: Arc<dyn Store>,
    role: &'static str,
    shutdown: CancellationToken,
    start: F,
) -> anyhow::Result<()>
where
    F: Fn(CancellationToken) -> Fut,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    loop {
        let mut lead = loop {
            match store.try_lead(role).await {
                Ok(Some(lead)) => break lead,
                Ok(None) => {}
                Err(e) => tracing::debug!(role, error = %e, "cannot ask for a singleton role"),
            }
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                () = tokio::time::sleep(ELECTION_EVERY) => {}
            }
        };
        tracing::info!(role, "this replica runs the singleton worker");
        let stop = shutdown.child_token();
        let mut worker = tokio::spawn(start(stop.clone()));
        loop {
            tokio::select! {
                done = &mut worker => {
                    return done.with_context(|| format!("the {role} worker panicked"))?;
                }
                () = tokio::time::sleep(ELECTION_EVERY) => {
                    if lead.still_leading().await {
                        continue;
                    }
                    tracing::warn!(
                        role,
                        "lost the singleton role (the store connection holding it failed); \
                         stopping the worker until this replica holds the role again"
                    );
                    stop.cancel();
                    (&mut worker)
                        .await
                        .with_context(|| format!("the {role} worker panicked"))??;
                    break;
                }
            }
        }
    }
}
