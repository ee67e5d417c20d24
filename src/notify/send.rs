//! Posting one notification: the webhooks as configured, a per-webhook rate limit, and what
//! an answer means (sent, try again later, or give up).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use sha2::{Digest as _, Sha256};

use crate::config::notify::{AlertKind, NotifyWebhook, WebhookFormat, check_url};
use crate::config::webhooks::read_secret;

/// Each post gives up after this long (and is retried).
const TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait between two attempts, and the most a `Retry-After` is honoured for: a
/// receiver asking for more is treated as down, and retried at this pace.
pub const MAX_BACKOFF: Duration = Duration::from_secs(600);
/// Attempts before a notification is given up: with the backoff above, about 47 minutes of
/// receiver outage are bridged.
pub const MAX_ATTEMPTS: i64 = 12;
/// The rate limit's window.
const WINDOW: Duration = Duration::from_secs(60);

/// A configured webhook, its URL resolved.
#[derive(Clone)]
pub struct Target {
    /// The digest of its URL: what the outbox files its entries under.
    pub id: String,
    /// What logs call it.
    pub name: String,
    /// Its body shape.
    pub format: WebhookFormat,
    /// Which alerts it wants (`None`: all).
    events: Option<Vec<AlertKind>>,
    /// NB: kept out of `Debug` and of every message: a Slack webhook URL is a credential.
    url: reqwest::Url,
    /// When its last posts went out, within the window.
    sent: VecDeque<Instant>,
    /// Posts allowed per window.
    max_per_minute: u32,
}

/// What an attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The receiver took it (2xx).
    Sent,
    /// Try again, not before `after` if the receiver said so.
    Retry {
        /// Why, for the outbox and logs.
        error: String,
        /// The receiver's `Retry-After`.
        after: Option<Duration>,
    },
    /// The receiver refused it for good (a 4xx other than 408 and 429).
    GiveUp {
        /// Why.
        error: String,
    },
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

// === impl Target ===

impl Target {
    /// The webhook `hook` (entry `index` of `[[notify.webhooks]]`), its URL read now if it is
    /// a secret entry. Errors name the entry, never the URL.
    pub fn from_config(
        index: usize,
        hook: &NotifyWebhook,
        max_per_minute: u32,
    ) -> anyhow::Result<Self> {
        let key = format!("notify.webhooks[{index}].url");
        let raw = hook.url.trim();
        let url = if raw.starts_with("env:") || raw.starts_with("file:") {
            let bytes = read_secret(raw).with_context(|| key.clone())?;
            String::from_utf8(bytes)
                .with_context(|| format!("{key}: the secret is not UTF-8"))?
                .trim()
                .to_owned()
        } else {
            raw.to_owned()
        };
        check_url(&url).map_err(|why| anyhow::anyhow!("{key}: {why}"))?;
        let parsed = reqwest::Url::parse(&url).with_context(|| key.clone())?;
        let digest = Sha256::digest(url.as_bytes());
        Ok(Self {
            id: hex::encode(&digest[..8]),
            name: hook
                .name
                .clone()
                .unwrap_or_else(|| format!("{}-{index}", hook.format.as_str())),
            format: hook.format,
            events: hook.events.clone(),
            url: parsed,
            sent: VecDeque::new(),
            max_per_minute,
        })
    }

    /// Whether this webhook wants `kind`.
    pub fn wants(&self, kind: AlertKind) -> bool {
        self.events.as_ref().is_none_or(|e| e.contains(&kind))
    }

    /// Take one post from the rate limit at `now`; `false` when this minute's are spent.
    pub fn take(&mut self, now: Instant) -> bool {
        while self
            .sent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= WINDOW)
        {
            self.sent.pop_front();
        }
        if self.sent.len() >= usize::try_from(self.max_per_minute).unwrap_or(usize::MAX) {
            return false;
        }
        self.sent.push_back(now);
        true
    }

    /// Post `body`.
    pub async fn post(&self, client: &reqwest::Client, body: &serde_json::Value) -> Outcome {
        let resp = client.post(self.url.clone()).json(body).send().await;
        match resp {
            // NB: `without_url`: reqwest's message names the URL, which may be a credential.
            Err(e) => Outcome::Retry {
                error: e.without_url().to_string(),
                after: None,
            },
            Ok(resp) => {
                let status = resp.status();
                let after = retry_after(resp.headers());
                let text = resp.text().await.unwrap_or_default();
                classify(status.as_u16(), text.trim(), after)
            }
        }
    }
}

/// What an HTTP answer means: 2xx sent; 408, 429 and 5xx retried (after `Retry-After` if
/// given); any other status refused for good.
pub fn classify(status: u16, body: &str, after: Option<Duration>) -> Outcome {
    if (200..300).contains(&status) {
        return Outcome::Sent;
    }
    let body: String = body.chars().take(200).collect();
    let error = format!("HTTP {status}: {body}");
    if status >= 500 || matches!(status, 408 | 429) {
        Outcome::Retry { error, after }
    } else {
        Outcome::GiveUp { error }
    }
}

/// The wait after `attempts` failures (this one included): 2 s doubling up to
/// [`MAX_BACKOFF`], or the receiver's `after` if longer (up to the same bound).
pub fn backoff(attempts: i64, after: Option<Duration>) -> Duration {
    let exp = u32::try_from(attempts.clamp(1, 20) - 1).unwrap_or(19);
    let ours = Duration::from_secs(2)
        .saturating_mul(2u32.saturating_pow(exp))
        .min(MAX_BACKOFF);
    after.map_or(ours, |a| a.max(ours).min(MAX_BACKOFF))
}

/// `Retry-After` in seconds (the HTTP-date form is rare from webhooks; it counts as absent).
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    v.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// The client every post goes through.
pub fn http_client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(TIMEOUT)
        .user_agent(concat!("vcm/", env!("CARGO_PKG_VERSION")))
        // NB: a redirect would carry the alert to a place nobody configured.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .context("building the HTTP client for notifications")
}
