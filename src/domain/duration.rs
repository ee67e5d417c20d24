//! Durations as the API writes them: `"90s"`, `"30m"`, `"2h"`, `"7d"`.

use std::fmt;
use std::time::Duration;

use super::InvalidField;

/// A positive whole number of seconds, minutes, hours or days, kept in the unit the user wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ttl {
    secs: u64,
}

/// Upper bound on any duration (a year): larger numbers are typos, and this keeps timestamp
/// arithmetic far from overflow.
const MAX_SECS: u64 = 366 * 24 * 3600;

// === impl Ttl ===

impl Ttl {
    /// Parse `"<n><unit>"` with unit `s`, `m`, `h` or `d`; `field` names the field in errors.
    pub fn parse(field: &str, s: &str) -> Result<Self, InvalidField> {
        let bad = || {
            InvalidField::new(
                field,
                format!(
                    "{s:?} is not a duration; write a whole number and a unit, e.g. \"90s\", \"30m\", \"2h\" or \"7d\""
                ),
            )
        };
        let s = s.trim();
        let (num, unit) = s.split_at(s.len().checked_sub(1).ok_or_else(bad)?);
        if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let n: u64 = num.parse().map_err(|_| bad())?;
        let mult = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            _ => return Err(bad()),
        };
        let secs = n.checked_mul(mult).ok_or_else(bad)?;
        if secs == 0 {
            return Err(InvalidField::new(field, "must be greater than zero"));
        }
        if secs > MAX_SECS {
            return Err(InvalidField::new(
                field,
                format!("{s:?} is longer than a year"),
            ));
        }
        Ok(Self { secs })
    }

    /// From whole seconds (at least 1).
    pub fn from_secs(secs: u64) -> Self {
        Self {
            secs: secs.clamp(1, MAX_SECS),
        }
    }

    /// From whole seconds, in constant context (caller guarantees 1..=a year).
    pub const fn from_secs_const(secs: u64) -> Self {
        Self { secs }
    }

    /// Whole seconds.
    pub fn as_secs(self) -> u64 {
        self.secs
    }

    /// As a `std::time::Duration`.
    pub fn as_duration(self) -> Duration {
        Duration::from_secs(self.secs)
    }

    /// As a signed span for timestamp arithmetic.
    pub fn as_span(self) -> jiff::SignedDuration {
        jiff::SignedDuration::from_secs(self.secs as i64)
    }
}

impl fmt::Display for Ttl {
    /// The largest unit that divides evenly: 7200 s is `2h`, 90 s is `90s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.secs;
        if s.is_multiple_of(86_400) {
            write!(f, "{}d", s / 86_400)
        } else if s.is_multiple_of(3600) {
            write!(f, "{}h", s / 3600)
        } else if s.is_multiple_of(60) {
            write!(f, "{}m", s / 60)
        } else {
            write!(f, "{s}s")
        }
    }
}

impl serde::Serialize for Ttl {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Ttl {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ttl::parse("duration", &s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_in_every_unit_and_print_canonically() {
        let cases = [
            ("90s", 90, "90s"),
            ("30m", 1800, "30m"),
            ("2h", 7200, "2h"),
            ("7d", 604_800, "7d"),
            ("120m", 7200, "2h"),
            ("60s", 60, "1m"),
        ];
        for (input, secs, shown) in cases {
            let ttl = Ttl::parse("ttl", input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(ttl.as_secs(), secs, "{input}");
            assert_eq!(ttl.to_string(), shown, "{input}");
        }
    }

    #[test]
    fn bad_durations_are_refused_with_the_field_named() {
        let cases = [
            ("", "empty"),
            ("h", "no number"),
            ("10", "no unit"),
            ("1.5h", "fraction"),
            ("-5m", "negative"),
            ("5 m", "space"),
            ("5w", "unknown unit"),
            ("0s", "zero"),
            ("400d", "more than a year"),
            ("99999999999999999999d", "overflow"),
        ];
        for (input, why) in cases {
            let err = Ttl::parse("idle_timeout", input).expect_err(why);
            assert_eq!(err.field, "idle_timeout", "{why}");
        }
    }
}
