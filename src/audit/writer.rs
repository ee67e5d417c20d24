//! The one task that appends to the audit log: batches, links, signs, stores and exports.

use std::collections::VecDeque;
use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::{LINGER, MAX_BATCH, MAX_RETRY, Msg, RETRY_EVERY, Signer, signer};
use crate::domain::{AuditEntry, AuditRecord, Door, Stage, UNTRUSTED_HEAD, genesis};
use crate::store::outage::{Note, Outage};
use crate::store::{AuditHead, Store, StoreError};

/// How often a batch is linked again after another writer (a replica on the same database)
/// took its place in the chain, before the batch fails.
const CONFLICT_RETRIES: u32 = 16;
/// The longest pause before linking a batch again after a conflict.
/// NB: writers that collided and retried at once collided again: three replicas creating at
/// full speed used up every retry and refused creates (503 `audit_unavailable`) in the store
/// benchmark. A random pause, doubling from 1 ms, lets one of them go first (a store without
/// a working audit lock; with one, a batch conflicts at most once).
const CONFLICT_PAUSE_MAX: Duration = Duration::from_millis(64);

/// Where stored records are copied to.
pub(super) enum Sink {
    Stdout,
    File(std::io::BufWriter<std::fs::File>),
}

impl Sink {
    fn write(&mut self, records: &[AuditRecord]) -> std::io::Result<()> {
        let mut lines = Vec::with_capacity(records.len() * 512);
        for r in records {
            serde_json::to_writer(&mut lines, r)?;
            lines.push(b'\n');
        }
        match self {
            Self::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(&lines)?;
                out.flush()
            }
            Self::File(f) => {
                f.write_all(&lines)?;
                f.flush()
            }
        }
    }
}

/// The one task that appends to the log.
pub(super) struct Writer {
    store: Arc<dyn Store>,
    signer: Arc<Signer>,
    /// The last stored record's seq and hash; `None` until read from the store, and again
    /// after a failed write (whose outcome is unknown).
    head: Option<(u64, String)>,
    /// Records the store refused, oldest first, to be tried again.
    retry: VecDeque<AuditEntry>,
    export: Option<Sink>,
    healthy: Arc<AtomicBool>,
    /// Batches the store refused, for `/metrics`.
    failures: Arc<AtomicU64>,
    /// Whether the store is down, for one WARN per outage.
    outage: Outage,
}

// === impl Writer ===

impl Writer {
    pub(super) fn new(
        store: Arc<dyn Store>,
        signer: Arc<Signer>,
        export: Option<Sink>,
        healthy: Arc<AtomicBool>,
        failures: Arc<AtomicU64>,
    ) -> Self {
        Self {
            store,
            signer,
            head: None,
            retry: VecDeque::new(),
            export,
            healthy,
            failures,
            outage: Outage::default(),
        }
    }

    pub(super) async fn run(mut self, mut rx: mpsc::Receiver<Msg>) {
        loop {
            let first = if self.retry.is_empty() {
                rx.recv().await
            } else {
                tokio::select! {
                    msg = rx.recv() => msg,
                    () = tokio::time::sleep(RETRY_EVERY) => {
                        self.write(Vec::new()).await;
                        continue;
                    }
                }
            };
            let Some(first) = first else {
                // Every sender is gone: one last try for what is kept.
                if !self.retry.is_empty() {
                    self.write(Vec::new()).await;
                }
                return;
            };
            let mut batch = Vec::new();
            let mut flushes = Vec::new();
            // Someone waits for this batch (a mutating request, a flush): written at once.
            let mut urgent = take(first, &mut batch, &mut flushes);
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(msg) => urgent |= take(msg, &mut batch, &mut flushes),
                    Err(_) => break,
                }
            }
            // NB: nobody waits: linger a moment for more, so that at a low rate one
            // transaction and one signature still cover several requests.
            let until = tokio::time::Instant::now() + LINGER;
            while !urgent && batch.len() < MAX_BATCH {
                match tokio::time::timeout_at(until, rx.recv()).await {
                    Ok(Some(msg)) => urgent |= take(msg, &mut batch, &mut flushes),
                    _ => break,
                }
            }
            if !batch.is_empty() || !self.retry.is_empty() {
                self.write(batch).await;
            }
            for done in flushes {
                let _ = done.send(());
            }
        }
    }
}

/// Adds `msg` to the batch (or the flushes); whether someone waits for it.
fn take(msg: Msg, batch: &mut Vec<Waited>, flushes: &mut Vec<oneshot::Sender<()>>) -> bool {
    match msg {
        Msg::Write(entry, done) => {
            let waited = done.is_some();
            batch.push((entry, done));
            waited
        }
        Msg::Flush(done) => {
            flushes.push(done);
            true
        }
    }
}

/// A record, and who waits to hear it was stored.
type Waited = (AuditEntry, Option<oneshot::Sender<bool>>);

impl Writer {
    /// Store what is kept for a retry, then `batch`; tell each waiter how it went.
    async fn write(&mut self, batch: Vec<Waited>) {
        let mut entries: Vec<AuditEntry> = self.retry.drain(..).collect();
        let kept = entries.len();
        let mut waiters = Vec::with_capacity(batch.len());
        for (entry, done) in batch {
            entries.push(entry);
            waiters.push(done);
        }
        let stored = self.append(entries).await;
        let ok = stored.is_ok();
        self.healthy.store(ok, Ordering::Relaxed);
        if !ok {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
        if ok && let Note::Up { lasted } = self.outage.answered(Instant::now()) {
            tracing::info!(
                target: "vcm::audit",
                down_secs = lasted.as_secs(),
                "the store answers again; the audit log is written again"
            );
        }
        if let Err((e, entries)) = stored {
            // NB: the writer retries every second: an outage is one WARN when it starts (and
            // one INFO when it ends), not an ERROR a second; any other failure is an ERROR.
            let outage = e
                .downcast_ref::<StoreError>()
                .is_some_and(|e| matches!(e, StoreError::Unavailable(_)));
            match outage.then(|| self.outage.failed(Instant::now()).0) {
                Some(Note::Down) => tracing::warn!(
                    target: "vcm::audit",
                    error = %e,
                    records = entries.len(),
                    "the store is unavailable: the audit log cannot be written, and mutating \
                     requests are refused until it can"
                ),
                Some(_) => {
                    tracing::debug!(target: "vcm::audit", error = %e, "the store is still unavailable")
                }
                None => tracing::error!(
                    target: "vcm::audit",
                    error = %e,
                    records = entries.len(),
                    "the audit log could not be written; mutating requests are refused until it can"
                ),
            }
            // NB: a record somebody waits for is not kept: its request is refused instead.
            let mut entries = entries.into_iter();
            self.retry.extend(entries.by_ref().take(kept));
            for (entry, done) in entries.zip(&waiters) {
                if done.is_none() {
                    self.retry.push_back(entry);
                }
            }
            if self.retry.len() > MAX_RETRY {
                let lost = self.retry.len() - MAX_RETRY;
                self.retry.drain(..lost);
                tracing::error!(target: "vcm::audit", lost, "audit records dropped: the store refused them too long");
            }
        }
        for done in waiters.into_iter().flatten() {
            let _ = done.send(ok);
        }
    }

    /// Link, sign and store `entries` under the store's audit lock; on failure, the entries
    /// back (without a note this batch added) with the error.
    ///
    /// NB: without the lock, replicas appending at once took each other's places in the
    /// chain, and one could lose every retry while the others went on (three replicas
    /// creating at full speed: one served 0.5 creates a second, refusing the rest with 503).
    /// Under it, a batch is relinked at most once: after the head it read last was moved on
    /// by another replica, before this one held the lock.
    async fn append(
        &mut self,
        entries: Vec<AuditEntry>,
    ) -> Result<(), (anyhow::Error, Vec<AuditEntry>)> {
        if entries.is_empty() {
            return Ok(());
        }
        let lock = match self.store.audit_lock().await {
            Ok(lock) => lock,
            Err(e) => return Err((e.into(), entries)),
        };
        let appended = self.append_locked(entries).await;
        lock.release().await;
        appended
    }

    async fn append_locked(
        &mut self,
        entries: Vec<AuditEntry>,
    ) -> Result<(), (anyhow::Error, Vec<AuditEntry>)> {
        let mut entries = entries;
        let mut attempt = 0;
        let (seq, prev, records) = loop {
            let (mut seq, mut prev, untrusted) = match self.head.take() {
                Some((seq, prev)) => (seq, prev, None),
                None => match self.load_head().await {
                    Ok(head) => head,
                    Err(e) => return Err((e, entries)),
                },
            };
            let marked = untrusted.is_some();
            let marker = untrusted.map(|why| untrusted_head(seq, why));
            let mut records = Vec::with_capacity(entries.len() + 1);
            for entry in marker.into_iter().chain(entries) {
                seq += 1;
                let record = AuditRecord::link(seq, entry, std::mem::take(&mut prev));
                prev.clone_from(&record.hash);
                records.push(record);
            }
            if let Some(last) = records.last_mut() {
                last.signature = Some(self.signer.sign(&AuditRecord::signed_bytes(&last.hash)));
            }
            match self.store.audit_append(&records).await {
                Ok(()) => break (seq, prev, records),
                Err(e) => {
                    let skip = usize::from(marked);
                    entries = records.into_iter().skip(skip).map(|r| r.entry).collect();
                    // NB: another writer on the same database (a replica) appended first and
                    // took these seqs: link after its records instead (the head is re-read).
                    if matches!(e, StoreError::Conflict(_)) && attempt < CONFLICT_RETRIES {
                        attempt += 1;
                        tokio::time::sleep(conflict_pause(attempt)).await;
                        continue;
                    }
                    return Err((e.into(), entries));
                }
            }
        };
        self.head = Some((seq, prev));
        if let Some(sink) = &mut self.export
            && let Err(e) = sink.write(&records)
        {
            tracing::error!(target: "vcm::audit", error = %e, "exporting audit records failed");
        }
        Ok(())
    }

    /// The head the next record links to, read from the store, and why it cannot be trusted
    /// when it was not signed with this server's key: a record appended by someone else (or
    /// a changed key). The server does not link onto such a head silently: its next record
    /// says so, and a walk of the chain stops there.
    async fn load_head(&self) -> anyhow::Result<(u64, String, Option<String>)> {
        let Some(head) = self.store.audit_head().await? else {
            return Ok((0, genesis(&self.store.installation_id().await?), None));
        };
        let key = self.signer.public_key();
        let trusted = match &head {
            AuditHead::Record(r) => {
                r.intact()
                    && r.signature.as_deref().is_some_and(|sig| {
                        signer::verify(&key, &AuditRecord::signed_bytes(&r.hash), sig)
                    })
            }
            AuditHead::Checkpoint(c) => signer::verify(&key, &c.signed_bytes(), &c.signature),
        };
        let (seq, hash) = head.link();
        let why = (!trusted).then(|| {
            tracing::error!(
                target: "vcm::audit",
                seq,
                "the audit log's last record is not signed by this server's key: it was \
                 appended outside vcm, or the key changed; run vcm audit verify"
            );
            format!(
                "the log's last record ({seq}) was not signed by this server's audit key when \
                 the server took up the log: it was appended outside vcm, or the key changed"
            )
        });
        Ok((seq, hash.to_owned(), why))
    }
}

/// The record vcm writes when it takes up a log whose last record (`seq`) it did not sign.
fn untrusted_head(seq: u64, why: String) -> AuditEntry {
    AuditEntry {
        time: crate::domain::now_ms(),
        request_id: String::new(),
        door: Door::System,
        stage: Stage::Completed,
        principal: Some("system:vcm".to_owned()),
        auth_error: None,
        source: None,
        action: "audit: untrusted head".to_owned(),
        target: Some(seq.to_string()),
        decision: None,
        code: Some(UNTRUSTED_HEAD.to_owned()),
        messages: vec![why],
        status: None,
        duration_us: None,
    }
}

/// A random pause of up to 2^(`attempt` - 1) ms (at most [`CONFLICT_PAUSE_MAX`]) before the
/// `attempt`th relinking of a batch.
fn conflict_pause(attempt: u32) -> Duration {
    let ceiling =
        Duration::from_millis(1 << attempt.saturating_sub(1).min(16)).min(CONFLICT_PAUSE_MAX);
    ceiling.mul_f64(rand::random::<f64>())
}
