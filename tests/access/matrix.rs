//! The route matrix: every documented route × every kind of caller.

use super::*;

/// What a caller gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    /// Past authentication and authorization (2xx, or a 409/422 about the request itself).
    Allow,
    /// 401.
    Unauthenticated,
    /// 403.
    Forbidden,
    /// 404: the cluster is not the caller's to see.
    Hidden,
}

/// How the caller relates to the target cluster (owned by a developer of team `web`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Anonymous,
    Admin,
    /// Developer of team `web` (the owner's teammate).
    Teammate,
    /// Developer of another team.
    Stranger,
    /// The ci token that created the cluster.
    CiOwner,
    /// A ci token of team `web` that did not create it.
    CiOther,
    /// Viewer of team `web`.
    Viewer,
    /// A GitHub Actions job mapped to developer of team `web` by an OIDC rule.
    OidcTeammate,
    /// A client certificate mapped to developer of team `web` by a tls rule.
    CertTeammate,
}

/// The access decision for each route; `None` for a route the table does not know.
fn decide(method: &str, path: &str, who: Who) -> Option<Decision> {
    use Decision::*;
    use Who::*;
    if who == Anonymous {
        return Some(Unauthenticated);
    }
    let on_cluster = |write: bool, ci_may: bool| match who {
        Admin | Teammate | OidcTeammate | CertTeammate => Allow,
        CiOwner if ci_may => Allow,
        CiOwner => Forbidden,
        Viewer if write => Forbidden,
        Viewer => Allow,
        Stranger | CiOther => Hidden,
        Anonymous => Unauthenticated,
    };
    let admin_only = if who == Admin { Allow } else { Forbidden };
    Some(match (method, path) {
        ("post", "/v1/clusters") | ("delete", "/v1/clusters") => {
            if who == Viewer {
                Forbidden
            } else {
                Allow
            }
        }
        ("get", "/v1/clusters") | ("get", "/v1/hosts") | ("get", "/v1/whoami") => Allow,
        ("get", "/v1/clusters/{id}")
        | ("get", "/v1/clusters/{id}/events")
        | ("get", "/v1/clusters/{id}/usage") => on_cluster(false, true),
        ("put", "/v1/clusters/{id}") => on_cluster(true, false),
        ("delete", "/v1/clusters/{id}")
        | ("post", "/v1/clusters/{id}/kubeconfig")
        | ("post", "/v1/clusters/{id}/keepalive")
        | ("get", "/v1/clusters/{id}/credentials")
        | ("delete", "/v1/clusters/{id}/credentials")
        | ("delete", "/v1/clusters/{id}/credentials/{credential}") => on_cluster(true, true),
        ("post", "/v1/clusters/{id}/forget") => admin_only,
        ("post", "/v1/tokens") | ("get", "/v1/tokens") => admin_only,
        ("get", "/v1/audit") | ("get", "/v1/audit/anchor") => admin_only,
        ("get", "/v1/tokens/{id}") | ("delete", "/v1/tokens/{id}") => admin_only,
        // Team web's usage: its members (any role) and admins.
        ("get", "/v1/teams/{team}/usage") => match who {
            Stranger => Forbidden,
            _ => Allow,
        },
        _ => return None,
    })
}

/// A body the route accepts from an allowed caller.
pub(super) fn body_for(method: &str, path: &str) -> Option<Value> {
    match (method, path) {
        ("post", "/v1/clusters") => Some(json!({})),
        ("put", "/v1/clusters/{id}") => Some(json!({"ttl": "3h"})),
        ("post", "/v1/clusters/{id}/kubeconfig") => Some(json!({})),
        ("post", "/v1/tokens") => Some(json!({"name": "made", "role": "viewer"})),
        _ => None,
    }
}

fn observed(status: StatusCode) -> Decision {
    match status.as_u16() {
        // NB: 431 is HTTP/2's answer to the 60 KiB header (its header list limit): refused before
        // any handler, as a 401 is over HTTP/1.1.
        401 | 431 => Decision::Unauthenticated,
        403 => Decision::Forbidden,
        404 => Decision::Hidden,
        s if s < 300 || s == 409 || s == 422 => Decision::Allow,
        s => panic!("unexpected status {s}"),
    }
}

#[tokio::test]
async fn every_route_gives_every_kind_of_caller_exactly_its_rights() {
    // Arrange
    let app = App::start(generous()).await;
    let (_, admin) = app.token("ops", Role::Admin, None).await;
    let (_, teammate) = app.token("dev", Role::Developer, Some("web")).await;
    let (_, stranger) = app.token("other", Role::Developer, Some("data")).await;
    let (_, ci_owner) = app.token("pipeline", Role::Ci, Some("web")).await;
    let (_, ci_other) = app.token("pipeline", Role::Ci, Some("web")).await;
    let (_, viewer) = app.token("watcher", Role::Viewer, Some("web")).await;
    let (revoked_id, revoked) = app.token("gone", Role::Admin, None).await;
    app.store
        .revoke_token(&revoked_id, Timestamp::now())
        .await
        .unwrap();
    let (_, expired) = app
        .token_with("old", Role::Admin, None, Some(Timestamp::UNIX_EPOCH))
        .await;
    let (victim_token, _) = app.token("victim", Role::Viewer, None).await;
    let anonymous = [
        None,
        Some("Bearer".to_owned()),
        Some("Basic dXNlcjpwYXNz".to_owned()),
        Some("Bearer not-a-token".to_owned()),
        Some(bearer(TokenSecret::generate().expose())),
        Some(bearer(&revoked)),
        Some(bearer(&expired)),
        Some(format!("Bearer {}", "a".repeat(60 * 1024))),
        Some(bearer(&app.key.sign(json!({}), &json!({
            "iss": app.issuer.github(), "aud": "vcm", "iat": 1, "exp": 2,
            "repository": "octo-org/octo-repo", "sub": "repo:octo-org/octo-repo:ref:refs/heads/main",
        })))),
    ];
    let known = [
        (Who::Admin, bearer(&admin)),
        (Who::Teammate, bearer(&teammate)),
        (Who::Stranger, bearer(&stranger)),
        (Who::CiOwner, bearer(&ci_owner)),
        (Who::CiOther, bearer(&ci_other)),
        (Who::Viewer, bearer(&viewer)),
        (Who::OidcTeammate, bearer(&app.github_token())),
    ];
    let (_, _, doc) = app.call(Method::GET, "/openapi.json", None, None).await;
    let mut routes = vec![];
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            routes.push((method.clone(), path.clone()));
        }
    }
    assert!(
        routes.len() >= 14,
        "the document lists the routes: {routes:?}"
    );

    let mut failures = vec![];
    for (method, path) in &routes {
        let mut callers: Vec<(Who, Option<String>)> = anonymous
            .iter()
            .map(|a| (Who::Anonymous, a.clone()))
            .collect();
        callers.extend(known.iter().map(|(w, a)| (*w, Some(a.clone()))));
        callers.push((Who::CertTeammate, None));
        for (who, auth) in callers {
            let Some(expected) = decide(method, path, who) else {
                failures.push(format!("{method} {path}: no access decision in the matrix"));
                break;
            };
            // A fresh target each time (created by the ci owner in team web), so one caller's
            // delete does not change the next one's answer.
            let (_, _, cluster) = app
                .call(
                    Method::POST,
                    "/v1/clusters",
                    Some(&bearer(&ci_owner)),
                    Some(json!({})),
                )
                .await;
            let id = cluster["id"].as_str().unwrap().to_owned();
            let concrete = if path.starts_with("/v1/tokens/") {
                path.replace("{id}", &victim_token)
            } else {
                // NB: the cluster is Pending, so it has no credential to name: an allowed
                // caller learns that this one does not exist (below), the others nothing.
                path.replace("{id}", &id)
                    .replace("{credential}", "g-000000000000")
                    .replace("{team}", "web")
            };
            let concrete = if method == "delete" && path == "/v1/clusters" {
                format!("{concrete}?label=none=none")
            } else {
                concrete
            };

            // Act
            let client = if who == Who::CertTeammate {
                &app.mtls
            } else {
                &app.http
            };
            let (status, headers, body) = app
                .call_via(
                    client,
                    method.to_uppercase().parse().unwrap(),
                    &concrete,
                    auth.as_deref(),
                    body_for(method, path),
                )
                .await;

            // Assert
            let no_such_credential = path.ends_with("{credential}")
                && status == StatusCode::NOT_FOUND
                && body["error"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("has no gateway credential"));
            let got = if no_such_credential {
                Decision::Allow
            } else {
                observed(status)
            };
            if got != expected {
                failures.push(format!(
                    "{method} {path} as {who:?} ({}): expected {expected:?}, got {status} {body}",
                    auth.as_deref()
                        .map_or("no header", |a| &a[..a.len().min(16)])
                ));
            }
            if status == StatusCode::UNAUTHORIZED {
                assert_eq!(headers["www-authenticate"], "Bearer");
            }
            if status.is_client_error() && status != StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE {
                assert!(body["error"]["message"].as_str().is_some(), "{body}");
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
