//! What is worth an alert, as pure functions of what the store and the hosts say, and the two
//! shapes an alert is posted in.

use std::time::Duration;

use jiff::Timestamp;
use serde_json::{Value, json};

use crate::config::notify::{AlertKind, WebhookFormat};
use crate::domain::{Cluster, ClusterEvent, Phase};
use crate::service::HostUse;

/// Longest message or reason copied into an alert: enough to act on, short enough for chat.
const MAX_TEXT: usize = 300;

/// How urgent an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Someone should look today.
    Warning,
    /// Something is refused now (a full host turns creations away).
    Critical,
}

/// One finding, before it is queued per webhook.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// What kind.
    pub kind: AlertKind,
    /// How urgent.
    pub severity: Severity,
    /// What makes two findings the same alert.
    pub dedupe_key: String,
    /// One line for people.
    pub summary: String,
    /// What it is about, as fields.
    pub subject: Value,
    /// When it was found.
    pub at: Timestamp,
}

// === impl Severity ===

impl Severity {
    /// The payload spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }
}

// === impl Alert ===

impl Alert {
    /// The generic JSON body: what the outbox keeps, and what the Slack text is made from.
    /// `source` names this vcm (its public URL or host name).
    pub fn payload(&self, source: &str) -> Value {
        json!({
            "alert": self.kind.as_str(),
            "severity": self.severity.as_str(),
            "summary": self.summary,
            "subject": self.subject,
            "at": self.at.to_string(),
            "vcm": source,
        })
    }
}

/// A cluster turned `Failed` (`event` moved it there; `cluster` is gone if already purged).
pub fn cluster_failed(event: &ClusterEvent, cluster: Option<&Cluster>) -> Alert {
    let id = event.cluster_id.as_str();
    let mut subject = cluster.map_or_else(|| json!({"id": id}), cluster_fields);
    subject["phase"] = json!(Phase::Failed.as_str());
    subject["reason"] = json!(event.reason);
    subject["message"] = json!(cut(&event.message));
    let name = cluster.map_or(id, |c| c.name.as_str());
    let why = if event.message.is_empty() {
        event
            .reason
            .as_deref()
            .unwrap_or("no reason given")
            .to_owned()
    } else {
        cut(&event.message)
    };
    Alert {
        kind: AlertKind::ClusterFailed,
        severity: Severity::Warning,
        dedupe_key: format!("cluster_failed:{id}"),
        summary: format!("cluster {name} ({id}) failed: {why}"),
        subject,
        at: event.at,
    }
}

/// Hosts whose live clusters reach `ratio` of their `max_clusters` (a host without a limit
/// never does); critical when full.
pub fn hosts_at_capacity(hosts: &[HostUse], ratio: f64, now: Timestamp) -> Vec<Alert> {
    hosts
        .iter()
        .filter_map(|h| {
            let max = h.host.max_clusters?;
            let used = f64::from(h.clusters) / f64::from(max.max(1));
            if used < ratio {
                return None;
            }
            let full = h.clusters >= max;
            let name = &h.host.name;
            Some(Alert {
                kind: AlertKind::HostCapacity,
                severity: if full {
                    Severity::Critical
                } else {
                    Severity::Warning
                },
                dedupe_key: format!("host_capacity:{name}"),
                summary: if full {
                    format!(
                        "host {name} is full: {} of {max} clusters; new clusters are refused",
                        h.clusters
                    )
                } else {
                    format!(
                        "host {name} is near capacity: {} of {max} clusters",
                        h.clusters
                    )
                },
                subject: json!({
                    "host": name,
                    "clusters": h.clusters,
                    "capacity": max,
                    "use": (used * 1000.0).round() / 1000.0,
                }),
                at: now,
            })
        })
        .collect()
}

/// The threshold for a cluster waiting in `phase`, if that phase can be stuck.
pub type Thresholds = dyn Fn(Phase) -> Option<Duration>;

/// A cluster in `phase` since `since`, reported if that is longer than its threshold.
pub fn cluster_stuck(
    cluster: &Cluster,
    since: Timestamp,
    threshold: &Thresholds,
    now: Timestamp,
) -> Option<Alert> {
    let limit = threshold(cluster.phase)?;
    let waited = now.duration_since(since).unsigned_abs();
    if now < since || waited <= limit {
        return None;
    }
    let phase = cluster.phase.as_str();
    let mut subject = cluster_fields(cluster);
    subject["since"] = json!(since.to_string());
    subject["waited_secs"] = json!(waited.as_secs());
    Some(Alert {
        kind: AlertKind::ClusterStuck,
        severity: Severity::Warning,
        dedupe_key: format!("cluster_stuck:{}:{phase}", cluster.id),
        summary: format!(
            "cluster {} ({}) has been {phase} for {}s (threshold {}s)",
            cluster.name,
            cluster.id,
            waited.as_secs(),
            limit.as_secs()
        ),
        subject,
        at: now,
    })
}

/// The body `format` wants for a stored generic `payload`.
pub fn body(format: WebhookFormat, payload: &Value) -> Value {
    match format {
        WebhookFormat::Json => payload.clone(),
        WebhookFormat::Slack => {
            let field = |k: &str| payload[k].as_str().unwrap_or_default().to_owned();
            let mark = if field("severity") == "critical" {
                ":rotating_light:"
            } else {
                ":warning:"
            };
            // NB: Slack reads `&`, `<` and `>` as markup; its docs ask for these three
            // escaped and nothing else.
            let text = format!(
                "{mark} [{}] {} ({})",
                field("alert"),
                field("summary"),
                field("vcm")
            )
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;");
            json!({ "text": text })
        }
    }
}

/// Identity fields of a cluster (never its endpoint or anything that grants access).
fn cluster_fields(c: &Cluster) -> Value {
    json!({
        "id": c.id.as_str(),
        "name": c.name.as_str(),
        "owner": c.owner,
        "team": c.team,
        "host": c.host,
        "phase": c.phase.as_str(),
        "message": cut(&c.message),
    })
}

/// `s` cut to [`MAX_TEXT`] characters, marked when cut.
fn cut(s: &str) -> String {
    match s.char_indices().nth(MAX_TEXT) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}
