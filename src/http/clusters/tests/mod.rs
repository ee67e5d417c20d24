#![allow(clippy::unwrap_used)]

mod errors;
mod flows;
mod forget;
mod inputs;

use axum::{
    Router,
    body::Body,
    http::{HeaderMap, Method, Request, StatusCode, header},
};
use serde_json::Value;

use crate::http::testkit::{TOKEN, mk_call, mk_call_raw, mk_state};
use crate::http::{MAX_REQUEST_BODY_BYTES, router};

async fn mk_app() -> Router {
    router(mk_state().await)
}

/// A request with the test token; `body` is sent as JSON.
fn mk_req(method: Method, path: &str, body: Option<Value>) -> Request<Body> {
    let builder = Request::builder()
        .method(method)
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"));
    match body {
        Some(body) => builder
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap(),
        None => builder.body(Body::empty()).unwrap(),
    }
}

/// A raw JSON body with the test token.
fn mk_raw(method: Method, path: &str, body: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap()
}

/// The contract's error shape, with `status` and `code`; returns the message.
fn assert_error(got: (StatusCode, HeaderMap, Value), status: StatusCode, code: &str) -> String {
    let (got_status, _, body) = got;
    assert_eq!(got_status, status, "{body}");
    assert!(!got_status.is_server_error(), "{body}");
    let error = &body["error"];
    assert_eq!(error["code"], code, "{body}");
    assert!(
        error["request_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty()),
        "{body}"
    );
    let message = error["message"].as_str().unwrap().to_owned();
    assert!(!message.is_empty(), "{body}");
    message
}

/// `request` with its `Content-Length` declared (as an HTTP client sends it).
fn with_length(mut request: Request<Body>) -> Request<Body> {
    use axum::body::HttpBody as _;
    let len = request.body().size_hint().exact().unwrap();
    request
        .headers_mut()
        .insert(header::CONTENT_LENGTH, len.into());
    request
}

async fn mk_cluster(app: &Router, body: Value) -> Value {
    let (status, _, view) = mk_call(
        app.clone(),
        mk_req(Method::POST, "/v1/clusters", Some(body)),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{view}");
    view
}
