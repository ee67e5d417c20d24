//! Credentials of a cluster: `POST /v1/clusters/{id}/kubeconfig` (through the gateway or direct)
//! and the gateway credentials under `/v1/clusters/{id}/credentials`.

use axum::{
    Json,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    AppState,
    error::ApiError,
    extract::{Authenticated, JsonOrEmpty},
};
use crate::api::{
    ErrorBody, GatewayCredentialList, KubeconfigKind, KubeconfigRequest, RevokedCredentials,
};
use crate::controlplane::{Kubeconfig, KubeconfigUser};
use crate::error::Error;
use crate::gateway::KubeconfigMode;

/// The credential routes, each documented for `/openapi.json`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(kubeconfig))
        .routes(routes!(list_credentials, revoke_credentials))
        .routes(routes!(revoke_credential))
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
            // NB: HTTP/2 carries the host in the URI (`:authority`), HTTP/1.1 in `Host`. Read
            // first: a request that cannot be answered issues no credential.
            let host = uri
                .authority()
                .map(|a| a.as_str())
                .or_else(|| headers.get(header::HOST).and_then(|h| h.to_str().ok()));
            let base = gw
                .base_url(host)
                .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "no_public_url", e))?;
            let (cluster, credential, secret) = state
                .service
                .gateway_credential(&principal, &id, ttl)
                .await?;
            let server = format!("{base}/k8s/{}", cluster.id);
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

/// Whether the `Accept` header asks for JSON (anything else gets YAML).
pub(crate) fn accepts_json(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|range| range.split(';').next())
        .any(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}
