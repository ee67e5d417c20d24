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

use super::{ClusterFilter, Store, StoreError};

mod audit;
mod claims;
mod clusters;
mod listing;
mod notifications;
mod pull_requests;
mod records;

use self::audit::*;
use self::claims::*;
use self::clusters::*;
use self::listing::*;
use self::notifications::*;
use self::pull_requests::*;
use self::records::*;
use crate::domain::{
    ApiToken, Cluster, ClusterEvent, ClusterId, ClusterName, LabelSelector, Labels, NewEvent,
    Phase, Role, Timestamp, Ttl,
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
    case!(gateway_credentials_insert_look_up_revoke_and_go_with_their_cluster);
    case!(concurrent_updates_from_the_same_version_have_exactly_one_winner);
    case!(the_installation_id_is_made_once_and_stays);
    case!(deliveries_are_taken_once_and_pull_requests_wait_until_carried_out);
    case!(the_status_outbox_keeps_only_the_latest_state_until_the_provider_takes_it);
    case!(audit_records_append_list_filter_page_and_purge);
    case!(census_counts_clusters_by_phase_and_finds_the_longest_waiting);
    case!(the_notification_outbox_queues_an_alert_once_per_target_and_window);
    case!(the_notifier_cursor_starts_at_the_newest_event_and_finds_failures_after_it);
    case!(the_notifier_cursor_misses_no_event_of_concurrent_writers);
    case!(a_claim_is_held_by_one_holder_until_released_or_expired);
    case!(of_concurrent_claims_on_a_cluster_exactly_one_wins);
    case!(due_clusters_leave_out_what_another_holder_claims);
}

async fn the_installation_id_is_made_once_and_stays(store: Arc<dyn Store>) {
    let first = store.installation_id().await.expect("an installation id");
    assert_eq!(first.len(), 16, "{first}");
    assert!(first.bytes().all(|b| b.is_ascii_hexdigit()), "{first}");
    assert_eq!(
        store.installation_id().await.expect("an installation id"),
        first
    );
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
        kubernetes_version: crate::controlplane::pinned_kubernetes_minor(),
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
        request_id: Some("req-test".into()),
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
        role: Role::Ci,
        team: None,
        created_at: now_ms(),
        expires_at: None,
        revoked_at: None,
        last_used_at: None,
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
