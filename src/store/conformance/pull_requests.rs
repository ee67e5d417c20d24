//! Contract cases: webhook deliveries and pull requests.

use std::sync::Arc;

use super::*;
use crate::domain::{PrUpdate, PrWant};
use crate::store::Store;

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
