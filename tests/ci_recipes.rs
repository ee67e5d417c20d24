//! The packaged CI recipes (`action.yml` + `ci/github/`, `ci/bitbucket/`, `ci/gitlab/`, all
//! calling `ci/vcm-ci.sh`) run the way each platform runs them, against the real
//! `vcm server --dev` (local driver: real kube-apiservers) that trusts a local CI OIDC issuer:
//!
//! - GitHub: `node ci/github/main.js` and `post.js` with the runner's `INPUT_*` (action.yml's
//!   defaults), `GITHUB_*` and file-command variables, the job's ID token fetched from a local
//!   `ACTIONS_ID_TOKEN_REQUEST_URL`; a retried run and a re-run reuse the cluster, and the post
//!   step deletes it (also after a wait that failed).
//! - Bitbucket and GitLab: the step's `script`/`after-script` and the template's
//!   `before_script`/`after_script`, read from the YAML files, in bash with the platform's
//!   variables and OIDC token (`after*` in a shell of its own, as the platforms do).
//! - `vcm-ci.sh pr` (the pull request's own cluster) is in `tests/pr_pipeline.rs`.
//! - Refusals: no credential, a token vcm refuses, plain HTTP to another machine.
//!
//! Every kubeconfig handed out is used with the real `kubectl`.
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

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use platforms::*;
use recipes::*;
use vcm_process::TOKEN;

/// Clusters of the local driver are Ready in seconds; a hang fails well before the default 10m.
const TIMEOUT: &str = "3m";

#[test]
fn the_github_action_makes_a_working_cluster_reuses_it_when_retried_and_its_post_step_deletes_it() {
    // Arrange
    let (p, vcm, _config) = Platforms::with_server();
    let job = tempfile::tempdir().unwrap();
    let mut env = github_env(&p, job.path(), 42);
    env.extend(action_inputs(&[("addr", &vcm.addr), ("timeout", TIMEOUT)]));

    // Act: the main step.
    let stdout = ok(&node("main.js", &env, job.path()), "main.js");

    // Assert: outputs, KUBECONFIG for later steps, the id kept for the post step.
    let file = |variable: &str| file_pairs(Path::new(&env[variable]));
    let outputs = file("GITHUB_OUTPUT");
    let (id, kubeconfig) = (&outputs["id"], &outputs["kubeconfig"]);
    assert_eq!(outputs["name"], format!("gh-{GH_RUN_ID}-1-e2e"), "{stdout}");
    assert!(kubeconfig.starts_with(&env["RUNNER_TEMP"]), "{kubeconfig}");
    let mode = std::fs::metadata(kubeconfig).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the kubeconfig is a credential");
    assert_eq!(file("GITHUB_ENV")["KUBECONFIG"], *kubeconfig);
    assert_eq!(file("GITHUB_STATE")["cluster_id"], *id);
    let audiences = p.audiences.lock().unwrap().clone();
    assert_eq!(audiences, ["vcm"], "one ID token, audience vcm");
    assert_kubeconfig_works(kubeconfig);
    let c = vcm.cluster(id);
    assert_eq!(c["phase"], "Ready");
    assert_eq!(c["team"], "web", "the OIDC rule's team: {c}");
    assert!(
        c["owner"].as_str().unwrap().starts_with("oidc:github/"),
        "{c}"
    );
    assert_eq!(c["ttl"], "1h", "action.yml's default: {c}");
    let labels = &c["labels"];
    assert_eq!(labels["ci"], "github");
    assert_eq!(labels["repo"], "octo-org.octo-repo");
    assert_eq!(labels["pr"], "42");
    assert_eq!(labels["sha"], GH_HEAD_SHA, "the head, not the merge commit");

    // Act: the step retried in the same run, then the job re-run (attempt 2) with the name.
    let again = ok(&node("main.js", &env, job.path()), "main.js, retried");
    let mut rerun = env.clone();
    set(
        &mut rerun,
        &[
            ("GITHUB_RUN_ATTEMPT", "2"),
            ("INPUT_NAME", &outputs["name"]),
        ],
    );
    let rerun_out = ok(&node("main.js", &rerun, job.path()), "main.js, attempt 2");

    // Assert: the same cluster every time (an Idempotency-Key replay, then a taken name).
    let ids = file_pairs_all(Path::new(&env["GITHUB_OUTPUT"]), "id");
    assert_eq!(ids, [id.as_str(); 3], "{again}{rerun_out}");
    assert_eq!(clusters(&vcm, &["ci=github"]).len(), 1, "no second cluster");

    // Act: the post step, with the state as GitHub hands it over.
    let post = |env: &Env| {
        let mut env = env.clone();
        for (k, v) in file("GITHUB_STATE") {
            env.insert(format!("STATE_{k}"), v);
        }
        ok(&node("post.js", &env, job.path()), "post.js");
    };
    post(&env);

    // Assert
    assert_deleting(&vcm, id);

    // Act: a re-run whose wait fails (timeout 1s).
    let mut late = env.clone();
    set(
        &mut late,
        &[("GITHUB_RUN_ATTEMPT", "3"), ("INPUT_TIMEOUT", "1s")],
    );
    let failed = node("main.js", &late, job.path());
    let second = file("GITHUB_STATE")["cluster_id"].clone();
    post(&late);

    // Assert: an annotation saying why, and the post step deleted the cluster all the same.
    let annotation = String::from_utf8_lossy(&failed.stdout);
    assert_eq!(failed.status.code(), Some(1), "{annotation}");
    assert!(
        annotation.starts_with("::error::vcm: cluster gh-9876543210-3-e2e"),
        "{annotation}"
    );
    assert!(annotation.contains("VCM_TIMEOUT=1s"), "{annotation}");
    assert_ne!(second, *id);
    assert_deleting(&vcm, &second);
}

#[test]
fn a_bitbucket_step_gets_a_labelled_cluster_with_its_oidc_token_and_its_after_script_deletes_it() {
    // Arrange: the step as the snippet defines it, in a clone holding ci/vcm-ci.sh.
    let file = yaml(&repo_root().join("ci/bitbucket/bitbucket-pipelines.yml"));
    let step = &file["pipelines"]["pull-requests"]["**"][0]["step"];
    assert_eq!(step["oidc"]["audiences"][0], "vcm", "{step:?}");
    let (p, vcm, _config) = Platforms::with_server();
    let clone = tempfile::tempdir().unwrap();
    let ci = clone.path().join("ci");
    std::fs::create_dir(&ci).unwrap();
    std::fs::copy(repo_root().join("ci/vcm-ci.sh"), ci.join("vcm-ci.sh")).unwrap();
    let mut env = bitbucket_env(&p, clone.path());
    set(
        &mut env,
        &[("VCM_ADDR", &vcm.addr), ("VCM_TIMEOUT", TIMEOUT)],
    ); // repository variables

    // Act
    let stdout = ok(
        &shell(&commands(&step["script"]), &env, clone.path(), false),
        "script",
    );

    // Assert: the step's kubectl reached the cluster; the cluster carries Bitbucket's labels.
    assert!(stdout.contains("kwok-node-0"), "{stdout}");
    let c = vcm.cluster("bb-118-0f5f2b1c");
    assert_eq!(c["phase"], "Ready");
    assert!(
        c["owner"].as_str().unwrap().starts_with("oidc:bitbucket/"),
        "{c}"
    );
    let labels = &c["labels"];
    assert_eq!(labels["ci"], "bitbucket");
    assert_eq!(labels["repo"], "acme.web-app");
    assert_eq!(labels["pr"], "7");
    assert_eq!(
        labels["sha"],
        &BB_COMMIT[..12],
        "as Bitbucket's webhooks carry it"
    );

    // Act: after-script, in a shell of its own.
    env.insert("BITBUCKET_EXIT_CODE".into(), "0".into());
    let after = commands(&step["after-script"]);
    ok(&shell(&after, &env, clone.path(), false), "after-script");

    // Assert
    assert_deleting(&vcm, c["id"].as_str().unwrap());
}

#[test]
fn a_gitlab_job_extending_the_template_gets_a_cluster_with_its_id_token_and_loses_it_after() {
    // Arrange: a project without a copy of the script: the template fetches it.
    let file = yaml(&repo_root().join("ci/gitlab/vcm.gitlab-ci.yml"));
    let template = &file[".vcm-cluster"];
    assert_eq!(template["id_tokens"]["VCM_ID_TOKEN"]["aud"], "vcm");
    let (p, vcm, _config) = Platforms::with_server();
    let project = tempfile::tempdir().unwrap();
    let mut env = gitlab_env(&p, project.path());
    for (k, v) in template["variables"].as_mapping().unwrap() {
        env.insert(k.as_str().unwrap().into(), v.as_str().unwrap().into());
    }
    let job_variables = [
        ("VCM_ADDR", vcm.addr.clone()),
        ("VCM_CI_SCRIPT_URL", p.script_url()),
        ("VCM_TIMEOUT", TIMEOUT.into()),
    ];
    env.extend(job_variables.map(|(k, v)| (k.to_owned(), v)));

    // Act: before_script and the job's script in one shell, as GitLab runs them.
    let mut script = commands(&template["before_script"]);
    script.push("kubectl get --raw /readyz && kubectl get nodes -o name".into());
    let stdout = ok(&shell(&script, &env, project.path(), true), "before_script");

    // Assert
    assert!(stdout.contains("node/kwok-node-0"), "{stdout}");
    let c = vcm.cluster("gl-574-302");
    assert_eq!(c["phase"], "Ready");
    assert!(
        c["owner"].as_str().unwrap().starts_with("oidc:gitlab/"),
        "{c}"
    );
    let labels = &c["labels"];
    assert_eq!(labels["ci"], "gitlab");
    assert_eq!(labels["repo"], "acme.platform.web");
    assert_eq!(labels["pr"], "5");
    assert_eq!(labels["sha"], GL_SHA);

    // Act: after_script, a shell of its own.
    let after = commands(&template["after_script"]);
    ok(&shell(&after, &env, project.path(), true), "after_script");

    // Assert
    assert_deleting(&vcm, c["id"].as_str().unwrap());
}

#[test]
fn the_recipes_refuse_clearly_without_a_credential_with_a_refused_token_and_over_plain_http() {
    // Arrange
    let (p, vcm, _config) = Platforms::with_server();
    let job = tempfile::tempdir().unwrap();
    let mut bare = github_env(&p, job.path(), 42); // a job without `id-token: write`
    bare.remove("ACTIONS_ID_TOKEN_REQUEST_URL");
    bare.remove("ACTIONS_ID_TOKEN_REQUEST_TOKEN");
    bare.insert("VCM_ADDR".into(), vcm.addr.clone());

    // Act + Assert: no credential, from the script and from the action.
    let err = refused(&vcm_ci(&["up"], &bare, job.path()), "up without credential");
    for named in [
        "VCM_TOKEN",
        "id-token: write",
        "ACTIONS_ID_TOKEN_REQUEST_URL",
        "BITBUCKET_STEP_OIDC_TOKEN",
        "VCM_ID_TOKEN",
    ] {
        assert!(err.contains(named), "names {named}: {err}");
    }
    let mut action = bare.clone();
    action.extend(action_inputs(&[("addr", &vcm.addr)]));
    let out = node("main.js", &action, job.path());
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with("::error::vcm: no credential for vcm"),
        "{stdout}"
    );

    // Act + Assert: tokens vcm refuses; the script prints vcm's code and message.
    let mut bogus = bare.clone();
    bogus.insert("VCM_TOKEN".into(), format!("vcm_{}", "0".repeat(64)));
    let err = refused(&vcm_ci(&["up"], &bogus, job.path()), "a bogus vcm token");
    assert!(err.contains("vcm answered 401 unauthenticated"), "{err}");
    let gitlab = tempfile::tempdir().unwrap();
    let mut stranger = gitlab_env(&p, gitlab.path());
    let token = p.gitlab_token("evil/fork");
    set(
        &mut stranger,
        &[("VCM_ID_TOKEN", &token), ("VCM_ADDR", &vcm.addr)],
    );
    let err = refused(
        &vcm_ci(&["up"], &stranger, gitlab.path()),
        "a project no rule names",
    );
    assert!(err.contains("vcm answered 401 unauthenticated"), "{err}");
    assert!(
        err.contains("project_path:evil/fork"),
        "names the sub: {err}"
    );
    assert!(clusters(&vcm, &[]).is_empty(), "nothing was created");

    // Act + Assert: a token never goes over plain HTTP to another machine.
    let mut far = bare.clone();
    set(
        &mut far,
        &[("VCM_ADDR", "http://vcm.example.com"), ("VCM_TOKEN", TOKEN)],
    );
    let err = refused(&vcm_ci(&["down", "x"], &far, job.path()), "plain http");
    assert!(err.contains("plain HTTP"), "{err}");
}

#[test]
fn the_recipe_files_parse_and_call_the_script() {
    let action = yaml(&repo_root().join("action.yml"));
    let runs = &action["runs"];
    assert_eq!(runs["using"], "node24");
    assert_eq!(runs["post-if"], "always()");
    for step in ["main", "post"] {
        let file = runs[step].as_str().unwrap();
        assert!(repo_root().join(file).is_file(), "runs.{step}: {file}");
    }
    for input in action["inputs"].as_mapping().unwrap().values() {
        assert!(input["description"].is_string(), "{input:?}");
    }
    let bitbucket = yaml(&repo_root().join("ci/bitbucket/bitbucket-pipelines.yml"));
    let step = &bitbucket["definitions"]["steps"][0]["step"];
    let gitlab = yaml(&repo_root().join("ci/gitlab/vcm.gitlab-ci.yml"));
    let template = &gitlab[".vcm-cluster"];
    assert_eq!(template["variables"]["VCM_CI_SCRIPT"], "ci/vcm-ci.sh");
    // The script as each file names it: GitLab's through its variable.
    let calls = |list: &serde_yaml_ng::Value, verb: &str| {
        commands(list).iter().any(|c| {
            c.replace("\"$VCM_CI_SCRIPT\"", "ci/vcm-ci.sh")
                .contains(&format!("bash ci/vcm-ci.sh {verb}"))
        })
    };
    for (up, down) in [
        (&step["script"], &step["after-script"]),
        (&template["before_script"], &template["after_script"]),
    ] {
        assert!(calls(up, "up"), "{up:?}");
        assert!(calls(down, "down"), "{down:?}");
    }
    let syntax = std::process::Command::new("bash")
        .args(["-n", "ci/vcm-ci.sh"])
        .current_dir(repo_root())
        .status()
        .unwrap();
    assert!(syntax.success());
}
