//! A pull request's own pipeline uses the cluster vcm's webhook made for it, with no stored
//! secret: the real `vcm server --dev` takes a signed GitHub `pull_request` delivery and makes
//! the cluster (owned by the webhook engine, team `web`); the pull request's job, holding only
//! its GitHub Actions OIDC token, runs `ci/vcm-ci.sh pr` and gets a working kubeconfig, because
//! its `[[auth.oidc.rules]]` entry maps the token's `repository_id` claim to the clusters
//! labelled with that repository (`pull_request_clusters`). The same token sees no other
//! cluster, not even one labelled with its repository by someone else, and may not delete or
//! change the pull request's cluster.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "oidc/issuer.rs"]
#[allow(dead_code)]
mod issuer;
#[path = "support/ci_platforms.rs"]
mod platforms;
#[path = "support/ci_recipes.rs"]
mod recipes;
#[path = "support/vcm_process.rs"]
mod vcm_process;
#[path = "support/webhooks.rs"]
mod webhooks_support;

use std::time::{Duration, Instant};

use platforms::*;
use recipes::*;
use serde_json::{Value, json};
use vcm_process::TOKEN;

/// Clusters of the local driver are Ready in seconds; a hang fails well before the default 10m.
const TIMEOUT: &str = "3m";

/// GitHub's `pull_request` `opened` delivery (the documented payload) for PR `number` of
/// GH_REPO at GH_HEAD_SHA.
fn opened(number: u64) -> Vec<u8> {
    webhooks_support::edited("github/pull_request.opened.json", |v| {
        v["number"] = json!(number);
        v["pull_request"]["number"] = json!(number);
        v["pull_request"]["head"]["sha"] = json!(GH_HEAD_SHA);
        v["repository"]["id"] = json!(GH_REPO_ID);
        v["repository"]["full_name"] = json!(GH_REPO);
    })
}

/// `method` on `path` of vcm with `token`: status and JSON body.
fn call(
    vcm: &vcm_process::Vcm,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let mut req = reqwest::Client::new()
            .request(method.parse().unwrap(), format!("{}{path}", vcm.addr))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    })
}

#[test]
fn a_pull_requests_job_takes_its_webhook_cluster_with_only_its_oidc_token() {
    let (p, vcm, _config) = Platforms::with_server();

    // The webhook makes PR 42's cluster; someone else labels a cluster with the same repository.
    let (status, body) = webhooks_support::github(
        &vcm,
        "pull_request",
        "pr-pipeline-42",
        WEBHOOK_SECRET,
        opened(42),
    );
    assert_eq!(status, 202, "{body}");
    let decoy: Value = serde_json::from_str(&vcm.cli_ok(&[
        "cluster",
        "create",
        "--name",
        "decoy",
        "--label",
        "repo=octo-org.octo-repo",
        "--label",
        "repo-id=74",
        "--label",
        "pr=42",
        "-o",
        "json",
    ]))
    .unwrap();

    // The job: only the platform's variables and its ID-token endpoint, no VCM_TOKEN.
    let job = tempfile::tempdir().unwrap();
    let mut env = github_env(&p, job.path(), 42);
    set(
        &mut env,
        &[("VCM_ADDR", &*vcm.addr), ("VCM_TIMEOUT", TIMEOUT)],
    );
    let out = pairs(&ok(&vcm_ci(&["pr"], &env, job.path()), "vcm-ci.sh pr"));
    assert!(out["name"].starts_with("gh-octo-repo-42-"), "{out:?}");
    assert_kubeconfig_works(&out["kubeconfig"]);
    let made = vcm.cluster(&out["id"]);
    assert_eq!(made["owner"], "webhook:github/octo-org/octo-repo");
    assert_eq!(made["labels"]["repo-id"], "74");

    // The token sees the pull request's cluster and nothing else.
    let token = p.github_token();
    let (status, list) = call(&vcm, "GET", "/v1/clusters", &token, None);
    assert_eq!(status, 200, "{list}");
    let ids: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [out["id"].as_str()], "{list}");
    let (status, body) = call(
        &vcm,
        "GET",
        &format!("/v1/clusters/{}", decoy["id"].as_str().unwrap()),
        &token,
        None,
    );
    assert_eq!(status, 404, "{body}");

    // It may keep it alive, but not delete or change it: closing the pull request does that.
    let id = out["id"].as_str();
    let (status, body) = call(
        &vcm,
        "POST",
        &format!("/v1/clusters/{id}/keepalive"),
        &token,
        None,
    );
    assert!(status < 300, "keepalive: {status} {body}");
    let (status, body) = call(&vcm, "DELETE", &format!("/v1/clusters/{id}"), &token, None);
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("goes when the pull request closes"),
        "{body}"
    );
    let (status, body) = call(
        &vcm,
        "PUT",
        &format!("/v1/clusters/{id}"),
        &token,
        Some(json!({"ttl": "8h"})),
    );
    assert_eq!(status, 403, "{body}");
    assert_eq!(vcm.cluster(id)["phase"], "Ready");
}
#[test]
fn with_a_vcm_token_pr_mode_takes_the_labelled_cluster_and_gives_up_clearly_without_one() {
    // Arrange: the cluster a webhook would have made for PR 42's head (the admin makes it).
    let (p, vcm, _config) = Platforms::with_server();
    let sha = format!("sha={GH_HEAD_SHA}");
    let labels = ["provider=github", "repo=octo-org.octo-repo", "pr=42", &sha];
    let mut create = vec![
        "cluster",
        "create",
        "--name",
        "gh-octo-repo-42-5d1e7a",
        "-o",
        "json",
    ];
    for l in &labels {
        create.extend(["--label", l]);
    }
    let made: Value = serde_json::from_str(&vcm.cli_ok(&create)).unwrap();
    let job = tempfile::tempdir().unwrap();
    let mut env = github_env(&p, job.path(), 42);
    let vars = [("VCM_ADDR", &*vcm.addr), ("VCM_TOKEN", TOKEN)];
    set(&mut env, &vars);
    set(&mut env, &[("VCM_TIMEOUT", TIMEOUT)]);

    // Act
    let out = pairs(&ok(&vcm_ci(&["pr"], &env, job.path()), "vcm-ci.sh pr"));

    // Assert: that cluster, a working kubeconfig, nothing created or deleted.
    assert_eq!(out["id"], made["id"].as_str().unwrap());
    assert_eq!(out["name"], "gh-octo-repo-42-5d1e7a");
    assert_kubeconfig_works(&out["kubeconfig"]);
    assert_eq!(vcm.cluster(&out["id"])["phase"], "Ready");
    assert_eq!(clusters(&vcm, &[]).len(), 1);

    // Act: pull request 43 has no cluster; nor has Bitbucket's PR 7.
    let none = tempfile::tempdir().unwrap();
    let mut env43 = github_env(&p, none.path(), 43);
    set(&mut env43, &vars);
    set(&mut env43, &[("VCM_TIMEOUT", "5s")]);
    let started = Instant::now();
    let github = refused(&vcm_ci(&["pr"], &env43, none.path()), "pr 43");
    let took = started.elapsed();
    let mut bb = bitbucket_env(&p, none.path());
    set(&mut bb, &vars);
    set(&mut bb, &[("VCM_TIMEOUT", "1s")]);
    let bitbucket = refused(&vcm_ci(&["pr"], &bb, none.path()), "bitbucket pr 7");

    // Assert: within the timeout, saying what it looked for.
    assert!(
        took < Duration::from_secs(20),
        "VCM_TIMEOUT=5s took {took:?}"
    );
    let want = format!("provider=github repo=octo-org.octo-repo pr=43 sha={GH_HEAD_SHA}");
    assert!(
        github.contains("no Ready cluster for this pull request"),
        "{github}"
    );
    assert!(
        github.contains(&want) && github.contains("VCM_TIMEOUT=5s"),
        "{github}"
    );
    let want = format!(
        "provider=bitbucket repo=acme.web-app pr=7 sha={}",
        &BB_COMMIT[..12]
    );
    assert!(bitbucket.contains(&want), "{bitbucket}");
}
