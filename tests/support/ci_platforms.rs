//! The CI platforms as the packaged recipes see them (included with `#[path]` by
//! `tests/ci_recipes.rs`): a local OIDC issuer that the vcm server trusts for GitHub, Bitbucket
//! and GitLab tokens (each platform's documented claim set), GitHub's ID-token request
//! endpoint, and each platform's environment variables.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Json, Response};
use serde_json::{Value, json};

use crate::issuer::{Issuer, Key};
use crate::recipes::{Env, repo_root, yaml};
use crate::vcm_process::Vcm;

/// GitHub: the repository (mixed case: the `repo` label lowercases it), run, pull request.
pub const GH_REPO: &str = "Octo-Org/Octo-Repo";
pub const GH_RUN_ID: &str = "9876543210";
pub const GH_HEAD_SHA: &str = "6dcb09b5b57875f334f61aebed695e2e4193db5e";
pub const GH_MERGE_SHA: &str = "f0e1d2c3b4a5968778695a4b3c2d1e0f0a1b2c3d";
/// GH_REPO's immutable id, in its webhooks (`repository.id`) and tokens (`repository_id`).
pub const GH_REPO_ID: u64 = 74;
/// The secret of GH_REPO's GitHub webhook.
pub const WEBHOOK_SECRET: &str = "octo-webhook-secret";
/// The runner's secret for the ID-token request endpoint.
pub const REQUEST_TOKEN: &str = "gh-request-token-6f1e2d";
/// Bitbucket: the repository, its UUID (what rules match: tokens carry no name), the build.
pub const BB_REPO: &str = "Acme/Web-App";
pub const BB_REPO_UUID: &str = "{c6a1f2d4-5e8b-4f3a-9d27-7b0e41c9a853}";
pub const BB_STEP_UUID: &str = "{0f5f2b1c-7d3e-4a6b-9c8d-1e2f3a4b5c6d}";
pub const BB_COMMIT: &str = "1e0f6a9c2b7d4e8f3a5c9b1d7e2f4a6c8b0d9e1f";
/// GitLab: the project (a subgroup), pipeline, job, merge request.
pub const GL_PROJECT: &str = "Acme/Platform/Web";
pub const GL_SHA: &str = "714a629c0b401fdce83e847fc9589983fc6f46bc";

/// A local issuer, its signing key and the platforms' HTTP endpoints, on a runtime of their own
/// (the tests themselves block on processes).
pub struct Platforms {
    pub issuer: Issuer,
    pub key: Arc<Key>,
    /// GitHub's ID-token endpoint (`/_apis/idtoken`) and a raw copy of `vcm-ci.sh`.
    pub endpoint: SocketAddr,
    /// The `audience` of every ID-token request GitHub's endpoint answered.
    pub audiences: Arc<Mutex<Vec<String>>>,
    rt: tokio::runtime::Runtime,
}

#[derive(Clone)]
struct EndpointState {
    key: Arc<Key>,
    issuer: String,
    audiences: Arc<Mutex<Vec<String>>>,
}

impl Platforms {
    pub fn start() -> Self {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let key = Arc::new(Key::rsa("ci-recipes-1"));
        let issuer = rt.block_on(Issuer::start());
        issuer.publish(&[&key]);
        let audiences = Arc::new(Mutex::new(Vec::new()));
        let state = EndpointState {
            key: key.clone(),
            issuer: issuer.github(),
            audiences: audiences.clone(),
        };
        let endpoint = rt.block_on(async {
            let app = axum::Router::new().fallback(serve).with_state(state);
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tokio::spawn(async move { axum::serve(listener, app).await });
            addr
        });
        Self {
            issuer,
            key,
            endpoint,
            audiences,
            rt,
        }
    }

    pub fn gitlab_issuer(&self) -> String {
        format!("http://{}/gitlab", self.issuer.addr)
    }

    /// `ACTIONS_ID_TOKEN_REQUEST_URL` (GitHub's carries a query string already).
    pub fn token_url(&self) -> String {
        format!("http://{}/_apis/idtoken?api-version=2.0", self.endpoint)
    }

    /// A raw URL of `ci/vcm-ci.sh`, as a job fetches it.
    pub fn script_url(&self) -> String {
        format!("http://{}/raw/ci/vcm-ci.sh", self.endpoint)
    }

    /// The platforms and a vcm server trusting them (its clusters need the local driver's
    /// binaries).
    pub fn with_server() -> (Self, Vcm, tempfile::TempDir) {
        crate::recipes::require_k8s_bins();
        let platforms = Self::start();
        let (vcm, config) = platforms.server();
        (platforms, vcm, config)
    }

    /// A dev server trusting the three issuers: pull requests of GH_REPO, the Bitbucket
    /// repository (by UUID) and the GitLab project are `ci` of team `web`; GH_REPO's jobs may
    /// also use its pull-request clusters (by `repository_id`), which its GitHub webhook
    /// (secret [`WEBHOOK_SECRET`]) makes for team `web`.
    pub fn server(&self) -> (Vcm, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("vcm.toml");
        let secret = dir.path().join("webhook-secret");
        std::fs::write(&secret, WEBHOOK_SECRET).unwrap();
        let issuers = [
            ("github", self.issuer.github(), "repository", GH_REPO),
            (
                "bitbucket",
                self.issuer.bitbucket(),
                "repositoryUuid",
                BB_REPO_UUID,
            ),
            ("gitlab", self.gitlab_issuer(), "project_path", GL_PROJECT),
        ];
        let toml: String = issuers
            .iter()
            .map(|(name, issuer, claim, value)| {
                format!(
                    "[[auth.oidc]]\nname = \"{name}\"\nissuer = \"{issuer}\"\naudience = \"vcm\"\n\
                     [[auth.oidc.rules]]\nclaims = {{ {claim} = \"{value}\" }}\nrole = \"ci\"\n\
                     team = \"web\"\n\n"
                )
            })
            .collect();
        let toml = toml.replacen(
            "team = \"web\"\n",
            "team = \"web\"\npull_request_clusters = \"repository_id\"\n",
            1,
        ) + &format!(
            "[webhooks]\n[webhooks.github]\nsecrets = [\"file:{}\"]\n\n\
             [[pull_requests]]\nprovider = \"github\"\nrepository = \"{GH_REPO}\"\n\
             team = \"web\"\n",
            secret.display()
        );
        std::fs::write(&config, toml).unwrap();
        let config = config.display().to_string();
        (Vcm::start_with_env(&[("VCM_CONFIG", &config)]), dir)
    }

    pub fn sign(&self, claims: &Value) -> String {
        self.key.sign(json!({}), claims)
    }

    /// A GitHub Actions ID token of a `pull_request` run of GH_REPO, audience `vcm`.
    pub fn github_token(&self) -> String {
        self.sign(&github_claims(&self.issuer.github(), "vcm"))
    }

    /// `BITBUCKET_STEP_OIDC_TOKEN` of a pull-request step (`oidc: audiences: [vcm]`).
    pub fn bitbucket_token(&self) -> String {
        let iat = now();
        self.sign(&json!({
            "sub": format!("{BB_REPO_UUID}:{BB_STEP_UUID}"),
            "iss": self.issuer.bitbucket(),
            "aud": ["vcm", "ari:cloud:bitbucket::workspace/9b2e4f61-1c3d-4e5f-8a7b-6c5d4e3f2a1b"],
            "exp": iat + 3600, "iat": iat,
            "branchName": "feature/login",
            "workspaceUuid": "{9b2e4f61-1c3d-4e5f-8a7b-6c5d4e3f2a1b}",
            "repositoryUuid": BB_REPO_UUID,
            "pipelineUuid": "{7a8b9c0d-1e2f-4a3b-8c4d-5e6f7a8b9c0d}",
            "stepUuid": BB_STEP_UUID,
        }))
    }

    /// `VCM_ID_TOKEN` of a GitLab job (`id_tokens: VCM_ID_TOKEN: aud: vcm`), GitLab's
    /// documented claims (numbers and lists among them) for `project`.
    pub fn gitlab_token(&self, project: &str) -> String {
        let iat = now();
        self.sign(&json!({
            "namespace_id": "72", "namespace_path": "acme/platform",
            "project_id": "20", "project_path": project,
            "user_id": "1", "user_login": "sample-user", "user_email": "sample-user@example.com",
            "user_identities": [{"provider": "github", "extern_uid": "2435223452345"}],
            "pipeline_id": "574", "pipeline_source": "merge_request_event", "job_id": "302",
            "ref": "feature-branch-1", "ref_type": "branch",
            "ref_path": "refs/heads/feature-branch-1", "ref_protected": "false",
            "runner_id": 1, "runner_environment": "gitlab-hosted", "sha": GL_SHA,
            "project_visibility": "private",
            "ci_config_ref_uri": format!("gitlab.example.com/{project}//.gitlab-ci.yml@refs/heads/main"),
            "ci_config_sha": GL_SHA, "jti": "235b3a54-b797-45c7-ae9a-f72d7bc6ef5b",
            "iss": self.gitlab_issuer(), "iat": iat, "nbf": iat - 5, "exp": iat + 3600,
            "sub": format!("project_path:{project}:ref_type:branch:ref:feature-branch-1"),
            "aud": "vcm",
        }))
    }
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// GitHub's documented claim set for a `pull_request` run of GH_REPO.
fn github_claims(iss: &str, aud: &str) -> Value {
    let iat = now();
    json!({
        "jti": "example-id", "sub": format!("repo:{GH_REPO}:pull_request"), "aud": aud,
        "ref": "refs/pull/42/merge", "sha": GH_MERGE_SHA, "repository": GH_REPO,
        "repository_owner": "Octo-Org", "actor_id": "12", "repository_visibility": "private",
        "repository_id": GH_REPO_ID.to_string(), "repository_owner_id": "65", "run_id": GH_RUN_ID,
        "run_number": "10", "run_attempt": "1", "runner_environment": "github-hosted",
        "actor": "octocat", "workflow": "e2e", "head_ref": "feature", "base_ref": "main",
        "event_name": "pull_request", "ref_type": "branch",
        "workflow_ref": format!("{GH_REPO}/.github/workflows/e2e.yml@refs/pull/42/merge"),
        "workflow_sha": GH_MERGE_SHA,
        "job_workflow_ref": format!("{GH_REPO}/.github/workflows/e2e.yml@refs/pull/42/merge"),
        "job_workflow_sha": GH_MERGE_SHA,
        "iss": iss, "nbf": iat - 600, "exp": iat + 300, "iat": iat,
    })
}

/// GitHub's ID-token endpoint (the runner's bearer token and an `audience` are required) and
/// the raw script.
async fn serve(
    State(state): State<EndpointState>,
    uri: Uri,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    if uri.path() == "/raw/ci/vcm-ci.sh" {
        return std::fs::read(repo_root().join("ci/vcm-ci.sh"))
            .unwrap()
            .into_response();
    }
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
    if uri.path() != "/_apis/idtoken" || auth != Some(&format!("Bearer {REQUEST_TOKEN}")) {
        return (StatusCode::UNAUTHORIZED, "bad request token").into_response();
    }
    let (Some(aud), Some("2.0")) = (
        query.get("audience"),
        query.get("api-version").map(|s| &**s),
    ) else {
        return (
            StatusCode::BAD_REQUEST,
            "audience and api-version=2.0 expected",
        )
            .into_response();
    };
    state.audiences.lock().unwrap().push(aud.clone());
    let jwt = state
        .key
        .sign(json!({}), &github_claims(&state.issuer, aud));
    Json(json!({"count": 1, "value": jwt})).into_response()
}

// === the platforms' environments ===

/// What every job has: PATH (bash, curl, jq, node, kubectl), a HOME and TMPDIR of its own.
pub fn base_env(dir: &Path) -> Env {
    let (home, tmp) = (dir.join("home"), dir.join("tmp"));
    std::fs::create_dir_all(&home).unwrap();
    std::fs::create_dir_all(&tmp).unwrap();
    Env::from([
        ("PATH".into(), std::env::var("PATH").unwrap()),
        ("HOME".into(), home.display().to_string()),
        ("TMPDIR".into(), tmp.display().to_string()),
        ("CI".into(), "true".into()),
    ])
}

/// A GitHub Actions job of pull request `pr` (`GITHUB_EVENT_PATH` holds its head) with
/// `id-token: write`, and empty file-command files under `dir`.
pub fn github_env(p: &Platforms, dir: &Path, pr: u64) -> Env {
    let event = dir.join("event.json");
    let body = json!({"number": pr, "pull_request": {"number": pr, "head": {"sha": GH_HEAD_SHA}}});
    std::fs::write(&event, body.to_string()).unwrap();
    let temp = dir.join("runner-temp");
    std::fs::create_dir_all(&temp).unwrap();
    let mut env = base_env(dir);
    for file in ["GITHUB_OUTPUT", "GITHUB_ENV", "GITHUB_STATE"] {
        let path = dir.join(file.to_ascii_lowercase());
        std::fs::write(&path, "").unwrap();
        env.insert(file.into(), path.display().to_string());
    }
    let vars = [
        ("GITHUB_ACTIONS", "true".to_owned()),
        ("GITHUB_RUN_ID", GH_RUN_ID.into()),
        ("GITHUB_RUN_ATTEMPT", "1".into()),
        ("GITHUB_JOB", "e2e".into()),
        ("GITHUB_REPOSITORY", GH_REPO.into()),
        ("GITHUB_EVENT_NAME", "pull_request".into()),
        ("GITHUB_REF", format!("refs/pull/{pr}/merge")),
        ("GITHUB_SHA", GH_MERGE_SHA.into()),
        ("GITHUB_EVENT_PATH", event.display().to_string()),
        ("GITHUB_WORKSPACE", dir.display().to_string()),
        ("RUNNER_TEMP", temp.display().to_string()),
        ("ACTIONS_ID_TOKEN_REQUEST_URL", p.token_url()),
        ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", REQUEST_TOKEN.into()),
    ];
    env.extend(vars.map(|(k, v)| (k.to_owned(), v)));
    env
}

/// `INPUT_<NAME>` for every input of `action.yml`: its default, or the value in `with`
/// (as the runner passes `with:` to an action).
pub fn action_inputs(with: &[(&str, &str)]) -> Env {
    let action = yaml(&repo_root().join("action.yml"));
    let inputs = action["inputs"]
        .as_mapping()
        .expect("action.yml has inputs");
    let mut env = Env::new();
    for (name, spec) in inputs {
        let name = name.as_str().unwrap();
        let default = spec["default"].as_str().unwrap_or_default();
        let value = with
            .iter()
            .find(|(k, _)| *k == name)
            .map_or(default, |(_, v)| v);
        env.insert(
            format!("INPUT_{}", name.replace(' ', "_").to_ascii_uppercase()),
            value.to_owned(),
        );
    }
    env
}

/// A Bitbucket Pipelines pull-request step (`oidc` on) of build 118.
pub fn bitbucket_env(p: &Platforms, dir: &Path) -> Env {
    let mut env = base_env(dir);
    let vars = [
        ("BITBUCKET_BUILD_NUMBER", "118"),
        (
            "BITBUCKET_PIPELINE_UUID",
            "{7a8b9c0d-1e2f-4a3b-8c4d-5e6f7a8b9c0d}",
        ),
        ("BITBUCKET_STEP_UUID", BB_STEP_UUID),
        ("BITBUCKET_REPO_FULL_NAME", BB_REPO),
        ("BITBUCKET_REPO_SLUG", "web-app"),
        ("BITBUCKET_WORKSPACE", "acme"),
        ("BITBUCKET_REPO_UUID", BB_REPO_UUID),
        ("BITBUCKET_BRANCH", "feature/login"),
        ("BITBUCKET_PR_ID", "7"),
        ("BITBUCKET_COMMIT", BB_COMMIT),
    ];
    env.extend(vars.map(|(k, v)| (k.to_owned(), v.to_owned())));
    env.insert("BITBUCKET_CLONE_DIR".into(), dir.display().to_string());
    env.insert("BITBUCKET_STEP_OIDC_TOKEN".into(), p.bitbucket_token());
    env
}

/// A GitLab merge-request job: pipeline 574, job 302, merge request 5 of GL_PROJECT.
pub fn gitlab_env(p: &Platforms, dir: &Path) -> Env {
    let mut env = base_env(dir);
    let vars = [
        ("GITLAB_CI", "true"),
        ("CI_PIPELINE_ID", "574"),
        ("CI_JOB_ID", "302"),
        ("CI_JOB_NAME", "e2e"),
        ("CI_PROJECT_ID", "20"),
        ("CI_PROJECT_PATH", GL_PROJECT),
        ("CI_MERGE_REQUEST_IID", "5"),
        ("CI_COMMIT_SHA", GL_SHA),
        ("CI_PIPELINE_SOURCE", "merge_request_event"),
    ];
    env.extend(vars.map(|(k, v)| (k.to_owned(), v.to_owned())));
    env.insert("CI_PROJECT_DIR".into(), dir.display().to_string());
    env.insert("VCM_ID_TOKEN".into(), p.gitlab_token(GL_PROJECT));
    env
}
