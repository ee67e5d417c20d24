//! `GET /metrics`: the server's metrics for Prometheus (`[metrics]`, `docs/MONITORING.md`).

use axum::{
    Router,
    extract::State,
    http::header,
    response::{IntoResponse as _, Response},
    routing::get,
};

use super::{AppState, error::ApiError, extract::Authenticated};
use crate::config::metrics::MetricsAuth;
use crate::domain::{Role, Timestamp};
use crate::metrics::{Census, HostFigures};

/// The route on the API's address, as `[metrics] auth` says; none when metrics are off.
pub(super) fn router(state: &AppState) -> Router<AppState> {
    match (&state.metrics, state.metrics_auth) {
        (None, _) => Router::new(),
        (Some(_), MetricsAuth::Token) => Router::new().route("/metrics", get(scrape)),
        (Some(_), MetricsAuth::None) => Router::new().route("/metrics", get(scrape_open)),
    }
}

/// The router of `[metrics] listen`: `/metrics` without authentication, and nothing else.
pub fn standalone_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(scrape_open))
        .fallback(|| async {
            (
                axum::http::StatusCode::NOT_FOUND,
                "this address serves /metrics only\n",
            )
        })
        .with_state(state)
}

async fn scrape(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<Response, ApiError> {
    if !matches!(principal.role, Role::Admin | Role::Viewer) {
        return Err(crate::error::Error::Forbidden(format!(
            "reading /metrics takes an admin or viewer credential, and {} is a {}; give \
             Prometheus a viewer token (vcm token create --role viewer) or serve metrics on an \
             address of their own ([metrics] listen)",
            principal.subject,
            principal.role.as_str()
        ))
        .into());
    }
    render(&state).await
}

async fn scrape_open(State(state): State<AppState>) -> Result<Response, ApiError> {
    render(&state).await
}

/// Reads the states (clusters, hosts, queues) and renders every metric.
async fn render(state: &AppState) -> Result<Response, ApiError> {
    let Some(metrics) = &state.metrics else {
        return Err(crate::error::Error::NotFound(
            "metrics are turned off ([metrics] enabled = false)".into(),
        )
        .into());
    };
    let _scrape = metrics.scrape().await;
    let service = &state.service;
    let (census, hosts) = tokio::join!(service.store().census(), service.host_figures());
    let census = census.map_err(crate::error::Error::from)?;
    let now = Timestamp::now();
    metrics.set_census(&Census {
        counts: census
            .groups
            .iter()
            .map(|g| {
                (
                    g.phase.as_str(),
                    g.host.clone(),
                    g.size.clone(),
                    g.version.clone(),
                    g.count,
                )
            })
            .collect(),
        oldest: census
            .waiting_since
            .iter()
            .map(|(phase, since)| {
                let secs = now.duration_since(*since).as_secs_f64().max(0.0);
                (phase.as_str(), secs)
            })
            .collect(),
    });
    metrics.set_outbox_depth(census.status_backlog);
    metrics.set_notification_depth(census.notification_backlog);
    let hosts: Vec<HostFigures> = hosts?
        .into_iter()
        .map(|h| HostFigures {
            capacity: h.host.max_clusters.map(u64::from),
            clusters: u64::from(h.clusters),
            up: h.host.reachable,
            name: h.host.name,
        })
        .collect();
    metrics.set_hosts(&hosts);
    if let Some(audit) = &state.audit {
        metrics.set_audit(audit.queued(), audit.failed_batches());
    }
    Ok((
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        metrics.render(),
    )
        .into_response())
}
