//! The crate's error type: typed module errors combined, each with a kind (mapped to HTTP in one
//! place, `http::error`) and a stable metric label.

use crate::domain::{InvalidField, InvalidTransition};
use crate::driver::DriverError;
use crate::store::StoreError;

/// Result with the crate error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, by what the caller can do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// No such thing.
    NotFound,
    /// Clashes with current state (name taken, idempotency key reused).
    Conflict,
    /// The request is wrong; the message says how.
    Invalid,
    /// No or bad credentials.
    Unauthenticated,
    /// Credentials fine, action not allowed.
    Forbidden,
    /// Too many requests from this caller; try again after a pause.
    RateLimited,
    /// Try again later.
    Unavailable,
    /// A bug or an unexpected failure; details are logged, not returned.
    Internal,
}

/// The crate error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A field failed to parse.
    #[error(transparent)]
    Invalid(#[from] InvalidField),
    /// A request that is well-formed but not acceptable (immutable field, bad combination).
    #[error("{message}")]
    Unprocessable {
        /// Stable code (`immutable_field`, `unknown_size`…).
        code: &'static str,
        /// What to change.
        message: String,
    },
    /// The cluster does not exist (or is not visible to the caller).
    #[error("cluster {0:?} not found")]
    ClusterNotFound(String),
    /// Some other resource (a token) does not exist; the message names it.
    #[error("{0}")]
    NotFound(String),
    /// Too many requests from one principal or address: 429 with `Retry-After`.
    #[error("{message}")]
    RateLimited {
        /// Whose budget ran out and how to raise it.
        message: String,
        /// When the budget has room again.
        retry_after: std::time::Duration,
    },
    /// A state clash; `code` is stable (`name_taken`, `idempotency_key_reused`…).
    #[error("{message}")]
    Conflict {
        /// Stable code.
        code: &'static str,
        /// What clashed and what to do.
        message: String,
    },
    /// Missing or invalid credentials.
    #[error("{0}")]
    Unauthenticated(String),
    /// Not allowed.
    #[error("{0}")]
    Forbidden(String),
    /// Not allowed by a limit the caller can read about (`quota_exceeded`): 403 with this
    /// code and message.
    #[error("{message}")]
    Denied {
        /// Stable code.
        code: &'static str,
        /// Which limit, the current use, and what to do.
        message: String,
    },
    /// Temporarily unable for an internal reason (`Retry-After` applies); the message is
    /// logged, the client sees only the code.
    #[error("{0}")]
    Unavailable(String),
    /// Temporarily unable for a reason the caller may know and act on (every host full, no host
    /// reachable): 503 with this message and `Retry-After`.
    #[error("{message}")]
    TryLater {
        /// Stable code (`no_capacity`, `no_reachable_host`…).
        code: &'static str,
        /// What is missing and what the caller can do.
        message: String,
        /// When a retry has a chance.
        retry_after: std::time::Duration,
    },
    /// A phase-machine violation: a bug if it escapes to a caller.
    #[error(transparent)]
    Transition(#[from] InvalidTransition),
    /// Storage failure.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Driver failure.
    #[error(transparent)]
    Driver(#[from] DriverError),
    /// Anything else.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

// === impl Error ===

impl Error {
    /// The kind, for HTTP status and retry decisions.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Invalid(_) | Error::Unprocessable { .. } => ErrorKind::Invalid,
            Error::ClusterNotFound(_) | Error::NotFound(_) => ErrorKind::NotFound,
            Error::RateLimited { .. } => ErrorKind::RateLimited,
            Error::Conflict { .. } => ErrorKind::Conflict,
            Error::Unauthenticated(_) => ErrorKind::Unauthenticated,
            Error::Forbidden(_) | Error::Denied { .. } => ErrorKind::Forbidden,
            Error::Unavailable(_) | Error::TryLater { .. } => ErrorKind::Unavailable,
            Error::Store(StoreError::NotFound) => ErrorKind::NotFound,
            Error::Store(StoreError::Conflict(_)) => ErrorKind::Conflict,
            Error::Store(StoreError::Unavailable(_)) => ErrorKind::Unavailable,
            Error::Driver(DriverError::Transient(_) | DriverError::HostRemoved { .. }) => {
                ErrorKind::Unavailable
            }
            Error::Driver(DriverError::NotFound) => ErrorKind::NotFound,
            Error::Driver(DriverError::Permanent(_) | DriverError::Lost(_))
            | Error::Store(StoreError::Other(_))
            | Error::Transition(_)
            | Error::Other(_) => ErrorKind::Internal,
        }
    }

    /// The stable snake_case code for API bodies.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Invalid(_) => "invalid_field",
            Error::Unprocessable { code, .. }
            | Error::Conflict { code, .. }
            | Error::TryLater { code, .. }
            | Error::Denied { code, .. } => code,
            Error::ClusterNotFound(_) => "cluster_not_found",
            Error::NotFound(_) => "not_found",
            Error::RateLimited { .. } => "rate_limited",
            Error::Unauthenticated(_) => "unauthenticated",
            Error::Forbidden(_) => "forbidden",
            Error::Unavailable(_) => "unavailable",
            Error::Store(StoreError::Conflict(_)) => "conflict",
            Error::Store(StoreError::NotFound) => "not_found",
            Error::Store(StoreError::Unavailable(_)) => "store_unavailable",
            Error::Driver(DriverError::Transient(_)) => "driver_unavailable",
            Error::Driver(DriverError::NotFound) => "not_found",
            _ => "internal",
        }
    }

    /// A stable label for metrics (`reconcile_failures{error=…}`).
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Driver(e) => e.metric_label(),
            Error::Store(_) => "store",
            Error::Transition(_) => "invalid_transition",
            other => other.code(),
        }
    }

    /// A conflict with a stable code.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Error::Conflict {
            code,
            message: message.into(),
        }
    }

    /// A 503 whose message the caller sees: `retry_after` says when to try again.
    pub fn try_later(
        code: &'static str,
        message: impl Into<String>,
        retry_after: std::time::Duration,
    ) -> Self {
        Error::TryLater {
            code,
            message: message.into(),
            retry_after,
        }
    }

    /// An unprocessable request with a stable code.
    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Error::Unprocessable {
            code,
            message: message.into(),
        }
    }
}
