//! The HTTP door: the axum router, its middleware stack, health endpoints and error mapping.

use std::{
    sync::{Arc, Mutex},
    time::Instant,
};

use axum::{
    Json, Router,
    body::{Body, Bytes},
    extract::State,
    http::Request,
    http::header,
    response::{IntoResponse as _, Response},
    routing::get,
};
use tower::ServiceBuilder;
use tower_http::{
    catch_panic::CatchPanicLayer,
    limit::RequestBodyLimitLayer,
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    sensitive_headers::SetSensitiveRequestHeadersLayer,
    trace::{DefaultOnFailure, DefaultOnResponse, TraceLayer},
};
use tracing::{Level, Span};
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;

use crate::{
    auth::Authenticator,
    domain::{Cluster, Door},
    service::{ClusterService, TokenService},
};

/// `GET /v1/audit`: the audit log, for admins.
pub mod audit;
pub mod clusters;
/// Kubeconfigs and gateway credentials.
pub mod credentials;
pub mod error;
pub mod extract;
mod health;
/// `GET /v1/hosts`.
pub mod hosts;
mod metrics;
mod openapi;
mod query;
/// Request budgets: 429 with `Retry-After`.
pub mod ratelimit;
/// `GET /v1/teams/{team}/usage`: a team's use against its quota.
pub mod teams;
#[cfg(test)]
pub(crate) mod testkit;
/// `/v1/tokens`.
pub mod tokens;
mod ui;
/// The webhook doors.
pub mod webhooks;

pub use error::ApiError;
pub use health::Readiness;
pub use metrics::standalone_router as metrics_router;
pub use openapi::ApiDoc;
pub use ratelimit::{RateLimitConfig, RateLimiter};
pub use ui::PATH as UI_PATH;

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
    /// The cluster use-cases.
    pub service: ClusterService,
    /// Resolves `Authorization` headers to principals.
    pub auth: Arc<Authenticator>,
    /// The token use-cases.
    pub tokens: TokenService,
    /// Request budgets per principal and per client address.
    pub limits: Arc<RateLimiter>,
    /// The JSON of the latest listing pages, by content.
    pub(crate) list_bodies: Arc<ListBodies>,
    /// The cluster gateway (`/k8s/…`), when enabled.
    pub gateway: Option<Arc<crate::gateway::Gateway>>,
    /// The webhook doors, when any is configured.
    pub webhooks: Option<Arc<crate::webhooks::Doors>>,
    /// The audit log every request is recorded in (`None`: `[audit] enabled = false`).
    pub audit: Option<crate::audit::Auditor>,
    /// What `/metrics` exports, and requests are counted into (`None`: `[metrics] enabled =
    /// false`); the service's.
    pub metrics: Option<Arc<crate::metrics::Metrics>>,
    /// Who may read `/metrics` on the API's address.
    pub metrics_auth: crate::config::metrics::MetricsAuth,
}

// === impl AppState ===

impl AppState {
    /// A state over `service` and `auth` that starts not ready.
    ///
    /// Requests are recorded in the store's audit database, signed with a key of the process's own;
    /// [`AppState::with_audit`] sets the configured one.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime (the audit writer is spawned), or when the system cannot
    /// generate a key.
    pub fn new(service: ClusterService, auth: Arc<Authenticator>) -> Self {
        #[allow(clippy::expect_used)]
        let audit = crate::audit::Auditor::ephemeral(service.store().clone())
            .expect("an audit key is generated from the system's randomness");
        let metrics = Some(service.metrics().clone());
        Self {
            started_at: Instant::now(),
            readiness: Readiness::default(),
            tokens: TokenService::new(service.store().clone()).with_policy(service.rego().cloned()),
            limits: Arc::new(RateLimiter::new(RateLimitConfig::default())),
            service,
            auth,
            list_bodies: Arc::default(),
            gateway: None,
            webhooks: None,
            audit: None,
            metrics,
            metrics_auth: crate::config::metrics::MetricsAuth::default(),
        }
        .with_audit(Some(audit))
    }

    /// Record requests in `audit` (`None`: not at all).
    pub fn with_audit(mut self, audit: Option<crate::audit::Auditor>) -> Self {
        self.audit = audit;
        self
    }

    /// Count and serve metrics as `[metrics]` says.
    pub fn with_metrics(mut self, config: &crate::config::metrics::MetricsConfig) -> Self {
        self.metrics = config.enabled.then(|| self.service.metrics().clone());
        self.metrics_auth = config.auth;
        self
    }

    /// Serve the cluster gateway, and hand out kubeconfigs as it says.
    pub fn with_gateway(mut self, gateway: crate::gateway::Gateway) -> Self {
        self.gateway = Some(Arc::new(gateway));
        self
    }

    /// Open the webhook doors.
    pub fn with_webhooks(mut self, doors: crate::webhooks::Doors) -> Self {
        self.webhooks = Some(Arc::new(doors));
        self
    }
}

impl AppState {
    /// Use these rate limits instead of the defaults; `Err` names a bad `trusted_proxies`
    /// entry.
    pub fn try_with_rate_limits(mut self, config: RateLimitConfig) -> anyhow::Result<Self> {
        self.limits = Arc::new(RateLimiter::try_new(config)?);
        Ok(self)
    }

    /// Use these rate limits (trusting no proxy) instead of the defaults.
    pub fn with_rate_limits(mut self, config: RateLimitConfig) -> Self {
        self.limits = Arc::new(RateLimiter::new(config));
        self
    }
}

/// The JSON bodies of the last few listing pages, each with the page it was written from: a
/// page equal to one of them, item for item, gets the same bytes without serializing 100
/// clusters again (comparing them costs a fraction of writing them). Keyed by content, so it
/// cannot answer anything but what serializing the page would.
#[derive(Default)]
pub(crate) struct ListBodies(Mutex<Vec<Arc<ListBody>>>);

struct ListBody {
    items: Vec<Cluster>,
    next_cursor: Option<String>,
    json: Bytes,
}

impl std::fmt::Debug for ListBodies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListBodies").finish_non_exhaustive()
    }
}

// === impl ListBodies ===

impl ListBodies {
    /// How many bodies are kept: the first page and a few filters in use.
    const KEEP: usize = 4;

    /// The `200 application/json` answer for a page of `items`.
    pub(crate) fn response(
        &self,
        items: Vec<Cluster>,
        next_cursor: Option<String>,
    ) -> Result<Response, ApiError> {
        let recent = self.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let hit = recent
            .iter()
            .find(|b| b.next_cursor == next_cursor && b.items == items);
        let json = match hit {
            Some(body) => body.json.clone(),
            None => {
                let list = crate::api::ClusterListJson {
                    items: &items,
                    next_cursor: next_cursor.as_deref(),
                };
                let mut json = Vec::with_capacity(CLUSTER_JSON_BYTES * (items.len() + 1));
                serde_json::to_writer(&mut json, &list)
                    .map_err(|e| ApiError::internal(e.into()))?;
                let json = Bytes::from(json);
                let body = Arc::new(ListBody {
                    items,
                    next_cursor,
                    json: json.clone(),
                });
                let mut kept = self.0.lock().unwrap_or_else(|e| e.into_inner());
                kept.insert(0, body);
                kept.truncate(Self::KEEP);
                json
            }
        };
        Ok(([(header::CONTENT_TYPE, JSON)], json).into_response())
    }
}

/// The OpenAPI document of every documented route, as generated: `/openapi.json` serves it with
/// the rules that depend on configuration added (`openapi::served`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    api_routes().into_openapi()
}

fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(clusters::router())
        .merge(credentials::router())
        .merge(hosts::router())
        .merge(tokens::router())
        .merge(teams::router())
        .merge(audit::router())
}

/// The whole HTTP API: every resource router, JSON fallbacks and the middleware stack.
pub fn router(state: AppState) -> Router {
    let (api, doc) = api_routes().split_for_parts();
    let doc = Arc::new(doc);
    let served = Arc::new(tokio::sync::OnceCell::new());
    let routes = Router::new()
        .merge(health::router())
        .merge(metrics::router(&state))
        .merge(api)
        .route(
            "/openapi.json",
            get(move |State(state): State<AppState>| {
                let (doc, served) = (doc.clone(), served.clone());
                async move { serve_openapi(&doc, &served, &state).await }
            }),
        );
    let gateway = gateway_with_middleware(state.clone());
    let webhooks = layered(
        webhooks::router(),
        state.clone(),
        webhooks::GITHUB_MAX_BODY,
        Door::Webhook,
    );
    gateway
        .merge(webhooks)
        .merge(ui::router())
        .merge(with_middleware(routes, state))
}

/// The gateway's routes with their own middleware: the request id, tracing and panic guard of
/// the API, but no body limit (a request streams to the cluster, whose API server has its own)
/// and no JSON error rendering (errors are Kubernetes `Status` objects, and the cluster's pass
/// through as they are, JSON or protobuf).
fn gateway_with_middleware(state: AppState) -> Router {
    let middleware = ServiceBuilder::new()
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
        ]))
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http().make_span_with(make_span))
        .layer(axum::middleware::from_fn_with_state(
            (state.clone(), Door::Gateway),
            crate::audit::layer::record,
        ))
        .layer(CatchPanicLayer::custom(|panic| {
            let _ = error::panic_response(panic);
            crate::gateway::status_response(ApiError::internal(anyhow::anyhow!(
                "the gateway panicked"
            )))
        }));
    crate::gateway::router().layer(middleware).with_state(state)
}

/// `GET /openapi.json`: public, like the health endpoints. What it states depends on
/// configuration and on the hosts the driver knows, so it is completed on the first request
/// and kept (neither changes while the process runs).
///
/// NB: kept, because listing hosts may ask every host cluster (the vcluster driver checks
/// reachability), which an unauthenticated endpoint must not trigger on every request.
async fn serve_openapi(
    doc: &utoipa::openapi::OpenApi,
    served: &tokio::sync::OnceCell<serde_json::Value>,
    state: &AppState,
) -> Result<Response, ApiError> {
    let served = served
        .get_or_try_init(|| async {
            let hosts: Vec<crate::api::HostView> = state
                .service
                .hosts()
                .await?
                .into_iter()
                .map(Into::into)
                .collect();
            Ok::<_, crate::error::Error>(openapi::served(doc, state.service.policy(), &hosts))
        })
        .await?;
    Ok(Json(served).into_response())
}

/// Adds the JSON fallbacks and the middleware stack to `routes`.
fn with_middleware(routes: Router<AppState>, state: AppState) -> Router {
    let routes = routes
        .fallback(error::not_found)
        // NB: applies to the routes registered so far, so it comes after every route.
        .method_not_allowed_fallback(error::method_not_allowed);
    layered(routes, state, MAX_REQUEST_BODY_BYTES, Door::Api)
}

/// The API's middleware stack on `routes`, refusing bodies over `body_limit` bytes.
fn layered(routes: Router<AppState>, state: AppState, body_limit: usize, door: Door) -> Router {
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
                // NB: the audit layer writes each request's one log line (`vcm::request`).
                .on_response(DefaultOnResponse::new().level(Level::DEBUG))
                // NB: `render_errors` logs error responses once, with their detail.
                .on_failure(DefaultOnFailure::new().level(Level::DEBUG)),
        )
        .layer(axum::middleware::from_fn(error::render_errors))
        // Inside `render_errors` (its 503 gets the request id), outside every refusal.
        .layer(axum::middleware::from_fn_with_state(
            (state.clone(), door),
            crate::audit::layer::record,
        ))
        // Inside `render_errors`, so a panic's 500 gets the request id and is logged.
        .layer(CatchPanicLayer::custom(error::panic_response))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            ratelimit::limit_anonymous,
        ))
        .layer(RequestBodyLimitLayer::new(body_limit));
    routes.layer(middleware).with_state(state)
}

/// A `200 application/json` response of `value`, serialized into one buffer of about
/// `capacity` bytes (axum's `Json` starts at 128 bytes and grows by copying).
pub(crate) fn json_response<T: serde::Serialize>(
    value: &T,
    capacity: usize,
) -> Result<Response, ApiError> {
    let mut body = Vec::with_capacity(capacity);
    serde_json::to_writer(&mut body, value).map_err(|e| ApiError::internal(e.into()))?;
    Ok(([(header::CONTENT_TYPE, JSON)], body).into_response())
}

const JSON: header::HeaderValue = header::HeaderValue::from_static("application/json");

/// About the size of one cluster's JSON (~480 bytes with two labels), so a response is
/// serialized into one buffer without regrowing.
pub(crate) const CLUSTER_JSON_BYTES: usize = 640;

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

#[cfg(test)]
mod list_bodies_tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::store::conformance::mk_cluster;

    async fn body_of(bodies: &ListBodies, items: Vec<Cluster>, cursor: Option<&str>) -> Bytes {
        let response = bodies.response(items, cursor.map(str::to_owned)).unwrap();
        axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_listing_body_is_reused_only_for_an_equal_page() {
        // Arrange
        let bodies = ListBodies::default();
        let page = vec![mk_cluster("one"), mk_cluster("two")];
        let mut changed = page.clone();
        changed[1].message = "changed".into();
        let json = |items: &[Cluster], next_cursor| {
            serde_json::to_vec(&crate::api::ClusterListJson { items, next_cursor }).unwrap()
        };

        // Act
        let first = body_of(&bodies, page.clone(), None).await;
        let again = body_of(&bodies, page.clone(), None).await;
        let other_cursor = body_of(&bodies, page.clone(), Some("c")).await;
        let after_change = body_of(&bodies, changed.clone(), None).await;

        // Assert
        assert_eq!(first, json(&page, None));
        assert_eq!(
            again.as_ptr(),
            first.as_ptr(),
            "the same page reuses its body"
        );
        assert_eq!(other_cursor, json(&page, Some("c")));
        assert_eq!(after_change, json(&changed, None));
    }
}
