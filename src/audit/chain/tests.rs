#![allow(clippy::unwrap_used)]

use super::*;
use crate::audit::Signer;
use crate::domain::{Timestamp, genesis};

use crate::domain::audit::sample_entry as entry;

/// A log of `n` records in batches of three, each batch's last record signed.
fn log(signer: &Signer, n: u64) -> (Anchor, Vec<AuditRecord>) {
    let anchor = Anchor {
        genesis: genesis("test-install"),
        checkpoint: None,
        public_key: signer.public_key(),
    };
    let mut prev = anchor.genesis.clone();
    let mut records = Vec::new();
    for seq in 1..=n {
        let mut r = AuditRecord::link(seq, entry(seq), prev);
        if seq % 3 == 0 || seq == n {
            r.signature = Some(signer.sign(&AuditRecord::signed_bytes(&r.hash)));
        }
        prev = r.hash.clone();
        records.push(r);
    }
    (anchor, records)
}

fn walk(anchor: &Anchor, records: &[AuditRecord]) -> Result<Verified, Broken> {
    let mut walk = Walk::start(anchor, &anchor.public_key)?;
    for r in records {
        walk.push(r)?;
    }
    walk.finish()
}

#[test]
fn an_untouched_log_verifies() {
    let signer = Signer::ephemeral().unwrap();
    let (anchor, records) = log(&signer, 10);
    let done = walk(&anchor, &records).unwrap();
    assert_eq!(done.records, 10);
    assert_eq!(done.signed, 4);
    assert_eq!((done.first_seq, done.last_seq), (Some(1), Some(10)));
    assert_eq!(
        walk(&anchor, &[]).unwrap().records,
        0,
        "an empty log verifies"
    );
}

#[test]
fn an_edited_record_is_named() {
    let signer = Signer::ephemeral().unwrap();
    let (anchor, mut records) = log(&signer, 10);
    records[4].entry.principal = Some("token:mallory".into());
    let broken = walk(&anchor, &records).unwrap_err();
    assert_eq!(broken.seq, 5);
    assert!(broken.problem.contains("edited"), "{}", broken.problem);
}

#[test]
fn an_edited_record_whose_hash_was_recomputed_breaks_the_next_link() {
    let signer = Signer::ephemeral().unwrap();
    let (anchor, mut records) = log(&signer, 10);
    records[4].entry.status = Some(201);
    records[4].hash = AuditRecord::digest(5, &records[4].entry, &records[4].prev);
    let broken = walk(&anchor, &records).unwrap_err();
    assert_eq!(broken.seq, 6);
    assert!(
        broken.problem.contains("does not link to record 5"),
        "{}",
        broken.problem
    );
}

#[test]
fn a_rewritten_tail_fails_on_its_first_signature() {
    // Arrange: record 5 edited and everything after it re-hashed, signatures kept.
    let signer = Signer::ephemeral().unwrap();
    let (anchor, mut records) = log(&signer, 10);
    records[4].entry.status = Some(500);
    let mut prev = records[3].hash.clone();
    for r in &mut records[4..] {
        r.prev = prev;
        r.hash = AuditRecord::digest(r.seq, &r.entry, &r.prev);
        prev = r.hash.clone();
    }

    // Act
    let broken = walk(&anchor, &records).unwrap_err();

    // Assert
    assert_eq!(broken.seq, 6, "the first signed record after the edit");
    assert!(broken.problem.contains("forged"), "{}", broken.problem);
}

#[test]
fn deleted_records_are_named() {
    let signer = Signer::ephemeral().unwrap();
    let (anchor, records) = log(&signer, 10);
    let mut one = records.clone();
    one.remove(3);
    let broken = walk(&anchor, &one).unwrap_err();
    assert_eq!(broken.seq, 4);
    assert!(
        broken.problem.contains("record 4 is missing"),
        "{}",
        broken.problem
    );

    let mut some = records.clone();
    some.drain(2..6);
    let broken = walk(&anchor, &some).unwrap_err();
    assert_eq!(broken.seq, 3);
    assert!(
        broken.problem.contains("records 3 to 6 are missing"),
        "{}",
        broken.problem
    );

    let broken = walk(&anchor, &records[..7]).unwrap_err();
    assert_eq!(broken.seq, 7);
    assert!(broken.problem.contains("not signed"), "{}", broken.problem);
}

#[test]
fn inserted_records_are_named() {
    let signer = Signer::ephemeral().unwrap();
    let (anchor, records) = log(&signer, 10);

    // Appended with a correct link and hash, but no signature.
    let mut appended = records.clone();
    let last = appended.last().unwrap().hash.clone();
    appended.push(AuditRecord::link(11, entry(11), last));
    let broken = walk(&anchor, &appended).unwrap_err();
    assert_eq!(broken.seq, 11);
    assert!(broken.problem.contains("not signed"), "{}", broken.problem);

    // Inserted in the middle, the later records renumbered.
    let mut inserted = records.clone();
    let at = inserted[4].prev.clone();
    inserted.insert(4, AuditRecord::link(5, entry(99), at));
    for (i, r) in inserted.iter_mut().enumerate().skip(5) {
        r.seq = i as u64 + 1;
    }
    let broken = walk(&anchor, &inserted).unwrap_err();
    assert_eq!(broken.seq, 6);

    // The same seq twice.
    let mut twice = records.clone();
    twice.insert(5, records[4].clone());
    let broken = walk(&anchor, &twice).unwrap_err();
    assert_eq!(broken.seq, 5);
    assert!(broken.problem.contains("inserted"), "{}", broken.problem);
}

#[test]
fn a_signed_checkpoint_anchors_what_retention_left() {
    // Arrange: records 1..=4 purged behind a checkpoint.
    let signer = Signer::ephemeral().unwrap();
    let (mut anchor, records) = log(&signer, 10);
    let mut checkpoint = AuditCheckpoint {
        through_seq: 4,
        hash: records[3].hash.clone(),
        at: Timestamp::from_millisecond(1_764_480_000_000).unwrap(),
        signature: String::new(),
    };
    checkpoint.signature = signer.sign(&checkpoint.signed_bytes());
    anchor.checkpoint = Some(checkpoint);

    // Act
    let done = walk(&anchor, &records[4..]).unwrap();

    // Assert
    assert_eq!((done.records, done.purged), (6, 4));
    let broken = walk(&anchor, &records[5..]).unwrap_err();
    assert_eq!(broken.seq, 5, "the record after the checkpoint is missing");
    if let Some(c) = anchor.checkpoint.as_mut() {
        c.through_seq = 3;
    }
    let broken = walk(&anchor, &records[3..]).unwrap_err();
    assert!(broken.problem.contains("checkpoint"), "{}", broken.problem);
}

#[test]
fn a_pinned_key_refuses_another_servers_signatures() {
    let signer = Signer::ephemeral().unwrap();
    let other = Signer::ephemeral().unwrap();
    let (anchor, records) = log(&signer, 3);
    let mut walk = Walk::start(&anchor, &other.public_key()).unwrap();
    let broken = records.iter().try_for_each(|r| walk.push(r)).unwrap_err();
    assert_eq!(broken.seq, 3);
}
