//! Status on the commit: each pull request's cluster shown on its head commit, as a GitHub
//! commit status or a Bitbucket build status, with a link to the cluster.
//!
//! Two steps, both in the [`Reporter`]'s pass. First, what each commit should show is worked
//! out from the stored pull requests and clusters ([`wanted`]) and queued in the store's
//! outbox, which keeps only the latest state per commit. Then due entries are posted; a
//! failure is retried with backoff (2 s, doubling, at most 5 minutes), so a provider outage or
//! a restart of vcm delays a status and never loses or reorders it.

mod bitbucket;
mod github;
pub mod wanted;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use jiff::SignedDuration;

pub use self::bitbucket::Bitbucket;
pub use self::github::Github;
use self::wanted::cut;
use crate::config::WebhooksConfig;
use crate::config::webhooks::read_secret;
use crate::domain::{PullRequest, StatusReport, StatusWant, now_ms};
use crate::store::{Attempt, Store};

/// Entries posted per pass.
const BATCH: usize = 50;
/// Pull requests looked at per pass.
const PULL_REQUESTS: usize = 500;
/// Closed pull requests are looked at this long after their last change.
const CLOSED_FOR: SignedDuration = SignedDuration::from_hours(1);
/// Longest wait between two attempts at one status.
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// Each request to a provider gives up after this long (and is retried).
const TIMEOUT: Duration = Duration::from_secs(10);

/// Why a status was not posted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendError {
    /// Whether trying again may help (an outage, a rate limit, an expired token).
    pub retry: bool,
    /// The provider's HTTP status, if it answered.
    pub status: Option<u16>,
    /// What went wrong, for logs and the outbox.
    pub message: String,
}

/// A provider's 2xx answer.
#[derive(Debug)]
pub struct Answer {
    /// Its JSON body (`Null` if none).
    pub body: serde_json::Value,
}

/// Works out and posts the statuses of every reporting door.
pub struct Reporter {
    store: Arc<dyn Store>,
    public_url: String,
    github: Option<Github>,
    bitbucket: Option<Bitbucket>,
    /// What was last queued per pull request and commit: a pass writes only changes.
    queued: Mutex<HashMap<(String, String), StatusWant>>,
    /// Where `vcm_status_reports_total` is counted.
    metrics: Option<Arc<crate::metrics::Metrics>>,
}

impl std::fmt::Debug for Reporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reporter")
            .field("public_url", &self.public_url)
            .field("github", &self.github)
            .field("bitbucket", &self.bitbucket)
            .finish_non_exhaustive()
    }
}

// === impl SendError ===

impl SendError {
    /// A failure worth retrying.
    pub fn retry(message: impl Into<String>) -> Self {
        Self {
            retry: true,
            status: None,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

// === impl Reporter ===

impl Reporter {
    /// The reporter `config` asks for (`None`: no door reports), its keys and tokens read now.
    /// Errors name the setting to fix.
    pub fn from_config(
        config: &WebhooksConfig,
        store: Arc<dyn Store>,
    ) -> anyhow::Result<Option<Self>> {
        let github = match &config.github {
            Some(door) => {
                let api = door.api_url.as_deref();
                let context = door.context.as_deref();
                match (&door.token, &door.app_id, &door.private_key) {
                    (Some(_), Some(_), _) => anyhow::bail!(
                        "[webhooks.github]: set token or app_id (with private_key), not both"
                    ),
                    (Some(token), None, _) => Some(
                        Github::with_token(api, context, text(token)?)?
                            .with_check_runs(door.check_runs)
                            .context("[webhooks.github]")?,
                    ),
                    (None, Some(app), Some(key)) => Some(
                        Github::as_app(api, context, app, &read_secret(key)?)
                            .and_then(|g| g.with_check_runs(door.check_runs))
                            .context("[webhooks.github]")?,
                    ),
                    (None, Some(_), None) => anyhow::bail!(
                        "[webhooks.github]: app_id needs private_key = \"file:/path/to/app.pem\""
                    ),
                    (None, None, Some(_)) => anyhow::bail!(
                        "[webhooks.github]: private_key needs app_id (the App's client ID)"
                    ),
                    (None, None, None) => None,
                }
            }
            None => None,
        };
        let bitbucket = match &config.bitbucket {
            Some(door) => {
                anyhow::ensure!(
                    door.app_id.is_none() && door.private_key.is_none() && !door.check_runs,
                    "[webhooks.bitbucket]: app_id, private_key and check_runs are GitHub's; \
                     Bitbucket reports with token = \"env:NAME\" (an access token)"
                );
                match &door.token {
                    Some(token) => Some(
                        Bitbucket::new(
                            door.api_url.as_deref(),
                            door.context.as_deref(),
                            text(token)?,
                        )
                        .context("[webhooks.bitbucket]")?,
                    ),
                    None => None,
                }
            }
            None => None,
        };
        if github.is_none() && bitbucket.is_none() {
            return Ok(None);
        }
        let public_url = config.public_url.as_deref().context(
            "[webhooks] public_url = \"https://vcm.example.com\" is needed: statuses link to the cluster",
        )?;
        let public_url = api_url(Some(public_url), "").context("[webhooks] public_url")?;
        Ok(Some(Self {
            store,
            public_url,
            github,
            bitbucket,
            queued: Mutex::default(),
            metrics: None,
        }))
    }

    /// Queue what changed, then post what is due. `failing` gives the error of a pull
    /// request's last failed attempt, if its work is failing.
    pub async fn pass(&self, failing: &(dyn Fn(&str) -> Option<String> + Sync)) {
        if let Err(e) = self.queue(failing).await {
            tracing::warn!(error = %e, "working out commit statuses");
        }
        if let Err(e) = self.send().await {
            tracing::warn!(error = %e, "posting commit statuses");
        }
    }

    fn reports(&self, pr: &PullRequest) -> bool {
        match pr.provider.as_str() {
            "github" => self.github.is_some(),
            "bitbucket" => self.bitbucket.is_some(),
            _ => false,
        }
    }

    async fn queue(
        &self,
        failing: &(dyn Fn(&str) -> Option<String> + Sync),
    ) -> crate::error::Result<()> {
        let now = now_ms();
        let prs = self
            .store
            .reportable_pull_requests(now - CLOSED_FOR, PULL_REQUESTS)
            .await?;
        for pr in prs.iter().filter(|pr| self.reports(pr)) {
            let wants = if pr.open {
                let cluster = match &pr.cluster_id {
                    Some(id) => self.store.get_cluster(id).await?,
                    None => None,
                };
                let error = failing(&pr.key);
                vec![wanted::for_open(
                    pr,
                    cluster.as_ref(),
                    error.as_deref(),
                    &self.public_url,
                )]
            } else {
                self.store
                    .status_reports(&pr.key)
                    .await?
                    .iter()
                    .filter_map(|shown| wanted::for_closed(pr, &shown.want))
                    .collect()
            };
            for want in wants {
                self.want(want, now).await?;
            }
        }
        // NB: forget what was queued for pull requests that left the reportable set (closed
        // over an hour ago), so the map does not grow with every pull request ever seen.
        let keys: std::collections::HashSet<&str> = prs.iter().map(|p| p.key.as_str()).collect();
        self.queued
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(pr_key, _), _| keys.contains(pr_key.as_str()));
        Ok(())
    }

    async fn want(&self, want: StatusWant, now: jiff::Timestamp) -> crate::error::Result<()> {
        let key = (want.pr_key.clone(), want.sha.clone());
        if self
            .queued
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            == Some(&want)
        {
            return Ok(());
        }
        if self.store.want_status(&want, now).await? {
            tracing::info!(
                pull_request = %want.pr_key, sha = %want.sha, state = want.state.as_str(),
                "commit status queued"
            );
        }
        self.queued
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, want);
        Ok(())
    }

    async fn send(&self) -> crate::error::Result<()> {
        let due = self.store.due_statuses(now_ms(), BATCH).await?;
        for report in due {
            let result = match report.want.provider.as_str() {
                "github" => match &self.github {
                    Some(g) => g.post(&report).await,
                    None => Err(not_reporting("github")),
                },
                "bitbucket" => match &self.bitbucket {
                    Some(b) => b.post(&report.want).await.map(|()| None),
                    None => Err(not_reporting("bitbucket")),
                },
                other => Err(not_reporting(other)),
            };
            self.attempted(&report, result).await?;
        }
        Ok(())
    }

    /// Count status reports into `metrics`.
    #[must_use]
    pub fn with_metrics(mut self, metrics: Arc<crate::metrics::Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    async fn attempted(
        &self,
        report: &StatusReport,
        result: Result<Option<u64>, SendError>,
    ) -> crate::error::Result<()> {
        let now = now_ms();
        let w = &report.want;
        if let Some(metrics) = &self.metrics {
            let provider = match w.provider.as_str() {
                "github" => "github",
                "bitbucket" => "bitbucket",
                _ => "other",
            };
            let outcome = match &result {
                Ok(_) => "sent",
                Err(e) if e.retry => "retried",
                Err(_) => "failed",
            };
            metrics.status_report(provider, outcome);
        }
        let attempt = match &result {
            Ok(check_run) => {
                tracing::info!(
                    pull_request = %w.pr_key, sha = %w.sha, state = w.state.as_str(),
                    "commit status posted"
                );
                Attempt::Sent {
                    check_run: *check_run,
                }
            }
            Err(e) if e.retry => {
                let wait = backoff_after(report.attempts);
                tracing::warn!(
                    pull_request = %w.pr_key, sha = %w.sha, error = %e,
                    retry_in_secs = wait.as_secs(), "commit status not posted yet"
                );
                Attempt::Retry {
                    error: &e.message,
                    at: now + wait,
                }
            }
            Err(e) => {
                tracing::error!(
                    pull_request = %w.pr_key, sha = %w.sha, error = %e,
                    "commit status refused; not retried"
                );
                Attempt::GaveUp { error: &e.message }
            }
        };
        self.store.status_attempted(report, attempt, now).await?;
        Ok(())
    }
}

/// The wait after `attempts` earlier failures and this one: 2 s, doubling, at most
/// [`MAX_BACKOFF`].
fn backoff_after(attempts: i64) -> Duration {
    let exp = u32::try_from(attempts.clamp(0, 20)).unwrap_or(20);
    Duration::from_secs(2)
        .saturating_mul(2u32.saturating_pow(exp))
        .min(MAX_BACKOFF)
}

fn not_reporting(provider: &str) -> SendError {
    SendError {
        retry: true,
        status: None,
        message: format!(
            "{provider} statuses are not configured (set [webhooks.{provider}] token)"
        ),
    }
}

/// The text of a secret entry (`env:NAME` / `file:/path`), whitespace trimmed.
fn text(entry: &str) -> anyhow::Result<String> {
    let bytes = read_secret(entry)?;
    let s = String::from_utf8(bytes).with_context(|| format!("secret {entry:?} is not UTF-8"))?;
    Ok(s.trim().to_owned())
}

/// `url` (else `default`) without a trailing `/`; it must be an http(s) URL.
fn api_url(url: Option<&str>, default: &str) -> anyhow::Result<String> {
    let url = url.unwrap_or(default).trim_end_matches('/');
    let parsed = reqwest::Url::parse(url)
        .with_context(|| format!("{url:?} is not a URL; write https://host[:port][/path]"))?;
    anyhow::ensure!(
        matches!(parsed.scheme(), "http" | "https") && parsed.host_str().is_some(),
        "{url:?} must be an http:// or https:// URL"
    );
    Ok(url.to_owned())
}

fn http_client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(TIMEOUT)
        .user_agent(concat!("vcm/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("building the HTTP client for status reports")
}

/// A 2xx answer's body, or the failure: network errors, 5xx, 401, 403, 404, 408 and 429 may
/// pass (retried); any other 4xx will not (400/422: the provider refuses what was sent).
async fn checked(
    resp: Result<reqwest::Response, reqwest::Error>,
    doing: &str,
) -> Result<Answer, SendError> {
    let resp = resp.map_err(|e| SendError::retry(format!("{doing}: {e}")))?;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    if status.is_success() {
        let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
        return Ok(Answer { body });
    }
    let code = status.as_u16();
    let retry = status.is_server_error() || matches!(code, 401 | 403 | 404 | 408 | 429);
    Err(SendError {
        retry,
        status: Some(code),
        message: format!("{doing}: HTTP {code}: {}", cut(text.trim(), 300)),
    })
}

#[cfg(test)]
mod tests;
