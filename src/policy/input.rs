//! The input document, version 1: what a policy sees of a request (`input` in Rego).
//!
//! NB: this document is a contract with operators' policies. Adding a field is compatible;
//! renaming, removing or changing the meaning of one is not and bumps [`INPUT_VERSION`].

use serde::{Deserialize, Serialize};

use crate::domain::{Principal, Role};

/// The version of the input document this build sends (`input.version`).
pub const INPUT_VERSION: u32 = 1;

/// The actions a policy is asked about (`input.action`): `<resource>.<verb>`.
pub mod action {
    /// `POST /v1/clusters`; `input.request` is the request body.
    pub const CLUSTER_CREATE: &str = "cluster.create";
    /// `PUT /v1/clusters/{id}`; `input.cluster` is the cluster, `input.request` the body.
    pub const CLUSTER_UPDATE: &str = "cluster.update";
    /// `DELETE /v1/clusters/{id}`; `input.cluster` is the cluster.
    pub const CLUSTER_DELETE: &str = "cluster.delete";
    /// Taking a kubeconfig of a cluster; `input.cluster` is the cluster, `input.request` the
    /// body or query, if any.
    pub const CLUSTER_KUBECONFIG: &str = "cluster.kubeconfig";
    /// `POST /v1/tokens`; `input.request` is the request body (never a secret).
    pub const TOKEN_CREATE: &str = "token.create";
    /// Revoking a token; `input.request` is `{"id": "t-…"}`.
    pub const TOKEN_REVOKE: &str = "token.revoke";
    /// `POST /v1/clusters/{id}/keepalive` (resets the idle clock); `input.cluster` is the
    /// cluster.
    pub const CLUSTER_KEEPALIVE: &str = "cluster.keepalive";
    /// Revoking a cluster's gateway credentials; `input.cluster` is the cluster,
    /// `input.request` is `{"credential": "g-…"}` (`null`: all of them).
    pub const CLUSTER_CREDENTIALS_REVOKE: &str = "cluster.credentials.revoke";
}

/// The input document (`input`), version 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyInput {
    /// `input.version`: [`INPUT_VERSION`] (1). A policy may check it to refuse documents it
    /// was not written for.
    pub version: u32,
    /// `input.principal`: who is asking.
    pub principal: InputPrincipal,
    /// `input.action`: what they ask for, one of the [`action`] names (`cluster.create`, …).
    pub action: String,
    /// `input.cluster`: the existing cluster the action is about, exactly as the API shows it
    /// (`GET /v1/clusters/{id}`); absent for `cluster.create` and token actions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<serde_json::Value>,
    /// `input.request`: the request body as sent (e.g. `{"size": "large", "ttl": "2h",
    /// "labels": {…}}` for `cluster.create`); absent when the request has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<serde_json::Value>,
    /// `input.usage`: what the caller holds right now. `None` leaves it out of the document:
    /// the server does so when no module of the policy may read it (counting it costs store
    /// reads; see [`crate::policy::Compiled::reads_usage`]). A document read without it (`vcm
    /// policy eval --input`) has zero usage, as before.
    #[serde(default = "zero_usage", skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// `input.time`: the time of the request, RFC 3339 in UTC (`2026-03-02T09:15:00Z`). Time
    /// rules read it (`time.parse_rfc3339_ns(input.time)`) rather than `time.now_ns()`, so a
    /// policy can be tested at a fixed time.
    #[serde(default = "now_rfc3339")]
    pub time: String,
}

/// `input.principal`: the authenticated caller.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputPrincipal {
    /// `subject`: the stable id clusters record as their `owner` (`token:t-1a2b3c`,
    /// `oidc:github/repo:org/app:pull_request`, `sa:host/ns/name`, `cert:ci-runner`, …).
    pub subject: String,
    /// `name`: a name for people (the token's name, the certificate's CN). Never decide on it.
    pub name: String,
    /// `kind`: how the caller authenticated, from the subject's prefix.
    pub kind: PrincipalKind,
    /// `role`: `admin`, `developer`, `ci` or `viewer`.
    pub role: Role,
    /// `team`: the caller's team, if any (`null` otherwise).
    #[serde(default)]
    pub team: Option<String>,
    /// `claims`: the verified claims of an OIDC token (`repository`, `ref`, `actor`, …); an
    /// empty object for every other kind.
    #[serde(default)]
    pub claims: serde_json::Map<String, serde_json::Value>,
}

/// `input.principal.kind`: how the caller authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PrincipalKind {
    /// An API token (`token:` subjects).
    Token,
    /// A CI OIDC token (`oidc:`).
    Oidc,
    /// A Kubernetes ServiceAccount token (`sa:`).
    ServiceAccount,
    /// A client certificate (`cert:`).
    Certificate,
    /// vcm's webhook engine acting for a repository (`webhook:`).
    Webhook,
    /// vcm itself (`system:`): the reconciler and workers.
    System,
    /// A subject with none of the prefixes above (none exists today).
    Unknown,
}

/// `input.usage`: what the caller holds at the time of the request, before it takes effect.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Usage {
    /// `team_live_clusters`: live (not deleted) clusters of the caller's team; 0 without a team.
    pub team_live_clusters: u64,
    /// `principal_live_clusters`: live clusters the caller owns.
    pub principal_live_clusters: u64,
    /// `team_ttl_hours`: the TTLs of the team's live clusters, summed, in hours.
    pub team_ttl_hours: f64,
    /// `principal_ttl_hours`: the TTLs of the caller's live clusters, summed, in hours.
    pub principal_ttl_hours: f64,
}

#[allow(clippy::unnecessary_wraps)] // NB: serde's `default` must return the field's type.
fn zero_usage() -> Option<Usage> {
    Some(Usage::default())
}

fn now_rfc3339() -> String {
    jiff::Timestamp::now().to_string()
}

// === impl PolicyInput ===

impl PolicyInput {
    /// A version-1 document for `principal` asking for `action` now, with no cluster, no
    /// request body and zero usage; fill those in with the `with_*` methods.
    pub fn new(principal: InputPrincipal, action: impl Into<String>) -> Self {
        Self {
            version: INPUT_VERSION,
            principal,
            action: action.into(),
            cluster: None,
            request: None,
            usage: Some(Usage::default()),
            time: now_rfc3339(),
        }
    }

    /// The existing cluster, as the API shows it.
    #[must_use]
    pub fn with_cluster(mut self, cluster: serde_json::Value) -> Self {
        self.cluster = Some(cluster);
        self
    }

    /// The request body.
    #[must_use]
    pub fn with_request(mut self, request: serde_json::Value) -> Self {
        self.request = Some(request);
        self
    }

    /// The caller's current usage.
    #[must_use]
    pub fn with_usage(mut self, usage: Usage) -> Self {
        self.usage = Some(usage);
        self
    }

    /// Without `input.usage`, for a policy that cannot read it.
    #[must_use]
    pub fn without_usage(mut self) -> Self {
        self.usage = None;
        self
    }

    /// The time of the request (RFC 3339), instead of now.
    #[must_use]
    pub fn at(mut self, time: impl Into<String>) -> Self {
        self.time = time.into();
        self
    }
}

// === impl InputPrincipal ===

impl InputPrincipal {
    /// The caller `subject` (its kind read from the prefix), called `name`, without claims.
    pub fn new(subject: &str, name: &str, role: Role, team: Option<String>) -> Self {
        Self {
            subject: subject.to_owned(),
            name: name.to_owned(),
            kind: PrincipalKind::of_subject(subject),
            role,
            team,
            claims: serde_json::Map::new(),
        }
    }

    /// The authenticated `principal`, with the verified claims of its OIDC token (pass an
    /// empty map for other kinds).
    pub fn from_principal(
        principal: &Principal,
        claims: serde_json::Map<String, serde_json::Value>,
    ) -> Self {
        Self {
            claims,
            ..Self::new(
                &principal.subject,
                &principal.display,
                principal.role,
                principal.team.clone(),
            )
        }
    }
}

// === impl PrincipalKind ===

impl PrincipalKind {
    /// Subject prefixes and the kind each one means (the prefixes `domain::Principal` uses).
    const PREFIXES: [(&'static str, Self); 6] = [
        ("token:", Self::Token),
        ("oidc:", Self::Oidc),
        ("sa:", Self::ServiceAccount),
        ("cert:", Self::Certificate),
        ("webhook:", Self::Webhook),
        ("system:", Self::System),
    ];

    /// The kind of the caller whose subject is `subject`.
    pub fn of_subject(subject: &str) -> Self {
        Self::PREFIXES
            .into_iter()
            .find(|(prefix, _)| subject.starts_with(prefix))
            .map_or(Self::Unknown, |(_, kind)| kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kind_comes_from_the_subject_prefix() {
        let cases = [
            ("token:t-1", PrincipalKind::Token),
            ("oidc:github/repo:org/app", PrincipalKind::Oidc),
            ("sa:host/ns/name", PrincipalKind::ServiceAccount),
            ("cert:runner", PrincipalKind::Certificate),
            ("webhook:github/org/app", PrincipalKind::Webhook),
            ("system:vcm", PrincipalKind::System),
            ("tokens-are-prefixed", PrincipalKind::Unknown),
        ];
        for (subject, kind) in cases {
            assert_eq!(PrincipalKind::of_subject(subject), kind, "{subject}");
        }
    }

    #[test]
    fn the_document_has_the_documented_shape() {
        // Arrange
        let principal = InputPrincipal::from_principal(
            &Principal::token("t-1", "ci-bot", Role::Ci, Some("web".into())),
            serde_json::Map::new(),
        );
        let input = PolicyInput::new(principal, action::CLUSTER_CREATE)
            .with_request(serde_json::json!({ "size": "small" }))
            .at("2026-03-02T09:15:00Z");

        // Act
        let json = serde_json::to_value(&input).expect("the input serialises");

        // Assert
        assert_eq!(
            json,
            serde_json::json!({
                "version": 1,
                "principal": {
                    "subject": "token:t-1", "name": "ci-bot", "kind": "token", "role": "ci",
                    "team": "web", "claims": {}
                },
                "action": "cluster.create",
                "request": { "size": "small" },
                "usage": {
                    "team_live_clusters": 0, "principal_live_clusters": 0,
                    "team_ttl_hours": 0.0, "principal_ttl_hours": 0.0
                },
                "time": "2026-03-02T09:15:00Z"
            })
        );
        let back: PolicyInput = serde_json::from_value(json).expect("and reads back");
        assert_eq!(back, input);
    }

    #[test]
    fn the_service_account_kind_is_spelled_as_documented() {
        let json = serde_json::to_value(PrincipalKind::ServiceAccount).ok();

        assert_eq!(json, Some(serde_json::json!("serviceaccount")));
    }
}
