//! The running server: assembles the application from the configuration ([`wiring`]), binds the
//! listener, serves the router beside the background workers, and shuts down in order.

/// Store, driver, service, authenticator and workers, built from the configuration.
pub mod wiring;

use std::{net::SocketAddr, pin::Pin, time::Duration};

use anyhow::Context as _;
use axum::serve::ListenerExt as _;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{
    config::Config,
    driver::local::LocalDriver,
    http::{self, AppState},
    reconciler::Reconciler,
    tls::{self, TlsListener, TlsMakeService, TlsServer},
    workers::Pruner,
};

/// The long-running tasks beside the HTTP server.
#[derive(Debug)]
pub struct Background {
    /// Drives clusters through their phases.
    pub reconciler: Reconciler,
    /// Deletes expired and idle clusters, purges records, sweeps orphans.
    pub pruner: Pruner,
    /// The local driver, to stop its etcd on a graceful shutdown when no cluster runs.
    pub local: Option<std::sync::Arc<LocalDriver>>,
    /// Carries out what webhook deliveries recorded, when a door is open.
    pub pull_requests: Option<crate::webhooks::Engine>,
    /// The Rego policy, reloaded when its files change.
    pub policy: Option<std::sync::Arc<crate::policy::Policy>>,
    /// Purges audit records past their retention.
    pub audit_retention: Option<crate::audit::Retention>,
    /// Posts alerts to the `[notify]` webhooks, when any is configured.
    pub notifier: Option<crate::notify::Notifier>,
    /// The VirtualCluster controller, when `[crd]` is enabled.
    pub crd: Option<crate::crd::Controller>,
}

/// A built server, bound and ready to run; build it, read [`Server::addr`], then run it.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    addr: SocketAddr,
    state: AppState,
    shutdown_grace: Duration,
    background: Option<Background>,
    /// TLS for the listener, when `[tls]` is configured (or made for a non-loopback dev server).
    tls: Option<TlsServer>,
    /// `[metrics] listen`: `/metrics` alone, plain HTTP, no authentication.
    metrics_listener: Option<TcpListener>,
}

// === impl Server ===

impl Server {
    /// The whole application from `config`: store, driver, service, authenticator, reconciler
    /// and pruner, listening on `config.listen` (port 0 picks a free port), over TLS when
    /// `[tls]` says so.
    pub async fn build(mut config: Config) -> anyhow::Result<Self> {
        // NB: checked before anything is opened or started, so a refused address changes nothing.
        let listen = config.listen;
        tls::dev::ensure_certificate(&mut config, listen)?;
        config.ensure_listen_allowed(config.listen)?;
        let (state, background) = wiring::assemble(&config).await?;
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        let metrics_listener = match config.metrics.listen.filter(|_| config.metrics.enabled) {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("binding {addr} for /metrics ([metrics] listen)"))?,
            ),
            None => None,
        };
        let mut server = Self::build_with_listener(config, listener, state)?;
        server.metrics_listener = metrics_listener;
        Ok(server.with_background(background))
    }

    /// A server of a given `state` (no background tasks unless added with
    /// [`Server::with_background`]) on a listener the caller bound already: for tests that
    /// assemble their own state. `config.listen` is ignored, but the listener's address must
    /// pass the same plain-HTTP rule. `config.tls` applies: with it the listener speaks TLS.
    pub fn build_with_listener(
        mut config: Config,
        listener: TcpListener,
        state: AppState,
    ) -> anyhow::Result<Self> {
        let addr = listener
            .local_addr()
            .context("reading the listener's address")?;
        tls::dev::ensure_certificate(&mut config, addr)?;
        config.ensure_listen_allowed(addr)?;
        let tls = TlsServer::from_config(&config.tls).context("setting up TLS")?;
        Ok(Self {
            listener,
            addr,
            state,
            shutdown_grace: config.shutdown_grace(),
            background: None,
            tls,
            metrics_listener: None,
        })
    }

    /// The address `/metrics` alone is served on (`[metrics] listen`), if any.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    /// Run these background tasks with the server: they start with it, stop with it, and a
    /// task that dies stops the server loudly.
    pub fn with_background(mut self, background: Background) -> Self {
        self.background = Some(background);
        self
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https` when the listener speaks TLS, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    /// Serves until `shutdown` resolves, then stops accepting, turns `/readyz` to 503, and
    /// lets in-flight requests finish for at most `shutdown_grace`; connections still open
    /// after that are dropped.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let scheme = self.scheme();
        let Self {
            listener,
            addr,
            state,
            shutdown_grace,
            background,
            tls,
            metrics_listener,
        } = self;
        let workers_stop = CancellationToken::new();
        let mut workers = tokio::task::JoinSet::new();
        let mut local = None;
        if let Some(bg) = background {
            workers.spawn(bg.reconciler.run(workers_stop.clone()));
            // NB: singletons: with several replicas on one store, one runs them at a time.
            let store = state.service.store().clone();
            let pruner = bg.pruner;
            workers.spawn(crate::workers::run_singleton(
                store.clone(),
                "pruner",
                workers_stop.clone(),
                move |stop| pruner.clone().run(stop),
            ));
            if let Some(engine) = bg.pull_requests {
                // NB: one replica carries out pull requests and posts their commit statuses, so
                // a commit never gets two GitHub check runs for one state; a delivery recorded
                // on another replica waits at most the engine's 1 s poll.
                workers.spawn(crate::workers::run_singleton(
                    store.clone(),
                    "pull-requests",
                    workers_stop.clone(),
                    move |stop| engine.clone().run(stop),
                ));
            }
            if let Some(policy) = bg.policy {
                let stop = workers_stop.clone();
                workers.spawn(async move {
                    policy.watch(stop).await;
                    Ok(())
                });
            }
            if let Some(retention) = bg.audit_retention {
                workers.spawn(crate::workers::run_singleton(
                    store.clone(),
                    "audit-retention",
                    workers_stop.clone(),
                    move |stop| retention.clone().run(stop),
                ));
            }
            if let Some(controller) = bg.crd {
                // NB: one replica reconciles VirtualClusters (see `crate::crd`).
                workers.spawn(crate::workers::run_singleton(
                    store.clone(),
                    crate::crd::ROLE,
                    workers_stop.clone(),
                    move |stop| controller.clone().run(stop),
                ));
            }
            if let Some(notifier) = bg.notifier {
                // NB: one replica reads the events and posts the outbox, so an alert is posted
                // once, not once per replica.
                workers.spawn(crate::workers::run_singleton(
                    store,
                    "notifier",
                    workers_stop.clone(),
                    move |stop| notifier.clone().run(stop),
                ));
            }
            local = bg.local;
        }
        if let Some(listener) = metrics_listener {
            let metrics_addr = listener.local_addr().context("reading /metrics' address")?;
            let serve = axum::serve(listener, http::metrics_router(state.clone()))
                .with_graceful_shutdown(workers_stop.clone().cancelled_owned());
            tracing::info!(addr = %metrics_addr, "serving /metrics");
            workers.spawn(async move { serve.await.context("serving /metrics") });
        }
        let auditor = state.audit.clone();
        let readiness = state.readiness.clone();
        let draining = CancellationToken::new();
        let signal = {
            let (readiness, draining) = (readiness.clone(), draining.clone());
            async move {
                shutdown.await;
                tracing::info!(grace_secs = shutdown_grace.as_secs(), "shutting down");
                readiness.set_not_ready();
                draining.cancel();
            }
        };
        let router = http::router(state);
        // NB: both listeners give every request `ConnectInfo<SocketAddr>` (limits per client
        // address read it); the TLS one adds the verified client certificate.
        let serve: Pin<Box<dyn Future<Output = std::io::Result<()>> + Send>> = match tls {
            None => Box::pin(
                axum::serve(
                    // NB: no Nagle delay on streamed answers (see `TlsListener`).
                    listener.tap_io(|tcp| {
                        let _ = tcp.set_nodelay(true);
                    }),
                    router.into_make_service_with_connect_info::<SocketAddr>(),
                )
                .with_graceful_shutdown(signal)
                .into_future(),
            ),
            Some(tls) => {
                workers.spawn(tls.reloader.clone().run(workers_stop.clone()));
                let listener = TlsListener::new(listener, tls.acceptor())
                    .context("starting the TLS listener")?;
                Box::pin(
                    axum::serve(listener, TlsMakeService::new(router, tls.rules.clone()))
                        .with_graceful_shutdown(signal)
                        .into_future(),
                )
            }
        };

        // NB: ready before the serve loop starts is fine: the socket is bound, so early
        // connections wait in the backlog instead of being refused.
        readiness.set_ready();
        tracing::info!(
            %addr,
            tls = scheme == "https",
            dashboard = %format!("{scheme}://{addr}{}", crate::http::UI_PATH),
            "listening"
        );
        let outcome = tokio::select! {
            served = serve => served.context("serving HTTP"),
            () = async {
                draining.cancelled().await;
                tokio::time::sleep(shutdown_grace).await;
            } => {
                tracing::warn!(
                    grace_secs = shutdown_grace.as_secs(),
                    "requests still in flight after the shutdown grace period; dropping them"
                );
                Ok(())
            }
            Some(died) = workers.join_next(), if !workers.is_empty() => {
                // NB: a background task never returns before shutdown; if one does, the server
                // must not go on serving a state nobody reconciles.
                let why = match died {
                    Ok(Ok(())) => "returned early".to_string(),
                    Ok(Err(e)) => format!("{e:#}"),
                    Err(e) => format!("{e}"),
                };
                tracing::error!(error = %why, "a background task died; stopping");
                Err(anyhow::anyhow!("background task died: {why}"))
            }
        };
        workers_stop.cancel();
        while workers.join_next().await.is_some() {}
        if let Some(auditor) = auditor {
            // NB: the records of the last requests are queued; written before the process ends.
            auditor.flush().await;
        }
        if let Some(local) = local {
            local.stop_etcd_if_unused().await;
        }
        tracing::info!("stopped");
        outcome
    }
}

/// Resolves when the process receives SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};

    let wait_for = |kind: SignalKind, name: &'static str| async move {
        match signal(kind) {
            Ok(mut stream) => {
                stream.recv().await;
                tracing::info!(signal = name, "received shutdown signal");
            }
            Err(err) => {
                // The other signal still works; never resolving here must not stop the server.
                tracing::error!(signal = name, error = %err, "cannot listen for signal");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = wait_for(SignalKind::terminate(), "SIGTERM") => {}
        () = wait_for(SignalKind::interrupt(), "SIGINT") => {}
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn server_serves_healthz_on_port_0_and_stops_when_signalled() {
        // Arrange
        crate::telemetry::init_for_tests();
        let config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            ..Config::default()
        };
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: dir.path().to_path_buf(),
            dev: true,
            ..config
        };
        let server = Server::build(config).await.unwrap();
        let addr = server.addr();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let running = tokio::spawn(server.run_until_stopped(async move {
            let _ = stopped.await;
        }));
        let client = reqwest::Client::new();

        // Act
        let health = client
            .get(format!("http://{addr}/healthz"))
            .send()
            .await
            .unwrap();
        let health_status = health.status();
        let health_body: serde_json::Value = health.json().await.unwrap();
        let ready = client
            .get(format!("http://{addr}/readyz"))
            .send()
            .await
            .unwrap();
        stop.send(()).unwrap();
        let outcome = tokio::time::timeout(Duration::from_secs(10), running).await;

        // Assert
        assert_ne!(addr.port(), 0);
        assert_eq!(health_status, reqwest::StatusCode::OK);
        assert_eq!(health_body, serde_json::json!({"status": "ok"}));
        assert_eq!(ready.status(), reqwest::StatusCode::OK);
        outcome
            .expect("the server stops within the timeout")
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn server_refuses_a_non_loopback_listener_without_permission() {
        // Arrange
        let listener = TcpListener::bind("0.0.0.0:0").await.unwrap();

        // Act
        let state = crate::http::testkit::mk_state().await;
        let result = Server::build_with_listener(Config::default(), listener, state);

        // Assert
        let err = result.unwrap_err();
        assert!(
            err.to_string().contains("allow_plain_http_non_loopback"),
            "{err:#}"
        );
    }
}
