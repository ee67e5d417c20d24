//! Audit records: one per request (two for a mutating one), hash-chained.
//!
//! A record's `hash` is SHA-256 over the previous record's hash and the record's canonical JSON
//! ([`AuditRecord::digest`]): every field but `hash` and `signature`, in a fixed order, `null`
//! for what is absent. The first record of the log links to the anchor of its segment: the
//! genesis value of the installation, or the signed checkpoint that retention left where it
//! purged (`AuditCheckpoint`).

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::Timestamp;

/// Which door a request came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Door {
    /// The REST API (`/v1/…`, `/openapi.json`).
    Api,
    /// A webhook delivery (`/v1/webhooks/…`).
    Webhook,
    /// The cluster gateway (`/k8s/…`).
    Gateway,
    /// The VirtualCluster controller, acting for an object (`crd:<namespace>/<name>`).
    Crd,
    /// vcm itself: a note about the log (it found a head it had not signed).
    System,
}

/// The code of the record vcm writes when it takes up a log whose last record it did not sign
/// (appended outside vcm, or signed with another key): a walk of the chain stops there.
pub const UNTRUSTED_HEAD: &str = "audit_head_untrusted";

/// When in a request's life the record was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// Before a mutating request runs: written first, and the request is refused (503) when it
    /// cannot be.
    Received,
    /// Once the answer is known.
    Completed,
}

/// What became of a request, from its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// Authenticated and authorized (whatever the outcome: a 404 or a 409 is still allowed).
    Allowed,
    /// Refused by a role, a quota or the policy (403).
    Denied,
    /// No valid credentials (401).
    Unauthenticated,
    /// Over a request budget (429).
    Throttled,
    /// The request was malformed or the server failed before deciding (other 4xx and 5xx,
    /// except 404 and 409 which are answers).
    Failed,
}

// === impl Door ===

impl Door {
    /// The lowercase name used in the API, the store, logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::Webhook => "webhook",
            Self::Crd => "crd",
            Self::Gateway => "gateway",
            Self::System => "system",
        }
    }
}

// === impl Decision ===

impl Decision {
    /// The decision a response status stands for.
    pub fn of_status(status: u16) -> Self {
        match status {
            401 => Self::Unauthenticated,
            403 => Self::Denied,
            429 => Self::Throttled,
            404 | 409 => Self::Allowed,
            s if s >= 400 => Self::Failed,
            _ => Self::Allowed,
        }
    }

    /// The lowercase name used in the API and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allowed => "allowed",
            Self::Denied => "denied",
            Self::Unauthenticated => "unauthenticated",
            Self::Throttled => "throttled",
            Self::Failed => "failed",
        }
    }

    /// The decision named `s`.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Allowed,
            Self::Denied,
            Self::Unauthenticated,
            Self::Throttled,
            Self::Failed,
        ]
        .into_iter()
        .find(|d| d.as_str() == s)
    }
}

/// What one record says about a request, before it joins the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditEntry {
    /// When the request arrived (whole milliseconds).
    #[schema(value_type = String, format = DateTime)]
    pub time: Timestamp,
    /// The request's `X-Request-Id`.
    pub request_id: String,
    /// The door it came through.
    pub door: Door,
    /// `received` (before a mutating request runs) or `completed`.
    pub stage: Stage,
    /// Who: the authenticated principal's subject (`token:…`, `oidc:…`, `webhook:github`…).
    pub principal: Option<String>,
    /// Why authentication failed, when it did (never the credential itself).
    pub auth_error: Option<String>,
    /// The client's address (through trusted proxies).
    pub source: Option<String>,
    /// The route: `POST /v1/clusters`, `GET /v1/clusters/{id}`, or for the gateway the
    /// Kubernetes verb and resource (`k8s list pods`).
    pub action: String,
    /// What it was done to: a cluster id, a token id, a team.
    pub target: Option<String>,
    /// What became of it (`completed` records only).
    pub decision: Option<Decision>,
    /// The error code of a refused or failed request.
    pub code: Option<String>,
    /// The messages sent with a refusal (the policy's, a quota's, a role's).
    pub messages: Vec<String>,
    /// The response status (`completed` records only).
    pub status: Option<u16>,
    /// Microseconds until the answer started (`completed` records only).
    pub duration_us: Option<u64>,
}

/// A stored record: an entry with its place in the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditRecord {
    /// Position in the log, from 1, without gaps.
    pub seq: u64,
    /// What it says.
    #[serde(flatten)]
    pub entry: AuditEntry,
    /// The previous record's hash (or the segment's anchor), hex.
    pub prev: String,
    /// SHA-256 of `prev` and this record's canonical JSON, hex.
    pub hash: String,
    /// The server's Ed25519 signature of `hash` (base64), on the last record of every batch
    /// written: a record appended or rewritten outside vcm cannot carry one.
    pub signature: Option<String>,
}

/// Where retention cut the log: the last purged record, signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditCheckpoint {
    /// The last purged record's `seq`: the log goes on at `through_seq + 1`.
    pub through_seq: u64,
    /// Its hash: the next record's `prev`.
    pub hash: String,
    /// When the purge ran.
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    /// Ed25519 signature of [`AuditCheckpoint::signed_bytes`], base64.
    pub signature: String,
}

/// The canonical form a record's hash covers.
#[derive(Serialize)]
struct Canonical<'a> {
    v: u8,
    seq: u64,
    time: String,
    request_id: &'a str,
    door: Door,
    stage: Stage,
    principal: Option<&'a str>,
    auth_error: Option<&'a str>,
    source: Option<&'a str>,
    action: &'a str,
    target: Option<&'a str>,
    decision: Option<Decision>,
    code: Option<&'a str>,
    messages: &'a [String],
    status: Option<u16>,
    duration_us: Option<u64>,
}

// === impl AuditRecord ===

impl AuditRecord {
    /// The hash `entry` gets at `seq` after a record (or anchor) hashed `prev`.
    pub fn digest(seq: u64, entry: &AuditEntry, prev: &str) -> String {
        let canonical = Canonical {
            v: 1,
            seq,
            time: canonical_time(entry.time),
            request_id: &entry.request_id,
            door: entry.door,
            stage: entry.stage,
            principal: entry.principal.as_deref(),
            auth_error: entry.auth_error.as_deref(),
            source: entry.source.as_deref(),
            action: &entry.action,
            target: entry.target.as_deref(),
            decision: entry.decision,
            code: entry.code.as_deref(),
            messages: &entry.messages,
            status: entry.status,
            duration_us: entry.duration_us,
        };
        let mut hasher = Sha256::new();
        hasher.update(prev.as_bytes());
        hasher.update(b"\n");
        // NB: serializing plain strings, integers and enums cannot fail.
        hasher.update(serde_json::to_vec(&canonical).unwrap_or_default());
        hex::encode(hasher.finalize())
    }

    /// `entry` as the record at `seq` after `prev`, hashed (not signed).
    pub fn link(seq: u64, entry: AuditEntry, prev: String) -> Self {
        let hash = Self::digest(seq, &entry, &prev);
        Self {
            seq,
            entry,
            prev,
            hash,
            signature: None,
        }
    }

    /// Whether the record's content still gives its hash.
    pub fn intact(&self) -> bool {
        Self::digest(self.seq, &self.entry, &self.prev) == self.hash
    }

    /// What a record's signature covers.
    pub fn signed_bytes(hash: &str) -> Vec<u8> {
        format!("vcm-audit-record\n{hash}").into_bytes()
    }
}

// === impl AuditCheckpoint ===

impl AuditCheckpoint {
    /// What a checkpoint's signature covers.
    pub fn signed_bytes(&self) -> Vec<u8> {
        format!(
            "vcm-audit-checkpoint\n{}\n{}\n{}",
            self.through_seq,
            self.hash,
            self.at.as_millisecond()
        )
        .into_bytes()
    }
}

/// The anchor the first segment of an installation's log links to.
pub fn genesis(installation: &str) -> String {
    hex::encode(Sha256::digest(
        format!("vcm-audit-genesis\n{installation}").as_bytes(),
    ))
}

/// `2026-11-30T04:50:00.123Z`: always milliseconds, always UTC.
fn canonical_time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// A completed `GET /v1/clusters` record of `token:alice` at `i` ms after a fixed time: for
/// tests.
#[cfg(test)]
pub(crate) fn sample_entry(i: u64) -> AuditEntry {
    AuditEntry {
        time: Timestamp::from_millisecond(1_764_470_000_000 + i64::try_from(i).unwrap_or(0))
            .unwrap_or(Timestamp::UNIX_EPOCH),
        request_id: format!("r-{i}"),
        door: Door::Api,
        stage: Stage::Completed,
        principal: Some("token:alice".into()),
        auth_error: None,
        source: Some("127.0.0.1".into()),
        action: "GET /v1/clusters".into(),
        target: None,
        decision: Some(Decision::Allowed),
        code: None,
        messages: vec![format!("m{i}")],
        status: Some(200),
        duration_us: Some(90),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn entry() -> AuditEntry {
        AuditEntry {
            time: Timestamp::from_millisecond(1_764_470_000_123).unwrap(),
            request_id: "r-1".into(),
            door: Door::Api,
            stage: Stage::Completed,
            principal: Some("token:alice".into()),
            auth_error: None,
            source: Some("127.0.0.1".into()),
            action: "GET /v1/clusters/{id}".into(),
            target: Some("c-1".into()),
            decision: Some(Decision::Allowed),
            code: None,
            messages: vec![],
            status: Some(200),
            duration_us: Some(120),
        }
    }

    #[test]
    fn a_record_survives_a_json_round_trip_with_its_hash_intact() {
        // Arrange
        let record = AuditRecord::link(7, entry(), genesis("install"));

        // Act
        let json = serde_json::to_string(&record).unwrap();
        let back: AuditRecord = serde_json::from_str(&json).unwrap();

        // Assert
        assert_eq!(back, record);
        assert!(back.intact());
        assert!(
            json.contains("\"time\":\"2025-11-30T02:33:20.123Z\""),
            "{json}"
        );
    }

    #[test]
    fn any_change_to_a_field_or_the_link_changes_the_hash() {
        // Arrange
        let record = AuditRecord::link(7, entry(), genesis("install"));
        let mut edits: Vec<AuditRecord> = Vec::new();
        let mut edit = |f: &dyn Fn(&mut AuditRecord)| {
            let mut r = record.clone();
            f(&mut r);
            edits.push(r);
        };
        edit(&|r| r.seq = 8);
        edit(&|r| r.prev = genesis("other"));
        edit(&|r| r.entry.principal = Some("token:mallory".into()));
        edit(&|r| r.entry.status = Some(403));
        edit(&|r| r.entry.messages = vec!["x".into()]);
        edit(&|r| r.entry.target = None);
        edit(&|r| r.entry.time = Timestamp::from_millisecond(1_764_470_000_124).unwrap());

        // Act + Assert
        assert!(record.intact());
        for r in edits {
            assert!(!r.intact(), "{r:?}");
        }
    }

    #[test]
    fn a_status_maps_to_its_decision() {
        let cases = [
            (200, Decision::Allowed),
            (201, Decision::Allowed),
            (404, Decision::Allowed),
            (409, Decision::Allowed),
            (401, Decision::Unauthenticated),
            (403, Decision::Denied),
            (429, Decision::Throttled),
            (422, Decision::Failed),
            (503, Decision::Failed),
        ];
        for (status, decision) in cases {
            assert_eq!(Decision::of_status(status), decision, "{status}");
            assert_eq!(Decision::parse(decision.as_str()), Some(decision));
        }
    }
}
