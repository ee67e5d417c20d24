//! The audit log over real HTTP: every route of the served document (so a new route is covered
//! the day it is documented), both webhook doors, the gateway and a path no route matches each
//! leave a `completed` record with the request's id, action, principal and decision; a mutating
//! request leaves a `received` record before it. A refusal and a failed authentication are
//! recorded as such. The chain, read through `GET /v1/audit`, verifies; and no credential used
//! in the run appears anywhere in the database files.

use std::collections::HashMap;
use std::time::Duration;

use vcm::audit::{Anchor, Walk};
use vcm::domain::{AuditRecord, Decision as Recorded, Door, Stage};

use super::matrix::body_for;
use super::*;

/// One request made, and what its record must say.
struct Made {
    request_id: String,
    action: String,
    door: Door,
    principal: Option<String>,
    decision: Recorded,
    mutating: bool,
}

#[tokio::test]
async fn every_route_and_door_leaves_a_record_and_no_credential_does() {
    // Arrange
    let app = App::start(generous()).await;
    let (admin_id, admin) = app.token("ops", Role::Admin, None).await;
    let (viewer_id, viewer) = app.token("watcher", Role::Viewer, Some("web")).await;
    let (victim, _) = app.token("victim", Role::Viewer, None).await;
    let unknown = TokenSecret::generate().expose().to_owned();
    let oidc = app.github_token();
    let (_, _, doc) = app.call(Method::GET, "/openapi.json", None, None).await;
    let mut routes: Vec<(String, String)> = vec![];
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            routes.push((method.to_uppercase(), path.clone()));
        }
    }
    assert!(routes.len() >= 16, "{routes:?}");
    let admin_subject = format!("token:{admin_id}");

    // Act: every documented route as the admin, against a fresh cluster.
    let mut made = vec![];
    for (method, template) in &routes {
        let (_, _, cluster) = app
            .call(
                Method::POST,
                "/v1/clusters",
                Some(&bearer(&admin)),
                Some(json!({})),
            )
            .await;
        let id = cluster["id"].as_str().unwrap();
        let path = if template.starts_with("/v1/tokens/") {
            template.replace("{id}", &victim)
        } else {
            template
                .replace("{id}", id)
                .replace("{credential}", "g-000000000000")
                .replace("{team}", "web")
        };
        let path = if method == "DELETE" && template == "/v1/clusters" {
            format!("{path}?label=none=none")
        } else {
            path
        };
        let body = body_for(&method.to_lowercase(), template);
        let (request_id, _) = send(&app, method, &path, Some(&admin), body).await;
        made.push(Made {
            request_id,
            action: format!("{method} {template}"),
            door: Door::Api,
            principal: Some(admin_subject.clone()),
            decision: Recorded::Allowed,
            mutating: method != "GET",
        });
    }
    // The doors no document lists, a path no route matches, a refusal, failed authentications.
    let extra = [
        (
            "POST",
            "/v1/webhooks/github",
            Door::Webhook,
            "POST /v1/webhooks/github",
        ),
        (
            "POST",
            "/v1/webhooks/bitbucket",
            Door::Webhook,
            "POST /v1/webhooks/bitbucket",
        ),
        (
            "GET",
            "/k8s/c-none/api/v1/namespaces/default/pods",
            Door::Gateway,
            "k8s list pods default/",
        ),
        ("GET", "/no/such/route", Door::Api, "GET /no/such/route"),
    ];
    for (method, path, door, action) in extra {
        let (request_id, status) = send(&app, method, path, Some(&admin), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}");
        made.push(Made {
            request_id,
            action: action.into(),
            door,
            principal: None,
            decision: Recorded::Allowed,
            mutating: method == "POST",
        });
    }
    let (request_id, status) =
        send(&app, "POST", "/v1/clusters", Some(&viewer), Some(json!({}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    made.push(Made {
        request_id,
        action: "POST /v1/clusters".into(),
        door: Door::Api,
        principal: Some(format!("token:{viewer_id}")),
        decision: Recorded::Denied,
        mutating: true,
    });
    for secret in [unknown.as_str(), "not-a-token"] {
        let (request_id, status) = send(&app, "GET", "/v1/clusters", Some(secret), None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        made.push(Made {
            request_id,
            action: "GET /v1/clusters".into(),
            door: Door::Api,
            principal: None,
            decision: Recorded::Unauthenticated,
            mutating: false,
        });
    }
    let (_, status) = send(&app, "GET", "/v1/clusters", Some(&oidc), None).await;
    assert_eq!(status, StatusCode::OK);

    // Assert: each request's records, read back through the API.
    let records = wait_for_records(&app, &admin, &made).await;
    let mut failures = vec![];
    for m in &made {
        let mine: Vec<&AuditRecord> = records
            .iter()
            .filter(|r| r.entry.request_id == m.request_id)
            .collect();
        let Some(done) = mine.iter().find(|r| r.entry.stage == Stage::Completed) else {
            failures.push(format!("{}: no completed record", m.action));
            continue;
        };
        let e = &done.entry;
        if e.action != m.action || e.door != m.door || e.decision != Some(m.decision) {
            failures.push(format!(
                "{}: recorded {} {:?} {:?} (status {:?})",
                m.action, e.action, e.door, e.decision, e.status
            ));
        }
        if m.principal.is_some() && e.principal != m.principal {
            failures.push(format!("{}: principal {:?}", m.action, e.principal));
        }
        if e.source.as_deref() != Some("127.0.0.1") || e.duration_us.is_none() {
            failures.push(format!("{}: source {:?}", m.action, e.source));
        }
        let received = mine.iter().find(|r| r.entry.stage == Stage::Received);
        match (m.mutating, received) {
            (true, Some(r)) if r.seq < done.seq => {}
            (false, None) => {}
            (mutating, r) => failures.push(format!(
                "{}: mutating {mutating}, received record {:?}",
                m.action,
                r.map(|r| r.seq)
            )),
        }
        match m.decision {
            Recorded::Denied if e.code.as_deref() != Some("forbidden") || e.messages.is_empty() => {
                failures.push(format!("{}: denial without its message: {e:?}", m.action));
            }
            Recorded::Unauthenticated if e.auth_error.is_none() || e.principal.is_some() => {
                failures.push(format!("{}: 401 without its reason: {e:?}", m.action));
            }
            _ => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // The chain verifies from the anchor the server states.
    let (_, _, anchor) = app
        .call(Method::GET, "/v1/audit/anchor", Some(&bearer(&admin)), None)
        .await;
    let anchor: Anchor = serde_json::from_value(anchor).unwrap();
    let mut walk = Walk::start(&anchor, &anchor.public_key).unwrap();
    for r in &records {
        walk.push(r).unwrap();
    }
    // NB: strict: the writer signs the last record of every batch it stores, so whatever the
    // listing saw ends in a signed record.
    let verified = walk.finish().unwrap();
    assert!(verified.signed >= 1 && verified.records as usize == records.len());

    // No credential is anywhere in the database's files.
    let mut secrets = vec![admin.clone(), viewer.clone(), unknown.clone(), oidc.clone()];
    secrets.push(oidc.split('.').nth(2).unwrap().to_owned());
    let dir = app._dir.path();
    for file in std::fs::read_dir(dir).unwrap() {
        let path = file.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        for secret in &secrets {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "a credential is in {}",
                path.display()
            );
        }
    }
}

/// Sends one request with `secret` as a bearer token; its request id and status.
async fn send(
    app: &App,
    method: &str,
    path: &str,
    secret: Option<&str>,
    body: Option<Value>,
) -> (String, StatusCode) {
    let (status, headers, _) = app
        .call(
            method.parse().unwrap(),
            path,
            secret.map(bearer).as_deref(),
            body,
        )
        .await;
    let id = headers["x-request-id"].to_str().unwrap().to_owned();
    (id, status)
}

/// Every record, oldest first, once each request of `made` has its completed record.
async fn wait_for_records(app: &App, admin: &str, made: &[Made]) -> Vec<AuditRecord> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let mut records: Vec<AuditRecord> = vec![];
        let mut cursor: Option<String> = None;
        loop {
            let mut path = "/v1/audit?order=asc&limit=1000".to_owned();
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            let (status, _, page) = app
                .call(Method::GET, &path, Some(&bearer(admin)), None)
                .await;
            assert_eq!(status, StatusCode::OK, "{page}");
            let items: Vec<AuditRecord> = serde_json::from_value(page["items"].clone()).unwrap();
            let empty = items.is_empty();
            records.extend(items);
            match page["next_cursor"].as_str() {
                Some(next) if !empty => cursor = Some(next.to_owned()),
                _ => break,
            }
        }
        let done: HashMap<&str, ()> = records
            .iter()
            .filter(|r| r.entry.stage == Stage::Completed)
            .map(|r| (r.entry.request_id.as_str(), ()))
            .collect();
        if made
            .iter()
            .all(|m| done.contains_key(m.request_id.as_str()))
        {
            return records;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "records missing after 20 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
