//! Who is asking, and what their role lets them do.

use std::fmt;

/// What a principal may do. The rules themselves live in the service (`service::access`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything.
    Admin,
    /// Create; read, update, delete and take credentials of its own and its team's clusters.
    Developer,
    /// Create; read, delete and take credentials of the clusters it created.
    Ci,
    /// Read its team's clusters.
    Viewer,
}

/// Every role, in the order the docs list them.
pub const ROLES: [Role; 4] = [Role::Admin, Role::Developer, Role::Ci, Role::Viewer];

// === impl Role ===

impl Role {
    /// The role's name on the wire and in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Developer => "developer",
            Self::Ci => "ci",
            Self::Viewer => "viewer",
        }
    }

    /// The role called `s` (exact, lowercase); `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        ROLES.into_iter().find(|r| r.as_str() == s)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Stable, unique subject; clusters record it as their `owner`. `token:<token id>` for API
    /// tokens (names are not unique), `cert:<name>` for client certificates, `sa:<host>/<ns>/<sa>`
    /// for Kubernetes ServiceAccounts, `oidc:<issuer name>/<sub>` for CI OIDC tokens (the
    /// `name` of its `[[auth.oidc]]` entry).
    pub subject: String,
    /// A name for people (the token's name, the certificate's CN): events and logs show it
    /// next to the subject. Never used to decide anything.
    pub display: String,
    /// What it may do.
    pub role: Role,
    /// Its team, if any: developers and viewers see their team's clusters.
    pub team: Option<String>,
    /// The pull-request clusters of one repository it may also read, take credentials of and
    /// keep alive (a CI job of that repository: `[[auth.oidc.rules]] pull_request_clusters`).
    pub repository: Option<RepoGrant>,
    /// The verified claims of its CI OIDC token (what a Rego policy reads as
    /// `input.principal.claims`); `None` for other kinds of credential.
    pub claims: Option<std::sync::Arc<serde_json::Map<String, serde_json::Value>>>,
}

/// The clusters vcm's webhook engine made for one repository's pull requests, named by the
/// repository's id (the `repo-id` label: GitHub `repository.id`, Bitbucket `repository.uuid`
/// without braces) or its `owner/name` (the `repo` label).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RepoGrant {
    /// `repo-id` or `repo`.
    pub label: &'static str,
    /// The label's value.
    pub value: String,
}

// === impl RepoGrant ===

impl RepoGrant {
    /// Principals of the webhook engine own pull-request clusters: `webhook:<provider>/<repo>`.
    pub const OWNER_PREFIX: &'static str = "webhook:";

    /// The grant a CI token's repository claim names: `owner/name` (GitHub `repository`),
    /// a decimal id (GitHub `repository_id`) or a UUID, braces or not (Bitbucket
    /// `repositoryUuid`). `None` for an empty value.
    pub fn from_claim(value: &str) -> Option<Self> {
        let value = value.trim();
        if value.is_empty() {
            return None;
        }
        Some(if value.contains('/') {
            Self {
                label: "repo",
                value: crate::webhooks::repo_label(value),
            }
        } else {
            Self {
                label: "repo-id",
                value: crate::webhooks::event::normalize_uuid(value),
            }
        })
    }

    /// Whether `owner` and `labels` make a cluster one of these.
    pub fn covers(&self, owner: &str, labels: &super::Labels) -> bool {
        owner.starts_with(Self::OWNER_PREFIX) && labels.get(self.label) == Some(self.value.as_str())
    }
}

impl fmt::Display for Principal {
    /// `ops (token:t-1a2b3c)`: the name people know, and the subject that decides.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.display, self.subject)
    }
}

impl Principal {
    /// The principal of API token `id` (called `name`).
    pub fn token(id: &str, name: &str, role: Role, team: Option<String>) -> Self {
        Self {
            subject: format!("token:{id}"),
            display: name.to_owned(),
            role,
            team,
            repository: None,
            claims: None,
        }
    }

    /// The reconciler and workers act as this principal.
    pub fn system() -> Self {
        Self {
            subject: "system:vcm".into(),
            display: "vcm".into(),
            role: Role::Admin,
            team: None,
            repository: None,
            claims: None,
        }
    }

    /// An admin?
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_through_their_names_and_nothing_else_parses() {
        for r in ROLES {
            assert_eq!(Role::parse(r.as_str()), Some(r));
            assert_eq!(serde_json::to_string(&r).ok(), Some(format!("\"{r}\"")));
        }
        assert_eq!(Role::parse("Admin"), None);
        assert_eq!(Role::parse("root"), None);
    }
}
