//! `GET /v1/hosts`: host clusters with reachability, capacity and use.

use axum::{Json, extract::State};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{AppState, error::ApiError, extract::Authenticated};
use crate::api::{ErrorBody, HostList};

/// The hosts routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_hosts))
}

/// Every host, whether it is reachable, how many clusters it takes and holds.
#[utoipa::path(
    get, path = "/v1/hosts", tag = "hosts",
    responses(
        (status = 200, description = "The hosts", body = HostList),
        (status = 401, description = "Unauthenticated", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn list_hosts(
    State(state): State<AppState>,
    Authenticated(_principal): Authenticated,
) -> Result<Json<HostList>, ApiError> {
    Ok(Json(HostList {
        items: state
            .service
            .hosts()
            .await?
            .into_iter()
            .map(Into::into)
            .collect(),
    }))
}
