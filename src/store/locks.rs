//! What the store coordinates replicas with: the placement (and audit) lock, and the hold
//! on a singleton role.

use async_trait::async_trait;

use super::StoreError;

/// A held [`Store::placement_lock`](super::Store::placement_lock); [`PlacementLock::release`] gives it up at once, a drop
/// soon after (its transaction is rolled back when its connection goes back to the pool).
#[must_use = "the lock is held until this is released or dropped"]
pub struct PlacementLock(Option<Box<dyn HeldLock>>);

/// A lock a backend holds for [`PlacementLock`].
#[async_trait]
pub trait HeldLock: Send {
    /// Give the lock up.
    async fn release(self: Box<Self>) -> Result<(), StoreError>;
}

// === impl PlacementLock ===

impl PlacementLock {
    /// A guard holding nothing (a store with one process, which serialises placement itself).
    pub fn in_process() -> Self {
        Self(None)
    }

    /// A guard over `held`.
    pub fn held(held: Box<dyn HeldLock>) -> Self {
        Self(Some(held))
    }

    /// Give the lock up now. A failure is only logged: the lock is the transaction's, and a
    /// transaction that cannot commit ends (and lets go) with its connection.
    pub async fn release(self) {
        if let Some(held) = self.0
            && let Err(e) = held.release().await
        {
            tracing::warn!(error = %e, "cannot release the placement lock; it ends with its connection");
        }
    }
}

impl std::fmt::Debug for PlacementLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("PlacementLock")
            .field(&self.0.is_some())
            .finish()
    }
}

/// This process's hold on a singleton role ([`Store::try_lead`](super::Store::try_lead)); dropping it gives the role
/// up.
#[async_trait]
pub trait Leadership: Send + Sync {
    /// Whether this process still holds the role (a quick round trip to the store); once
    /// `false`, it never holds it again: drop it and ask [`Store::try_lead`](super::Store::try_lead) anew.
    async fn still_leading(&mut self) -> bool;
}

/// The leadership of the only process using a store (SQLite): never lost.
#[derive(Debug, Clone, Copy, Default)]
pub struct SoleProcess;

#[async_trait]
impl Leadership for SoleProcess {
    async fn still_leading(&mut self) -> bool {
        true
    }
}
