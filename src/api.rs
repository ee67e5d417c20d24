//! The /v1 wire types, shared by the HTTP handlers, the typed client and the CLI. Requests deny
//! unknown fields (a typo is a 422, never silently ignored); the cluster resource is flat so
//! `jq .phase` works.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::{Cluster, ClusterEvent};

/// `POST /v1/clusters` body. Every field is optional; defaults come from configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateClusterRequest {
    /// DNS-1123 label, at most 40 characters, unique among live clusters. Default: the id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Size profile (`small`, `medium`, `large` by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    /// Kubernetes minor version, e.g. `"1.36"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes_version: Option<String>,
    /// Lifetime, e.g. `"2h"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
    /// Delete after this long without activity, e.g. `"30m"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<String>,
    /// Host cluster to place it on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Place it on a host whose labels include all of these (instead of naming `host`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_selector: Option<BTreeMap<String, String>>,
    /// Labels (Kubernetes label syntax).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
}

/// `PUT /v1/clusters/{id}` body: what it leaves out stays as it is.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateClusterRequest {
    /// New lifetime, counted from creation (moves `expires_at`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
    /// New idle timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<String>,
    /// Replaces the labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// Immutable: present only so the error can say so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    /// Immutable: present only so the error can say so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes_version: Option<String>,
    /// Immutable: present only so the error can say so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Immutable: present only so the error can say so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

impl From<CreateClusterRequest> for crate::service::ClusterSpec {
    fn from(r: CreateClusterRequest) -> Self {
        Self {
            name: r.name,
            size: r.size,
            kubernetes_version: r.kubernetes_version,
            ttl: r.ttl,
            idle_timeout: r.idle_timeout,
            host: r.host,
            host_selector: r.host_selector,
            labels: r.labels,
        }
    }
}

impl From<UpdateClusterRequest> for crate::service::ClusterUpdate {
    fn from(r: UpdateClusterRequest) -> Self {
        let immutable = [
            ("size", r.size.is_some()),
            ("kubernetes_version", r.kubernetes_version.is_some()),
            ("name", r.name.is_some()),
            ("host", r.host.is_some()),
        ]
        .into_iter()
        .filter_map(|(field, given)| given.then_some(field))
        .collect();
        Self {
            ttl: r.ttl,
            idle_timeout: r.idle_timeout,
            labels: r.labels,
            immutable,
        }
    }
}

/// `POST /v1/clusters/{id}/kubeconfig` body.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KubeconfigRequest {
    /// Token lifetime (default 1h); never beyond the cluster's expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
}

/// The cluster resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ClusterView {
    /// Generated id (`c-…`).
    pub id: String,
    /// Name, unique among live clusters.
    pub name: String,
    /// Creating principal (`token:<name>`).
    pub owner: String,
    /// Owner's team.
    pub team: Option<String>,
    /// `Pending`, `Provisioning`, `Ready`, `Deleting`, `Deleted` or `Failed`.
    pub phase: String,
    /// Latest step or failure cause, for people.
    pub message: String,
    /// Size profile.
    pub size: String,
    /// Kubernetes minor version.
    pub kubernetes_version: String,
    /// Lifetime.
    pub ttl: String,
    /// Idle timeout.
    pub idle_timeout: Option<String>,
    /// Host cluster.
    pub host: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub ready_at: Option<String>,
    /// RFC 3339.
    pub expires_at: String,
    /// RFC 3339.
    pub last_activity_at: String,
    /// RFC 3339.
    pub deleted_at: Option<String>,
    /// API server URL.
    pub endpoint: Option<String>,
    /// Why it is being (or was) deleted.
    #[serde(default)]
    pub delete_reason: Option<String>,
}

impl From<&Cluster> for ClusterView {
    fn from(c: &Cluster) -> Self {
        let ts = |t: &crate::domain::Timestamp| t.to_string();
        Self {
            id: c.id.to_string(),
            name: c.name.to_string(),
            owner: c.owner.clone(),
            team: c.team.clone(),
            phase: c.phase.to_string(),
            message: c.message.clone(),
            size: c.size.clone(),
            kubernetes_version: c.kubernetes_version.clone(),
            ttl: c.ttl.to_string(),
            idle_timeout: c.idle_timeout.map(|t| t.to_string()),
            host: c.host.clone(),
            labels: c.labels.as_map().clone(),
            created_at: ts(&c.created_at),
            ready_at: c.ready_at.as_ref().map(ts),
            expires_at: ts(&c.expires_at),
            last_activity_at: ts(&c.last_activity_at),
            deleted_at: c.deleted_at.as_ref().map(ts),
            endpoint: c.endpoint.clone(),
            delete_reason: c.delete_reason.map(|r| r.as_str().to_owned()),
        }
    }
}

/// [`ClusterView`]'s JSON written straight from a borrowed [`Cluster`]: the same fields in the
/// same order with the same text (each through the same `Display`), without building the view's
/// dozen owned strings first. The hot read paths (`GET /v1/clusters/{id}`, the list) answer
/// with it; a test holds the two byte for byte.
#[derive(Debug, Clone, Copy)]
pub struct ClusterJson<'a>(pub &'a Cluster);

/// Serializes a `Display` value as a JSON string, formatted into the output (no `String`).
struct Text<'a, T>(&'a T);

impl<T: std::fmt::Display> Serialize for Text<'_, T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self.0)
    }
}

impl Serialize for ClusterJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;

        let c = self.0;
        let mut v = s.serialize_struct("ClusterView", 19)?;
        v.serialize_field("id", c.id.as_str())?;
        v.serialize_field("name", c.name.as_str())?;
        v.serialize_field("owner", &c.owner)?;
        v.serialize_field("team", &c.team)?;
        v.serialize_field("phase", c.phase.as_str())?;
        v.serialize_field("message", &c.message)?;
        v.serialize_field("size", &c.size)?;
        v.serialize_field("kubernetes_version", &c.kubernetes_version)?;
        v.serialize_field("ttl", &Text(&c.ttl))?;
        v.serialize_field("idle_timeout", &c.idle_timeout.as_ref().map(Text))?;
        v.serialize_field("host", &c.host)?;
        v.serialize_field("labels", c.labels.as_map())?;
        v.serialize_field("created_at", &Rfc3339(c.created_at))?;
        v.serialize_field("ready_at", &c.ready_at.map(Rfc3339))?;
        v.serialize_field("expires_at", &Rfc3339(c.expires_at))?;
        v.serialize_field("last_activity_at", &Rfc3339(c.last_activity_at))?;
        v.serialize_field("deleted_at", &c.deleted_at.map(Rfc3339))?;
        v.serialize_field("endpoint", &c.endpoint)?;
        v.serialize_field("delete_reason", &c.delete_reason.map(|r| r.as_str()))?;
        v.end()
    }
}

/// A timestamp as its `Display` text (`2026-11-25T09:04:41.459Z`: RFC 3339, UTC, the fraction
/// without trailing zeros). Years 1970 to 9999 are written here, directly; others go through
/// jiff. jiff's printer is general (any precision, any offset) and took a tenth of a list
/// page's time; a test compares the two across the range.
struct Rfc3339(crate::domain::Timestamp);

/// The last second of year 9999.
const MAX_FAST_SECOND: i64 = 253_402_300_799;

impl Rfc3339 {
    /// The text into `buf`, when the timestamp is in the fast range.
    fn write(&self, buf: &mut [u8; 30]) -> Option<usize> {
        let secs = self.0.as_second();
        let mut nanos = i64::from(self.0.subsec_nanosecond());
        // NB: just before the epoch, `as_second` is 0 and the fraction negative.
        if !(0..=MAX_FAST_SECOND).contains(&secs) || nanos < 0 {
            return None;
        }
        let (days, rem) = (secs / 86_400, secs % 86_400);
        let (year, month, day) = civil_from_days(days);
        let mut at = 0;
        let mut put = |n: i64, width: u32, sep: u8| {
            for i in (0..width).rev() {
                buf[at] = b'0' + (n / 10_i64.pow(i) % 10) as u8;
                at += 1;
            }
            buf[at] = sep;
            at += 1;
        };
        put(year, 4, b'-');
        put(month, 2, b'-');
        put(day, 2, b'T');
        put(rem / 3600, 2, b':');
        put(rem / 60 % 60, 2, b':');
        put(rem % 60, 2, b'.');
        if nanos == 0 {
            at -= 1; // no fraction: drop the '.'
        } else {
            let mut digits = 9;
            while nanos % 10 == 0 {
                nanos /= 10;
                digits -= 1;
            }
            for i in (0..digits).rev() {
                buf[at] = b'0' + (nanos / 10_i64.pow(i) % 10) as u8;
                at += 1;
            }
        }
        buf[at] = b'Z';
        Some(at + 1)
    }
}

/// (year, month, day) of a day count since 1970-01-01, `days >= 0` (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

impl Serialize for Rfc3339 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; 30];
        match self.write(&mut buf) {
            // The text is ASCII digits and separators.
            Some(n) => s.serialize_str(std::str::from_utf8(&buf[..n]).unwrap_or_default()),
            None => s.collect_str(&self.0),
        }
    }
}

/// [`ClusterList`]'s JSON written from borrowed clusters (see [`ClusterJson`]).
#[derive(Debug, Clone, Copy)]
pub struct ClusterListJson<'a> {
    /// The clusters.
    pub items: &'a [Cluster],
    /// As in [`ClusterList::next_cursor`].
    pub next_cursor: Option<&'a str>,
}

impl Serialize for ClusterListJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;

        struct Items<'a>(&'a [Cluster]);
        impl Serialize for Items<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_seq(self.0.iter().map(ClusterJson))
            }
        }

        let mut v = s.serialize_struct("ClusterList", 2)?;
        v.serialize_field("items", &Items(self.items))?;
        v.serialize_field("next_cursor", &self.next_cursor)?;
        v.end()
    }
}

/// A page of clusters.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ClusterList {
    /// The clusters.
    pub items: Vec<ClusterView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Result of a bulk delete.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeletedClusters {
    /// Ids of the clusters now being deleted.
    pub ids: Vec<String>,
}

/// A lifecycle event.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EventView {
    /// Monotonic id.
    pub id: i64,
    /// RFC 3339.
    pub at: String,
    /// `created`, `phase_changed`, `delete_requested`, `updated`, `kubeconfig_issued`…
    pub kind: String,
    /// Phase before.
    pub from_phase: Option<String>,
    /// Phase after.
    pub to_phase: Option<String>,
    /// Stable reason (`expired`, `idle`, `requested`…).
    pub reason: Option<String>,
    /// Detail.
    pub message: String,
}

impl From<&ClusterEvent> for EventView {
    fn from(e: &ClusterEvent) -> Self {
        Self {
            id: e.id,
            at: e.at.to_string(),
            kind: e.kind.clone(),
            from_phase: e.from_phase.map(|p| p.to_string()),
            to_phase: e.to_phase.map(|p| p.to_string()),
            reason: e.reason.clone(),
            message: e.message.clone(),
        }
    }
}

/// Events of a cluster.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EventList {
    /// Oldest first.
    pub items: Vec<EventView>,
}

/// The error body of every non-2xx answer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// Inside [`ErrorBody`].
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable snake_case code.
    pub code: String,
    /// What happened and what to do.
    pub message: String,
    /// Correlates with server logs.
    pub request_id: String,
}

/// A host cluster with its capacity and use.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HostView {
    /// Name clusters refer to.
    pub name: String,
    /// Labels a `host_selector` matches.
    pub labels: BTreeMap<String, String>,
    /// Whether it answered its last check.
    pub reachable: bool,
    /// Most clusters it takes (absent: no limit).
    pub max_clusters: Option<u32>,
    /// Live clusters on it now.
    pub clusters: u32,
    /// Notes, or why it is unreachable.
    pub message: String,
}

impl From<crate::service::HostUse> for HostView {
    fn from(u: crate::service::HostUse) -> Self {
        let h = u.host;
        Self {
            name: h.name,
            labels: h.labels,
            reachable: h.reachable,
            max_clusters: h.max_clusters,
            clusters: u.clusters,
            message: h.message,
        }
    }
}

/// Every host.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HostList {
    /// The hosts.
    pub items: Vec<HostView>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::domain::{DeleteReason, Labels, Phase, Ttl};
    use crate::store::conformance::mk_cluster;

    /// Every optional field present, and text that needs escaping.
    fn full_cluster() -> Cluster {
        let mut c = mk_cluster("full");
        c.team = Some("web".into());
        c.phase = Phase::Deleting;
        c.message = "step \"2\"\n\u{1}é".into();
        c.idle_timeout = Some(Ttl::from_secs(1800));
        c.labels = Labels::parse([("repo".to_owned(), "web".to_owned())].into()).unwrap();
        c.ready_at = Some(c.created_at + jiff::SignedDuration::from_millis(1234));
        c.deleted_at = Some(c.created_at + jiff::SignedDuration::from_secs(60));
        c.endpoint = Some("https://127.0.0.1:6443".into());
        c.delete_reason = Some(DeleteReason::Idle);
        c
    }

    #[test]
    fn cluster_json_is_the_views_json_byte_for_byte() {
        for c in [mk_cluster("bare"), full_cluster()] {
            // Act
            let borrowed = serde_json::to_string(&ClusterJson(&c)).unwrap();
            let owned = serde_json::to_string(&ClusterView::from(&c)).unwrap();

            // Assert
            assert_eq!(borrowed, owned);
        }
    }

    #[test]
    fn rfc3339_writes_what_jiff_displays() {
        use crate::domain::Timestamp;

        let max = i128::from(MAX_FAST_SECOND);
        let edges: [i128; 10] = [
            0,
            1,
            999_999_999,
            951_782_400_000_000_000,   // 2000-02-29
            4_107_542_400_123_000_000, // 2100-03-01
            Timestamp::MAX.as_nanosecond(),
            max * 1_000_000_000 + 999_999_999, // beyond jiff's range: skipped
            -1,
            -86_400_000_000_000,
            -1_500_000_000,
        ];
        // A deterministic spread over the whole range, at every precision.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let spread = (0..20_000).map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let secs = i128::from(x % (MAX_FAST_SECOND as u64 + 1));
            let ns = secs * 1_000_000_000 + i128::from((x >> 20) % 1_000_000_000);
            let unit = [1, 1_000, 1_000_000, 1_000_000_000][i % 4];
            ns / unit * unit
        });
        for ns in edges.into_iter().chain(spread) {
            // NB: jiff's range ends on 9999-12-30 (any offset must keep it a valid date).
            let Ok(ts) = Timestamp::from_nanosecond(ns) else {
                continue;
            };

            // Act
            let fast = serde_json::to_string(&Rfc3339(ts)).unwrap();

            // Assert
            assert_eq!(fast, format!("\"{ts}\""), "{ns} ns");
        }
    }

    #[test]
    fn cluster_list_json_is_the_lists_json_byte_for_byte() {
        let items = vec![mk_cluster("one"), full_cluster()];
        for cursor in [None, Some("abc")] {
            // Act
            let borrowed = serde_json::to_string(&ClusterListJson {
                items: &items,
                next_cursor: cursor,
            })
            .unwrap();
            let owned = serde_json::to_string(&ClusterList {
                items: items.iter().map(ClusterView::from).collect(),
                next_cursor: cursor.map(str::to_owned),
            })
            .unwrap();

            // Assert
            assert_eq!(borrowed, owned);
        }
    }
}
