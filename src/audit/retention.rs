//! Retention: records older than the configured period are purged, and a signed checkpoint of
//! the last purged record takes their place, so what is left still verifies.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Auditor;
use crate::domain::{AuditCheckpoint, Timestamp, now_ms};

/// How often retention runs.
const EVERY: Duration = Duration::from_secs(3600);

/// Purges the audit log of records older than `keep`.
#[derive(Debug, Clone)]
pub struct Retention {
    auditor: Auditor,
    keep: Duration,
}

// === impl Retention ===

impl Retention {
    /// Retention of `keep` over `auditor`'s log.
    pub fn new(auditor: Auditor, keep: Duration) -> Self {
        Self { auditor, keep }
    }

    /// Purge now and then hourly, until `stop`.
    pub async fn run(self, stop: CancellationToken) -> anyhow::Result<()> {
        loop {
            let cutoff = now_ms()
                .checked_sub(jiff::SignedDuration::try_from(self.keep).unwrap_or_default())
                .unwrap_or(Timestamp::UNIX_EPOCH);
            match self.purge_before(cutoff).await {
                Ok(0) => {}
                Ok(purged) => tracing::info!(target: "vcm::audit", purged, "audit records purged"),
                Err(e) => {
                    tracing::warn!(target: "vcm::audit", error = %e, "audit retention failed; trying again later")
                }
            }
            tokio::select! {
                () = stop.cancelled() => return Ok(()),
                () = tokio::time::sleep(EVERY) => {}
            }
        }
    }

    /// Purge the records written before `cutoff` behind a signed checkpoint; how many.
    pub async fn purge_before(&self, cutoff: Timestamp) -> anyhow::Result<u64> {
        let store = self.auditor.store();
        let Some(last) = store.audit_last_before(cutoff).await? else {
            return Ok(0);
        };
        let mut checkpoint = AuditCheckpoint {
            through_seq: last.seq,
            hash: last.hash,
            at: now_ms(),
            signature: String::new(),
        };
        checkpoint.signature = self.auditor.signer().sign(&checkpoint.signed_bytes());
        Ok(store.audit_purge(&checkpoint).await?)
    }
}
