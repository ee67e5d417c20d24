//! Contract cases: webhook deliveries and pull requests.

use std::sync::Arc;

use super::*;
use crate::domain::{PrUpdate, PrWant, ReportState, StatusWant};
use crate::store::{Attempt, Store};

fn update(want: PrWant, sha: &str, version_ms: i64) -> PrUpdate {
    PrUpdate {
        key: "github:acme/web#7".into(),
        provider: "github".into(),
        repository: "acme/web".into(),
        number: 7,
        want,
        head_sha: sha.into(),
        branch: "feature".into(),
        url: "https://github.com/acme/web/pull/7".into(),
        installation_id: Some(99),
        repository_id: Some("74".into()),
        version_ms,
    }
}

pub(super) async fn deliveries_are_taken_once_and_pull_requests_wait_until_carried_out(
    store: Arc<dyn Store>,
) {
    let now = now_ms();
    let record = |id: &'static str, u: Option<PrUpdate>| {
        let store = store.clone();
        async move {
            store
                .record_delivery("github", id, "pull_request", u.as_ref(), now)
                .await
                .expect("recorded")
        }
    };

    // A new delivery that opens a pull request changes it; the same delivery id again is a
    // no-op even with another body; a delivery without a pull request is still remembered.
    assert_eq!(
        record("d1", Some(update(PrWant::Open, "aaa", 1))).await,
        Some(true)
    );
    assert_eq!(
        record("d1", Some(update(PrWant::Close, "aaa", 9))).await,
        None
    );
    assert_eq!(record("d2", None).await, Some(false));
    assert_eq!(record("d2", None).await, None);
    let other_provider = store
        .record_delivery("bitbucket", "d1", "pullrequest:created", None, now)
        .await
        .expect("recorded");
    assert_eq!(other_provider, Some(false), "ids are per provider");

    // Pending until the engine marks its generation done.
    let pending = store.pending_pull_requests(10).await.expect("listed");
    assert_eq!(pending.len(), 1);
    let pr = &pending[0];
    assert_eq!(
        (
            pr.key.as_str(),
            pr.open,
            pr.head_sha.as_str(),
            pr.generation,
            pr.installation_id
        ),
        ("github:acme/web#7", true, "aaa", 1, Some(99))
    );
    let cluster = mk_cluster("gh-web-7");
    store
        .pull_request_done(&pr.key, pr.generation, Some(&cluster.id))
        .await
        .expect("done");
    assert!(
        store
            .pending_pull_requests(10)
            .await
            .expect("listed")
            .is_empty()
    );
    let kept = store
        .get_pull_request("github:acme/web#7")
        .await
        .expect("read")
        .expect("there");
    assert_eq!(kept.cluster_id, Some(cluster.id.clone()));

    // A new commit makes it pending again, keeping its cluster; an older event changes nothing.
    assert_eq!(
        record("d3", Some(update(PrWant::Move, "bbb", 2))).await,
        Some(true)
    );
    assert_eq!(
        record("d4", Some(update(PrWant::Move, "ccc", 1))).await,
        Some(false)
    );
    let pending = store.pending_pull_requests(10).await.expect("listed");
    assert_eq!(
        (
            pending[0].head_sha.as_str(),
            pending[0].generation,
            pending[0].cluster_id.clone()
        ),
        ("bbb", 2, Some(cluster.id))
    );
    // Done with an older generation never hides a newer one.
    store
        .pull_request_done("github:acme/web#7", 1, None)
        .await
        .expect("done");
    assert_eq!(
        store.pending_pull_requests(10).await.expect("listed").len(),
        1
    );

    // Deliveries older than the cut are forgotten (a redelivery after that is taken again).
    let purged = store
        .purge_deliveries(secs_after(now, 1))
        .await
        .expect("purged");
    assert_eq!(purged, 5);
    assert_eq!(record("d1", None).await, Some(false));
}

fn want(state: ReportState, description: &str) -> StatusWant {
    StatusWant {
        pr_key: "github:acme/web#7".into(),
        sha: "aaa".into(),
        provider: "github".into(),
        repository: "acme/web".into(),
        branch: "feature".into(),
        installation_id: Some(99),
        state,
        description: description.into(),
        target_url: "https://vcm.example.com/v1/clusters/c-1".into(),
    }
}

pub(super) async fn the_status_outbox_keeps_only_the_latest_state_until_the_provider_takes_it(
    store: Arc<dyn Store>,
) {
    let now = now_ms();
    let due = |at| {
        let store = store.clone();
        async move { store.due_statuses(at, 10).await.expect("listed") }
    };

    // Queued once; the same state again is no change.
    let pending = want(ReportState::Pending, "making it");
    assert!(store.want_status(&pending, now).await.expect("queued"));
    assert!(!store.want_status(&pending, now).await.expect("queued"));
    let first = due(now).await;
    assert_eq!((first.len(), first[0].seq, first[0].sent_seq), (1, 1, 0));

    // A failed attempt waits until its time; a newer state queued meanwhile is due at once,
    // and a late failure of the old attempt does not delay it.
    let later = secs_after(now, 30);
    store
        .status_attempted(
            &first[0],
            Attempt::Retry {
                error: "HTTP 500",
                at: later,
            },
            now,
        )
        .await
        .expect("recorded");
    assert!(due(now).await.is_empty(), "backing off");
    let retried = due(later).await;
    assert_eq!(
        (retried[0].attempts, retried[0].last_error.as_deref()),
        (1, Some("HTTP 500"))
    );
    let ready = want(ReportState::Ready, "ready");
    assert!(store.want_status(&ready, now).await.expect("queued"));
    store
        .status_attempted(
            &first[0],
            Attempt::Retry {
                error: "HTTP 502",
                at: later,
            },
            now,
        )
        .await
        .expect("recorded");
    let now_due = due(now).await;
    assert_eq!(now_due.len(), 1);
    assert_eq!(
        (now_due[0].want.state, now_due[0].seq, now_due[0].attempts),
        (ReportState::Ready, 2, 0)
    );

    // Sent at seq 1 (an old attempt finishing late) leaves seq 2 due; sent at 2, nothing is.
    store
        .status_attempted(&first[0], Attempt::Sent { check_run: None }, now)
        .await
        .expect("recorded");
    assert_eq!(due(now).await.len(), 1);
    store
        .status_attempted(&now_due[0], Attempt::Sent { check_run: Some(7) }, now)
        .await
        .expect("recorded");
    assert!(due(later).await.is_empty());
    let kept = store
        .status_reports("github:acme/web#7")
        .await
        .expect("listed");
    assert_eq!(kept[0].check_run_id, Some(7), "the check run made is kept");

    // Given up: kept with its error, not due.
    let refused = want(ReportState::Failed, "x".repeat(200).as_str());
    assert!(store.want_status(&refused, now).await.expect("queued"));
    let r = due(now).await;
    store
        .status_attempted(&r[0], Attempt::GaveUp { error: "HTTP 422" }, now)
        .await
        .expect("recorded");
    assert!(due(later).await.is_empty());
    let all = store
        .status_reports("github:acme/web#7")
        .await
        .expect("listed");
    assert_eq!(
        (all.len(), all[0].last_error.as_deref(), all[0].due()),
        (1, Some("HTTP 422"), false)
    );

    // Sent entries are purged after their time; due ones never are.
    assert!(
        store
            .want_status(
                &StatusWant {
                    sha: "bbb".into(),
                    ..want(ReportState::Pending, "making it")
                },
                now
            )
            .await
            .expect("queued")
    );
    let purged = store
        .purge_statuses(secs_after(now, 1))
        .await
        .expect("purged");
    assert_eq!(purged, 1);
    let left = store
        .status_reports("github:acme/web#7")
        .await
        .expect("listed");
    assert_eq!(
        left.iter().map(|r| r.want.sha.as_str()).collect::<Vec<_>>(),
        ["bbb"]
    );
}
