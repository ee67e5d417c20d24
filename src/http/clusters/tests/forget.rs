//! `POST /v1/clusters/{id}/forget`: the admin's way out for a deletion that cannot finish.
#![allow(clippy::unwrap_used)]

use axum::{
    body::Body,
    http::{Method, Request, StatusCode},
};
use serde_json::json;

use super::*;

#[tokio::test]
async fn forget_ends_a_deleting_cluster_as_deleted_and_refuses_a_live_one() {
    // Arrange: a cluster whose deletion cannot finish (its host is removed after it was
    // placed), and a live one.
    let driver = std::sync::Arc::new(crate::driver::fake::FakeDriver::default());
    driver.set_hosts(vec![crate::driver::HostInfo {
        name: "gone-soon".into(),
        labels: Default::default(),
        max_clusters: None,
        reachable: true,
        message: String::new(),
    }]);
    let app = router(crate::http::testkit::mk_state_with(driver.clone()).await);
    let stuck = mk_cluster(&app, json!({"name": "stuck"})).await;
    let id = stuck["id"].as_str().unwrap().to_owned();
    mk_call(
        app.clone(),
        mk_req(Method::DELETE, "/v1/clusters/stuck", None),
    )
    .await;
    mk_cluster(&app, json!({"name": "live"})).await;
    let path = format!("/v1/clusters/{id}/forget");
    let (while_configured, _, refused) =
        mk_call(app.clone(), mk_req(Method::POST, &path, None)).await;
    driver.set_hosts(vec![]);

    // Act
    let (first, _, view) = mk_call(app.clone(), mk_req(Method::POST, &path, None)).await;
    let (again, _, _) = mk_call(app.clone(), mk_req(Method::POST, &path, None)).await;
    let live = mk_call(
        app.clone(),
        mk_req(Method::POST, "/v1/clusters/live/forget", None),
    )
    .await;
    let (_, _, events) = mk_call(
        app.clone(),
        mk_req(Method::GET, &format!("/v1/clusters/{id}/events"), None),
    )
    .await;
    let (_, _, openapi) = mk_call(
        app,
        Request::get("/openapi.json").body(Body::empty()).unwrap(),
    )
    .await;

    // Assert
    assert_eq!(while_configured, StatusCode::CONFLICT, "{refused}");
    assert_eq!(refused["error"]["code"], "host_still_configured");
    assert_eq!(first, StatusCode::OK, "{view}");
    assert_eq!(view["phase"], "Deleted");
    assert_eq!(again, StatusCode::OK, "repeating is harmless");
    let message = assert_error(live, StatusCode::CONFLICT, "cluster_not_deleting");
    assert!(message.contains("delete it first"), "{message}");
    let forgotten = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "forgotten")
        .unwrap_or_else(|| panic!("no forgotten event: {events}"));
    assert!(
        forgotten["message"]
            .as_str()
            .unwrap()
            .contains("tester (token:t-"),
        "{forgotten}"
    );
    assert!(
        openapi["paths"]["/v1/clusters/{id}/forget"]["post"].is_object(),
        "documented in /openapi.json"
    );
}
