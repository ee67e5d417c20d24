//! Status on the commit, end to end: the real `vcm server --dev` (local driver, real API
//! servers) with its webhook doors reporting to a local stand-in for GitHub's and Bitbucket's
//! REST APIs (`tests/support/scm_fakes.rs`, their documented wire format). Deliveries drive a
//! pull request's life; the fake records what vcm posts: the states in order, the link, the
//! context or key, the branch, and the App's JWT and installation tokens. The provider answers
//! 500 for a while, an installation token expires early, and vcm is SIGKILLed between the
//! delivery's 2xx and the first status: each status still arrives, and a later state is never
//! followed by an earlier one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/scm_fakes.rs"]
mod scm_fakes;
#[path = "support/statuses.rs"]
mod statuses;
#[path = "support/vcm_process.rs"]
mod vcm_process;
#[path = "support/webhooks.rs"]
mod webhooks_support;

use std::time::Duration;

use scm_fakes::{APP_ID, BITBUCKET_TOKEN, GITHUB_TOKEN, Scm};
use serde_json::{Value, json};
use statuses::*;
use webhooks_support::*;

const PUBLIC_URL: &str = "https://vcm.example.com";
const FIRST: &str = "d9c5607b8103b154ab43ef77cacccc2994e1719a";
const SECOND: &str = "5e1f0a9d3c7b2e8f4a6d1c0b9e8f7a6d5c4b3a21";

/// A GitHub delivery about pull request 44 of the App fixture, at `sha`, `minutes` after it
/// opened.
fn app_delivery(name: &str, sha: &str, minutes: i64) -> Vec<u8> {
    edited(name, |v| {
        v["number"] = json!(44);
        v["pull_request"]["number"] = json!(44);
        v["pull_request"]["head"]["sha"] = json!(sha);
        if v.get("after").is_some() {
            v["after"] = json!(sha);
        }
        let at = "2026-11-24T13:00:00Z".parse::<jiff::Timestamp>().unwrap()
            + jiff::SignedDuration::from_mins(minutes);
        v["pull_request"]["updated_at"] = json!(at.to_string());
        v["installation"] =
            json!({"id": 58_213_377, "node_id": "MDIzOkludGVncmF0aW9uNTgyMTMzNzc="});
    })
}

#[test]
fn a_github_app_reports_each_commit_of_a_pull_request_through_an_outage_and_an_expired_token() {
    app_pull_request(false);
}

#[test]
fn a_github_app_reports_check_runs_made_once_per_commit_and_updated() {
    app_pull_request(true);
}

fn app_pull_request(check_runs: bool) {
    let (pem, key_path) = app_key();
    let scm = Scm::start(&pem);
    // The first installation token goes stale after one use; the first two posts meet a 500.
    scm.expire_next_token_after(1);
    scm.outage(2);
    let (vcm, _dir) = server_with(
        &format!("public_url = \"{PUBLIC_URL}/\""),
        &format!(
            "api_url = \"{}\"\napp_id = \"{APP_ID}\"\nprivate_key = \"file:{key_path}\"\n\
             check_runs = {check_runs}",
            scm.url()
        ),
        "",
    );

    // Deliver `name` at `sha`, then wait for GitHub to show success on it.
    let success_after = |delivery: &str, name: &str, sha: &str, minutes: i64, secs: u64| {
        let body = app_delivery(name, sha, minutes);
        let (status, answer) = github(&vcm, "pull_request", delivery, GITHUB_SECRET, body);
        assert_eq!(status, 202, "{answer}");
        wait_for(
            secs,
            &format!("success on {sha}"),
            || shown(&scm, sha, check_runs),
            |s| last_state(s) == Some("success"),
        )
    };
    let first = success_after(
        "gh-app-opened",
        "github/pull_request.opened.app.json",
        FIRST,
        0,
        180,
    );
    let live = clusters_of(&vcm, "github", 44);
    let id = live[0]["id"].as_str().unwrap();
    let (_, link, name, text) = first.last().unwrap();
    assert_eq!(name, "vcm/cluster");
    assert_eq!(*link, format!("{PUBLIC_URL}/ui/#/clusters/{id}"));
    assert!(
        text.contains("is ready") && text.chars().count() <= 140,
        "{text}"
    );
    let states: Vec<String> = first.iter().map(|(s, ..)| s.clone()).collect();
    assert!(in_order(&states, "success", &[]), "{first:#?}");
    if check_runs {
        assert_eq!(
            scm.check_runs_made(),
            1,
            "one check run per commit, updated"
        );
    }

    // The outage and the stale token were met and got over: 500s, a 401, a second token, and
    // every status posted with an installation token minted by the App's JWT.
    let seen = scm.seen();
    let posts: Vec<_> = seen
        .iter()
        .filter(|s| {
            s.path.contains(if check_runs {
                "/check-runs"
            } else {
                "/statuses/"
            })
        })
        .collect();
    assert!(
        posts.iter().filter(|s| s.status == 500).count() >= 2,
        "{posts:#?}"
    );
    assert!(posts.iter().any(|s| s.status == 401), "{posts:#?}");
    assert!(scm.minted() >= 2, "a fresh token after the 401");
    assert!(
        posts
            .iter()
            .all(|s| s.authorization.starts_with("Bearer ghs_")),
        "{posts:#?}"
    );
    assert!(
        seen.iter()
            .any(|s| s.path == "/app/installations/58213377/access_tokens" && s.status == 201),
        "{seen:#?}"
    );

    // A new commit (the rule keeps the cluster): the new head shows success too.
    let second = success_after(
        "gh-app-sync",
        "github/pull_request.synchronize.json",
        SECOND,
        5,
        60,
    );
    let states: Vec<String> = second.iter().map(|(s, ..)| s.clone()).collect();
    assert!(in_order(&states, "success", &[]), "{second:#?}");

    // Closed and merged: the cluster goes; GitHub keeps its last status (no red mark on a
    // merged commit).
    let (status, body) = github(
        &vcm,
        "pull_request",
        "gh-app-closed",
        GITHUB_SECRET,
        app_delivery("github/pull_request.closed.merged.json", SECOND, 10),
    );
    assert_eq!(status, 202, "{body}");
    until(
        &vcm,
        "github",
        44,
        "the cluster deleted",
        <[Value]>::is_empty,
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        last_state(&shown(&scm, SECOND, check_runs)),
        Some("success")
    );
}

#[test]
fn a_bitbucket_pull_request_shows_in_progress_then_successful_then_stopped_on_its_full_hash() {
    let (pem, _) = app_key();
    let scm = Scm::start(&pem);
    let short = "3f9a1c2b7d4e";
    let full = format!("{short}8a1b2c3d4e5f60718293a4b5c6d7");
    assert_eq!(full.len(), 40);
    scm.add_commit(&full);
    let token_dir = tempfile::tempdir().unwrap();
    let token_file = token_dir.path().join("bitbucket-token");
    std::fs::write(&token_file, format!("{BITBUCKET_TOKEN}\n")).unwrap();
    let (vcm, _dir) = server_with(
        &format!("public_url = \"{PUBLIC_URL}\""),
        "",
        &format!(
            "api_url = \"{}/2.0\"\ntoken = \"file:{}\"",
            scm.url(),
            token_file.display()
        ),
    );

    let (status, body) = bitbucket(
        &vcm,
        "pullrequest:created",
        "bb-created",
        payload("bitbucket/pullrequest.created.json"),
    );
    assert_eq!(status, 202, "{body}");
    let shown = wait_for(
        40,
        "SUCCESSFUL on the full hash",
        || (scm.statuses(&full), scm.seen()),
        |(s, _)| states(s, "state").last().map(String::as_str) == Some("SUCCESSFUL"),
    )
    .0;
    assert!(
        in_order(&states(&shown, "state"), "SUCCESSFUL", &["STOPPED"]),
        "{shown:#?}"
    );
    let last = shown.last().unwrap();
    assert_eq!(last["key"], "vcm-cluster");
    assert_eq!(
        last["refname"], "feature/groessen",
        "shows on the pull request"
    );
    assert!(
        last["url"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{PUBLIC_URL}/ui/#/clusters/c"))
    );
    assert!(
        scm.seen()
            .iter()
            .any(|s| s.path.ends_with(&format!("/commit/{short}")) && s.status == 200),
        "the short hash resolved"
    );

    // Merged: the cluster goes and the status says STOPPED.
    let (status, body) = bitbucket(
        &vcm,
        "pullrequest:fulfilled",
        "bb-fulfilled",
        payload("bitbucket/pullrequest.fulfilled.json"),
    );
    assert_eq!(status, 202, "{body}");
    let stopped = wait_for(
        60,
        "STOPPED after the merge",
        || scm.statuses(&full),
        |s| states(s, "state").last().map(String::as_str) == Some("STOPPED"),
    );
    assert!(
        stopped.last().unwrap()["description"]
            .as_str()
            .unwrap()
            .contains("pull request closed"),
        "{stopped:#?}"
    );
}

#[test]
fn a_status_survives_a_sigkill_after_the_delivery_and_a_provider_outage() {
    let (pem, _) = app_key();
    let scm = Scm::start(&pem);
    scm.set_down(true);
    let token_dir = tempfile::tempdir().unwrap();
    let token_file = token_dir.path().join("github-token");
    std::fs::write(&token_file, GITHUB_TOKEN).unwrap();
    let (mut vcm, _dir) = server_with(
        &format!("public_url = \"{PUBLIC_URL}\""),
        &format!(
            "api_url = \"{}\"\ntoken = \"file:{}\"\ncontext = \"ci/preview\"",
            scm.url(),
            token_file.display()
        ),
        "",
    );
    let (status, body) = github(
        &vcm,
        "pull_request",
        "gh-kill",
        GITHUB_SECRET,
        payload("github/pull_request.opened.json"),
    );
    assert_eq!(status, 202, "{body}");
    vcm.sigkill();
    assert!(
        scm.statuses(FIRST).is_empty(),
        "nothing posted before the kill"
    );
    vcm.spawn();

    // The provider is down: vcm keeps trying after its restart.
    let live = until(&vcm, "github", 42, "the cluster after the restart", |l| {
        l.len() == 1
    });
    let id = live[0]["id"].as_str().unwrap().to_owned();
    vcm.wait_phase(&id, "Ready", Duration::from_secs(120));
    wait_for(
        30,
        "an attempt during the outage",
        scm_failures(&scm),
        |n| *n >= 1,
    );
    scm.set_down(false);

    let shown = wait_for(
        320,
        "success once the provider is back",
        || scm.statuses(FIRST),
        |s| states(s, "state").last().map(String::as_str) == Some("success"),
    );
    assert!(
        in_order(&states(&shown, "state"), "success", &[]),
        "{shown:#?}"
    );
    let last = shown.last().unwrap();
    assert_eq!(last["context"], "ci/preview");
    assert_eq!(
        last["target_url"],
        format!("{PUBLIC_URL}/ui/#/clusters/{id}")
    );
    assert!(
        scm.seen()
            .iter()
            .filter(|s| s.path.contains("/statuses/"))
            .all(|s| s.authorization == format!("Bearer {GITHUB_TOKEN}"))
    );
}

fn scm_failures(scm: &Scm) -> impl Fn() -> usize + '_ {
    move || {
        scm.seen()
            .iter()
            .filter(|s| s.path.contains("/statuses/") && s.status == 500)
            .count()
    }
}
