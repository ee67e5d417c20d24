//! The middleware that records every request, and the [`Note`] handlers fill in on the way
//! (who the caller is, what the request was about).
//!
//! It sits inside the error renderer and outside everything that can refuse a request (rate
//! limits, the body limit, authentication, the handler), so refusals are recorded too. The
//! health probes are not recorded: they carry no identity and no data, and a kubelet probing
//! every few seconds would bury the log.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::{
    extract::{MatchedPath, Request, State},
    http::Method,
    middleware::Next,
    response::{IntoResponse as _, Response},
};

use crate::domain::{AuditEntry, Decision, Door, Stage, now_ms};
use crate::http::{ApiError, AppState, error::ErrorReport};

/// Paths never recorded.
pub const UNRECORDED: [&str; 2] = ["/healthz", "/readyz"];

/// Longest path kept in the action of a request no route matched.
const MAX_PATH: usize = 200;

/// What the handlers learn about a request, for its record: left in the request's extensions
/// by the middleware.
#[derive(Debug, Clone, Default)]
pub struct Note(Arc<Mutex<Noted>>);

#[derive(Debug, Default)]
struct Noted {
    principal: Option<String>,
    auth_error: Option<String>,
    action: Option<String>,
    target: Option<String>,
}

// === impl Note ===

impl Note {
    fn with<R>(&self, f: impl FnOnce(&mut Noted) -> R) -> R {
        f(&mut self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// The caller authenticated as `subject`.
    pub fn principal(&self, subject: &str) {
        self.with(|n| n.principal = Some(subject.to_owned()));
    }

    /// Authentication failed, for this reason (never the credential).
    pub fn auth_failed(&self, reason: &str) {
        self.with(|n| n.auth_error = Some(reason.to_owned()));
    }

    /// What the request does, when the route does not say it well (the gateway's verbs).
    pub fn action(&self, action: String) {
        self.with(|n| n.action = Some(action));
    }

    /// What the request was about, when the path does not name it (a created cluster's id).
    pub fn target(&self, target: &str) {
        self.with(|n| n.target = Some(target.to_owned()));
    }
}

/// The middleware: `from_fn_with_state((state, door), record)`. Besides the audit record it
/// counts the request into `/metrics`, writes the request's one log line, and runs the handler
/// as part of the request id ([`crate::telemetry::with_request_id`]).
pub async fn record(
    State((state, door)): State<(AppState, Door)>,
    mut request: Request,
    next: Next,
) -> Response {
    let matched = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    if matched.as_deref().is_some_and(|m| UNRECORDED.contains(&m)) {
        return next.run(request).await;
    }
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path();
    let (action, target) = match &matched {
        Some(template) => (format!("{method} {template}"), target_of(template, path)),
        None => (format!("{method} {}", truncated(path)), None),
    };
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let mut entry = AuditEntry {
        time: now_ms(),
        request_id: request_id.clone(),
        door,
        stage: Stage::Received,
        principal: None,
        auth_error: None,
        source: state
            .limits
            .client_ip(request.extensions(), request.headers())
            .map(|ip| ip.to_string()),
        action,
        target,
        decision: None,
        code: None,
        messages: Vec::new(),
        status: None,
        duration_us: None,
    };
    let auditor = state.audit.clone();
    let mutating = !matches!(method, Method::GET | Method::HEAD | Method::OPTIONS);
    if mutating
        && let Some(auditor) = &auditor
        && auditor.commit(entry.clone()).await.is_err()
    {
        let refused = unavailable(door);
        complete(&mut entry, &Note::default(), &refused, started);
        observe(&state, &method, matched.as_deref(), &entry);
        auditor.submit(entry).await;
        return refused;
    }

    let note = Note::default();
    request.extensions_mut().insert(note.clone());
    let response = crate::telemetry::with_request_id(request_id, next.run(request)).await;
    complete(&mut entry, &note, &response, started);
    let Some(auditor) = auditor else {
        observe(&state, &method, matched.as_deref(), &entry);
        return response;
    };
    if !mutating && auditor.reads_fail_closed() {
        if auditor.commit(entry.clone()).await.is_err() {
            // NB: counted and logged as what the caller gets, the 503.
            let refused = unavailable(door);
            complete(&mut entry, &note, &refused, started);
            observe(&state, &method, matched.as_deref(), &entry);
            auditor.submit(entry).await;
            return refused;
        }
        observe(&state, &method, matched.as_deref(), &entry);
        return response;
    }
    observe(&state, &method, matched.as_deref(), &entry);
    auditor.submit(entry).await;
    response
}

/// Counts a completed request into `/metrics` and writes its log line.
fn observe(state: &AppState, method: &Method, route: Option<&str>, entry: &AuditEntry) {
    let status = entry.status.unwrap_or_default();
    let elapsed = Duration::from_micros(entry.duration_us.unwrap_or_default());
    if let Some(metrics) = &state.metrics {
        metrics.request(entry.door.as_str(), method, route, status, elapsed);
    }
    tracing::info!(
        target: "vcm::request",
        request_id = %entry.request_id,
        door = entry.door.as_str(),
        principal = entry.principal.as_deref().unwrap_or("-"),
        action = %entry.action,
        target = entry.target.as_deref().unwrap_or("-"),
        status,
        decision = entry.decision.map_or("-", Decision::as_str),
        code = entry.code.as_deref().unwrap_or("-"),
        auth_error = entry.auth_error.as_deref(),
        duration_ms = elapsed.as_secs_f64() * 1000.0,
        "{} {}",
        entry.action,
        status,
    );
}

/// Fill in what the answer and the handlers say.
fn complete(entry: &mut AuditEntry, note: &Note, response: &Response, started: Instant) {
    let status = response.status().as_u16();
    entry.stage = Stage::Completed;
    entry.status = Some(status);
    entry.decision = Some(Decision::of_status(status));
    entry.duration_us = Some(u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX));
    note.with(|n| {
        entry.principal.clone_from(&n.principal);
        entry.auth_error.clone_from(&n.auth_error);
        if let Some(action) = &n.action {
            entry.action.clone_from(action);
        }
        if n.target.is_some() {
            entry.target.clone_from(&n.target);
        }
    });
    if let Some(report) = response.extensions().get::<ErrorReport>() {
        entry.code = Some(report.code.to_owned());
        entry.messages = vec![report.public_message.clone()];
        if status == 401 && entry.auth_error.is_none() {
            entry.auth_error = Some(report.public_message.clone());
        }
    }
}

/// 503 `audit_unavailable`, in the door's error shape.
fn unavailable(door: Door) -> Response {
    let err = ApiError::unavailable(
        "audit_unavailable",
        "the audit log cannot be written, so the request was not carried out; retry later",
    );
    match door {
        Door::Gateway => crate::gateway::status_response(err),
        Door::Api | Door::Webhook | Door::Crd | Door::System => err.into_response(),
    }
}

/// The value of the first `{param}` of `template` in `path`: what the request is about.
fn target_of(template: &str, path: &str) -> Option<String> {
    template
        .split('/')
        .zip(path.split('/'))
        .find(|(t, _)| t.starts_with('{') && !t.starts_with("{*"))
        .map(|(_, value)| truncated(value).to_owned())
}

fn truncated(s: &str) -> &str {
    match s.char_indices().nth(MAX_PATH) {
        Some((at, _)) => &s[..at],
        None => s,
    }
}
