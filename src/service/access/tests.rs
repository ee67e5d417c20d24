#![allow(clippy::unwrap_used)]

use super::*;
use crate::domain::RepoGrant;
use crate::error::ErrorKind;
use crate::store::conformance::mk_cluster;

fn who(id: &str, role: Role, team: Option<&str>) -> Principal {
    Principal::token(id, id, role, team.map(Into::into))
}

fn owned_by(owner: &Principal, team: Option<&str>) -> Cluster {
    Cluster {
        owner: owner.subject.clone(),
        team: team.map(Into::into),
        ..mk_cluster("web")
    }
}

/// What `p` gets for `action` on `c`: "ok", "404" or "403".
fn outcome(p: &Principal, c: &Cluster, action: Action) -> &'static str {
    match authorize(p, c, action, "web") {
        Ok(()) => "ok",
        Err(e) if e.kind() == ErrorKind::NotFound => "404",
        Err(e) if e.kind() == ErrorKind::Forbidden => "403",
        Err(e) => panic!("unexpected error {e}"),
    }
}

#[test]
fn each_role_gets_exactly_its_rights_on_own_team_and_foreign_clusters() {
    // Arrange
    let admin = who("t-admin", Role::Admin, None);
    let dev = who("t-dev", Role::Developer, Some("web"));
    let teammate = who("t-mate", Role::Developer, Some("web"));
    let ci = who("t-ci", Role::Ci, Some("web"));
    let viewer = who("t-view", Role::Viewer, Some("web"));
    let stranger = who("t-other", Role::Developer, Some("data"));
    let devs = owned_by(&dev, Some("web"));
    let cis = owned_by(&ci, Some("web"));
    use Action::*;
    // Table: (principal, cluster, [Read, Update, Delete, Credentials, Keepalive]).
    let cases = [
        (&admin, &devs, ["ok", "ok", "ok", "ok", "ok"]),
        (&dev, &devs, ["ok", "ok", "ok", "ok", "ok"]),
        (&teammate, &devs, ["ok", "ok", "ok", "ok", "ok"]),
        (&teammate, &cis, ["ok", "ok", "ok", "ok", "ok"]),
        (&ci, &cis, ["ok", "403", "ok", "ok", "ok"]),
        (&ci, &devs, ["404", "404", "404", "404", "404"]),
        (&viewer, &devs, ["ok", "403", "403", "403", "403"]),
        (&stranger, &devs, ["404", "404", "404", "404", "404"]),
    ];

    for (p, c, expected) in cases {
        // Act
        let got = [Read, Update, Delete, Credentials, Keepalive].map(|a| outcome(p, c, a));

        // Assert
        assert_eq!(got, expected, "{} on a cluster of {}", p.subject, c.owner);
    }
}

#[test]
fn a_principal_without_a_team_sees_no_teamless_strangers() {
    // Arrange
    let loner = who("t-a", Role::Developer, None);
    let other = who("t-b", Role::Developer, None);
    let theirs = owned_by(&other, None);

    // Act
    let seen = can_see(&loner, &theirs);

    // Assert
    assert!(!seen, "no team is not a shared team");
}

#[test]
fn only_viewers_may_not_create_and_only_admins_administer() {
    for (role, create, admin) in [
        (Role::Admin, true, true),
        (Role::Developer, true, false),
        (Role::Ci, true, false),
        (Role::Viewer, false, false),
    ] {
        let p = who("t-x", role, None);
        assert_eq!(authorize_create(&p).is_ok(), create, "{role} create");
        assert_eq!(authorize_admin(&p, "x").is_ok(), admin, "{role} admin");
        assert_eq!(
            authorize_bulk_delete(&p).is_ok(),
            create,
            "{role} bulk delete"
        );
    }
}

#[test]
fn forbidden_messages_name_the_role_and_the_missing_right() {
    // Arrange
    let viewer = who("t-view", Role::Viewer, Some("web"));
    let c = owned_by(&who("t-dev", Role::Developer, Some("web")), Some("web"));

    // Act
    let err = authorize(&viewer, &c, Action::Delete, "web").unwrap_err();

    // Assert
    let msg = err.to_string();
    assert!(
        msg.contains("viewer role may not delete cluster web"),
        "{msg}"
    );
}

#[test]
fn a_repositorys_ci_uses_its_pull_request_clusters_and_nothing_else_it_did_not_make() {
    // Arrange: CI of repository 74 (by id) and of acme/web (by name), viewers with the grant.
    let grant = |claim: &str| Principal {
        repository: RepoGrant::from_claim(claim),
        ..who(
            "oidc:github/repo:acme/web:pull_request",
            Role::Ci,
            Some("web"),
        )
    };
    let by_id = grant("74");
    let by_name = grant("Acme/Web");
    let viewer = Principal {
        role: Role::Viewer,
        ..grant("74")
    };
    let labelled = |owner: &str, pairs: &[(&str, &str)]| Cluster {
        owner: owner.into(),
        team: Some("web".into()),
        labels: crate::domain::Labels::parse(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
        .unwrap(),
        ..mk_cluster("gh-web-42-abcdef")
    };
    let pr = labelled(
        "webhook:github/acme/web",
        &[("repo", "acme.web"), ("repo-id", "74")],
    );
    let other_repo = labelled(
        "webhook:github/acme/api",
        &[("repo", "acme.api"), ("repo-id", "75")],
    );
    let decoy = labelled("token:t-dev", &[("repo", "acme.web"), ("repo-id", "74")]);
    use Action::*;
    let cases = [
        (&by_id, &pr, ["ok", "403", "403", "ok", "ok"]),
        (&by_name, &pr, ["ok", "403", "403", "ok", "ok"]),
        (&viewer, &pr, ["ok", "403", "403", "403", "403"]),
        (&by_id, &other_repo, ["404", "404", "404", "404", "404"]),
        (&by_id, &decoy, ["404", "404", "404", "404", "404"]),
    ];
    for (p, c, expected) in cases {
        let got = [Read, Update, Delete, Credentials, Keepalive].map(|a| outcome(p, c, a));
        assert_eq!(
            got, expected,
            "{:?} on a cluster of {}",
            p.repository, c.owner
        );
    }
    let Err(e) = authorize(&by_id, &pr, Delete, "web") else {
        panic!("deleted")
    };
    assert!(
        e.to_string().contains("goes when the pull request closes"),
        "{e}"
    );
}

#[test]
fn a_repository_claim_names_the_label_by_its_form() {
    let g = |v: &str| RepoGrant::from_claim(v).map(|g| (g.label, g.value));
    assert_eq!(g("74"), Some(("repo-id", "74".into())));
    assert_eq!(
        g("{C6A1F2D4-5E8B-4F3A-9D27-7B0E41C9A853}"),
        Some(("repo-id", "c6a1f2d4-5e8b-4f3a-9d27-7b0e41c9a853".into()))
    );
    assert_eq!(
        g("Octo-Org/Octo-Repo"),
        Some(("repo", "octo-org.octo-repo".into()))
    );
    assert_eq!(g("  "), None);
}
