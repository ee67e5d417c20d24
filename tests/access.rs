//! Who may do what, over real HTTP on a loopback port: every route of the served API document
//! against every kind of credential (API tokens of each role, a CI OIDC token from a local
//! issuer, a client certificate over mutual TLS), with an expected decision for each; a route
//! the table has no decision for fails the test. The server speaks HTTPS with client
//! certificates optional, as a production one would. Then rate limits, and token revocation taking effect on
//! the next request. The store is a real SQLite file; the driver is the scripted fake (access
//! decisions do not depend on it).
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

/// The local CI OIDC issuer of `tests/oidc`.
#[path = "oidc/issuer.rs"]
mod issuer;
/// The test PKI of `tests/tls`.
#[path = "tls/pki.rs"]
mod pki;

use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::{Notify, oneshot};
use vcm::auth::{Authenticator, OidcVerifier};
use vcm::config::{ClientCertRule, Config, OidcIssuerConfig, OidcRule, RateLimitConfig, TlsConfig};
use vcm::domain::{ApiToken, Role, Timestamp, TokenSecret};
use vcm::driver::fake::FakeDriver;
use vcm::http::AppState;
use vcm::server::Server;
use vcm::service::{ClusterPolicy, ClusterService};
use vcm::store::{SqliteStore, Store};

/// A running server; dropping it stops the server.
struct App {
    base: String,
    http: reqwest::Client,
    /// Presents the client certificate of `alice-laptop` (developer of web by a tls rule).
    mtls: reqwest::Client,
    store: Arc<dyn Store>,
    issuer: issuer::Issuer,
    key: issuer::Key,
    _dir: tempfile::TempDir,
    _stop: oneshot::Sender<()>,
}

impl App {
    async fn start(limits: RateLimitConfig) -> Self {
        vcm::telemetry::init_for_tests();
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/vcm.db", dir.path().display());
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&url).await.unwrap());
        // A GitHub-shaped issuer: pushes to main of octo-org/octo-repo are developers of web.
        let issuer = issuer::Issuer::start().await;
        let key = issuer::Key::ec("k1");
        issuer.publish(&[&key]);
        let oidc = OidcVerifier::new(&[OidcIssuerConfig {
            name: "github".into(),
            issuer: issuer.github(),
            audience: "vcm".into(),
            jwks_url: None,
            clock_skew_secs: 60,
            jwks_min_refetch_secs: 30,
            rules: vec![OidcRule {
                name: Some("octo-repo".into()),
                claims: [("repository".to_owned(), "octo-org/octo-repo".to_owned())].into(),
                role: Role::Developer,
                team: Some("web".into()),
            }],
        }])
        .unwrap();
        let service = ClusterService::new(
            store.clone(),
            Arc::new(FakeDriver::default()),
            ClusterPolicy::default(),
            Arc::new(Notify::new()),
        );
        let auth = Authenticator::new(store.clone()).with_oidc(oidc);
        let state = AppState::new(service, Arc::new(auth)).with_rate_limits(limits);
        let ca = pki::Ca::new("access test CA");
        let server_pem = ca.server("vcm", 1);
        let (cert_file, key_file, ca_file) = (
            dir.path().join("server.pem"),
            dir.path().join("server.key"),
            dir.path().join("client-ca.pem"),
        );
        std::fs::write(&cert_file, &server_pem.cert).unwrap();
        std::fs::write(&key_file, &server_pem.key).unwrap();
        std::fs::write(&ca_file, &ca.cert_pem).unwrap();
        let tls = TlsConfig {
            cert_file: Some(cert_file),
            key_file: Some(key_file),
            client_ca_file: Some(ca_file),
            client_rules: vec![ClientCertRule {
                cn: Some("alice-laptop".into()),
                o: None,
                ou: None,
                uri_san: None,
                dns_san: None,
                name: None,
                role: Role::Developer,
                team: Some("web".into()),
            }],
            ..TlsConfig::default()
        };
        let config = Config {
            tls,
            ..Config::default()
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = Server::build_with_listener(config, listener, state).unwrap();
        let base = format!("https://{}", server.addr());
        let trusting = || {
            let ca = reqwest::Certificate::from_pem(ca.cert_pem.as_bytes()).unwrap();
            reqwest::Client::builder().tls_certs_only([ca])
        };
        let laptop = ca.client("alice-laptop", None);
        let identity =
            reqwest::Identity::from_pem(format!("{}\n{}", laptop.cert, laptop.key).as_bytes())
                .unwrap();
        let mtls = trusting().identity(identity).build().unwrap();
        let http = trusting().build().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(server.run_until_stopped(async move {
            let _ = stopped.await;
        }));
        Self {
            base,
            http,
            mtls,
            store,
            issuer,
            key,
            _dir: dir,
            _stop: stop,
        }
    }

    /// Store a token directly (as `vcm token create --bootstrap` would) and return its secret.
    async fn token(&self, name: &str, role: Role, team: Option<&str>) -> (String, String) {
        self.token_with(name, role, team, None).await
    }

    async fn token_with(
        &self,
        name: &str,
        role: Role,
        team: Option<&str>,
        expires_at: Option<Timestamp>,
    ) -> (String, String) {
        let secret = TokenSecret::generate();
        let token = ApiToken {
            hash: secret.hash(),
            ..ApiToken::new(name, role, team.map(Into::into), expires_at)
        };
        self.store.insert_token(&token).await.unwrap();
        (token.id, secret.expose().to_owned())
    }

    /// A GitHub Actions ID token of a push to main of octo-org/octo-repo (GitHub's documented
    /// claims, trimmed), signed by the issuer's key.
    fn github_token(&self) -> String {
        let iat = Timestamp::now().as_second();
        let claims = json!({
            "iss": self.issuer.github(), "aud": "vcm", "iat": iat, "nbf": iat - 600, "exp": iat + 300,
            "sub": "repo:octo-org/octo-repo:ref:refs/heads/main", "ref": "refs/heads/main",
            "repository": "octo-org/octo-repo", "repository_owner": "octo-org",
            "event_name": "push", "ref_type": "branch",
        });
        self.key.sign(json!({}), &claims)
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        auth: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        self.call_via(&self.http, method, path, auth, body).await
    }

    async fn call_via(
        &self,
        client: &reqwest::Client,
        method: Method,
        path: &str,
        auth: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut req = client.request(method, format!("{}{path}", self.base));
        if let Some(auth) = auth {
            req = req.header("authorization", auth);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.unwrap();
        let (status, headers) = (res.status(), res.headers().clone());
        let text = res.text().await.unwrap();
        let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, headers, json)
    }
}

fn bearer(secret: &str) -> String {
    format!("Bearer {secret}")
}

/// Limits high enough that the matrix never meets them.
fn generous() -> RateLimitConfig {
    RateLimitConfig {
        address_burst: 100_000,
        principal_burst: 100_000,
        ..RateLimitConfig::default()
    }
}

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
        ("get", "/v1/clusters/{id}") | ("get", "/v1/clusters/{id}/events") => {
            on_cluster(false, true)
        }
        ("put", "/v1/clusters/{id}") => on_cluster(true, false),
        ("delete", "/v1/clusters/{id}")
        | ("post", "/v1/clusters/{id}/kubeconfig")
        | ("post", "/v1/clusters/{id}/keepalive") => on_cluster(true, true),
        ("post", "/v1/clusters/{id}/forget") => admin_only,
        ("post", "/v1/tokens") | ("get", "/v1/tokens") => admin_only,
        ("get", "/v1/tokens/{id}") | ("delete", "/v1/tokens/{id}") => admin_only,
        _ => return None,
    })
}

/// A body the route accepts from an allowed caller.
fn body_for(method: &str, path: &str) -> Option<Value> {
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
                path.replace("{id}", &id)
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
            let got = observed(status);
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

#[tokio::test]
async fn lists_and_bulk_deletes_cover_only_what_the_caller_may_see_and_names_leak_nothing() {
    // Arrange
    let app = App::start(generous()).await;
    let (_, web_dev) = app.token("dev", Role::Developer, Some("web")).await;
    let (_, data_dev) = app.token("dev", Role::Developer, Some("data")).await;
    let (_, ci) = app.token("pipeline", Role::Ci, Some("web")).await;
    let (_, viewer) = app.token("watcher", Role::Viewer, Some("web")).await;
    for (auth, name) in [(&web_dev, "web-a"), (&ci, "web-ci"), (&data_dev, "data-a")] {
        let body = json!({"name": name, "labels": {"run": "1"}});
        let (status, _, _) = app
            .call(
                Method::POST,
                "/v1/clusters",
                Some(&bearer(auth)),
                Some(body),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED);
    }
    let names = |list: &Value| -> Vec<String> {
        let mut n: Vec<String> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_owned())
            .collect();
        n.sort();
        n
    };

    // Act
    let (_, _, seen_by_web) = app
        .call(Method::GET, "/v1/clusters", Some(&bearer(&web_dev)), None)
        .await;
    let (_, _, seen_by_ci) = app
        .call(Method::GET, "/v1/clusters", Some(&bearer(&ci)), None)
        .await;
    let (_, _, seen_by_viewer) = app
        .call(Method::GET, "/v1/clusters", Some(&bearer(&viewer)), None)
        .await;
    let (taken, _, taken_body) = app
        .call(
            Method::POST,
            "/v1/clusters",
            Some(&bearer(&web_dev)),
            Some(json!({"name": "data-a"})),
        )
        .await;
    let (viewer_bulk, _, _) = app
        .call(
            Method::DELETE,
            "/v1/clusters?label=run=1",
            Some(&bearer(&viewer)),
            None,
        )
        .await;
    let (_, _, deleted_by_ci) = app
        .call(
            Method::DELETE,
            "/v1/clusters?label=run=1",
            Some(&bearer(&ci)),
            None,
        )
        .await;
    let (_, _, deleted_by_web) = app
        .call(
            Method::DELETE,
            "/v1/clusters?label=run=1",
            Some(&bearer(&web_dev)),
            None,
        )
        .await;
    let (_, _, data_after) = app
        .call(
            Method::GET,
            "/v1/clusters/data-a",
            Some(&bearer(&data_dev)),
            None,
        )
        .await;

    // Assert
    assert_eq!(names(&seen_by_web), ["web-a", "web-ci"]);
    assert_eq!(names(&seen_by_ci), ["web-ci"]);
    assert_eq!(names(&seen_by_viewer), ["web-a", "web-ci"]);
    assert_eq!(taken, StatusCode::CONFLICT);
    let msg = taken_body["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("is taken") && !msg.contains("c-") && !msg.contains("token:"),
        "{msg}"
    );
    assert_eq!(viewer_bulk, StatusCode::FORBIDDEN);
    assert_eq!(
        deleted_by_ci["ids"].as_array().unwrap().len(),
        1,
        "{deleted_by_ci}"
    );
    assert_eq!(
        deleted_by_web["ids"].as_array().unwrap().len(),
        1,
        "only web-a was left to it: {deleted_by_web}"
    );
    assert_eq!(
        data_after["phase"], "Pending",
        "another team's cluster is untouched"
    );
}

#[tokio::test]
async fn a_revoked_token_is_refused_on_its_next_request_even_after_it_was_cached() {
    // Arrange
    let app = App::start(generous()).await;
    let (_, admin) = app.token("ops", Role::Admin, None).await;
    let (_, headers, made) = app
        .call(
            Method::POST,
            "/v1/tokens",
            Some(&bearer(&admin)),
            Some(json!({"name": "pipeline", "role": "ci", "team": "web", "ttl": "30d"})),
        )
        .await;
    assert_eq!(headers["cache-control"], "no-store");
    let secret = made["secret"].as_str().unwrap().to_owned();
    let id = made["token"]["id"].as_str().unwrap().to_owned();
    let (before, _, _) = app
        .call(Method::GET, "/v1/clusters", Some(&bearer(&secret)), None)
        .await;

    // Act
    let (revoke, _, revoked) = app
        .call(
            Method::DELETE,
            &format!("/v1/tokens/{id}"),
            Some(&bearer(&admin)),
            None,
        )
        .await;
    let (after, _, refusal) = app
        .call(Method::GET, "/v1/clusters", Some(&bearer(&secret)), None)
        .await;
    let (_, _, listed) = app
        .call(Method::GET, "/v1/tokens", Some(&bearer(&admin)), None)
        .await;

    // Assert
    assert_eq!(before, StatusCode::OK);
    assert_eq!(revoke, StatusCode::OK);
    assert!(revoked["revoked_at"].is_string(), "{revoked}");
    assert_eq!(after, StatusCode::UNAUTHORIZED);
    assert!(
        refusal["error"]["message"]
            .as_str()
            .unwrap()
            .contains("revoked"),
        "{refusal}"
    );
    assert!(
        !listed.to_string().contains(&secret),
        "a list never shows a secret"
    );
    assert!(made["token"]["expires_at"].is_string(), "{made}");
}

#[tokio::test]
async fn the_last_admin_token_cannot_be_revoked_and_bad_token_requests_say_what_is_wrong() {
    // Arrange
    let app = App::start(generous()).await;
    let (admin_id, admin) = app.token("ops", Role::Admin, None).await;
    let auth = bearer(&admin);

    // Act
    let (last, _, last_body) = app
        .call(
            Method::DELETE,
            &format!("/v1/tokens/{admin_id}"),
            Some(&auth),
            None,
        )
        .await;
    let (role, _, role_body) = app
        .call(
            Method::POST,
            "/v1/tokens",
            Some(&auth),
            Some(json!({"name": "x", "role": "root"})),
        )
        .await;
    let (unknown, _, _) = app
        .call(
            Method::POST,
            "/v1/tokens",
            Some(&auth),
            Some(json!({"name": "x", "role": "ci", "scope": "all"})),
        )
        .await;
    let (missing, _, _) = app
        .call(Method::GET, "/v1/tokens/t-000000000000", Some(&auth), None)
        .await;

    // Assert
    assert_eq!(last, StatusCode::CONFLICT);
    assert!(
        last_body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("last active admin")
    );
    assert_eq!(role, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        role_body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("admin, developer, ci, viewer")
    );
    assert_eq!(unknown, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(missing, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_principal_over_its_budget_gets_429_with_retry_after_and_others_do_not() {
    // Arrange
    let app = App::start(RateLimitConfig {
        principal_per_minute: 60,
        principal_burst: 5,
        address_per_minute: 60,
        address_burst: 3,
        ..RateLimitConfig::default()
    })
    .await;
    let (_, busy) = app.token("busy", Role::Ci, None).await;
    let (_, calm) = app.token("calm", Role::Ci, None).await;

    // Act
    let mut statuses = vec![];
    for _ in 0..6 {
        statuses.push(
            app.call(Method::GET, "/v1/clusters", Some(&bearer(&busy)), None)
                .await,
        );
    }
    let (calm_status, _, _) = app
        .call(Method::GET, "/v1/clusters", Some(&bearer(&calm)), None)
        .await;
    let wrong = bearer(TokenSecret::generate().expose());
    let mut guesses = vec![];
    for _ in 0..4 {
        guesses.push(
            app.call(Method::GET, "/v1/clusters", Some(&wrong), None)
                .await
                .0,
        );
    }
    let (healthz, _, _) = app.call(Method::GET, "/healthz", None, None).await;

    // Assert
    let codes: Vec<u16> = statuses.iter().map(|(s, _, _)| s.as_u16()).collect();
    assert_eq!(codes, [200, 200, 200, 200, 200, 429]);
    let (_, headers, body) = &statuses[5];
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "retry-after {retry}");
    assert_eq!(body["error"]["code"], "rate_limited");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("principal_per_minute")
    );
    assert_eq!(calm_status, StatusCode::OK);
    let guess_codes: Vec<u16> = guesses.iter().map(|s| s.as_u16()).collect();
    assert_eq!(
        guess_codes,
        [401, 401, 401, 429],
        "failed authentications spend the address budget"
    );
    assert_eq!(healthz, StatusCode::OK, "probes are never limited");
}
