//! Alerts on their way to a webhook: the notifier's outbox entries.

use super::Timestamp;

/// An alert to queue for one webhook.
#[derive(Debug, Clone, PartialEq)]
pub struct NewNotification {
    /// Which configured webhook it goes to: a digest of its URL, never the URL itself (Slack
    /// webhook URLs are credentials).
    pub target: String,
    /// What makes two alerts the same one: `cluster_failed:<id>`, `host_capacity:<host>`,
    /// `cluster_stuck:<id>:<phase>`.
    pub dedupe_key: String,
    /// The kind of alert (`cluster_failed`, `host_capacity`, `cluster_stuck`).
    pub alert: String,
    /// The alert as the generic JSON webhook receives it; other formats are rendered from it.
    pub payload: serde_json::Value,
}

/// An outbox entry not yet delivered.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// The store's id (monotonic).
    pub id: i64,
    /// What was queued.
    pub alert: NewNotification,
    /// When it was queued.
    pub created_at: Timestamp,
    /// Failed attempts so far.
    pub attempts: i64,
    /// When the next attempt is due.
    pub next_attempt_at: Timestamp,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
}
