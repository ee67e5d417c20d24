//! Contract cases: idempotency records, purging, tokens and concurrent writers.

use std::sync::Arc;

use super::*;
use crate::domain::{ApiToken, Cluster, Phase, Role};
use crate::store::{IdempotencyRecord, Store, StoreError};

pub(super) async fn idempotency_records_round_trip_and_keys_are_unique_per_principal(
    store: Arc<dyn Store>,
) {
    let rec = |principal: &str, c: &Cluster| IdempotencyRecord {
        principal: principal.into(),
        key: "k1".into(),
        request_hash: format!("sha256-of-{}", c.name),
        cluster_id: c.id.clone(),
    };
    let a = mk_cluster("a");
    let ra = rec("token:alice", &a);
    store
        .insert_cluster(&a, &mk_event("created"), Some(&ra))
        .await
        .expect("insert with key");

    let got = store
        .get_idempotency("token:alice", "k1")
        .await
        .expect("lookup");
    assert_eq!(got, Some(ra), "the record round-trips");
    let other = store
        .get_idempotency("token:bob", "k1")
        .await
        .expect("lookup");
    assert_eq!(other, None, "keys are per principal");

    let b = mk_cluster("b");
    let r = store
        .insert_cluster(&b, &mk_event("created"), Some(&rec("token:alice", &b)))
        .await;
    expect_conflict(r, "the same principal reusing a key");
    assert_eq!(
        find(&store, &b.id).await,
        None,
        "the whole insert rolled back"
    );
    assert!(
        events(&store, &b.id).await.is_empty(),
        "its event rolled back too"
    );

    let rb = rec("token:bob", &b);
    store
        .insert_cluster(&b, &mk_event("created"), Some(&rb))
        .await
        .expect("another principal");
    assert_eq!(
        store
            .get_idempotency("token:bob", "k1")
            .await
            .expect("lookup"),
        Some(rb)
    );
}

pub(super) async fn purge_ended_removes_only_old_ended_clusters_with_their_events(
    store: Arc<dyn Store>,
) {
    let now = now_ms();
    let hours_ago = |h: i64| secs_after(now, -h * 3600);
    let ended = |name: &str, phase, created_h: i64, deleted_h: Option<i64>, cleaned| Cluster {
        phase,
        created_at: hours_ago(created_h),
        deleted_at: deleted_h.map(hours_ago),
        cleaned_up: cleaned,
        ..mk_cluster(name)
    };
    let old_deleted = ended("old-deleted", Phase::Deleted, 5, Some(2), false);
    let new_deleted = ended("new-deleted", Phase::Deleted, 5, Some(0), false);
    let old_failed = ended("old-failed", Phase::Failed, 3, None, true);
    let dirty_failed = ended("dirty-failed", Phase::Failed, 3, None, false);
    let old_ready = ended("old-ready", Phase::Ready, 3, None, false);
    let key = IdempotencyRecord {
        principal: "token:test".into(),
        key: "purged".into(),
        request_hash: "h".into(),
        cluster_id: old_deleted.id.clone(),
    };
    store
        .insert_cluster(&old_deleted, &mk_event("created"), Some(&key))
        .await
        .expect("insert");
    for c in [&new_deleted, &old_failed, &dirty_failed, &old_ready] {
        insert(&store, c).await;
    }

    let purged = store.purge_ended(hours_ago(1)).await.expect("purge");

    assert_eq!(
        purged, 2,
        "the old Deleted and the old cleaned-up Failed cluster go"
    );
    for gone in [&old_deleted, &old_failed] {
        assert_eq!(find(&store, &gone.id).await, None, "{} purged", gone.name);
        assert!(events(&store, &gone.id).await.is_empty(), "its events too");
    }
    let key_left = store
        .get_idempotency("token:test", "purged")
        .await
        .expect("lookup");
    assert_eq!(key_left, None, "idempotency keys of purged clusters go");
    for kept in [&new_deleted, &dirty_failed, &old_ready] {
        assert_eq!(get(&store, &kept.id).await, *kept, "{} is kept", kept.name);
        assert_eq!(events(&store, &kept.id).await.len(), 1, "with its events");
    }
    assert_eq!(
        store.purge_ended(hours_ago(1)).await.expect("purge"),
        0,
        "purging is idempotent"
    );
}

pub(super) async fn tokens_insert_look_up_list_and_revoke(store: Arc<dyn Store>) {
    let now = now_ms();
    let older = ApiToken {
        created_at: secs_after(now, -7200),
        ..mk_token("older")
    };
    let newer = ApiToken {
        team: Some("web".into()),
        role: Role::Developer,
        expires_at: Some(secs_after(now, 3600)),
        created_at: secs_after(now, -3600),
        ..mk_token("newer")
    };
    store.insert_token(&older).await.expect("insert token");
    store.insert_token(&newer).await.expect("insert token");

    assert_eq!(
        store.token_by_hash(&older.hash).await.expect("lookup"),
        Some(older.clone())
    );
    assert_eq!(
        store.token_by_hash("no-such-hash").await.expect("lookup"),
        None
    );
    let listed = store.list_tokens().await.expect("list tokens");
    assert_eq!(
        listed,
        [newer.clone(), older.clone()],
        "tokens are listed newest first"
    );

    let same_hash = ApiToken {
        id: "t-other".into(),
        ..older.clone()
    };
    expect_conflict(
        store.insert_token(&same_hash).await,
        "a second token with the same hash",
    );
    let same_id = ApiToken {
        hash: "another-hash".into(),
        ..older.clone()
    };
    expect_conflict(
        store.insert_token(&same_id).await,
        "a second token with the same id",
    );

    store.revoke_token(&older.id, now).await.expect("revoke");
    let revoked = store.token_by_hash(&older.hash).await.expect("lookup");
    assert_eq!(
        revoked.and_then(|t| t.revoked_at),
        Some(now),
        "revocation time is stored"
    );
    let r = store.revoke_token("t-unknown", now).await;
    assert!(
        matches!(r, Err(StoreError::NotFound)),
        "revoking an unknown token: {r:?}"
    );

    store.token_used(&newer.id, now).await.expect("record use");
    store
        .token_used(&newer.id, secs_after(now, -60))
        .await
        .expect("record an older use");
    store
        .token_used("t-unknown", now)
        .await
        .expect("unknown id is no error");
    let used = store.token_by_hash(&newer.hash).await.expect("lookup");
    assert_eq!(
        used.and_then(|t| t.last_used_at),
        Some(now),
        "the latest use is kept"
    );
}

pub(super) async fn concurrent_updates_from_the_same_version_have_exactly_one_winner(
    store: Arc<dyn Store>,
) {
    const WRITERS: usize = 8;
    let c = mk_cluster("contended");
    insert(&store, &c).await;
    let read = get(&store, &c.id).await;
    let start = Arc::new(tokio::sync::Barrier::new(WRITERS));

    let tasks: Vec<_> = (0..WRITERS)
        .map(|i| {
            let (store, start) = (store.clone(), start.clone());
            let mine = Cluster {
                message: format!("writer {i}"),
                ..read.clone()
            };
            tokio::spawn(async move {
                start.wait().await;
                store
                    .update_cluster(&mine, &[mk_event(&format!("write_{i}"))])
                    .await
            })
        })
        .collect();
    let mut winners = Vec::new();
    for (i, t) in tasks.into_iter().enumerate() {
        match t.await.expect("writer task panicked") {
            Ok(won) => winners.push(won),
            Err(StoreError::Conflict(_)) => {}
            Err(e) => panic!("writer {i} failed with {e:?}; only Conflict is acceptable"),
        }
    }

    assert_eq!(
        winners.len(),
        1,
        "exactly one of {WRITERS} writers with the same version wins"
    );
    let stored = get(&store, &c.id).await;
    assert_eq!(stored, winners[0], "the stored record is the winner's");
    assert_eq!(
        stored.version,
        read.version + 1,
        "one update, one version step"
    );
    let events = events(&store, &c.id).await;
    assert_eq!(
        events.len(),
        2,
        "the insert event and the winner's only: {events:?}"
    );
}

pub(super) async fn gateway_credentials_insert_look_up_revoke_and_go_with_their_cluster(
    store: Arc<dyn Store>,
) {
    let now = now_ms();
    let cluster = Cluster {
        phase: Phase::Deleted,
        deleted_at: Some(secs_after(now, -7200)),
        ..mk_cluster("gw")
    };
    insert(&store, &cluster).await;
    // NB: a CI job's credential keeps the repository grant it was taken with.
    let who = crate::domain::Principal {
        repository: crate::domain::RepoGrant::from_claim("74"),
        ..crate::domain::Principal::token("t-1", "ci", Role::Ci, Some("web".into()))
    };
    let mk = |hash: &str, secs: i64| crate::domain::GatewayCredential {
        hash: hash.into(),
        ..crate::domain::GatewayCredential::new(cluster.id.as_str(), &who, secs_after(now, secs))
    };
    let (first, second) = (mk("h1", 3600), mk("h2", 60));
    for c in [&first, &second] {
        store.insert_gateway_credential(c).await.expect("insert");
    }

    let found = store
        .gateway_credential_by_hash("h1")
        .await
        .expect("lookup");
    assert_eq!(found.as_ref(), Some(&first), "every field round-trips");
    assert_eq!(
        store
            .gateway_credential_by_hash("nope")
            .await
            .expect("lookup"),
        None
    );
    let listed = store
        .gateway_credentials_of(cluster.id.as_str())
        .await
        .expect("list");
    assert_eq!(listed.len(), 2);

    let at = secs_after(now, 5);
    let one = store
        .revoke_gateway_credentials(cluster.id.as_str(), Some(&first.id), at)
        .await
        .expect("revoke one");
    assert_eq!(one, 1);
    let again = store
        .revoke_gateway_credentials(cluster.id.as_str(), Some(&first.id), secs_after(now, 9))
        .await
        .expect("revoke again");
    assert_eq!(again, 0, "revoking twice changes nothing");
    let revoked = store
        .gateway_credential_by_hash("h1")
        .await
        .expect("lookup");
    assert_eq!(
        revoked
            .and_then(|c| c.revoked_at)
            .map(|t| t.as_millisecond()),
        Some(at.as_millisecond()),
        "the first revocation time stays"
    );
    let rest = store
        .revoke_gateway_credentials(cluster.id.as_str(), None, at)
        .await
        .expect("revoke all");
    assert_eq!(rest, 1, "only the one not revoked yet");

    store
        .purge_ended(secs_after(now, -3600))
        .await
        .expect("purge");
    assert!(
        store
            .gateway_credentials_of(cluster.id.as_str())
            .await
            .expect("list")
            .is_empty(),
        "a purged cluster's credentials go with it"
    );
}
