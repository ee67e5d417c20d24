//! `--wait`: poll a cluster until it reaches a phase, showing progress on stderr.
//!
//! On a terminal a spinner shows the phase, the server's message and the elapsed time; when
//! stderr is not a terminal (CI logs) the spinner hides itself and each phase change is one
//! line instead.

use std::time::Duration;

use anyhow::bail;
use indicatif::{ProgressBar, ProgressStyle};
use tokio::time::Instant;

use crate::api::ClusterView;
use crate::client::{Client, ClientError};

/// How often the cluster is polled at first: a local cluster is Ready in about 4 s, and a wait
/// that notices it up to a second late makes every CI job that second slower. One poll is one
/// cached read on the server.
const FAST_POLL_INTERVAL: Duration = Duration::from_millis(200);
/// How long the fast polling lasts before it slows to [`POLL_INTERVAL`] (a vCluster takes
/// tens of seconds; nothing is gained by asking five times a second all along).
const FAST_POLL_FOR: Duration = Duration::from_secs(15);
/// How often the cluster is polled after that.
const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// The pause before the next poll, `elapsed` into the wait.
fn poll_interval(elapsed: Duration) -> Duration {
    if elapsed < FAST_POLL_FOR {
        FAST_POLL_INTERVAL
    } else {
        POLL_INTERVAL
    }
}

/// What to wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `Ready`; `Failed`, `Deleting` and `Deleted` end the wait with an error.
    Ready,
    /// `Deleted` (or gone altogether).
    Deleted,
}

/// What one poll means for the wait.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Done,
    KeepWaiting,
    Fail(String),
}

/// Poll cluster `id` until it reaches `target`, for at most `timeout`; the final view.
pub async fn until(
    client: &Client,
    id: &str,
    target: Target,
    timeout: Duration,
) -> anyhow::Result<ClusterView> {
    let started = Instant::now();
    let deadline = started + timeout;
    let mut progress = Progress::new();
    let mut last: Option<ClusterView> = None;
    loop {
        match client.get(id).await {
            Ok(view) => {
                progress.show(&view, started.elapsed());
                match verdict(&view, target) {
                    Verdict::Done => {
                        progress.finish();
                        return Ok(view);
                    }
                    Verdict::Fail(message) => {
                        progress.finish();
                        bail!(message);
                    }
                    Verdict::KeepWaiting => last = Some(view),
                }
            }
            Err(ClientError::Api { status: 404, .. })
                if target == Target::Deleted && last.is_some() =>
            {
                // Purged after deletion: as gone as it gets.
                progress.finish();
                return last.ok_or_else(|| anyhow::anyhow!("cluster {id} is gone"));
            }
            // The server restarting or briefly unavailable is no reason to give up a wait.
            Err(err) if is_retryable(&err) => progress.note(&format!("retrying: {err}")),
            Err(err) => {
                progress.finish();
                return Err(err.into());
            }
        }
        let pause = poll_interval(started.elapsed());
        if Instant::now() + pause > deadline {
            progress.finish();
            let (phase, message) = last
                .as_ref()
                .map(|v| (v.phase.as_str(), v.message.as_str()))
                .unwrap_or(("unknown", "no answer from the server"));
            let wanted = match target {
                Target::Ready => "Ready",
                Target::Deleted => "Deleted",
            };
            bail!(
                "timed out after {}s waiting for cluster {id} to be {wanted}; it is {phase}: \
                 {message} (see `vcm cluster events {id}`)",
                timeout.as_secs()
            );
        }
        tokio::time::sleep(pause).await;
    }
}

fn verdict(view: &ClusterView, target: Target) -> Verdict {
    let name = &view.name;
    match (target, view.phase.as_str()) {
        (Target::Ready, "Ready") | (Target::Deleted, "Deleted") => Verdict::Done,
        (Target::Ready, "Failed") => {
            Verdict::Fail(format!("cluster {name} failed: {}", view.message))
        }
        (Target::Ready, phase @ ("Deleting" | "Deleted")) => {
            let reason = view.delete_reason.as_deref().unwrap_or("requested");
            Verdict::Fail(format!(
                "cluster {name} is {phase} ({reason}) before it became Ready: {}",
                view.message
            ))
        }
        _ => Verdict::KeepWaiting,
    }
}

fn is_retryable(err: &ClientError) -> bool {
    match err {
        ClientError::Connect { .. } => true,
        // NB: 429 too: many jobs waiting on one token may exceed its request budget for a
        // moment; the wait slows down rather than failing the job.
        ClientError::Api { status, .. } => *status >= 500 || *status == 429,
        ClientError::Other(_) => false,
    }
}

/// A spinner on a terminal, one line per phase change otherwise.
struct Progress {
    bar: ProgressBar,
    last_phase: Option<String>,
}

impl Progress {
    fn new() -> Self {
        let bar = ProgressBar::new_spinner();
        if let Ok(style) = ProgressStyle::with_template("{spinner} [{elapsed}] {msg}") {
            bar.set_style(style);
        }
        bar.enable_steady_tick(Duration::from_millis(120));
        Self {
            bar,
            last_phase: None,
        }
    }

    fn show(&mut self, view: &ClusterView, elapsed: Duration) {
        let line = format!("{} {}: {}", view.name, view.phase, view.message);
        self.bar.set_message(line.clone());
        if self.bar.is_hidden() && self.last_phase.as_deref() != Some(view.phase.as_str()) {
            eprintln!("[{:>4}s] {line}", elapsed.as_secs());
        }
        self.last_phase = Some(view.phase.clone());
    }

    fn note(&self, message: &str) {
        if self.bar.is_hidden() {
            eprintln!("{message}");
        } else {
            self.bar.set_message(message.to_owned());
        }
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polls_fast_while_a_local_cluster_would_become_ready_then_every_second() {
        assert_eq!(poll_interval(Duration::ZERO), FAST_POLL_INTERVAL);
        assert_eq!(poll_interval(Duration::from_secs(14)), FAST_POLL_INTERVAL);
        assert_eq!(poll_interval(Duration::from_secs(16)), POLL_INTERVAL);
    }

    fn mk_view(phase: &str) -> ClusterView {
        ClusterView {
            id: "c-1".into(),
            name: "web".into(),
            owner: "token:ci".into(),
            team: None,
            phase: phase.into(),
            message: "because".into(),
            size: "small".into(),
            kubernetes_version: "1.36".into(),
            ttl: "2h".into(),
            idle_timeout: None,
            host: "local".into(),
            labels: Default::default(),
            created_at: String::new(),
            ready_at: None,
            expires_at: String::new(),
            last_activity_at: String::new(),
            deleted_at: None,
            endpoint: None,
            delete_reason: None,
        }
    }

    #[test]
    fn waiting_for_ready_ends_on_ready_and_fails_on_failed_or_deleted() {
        // Table: (target, phase, done?, fails?).
        let cases = [
            (Target::Ready, "Pending", false, false),
            (Target::Ready, "Provisioning", false, false),
            (Target::Ready, "Ready", true, false),
            (Target::Ready, "Failed", false, true),
            (Target::Ready, "Deleting", false, true),
            (Target::Ready, "Deleted", false, true),
            (Target::Deleted, "Deleting", false, false),
            (Target::Deleted, "Deleted", true, false),
        ];
        for (target, phase, done, fails) in cases {
            let v = verdict(&mk_view(phase), target);
            assert_eq!(v == Verdict::Done, done, "{target:?} {phase}");
            assert_eq!(matches!(v, Verdict::Fail(_)), fails, "{target:?} {phase}");
        }
        let Verdict::Fail(message) = verdict(&mk_view("Failed"), Target::Ready) else {
            unreachable!("Failed fails");
        };
        assert!(message.contains("because"), "{message}");
    }
}
