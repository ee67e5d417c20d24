#![allow(clippy::unwrap_used)]

use axum::{
    body::Body,
    http::{HeaderMap, Method, Request, StatusCode, header},
};
use serde_json::{Value, json};

use super::*;

#[tokio::test]
async fn create_answers_202_with_location_and_a_pending_cluster() {
    // Arrange
    let app = mk_app().await;

    // Act
    let (status, headers, body) = mk_call(
        app.clone(),
        mk_req(
            Method::POST,
            "/v1/clusters",
            Some(json!({"name": "pr-42", "labels": {"pr": "42"}})),
        ),
    )
    .await;
    let (empty_status, _, defaults) =
        mk_call(app, mk_req(Method::POST, "/v1/clusters", None)).await;

    // Assert
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["phase"], "Pending");
    assert!(
        body["owner"].as_str().unwrap().starts_with("token:t-"),
        "{body}"
    );
    assert_eq!(
        headers["location"],
        format!("/v1/clusters/{}", body["id"].as_str().unwrap())
    );
    assert!(headers.get("idempotent-replayed").is_none());
    assert_eq!(empty_status, StatusCode::ACCEPTED, "{defaults}");
    assert_eq!(
        defaults["name"], defaults["id"],
        "an empty body takes every default"
    );
}

#[tokio::test]
async fn get_update_keepalive_and_events_accept_the_id_or_the_name() {
    // Arrange
    let app = mk_app().await;
    let created = mk_cluster(&app, json!({"name": "web"})).await;
    let id = created["id"].as_str().unwrap();

    // Act
    let (by_name, _, got) =
        mk_call(app.clone(), mk_req(Method::GET, "/v1/clusters/web", None)).await;
    let (updated, _, changed) = mk_call(
        app.clone(),
        mk_req(
            Method::PUT,
            &format!("/v1/clusters/{id}"),
            Some(json!({"ttl": "3h", "labels": {"a": "b"}})),
        ),
    )
    .await;
    let (kept, _, _) = mk_call(
        app.clone(),
        mk_req(Method::POST, "/v1/clusters/web/keepalive", None),
    )
    .await;
    let (listed, _, events) =
        mk_call(app, mk_req(Method::GET, "/v1/clusters/web/events", None)).await;

    // Assert
    assert_eq!(by_name, StatusCode::OK);
    assert_eq!(got["id"], id);
    assert_eq!(updated, StatusCode::OK, "{changed}");
    assert_eq!(changed["ttl"], "3h");
    assert_eq!(changed["labels"], json!({"a": "b"}));
    assert_eq!(kept, StatusCode::OK);
    assert_eq!(listed, StatusCode::OK);
    let kinds: Vec<&str> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["created", "updated"]);
}

#[tokio::test]
async fn an_idempotent_create_replays_the_same_cluster_and_refuses_another_body() {
    // Arrange
    let app = mk_app().await;
    let with_key = |body: Value, key: &str| {
        let mut request = mk_req(Method::POST, "/v1/clusters", Some(body));
        request
            .headers_mut()
            .insert("idempotency-key", key.parse().unwrap());
        request
    };

    // Act
    let (first, _, one) = mk_call(app.clone(), with_key(json!({"name": "ci-1"}), "run-1")).await;
    let (second, headers, two) =
        mk_call(app.clone(), with_key(json!({"name": "ci-1"}), "run-1")).await;
    let other = mk_call(app.clone(), with_key(json!({"name": "ci-2"}), "run-1")).await;
    let bad_key = mk_call(app, with_key(json!({}), "has space")).await;

    // Assert
    assert_eq!(first, StatusCode::ACCEPTED, "{one}");
    assert_eq!(second, StatusCode::ACCEPTED, "{two}");
    assert_eq!(one["id"], two["id"]);
    assert_eq!(headers["idempotent-replayed"], "true");
    assert_error(other, StatusCode::CONFLICT, "idempotency_key_reused");
    let message = assert_error(bad_key, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    assert!(message.contains("Idempotency-Key"), "{message}");
}

#[tokio::test]
async fn list_filters_by_label_and_pages_with_the_cursor() {
    // Arrange
    let app = mk_app().await;
    let mut expected = Vec::new();
    for n in 0..5 {
        let view = mk_cluster(
            &app,
            json!({"name": format!("web-{n}"), "labels": {"repo": "web"}}),
        )
        .await;
        expected.push(view["id"].as_str().unwrap().to_owned());
    }
    mk_cluster(&app, json!({"name": "api-0", "labels": {"repo": "api"}})).await;

    // Act
    let mut seen = Vec::new();
    let mut path = "/v1/clusters?label=repo%3Dweb&limit=2".to_owned();
    let mut pages = 0;
    loop {
        let (status, _, page) = mk_call(app.clone(), mk_req(Method::GET, &path, None)).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        pages += 1;
        for item in page["items"].as_array().unwrap() {
            seen.push(item["id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/clusters?label=repo=web&limit=2&cursor={cursor}"),
            None => break,
        }
    }

    // Assert
    seen.sort();
    expected.sort();
    assert_eq!(seen, expected);
    assert!(pages >= 3, "5 items at 2 a page take 3 pages, got {pages}");
}

#[tokio::test]
async fn delete_answers_202_every_time() {
    // Arrange
    let app = mk_app().await;
    mk_cluster(&app, json!({"name": "web"})).await;

    // Act
    let (first, _, one) = mk_call(
        app.clone(),
        mk_req(Method::DELETE, "/v1/clusters/web", None),
    )
    .await;
    let (second, _, two) = mk_call(
        app,
        mk_req(
            Method::DELETE,
            &format!("/v1/clusters/{}", one["id"].as_str().unwrap()),
            None,
        ),
    )
    .await;

    // Assert
    assert_eq!(first, StatusCode::ACCEPTED, "{one}");
    assert_eq!(one["phase"], "Deleting");
    assert_eq!(second, StatusCode::ACCEPTED, "{two}");
    assert_eq!(two["phase"], "Deleting");
}

#[tokio::test]
async fn bulk_delete_takes_matching_clusters_and_refuses_no_label() {
    // Arrange
    let app = mk_app().await;
    let web = mk_cluster(&app, json!({"labels": {"repo": "web"}})).await;
    mk_cluster(&app, json!({"labels": {"repo": "api"}})).await;

    // Act
    let (status, _, deleted) = mk_call(
        app.clone(),
        mk_req(Method::DELETE, "/v1/clusters?label=repo=web", None),
    )
    .await;
    let no_label = mk_call(app.clone(), mk_req(Method::DELETE, "/v1/clusters", None)).await;
    let (_, _, live) = mk_call(app, mk_req(Method::GET, "/v1/clusters?phase=Pending", None)).await;

    // Assert
    assert_eq!(status, StatusCode::ACCEPTED, "{deleted}");
    assert_eq!(deleted["ids"], json!([web["id"]]));
    let message = assert_error(no_label, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    assert!(message.starts_with("label"), "{message}");
    assert_eq!(live["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn openapi_document_is_public_json_describing_the_cluster_api() {
    // Act
    let (status, headers, bytes) = mk_call_raw(
        mk_app().await,
        Request::get("/openapi.json").body(Body::empty()).unwrap(),
    )
    .await;

    // Assert
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "application/json");
    let doc: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(doc["info"]["title"], "vcm");
    for path in [
        "/v1/clusters",
        "/v1/clusters/{id}",
        "/v1/clusters/{id}/kubeconfig",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} missing");
    }
    assert!(doc["paths"]["/v1/clusters"]["post"].is_object());
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    for schema in [
        "ClusterView",
        "ClusterList",
        "CreateClusterRequest",
        "UpdateClusterRequest",
        "KubeconfigRequest",
        "DeletedClusters",
        "EventList",
        "EventView",
        "ErrorBody",
        "ErrorDetail",
    ] {
        assert!(
            doc["components"]["schemas"][schema].is_object(),
            "{schema} missing"
        );
    }
}

#[tokio::test]
async fn kubeconfig_content_negotiation_follows_accept() {
    // Table: (accept header, JSON?).
    let cases = [
        ("application/json", true),
        ("application/yaml", false),
        ("text/html, application/json;q=0.9", true),
        ("*/*", false),
    ];
    for (accept, json) in cases {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, accept.parse().unwrap());
        assert_eq!(
            crate::http::credentials::accepts_json(&headers),
            json,
            "{accept}"
        );
    }
}

#[tokio::test]
async fn openapi_document_states_the_rules_and_status_codes_the_server_has() {
    // Act
    let (status, _, doc) = mk_call(
        mk_app().await,
        Request::get("/openapi.json").body(Body::empty()).unwrap(),
    )
    .await;

    // Assert
    assert_eq!(status, StatusCode::OK);
    let op = |path: &str, method: &str| doc["paths"][path][method].clone();
    let param = |path: &str, method: &str, name: &str| {
        op(path, method)["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{method} {path}: no parameter {name}"))
    };
    // Table: (what, the document's statement, reason).
    let label = param("/v1/clusters", "get", "label");
    let key = param("/v1/clusters", "post", "Idempotency-Key");
    let cursor = param("/v1/clusters", "get", "cursor");
    let update = &doc["components"]["schemas"]["UpdateClusterRequest"]["properties"];
    let statuses = |path: &str, method: &str| {
        op(path, method)["responses"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect::<Vec<_>>()
    };
    let checks = [
        (
            label["schema"]["items"]["pattern"].is_string(),
            "label pattern",
        ),
        (label["schema"]["maxItems"] == 64, "label count bound"),
        (cursor["schema"]["pattern"].is_string(), "cursor format"),
        (
            key["schema"]["pattern"] == "^[!-~]{1,255}$",
            "Idempotency-Key syntax and length",
        ),
        (
            update.get("size").is_none(),
            "immutable size not in the PUT schema",
        ),
        (
            update.get("name").is_none(),
            "immutable name not in the PUT schema",
        ),
        (
            statuses("/v1/clusters/{id}/kubeconfig", "post").contains(&"400".to_owned()),
            "400 on kubeconfig",
        ),
        (
            statuses("/v1/clusters/{id}", "put").contains(&"415".to_owned()),
            "415 on PUT",
        ),
    ];
    for (holds, what) in checks {
        assert!(holds, "{what}");
    }
}

#[tokio::test]
async fn a_body_that_is_not_an_object_answers_422() {
    // Arrange
    let app = mk_app().await;
    mk_cluster(&app, json!({"name": "web"})).await;
    // Table: (method, path, body, reason).
    let cases = [
        (
            Method::POST,
            "/v1/clusters/web/kubeconfig",
            "[\"1h\"]",
            "array read as a struct",
        ),
        (
            Method::PUT,
            "/v1/clusters/web",
            "[\"1h\"]",
            "array read as a struct",
        ),
        (Method::PUT, "/v1/clusters/web", "null", "null"),
        (Method::POST, "/v1/clusters", "\"web\"", "string"),
    ];

    for (method, path, body, reason) in cases {
        // Act
        let got = mk_call(app.clone(), mk_raw(method, path, body)).await;

        // Assert
        let message = assert_error(got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
        assert!(message.contains("object"), "{reason}: {message}");
    }
}
