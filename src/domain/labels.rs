//! Labels with Kubernetes label syntax, and equality selectors over them.

use std::collections::BTreeMap;

use super::{InvalidField, quoted};

/// At most this many labels on one cluster: they are indexed and shown in tables.
pub const MAX_LABELS: usize = 64;
/// At most this many `key=value` requirements in one selector. Each costs the store a
/// subquery (SQLite's expression limit is reached near a thousand), and a cluster has at most
/// [`MAX_LABELS`] labels, so more distinct requirements could never match anyway.
pub const MAX_SELECTOR_REQUIREMENTS: usize = MAX_LABELS;

/// The longest valid key: a 253-character prefix, `/`, a 63-character name.
const MAX_KEY_BYTES: usize = 253 + 1 + 63;
/// A label key's name part (after the optional `prefix/`), or a non-empty value.
const SEGMENT: &str = "[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?";
/// A DNS subdomain: dot-separated labels of lowercase letters, digits and inner dashes.
const SUBDOMAIN: &str = "[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*";
/// A key prefix is at most 253 characters (and a selector's value holds no `/`).
const PREFIX_LENGTH: &str = "^(?:[^/]{1,253}/)?[^/]*$";

/// Label keys as the API document states them: the syntax, and (next pattern) the length of
/// the prefix, which one regular expression without look-ahead cannot state along with it.
pub fn key_patterns() -> [String; 2] {
    [
        format!("^(?:{SUBDOMAIN}/)?{SEGMENT}$"),
        PREFIX_LENGTH.to_owned(),
    ]
}

/// Label values as the API document states them (empty is allowed).
pub fn value_pattern() -> String {
    format!("^(?:{SEGMENT})?$")
}

/// `key=value` selector items as the API document states them, with [`PREFIX_LENGTH`].
pub fn selector_patterns() -> [String; 2] {
    [
        format!("^(?:{SUBDOMAIN}/)?{SEGMENT}=(?:{SEGMENT})?$"),
        PREFIX_LENGTH.to_owned(),
    ]
}

/// A cluster's labels, each key and value valid Kubernetes label syntax.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct Labels(BTreeMap<String, String>);

// === impl Labels ===

impl Labels {
    /// Check every key and value; errors name the offending label as `labels.<key>`.
    pub fn parse(map: BTreeMap<String, String>) -> Result<Self, InvalidField> {
        if map.len() > MAX_LABELS {
            return Err(InvalidField::new(
                "labels",
                format!("at most {MAX_LABELS} labels"),
            ));
        }
        for (k, v) in &map {
            // A key too long to be valid is named by the map, not echoed whole as a field.
            let field = if k.len() > MAX_KEY_BYTES {
                "labels".to_owned()
            } else {
                format!("labels.{k}")
            };
            check_key(k).map_err(|r| InvalidField::new(field.clone(), r))?;
            check_value(v).map_err(|r| InvalidField::new(field.clone(), r))?;
        }
        Ok(Self(map))
    }

    /// The labels as a map.
    pub fn as_map(&self) -> &BTreeMap<String, String> {
        &self.0
    }

    /// One label's value.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// Whether every requirement of `selector` holds.
    pub fn matches(&self, selector: &LabelSelector) -> bool {
        selector
            .0
            .iter()
            .all(|(k, v)| self.get(k) == Some(v.as_str()))
    }
}

impl<'de> serde::Deserialize<'de> for Labels {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = BTreeMap::<String, String>::deserialize(d)?;
        Labels::parse(map).map_err(serde::de::Error::custom)
    }
}

/// `key=value` requirements, all of which must hold (`?label=a=b&label=c=d`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector(Vec<(String, String)>);

// === impl LabelSelector ===

impl LabelSelector {
    /// Parse `k=v` items (the `label` query parameter, repeatable).
    pub fn parse<'a>(items: impl IntoIterator<Item = &'a str>) -> Result<Self, InvalidField> {
        let mut reqs = Vec::new();
        for item in items {
            if reqs.len() == MAX_SELECTOR_REQUIREMENTS {
                return Err(InvalidField::new(
                    "label",
                    format!("at most {MAX_SELECTOR_REQUIREMENTS} label selectors"),
                ));
            }
            let (k, v) = item.split_once('=').ok_or_else(|| {
                InvalidField::new("label", format!("{} is not key=value", quoted(item)))
            })?;
            check_key(k).map_err(|r| InvalidField::new("label", r))?;
            check_value(v).map_err(|r| InvalidField::new("label", r))?;
            reqs.push((k.to_owned(), v.to_owned()));
        }
        Ok(Self(reqs))
    }

    /// The requirements.
    pub fn requirements(&self) -> &[(String, String)] {
        &self.0
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn is_name_segment(s: &str, max: usize) -> Result<(), String> {
    let b = s.as_bytes();
    if b.is_empty() || b.len() > max {
        return Err(format!("{} must be 1 to {max} characters", quoted(s)));
    }
    let alnum = |c: &u8| c.is_ascii_alphanumeric();
    if !alnum(&b[0]) || !alnum(&b[b.len() - 1]) {
        return Err(format!(
            "{} must start and end with a letter or digit",
            quoted(s)
        ));
    }
    if !b
        .iter()
        .all(|c| alnum(c) || matches!(c, b'-' | b'_' | b'.'))
    {
        return Err(format!(
            "{} may contain only letters, digits, '-', '_' and '.'",
            quoted(s)
        ));
    }
    Ok(())
}

fn check_key(k: &str) -> Result<(), String> {
    let (prefix, name) = match k.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, k),
    };
    if let Some(p) = prefix {
        let ok = !p.is_empty()
            && p.len() <= 253
            && p.split('.').all(|part| {
                let b = part.as_bytes();
                !b.is_empty()
                    && b.iter()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
                    && b[0] != b'-'
                    && b[b.len() - 1] != b'-'
            });
        if !ok {
            return Err(format!(
                "key prefix {} must be a DNS subdomain (e.g. example.com)",
                quoted(p)
            ));
        }
    }
    is_name_segment(name, 63).map_err(|e| format!("label key: {e}"))
}

fn check_value(v: &str) -> Result<(), String> {
    if v.is_empty() {
        return Ok(());
    }
    is_name_segment(v, 63).map_err(|e| format!("label value: {e}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::domain::testkit::{matches, mk_matching};

    /// Keys and values near the rules' edges: prefixes, dots, dashes, case, length.
    const NEAR_MISS: &str = "(?:[a-zA-Z0-9.-]{0,70}/)?[-a-zA-Z0-9_./é]{0,66}";

    fn key_ok(k: &str) -> bool {
        key_patterns().iter().all(|p| matches(p, k))
    }

    proptest! {
        #[test]
        fn any_map_parses_or_is_refused_naming_the_label(
            map in proptest::collection::btree_map(any::<String>(), any::<String>(), 0..70),
        ) {
            if let Err(e) = Labels::parse(map) {
                prop_assert!(e.field.starts_with("labels"), "{}", e.field);
            }
        }

        #[test]
        fn any_selector_parses_or_is_refused_naming_the_parameter(
            items in proptest::collection::vec(any::<String>(), 0..80),
        ) {
            if let Err(e) = LabelSelector::parse(items.iter().map(String::as_str)) {
                prop_assert_eq!(e.field, "label");
            }
        }

        #[test]
        fn the_key_patterns_allow_exactly_the_keys_that_parse(
            k in prop_oneof![NEAR_MISS, "[a-z]{250,256}/[a-z]{1,3}", mk_matching(&key_patterns()[0])],
        ) {
            prop_assert_eq!(check_key(&k).is_ok(), key_ok(&k), "{:?}", k);
        }

        #[test]
        fn the_value_pattern_allows_exactly_the_values_that_parse(
            v in prop_oneof!["[-a-zA-Z0-9_./é]{0,66}", mk_matching(&value_pattern())],
        ) {
            prop_assert_eq!(check_value(&v).is_ok(), matches(&value_pattern(), &v), "{:?}", v);
        }

        #[test]
        fn the_selector_patterns_allow_exactly_the_items_that_parse(
            item in prop_oneof![
                proptest::string::string_regex(&format!("{NEAR_MISS}=?[-a-zA-Z0-9_.=é]{{0,66}}"))
                    .unwrap(),
                mk_matching(&selector_patterns()[0]),
            ],
        ) {
            let parses = LabelSelector::parse([item.as_str()]).is_ok();
            let allowed = selector_patterns().iter().all(|p| matches(p, &item));
            prop_assert_eq!(parses, allowed, "{:?}", item);
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> Result<Labels, InvalidField> {
        Labels::parse(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn kubernetes_label_syntax_is_accepted() {
        let ok = [
            ("repo", "acme-web"),
            ("pr", "42"),
            ("example.com/team", "web_1.x"),
            ("sha", ""),
        ];
        for (k, v) in ok {
            labels(&[(k, v)]).unwrap_or_else(|e| panic!("{k}={v}: {e}"));
        }
    }

    #[test]
    fn bad_labels_are_refused_naming_the_key() {
        let bad = [
            ("-repo", "x", "key starts with a dash"),
            ("repo", "a b", "space in value"),
            ("Example.com/x", "y", "uppercase prefix"),
            ("x", &"a".repeat(64), "value too long"),
            ("", "y", "empty key"),
        ];
        for (k, v, why) in bad {
            let err = labels(&[(k, v)]).expect_err(why);
            assert_eq!(err.field, format!("labels.{k}"), "{why}");
        }
    }

    #[test]
    fn selector_matches_only_when_every_requirement_holds() {
        let l = labels(&[("repo", "web"), ("pr", "42")]).expect("valid");
        let sel = |items: &[&str]| LabelSelector::parse(items.iter().copied()).expect("valid");
        assert!(l.matches(&sel(&["repo=web"])));
        assert!(l.matches(&sel(&["repo=web", "pr=42"])));
        assert!(!l.matches(&sel(&["repo=web", "pr=43"])));
        assert!(LabelSelector::parse(["novalue"]).is_err());
    }
}
