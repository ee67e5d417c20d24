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
        }
    }

    /// The reconciler and workers act as this principal.
    pub fn system() -> Self {
        Self {
            subject: "system:vcm".into(),
            display: "vcm".into(),
            role: Role::Admin,
            team: None,
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
