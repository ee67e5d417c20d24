//! Extractors whose rejections are the API's JSON errors: the authenticated caller, JSON
//! bodies, and the `Idempotency-Key` header.

use axum::{
    Json,
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Request},
    http::{HeaderMap, StatusCode, header, request::Parts},
};
use serde::de::DeserializeOwned;

use super::{AppState, MAX_REQUEST_BODY_BYTES, error::ApiError};
use crate::domain::Principal;
use crate::error::Error;
use crate::service::IdempotencyKey;
use crate::tls::ClientCertAuth;

/// The header carrying an idempotency key on `POST /v1/clusters`.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The caller, authenticated from its `Authorization` header, or without one from the TLS
/// connection's verified client certificate (401 otherwise).
#[derive(Debug, Clone)]
pub struct Authenticated(pub Principal);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    /// A request with credentials first checks that its address has not failed too often
    /// (429 then, before any lookup); a failure spends the address's budget, a success the
    /// principal's.
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let addr = state.limits.client_ip(&parts.extensions, &parts.headers);
        let header = parts.headers.get(header::AUTHORIZATION);
        let cert = parts.extensions.get::<ClientCertAuth>();
        let credentials = header.is_some() || cert.is_some();
        if credentials {
            state.limits.charge_address(addr, false)?;
        }
        let authenticated = match header.map(|v| v.to_str()) {
            Some(Err(_)) => Err(Error::Unauthenticated(
                "malformed Authorization header: send Authorization: Bearer <token>".into(),
            )),
            Some(Ok(value)) => state.auth.authenticate(Some(value)).await,
            // NB: an Authorization header, when sent, always decides; a client certificate
            // speaks only for requests that carry none.
            None => match cert {
                Some(cert) => cert.principal(),
                None => state.auth.authenticate(None).await,
            },
        };
        let note = parts.extensions.get::<crate::audit::Note>();
        match authenticated {
            Ok(principal) => {
                if let Some(note) = note {
                    note.principal(&principal.subject);
                }
                state.limits.charge_principal(&principal.subject)?;
                Ok(Self(principal))
            }
            // NB: only a credential found wrong is a failed authentication. One that could
            // not be checked (the store is down: 503) neither spends the address's budget nor
            // counts as an auth failure, or a database outage would leave every client behind
            // one address rate-limited (429) after it, and page whoever watches auth failures.
            Err(e) if !matches!(e, Error::Unauthenticated(_)) => Err(e.into()),
            Err(e) => {
                if let Some(note) = note {
                    note.auth_failed(&e.to_string());
                }
                if let Some(metrics) = &state.metrics {
                    metrics.auth_failure(match (header, cert) {
                        (Some(value), _) => {
                            crate::auth::credential_kind(value.to_str().ok().or(Some("")))
                        }
                        (None, Some(_)) => "client_certificate",
                        (None, None) => "missing",
                    });
                }
                if credentials {
                    // NB: the 401 is the answer either way; the spent budget slows the next try.
                    let _ = state.limits.charge_address(addr, true);
                }
                Err(e.into())
            }
        }
    }
}

/// A JSON request body: 415 without a JSON content type, 400 `malformed_json` when it does
/// not parse, 422 `invalid_field` when it does not fit `T` (unknown field, wrong type; serde's
/// message names the field), 413 beyond the body limit.
#[derive(Debug, Clone, Default)]
pub struct AppJson<T>(pub T);

impl<T, S> FromRequest<S> for AppJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        ensure_json(req.headers())?;
        let bytes = read_body(req, state).await?;
        parse_json(&bytes).map(Self)
    }
}

/// Like [`AppJson`], but an empty body or `null` stands for `T::default()` (every field left
/// out).
#[derive(Debug, Clone, Default)]
pub struct JsonOrEmpty<T>(pub T);

impl<T, S> FromRequest<S> for JsonOrEmpty<T>
where
    T: DeserializeOwned + Default,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let headers = req.headers().clone();
        let bytes = read_body(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(T::default()));
        }
        ensure_json(&headers)?;
        if parse_value(&bytes)?.is_null() {
            return Ok(Self(T::default()));
        }
        parse_json(&bytes).map(Self)
    }
}

/// The optional `Idempotency-Key` header (422 when present but not a valid key).
#[derive(Debug, Clone, Default)]
pub struct IdempotencyKeyHeader(pub Option<IdempotencyKey>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKeyHeader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let Some(value) = parts.headers.get(IDEMPOTENCY_KEY) else {
            return Ok(Self(None));
        };
        // A non-ASCII value fails the same rule as a badly shaped one.
        let key = IdempotencyKey::parse(value.to_str().unwrap_or("\u{0}")).map_err(Error::from)?;
        Ok(Self(Some(key)))
    }
}

/// 415 unless the content type is `application/json` or `application/*+json`.
fn ensure_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let essence = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .map(|value| value.trim().to_ascii_lowercase());
    match essence.as_deref() {
        Some("application/json") => Ok(()),
        Some(mime) if mime.starts_with("application/") && mime.ends_with("+json") => Ok(()),
        _ => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as JSON with Content-Type: application/json",
        )),
    }
}

async fn read_body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("request body is larger than {MAX_REQUEST_BODY_BYTES} bytes"),
            )
        } else {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                rejection.body_text(),
            )
        }
    })
}

/// A JSON object of type `T`: 400 when `bytes` are not JSON, 422 when they do not fit `T`.
fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // NB: serde reads a struct from an array too (`["1h"]` as `{"ttl":"1h"}`); every body of
    // this API is an object, as the document says, so anything else is refused first.
    if !parse_value(bytes)?.is_object() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            "the request body must be a JSON object",
        ));
    }
    Json::<T>::from_bytes(bytes)
        .map(|Json(value)| value)
        .map_err(rejected)
}

/// Any JSON value (400 when `bytes` are not JSON).
fn parse_value(bytes: &[u8]) -> Result<serde_json::Value, ApiError> {
    Json::<serde_json::Value>::from_bytes(bytes)
        .map(|Json(value)| value)
        .map_err(rejected)
}

fn rejected(rejection: axum::extract::rejection::JsonRejection) -> ApiError {
    use axum::extract::rejection::JsonRejection;

    // NB: the source is serde's error with the field path in front (`size: invalid
    // type…`); the rejection's own text only adds a generic preamble.
    let detail = std::error::Error::source(&rejection)
        .map(ToString::to_string)
        .unwrap_or_else(|| rejection.body_text());
    match rejection {
        JsonRejection::JsonDataError(_) => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", detail)
        }
        _ => ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("request body is not valid JSON: {detail}"),
        ),
    }
}
