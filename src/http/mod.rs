//! The HTTP door: the axum router, its middleware stack, health endpoints and error mapping.

use std::time::Instant;

use axum::{Router, body::Body, http::Request, http::header};
use tower::ServiceBuilder;
use tower_http::{
    catch_panic::CatchPanicLayer,
    limit::RequestBodyLimitLayer,
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    sensitive_headers::SetSensitiveRequestHeadersLayer,
    trace::{DefaultOnFailure, DefaultOnResponse, TraceLayer},
};
use tracing::{Level, Span};

pub mod error;
mod health;

pub use error::ApiError;
pub use health::Readiness;

/// Largest request body accepted (the API contract's default): cluster specs are tiny, and a
/// bound keeps a single request from holding memory hostage.
pub const MAX_REQUEST_BODY_BYTES: usize = 1024 * 1024;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    /// When the server was built.
    pub started_at: Instant,
    /// Readiness flag, set by the server once it serves and cleared when it drains.
    pub readiness: Readiness,
}

// === impl AppState ===

impl AppState {
    /// A state that starts not ready.
    pub fn new() -> Self {
        Self {
            started_at: Instant::now(),
            readiness: Readiness::default(),
        }
    }
}

impl Default for AppState {
    fn default() -> Self {
        Self::new()
    }
}

/// The whole HTTP API: every resource router, JSON fallbacks and the middleware stack.
pub fn router(state: AppState) -> Router {
    with_middleware(Router::new().merge(health::router()), state)
}

/// Adds the JSON fallbacks and the middleware stack to `routes`.
fn with_middleware(routes: Router<AppState>, state: AppState) -> Router {
    // Outermost first: a request passes the layers top to bottom, its response bottom to top.
    let middleware = ServiceBuilder::new()
        // Before anything can log a request, so `Authorization` never shows in logs.
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
        ]))
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(make_span)
                .on_response(DefaultOnResponse::new().level(Level::INFO))
                // NB: `render_errors` logs error responses once, with their detail.
                .on_failure(DefaultOnFailure::new().level(Level::DEBUG)),
        )
        .layer(axum::middleware::from_fn(error::render_errors))
        // Inside `render_errors`, so a panic's 500 gets the request id and is logged.
        .layer(CatchPanicLayer::custom(error::panic_response))
        .layer(RequestBodyLimitLayer::new(MAX_REQUEST_BODY_BYTES));

    routes
        .fallback(error::not_found)
        // NB: applies to the routes registered so far, so it comes after every route.
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(middleware)
        .with_state(state)
}

/// The span of one request. The path only: a query string may carry secrets.
fn make_span(request: &Request<Body>) -> Span {
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        request_id,
    )
}

#[cfg(test)]
mod tests;
