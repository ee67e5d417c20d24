//! The alert notifier: failed clusters, hosts at or near capacity, and clusters stuck in a
//! waiting phase, posted to the webhooks of `[notify]` (vcm's JSON or Slack's).
//!
//! Each pass has two steps, like the commit-status [`Reporter`](crate::webhooks::status::Reporter).
//! First the findings ([`alert`]) are queued in the store's notification outbox, one entry per
//! webhook and dedupe key: an alert still waiting, or sent within `repeat_after`, is not
//! queued again. Failures are read from the cluster events after a cursor the store keeps, so
//! a restart neither misses nor repeats one. Then due entries are posted ([`send`]) within
//! each webhook's rate limit; a receiver that is down or busy gets the entry again later with
//! backoff, so an outage of either side delays an alert and never loses it.

pub mod alert;
pub mod send;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

use self::alert::Alert;
use self::send::{MAX_ATTEMPTS, Outcome, Target};
use crate::config::notify::{AlertKind, NotifyConfig, NotifyTimes};
use crate::domain::{NewNotification, Notification, Phase, Timestamp, now_ms};
use crate::service::ClusterService;
use crate::store::{Attempt, Store};

/// Events and outbox entries handled per pass.
const BATCH: usize = 100;
/// Sent entries are kept at least this long (or `repeat_after`, if longer), for debugging.
const KEEP: Duration = Duration::from_secs(7 * 86_400);
/// How often sent entries are purged.
const PURGE_EVERY: Duration = Duration::from_secs(3600);

/// Finds what is worth an alert and posts it to the configured webhooks.
#[derive(Debug, Clone)]
pub struct Notifier {
    service: ClusterService,
    targets: Vec<Target>,
    client: reqwest::Client,
    capacity_ratio: f64,
    times: NotifyTimes,
    /// What alerts call this vcm: its public URL, else the machine's name.
    source: String,
    metrics: Option<Arc<crate::metrics::Metrics>>,
    purged_at: Option<Instant>,
}

// === impl Notifier ===

impl Notifier {
    /// The notifier `config` asks for (`None`: no webhook configured), its webhook URLs read
    /// now. `public_url` (`[webhooks] public_url`) names this vcm in alerts.
    pub fn from_config(
        config: &NotifyConfig,
        public_url: Option<&str>,
        service: ClusterService,
    ) -> anyhow::Result<Option<Self>> {
        if config.webhooks.is_empty() {
            return Ok(None);
        }
        config.validate().map_err(anyhow::Error::msg)?;
        let times = config.times().map_err(anyhow::Error::msg)?;
        let targets = config
            .webhooks
            .iter()
            .enumerate()
            .map(|(i, hook)| Target::from_config(i, hook, config.max_per_minute))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Some(Self {
            service,
            targets,
            client: send::http_client()?,
            capacity_ratio: config.capacity_ratio.0,
            times,
            source: source(public_url),
            metrics: None,
            purged_at: None,
        }))
    }

    /// Count notifications into `metrics`.
    #[must_use]
    pub fn with_metrics(mut self, metrics: Arc<crate::metrics::Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Pass after pass, `check_interval` apart, until `stop`. Cancellation: a pass in
    /// progress may be cut between two outbox writes; every write stands alone, so the next
    /// start carries on.
    pub async fn run(mut self, stop: CancellationToken) -> anyhow::Result<()> {
        tracing::info!(
            webhooks = self.targets.len(),
            interval_secs = self.times.check_interval.as_secs(),
            "alert notifier started"
        );
        loop {
            tokio::select! {
                () = stop.cancelled() => return Ok(()),
                () = self.pass() => {}
            }
            tokio::select! {
                () = stop.cancelled() => return Ok(()),
                () = tokio::time::sleep(self.times.check_interval) => {}
            }
        }
    }

    /// Queue what is new, post what is due, and now and then forget old entries. Failures
    /// are logged and tried again on the next pass.
    pub async fn pass(&mut self) {
        if let Err(e) = self.detect().await {
            tracing::warn!(error = format!("{e:#}"), "looking for alerts");
        }
        if let Err(e) = self.send().await {
            tracing::warn!(error = format!("{e:#}"), "posting notifications");
        }
        if self.purged_at.is_none_or(|t| t.elapsed() >= PURGE_EVERY) {
            let keep = KEEP.max(self.times.repeat_after);
            let before = now_ms() - jiff::SignedDuration::try_from(keep).unwrap_or_default();
            match self.store().purge_notifications(before).await {
                Ok(n) if n > 0 => tracing::info!(purged = n, "old notifications purged"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "purging old notifications"),
            }
            self.purged_at = Some(Instant::now());
        }
    }

    fn store(&self) -> &Arc<dyn Store> {
        self.service.store()
    }

    async fn detect(&self) -> anyhow::Result<()> {
        let store = self.store();
        let now = now_ms();
        let cursor = store.notify_cursor().await.context("reading the cursor")?;
        let failed = store
            .events_into(Phase::Failed, cursor, BATCH)
            .await
            .context("reading failures")?;
        for event in &failed {
            let cluster = store.get_cluster(&event.cluster_id).await?;
            // NB: a failed cluster is news once: no repeat window (its id is never reused).
            self.queue(&alert::cluster_failed(event, cluster.as_ref()), None)
                .await?;
        }
        if let Some(last) = failed.last() {
            store.set_notify_cursor(last.id).await?;
        }
        let repeat_since = now - jiff::SignedDuration::try_from(self.times.repeat_after)?;
        let hosts = self.service.host_figures().await.context("reading hosts")?;
        for found in alert::hosts_at_capacity(&hosts, self.capacity_ratio, now) {
            self.queue(&found, Some(repeat_since)).await?;
        }
        let times = self.times;
        let threshold = move |phase: Phase| match phase {
            Phase::Pending => Some(times.stuck_pending),
            Phase::Provisioning => Some(times.stuck_provisioning),
            Phase::Deleting => Some(times.stuck_deleting),
            _ => None,
        };
        for cluster in store.live_clusters().await? {
            let Some(limit) = threshold(cluster.phase) else {
                continue;
            };
            // NB: a cluster entered its phase no earlier than its creation, so a young one
            // needs no look at its events.
            if now.duration_since(cluster.created_at).unsigned_abs() <= limit {
                continue;
            }
            let since = store
                .list_events(&cluster.id)
                .await?
                .iter()
                .rev()
                .find(|e| e.to_phase == Some(cluster.phase))
                .map_or(cluster.created_at, |e| e.at);
            if let Some(found) = alert::cluster_stuck(&cluster, since, &threshold, now) {
                self.queue(&found, Some(repeat_since)).await?;
            }
        }
        Ok(())
    }

    /// Queue `found` for every webhook that wants it.
    async fn queue(&self, found: &Alert, repeat_since: Option<Timestamp>) -> anyhow::Result<()> {
        let payload = found.payload(&self.source);
        for target in self.targets.iter().filter(|t| t.wants(found.kind)) {
            let entry = NewNotification {
                target: target.id.clone(),
                dedupe_key: found.dedupe_key.clone(),
                alert: found.kind.as_str().to_owned(),
                payload: payload.clone(),
            };
            if self
                .store()
                .enqueue_notification(&entry, now_ms(), repeat_since)
                .await?
            {
                tracing::info!(
                    webhook = %target.name, alert = found.kind.as_str(),
                    key = %found.dedupe_key, "notification queued"
                );
            }
        }
        Ok(())
    }

    async fn send(&mut self) -> anyhow::Result<()> {
        let store = self.store().clone();
        let due = store.due_notifications(now_ms(), BATCH).await?;
        let started = Instant::now();
        for entry in due {
            let Some(target) = self.targets.iter_mut().find(|t| t.id == entry.alert.target) else {
                let error = "the webhook it was queued for is no longer in [[notify.webhooks]]";
                store
                    .notification_attempted(entry.id, Attempt::GaveUp { error }, now_ms())
                    .await?;
                continue;
            };
            if !target.take(started) {
                // NB: over this minute's limit: the entry stays due and goes on a later pass.
                continue;
            }
            let body = alert::body(target.format, &entry.alert.payload);
            let outcome = target.post(&self.client, &body).await;
            let (format, name) = (target.format.as_str(), target.name.clone());
            self.attempted(&store, &entry, &name, format, outcome)
                .await?;
        }
        Ok(())
    }

    async fn attempted(
        &self,
        store: &Arc<dyn Store>,
        entry: &Notification,
        webhook: &str,
        format: &'static str,
        outcome: Outcome,
    ) -> anyhow::Result<()> {
        let now = now_ms();
        let kind = AlertKind::parse(&entry.alert.alert).map_or("other", AlertKind::as_str);
        let key = &entry.alert.dedupe_key;
        let attempts = entry.attempts + 1;
        let (label, attempt_error, retry_at) = match &outcome {
            Outcome::Sent => {
                tracing::info!(webhook, alert = kind, key = %key, "notification sent");
                ("sent", None, None)
            }
            Outcome::Retry { error, after } if attempts < MAX_ATTEMPTS => {
                let wait = send::backoff(attempts, *after);
                tracing::warn!(
                    webhook, alert = kind, key = %key, error = %error,
                    retry_in_secs = wait.as_secs(), "notification not sent yet"
                );
                let at = now + jiff::SignedDuration::try_from(wait)?;
                ("retried", Some(error.clone()), Some(at))
            }
            Outcome::Retry { error, .. } | Outcome::GiveUp { error } => {
                tracing::error!(
                    webhook, alert = kind, key = %key, error = %error, attempts,
                    "notification given up"
                );
                (
                    "failed",
                    Some(format!("{error} (attempt {attempts})")),
                    None,
                )
            }
        };
        if let Some(metrics) = &self.metrics {
            metrics.notification(format, kind, label);
        }
        let attempt = match (&attempt_error, retry_at) {
            (None, _) => Attempt::Sent { check_run: None },
            (Some(error), Some(at)) => Attempt::Retry { error, at },
            (Some(error), None) => Attempt::GaveUp { error },
        };
        store.notification_attempted(entry.id, attempt, now).await?;
        Ok(())
    }
}

/// What alerts call this vcm: `public_url`, else this machine's host name, else `vcm`.
fn source(public_url: Option<&str>) -> String {
    if let Some(url) = public_url.map(str::trim).filter(|u| !u.is_empty()) {
        return url.trim_end_matches('/').to_owned();
    }
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "vcm".to_owned())
}

#[cfg(test)]
mod tests;
