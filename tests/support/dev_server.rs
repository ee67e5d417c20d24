//! A `vcm server --dev` built in the test process (`Server::build`, so configuration goes
//! through the same wiring as the binary), on a free loopback port with its own data directory;
//! dropping it stops the server. Shared by the identity tests through `#[path]`.

use std::net::SocketAddr;

use reqwest::StatusCode;
use serde_json::Value;
use tokio::sync::oneshot;
use vcm::config::Config;
use vcm::server::Server;

/// A running vcm server.
pub struct Vcm {
    /// Where it listens (plain HTTP on loopback).
    pub addr: SocketAddr,
    /// A client for it.
    pub http: reqwest::Client,
    _stop: oneshot::Sender<()>,
    _dir: tempfile::TempDir,
}

impl Vcm {
    /// A dev server whose configuration `complete` finishes (listen, data directory and `dev`
    /// are set already).
    pub async fn with_config(complete: impl FnOnce(Config) -> Config) -> Self {
        vcm::telemetry::init_for_tests();
        let dir = tempfile::tempdir().unwrap();
        let config = complete(Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: dir.path().to_path_buf(),
            dev: true,
            ..Config::default()
        });
        let server = Server::build(config).await.unwrap();
        let addr = server.addr();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(server.run_until_stopped(async move {
            let _ = stopped.await;
        }));
        Self {
            addr,
            http: reqwest::Client::new(),
            _stop: stop,
            _dir: dir,
        }
    }

    /// Status and body of `GET /v1/clusters` with `token`.
    pub async fn list(&self, token: &str) -> (StatusCode, Value) {
        let resp = self
            .http
            .get(format!("http://{}/v1/clusters", self.addr))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// The role probe: 404 for an admin, 403 for any other authenticated role.
    pub async fn forget_status(&self, token: &str) -> StatusCode {
        self.http
            .post(format!(
                "http://{}/v1/clusters/c-0000000000/forget",
                self.addr
            ))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .status()
    }
}
