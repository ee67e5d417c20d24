#![allow(clippy::unwrap_used)]

use std::io::Write as _;

use super::*;

fn mk_env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

pub(super) fn mk_toml(contents: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    file.write_all(contents.as_bytes()).unwrap();
    file
}

pub(super) fn load(
    file: Option<&Path>,
    env: &[(&str, &str)],
    overrides: &ConfigOverrides,
) -> Config {
    Config::load_from(file, mk_env(env), overrides).unwrap()
}

pub(super) fn load_err(file: Option<&Path>, env: &[(&str, &str)]) -> String {
    let err = Config::load_from(file, mk_env(env), &ConfigOverrides::default()).unwrap_err();
    format!("{err:#}")
}

#[test]
fn defaults_apply_when_no_source_sets_anything() {
    // Act
    let config = load(None, &[], &ConfigOverrides::default());

    // Assert
    assert_eq!(config, Config::default());
    assert_eq!(config.listen, "127.0.0.1:8080".parse().unwrap());
    assert_eq!(config.data_dir, PathBuf::from("./.vcm"));
    assert_eq!(config.log.format, LogFormat::Pretty);
    assert_eq!(config.log.level, "info");
    assert_eq!(config.shutdown_grace(), Duration::from_secs(30));
    assert!(!config.allow_plain_http_non_loopback);
}

#[test]
fn toml_file_overrides_defaults_and_keeps_the_rest() {
    // Arrange
    let file = mk_toml("listen = \"127.0.0.1:9000\"\n[log]\nformat = \"json\"\n");

    // Act
    let config = load(Some(file.path()), &[], &ConfigOverrides::default());

    // Assert
    assert_eq!(config.listen, "127.0.0.1:9000".parse().unwrap());
    assert_eq!(config.log.format, LogFormat::Json);
    assert_eq!(
        config.log.level, "info",
        "unset nested keys keep their defaults"
    );
    assert_eq!(config.shutdown_grace_secs, 30);
}

#[test]
fn env_overrides_toml_with_double_underscore_nesting() {
    // Arrange
    let file = mk_toml("shutdown_grace_secs = 5\n[log]\nlevel = \"warn\"\n");
    let env = [
        ("VCM_SHUTDOWN_GRACE_SECS", "7"),
        ("VCM_LOG__LEVEL", "info,vcm=debug"),
        ("VCM_DATA_DIR", "/var/lib/vcm"),
    ];

    // Act
    let config = load(Some(file.path()), &env, &ConfigOverrides::default());

    // Assert
    assert_eq!(config.shutdown_grace_secs, 7);
    assert_eq!(config.log.level, "info,vcm=debug");
    assert_eq!(config.data_dir, PathBuf::from("/var/lib/vcm"));
}

#[test]
fn flags_override_env() {
    // Arrange
    let env = [
        ("VCM_LISTEN", "127.0.0.1:9001"),
        ("VCM_LOG__FORMAT", "json"),
    ];
    let overrides = ConfigOverrides {
        listen: Some("127.0.0.1:9002".parse().unwrap()),
        log_format: Some(LogFormat::Pretty),
        ..ConfigOverrides::default()
    };

    // Act
    let config = load(None, &env, &overrides);

    // Assert
    assert_eq!(config.listen, "127.0.0.1:9002".parse().unwrap());
    assert_eq!(config.log.format, LogFormat::Pretty);
}

#[test]
fn client_and_tooling_variables_are_not_configuration() {
    // Arrange
    let env = [
        ("VCM_ADDR", "http://127.0.0.1:1"),
        ("VCM_TOKEN", "vcm_secret"),
        ("VCM_OUTPUT", "json"),
        ("VCM_K8S_BIN_DIR", "/opt/k8s"),
        ("VCM_CONFIG", "/etc/vcm.toml"),
        ("OTHER_LISTEN", "0.0.0.0:1"),
        // Kubernetes' service links for a Service named `vcm` in the pod's namespace.
        ("VCM_SERVICE_HOST", "10.96.0.12"),
        ("VCM_SERVICE_PORT_HTTP", "8080"),
        ("VCM_PORT", "tcp://10.96.0.12:8080"),
        ("VCM_PORT_8080_TCP_ADDR", "10.96.0.12"),
    ];

    // Act
    let config = load(None, &env, &ConfigOverrides::default());

    // Assert
    assert_eq!(config, Config::default());
}

#[test]
fn unknown_key_is_an_error_naming_it() {
    struct Case<'a> {
        file: Option<&'a Path>,
        env: &'a [(&'a str, &'a str)],
        expected: &'a str,
        reason: &'a str,
    }
    let file = mk_toml("lisen = \"127.0.0.1:1\"\n");
    let nested = mk_toml("[log]\nlevle = \"debug\"\n");
    let cases = [
        Case {
            file: Some(file.path()),
            env: &[],
            expected: "lisen",
            reason: "a top-level typo in the file",
        },
        Case {
            file: Some(nested.path()),
            env: &[],
            expected: "levle",
            reason: "a nested typo in the file",
        },
        Case {
            file: None,
            env: &[("VCM_LOG__LEVLE", "debug")],
            expected: "VCM_LOG__LEVLE",
            reason: "a typo in the environment",
        },
    ];

    for case in cases {
        // Act
        let err = load_err(case.file, case.env);

        // Assert
        assert!(
            err.contains(case.expected),
            "{}: {err:?} should name {}",
            case.reason,
            case.expected
        );
    }
}

#[test]
fn missing_explicit_config_file_is_an_error_naming_the_path() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.toml");

    // Act
    let err = load_err(Some(&path), &[]);

    // Assert
    assert!(err.contains(&path.display().to_string()), "{err}");
}

#[test]
fn non_loopback_listen_is_refused_unless_allowed() {
    // Arrange
    let env = [("VCM_LISTEN", "0.0.0.0:8080")];

    // Act
    let refused = Config::load_from(None, mk_env(&env), &ConfigOverrides::default());
    let allowed = load(
        None,
        &[
            ("VCM_LISTEN", "0.0.0.0:8080"),
            ("VCM_ALLOW_PLAIN_HTTP_NON_LOOPBACK", "true"),
        ],
        &ConfigOverrides::default(),
    );

    // Assert
    let err = refused.unwrap_err();
    assert!(
        matches!(
            err.downcast_ref(),
            Some(ConfigError::PlainHttpOnNonLoopback { .. })
        ),
        "{err:#}"
    );
    assert!(
        format!("{err}").contains("allow_plain_http_non_loopback"),
        "the error names the fix"
    );
    assert_eq!(allowed.listen, "0.0.0.0:8080".parse().unwrap());
}

#[test]
fn ipv6_loopback_listen_is_accepted() {
    // Act
    let config = load(
        None,
        &[("VCM_LISTEN", "[::1]:0")],
        &ConfigOverrides::default(),
    );

    // Assert
    assert_eq!(config.listen, "[::1]:0".parse().unwrap());
}

#[test]
fn dev_mode_is_the_embedded_default_whatever_the_file_says() {
    // Arrange
    let file = mk_toml(
        "driver = \"vcluster\"\nstore_url = \"sqlite:///elsewhere.db\"\n[[hosts]]\nname = \"eks\"\n",
    );
    let dev = ConfigOverrides {
        dev: true,
        ..ConfigOverrides::default()
    };

    // Act
    let prod = load(Some(file.path()), &[], &ConfigOverrides::default());
    let config = load(Some(file.path()), &[], &dev);

    // Assert
    assert_eq!(prod.driver, DriverKind::Vcluster);
    assert_eq!(config.driver, DriverKind::Local);
    assert_eq!(
        config.store_url(),
        format!("sqlite://{}", config.data_dir.join("vcm.db").display())
    );
}

#[test]
fn dev_mode_is_the_flag_only_never_a_file_or_the_environment() {
    // Arrange
    let file = mk_toml("dev = true\n");

    // Act
    let from_file = load_err(Some(file.path()), &[]);
    let from_env = load_err(None, &[("VCM_DEV", "true")]);

    // Assert
    assert!(
        from_file.contains("unknown field") && from_file.contains("dev"),
        "{from_file}"
    );
    assert!(from_env.contains("VCM_DEV"), "{from_env}");
}

#[test]
fn hosts_need_unique_names_and_the_vcluster_driver_needs_a_host() {
    for (src, want) in [
        ("driver = \"vcluster\"\n", "at least one [[hosts]]"),
        ("[[hosts]]\nkubeconfig = \"/k\"\n", "needs a name"),
        (
            "[[hosts]]\nname = \"a\"\n[[hosts]]\nname = \"a\"\n",
            "two [[hosts]] entries",
        ),
        (
            "[[hosts]]\nname = \"a\"\negress_except = [\"10.0.0.0\"]\n",
            "hosts.a.egress_except: \"10.0.0.0\" is not a CIDR",
        ),
        (
            "[[hosts]]\nname = \"a\"\nserver_template = \"https://{ip}:{node_port}\"\n",
            "hosts.a.server_template \"https://{ip}:{node_port}\": unknown placeholder {ip} \
             (valid: {release} {namespace} {id} {name} {node_port})",
        ),
        ("[local]\nmax_clusters = 0\n", "local.max_clusters = 0"),
    ] {
        let file = mk_toml(src);
        let err = load_err(Some(file.path()), &[]);
        assert!(err.contains(want), "{src}: {err}");
    }
}

#[test]
fn a_bad_duration_is_refused_at_load_naming_its_key() {
    // Table: (variable, value, reason).
    let cases = [
        ("VCM_CLUSTERS__MAX_TTL", "1µ", "multibyte unit"),
        ("VCM_CLUSTERS__DEFAULT_TTL", "soon", "not a duration"),
        ("VCM_CLUSTERS__RETENTION", "0s", "zero"),
        ("VCM_CLUSTERS__DEFAULT_IDLE_TIMEOUT", "5 m", "space"),
    ];
    for (name, value, reason) in cases {
        // Act
        let message = load_err(None, &[(name, value)]);

        // Assert
        let key = name
            .trim_start_matches("VCM_")
            .replace("__", ".")
            .to_ascii_lowercase();
        assert!(message.contains(&key), "{reason}: {message}");
    }
}

#[test]
fn a_backslash_after_a_multibyte_character_in_an_env_value_is_a_string_not_a_panic() {
    // Found by the property test below: figment's own value parser panicked on this.
    let message = load_err(None, &[("VCM_LOG__FORMAT", "𔖸v\\w")]);
    assert!(message.contains("VCM_LOG__FORMAT"), "{message}");
    let config = load(
        None,
        &[("VCM_DATA_DIR", "/tmp/é\\x")],
        &ConfigOverrides::default(),
    );
    assert_eq!(config.data_dir, PathBuf::from("/tmp/é\\x"));
}

proptest::proptest! {
    #[test]
    fn any_value_of_any_key_loads_or_is_refused_naming_the_key(
        key in proptest::sample::select(vec![
            "LISTEN",
            "DATA_DIR",
            "SHUTDOWN_GRACE_SECS",
            "CLUSTERS__DEFAULT_TTL",
            "CLUSTERS__MAX_TTL",
            "CLUSTERS__DEFAULT_IDLE_TIMEOUT",
            "CLUSTERS__MAX_KUBECONFIG_TTL",
            "CLUSTERS__RETENTION",
            "CLUSTERS__SIZES",
            "LOG__FORMAT",
            "DRIVER",
        ]),
        value in proptest::prelude::any::<String>(),
    ) {
        // Act
        let result = Config::load_from(None, mk_env(&[(&format!("VCM_{key}"), &value)]), &ConfigOverrides::default());

        // Assert
        if let Err(err) = result {
            let message = format!("{err:#}");
            let dotted = key.replace("__", ".").to_ascii_lowercase();
            let leaf = dotted.rsplit('.').next().unwrap_or_default();
            proptest::prop_assert!(
                message.contains(&dotted) || message.contains(&format!("VCM_{key}")) || message.contains(leaf),
                "{}", message
            );
        }
    }
}
