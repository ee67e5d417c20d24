//! What vcm shows on a pull request's commit: the state of its cluster, kept in an outbox
//! until the provider has taken it.
//!
//! The outbox holds, per pull request and commit, the latest state wanted (`seq` bumps on every
//! change) and the latest the provider took (`sent_seq`). Only the latest wanted state is ever
//! sent, so a provider outage or a restart delays a status but never reorders two of them.

use super::Timestamp;

/// The state vcm reports for a commit's cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReportState {
    /// Being made (GitHub `pending`, Bitbucket `INPROGRESS`).
    Pending,
    /// Ready to use (GitHub `success`, Bitbucket `SUCCESSFUL`).
    Ready,
    /// The cluster failed (GitHub `failure`, Bitbucket `FAILED`).
    Failed,
    /// vcm could not make it: no capacity, a refused spec, a store error (GitHub `error`,
    /// Bitbucket `FAILED`).
    Error,
    /// Deleted while the pull request is open: its TTL or idle timeout ran out, or someone
    /// deleted it (GitHub `failure`, Bitbucket `STOPPED`).
    Stopped,
    /// The pull request closed: its cluster is gone or going (GitHub `success`, so a commit
    /// merged while its cluster was still being made carries no mark that never clears;
    /// Bitbucket `STOPPED`).
    Closed,
}

/// The status vcm wants shown on one commit of a pull request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusWant {
    /// The pull request (`github:acme/web#42`).
    pub pr_key: String,
    /// The commit, as the delivery gave it (Bitbucket: often 12 hex digits).
    pub sha: String,
    /// `github` or `bitbucket`.
    pub provider: String,
    /// `owner/name`.
    pub repository: String,
    /// The source branch (Bitbucket shows a build status on the pull request by it).
    pub branch: String,
    /// The GitHub App installation to post as, if any.
    pub installation_id: Option<u64>,
    /// What to show.
    pub state: ReportState,
    /// One line for people (cut to the providers' limits when sent).
    pub description: String,
    /// The link on the status.
    pub target_url: String,
}

/// One outbox entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusReport {
    /// The latest state wanted.
    pub want: StatusWant,
    /// Bumped each time the wanted state changes.
    pub seq: i64,
    /// The `seq` the provider took last (or that was given up on).
    pub sent_seq: i64,
    /// Failed attempts at the current `seq`.
    pub attempts: i64,
    /// Not sent before this.
    pub next_attempt_at: Timestamp,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// The GitHub check run made for this commit, once made (later states update it).
    pub check_run_id: Option<u64>,
}

// === impl ReportState ===

impl ReportState {
    /// The name the store keeps.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Ready => "ready",
            Self::Failed => "failed",
            Self::Error => "error",
            Self::Stopped => "stopped",
            Self::Closed => "closed",
        }
    }

    /// The state called `s`.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Pending,
            Self::Ready,
            Self::Failed,
            Self::Error,
            Self::Stopped,
            Self::Closed,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }
}

// === impl StatusReport ===

impl StatusReport {
    /// Whether the provider has yet to take the latest wanted state.
    pub fn due(&self) -> bool {
        self.sent_seq < self.seq
    }
}
