//! `/v1/tokens`: API token administration (admins only), and `/v1/whoami`.

use axum::{
    Json,
    extract::{Path, State},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    AppState,
    error::ApiError,
    extract::{AppJson, Authenticated},
};
use crate::api::{CreateTokenRequest, CreatedToken, ErrorBody, TokenList, TokenView, WhoAmI};
use crate::service::TokenSpec;

/// The token routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_token, list_tokens))
        .routes(routes!(get_token, revoke_token))
        .routes(routes!(whoami))
}

/// The caller as vcm sees it: subject, role and team. Any authenticated caller; useful to
/// check what a client certificate or CI OIDC token maps to.
#[utoipa::path(
    get, path = "/v1/whoami", tag = "tokens",
    responses(
        (status = 200, description = "The caller", body = WhoAmI),
        (status = 401, description = "Unauthenticated", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn whoami(Authenticated(p): Authenticated) -> Json<WhoAmI> {
    Json(WhoAmI {
        subject: p.subject,
        name: p.display,
        role: p.role.to_string(),
        team: p.team,
    })
}

/// Issue a token. The answer carries its secret, this once: vcm stores only its hash.
#[utoipa::path(
    post, path = "/v1/tokens", tag = "tokens",
    request_body(content = CreateTokenRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "Issued; `secret` is shown only here", body = CreatedToken,
            headers(("Location" = String, description = "`/v1/tokens/{id}`"))),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Unauthenticated", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 415, description = "A body that is not `application/json`", body = ErrorBody),
        (status = 422, description = "Invalid field", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn create_token(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    AppJson(req): AppJson<CreateTokenRequest>,
) -> Result<Response, ApiError> {
    let spec = TokenSpec {
        name: req.name,
        role: req.role,
        team: req.team,
        ttl: req.ttl,
    };
    let (token, secret) = state.tokens.create(&principal, spec).await?;
    let location = HeaderValue::try_from(format!("/v1/tokens/{}", token.id))
        .map_err(|e| ApiError::internal(e.into()))?;
    Ok((
        StatusCode::CREATED,
        [
            (header::LOCATION, location),
            // NB: the body holds a secret: no cache or proxy may keep it.
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        Json(CreatedToken::new(&token, &secret)),
    )
        .into_response())
}

/// Every token, newest first (revoked and expired ones too); never a secret.
#[utoipa::path(
    get, path = "/v1/tokens", tag = "tokens",
    responses(
        (status = 200, description = "The tokens", body = TokenList),
        (status = 401, description = "Unauthenticated", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn list_tokens(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<Json<TokenList>, ApiError> {
    let items = state.tokens.list(&principal).await?;
    Ok(Json(TokenList {
        items: items.iter().map(TokenView::from).collect(),
    }))
}

/// One token by id.
#[utoipa::path(
    get, path = "/v1/tokens/{id}", tag = "tokens",
    params(("id" = String, Path, description = "Token id (`t-…`)")),
    responses(
        (status = 200, description = "The token", body = TokenView),
        (status = 401, description = "Unauthenticated", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such token", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn get_token(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<TokenView>, ApiError> {
    let token = state.tokens.get(&principal, &id).await?;
    Ok(Json(TokenView::from(&token)))
}

/// Revoke a token: the next request presenting it is refused. Repeating it is harmless.
#[utoipa::path(
    delete, path = "/v1/tokens/{id}", tag = "tokens",
    params(("id" = String, Path, description = "Token id (`t-…`)")),
    responses(
        (status = 200, description = "Revoked", body = TokenView),
        (status = 401, description = "Unauthenticated", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such token", body = ErrorBody),
        (status = 409, description = "The last active admin token", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn revoke_token(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<TokenView>, ApiError> {
    let token = state.tokens.revoke(&principal, &id).await?;
    Ok(Json(TokenView::from(&token)))
}
