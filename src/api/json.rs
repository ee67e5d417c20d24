//! The cluster resource's JSON written straight from a borrowed [`Cluster`], for the hot read
//! paths; `tests` holds it byte for byte equal to [`super::ClusterView`]'s.

use serde::Serialize;

use crate::domain::Cluster;

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
pub(super) struct Rfc3339(pub(super) crate::domain::Timestamp);

/// The last second of year 9999.
pub(super) const MAX_FAST_SECOND: i64 = 253_402_300_799;

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
