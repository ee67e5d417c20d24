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
    }))
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
mod tests {
    use super::*;

    // Timestamps of the fixtures, in ms since the epoch (`date -u -d … +%s`).
    const GH_OPENED_MS: i64 = 1_795_514_560_000; // 2026-11-24T10:02:40Z
    const BB_CREATED_MS: i64 = 1_795_514_560_123; // 2026-11-24T10:02:40.123456+00:00
    const BB_UPDATED_MS: i64 = 1_795_516_277_000; // 2026-11-24T10:31:17.000942+00:00

    const GH_OPENED: &str =
        include_str!("../../tests/data/webhooks/github/pull_request.opened.json");
    const GH_OPENED_DRAFT: &str =
        include_str!("../../tests/data/webhooks/github/pull_request.opened.draft.json");
    const GH_OPENED_APP: &str =
        include_str!("../../tests/data/webhooks/github/pull_request.opened.app.json");
    const GH_SYNCHRONIZE: &str =
        include_str!("../../tests/data/webhooks/github/pull_request.synchronize.json");
    const GH_CLOSED_MERGED: &str =
        include_str!("../../tests/data/webhooks/github/pull_request.closed.merged.json");
    const GH_CLOSED_UNMERGED: &str =
        include_str!("../../tests/data/webhooks/github/pull_request.closed.unmerged.json");
    const GH_READY: &str =
        include_str!("../../tests/data/webhooks/github/pull_request.ready_for_review.json");
    const GH_LABELED: &str =
        include_str!("../../tests/data/webhooks/github/pull_request.labeled.json");
    const GH_MISSING_SHA: &str =
        include_str!("../../tests/data/webhooks/github/pull_request.opened.missing-head-sha.json");
    const GH_BAD_SHA: &str =
        include_str!("../../tests/data/webhooks/github/pull_request.synchronize.bad-sha.json");
    const GH_PUSH: &str = include_str!("../../tests/data/webhooks/github/push.json");
    const GH_PING: &str = include_str!("../../tests/data/webhooks/github/ping.app.json");
    const BB_CREATED: &str =
        include_str!("../../tests/data/webhooks/bitbucket/pullrequest.created.json");
    const BB_UPDATED: &str =
        include_str!("../../tests/data/webhooks/bitbucket/pullrequest.updated.json");
    const BB_FULFILLED: &str =
        include_str!("../../tests/data/webhooks/bitbucket/pullrequest.fulfilled.json");
    const BB_REJECTED: &str =
        include_str!("../../tests/data/webhooks/bitbucket/pullrequest.rejected.json");
    const BB_BAD_DATE: &str =
        include_str!("../../tests/data/webhooks/bitbucket/pullrequest.updated.bad-updated-on.json");
    const BB_PUSH: &str = include_str!("../../tests/data/webhooks/bitbucket/repo.push.json");
    const NOT_JSON: &str = include_str!("../../tests/data/webhooks/not-json.txt");

    fn mk_github_pr(body: &str) -> PrEvent {
        match parse_github("pull_request", body.as_bytes()) {
            Ok(Parsed::PullRequest(event)) => event,
            other => panic!("expected a pull-request event, got {other:?}"),
        }
    }

    fn mk_bitbucket_pr(key: &str, body: &str) -> PrEvent {
        match parse_bitbucket(key, body.as_bytes()) {
            Ok(Parsed::PullRequest(event)) => event,
            other => panic!("expected a pull-request event, got {other:?}"),
        }
    }

    fn ignored(what: &str) -> Result<Parsed, ParseError> {
        Ok(Parsed::Ignored {
            what: what.to_owned(),
        })
    }

    /// The fixture with one field replaced, for error cases too small to deserve a file.
    fn mk_patched(body: &str, path: &[&str], new: Value) -> Vec<u8> {
        let mut root: Value = serde_json::from_str(body).expect("fixture is JSON");
        let (last, parents) = path.split_last().expect("path is not empty");
        let parent = parents.iter().fold(&mut root, |v, key| &mut v[*key]);
        parent[*last] = new;
        serde_json::to_vec(&root).expect("Value serialises")
    }

    // --- GitHub ---

    #[test]
    fn github_opened_becomes_an_open_event_with_every_field_read() {
        // Arrange
        let body = GH_OPENED;

        // Act
        let event = mk_github_pr(body);

        // Assert
        assert_eq!(
            event,
            PrEvent {
                provider: Provider::Github,
                repository: "nimbus-labs/vcm-demo".into(),
                number: 42,
                change: Change::Open,
                head_sha: "d9c5607b8103b154ab43ef77cacccc2994e1719a".into(),
                branch: "feature/readiness-probe".into(),
                draft: false,
                title: "Füge Unterstützung hinzu ✓".into(),
                url: "https://github.com/nimbus-labs/vcm-demo/pull/42".into(),
                updated_at_ms: GH_OPENED_MS,
                merged: false,
                installation_id: None,
            }
        );
    }

    #[test]
    fn github_fixture_title_is_raw_utf8_as_github_sends_it() {
        // Arrange / Act
        let raw = GH_OPENED;

        // Assert
        assert!(raw.contains("Füge Unterstützung hinzu ✓"));
        assert!(!raw.contains("\\u"));
    }

    #[test]
    fn github_synchronize_becomes_a_move_to_the_after_sha() {
        // Arrange
        let root: Value = serde_json::from_str(GH_SYNCHRONIZE).expect("fixture is JSON");

        // Act
        let event = mk_github_pr(GH_SYNCHRONIZE);

        // Assert
        assert_eq!(event.change, Change::Move);
        assert_eq!(Some(event.head_sha.as_str()), root["after"].as_str());
        assert_ne!(root["before"], root["after"]);
    }

    #[test]
    fn github_closed_and_merged_becomes_a_merged_close() {
        // Arrange / Act
        let event = mk_github_pr(GH_CLOSED_MERGED);

        // Assert
        assert_eq!((event.change, event.merged), (Change::Close, true));
    }

    #[test]
    fn github_closed_without_merge_becomes_an_unmerged_close() {
        // Arrange / Act
        let event = mk_github_pr(GH_CLOSED_UNMERGED);

        // Assert
        assert_eq!((event.change, event.merged), (Change::Close, false));
    }

    #[test]
    fn github_closed_with_null_merged_falls_back_to_merged_at() {
        // Arrange
        let body = mk_patched(GH_CLOSED_MERGED, &["pull_request", "merged"], Value::Null);

        // Act
        let parsed = parse_github("pull_request", &body);

        // Assert
        assert!(matches!(
            parsed,
            Ok(Parsed::PullRequest(PrEvent { merged: true, .. }))
        ));
    }

    #[test]
    fn github_ready_for_review_becomes_an_open_that_is_no_longer_draft() {
        // Arrange / Act
        let event = mk_github_pr(GH_READY);

        // Assert
        assert_eq!(
            (event.change, event.draft, event.number),
            (Change::Open, false, 43)
        );
    }

    #[test]
    fn github_draft_opened_is_an_open_marked_draft() {
        // Arrange / Act
        let event = mk_github_pr(GH_OPENED_DRAFT);

        // Assert
        assert_eq!((event.change, event.draft), (Change::Open, true));
    }

    #[test]
    fn github_labeled_is_ignored_and_named() {
        // Arrange / Act
        let parsed = parse_github("pull_request", GH_LABELED.as_bytes());

        // Assert
        assert_eq!(parsed, ignored("GitHub pull_request action labeled"));
    }

    #[test]
    fn github_app_delivery_carries_the_installation_id() {
        // Arrange / Act
        let event = mk_github_pr(GH_OPENED_APP);

        // Assert
        assert_eq!(event.installation_id, Some(58_213_377));
    }

    #[test]
    fn github_push_with_epoch_dates_is_ignored() {
        // Arrange
        let root: Value = serde_json::from_str(GH_PUSH).expect("fixture is JSON");
        assert!(
            root["repository"]["created_at"].is_u64(),
            "fixture must use epoch dates"
        );

        // Act
        let parsed = parse_github("push", GH_PUSH.as_bytes());

        // Assert
        assert_eq!(parsed, ignored("GitHub event push"));
    }

    #[test]
    fn github_ping_without_repository_is_ignored() {
        // Arrange
        let root: Value = serde_json::from_str(GH_PING).expect("fixture is JSON");
        assert!(
            root.get("repository").is_none(),
            "fixture must lack repository"
        );

        // Act
        let parsed = parse_github("ping", GH_PING.as_bytes());

        // Assert
        assert_eq!(parsed, ignored("GitHub event ping"));
    }

    #[test]
    fn non_pr_events_with_an_empty_object_are_ignored_without_reading_fields() {
        // Arrange
        let cases = [
            ("github", "push"),
            ("github", "check_suite"),
            ("bitbucket", "repo:push"),
        ];

        for (provider, event) in cases {
            // Act
            let parsed = match provider {
                "github" => parse_github(event, b"{}"),
                _ => parse_bitbucket(event, b"{}"),
            };

            // Assert
            assert!(
                matches!(parsed, Ok(Parsed::Ignored { .. })),
                "{provider} {event} with {{}} must be ignored, got {parsed:?}"
            );
        }
    }

    #[test]
    fn github_ignored_action_needs_no_pull_request_fields() {
        // Arrange
        let body = br#"{"action":"assigned"}"#;

        // Act
        let parsed = parse_github("pull_request", body);

        // Assert
        assert_eq!(parsed, ignored("GitHub pull_request action assigned"));
    }

    #[test]
    fn github_uppercase_sha_is_lowercased() {
        // Arrange
        let upper = Value::from("D9C5607B8103B154AB43EF77CACCCC2994E1719A");
        let body = mk_patched(GH_OPENED, &["pull_request", "head", "sha"], upper);

        // Act
        let parsed = parse_github("pull_request", &body);

        // Assert
        let Ok(Parsed::PullRequest(event)) = parsed else {
            panic!("got {parsed:?}")
        };
        assert_eq!(event.head_sha, "d9c5607b8103b154ab43ef77cacccc2994e1719a");
    }

    // --- Bitbucket ---

    #[test]
    fn bitbucket_created_becomes_an_open_event_with_escaped_title_decoded() {
        // Arrange
        assert!(
            BB_CREATED.is_ascii(),
            "Bitbucket fixtures are \\u-escaped ASCII"
        );
        assert!(!BB_CREATED.contains("\"draft\""), "fixture must lack draft");

        // Act
        let event = mk_bitbucket_pr("pullrequest:created", BB_CREATED);

        // Assert
        assert_eq!(
            event,
            PrEvent {
                provider: Provider::Bitbucket,
                repository: "nimbus-labs/vcm-demo".into(),
                number: 17,
                change: Change::Open,
                head_sha: "3f9a1c2b7d4e".into(),
                branch: "feature/groessen".into(),
                draft: false,
                title: "Verbessere Größenangaben für Übersetzungen 🚀".into(),
                url: "https://bitbucket.org/nimbus-labs/vcm-demo/pull-requests/17".into(),
                updated_at_ms: BB_CREATED_MS,
                merged: false,
                installation_id: None,
            }
        );
    }

    #[test]
    fn bitbucket_updated_becomes_a_move_to_the_12_char_hash() {
        // Arrange / Act
        let event = mk_bitbucket_pr("pullrequest:updated", BB_UPDATED);

        // Assert
        assert_eq!(event.change, Change::Move);
        assert_eq!(event.head_sha, "c0ffee12ab34");
        assert_eq!(event.updated_at_ms, BB_UPDATED_MS);
    }

    #[test]
    fn bitbucket_fulfilled_becomes_a_merged_close() {
        // Arrange / Act
        let event = mk_bitbucket_pr("pullrequest:fulfilled", BB_FULFILLED);

        // Assert
        assert_eq!((event.change, event.merged), (Change::Close, true));
    }

    #[test]
    fn bitbucket_rejected_becomes_an_unmerged_close() {
        // Arrange / Act
        let event = mk_bitbucket_pr("pullrequest:rejected", BB_REJECTED);

        // Assert
        assert_eq!((event.change, event.merged), (Change::Close, false));
    }

    #[test]
    fn bitbucket_repo_push_and_other_pr_keys_are_ignored() {
        // Arrange
        let cases = [
            ("repo:push", BB_PUSH, "Bitbucket event repo:push"),
            (
                "pullrequest:approved",
                BB_UPDATED,
                "Bitbucket event pullrequest:approved",
            ),
            (
                "pullrequest:comment_created",
                "{}",
                "Bitbucket event pullrequest:comment_created",
            ),
        ];

        for (key, body, what) in cases {
            // Act
            let parsed = parse_bitbucket(key, body.as_bytes());

            // Assert
            assert_eq!(parsed, ignored(what), "{key}");
        }
    }

    // --- errors ---

    #[test]
    fn a_body_that_is_not_json_is_an_error_for_every_event() {
        // Arrange
        let github = ["pull_request", "push", "ping", "whatever"];
        let bitbucket = ["pullrequest:created", "repo:push", "whatever"];

        // Act
        let results = github
            .iter()
            .map(|e| parse_github(e, NOT_JSON.as_bytes()))
            .chain(
                bitbucket
                    .iter()
                    .map(|k| parse_bitbucket(k, NOT_JSON.as_bytes())),
            );

        // Assert
        for result in results {
            let err = result.expect_err("not JSON must be rejected");
            assert!(err.to_string().starts_with("the body is not JSON"), "{err}");
        }
    }

    #[test]
    fn github_pull_request_without_head_sha_names_the_field() {
        // Arrange / Act
        let err = parse_github("pull_request", GH_MISSING_SHA.as_bytes()).expect_err("rejected");

        // Assert
        assert_eq!(err.to_string(), "pull_request.head.sha is missing");
    }

    #[test]
    fn github_bad_sha_names_the_field_and_the_value() {
        // Arrange / Act
        let err = parse_github("pull_request", GH_BAD_SHA.as_bytes()).expect_err("rejected");

        // Assert
        let msg = err.to_string();
        assert!(
            msg.starts_with("pull_request.head.sha must be a commit hash"),
            "{msg}"
        );
        assert!(
            msg.contains("d9c5607b81z3b154ab43ef77cacccc2994e1719a"),
            "{msg}"
        );
    }

    #[test]
    fn bitbucket_updated_on_that_is_not_a_date_names_the_field() {
        // Arrange / Act
        let err =
            parse_bitbucket("pullrequest:updated", BB_BAD_DATE.as_bytes()).expect_err("rejected");

        // Assert
        let msg = err.to_string();
        assert!(
            msg.starts_with("pullrequest.updated_on must be an RFC 3339 timestamp"),
            "{msg}"
        );
        assert!(msg.contains("last Tuesday"), "{msg}");
    }

    #[test]
    fn invalid_fields_are_rejected_with_the_field_named() {
        // Arrange: (path, replacement, expected message start, reason)
        let cases: [(&[&str], Value, &str, &str); 7] = [
            (
                &["pull_request", "head", "sha"],
                "abc12".into(),
                "pull_request.head.sha must",
                "too short",
            ),
            (
                &["pull_request", "head", "sha"],
                "a".repeat(41).into(),
                "pull_request.head.sha must",
                "too long",
            ),
            (
                &["pull_request", "head", "sha"],
                42.into(),
                "pull_request.head.sha must be a string",
                "wrong type",
            ),
            (
                &["number"],
                0.into(),
                "number must be a positive integer",
                "zero",
            ),
            (
                &["repository", "full_name"],
                "vcm-demo".into(),
                "repository.full_name must look like owner/name",
                "no slash",
            ),
            (
                &["repository", "full_name"],
                "a/b/c".into(),
                "repository.full_name must look like owner/name",
                "two slashes",
            ),
            (
                &["repository", "full_name"],
                "nimbus labs/x".into(),
                "repository.full_name must look like owner/name",
                "whitespace",
            ),
        ];

        for (path, new, expected, reason) in cases {
            let body = mk_patched(GH_OPENED, path, new);

            // Act
            let result = parse_github("pull_request", &body);

            // Assert
            let err = result.expect_err(reason);
            assert!(err.to_string().starts_with(expected), "{reason}: {err}");
        }
    }

    #[test]
    fn an_empty_event_header_is_an_error_that_names_the_header() {
        // Arrange / Act
        let github = parse_github("", b"{}").expect_err("rejected");
        let bitbucket = parse_bitbucket(" ", b"{}").expect_err("rejected");

        // Assert
        assert!(github.to_string().contains("X-GitHub-Event"), "{github}");
        assert!(bitbucket.to_string().contains("X-Event-Key"), "{bitbucket}");
    }

    #[test]
    fn a_pr_event_whose_body_is_not_an_object_is_an_error() {
        // Arrange / Act
        let err = parse_bitbucket("pullrequest:created", b"[]").expect_err("rejected");

        // Assert
        assert_eq!(
            err.to_string(),
            "the body must be a JSON object, got an array"
        );
    }

    #[test]
    fn provider_names_are_stable_lowercase() {
        // Arrange / Act
        let names = [Provider::Github, Provider::Bitbucket].map(|p| (p.as_str(), p.to_string()));

        // Assert
        assert_eq!(
            names,
            [
                ("github", "github".into()),
                ("bitbucket", "bitbucket".into())
            ]
        );
    }
}
