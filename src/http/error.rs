//! The one place where errors become HTTP responses.
//!
//! Every error body has the shape `{"error":{"code":"…","message":"…","request_id":"…"}}`.
//! [`ApiError`] renders it and leaves an [`ErrorReport`] in the response extensions; the
//! [`render_errors`] middleware then fills in the request id, logs the error once (with the
//! internal detail that a 5xx body never shows), and turns plain-text error responses from
//! axum and tower layers (405, 413, extractor rejections) into the same JSON shape.

use std::{any::Any, time::Duration};

use axum::{
    Json,
    body::Body,
    extract::Request,
    http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use serde::Serialize;
use tower_http::request_id::RequestId;

/// `Retry-After` sent with 429 and 503 when the error does not say otherwise: short enough
/// that a retrying CI job barely waits, long enough not to hammer a server that is starting.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(5);

/// Largest plain-text error body that is read to become a JSON error message; longer bodies
/// are replaced by the status's reason phrase.
const MAX_PLAIN_ERROR_BYTES: usize = 1024;

/// The message a 5xx body carries instead of the internal detail.
const OPAQUE_MESSAGE: &str = "internal error";

/// The message a 503 body carries instead of the internal detail, by code.
fn unavailable_message(code: &str) -> &'static str {
    match code {
        "store_unavailable" => "the database is unavailable; retry later",
        "driver_unavailable" => "the cluster back-end is unavailable; retry later",
        "starting" | "draining" | "not_ready" => "the server is not ready; retry later",
        _ => "service unavailable; retry later",
    }
}

/// An error response: status, stable snake_case `code` and a message for the client.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<Duration>,
    /// The message may be sent even though the status is a 5xx (a 503 that names which
    /// capacity is missing: no secret in it).
    public: bool,
}

/// What an error response was about, left in the response extensions for middleware.
#[derive(Debug, Clone)]
pub struct ErrorReport {
    /// The response status.
    pub status: StatusCode,
    /// The stable error code sent to the client.
    pub code: &'static str,
    /// The message sent to the client (opaque for 5xx).
    pub public_message: String,
    /// The full message, with internal detail; for logs only.
    pub detail: String,
}

/// `{"error": {...}}`
#[derive(Serialize)]
struct Envelope<'a> {
    error: ErrorFields<'a>,
}

#[derive(Serialize)]
struct ErrorFields<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
}

// === impl ApiError ===

impl ApiError {
    /// An error with an explicit status and code. For a 5xx, `message` is logged, not sent.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
            public: false,
        }
    }

    /// 404 with code `not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 503: the server cannot serve this now; the client should retry. `message` is sent: it
    /// must say why in words a client may see.
    pub fn unavailable(code: &'static str, message: impl Into<String>) -> Self {
        let mut err = Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message);
        err.public = true;
        err
    }

    /// 500 with code `internal`; the cause chain is logged, never sent.
    pub fn internal(err: anyhow::Error) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("{err:#}"),
        )
    }

    /// Sets the `Retry-After` sent with a 429 or 503 (whole seconds).
    pub fn with_retry_after(mut self, retry_after: Duration) -> Self {
        self.retry_after = Some(retry_after);
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The stable error code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// Builds the error for a response that carries no [`ErrorReport`]: `code` from the
    /// status, `message` from the body text when it is short, readable and not a 5xx.
    fn from_plain(status: StatusCode, text: Option<&str>) -> Self {
        let reason = status
            .canonical_reason()
            .unwrap_or("error")
            .to_ascii_lowercase();
        let message = match text.map(str::trim) {
            Some(text) if !text.is_empty() => text.to_owned(),
            _ => reason,
        };
        Self::new(status, code_for_status(status), message)
    }

    /// When the client should retry, if the error says.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// What is sent (the message is opaque for a 5xx that is not public) and what is logged.
    pub fn report(&self) -> ErrorReport {
        let public_message = match self.status {
            _ if self.public => self.message.clone(),
            StatusCode::SERVICE_UNAVAILABLE => unavailable_message(self.code).to_owned(),
            s if s.is_server_error() => OPAQUE_MESSAGE.to_owned(),
            _ => self.message.clone(),
        };
        ErrorReport {
            status: self.status,
            code: self.code,
            public_message,
            detail: self.message.clone(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let report = self.report();
        let mut response = (self.status, report.body(None)).into_response();
        if let Some(retry_after) = self.retry_after {
            let secs = (retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0)).max(1);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        add_error_headers(self.status, response.headers_mut());
        response.extensions_mut().insert(report);
        response
    }
}

impl From<crate::error::Error> for ApiError {
    /// Maps the error's kind to a status and its code to the body's `code`. A 4xx carries the
    /// error's message; a 5xx keeps the cause chain for the log only.
    fn from(err: crate::error::Error) -> Self {
        use crate::error::ErrorKind;

        let status = match err.kind() {
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
            ErrorKind::Forbidden => StatusCode::FORBIDDEN,
            ErrorKind::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if let crate::error::Error::TryLater {
            code,
            message,
            retry_after,
        } = err
        {
            let mut api = Self::new(status, code, message).with_retry_after(retry_after);
            api.public = true;
            return api;
        }
        if let crate::error::Error::RateLimited {
            message,
            retry_after,
        } = err
        {
            return Self::new(status, "rate_limited", message).with_retry_after(retry_after);
        }
        let message = if status.is_server_error() {
            cause_chain(&err)
        } else {
            err.to_string()
        };
        let api = Self::new(status, err.code(), message);
        if status == StatusCode::SERVICE_UNAVAILABLE {
            api.with_retry_after(DEFAULT_RETRY_AFTER)
        } else {
            api
        }
    }
}

/// `err: cause: cause…`, skipping a cause whose text the previous one already shows (as
/// `#[error(transparent)]` and `{0}` wrappers do).
fn cause_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut chain = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !chain.ends_with(&text) {
            chain.push_str(": ");
            chain.push_str(&text);
        }
        source = cause.source();
    }
    chain
}

// === impl ErrorReport ===

impl ErrorReport {
    fn body<'a>(&'a self, request_id: Option<&'a str>) -> Json<Envelope<'a>> {
        Json(Envelope {
            error: ErrorFields {
                code: self.code,
                message: &self.public_message,
                request_id,
            },
        })
    }

    fn log(&self, request_id: Option<&str>) {
        let (status, code, detail) = (self.status.as_u16(), self.code, &self.detail);
        let request_id = request_id.unwrap_or_default();
        match self.status {
            // NB: during a database outage every request is a 503 (a thousand lines a minute
            // under load); the store's outage tracker says it once as it starts and ends, and
            // the request log line has every answer's status and code.
            StatusCode::SERVICE_UNAVAILABLE
                if matches!(code, "store_unavailable" | "audit_unavailable") =>
            {
                tracing::debug!(status, code, request_id, detail, "request unavailable");
            }
            // NB: 503 is expected while starting and draining; readiness probes see it often.
            StatusCode::SERVICE_UNAVAILABLE => {
                tracing::warn!(status, code, request_id, detail, "request unavailable");
            }
            s if s.is_server_error() => {
                tracing::error!(status, code, request_id, detail, "request failed");
            }
            _ => tracing::debug!(status, code, request_id, detail, "request rejected"),
        }
    }
}

/// Middleware: fills the request id into error bodies, logs each error once, and turns
/// plain-text error responses into the JSON error shape.
pub async fn render_errors(request: Request, next: Next) -> Response {
    let request_id = request
        .extensions()
        .get::<RequestId>()
        .and_then(|id| id.header_value().to_str().ok())
        .map(str::to_owned);
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }

    let (mut parts, body) = response.into_parts();
    let report = match parts.extensions.get::<ErrorReport>() {
        Some(report) => report.clone(),
        None if is_json(&parts.headers) => return Response::from_parts(parts, body),
        None => {
            let text = axum::body::to_bytes(body, MAX_PLAIN_ERROR_BYTES).await.ok();
            let text = text
                .as_deref()
                .and_then(|bytes| std::str::from_utf8(bytes).ok());
            let report = ApiError::from_plain(status, text).report();
            add_error_headers(status, &mut parts.headers);
            parts.extensions.insert(report.clone());
            report
        }
    };
    report.log(request_id.as_deref());

    let rendered = report.body(request_id.as_deref()).into_response();
    parts.headers.remove(header::CONTENT_LENGTH);
    if let Some(content_type) = rendered.headers().get(header::CONTENT_TYPE) {
        parts
            .headers
            .insert(header::CONTENT_TYPE, content_type.clone());
    }
    Response::from_parts(parts, Body::new(rendered.into_body()))
}

/// Fallback for paths no route matches: 404 `not_found`.
pub async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::not_found(format!("no route for {method} {}", uri.path()))
}

/// Fallback for a known path with an unsupported method: 405 `method_not_allowed`.
pub async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not allowed on {}", uri.path()),
    )
}

/// Response for a panicking handler (for `CatchPanicLayer`): an opaque 500.
pub fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic payload".to_owned());
    ApiError::internal(anyhow::anyhow!("handler panicked: {message}")).into_response()
}

/// The stable `code` for a status when nothing more specific is known.
fn code_for_status(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::UNAUTHORIZED => "unauthenticated",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::REQUEST_TIMEOUT => "request_timeout",
        StatusCode::CONFLICT => "conflict",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "invalid",
        StatusCode::TOO_MANY_REQUESTS => "rate_limited",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        s if s.is_server_error() => "internal",
        _ => "client_error",
    }
}

/// Headers the API contract requires with some statuses; values already set are kept.
fn add_error_headers(status: StatusCode, headers: &mut HeaderMap) {
    match status {
        StatusCode::UNAUTHORIZED => {
            headers
                .entry(header::WWW_AUTHENTICATE)
                .or_insert(HeaderValue::from_static("Bearer"));
        }
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => {
            headers
                .entry(header::RETRY_AFTER)
                .or_insert(HeaderValue::from(DEFAULT_RETRY_AFTER.as_secs()));
        }
        _ => {}
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"))
}
