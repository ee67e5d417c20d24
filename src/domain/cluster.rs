//! The cluster resource: id, name, spec and status in one flat record, plus its events.

use std::fmt;

use super::{InvalidField, Labels, Phase, Timestamp, Ttl, quoted};

/// Random part of a cluster id: 10 characters of `[a-z0-9]` is ~51 bits, so ids never repeat
/// in practice and are still short enough to type.
const ID_RANDOM_LEN: usize = 10;
const ID_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
/// Names stay short so derived names (namespaces `vcm-<name>`, Helm releases) fit in 63.
const MAX_NAME_LEN: usize = 40;

/// `c-` followed by ten lowercase letters and digits. Generated, never reused.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct ClusterId(String);

// === impl ClusterId ===

impl ClusterId {
    /// A fresh random id.
    pub fn generate() -> Self {
        let mut bytes = [0u8; ID_RANDOM_LEN];
        rand::fill(&mut bytes[..]);
        let tail: String = bytes
            .iter()
            .map(|b| ID_ALPHABET[usize::from(*b) % ID_ALPHABET.len()] as char)
            .collect();
        Self(format!("c-{tail}"))
    }

    /// Parse an id; `None` if `s` is not shaped like one (it may then be a name).
    pub fn parse(s: &str) -> Option<Self> {
        let tail = s.strip_prefix("c-")?;
        (tail.len() == ID_RANDOM_LEN && tail.bytes().all(|b| ID_ALPHABET.contains(&b)))
            .then(|| Self(s.to_owned()))
    }

    /// Trust a value read back from the store.
    pub fn from_stored(s: String) -> Self {
        Self(s)
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClusterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A DNS-1123 label of at most 40 characters, unique among live clusters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct ClusterName(String);

// === impl ClusterName ===

impl ClusterName {
    /// The names [`ClusterName::parse`] accepts, as the API document states them.
    pub const PATTERN: &str = "^[a-z0-9](?:[-a-z0-9]{0,38}[a-z0-9])?$";

    /// Parse a user-given name.
    pub fn parse(s: &str) -> Result<Self, InvalidField> {
        let err = |why: &str| {
            InvalidField::new(
                "name",
                format!(
                    "{} {why}; use 1-{MAX_NAME_LEN} lowercase letters, digits and '-', starting and ending with a letter or digit",
                    quoted(s)
                ),
            )
        };
        let b = s.as_bytes();
        if b.is_empty() || b.len() > MAX_NAME_LEN {
            return Err(err("has the wrong length"));
        }
        if !b
            .iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        {
            return Err(err("has characters a DNS label cannot have"));
        }
        if b[0] == b'-' || b[b.len() - 1] == b'-' {
            return Err(err("starts or ends with '-'"));
        }
        Ok(Self(s.to_owned()))
    }

    /// The default name: the id itself.
    pub fn from_id(id: &ClusterId) -> Self {
        Self(id.0.clone())
    }

    /// Trust a value read back from the store.
    pub fn from_stored(s: String) -> Self {
        Self(s)
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClusterName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a cluster is being deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeleteReason {
    /// `DELETE /v1/clusters/{id}` or a label-selected bulk delete.
    Requested,
    /// `expires_at` passed.
    Expired,
    /// No activity for `idle_timeout`.
    Idle,
    /// The pull request it was made for closed.
    PullRequestClosed,
}

impl DeleteReason {
    /// Stable snake_case name (events, metrics, API).
    pub fn as_str(self) -> &'static str {
        match self {
            DeleteReason::Requested => "requested",
            DeleteReason::Expired => "expired",
            DeleteReason::Idle => "idle",
            DeleteReason::PullRequestClosed => "pull_request_closed",
        }
    }

    /// Parse the stable name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Requested,
            Self::Expired,
            Self::Idle,
            Self::PullRequestClosed,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }
}

/// One cluster: spec, status and bookkeeping in one flat record.
#[derive(Debug, Clone, PartialEq)]
pub struct Cluster {
    /// Generated id.
    pub id: ClusterId,
    /// Unique among live clusters.
    pub name: ClusterName,
    /// The principal that created it (its subject, `token:<id>` for API tokens).
    pub owner: String,
    /// The owner's team, if any.
    pub team: Option<String>,
    /// Where it is in its life.
    pub phase: Phase,
    /// A human-readable account of the last step ("ready in 3.2s", a failure's cause).
    pub message: String,
    /// Size profile name.
    pub size: String,
    /// Kubernetes minor version (`"1.36"`).
    pub kubernetes_version: String,
    /// Lifetime from creation.
    pub ttl: Ttl,
    /// Delete after this long without activity.
    pub idle_timeout: Option<Ttl>,
    /// Host cluster (or `local`).
    pub host: String,
    /// User labels.
    pub labels: Labels,
    /// Accepted at.
    pub created_at: Timestamp,
    /// First became Ready at.
    pub ready_at: Option<Timestamp>,
    /// `created_at + ttl`.
    pub expires_at: Timestamp,
    /// Last API call on it, kubeconfig issued or keepalive.
    pub last_activity_at: Timestamp,
    /// Reached `Deleted` at.
    pub deleted_at: Option<Timestamp>,
    /// API server URL once known.
    pub endpoint: Option<String>,
    /// Why it is being deleted, once it is.
    pub delete_reason: Option<DeleteReason>,
    /// Consecutive failed reconcile attempts (for backoff).
    pub attempts: u32,
    /// When the reconciler should look at it next.
    pub next_reconcile_at: Timestamp,
    /// A Failed cluster's resources have been released.
    pub cleaned_up: bool,
    /// The id of the request that last said what it should be (its create or its deletion);
    /// `None` for vcm's own decisions. The reconciler's log lines for it carry it.
    pub request_id: Option<String>,
    /// Optimistic-concurrency version; the store refuses an update carrying a stale one.
    pub version: i64,
}

/// A recorded lifecycle event.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ClusterEvent {
    /// Monotonic id.
    pub id: i64,
    /// The cluster.
    pub cluster_id: ClusterId,
    /// When.
    pub at: Timestamp,
    /// `created`, `phase_changed`, `delete_requested`, `updated`, `kubeconfig_issued`,
    /// `reconcile_error`…
    pub kind: String,
    /// Phase before, for phase changes.
    pub from_phase: Option<Phase>,
    /// Phase after, for phase changes.
    pub to_phase: Option<Phase>,
    /// A stable reason (`expired`, `idle`, `requested`, `driver_error`…).
    pub reason: Option<String>,
    /// Human-readable detail.
    pub message: String,
}

/// An event to record (the store assigns `id`).
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// See [`ClusterEvent::at`].
    pub at: Timestamp,
    /// See [`ClusterEvent::kind`].
    pub kind: String,
    /// See [`ClusterEvent::from_phase`].
    pub from_phase: Option<Phase>,
    /// See [`ClusterEvent::to_phase`].
    pub to_phase: Option<Phase>,
    /// See [`ClusterEvent::reason`].
    pub reason: Option<String>,
    /// See [`ClusterEvent::message`].
    pub message: String,
}

impl NewEvent {
    /// An event of `kind` now, with a message.
    pub fn new(kind: &str, message: impl Into<String>) -> Self {
        Self {
            at: Timestamp::now(),
            kind: kind.to_owned(),
            from_phase: None,
            to_phase: None,
            reason: None,
            message: message.into(),
        }
    }

    /// A phase change.
    pub fn phase(from: Phase, to: Phase, reason: Option<&str>, message: impl Into<String>) -> Self {
        Self {
            from_phase: Some(from),
            to_phase: Some(to),
            reason: reason.map(str::to_owned),
            ..Self::new("phase_changed", message)
        }
    }

    /// With a reason.
    pub fn with_reason(mut self, reason: &str) -> Self {
        self.reason = Some(reason.to_owned());
        self
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::domain::testkit::{matches, mk_matching};

    proptest! {
        #[test]
        fn any_string_is_a_name_or_refused_naming_the_field(s in any::<String>()) {
            if let Err(e) = ClusterName::parse(&s) {
                prop_assert_eq!(e.field, "name");
            }
            // Ids are only ever recognised, never refused.
            let _ = ClusterId::parse(&s);
            let _ = DeleteReason::parse(&s);
        }

        #[test]
        fn the_name_pattern_allows_exactly_the_names_that_parse(
            s in prop_oneof!["[-a-z0-9A-Z_.é]{0,42}", mk_matching(ClusterName::PATTERN)],
        ) {
            prop_assert_eq!(ClusterName::parse(&s).is_ok(), matches(ClusterName::PATTERN, &s), "{:?}", s);
        }
    }

    #[test]
    fn generated_ids_parse_and_differ() {
        let a = ClusterId::generate();
        let b = ClusterId::generate();
        assert_ne!(a, b);
        assert_eq!(ClusterId::parse(a.as_str()), Some(a.clone()));
        assert_eq!(ClusterId::parse("pr-42-web"), None);
    }

    #[test]
    fn names_must_be_short_dns_labels() {
        for ok in ["a", "pr-42-web", &"a".repeat(40), "0abc"] {
            ClusterName::parse(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        let bad = [
            ("", "empty"),
            ("-a", "leading dash"),
            ("a-", "trailing dash"),
            ("Web", "uppercase"),
            ("a_b", "underscore"),
            ("a.b", "dot"),
        ];
        for (name, why) in bad {
            let err = ClusterName::parse(name).expect_err(why);
            assert_eq!(err.field, "name", "{why}");
        }
        assert!(
            ClusterName::parse(&"a".repeat(41)).is_err(),
            "41 characters"
        );
    }
}
