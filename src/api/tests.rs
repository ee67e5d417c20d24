//! The wire types' JSON: the fast writer against the view, byte for byte.

#![allow(clippy::unwrap_used)]

use super::json::{MAX_FAST_SECOND, Rfc3339};
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
