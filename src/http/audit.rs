//! `GET /v1/audit` (records, filtered, a page at a time) and `GET /v1/audit/anchor` (where a
//! walk of the chain starts). Admins only.

use axum::{
    Json,
    extract::{Query, State},
};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{AppState, error::ApiError, extract::Authenticated};
use crate::api::{AuditPage, ErrorBody};
use crate::audit::Anchor;
use crate::domain::{Decision, InvalidField, Principal, Role, Timestamp, quoted};
use crate::error::Error;
use crate::store::AuditFilter;

/// Page size when `limit` is not given.
pub const DEFAULT_LIMIT: usize = 100;
/// Largest `limit`.
pub const MAX_LIMIT: usize = 1000;
/// Longest `principal`, `action` or `cluster` filter.
pub const MAX_FILTER_CHARS: usize = 256;

/// The audit routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(anchor))
}

/// Audit records: every request through every door, hash-chained. Filters combine (AND).
#[utoipa::path(
    get, path = "/v1/audit", tag = "audit",
    params(
        ("since" = Option<String>, Query, format = DateTime, description = "Written at or after (RFC 3339)"),
        ("until" = Option<String>, Query, format = DateTime, description = "Written before (RFC 3339)"),
        ("principal" = Option<String>, Query, min_length = 1, max_length = 256, description = "Only this principal (`token:t-…`, `oidc:…`, `webhook:github`)"),
        ("action" = Option<String>, Query, min_length = 1, max_length = 256, description = "Only this action (`POST /v1/clusters`); a trailing `*` matches a prefix (`k8s delete*`)"),
        ("decision" = Option<Decision>, Query, description = "Only this decision"),
        ("cluster" = Option<String>, Query, min_length = 1, max_length = 256, description = "Only records about this cluster (or token, or team) id"),
        ("order" = Option<String>, Query, pattern = "^(asc|desc)$", description = "`desc` (newest first, the default) or `asc`; with a `cursor`, the cursor's listing's order"),
        ("limit" = Option<usize>, Query, minimum = 1, maximum = 1000, description = "1 to 1000, default 100"),
        ("cursor" = Option<String>, Query, pattern = "^[ad][0-9]{1,19}$", description = "A previous page's `next_cursor`"),
    ),
    responses(
        (status = 200, description = "A page", body = AuditPage),
        (status = 401, description = "Unauthenticated", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 422, description = "Bad parameter", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn list(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Json<AuditPage>, ApiError> {
    admin(&principal)?;
    let filter = parse(&pairs).map_err(Error::from)?;
    let store = state.service.store();
    let mut items = store.audit_list(&filter).await.map_err(Error::from)?;
    let next_cursor = (items.len() == filter.limit)
        .then(|| items.last().map(|r| cursor(filter.descending, r.seq)))
        .flatten();
    items.truncate(filter.limit);
    Ok(Json(AuditPage { items, next_cursor }))
}

/// Where a walk of the chain starts: the installation's genesis value, retention's signed
/// checkpoint if any, and the server's public key.
#[utoipa::path(
    get, path = "/v1/audit/anchor", tag = "audit",
    responses(
        (status = 200, description = "The anchor", body = Anchor),
        (status = 401, description = "Unauthenticated", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "The audit log is off", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn anchor(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<Json<Anchor>, ApiError> {
    admin(&principal)?;
    let Some(auditor) = &state.audit else {
        return Err(ApiError::not_found(
            "the audit log is off on this server ([audit] enabled = false)",
        ));
    };
    Ok(Json(auditor.anchor().await.map_err(Error::from)?))
}

fn admin(principal: &Principal) -> Result<(), Error> {
    if principal.role == Role::Admin {
        Ok(())
    } else {
        Err(Error::Forbidden(
            "reading the audit log needs the admin role".into(),
        ))
    }
}

fn cursor(descending: bool, seq: u64) -> String {
    format!("{}{seq}", if descending { 'd' } else { 'a' })
}

/// The filter of `GET /v1/audit?…`: every bad or unknown parameter is a 422 that names it.
fn parse(pairs: &[(String, String)]) -> Result<AuditFilter, InvalidField> {
    let mut filter = AuditFilter {
        descending: true,
        limit: DEFAULT_LIMIT,
        ..AuditFilter::default()
    };
    let mut seen = Vec::new();
    let mut cursor = None;
    for (key, value) in pairs {
        if seen.contains(&key.as_str()) {
            return Err(InvalidField::new(key, "given more than once"));
        }
        seen.push(key.as_str());
        match key.as_str() {
            "since" => filter.since = Some(time(key, value)?),
            "until" => filter.until = Some(time(key, value)?),
            "principal" => filter.principal = Some(text(key, value)?),
            "action" => filter.action = Some(text(key, value)?),
            "cluster" => filter.target = Some(text(key, value)?),
            "decision" => {
                filter.decision = Some(Decision::parse(value).ok_or_else(|| {
                    InvalidField::new(
                        key,
                        format!(
                            "{} is not a decision; use allowed, denied, unauthenticated, \
                             throttled or failed",
                            quoted(value)
                        ),
                    )
                })?);
            }
            "order" => {
                filter.descending = match value.as_str() {
                    "desc" => true,
                    "asc" => false,
                    _ => {
                        return Err(InvalidField::new(
                            key,
                            format!("{} is not an order; use asc or desc", quoted(value)),
                        ));
                    }
                };
            }
            "limit" => {
                filter.limit = value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| {
                        InvalidField::new(
                            key,
                            format!(
                                "{} is not a whole number from 1 to {MAX_LIMIT}",
                                quoted(value)
                            ),
                        )
                    })?;
            }
            "cursor" => cursor = Some(value),
            _ => {
                return Err(InvalidField::new(
                    key,
                    "unknown query parameter; use since, until, principal, action, decision, \
                     cluster, order, limit or cursor",
                ));
            }
        }
    }
    if let Some(value) = cursor {
        let bad = || {
            InvalidField::new(
                "cursor",
                format!(
                    "{} is not a cursor of this listing; pass a previous page's next_cursor unchanged, with the same order",
                    quoted(value)
                ),
            )
        };
        let (dir, seq) = value.split_at_checked(1).ok_or_else(bad)?;
        let seq: u64 = seq
            .parse()
            .ok()
            .filter(|_| seq.len() <= 19 && seq.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(bad)?;
        // NB: a cursor continues the listing it came from, in that listing's order.
        match dir {
            "d" => {
                filter.descending = true;
                filter.before_seq = Some(seq);
            }
            "a" => {
                filter.descending = false;
                filter.after_seq = Some(seq);
            }
            _ => return Err(bad()),
        }
    }
    Ok(filter)
}

fn time(key: &str, value: &str) -> Result<Timestamp, InvalidField> {
    value.parse::<Timestamp>().map_err(|_| {
        InvalidField::new(
            key,
            format!(
                "{} is not an RFC 3339 time; write e.g. 2026-11-30T09:00:00Z",
                quoted(value)
            ),
        )
    })
}

fn text(key: &str, value: &str) -> Result<String, InvalidField> {
    if value.is_empty() || value.chars().count() > MAX_FILTER_CHARS {
        return Err(InvalidField::new(
            key,
            format!("must be 1 to {MAX_FILTER_CHARS} characters"),
        ));
    }
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn pairs(q: &[(&str, &str)]) -> Vec<(String, String)> {
        q.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect()
    }

    #[test]
    fn filters_parse_and_bad_ones_name_their_parameter() {
        let f = parse(&pairs(&[
            ("since", "2026-11-30T09:00:00Z"),
            ("principal", "token:t-1"),
            ("decision", "denied"),
            ("order", "asc"),
            ("limit", "5"),
            ("cursor", "a42"),
        ]))
        .unwrap();
        assert_eq!(f.decision, Some(Decision::Denied));
        assert_eq!((f.descending, f.limit, f.after_seq), (false, 5, Some(42)));
        for (k, v) in [
            ("since", "yesterday"),
            ("decision", "maybe"),
            ("limit", "0"),
            ("limit", "1001"),
            ("order", "up"),
            ("cursor", "x42"),
            ("cursor", "d"),
            ("cursor", "d-1"),
            ("principal", ""),
            ("colour", "red"),
        ] {
            let err = parse(&pairs(&[(k, v)])).unwrap_err();
            assert_eq!(err.field, k, "{k}={v}");
        }
    }
}
