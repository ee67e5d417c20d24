//! Kubernetes ServiceAccount tokens against the real vcm server and a real kube-apiserver (test
//! bed tier A, built by `scripts/k8s-bins.sh`): tokens minted with the TokenRequest API are
//! checked with TokenReview and mapped by `[[auth.kubernetes.rules]]`.
//!
//! The role a token maps to is read back through `POST /v1/clusters/<none>/forget`: admins get
//! 404 (no such cluster), everyone else 403.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use reqwest::StatusCode;
use serde_json::{Value, json};
use vcm::config::{AuthConfig, Config, HostConfig, KubernetesAuthConfig, ServiceAccountRule};
use vcm::domain::Role;
use vcm::testing::{TestBed, eventually};

#[path = "support/dev_server.rs"]
mod dev_server;

use self::dev_server::Vcm;

impl Vcm {
    /// A dev server that accepts ServiceAccounts of `bed` (as host `bed`): `ci/runner` is an
    /// admin of team platform, any ServiceAccount of `viewers` a viewer.
    async fn start(bed: &TestBed, cache_secs: u64) -> Self {
        Self::with_config(|config| Config {
            hosts: vec![HostConfig {
                name: "bed".into(),
                kubeconfig: Some(bed.kubeconfig_path()),
                ..HostConfig::default()
            }],
            auth: AuthConfig {
                kubernetes: vec![KubernetesAuthConfig {
                    host: Some("bed".into()),
                    cache_secs,
                    rules: vec![
                        ServiceAccountRule {
                            namespace: "ci".into(),
                            service_account: Some("runner".into()),
                            role: Role::Admin,
                            team: Some("platform".into()),
                        },
                        ServiceAccountRule {
                            namespace: "viewers".into(),
                            service_account: None,
                            role: Role::Viewer,
                            team: None,
                        },
                    ],
                    ..KubernetesAuthConfig::default()
                }],
                ..AuthConfig::default()
            },
            ..config
        })
        .await
    }
}

fn json_to<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).expect("valid object")
}

/// Namespace `ns` with ServiceAccount `sa`.
async fn mk_service_account(bed: &TestBed, ns: &str, sa: &str) {
    let pp = PostParams::default();
    let nss: Api<Namespace> = Api::all(bed.client());
    if nss.get_opt(ns).await.unwrap().is_none() {
        nss.create(&pp, &json_to(json!({"metadata": {"name": ns}})))
            .await
            .unwrap();
    }
    let sas: Api<ServiceAccount> = Api::namespaced(bed.client(), ns);
    sas.create(&pp, &json_to(json!({"metadata": {"name": sa}})))
        .await
        .unwrap();
}

/// A token of `ns/sa` for `audience`, from the TokenRequest API.
async fn mk_token(bed: &TestBed, ns: &str, sa: &str, audience: &str) -> String {
    let sas: Api<ServiceAccount> = Api::namespaced(bed.client(), ns);
    let req: TokenRequest =
        json_to(json!({"spec": {"audiences": [audience], "expirationSeconds": 600}}));
    let resp = sas
        .create_token_request(sa, &PostParams::default(), &req)
        .await
        .unwrap();
    resp.status.expect("TokenRequest returns a status").token
}

fn message(body: &Value) -> String {
    body["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn service_account_tokens_are_reviewed_by_their_cluster_and_mapped_by_rules() {
    // Arrange
    let bed = TestBed::tier_a().await;
    mk_service_account(&bed, "ci", "runner").await;
    mk_service_account(&bed, "viewers", "dashboard").await;
    mk_service_account(&bed, "elsewhere", "runner").await;
    let admin = mk_token(&bed, "ci", "runner", "vcm").await;
    let viewer = mk_token(&bed, "viewers", "dashboard", "vcm").await;
    let wrong_audience = mk_token(&bed, "ci", "runner", "https://kubernetes.default.svc").await;
    let unmapped = mk_token(&bed, "elsewhere", "runner", "vcm").await;
    let vcm = Vcm::start(&bed, 30).await;

    // Act
    let (admin_list, admin_body) = vcm.list(&admin).await;
    let admin_forget = vcm.forget_status(&admin).await;
    let (viewer_list, _) = vcm.list(&viewer).await;
    let viewer_forget = vcm.forget_status(&viewer).await;
    let (audience, audience_body) = vcm.list(&wrong_audience).await;
    let (unmapped_status, unmapped_body) = vcm.list(&unmapped).await;
    let forged = {
        // One signature symbol changed: still a well-formed JWT, no longer the cluster's.
        let at = admin.len() - 10;
        let flipped = if &admin[at..=at] == "A" { "B" } else { "A" };
        format!("{}{flipped}{}", &admin[..at], &admin[at + 1..])
    };
    let (forged_status, forged_body) = vcm.list(&forged).await;
    let github = {
        use base64::Engine as _;
        let b64 = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        let claims = json!({"iss": "https://token.actions.githubusercontent.com", "sub": "x"});
        format!("{}.{}.c2ln", b64(json!({"alg": "RS256"})), b64(claims))
    };
    let (github_status, github_body) = vcm.list(&github).await;

    // Assert
    assert_eq!(admin_list, StatusCode::OK, "{admin_body}");
    assert_eq!(admin_forget, StatusCode::NOT_FOUND, "ci/runner is an admin");
    assert_eq!(viewer_list, StatusCode::OK);
    assert_eq!(
        viewer_forget,
        StatusCode::FORBIDDEN,
        "viewers/* are viewers"
    );
    assert_eq!(audience, StatusCode::UNAUTHORIZED, "{audience_body}");
    assert!(
        message(&audience_body).contains("audience"),
        "{audience_body}"
    );
    assert_eq!(unmapped_status, StatusCode::UNAUTHORIZED, "{unmapped_body}");
    let msg = message(&unmapped_body);
    assert!(
        msg.contains("elsewhere/runner") && msg.contains("no"),
        "{msg}"
    );
    assert_eq!(forged_status, StatusCode::UNAUTHORIZED, "{forged_body}");
    assert!(
        message(&forged_body).contains("did not authenticate"),
        "{forged_body}"
    );
    assert_eq!(github_status, StatusCode::UNAUTHORIZED, "{github_body}");
    assert!(
        message(&github_body).contains("is not configured"),
        "not a ServiceAccount token, so not sent to the cluster: {github_body}"
    );
    for (token, body) in [
        (&wrong_audience, &audience_body),
        (&unmapped, &unmapped_body),
        (&forged, &forged_body),
    ] {
        let signature = token.rsplit('.').next().unwrap();
        assert!(
            !body.to_string().contains(signature),
            "token echoed: {body}"
        );
    }
}

#[tokio::test]
async fn a_cached_answer_outlives_the_service_account_until_cache_secs_pass() {
    // Arrange
    let bed = TestBed::tier_a().await;
    mk_service_account(&bed, "ci", "runner").await;
    let token = mk_token(&bed, "ci", "runner", "vcm").await;
    let vcm = Vcm::start(&bed, 4).await;
    let (first, _) = vcm.list(&token).await;
    let reviewed_at = Instant::now();
    let sas: Api<ServiceAccount> = Api::namespaced(bed.client(), "ci");
    sas.delete("runner", &DeleteParams::default())
        .await
        .unwrap();

    // Act
    let (cached, _) = vcm.list(&token).await;
    let cached_after = reviewed_at.elapsed();
    let refused = eventually("the token refused", Duration::from_secs(30), || async {
        let (status, body) = vcm.list(&token).await;
        Ok((status == StatusCode::UNAUTHORIZED).then_some(body))
    })
    .await
    .unwrap();
    let refused_after = reviewed_at.elapsed();

    // Assert
    assert_eq!(first, StatusCode::OK);
    assert!(cached_after < Duration::from_secs(4), "{cached_after:?}");
    assert_eq!(cached, StatusCode::OK, "the cached answer stands");
    assert!(
        refused_after >= Duration::from_secs(4),
        "refused only once the cache expired: {refused_after:?}"
    );
    assert!(
        message(&refused).contains("did not authenticate"),
        "{refused}"
    );
}
