//! Who may do what, over real HTTP on a loopback port: every route of the served API document
//! against every kind of credential (API tokens of each role, a CI OIDC token from a local
//! issuer, a client certificate over mutual TLS), with an expected decision for each; a route
//! the table has no decision for fails the test (`matrix.rs`). The server speaks HTTPS with
//! client certificates optional, as a production one would. Then lists and bulk deletes by
//! visibility, token administration, and rate limits (`scopes.rs`). Every route, door and
//! refusal leaves an audit record, and no credential reaches the database (`audit.rs`). The
//! store is a real SQLite file; the driver is the scripted fake (access decisions do not depend
//! on it).
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

/// The local CI OIDC issuer of `tests/oidc`.
#[path = "../oidc/issuer.rs"]
mod issuer;
/// The test PKI of `tests/tls`.
#[path = "../tls/pki.rs"]
mod pki;

mod audit;
mod matrix;
mod scopes;

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
                pull_request_clusters: None,
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
        let state = AppState::new(service, Arc::new(auth))
            .try_with_rate_limits(limits)
            .unwrap();
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
