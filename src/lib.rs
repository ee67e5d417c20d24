//! vcm: temporary Kubernetes clusters for CI/CD, on demand, behind a secure REST API.
//!
//! One library holds the whole application; `src/main.rs` only parses arguments, initialises
//! telemetry and dispatches here, so tests and other binaries reuse everything.
#![forbid(unsafe_code)]

/// The /v1 wire types shared by the HTTP handlers, the client and the CLI.
pub mod api;
/// The tamper-evident audit log of every request.
pub mod audit;
/// Authentication: bearer API tokens (stored only as hashes) resolved to a `Principal`.
pub mod auth;
/// Command-line interface: `vcm server`, `vcm cluster …`; argument parsing and dispatch.
pub mod cli;
/// Typed REST client for the /v1 API, used by the CLI and by tests.
pub mod client;
/// Layered configuration: defaults < TOML file < `VCM_*` environment < flags.
pub mod config;
/// Real Kubernetes control-plane processes (etcd, kube-apiserver) with their own PKI: the
/// building blocks of the local driver and of the test bed.
pub mod controlplane;
/// The VirtualCluster door: a custom resource on a management cluster, reconciled into clusters.
pub mod crd;
/// The cluster resource and its rules (ids, names, durations, labels, phases, tokens); no I/O.
pub mod domain;
/// How virtual clusters are made: the `Driver` trait and the local driver.
pub mod driver;
/// The crate error: typed module errors combined, with kinds and metric labels.
pub mod error;
/// Small file-system helpers (owner-only credential files).
pub mod fsutil;
/// The cluster gateway: `/k8s/<id>/…` to each cluster's Kubernetes API.
pub mod gateway;
/// HTTP door: the axum router, health endpoints and error mapping.
pub mod http;
/// What `GET /metrics` exports (Prometheus, OpenMetrics text).
pub mod metrics;
/// The alert notifier: failed clusters, full hosts and stuck clusters posted to webhooks
/// through a durable outbox.
pub mod notify;
/// Operators' Rego policies (`[policy]`): the input document, the `data.vcm.deny` decision,
/// evaluation under a time limit, and hot reload of the files.
pub mod policy;
/// Waiting for a condition: one poll-until helper.
pub mod poll;
/// The reconciler: drives each cluster one persisted step at a time towards its desired phase.
pub mod reconciler;
/// `Server::build(config)` and `run_until_stopped(shutdown)`: wiring of every long-running task.
pub mod server;
/// The use-cases every door calls: create, get, list, update, delete, kubeconfig, keepalive.
pub mod service;
/// Where state lives: the `Store` trait, SQLite and PostgreSQL backends and conformance suite.
pub mod store;
/// Logging set-up (JSON or pretty) with an `EnvFilter`.
pub mod telemetry;
/// Test support: a Kubernetes test bed of real binaries on loopback ports (tier A: etcd +
/// kube-apiserver; tier B: + controller-manager, scheduler and a kwok node), and a throw-away
/// PostgreSQL server for the store's tests.
#[cfg(feature = "testing")]
pub mod testing;
/// TLS for the API listener: rustls with HTTP/1.1 and HTTP/2, certificate hot reload, and
/// mutual TLS (client certificates mapped to principals by configuration).
pub mod tls;
/// Pull-request clusters from GitHub and Bitbucket webhooks.
pub mod webhooks;
/// Background workers: TTL and idle pruning, record purging, orphan sweeping.
pub mod workers;
