//! A pull request vcm keeps a cluster for: what its latest accepted event wants (open at a
//! head commit, or closed), and how far the engine has carried that out.
//!
//! Events arrive out of order and more than once. [`PullRequest::next`] decides what a new one
//! changes, from the provider's own update time of the pull request: an event older than the
//! last one taken changes nothing, and a closed pull request is reopened only by an event that
//! opens it (never by a late "new commit").

use super::{ClusterId, Timestamp};

/// What an event asks of a pull request's cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrWant {
    /// Opened, reopened, ready for review: a cluster at the head commit.
    Open,
    /// A new head commit (or an edit): the cluster follows it, if the pull request is open.
    Move,
    /// Closed, merged or declined: no cluster.
    Close,
}

/// One event about a pull request, as a door read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrUpdate {
    /// `github:acme/web#42` (repository lowercased): one per pull request.
    pub key: String,
    /// `github` or `bitbucket`.
    pub provider: String,
    /// `owner/name`, as the provider writes it.
    pub repository: String,
    /// The pull request's number.
    pub number: u64,
    /// What it asks.
    pub want: PrWant,
    /// The head commit.
    pub head_sha: String,
    /// The source branch.
    pub branch: String,
    /// The pull request's page.
    pub url: String,
    /// The GitHub App installation it came through, if any.
    pub installation_id: Option<u64>,
    /// The repository's immutable id (GitHub `repository.id`, Bitbucket `repository.uuid`
    /// without braces), if the delivery carried it.
    pub repository_id: Option<String>,
    /// The provider's last update time of the pull request (orders events).
    pub version_ms: i64,
}

/// A pull request as vcm keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequest {
    /// `github:acme/web#42`.
    pub key: String,
    /// `github` or `bitbucket`.
    pub provider: String,
    /// `owner/name`.
    pub repository: String,
    /// Its number.
    pub number: u64,
    /// Whether it wants a cluster.
    pub open: bool,
    /// The head commit the cluster should be at.
    pub head_sha: String,
    /// The source branch.
    pub branch: String,
    /// Its page.
    pub url: String,
    /// The GitHub App installation, if any.
    pub installation_id: Option<u64>,
    /// The repository's immutable id, if known.
    pub repository_id: Option<String>,
    /// The provider's update time of the last event taken.
    pub version_ms: i64,
    /// Bumped by every event that changes what is wanted.
    pub generation: i64,
    /// The generation the engine has carried out.
    pub done_generation: i64,
    /// Its cluster, once the engine made one.
    pub cluster_id: Option<ClusterId>,
    /// When vcm last changed this record.
    pub updated_at: Timestamp,
}

// === impl PullRequest ===

impl PullRequest {
    /// The record after `update`, or `None` if it changes nothing (stale, a duplicate, the
    /// same head again, a new commit on a closed pull request, a close of one never seen open
    /// is kept only to order later events).
    pub fn next(current: Option<&Self>, update: &PrUpdate, now: Timestamp) -> Option<Self> {
        let Some(cur) = current else {
            let open = update.want != PrWant::Close;
            return Some(Self {
                key: update.key.clone(),
                provider: update.provider.clone(),
                repository: update.repository.clone(),
                number: update.number,
                open,
                head_sha: update.head_sha.clone(),
                branch: update.branch.clone(),
                url: update.url.clone(),
                installation_id: update.installation_id,
                repository_id: update.repository_id.clone(),
                version_ms: update.version_ms,
                // NB: a first close has nothing to carry out: done at once.
                generation: i64::from(open),
                done_generation: 0,
                cluster_id: None,
                updated_at: now,
            });
        };
        if update.version_ms < cur.version_ms {
            return None;
        }
        let open = match (cur.open, update.want) {
            (_, PrWant::Close) => false,
            (false, PrWant::Move) => return None,
            (false, PrWant::Open) if update.version_ms == cur.version_ms => return None,
            (_, PrWant::Open | PrWant::Move) => true,
        };
        if open == cur.open && update.head_sha == cur.head_sha {
            return None;
        }
        Some(Self {
            open,
            head_sha: update.head_sha.clone(),
            branch: update.branch.clone(),
            url: update.url.clone(),
            installation_id: update.installation_id.or(cur.installation_id),
            repository_id: update
                .repository_id
                .clone()
                .or_else(|| cur.repository_id.clone()),
            version_ms: update.version_ms,
            generation: cur.generation + 1,
            updated_at: now,
            ..cur.clone()
        })
    }

    /// Whether the engine has something to carry out.
    pub fn pending(&self) -> bool {
        self.generation > self.done_generation
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(want: PrWant, sha: &str, version_ms: i64) -> PrUpdate {
        PrUpdate {
            key: "github:acme/web#7".into(),
            provider: "github".into(),
            repository: "acme/web".into(),
            number: 7,
            want,
            head_sha: sha.into(),
            branch: "feature".into(),
            url: "https://github.com/acme/web/pull/7".into(),
            installation_id: None,
            repository_id: None,
            version_ms,
        }
    }

    /// Feed `updates` in order; the record after each (None: unchanged).
    fn run(updates: &[PrUpdate]) -> Vec<Option<(bool, String, i64)>> {
        let now = Timestamp::UNIX_EPOCH;
        let mut cur: Option<PullRequest> = None;
        updates
            .iter()
            .map(|u| {
                let next = PullRequest::next(cur.as_ref(), u, now);
                if let Some(n) = &next {
                    cur = Some(n.clone());
                }
                next.map(|n| (n.open, n.head_sha, n.generation))
            })
            .collect()
    }

    #[test]
    fn open_move_and_close_each_bump_the_generation_and_a_same_head_edit_does_not() {
        let got = run(&[
            update(PrWant::Open, "aaa", 1),
            update(PrWant::Move, "bbb", 2),
            update(PrWant::Move, "bbb", 3),
            update(PrWant::Close, "bbb", 4),
        ]);
        assert_eq!(
            got,
            vec![
                Some((true, "aaa".into(), 1)),
                Some((true, "bbb".into(), 2)),
                None,
                Some((false, "bbb".into(), 3)),
            ]
        );
    }

    #[test]
    fn a_late_event_never_resurrects_a_closed_pull_request_but_a_reopen_does() {
        let got = run(&[
            update(PrWant::Open, "aaa", 1),
            update(PrWant::Close, "aaa", 5),
            update(PrWant::Move, "bbb", 4),
            update(PrWant::Move, "ccc", 6),
            update(PrWant::Open, "aaa", 5),
            update(PrWant::Open, "ddd", 7),
        ]);
        assert_eq!(got[2], None, "older than the close");
        assert_eq!(got[3], None, "a new commit on a closed pull request");
        assert_eq!(got[4], None, "an open as old as the close");
        assert_eq!(got[5], Some((true, "ddd".into(), 3)), "reopened later");
    }

    #[test]
    fn a_close_of_a_pull_request_never_seen_open_is_kept_done_so_a_late_open_stays_out() {
        let now = Timestamp::UNIX_EPOCH;
        let closed =
            PullRequest::next(None, &update(PrWant::Close, "aaa", 5), now).expect("recorded");
        assert!(!closed.open && !closed.pending(), "{closed:?}");
        assert_eq!(
            PullRequest::next(Some(&closed), &update(PrWant::Open, "aaa", 3), now),
            None
        );
    }
}
