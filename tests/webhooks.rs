//! Pull-request clusters end to end: the real `vcm server --dev` (local driver, real API
//! servers) with both webhook doors open, deliveries built from the providers' documented
//! payloads (`tests/data/webhooks`), signed here, driving a pull request's whole life; and every
//! way a delivery can be wrong.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/vcm_process.rs"]
mod vcm_process;
#[path = "support/webhooks.rs"]
mod webhooks_support;

use std::time::Duration;

use serde_json::json;
use vcm::webhooks::{Provider, cluster_name, signature::sign};
use vcm_process::Vcm;
use webhooks_support::*;

#[test]
fn a_github_pull_request_gets_a_cluster_that_follows_its_head_and_goes_when_it_closes() {
    let (vcm, _dir) = server();
    let name = cluster_name(Provider::Github, REPO, 42);

    let opened = payload("github/pull_request.opened.json");

    // The real delivery is taken; the same delivery again is a no-op.
    let (status, body) = github(
        &vcm,
        "pull_request",
        "d-opened",
        GITHUB_SECRET,
        opened.clone(),
    );
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["changed"], true, "{body}");
    let (status, body) = github(
        &vcm,
        "pull_request",
        "d-opened",
        GITHUB_SECRET,
        opened.clone(),
    );
    assert_eq!(status, 200, "{body}");
    assert!(
        body["result"].as_str().unwrap().starts_with("duplicate"),
        "{body}"
    );

    // Opened: one cluster, named after the pull request, labelled, owned by the rule's team.
    let live = until(&vcm, "github", 42, "a cluster for PR 42", |l| l.len() == 1);
    let c = &live[0];
    assert_eq!(c["name"], name.as_str());
    assert_eq!(c["team"], "demo");
    assert_eq!(c["labels"]["repo"], "nimbus-labs.vcm-demo");
    assert_eq!(c["labels"]["purpose"], "preview");
    assert_eq!(sha_of(c), "d9c5607b8103b154ab43ef77cacccc2994e1719a");
    let id = c["id"].as_str().unwrap().to_owned();
    vcm.wait_phase(&id, "Ready", Duration::from_secs(120));

    // A ping, a push, a labeled action and a draft: 2xx, nothing happens.
    for (event, file, says) in [
        ("ping", "github/ping.app.json", "ignored"),
        ("push", "github/push.json", "ignored"),
        (
            "pull_request",
            "github/pull_request.labeled.json",
            "ignored",
        ),
        (
            "pull_request",
            "github/pull_request.opened.draft.json",
            "draft",
        ),
    ] {
        let (status, body) = github(
            &vcm,
            event,
            &format!("d-{file}"),
            GITHUB_SECRET,
            payload(file),
        );
        assert_eq!(status, 202, "{file}: {body}");
        assert!(
            body["result"].as_str().unwrap().contains(says),
            "{file}: {body}"
        );
    }
    assert!(
        clusters_of(&vcm, "github", 43).is_empty(),
        "the draft got a cluster"
    );

    // A new commit, signed with the secret being rotated out: the cluster moves to it.
    let new_sha = "0123456789abcdef0123456789abcdef01234567";
    let sync = edited("github/pull_request.synchronize.json", |v| {
        v["after"] = json!(new_sha);
        v["pull_request"]["head"]["sha"] = json!(new_sha);
    });
    let (status, body) = github(&vcm, "pull_request", "d-sync", OLD_GITHUB_SECRET, sync);
    assert_eq!(status, 202, "{body}");
    let live = until(&vcm, "github", 42, "moved to the new head", |l| {
        l.len() == 1 && sha_of(&l[0]) == new_sha
    });
    assert_eq!(live[0]["id"], id.as_str(), "kept, not recreated");

    // An older synchronize arriving late changes nothing.
    let late = edited("github/pull_request.synchronize.json", |v| {
        v["pull_request"]["updated_at"] = json!("2026-11-24T10:10:00Z");
    });
    let (status, body) = github(&vcm, "pull_request", "d-late", GITHUB_SECRET, late);
    assert_eq!((status, &body["changed"]), (202, &json!(false)), "{body}");

    // Closed (merged): the cluster goes; a synchronize after the close resurrects nothing.
    let (status, body) = github(
        &vcm,
        "pull_request",
        "d-close",
        GITHUB_SECRET,
        payload("github/pull_request.closed.merged.json"),
    );
    assert_eq!(status, 202, "{body}");
    let gone = vcm.wait_phase(&id, "Deleted", Duration::from_secs(60));
    assert_eq!(gone["delete_reason"], "pull_request_closed", "{gone}");
    let after_close = edited("github/pull_request.synchronize.json", |v| {
        v["pull_request"]["head"]["sha"] = json!("fedcba9876543210fedcba9876543210fedcba98");
        v["pull_request"]["updated_at"] = json!("2026-11-26T09:00:00Z");
    });
    let (status, body) = github(
        &vcm,
        "pull_request",
        "d-after-close",
        GITHUB_SECRET,
        after_close,
    );
    assert_eq!((status, &body["changed"]), (202, &json!(false)), "{body}");
    std::thread::sleep(Duration::from_secs(2));
    assert!(clusters_of(&vcm, "github", 42).is_empty());
}

#[test]
fn forged_tampered_legacy_wrong_door_oversized_and_malformed_deliveries_are_refused_and_change_nothing()
 {
    let (vcm, _dir) = server();

    let opened = payload("github/pull_request.opened.json");
    let (status, body) = github(
        &vcm,
        "pull_request",
        "d-forged",
        "not the secret",
        opened.clone(),
    );
    assert_eq!(status, 401, "{body}");
    assert!(error_says(&body, "does not match"), "{body}");
    let legacy = [
        ("X-GitHub-Event", "pull_request"),
        ("X-GitHub-Delivery", "d-legacy"),
        (
            "X-Hub-Signature",
            "sha1=0b4b1bbd4ebcd1fb2b28bfe1b2c1f0b2bd0f6e7e",
        ),
    ];
    let (status, body) = deliver(&vcm, "github", &legacy, opened.clone());
    assert_eq!(status, 401, "{body}");
    assert!(error_says(&body, "legacy SHA-1"), "{body}");
    // A body changed after signing (one byte) fails the signature.
    let sig = sign(GITHUB_SECRET.as_bytes(), &opened);
    let mut tampered = opened.clone();
    let at = tampered.len() / 2;
    tampered[at] ^= 1;
    let headers = [
        ("X-GitHub-Event", "pull_request"),
        ("X-GitHub-Delivery", "d-tampered"),
        ("X-Hub-Signature-256", sig.as_str()),
    ];
    let (status, body) = deliver(&vcm, "github", &headers, tampered);
    assert_eq!(status, 401, "{body}");
    let wrong_door = [
        ("X-Event-Key", "pullrequest:created"),
        ("X-Request-UUID", "d-wrong-door"),
        ("X-Hub-Signature-256", sig.as_str()),
    ];
    let (status, body) = deliver(&vcm, "bitbucket", &wrong_door, opened.clone());
    assert_eq!(status, 401, "{body}");
    assert!(
        clusters_of(&vcm, "github", 42).is_empty(),
        "a refused delivery acted"
    );

    // Bad input: unreadable bodies and missing headers are 400s, oversized ones 413.
    let bad = payload("github/pull_request.synchronize.bad-sha.json");
    let (status, body) = github(&vcm, "pull_request", "d-bad", GITHUB_SECRET, bad);
    assert_eq!(status, 400, "{body}");
    assert!(error_says(&body, "head.sha"), "{body}");
    let big = vec![b' '; 300 * 1024];
    let (status, _) = bitbucket(&vcm, "pullrequest:created", "d-big", big);
    assert_eq!(status, 413);
    let body = payload("github/ping.app.json");
    let sig = sign(GITHUB_SECRET.as_bytes(), &body);
    let no_delivery = [
        ("X-GitHub-Event", "ping"),
        ("X-Hub-Signature-256", sig.as_str()),
    ];
    let (status, body) = deliver(&vcm, "github", &no_delivery, body);
    assert_eq!(status, 400, "{body}");
    assert!(error_says(&body, "X-GitHub-Delivery"), "{body}");

    // Each refusal is in the audit log: the forged ones without a principal and with why,
    // the signed but unreadable one as the door's.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let records = loop {
        let out = vcm.cli_ok(&[
            "audit",
            "list",
            "--action",
            "POST /v1/webhooks/*",
            "--oldest-first",
            "-o",
            "json",
        ]);
        let records: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
        let completed = records.iter().filter(|r| r["stage"] == "completed").count();
        if completed >= 8 || std::time::Instant::now() > deadline {
            break records;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    let completed: Vec<_> = records
        .iter()
        .filter(|r| r["stage"] == "completed")
        .collect();
    let statuses: Vec<_> = completed
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [401, 401, 401, 401, 400, 413, 400], "{records:?}");
    let forged = completed[0];
    assert_eq!(forged["door"], "webhook");
    assert_eq!(forged["decision"], "unauthenticated");
    assert!(forged["principal"].is_null(), "{forged}");
    assert!(
        forged["auth_error"]
            .as_str()
            .unwrap()
            .contains("does not match"),
        "{forged}"
    );
    assert_eq!(
        completed[4]["principal"], "webhook:github",
        "{:?}",
        completed[4]
    );
}

#[test]
fn a_bitbucket_pull_request_lives_and_a_crash_after_the_answer_loses_nothing() {
    let (mut vcm, _dir) = server();

    // Created, then vcm is killed at once: the answer was given, the work was not (or was
    // half) done. After a restart the pull request has exactly one cluster.
    let (status, body) = bitbucket(
        &vcm,
        "pullrequest:created",
        "{6f1c-created}",
        payload("bitbucket/pullrequest.created.json"),
    );
    assert_eq!(status, 202, "{body}");
    vcm.sigkill();
    vcm.spawn();
    let live = until(&vcm, "bitbucket", 17, "one cluster for PR 17", |l| {
        l.len() == 1
    });
    let id = live[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(sha_of(&live[0]), "3f9a1c2b7d4e");
    assert_eq!(
        live[0]["name"],
        cluster_name(Provider::Bitbucket, REPO, 17).as_str()
    );
    vcm.wait_phase(&id, "Ready", Duration::from_secs(120));

    // Updated with the same commit (a title edit): nothing. With a new commit: it moves.
    let retitled = edited("bitbucket/pullrequest.created.json", |v| {
        v["pullrequest"]["title"] = json!("A new title");
        v["pullrequest"]["updated_on"] = json!("2026-11-24T10:05:00.000000+00:00");
    });
    let (status, body) = bitbucket(&vcm, "pullrequest:updated", "{6f1c-retitled}", retitled);
    assert_eq!((status, &body["changed"]), (202, &json!(false)), "{body}");
    let (status, body) = bitbucket(
        &vcm,
        "pullrequest:updated",
        "{6f1c-updated}",
        payload("bitbucket/pullrequest.updated.json"),
    );
    assert_eq!((status, &body["changed"]), (202, &json!(true)), "{body}");
    until(&vcm, "bitbucket", 17, "moved to c0ffee12ab34", |l| {
        l.len() == 1 && sha_of(&l[0]) == "c0ffee12ab34"
    });

    // A push is nothing; fulfilled (merged) deletes the cluster.
    let (status, _) = bitbucket(
        &vcm,
        "repo:push",
        "{6f1c-push}",
        payload("bitbucket/repo.push.json"),
    );
    assert_eq!(status, 202);
    let (status, body) = bitbucket(
        &vcm,
        "pullrequest:fulfilled",
        "{6f1c-fulfilled}",
        payload("bitbucket/pullrequest.fulfilled.json"),
    );
    assert_eq!(status, 202, "{body}");
    vcm.wait_phase(&id, "Deleted", Duration::from_secs(60));
}

#[test]
fn a_closed_door_answers_404_and_names_the_configuration_to_open_it() {
    let vcm = Vcm::start();
    let (status, body) = deliver(&vcm, "github", &[], b"{}".to_vec());
    assert_eq!(status, 404, "{body}");
    assert!(error_says(&body, "[webhooks.github]"), "{body}");
}

#[test]
fn a_rule_whose_clusters_could_never_be_made_stops_the_server_from_starting() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("vcm.toml");
    std::fs::write(
        &config,
        r#"
[webhooks.github]
secrets = ["env:E2E_GITHUB_SECRET"]
[[pull_requests]]
provider = "github"
repository = "acme/*"
team = "web"
size = "enormous"
"#,
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vcm"))
        .args(["server", "--dev", "--listen", "127.0.0.1:0"])
        .arg(format!("--data-dir={}", dir.path().join("data").display()))
        .env("VCM_CONFIG", &config)
        .env("E2E_GITHUB_SECRET", "s")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("[[pull_requests]] acme/*") && stderr.contains("enormous"),
        "{stderr}"
    );
}

#[test]
fn signed_deliveries_are_never_rate_limited_and_forged_ones_spend_the_senders_budget() {
    // An anonymous budget of 5: GitHub's deliveries all come from a few of its addresses.
    let (vcm, _dir) = server_with(
        "",
        "",
        "\n[rate_limits]\naddress_burst = 5\naddress_per_minute = 6\n",
    );
    let body = payload("github/ping.app.json");
    for i in 0..20 {
        let (status, answer) = github(
            &vcm,
            "ping",
            &format!("d-ping-{i}"),
            GITHUB_SECRET,
            body.clone(),
        );
        assert_eq!(status, 202, "signed delivery {i}: {answer}");
    }
    let statuses: Vec<u16> = (0..8)
        .map(|i| {
            github(
                &vcm,
                "ping",
                &format!("d-forged-{i}"),
                "not the secret",
                body.clone(),
            )
            .0
        })
        .collect();
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429, 429, 429]);
}
