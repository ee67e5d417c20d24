//! Who is asking.

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Stable subject: `token:<name>` for API tokens.
    pub subject: String,
    /// `admin`, `developer`, `ci` or `viewer`.
    pub role: String,
    /// Team, if any.
    pub team: Option<String>,
}

impl Principal {
    /// The principal of an API token called `name`.
    pub fn token(name: &str, role: &str, team: Option<String>) -> Self {
        Self {
            subject: format!("token:{name}"),
            role: role.to_owned(),
            team,
        }
    }

    /// The reconciler and workers act as this principal.
    pub fn system() -> Self {
        Self {
            subject: "system:vcm".into(),
            role: "admin".into(),
            team: None,
        }
    }
}
