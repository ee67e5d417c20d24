//! `GET /v1/teams/{team}/usage`: a team's live clusters against its quota.

use axum::{
    Json,
    extract::{Path, State},
};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{AppState, error::ApiError, extract::Authenticated};
use crate::api::ErrorBody;
use crate::service::TeamUsage;

/// The teams routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(team_usage))
}

/// A team's live clusters, by principal, against its `[quotas]` entry. Admins read any team's;
/// members their own.
#[utoipa::path(
    get, path = "/v1/teams/{team}/usage", tag = "teams",
    params(("team" = String, Path, description = "Team name")),
    responses(
        (status = 200, description = "The team's use and quota", body = TeamUsage),
        (status = 401, description = "Unauthenticated", body = ErrorBody),
        (status = 403, description = "Not an admin nor a member of the team", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn team_usage(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(team): Path<String>,
) -> Result<Json<TeamUsage>, ApiError> {
    Ok(Json(state.service.team_usage(&principal, &team).await?))
}
