//! Errors of the gateway itself as Kubernetes `Status` objects, so kubectl and client-go print
//! them as they print the API server's own.

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse as _, Response},
};

use crate::http::ApiError;

/// `err` as a `Status` response, with `Retry-After` (and `details.retryAfterSeconds`) when it
/// says when to retry, and `WWW-Authenticate` on a 401.
pub fn status_response(err: ApiError) -> Response {
    let report = err.report();
    let code = report.status.as_u16();
    let retry_after = err
        .retry_after()
        .map(|d| (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1));
    let mut status = serde_json::json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": report.public_message,
        "reason": reason(report.status),
        "code": code,
    });
    if let Some(secs) = retry_after {
        status["details"] = serde_json::json!({ "retryAfterSeconds": secs });
    }
    match report.status {
        s if s.is_server_error() => {
            tracing::warn!(
                status = code,
                code = report.code,
                detail = report.detail,
                "gateway error"
            );
        }
        _ => tracing::debug!(
            status = code,
            code = report.code,
            detail = report.detail,
            "gateway refusal"
        ),
    }
    let mut response = (report.status, axum::Json(status)).into_response();
    let headers = response.headers_mut();
    if let Some(secs) = retry_after {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    if report.status == StatusCode::UNAUTHORIZED {
        headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // NB: for the audit record, as the API's errors leave it.
    response.extensions_mut().insert(report);
    response
}

/// The `reason` Kubernetes gives a status code (`metav1.StatusReason`).
fn reason(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "BadRequest",
        StatusCode::UNAUTHORIZED => "Unauthorized",
        StatusCode::FORBIDDEN => "Forbidden",
        StatusCode::NOT_FOUND => "NotFound",
        StatusCode::METHOD_NOT_ALLOWED => "MethodNotAllowed",
        StatusCode::CONFLICT => "Conflict",
        StatusCode::GONE => "Gone",
        StatusCode::PAYLOAD_TOO_LARGE => "RequestEntityTooLarge",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "UnsupportedMediaType",
        StatusCode::UNPROCESSABLE_ENTITY => "Invalid",
        StatusCode::TOO_MANY_REQUESTS => "TooManyRequests",
        StatusCode::SERVICE_UNAVAILABLE => "ServiceUnavailable",
        StatusCode::GATEWAY_TIMEOUT => "Timeout",
        s if s.is_server_error() => "InternalError",
        _ => "Unknown",
    }
}
