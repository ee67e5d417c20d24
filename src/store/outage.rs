//! How a long-running task lives through a store outage (the reconciler, the pruner, the audit
//! writer): it pauses (retrying the store at a growing interval, never faster than
//! [`POLL_FLOOR`] nor slower than [`RETRY_CEILING`]), logs one WARN when the outage starts and
//! one INFO when it ends, and resumes on its own.
//!
//! NB: an outage is the store's, not a cluster's: no attempt is counted against a cluster and
//! nothing is written for it (`reconciler::reconcile_one` leaves the cluster due), so a
//! database that comes back finds every cluster where it was and the reconciler takes them up
//! again.

use std::time::{Duration, Instant};

/// The first pause after a failed store call (the normal poll interval).
const POLL_FLOOR: Duration = Duration::from_millis(500);
/// The longest pause between attempts while the store is down: the reconciler resumes within
/// this long of the database's return, and one cheap query every few seconds costs nothing.
const RETRY_CEILING: Duration = Duration::from_secs(5);
/// A store that fails again this soon after it answered is the same outage (a flapping
/// connection, a failover in progress): no new WARN, and the pause keeps growing.
const FLAP_WINDOW: Duration = Duration::from_secs(60);

/// What the caller should log about a store call's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Note {
    /// An outage starts: WARN.
    Down,
    /// The outage is over: INFO, with how long it lasted.
    Up { lasted: Duration },
    /// Nothing new (an outage goes on, a flap inside one, or all is well): at most DEBUG.
    Quiet,
}

/// The store's state as the run loop sees it.
#[derive(Debug, Default)]
pub(crate) struct Outage {
    /// When the current outage started (`None`: the store answers).
    down_since: Option<Instant>,
    /// When the first outage of the current episode started (flaps fold into it).
    episode_since: Option<Instant>,
    /// When the store last came back.
    up_since: Option<Instant>,
    /// Failed calls in this episode (the pause grows with them).
    failures: u32,
}

// === impl Outage ===

impl Outage {
    /// Whether the store is down now (the loop waits for [`Outage::failed`]'s pause).
    pub(crate) fn is_down(&self) -> bool {
        self.down_since.is_some()
    }

    /// A store call failed as `Unavailable` at `now`: what to log, and how long to pause before
    /// calling the store again.
    pub(crate) fn failed(&mut self, now: Instant) -> (Note, Duration) {
        let mut note = Note::Quiet;
        if self.down_since.is_none() {
            let flap = self
                .up_since
                .is_some_and(|up| now.saturating_duration_since(up) < FLAP_WINDOW);
            if !flap {
                self.failures = 0;
                self.episode_since = Some(now);
                note = Note::Down;
            }
            self.down_since = Some(now);
        }
        self.failures = self.failures.saturating_add(1);
        (note, pause(self.failures))
    }

    /// A store call answered at `now`: what to log.
    pub(crate) fn answered(&mut self, now: Instant) -> Note {
        if self.down_since.take().is_none() {
            return Note::Quiet;
        }
        let first_up = self
            .up_since
            .is_none_or(|up| self.episode_since.is_some_and(|episode| up < episode));
        self.up_since = Some(now);
        match self.episode_since {
            Some(since) if first_up => Note::Up {
                lasted: now.saturating_duration_since(since),
            },
            _ => Note::Quiet,
        }
    }
}

/// The pause after `failures` failed calls: the poll interval, doubling up to the ceiling.
fn pause(failures: u32) -> Duration {
    let doubled = POLL_FLOOR.saturating_mul(1 << failures.saturating_sub(1).min(8));
    doubled.min(RETRY_CEILING)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn the_pause_doubles_from_the_poll_interval_and_caps_at_five_seconds() {
        let got: Vec<u128> = (1..=7).map(|n| pause(n).as_millis()).collect();
        assert_eq!(got, vec![500, 1000, 2000, 4000, 5000, 5000, 5000]);
    }

    #[test]
    fn one_warn_when_an_outage_starts_and_one_info_when_it_ends_however_long_it_lasts() {
        // Arrange
        let t0 = Instant::now();
        let mut outage = Outage::default();

        // Act: forty failed calls (a few minutes at the ceiling), then an answer.
        let notes: Vec<Note> = (0..40).map(|i| outage.failed(t0 + secs(i * 5)).0).collect();
        let down = outage.is_down();
        let up = outage.answered(t0 + secs(200));
        let after = outage.answered(t0 + secs(201));

        // Assert
        assert_eq!(notes[0], Note::Down, "the first failure is reported");
        assert!(
            notes[1..].iter().all(|n| *n == Note::Quiet),
            "the rest are not: {notes:?}"
        );
        assert!(down);
        assert_eq!(up, Note::Up { lasted: secs(200) });
        assert_eq!(
            after,
            Note::Quiet,
            "an answer outside an outage is nothing new"
        );
        assert!(!outage.is_down());
    }

    #[test]
    fn failures_soon_after_the_store_came_back_are_the_same_outage_and_keep_the_pause_growing() {
        // Arrange: an outage, over at t0 + 10 s.
        let t0 = Instant::now();
        let mut outage = Outage::default();
        outage.failed(t0);
        outage.failed(t0 + secs(1));
        assert!(matches!(outage.answered(t0 + secs(10)), Note::Up { .. }));

        // Act: it flaps twice within the window, then stays up.
        let (flap, wait) = outage.failed(t0 + secs(20));
        let flap_up = outage.answered(t0 + secs(21));
        let (flap2, _) = outage.failed(t0 + secs(30));
        let flap2_up = outage.answered(t0 + secs(31));
        // A failure long after is a new outage.
        let (later, later_wait) = outage.failed(t0 + secs(31) + FLAP_WINDOW);

        // Assert
        assert_eq!(
            (flap, flap_up, flap2, flap2_up),
            (Note::Quiet, Note::Quiet, Note::Quiet, Note::Quiet)
        );
        assert_eq!(wait, pause(3), "the pause goes on growing through a flap");
        assert_eq!(later, Note::Down);
        assert_eq!(
            later_wait, POLL_FLOOR,
            "a new outage starts from the poll interval"
        );
    }
}
