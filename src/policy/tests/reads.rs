//! Which policies may read `input.usage` (the server counts usage only for those).

use serde_json::json;

use super::*;
use crate::policy::reads::may_read_usage;

#[test]
fn a_source_reads_usage_when_it_names_it_or_takes_input_whole() {
    let cases = [
        // (source, may read usage)
        ("x if input.usage.team_live_clusters > 3", true),
        ("x if input[\"usage\"].team_live_clusters > 3", true),
        ("x if { y := input; y.request }", true),
        (
            "import input.usage as u\nx if u.team_live_clusters > 3",
            true,
        ),
        ("import input\nx if input.request", true),
        ("import input as i\nx if i.request", true),
        ("x if count(object.keys(input)) > 3", true),
        ("x if input [\"request\"]", true),
        (
            "# quota rules on usage come later\nx if input.request.size",
            true,
        ),
        ("x if input.request.ttl == \"usage\"", true),
        (
            "x if input.action == \"cluster.create\"\ny if input.principal.team",
            false,
        ),
        ("x if input.request.labels.team_usage", false),
        ("x if my_input.request", false),
        ("", false),
    ];
    for (source, expected) in cases {
        assert_eq!(may_read_usage(source), expected, "{source:?}");
    }
}

#[test]
fn the_shipped_policies_do_not_read_usage_and_a_quota_rule_does() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();
    let quota = write(
        dir.path(),
        "quota.rego",
        "package vcm\n\ndeny contains \"team quota\" if input.usage.team_live_clusters >= 2\n",
    );
    let shipped = mk_config(&[example("")], Some(example("data.json")));
    let with_quota = mk_config(&[example(""), quota], Some(example("data.json")));

    // Act
    let shipped = Policy::load(&shipped).unwrap();
    let with_quota = Policy::load(&with_quota).unwrap();

    // Assert
    assert!(!shipped.reads_usage());
    assert!(with_quota.reads_usage());
    assert!(with_quota.compiled().reads_usage());
}

#[test]
fn a_shipped_policy_decides_the_same_with_usage_left_out() {
    // Arrange
    let policy = Policy::load(&mk_config(&[example("")], Some(example("data.json")))).unwrap();
    let requests = [
        json!({ "size": "small", "labels": { "repo": "r", "pr": "1" } }),
        json!({ "size": "small" }),
        json!({ "size": "large", "ttl": "12h", "labels": { "repo": "r", "pr": "1" } }),
    ];
    for request in requests {
        let input = mk_input(
            Role::Ci,
            Some("web"),
            action::CLUSTER_CREATE,
            request.clone(),
        );

        // Act
        let with = policy.evaluate(&input.clone().with_usage(Usage {
            team_live_clusters: 9,
            ..Usage::default()
        }));
        let without = policy.compiled().evaluate(&input.without_usage());

        // Assert
        assert_eq!(with, without, "{request}");
    }
}
