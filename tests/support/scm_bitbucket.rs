//! The fake's Bitbucket endpoints: the commit lookup and build statuses (part of
//! `scm_fakes.rs`).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Json, Response};
use serde_json::{Value, json};

use super::{BITBUCKET_TOKEN, Shared, answer, header, outage, record};

fn bitbucket_authorized(h: &HeaderMap) -> bool {
    header(h, "authorization") == format!("Bearer {BITBUCKET_TOKEN}")
}

fn bitbucket_error(status: StatusCode, message: &str, fields: Value) -> Response {
    answer(
        status,
        json!({"type": "error", "error": {"message": message, "fields": fields}}),
    )
}

pub async fn bitbucket_commit(
    State(s): State<Shared>,
    Path((ws, repo, hash)): Path<(String, String, String)>,
    h: HeaderMap,
) -> Response {
    let path = format!("/2.0/repositories/{ws}/{repo}/commit/{hash}");
    if !bitbucket_authorized(&h) {
        record(&s, "GET", path, &h, Value::Null, 401);
        return bitbucket_error(StatusCode::UNAUTHORIZED, "Unauthorized", Value::Null);
    }
    let full = s.inner.lock().unwrap().commits.get(&hash).cloned();
    match full {
        Some(full) => {
            record(&s, "GET", path, &h, Value::Null, 200);
            answer(
                StatusCode::OK,
                json!({"type": "commit", "hash": full, "message": "Größen\n"}),
            )
        }
        None => {
            record(&s, "GET", path, &h, Value::Null, 404);
            bitbucket_error(
                StatusCode::NOT_FOUND,
                &format!("Commit not found: {hash}"),
                Value::Null,
            )
        }
    }
}

pub async fn bitbucket_status(
    State(s): State<Shared>,
    Path((ws, repo, hash)): Path<(String, String, String)>,
    h: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let path = format!("/2.0/repositories/{ws}/{repo}/commit/{hash}/statuses/build");
    let (status, resp) = if !bitbucket_authorized(&h) {
        (
            401,
            bitbucket_error(StatusCode::UNAUTHORIZED, "Unauthorized", Value::Null),
        )
    } else if outage(&s) {
        (
            500,
            bitbucket_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                Value::Null,
            ),
        )
    } else if body["key"].as_str().unwrap_or_default().chars().count() > 40 {
        let n = body["key"].as_str().unwrap_or_default().chars().count();
        let m = format!("Ensure this value has at most 40 characters (it has {n}).");
        (
            400,
            bitbucket_error(
                StatusCode::BAD_REQUEST,
                &format!("key: {m}"),
                json!({"key": [m]}),
            ),
        )
    } else if reqwest::Url::parse(body["url"].as_str().unwrap_or_default()).is_err() {
        (
            400,
            bitbucket_error(
                StatusCode::BAD_REQUEST,
                "url: Enter a valid URL.",
                json!({"url": ["Enter a valid URL."]}),
            ),
        )
    } else {
        let mut r = body.clone();
        r["type"] = json!("build");
        r["commit"] = json!({"type": "commit", "hash": hash});
        (201, answer(StatusCode::CREATED, r))
    };
    record(&s, "POST", path, &h, body, status);
    resp
}
