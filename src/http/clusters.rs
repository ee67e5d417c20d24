//! `/v1/clusters`: thin handlers that extract, call the service and map errors with `?`.

use axum::{
    Json,
    extract::{Path, Query, State},
    http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    AppState,
    error::ApiError,
    extract::{AppJson, Authenticated, IdempotencyKeyHeader, JsonOrEmpty},
    query,
};
use crate::api::{
    ClusterJson, ClusterList, ClusterView, CreateClusterRequest, DeletedClusters, ErrorBody,
    EventList, EventView, UpdateClusterRequest,
};
use crate::domain::DeleteReason;
use crate::domain::usage::ClusterUsage;
use crate::error::Error;

/// Set to `true` on a create answered from an earlier request with the same `Idempotency-Key`.
pub const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// Decoded query pairs, in order (so `label` can repeat).
type QueryPairs = Query<Vec<(String, String)>>;

/// The cluster routes, each documented for `/openapi.json`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list, delete_by_labels))
        .routes(routes!(get_cluster, update, delete_cluster))
        .routes(routes!(keepalive))
        .routes(routes!(forget))
        .routes(routes!(events))
        .routes(routes!(usage))
}

/// Accept a new cluster; it starts `Pending` and the reconciler takes it from there.
#[utoipa::path(
    post, path = "/v1/clusters", tag = "clusters",
    params(("Idempotency-Key" = Option<String>, Header,
        description = "Retrying with the same key and body returns the same cluster")),
    request_body(content = Option<CreateClusterRequest>, content_type = "application/json",
        description = "Every field is optional; an empty body takes every default"),
    responses(
        (status = 202, description = "Accepted", body = ClusterView, headers(
            ("Location" = String, description = "`/v1/clusters/{id}`"),
            ("Idempotent-Replayed" = Option<String>,
                description = "`true` when an earlier request with this key created it"))),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Unauthenticated", body = ErrorBody),
        (status = 409, description = "Name taken, or the idempotency key was used with another body",
            body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 415, description = "A body that is not `application/json`", body = ErrorBody),
        (status = 422, description = "Invalid field", body = ErrorBody),
        (status = 503, description = "No reachable host with room; retry later", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn create(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    IdempotencyKeyHeader(key): IdempotencyKeyHeader,
    note: Option<axum::Extension<crate::audit::Note>>,
    JsonOrEmpty(req): JsonOrEmpty<CreateClusterRequest>,
) -> Result<Response, ApiError> {
    let (cluster, created) = state.service.create(&principal, req, key).await?;
    if let Some(axum::Extension(note)) = note {
        note.target(cluster.id.as_str());
    }
    let location = HeaderValue::try_from(format!("/v1/clusters/{}", cluster.id))
        .map_err(|e| ApiError::internal(e.into()))?;
    let mut headers = HeaderMap::new();
    headers.insert(header::LOCATION, location);
    if !created {
        headers.insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    }
    Ok((
        StatusCode::ACCEPTED,
        headers,
        Json(ClusterView::from(&cluster)),
    )
        .into_response())
}

/// List clusters, oldest first, a page at a time.
#[utoipa::path(
    get, path = "/v1/clusters", tag = "clusters",
    params(
        ("phase" = Option<String>, Query, description = "Only this phase"),
        ("owner" = Option<String>, Query, description = "Only this owner (`token:<id>`, see `vcm whoami`)"),
        ("label" = Option<Vec<String>>, Query, description = "`key=value`; repeat to AND"),
        ("limit" = Option<usize>, Query, description = "1 to 500, default 100"),
        ("cursor" = Option<String>, Query, description = "A previous page's `next_cursor`"),
    ),
    responses(
        (status = 200, description = "A page", body = ClusterList),
        (status = 401, description = "Unauthenticated", body = ErrorBody),
        (status = 422, description = "Bad parameter", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn list(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Query(pairs): QueryPairs,
) -> Result<Response, ApiError> {
    let filter = query::list_filter(&pairs).map_err(Error::from)?;
    let page = state.service.list(&principal, &filter).await?;
    let next_cursor = page.next.as_ref().map(query::encode_cursor);
    state.list_bodies.response(page.items, next_cursor)
}

/// Delete every live cluster matching all the given labels.
#[utoipa::path(
    delete, path = "/v1/clusters", tag = "clusters",
    params(("label" = Vec<String>, Query, description = "`key=value`; at least one, repeat to AND")),
    responses(
        (status = 202, description = "Deletion requested", body = DeletedClusters),
        (status = 401, description = "Unauthenticated", body = ErrorBody),
        (status = 422, description = "No or bad label", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn delete_by_labels(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Query(pairs): QueryPairs,
) -> Result<(StatusCode, Json<DeletedClusters>), ApiError> {
    let selector = query::delete_selector(&pairs).map_err(Error::from)?;
    let ids = state.service.delete_by_labels(&principal, selector).await?;
    let ids = ids.iter().map(ToString::to_string).collect();
    Ok((StatusCode::ACCEPTED, Json(DeletedClusters { ids })))
}

/// One cluster, by id or live name.
#[utoipa::path(
    get, path = "/v1/clusters/{id}", tag = "clusters",
    params(("id" = String, Path, description = "Cluster id or live name")),
    responses(
        (status = 200, description = "The cluster", body = ClusterView),
        (status = 401, description = "Unauthenticated", body = ErrorBody),
        (status = 404, description = "No such cluster", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn get_cluster(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let cluster = state.service.get(&principal, &id).await?;
    super::json_response(&ClusterJson(&cluster), super::CLUSTER_JSON_BYTES)
}

/// Change `ttl`, `idle_timeout` or `labels`; what the body leaves out stays as it is.
#[utoipa::path(
    put, path = "/v1/clusters/{id}", tag = "clusters",
    params(("id" = String, Path, description = "Cluster id or live name")),
    request_body(content = UpdateClusterRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Updated", body = ClusterView),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Unauthenticated", body = ErrorBody),
        (status = 404, description = "No such cluster", body = ErrorBody),
        (status = 409, description = "Cluster no longer live", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 415, description = "No `application/json` body", body = ErrorBody),
        (status = 422, description = "Invalid or immutable field", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn update(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
    AppJson(req): AppJson<UpdateClusterRequest>,
) -> Result<Json<ClusterView>, ApiError> {
    let cluster = state.service.update(&principal, &id, req).await?;
    Ok(Json(ClusterView::from(&cluster)))
}

/// Request deletion; repeating it is harmless.
#[utoipa::path(
    delete, path = "/v1/clusters/{id}", tag = "clusters",
    params(("id" = String, Path, description = "Cluster id or live name")),
    responses(
        (status = 202, description = "Deletion requested", body = ClusterView),
        (status = 401, description = "Unauthenticated", body = ErrorBody),
        (status = 404, description = "No such cluster", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn delete_cluster(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<ClusterView>), ApiError> {
    let cluster = state
        .service
        .delete(&principal, &id, DeleteReason::Requested)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(ClusterView::from(&cluster))))
}

/// Forget a cluster stuck in `Deleting` (admins only): it ends `Deleted` without vcm releasing
/// anything, for a cluster whose host was removed from the configuration. What it had on that
/// host stays there; an event records who forgot it.
#[utoipa::path(
    post, path = "/v1/clusters/{id}/forget", tag = "clusters",
    params(("id" = String, Path, description = "Cluster id or live name")),
    responses(
        (status = 200, description = "Forgotten: the cluster, now Deleted", body = ClusterView),
        (status = 401, description = "Unauthenticated", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such cluster", body = ErrorBody),
        (status = 409, description = "Cluster is not Deleting: delete it first", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn forget(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<ClusterView>, ApiError> {
    let cluster = state.service.forget(&principal, &id).await?;
    Ok(Json(ClusterView::from(&cluster)))
}

/// Mark activity now (resets the idle clock).
#[utoipa::path(
    post, path = "/v1/clusters/{id}/keepalive", tag = "clusters",
    params(("id" = String, Path, description = "Cluster id or live name")),
    responses(
        (status = 200, description = "The cluster", body = ClusterView),
        (status = 401, description = "Unauthenticated", body = ErrorBody),
        (status = 404, description = "No such cluster", body = ErrorBody),
        (status = 409, description = "Cluster no longer live", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn keepalive(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<ClusterView>, ApiError> {
    let cluster = state.service.keepalive(&principal, &id).await?;
    Ok(Json(ClusterView::from(&cluster)))
}

/// What the cluster uses now: its processes or host namespace, and the objects in its API.
#[utoipa::path(
    get, path = "/v1/clusters/{id}/usage", tag = "clusters",
    params(("id" = String, Path, description = "Cluster id or live name")),
    responses(
        (status = 200, description = "Its use; parts that could not be read are named in `notes`", body = ClusterUsage),
        (status = 401, description = "Unauthenticated", body = ErrorBody),
        (status = 404, description = "No such cluster", body = ErrorBody),
        (status = 409, description = "Cluster is not Ready", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn usage(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<ClusterUsage>, ApiError> {
    Ok(Json(state.service.usage(&principal, &id).await?))
}

/// Lifecycle events, oldest first.
#[utoipa::path(
    get, path = "/v1/clusters/{id}/events", tag = "clusters",
    params(("id" = String, Path, description = "Cluster id or live name")),
    responses(
        (status = 200, description = "The events", body = EventList),
        (status = 401, description = "Unauthenticated", body = ErrorBody),
        (status = 404, description = "No such cluster", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn events(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<EventList>, ApiError> {
    let events = state.service.events(&principal, &id).await?;
    Ok(Json(EventList {
        items: events.iter().map(EventView::from).collect(),
    }))
}

#[cfg(test)]
mod tests;
