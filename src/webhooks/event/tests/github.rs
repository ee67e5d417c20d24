//! GitHub `pull_request` deliveries and the events vcm ignores.

use super::*;

#[test]
fn github_opened_becomes_an_open_event_with_every_field_read() {
    // Arrange
    let body = GH_OPENED;

    // Act
    let event = mk_github_pr(body);

    // Assert
    assert_eq!(
        event,
        PrEvent {
            provider: Provider::Github,
            repository: "nimbus-labs/vcm-demo".into(),
            number: 42,
            change: Change::Open,
            head_sha: "d9c5607b8103b154ab43ef77cacccc2994e1719a".into(),
            branch: "feature/readiness-probe".into(),
            draft: false,
            title: "Füge Unterstützung hinzu ✓".into(),
            url: "https://github.com/nimbus-labs/vcm-demo/pull/42".into(),
            updated_at_ms: GH_OPENED_MS,
            merged: false,
            installation_id: None,
            repository_id: Some("734120987".into()),
        }
    );
}

#[test]
fn github_fixture_title_is_raw_utf8_as_github_sends_it() {
    // Arrange / Act
    let raw = GH_OPENED;

    // Assert
    assert!(raw.contains("Füge Unterstützung hinzu ✓"));
    assert!(!raw.contains("\\u"));
}

#[test]
fn github_synchronize_becomes_a_move_to_the_after_sha() {
    // Arrange
    let root: Value = serde_json::from_str(GH_SYNCHRONIZE).expect("fixture is JSON");

    // Act
    let event = mk_github_pr(GH_SYNCHRONIZE);

    // Assert
    assert_eq!(event.change, Change::Move);
    assert_eq!(Some(event.head_sha.as_str()), root["after"].as_str());
    assert_ne!(root["before"], root["after"]);
}

#[test]
fn github_closed_and_merged_becomes_a_merged_close() {
    // Arrange / Act
    let event = mk_github_pr(GH_CLOSED_MERGED);

    // Assert
    assert_eq!((event.change, event.merged), (Change::Close, true));
}

#[test]
fn github_closed_without_merge_becomes_an_unmerged_close() {
    // Arrange / Act
    let event = mk_github_pr(GH_CLOSED_UNMERGED);

    // Assert
    assert_eq!((event.change, event.merged), (Change::Close, false));
}

#[test]
fn github_closed_with_null_merged_falls_back_to_merged_at() {
    // Arrange
    let body = mk_patched(GH_CLOSED_MERGED, &["pull_request", "merged"], Value::Null);

    // Act
    let parsed = parse_github("pull_request", &body);

    // Assert
    assert!(matches!(
        parsed,
        Ok(Parsed::PullRequest(PrEvent { merged: true, .. }))
    ));
}

#[test]
fn github_ready_for_review_becomes_an_open_that_is_no_longer_draft() {
    // Arrange / Act
    let event = mk_github_pr(GH_READY);

    // Assert
    assert_eq!(
        (event.change, event.draft, event.number),
        (Change::Open, false, 43)
    );
}

#[test]
fn github_draft_opened_is_an_open_marked_draft() {
    // Arrange / Act
    let event = mk_github_pr(GH_OPENED_DRAFT);

    // Assert
    assert_eq!((event.change, event.draft), (Change::Open, true));
}

#[test]
fn github_labeled_is_ignored_and_named() {
    // Arrange / Act
    let parsed = parse_github("pull_request", GH_LABELED.as_bytes());

    // Assert
    assert_eq!(parsed, ignored("GitHub pull_request action labeled"));
}

#[test]
fn github_app_delivery_carries_the_installation_id() {
    // Arrange / Act
    let event = mk_github_pr(GH_OPENED_APP);

    // Assert
    assert_eq!(event.installation_id, Some(58_213_377));
}

#[test]
fn github_push_with_epoch_dates_is_ignored() {
    // Arrange
    let root: Value = serde_json::from_str(GH_PUSH).expect("fixture is JSON");
    assert!(
        root["repository"]["created_at"].is_u64(),
        "fixture must use epoch dates"
    );

    // Act
    let parsed = parse_github("push", GH_PUSH.as_bytes());

    // Assert
    assert_eq!(parsed, ignored("GitHub event push"));
}

#[test]
fn github_ping_without_repository_is_ignored() {
    // Arrange
    let root: Value = serde_json::from_str(GH_PING).expect("fixture is JSON");
    assert!(
        root.get("repository").is_none(),
        "fixture must lack repository"
    );

    // Act
    let parsed = parse_github("ping", GH_PING.as_bytes());

    // Assert
    assert_eq!(parsed, ignored("GitHub event ping"));
}

#[test]
fn non_pr_events_with_an_empty_object_are_ignored_without_reading_fields() {
    // Arrange
    let cases = [
        ("github", "push"),
        ("github", "check_suite"),
        ("bitbucket", "repo:push"),
    ];

    for (provider, event) in cases {
        // Act
        let parsed = match provider {
            "github" => parse_github(event, b"{}"),
            _ => parse_bitbucket(event, b"{}"),
        };

        // Assert
        assert!(
            matches!(parsed, Ok(Parsed::Ignored { .. })),
            "{provider} {event} with {{}} must be ignored, got {parsed:?}"
        );
    }
}

#[test]
fn github_ignored_action_needs_no_pull_request_fields() {
    // Arrange
    let body = br#"{"action":"assigned"}"#;

    // Act
    let parsed = parse_github("pull_request", body);

    // Assert
    assert_eq!(parsed, ignored("GitHub pull_request action assigned"));
}

#[test]
fn github_uppercase_sha_is_lowercased() {
    // Arrange
    let upper = Value::from("D9C5607B8103B154AB43EF77CACCCC2994E1719A");
    let body = mk_patched(GH_OPENED, &["pull_request", "head", "sha"], upper);

    // Act
    let parsed = parse_github("pull_request", &body);

    // Assert
    let Ok(Parsed::PullRequest(event)) = parsed else {
        panic!("got {parsed:?}")
    };
    assert_eq!(event.head_sha, "d9c5607b8103b154ab43ef77cacccc2994e1719a");
}
