//! The controller's side of the service: who an object acts as, and every use-case it calls,
//! audited as REST requests are (a `received` record committed before a change, fail closed; a
//! `completed` one with the outcome), and checked by the same roles, quotas and policy, which
//! live in the service.

use std::future::Future;

use crate::audit::Auditor;
use crate::domain::{
    AuditEntry, Cluster, Decision, DeleteReason, Door as AuditDoor, Principal, Role, Stage, now_ms,
};
use crate::error::{Error, ErrorKind, Result};
use crate::service::{ClusterService, ClusterSpec, ClusterUpdate, IdempotencyKey};

/// The service as one object's controller calls it.
#[derive(Debug, Clone)]
pub struct Door {
    service: ClusterService,
    audit: Option<Auditor>,
}

/// Who an object acts as: `crd:<namespace>/<name>`, a developer of its namespace's team (so
/// the team's quota and policy apply, and the team sees and uses the cluster). Without a team
/// (its namespace's mapping was removed since) it can still reach the clusters it owns.
pub fn principal(namespace: &str, name: &str, team: Option<&str>) -> Principal {
    Principal {
        subject: format!("crd:{namespace}/{name}"),
        display: format!("VirtualCluster {namespace}/{name}"),
        role: Role::Developer,
        team: team.map(str::to_owned),
        repository: None,
        claims: None,
    }
}

// === impl Door ===

impl Door {
    /// Calls `service`, recording each call in `audit` (when the log is on).
    pub fn new(service: ClusterService, audit: Option<Auditor>) -> Self {
        Self { service, audit }
    }

    /// The service (reads that are no request of the object's: finding its cluster).
    pub fn service(&self) -> &ClusterService {
        &self.service
    }

    /// Create the cluster; the object's uid is the idempotency key, so a retry after a crash
    /// returns the cluster the first call made.
    pub async fn create(&self, who: &Principal, spec: ClusterSpec, uid: &str) -> Result<Cluster> {
        let key = IdempotencyKey::parse(&format!("virtualcluster:{uid}"))?;
        let create = self.service.create(who, spec, Some(key));
        self.audited(who, "crd create", None, async { Ok(create.await?.0) })
            .await
    }

    /// Apply spec changes (ttl, idle timeout, labels).
    pub async fn update(
        &self,
        who: &Principal,
        id: &str,
        update: ClusterUpdate,
    ) -> Result<Cluster> {
        let run = self.service.update(who, id, update);
        self.audited(who, "crd update", Some(id), run).await
    }

    /// Delete the cluster (the object is being deleted).
    pub async fn delete(&self, who: &Principal, id: &str) -> Result<Cluster> {
        let run = self.service.delete(who, id, DeleteReason::Requested);
        self.audited(who, "crd delete", Some(id), run).await
    }

    /// A kubeconfig for the cluster's CI identity, living `ttl` at most.
    pub async fn kubeconfig(
        &self,
        who: &Principal,
        id: &str,
        ttl: &str,
    ) -> Result<crate::driver::Kubeconfig> {
        let run = self.service.kubeconfig(who, id, Some(ttl));
        self.audited(who, "crd kubeconfig", Some(id), run).await
    }

    async fn audited<T: Targeted>(
        &self,
        who: &Principal,
        action: &str,
        target: Option<&str>,
        run: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let Some(audit) = &self.audit else {
            return run.await;
        };
        let started = std::time::Instant::now();
        let mut entry = AuditEntry {
            time: now_ms(),
            request_id: format!("crd-{}", crate::domain::ClusterId::generate()),
            door: AuditDoor::Crd,
            stage: Stage::Received,
            principal: Some(who.subject.clone()),
            auth_error: None,
            source: None,
            action: action.to_owned(),
            target: target.map(str::to_owned),
            decision: None,
            code: None,
            messages: vec![],
            status: None,
            duration_us: None,
        };
        if audit.commit(entry.clone()).await.is_err() {
            return Err(Error::try_later(
                "audit_unavailable",
                "the audit log cannot be written, so the change was not carried out; retrying",
                std::time::Duration::from_secs(5),
            ));
        }
        let result = crate::telemetry::with_request_id(entry.request_id.clone(), run).await;
        let status = match &result {
            Ok(_) => 200,
            Err(e) => status_of(e.kind()),
        };
        entry.stage = Stage::Completed;
        entry.status = Some(status);
        entry.decision = Some(Decision::of_status(status));
        entry.duration_us = Some(u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX));
        match &result {
            Ok(value) => {
                if let Some(id) = value.target() {
                    entry.target = Some(id);
                }
            }
            Err(e) => {
                entry.code = Some(e.code().to_owned());
                // NB: as over REST, an internal error's text stays in the log, out of the record.
                if e.kind() != ErrorKind::Internal {
                    entry.messages = vec![e.to_string()];
                }
            }
        }
        audit.submit(entry).await;
        result
    }
}

/// What an audited call was about, once it is known (a created cluster's id).
trait Targeted {
    fn target(&self) -> Option<String>;
}

impl Targeted for Cluster {
    fn target(&self) -> Option<String> {
        Some(self.id.to_string())
    }
}

impl Targeted for crate::driver::Kubeconfig {
    fn target(&self) -> Option<String> {
        None
    }
}

/// The status REST would answer with, so records of both doors read alike.
fn status_of(kind: ErrorKind) -> u16 {
    match kind {
        ErrorKind::NotFound => 404,
        ErrorKind::Conflict => 409,
        ErrorKind::Invalid => 422,
        ErrorKind::Unauthenticated => 401,
        ErrorKind::Forbidden => 403,
        ErrorKind::RateLimited => 429,
        ErrorKind::Unavailable => 503,
        ErrorKind::Internal => 500,
    }
}
