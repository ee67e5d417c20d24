#![allow(clippy::unwrap_used)]

use axum::{
    http::{Method, StatusCode},
    routing::get,
};
use serde_json::json;

use super::testkit::{mk_call, mk_state};
use super::*;

/// The whole router over a fresh state.
async fn mk_app() -> Router {
    router(mk_state().await)
}

fn mk_get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

/// A router with extra routes that fail in known ways.
async fn mk_failing_app() -> Router {
    let routes = Router::new()
        .route(
            "/unauthenticated",
            get(|| async {
                ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", "no token")
            }),
        )
        .route(
            "/internal",
            get(|| async { ApiError::internal(anyhow::anyhow!("db password is hunter2")) }),
        )
        .route("/panic", get(panicking));
    with_middleware(routes, mk_state().await)
}

async fn panicking() -> &'static str {
    panic!("secret panic detail")
}

#[tokio::test]
async fn healthz_answers_200_ok() {
    // Act
    let (status, _, body) = mk_call(mk_app().await, mk_get("/healthz")).await;

    // Assert
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"status": "ok"}));
}

#[tokio::test]
async fn readyz_answers_503_before_ready_and_200_after() {
    // Arrange
    let state = mk_state().await;
    let app = router(state.clone());

    // Act
    let (before, headers, body) = mk_call(app.clone(), mk_get("/readyz")).await;
    state.readiness.set_ready();
    let (after, _, ready_body) = mk_call(app, mk_get("/readyz")).await;

    // Assert
    assert_eq!(before, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(headers["retry-after"], "1");
    assert_eq!(body["error"]["code"], "not_ready");
    assert_eq!(
        body["error"]["message"],
        "the server is starting or shutting down"
    );
    assert_eq!(after, StatusCode::OK);
    assert_eq!(ready_body, json!({"status": "ready"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_answers_503_while_the_database_is_down_and_200_when_it_returns_healthz_200_all_along()
 {
    // Arrange: a ready server over a PostgreSQL of its own (this test stops it).
    let mut pg = crate::testing::postgres::TestPostgres::local().await;
    let store = crate::store::PostgresStore::open(&pg.database().await)
        .await
        .unwrap();
    let state =
        super::testkit::mk_state_on(Arc::new(store), Arc::new(super::testkit::UnavailableDriver))
            .await;
    state.readiness.set_ready();
    let app = router(state);
    let (up, _, _) = mk_call(app.clone(), mk_get("/readyz")).await;

    // Act: the database stops.
    pg.stop().await;
    let started = std::time::Instant::now();
    let (down, headers, body) = mk_call(app.clone(), mk_get("/readyz")).await;
    let took = started.elapsed();
    let (live, _, _) = mk_call(app.clone(), mk_get("/healthz")).await;
    pg.restart().await;
    let (back, _, back_body) = mk_call(app, mk_get("/readyz")).await;

    // Assert
    assert_eq!(up, StatusCode::OK);
    assert_eq!(down, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(headers["retry-after"], "5");
    assert_eq!(body["error"]["code"], "store_unavailable");
    assert_eq!(
        body["error"]["message"], "the database is unavailable; retry later",
        "no internal detail"
    );
    assert!(
        took < std::time::Duration::from_secs(4),
        "the probe gives up in about 2 s, took {took:?}"
    );
    assert_eq!(
        live,
        StatusCode::OK,
        "liveness does not depend on the store"
    );
    assert_eq!(back, StatusCode::OK, "{back_body}");
    assert_eq!(back_body, json!({"status": "ready"}));
}

#[tokio::test]
async fn unknown_route_answers_404_json_with_the_generated_request_id() {
    // Act
    let (status, headers, body) = mk_call(mk_app().await, mk_get("/nope")).await;

    // Assert
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");
    assert_eq!(body["error"]["message"], "no route for GET /nope");
    let generated = headers["x-request-id"].to_str().unwrap();
    assert!(!generated.is_empty());
    assert_eq!(body["error"]["request_id"], generated);
}

#[tokio::test]
async fn request_id_from_the_client_is_echoed_in_header_and_error_body() {
    // Arrange
    let request = Request::get("/nope")
        .header("x-request-id", "ci-run-42")
        .body(Body::empty())
        .unwrap();

    // Act
    let (_, headers, body) = mk_call(mk_app().await, request).await;

    // Assert
    assert_eq!(headers["x-request-id"], "ci-run-42");
    assert_eq!(body["error"]["request_id"], "ci-run-42");
}

#[tokio::test]
async fn wrong_method_answers_405_json_and_lists_allowed_methods() {
    // Arrange
    let request = Request::delete("/healthz").body(Body::empty()).unwrap();

    // Act
    let (status, headers, body) = mk_call(mk_app().await, request).await;

    // Assert
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body["error"]["code"], "method_not_allowed");
    assert!(headers["allow"].to_str().unwrap().contains("GET"));
}

#[tokio::test]
async fn body_over_the_limit_answers_413_json() {
    // Arrange
    let request = Request::builder()
        .method(Method::POST)
        .uri("/healthz")
        .header("content-length", MAX_REQUEST_BODY_BYTES + 1)
        .body(Body::from(vec![b'x'; MAX_REQUEST_BODY_BYTES + 1]))
        .unwrap();

    // Act
    let (status, headers, body) = mk_call(mk_app().await, request).await;

    // Assert
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(body["error"]["code"], "payload_too_large");
    assert!(body["error"]["request_id"].is_string());
}

#[tokio::test]
async fn error_statuses_carry_the_headers_the_contract_requires() {
    // Table: (path, status, header, value, reason).
    let cases = [
        (
            "/unauthenticated",
            StatusCode::UNAUTHORIZED,
            "www-authenticate",
            "Bearer",
            "401",
        ),
        // NB: no 429 case: vcm has no rate limiter yet; its 429 (with Retry-After) gets a test
        // with the limiter (identity and access issue), not before.
    ];

    for (path, expected_status, header, value, reason) in cases {
        // Act
        let (status, headers, _) = mk_call(mk_failing_app().await, mk_get(path)).await;

        // Assert
        assert_eq!(status, expected_status, "{reason}");
        assert_eq!(headers[header], value, "{reason}");
    }
}

#[tokio::test]
async fn server_errors_and_panics_answer_an_opaque_500() {
    for path in ["/internal", "/panic"] {
        // Act
        let (status, _, body) = mk_call(mk_failing_app().await, mk_get(path)).await;

        // Assert
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{path}");
        assert_eq!(body["error"]["code"], "internal", "{path}");
        assert_eq!(body["error"]["message"], "internal error", "{path}");
        assert!(body["error"]["request_id"].is_string(), "{path}");
        assert!(!body.to_string().contains("secret"), "{path}: {body}");
        assert!(!body.to_string().contains("hunter2"), "{path}: {body}");
    }
}

#[tokio::test]
async fn crate_errors_map_to_their_status_and_code_and_5xx_stay_opaque() {
    use crate::error::Error;

    fn route(err: fn() -> Error) -> axum::routing::MethodRouter<AppState> {
        get(move || async move { Err::<(), ApiError>(err().into()) })
    }
    // Arrange
    let routes = Router::new()
        .route(
            "/invalid",
            route(|| crate::domain::InvalidField::new("ttl", "bad").into()),
        )
        .route("/missing", route(|| Error::ClusterNotFound("web".into())))
        .route("/clash", route(|| Error::conflict("name_taken", "taken")))
        .route("/denied", route(|| Error::Forbidden("not yours".into())))
        .route(
            "/quota",
            route(|| Error::Denied {
                code: "quota_exceeded",
                message: "quota max_clusters of team web reached: 3 live clusters of 3".into(),
            }),
        )
        .route(
            "/busy",
            route(|| Error::Unavailable("db password is hunter2".into())),
        )
        .route(
            "/full",
            route(|| {
                Error::try_later(
                    "no_capacity",
                    "no host has room (a 4/4, b 2/2)",
                    std::time::Duration::from_secs(30),
                )
            }),
        )
        .route(
            "/bug",
            route(|| Error::Other(anyhow::anyhow!("secret detail"))),
        );
    let app = with_middleware(routes, mk_state().await);
    // Table: (path, status, code, message).
    let cases = [
        (
            "/invalid",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            "ttl: bad",
        ),
        (
            "/missing",
            StatusCode::NOT_FOUND,
            "cluster_not_found",
            "cluster \"web\" not found",
        ),
        ("/clash", StatusCode::CONFLICT, "name_taken", "taken"),
        ("/denied", StatusCode::FORBIDDEN, "forbidden", "not yours"),
        (
            "/quota",
            StatusCode::FORBIDDEN,
            "quota_exceeded",
            "quota max_clusters of team web reached: 3 live clusters of 3",
        ),
        (
            "/busy",
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "service unavailable; retry later",
        ),
        (
            "/full",
            StatusCode::SERVICE_UNAVAILABLE,
            "no_capacity",
            "no host has room (a 4/4, b 2/2)",
        ),
        (
            "/bug",
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        ),
    ];

    for (path, expected_status, code, message) in cases {
        // Act
        let (status, headers, body) = mk_call(app.clone(), mk_get(path)).await;

        // Assert
        assert_eq!(status, expected_status, "{path}");
        assert_eq!(body["error"]["code"], code, "{path}");
        assert_eq!(body["error"]["message"], message, "{path}");
        if status == StatusCode::SERVICE_UNAVAILABLE {
            let want = if path == "/full" { "30" } else { "5" };
            assert_eq!(headers["retry-after"], want, "{path}");
        }
    }
}
