//! `/healthz` (liveness) and `/readyz` (readiness).

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

/// How soon a probe should ask again when the server is not ready: starting up or draining
/// takes seconds, not minutes.
const NOT_READY_RETRY_AFTER: Duration = Duration::from_secs(1);

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

/// Readiness: the server accepts work.
async fn readyz(State(state): State<AppState>) -> Result<Json<Status>, ApiError> {
    if state.readiness.is_ready() {
        Ok(Json(Status { status: "ready" }))
    } else {
        Err(
            ApiError::unavailable("not_ready", "the server is starting or shutting down")
                .with_retry_after(NOT_READY_RETRY_AFTER),
        )
    }
}
