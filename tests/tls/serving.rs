//! HTTPS on both HTTP versions, plain HTTP refused, and the certificate reloaded from its files.

use std::time::{Duration, Instant};

use reqwest::{StatusCode, Version};

use super::{FIRST_CN, Kind, TOKEN, served_cn, spawn_app, write_pair};

/// Longest wait for a rotated certificate: a few reload intervals (1 s in these tests).
const RELOAD_DEADLINE: Duration = Duration::from_secs(15);

#[tokio::test]
async fn https_serves_http1_and_http2_to_a_client_trusting_the_ca() {
    // Arrange
    let app = spawn_app(Kind::Dev).await;
    let h1 = app.https().http1_only().build().unwrap();
    let h2 = app.https().build().unwrap();

    // Act
    let over_h1 = h1.get(app.url("/healthz")).send().await.unwrap();
    let over_h2 = h2
        .get(app.url("/v1/clusters"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    let without_token = h2.get(app.url("/v1/clusters")).send().await.unwrap();

    // Assert
    assert_eq!(over_h1.status(), StatusCode::OK);
    assert_eq!(over_h1.version(), Version::HTTP_11);
    assert_eq!(served_cn(&over_h1), FIRST_CN);
    assert_eq!(over_h2.status(), StatusCode::OK);
    assert_eq!(over_h2.version(), Version::HTTP_2, "ALPN negotiates h2");
    assert_eq!(
        without_token.status(),
        StatusCode::UNAUTHORIZED,
        "TLS alone authenticates nobody"
    );
}

#[tokio::test]
async fn a_plain_http_client_is_told_to_use_https_and_https_still_works() {
    // Arrange
    let app = spawn_app(Kind::Dev).await;
    let plain = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();

    // Act
    let refused = plain
        .get(format!("http://{}/healthz", app.addr))
        .send()
        .await;
    let after = app
        .https()
        .build()
        .unwrap()
        .get(app.url("/healthz"))
        .send()
        .await
        .unwrap();

    // Assert
    let refused = refused.expect("the TLS port answers plain HTTP with a plain 400");
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let body = refused.text().await.unwrap();
    assert!(
        body.contains("https://"),
        "the answer names the fix: {body}"
    );
    assert_eq!(after.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_rotated_certificate_reaches_new_connections_while_an_open_one_keeps_working() {
    // Arrange
    let app = spawn_app(Kind::Dev).await;
    let kept = app.https().http1_only().build().unwrap();
    let first = kept.get(app.url("/healthz")).send().await.unwrap();
    let first_cn = served_cn(&first);
    first.bytes().await.unwrap();

    // Act
    write_pair(
        &app.cert_file,
        &app.key_file,
        &app.ca.server("vcm-server-2", 2),
    );
    let mut new_cn = String::new();
    let deadline = Instant::now() + RELOAD_DEADLINE;
    while Instant::now() < deadline {
        // A new client is a new connection, so it sees what a handshake gets now.
        let fresh = app.https().build().unwrap();
        let response = fresh.get(app.url("/healthz")).send().await.unwrap();
        new_cn = served_cn(&response);
        if new_cn == "vcm-server-2" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let again = kept.get(app.url("/healthz")).send().await.unwrap();

    // Assert
    assert_eq!(first_cn, FIRST_CN);
    assert_eq!(
        new_cn, "vcm-server-2",
        "the new pair is served without a restart"
    );
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(
        served_cn(&again),
        FIRST_CN,
        "the connection opened before the rotation is the same one, still working"
    );
}

#[tokio::test]
async fn a_garbage_certificate_file_keeps_the_previous_certificate_in_service() {
    // Arrange
    let app = spawn_app(Kind::Dev).await;
    let good = app.ca.server("vcm-server-3", 3);

    // Act
    std::fs::write(&app.cert_file, "not a certificate\n").unwrap();
    // Several reload intervals, so the watcher has read the garbage.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let during = app
        .https()
        .build()
        .unwrap()
        .get(app.url("/healthz"))
        .send()
        .await
        .unwrap();
    write_pair(&app.cert_file, &app.key_file, &good);
    let mut after = String::new();
    let deadline = Instant::now() + RELOAD_DEADLINE;
    while Instant::now() < deadline && after != "vcm-server-3" {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let fresh = app.https().build().unwrap();
        after = served_cn(&fresh.get(app.url("/healthz")).send().await.unwrap());
    }

    // Assert
    assert_eq!(during.status(), StatusCode::OK);
    assert_eq!(
        served_cn(&during),
        FIRST_CN,
        "the old pair stays in service"
    );
    assert_eq!(
        after, "vcm-server-3",
        "a good pair written after the garbage is taken (the watcher was looking)"
    );
}

#[tokio::test]
async fn a_tls_server_with_open_connections_stops_when_signalled_and_releases_its_port() {
    // Arrange
    let app = spawn_app(Kind::Dev).await;
    let addr = app.addr;
    let h1 = app.https().http1_only().build().unwrap();
    let h2 = app.https().build().unwrap();
    let _ = h1.get(app.url("/healthz")).send().await.unwrap();
    let _ = h2.get(app.url("/healthz")).send().await.unwrap();

    // Act
    let outcome = app.stop().await;
    let connect = tokio::net::TcpStream::connect(addr).await;

    // Assert
    outcome
        .expect("the server stops within 10 s although idle connections are open")
        .unwrap();
    assert!(connect.is_err(), "the port is released once stopped");
}
