//! Durations as the API writes them: `"90s"`, `"30m"`, `"2h"`, `"7d"`.

use std::fmt;
use std::time::Duration;

use super::{InvalidField, quoted};

/// A positive whole number of seconds, minutes, hours or days, kept in the unit the user wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ttl {
    secs: u64,
}

/// Upper bound on any duration (a year): larger numbers are typos, and this keeps timestamp
/// arithmetic far from overflow.
const MAX_SECS: u64 = 366 * 24 * 3600;
/// Units and their length in seconds.
const UNITS: [(char, u64); 4] = [('s', 1), ('m', 60), ('h', 3600), ('d', 86_400)];

// === impl Ttl ===

impl Ttl {
    /// Parse `"<n><unit>"` with unit `s`, `m`, `h` or `d` and `n` a whole number without
    /// leading zeros; `field` names the field in errors. Exactly the strings [`Ttl::pattern`]
    /// describes (for the longest duration) parse.
    pub fn parse(field: &str, s: &str) -> Result<Self, InvalidField> {
        let bad = || {
            InvalidField::new(
                field,
                format!(
                    "{} is not a duration; write a whole number and a unit, e.g. \"90s\", \"30m\", \"2h\" or \"7d\"",
                    quoted(s)
                ),
            )
        };
        // NB: split on the last *character*: a multibyte one (`5é`) must be refused, not split
        // inside (which panics).
        let mut chars = s.chars();
        let unit = chars.next_back().ok_or_else(bad)?;
        let num = chars.as_str();
        let mult = unit_secs(unit).ok_or_else(bad)?;
        if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        if num.starts_with('0') {
            return Err(InvalidField::new(
                field,
                format!(
                    "{} must be greater than zero, without leading zeros",
                    quoted(s)
                ),
            ));
        }
        // Overflow only happens far beyond the bound, so it is reported as too long.
        let secs = num
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(mult))
            .unwrap_or(u64::MAX);
        if secs > MAX_SECS {
            return Err(InvalidField::new(
                field,
                format!("{} is longer than a year", quoted(s)),
            ));
        }
        Ok(Self { secs })
    }

    /// The longest duration any field takes (a year).
    pub const MAX: Ttl = Ttl { secs: MAX_SECS };

    /// A regular expression (ECMA-262 and Rust syntax alike) matching exactly the strings
    /// [`Ttl::parse`] accepts that are at most `max`: the API document states bounds with it.
    pub fn pattern(max: Ttl) -> String {
        let alternatives: Vec<String> = UNITS
            .iter()
            .filter(|(_, mult)| max.secs >= *mult)
            .map(|(unit, mult)| format!("(?:{}){unit}", range_pattern(max.secs / mult)))
            .collect();
        format!("^(?:{})$", alternatives.join("|"))
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

fn unit_secs(unit: char) -> Option<u64> {
    UNITS
        .iter()
        .find(|(u, _)| *u == unit)
        .map(|(_, mult)| *mult)
}

/// A regular expression for the whole numbers 1 to `max` written without leading zeros (empty
/// alternatives are never produced; `max` is at least 1).
fn range_pattern(max: u64) -> String {
    let digits: Vec<u32> = max
        .to_string()
        .chars()
        .filter_map(|c| c.to_digit(10))
        .collect();
    let len = digits.len();
    let mut alternatives = Vec::new();
    // Every number with fewer digits than `max`.
    if len > 1 {
        alternatives.push(format!("[1-9][0-9]{{0,{}}}", len - 2));
    }
    // Numbers with as many digits: equal to `max` up to position i, smaller there.
    for i in 0..len {
        let low = if i == 0 { 1 } else { 0 };
        if digits[i] == 0 || digits[i] - 1 < low {
            continue;
        }
        let prefix: String = digits[..i].iter().map(u32::to_string).collect();
        let rest = len - i - 1;
        let tail = if rest == 0 {
            String::new()
        } else {
            format!("[0-9]{{{rest}}}")
        };
        alternatives.push(format!("{prefix}[{low}-{}]{tail}", digits[i] - 1));
    }
    alternatives.push(max.to_string());
    alternatives.join("|")
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
#[allow(clippy::unwrap_used)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::domain::testkit::{matches, mk_matching};

    #[test]
    fn range_patterns_cover_exactly_one_to_max() {
        // Table: (max, pattern).
        let cases = [
            (1, "1"),
            (7, "[1-6]|7"),
            (10, "[1-9][0-9]{0,0}|10"),
            (168, "[1-9][0-9]{0,1}|1[0-5][0-9]{1}|16[0-7]|168"),
        ];
        for (max, pattern) in cases {
            assert_eq!(range_pattern(max), pattern, "{max}");
        }
    }

    proptest! {
        #[test]
        fn any_string_parses_or_is_refused_naming_the_field(s in any::<String>()) {
            match Ttl::parse("ttl", &s) {
                Ok(ttl) => prop_assert!((1..=MAX_SECS).contains(&ttl.as_secs())),
                Err(e) => prop_assert_eq!(e.field, "ttl"),
            }
        }

        #[test]
        fn every_string_the_pattern_allows_parses_within_the_bound(
            (max, s) in (1..=MAX_SECS).prop_flat_map(|max| {
                let pattern = Ttl::pattern(Ttl::from_secs(max));
                (Just(max), mk_matching(&pattern))
            }),
        ) {
            let ttl = Ttl::parse("ttl", &s).unwrap_or_else(|e| panic!("{s:?}: {e}"));
            prop_assert!(ttl.as_secs() <= max, "{} > {}", s, max);
        }

        #[test]
        fn the_pattern_allows_every_string_that_parses_within_the_bound(
            max in 1..=MAX_SECS,
            s in "[0-9]{0,9}[smhdµé ]?",
        ) {
            let pattern = Ttl::pattern(Ttl::from_secs(max));
            let accepted = Ttl::parse("ttl", &s).is_ok_and(|t| t.as_secs() <= max);
            prop_assert_eq!(accepted, matches(&pattern, &s), "{:?} against {}", s, pattern);
        }
    }

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
            ("5é", "multibyte unit"),
            ("1µ", "micro sign"),
            ("é", "only a multibyte character"),
            (" 5m", "leading space"),
            ("05m", "leading zero"),
        ];
        for (input, why) in cases {
            let err = Ttl::parse("idle_timeout", input).expect_err(why);
            assert_eq!(err.field, "idle_timeout", "{why}");
        }
    }
}
