//! Bitbucket Cloud `pullrequest:*` deliveries and the events vcm ignores.

use super::*;

#[test]
fn bitbucket_created_becomes_an_open_event_with_escaped_title_decoded() {
    // Arrange
    assert!(
        BB_CREATED.is_ascii(),
        "Bitbucket fixtures are \\u-escaped ASCII"
    );
    assert!(!BB_CREATED.contains("\"draft\""), "fixture must lack draft");

    // Act
    let event = mk_bitbucket_pr("pullrequest:created", BB_CREATED);

    // Assert
    assert_eq!(
        event,
        PrEvent {
            provider: Provider::Bitbucket,
            repository: "nimbus-labs/vcm-demo".into(),
            number: 17,
            change: Change::Open,
            head_sha: "3f9a1c2b7d4e".into(),
            branch: "feature/groessen".into(),
            draft: false,
            title: "Verbessere Größenangaben für Übersetzungen 🚀".into(),
            url: "https://bitbucket.org/nimbus-labs/vcm-demo/pull-requests/17".into(),
            updated_at_ms: BB_CREATED_MS,
            merged: false,
            installation_id: None,
            repository_id: Some("6a0e3b7c-1d2f-4a5b-8c9d-0e1f2a3b4c5d".into()),
        }
    );
}

#[test]
fn bitbucket_updated_becomes_a_move_to_the_12_char_hash() {
    // Arrange / Act
    let event = mk_bitbucket_pr("pullrequest:updated", BB_UPDATED);

    // Assert
    assert_eq!(event.change, Change::Move);
    assert_eq!(event.head_sha, "c0ffee12ab34");
    assert_eq!(event.updated_at_ms, BB_UPDATED_MS);
}

#[test]
fn bitbucket_fulfilled_becomes_a_merged_close() {
    // Arrange / Act
    let event = mk_bitbucket_pr("pullrequest:fulfilled", BB_FULFILLED);

    // Assert
    assert_eq!((event.change, event.merged), (Change::Close, true));
}

#[test]
fn bitbucket_rejected_becomes_an_unmerged_close() {
    // Arrange / Act
    let event = mk_bitbucket_pr("pullrequest:rejected", BB_REJECTED);

    // Assert
    assert_eq!((event.change, event.merged), (Change::Close, false));
}

#[test]
fn bitbucket_repo_push_and_other_pr_keys_are_ignored() {
    // Arrange
    let cases = [
        ("repo:push", BB_PUSH, "Bitbucket event repo:push"),
        (
            "pullrequest:approved",
            BB_UPDATED,
            "Bitbucket event pullrequest:approved",
        ),
        (
            "pullrequest:comment_created",
            "{}",
            "Bitbucket event pullrequest:comment_created",
        ),
    ];

    for (key, body, what) in cases {
        // Act
        let parsed = parse_bitbucket(key, body.as_bytes());

        // Assert
        assert_eq!(parsed, ignored(what), "{key}");
    }
}
