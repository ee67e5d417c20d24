//! Operators' Rego policies (issue 13): a last word on every mutating request, after the role
//! checks, evaluated with regorus (an embedded Rego interpreter: no OPA server to run).
//!
//! The convention, which `docs/POLICY.md` documents for operators:
//!
//! * The policy is one or more `.rego` files (Rego v1) in `package vcm`, plus an optional data
//!   document (`data.<key>`, e.g. per-team settings under `data.teams`).
//! * The request is the input document, [`PolicyInput`] (version 1): `input.principal`,
//!   `input.action`, `input.cluster`, `input.request`, `input.usage`, `input.time`.
//! * The decision is the set rule `data.vcm.deny`: each rule adds a message
//!   (`deny contains msg if { … }`). The request is allowed iff the set is empty or undefined;
//!   otherwise it is denied with every message. Files may each add to the same set.
//! * Fail closed: an evaluation error, a `deny` that is not a set, or an evaluation longer
//!   than `[policy] timeout_ms` denies, with a message that says which.
//!
//! NB: this module only decides. Calling it from the request path (and answering 403
//! `policy_denied` with the messages) belongs to the service layer.

mod engine;
mod files;
mod input;
mod reads;

pub use self::engine::{Compiled, Policy};
pub use self::input::{INPUT_VERSION, InputPrincipal, PolicyInput, PrincipalKind, Usage, action};

/// The rule whose value is the decision: a set of denial messages.
pub const DENY_RULE: &str = "data.vcm.deny";

/// What the policy says about one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Nothing in `data.vcm.deny`: go ahead.
    Allow,
    /// Refused, with every message of `data.vcm.deny` (in Rego's set order, at least one).
    Deny(Vec<String>),
}

// === impl Decision ===

impl Decision {
    /// A denial with one message.
    pub fn deny(message: impl Into<String>) -> Self {
        Self::Deny(vec![message.into()])
    }

    /// Allowed?
    pub fn is_allowed(&self) -> bool {
        matches!(self, Self::Allow)
    }

    /// The denial messages; none when allowed.
    pub fn messages(&self) -> &[String] {
        match self {
            Self::Allow => &[],
            Self::Deny(messages) => messages,
        }
    }
}

#[cfg(test)]
mod tests;
