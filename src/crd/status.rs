//! Pure pieces of the controller: what a VirtualCluster's status says for what vcm observed,
//! which spec changes the cluster needs, and when its kubeconfig is renewed. No I/O, so every
//! rule here is unit-tested.

use std::collections::BTreeMap;
use std::time::Duration;

use super::types::{Condition, VirtualClusterSpec, VirtualClusterStatus};
use crate::domain::{Cluster, DeleteReason, Phase, Timestamp, Ttl};
use crate::service::ClusterUpdate;

/// The label linking a vcm cluster to the object that asked for it (its uid): a restarted or
/// repeated reconcile finds the cluster by it and never creates a second one.
pub const UID_LABEL: &str = "vcm.dev/virtualcluster-uid";
/// The object's namespace, on the cluster (for people reading `vcm cluster get`).
pub const NAMESPACE_LABEL: &str = "vcm.dev/virtualcluster-namespace";
/// The object's name, on the cluster.
pub const NAME_LABEL: &str = "vcm.dev/virtualcluster-name";

/// A kubeconfig is renewed once this fraction of its lifetime has passed (a 1 h token at 40
/// min), so a consumer that read the Secret just before renewal still has a third left.
const RENEW_AFTER_FRACTION: f64 = 2.0 / 3.0;
/// How often a cluster that is still being made is looked at.
const PROVISIONING_POLL: Duration = Duration::from_secs(2);
/// How often a Ready cluster is looked at (expiry, idleness and REST deletes show up this late).
const READY_POLL: Duration = Duration::from_secs(30);
/// Never sooner than this, so a token about to end does not spin the controller.
const MIN_REQUEUE: Duration = Duration::from_secs(1);

/// What the controller found for one object.
#[derive(Debug, Clone, Copy)]
pub enum Observed<'a> {
    /// Its namespace maps to no team: no cluster is made.
    Unmapped(&'a str),
    /// vcm refused to create the cluster (policy, quota, invalid spec): code and message.
    Refused(&'a str, &'a str),
    /// The cluster this object had is no longer in vcm (deleted and purged).
    Gone(&'a str),
    /// Its cluster as vcm has it.
    Cluster(&'a Cluster),
}

/// The kubeconfig Secret as last written: when its token was issued and when it expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Issued {
    /// When the token was minted.
    pub at: Timestamp,
    /// When it stops working.
    pub expires: Timestamp,
}

/// The status for `observed`; `note` (a refused spec change) replaces the message; conditions
/// keep their transition time from `previous` while their status holds.
pub fn status_for(
    observed: Observed<'_>,
    generation: Option<i64>,
    previous: Option<&VirtualClusterStatus>,
    kubeconfig: Option<Issued>,
    note: Option<&str>,
    now: Timestamp,
) -> VirtualClusterStatus {
    let (phase, reason, ready, stalled, message) = match observed {
        Observed::Unmapped(ns) => (
            "Refused",
            "NamespaceNotMapped",
            false,
            true,
            format!(
                "namespace {ns} is not mapped to a vcm team, so no cluster is made; an operator \
                 adds it under [crd.namespaces] in vcm's configuration (`{ns} = \"<team>\"`)"
            ),
        ),
        Observed::Refused(code, msg) => (
            "Refused",
            "CreateRefused",
            false,
            true,
            format!("vcm refused to create the cluster ({code}): {msg}"),
        ),
        Observed::Gone(id) => (
            "Deleted",
            "ClusterGone",
            false,
            true,
            format!(
                "cluster {id} no longer exists in vcm; it is not recreated: delete this object \
                 (or apply it under a new name) for a new cluster"
            ),
        ),
        Observed::Cluster(c) => cluster_phase(c, kubeconfig.is_some()),
    };
    let message = note.map_or(message, str::to_owned);
    let cluster = match observed {
        Observed::Cluster(c) => Some(c),
        _ => None,
    };
    let keep_id = match observed {
        Observed::Gone(id) => Some(id.to_owned()),
        _ => previous.and_then(|p| p.cluster_id.clone()),
    };
    let ready_status = if ready { "True" } else { "False" };
    let mut conditions = vec![condition(
        "Ready",
        ready_status,
        reason,
        &message,
        generation,
        previous,
        now,
    )];
    if stalled {
        conditions.push(condition(
            "Stalled", "True", reason, &message, generation, previous, now,
        ));
    }
    VirtualClusterStatus {
        phase: Some(phase.to_owned()),
        message: Some(message),
        cluster_id: cluster.map(|c| c.id.to_string()).or(keep_id),
        endpoint: cluster
            .filter(|c| c.phase.is_live())
            .and_then(|c| c.endpoint.clone()),
        size: cluster.map(|c| c.size.clone()),
        kubernetes_version: cluster.map(|c| c.kubernetes_version.clone()),
        expires_at: cluster.map(|c| rfc3339(c.expires_at)),
        kubeconfig_expires_at: kubeconfig
            .filter(|_| cluster.is_some_and(|c| c.phase == Phase::Ready))
            .map(|k| rfc3339(k.expires)),
        observed_generation: generation,
        conditions,
    }
}

/// Phase, condition reason, ready, stalled and message for a cluster vcm has.
fn cluster_phase(
    c: &Cluster,
    kubeconfig_written: bool,
) -> (&'static str, &'static str, bool, bool, String) {
    let ended = |why: String| {
        format!(
            "{why}; it is not recreated: delete this object (or apply it under a new name) for a new cluster"
        )
    };
    match (c.phase, c.delete_reason) {
        (Phase::Pending, _) => ("Pending", "Pending", false, false, c.message.clone()),
        (Phase::Provisioning, _) => (
            "Provisioning",
            "Provisioning",
            false,
            false,
            c.message.clone(),
        ),
        (Phase::Ready, _) if kubeconfig_written => {
            ("Ready", "Ready", true, false, c.message.clone())
        }
        (Phase::Ready, _) => (
            "Ready",
            "KubeconfigPending",
            false,
            false,
            "the cluster is ready; writing its kubeconfig Secret".to_owned(),
        ),
        (Phase::Failed, _) => ("Failed", "Failed", false, true, c.message.clone()),
        (Phase::Deleting | Phase::Deleted, Some(DeleteReason::Expired)) => (
            "Expired",
            "Expired",
            false,
            true,
            ended(format!(
                "the cluster's TTL ({}) ended at {}",
                c.ttl,
                rfc3339(c.expires_at)
            )),
        ),
        (Phase::Deleting | Phase::Deleted, Some(DeleteReason::Idle)) => {
            let idle = c
                .idle_timeout
                .map_or_else(|| "its idle timeout".to_owned(), |t| t.to_string());
            (
                "Expired",
                "Idle",
                false,
                true,
                ended(format!(
                    "the cluster was deleted after {idle} without activity"
                )),
            )
        }
        (Phase::Deleting, _) => ("Deleting", "Deleting", false, false, c.message.clone()),
        (Phase::Deleted, reason) => (
            "Deleted",
            "Deleted",
            false,
            true,
            ended(format!(
                "the cluster was deleted outside this object ({})",
                reason.map_or("unknown reason", DeleteReason::as_str)
            )),
        ),
    }
}

fn condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    previous: Option<&VirtualClusterStatus>,
    now: Timestamp,
) -> Condition {
    let before = previous
        .into_iter()
        .flat_map(|p| &p.conditions)
        .find(|c| c.type_ == type_ && c.status == status);
    Condition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: reason.to_owned(),
        message: message.to_owned(),
        last_transition_time: before
            .map_or_else(|| rfc3339(now), |c| c.last_transition_time.clone()),
        observed_generation: generation,
    }
}

/// Whether two statuses say the same thing (transition times aside), so an unchanged one is not
/// written again.
pub fn same(a: &VirtualClusterStatus, b: &VirtualClusterStatus) -> bool {
    let strip = |s: &VirtualClusterStatus| {
        let mut s = s.clone();
        for c in &mut s.conditions {
            c.last_transition_time.clear();
        }
        s
    };
    strip(a) == strip(b)
}

/// The labels a cluster of this object carries: the spec's, plus the links to the object.
pub fn cluster_labels(
    spec: &VirtualClusterSpec,
    uid: &str,
    namespace: &str,
    name: &str,
) -> BTreeMap<String, String> {
    let mut labels = spec.labels.clone().unwrap_or_default();
    labels.insert(UID_LABEL.into(), uid.into());
    labels.insert(NAMESPACE_LABEL.into(), namespace.into());
    // NB: an object name may be 253 characters; a label value at most 63, ending in an
    // alphanumeric. The uid label is the link; this one is for people.
    let short: String = name.chars().take(63).collect();
    labels.insert(
        NAME_LABEL.into(),
        short
            .trim_end_matches(|c: char| !c.is_ascii_alphanumeric())
            .to_owned(),
    );
    labels
}

/// The update that brings `cluster` in line with `spec` (`None`: nothing to change), or the
/// immutable fields the spec changed (which the API server's rules normally refuse first).
pub fn update_for(
    spec: &VirtualClusterSpec,
    labels: &BTreeMap<String, String>,
    cluster: &Cluster,
) -> Result<Option<ClusterUpdate>, Vec<&'static str>> {
    let mut immutable = vec![];
    if spec.size.as_ref().is_some_and(|s| *s != cluster.size) {
        immutable.push("size");
    }
    if spec
        .kubernetes_version
        .as_ref()
        .is_some_and(|v| *v != cluster.kubernetes_version)
    {
        immutable.push("kubernetesVersion");
    }
    if !immutable.is_empty() {
        return Err(immutable);
    }
    // NB: a value that does not parse is sent as it is, so the service's 422 message (the one
    // REST gives) reaches the status.
    let differs = |want: &Option<String>, have: Option<Ttl>| {
        want.as_deref()
            .filter(|w| Ttl::parse("ttl", w).ok() != have)
            .map(str::to_owned)
    };
    let update = ClusterUpdate {
        ttl: differs(&spec.ttl, Some(cluster.ttl)),
        idle_timeout: differs(&spec.idle_timeout, cluster.idle_timeout),
        labels: (labels != cluster.labels.as_map()).then(|| labels.clone()),
        immutable: vec![],
    };
    let nothing = update.ttl.is_none() && update.idle_timeout.is_none() && update.labels.is_none();
    Ok((!nothing).then_some(update))
}

/// When a kubeconfig issued at `issued.at` is renewed: two thirds into its life; `None` when
/// it already lasts as long as its cluster (`cluster_expires`), so a new token could not last
/// longer. NB: without that, a token capped by a cluster about to expire was re-minted every
/// few seconds until the end, each one ending at the same moment.
pub fn renew_at(issued: Issued, cluster_expires: Timestamp) -> Option<Timestamp> {
    // NB: the Secret keeps whole seconds, the cluster milliseconds.
    if issued.expires + jiff::SignedDuration::from_secs(1) >= cluster_expires {
        return None;
    }
    let life = issued.expires.duration_since(issued.at);
    let wait =
        jiff::SignedDuration::from_secs_f64(life.as_secs_f64().max(0.0) * RENEW_AFTER_FRACTION);
    Some(issued.at.saturating_add(wait).unwrap_or(issued.expires))
}

/// Whether the Secret needs a new kubeconfig now.
pub fn needs_kubeconfig(
    issued: Option<Issued>,
    cluster_expires: Timestamp,
    now: Timestamp,
) -> bool {
    issued.is_none_or(|i| renew_at(i, cluster_expires).is_some_and(|at| now >= at))
}

/// How soon to look at the object again (`None`: only when it changes), given when its
/// kubeconfig is due for renewal.
pub fn requeue_after(
    status: &VirtualClusterStatus,
    renewal: Option<Timestamp>,
    now: Timestamp,
) -> Option<Duration> {
    match status.phase.as_deref() {
        Some("Pending" | "Provisioning" | "Deleting") => Some(PROVISIONING_POLL),
        Some("Ready") => {
            let renew = renewal.map_or(READY_POLL, |at| {
                Duration::from_secs_f64(at.duration_since(now).as_secs_f64().max(0.0))
            });
            Some(renew.clamp(MIN_REQUEUE, READY_POLL))
        }
        // NB: an ended or refused object stays as it is until someone changes it (a change
        // triggers a reconcile by itself); a Failed cluster is cleaned up by vcm.
        _ => None,
    }
}

/// `2026-11-30T14:00:00Z`: whole seconds, as Kubernetes writes times.
pub fn rfc3339(t: Timestamp) -> String {
    Timestamp::from_second(t.as_second())
        .unwrap_or(t)
        .to_string()
}

#[cfg(test)]
#[path = "status_tests.rs"]
mod tests;
