//! The cluster resource and its rules, free of any I/O: ids, names, durations, labels, the phase
//! machine, events and API tokens. Everything here is parsed at the edge and trusted within.

/// Audit records and their hash chain.
pub mod audit;
mod cluster;
mod duration;
mod error;
/// Labels with Kubernetes label syntax, selectors over them, and the patterns that state both.
pub mod labels;
mod notification;
mod phase;
mod principal;
mod pull_request;
mod status_report;
mod token;
pub mod usage;

pub use audit::{
    AuditCheckpoint, AuditEntry, AuditRecord, Decision, Door, Stage, UNTRUSTED_HEAD, genesis,
};
pub use cluster::{Cluster, ClusterEvent, ClusterId, ClusterName, DeleteReason, NewEvent};
pub use duration::Ttl;
pub use error::InvalidField;
pub(crate) use error::quoted;
pub use labels::{LabelSelector, Labels, MAX_LABELS, MAX_SELECTOR_REQUIREMENTS};
pub use notification::{NewNotification, Notification};
pub use phase::{InvalidTransition, Phase, PhaseEvent};
pub use principal::{Principal, ROLES, RepoGrant, Role};
pub use pull_request::{PrUpdate, PrWant, PullRequest};
pub use status_report::{ReportState, StatusReport, StatusWant};
pub use token::{ApiToken, GATEWAY_PREFIX, GatewayCredential, TokenSecret};

/// Timestamps everywhere are UTC instants.
pub type Timestamp = jiff::Timestamp;

/// Now, truncated to whole milliseconds (what the stores keep), so a record held in memory
/// and the same record read back compare equal.
pub fn now_ms() -> Timestamp {
    let ms = Timestamp::now().as_millisecond();
    Timestamp::from_millisecond(ms).unwrap_or_else(|_| Timestamp::now())
}

/// Test support: strings drawn from a documented pattern, and a pattern matcher.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod testkit {
    use proptest::strategy::Strategy;

    /// Strings matching `pattern` (an anchored `^…$` regular expression of the API document).
    pub(crate) fn mk_matching(pattern: &str) -> impl Strategy<Value = String> + use<> {
        let inner = pattern
            .strip_prefix('^')
            .and_then(|p| p.strip_suffix('$'))
            .unwrap_or_else(|| panic!("{pattern} is not anchored"));
        proptest::string::string_regex(inner).unwrap()
    }

    /// Whether `s` matches `pattern` (as JSON Schema's `pattern` reads it).
    pub(crate) fn matches(pattern: &str, s: &str) -> bool {
        regex::Regex::new(pattern).unwrap().is_match(s)
    }
}
