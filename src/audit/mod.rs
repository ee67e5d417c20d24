//! The tamper-evident audit log: every request through every door is a record, hash-chained
//! and signed, stored in the store and exported as JSON lines (see `docs/AUDIT.md`).
//!
//! One task writes the log ([`Auditor`]'s writer): it takes records in arrival order, gives
//! them their seq and link, signs the last of each batch and stores the batch in one
//! transaction. A mutating request waits for its `received` record to be stored before it
//! runs (the request fails closed when it cannot be); its `completed` record, like a read's,
//! is queued, and one that cannot be stored is kept and retried. A read waits for its record
//! only when `[audit] reads = "closed"`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::config::audit::{Export, FailMode};
use crate::domain::{AuditEntry, genesis};
use crate::store::Store;

/// Walking the chain.
pub mod chain;
/// Recording requests: the middleware and what handlers add to a record.
pub mod layer;
mod retention;
mod signer;
mod writer;

pub use chain::{Anchor, Broken, Verified, Walk};
pub use layer::Note;
pub use retention::Retention;
pub use signer::{Signer, verify as verify_signature};
use writer::{Sink, Writer};

/// Records written in one transaction at most.
const MAX_BATCH: usize = 512;
/// Records waiting for the writer at most; a request waits for room beyond it.
const QUEUE: usize = 8192;
/// Records kept in memory while the store refuses them; beyond it the oldest are dropped
/// (and counted in the log).
const MAX_RETRY: usize = 100_000;
/// How long the writer waits for more records when nobody waits for the ones it has.
const LINGER: Duration = Duration::from_millis(2);
/// How soon records the store refused are tried again.
const RETRY_EVERY: Duration = Duration::from_secs(1);

/// Hands records to the writer task. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Auditor {
    inner: Arc<Inner>,
}

struct Inner {
    tx: mpsc::Sender<Msg>,
    reads: FailMode,
    store: Arc<dyn Store>,
    signer: Arc<Signer>,
    /// Whether the last write succeeded.
    healthy: Arc<AtomicBool>,
    /// Batches the store refused since the start.
    failures: Arc<AtomicU64>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auditor")
            .field("reads", &self.reads)
            .field("healthy", &self.healthy)
            .finish_non_exhaustive()
    }
}

// NB: nearly every message is a `Write`; boxing it would cost an allocation per request.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Msg {
    Write(AuditEntry, Option<oneshot::Sender<bool>>),
    Flush(oneshot::Sender<()>),
}

/// The audit log could not take a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unavailable;

// === impl Auditor ===

impl Auditor {
    /// Starts the writer over `store`, signing with `signer`, exporting to `export`.
    pub fn start(
        store: Arc<dyn Store>,
        signer: Arc<Signer>,
        reads: FailMode,
        export: Option<Export>,
    ) -> anyhow::Result<Self> {
        let export = match export {
            None => None,
            Some(Export::Stdout) => Some(Sink::Stdout),
            Some(Export::File(path)) => {
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .map_err(|e| {
                        anyhow::anyhow!("opening the audit export {}: {e}", path.display())
                    })?;
                Some(Sink::File(std::io::BufWriter::new(file)))
            }
        };
        let (tx, rx) = mpsc::channel(QUEUE);
        let healthy = Arc::new(AtomicBool::new(true));
        let failures = Arc::new(AtomicU64::new(0));
        let writer = Writer::new(
            store.clone(),
            signer.clone(),
            export,
            healthy.clone(),
            failures.clone(),
        );
        tokio::spawn(writer.run(rx));
        Ok(Self {
            inner: Arc::new(Inner {
                tx,
                reads,
                store,
                signer,
                healthy,
                failures,
            }),
        })
    }

    /// An auditor with a key of its own and no export: for servers built in code.
    pub fn ephemeral(store: Arc<dyn Store>) -> anyhow::Result<Self> {
        Self::start(store, Arc::new(Signer::ephemeral()?), FailMode::Open, None)
    }

    /// Store `entry` and wait until it is: `Err` when the store refused it (it is then not
    /// retried: the request it announces is refused instead).
    pub async fn commit(&self, entry: AuditEntry) -> Result<(), Unavailable> {
        let (done, stored) = oneshot::channel();
        self.inner
            .tx
            .send(Msg::Write(entry, Some(done)))
            .await
            .map_err(|_| Unavailable)?;
        match stored.await {
            Ok(true) => Ok(()),
            _ => Err(Unavailable),
        }
    }

    /// Queue `entry`: stored with the next batch, kept and retried if the store refuses it.
    pub async fn submit(&self, entry: AuditEntry) {
        if self.inner.tx.send(Msg::Write(entry, None)).await.is_err() {
            tracing::error!(target: "vcm::audit", "the audit writer is gone; a record is lost");
        }
    }

    /// Wait until every record queued so far was written (or tried).
    pub async fn flush(&self) {
        let (done, flushed) = oneshot::channel();
        if self.inner.tx.send(Msg::Flush(done)).await.is_ok() {
            let _ = flushed.await;
        }
    }

    /// Whether reads wait for their record (and fail when it cannot be stored).
    pub fn reads_fail_closed(&self) -> bool {
        self.inner.reads == FailMode::Closed
    }

    /// Whether the last write went through.
    pub fn healthy(&self) -> bool {
        self.inner.healthy.load(Ordering::Relaxed)
    }

    /// Records handed over and not yet taken by the writer (an estimate: the writer also holds
    /// the batch it is writing and what it keeps to retry).
    pub fn queued(&self) -> usize {
        QUEUE.saturating_sub(self.inner.tx.capacity())
    }

    /// Batches the store refused since the start (each is retried).
    pub fn failed_batches(&self) -> u64 {
        self.inner.failures.load(Ordering::Relaxed)
    }

    /// Where a walk of this log starts.
    pub async fn anchor(&self) -> Result<Anchor, crate::store::StoreError> {
        let store = &self.inner.store;
        Ok(Anchor {
            genesis: genesis(&store.installation_id().await?),
            checkpoint: store.audit_checkpoint().await?,
            public_key: self.inner.signer.public_key(),
        })
    }

    /// The signer, for retention's checkpoints.
    pub fn signer(&self) -> Arc<Signer> {
        self.inner.signer.clone()
    }

    /// The store the log is in.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }
}

#[cfg(test)]
mod tests;
