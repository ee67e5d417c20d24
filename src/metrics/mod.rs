//! [`Metrics`]: what `GET /metrics` exports, in the OpenMetrics text format Prometheus scrapes.
//!
//! Names follow Prometheus's conventions (`vcm_` prefix, base units, `_total` on counters) and
//! every label has a small, bounded set of values: no cluster id, principal or path is ever a
//! label (an unmatched path is `route="unmatched"`). The list, with what each means, is in
//! `docs/MONITORING.md`; `tests/monitoring.rs` checks the shipped dashboard and alert rules
//! against what a real server exports.
//!
//! Events are counted where they happen (the request middleware, the reconciler, the webhook
//! doors); what is a state rather than an event (clusters by phase, hosts, queue depths,
//! process figures) is read when a scrape asks ([`Metrics::render`] after [`Census`] and
//! friends are set by the handler).

mod labels;
mod process;

pub use process::of_pid;

use labels::{
    ClusterLabels, DriverHostLabels, DriverLabels, FailureLabels, HostLabels, KindLabels,
    NotificationLabels, OutcomeLabels, PhaseLabels, ReasonLabels, RequestLabels, RouteLabels,
    Seconds, StepLabels, VersionLabels, http_histogram, ready_histogram, step_histogram,
};

use std::time::Duration;

use prometheus_client::{
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

/// The `Content-Type` of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Non-terminal phases, for [`Census::oldest`].
pub const WAITING_PHASES: [&str; 3] = ["Pending", "Provisioning", "Deleting"];

/// One server's metrics. Cheap to update from any thread: a counter is an atomic add after a
/// read-locked map lookup of its label set.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_duration: Family<RouteLabels, Histogram, fn() -> Histogram>,
    auth_failures: Family<KindLabels, Counter>,
    creations: Family<DriverLabels, Counter>,
    ready_duration: Family<DriverHostLabels, Histogram, fn() -> Histogram>,
    failures: Family<FailureLabels, Counter>,
    deletions: Family<ReasonLabels, Counter>,
    queue_depth: Gauge,
    step_duration: Family<StepLabels, Histogram, fn() -> Histogram>,
    retries: Family<StepLabels, Counter>,
    clusters: Family<ClusterLabels, Gauge>,
    oldest: Family<PhaseLabels, Seconds>,
    host_capacity: Family<HostLabels, Gauge>,
    host_clusters: Family<HostLabels, Gauge>,
    host_up: Family<HostLabels, Gauge>,
    deliveries: Family<OutcomeLabels, Counter>,
    reports: Family<OutcomeLabels, Counter>,
    outbox_depth: Gauge,
    notifications: Family<NotificationLabels, Counter>,
    notification_depth: Gauge,
    audit_queue: Gauge,
    audit_failures: Counter,
    /// NB: a scrape clears and refills the state gauges; two at once would interleave.
    scraping: tokio::sync::Mutex<()>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Clusters by phase, host, size and version, and the oldest in each waiting phase, as a
/// scrape finds them in the store.
#[derive(Debug, Clone, Default)]
pub struct Census {
    /// `(phase, host, size, kubernetes version, count)`.
    pub counts: Vec<(&'static str, String, String, String, u64)>,
    /// `(phase, seconds in that phase of its oldest cluster)`, for [`WAITING_PHASES`].
    pub oldest: Vec<(&'static str, f64)>,
}

/// A host as a scrape finds it.
#[derive(Debug, Clone)]
pub struct HostFigures {
    /// Its name.
    pub name: String,
    /// Most live clusters it takes; `None`: no limit (no capacity series is exported, so
    /// ratios over it have no value instead of dividing by zero).
    pub capacity: Option<u64>,
    /// Live clusters placed on it.
    pub clusters: u64,
    /// Whether its last probe reached it.
    pub up: bool,
}

// === impl Metrics ===

impl Metrics {
    /// Every metric registered, all at zero.
    #[must_use]
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let this = Self {
            requests: Family::default(),
            request_duration: Family::new_with_constructor(http_histogram),
            auth_failures: Family::default(),
            creations: Family::default(),
            ready_duration: Family::new_with_constructor(ready_histogram),
            failures: Family::default(),
            deletions: Family::default(),
            queue_depth: Gauge::default(),
            step_duration: Family::new_with_constructor(step_histogram),
            retries: Family::default(),
            clusters: Family::default(),
            oldest: Family::default(),
            host_capacity: Family::default(),
            host_clusters: Family::default(),
            host_up: Family::default(),
            deliveries: Family::default(),
            reports: Family::default(),
            outbox_depth: Gauge::default(),
            notifications: Family::default(),
            notification_depth: Gauge::default(),
            audit_queue: Gauge::default(),
            audit_failures: Counter::default(),
            scraping: tokio::sync::Mutex::new(()),
            registry: Registry::default(),
        };
        let vcm = registry.sub_registry_with_prefix("vcm");
        let info: Family<VersionLabels, Gauge> = Family::default();
        info.get_or_create(&VersionLabels {
            version: env!("CARGO_PKG_VERSION"),
        })
        .set(1);
        vcm.register("build_info", "The running vcm's version (always 1)", info);
        vcm.register(
            "http_requests",
            "Requests answered, by door (api, webhook, gateway), method, route template and \
             status code",
            this.requests.clone(),
        );
        vcm.register(
            "http_request_duration_seconds",
            "Time from a request's arrival to its response's head, by door, method and route \
             template",
            this.request_duration.clone(),
        );
        vcm.register(
            "auth_failures",
            "Requests refused because their credential did not authenticate, by kind of \
             credential (missing, malformed, api_token, jwt, client_certificate, \
             gateway_credential, webhook_signature)",
            this.auth_failures.clone(),
        );
        vcm.register(
            "cluster_creations",
            "Cluster creations accepted, by driver",
            this.creations.clone(),
        );
        vcm.register(
            "cluster_ready_duration_seconds",
            "Time from a creation's acceptance to its cluster being Ready, by driver and host",
            this.ready_duration.clone(),
        );
        vcm.register(
            "cluster_failures",
            "Clusters that turned Failed, by driver and reason",
            this.failures.clone(),
        );
        vcm.register(
            "cluster_deletions",
            "Clusters deleted, by reason (requested, expired, idle, pull_request_closed)",
            this.deletions.clone(),
        );
        vcm.register(
            "reconciler_queue_depth",
            "Clusters due for a reconcile step at the reconciler's last pass (at most its \
             batch of 256)",
            this.queue_depth.clone(),
        );
        vcm.register(
            "reconciler_step_duration_seconds",
            "Time a reconcile step took, by step (the phase it started from)",
            this.step_duration.clone(),
        );
        vcm.register(
            "reconciler_retries",
            "Reconcile steps that failed and will be retried after a backoff, by step",
            this.retries.clone(),
        );
        vcm.register(
            "clusters",
            "Cluster records by phase, host, size and Kubernetes version (Deleted and Failed \
             ones until the retention period ends)",
            this.clusters.clone(),
        );
        vcm.register(
            "cluster_oldest_in_phase_seconds",
            "How long the oldest cluster in each waiting phase (Pending, Provisioning, \
             Deleting) has been in it; 0 when none is",
            this.oldest.clone(),
        );
        vcm.register(
            "host_capacity_clusters",
            "Most live clusters a host takes",
            this.host_capacity.clone(),
        );
        vcm.register(
            "host_clusters",
            "Live clusters placed on a host",
            this.host_clusters.clone(),
        );
        vcm.register(
            "host_up",
            "1 when a host's last probe reached it, else 0",
            this.host_up.clone(),
        );
        vcm.register(
            "webhook_deliveries",
            "Webhook deliveries, by provider and outcome (accepted, ignored, rejected)",
            this.deliveries.clone(),
        );
        vcm.register(
            "status_reports",
            "Commit status reports, by provider and outcome (sent, failed, retried)",
            this.reports.clone(),
        );
        vcm.register(
            "status_outbox_depth",
            "Commit status reports waiting to be sent",
            this.outbox_depth.clone(),
        );
        vcm.register(
            "notifications",
            "Alert notifications posted to webhooks, by format, alert and outcome (sent, \
             retried, failed)",
            this.notifications.clone(),
        );
        vcm.register(
            "notification_outbox_depth",
            "Alert notifications waiting to be sent",
            this.notification_depth.clone(),
        );
        vcm.register(
            "audit_queue_depth",
            "Audit records handed to the audit writer and not yet written",
            this.audit_queue.clone(),
        );
        vcm.register(
            "audit_write_failures",
            "Audit batches the audit database refused (each is retried)",
            this.audit_failures.clone(),
        );
        registry.register_collector(Box::new(process::Process));
        Self { registry, ..this }
    }

    /// A request answered with `status` after `elapsed`. `route` is the matched route
    /// template, or `None` when no route matched.
    pub fn request(
        &self,
        door: &'static str,
        method: &axum::http::Method,
        route: Option<&str>,
        status: u16,
        elapsed: Duration,
    ) {
        let method = method_label(method);
        let route = route.unwrap_or("unmatched");
        self.requests
            .get_or_create(&RequestLabels {
                door,
                method,
                route: route.to_owned(),
                status,
            })
            .inc();
        self.request_duration
            .get_or_create(&RouteLabels {
                door,
                method,
                route: route.to_owned(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// A credential of `kind` did not authenticate.
    pub fn auth_failure(&self, kind: &'static str) {
        self.auth_failures.get_or_create(&KindLabels { kind }).inc();
    }

    /// A creation was accepted for `driver`.
    pub fn creation(&self, driver: &str) {
        self.creations
            .get_or_create(&DriverLabels {
                driver: driver.to_owned(),
            })
            .inc();
    }

    /// A cluster of `driver` on `host` turned Ready `took` after its creation was accepted.
    pub fn ready(&self, driver: &str, host: &str, took: Duration) {
        self.ready_duration
            .get_or_create(&DriverHostLabels {
                driver: driver.to_owned(),
                host: host.to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    /// A cluster of `driver` turned Failed for `reason` (an error's metric label).
    pub fn failure(&self, driver: &str, reason: &'static str) {
        self.failures
            .get_or_create(&FailureLabels {
                driver: driver.to_owned(),
                reason,
            })
            .inc();
    }

    /// A cluster was deleted for `reason` (a [`crate::domain::DeleteReason`]'s name).
    pub fn deletion(&self, reason: &'static str) {
        self.deletions.get_or_create(&ReasonLabels { reason }).inc();
    }

    /// The reconciler found `due` clusters due.
    pub fn queue_depth(&self, due: usize) {
        self.queue_depth.set(i64::try_from(due).unwrap_or(i64::MAX));
    }

    /// A reconcile step from `step` took `took`.
    pub fn step(&self, step: &'static str, took: Duration) {
        self.step_duration
            .get_or_create(&StepLabels { step })
            .observe(took.as_secs_f64());
    }

    /// A reconcile step from `step` failed and will be retried.
    pub fn retry(&self, step: &'static str) {
        self.retries.get_or_create(&StepLabels { step }).inc();
    }

    /// A webhook delivery from `provider` ended as `outcome`.
    pub fn delivery(&self, provider: &'static str, outcome: &'static str) {
        self.deliveries
            .get_or_create(&OutcomeLabels { provider, outcome })
            .inc();
    }

    /// A commit status report to `provider` ended as `outcome`.
    pub fn status_report(&self, provider: &'static str, outcome: &'static str) {
        self.reports
            .get_or_create(&OutcomeLabels { provider, outcome })
            .inc();
    }

    /// An attempt to post an `alert` notification in `format` ended as `outcome` (`sent`,
    /// `retried`, `failed`).
    pub fn notification(&self, format: &'static str, alert: &'static str, outcome: &'static str) {
        self.notifications
            .get_or_create(&NotificationLabels {
                format,
                alert,
                outcome,
            })
            .inc();
    }

    /// Waits for any other scrape to finish: the state setters below and [`Metrics::render`]
    /// belong to one scrape.
    pub async fn scrape(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.scraping.lock().await
    }

    /// The clusters as the store has them now.
    pub fn set_census(&self, census: &Census) {
        // NB: cleared first, so a phase, host or version no cluster has any more is no longer
        // exported.
        self.clusters.clear();
        for (phase, host, size, version, count) in &census.counts {
            self.clusters
                .get_or_create(&ClusterLabels {
                    phase,
                    host: host.clone(),
                    size: size.clone(),
                    version: version.clone(),
                })
                .set(i64::try_from(*count).unwrap_or(i64::MAX));
        }
        for phase in WAITING_PHASES {
            let secs = census
                .oldest
                .iter()
                .find(|(p, _)| *p == phase)
                .map_or(0.0, |(_, s)| *s);
            self.oldest.get_or_create(&PhaseLabels { phase }).set(secs);
        }
    }

    /// The hosts as last probed.
    pub fn set_hosts(&self, hosts: &[HostFigures]) {
        self.host_capacity.clear();
        self.host_clusters.clear();
        self.host_up.clear();
        for h in hosts {
            let labels = HostLabels {
                host: h.name.clone(),
            };
            let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
            if let Some(capacity) = h.capacity {
                self.host_capacity.get_or_create(&labels).set(n(capacity));
            }
            self.host_clusters.get_or_create(&labels).set(n(h.clusters));
            self.host_up.get_or_create(&labels).set(i64::from(h.up));
        }
    }

    /// Status reports waiting in the outbox.
    pub fn set_outbox_depth(&self, depth: u64) {
        self.outbox_depth
            .set(i64::try_from(depth).unwrap_or(i64::MAX));
    }

    /// Alert notifications waiting in the outbox.
    pub fn set_notification_depth(&self, depth: u64) {
        self.notification_depth
            .set(i64::try_from(depth).unwrap_or(i64::MAX));
    }

    /// Audit records waiting for the writer, and the batches the audit database refused since
    /// the start.
    pub fn set_audit(&self, queued: usize, failed_batches: u64) {
        self.audit_queue
            .set(i64::try_from(queued).unwrap_or(i64::MAX));
        let seen = self.audit_failures.get();
        if failed_batches > seen {
            self.audit_failures.inc_by(failed_batches - seen);
        }
    }

    /// Everything, in the OpenMetrics text format ([`CONTENT_TYPE`]).
    #[must_use]
    pub fn render(&self) -> String {
        let mut text = String::with_capacity(16 * 1024);
        // NB: writing into a String cannot fail; an encoder error would be a label set that
        // cannot be written, which the types above rule out.
        if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::error!(error = %e, "cannot encode the metrics");
        }
        text
    }
}

/// A bounded label for a request method.
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

#[cfg(test)]
mod tests;
