//! Query strings of `/v1/clusters`, parsed by hand from the decoded pairs so `label` can repeat
//! and every bad or unknown parameter is a 422 that names it. Every rule here is stated in the
//! API document too (`openapi.rs` reads the constants below).

use crate::domain::{InvalidField, LabelSelector, Phase, quoted};
use crate::store::{ClusterFilter, Cursor};

/// Page size when `limit` is not given.
pub const DEFAULT_LIMIT: usize = 100;
/// Largest `limit`: a page of full cluster records stays well under a megabyte.
pub const MAX_LIMIT: usize = 500;
/// Longest `owner` filter: principals are `token:<id>` and the like, far shorter; a bound
/// keeps a query from carrying megabytes into the store.
pub const MAX_OWNER_CHARS: usize = 256;
/// Longest creation time in a cursor (milliseconds; 15 digits reach the year 33658) and its
/// longest id: both bound what a cursor can carry.
const CURSOR_MS_DIGITS: usize = 15;
const CURSOR_ID_CHARS: usize = 63;
/// The cursors [`decode_cursor`] accepts, as the API document states them.
pub const CURSOR_PATTERN: &str = "^[0-9]{1,15}\\.[-a-z0-9]{1,63}$";

/// The filter of `GET /v1/clusters?phase=…&owner=…&label=k=v&limit=…&cursor=…`.
pub fn list_filter(pairs: &[(String, String)]) -> Result<ClusterFilter, InvalidField> {
    let mut filter = ClusterFilter {
        limit: DEFAULT_LIMIT,
        ..Default::default()
    };
    let mut labels = Vec::new();
    let mut seen = Vec::new();
    for (key, value) in pairs {
        if key != "label" {
            if seen.contains(&key.as_str()) {
                return Err(InvalidField::new(key, "given more than once"));
            }
            seen.push(key.as_str());
        }
        match key.as_str() {
            "phase" => filter.phase = Some(parse_phase(value)?),
            "owner" => filter.owner = Some(parse_owner(value)?),
            "label" => labels.push(value.as_str()),
            "limit" => filter.limit = parse_limit(value)?,
            "cursor" => filter.after = Some(decode_cursor(value)?),
            _ => {
                return Err(InvalidField::new(
                    key,
                    "unknown query parameter; use phase, owner, label, limit or cursor",
                ));
            }
        }
    }
    filter.labels = LabelSelector::parse(labels)?;
    Ok(filter)
}

/// The selector of `DELETE /v1/clusters?label=k=v…` (emptiness is the service's to refuse).
pub fn delete_selector(pairs: &[(String, String)]) -> Result<LabelSelector, InvalidField> {
    if let Some((key, _)) = pairs.iter().find(|(key, _)| key != "label") {
        return Err(InvalidField::new(
            key,
            "unknown query parameter; bulk delete takes only label=key=value (repeatable)",
        ));
    }
    LabelSelector::parse(pairs.iter().map(|(_, value)| value.as_str()))
}

/// The `next_cursor`: `<created_ms>.<id>`, the position after the page's last cluster.
///
/// NB: it was URL-safe base64 of the same; plain text lets the API document state exactly
/// which cursors are well formed (any well-formed cursor is a position, issued or not).
pub fn encode_cursor(cursor: &Cursor) -> String {
    format!("{}.{}", cursor.created_ms, cursor.id)
}

/// The position a `cursor` parameter names.
pub fn decode_cursor(s: &str) -> Result<Cursor, InvalidField> {
    let invalid = || {
        InvalidField::new(
            "cursor",
            "not a cursor (<created_ms>.<id>); pass a previous page's next_cursor unchanged",
        )
    };
    let (ms, id) = s.split_once('.').ok_or_else(invalid)?;
    let ms_ok =
        (1..=CURSOR_MS_DIGITS).contains(&ms.len()) && ms.bytes().all(|b| b.is_ascii_digit());
    let id_ok = (1..=CURSOR_ID_CHARS).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !ms_ok || !id_ok {
        return Err(invalid());
    }
    Ok(Cursor {
        created_ms: ms.parse().map_err(|_| invalid())?,
        id: id.to_owned(),
    })
}

/// The phase names a `phase` filter accepts: as shown, or in lower case.
pub fn phase_names() -> Vec<String> {
    Phase::ALL
        .iter()
        .flat_map(|p| [p.as_str().to_owned(), p.as_str().to_ascii_lowercase()])
        .collect()
}

fn parse_owner(s: &str) -> Result<String, InvalidField> {
    if s.chars().count() > MAX_OWNER_CHARS {
        return Err(InvalidField::new(
            "owner",
            format!("at most {MAX_OWNER_CHARS} characters"),
        ));
    }
    Ok(s.to_owned())
}

fn parse_phase(s: &str) -> Result<Phase, InvalidField> {
    let exact = Phase::ALL
        .into_iter()
        .find(|p| s == p.as_str() || s == p.as_str().to_ascii_lowercase());
    exact.ok_or_else(|| {
        let all: Vec<&str> = Phase::ALL.iter().map(|p| p.as_str()).collect();
        InvalidField::new(
            "phase",
            format!("unknown phase {}; one of {}", quoted(s), all.join(", ")),
        )
    })
}

fn parse_limit(s: &str) -> Result<usize, InvalidField> {
    // NB: digits only: `usize::from_str` would also take `+5`, which is no JSON Schema integer.
    Some(s)
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse().ok())
        .filter(|n| (1..=MAX_LIMIT).contains(n))
        .ok_or_else(|| {
            InvalidField::new(
                "limit",
                format!("{} is not a whole number from 1 to {MAX_LIMIT}", quoted(s)),
            )
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::domain::testkit::{matches, mk_matching};

    proptest! {
        #[test]
        fn any_query_parses_or_is_refused_naming_a_parameter(
            pairs in proptest::collection::vec(
                (prop_oneof!["phase|owner|label|limit|cursor", any::<String>()], any::<String>()),
                0..8,
            ),
        ) {
            let keys: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
            if let Err(e) = list_filter(&pairs) {
                prop_assert!(keys.contains(&e.field.as_str()), "{} not in {:?}", e.field, keys);
            }
            if let Err(e) = delete_selector(&pairs) {
                prop_assert!(keys.contains(&e.field.as_str()), "{} not in {:?}", e.field, keys);
            }
        }

        #[test]
        fn the_cursor_pattern_allows_exactly_the_cursors_that_decode(
            s in prop_oneof!["[0-9]{0,17}[.:]?[-a-z0-9A-Z.]{0,65}", mk_matching(CURSOR_PATTERN)],
        ) {
            prop_assert_eq!(decode_cursor(&s).is_ok(), matches(CURSOR_PATTERN, &s), "{:?}", s);
        }

        #[test]
        fn issued_cursors_decode_to_their_position(
            created_ms in 0..999_999_999_999_999i64,
            id in "c-[a-z0-9]{10}",
        ) {
            let cursor = Cursor { created_ms, id };
            prop_assert_eq!(decode_cursor(&encode_cursor(&cursor)).unwrap(), cursor);
        }
    }

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn cursors_round_trip() {
        let cursor = Cursor {
            created_ms: 1_790_000_000_123,
            id: "c-abc".into(),
        };
        assert_eq!(decode_cursor(&encode_cursor(&cursor)).unwrap(), cursor);
    }

    #[test]
    fn list_filter_reads_every_parameter_and_repeated_labels() {
        let filter = list_filter(&pairs(&[
            ("phase", "ready"),
            ("owner", "token:ci"),
            ("label", "repo=web"),
            ("label", "pr=42"),
            ("limit", "7"),
        ]))
        .unwrap();
        assert_eq!(filter.phase, Some(Phase::Ready));
        assert_eq!(filter.owner.as_deref(), Some("token:ci"));
        assert_eq!(filter.labels.requirements().len(), 2);
        assert_eq!(filter.limit, 7);
        assert_eq!(list_filter(&[]).unwrap().limit, DEFAULT_LIMIT);
    }

    #[test]
    fn bad_parameters_are_named() {
        let long_owner = "o".repeat(257);
        // Table: (query, field named, reason).
        let cases = [
            (("phase", "Running"), "phase", "unknown phase"),
            (("limit", "0"), "limit", "below range"),
            (("limit", "501"), "limit", "above range"),
            (("limit", "x"), "limit", "not a number"),
            (("cursor", "!!"), "cursor", "not base64"),
            (("cursor", "bm9jb2xvbg"), "cursor", "no dot"),
            (("cursor", "1.C-ABC"), "cursor", "upper case id"),
            (("phase", "rEaDy"), "phase", "mixed case"),
            (("limit", "+5"), "limit", "sign"),
            (("owner", long_owner.as_str()), "owner", "owner too long"),
            (("label", "novalue"), "label", "not k=v"),
            (("colour", "red"), "colour", "unknown parameter"),
        ];
        for ((key, value), field, reason) in cases {
            let err = list_filter(&pairs(&[(key, value)])).unwrap_err();
            assert_eq!(err.field, field, "{reason}");
        }
        let twice = list_filter(&pairs(&[("limit", "1"), ("limit", "2")])).unwrap_err();
        assert_eq!(twice.field, "limit");
    }
}
