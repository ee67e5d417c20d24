//! Router-test support: an [`AppState`] over an in-memory SQLite store and a driver that is
//! never ready (router tests never reconcile; they only exercise the API surface).
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use async_trait::async_trait;
use axum::{
    Router,
    body::{Body, Bytes},
    http::{HeaderMap, Request, StatusCode},
};
use http_body_util::BodyExt as _;
use serde_json::Value;
use tokio::sync::Notify;
use tower::ServiceExt as _;

use super::AppState;
use crate::auth::{Authenticator, bootstrap_token};
use crate::controlplane::Kubeconfig;
use crate::domain::{Cluster, ClusterId, TokenSecret};
use crate::driver::{Driver, DriverError, Ensured};
use crate::service::{ClusterPolicy, ClusterService};
use crate::store::{SqliteStore, Store};

/// The bearer token every [`mk_state`] accepts (role `admin`).
pub(crate) const TOKEN: &str =
    "vcm_0000000000000000000000000000000000000000000000000000000000000001";

/// A driver that answers every call with a transient failure.
#[derive(Debug)]
pub(crate) struct UnavailableDriver;

#[async_trait]
impl Driver for UnavailableDriver {
    fn name(&self) -> &'static str {
        "unavailable"
    }

    async fn hosts(&self) -> Vec<crate::driver::HostInfo> {
        vec![crate::driver::HostInfo {
            name: "local".into(),
            labels: Default::default(),
            max_clusters: None,
            reachable: true,
            message: String::new(),
        }]
    }

    async fn ensure(&self, _: &Cluster) -> Result<Ensured, DriverError> {
        Err(unavailable())
    }

    async fn delete(&self, _: &ClusterId) -> Result<(), DriverError> {
        Err(unavailable())
    }

    async fn admin_kubeconfig(&self, _: &Cluster) -> Result<Kubeconfig, DriverError> {
        Err(unavailable())
    }

    async fn list_managed(&self) -> Result<Vec<ClusterId>, DriverError> {
        Err(unavailable())
    }
}

fn unavailable() -> DriverError {
    DriverError::Transient("router tests have no driver".into())
}

/// A state over a fresh in-memory store, accepting [`TOKEN`].
pub(crate) async fn mk_state() -> AppState {
    mk_state_with(Arc::new(UnavailableDriver)).await
}

/// Like [`mk_state`], over `driver`.
pub(crate) async fn mk_state_with(driver: Arc<dyn Driver>) -> AppState {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open("sqlite::memory:").await.unwrap());
    mk_state_on(store, driver).await
}

/// Like [`mk_state_with`], over `store` (a PostgreSQL one, for the outage tests).
pub(crate) async fn mk_state_on(store: Arc<dyn Store>, driver: Arc<dyn Driver>) -> AppState {
    let secret = TokenSecret::parse(TOKEN).unwrap();
    bootstrap_token(
        store.as_ref(),
        "tester",
        crate::domain::Role::Admin,
        &secret,
    )
    .await
    .unwrap();
    let service = ClusterService::new(
        store.clone(),
        driver,
        ClusterPolicy::default(),
        Arc::new(Notify::new()),
    );
    AppState::new(service, Arc::new(Authenticator::new(store)))
}

/// Send `request` and return status, headers and the raw body.
pub(crate) async fn mk_call_raw(
    app: Router,
    request: Request<Body>,
) -> (StatusCode, HeaderMap, Bytes) {
    crate::telemetry::init_for_tests();
    let response = app.oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    (parts.status, parts.headers, bytes)
}

/// Send `request` and return status, headers and the JSON body.
pub(crate) async fn mk_call(app: Router, request: Request<Body>) -> (StatusCode, HeaderMap, Value) {
    let (status, headers, bytes) = mk_call_raw(app, request).await;
    let json = serde_json::from_slice(&bytes)
        .unwrap_or_else(|err| panic!("body {bytes:?} is not JSON: {err}"));
    (status, headers, json)
}
