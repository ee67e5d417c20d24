#![allow(clippy::unwrap_used)]

use axum::{
    body::Body,
    http::{Method, Request, StatusCode, header},
};
use serde_json::json;

use super::*;

#[tokio::test]
async fn bad_bodies_answer_400_415_422_and_413() {
    // Arrange
    let app = mk_app().await;
    let huge = format!("{{\"name\":\"{}\"}}", "x".repeat(MAX_REQUEST_BODY_BYTES));
    let no_type = Request::post("/v1/clusters")
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from("{}"))
        .unwrap();
    // Table: (request, status, code, words in the message, reason).
    let cases = [
        (
            mk_raw(Method::POST, "/v1/clusters", "{\"name\":"),
            StatusCode::BAD_REQUEST,
            "malformed_json",
            "",
            "truncated",
        ),
        (
            mk_raw(Method::POST, "/v1/clusters", "{\"sise\":\"small\"}"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            "unknown field `sise`",
            "typo",
        ),
        (
            mk_raw(Method::POST, "/v1/clusters", "{\"size\":5}"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            "size",
            "wrong type",
        ),
        (
            no_type,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Content-Type",
            "not JSON",
        ),
        (
            mk_raw(Method::POST, "/v1/clusters", &huge),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "",
            "over 1 MiB, no length",
        ),
        (
            with_length(mk_raw(Method::POST, "/v1/clusters", &huge)),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "",
            "over 1 MiB, declared",
        ),
        (
            mk_req(
                Method::POST,
                "/v1/clusters",
                Some(json!({"name": "Bad_Name"})),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            "name",
            "bad name",
        ),
        (
            mk_req(
                Method::POST,
                "/v1/clusters",
                Some(json!({"ttl": "forever"})),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            "ttl",
            "bad ttl",
        ),
        (
            mk_req(Method::POST, "/v1/clusters", Some(json!({"ttl": "30d"}))),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            "ttl",
            "ttl over the maximum",
        ),
    ];

    for (request, status, code, words, reason) in cases {
        // Act
        let got = mk_call(app.clone(), request).await;

        // Assert
        let message = assert_error(got, status, code);
        assert!(message.contains(words), "{reason}: {message}");
    }
}

#[tokio::test]
async fn requests_without_a_valid_token_answer_401_with_www_authenticate() {
    // Arrange
    let app = mk_app().await;
    let unknown = format!("Bearer vcm_{}", "f".repeat(64));
    // Table: (authorization header, reason).
    let cases = [
        (None, "missing"),
        (Some(unknown.as_str()), "unknown token"),
        (Some("Bearer not-a-token"), "malformed token"),
        (Some("Basic dXNlcjpwYXNz"), "wrong scheme"),
    ];

    for (authorization, reason) in cases {
        let mut builder = Request::get("/v1/clusters");
        if let Some(value) = authorization {
            builder = builder.header(header::AUTHORIZATION, value);
        }

        // Act
        let got = mk_call(app.clone(), builder.body(Body::empty()).unwrap()).await;

        // Assert
        assert_eq!(got.1[header::WWW_AUTHENTICATE], "Bearer", "{reason}");
        let message = assert_error(got, StatusCode::UNAUTHORIZED, "unauthenticated");
        assert!(!message.contains("ffff"), "{reason}: {message}");
        if authorization.is_none() {
            assert!(message.contains("Authorization: Bearer"), "{message}");
        }
    }
}

#[tokio::test]
async fn unknown_cluster_answers_404_on_every_cluster_route() {
    // Arrange
    let app = mk_app().await;
    let cases = [
        mk_req(Method::GET, "/v1/clusters/nope", None),
        mk_req(Method::GET, "/v1/clusters/c-0000000000", None),
        mk_req(Method::PUT, "/v1/clusters/nope", Some(json!({"ttl": "1h"}))),
        mk_req(Method::DELETE, "/v1/clusters/nope", None),
        mk_req(Method::POST, "/v1/clusters/nope/kubeconfig", None),
        mk_req(Method::POST, "/v1/clusters/nope/keepalive", None),
        mk_req(Method::GET, "/v1/clusters/nope/events", None),
    ];

    for request in cases {
        let what = format!("{} {}", request.method(), request.uri());

        // Act
        let got = mk_call(app.clone(), request).await;

        // Assert
        let message = assert_error(got, StatusCode::NOT_FOUND, "cluster_not_found");
        assert!(message.contains("not found"), "{what}: {message}");
    }
}

#[tokio::test]
async fn a_live_name_clash_answers_409() {
    // Arrange
    let app = mk_app().await;
    mk_cluster(&app, json!({"name": "web"})).await;

    // Act
    let got = mk_call(
        app,
        mk_req(Method::POST, "/v1/clusters", Some(json!({"name": "web"}))),
    )
    .await;

    // Assert
    let message = assert_error(got, StatusCode::CONFLICT, "name_taken");
    assert!(message.contains("web"), "{message}");
}

#[tokio::test]
async fn changing_an_immutable_field_answers_422_immutable_field() {
    // Arrange
    let app = mk_app().await;
    mk_cluster(&app, json!({"name": "web"})).await;

    // Act
    let got = mk_call(
        app,
        mk_req(
            Method::PUT,
            "/v1/clusters/web",
            Some(json!({"size": "large"})),
        ),
    )
    .await;

    // Assert
    let message = assert_error(got, StatusCode::UNPROCESSABLE_ENTITY, "immutable_field");
    assert!(message.contains("size"), "{message}");
}

#[tokio::test]
async fn kubeconfig_of_a_pending_cluster_answers_409_cluster_not_ready() {
    // Arrange
    let app = mk_app().await;
    mk_cluster(&app, json!({"name": "web"})).await;

    // Act
    let empty = mk_call(
        app.clone(),
        mk_req(Method::POST, "/v1/clusters/web/kubeconfig", None),
    )
    .await;
    let with_ttl = mk_call(
        app.clone(),
        mk_req(
            Method::POST,
            "/v1/clusters/web/kubeconfig",
            Some(json!({"ttl": "30m"})),
        ),
    )
    .await;
    let bad_ttl = mk_call(
        app,
        mk_req(
            Method::POST,
            "/v1/clusters/web/kubeconfig",
            Some(json!({"ttl": "soon"})),
        ),
    )
    .await;

    // Assert
    let message = assert_error(empty, StatusCode::CONFLICT, "cluster_not_ready");
    assert!(message.contains("Pending"), "{message}");
    assert_error(with_ttl, StatusCode::CONFLICT, "cluster_not_ready");
    let message = assert_error(bad_ttl, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    assert!(message.contains("ttl"), "{message}");
}

#[tokio::test]
async fn bad_list_parameters_answer_422_naming_the_parameter() {
    // Arrange
    let app = mk_app().await;
    // Table: (query, parameter named).
    let cases = [
        ("phase=Running", "phase"),
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("cursor=%21%21", "cursor"),
        ("label=novalue", "label"),
        ("colour=red", "colour"),
    ];

    for (query, parameter) in cases {
        // Act
        let got = mk_call(
            app.clone(),
            mk_req(Method::GET, &format!("/v1/clusters?{query}"), None),
        )
        .await;

        // Assert
        let message = assert_error(got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
        assert!(message.starts_with(parameter), "{query}: {message}");
    }
}

#[tokio::test]
async fn a_duration_ending_in_a_multibyte_character_answers_422_naming_the_field() {
    // Arrange
    let app = mk_app().await;
    mk_cluster(&app, json!({"name": "web"})).await;
    // Table: (method, path, body, field named).
    let cases = [
        (Method::POST, "/v1/clusters", json!({"ttl": "5é"}), "ttl"),
        (
            Method::POST,
            "/v1/clusters",
            json!({"idle_timeout": "1µ"}),
            "idle_timeout",
        ),
        (Method::PUT, "/v1/clusters/web", json!({"ttl": "5é"}), "ttl"),
        (
            Method::POST,
            "/v1/clusters/web/kubeconfig",
            json!({"ttl": "5é"}),
            "ttl",
        ),
    ];

    for (method, path, body, field) in cases {
        // Act
        let got = mk_call(app.clone(), mk_req(method, path, Some(body))).await;

        // Assert
        let message = assert_error(got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
        assert!(message.starts_with(field), "{path}: {message}");
    }
}

#[tokio::test]
async fn too_many_label_selectors_answer_422_naming_the_limit() {
    // Arrange
    let app = mk_app().await;
    let query = (0..1500)
        .map(|i| format!("label=k{i}=v"))
        .collect::<Vec<_>>()
        .join("&");

    for method in [Method::GET, Method::DELETE] {
        // Act
        let got = mk_call(
            app.clone(),
            mk_req(method.clone(), &format!("/v1/clusters?{query}"), None),
        )
        .await;

        // Assert
        let message = assert_error(got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
        assert!(message.starts_with("label"), "{method}: {message}");
        assert!(message.contains("at most 64"), "{method}: {message}");
    }
}

#[tokio::test]
async fn a_host_selector_of_more_labels_than_a_host_has_answers_422_naming_the_limit() {
    // Arrange
    let app = mk_app().await;
    let selector: serde_json::Map<String, Value> =
        (0..65).map(|i| (format!("k{i}"), json!("v"))).collect();

    // Act
    let got = mk_call(
        app,
        mk_req(
            Method::POST,
            "/v1/clusters",
            Some(json!({ "host_selector": selector })),
        ),
    )
    .await;

    // Assert
    let message = assert_error(got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    assert!(message.starts_with("host_selector"), "{message}");
    assert!(message.contains("at most 64"), "{message}");
}

#[tokio::test]
async fn a_huge_invalid_value_is_not_echoed_whole() {
    // Arrange
    let app = mk_app().await;
    let huge = "A".repeat(500_000);
    // Table: (body, field named).
    let cases = [
        (json!({ "name": huge }), "name"),
        (json!({ "ttl": huge }), "ttl"),
        (json!({ "size": huge }), "size"),
        (json!({ "labels": { "k": huge } }), "labels.k"),
        (json!({ "labels": { huge.clone(): "v" } }), "labels"),
    ];

    for (body, field) in cases {
        // Act
        let got = mk_call(
            app.clone(),
            mk_req(Method::POST, "/v1/clusters", Some(body)),
        )
        .await;

        // Assert
        let message = assert_error(got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
        assert!(message.starts_with(field), "{field}: {}", &message[..80]);
        assert!(message.len() < 1000, "{field}: {} bytes", message.len());
    }
}
