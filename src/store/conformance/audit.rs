//! The audit log's storage contract: appends, filters, pages, the head, and retention's purge.

use std::sync::Arc;

use crate::domain::{AuditCheckpoint, AuditEntry, AuditRecord, Decision, Door, Stage, Timestamp};
use crate::store::{AuditFilter, AuditHead, Store};

fn entry(i: i64, principal: &str, action: &str, decision: Decision) -> AuditEntry {
    AuditEntry {
        time: Timestamp::from_millisecond(1_764_470_000_000 + i * 1000).expect("a time"),
        request_id: format!("r-{i}"),
        door: if action.starts_with("k8s") {
            Door::Gateway
        } else {
            Door::Api
        },
        stage: Stage::Completed,
        principal: Some(principal.into()),
        auth_error: None,
        source: Some("10.0.0.1".into()),
        action: action.into(),
        target: Some(format!("c-{}", i % 2)),
        decision: Some(decision),
        code: (decision == Decision::Denied).then(|| "policy_denied".into()),
        messages: vec![format!("message {i}")],
        status: Some(if decision == Decision::Denied {
            403
        } else {
            200
        }),
        duration_us: Some(100 + i as u64),
    }
}

fn seqs(records: &[AuditRecord]) -> Vec<u64> {
    records.iter().map(|r| r.seq).collect()
}

pub(super) async fn audit_records_append_list_filter_page_and_purge(store: Arc<dyn Store>) {
    // Arrange: six records in two batches.
    assert_eq!(store.audit_head().await.expect("head"), None);
    let entries = [
        entry(1, "token:a", "GET /v1/clusters", Decision::Allowed),
        entry(2, "token:b", "POST /v1/clusters", Decision::Denied),
        entry(3, "token:a", "k8s get pods", Decision::Allowed),
        entry(
            4,
            "token:a",
            "k8s delete pods default/web",
            Decision::Allowed,
        ),
        entry(5, "token:b", "GET /v1/clusters", Decision::Allowed),
        entry(6, "token:a", "POST /v1/clusters", Decision::Allowed),
    ];
    let mut prev = "anchor".to_owned();
    let mut records = Vec::new();
    for (i, e) in entries.into_iter().enumerate() {
        let mut r = AuditRecord::link(i as u64 + 1, e, prev);
        r.signature = (i == 2 || i == 5).then(|| format!("sig-{i}"));
        prev = r.hash.clone();
        records.push(r);
    }

    // Act
    store.audit_append(&records[..3]).await.expect("append");
    store.audit_append(&records[3..]).await.expect("append");
    let list = |f: AuditFilter| {
        let store = store.clone();
        async move { store.audit_list(&f).await.expect("list") }
    };

    // Assert: every field round-trips, newest first by default.
    let all = list(AuditFilter {
        limit: 100,
        ..AuditFilter::default()
    })
    .await;
    assert_eq!(all, records, "ascending, every field");
    let newest = list(AuditFilter {
        descending: true,
        limit: 2,
        ..AuditFilter::default()
    })
    .await;
    assert_eq!(seqs(&newest), [6, 5]);
    let next = list(AuditFilter {
        descending: true,
        before_seq: Some(5),
        limit: 2,
        ..AuditFilter::default()
    })
    .await;
    assert_eq!(seqs(&next), [4, 3]);
    let after = list(AuditFilter {
        after_seq: Some(4),
        limit: 10,
        ..AuditFilter::default()
    })
    .await;
    assert_eq!(seqs(&after), [5, 6]);

    // Filters, alone and together.
    let by = |f: AuditFilter| async move { seqs(&list(AuditFilter { limit: 100, ..f }).await) };
    let principal = |p: &str| Some(p.to_owned());
    assert_eq!(
        by(AuditFilter {
            principal: principal("token:b"),
            ..AuditFilter::default()
        })
        .await,
        [2, 5]
    );
    assert_eq!(
        by(AuditFilter {
            action: Some("POST /v1/clusters".into()),
            ..AuditFilter::default()
        })
        .await,
        [2, 6]
    );
    assert_eq!(
        by(AuditFilter {
            action: Some("k8s *".into()),
            ..AuditFilter::default()
        })
        .await,
        [3, 4],
        "a trailing * matches a prefix"
    );
    assert_eq!(
        by(AuditFilter {
            action: Some("k8s".into()),
            ..AuditFilter::default()
        })
        .await,
        Vec::<u64>::new(),
        "without * the action matches whole"
    );
    assert_eq!(
        by(AuditFilter {
            decision: Some(Decision::Denied),
            ..AuditFilter::default()
        })
        .await,
        [2]
    );
    assert_eq!(
        by(AuditFilter {
            target: Some("c-1".into()),
            principal: principal("token:a"),
            ..AuditFilter::default()
        })
        .await,
        [1, 3]
    );
    assert_eq!(
        by(AuditFilter {
            since: Some(records[1].entry.time),
            until: Some(records[3].entry.time),
            ..AuditFilter::default()
        })
        .await,
        [2, 3],
        "since is inclusive, until exclusive"
    );

    // The head, and a purge behind a checkpoint.
    assert_eq!(
        store.audit_head().await.expect("head"),
        Some(AuditHead::Record(Box::new(records[5].clone())))
    );
    let before = store
        .audit_last_before(records[3].entry.time)
        .await
        .expect("last before");
    assert_eq!(before.map(|r| r.seq), Some(3));
    let checkpoint = AuditCheckpoint {
        through_seq: 3,
        hash: records[2].hash.clone(),
        at: records[5].entry.time,
        signature: "sig".into(),
    };
    assert_eq!(store.audit_purge(&checkpoint).await.expect("purge"), 3);
    assert_eq!(
        store.audit_checkpoint().await.expect("checkpoint"),
        Some(checkpoint.clone())
    );
    let left = list(AuditFilter {
        limit: 100,
        ..AuditFilter::default()
    })
    .await;
    assert_eq!(seqs(&left), [4, 5, 6]);
    let later = AuditCheckpoint {
        through_seq: 6,
        hash: records[5].hash.clone(),
        ..checkpoint
    };
    assert_eq!(store.audit_purge(&later).await.expect("purge"), 3);
    assert_eq!(
        store.audit_head().await.expect("head"),
        Some(AuditHead::Checkpoint(later)),
        "an emptied log's head is its checkpoint"
    );
}
