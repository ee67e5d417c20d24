//! Contract cases: the alert notifier's outbox and its place in the cluster events.

use std::sync::Arc;

use super::*;
use crate::domain::NewNotification;
use crate::store::{Attempt, Store};

fn mk_alert(target: &str, key: &str) -> NewNotification {
    NewNotification {
        target: target.into(),
        dedupe_key: key.into(),
        alert: "cluster_failed".into(),
        payload: serde_json::json!({"alert": "cluster_failed", "subject": {"id": key}}),
    }
}

async fn enqueue(
    store: &Arc<dyn Store>,
    alert: &NewNotification,
    now: Timestamp,
    since: Option<Timestamp>,
) -> bool {
    let r = store.enqueue_notification(alert, now, since).await;
    r.unwrap_or_else(|e| panic!("queueing {} failed: {e}", alert.dedupe_key))
}

async fn due(store: &Arc<dyn Store>, now: Timestamp) -> Vec<(String, String)> {
    let r = store.due_notifications(now, 100).await;
    let due = r.unwrap_or_else(|e| panic!("listing due notifications failed: {e}"));
    due.into_iter()
        .map(|n| (n.alert.target, n.alert.dedupe_key))
        .collect()
}

fn pair(target: &str, key: &str) -> (String, String) {
    (target.to_owned(), key.to_owned())
}

pub(super) async fn the_notification_outbox_queues_an_alert_once_per_target_and_window(
    store: Arc<dyn Store>,
) {
    // Arrange
    let t0 = now_ms();
    let a = mk_alert("hook-a", "cluster_failed:c-1");
    let b = mk_alert("hook-b", "cluster_failed:c-1");

    // Act + Assert: queued once per target, however often it is offered.
    assert!(enqueue(&store, &a, t0, None).await, "a new alert is queued");
    assert!(
        !enqueue(&store, &a, t0, None).await,
        "a queued alert is not queued again"
    );
    assert!(
        !enqueue(&store, &a, secs_after(t0, 7200), Some(secs_after(t0, 3600))).await,
        "an alert still queued is not queued again, however old"
    );
    assert!(
        enqueue(&store, &b, t0, None).await,
        "each target has its own entry"
    );
    let later = secs_after(t0, 1);
    let capacity = NewNotification {
        alert: "host_capacity".into(),
        ..mk_alert("hook-a", "host_capacity:local")
    };
    assert!(enqueue(&store, &capacity, later, None).await);
    assert_eq!(
        due(&store, t0).await,
        vec![
            pair("hook-a", "cluster_failed:c-1"),
            pair("hook-b", "cluster_failed:c-1")
        ],
        "due at once, oldest first; the later one is not due yet"
    );
    let all = store.due_notifications(later, 100).await.expect("due");
    assert_eq!(all.len(), 3, "{all:?}");
    assert_eq!(all[0].alert, a, "the entry round-trips");
    assert_eq!(all[0].attempts, 0);
    assert_eq!(all[0].created_at, t0);

    // A failed attempt waits until its next attempt and keeps its error.
    store
        .notification_attempted(
            all[0].id,
            Attempt::Retry {
                error: "HTTP 500",
                at: secs_after(t0, 60),
            },
            later,
        )
        .await
        .expect("recording a retry");
    assert_eq!(
        due(&store, later).await,
        vec![
            pair("hook-b", "cluster_failed:c-1"),
            pair("hook-a", "host_capacity:local")
        ],
        "a retried entry is not due before its time"
    );
    let retried = store
        .due_notifications(secs_after(t0, 60), 100)
        .await
        .expect("due");
    let retried = retried
        .iter()
        .find(|n| n.id == all[0].id)
        .expect("due again");
    assert_eq!(retried.attempts, 1);
    assert_eq!(retried.last_error.as_deref(), Some("HTTP 500"));

    // Sent and given up entries are never due again.
    for (n, attempt) in all.iter().zip([
        Attempt::Sent { check_run: None },
        Attempt::GaveUp { error: "HTTP 404" },
        Attempt::Sent { check_run: None },
    ]) {
        store
            .notification_attempted(n.id, attempt, later)
            .await
            .expect("recording an attempt");
    }
    assert!(due(&store, secs_after(t0, 3600)).await.is_empty());
    let backlog = store.census().await.expect("census").notification_backlog;
    assert_eq!(backlog, 0, "nothing is waiting");

    // Within the repeat window a sent alert is not queued again; after it, it is.
    let window = |now: Timestamp| Some(secs_after(now, -3600));
    let t1 = secs_after(t0, 1800);
    assert!(
        !enqueue(&store, &capacity, t1, window(t1)).await,
        "within the window"
    );
    let t2 = secs_after(t0, 3602);
    assert!(
        enqueue(&store, &capacity, t2, window(t2)).await,
        "past the window"
    );
    assert!(
        !enqueue(&store, &a, t2, None).await,
        "an alert without a window is sent once while its row is kept"
    );
    assert_eq!(
        store.census().await.expect("census").notification_backlog,
        1
    );

    // Purge forgets done entries queued before the cut, never queued ones.
    let purged = store
        .purge_notifications(secs_after(t0, 7200))
        .await
        .expect("purging");
    assert_eq!(purged, 3, "the three done entries");
    assert_eq!(
        due(&store, t2).await,
        vec![pair("hook-a", "host_capacity:local")],
        "the queued one stays"
    );
}

pub(super) async fn the_notifier_cursor_starts_at_the_newest_event_and_finds_failures_after_it(
    store: Arc<dyn Store>,
) {
    // Arrange: one cluster failed before the notifier first looked.
    let old = mk_cluster("failed-before");
    insert(&store, &old).await;
    let failed = |c: &Cluster| Cluster {
        phase: Phase::Failed,
        ..c.clone()
    };
    let to_failed = NewEvent::phase(Phase::Pending, Phase::Failed, Some("driver_error"), "boom");
    store
        .update_cluster(&failed(&old), std::slice::from_ref(&to_failed))
        .await
        .expect("failing the first cluster");

    // Act
    let cursor = store.notify_cursor().await.expect("the cursor");

    // Assert
    let before = store
        .events_into(Phase::Failed, 0, 10)
        .await
        .expect("events");
    assert_eq!(before.len(), 1, "{before:?}");
    assert_eq!(
        cursor, before[0].id,
        "the cursor starts at the newest event"
    );
    assert_eq!(
        store.notify_cursor().await.expect("cursor"),
        cursor,
        "it stays"
    );
    assert!(
        store
            .events_into(Phase::Failed, cursor, 10)
            .await
            .expect("events")
            .is_empty(),
        "nothing failed since"
    );
    let new = mk_cluster("failed-after");
    insert(&store, &new).await;
    store
        .update_cluster(&failed(&new), &[to_failed])
        .await
        .expect("failing the second cluster");
    let after = store
        .events_into(Phase::Failed, cursor, 10)
        .await
        .expect("events");
    assert_eq!(after.len(), 1, "{after:?}");
    assert_eq!(after[0].cluster_id, new.id);
    assert_eq!(after[0].reason.as_deref(), Some("driver_error"));
    store
        .set_notify_cursor(after[0].id)
        .await
        .expect("moving the cursor");
    assert_eq!(store.notify_cursor().await.expect("cursor"), after[0].id);
}

pub(super) async fn the_notifier_cursor_misses_no_event_of_concurrent_writers(
    store: Arc<dyn Store>,
) {
    // Arrange: writers each failing their own cluster over and over (no version conflicts), as
    // several tasks or replicas do, while a reader follows them with a cursor.
    const WRITERS: usize = 6;
    const WRITES: usize = 20;
    let mut clusters = Vec::new();
    for i in 0..WRITERS {
        let c = mk_cluster(&format!("writer-{i}"));
        insert(&store, &c).await;
        clusters.push(c);
    }
    let mut cursor = store.notify_cursor().await.expect("the cursor");
    let writers: Vec<_> = clusters
        .iter()
        .cloned()
        .map(|mut c| {
            let store = store.clone();
            tokio::spawn(async move {
                for n in 0..WRITES {
                    let failed = NewEvent::phase(Phase::Pending, Phase::Failed, None, "boom");
                    c.message = format!("write {n}");
                    c = store.update_cluster(&c, &[failed]).await.expect("a write");
                }
            })
        })
        .collect();

    // Act: read behind the writers until they are done, then once more.
    let mut seen = Vec::new();
    loop {
        let done = writers.iter().all(|w| w.is_finished());
        let page = store
            .events_into(Phase::Failed, cursor, 7)
            .await
            .expect("events");
        if let Some(last) = page.last() {
            cursor = last.id;
        }
        let empty = page.is_empty();
        seen.extend(page.into_iter().map(|e| e.id));
        if done && empty {
            break;
        }
        tokio::task::yield_now().await;
    }
    for w in writers {
        w.await.expect("a writer panicked");
    }

    // Assert: every event was read once, in id order.
    let mut written = Vec::new();
    for c in &clusters {
        let evs = events(&store, &c.id).await;
        let failed = evs
            .into_iter()
            .filter(|e| e.to_phase == Some(Phase::Failed));
        written.extend(failed.map(|e| e.id));
    }
    written.sort_unstable();
    assert_eq!(written.len(), WRITERS * WRITES);
    assert_eq!(
        seen, written,
        "a cursor that follows concurrent writers reads every event once: an event id at or \
         below one already read never appears later"
    );
}
