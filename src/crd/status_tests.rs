//! The status table, spec changes and renewal timing.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use super::*;
use crate::store::conformance::mk_cluster;

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn mk_in(phase: Phase, reason: Option<DeleteReason>) -> Cluster {
    Cluster {
        phase,
        delete_reason: reason,
        endpoint: Some("https://127.0.0.1:6443".into()),
        message: "from vcm".into(),
        ..mk_cluster("c")
    }
}

fn ready_of(s: &VirtualClusterStatus) -> (&str, &str) {
    let c = s.conditions.iter().find(|c| c.type_ == "Ready").unwrap();
    (c.status.as_str(), c.reason.as_str())
}

#[test]
fn each_cluster_phase_maps_to_an_object_phase_and_a_ready_condition() {
    let now = at("2026-11-30T14:00:00Z");
    let issued = Some(Issued {
        at: now,
        expires: at("2026-11-30T15:00:00Z"),
    });
    // (phase, delete reason, kubeconfig written, object phase, Ready, reason, stalled, why)
    let table = [
        (
            Phase::Pending,
            None,
            false,
            "Pending",
            "False",
            "Pending",
            false,
            "accepted",
        ),
        (
            Phase::Provisioning,
            None,
            false,
            "Provisioning",
            "False",
            "Provisioning",
            false,
            "starting",
        ),
        (
            Phase::Ready,
            None,
            false,
            "Ready",
            "False",
            "KubeconfigPending",
            false,
            "no Secret yet: not Ready for consumers",
        ),
        (
            Phase::Ready,
            None,
            true,
            "Ready",
            "True",
            "Ready",
            false,
            "usable",
        ),
        (
            Phase::Failed,
            None,
            false,
            "Failed",
            "False",
            "Failed",
            true,
            "failed for good",
        ),
        (
            Phase::Deleting,
            Some(DeleteReason::Expired),
            false,
            "Expired",
            "False",
            "Expired",
            true,
            "TTL ended, still cleaning up",
        ),
        (
            Phase::Deleted,
            Some(DeleteReason::Expired),
            false,
            "Expired",
            "False",
            "Expired",
            true,
            "TTL ended",
        ),
        (
            Phase::Deleted,
            Some(DeleteReason::Idle),
            false,
            "Expired",
            "False",
            "Idle",
            true,
            "idle timeout",
        ),
        (
            Phase::Deleting,
            Some(DeleteReason::Requested),
            false,
            "Deleting",
            "False",
            "Deleting",
            false,
            "a delete in progress",
        ),
        (
            Phase::Deleted,
            Some(DeleteReason::Requested),
            false,
            "Deleted",
            "False",
            "Deleted",
            true,
            "deleted over REST",
        ),
    ];
    for (phase, reason, written, want, ready, why_reason, stalled, why) in table {
        let c = mk_in(phase, reason);
        let s = status_for(
            Observed::Cluster(&c),
            Some(3),
            None,
            issued.filter(|_| written),
            None,
            now,
        );
        assert_eq!(s.phase.as_deref(), Some(want), "{why}");
        assert_eq!(ready_of(&s), (ready, why_reason), "{why}");
        assert_eq!(
            s.conditions.iter().any(|c| c.type_ == "Stalled"),
            stalled,
            "{why}"
        );
        assert_eq!(s.observed_generation, Some(3), "{why}");
        assert_eq!(s.cluster_id.as_deref(), Some(c.id.as_str()), "{why}");
        assert_eq!(
            s.endpoint.is_some(),
            c.phase.is_live(),
            "{why}: endpoint only while live"
        );
    }
}

#[test]
fn an_ended_cluster_says_why_and_that_it_is_not_recreated() {
    let c = mk_in(Phase::Deleted, Some(DeleteReason::Expired));
    let s = status_for(
        Observed::Cluster(&c),
        Some(1),
        None,
        None,
        None,
        Timestamp::now(),
    );
    let msg = s.message.unwrap();
    assert!(msg.contains("TTL (2h) ended"), "{msg}");
    assert!(msg.contains("not recreated"), "{msg}");
    let gone = status_for(
        Observed::Gone("c-gone"),
        Some(1),
        None,
        None,
        None,
        Timestamp::now(),
    );
    assert_eq!(gone.phase.as_deref(), Some("Deleted"));
    assert_eq!(
        gone.cluster_id.as_deref(),
        Some("c-gone"),
        "the id stays: never created again"
    );
}

#[test]
fn an_unmapped_namespace_names_the_configuration_that_fixes_it() {
    let s = status_for(
        Observed::Unmapped("team-x"),
        Some(1),
        None,
        None,
        None,
        Timestamp::now(),
    );
    assert_eq!(s.phase.as_deref(), Some("Refused"));
    assert_eq!(ready_of(&s), ("False", "NamespaceNotMapped"));
    let msg = s.message.unwrap();
    assert!(
        msg.contains("[crd.namespaces]") && msg.contains("team-x"),
        "{msg}"
    );
    assert!(s.cluster_id.is_none());
}

#[test]
fn a_condition_keeps_its_transition_time_while_its_status_holds() {
    let c = mk_in(Phase::Provisioning, None);
    let first = status_for(
        Observed::Cluster(&c),
        Some(1),
        None,
        None,
        None,
        at("2026-11-30T14:00:00Z"),
    );
    let again = status_for(
        Observed::Cluster(&c),
        Some(1),
        Some(&first),
        None,
        None,
        at("2026-11-30T14:05:00Z"),
    );
    assert_eq!(
        again.conditions[0].last_transition_time,
        "2026-11-30T14:00:00Z"
    );
    assert!(same(&first, &again), "nothing new to write");
    let ready = mk_in(Phase::Ready, None);
    let issued = Issued {
        at: at("2026-11-30T14:06:00Z"),
        expires: at("2026-11-30T15:06:00Z"),
    };
    let then = status_for(
        Observed::Cluster(&ready),
        Some(1),
        Some(&again),
        Some(issued),
        None,
        at("2026-11-30T14:06:00Z"),
    );
    assert_eq!(
        then.conditions[0].last_transition_time,
        "2026-11-30T14:06:00Z"
    );
    assert!(!same(&again, &then));
}

#[test]
fn a_kubeconfig_is_renewed_two_thirds_into_its_life_and_the_object_requeued_for_then() {
    let issued = Issued {
        at: at("2026-11-30T14:00:00Z"),
        expires: at("2026-11-30T15:00:00Z"),
    };
    let cluster_ends = at("2026-11-30T16:00:00Z");
    let renewal = renew_at(issued, cluster_ends);
    assert_eq!(renewal, Some(at("2026-11-30T14:40:00Z")));
    assert!(!needs_kubeconfig(
        Some(issued),
        cluster_ends,
        at("2026-11-30T14:39:59Z")
    ));
    assert!(needs_kubeconfig(
        Some(issued),
        cluster_ends,
        at("2026-11-30T14:40:00Z")
    ));
    assert!(
        needs_kubeconfig(None, cluster_ends, at("2026-11-30T14:00:00Z")),
        "no Secret yet"
    );
    let ready = VirtualClusterStatus {
        phase: Some("Ready".into()),
        ..Default::default()
    };
    // Far from renewal: the periodic look (expiry, REST deletes) comes first.
    assert_eq!(
        requeue_after(&ready, renewal, at("2026-11-30T14:00:00Z")),
        Some(Duration::from_secs(30))
    );
    // Close to renewal: requeued for exactly then; past it, a second later at the soonest.
    assert_eq!(
        requeue_after(&ready, renewal, at("2026-11-30T14:39:50Z")),
        Some(Duration::from_secs(10))
    );
    assert_eq!(
        requeue_after(&ready, renewal, at("2026-11-30T14:41:00Z")),
        Some(Duration::from_secs(1))
    );
    let ended = VirtualClusterStatus {
        phase: Some("Expired".into()),
        ..Default::default()
    };
    assert_eq!(
        requeue_after(&ended, None, at("2026-11-30T14:00:00Z")),
        None,
        "ended: wait for changes"
    );
}

#[test]
fn a_kubeconfig_that_lasts_as_long_as_its_cluster_is_not_renewed() {
    // The cluster ends at 14:00:25.636; the token was capped to it (the Secret keeps seconds).
    let issued = Issued {
        at: at("2026-11-30T14:00:10Z"),
        expires: at("2026-11-30T14:00:25Z"),
    };
    let cluster_ends = at("2026-11-30T14:00:25.636Z");
    assert_eq!(renew_at(issued, cluster_ends), None);
    assert!(!needs_kubeconfig(
        Some(issued),
        cluster_ends,
        at("2026-11-30T14:00:24Z")
    ));
    // A TTL extended since: a new token can last longer, so it is renewed in time.
    let extended = at("2026-11-30T15:00:00Z");
    assert!(needs_kubeconfig(
        Some(issued),
        extended,
        at("2026-11-30T14:00:24Z")
    ));
}

#[test]
fn only_changed_mutable_fields_become_an_update_and_immutable_ones_are_named() {
    let c = mk_in(Phase::Ready, None);
    let spec = VirtualClusterSpec {
        kubeconfig_secret_name: "kc".into(),
        ..Default::default()
    };
    let labels = cluster_labels(&spec, "uid-1", "ns", "name");
    let c = Cluster {
        labels: crate::domain::Labels::parse(labels.clone()).unwrap(),
        ..c
    };
    assert_eq!(
        update_for(&spec, &labels, &c),
        Ok(None),
        "unchanged: no update"
    );
    let same_ttl = VirtualClusterSpec {
        ttl: Some("120m".into()),
        ..spec.clone()
    };
    assert_eq!(
        update_for(&same_ttl, &labels, &c),
        Ok(None),
        "120m is the 2h it has"
    );
    let longer = VirtualClusterSpec {
        ttl: Some("3h".into()),
        ..spec.clone()
    };
    let update = update_for(&longer, &labels, &c).unwrap().unwrap();
    assert_eq!(
        (update.ttl.as_deref(), update.labels.is_none()),
        (Some("3h"), true)
    );
    let relabelled = VirtualClusterSpec {
        labels: Some(BTreeMap::from([("repo".to_owned(), "web".to_owned())])),
        ..spec.clone()
    };
    let new_labels = cluster_labels(&relabelled, "uid-1", "ns", "name");
    let update = update_for(&relabelled, &new_labels, &c).unwrap().unwrap();
    assert_eq!(
        update.labels.unwrap().get(UID_LABEL).map(String::as_str),
        Some("uid-1"),
        "the link stays"
    );
    let bigger = VirtualClusterSpec {
        size: Some("large".into()),
        ..spec
    };
    assert_eq!(update_for(&bigger, &labels, &c), Err(vec!["size"]));
}

#[test]
fn a_long_object_name_still_makes_valid_cluster_labels() {
    let spec = VirtualClusterSpec {
        kubeconfig_secret_name: "kc".into(),
        ..Default::default()
    };
    // 62 characters then a dot: cut at 63, the label would end in '.'.
    let name = format!("{}.{}", "a".repeat(62), "b".repeat(100));
    let labels = cluster_labels(
        &spec,
        "0b7f6a3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b",
        "ci-web",
        &name,
    );
    assert_eq!(labels[NAME_LABEL], "a".repeat(62));
    crate::domain::Labels::parse(labels).expect("vcm accepts the labels");
}
