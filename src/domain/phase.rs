//! The cluster phase machine: one transition function, and every legal move in one table.

use std::fmt;

/// Where a cluster is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Phase {
    /// Accepted, nothing created yet.
    Pending,
    /// The driver is creating the control plane.
    Provisioning,
    /// Usable: credentials can be issued.
    Ready,
    /// Being torn down.
    Deleting,
    /// Gone; the record stays for the retention period.
    Deleted,
    /// Creation failed for a reason retries cannot fix; resources are cleaned up, the record
    /// stays for the retention period.
    Failed,
}

/// What happens to a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhaseEvent {
    /// The reconciler starts creating it.
    StartProvisioning,
    /// The driver reports it ready.
    BecameReady,
    /// A permanent error while provisioning, or a Ready cluster's resources lost.
    Fail,
    /// Deletion requested (user, TTL, idleness, pull request closed).
    RequestDelete,
    /// The driver confirmed everything is gone.
    ConfirmDeleted,
}

/// A move the phase machine does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a cluster in phase {from} cannot take event {event:?}")]
pub struct InvalidTransition {
    /// Where the cluster was.
    pub from: Phase,
    /// What was attempted.
    pub event: PhaseEvent,
}

// === impl Phase ===

impl Phase {
    /// Every phase, for tables and tests.
    pub const ALL: [Phase; 6] = [
        Phase::Pending,
        Phase::Provisioning,
        Phase::Ready,
        Phase::Deleting,
        Phase::Deleted,
        Phase::Failed,
    ];

    /// The single transition function.
    pub fn transition(self, event: PhaseEvent) -> Result<Phase, InvalidTransition> {
        use Phase::*;
        use PhaseEvent::*;
        match (self, event) {
            (Pending, StartProvisioning) => Ok(Provisioning),
            (Provisioning, BecameReady) => Ok(Ready),
            (Pending | Provisioning | Ready, Fail) => Ok(Failed),
            (Pending | Provisioning | Ready | Failed, RequestDelete) => Ok(Deleting),
            (Deleting, ConfirmDeleted) => Ok(Deleted),
            (from, event) => Err(InvalidTransition { from, event }),
        }
    }

    /// Live phases hold resources and their names; `Deleted` does not.
    pub fn is_live(self) -> bool {
        !matches!(self, Phase::Deleted)
    }

    /// Phases in which nothing more happens on its own (`Failed` still gets cleaned up once).
    pub fn is_terminal(self) -> bool {
        matches!(self, Phase::Deleted | Phase::Failed)
    }

    /// The API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pending => "Pending",
            Phase::Provisioning => "Provisioning",
            Phase::Ready => "Ready",
            Phase::Deleting => "Deleting",
            Phase::Deleted => "Deleted",
            Phase::Failed => "Failed",
        }
    }

    /// Parse the API spelling (case-insensitive).
    pub fn parse(s: &str) -> Option<Phase> {
        Phase::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s))
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Phase::*;
    use PhaseEvent::*;

    const EVENTS: [PhaseEvent; 5] = [
        StartProvisioning,
        BecameReady,
        Fail,
        RequestDelete,
        ConfirmDeleted,
    ];

    /// Every (phase, event) pair, and the expected outcome (None = refused).
    #[test]
    fn transition_table_is_exhaustive() {
        let expected = |from: Phase, ev: PhaseEvent| -> Option<Phase> {
            match (from, ev) {
                (Pending, StartProvisioning) => Some(Provisioning),
                (Provisioning, BecameReady) => Some(Ready),
                (Pending, Fail) | (Provisioning, Fail) | (Ready, Fail) => Some(Failed),
                (Pending, RequestDelete)
                | (Provisioning, RequestDelete)
                | (Ready, RequestDelete)
                | (Failed, RequestDelete) => Some(Deleting),
                (Deleting, ConfirmDeleted) => Some(Deleted),
                _ => None,
            }
        };
        let mut allowed = 0;
        for from in Phase::ALL {
            for ev in EVENTS {
                let got = from.transition(ev).ok();
                assert_eq!(got, expected(from, ev), "{from} + {ev:?}");
                allowed += usize::from(got.is_some());
            }
        }
        assert_eq!(allowed, 10, "exactly the ten moves of the phase diagram");
    }

    #[test]
    fn deleted_is_final_and_refuses_every_event() {
        for ev in EVENTS {
            assert!(Deleted.transition(ev).is_err(), "{ev:?}");
        }
    }

    #[test]
    fn phases_round_trip_through_their_names() {
        for p in Phase::ALL {
            assert_eq!(Phase::parse(p.as_str()), Some(p));
            assert_eq!(Phase::parse(&p.as_str().to_lowercase()), Some(p));
        }
        assert_eq!(Phase::parse("Running"), None);
    }
}
