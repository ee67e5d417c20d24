//! Contract cases: reconcile claims (which replica steps a cluster, until when).

use std::sync::Arc;

use super::*;
use crate::store::Store;

async fn claim(store: &Arc<dyn Store>, id: &ClusterId, holder: &str, now: Timestamp) -> bool {
    let until = secs_after(now, 30);
    let r = store.claim_cluster(id, holder, until, now).await;
    r.unwrap_or_else(|e| panic!("{holder} claiming {id} failed: {e}"))
}

pub(super) async fn a_claim_is_held_by_one_holder_until_released_or_expired(store: Arc<dyn Store>) {
    // Arrange
    let c = mk_cluster("claimed");
    insert(&store, &c).await;
    let now = now_ms();

    // Act and assert, rule by rule.
    assert!(
        claim(&store, &c.id, "a", now).await,
        "a free cluster is claimed"
    );
    assert!(
        !claim(&store, &c.id, "b", now).await,
        "a running claim refuses another holder"
    );
    assert!(
        claim(&store, &c.id, "a", secs_after(now, 10)).await,
        "the holder renews its own claim"
    );
    assert!(
        !claim(&store, &c.id, "b", secs_after(now, 35)).await,
        "the renewal moved the expiry (now + 10 s + 30 s)"
    );
    store.release_claim(&c.id, "b").await.expect("release");
    assert!(
        !claim(&store, &c.id, "b", secs_after(now, 35)).await,
        "releasing a claim one does not hold changes nothing"
    );
    assert!(
        claim(&store, &c.id, "b", secs_after(now, 41)).await,
        "an expired claim is taken over (its holder died)"
    );
    assert!(
        !claim(&store, &c.id, "a", secs_after(now, 41)).await,
        "the old holder has lost it"
    );
    store.release_claim(&c.id, "b").await.expect("release");
    assert!(
        claim(&store, &c.id, "a", secs_after(now, 42)).await,
        "a released claim is free at once"
    );

    // A replica shutting down gives up all of its claims, and only its own.
    let d = mk_cluster("claimed-too");
    let e = mk_cluster("claimed-by-b");
    insert(&store, &d).await;
    insert(&store, &e).await;
    let at = secs_after(now, 43);
    assert!(claim(&store, &d.id, "a", at).await);
    assert!(claim(&store, &e.id, "b", at).await);
    assert_eq!(store.release_claims("a").await.expect("release all"), 2);
    assert!(claim(&store, &c.id, "b", at).await, "a's claims are free");
    assert!(claim(&store, &d.id, "b", at).await, "a's claims are free");
    assert!(!claim(&store, &e.id, "c", at).await, "b's claim stands");
}

pub(super) async fn of_concurrent_claims_on_a_cluster_exactly_one_wins(store: Arc<dyn Store>) {
    const HOLDERS: usize = 8;
    let c = mk_cluster("contended-claim");
    insert(&store, &c).await;
    let now = now_ms();
    let start = Arc::new(tokio::sync::Barrier::new(HOLDERS));

    let tasks: Vec<_> = (0..HOLDERS)
        .map(|i| {
            let (store, start, id) = (store.clone(), start.clone(), c.id.clone());
            tokio::spawn(async move {
                start.wait().await;
                claim(&store, &id, &format!("replica-{i}"), now).await
            })
        })
        .collect();
    let mut won = 0;
    for t in tasks {
        won += usize::from(t.await.expect("claim task panicked"));
    }

    assert_eq!(
        won, 1,
        "exactly one of {HOLDERS} holders claims a free cluster"
    );
}

pub(super) async fn due_clusters_leave_out_what_another_holder_claims(store: Arc<dyn Store>) {
    // Arrange: three due clusters; "a" holds one, "b" another, the third is free.
    let now = now_ms();
    let due = |name: &str| Cluster {
        next_reconcile_at: secs_after(now, -10),
        ..mk_cluster(name)
    };
    let (held_by_a, held_by_b, free) = (due("held-by-a"), due("held-by-b"), due("free"));
    for c in [&held_by_a, &held_by_b, &free] {
        insert(&store, c).await;
    }
    assert!(claim(&store, &held_by_a.id, "a", now).await);
    assert!(claim(&store, &held_by_b.id, "b", now).await);
    let due_for = async |holder: &str, at: Timestamp| {
        let due = store
            .due_clusters(holder, at, 10)
            .await
            .expect("due clusters");
        let mut names: Vec<String> = due.iter().map(|c| c.name.to_string()).collect();
        names.sort();
        names
    };

    // Act
    let for_a = due_for("a", now).await;
    let for_c = due_for("c", now).await;
    let after_expiry = due_for("c", secs_after(now, 31)).await;

    // Assert
    assert_eq!(
        for_a,
        ["free", "held-by-a"],
        "a holder sees its own claims and free clusters, not another's running claim"
    );
    assert_eq!(for_c, ["free"], "a third replica sees only the free one");
    assert_eq!(
        after_expiry,
        ["free", "held-by-a", "held-by-b"],
        "claims that ran out (their holders died) are due for everyone again"
    );
}
