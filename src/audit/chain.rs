//! Walking the chain: the first record edited, deleted or inserted, by name.
//!
//! The walk starts at the log's anchor (the installation's genesis value, or retention's
//! signed checkpoint) and checks, record by record: the seq follows without a gap, the
//! record's fields still give its hash, it links to the one before, and any signature it
//! carries is the server's. The last record must be signed: the server signs the last record
//! of every batch it writes, so a record appended by anyone else is unsigned.
//!
//! What a chain cannot show: records cut off the end down to a signed one. The exported JSON
//! lines (a SIEM's copy) are the remedy; `docs/AUDIT.md` says so.

use serde::{Deserialize, Serialize};

use super::signer;
use crate::domain::{AuditCheckpoint, AuditRecord, UNTRUSTED_HEAD};

/// Where the walk starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Anchor {
    /// The installation's genesis value: the first record's `prev` when nothing was purged.
    pub genesis: String,
    /// Where retention cut the log, if it did.
    pub checkpoint: Option<AuditCheckpoint>,
    /// The server's public key (Ed25519, base64 of 32 bytes).
    pub public_key: String,
}

/// The first thing wrong, and the record it is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Broken {
    /// The record named.
    pub seq: u64,
    /// What is wrong with it.
    pub problem: String,
}

/// A walk that found nothing wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verified {
    /// Records checked.
    pub records: u64,
    /// Of which signed.
    pub signed: u64,
    /// The first and last seq checked (none for an empty log).
    pub first_seq: Option<u64>,
    /// The last seq checked.
    pub last_seq: Option<u64>,
    /// Records purged before the checkpoint.
    pub purged: u64,
}

/// A walk in progress: feed it records in seq order.
#[derive(Debug)]
pub struct Walk {
    public_key: String,
    next_seq: u64,
    prev: String,
    last_signed: bool,
    done: Verified,
}

// === impl Walk ===

impl Walk {
    /// A walk from `anchor`, checking signatures with `public_key` (the anchor's own key
    /// unless the caller pins one). A checkpoint whose signature fails is reported as record
    /// `through_seq`.
    pub fn start(anchor: &Anchor, public_key: &str) -> Result<Self, Broken> {
        let (next_seq, prev, purged) = match &anchor.checkpoint {
            None => (1, anchor.genesis.clone(), 0),
            Some(c) => {
                if !signer::verify(public_key, &c.signed_bytes(), &c.signature) {
                    return Err(Broken {
                        seq: c.through_seq,
                        problem: format!(
                            "the retention checkpoint through record {} is not signed by the \
                             audit key: it was forged or edited",
                            c.through_seq
                        ),
                    });
                }
                (c.through_seq + 1, c.hash.clone(), c.through_seq)
            }
        };
        Ok(Self {
            public_key: public_key.to_owned(),
            next_seq,
            prev,
            last_signed: true,
            done: Verified {
                records: 0,
                signed: 0,
                first_seq: None,
                last_seq: None,
                purged,
            },
        })
    }

    /// Expect `seq` as the first record instead: for an exported file that starts later than
    /// the log (the caller takes the first record's `prev` as the anchor).
    pub fn skip_to(&mut self, seq: u64) {
        self.next_seq = seq;
    }

    /// Check the next record.
    pub fn push(&mut self, r: &AuditRecord) -> Result<(), Broken> {
        let broken = |problem: String| {
            Err(Broken {
                seq: r.seq,
                problem,
            })
        };
        if r.seq < self.next_seq {
            return broken(format!(
                "record {} comes again after record {}: a record was inserted",
                r.seq,
                self.next_seq - 1
            ));
        }
        if r.seq > self.next_seq {
            let missing = if r.seq - self.next_seq == 1 {
                format!("record {} is missing", self.next_seq)
            } else {
                format!("records {} to {} are missing", self.next_seq, r.seq - 1)
            };
            return Err(Broken {
                seq: self.next_seq,
                problem: format!("{missing}: deleted from the log"),
            });
        }
        if !r.intact() {
            return broken(format!(
                "record {} was edited: its fields no longer give its hash",
                r.seq
            ));
        }
        if r.prev != self.prev {
            let before = r.seq - 1;
            return broken(format!(
                "record {} does not link to record {before}: one of them was replaced, or a \
                 record was inserted between them",
                r.seq
            ));
        }
        if r.entry.code.as_deref() == Some(UNTRUSTED_HEAD) && r.seq > 1 {
            let before = r.seq - 1;
            return Err(Broken {
                seq: before,
                problem: format!(
                    "record {before} was not signed by the audit key when the server took up \
                     the log (record {} says so): it was appended outside vcm, or the key changed",
                    r.seq
                ),
            });
        }
        match &r.signature {
            Some(sig) => {
                let bytes = AuditRecord::signed_bytes(&r.hash);
                if !signer::verify(&self.public_key, &bytes, sig) {
                    return broken(format!(
                        "record {}'s signature is not the audit key's: it was forged",
                        r.seq
                    ));
                }
                self.done.signed += 1;
                self.last_signed = true;
            }
            None => self.last_signed = false,
        }
        self.prev.clone_from(&r.hash);
        self.next_seq = r.seq + 1;
        self.done.records += 1;
        self.done.first_seq.get_or_insert(r.seq);
        self.done.last_seq = Some(r.seq);
        Ok(())
    }

    /// The end of the log: its last record must be signed.
    pub fn finish(self) -> Result<Verified, Broken> {
        if !self.last_signed
            && let Some(seq) = self.done.last_seq
        {
            return Err(Broken {
                seq,
                problem: format!(
                    "the last record ({seq}) is not signed: it was appended outside vcm, or \
                     the records after it were deleted"
                ),
            });
        }
        Ok(self.done)
    }
}

#[cfg(test)]
mod tests;
