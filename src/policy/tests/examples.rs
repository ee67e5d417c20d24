//! Each shipped example policy, alone and all together, with an allowed and a denied input.

use serde_json::json;

use super::*;

/// `(input, expected denial fragments, reason)`: an empty list means allowed.
type Case = (PolicyInput, Vec<&'static str>, &'static str);

fn run(policy: &Policy, cases: Vec<Case>) {
    for (input, expected, reason) in cases {
        let decision = policy.evaluate(&input);
        if expected.is_empty() {
            assert_eq!(decision, Decision::Allow, "{reason}");
            continue;
        }
        let messages = decision.messages().join(" | ");
        assert!(!decision.is_allowed(), "{reason}: allowed");
        for fragment in expected {
            assert!(messages.contains(fragment), "{reason}: {messages}");
        }
    }
}

fn load_example(files: &[&str], with_data: bool) -> Policy {
    let paths: Vec<PathBuf> = files.iter().map(|f| example(f)).collect();
    let data = with_data.then(|| example("data.json"));
    Policy::load(&mk_config(&paths, data)).unwrap()
}

#[test]
fn max_ttl_limits_ci_to_two_hours_and_developers_to_a_day() {
    // Arrange
    let policy = load_example(&["max_ttl.rego"], false);
    let create =
        |role, ttl: &str| mk_input(role, None, action::CLUSTER_CREATE, json!({ "ttl": ttl }));

    // Act + Assert
    run(
        &policy,
        vec![
            (create(Role::Ci, "90m"), vec![], "90 minutes is within 2h"),
            (
                create(Role::Ci, "2h"),
                vec![],
                "the limit itself is allowed",
            ),
            (
                create(Role::Ci, "4h"),
                vec!["ttl 4h", "2h", "ci role"],
                "ci over 2h",
            ),
            (
                create(Role::Ci, "1d"),
                vec!["ttl 1d"],
                "days are understood",
            ),
            (create(Role::Developer, "24h"), vec![], "a developer's day"),
            (
                create(Role::Developer, "7d"),
                vec!["24h", "developer"],
                "a developer's week",
            ),
            (create(Role::Admin, "30d"), vec![], "admins are not limited"),
            (
                mk_input(
                    Role::Ci,
                    None,
                    action::CLUSTER_UPDATE,
                    json!({ "ttl": "3h" }),
                ),
                vec!["ttl 3h"],
                "extending the ttl counts too",
            ),
            (
                mk_input(Role::Ci, None, action::CLUSTER_CREATE, json!({})),
                vec![],
                "no ttl: the server's default applies",
            ),
            (
                create(Role::Ci, "2x"),
                vec![],
                "a malformed ttl is the server's to refuse",
            ),
        ],
    );
}

#[test]
fn team_sizes_come_from_the_data_document_with_a_fallback_entry() {
    // Arrange
    let policy = load_example(&["team_sizes.rego"], true);
    let create = |team, size: &str| {
        mk_input(
            Role::Developer,
            team,
            action::CLUSTER_CREATE,
            json!({ "size": size }),
        )
    };

    // Act + Assert
    run(
        &policy,
        vec![
            (create(Some("web"), "medium"), vec![], "web may have medium"),
            (
                create(Some("web"), "large"),
                vec!["team web may create small, medium clusters, not large"],
                "web may not have large",
            ),
            (
                create(Some("platform"), "large"),
                vec![],
                "platform may have large",
            ),
            (
                create(Some("ops"), "small"),
                vec![],
                "an unlisted team gets \"*\"",
            ),
            (
                create(Some("ops"), "medium"),
                vec!["team ops"],
                "and only what \"*\" lists",
            ),
            (
                create(None, "medium"),
                vec!["team (none)"],
                "no team: \"*\" as well",
            ),
            (
                mk_input(
                    Role::Developer,
                    Some("ops"),
                    action::CLUSTER_CREATE,
                    json!({}),
                ),
                vec![],
                "no size: the default size (small) is checked",
            ),
            (
                mk_input(
                    Role::Admin,
                    None,
                    action::CLUSTER_CREATE,
                    json!({ "size": "large" }),
                ),
                vec![],
                "admins are not limited",
            ),
        ],
    );
}

#[test]
fn team_sizes_without_data_refuses_creates_saying_what_to_add() {
    let policy = load_example(&["team_sizes.rego"], false);
    let input = mk_input(Role::Ci, Some("web"), action::CLUSTER_CREATE, json!({}));

    let decision = policy.evaluate(&input);

    assert_eq!(
        decision.messages(),
        [
            "team web may create no cluster: the policy data lists no sizes for it (add \
          teams.web.sizes, or teams[\"*\"].sizes)"
        ]
    );
}

#[test]
fn large_clusters_are_created_only_in_business_hours_utc() {
    // Arrange
    let policy = load_example(&["business_hours.rego"], false);
    let at = |size: &str, time: &str| {
        mk_input(
            Role::Developer,
            None,
            action::CLUSTER_CREATE,
            json!({ "size": size }),
        )
        .at(time)
    };

    // Act + Assert
    run(
        &policy,
        vec![
            (at("large", MONDAY_MORNING), vec![], "a Monday morning"),
            (
                at("large", "2026-03-06T17:59:59Z"),
                vec![],
                "Friday, a second before six",
            ),
            (
                at("large", "2026-03-02T18:00:00Z"),
                vec!["large clusters are created only Monday to Friday, 08:00 to 18:00 UTC"],
                "six in the evening is closed",
            ),
            (
                at("large", "2026-03-03T07:59:59Z"),
                vec!["it is 2026-03-03T07:59:59Z"],
                "early",
            ),
            (
                at("large", "2026-03-07T10:00:00Z"),
                vec!["large"],
                "a Saturday",
            ),
            (
                at("large", "2026-03-02T09:30:00+02:00"),
                vec!["UTC"],
                "an offset is converted: 07:30 UTC",
            ),
            (
                at("small", "2026-03-08T03:00:00Z"),
                vec![],
                "small ones at any time",
            ),
        ],
    );
}

#[test]
fn ci_clusters_need_the_repo_and_pr_labels() {
    // Arrange
    let policy = load_example(&["ci_labels.rego"], false);
    let create = |role, labels: serde_json::Value| {
        mk_input(
            role,
            None,
            action::CLUSTER_CREATE,
            json!({ "labels": labels }),
        )
    };

    // Act + Assert
    run(
        &policy,
        vec![
            (
                create(Role::Ci, json!({ "repo": "org-app", "pr": "42" })),
                vec![],
                "both",
            ),
            (
                create(Role::Ci, json!({ "repo": "org-app" })),
                vec!["label pr"],
                "no pr",
            ),
            (
                create(Role::Ci, json!({ "repo": "", "pr": "42" })),
                vec!["label repo"],
                "empty",
            ),
            (
                mk_input(Role::Ci, None, action::CLUSTER_CREATE, json!({})),
                vec!["label repo", "label pr"],
                "no labels at all: both messages",
            ),
            (
                create(Role::Developer, json!({})),
                vec![],
                "developers are not asked",
            ),
            (
                mk_input(
                    Role::Ci,
                    None,
                    action::CLUSTER_DELETE,
                    serde_json::Value::Null,
                ),
                vec![],
                "only creates are checked",
            ),
        ],
    );
}

#[test]
fn the_examples_load_together_from_their_directory_and_every_rule_speaks() {
    // Arrange
    let policy = Policy::load(&mk_config(&[example("")], Some(example("data.json")))).unwrap();
    let everything_wrong = mk_input(
        Role::Ci,
        Some("web"),
        action::CLUSTER_CREATE,
        json!({ "size": "large", "ttl": "4h" }),
    )
    .at("2026-03-07T10:00:00Z");
    let fine = mk_input(
        Role::Ci,
        Some("web"),
        action::CLUSTER_CREATE,
        json!({ "size": "medium", "ttl": "1h", "labels": { "repo": "org-app", "pr": "7" } }),
    );

    // Act
    let denied = policy.evaluate(&everything_wrong);
    let allowed = policy.evaluate(&fine);

    // Assert
    let names: Vec<String> = policy
        .sources()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "business_hours.rego",
            "ci_labels.rego",
            "max_ttl.rego",
            "team_sizes.rego",
            "data.json"
        ]
    );
    assert_eq!(denied.messages().len(), 5, "{denied:?}");
    assert_eq!(allowed, Decision::Allow);
}
