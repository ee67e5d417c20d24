#![allow(clippy::unwrap_used)]

use super::*;
use crate::domain::Role;

fn mk_rule(role: Role) -> ClientCertRule {
    ClientCertRule {
        cn: None,
        o: None,
        ou: None,
        uri_san: None,
        dns_san: None,
        name: None,
        role,
        team: None,
    }
}

fn mk_names() -> CertNames {
    CertNames {
        cn: Some("pipeline-42".into()),
        o: vec!["acme".into(), "ci-bots".into()],
        ou: vec!["web".into()],
        uri_sans: vec!["spiffe://acme/ci/web".into()],
        dns_sans: vec!["runner.acme.test".into()],
    }
}

fn principal(auth: ClientCertAuth) -> Principal {
    match auth {
        ClientCertAuth::Principal(p) => p,
        ClientCertAuth::Refused(why) => panic!("expected a principal, got refused: {why}"),
    }
}

#[test]
fn a_rule_matches_only_when_every_matcher_it_gives_matches() {
    let cases: [(ClientCertRule, bool, &str); 8] = [
        (
            ClientCertRule {
                cn: Some("pipeline-42".into()),
                ..mk_rule(Role::Ci)
            },
            true,
            "cn alone, equal",
        ),
        (
            ClientCertRule {
                cn: Some("pipeline-4".into()),
                ..mk_rule(Role::Ci)
            },
            false,
            "cn is compared exactly, not as a prefix",
        ),
        (
            ClientCertRule {
                o: Some("ci-bots".into()),
                ..mk_rule(Role::Ci)
            },
            true,
            "o matches any of the subject's organizations",
        ),
        (
            ClientCertRule {
                o: Some("ci-bots".into()),
                ou: Some("api".into()),
                ..mk_rule(Role::Ci)
            },
            false,
            "o matches but ou does not: all given matchers must match",
        ),
        (
            ClientCertRule {
                uri_san: Some("spiffe://acme/ci/web".into()),
                dns_san: Some("runner.acme.test".into()),
                ..mk_rule(Role::Ci)
            },
            true,
            "uri and dns SANs",
        ),
        (
            ClientCertRule {
                dns_san: Some("RUNNER.acme.test".into()),
                ..mk_rule(Role::Ci)
            },
            false,
            "exact match is case-sensitive",
        ),
        (
            ClientCertRule {
                uri_san: Some("spiffe://acme/ci".into()),
                ..mk_rule(Role::Ci)
            },
            false,
            "a URI SAN is not matched by its prefix",
        ),
        (
            mk_rule(Role::Admin),
            false,
            "a rule without matchers never matches (config refuses it too)",
        ),
    ];
    for (rule, expected, why) in cases {
        // Arrange
        let rules = ClientRules::new(vec![rule]);

        // Act
        let auth = rules.resolve(&mk_names());

        // Assert
        assert_eq!(
            matches!(auth, ClientCertAuth::Principal(_)),
            expected,
            "{why}: {auth:?}"
        );
    }
}

#[test]
fn the_first_matching_rule_wins_and_names_the_principal() {
    // Arrange
    let rules = ClientRules::new(vec![
        ClientCertRule {
            o: Some("other".into()),
            ..mk_rule(Role::Admin)
        },
        ClientCertRule {
            o: Some("ci-bots".into()),
            name: Some("web-ci".into()),
            team: Some("web".into()),
            ..mk_rule(Role::Ci)
        },
        ClientCertRule {
            cn: Some("pipeline-42".into()),
            ..mk_rule(Role::Admin)
        },
    ]);

    // Act
    let p = principal(rules.resolve(&mk_names()));

    // Assert
    assert_eq!(p.subject, "cert:web-ci");
    assert_eq!(p.display, "pipeline-42");
    assert_eq!(p.role, Role::Ci);
    assert_eq!(p.team.as_deref(), Some("web"));
}

#[test]
fn without_a_name_in_the_rule_the_subject_is_the_cn() {
    // Arrange
    let rules = ClientRules::new(vec![ClientCertRule {
        ou: Some("web".into()),
        ..mk_rule(Role::Developer)
    }]);

    // Act
    let p = principal(rules.resolve(&mk_names()));

    // Assert
    assert_eq!(p.subject, "cert:pipeline-42");
    assert_eq!(p.role, Role::Developer);
    assert_eq!(p.team, None);
}

#[test]
fn a_certificate_matching_no_rule_is_refused_with_its_cn_and_the_key_to_fix() {
    // Arrange
    let rules = ClientRules::new(vec![ClientCertRule {
        cn: Some("someone-else".into()),
        ..mk_rule(Role::Admin)
    }]);

    // Act
    let err = rules.resolve(&mk_names()).principal().unwrap_err();

    // Assert
    let msg = err.to_string();
    assert!(matches!(err, Error::Unauthenticated(_)), "{err:?}");
    assert!(msg.contains("CN=\"pipeline-42\""), "{msg}");
    assert!(msg.contains("tls.client_rules"), "{msg}");
}

#[test]
fn names_are_read_from_a_real_certificate() {
    // Arrange
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["runner.acme.test".to_owned()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "pipeline-42");
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "ci-bots");
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationalUnitName, "web");
    params.subject_alt_names.push(rcgen::SanType::URI(
        "spiffe://acme/ci/web".try_into().unwrap(),
    ));
    let cert = params.self_signed(&key).unwrap();

    // Act
    let names = CertNames::from_der(cert.der()).unwrap();

    // Assert
    assert_eq!(names.cn.as_deref(), Some("pipeline-42"));
    assert_eq!(names.o, ["ci-bots"]);
    assert_eq!(names.ou, ["web"]);
    assert_eq!(names.dns_sans, ["runner.acme.test"]);
    assert_eq!(names.uri_sans, ["spiffe://acme/ci/web"]);
}
