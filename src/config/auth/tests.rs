#![allow(clippy::unwrap_used)]

use std::path::Path;

use crate::config::{Config, ConfigOverrides};
use crate::domain::Role;

fn mk_load(toml: &str) -> anyhow::Result<Config> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vcm.toml");
    std::fs::write(&path, toml).unwrap();
    Config::load_from(Some(Path::new(&path)), [], &ConfigOverrides::default())
}

const GITHUB_AND_BITBUCKET: &str = r#"
[[hosts]]
name = "eks"
kubeconfig = "/etc/vcm/eks.kubeconfig"

[[auth.oidc]]
name = "github"
issuer = "https://token.actions.githubusercontent.com"
audience = "vcm"

[[auth.oidc.rules]]
name = "web deploys"
claims = { repository = "acme/web", environment = "preview" }
role = "ci"
team = "web"

[[auth.oidc]]
name = "bitbucket"
issuer = "https://api.bitbucket.org/2.0/workspaces/acme/pipelines-config/identity/oidc"
audience = "vcm"
jwks_url = "https://api.bitbucket.org/2.0/workspaces/acme/pipelines-config/identity/oidc/keys.json"
clock_skew_secs = 30

[[auth.oidc.rules]]
claims = { repositoryUuid = "{c6a1f2d4-5e8b-4f3a-9d27-7b0e41c9a853}", branchName = "main" }
role = "developer"

[[auth.kubernetes]]
host = "eks"
cache_secs = 10

[[auth.kubernetes.rules]]
namespace = "ci"
service_account = "runner"
role = "ci"
team = "platform"
"#;

#[test]
fn github_bitbucket_and_kubernetes_entries_load_with_their_defaults() {
    // Act
    let config = mk_load(GITHUB_AND_BITBUCKET).unwrap();

    // Assert
    let [github, bitbucket] = &config.auth.oidc[..] else {
        panic!("two issuers: {:?}", config.auth.oidc);
    };
    assert_eq!(github.clock_skew_secs, 60, "default skew");
    assert_eq!(github.jwks_url, None, "discovery by default");
    assert_eq!(github.rules[0].role, Role::Ci);
    assert_eq!(github.rules[0].claims["environment"], "preview");
    assert_eq!(bitbucket.clock_skew_secs, 30);
    assert_eq!(bitbucket.rules[0].team, None);
    let k = &config.auth.kubernetes[0];
    assert_eq!(k.audience, "vcm", "default audience");
    assert_eq!(k.cache_secs, 10);
    assert_eq!(k.cluster_name(), "eks");
    assert_eq!(k.rules[0].service_account.as_deref(), Some("runner"));
}

#[test]
fn unusable_auth_entries_are_refused_naming_the_key_and_the_fix() {
    let oidc = |extra: &str, rule: &str| {
        format!(
            "[[auth.oidc]]\nname = \"gh\"\nissuer = \"https://token.actions.githubusercontent.com\"\n\
             audience = \"vcm\"\n{extra}\n[[auth.oidc.rules]]\n{rule}\n"
        )
    };
    let rule = "claims = { repository = \"acme/web\" }\nrole = \"ci\"";
    // Table: (config, words in the error, reason).
    let cases = [
        (oidc("", "claims = {}\nrole = \"ci\""), "claims is empty", "a rule matching everything"),
        (oidc("", "claims = { repository = \"a/b\" }\nrole = \"root\""), "root", "unknown role"),
        (oidc("colour = \"blue\"", rule), "colour", "unknown key"),
        (oidc("jwks_url = \"http://keys.example.com/jwks\"", rule), "plain http", "http off loopback"),
        (
            oidc("", rule).replace("audience = \"vcm\"\n", ""),
            "audience",
            "no audience",
        ),
        (
            oidc("", rule).replace("https://token", "http://token"),
            "plain http",
            "http issuer",
        ),
        (
            "[[auth.kubernetes]]\nhost = \"nope\"\n[[auth.kubernetes.rules]]\nnamespace = \"ci\"\nrole = \"ci\"\n".to_owned(),
            "no [[hosts]] entry is named \"nope\"",
            "unknown host",
        ),
        (
            "[[auth.kubernetes]]\nkubeconfig = \"/k\"\n[[auth.kubernetes.rules]]\nnamespace = \"ci\"\nrole = \"ci\"\n".to_owned(),
            "needs a name",
            "kubeconfig without a name",
        ),
        (
            "[[auth.kubernetes]]\nkubeconfig = \"/k\"\nname = \"k\"\n".to_owned(),
            "no [[auth.kubernetes.rules]]",
            "no rules",
        ),
    ];
    for (toml, words, reason) in cases {
        // Act
        let err = mk_load(&toml).unwrap_err();

        // Assert
        let msg = format!("{err:#}");
        assert!(msg.contains(words), "{reason}: {msg}");
    }
}

#[test]
fn the_readme_auth_configuration_loads_as_written() {
    // Arrange: every ```toml block of the README's "CI OIDC and Kubernetes ServiceAccount
    // tokens" section, with the host its [[auth.kubernetes]] entry names.
    let readme = include_str!("../../../README.md");
    let start = readme
        .find("## CI OIDC and Kubernetes ServiceAccount tokens")
        .unwrap();
    let end = start + 3 + readme[start + 3..].find("\n## ").unwrap();
    let mut toml = "[[hosts]]\nname = \"eks-us-east-1\"\nkubeconfig = \"/k\"\n".to_owned();
    for block in readme[start..end].split("```toml\n").skip(1) {
        toml.push_str(&block[..block.find("```").unwrap()]);
    }

    // Act
    let config = mk_load(&toml).unwrap();

    // Assert
    let names: Vec<&str> = config.auth.oidc.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["github", "bitbucket"]);
    assert_eq!(config.auth.oidc[0].rules.len(), 2);
    assert_eq!(config.auth.oidc[1].rules[0].claims["branchName"], "main");
    assert_eq!(
        config.auth.kubernetes[0].host.as_deref(),
        Some("eks-us-east-1")
    );
    assert_eq!(
        config.auth.kubernetes[0].rules[0].team.as_deref(),
        Some("platform")
    );
}
