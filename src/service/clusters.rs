//! Cluster use-cases after create: get, list, update, delete, keepalive, events (credentials:
//! `credentials.rs`).

use super::ClusterService;
use super::ClusterUpdate;
use super::access::{self, Action};
use crate::domain::{
    Cluster, ClusterEvent, ClusterId, DeleteReason, InvalidField, LabelSelector, Labels, NewEvent,
    Phase, PhaseEvent, Principal, Ttl, now_ms,
};
use crate::error::{Error, Result};
use crate::policy::action;
use crate::store::{ClusterFilter, Page, StoreError};

/// Activity is written at most this often per cluster: idle timeouts are minutes long, and a
/// write on every GET would cost read throughput for nothing.
const ACTIVITY_GRANULARITY: jiff::SignedDuration = jiff::SignedDuration::from_secs(10);
/// A write that lost a version race is retried this many times (the reconciler may be writing
/// the same cluster).
const WRITE_ATTEMPTS: usize = 5;

// === impl ClusterService ===

impl ClusterService {
    /// One cluster by id or live name. Counts as activity.
    pub async fn get(&self, principal: &Principal, id_or_name: &str) -> Result<Cluster> {
        let cluster = self
            .resolve_for(principal, id_or_name, Action::Read)
            .await?;
        Ok(self.touch(cluster, false).await)
    }

    /// Resolve an id or a live name that `principal` may do `action` to: not found when it may
    /// not see the cluster, forbidden when it may see but not do it.
    pub(crate) async fn resolve_for(
        &self,
        principal: &Principal,
        id_or_name: &str,
        action: Action,
    ) -> Result<Cluster> {
        let cluster = self.resolve(id_or_name).await?;
        access::authorize(principal, &cluster, action, id_or_name)?;
        Ok(cluster)
    }

    /// Resolve an id or a live name, without side effects.
    pub async fn resolve(&self, id_or_name: &str) -> Result<Cluster> {
        let found = match ClusterId::parse(id_or_name) {
            Some(id) => self.store.get_cluster(&id).await?,
            None => self.store.get_live_by_name(id_or_name).await?,
        };
        found.ok_or_else(|| Error::ClusterNotFound(id_or_name.to_owned()))
    }

    /// A page of the clusters `principal` may see.
    pub async fn list(
        &self,
        principal: &Principal,
        filter: &ClusterFilter,
    ) -> Result<Page<Cluster>> {
        let visible = ClusterFilter {
            visible_to: access::visibility(principal),
            ..filter.clone()
        };
        Ok(self.store.list_clusters(&visible).await?)
    }

    /// Change `ttl`, `idle_timeout` or `labels`; the rest is immutable (422).
    pub async fn update(
        &self,
        principal: &Principal,
        id_or_name: &str,
        req: impl Into<ClusterUpdate>,
    ) -> Result<Cluster> {
        let req = req.into();
        if let Some(field) = req.immutable.first() {
            return Err(Error::unprocessable(
                "immutable_field",
                format!(
                    "{field} cannot be changed after creation; create a new cluster instead (only ttl, idle_timeout and labels can be updated)"
                ),
            ));
        }
        let ttl = req
            .ttl
            .as_deref()
            .map(|t| self.bounded_ttl(t))
            .transpose()?;
        let idle = req
            .idle_timeout
            .as_deref()
            .map(|t| Ttl::parse("idle_timeout", t))
            .transpose()?;
        let request = serde_json::json!({
            "ttl": req.ttl, "idle_timeout": req.idle_timeout, "labels": req.labels,
        });
        let labels = req.labels.map(Labels::parse).transpose()?;
        let cluster = self
            .resolve_for(principal, id_or_name, Action::Update)
            .await?;
        self.check_policy(
            principal,
            action::CLUSTER_UPDATE,
            Some(&cluster),
            Some(request),
        )
        .await?;
        self.modify(cluster.id.as_str(), |c| {
            if !matches!(c.phase, Phase::Pending | Phase::Provisioning | Phase::Ready) {
                return Err(Error::conflict(
                    "cluster_not_live",
                    format!(
                        "cluster {} is {}; only live clusters can be updated",
                        c.id, c.phase
                    ),
                ));
            }
            let mut changes = vec![];
            if let Some(ttl) = ttl {
                c.ttl = ttl;
                c.expires_at = c.created_at + ttl.as_span();
                changes.push(format!("ttl={ttl} (expires {})", c.expires_at));
            }
            if let Some(idle) = idle {
                c.idle_timeout = Some(idle);
                changes.push(format!("idle_timeout={idle}"));
            }
            if let Some(labels) = labels.clone() {
                c.labels = labels;
                changes.push("labels".into());
            }
            c.last_activity_at = now_ms();
            let msg = format!("updated by {principal}: {}", changes.join(", "));
            Ok(vec![NewEvent::new("updated", msg)])
        })
        .await
    }

    /// Request deletion. Repeating it, or deleting a `Deleted` cluster, changes nothing.
    pub async fn delete(
        &self,
        principal: &Principal,
        id_or_name: &str,
        reason: DeleteReason,
    ) -> Result<Cluster> {
        let cluster = self
            .resolve_for(principal, id_or_name, Action::Delete)
            .await?;
        self.check_policy(principal, action::CLUSTER_DELETE, Some(&cluster), None)
            .await?;
        self.request_delete(principal, &cluster.id, reason, None)
            .await
    }

    /// Move a cluster to `Deleting` for `reason` (used by the API, the pruner and webhooks).
    pub async fn request_delete(
        &self,
        principal: &Principal,
        id: &ClusterId,
        reason: DeleteReason,
        detail: Option<String>,
    ) -> Result<Cluster> {
        let updated = self
            .modify(id.as_str(), |c| {
                if matches!(c.phase, Phase::Deleting | Phase::Deleted) {
                    return Ok(vec![]);
                }
                let from = c.phase;
                c.phase = from.transition(PhaseEvent::RequestDelete)?;
                c.delete_reason = Some(reason);
                c.request_id = crate::telemetry::request_id();
                c.attempts = 0;
                c.next_reconcile_at = now_ms();
                c.message = detail
                    .clone()
                    .unwrap_or_else(|| format!("deletion requested ({})", reason.as_str()));
                Ok(vec![NewEvent::phase(
                    from,
                    c.phase,
                    Some(reason.as_str()),
                    format!("{} by {principal}", c.message),
                )])
            })
            .await?;
        self.wake.notify_one();
        Ok(updated)
    }

    /// Delete every live cluster matching `selector` (which must not be empty) that
    /// `principal` may delete; those it may not see or not delete are left alone.
    pub async fn delete_by_labels(
        &self,
        principal: &Principal,
        selector: LabelSelector,
    ) -> Result<Vec<ClusterId>> {
        if selector.is_empty() {
            return Err(InvalidField::new(
                "label",
                "give at least one label=key=value; vcm will not delete every cluster at once",
            )
            .into());
        }
        let mut ids = vec![];
        access::authorize_bulk_delete(principal)?;
        let mut filter = ClusterFilter {
            labels: selector,
            limit: 500,
            visible_to: access::visibility(principal),
            ..Default::default()
        };
        loop {
            let page = self.store.list_clusters(&filter).await?;
            for c in &page.items {
                if matches!(
                    c.phase,
                    Phase::Pending | Phase::Provisioning | Phase::Ready | Phase::Failed
                ) && access::authorize(principal, c, Action::Delete, c.id.as_str()).is_ok()
                    // NB: what the policy keeps is kept here too, as for a single delete.
                    && self
                        .check_policy(principal, action::CLUSTER_DELETE, Some(c), None)
                        .await
                        .is_ok()
                {
                    self.request_delete(principal, &c.id, DeleteReason::Requested, None)
                        .await?;
                    ids.push(c.id.clone());
                }
            }
            match page.next {
                Some(next) => filter.after = Some(next),
                None => return Ok(ids),
            }
        }
    }

    /// Record activity from the cluster gateway (best effort). The gateway calls this at most
    /// once per cluster every few seconds, so it writes each time: a second coarse filter here
    /// would let the recorded time lag real use by both intervals.
    pub async fn gateway_activity(&self, id: &ClusterId) {
        if let Ok(Some(cluster)) = self.store.get_cluster(id).await {
            self.touch(cluster, true).await;
        }
    }

    /// Mark activity now (resets the idle clock).
    pub async fn keepalive(&self, principal: &Principal, id_or_name: &str) -> Result<Cluster> {
        let cluster = self
            .resolve_for(principal, id_or_name, Action::Keepalive)
            .await?;
        self.check_policy(principal, action::CLUSTER_KEEPALIVE, Some(&cluster), None)
            .await?;
        if !cluster.phase.is_live() {
            return Err(Error::conflict(
                "cluster_not_live",
                format!("cluster {} is {}", cluster.id, cluster.phase),
            ));
        }
        Ok(self.touch(cluster, true).await)
    }

    /// Events of a cluster, oldest first.
    pub async fn events(
        &self,
        principal: &Principal,
        id_or_name: &str,
    ) -> Result<Vec<ClusterEvent>> {
        let cluster = self
            .resolve_for(principal, id_or_name, Action::Read)
            .await?;
        Ok(self.store.list_events(&cluster.id).await?)
    }

    /// Record activity unless it was recorded within [`ACTIVITY_GRANULARITY`] (or `force`).
    /// Best effort: a lost race means someone else just wrote the cluster.
    async fn touch(&self, cluster: Cluster, force: bool) -> Cluster {
        let now = now_ms();
        let fresh = now.duration_since(cluster.last_activity_at) < ACTIVITY_GRANULARITY;
        if !cluster.phase.is_live() || (fresh && !force) {
            return cluster;
        }
        let mut next = cluster.clone();
        next.last_activity_at = now;
        let written = match self.store.update_cluster(&next, &[]).await {
            // NB: another writer (a health check, the reconciler) got there first. Explicit
            // activity (keepalive, the gateway) is retried on the fresh record: dropped, a
            // pipeline using only kubectl had its cluster deleted as idle on a busy machine.
            Err(StoreError::Conflict(_)) if force => self
                .modify(cluster.id.as_str(), |c| {
                    if c.phase.is_live() && c.last_activity_at < now {
                        c.last_activity_at = now;
                    }
                    Ok(vec![])
                })
                .await
                .map_err(|e| e.to_string()),
            other => other.map_err(|e| e.to_string()),
        };
        written.unwrap_or_else(|e| {
            tracing::debug!(cluster.id = %cluster.id, error = %e, "activity not recorded");
            cluster
        })
    }

    /// Read-modify-write with optimistic concurrency, retried when another writer won. `f`
    /// returns the events to record; no events and no change means nothing is written.
    pub(crate) async fn modify(
        &self,
        id_or_name: &str,
        mut f: impl FnMut(&mut Cluster) -> Result<Vec<NewEvent>>,
    ) -> Result<Cluster> {
        let mut last = None;
        for _ in 0..WRITE_ATTEMPTS {
            let current = self.resolve(id_or_name).await?;
            let mut next = current.clone();
            let events = f(&mut next)?;
            if next == current {
                return Ok(current);
            }
            match self.store.update_cluster(&next, &events).await {
                Ok(updated) => return Ok(updated),
                Err(StoreError::Conflict(e)) => last = Some(e),
                Err(e) => return Err(e.into()),
            }
        }
        tracing::debug!(cause = last.unwrap_or_default(), "write contention");
        Err(Error::try_later(
            "write_contention",
            format!("cluster {id_or_name} is changing too fast; retry"),
            std::time::Duration::from_secs(1),
        ))
    }
}
