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
    EventList, EventView, GatewayCredentialList, KubeconfigKind, KubeconfigRequest,
    RevokedCredentials, UpdateClusterRequest,
};
use crate::controlplane::{Kubeconfig, KubeconfigUser};
use crate::domain::DeleteReason;
use crate::error::Error;
use crate::gateway::KubeconfigMode;

/// Set to `true` on a create answered from an earlier request with the same `Idempotency-Key`.
pub const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// Decoded query pairs, in order (so `label` can repeat).
type QueryPairs = Query<Vec<(String, String)>>;

/// The cluster routes, each documented for `/openapi.json`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list, delete_by_labels))
        .routes(routes!(get_cluster, update, delete_cluster))
        .routes(routes!(kubeconfig))
        .routes(routes!(keepalive))
        .routes(routes!(forget))
        .routes(routes!(events))
        .routes(routes!(list_credentials, revoke_credentials))
        .routes(routes!(revoke_credential))
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
    JsonOrEmpty(req): JsonOrEmpty<CreateClusterRequest>,
) -> Result<Response, ApiError> {
    let (cluster, created) = state.service.create(&principal, req, key).await?;
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

/// A kubeconfig with a short-lived token: YAML, or JSON with `Accept: application/json`.
#[utoipa::path(
    post, path = "/v1/clusters/{id}/kubeconfig", tag = "clusters",
    params(("id" = String, Path, description = "Cluster id or live name")),
    request_body(content = Option<KubeconfigRequest>, content_type = "application/json",
        description = "Optional; an empty body asks for the default lifetime (1h)"),
    responses(
        (status = 200, description = "The kubeconfig",
            content(
                // The same kubeconfig object, written as YAML.
                (Object = "application/yaml"),
                (Object = "application/json"),
            )),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Unauthenticated", body = ErrorBody),
        (status = 404, description = "No such cluster", body = ErrorBody),
        (status = 409, description = "Cluster not Ready", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 415, description = "A body that is not `application/json`", body = ErrorBody),
        (status = 422, description = "Invalid ttl", body = ErrorBody),
        (status = 503, description = "The cluster's API server did not answer; retry later",
            body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn kubeconfig(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    JsonOrEmpty(req): JsonOrEmpty<KubeconfigRequest>,
) -> Result<Response, ApiError> {
    let ttl = req.ttl.as_deref();
    let gateway = match (req.mode, &state.gateway) {
        (None, Some(gw)) => (gw.mode() == KubeconfigMode::Gateway).then_some(gw),
        (None | Some(KubeconfigKind::Direct), _) => None,
        (Some(KubeconfigKind::Gateway), Some(gw)) if gw.https() => Some(gw),
        (Some(KubeconfigKind::Gateway), _) => {
            return Err(ApiError::from(Error::conflict(
                "gateway_needs_tls",
                "gateway kubeconfigs need clients to reach vcm over TLS (kubectl sends \
                 credentials only over TLS), and this server speaks plain HTTP; ask for \
                 mode \"direct\", or have the operator configure [tls]",
            )));
        }
    };
    let (kubeconfig, credential) = match gateway {
        Some(gw) => {
            let (cluster, credential, secret) = state
                .service
                .gateway_credential(&principal, &id, ttl)
                .await?;
            // NB: HTTP/2 carries the host in the URI (`:authority`), HTTP/1.1 in `Host`.
            let host = uri
                .authority()
                .map(|a| a.as_str())
                .or_else(|| headers.get(header::HOST).and_then(|h| h.to_str().ok()));
            let server = gw
                .server_url(host, &cluster.id)
                .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "no_public_url", e))?;
            let kubeconfig = Kubeconfig {
                name: cluster.name.to_string(),
                server,
                ca_pem: gw.ca_pem().map_err(ApiError::internal)?,
                user: KubeconfigUser::Token(secret.expose().to_owned()),
                namespace: Some("default".into()),
            };
            (kubeconfig, Some(credential.id))
        }
        _ => (state.service.kubeconfig(&principal, &id, ttl).await?, None),
    };
    // NB: the body is a credential; no cache on the way may keep it.
    let mut response = if accepts_json(&headers) {
        Json(kubeconfig.to_value()).into_response()
    } else {
        let yaml = kubeconfig.to_yaml().map_err(ApiError::internal)?;
        let content_type = [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/yaml"),
        )];
        (content_type, yaml).into_response()
    };
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(id) = credential.and_then(|id| HeaderValue::from_str(&id).ok()) {
        headers.insert(CREDENTIAL_ID_HEADER, id);
    }
    Ok(response)
}

/// The response header naming the gateway credential a kubeconfig carries (for revoking it).
pub const CREDENTIAL_ID_HEADER: &str = "vcm-credential-id";

/// The cluster's gateway credentials (what gateway kubeconfigs carry), newest first.
#[utoipa::path(
    get, path = "/v1/clusters/{id}/credentials", tag = "clusters",
    params(("id" = String, Path, description = "Cluster id or live name")),
    responses(
        (status = 200, description = "Its gateway credentials", body = GatewayCredentialList),
        (status = 401, description = "Unauthenticated", body = ErrorBody),
        (status = 404, description = "No such cluster", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn list_credentials(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<GatewayCredentialList>, ApiError> {
    let items = state.service.gateway_credentials(&principal, &id).await?;
    Ok(Json(GatewayCredentialList {
        items: items.iter().map(Into::into).collect(),
    }))
}

/// Revoke every gateway credential of the cluster: requests that present one are refused, and
/// open watches and exec sessions through the gateway end within a second.
#[utoipa::path(
    delete, path = "/v1/clusters/{id}/credentials", tag = "clusters",
    params(("id" = String, Path, description = "Cluster id or live name")),
    responses(
        (status = 200, description = "How many were revoked", body = RevokedCredentials),
        (status = 401, description = "Unauthenticated", body = ErrorBody),
        (status = 404, description = "No such cluster", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn revoke_credentials(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<RevokedCredentials>, ApiError> {
    let revoked = state
        .service
        .revoke_gateway_credentials(&principal, &id, None)
        .await?;
    Ok(Json(RevokedCredentials { revoked }))
}

/// Revoke one gateway credential of the cluster (its id is the `vcm-credential-id` header of
/// the kubeconfig response).
#[utoipa::path(
    delete, path = "/v1/clusters/{id}/credentials/{credential}", tag = "clusters",
    params(
        ("id" = String, Path, description = "Cluster id or live name"),
        ("credential" = String, Path, description = "Credential id (`g-…`)"),
    ),
    responses(
        (status = 200, description = "How many were revoked (0 if it was already)",
            body = RevokedCredentials),
        (status = 401, description = "Unauthenticated", body = ErrorBody),
        (status = 404, description = "No such cluster or credential", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn revoke_credential(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path((id, credential)): Path<(String, String)>,
) -> Result<Json<RevokedCredentials>, ApiError> {
    let revoked = state
        .service
        .revoke_gateway_credentials(&principal, &id, Some(&credential))
        .await?;
    Ok(Json(RevokedCredentials { revoked }))
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

/// Whether the `Accept` header asks for JSON (anything else gets YAML).
fn accepts_json(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|range| range.split(';').next())
        .any(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

#[cfg(test)]
mod tests;
