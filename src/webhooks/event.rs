//! Turns GitHub and Bitbucket Cloud webhook deliveries into provider-neutral pull-request events.
//!
//! The functions here are pure: they take the event header and the raw body (already
//! signature-checked by the caller) and say what the delivery means for vcm.
//!
//! NB: payloads are decoded into a `serde_json::Value` and read field by field, not into one
//! strict struct. Real deliveries differ per event (`push` has epoch-integer
//! `repository.created_at`, an App `ping` has no `repository` at all), so only the fields an
//! event actually needs are read, and only for the events vcm acts on. Reading by path also lets
//! every error name the exact JSON field that was wrong.

use std::fmt;

use serde_json::Value;

/// Shortest commit hash accepted: `git`'s default abbreviation length.
const SHA_MIN_LEN: usize = 7;
/// Longest commit hash accepted: a full SHA-1 object name.
const SHA_MAX_LEN: usize = 40;

/// Which provider a delivery came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    /// github.com (repository webhooks and GitHub App webhooks).
    Github,
    /// Bitbucket Cloud (bitbucket.org).
    Bitbucket,
}

/// What a pull-request event asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The PR is (again) open and wants a cluster: GitHub opened, reopened, ready_for_review; Bitbucket pullrequest:created.
    Open,
    /// The PR's head may have moved: GitHub synchronize; Bitbucket pullrequest:updated (same or new commit; the caller compares the sha).
    Move,
    /// The PR ended: GitHub closed (merged or not); Bitbucket pullrequest:fulfilled, pullrequest:rejected.
    Close,
}

/// One pull-request event, provider-neutral.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrEvent {
    /// The provider the delivery came from.
    pub provider: Provider,
    /// `owner/name` (GitHub `repository.full_name`) or `workspace/repo_slug` (Bitbucket `repository.full_name`).
    pub repository: String,
    /// The PR number within its repository (GitHub `number`, Bitbucket `pullrequest.id`); never 0.
    pub number: u64,
    /// What the event asks vcm to do.
    pub change: Change,
    /// The head commit: GitHub `pull_request.head.sha` (40 hex), Bitbucket `pullrequest.source.commit.hash` (often 12 hex). Lowercase hex, validated.
    pub head_sha: String,
    /// The source branch (GitHub `pull_request.head.ref`, Bitbucket `pullrequest.source.branch.name`).
    pub branch: String,
    /// Whether the PR is a draft (absent on Bitbucket means false); the caller decides to skip.
    pub draft: bool,
    /// The PR title, with any `\u` escapes decoded.
    pub title: String,
    /// The PR's web page (GitHub `pull_request.html_url`, Bitbucket `pullrequest.links.html.href`).
    pub url: String,
    /// The PR's last update per the provider (GitHub `pull_request.updated_at`, Bitbucket `pullrequest.updated_on`), milliseconds since the Unix epoch: orders events that arrive out of order.
    pub updated_at_ms: i64,
    /// GitHub: `pull_request.merged` on close; Bitbucket: true for fulfilled.
    pub merged: bool,
    /// GitHub App deliveries: `installation.id`; otherwise None.
    pub installation_id: Option<u64>,
    /// The repository's immutable id: GitHub `repository.id` (decimal), Bitbucket
    /// `repository.uuid` lowercased without its braces. What CI OIDC tokens name the
    /// repository by (`repository_id`, `repositoryUuid`); None if the delivery lacks it.
    pub repository_id: Option<String>,
}

/// What a delivery is, for vcm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// Nothing for vcm to do (push, repo:push, ping, other PR actions like labeled/edited/assigned, unknown events); `what` names it for the 2xx answer, e.g. "GitHub event push" or "GitHub pull_request action labeled".
    Ignored {
        /// A short human description of what was ignored.
        what: String,
    },
    /// A pull-request event vcm acts on.
    PullRequest(PrEvent),
}

/// A delivery vcm cannot read: a 400 with this message. Display says what was wrong, naming the JSON field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

/// Reads a GitHub delivery; `event` = X-GitHub-Event header, `body` = raw JSON bytes.
pub fn parse_github(event: &str, body: &[u8]) -> Result<Parsed, ParseError> {
    let root = parse_json(body)?;
    if event.trim().is_empty() {
        return Err(ParseError::new(
            "the X-GitHub-Event header is empty; GitHub sends the event name (e.g. pull_request) there",
        ));
    }
    if event != "pull_request" {
        return Ok(Parsed::ignored(format!("GitHub event {event}")));
    }
    let doc = Doc::object(&root)?;
    let action = doc.str("action")?;
    let change = match action {
        "opened" | "reopened" | "ready_for_review" => Change::Open,
        "synchronize" => Change::Move,
        "closed" => Change::Close,
        other => {
            return Ok(Parsed::ignored(format!(
                "GitHub pull_request action {other}"
            )));
        }
    };
    // NB: a closed PR was merged iff `merged` is true. Should a delivery carry `merged: null`
    // or omit it (not seen, but cheap to survive), a non-null `merged_at` decides instead.
    let merged = change == Change::Close
        && match doc.opt_bool("pull_request.merged")? {
            Some(merged) => merged,
            None => doc.present("pull_request.merged_at"),
        };
    // The top-level `number` is the documented one; `pull_request.number` carries the same value.
    let number_path = if doc.present("pull_request.number") && !doc.present("number") {
        "pull_request.number"
    } else {
        "number"
    };
    Ok(Parsed::PullRequest(PrEvent {
        provider: Provider::Github,
        repository: repository(&doc, "repository.full_name")?,
        number: number(&doc, number_path)?,
        change,
        head_sha: sha(&doc, "pull_request.head.sha")?,
        branch: branch(&doc, "pull_request.head.ref")?,
        draft: doc.opt_bool("pull_request.draft")?.unwrap_or(false),
        title: doc.str("pull_request.title")?.to_owned(),
        url: doc.str("pull_request.html_url")?.to_owned(),
        updated_at_ms: timestamp_ms(&doc, "pull_request.updated_at")?,
        merged,
        installation_id: doc.opt_u64("installation.id")?,
        repository_id: doc.opt_u64("repository.id")?.map(|id| id.to_string()),
    }))
}

/// Reads a Bitbucket Cloud delivery; `event_key` = X-Event-Key header, `body` = raw JSON bytes.
pub fn parse_bitbucket(event_key: &str, body: &[u8]) -> Result<Parsed, ParseError> {
    let root = parse_json(body)?;
    if event_key.trim().is_empty() {
        return Err(ParseError::new(
            "the X-Event-Key header is empty; Bitbucket sends the event key (e.g. pullrequest:created) there",
        ));
    }
    let (change, merged) = match event_key {
        "pullrequest:created" => (Change::Open, false),
        // NB: `updated` also fires for title, description and reviewer edits with an unchanged
        // head; the caller compares `head_sha` with what it already has.
        "pullrequest:updated" => (Change::Move, false),
        "pullrequest:fulfilled" => (Change::Close, true),
        "pullrequest:rejected" => (Change::Close, false),
        other => return Ok(Parsed::ignored(format!("Bitbucket event {other}"))),
    };
    let doc = Doc::object(&root)?;
    Ok(Parsed::PullRequest(PrEvent {
        provider: Provider::Bitbucket,
        repository: repository(&doc, "repository.full_name")?,
        number: number(&doc, "pullrequest.id")?,
        change,
        head_sha: sha(&doc, "pullrequest.source.commit.hash")?,
        branch: branch(&doc, "pullrequest.source.branch.name")?,
        draft: doc.opt_bool("pullrequest.draft")?.unwrap_or(false),
        title: doc.str("pullrequest.title")?.to_owned(),
        url: doc.str("pullrequest.links.html.href")?.to_owned(),
        updated_at_ms: timestamp_ms(&doc, "pullrequest.updated_on")?,
        merged,
        installation_id: None,
        repository_id: doc
            .get("repository.uuid")
            .and_then(Value::as_str)
            .map(normalize_uuid)
            // NB: it becomes a label value: a UUID's hex digits and dashes, nothing else.
            .filter(|u| {
                !u.is_empty()
                    && u.len() <= 63
                    && u.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
            }),
    }))
}

/// `{C6A1…}` → `c6a1…`: Bitbucket writes UUIDs in braces; labels and comparisons use them bare.
pub fn normalize_uuid(raw: &str) -> String {
    raw.trim()
        .trim_start_matches('{')
        .trim_end_matches('}')
        .to_ascii_lowercase()
}

fn parse_json(body: &[u8]) -> Result<Value, ParseError> {
    serde_json::from_slice(body).map_err(|e| {
        ParseError(format!(
            "the body is not JSON ({e}); configure the webhook with content type application/json"
        ))
    })
}

fn repository(doc: &Doc<'_>, path: &str) -> Result<String, ParseError> {
    let raw = doc.str(path)?;
    let mut halves = raw.split('/');
    let valid = match (halves.next(), halves.next(), halves.next()) {
        (Some(owner), Some(name), None) => [owner, name]
            .iter()
            .all(|half| !half.is_empty() && !half.chars().any(char::is_whitespace)),
        _ => false,
    };
    if !valid {
        return Err(ParseError(format!(
            "{path} must look like owner/name (one '/', no whitespace), got {raw:?}"
        )));
    }
    Ok(raw.to_owned())
}

fn number(doc: &Doc<'_>, path: &str) -> Result<u64, ParseError> {
    match doc.get(path) {
        Some(value) => match value.as_u64() {
            Some(n) if n > 0 => Ok(n),
            _ => Err(ParseError(format!(
                "{path} must be a positive integer, got {value}"
            ))),
        },
        None => Err(ParseError::missing(path)),
    }
}

fn sha(doc: &Doc<'_>, path: &str) -> Result<String, ParseError> {
    let raw = doc.str(path)?;
    let ok_len = (SHA_MIN_LEN..=SHA_MAX_LEN).contains(&raw.len());
    if !ok_len || !raw.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ParseError(format!(
            "{path} must be a commit hash of {SHA_MIN_LEN} to {SHA_MAX_LEN} hex digits, got {raw:?}"
        )));
    }
    Ok(raw.to_ascii_lowercase())
}

fn branch(doc: &Doc<'_>, path: &str) -> Result<String, ParseError> {
    let raw = doc.str(path)?;
    if raw.is_empty() {
        return Err(ParseError(format!(
            "{path} is empty; a branch name is needed"
        )));
    }
    Ok(raw.to_owned())
}

fn timestamp_ms(doc: &Doc<'_>, path: &str) -> Result<i64, ParseError> {
    let raw = doc.str(path)?;
    let ts: jiff::Timestamp = raw.parse().map_err(|e| {
        ParseError(format!(
            "{path} must be an RFC 3339 timestamp, got {raw:?} ({e})"
        ))
    })?;
    Ok(ts.as_millisecond())
}

// === impl Provider ===

impl Provider {
    /// The provider's stable lowercase name: "github" or "bitbucket".
    pub fn as_str(&self) -> &'static str {
        match self {
            Provider::Github => "github",
            Provider::Bitbucket => "bitbucket",
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// === impl Parsed ===

impl Parsed {
    fn ignored(what: String) -> Self {
        Parsed::Ignored { what }
    }
}

// === impl ParseError ===

impl ParseError {
    fn new(message: &str) -> Self {
        ParseError(message.to_owned())
    }

    fn missing(path: &str) -> Self {
        ParseError(format!("{path} is missing"))
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseError {}

// === impl Doc ===

/// A JSON object read by dotted paths (`pull_request.head.sha`), with errors naming the path.
struct Doc<'a>(&'a Value);

impl<'a> Doc<'a> {
    fn object(root: &'a Value) -> Result<Self, ParseError> {
        if root.is_object() {
            Ok(Doc(root))
        } else {
            Err(ParseError(format!(
                "the body must be a JSON object, got {}",
                kind(root)
            )))
        }
    }

    /// The value at `path`; `null` counts as absent, as the providers send `null` for "none".
    fn get(&self, path: &str) -> Option<&'a Value> {
        path.split('.')
            .try_fold(self.0, |value, key| value.get(key))
            .filter(|value| !value.is_null())
    }

    fn present(&self, path: &str) -> bool {
        self.get(path).is_some()
    }

    fn str(&self, path: &str) -> Result<&'a str, ParseError> {
        let value = self.get(path).ok_or_else(|| ParseError::missing(path))?;
        value
            .as_str()
            .ok_or_else(|| wrong_type(path, "a string", value))
    }

    fn opt_bool(&self, path: &str) -> Result<Option<bool>, ParseError> {
        self.get(path)
            .map(|value| {
                value
                    .as_bool()
                    .ok_or_else(|| wrong_type(path, "true or false", value))
            })
            .transpose()
    }

    fn opt_u64(&self, path: &str) -> Result<Option<u64>, ParseError> {
        self.get(path)
            .map(|value| {
                value
                    .as_u64()
                    .ok_or_else(|| wrong_type(path, "a non-negative integer", value))
            })
            .transpose()
    }
}

fn wrong_type(path: &str, wanted: &str, got: &Value) -> ParseError {
    ParseError(format!("{path} must be {wanted}, got {}", kind(got)))
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests;
