#![allow(clippy::unwrap_used)]

use super::*;
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
