#![allow(clippy::unwrap_used)]

use axum::http::StatusCode;

use super::*;
use crate::error::Error;
use crate::http::ApiError;

fn config(per_minute: u32, burst: u32) -> GatewayConfig {
    GatewayConfig {
        requests_per_minute: per_minute,
        burst,
        max_in_flight_per_principal: 2,
        max_streams_per_cluster: 1,
        ..GatewayConfig::default()
    }
}

#[test]
fn a_principal_past_its_burst_is_refused_with_when_to_retry() {
    let limits = limits::Limits::new(&config(60, 2));
    limits.charge("token:a").unwrap();
    limits.charge("token:a").unwrap();
    let Err(Error::RateLimited {
        message,
        retry_after,
    }) = limits.charge("token:a")
    else {
        panic!("the third request within the burst of 2 passed");
    };
    assert!(
        message.contains("[gateway] requests_per_minute"),
        "{message}"
    );
    assert!(retry_after >= std::time::Duration::from_secs(1));
    limits
        .charge("token:b")
        .expect("another principal has its own budget");
}

#[test]
fn places_in_flight_and_streams_are_given_back_when_dropped() {
    let limits = limits::Limits::new(&config(6000, 100));
    let first = limits.request("p").unwrap();
    let _second = limits.request("p").unwrap();
    assert!(
        limits.request("p").is_err(),
        "a third request in flight passed"
    );
    drop(first);
    limits
        .request("p")
        .expect("a place freed by a finished request");

    let stream = limits.stream("cluster").unwrap();
    let Err(Error::RateLimited { message, .. }) = limits.stream("cluster") else {
        panic!("a second stream passed a cap of 1");
    };
    assert!(message.contains("max_streams_per_cluster"), "{message}");
    drop(stream);
    limits
        .stream("cluster")
        .expect("a place freed by a closed stream");
}

#[tokio::test]
async fn gateway_errors_are_kubernetes_status_objects() {
    let response = status_response(ApiError::from(Error::TryLater {
        code: "cluster_not_ready",
        message: "cluster c is Provisioning".into(),
        retry_after: std::time::Duration::from_secs(5),
    }));
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "5");
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let status: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["apiVersion"], "v1");
    assert_eq!(status["status"], "Failure");
    assert_eq!(status["reason"], "ServiceUnavailable");
    assert_eq!(status["code"], 503);
    assert_eq!(status["message"], "cluster c is Provisioning");
    assert_eq!(status["details"]["retryAfterSeconds"], 5);

    let response = status_response(ApiError::from(Error::Unauthenticated("revoked".into())));
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
}

#[test]
fn kubeconfigs_point_at_the_public_url_or_the_host_that_asked() {
    let id = ClusterId::from_stored("c-0123456789".into());
    let plain = Gateway::new(GatewayConfig::default(), None, false);
    assert_eq!(
        plain.server_url(Some("127.0.0.1:8080"), &id).unwrap(),
        "http://127.0.0.1:8080/k8s/c-0123456789"
    );
    assert!(plain.server_url(None, &id).is_err());
    let public = GatewayConfig {
        public_url: Some("https://vcm.example.com/".into()),
        ..GatewayConfig::default()
    };
    let public = Gateway::try_new(public, None, true).unwrap();
    assert_eq!(
        public.server_url(Some("ignored:1"), &id).unwrap(),
        "https://vcm.example.com/k8s/c-0123456789"
    );
    assert_eq!(public.mode(), KubeconfigMode::Gateway);
    assert_eq!(
        plain.mode(),
        KubeconfigMode::Direct,
        "kubectl sends no token over HTTP"
    );
    let forced = GatewayConfig {
        kubeconfig: KubeconfigMode::Gateway,
        ..GatewayConfig::default()
    };
    let err = Gateway::try_new(forced, None, false).unwrap_err();
    assert!(err.to_string().contains("over TLS"), "{err}");
    let bad = GatewayConfig {
        public_url: Some("vcm.example.com".into()),
        ..GatewayConfig::default()
    };
    let err = Gateway::try_new(bad, None, true).unwrap_err();
    assert!(err.to_string().contains("http(s)://"), "{err}");
}
