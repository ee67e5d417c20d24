//! `POST /v1/webhooks/github` and `POST /v1/webhooks/bitbucket`: signed deliveries in, a 2xx as
//! soon as the delivery and what it changes are stored; the engine does the work.
//!
//! Order of checks: the door is open (404), the body fits the provider's documented maximum
//! (413), the signature over the raw body passes (401; nothing read before it), the delivery
//! and event headers are there (400), the body reads as the event (400). A redelivery (same
//! delivery id) answers 200 `duplicate` and changes nothing.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json};
use serde_json::json;

use super::AppState;
use super::error::ApiError;
use crate::audit::Note;
use crate::config::rule_for;
use crate::domain::now_ms;
use crate::error::Error;
use crate::webhooks::{
    Change, Parsed, Provider, parse_bitbucket, parse_github, signature, update_of,
};

/// GitHub caps webhook payloads at 25 MB.
pub const GITHUB_MAX_BODY: usize = 25 * 1024 * 1024;
/// Bitbucket Cloud's payloads are at most 256 KB.
pub const BITBUCKET_MAX_BODY: usize = 256 * 1024;

/// The two doors, each with its own body limit.
pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route(
            "/v1/webhooks/github",
            post(github).layer(DefaultBodyLimit::max(GITHUB_MAX_BODY)),
        )
        .route(
            "/v1/webhooks/bitbucket",
            post(bitbucket).layer(DefaultBodyLimit::max(BITBUCKET_MAX_BODY)),
        )
}

async fn github(
    State(state): State<AppState>,
    note: Option<Extension<Note>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let note = note.map(|Extension(n)| n).unwrap_or_default();
    answer(
        &state,
        Provider::Github,
        receive(&state, Provider::Github, &note, &headers, &body).await,
    )
}

async fn bitbucket(
    State(state): State<AppState>,
    note: Option<Extension<Note>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let note = note.map(|Extension(n)| n).unwrap_or_default();
    answer(
        &state,
        Provider::Bitbucket,
        receive(&state, Provider::Bitbucket, &note, &headers, &body).await,
    )
}

/// The response, counted into `vcm_webhook_deliveries_total`: 202 accepted (it asks for work),
/// 200 ignored (nothing to do), an error rejected.
fn answer(
    state: &AppState,
    provider: Provider,
    result: Result<(StatusCode, serde_json::Value), ApiError>,
) -> Response {
    if let Some(metrics) = &state.metrics {
        let outcome = match &result {
            Ok((StatusCode::ACCEPTED, _)) => "accepted",
            Ok(_) => "ignored",
            Err(_) => "rejected",
        };
        metrics.delivery(provider.as_str(), outcome);
    }
    match result {
        Ok((status, body)) => (status, Json(body)).into_response(),
        Err(e) => e.into_response(),
    }
}

/// 400 `malformed_delivery`: the delivery is signed but not what its provider sends.
fn malformed(message: String) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "malformed_delivery", message)
}

async fn receive(
    state: &AppState,
    provider: Provider,
    note: &Note,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(StatusCode, serde_json::Value), ApiError> {
    let doors = state.webhooks.as_ref();
    let Some(secrets) = doors.and_then(|d| d.secrets(provider)) else {
        return Err(ApiError::not_found(format!(
            "the {provider} webhook door is not open: configure [webhooks.{provider}] secrets"
        )));
    };
    if let Err(refused) = signature::verify(provider, headers, body, secrets) {
        note.auth_failed(&refused.0);
        if let Some(metrics) = &state.metrics {
            metrics.auth_failure("webhook_signature");
        }
        return Err(Error::Unauthenticated(refused.0).into());
    }
    note.principal(&format!("webhook:{provider}"));
    let (delivery_header, event_header) = match provider {
        Provider::Github => ("X-GitHub-Delivery", "X-GitHub-Event"),
        Provider::Bitbucket => ("X-Request-UUID", "X-Event-Key"),
    };
    let delivery = header(headers, delivery_header)?;
    let event = header(headers, event_header)?;
    let parsed = match provider {
        Provider::Github => parse_github(event, body),
        Provider::Bitbucket => parse_bitbucket(event, body),
    }
    .map_err(|e| {
        malformed(format!(
            "the body is not a {provider} {event} delivery: {e}"
        ))
    })?;
    if let Parsed::PullRequest(pr) = &parsed {
        note.target(&format!("{}#{}", pr.repository, pr.number));
    }
    let (update, result) = match &parsed {
        Parsed::Ignored { what } => (None, format!("ignored: {what}")),
        Parsed::PullRequest(pr) => {
            let rules = doors.map(|d| d.engine().rules()).unwrap_or_default();
            match rule_for(rules, provider, &pr.repository) {
                None => (
                    None,
                    format!(
                        "ignored: no [[pull_requests]] rule for {provider} repository {}",
                        pr.repository
                    ),
                ),
                Some(rule) if pr.draft && rule.skip_drafts && pr.change != Change::Close => (
                    None,
                    "ignored: a draft (the rule skips drafts until they are ready for review)"
                        .to_owned(),
                ),
                Some(_) => (Some(update_of(pr)), "recorded".to_owned()),
            }
        }
    };
    let recorded = state
        .service
        .store()
        .record_delivery(
            provider.as_str(),
            delivery,
            event,
            update.as_ref(),
            now_ms(),
        )
        .await
        .map_err(|e| ApiError::from(Error::from(e)))?;
    let Some(changed) = recorded else {
        return Ok((
            StatusCode::OK,
            json!({"delivery": delivery, "result": "duplicate: this delivery was taken before"}),
        ));
    };
    if changed && let Some(d) = doors {
        d.engine().wake();
    }
    let mut answer = json!({"delivery": delivery, "result": result});
    if let Some(u) = &update {
        answer["pull_request"] = json!(u.key);
        answer["changed"] = json!(changed);
    }
    Ok((StatusCode::ACCEPTED, answer))
}

fn header<'h>(headers: &'h HeaderMap, name: &'static str) -> Result<&'h str, ApiError> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 200)
        .ok_or_else(|| {
            malformed(format!(
                "header {name} is missing or not 1 to 200 ASCII characters (the provider always \
                 sends it)"
            ))
        })
}
