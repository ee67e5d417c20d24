//! Contract cases: listing, filtering, pagination and what the reconciler finds due.

use std::sync::Arc;

use super::*;
use crate::domain::{Cluster, Phase};
use crate::store::{CensusGroup, ClusterFilter, Cursor, Store};

pub(super) async fn list_filters_by_phase_owner_and_labels(store: Arc<dyn Store>) {
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
    let names = |page: crate::store::Page<Cluster>| {
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

pub(super) async fn pagination_walks_three_pages_without_duplicates_or_gaps(store: Arc<dyn Store>) {
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

pub(super) async fn due_clusters_respects_next_reconcile_at_and_skips_ended(store: Arc<dyn Store>) {
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

    let due = store
        .due_clusters("me", now, 10)
        .await
        .expect("due clusters");
    assert_eq!(
        ids(&due),
        ids(&[f.clone(), g.clone(), b, a]),
        "due = next_reconcile_at <= now, teardown (Failed, Deleting) first, then most overdue \
         first, without Deleted or cleaned-up Failed"
    );
    let two = store
        .due_clusters("me", now, 2)
        .await
        .expect("due clusters");
    assert_eq!(
        ids(&two),
        ids(&[f, g]),
        "at most `limit`: a deletion is never crowded out by overdue health checks"
    );
}

pub(super) async fn census_counts_clusters_by_phase_and_finds_the_longest_waiting(
    store: Arc<dyn Store>,
) {
    let now = now_ms();
    let ready = |name: &str, size: &str| Cluster {
        phase: Phase::Ready,
        size: size.into(),
        ..mk_cluster(name)
    };
    let (a, b, c) = (
        ready("a", "small"),
        ready("b", "small"),
        ready("c", "large"),
    );
    // Pending since its creation, 100 s ago; another Pending one younger.
    let old = Cluster {
        created_at: secs_after(now, -100),
        ..mk_cluster("old")
    };
    let young = Cluster {
        created_at: secs_after(now, -10),
        ..mk_cluster("young")
    };
    let gone = Cluster {
        phase: Phase::Deleted,
        host: "eks-a".into(),
        ..mk_cluster("gone")
    };
    let moving = mk_cluster("moving");
    for x in [&a, &b, &c, &old, &young, &gone, &moving] {
        insert(&store, x).await;
    }
    // Provisioning since its phase event 30 s ago, though created now.
    let entered = secs_after(now, -30);
    let provisioning = Cluster {
        phase: Phase::Provisioning,
        ..moving.clone()
    };
    let event = NewEvent {
        at: entered,
        ..NewEvent::phase(Phase::Pending, Phase::Provisioning, None, "provisioning")
    };
    store
        .update_cluster(&provisioning, &[event])
        .await
        .expect("updating a cluster");

    let census = store.census().await.expect("a census");
    let version = a.kubernetes_version.clone();
    let group = |phase, host: &str, size: &str, count| CensusGroup {
        phase,
        host: host.into(),
        size: size.into(),
        version: version.clone(),
        count,
    };
    let mut groups = census.groups.clone();
    groups.sort_by(|x, y| {
        (x.phase.as_str(), &x.host, &x.size).cmp(&(y.phase.as_str(), &y.host, &y.size))
    });
    assert_eq!(
        groups,
        vec![
            group(Phase::Deleted, "eks-a", "small", 1),
            group(Phase::Pending, "local", "small", 2),
            group(Phase::Provisioning, "local", "small", 1),
            group(Phase::Ready, "local", "large", 1),
            group(Phase::Ready, "local", "small", 2),
        ],
        "clusters are counted by phase, host, size and version, ended ones included"
    );
    let mut waiting = census.waiting_since.clone();
    waiting.sort_by_key(|(p, _)| p.as_str());
    assert_eq!(
        waiting,
        vec![
            (Phase::Pending, old.created_at),
            (Phase::Provisioning, entered)
        ],
        "a waiting phase is dated by its oldest cluster's entry into it (its phase event, or \
         its creation), and a phase nobody is in is left out"
    );
    assert_eq!(census.status_backlog, 0, "no status report was wanted");
}
