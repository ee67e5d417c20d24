//! Loading, reloading, time limits and failing closed, on policies written to a tempdir.

use std::{sync::Arc, time::Duration};

use serde_json::json;

use super::*;

const DENY_LARGE: &str = r#"package vcm

deny contains "no large clusters" if input.request.size == "large"
"#;

fn mk_create(size: &str) -> PolicyInput {
    mk_input(
        Role::Developer,
        None,
        action::CLUSTER_CREATE,
        json!({ "size": size }),
    )
}

#[test]
fn a_broken_policy_file_fails_to_load_naming_the_file_and_line() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a_good.rego", DENY_LARGE);
    let broken = write(
        dir.path(),
        "b_broken.rego",
        "package vcm\n\ndeny contains msg if {\n  msg :=\n}\n",
    );

    // Act
    let err = Policy::load(&mk_config(&[dir.path().to_owned()], None)).unwrap_err();

    // Assert
    let err = format!("{err:#}");
    assert!(err.contains(&format!("{}:", broken.display())), "{err}");
    assert!(err.contains("b_broken.rego:4:"), "the line is named: {err}");
}

#[test]
fn a_policy_without_the_deny_rule_fails_to_load_saying_what_is_expected() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "p.rego", "package other\n\nallow := true\n");

    let err = Policy::load(&mk_config(&[file], None)).unwrap_err();

    let err = format!("{err:#}");
    assert!(
        err.contains("data.vcm.deny") && err.contains("p.rego"),
        "{err}"
    );
}

#[test]
fn load_errors_name_the_missing_or_empty_path_and_bad_data() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();
    let policy = write(dir.path(), "p.rego", DENY_LARGE);
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let bad_json = write(dir.path(), "data.json", "{\"teams\": ");
    let array = write(dir.path(), "array.json", "[1]");
    let cases = [
        (
            mk_config(&[dir.path().join("nope.rego")], None),
            "nope.rego",
        ),
        (mk_config(&[empty], None), "holds no .rego file"),
        (mk_config(&[], None), "policy.paths is empty"),
        (
            PolicyConfig {
                timeout_ms: 0,
                ..mk_config(std::slice::from_ref(&policy), None)
            },
            "policy.timeout_ms",
        ),
        (
            mk_config(std::slice::from_ref(&policy), Some(bad_json)),
            "data.json: not valid JSON",
        ),
        (
            mk_config(&[policy], Some(array)),
            "array.json: must hold an object",
        ),
    ];

    for (config, expected) in cases {
        // Act
        let err = format!("{:#}", Policy::load(&config).unwrap_err());

        // Assert
        assert!(err.contains(expected), "expected {expected:?} in: {err}");
    }
}

#[test]
fn yaml_data_is_read_as_the_data_document_and_reloaded_when_it_changes() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "p.rego",
        "package vcm\n\ndeny contains \"not allowed\" if not input.request.size in data.sizes\n",
    );
    let data = write(dir.path(), "data.yaml", "sizes: [small]\n");
    let policy = Policy::load(&mk_config(&[file], Some(data))).unwrap();
    assert_eq!(policy.evaluate(&mk_create("small")), Decision::Allow);
    assert_eq!(
        policy.evaluate(&mk_create("medium")),
        Decision::deny("not allowed")
    );

    // Act
    write(dir.path(), "data.yaml", "sizes: [small, medium]\n");

    // Assert
    assert_eq!(policy.reload(), Ok(true));
    assert_eq!(policy.evaluate(&mk_create("medium")), Decision::Allow);
}

#[test]
fn a_changed_policy_is_reloaded_and_a_broken_one_leaves_the_previous_in_force() {
    // Arrange: v1 allows everything.
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "p.rego",
        "package vcm\n\ndeny contains \"never\" if false\n",
    );
    let policy = Policy::load(&mk_config(std::slice::from_ref(&file), None)).unwrap();
    assert_eq!(policy.evaluate(&mk_create("large")), Decision::Allow);
    assert_eq!(policy.reload(), Ok(false), "nothing changed yet");

    // Act: v2 denies large clusters.
    write(dir.path(), "p.rego", DENY_LARGE);
    let reloaded = policy.reload();

    // Assert
    assert_eq!(reloaded, Ok(true));
    assert_eq!(
        policy.evaluate(&mk_create("large")),
        Decision::deny("no large clusters")
    );
    assert_eq!(policy.reload(), Ok(false), "loaded once");

    // Act: v3 does not compile.
    write(
        dir.path(),
        "p.rego",
        "package vcm\n\ndeny contains msg if {\n",
    );
    let refused = policy.reload();

    // Assert: refused naming the file, and v2 still decides.
    let why = refused.unwrap_err();
    assert!(why.contains(&format!("{}:", file.display())), "{why}");
    assert_eq!(
        policy.evaluate(&mk_create("large")),
        Decision::deny("no large clusters")
    );
    assert_eq!(policy.evaluate(&mk_create("small")), Decision::Allow);
    assert_eq!(
        policy.reload(),
        Err(why),
        "the same broken version, the same reason"
    );

    // Act: v4 is fixed again.
    write(
        dir.path(),
        "p.rego",
        &DENY_LARGE.replace("large\"", "medium\""),
    );

    // Assert
    assert_eq!(policy.reload(), Ok(true));
    assert_eq!(policy.evaluate(&mk_create("large")), Decision::Allow);
}

#[test]
fn a_file_added_to_a_policy_directory_is_a_change() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "a.rego",
        "package vcm\n\ndeny contains \"never\" if false\n",
    );
    write(dir.path(), "notes.txt", "not a policy");
    let policy = Policy::load(&mk_config(&[dir.path().to_owned()], None)).unwrap();
    assert_eq!(policy.sources(), [dir.path().join("a.rego")]);

    // Act
    write(dir.path(), "b.rego", DENY_LARGE);

    // Assert
    assert_eq!(policy.reload(), Ok(true));
    assert_eq!(policy.sources().len(), 2);
    assert!(!policy.evaluate(&mk_create("large")).is_allowed());
}

#[test]
fn a_policy_that_loops_is_denied_at_the_time_limit_not_hung() {
    // Arrange: 10^10 iterations, which no request can wait for.
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "slow.rego",
        r#"package vcm

deny contains "unreachable" if {
	some i in numbers.range(1, 100000)
	some j in numbers.range(1, 100000)
	i * j == -1
}
"#,
    );
    let policy = Policy::load(&mk_config(&[file], None)).unwrap();
    assert_eq!(policy.timeout(), Duration::from_millis(100));

    // Act
    let started = std::time::Instant::now();
    let decision = policy.evaluate(&mk_create("small"));
    let took = started.elapsed();

    // Assert
    assert!(took < Duration::from_secs(2), "took {took:?}");
    let message = decision.messages().join(" | ");
    assert!(
        message.starts_with("policy evaluation took longer than 100 ms"),
        "{message}"
    );
}

#[test]
fn a_version_is_cheap_after_a_streak_of_fast_evaluations_and_not_after_a_slow_one() {
    // Arrange: a one-line rule, then one that loops until the time limit.
    let dir = tempfile::tempdir().unwrap();
    let fast = write(dir.path(), "fast.rego", DENY_LARGE);
    let slow = write(
        dir.path(),
        "slow.rego",
        "package vcm\n\ndeny contains \"never\" if {\n\tsome i in numbers.range(1, 100000)\n\tsome j in numbers.range(1, 100000)\n\ti * j == -1\n}\n",
    );
    let fast = Policy::load(&mk_config(&[fast], None)).unwrap().compiled();
    let slow = Policy::load(&mk_config(&[slow], None)).unwrap().compiled();

    // Act / Assert
    assert!(!fast.is_cheap(), "no evaluation yet");
    // NB: a loaded machine may preempt an evaluation past 1 ms now and then.
    let cheap = (0..1000).any(|_| {
        fast.evaluate(&mk_create("small"));
        fast.is_cheap()
    });
    assert!(cheap);
    slow.evaluate(&mk_create("small"));
    assert!(!slow.is_cheap());
}

#[test]
fn an_evaluation_error_denies_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "p.rego",
        "package vcm\n\ndeny contains msg if {\n\
         \tmsg := sprintf(\"%v\", [1 / count(input.request)])\n}\n",
    );
    let policy = Policy::load(&mk_config(&[file], None)).unwrap();
    let input = mk_input(Role::Ci, None, action::CLUSTER_CREATE, json!({}));

    let decision = policy.evaluate(&input);

    let message = decision.messages().join(" | ");
    assert!(message.starts_with("policy evaluation failed"), "{message}");
    assert!(
        message.contains("p.rego:4:") && message.contains("divide by zero"),
        "{message}"
    );
}

#[test]
fn a_deny_that_is_not_a_set_denies_and_other_messages_are_json() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();
    let not_a_set = write(dir.path(), "bool.rego", "package vcm\n\ndeny := false\n");
    let objects = write(
        dir.path(),
        "objects.rego",
        "package vcm\n\ndeny contains {\"code\": \"too_big\"} if true\n",
    );
    let not_a_set = Policy::load(&mk_config(&[not_a_set], None)).unwrap();
    let objects = Policy::load(&mk_config(&[objects], None)).unwrap();

    // Act
    let refused = not_a_set.evaluate(&mk_create("small"));
    let denied = objects.evaluate(&mk_create("small"));

    // Assert
    let message = refused.messages().join(" | ");
    assert!(message.contains("must be a set of messages"), "{message}");
    assert_eq!(denied, Decision::deny(r#"{"code":"too_big"}"#));
}

#[tokio::test]
async fn watch_reloads_a_changed_file_and_stops_on_shutdown() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "p.rego",
        "package vcm\n\ndeny contains \"never\" if false\n",
    );
    let config = PolicyConfig {
        reload_secs: 1,
        ..mk_config(&[file], None)
    };
    let policy = Arc::new(Policy::load(&config).unwrap());
    let shutdown = tokio_util::sync::CancellationToken::new();
    let watcher = tokio::spawn(Arc::clone(&policy).watch(shutdown.clone()));

    // Act
    write(dir.path(), "p.rego", DENY_LARGE);
    let changed = crate::poll::until(
        "the new version in force",
        Duration::from_secs(10),
        Duration::from_millis(50),
        || {
            let decision = policy.evaluate(&mk_create("large"));
            async move {
                Ok(match decision {
                    Decision::Allow => crate::poll::Poll::Pending("still allowed".into()),
                    Decision::Deny(_) => crate::poll::Poll::Ready(()),
                })
            }
        },
    )
    .await;
    shutdown.cancel();

    // Assert
    changed.unwrap();
    tokio::time::timeout(Duration::from_secs(5), watcher)
        .await
        .expect("watch returns once shut down")
        .unwrap();
}
