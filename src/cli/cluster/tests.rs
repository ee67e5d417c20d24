#![allow(clippy::unwrap_used)]

use clap::Parser as _;

use super::*;
use crate::cli::{Cli, Command};

fn mk_parse(args: &[&str]) -> Result<ClusterCmd, clap::Error> {
    let cli = Cli::try_parse_from(["vcm", "cluster"].iter().chain(args))?;
    match cli.command {
        Command::Cluster(cmd) => Ok(cmd),
        other => panic!("expected a cluster command, got {other:?}"),
    }
}

#[test]
fn create_takes_every_flag_and_repeated_labels() {
    // Act
    let cmd = mk_parse(&[
        "create",
        "--name",
        "pr-42",
        "--size",
        "medium",
        "--kubernetes-version",
        "1.36",
        "--ttl",
        "2h",
        "--idle-timeout",
        "30m",
        "--label",
        "repo=web",
        "--label",
        "pr=42",
        "--idempotency-key",
        "run-7",
        "--wait",
        "--timeout",
        "90s",
    ])
    .unwrap();

    // Assert
    let ClusterCmd::Create(args) = cmd else {
        panic!("expected create, got {cmd:?}");
    };
    assert_eq!(args.name.as_deref(), Some("pr-42"));
    assert_eq!(args.size.as_deref(), Some("medium"));
    assert_eq!(args.kubernetes_version.as_deref(), Some("1.36"));
    assert_eq!(args.ttl.as_deref(), Some("2h"));
    assert_eq!(args.idle_timeout.as_deref(), Some("30m"));
    assert_eq!(
        args.labels,
        [("repo".into(), "web".into()), ("pr".into(), "42".into())]
    );
    assert_eq!(args.idempotency_key.as_deref(), Some("run-7"));
    assert!(args.wait);
    assert_eq!(args.timeout, Duration::from_secs(90));
}

#[test]
fn create_waits_ten_minutes_by_default() {
    let ClusterCmd::Create(args) = mk_parse(&["create"]).unwrap() else {
        panic!("expected create");
    };
    assert!(!args.wait);
    assert_eq!(args.timeout, Duration::from_secs(600));
}

#[test]
fn global_flags_work_after_the_subcommand() {
    // Act
    let cli = Cli::try_parse_from([
        "vcm",
        "cluster",
        "list",
        "--all",
        "--label",
        "repo=web",
        "-o",
        "json",
        "--addr",
        "http://vcm.example:8080",
        "--token",
        "vcm_x",
    ])
    .unwrap();

    // Assert
    assert_eq!(cli.global.output, OutputFormat::Json);
    assert_eq!(cli.global.addr.as_str(), "http://vcm.example:8080/");
    assert_eq!(cli.global.token.as_deref(), Some("vcm_x"));
    let Command::Cluster(ClusterCmd::List(args)) = cli.command else {
        panic!("expected list");
    };
    assert!(args.all);
    assert_eq!(args.labels, [("repo".into(), "web".into())]);
}

#[test]
fn delete_takes_ids_or_labels_but_not_both_nor_neither() {
    // Table: (arguments, parses?, reason).
    let cases: [(&[&str], bool, &str); 5] = [
        (&["delete", "web"], true, "one id"),
        (&["delete", "web", "api", "--wait"], true, "several ids"),
        (&["delete", "--label", "repo=web"], true, "labels"),
        (&["delete"], false, "neither"),
        (&["delete", "web", "--label", "repo=web"], false, "both"),
    ];

    for (args, parses, reason) in cases {
        assert_eq!(mk_parse(args).is_ok(), parses, "{reason}");
    }
}

#[test]
fn bad_flag_values_are_refused_at_parse_time() {
    // Table: (arguments, reason).
    let cases: [(&[&str], &str); 4] = [
        (&["create", "--label", "novalue"], "label without ="),
        (&["create", "--label", "=v"], "label without key"),
        (&["create", "--timeout", "soon"], "timeout not a duration"),
        (&["get"], "get without id"),
    ];

    for (args, reason) in cases {
        assert!(mk_parse(args).is_err(), "{reason}");
    }
}

#[test]
fn the_remaining_subcommands_parse() {
    // Table: (arguments, reason).
    let cases: [&[&str]; 6] = [
        &["get", "web"],
        &["update", "web", "--ttl", "3h", "--label", "a=b"],
        &[
            "kubeconfig",
            "web",
            "--ttl",
            "1h",
            "--output-file",
            "/tmp/kc",
        ],
        &["keepalive", "web"],
        &["events", "web"],
        &[
            "list", "--phase", "Ready", "--owner", "token:ci", "--limit", "5",
        ],
    ];

    for args in cases {
        assert!(mk_parse(args).is_ok(), "{args:?}");
    }
}

#[test]
fn a_missing_token_is_an_error_naming_vcm_token_and_the_flag() {
    // Arrange
    let cli = Cli::try_parse_from(["vcm", "cluster", "list"]).unwrap();
    let global = GlobalOpts {
        token: None,
        token_file: None,
        ..cli.global
    };

    // Act
    let err = global.client().unwrap_err().to_string();

    // Assert
    assert!(
        err.contains("VCM_TOKEN") && err.contains("VCM_TOKEN_FILE"),
        "{err}"
    );
}

#[test]
fn a_token_is_not_sent_over_plain_http_to_another_machine_unless_allowed() {
    // Table: (address, allowed, accepted).
    let cases = [
        ("http://127.0.0.1:8080", false, true),
        ("http://localhost:8080", false, true),
        ("http://[::1]:8080", false, true),
        ("https://vcm.example.com", false, true),
        ("http://vcm.example.com", false, false),
        ("http://10.0.0.5:8080", false, false),
        ("http://10.0.0.5:8080", true, true),
    ];
    for (addr, allowed, accepted) in cases {
        // Arrange
        let cli = Cli::try_parse_from(["vcm", "cluster", "list"]).unwrap();
        let global = GlobalOpts {
            addr: addr.parse().unwrap(),
            token: Some("vcm_x".into()),
            allow_insecure_http: allowed,
            ..cli.global
        };

        // Act
        let result = global.client();

        // Assert
        assert_eq!(result.is_ok(), accepted, "{addr} allowed={allowed}");
        if let Err(e) = result {
            assert!(e.to_string().contains("--allow-insecure-http"), "{e}");
        }
    }
}

#[test]
fn create_retries_wait_as_the_server_says_else_back_off_to_30s() {
    // Table: (attempt, Retry-After, wait, why).
    let cases = [
        (1, Some(30), 30, "the server's Retry-After wins"),
        (1, Some(0), 1, "never a busy loop"),
        (1, Some(600), 30, "never longer than the cap"),
        (1, None, 1, "without a hint: 1 s"),
        (3, None, 4, "then doubling"),
        (20, None, 30, "capped"),
    ];
    for (attempt, hint, want, why) in cases {
        let got = retry_delay(attempt, hint.map(Duration::from_secs));
        assert_eq!(got, Duration::from_secs(want), "{why}");
    }
}

#[test]
fn generated_idempotency_keys_are_fresh_and_valid_header_values() {
    let (a, b) = (generated_idempotency_key(), generated_idempotency_key());
    assert_ne!(a, b);
    assert!(
        a.len() <= 255 && a.bytes().all(|c| c.is_ascii_graphic()),
        "{a}"
    );
}

#[test]
fn a_timeout_ending_in_a_multibyte_character_is_a_usage_error_not_a_panic() {
    // Act
    let result = mk_parse(&["create", "--wait", "--timeout", "1µ"]);

    // Assert
    let err = result.expect_err("1µ is not a duration");
    assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
}

proptest::proptest! {
    #[test]
    fn any_timeout_or_label_flag_parses_or_is_a_usage_error(value in proptest::prelude::any::<String>()) {
        // Act: clap calls the value parsers; a panic fails the test.
        let timeout = mk_parse(&["create", "--wait", "--timeout", &value]);
        let label = mk_parse(&["create", "--label", &value]);

        // Assert
        if let Ok(ClusterCmd::Create(args)) = &timeout {
            proptest::prop_assert!(args.timeout.as_secs() >= 1);
        }
        if let Err(e) = label {
            proptest::prop_assert_ne!(e.kind(), clap::error::ErrorKind::DisplayHelp);
        }
    }
}
