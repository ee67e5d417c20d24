//! Logging set-up: one global `tracing` subscriber writing to stderr.

use std::io::IsTerminal as _;

use anyhow::Context as _;
use tracing_subscriber::{EnvFilter, fmt, layer::SubscriberExt as _, util::SubscriberInitExt as _};

use crate::config::LogFormat;

tokio::task_local! {
    /// The id of the request being served (`x-request-id`), for what the request sets in
    /// motion: a cluster remembers the request that created or deleted it, and the
    /// reconciler's log lines for it carry that id.
    static REQUEST_ID: String;
}

/// Runs `f` as part of the request `request_id`.
pub async fn with_request_id<F: std::future::Future>(request_id: String, f: F) -> F::Output {
    REQUEST_ID.scope(request_id, f).await
}

/// The id of the request being served, if this task serves one.
pub fn request_id() -> Option<String> {
    REQUEST_ID
        .try_with(|id| id.clone())
        .ok()
        .filter(|id| !id.is_empty())
}

/// Installs the global subscriber: `RUST_LOG` directives when set, `level` otherwise.
///
/// Logs go to stderr so that stdout stays free for command output.
pub fn init(format: LogFormat, level: &str) -> anyhow::Result<()> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.trim().is_empty() => EnvFilter::try_new(&directives)
            .with_context(|| format!("invalid RUST_LOG directives {directives:?}"))?,
        // NB: rustls warns once per connection about what a client got wrong (an IP address
        // sent as SNI, as wrk and some proxies do): the client's quirk, not the server's
        // trouble, and one line per connection under load.
        _ => EnvFilter::try_new(level)
            .with_context(|| format!("invalid log level directives {level:?}"))?
            .add_directive("rustls=error".parse().context("the rustls directive")?),
    };
    let registry = tracing_subscriber::registry().with(filter);
    let installed = match format {
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .with_current_span(true)
                    // NB: every enclosing span's fields, so a line deep in a driver call still
                    // carries the cluster id and request id of the reconcile step around it.
                    .with_span_list(true)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
        LogFormat::Pretty => registry
            .with(
                fmt::layer()
                    .compact()
                    .with_ansi(std::io::stderr().is_terminal())
                    .with_writer(std::io::stderr),
            )
            .try_init(),
    };
    installed.context("installing the global tracing subscriber")
}

/// Installs a subscriber for tests when `TEST_LOG` is set, and stays silent otherwise.
///
/// `TEST_LOG=1` (or `true`) logs at `debug`; any other value is used as filter directives.
/// Safe to call from every test: only the first call installs anything.
pub fn init_for_tests() {
    let Ok(test_log) = std::env::var("TEST_LOG") else {
        return;
    };
    let directives = match test_log.trim() {
        "" | "1" | "true" => "debug",
        directives => directives,
    };
    let Ok(filter) = EnvFilter::try_new(directives) else {
        eprintln!("TEST_LOG={test_log:?} is not a valid filter; logging stays off");
        return;
    };
    // NB: the test writer lets libtest capture output per test; an error only means that an
    // earlier test installed the subscriber already.
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(fmt::layer().compact().with_test_writer())
        .try_init();
}
