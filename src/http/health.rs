//! `/healthz` (liveness) and `/readyz` (readiness).
//!
//! `/healthz` says only that the process answers HTTP: a database outage must not get vcm
//! restarted (a restart cannot fix the database, and it would drop requests in flight).
//! `/readyz` also asks the store ([`Store::ping`](crate::store::Store::ping)), so a load
//! balancer sends no traffic to a replica whose database is gone; it answers 503 with
//! `Retry-After`, like every request that needs the store meanwhile.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use axum::{Json, Router, extract::State, routing::get};
use serde::Serialize;

use super::{AppState, error::ApiError};
use crate::store::StoreError;

/// How soon a probe should ask again when the server is not ready: starting up or draining
/// takes seconds, not minutes.
const NOT_READY_RETRY_AFTER: Duration = Duration::from_secs(1);
/// How long `/readyz` waits for the store's answer, so a hung database turns the probe into a
/// quick 503 instead of a request that hangs until its caller gives up (and piles up behind
/// the next probes). NB: PostgreSQL's own connection wait (`ACQUIRE_TIMEOUT`, 5 s) is longer,
/// so this one decides; a kubelet with its default 1 s probe timeout gives up sooner, which
/// it counts as a failure too.
const STORE_PING_TIMEOUT: Duration = Duration::from_secs(2);

/// Whether the server accepts work; shared between the server (which sets it) and `/readyz`.
///
/// Starts not ready. Clones share one flag.
#[derive(Debug, Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

/// Body of a successful probe.
#[derive(Serialize)]
struct Status {
    status: &'static str,
}

// === impl Readiness ===

impl Readiness {
    /// Marks the server ready: `/readyz` answers 200.
    pub fn set_ready(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// Marks the server not ready (starting or draining): `/readyz` answers 503.
    pub fn set_not_ready(&self) {
        self.0.store(false, Ordering::Release);
    }

    /// Whether the server is ready.
    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// The health routes.
pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

/// Liveness: the process answers HTTP.
async fn healthz() -> Json<Status> {
    Json(Status { status: "ok" })
}

/// Readiness: the server accepts work, and its store answers.
async fn readyz(State(state): State<AppState>) -> Result<Json<Status>, ApiError> {
    if !state.readiness.is_ready() {
        return Err(
            ApiError::unavailable("not_ready", "the server is starting or shutting down")
                .with_retry_after(NOT_READY_RETRY_AFTER),
        );
    }
    let store = state.service.store().clone();
    within(STORE_PING_TIMEOUT, async move { store.ping().await })
        .await
        // The same 503 (`store_unavailable`, opaque message, `Retry-After`) as any request
        // that needs the store now; the cause is logged by the error middleware.
        .map_err(|e| ApiError::from(crate::error::Error::from(e)))?;
    Ok(Json(Status { status: "ready" }))
}

/// `ping`'s answer, or `Unavailable` if it takes longer than `timeout`.
async fn within(
    timeout: Duration,
    ping: impl Future<Output = Result<(), StoreError>>,
) -> Result<(), StoreError> {
    tokio::time::timeout(timeout, ping)
        .await
        .unwrap_or_else(|_| {
            Err(StoreError::Unavailable(format!(
                "the store did not answer a ping within {timeout:?}"
            )))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_ping_that_hangs_is_unavailable_after_the_timeout() {
        // Arrange
        let timeout = Duration::from_millis(50);
        let started = std::time::Instant::now();

        // Act
        let got = within(timeout, std::future::pending()).await;

        // Assert
        assert!(matches!(got, Err(StoreError::Unavailable(_))), "{got:?}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "it gave up at the timeout"
        );
    }

    #[tokio::test]
    async fn a_ping_that_answers_in_time_passes_its_answer_through() {
        // Act
        let ok = within(STORE_PING_TIMEOUT, async { Ok(()) }).await;
        let refused = within(STORE_PING_TIMEOUT, async {
            Err(StoreError::Unavailable("connection refused".into()))
        })
        .await;

        // Assert
        assert!(ok.is_ok());
        assert!(matches!(refused, Err(StoreError::Unavailable(m)) if m == "connection refused"));
    }
}
