//! Who may do what to which cluster: the role rules, in one place, for every use-case.
//!
//! - `admin`: everything.
//! - `developer`: create; read, update, delete, keep alive and take credentials of its own and
//!   its team's clusters.
//! - `ci`: create; read, delete, keep alive and take credentials of the clusters it created.
//! - `viewer`: read its team's clusters (and its own, though it cannot create any).
//!
//! A cluster the caller may not see is reported as not found (its existence is not the
//! caller's business); one it may see but not change is forbidden, naming the missing right.

use crate::domain::{Cluster, Principal, Role};
use crate::error::{Error, Result};
use crate::store::Visibility;

/// What a request does to a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Get it, list it, read its events.
    Read,
    /// Change its ttl, idle timeout or labels.
    Update,
    /// Delete it.
    Delete,
    /// Take a kubeconfig.
    Credentials,
    /// Mark activity.
    Keepalive,
}

// === impl Action ===

impl Action {
    fn right(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Update => "update",
            Self::Delete => "delete",
            Self::Credentials => "take credentials of",
            Self::Keepalive => "keep alive",
        }
    }
}

/// Whether `p` may see `c` at all.
pub fn can_see(p: &Principal, c: &Cluster) -> bool {
    match p.role {
        Role::Admin => true,
        Role::Ci => c.owner == p.subject || granted(p, c),
        Role::Developer | Role::Viewer => c.owner == p.subject || same_team(p, c) || granted(p, c),
    }
}

/// Whether `p` may do `action` to `c` (which it can see).
fn can(p: &Principal, c: &Cluster, action: Action) -> bool {
    match (p.role, action) {
        (Role::Admin, _) => true,
        (_, Action::Read) => can_see(p, c),
        (Role::Viewer, _) => false,
        // NB: a repository's CI uses its pull-request clusters; the pull request closing
        // deletes them, and their settings are the rule's.
        (_, Action::Credentials | Action::Keepalive) if granted(p, c) => true,
        (Role::Developer, _) => c.owner == p.subject || same_team(p, c),
        (Role::Ci, Action::Update) => false,
        (Role::Ci, _) => c.owner == p.subject,
    }
}

/// Whether `c` is a pull-request cluster of the repository `p` is a CI job of.
fn granted(p: &Principal, c: &Cluster) -> bool {
    p.repository
        .as_ref()
        .is_some_and(|g| g.covers(&c.owner, &c.labels))
}

/// `Ok` when `p` may do `action` to `c`; a not-found error when it may not see it, and a
/// forbidden one naming the missing right when it may see but not do it.
pub fn authorize(p: &Principal, c: &Cluster, action: Action, asked_as: &str) -> Result<()> {
    if !can_see(p, c) {
        return Err(Error::ClusterNotFound(asked_as.to_owned()));
    }
    if can(p, c, action) {
        return Ok(());
    }
    Err(Error::Forbidden(format!(
        "the {} role may not {} cluster {}{}",
        p.role,
        action.right(),
        c.name,
        match (p.role, action) {
            (Role::Viewer, _) => "; viewers only read (ask an admin for a developer or ci token)",
            _ if granted(p, c) =>
                "; a pull request's cluster is its rule's to change and goes when the pull \
                 request closes (a CI job of its repository may read it, take credentials and \
                 keep it alive)",
            (Role::Ci, Action::Update) =>
                "; ci tokens create, delete and use clusters but do not change them (create it \
                 with the ttl and labels you need, or use a developer token)",
            _ => "",
        }
    )))
}

/// `Ok` when `p` may create clusters.
pub fn authorize_create(p: &Principal) -> Result<()> {
    match p.role {
        Role::Admin | Role::Developer | Role::Ci => Ok(()),
        Role::Viewer => Err(Error::Forbidden(
            "the viewer role may not create clusters; ask an admin for a developer or ci token"
                .into(),
        )),
    }
}

/// `Ok` when `p` may delete clusters in bulk (by label): every role that may delete any.
pub fn authorize_bulk_delete(p: &Principal) -> Result<()> {
    match p.role {
        Role::Admin | Role::Developer | Role::Ci => Ok(()),
        Role::Viewer => Err(Error::Forbidden(
            "the viewer role may not delete clusters; ask an admin for a developer or ci token"
                .into(),
        )),
    }
}

/// `Ok` when `p` is an admin; `what` says what needed it.
pub fn authorize_admin(p: &Principal, what: &str) -> Result<()> {
    if p.is_admin() {
        return Ok(());
    }
    Err(Error::Forbidden(format!(
        "only an admin may {what}; the {} role may not",
        p.role
    )))
}

/// The clusters `p` may see, as a store filter (`None`: every cluster).
pub fn visibility(p: &Principal) -> Option<Visibility> {
    match p.role {
        Role::Admin => None,
        Role::Ci => Some(Visibility {
            owner: p.subject.clone(),
            team: None,
            repository: p.repository.clone(),
        }),
        Role::Developer | Role::Viewer => Some(Visibility {
            owner: p.subject.clone(),
            team: p.team.clone(),
            repository: p.repository.clone(),
        }),
    }
}

fn same_team(p: &Principal, c: &Cluster) -> bool {
    p.team.is_some() && c.team == p.team
}

#[cfg(test)]
mod tests;
