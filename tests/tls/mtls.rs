//! Mutual TLS: client certificates verified by the CA, mapped to principals by the rules, and
//! refused when expired, not yet valid, or signed by another CA.

use reqwest::{StatusCode, Url};
use vcm::api::CreateClusterRequest;
use vcm::client::{Client, ListQuery, TlsOptions};

use vcm::config::RateLimitConfig;

use super::{Kind, TOKEN, pki::Ca, spawn_app, spawn_app_with};

#[tokio::test]
async fn a_client_certificate_matching_a_rule_authenticates_as_that_principal() {
    // Arrange
    let app = spawn_app(Kind::Mtls).await;
    let pem = app.ca.client("pipeline-42", Some("ci-bots"));
    let tls = TlsOptions {
        ca_cert: Some(app.file("ca.pem", &app.ca.cert_pem)),
        client_cert: Some(app.file("client.pem", &pem.cert)),
        client_key: Some(app.file("client.key", &pem.key)),
    };
    let url: Url = app.url("/").parse().unwrap();
    let client = Client::with_tls(url, None, &tls).unwrap();

    // Act
    let created = client
        .create(
            &CreateClusterRequest {
                name: Some("from-cert".into()),
                ..Default::default()
            },
            None,
        )
        .await
        .unwrap();
    let listed = client.list(&ListQuery::default()).await.unwrap();

    // Assert
    assert_eq!(
        created.owner, "cert:web-ci",
        "the rule's name makes the subject"
    );
    assert_eq!(created.team.as_deref(), Some("web"), "the rule's team");
    assert_eq!(listed.items.len(), 1);
    assert_eq!(listed.items[0].name, "from-cert");
}

#[tokio::test]
async fn an_authorization_header_decides_even_when_a_mapped_certificate_is_presented() {
    // Arrange
    let app = spawn_app(Kind::Mtls).await;
    let client = app.https_as(&app.ca.client("ops", None));
    let bad = "vcm_1111111111111111111111111111111111111111111111111111111111111111";

    // Act
    let with_cert_only = client.get(app.url("/v1/clusters")).send().await.unwrap();
    let with_bad_token = client
        .get(app.url("/v1/clusters"))
        .bearer_auth(bad)
        .send()
        .await
        .unwrap();
    let token_without_cert = app
        .https()
        .build()
        .unwrap()
        .get(app.url("/v1/clusters"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(with_cert_only.status(), StatusCode::OK);
    assert_eq!(with_bad_token.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        token_without_cert.status(),
        StatusCode::OK,
        "bearer tokens work without a client certificate"
    );
}

#[tokio::test]
async fn a_valid_certificate_matching_no_rule_is_401_naming_its_cn_and_the_rules() {
    // Arrange
    let app = spawn_app(Kind::Mtls).await;
    let client = app.https_as(&app.ca.client("stranger", Some("elsewhere")));

    // Act
    let response = client.get(app.url("/v1/clusters")).send().await.unwrap();
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap();

    // Assert
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "unauthenticated", "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("CN=\"stranger\""), "{message}");
    assert!(message.contains("tls.client_rules"), "{message}");
}

#[tokio::test]
async fn expired_not_yet_valid_and_foreign_client_certificates_are_refused() {
    // Arrange
    let app = spawn_app(Kind::Mtls).await;
    let other_ca = Ca::new("another CA");
    let cases = [
        (
            app.ca.client_for_years("ops", None, Some((2001, 2002))),
            "expired",
        ),
        (
            app.ca.client_for_years("ops", None, Some((2090, 2100))),
            "not yet valid",
        ),
        (other_ca.client("ops", None), "signed by another CA"),
    ];
    for (pem, why) in cases {
        let client = app.https_as(&pem);

        // Act
        let result = client.get(app.url("/v1/clusters")).send().await;

        // Assert
        // NB: with TLS 1.3 the client learns of a refused certificate only when it reads
        // the server's alert, so the failure shows on the request, not on connect.
        assert!(
            result.is_err(),
            "a certificate {why} is refused by the handshake: {result:?}"
        );
    }
    let control = app.https_as(&app.ca.client("ops", None));
    let accepted = control.get(app.url("/v1/clusters")).send().await.unwrap();
    assert_eq!(
        accepted.status(),
        StatusCode::OK,
        "the same names from a valid certificate of the CA are accepted"
    );
}

#[tokio::test]
async fn the_vcm_binary_lists_clusters_over_mutual_tls_without_a_token() {
    // Arrange
    let app = spawn_app(Kind::Mtls).await;
    let pem = app.ca.client("ops", None);
    let (ca, cert, key) = (
        app.file("ca.pem", &app.ca.cert_pem),
        app.file("client.pem", &pem.cert),
        app.file("client.key", &pem.key),
    );
    let admin = Client::with_tls(
        app.url("/").parse().unwrap(),
        Some(TOKEN.into()),
        &TlsOptions {
            ca_cert: Some(ca.clone()),
            ..TlsOptions::default()
        },
    )
    .unwrap();
    admin
        .create(
            &CreateClusterRequest {
                name: Some("seen-by-cli".into()),
                ..Default::default()
            },
            None,
        )
        .await
        .unwrap();

    // Act
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_vcm"))
        .args(["cluster", "list", "--output", "json"])
        .env("VCM_ADDR", app.url(""))
        .env_remove("VCM_TOKEN")
        .env("VCM_CACERT", &ca)
        .env("VCM_CLIENT_CERT", &cert)
        .env("VCM_CLIENT_KEY", &key)
        .output()
        .await
        .unwrap();
    let without_cert = tokio::process::Command::new(env!("CARGO_BIN_EXE_vcm"))
        .args(["cluster", "list", "--output", "json"])
        .env("VCM_ADDR", app.url(""))
        .env_remove("VCM_TOKEN")
        .env("VCM_CACERT", &ca)
        .env_remove("VCM_CLIENT_CERT")
        .env_remove("VCM_CLIENT_KEY")
        .output()
        .await
        .unwrap();

    // Assert
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    assert!(
        stdout.contains("seen-by-cli"),
        "the certificate maps to an admin, who sees every cluster: {stdout}"
    );
    assert!(
        !without_cert.status.success(),
        "no token and no certificate"
    );
}

#[tokio::test]
async fn the_client_names_the_setting_to_fix_when_tls_fails() {
    // Arrange
    let app = spawn_app(Kind::Mtls).await;
    let url: Url = app.url("/").parse().unwrap();
    let expired = app.ca.client_for_years("ops", None, Some((2001, 2002)));
    let untrusting = Client::new(url.clone(), Some(TOKEN.into())).unwrap();
    let with_expired = Client::with_tls(
        url,
        None,
        &TlsOptions {
            ca_cert: Some(app.file("ca.pem", &app.ca.cert_pem)),
            client_cert: Some(app.file("old.pem", &expired.cert)),
            client_key: Some(app.file("old.key", &expired.key)),
        },
    )
    .unwrap();

    // Act
    let not_trusted = untrusting.list(&ListQuery::default()).await.unwrap_err();
    let refused = with_expired.list(&ListQuery::default()).await.unwrap_err();

    // Assert
    assert!(
        not_trusted.to_string().contains("VCM_CACERT"),
        "an unknown server CA points at VCM_CACERT: {not_trusted}"
    );
    assert!(
        refused.to_string().contains("VCM_CLIENT_CERT"),
        "a refused client certificate points at VCM_CLIENT_CERT: {refused}"
    );
}

#[tokio::test]
async fn certificate_callers_spend_their_principal_budget_not_the_anonymous_address_budget() {
    // Arrange
    let tight = RateLimitConfig {
        address_per_minute: 1,
        address_burst: 3,
        ..RateLimitConfig::default()
    };
    let app = spawn_app_with(Kind::Mtls, tight).await;
    let with_cert = app.https_as(&app.ca.client("ops", None));
    let anonymous = app.https().build().unwrap();

    // Act
    let mut cert_statuses = Vec::new();
    for _ in 0..6 {
        let r = with_cert.get(app.url("/v1/clusters")).send().await.unwrap();
        cert_statuses.push(r.status());
    }
    let mut anonymous_statuses = Vec::new();
    for _ in 0..6 {
        let r = anonymous.get(app.url("/v1/clusters")).send().await.unwrap();
        anonymous_statuses.push(r.status());
    }

    // Assert
    assert!(
        cert_statuses.iter().all(|s| *s == StatusCode::OK),
        "{cert_statuses:?}"
    );
    assert!(
        anonymous_statuses.contains(&StatusCode::TOO_MANY_REQUESTS),
        "the same address without credentials is limited: {anonymous_statuses:?}"
    );
}
