//! Query strings of `/v1/clusters`, parsed by hand from the decoded pairs so `label` can repeat
//! and every bad or unknown parameter is a 422 that names it.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::domain::{InvalidField, LabelSelector, Phase};
use crate::store::{ClusterFilter, Cursor};

/// Page size when `limit` is not given.
pub const DEFAULT_LIMIT: usize = 100;
/// Largest `limit`: a page of full cluster records stays well under a megabyte.
pub const MAX_LIMIT: usize = 500;

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
            "owner" => filter.owner = Some(value.clone()),
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

/// The opaque `next_cursor`: URL-safe base64 of `<created_ms>:<id>`.
pub fn encode_cursor(cursor: &Cursor) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}:{}", cursor.created_ms, cursor.id))
}

/// The position a `cursor` parameter names.
pub fn decode_cursor(s: &str) -> Result<Cursor, InvalidField> {
    let invalid = || {
        InvalidField::new(
            "cursor",
            "not a cursor this server issued; pass a previous page's next_cursor unchanged",
        )
    };
    let bytes = URL_SAFE_NO_PAD.decode(s).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let (ms, id) = text.split_once(':').ok_or_else(invalid)?;
    let created_ms = ms.parse().map_err(|_| invalid())?;
    if id.is_empty() {
        return Err(invalid());
    }
    Ok(Cursor {
        created_ms,
        id: id.to_owned(),
    })
}

fn parse_phase(s: &str) -> Result<Phase, InvalidField> {
    Phase::parse(s).ok_or_else(|| {
        let all: Vec<&str> = Phase::ALL.iter().map(|p| p.as_str()).collect();
        InvalidField::new(
            "phase",
            format!("unknown phase {s:?}; one of {}", all.join(", ")),
        )
    })
}

fn parse_limit(s: &str) -> Result<usize, InvalidField> {
    s.parse()
        .ok()
        .filter(|n| (1..=MAX_LIMIT).contains(n))
        .ok_or_else(|| {
            InvalidField::new(
                "limit",
                format!("{s:?} is not a whole number from 1 to {MAX_LIMIT}"),
            )
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

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
        // Table: (query, field named, reason).
        let cases = [
            (("phase", "Running"), "phase", "unknown phase"),
            (("limit", "0"), "limit", "below range"),
            (("limit", "501"), "limit", "above range"),
            (("limit", "x"), "limit", "not a number"),
            (("cursor", "!!"), "cursor", "not base64"),
            (("cursor", "bm9jb2xvbg"), "cursor", "no colon"),
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
