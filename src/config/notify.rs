//! `[notify]`: the alert notifier's webhooks and thresholds (see `docs/MONITORING.md`,
//! "Notifications").

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::domain::Ttl;

/// What a notifier posts about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// A cluster turned `Failed`.
    ClusterFailed,
    /// A host is at or near its `max_clusters`.
    HostCapacity,
    /// A cluster has been `Pending`, `Provisioning` or `Deleting` past its threshold.
    ClusterStuck,
}

/// How a webhook wants its body.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookFormat {
    /// vcm's own JSON: `{"alert", "severity", "summary", "subject", "at", "vcm"}`.
    #[default]
    Json,
    /// A Slack incoming webhook (and the many chat tools that accept its `{"text"}`).
    Slack,
}

/// One `[[notify.webhooks]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyWebhook {
    /// Where alerts are posted: an `http://` or `https://` URL, or `env:NAME` / `file:/path`
    /// holding one (a Slack webhook URL is a credential: keep it out of the file).
    pub url: String,
    /// The body's shape.
    #[serde(default)]
    pub format: WebhookFormat,
    /// Only these alerts (default: all).
    #[serde(default)]
    pub events: Option<Vec<AlertKind>>,
    /// What logs call this webhook (default: `<format>-<n>`, never the URL).
    #[serde(default)]
    pub name: Option<String>,
}

/// A fraction in (0, 1].
///
/// NB: `Eq` holds because validation refuses NaN (the only `f64` unequal to itself), so the
/// configuration can stay `Eq` like the rest of `Config`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Ratio(pub f64);

impl Eq for Ratio {}

/// The `[notify]` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotifyConfig {
    /// Where alerts go; none: the notifier does not run.
    pub webhooks: Vec<NotifyWebhook>,
    /// A host is reported when its live clusters reach this share of its `max_clusters`.
    pub capacity_ratio: Ratio,
    /// A cluster `Pending` longer than this is reported stuck.
    pub stuck_pending: String,
    /// A cluster `Provisioning` longer than this is reported stuck.
    pub stuck_provisioning: String,
    /// A cluster `Deleting` longer than this is reported stuck.
    pub stuck_deleting: String,
    /// The same alert about the same subject is not sent again to a webhook within this (a
    /// failed cluster is reported once, ever).
    pub repeat_after: String,
    /// At most this many posts per webhook per minute; the rest wait in the outbox.
    pub max_per_minute: u32,
    /// How often the notifier looks for news and posts what is due.
    pub check_interval: String,
}

/// [`NotifyConfig`]'s durations, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotifyTimes {
    /// See [`NotifyConfig::stuck_pending`].
    pub stuck_pending: Duration,
    /// See [`NotifyConfig::stuck_provisioning`].
    pub stuck_provisioning: Duration,
    /// See [`NotifyConfig::stuck_deleting`].
    pub stuck_deleting: Duration,
    /// See [`NotifyConfig::repeat_after`].
    pub repeat_after: Duration,
    /// See [`NotifyConfig::check_interval`].
    pub check_interval: Duration,
}

// === impl AlertKind ===

impl AlertKind {
    /// Every kind.
    pub const ALL: [Self; 3] = [Self::ClusterFailed, Self::HostCapacity, Self::ClusterStuck];

    /// The configuration and payload spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClusterFailed => "cluster_failed",
            Self::HostCapacity => "host_capacity",
            Self::ClusterStuck => "cluster_stuck",
        }
    }

    /// The kind spelled `s`.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

// === impl WebhookFormat ===

impl WebhookFormat {
    /// The configuration and metric label spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Slack => "slack",
        }
    }
}

// === impl NotifyConfig ===

impl Default for NotifyConfig {
    fn default() -> Self {
        Self {
            webhooks: Vec::new(),
            capacity_ratio: Ratio(0.9),
            stuck_pending: "5m".into(),
            stuck_provisioning: "15m".into(),
            stuck_deleting: "15m".into(),
            repeat_after: "1h".into(),
            max_per_minute: 10,
            check_interval: "15s".into(),
        }
    }
}

impl NotifyConfig {
    /// The durations, parsed; the error names the key and what it takes.
    pub fn times(&self) -> Result<NotifyTimes, String> {
        let parse = |key: &str, s: &str| {
            Ttl::parse(&format!("notify.{key}"), s)
                .map(|t| Duration::from_secs(t.as_secs()))
                .map_err(|e| e.to_string())
        };
        Ok(NotifyTimes {
            stuck_pending: parse("stuck_pending", &self.stuck_pending)?,
            stuck_provisioning: parse("stuck_provisioning", &self.stuck_provisioning)?,
            stuck_deleting: parse("stuck_deleting", &self.stuck_deleting)?,
            repeat_after: parse("repeat_after", &self.repeat_after)?,
            check_interval: parse("check_interval", &self.check_interval)?,
        })
    }

    /// Checks every value (URLs that are secret entries are read when the server starts).
    /// The error names the key and the fix.
    pub fn validate(&self) -> Result<(), String> {
        self.times()?;
        let r = self.capacity_ratio.0;
        if !(r > 0.0 && r <= 1.0) {
            return Err(format!(
                "notify.capacity_ratio = {r}: write a share of max_clusters above 0 and at most \
                 1, e.g. 0.9"
            ));
        }
        if self.max_per_minute == 0 {
            return Err(
                "notify.max_per_minute = 0: write at least 1 (posts per webhook per \
                        minute; more wait in the outbox)"
                    .into(),
            );
        }
        for (i, hook) in self.webhooks.iter().enumerate() {
            let key = format!("notify.webhooks[{i}].url");
            let url = hook.url.trim();
            if url.is_empty() {
                return Err(format!(
                    "{key} is empty: write the webhook's https:// URL, or env:NAME / \
                     file:/path holding it"
                ));
            }
            if hook.events.as_ref().is_some_and(Vec::is_empty) {
                return Err(format!(
                    "notify.webhooks[{i}].events is empty: leave it out for every alert, or \
                     list some of \"cluster_failed\", \"host_capacity\", \"cluster_stuck\""
                ));
            }
            if !(url.starts_with("env:") || url.starts_with("file:")) {
                check_url(url).map_err(|why| format!("{key}: {why}"))?;
            }
        }
        Ok(())
    }
}

/// Whether `url` is an absolute http(s) URL with a host; the reason if not (never the URL,
/// which may carry a credential).
pub fn check_url(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| format!("not a URL ({e}); write https://host[:port]/path"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err("must be an http:// or https:// URL with a host".into());
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn hook(url: &str) -> NotifyWebhook {
        NotifyWebhook {
            url: url.into(),
            format: WebhookFormat::Json,
            events: None,
            name: None,
        }
    }

    #[test]
    fn the_defaults_validate_and_parse() {
        let config = NotifyConfig::default();
        config.validate().unwrap();
        let times = config.times().unwrap();
        assert_eq!(times.stuck_pending, Duration::from_secs(300));
        assert_eq!(times.repeat_after, Duration::from_secs(3600));
        assert_eq!(times.check_interval, Duration::from_secs(15));
    }

    #[test]
    fn bad_values_are_refused_naming_the_key() {
        let cases: [(&str, NotifyConfig); 6] = [
            (
                "notify.webhooks[0].url",
                NotifyConfig {
                    webhooks: vec![hook("")],
                    ..NotifyConfig::default()
                },
            ),
            (
                "notify.webhooks[0].url",
                NotifyConfig {
                    webhooks: vec![hook("ftp://example.com/x")],
                    ..NotifyConfig::default()
                },
            ),
            (
                "notify.capacity_ratio",
                NotifyConfig {
                    capacity_ratio: Ratio(1.5),
                    ..NotifyConfig::default()
                },
            ),
            (
                "notify.stuck_pending",
                NotifyConfig {
                    stuck_pending: "5 minutes".into(),
                    ..NotifyConfig::default()
                },
            ),
            (
                "notify.max_per_minute",
                NotifyConfig {
                    max_per_minute: 0,
                    ..NotifyConfig::default()
                },
            ),
            (
                "notify.webhooks[0].events",
                NotifyConfig {
                    webhooks: vec![NotifyWebhook {
                        events: Some(vec![]),
                        ..hook("https://example.com/hook")
                    }],
                    ..NotifyConfig::default()
                },
            ),
        ];
        for (key, config) in cases {
            let err = config.validate().unwrap_err();
            assert!(err.contains(key), "expected {key} in {err:?}");
        }
    }

    #[test]
    fn a_url_error_does_not_repeat_the_url() {
        let secret = "https://hooks.example.com/services/T000/B000/XXXXsecret";
        let config = NotifyConfig {
            webhooks: vec![hook(&secret.replace("https", "gopher"))],
            ..NotifyConfig::default()
        };
        let err = config.validate().unwrap_err();
        assert!(!err.contains("XXXXsecret"), "{err}");
    }
}
