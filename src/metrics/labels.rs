//! The label sets and histogram buckets of [`super::Metrics`]: every label a small, bounded set
//! of values (`docs/MONITORING.md`).

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
};

/// Request latency buckets, seconds: 5 ms to 10 s.
const HTTP_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Accepted → Ready buckets, seconds: a local control plane takes a few seconds, a vCluster
/// tens of seconds to minutes.
const READY_BUCKETS: [f64; 10] = [1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct RequestLabels {
    pub(super) door: &'static str,
    pub(super) method: &'static str,
    pub(super) route: String,
    pub(super) status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct RouteLabels {
    pub(super) door: &'static str,
    pub(super) method: &'static str,
    pub(super) route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct KindLabels {
    pub(super) kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct DriverLabels {
    pub(super) driver: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct DriverHostLabels {
    pub(super) driver: String,
    pub(super) host: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct FailureLabels {
    pub(super) driver: String,
    pub(super) reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct ReasonLabels {
    pub(super) reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct StepLabels {
    pub(super) step: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct HostLabels {
    pub(super) host: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct ClusterLabels {
    pub(super) phase: &'static str,
    pub(super) host: String,
    pub(super) size: String,
    pub(super) version: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct PhaseLabels {
    pub(super) phase: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct OutcomeLabels {
    pub(super) provider: &'static str,
    pub(super) outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct NotificationLabels {
    pub(super) format: &'static str,
    pub(super) alert: &'static str,
    pub(super) outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct VersionLabels {
    pub(super) version: &'static str,
}

pub(super) type Seconds = Gauge<f64, std::sync::atomic::AtomicU64>;

pub(super) fn http_histogram() -> Histogram {
    Histogram::new(HTTP_BUCKETS)
}

pub(super) fn ready_histogram() -> Histogram {
    Histogram::new(READY_BUCKETS)
}

pub(super) fn step_histogram() -> Histogram {
    // 1 ms … ~65 s: a database write to a driver call that waits for a control plane.
    Histogram::new(exponential_buckets(0.001, 4.0, 9))
}
