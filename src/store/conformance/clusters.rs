//! Contract cases: one cluster's record, its name, its version and its events.

use std::sync::Arc;

use super::*;
use crate::domain::{Cluster, ClusterId, DeleteReason, NewEvent, Phase, Ttl};
use crate::store::{Store, StoreError};

pub(super) async fn insert_then_get_round_trips_every_field(store: Arc<dyn Store>) {
    // Arrange: one cluster with every optional field set, one with none.
    store.ping().await.expect("a fresh store answers ping");
    let now = now_ms();
    let full = Cluster {
        team: Some("web".into()),
        phase: Phase::Deleting,
        message: "deleting: \"quoted\" 'text' ünïcode".into(),
        idle_timeout: Some(Ttl::from_secs(1800)),
        labels: mk_labels(&[
            ("repo", "acme-web"),
            ("example.com/team", "web_1.x"),
            ("sha", ""),
        ]),
        ready_at: Some(secs_after(now, 38)),
        deleted_at: Some(secs_after(now, 90)),
        last_activity_at: secs_after(now, 60),
        endpoint: Some("https://127.0.0.1:6443".into()),
        delete_reason: Some(DeleteReason::PullRequestClosed),
        attempts: 3,
        next_reconcile_at: secs_after(now, 5),
        cleaned_up: true,
        version: 7,
        ..mk_cluster("full")
    };
    let bare = mk_cluster("bare");

    // Act
    insert(&store, &full).await;
    insert(&store, &bare).await;

    // Assert
    assert_eq!(
        get(&store, &full.id).await,
        full,
        "every field must round-trip"
    );
    assert_eq!(
        get(&store, &bare.id).await,
        bare,
        "absent options must stay absent"
    );
    let by_name = store
        .get_live_by_name("bare")
        .await
        .expect("lookup by name");
    assert_eq!(by_name, Some(bare), "a live cluster is found by name");
    let unknown = find(&store, &ClusterId::generate()).await;
    assert_eq!(unknown, None, "an unknown id is None, not an error");
}

pub(super) async fn live_names_are_unique_until_the_holder_is_deleted(store: Arc<dyn Store>) {
    let first = mk_cluster("web");
    insert(&store, &first).await;

    let second = mk_cluster("web");
    let r = store
        .insert_cluster(&second, &mk_event("created"), None)
        .await;
    expect_conflict(r, "a second live cluster named web");
    assert_eq!(find(&store, &second.id).await, None, "refused = not stored");

    let other = mk_cluster("other");
    insert(&store, &other).await;
    let rename = Cluster {
        name: first.name.clone(),
        ..other.clone()
    };
    expect_conflict(
        store.update_cluster(&rename, &[]).await,
        "renaming into a live name",
    );

    let gone = Cluster {
        phase: Phase::Deleted,
        deleted_at: Some(now_ms()),
        ..first.clone()
    };
    store
        .update_cluster(&gone, &[])
        .await
        .expect("marking the first cluster Deleted");
    insert(&store, &second).await;

    let live = store.get_live_by_name("web").await.expect("lookup by name");
    assert_eq!(
        live.map(|c| c.id),
        Some(second.id.clone()),
        "the name now names the new cluster"
    );
    assert_eq!(
        get(&store, &first.id).await.phase,
        Phase::Deleted,
        "Deleted records stay readable"
    );
    let live_ids = ids(&store.live_clusters().await.expect("live clusters"));
    assert!(
        !live_ids.contains(&first.id.to_string()),
        "live_clusters excludes Deleted"
    );
    assert!(live_ids.contains(&second.id.to_string()) && live_ids.contains(&other.id.to_string()));
}

pub(super) async fn stale_version_update_is_refused_and_changes_nothing(store: Arc<dyn Store>) {
    let c = mk_cluster("stale");
    insert(&store, &c).await;
    let read = get(&store, &c.id).await;

    let first = Cluster {
        message: "first".into(),
        ..read.clone()
    };
    let updated = store
        .update_cluster(&first, &[mk_event("updated")])
        .await
        .expect("update");
    assert_eq!(
        updated.version,
        read.version + 1,
        "an update bumps the version"
    );
    assert_eq!(
        updated,
        Cluster {
            version: read.version + 1,
            ..first
        },
        "returns what it stored"
    );

    let late = Cluster {
        message: "second".into(),
        ..read
    };
    let r = store.update_cluster(&late, &[mk_event("lost")]).await;
    expect_conflict(r, "an update carrying a stale version");

    let stored = get(&store, &c.id).await;
    assert_eq!(
        stored, updated,
        "a refused update leaves the record as the winner wrote it"
    );
    let kinds: Vec<_> = events(&store, &c.id)
        .await
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        ["created", "updated"],
        "a refused update records no events"
    );
}

pub(super) async fn updating_a_missing_cluster_is_not_found(store: Arc<dyn Store>) {
    let r = store
        .update_cluster(&mk_cluster("ghost"), &[mk_event("updated")])
        .await;
    assert!(
        matches!(r, Err(StoreError::NotFound)),
        "update of a missing cluster: {r:?}"
    );
}

pub(super) async fn events_are_recorded_in_order_with_inserts_and_updates(store: Arc<dyn Store>) {
    let c = mk_cluster("evented");
    let noise = mk_cluster("noise");
    let created = mk_event("created");
    store
        .insert_cluster(&c, &created, None)
        .await
        .expect("insert");
    insert(&store, &noise).await;
    let moved = NewEvent {
        at: now_ms(),
        ..NewEvent::phase(
            Phase::Pending,
            Phase::Provisioning,
            Some("started"),
            "provisioning",
        )
    };
    let issued = mk_event("kubeconfig_issued").with_reason("requested");
    let next = Cluster {
        phase: Phase::Provisioning,
        ..c.clone()
    };
    store
        .update_cluster(&next, &[moved.clone(), issued.clone()])
        .await
        .expect("update");

    let recorded = events(&store, &c.id).await;

    assert_eq!(
        recorded.len(),
        3,
        "one per insert and per recorded change: {recorded:?}"
    );
    for (got, want) in recorded.iter().zip([created, moved, issued]) {
        assert_eq!(got.cluster_id, c.id, "events belong to their cluster");
        assert_eq!(
            as_new_event(got),
            want,
            "event fields round-trip, oldest first"
        );
    }
    let ids_increase = recorded.windows(2).all(|w| w[0].id < w[1].id);
    assert!(ids_increase, "event ids increase");
    let none = events(&store, &ClusterId::generate()).await;
    assert!(none.is_empty(), "an unknown cluster has no events");
}
