//! The values the [`Store`](super::Store) contract reads and writes besides the domain's own:
//! listing filters and pages, idempotency records, the audit log's head and filter, the
//! census for `/metrics`, and outbox attempts.

use crate::domain::{
    AuditCheckpoint, AuditRecord, ClusterId, Decision, LabelSelector, Phase, RepoGrant, Timestamp,
};

/// Which clusters to list.
#[derive(Debug, Clone, Default)]
pub struct ClusterFilter {
    /// Only this phase.
    pub phase: Option<Phase>,
    /// Only this owner.
    pub owner: Option<String>,
    /// Only clusters this caller may see (`None`: every cluster).
    pub visible_to: Option<Visibility>,
    /// Every label requirement must hold.
    pub labels: LabelSelector,
    /// At most this many (the store caps it).
    pub limit: usize,
    /// Continue after this position (from a previous page's `next_cursor`).
    pub after: Option<Cursor>,
}

/// The clusters one caller may see: those it owns, and its team's.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Visibility {
    /// Owned by this subject.
    pub owner: String,
    /// Or belonging to this team (`None`: only owned ones).
    pub team: Option<String>,
    /// Or a pull-request cluster of this repository.
    pub repository: Option<RepoGrant>,
}

/// A position in the cluster listing order (`created_at`, then `id`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// Creation time in milliseconds since the epoch.
    pub created_ms: i64,
    /// Tie-breaker.
    pub id: String,
}

/// One page of a listing.
#[derive(Debug, Clone)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Where the next page starts, if there is one.
    pub next: Option<Cursor>,
}

/// A stored idempotency key: a retried create returns the same cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    /// The principal that used the key (keys are per principal).
    pub principal: String,
    /// The key.
    pub key: String,
    /// A hash of the request body, to refuse the same key with a different body.
    pub request_hash: String,
    /// The cluster it created.
    pub cluster_id: ClusterId,
}

/// The end of the audit log, which the next record links to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditHead {
    /// Its last record.
    Record(Box<AuditRecord>),
    /// Retention's checkpoint, when no record is left after it.
    Checkpoint(AuditCheckpoint),
}

// === impl AuditHead ===

impl AuditHead {
    /// The seq and hash the next record follows.
    pub fn link(&self) -> (u64, &str) {
        match self {
            Self::Record(r) => (r.seq, &r.hash),
            Self::Checkpoint(c) => (c.through_seq, &c.hash),
        }
    }
}

/// Which audit records to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Written at or after.
    pub since: Option<Timestamp>,
    /// Written before.
    pub until: Option<Timestamp>,
    /// By this principal.
    pub principal: Option<String>,
    /// With this action (`POST /v1/clusters`).
    pub action: Option<String>,
    /// With this decision (`denied`).
    pub decision: Option<Decision>,
    /// About this target (a cluster id).
    pub target: Option<String>,
    /// Seqs after this one (ascending pages).
    pub after_seq: Option<u64>,
    /// Seqs before this one (descending pages).
    pub before_seq: Option<u64>,
    /// Newest first.
    pub descending: bool,
    /// At most this many.
    pub limit: usize,
}

/// The store's figures for `/metrics` ([`Store::census`](super::Store::census)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Census {
    /// Cluster records (retained Deleted and Failed ones too) by phase, host, size and
    /// Kubernetes version.
    pub groups: Vec<CensusGroup>,
    /// For each of Pending, Provisioning and Deleting that any cluster is in: when the cluster
    /// that has been in it longest entered it.
    pub waiting_since: Vec<(Phase, Timestamp)>,
    /// Status reports wanted and not yet sent (nor given up on).
    pub status_backlog: u64,
    /// Alert notifications queued and not yet sent (nor given up on).
    pub notification_backlog: u64,
}

/// Clusters sharing a phase, host, size and version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CensusGroup {
    /// Their phase.
    pub phase: Phase,
    /// Their host.
    pub host: String,
    /// Their size profile.
    pub size: String,
    /// Their Kubernetes version.
    pub version: String,
    /// How many.
    pub count: u64,
}

/// One owner's live clusters (Pending, Provisioning, Ready): how many, and their TTLs summed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OwnerUse {
    /// The owner's subject.
    pub owner: String,
    /// Live clusters.
    pub clusters: u64,
    /// Their TTLs, summed, in seconds.
    pub ttl_secs: u64,
}

/// How an attempt to send a status went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt<'a> {
    /// The provider took it; `check_run` is the GitHub check run it made, if it made one.
    Sent {
        /// Kept for the later states of the same commit.
        check_run: Option<u64>,
    },
    /// It failed in a way that may pass (an outage, a rate limit): try again at `at`.
    Retry {
        /// Why.
        error: &'a str,
        /// When.
        at: Timestamp,
    },
    /// The provider refused it for good (it names a commit it does not know, say); kept
    /// with the error, not retried.
    GaveUp {
        /// Why.
        error: &'a str,
    },
}
