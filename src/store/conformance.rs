//! The storage contract as one executable suite: every [`Store`] backend runs [`run_suite`].
//!
//! Each case gets a fresh, empty store from the caller's factory and panics with a message that
//! names the broken rule. Timestamps in fixtures are whole milliseconds, the precision stores
//! keep, so round-trips compare equal.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;

use jiff::SignedDuration;

use super::{ClusterFilter, Cursor, IdempotencyRecord, Store, StoreError};
use crate::domain::{
    ApiToken, Cluster, ClusterEvent, ClusterId, ClusterName, DeleteReason, LabelSelector, Labels,
    NewEvent, Phase, Timestamp, Ttl,
};

/// Run every contract case, each against a new empty store from `make`.
pub async fn run_suite<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn Store>>,
{
    macro_rules! case {
        ($name:ident) => {
            eprintln!("store conformance: {}", stringify!($name));
            $name(make().await).await;
        };
    }
    case!(insert_then_get_round_trips_every_field);
    case!(live_names_are_unique_until_the_holder_is_deleted);
    case!(stale_version_update_is_refused_and_changes_nothing);
    case!(updating_a_missing_cluster_is_not_found);
    case!(events_are_recorded_in_order_with_inserts_and_updates);
    case!(list_filters_by_phase_owner_and_labels);
    case!(pagination_walks_three_pages_without_duplicates_or_gaps);
    case!(due_clusters_respects_next_reconcile_at_and_skips_ended);
    case!(idempotency_records_round_trip_and_keys_are_unique_per_principal);
    case!(purge_ended_removes_only_old_ended_clusters_with_their_events);
    case!(tokens_insert_look_up_list_and_revoke);
    case!(concurrent_updates_from_the_same_version_have_exactly_one_winner);
}

// === fixtures ===

pub use crate::domain::now_ms;

/// `base` moved by `secs` seconds (negative: earlier).
pub fn secs_after(base: Timestamp, secs: i64) -> Timestamp {
    base + SignedDuration::from_secs(secs)
}

/// Labels from `(key, value)` pairs; they must be valid Kubernetes labels.
pub fn mk_labels(pairs: &[(&str, &str)]) -> Labels {
    let map: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    Labels::parse(map).expect("test labels are valid")
}

/// A new `Pending` cluster named `name` (a valid DNS label), version 1, due now, no options set.
pub fn mk_cluster(name: &str) -> Cluster {
    let now = now_ms();
    let ttl = Ttl::from_secs(2 * 3600);
    Cluster {
        id: ClusterId::generate(),
        name: ClusterName::parse(name).expect("test cluster names are valid"),
        owner: "token:test".into(),
        team: None,
        phase: Phase::Pending,
        message: String::new(),
        size: "small".into(),
        kubernetes_version: "1.34".into(),
        ttl,
        idle_timeout: None,
        host: "local".into(),
        labels: Labels::default(),
        created_at: now,
        ready_at: None,
        expires_at: now + ttl.as_span(),
        last_activity_at: now,
        deleted_at: None,
        endpoint: None,
        delete_reason: None,
        attempts: 0,
        next_reconcile_at: now,
        cleaned_up: false,
        version: 1,
    }
}

/// An event of `kind` now (whole milliseconds).
pub fn mk_event(kind: &str) -> NewEvent {
    NewEvent {
        at: now_ms(),
        ..NewEvent::new(kind, format!("{kind} for a test"))
    }
}

/// An active token called `name`, created now, with a hash derived from `name`.
pub fn mk_token(name: &str) -> ApiToken {
    ApiToken {
        id: format!("t-{name}"),
        name: name.into(),
        hash: format!("hash-of-{name}"),
        role: "ci".into(),
        team: None,
        created_at: now_ms(),
        expires_at: None,
        revoked_at: None,
    }
}

// === helpers ===

async fn insert(store: &Arc<dyn Store>, c: &Cluster) {
    store
        .insert_cluster(c, &mk_event("created"), None)
        .await
        .unwrap_or_else(|e| panic!("inserting cluster {} failed: {e}", c.name));
}

async fn get(store: &Arc<dyn Store>, id: &ClusterId) -> Cluster {
    let found = find(store, id).await;
    found.unwrap_or_else(|| panic!("cluster {id} should exist"))
}

async fn find(store: &Arc<dyn Store>, id: &ClusterId) -> Option<Cluster> {
    let r = store.get_cluster(id).await;
    r.unwrap_or_else(|e| panic!("reading cluster {id} failed: {e}"))
}

async fn events(store: &Arc<dyn Store>, id: &ClusterId) -> Vec<ClusterEvent> {
    let r = store.list_events(id).await;
    r.unwrap_or_else(|e| panic!("listing events of {id} failed: {e}"))
}

fn as_new_event(e: &ClusterEvent) -> NewEvent {
    NewEvent {
        at: e.at,
        kind: e.kind.clone(),
        from_phase: e.from_phase,
        to_phase: e.to_phase,
        reason: e.reason.clone(),
        message: e.message.clone(),
    }
}

fn expect_conflict<T: Debug>(r: Result<T, StoreError>, why: &str) {
    match r {
        Err(StoreError::Conflict(_)) => {}
        other => panic!("{why}: expected Conflict, got {other:?}"),
    }
}

fn ids(cs: &[Cluster]) -> Vec<String> {
    cs.iter().map(|c| c.id.to_string()).collect()
}

fn filter() -> ClusterFilter {
    ClusterFilter {
        limit: 500,
        ..ClusterFilter::default()
    }
}

fn selector(items: &[&str]) -> LabelSelector {
    LabelSelector::parse(items.iter().copied()).expect("test selectors are valid")
}

// === cases ===

async fn insert_then_get_round_trips_every_field(store: Arc<dyn Store>) {
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

async fn live_names_are_unique_until_the_holder_is_deleted(store: Arc<dyn Store>) {
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

async fn stale_version_update_is_refused_and_changes_nothing(store: Arc<dyn Store>) {
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

async fn updating_a_missing_cluster_is_not_found(store: Arc<dyn Store>) {
    let r = store
        .update_cluster(&mk_cluster("ghost"), &[mk_event("updated")])
        .await;
    assert!(
        matches!(r, Err(StoreError::NotFound)),
        "update of a missing cluster: {r:?}"
    );
}

async fn events_are_recorded_in_order_with_inserts_and_updates(store: Arc<dyn Store>) {
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

async fn list_filters_by_phase_owner_and_labels(store: Arc<dyn Store>) {
    let alice = |name: &str, phase, labels: &[(&str, &str)]| Cluster {
        owner: "token:alice".into(),
        phase,
        labels: mk_labels(labels),
        ..mk_cluster(name)
    };
    let a = alice("a", Phase::Ready, &[("repo", "web"), ("pr", "1")]);
    let b = alice("b", Phase::Pending, &[("repo", "web"), ("pr", "2")]);
    let c = Cluster {
        owner: "token:bob".into(),
        ..alice(
            "c",
            Phase::Ready,
            &[("repo", "api"), ("pr", "1"), ("example.com/tier", "x")],
        )
    };
    let d = Cluster {
        owner: "token:bob".into(),
        ..alice("d", Phase::Deleted, &[])
    };
    for x in [&a, &b, &c, &d] {
        insert(&store, x).await;
    }
    let names = |page: super::Page<Cluster>| {
        let mut n: Vec<_> = page.items.iter().map(|c| c.name.to_string()).collect();
        n.sort();
        n
    };
    let cases: [(ClusterFilter, &[&str], &str); 7] = [
        (
            filter(),
            &["a", "b", "c", "d"],
            "no filter lists every cluster, Deleted included",
        ),
        (
            ClusterFilter {
                phase: Some(Phase::Ready),
                ..filter()
            },
            &["a", "c"],
            "phase",
        ),
        (
            ClusterFilter {
                owner: Some("token:alice".into()),
                ..filter()
            },
            &["a", "b"],
            "owner",
        ),
        (
            ClusterFilter {
                labels: selector(&["repo=web"]),
                ..filter()
            },
            &["a", "b"],
            "one label",
        ),
        (
            ClusterFilter {
                labels: selector(&["repo=web", "pr=1"]),
                ..filter()
            },
            &["a"],
            "two labels",
        ),
        (
            ClusterFilter {
                labels: selector(&["example.com/tier=x"]),
                ..filter()
            },
            &["c"],
            "prefixed key",
        ),
        (
            ClusterFilter {
                phase: Some(Phase::Ready),
                owner: Some("token:bob".into()),
                labels: selector(&["pr=2"]),
                ..filter()
            },
            &[],
            "all filters together, nothing matches",
        ),
    ];
    for (f, want, why) in cases {
        let page = store
            .list_clusters(&f)
            .await
            .unwrap_or_else(|e| panic!("{why}: {e}"));
        assert_eq!(page.next, None, "{why}: a short list has no next page");
        assert_eq!(names(page), want, "{why}");
    }
}

async fn pagination_walks_three_pages_without_duplicates_or_gaps(store: Arc<dyn Store>) {
    // Arrange: eight clusters, several sharing a creation millisecond so `id` breaks ties.
    let base = now_ms();
    let mut all = Vec::new();
    for i in 0..8_i64 {
        let c = Cluster {
            created_at: secs_after(base, i / 3),
            ..mk_cluster(&format!("p{i}"))
        };
        insert(&store, &c).await;
        all.push(c);
    }
    all.sort_by(|x, y| (x.created_at, x.id.as_str()).cmp(&(y.created_at, y.id.as_str())));

    // Act
    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    let mut after: Option<Cursor> = None;
    loop {
        let f = ClusterFilter {
            limit: 3,
            after: after.clone(),
            ..ClusterFilter::default()
        };
        let page = store.list_clusters(&f).await.expect("list page");
        sizes.push(page.items.len());
        seen.extend(page.items);
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
        assert!(
            sizes.len() <= 3,
            "eight items in pages of three take three pages"
        );
    }

    // Assert
    assert_eq!(sizes, [3, 3, 2], "page sizes");
    assert_eq!(
        ids(&seen),
        ids(&all),
        "pages cover every cluster once, in (created_at, id) order"
    );
    let f = ClusterFilter {
        limit: 4,
        ..ClusterFilter::default()
    };
    let first = store.list_clusters(&f).await.expect("list");
    let f = ClusterFilter {
        after: first.next,
        ..f
    };
    let last = store.list_clusters(&f).await.expect("list");
    assert_eq!(last.items.len(), 4, "second page of four");
    assert_eq!(
        last.next, None,
        "a page that ends exactly at the end has no next cursor"
    );
    let everything = store
        .list_clusters(&ClusterFilter::default())
        .await
        .expect("list");
    assert_eq!(
        everything.items.len(),
        8,
        "limit 0 means the default page size"
    );
}

async fn due_clusters_respects_next_reconcile_at_and_skips_ended(store: Arc<dyn Store>) {
    let now = now_ms();
    let at = |name: &str, secs: i64, phase: Phase, cleaned_up: bool| Cluster {
        next_reconcile_at: secs_after(now, secs),
        phase,
        cleaned_up,
        ..mk_cluster(name)
    };
    let b = at("b", -20, Phase::Ready, false);
    let a = at("a", -10, Phase::Pending, false);
    let f = at("failed-dirty", -5, Phase::Failed, false);
    let g = at("exactly-now", 0, Phase::Deleting, false);
    let later = at("later", 60, Phase::Ready, false);
    let deleted = at("deleted", -30, Phase::Deleted, false);
    let cleaned = at("failed-clean", -30, Phase::Failed, true);
    for c in [&a, &b, &f, &g, &later, &deleted, &cleaned] {
        insert(&store, c).await;
    }

    let due = store.due_clusters(now, 10).await.expect("due clusters");
    assert_eq!(
        ids(&due),
        ids(&[b.clone(), a.clone(), f, g]),
        "due = next_reconcile_at <= now, most overdue first, without Deleted or cleaned-up Failed"
    );
    let two = store.due_clusters(now, 2).await.expect("due clusters");
    assert_eq!(ids(&two), ids(&[b, a]), "at most `limit`, the most overdue");
}

async fn idempotency_records_round_trip_and_keys_are_unique_per_principal(store: Arc<dyn Store>) {
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

async fn purge_ended_removes_only_old_ended_clusters_with_their_events(store: Arc<dyn Store>) {
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

async fn tokens_insert_look_up_list_and_revoke(store: Arc<dyn Store>) {
    let now = now_ms();
    let older = ApiToken {
        created_at: secs_after(now, -7200),
        ..mk_token("older")
    };
    let newer = ApiToken {
        team: Some("web".into()),
        role: "developer".into(),
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
}

async fn concurrent_updates_from_the_same_version_have_exactly_one_winner(store: Arc<dyn Store>) {
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
