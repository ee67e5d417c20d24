//! CI OIDC tokens against the real vcm server (`Server::build`, so `[auth]` goes through the
//! same wiring as `vcm server`), with a local issuer serving discovery and JWKS and signing
//! tokens with the GitHub Actions and Bitbucket Pipelines claim sets.
//!
//! The role a token maps to is read back through `POST /v1/clusters/<none>/forget`: admins get
//! 404 (no such cluster), everyone else 403.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../support/dev_server.rs"]
mod dev_server;
mod issuer;

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use vcm::config::{AuthConfig, Config, OidcIssuerConfig, OidcRule};
use vcm::domain::Role;

use self::dev_server::Vcm;
use self::issuer::{Issuer, Key, b64};

const REPO_UUID: &str = "{c6a1f2d4-5e8b-4f3a-9d27-7b0e41c9a853}";
const WORKSPACE_UUID: &str = "{9b2e4f61-1c3d-4e5f-8a7b-6c5d4e3f2a1b}";

impl Vcm {
    /// A dev server trusting the CI OIDC issuers `oidc`.
    async fn start(oidc: Vec<OidcIssuerConfig>) -> Self {
        Self::with_config(|config| Config {
            auth: AuthConfig {
                oidc,
                ..AuthConfig::default()
            },
            ..config
        })
        .await
    }
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// GitHub's documented claim set (docs.github.com/en/actions/reference/security/oidc), for a
/// push to main of octo-org/octo-repo; `nbf = iat - 600`, `exp = iat + 300` as in the example.
fn github_claims(iss: &str) -> Value {
    let iat = now();
    json!({
        "jti": "example-id",
        "sub": "repo:octo-org/octo-repo:ref:refs/heads/main",
        "aud": "vcm",
        "ref": "refs/heads/main",
        "sha": "example-sha",
        "repository": "octo-org/octo-repo",
        "repository_owner": "octo-org",
        "actor_id": "12",
        "repository_visibility": "private",
        "repository_id": "74",
        "repository_owner_id": "65",
        "run_id": "example-run-id",
        "run_number": "10",
        "run_attempt": "2",
        "runner_environment": "github-hosted",
        "actor": "octocat",
        "workflow": "example-workflow",
        "head_ref": "",
        "base_ref": "",
        "event_name": "push",
        "ref_type": "branch",
        "workflow_ref": "octo-org/octo-repo/.github/workflows/ci.yml@refs/heads/main",
        "workflow_sha": "example-sha",
        "job_workflow_ref": "octo-org/octo-repo/.github/workflows/ci.yml@refs/heads/main",
        "job_workflow_sha": "example-sha",
        "iss": iss,
        "nbf": iat - 600,
        "exp": iat + 300,
        "iat": iat,
    })
}

/// Bitbucket Pipelines' claims (`claims_supported` of its discovery document), with a custom
/// audience next to the default workspace audience.
fn bitbucket_claims(iss: &str) -> Value {
    let iat = now();
    json!({
        "sub": format!("{REPO_UUID}:{{0f5f2b1c-7d3e-4a6b-9c8d-1e2f3a4b5c6d}}"),
        "iss": iss,
        "aud": ["vcm", "ari:cloud:bitbucket::workspace/9b2e4f61-1c3d-4e5f-8a7b-6c5d4e3f2a1b"],
        "exp": iat + 3600,
        "iat": iat,
        "branchName": "main",
        "workspaceUuid": WORKSPACE_UUID,
        "repositoryUuid": REPO_UUID,
        "pipelineUuid": "{7a8b9c0d-1e2f-4a3b-8c4d-5e6f7a8b9c0d}",
        "stepUuid": "{0f5f2b1c-7d3e-4a6b-9c8d-1e2f3a4b5c6d}",
    })
}

fn claims(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// `pinned`: an issuer without discovery, keys from `jwks_url`, octo-org/octo-repo a viewer.
/// `github`: jobs of octo-org in environment `admin` are admins (the first rule wins, so the
/// specific one comes first); pushes to main of octo-org/octo-repo are `ci` of team web. `bitbucket`: main of the repository is an admin.
fn mk_issuers(issuer: &Issuer, min_refetch_secs: u64) -> Vec<OidcIssuerConfig> {
    vec![
        OidcIssuerConfig {
            name: "github".into(),
            issuer: issuer.github(),
            audience: "vcm".into(),
            jwks_min_refetch_secs: min_refetch_secs,
            rules: vec![
                OidcRule {
                    name: Some("admin environment".into()),
                    claims: claims(&[("repository_owner", "octo-org"), ("environment", "admin")]),
                    role: Role::Admin,
                    team: None,
                    pull_request_clusters: None,
                },
                OidcRule {
                    name: Some("web main".into()),
                    claims: claims(&[
                        ("repository", "octo-org/octo-repo"),
                        ("ref", "refs/heads/main"),
                    ]),
                    role: Role::Ci,
                    team: Some("web".into()),
                    pull_request_clusters: None,
                },
            ],
            ..OidcIssuerConfig::default()
        },
        OidcIssuerConfig {
            name: "pinned".into(),
            issuer: issuer.pinned(),
            audience: "vcm".into(),
            jwks_url: Some(format!("{}/.well-known/jwks", issuer.github())),
            jwks_min_refetch_secs: min_refetch_secs,
            rules: vec![OidcRule {
                name: None,
                claims: claims(&[("repository", "octo-org/octo-repo")]),
                role: Role::Viewer,
                team: None,
                pull_request_clusters: None,
            }],
            ..OidcIssuerConfig::default()
        },
        OidcIssuerConfig {
            name: "bitbucket".into(),
            issuer: issuer.bitbucket(),
            audience: "vcm".into(),
            jwks_min_refetch_secs: min_refetch_secs,
            rules: vec![OidcRule {
                name: None,
                claims: claims(&[("repositoryUuid", REPO_UUID), ("branchName", "main")]),
                role: Role::Admin,
                team: None,
                pull_request_clusters: None,
            }],
            ..OidcIssuerConfig::default()
        },
    ]
}

/// `value` with `key` set.
fn with(mut value: Value, key: &str, v: Value) -> Value {
    value[key] = v;
    value
}

fn message(body: &Value) -> String {
    body["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn rs256_and_es256_tokens_of_github_and_bitbucket_are_accepted_with_their_rules_role() {
    // Arrange
    let issuer = Issuer::start().await;
    let (gh_rsa, gh_ec) = (Key::rsa("gh-rsa-1"), Key::ec("gh-ec-1"));
    let bb = Key::rsa("bb-1");
    issuer.publish(&[&gh_rsa, &gh_ec, &bb]); // one JWKS serves both issuer shapes here
    let vcm = Vcm::start(mk_issuers(&issuer, 1)).await;
    let gh_ci = gh_rsa.sign(json!({}), &github_claims(&issuer.github()));
    let gh_admin = gh_ec.sign(
        json!({}),
        &with(
            github_claims(&issuer.github()),
            "environment",
            json!("admin"),
        ),
    );
    let bb_admin = bb.sign(json!({}), &bitbucket_claims(&issuer.bitbucket()));
    let pinned = gh_rsa.sign(json!({"kid": null}), &github_claims(&issuer.pinned()));

    // Act
    let (ci_list, _) = vcm.list(&gh_ci).await;
    let ci_forget = vcm.forget_status(&gh_ci).await;
    let admin_forget = vcm.forget_status(&gh_admin).await;
    let (bb_list, _) = vcm.list(&bb_admin).await;
    let bb_forget = vcm.forget_status(&bb_admin).await;
    let (pinned_list, pinned_body) = vcm.list(&pinned).await;
    let pinned_forget = vcm.forget_status(&pinned).await;

    // Assert
    assert_eq!(ci_list, StatusCode::OK, "GitHub RS256 token is accepted");
    assert_eq!(ci_forget, StatusCode::FORBIDDEN, "mapped to ci, not admin");
    assert_eq!(admin_forget, StatusCode::NOT_FOUND, "ES256, admin rule");
    assert_eq!(
        bb_list,
        StatusCode::OK,
        "Bitbucket token (keys.json via discovery)"
    );
    assert_eq!(bb_forget, StatusCode::NOT_FOUND, "Bitbucket rule is admin");
    assert_eq!(
        pinned_list,
        StatusCode::OK,
        "no kid, keys from jwks_url (no discovery): {pinned_body}"
    );
    assert_eq!(pinned_forget, StatusCode::FORBIDDEN, "a viewer");
}

mod refused;
mod rotation;

#[tokio::test]
async fn a_policy_reads_the_verified_claims_of_a_ci_token() {
    // Arrange: a policy that lets only the main branch's workflow create clusters.
    let issuer = Issuer::start().await;
    let key = Key::rsa("gh-rsa-1");
    issuer.publish(&[&key]);
    let dir = tempfile::tempdir().unwrap();
    let rego = dir.path().join("workflow.rego");
    std::fs::write(
        &rego,
        "package vcm\n\ndeny contains msg if {\n\tinput.principal.kind == \"oidc\"\n\t\
         input.principal.claims.job_workflow_ref != \"octo-org/octo-repo/.github/workflows/ci.yml@refs/heads/main\"\n\t\
         msg := sprintf(\"workflow %s may not create clusters\", [input.principal.claims.job_workflow_ref])\n}\n",
    )
    .unwrap();
    let vcm = Vcm::with_config(|config| Config {
        auth: AuthConfig {
            oidc: mk_issuers(&issuer, 1),
            ..AuthConfig::default()
        },
        policy: vcm::config::policy::PolicyConfig {
            paths: vec![rego],
            ..Default::default()
        },
        ..config
    })
    .await;
    let workflow = |r: &str| {
        key.sign(
            json!({}),
            &with(
                github_claims(&issuer.github()),
                "job_workflow_ref",
                json!(r),
            ),
        )
    };
    let create = |token: String| {
        let http = vcm.http.clone();
        let url = format!("http://{}/v1/clusters", vcm.addr);
        async move {
            let resp = http
                .post(url)
                .bearer_auth(token)
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            (resp.status(), resp.json::<Value>().await.unwrap())
        }
    };

    // Act
    let (fork_status, fork_body) = create(workflow(
        "octo-org/octo-repo/.github/workflows/ci.yml@refs/heads/feature",
    ))
    .await;
    let (main_status, main_body) = create(workflow(
        "octo-org/octo-repo/.github/workflows/ci.yml@refs/heads/main",
    ))
    .await;

    // Assert
    assert_eq!(fork_status, StatusCode::FORBIDDEN, "{fork_body}");
    assert_eq!(fork_body["error"]["code"], "policy_denied");
    assert!(
        message(&fork_body).contains("refs/heads/feature may not create"),
        "{fork_body}"
    );
    assert_eq!(main_status, StatusCode::ACCEPTED, "{main_body}");

    // The allowed cluster goes again, so no control plane outlives the test.
    let token = workflow("octo-org/octo-repo/.github/workflows/ci.yml@refs/heads/main");
    let url = format!(
        "http://{}/v1/clusters/{}",
        vcm.addr,
        main_body["id"].as_str().unwrap()
    );
    let deleted = vcm
        .http
        .delete(&url)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert!(deleted.status().is_success(), "{}", deleted.status());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let c: Value = vcm
            .http
            .get(&url)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if c["phase"] == "Deleted" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not deleted: {c}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
