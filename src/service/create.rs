//! Creating clusters: idempotency keys, validation and defaults, placement, the insert.

use sha2::{Digest as _, Sha256};

use super::ClusterService;
use super::ClusterSpec;
use crate::domain::{
    Cluster, ClusterId, ClusterName, InvalidField, Labels, MAX_LABELS, NewEvent, Phase, Principal,
    Ttl, now_ms, quoted,
};
use crate::error::{Error, Result};
use crate::policy::action;
use crate::store::{IdempotencyRecord, StoreError};

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
        let request_json = serde_json::to_value(&req).map_err(|e| Error::Other(e.into()))?;
        let request_hash = hex::encode(Sha256::digest(
            serde_json::to_vec(&req).map_err(|e| Error::Other(e.into()))?,
        ));
        if let Some(key) = &key
            && let Some(existing) = self.replay(principal, key, &request_hash).await?
        {
            return Ok((existing, false));
        }
        super::access::authorize_create(principal)?;
        let (host, selector) = (req.host.clone(), req.host_selector.clone());
        // Validate everything before placing, so a bad request never waits on the lock.
        let mut cluster = self.new_cluster(principal, req)?;
        self.check_quota_size(principal, &cluster)?;
        self.check_policy(principal, action::CLUSTER_CREATE, None, Some(request_json))
            .await?;
        // NB: the in-process lock first, so one replica's creates queue here and only one of
        // them at a time waits on the store's lock (held across replicas on PostgreSQL).
        let _placing = self.placing.lock().await;
        let lock = self.store.placement_lock().await?;
        let placed = self
            .place_and_insert(
                principal,
                &mut cluster,
                host.as_deref(),
                selector.as_ref(),
                key.as_ref(),
                &request_hash,
            )
            .await;
        lock.release().await;
        if let Some(existing) = placed? {
            return Ok((existing, false));
        }
        tracing::info!(cluster.id = %cluster.id, cluster.name = %cluster.name, "cluster accepted");
        self.metrics.creation(self.driver.name());
        self.wake.notify_one();
        Ok((cluster, true))
    }

    /// Check the count quotas, place `cluster` and insert it, under the placement locks (the
    /// caller holds them). `Some(existing)`: a concurrent request with the same idempotency
    /// key created `existing` first.
    async fn place_and_insert(
        &self,
        principal: &Principal,
        cluster: &mut Cluster,
        host: Option<&str>,
        selector: Option<&std::collections::BTreeMap<String, String>>,
        key: Option<&IdempotencyKey>,
        request_hash: &str,
    ) -> Result<Option<Cluster>> {
        // NB: under the locks, right before the insert: concurrent creates count each other.
        self.check_quota_count(principal).await?;
        cluster.host = self.place(host, selector).await?;
        if self
            .store
            .get_live_by_name(cluster.name.as_str())
            .await?
            .is_some()
        {
            return Err(name_taken(&cluster.name));
        }
        let idem = key.map(|k| IdempotencyRecord {
            principal: principal.subject.clone(),
            key: k.0.clone(),
            request_hash: request_hash.to_owned(),
            cluster_id: cluster.id.clone(),
        });
        let event = NewEvent::new("created", format!("created by {principal}"));
        match self
            .store
            .insert_cluster(cluster, &event, idem.as_ref())
            .await
        {
            Ok(()) => Ok(None),
            Err(StoreError::Conflict(what)) => {
                // Lost a race: either the same idempotency key (return the winner) or the name.
                if let Some(key) = key
                    && let Some(existing) = self.replay(principal, key, request_hash).await?
                {
                    return Ok(Some(existing));
                }
                tracing::debug!(cause = what, "create lost a race");
                Err(name_taken(&cluster.name))
            }
            Err(e) => Err(e.into()),
        }
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
    /// Whether `principal` could create `req` as far as validation goes (sizes, versions,
    /// durations, labels), without placing or storing anything: for configuration that makes
    /// clusters later (pull-request rules), checked when the server starts.
    pub fn check_spec(&self, principal: &Principal, req: ClusterSpec) -> Result<()> {
        self.new_cluster(principal, req).map(|_| ())
    }

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
            request_id: crate::telemetry::request_id(),
            version: 1,
        })
    }

    pub(super) fn bounded_ttl(&self, s: &str) -> Result<Ttl> {
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
}

/// NB: says only that the name is taken: the holder may belong to another team, whose cluster
/// names, ids and owners are none of the caller's business.
fn name_taken(name: &ClusterName) -> Error {
    Error::conflict(
        "name_taken",
        format!(
            "cluster name {:?} is taken; pick another name",
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
