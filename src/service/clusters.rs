//! Cluster use-cases: create, get, list, update, delete, kubeconfig, keepalive, events.

use sha2::{Digest as _, Sha256};

use super::ClusterService;
use super::{ClusterSpec, ClusterUpdate};
use crate::domain::{
    Cluster, ClusterEvent, ClusterId, ClusterName, DeleteReason, InvalidField, LabelSelector,
    Labels, MAX_LABELS, NewEvent, Phase, PhaseEvent, Principal, Timestamp, Ttl, now_ms, quoted,
};
use crate::driver::Kubeconfig;
use crate::error::{Error, Result};
use crate::store::{ClusterFilter, IdempotencyRecord, Page, StoreError};

/// Activity is written at most this often per cluster: idle timeouts are minutes long, and a
/// write on every GET would cost read throughput for nothing.
const ACTIVITY_GRANULARITY: jiff::SignedDuration = jiff::SignedDuration::from_secs(10);
/// A write that lost a version race is retried this many times (the reconciler may be writing
/// the same cluster).
const WRITE_ATTEMPTS: usize = 5;
/// Default lifetime of a kubeconfig token.
const DEFAULT_KUBECONFIG_TTL: Ttl = Ttl::from_secs_const(3600);

/// An `Idempotency-Key` header value: 1 to 255 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// The keys [`IdempotencyKey::parse`] accepts, as the API document states them.
    pub const PATTERN: &str = "^[!-~]{1,255}$";

    /// Parse the header value.
    pub fn parse(s: &str) -> std::result::Result<Self, InvalidField> {
        if s.is_empty() || s.len() > 255 || !s.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(InvalidField::new(
                "Idempotency-Key",
                "must be 1 to 255 visible ASCII characters (a UUID is a good choice)",
            ));
        }
        Ok(Self(s.to_owned()))
    }
}

// === impl ClusterService ===

impl ClusterService {
    /// Accept a new cluster (`Pending`). With an idempotency key, a retry of the same request
    /// returns the cluster the first one created; the `bool` says whether this call created it.
    #[tracing::instrument(skip_all, err(level = "debug"), fields(principal = %principal.subject))]
    pub async fn create(
        &self,
        principal: &Principal,
        req: impl Into<ClusterSpec>,
        key: Option<IdempotencyKey>,
    ) -> Result<(Cluster, bool)> {
        let req = req.into();
        let request_hash = hex::encode(Sha256::digest(
            serde_json::to_vec(&req).map_err(|e| Error::Other(e.into()))?,
        ));
        if let Some(key) = &key
            && let Some(existing) = self.replay(principal, key, &request_hash).await?
        {
            return Ok((existing, false));
        }
        let (host, selector) = (req.host.clone(), req.host_selector.clone());
        // Validate everything before placing, so a bad request never waits on the lock.
        let mut cluster = self.new_cluster(principal, req)?;
        let _placing = self.placing.lock().await;
        cluster.host = self.place(host.as_deref(), selector.as_ref()).await?;
        if let Some(other) = self.store.get_live_by_name(cluster.name.as_str()).await? {
            return Err(name_taken(&cluster.name, &other.id));
        }
        let idem = key.as_ref().map(|k| IdempotencyRecord {
            principal: principal.subject.clone(),
            key: k.0.clone(),
            request_hash: request_hash.clone(),
            cluster_id: cluster.id.clone(),
        });
        let event = NewEvent::new("created", format!("created by {}", principal.subject));
        match self
            .store
            .insert_cluster(&cluster, &event, idem.as_ref())
            .await
        {
            Ok(()) => {}
            Err(StoreError::Conflict(what)) => {
                // Lost a race: either the same idempotency key (return the winner) or the name.
                if let Some(key) = &key
                    && let Some(existing) = self.replay(principal, key, &request_hash).await?
                {
                    return Ok((existing, false));
                }
                return Err(Error::conflict(
                    "name_taken",
                    format!(
                        "cluster name {:?} is taken ({what}); pick another name",
                        cluster.name.as_str()
                    ),
                ));
            }
            Err(e) => return Err(e.into()),
        }
        tracing::info!(cluster.id = %cluster.id, cluster.name = %cluster.name, "cluster accepted");
        self.wake.notify_one();
        Ok((cluster, true))
    }

    async fn replay(
        &self,
        principal: &Principal,
        key: &IdempotencyKey,
        request_hash: &str,
    ) -> Result<Option<Cluster>> {
        let Some(rec) = self
            .store
            .get_idempotency(&principal.subject, &key.0)
            .await?
        else {
            return Ok(None);
        };
        if rec.request_hash != request_hash {
            // NB: 409, as for a taken name: the request is valid, the key is bound to another
            // (crate::error::Error::Conflict lists this case; a 422 contradicted the document).
            return Err(Error::conflict(
                "idempotency_key_reused",
                "this Idempotency-Key was already used with a different request body; use a new key for a new request",
            ));
        }
        let cluster = self.store.get_cluster(&rec.cluster_id).await?;
        Ok(Some(cluster.ok_or_else(|| {
            Error::ClusterNotFound(rec.cluster_id.to_string())
        })?))
    }

    /// The cluster a request describes, every field checked; `host` is left empty for
    /// placement to fill in.
    fn new_cluster(&self, principal: &Principal, req: ClusterSpec) -> Result<Cluster> {
        let p = &self.policy;
        // A selector longer than any host's labels never matches, and would be echoed whole.
        if req
            .host_selector
            .as_ref()
            .is_some_and(|s| s.len() > MAX_LABELS)
        {
            return Err(
                InvalidField::new("host_selector", format!("at most {MAX_LABELS} labels")).into(),
            );
        }
        let id = ClusterId::generate();
        let name = match req.name.as_deref() {
            Some(n) => ClusterName::parse(n)?,
            None => ClusterName::from_id(&id),
        };
        let size = req.size.unwrap_or_else(|| p.default_size.clone());
        if !p.sizes.contains(&size) {
            return Err(InvalidField::new(
                "size",
                format!(
                    "unknown size {}; choose one of {}",
                    quoted(&size),
                    p.sizes.join(", ")
                ),
            )
            .into());
        }
        let version = req
            .kubernetes_version
            .unwrap_or_else(|| p.default_kubernetes_version.clone());
        if !p.kubernetes_versions.contains(&version) {
            return Err(InvalidField::new(
                "kubernetes_version",
                format!(
                    "version {} is not offered here; choose one of {}",
                    quoted(&version),
                    p.kubernetes_versions.join(", ")
                ),
            )
            .into());
        }
        let ttl = match req.ttl.as_deref() {
            Some(t) => self.bounded_ttl(t)?,
            None => p.default_ttl,
        };
        let idle_timeout = match req.idle_timeout.as_deref() {
            Some(t) => Some(Ttl::parse("idle_timeout", t)?),
            None => p.default_idle_timeout,
        };
        let labels = Labels::parse(req.labels.unwrap_or_default())?;
        let now = now_ms();
        Ok(Cluster {
            id,
            name,
            owner: principal.subject.clone(),
            team: principal.team.clone(),
            phase: Phase::Pending,
            message: "waiting to be provisioned".into(),
            size,
            kubernetes_version: version,
            ttl,
            idle_timeout,
            host: String::new(),
            labels,
            created_at: now,
            ready_at: None,
            expires_at: now + ttl.as_span(),
            last_activity_at: now,
            deleted_at: None,
            endpoint: None,
            delete_reason: None,
            attempts: 0,
            next_reconcile_at: now,
            cleaned_up: false,
            version: 1,
        })
    }

    fn bounded_ttl(&self, s: &str) -> Result<Ttl> {
        let ttl = Ttl::parse("ttl", s)?;
        if ttl > self.policy.max_ttl {
            return Err(InvalidField::new(
                "ttl",
                format!(
                    "{} is longer than the allowed maximum {}",
                    quoted(s),
                    self.policy.max_ttl
                ),
            )
            .into());
        }
        Ok(ttl)
    }

    /// One cluster by id or live name. Counts as activity.
    pub async fn get(&self, _principal: &Principal, id_or_name: &str) -> Result<Cluster> {
        let cluster = self.resolve(id_or_name).await?;
        Ok(self.touch(cluster, false).await)
    }

    /// Resolve an id or a live name, without side effects.
    pub async fn resolve(&self, id_or_name: &str) -> Result<Cluster> {
        let found = match ClusterId::parse(id_or_name) {
            Some(id) => self.store.get_cluster(&id).await?,
            None => self.store.get_live_by_name(id_or_name).await?,
        };
        found.ok_or_else(|| Error::ClusterNotFound(id_or_name.to_owned()))
    }

    /// A page of clusters.
    pub async fn list(
        &self,
        _principal: &Principal,
        filter: &ClusterFilter,
    ) -> Result<Page<Cluster>> {
        Ok(self.store.list_clusters(filter).await?)
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
        let labels = req.labels.map(Labels::parse).transpose()?;
        self.modify(id_or_name, |c| {
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
            let msg = format!("updated by {}: {}", principal.subject, changes.join(", "));
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
        let cluster = self.resolve(id_or_name).await?;
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
                c.attempts = 0;
                c.next_reconcile_at = now_ms();
                c.message = detail
                    .clone()
                    .unwrap_or_else(|| format!("deletion requested ({})", reason.as_str()));
                Ok(vec![NewEvent::phase(
                    from,
                    c.phase,
                    Some(reason.as_str()),
                    format!("{} by {}", c.message, principal.subject),
                )])
            })
            .await?;
        self.wake.notify_one();
        Ok(updated)
    }

    /// Delete every live cluster matching `selector` (which must not be empty).
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
        let mut filter = ClusterFilter {
            labels: selector,
            limit: 500,
            ..Default::default()
        };
        loop {
            let page = self.store.list_clusters(&filter).await?;
            for c in &page.items {
                if matches!(
                    c.phase,
                    Phase::Pending | Phase::Provisioning | Phase::Ready | Phase::Failed
                ) {
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

    /// A kubeconfig for CI: a ServiceAccount token minted in the cluster, expiring at `ttl` or at
    /// the cluster's expiry, whichever is first. Counts as activity.
    pub async fn kubeconfig(
        &self,
        principal: &Principal,
        id_or_name: &str,
        ttl: Option<&str>,
    ) -> Result<Kubeconfig> {
        let ttl = match ttl {
            Some(t) => Ttl::parse("ttl", t)?,
            None => DEFAULT_KUBECONFIG_TTL,
        };
        if ttl > self.policy.max_kubeconfig_ttl {
            return Err(InvalidField::new(
                "ttl",
                format!(
                    "longer than the allowed maximum {}",
                    self.policy.max_kubeconfig_ttl
                ),
            )
            .into());
        }
        let cluster = self.resolve(id_or_name).await?;
        if cluster.phase != Phase::Ready {
            return Err(Error::conflict(
                "cluster_not_ready",
                format!(
                    "cluster {} is {}; credentials are issued once it is Ready (`vcm cluster create --wait` waits for that)",
                    cluster.name, cluster.phase
                ),
            ));
        }
        let remaining = cluster
            .expires_at
            .duration_since(Timestamp::now())
            .as_secs()
            .max(0) as u64;
        let secs = ttl.as_secs().min(remaining);
        let kubeconfig = self.driver.ci_kubeconfig(&cluster, secs).await?;
        let msg = format!(
            "kubeconfig issued to {} for {}",
            principal.subject,
            Ttl::from_secs(secs)
        );
        self.modify(cluster.id.as_str(), |c| {
            c.last_activity_at = now_ms();
            Ok(vec![NewEvent::new("kubeconfig_issued", msg.clone())])
        })
        .await?;
        Ok(kubeconfig)
    }

    /// Mark activity now (resets the idle clock).
    pub async fn keepalive(&self, _principal: &Principal, id_or_name: &str) -> Result<Cluster> {
        let cluster = self.resolve(id_or_name).await?;
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
        _principal: &Principal,
        id_or_name: &str,
    ) -> Result<Vec<ClusterEvent>> {
        let cluster = self.resolve(id_or_name).await?;
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
        match self.store.update_cluster(&next, &[]).await {
            Ok(updated) => updated,
            Err(e) => {
                tracing::debug!(cluster.id = %cluster.id, error = %e, "activity not recorded");
                cluster
            }
        }
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

fn name_taken(name: &ClusterName, holder: &ClusterId) -> Error {
    Error::conflict(
        "name_taken",
        format!(
            "a live cluster named {:?} already exists ({holder}); pick another name or delete that cluster first",
            name.as_str()
        ),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::domain::testkit::{matches, mk_matching};

    proptest! {
        #[test]
        fn any_header_value_is_a_key_or_refused_naming_the_header(s in any::<String>()) {
            if let Err(e) = IdempotencyKey::parse(&s) {
                prop_assert_eq!(e.field, "Idempotency-Key");
            }
        }

        #[test]
        fn the_key_pattern_allows_exactly_the_keys_that_parse(
            s in prop_oneof![
                "[ -~é\t]{0,260}",
                mk_matching(IdempotencyKey::PATTERN),
            ],
        ) {
            let parses = IdempotencyKey::parse(&s).is_ok();
            prop_assert_eq!(parses, matches(IdempotencyKey::PATTERN, &s), "{:?}", s);
        }
    }
}
