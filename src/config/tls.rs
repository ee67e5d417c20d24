//! `[tls]`: the certificate the API listener presents, and mutual TLS (client certificates
//! verified against a CA, mapped to principals by `[[tls.client_rules]]`).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::domain::Role;

/// Seconds between two looks at `cert_file` and `key_file` for a new pair: a rotated
/// certificate (cert-manager, certbot) is served within this, without a restart.
pub const DEFAULT_RELOAD_INTERVAL_SECS: u64 = 5;

/// TLS for the API listener. Without `cert_file` the server speaks plain HTTP (loopback only,
/// unless `allow_plain_http_non_loopback`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first. Reloaded when it changes.
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file` (PKCS#8, PKCS#1 or SEC1). Reloaded with it.
    pub key_file: Option<PathBuf>,
    /// PEM CA certificate(s) that sign client certificates (mutual TLS). A client may still
    /// come without a certificate and send a bearer token instead.
    pub client_ca_file: Option<PathBuf>,
    /// Which verified client certificate is which principal; the first matching rule wins.
    pub client_rules: Vec<ClientCertRule>,
    /// Seconds between two looks at `cert_file` and `key_file` for a new pair.
    pub reload_interval_secs: u64,
}

/// One `[[tls.client_rules]]` entry: matchers (all given ones must match, exactly) and the
/// principal a matching certificate becomes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientCertRule {
    /// The subject's common name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cn: Option<String>,
    /// One of the subject's organizations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub o: Option<String>,
    /// One of the subject's organizational units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ou: Option<String>,
    /// One of the certificate's URI subject alternative names (e.g. a SPIFFE id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri_san: Option<String>,
    /// One of the certificate's DNS subject alternative names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_san: Option<String>,
    /// The principal's name: its subject is `cert:<name>`. Default: the certificate's CN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The principal's role.
    pub role: Role,
    /// The principal's team.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
}

// === impl TlsConfig ===

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            cert_file: None,
            key_file: None,
            client_ca_file: None,
            client_rules: Vec::new(),
            reload_interval_secs: DEFAULT_RELOAD_INTERVAL_SECS,
        }
    }
}

impl TlsConfig {
    /// Is the listener to speak TLS?
    pub fn enabled(&self) -> bool {
        self.cert_file.is_some()
    }

    /// Keys that only make sense together are given together; rules can match something.
    /// The error says which key to add or remove.
    pub fn validate(&self) -> Result<(), String> {
        match (&self.cert_file, &self.key_file) {
            (Some(_), None) => {
                return Err("tls.cert_file is set without tls.key_file: set both \
                                           (PEM files) or neither"
                    .into());
            }
            (None, Some(_)) => {
                return Err("tls.key_file is set without tls.cert_file: set both \
                                           (PEM files) or neither"
                    .into());
            }
            _ => {}
        }
        if self.client_ca_file.is_some() && !self.enabled() {
            return Err(
                "tls.client_ca_file needs tls.cert_file and tls.key_file: mutual TLS \
                        is TLS first"
                    .into(),
            );
        }
        if !self.client_rules.is_empty() && self.client_ca_file.is_none() {
            return Err(
                "tls.client_rules are set without tls.client_ca_file: name the CA that \
                        signs the client certificates"
                    .into(),
            );
        }
        for (i, rule) in self.client_rules.iter().enumerate() {
            if !rule.has_matcher() {
                return Err(format!(
                    "tls.client_rules[{i}] has no matcher, so it would admit every certificate \
                     the CA signs: give at least one of cn, o, ou, uri_san, dns_san"
                ));
            }
        }
        Ok(())
    }
}

// === impl ClientCertRule ===

impl ClientCertRule {
    /// Does the rule name at least one thing to match?
    pub fn has_matcher(&self) -> bool {
        [&self.cn, &self.o, &self.ou, &self.uri_san, &self.dns_san]
            .iter()
            .any(|m| m.is_some())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::{Config, ConfigOverrides};

    fn mk_toml(contents: &str) -> tempfile::NamedTempFile {
        let file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        std::fs::write(file.path(), contents).unwrap();
        file
    }

    fn load(file: Option<&std::path::Path>, env: &[(&str, &str)]) -> anyhow::Result<Config> {
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        Config::load_from(file, env, &ConfigOverrides::default())
    }

    fn rule() -> ClientCertRule {
        ClientCertRule {
            cn: Some("ci".into()),
            o: None,
            ou: None,
            uri_san: None,
            dns_san: None,
            name: None,
            role: Role::Ci,
            team: None,
        }
    }

    #[test]
    fn tls_keys_that_belong_together_are_refused_alone_with_the_missing_key_named() {
        let cases = [
            (
                TlsConfig {
                    cert_file: Some("c.pem".into()),
                    ..TlsConfig::default()
                },
                "without tls.key_file",
                "a certificate without its key",
            ),
            (
                TlsConfig {
                    key_file: Some("k.pem".into()),
                    ..TlsConfig::default()
                },
                "without tls.cert_file",
                "a key without its certificate",
            ),
            (
                TlsConfig {
                    client_ca_file: Some("ca.pem".into()),
                    ..TlsConfig::default()
                },
                "needs tls.cert_file",
                "mutual TLS without TLS",
            ),
            (
                TlsConfig {
                    cert_file: Some("c.pem".into()),
                    key_file: Some("k.pem".into()),
                    client_rules: vec![rule()],
                    ..TlsConfig::default()
                },
                "without tls.client_ca_file",
                "rules without a CA",
            ),
            (
                TlsConfig {
                    cert_file: Some("c.pem".into()),
                    key_file: Some("k.pem".into()),
                    client_ca_file: Some("ca.pem".into()),
                    client_rules: vec![ClientCertRule { cn: None, ..rule() }],
                    ..TlsConfig::default()
                },
                "tls.client_rules[0] has no matcher",
                "a rule matching every certificate",
            ),
        ];
        for (config, expected, why) in cases {
            // Act
            let err = config.validate().unwrap_err();

            // Assert
            assert!(err.contains(expected), "{why}: {err}");
        }
    }

    #[test]
    fn a_complete_mutual_tls_section_is_valid() {
        // Arrange
        let config = TlsConfig {
            cert_file: Some("c.pem".into()),
            key_file: Some("k.pem".into()),
            client_ca_file: Some("ca.pem".into()),
            client_rules: vec![rule()],
            ..TlsConfig::default()
        };

        // Act
        let result = config.validate();

        // Assert
        assert_eq!(result, Ok(()));
        assert!(TlsConfig::default().validate().is_ok());
    }

    #[test]
    fn the_readme_tls_block_loads_as_written_and_allows_a_non_loopback_listen() {
        // Arrange: the ```toml block of the README's "TLS and mutual TLS" section.
        let readme = include_str!("../../README.md");
        let section = &readme[readme.find("## TLS and mutual TLS").unwrap()..];
        let start = section.find("```toml\n").unwrap() + "```toml\n".len();
        let block = &section[start..start + section[start..].find("```").unwrap()];
        let file = mk_toml(block);

        // Act
        let config = load(Some(file.path()), &[]).unwrap();

        // Assert
        assert_eq!(config.listen, "0.0.0.0:8443".parse().unwrap());
        assert!(config.tls.enabled());
        assert_eq!(config.tls.client_rules.len(), 2);
        let ci = &config.tls.client_rules[0];
        assert_eq!(ci.o.as_deref(), Some("ci-bots"));
        assert_eq!(ci.uri_san.as_deref(), Some("spiffe://acme/ci/web"));
        assert_eq!(ci.role, crate::domain::Role::Ci);
        assert_eq!(ci.team.as_deref(), Some("web"));
        assert_eq!(config.tls.client_rules[1].role, crate::domain::Role::Admin);
    }

    #[test]
    fn tls_keys_come_from_the_environment_and_a_bad_role_or_unknown_key_is_named() {
        // Act
        let from_env = load(
            None,
            &[
                ("VCM_LISTEN", "0.0.0.0:8443"),
                ("VCM_TLS__CERT_FILE", "/tls/server.pem"),
                ("VCM_TLS__KEY_FILE", "/tls/server.key"),
                // The client's variables share the prefix and are not configuration.
                ("VCM_CACERT", "/tls/ca.pem"),
                ("VCM_CLIENT_CERT", "/tls/client.pem"),
                ("VCM_CLIENT_KEY", "/tls/client.key"),
            ],
        )
        .unwrap();
        let rules = "[tls]\ncert_file = \"c\"\nkey_file = \"k\"\nclient_ca_file = \"ca\"\n\n\
                     [[tls.client_rules]]\ncn = \"x\"\nrole = \"root\"\n";
        let bad_role = load(Some(mk_toml(rules).path()), &[]);
        let unknown = load(Some(mk_toml("[tls]\ncert = \"c\"\n").path()), &[]);
        let half = load(None, &[("VCM_TLS__CERT_FILE", "c")]);

        // Assert
        assert_eq!(from_env.tls.key_file, Some("/tls/server.key".into()));
        let bad_role = format!("{:#}", bad_role.unwrap_err());
        assert!(
            bad_role.contains("root") && bad_role.contains("admin"),
            "{bad_role}"
        );
        let unknown = format!("{:#}", unknown.unwrap_err());
        assert!(
            unknown.contains("unknown field") && unknown.contains("cert"),
            "{unknown}"
        );
        let half = format!("{:#}", half.unwrap_err());
        assert!(half.contains("tls.key_file"), "{half}");
    }
}
