//! The payload readers against deliveries written from the providers' documented schemas
//! (`tests/data/webhooks`).

use super::*;

// Timestamps of the fixtures, in ms since the epoch (`date -u -d … +%s`).
const GH_OPENED_MS: i64 = 1_795_514_560_000; // 2026-11-24T10:02:40Z
const BB_CREATED_MS: i64 = 1_795_514_560_123; // 2026-11-24T10:02:40.123456+00:00
const BB_UPDATED_MS: i64 = 1_795_516_277_000; // 2026-11-24T10:31:17.000942+00:00

const GH_OPENED: &str =
    include_str!("../../../../tests/data/webhooks/github/pull_request.opened.json");
const GH_OPENED_DRAFT: &str =
    include_str!("../../../../tests/data/webhooks/github/pull_request.opened.draft.json");
const GH_OPENED_APP: &str =
    include_str!("../../../../tests/data/webhooks/github/pull_request.opened.app.json");
const GH_SYNCHRONIZE: &str =
    include_str!("../../../../tests/data/webhooks/github/pull_request.synchronize.json");
const GH_CLOSED_MERGED: &str =
    include_str!("../../../../tests/data/webhooks/github/pull_request.closed.merged.json");
const GH_CLOSED_UNMERGED: &str =
    include_str!("../../../../tests/data/webhooks/github/pull_request.closed.unmerged.json");
const GH_READY: &str =
    include_str!("../../../../tests/data/webhooks/github/pull_request.ready_for_review.json");
const GH_LABELED: &str =
    include_str!("../../../../tests/data/webhooks/github/pull_request.labeled.json");
const GH_MISSING_SHA: &str = include_str!(
    "../../../../tests/data/webhooks/github/pull_request.opened.missing-head-sha.json"
);
const GH_BAD_SHA: &str =
    include_str!("../../../../tests/data/webhooks/github/pull_request.synchronize.bad-sha.json");
const GH_PUSH: &str = include_str!("../../../../tests/data/webhooks/github/push.json");
const GH_PING: &str = include_str!("../../../../tests/data/webhooks/github/ping.app.json");
const BB_CREATED: &str =
    include_str!("../../../../tests/data/webhooks/bitbucket/pullrequest.created.json");
const BB_UPDATED: &str =
    include_str!("../../../../tests/data/webhooks/bitbucket/pullrequest.updated.json");
const BB_FULFILLED: &str =
    include_str!("../../../../tests/data/webhooks/bitbucket/pullrequest.fulfilled.json");
const BB_REJECTED: &str =
    include_str!("../../../../tests/data/webhooks/bitbucket/pullrequest.rejected.json");
const BB_BAD_DATE: &str = include_str!(
    "../../../../tests/data/webhooks/bitbucket/pullrequest.updated.bad-updated-on.json"
);
const BB_PUSH: &str = include_str!("../../../../tests/data/webhooks/bitbucket/repo.push.json");
const NOT_JSON: &str = include_str!("../../../../tests/data/webhooks/not-json.txt");

fn mk_github_pr(body: &str) -> PrEvent {
    match parse_github("pull_request", body.as_bytes()) {
        Ok(Parsed::PullRequest(event)) => event,
        other => panic!("expected a pull-request event, got {other:?}"),
    }
}

fn mk_bitbucket_pr(key: &str, body: &str) -> PrEvent {
    match parse_bitbucket(key, body.as_bytes()) {
        Ok(Parsed::PullRequest(event)) => event,
        other => panic!("expected a pull-request event, got {other:?}"),
    }
}

fn ignored(what: &str) -> Result<Parsed, ParseError> {
    Ok(Parsed::Ignored {
        what: what.to_owned(),
    })
}

/// The fixture with one field replaced, for error cases too small to deserve a file.
fn mk_patched(body: &str, path: &[&str], new: Value) -> Vec<u8> {
    let mut root: Value = serde_json::from_str(body).expect("fixture is JSON");
    let (last, parents) = path.split_last().expect("path is not empty");
    let parent = parents.iter().fold(&mut root, |v, key| &mut v[*key]);
    parent[*last] = new;
    serde_json::to_vec(&root).expect("Value serialises")
}

mod bitbucket;
mod github;

// --- errors ---

#[test]
fn a_body_that_is_not_json_is_an_error_for_every_event() {
    // Arrange
    let github = ["pull_request", "push", "ping", "whatever"];
    let bitbucket = ["pullrequest:created", "repo:push", "whatever"];

    // Act
    let results = github
        .iter()
        .map(|e| parse_github(e, NOT_JSON.as_bytes()))
        .chain(
            bitbucket
                .iter()
                .map(|k| parse_bitbucket(k, NOT_JSON.as_bytes())),
        );

    // Assert
    for result in results {
        let err = result.expect_err("not JSON must be rejected");
        assert!(err.to_string().starts_with("the body is not JSON"), "{err}");
    }
}

#[test]
fn github_pull_request_without_head_sha_names_the_field() {
    // Arrange / Act
    let err = parse_github("pull_request", GH_MISSING_SHA.as_bytes()).expect_err("rejected");

    // Assert
    assert_eq!(err.to_string(), "pull_request.head.sha is missing");
}

#[test]
fn github_bad_sha_names_the_field_and_the_value() {
    // Arrange / Act
    let err = parse_github("pull_request", GH_BAD_SHA.as_bytes()).expect_err("rejected");

    // Assert
    let msg = err.to_string();
    assert!(
        msg.starts_with("pull_request.head.sha must be a commit hash"),
        "{msg}"
    );
    assert!(
        msg.contains("d9c5607b81z3b154ab43ef77cacccc2994e1719a"),
        "{msg}"
    );
}

#[test]
fn bitbucket_updated_on_that_is_not_a_date_names_the_field() {
    // Arrange / Act
    let err = parse_bitbucket("pullrequest:updated", BB_BAD_DATE.as_bytes()).expect_err("rejected");

    // Assert
    let msg = err.to_string();
    assert!(
        msg.starts_with("pullrequest.updated_on must be an RFC 3339 timestamp"),
        "{msg}"
    );
    assert!(msg.contains("last Tuesday"), "{msg}");
}

#[test]
fn invalid_fields_are_rejected_with_the_field_named() {
    // Arrange: (path, replacement, expected message start, reason)
    let cases: [(&[&str], Value, &str, &str); 7] = [
        (
            &["pull_request", "head", "sha"],
            "abc12".into(),
            "pull_request.head.sha must",
            "too short",
        ),
        (
            &["pull_request", "head", "sha"],
            "a".repeat(41).into(),
            "pull_request.head.sha must",
            "too long",
        ),
        (
            &["pull_request", "head", "sha"],
            42.into(),
            "pull_request.head.sha must be a string",
            "wrong type",
        ),
        (
            &["number"],
            0.into(),
            "number must be a positive integer",
            "zero",
        ),
        (
            &["repository", "full_name"],
            "vcm-demo".into(),
            "repository.full_name must look like owner/name",
            "no slash",
        ),
        (
            &["repository", "full_name"],
            "a/b/c".into(),
            "repository.full_name must look like owner/name",
            "two slashes",
        ),
        (
            &["repository", "full_name"],
            "nimbus labs/x".into(),
            "repository.full_name must look like owner/name",
            "whitespace",
        ),
    ];

    for (path, new, expected, reason) in cases {
        let body = mk_patched(GH_OPENED, path, new);

        // Act
        let result = parse_github("pull_request", &body);

        // Assert
        let err = result.expect_err(reason);
        assert!(err.to_string().starts_with(expected), "{reason}: {err}");
    }
}

#[test]
fn an_empty_event_header_is_an_error_that_names_the_header() {
    // Arrange / Act
    let github = parse_github("", b"{}").expect_err("rejected");
    let bitbucket = parse_bitbucket(" ", b"{}").expect_err("rejected");

    // Assert
    assert!(github.to_string().contains("X-GitHub-Event"), "{github}");
    assert!(bitbucket.to_string().contains("X-Event-Key"), "{bitbucket}");
}

#[test]
fn a_pr_event_whose_body_is_not_an_object_is_an_error() {
    // Arrange / Act
    let err = parse_bitbucket("pullrequest:created", b"[]").expect_err("rejected");

    // Assert
    assert_eq!(
        err.to_string(),
        "the body must be a JSON object, got an array"
    );
}

#[test]
fn provider_names_are_stable_lowercase() {
    // Arrange / Act
    let names = [Provider::Github, Provider::Bitbucket].map(|p| (p.as_str(), p.to_string()));

    // Assert
    assert_eq!(
        names,
        [
            ("github", "github".into()),
            ("bitbucket", "bitbucket".into())
        ]
    );
}
