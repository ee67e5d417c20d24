//! TLS on the API listener, end to end: real servers on loopback ports with rcgen certificates
//! in a temporary directory, reqwest clients, the typed client and the real `vcm` binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod dev;
mod mtls;
mod pki;
mod serving;

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use tokio::sync::{Notify, oneshot};
use vcm::{
    auth::{Authenticator, bootstrap_token},
    config::{ClientCertRule, Config, RateLimitConfig, TlsConfig},
    domain::{Role, TokenSecret},
    driver::fake::FakeDriver,
    http::AppState,
    server::Server,
    service::{ClusterPolicy, ClusterService},
    store::{SqliteStore, Store},
};

use self::pki::{Ca, Pem};

const TOKEN: &str = "vcm_00000000000000000000000000000000000000000000000000000000000000aa";
/// The CN of the certificate a test server starts with.
const FIRST_CN: &str = "vcm-server-1";

/// A running TLS server and its files; dropping it stops the server.
struct TestApp {
    addr: SocketAddr,
    ca: Ca,
    dir: tempfile::TempDir,
    cert_file: PathBuf,
    key_file: PathBuf,
    stop: oneshot::Sender<()>,
    running: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// How the server under test is made.
enum Kind {
    /// `Server::build` of a `--dev`-like configuration (SQLite, local driver, background tasks).
    Dev,
    /// A state over the fake driver on a pre-bound listener, with mutual TLS and its rules.
    Mtls,
}

/// The rules every mTLS test server has.
fn mk_rules() -> Vec<ClientCertRule> {
    let rule = |role| ClientCertRule {
        cn: None,
        o: None,
        ou: None,
        uri_san: None,
        dns_san: None,
        name: None,
        role,
        team: None,
    };
    vec![
        ClientCertRule {
            o: Some("ci-bots".into()),
            name: Some("web-ci".into()),
            team: Some("web".into()),
            ..rule(Role::Ci)
        },
        ClientCertRule {
            cn: Some("ops".into()),
            ..rule(Role::Admin)
        },
    ]
}

async fn spawn_app(kind: Kind) -> TestApp {
    spawn_app_with(kind, RateLimitConfig::default()).await
}

/// Like [`spawn_app`]; an `Mtls` server gets `limits`.
async fn spawn_app_with(kind: Kind, limits: RateLimitConfig) -> TestApp {
    vcm::telemetry::init_for_tests();
    let ca = Ca::new("vcm test CA");
    let dir = tempfile::tempdir().unwrap();
    let (cert_file, key_file, ca_file) = (
        dir.path().join("server.pem"),
        dir.path().join("server.key"),
        dir.path().join("client-ca.pem"),
    );
    write_pair(&cert_file, &key_file, &ca.server(FIRST_CN, 1));
    std::fs::write(&ca_file, &ca.cert_pem).unwrap();
    let mut tls = TlsConfig {
        cert_file: Some(cert_file.clone()),
        key_file: Some(key_file.clone()),
        reload_interval_secs: 1,
        ..TlsConfig::default()
    };
    let server = match kind {
        Kind::Dev => {
            let config = Config {
                listen: "127.0.0.1:0".parse().unwrap(),
                data_dir: dir.path().join("data"),
                dev: true,
                dev_token: TokenSecret::parse(TOKEN),
                tls,
                ..Config::default()
            };
            Server::build(config).await.unwrap()
        }
        Kind::Mtls => {
            tls.client_ca_file = Some(ca_file);
            tls.client_rules = mk_rules();
            let config = Config {
                tls,
                ..Config::default()
            };
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let state = mk_state().await.with_rate_limits(limits);
            Server::build_with_listener(config, listener, state).unwrap()
        }
    };
    assert_eq!(server.scheme(), "https");
    let addr = server.addr();
    let (stop, stopped) = oneshot::channel::<()>();
    let running = tokio::spawn(server.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    TestApp {
        addr,
        ca,
        dir,
        cert_file,
        key_file,
        stop,
        running,
    }
}

/// An SQLite store in memory with the admin token, over the fake driver; nothing reconciles.
async fn mk_state() -> AppState {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open("sqlite::memory:").await.unwrap());
    bootstrap_token(
        store.as_ref(),
        "admin",
        Role::Admin,
        &TokenSecret::parse(TOKEN).unwrap(),
    )
    .await
    .unwrap();
    let service = ClusterService::new(
        store.clone(),
        Arc::new(FakeDriver::default()),
        ClusterPolicy::default(),
        Arc::new(Notify::new()),
    );
    AppState::new(service, Arc::new(Authenticator::new(store)))
}

fn write_pair(cert_file: &std::path::Path, key_file: &std::path::Path, pem: &Pem) {
    std::fs::write(cert_file, &pem.cert).unwrap();
    std::fs::write(key_file, &pem.key).unwrap();
}

// === impl TestApp ===

impl TestApp {
    /// Signals the server to stop; what `run_until_stopped` returned, if it did within 10 s.
    async fn stop(self) -> Option<anyhow::Result<()>> {
        let _ = self.stop.send(());
        let outcome = tokio::time::timeout(Duration::from_secs(10), self.running).await;
        outcome
            .ok()
            .map(|joined| joined.expect("the server task does not panic"))
    }

    fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }

    /// A reqwest client trusting only the test CA, reporting the server's certificate.
    fn https(&self) -> reqwest::ClientBuilder {
        reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(self.ca.cert_pem.as_bytes()).unwrap()])
            .tls_info(true)
            .timeout(Duration::from_secs(10))
    }

    /// Like [`TestApp::https`], presenting `pem` as its client certificate.
    fn https_as(&self, pem: &Pem) -> reqwest::Client {
        let identity =
            reqwest::Identity::from_pem(format!("{}\n{}", pem.cert, pem.key).as_bytes()).unwrap();
        self.https().identity(identity).build().unwrap()
    }

    /// Writes `pem` to a file in the test directory; its path.
    fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

/// The CN of the certificate the server presented on `response`'s connection.
fn served_cn(response: &reqwest::Response) -> String {
    let info = response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .expect("the client was built with tls_info(true)");
    let der = info
        .peer_certificate()
        .expect("the server sent a certificate");
    vcm::tls::CertNames::from_der(der).unwrap().cn.unwrap()
}
