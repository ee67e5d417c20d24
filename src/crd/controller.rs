//! The VirtualCluster controller (kube-rs runtime): for each object it finds or creates the vcm
//! cluster through the service, applies what can change, writes the kubeconfig Secret, and
//! rewrites the status from what it saw. Deleting the object deletes the cluster first
//! (finalizer). Level-triggered: every pass recomputes from the object and the cluster, so a
//! restart in the middle of anything converges.
//!
//! NB: a cluster is created only for an object whose status names none and for which no cluster
//! carries its uid (label [`UID_LABEL`]); a cluster that ended (TTL, idleness, a REST delete) is
//! reported, never made again.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Client, ResourceExt as _};
use tokio_util::sync::CancellationToken;

use super::FINALIZER;
use super::door::{Door, principal};
use super::patch::{add_finalizer, remove_finalizer, write_status};
use super::secret;
use super::status::{
    self, Issued, Observed, UID_LABEL, cluster_labels, needs_kubeconfig, requeue_after, status_for,
    update_for,
};
use super::types::{VirtualCluster, VirtualClusterStatus};
use crate::config::crd::CrdConfig;
use crate::domain::{Cluster, LabelSelector, Phase, Principal, Ttl, now_ms};
use crate::error::ErrorKind;
use crate::service::ClusterSpec;
use crate::store::ClusterFilter;

/// How soon a refused create is tried again (a quota may have room by then).
const REFUSED_RETRY: Duration = Duration::from_secs(60);
/// How soon a pass that failed (API server or store unreachable) is tried again.
const ERROR_RETRY: Duration = Duration::from_secs(5);

/// What every reconcile needs.
pub struct Context {
    /// The management cluster.
    pub client: Client,
    /// The service, audited.
    pub door: Door,
    /// `[crd]`.
    pub config: CrdConfig,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("door", &self.door)
            .finish_non_exhaustive()
    }
}

/// A failed pass: retried after [`ERROR_RETRY`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The management cluster's API refused or failed a call.
    #[error("management cluster: {0}")]
    Kube(#[from] kube::Error),
    /// The service failed in a way retrying may fix (store, driver, audit log unavailable).
    #[error("vcm: {0}")]
    Service(#[from] crate::error::Error),
}

// === impl Error ===

impl Error {
    /// What the object's status may say: an internal error of vcm's only by its code (its
    /// text is for the log, as over REST).
    fn public(&self) -> String {
        match self {
            Self::Kube(e) => format!("management cluster: {e}"),
            Self::Service(e) if e.kind() == ErrorKind::Internal => {
                format!("vcm failed ({}); its log has the cause", e.code())
            }
            Self::Service(e) => e.to_string(),
        }
    }
}

/// Watch every VirtualCluster until `stop`.
pub async fn run(ctx: Arc<Context>, stop: CancellationToken) -> anyhow::Result<()> {
    let api: Api<VirtualCluster> = Api::all(ctx.client.clone());
    if let Err(e) = api.list(&kube::api::ListParams::default().limit(1)).await {
        tracing::error!(
            error = %e,
            "cannot list VirtualClusters on the management cluster: is the CRD installed \
             (`vcm crd print | kubectl apply --server-side -f -`, or the Helm chart) and may vcm \
             list them (RBAC)? Retrying"
        );
    }
    tracing::info!("VirtualCluster controller started");
    Controller::new(api, watcher::Config::default())
        .graceful_shutdown_on(stop.cancelled_owned())
        .run(reconcile, error_policy, ctx)
        .for_each(|outcome| async move {
            if let Err(e) = outcome {
                tracing::debug!(error = %e, "VirtualCluster reconcile");
            }
        })
        .await;
    Ok(())
}

fn error_policy(vc: Arc<VirtualCluster>, error: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(
        virtualcluster = %format!("{}/{}", vc.namespace().unwrap_or_default(), vc.name_any()),
        error = %error,
        "VirtualCluster reconcile failed; retrying"
    );
    Action::requeue(ERROR_RETRY)
}

/// One pass over one object. A failed one says so in the object's status (best effort: the
/// management cluster may be what failed) before [`error_policy`] retries it.
async fn reconcile(vc: Arc<VirtualCluster>, ctx: Arc<Context>) -> Result<Action, Error> {
    let result = reconcile_once(&vc, &ctx).await;
    if let Err(e) = &result {
        let api: Api<VirtualCluster> =
            Api::namespaced(ctx.client.clone(), &vc.namespace().unwrap_or_default());
        let s = VirtualClusterStatus {
            message: Some(format!(
                "retrying in {}s: {}",
                ERROR_RETRY.as_secs(),
                e.public()
            )),
            ..vc.status.clone().unwrap_or_default()
        };
        if let Err(also) = write_status(&api, &vc, s).await {
            tracing::debug!(error = %also, "could not report a failed pass in the status");
        }
    }
    result
}

async fn reconcile_once(vc: &VirtualCluster, ctx: &Context) -> Result<Action, Error> {
    let ns = vc.namespace().unwrap_or_default();
    let api: Api<VirtualCluster> = Api::namespaced(ctx.client.clone(), &ns);
    let team = ctx.config.team_of(&ns);
    let who = principal(&ns, &vc.name_any(), team);
    if vc.metadata.deletion_timestamp.is_some() {
        // NB: also when the namespace's mapping was removed since: the object still owns its
        // cluster (an object that was never mapped holds no finalizer and just goes).
        return cleanup(&api, vc, ctx, &who).await;
    }
    if team.is_none() {
        write_status(
            &api,
            vc,
            status_for(
                Observed::Unmapped(&ns),
                vc.metadata.generation,
                vc.status.as_ref(),
                None,
                None,
                now_ms(),
            ),
        )
        .await?;
        return Ok(Action::await_change());
    }
    add_finalizer(&api, vc).await?;
    let uid = vc.uid().unwrap_or_default();
    let previous_id = vc.status.as_ref().and_then(|s| s.cluster_id.clone());
    let mut note = None;
    let cluster = match find_cluster(ctx, vc).await? {
        Some(c) => c,
        None if previous_id.is_some() => {
            let id = previous_id.unwrap_or_default();
            let s = status_for(
                Observed::Gone(&id),
                vc.metadata.generation,
                vc.status.as_ref(),
                None,
                None,
                now_ms(),
            );
            write_status(&api, vc, s).await?;
            return Ok(Action::await_change());
        }
        None => {
            let spec = ClusterSpec {
                size: vc.spec.size.clone(),
                kubernetes_version: vc.spec.kubernetes_version.clone(),
                ttl: vc.spec.ttl.clone(),
                idle_timeout: vc.spec.idle_timeout.clone(),
                labels: Some(cluster_labels(&vc.spec, &uid, &ns, &vc.name_any())),
                ..ClusterSpec::default()
            };
            match ctx.door.create(&who, spec, &uid).await {
                Ok(c) => c,
                Err(e) if refused(&e) => {
                    let (code, msg) = (e.code(), e.to_string());
                    let s = status_for(
                        Observed::Refused(code, &msg),
                        vc.metadata.generation,
                        vc.status.as_ref(),
                        None,
                        None,
                        now_ms(),
                    );
                    write_status(&api, vc, s).await?;
                    return Ok(Action::requeue(REFUSED_RETRY));
                }
                Err(e) => return Err(e.into()),
            }
        }
    };
    let cluster = if cluster.phase.is_live() {
        let labels = cluster_labels(&vc.spec, &uid, &ns, &vc.name_any());
        match update_for(&vc.spec, &labels, &cluster) {
            Ok(None) => cluster,
            Ok(Some(update)) => match ctx.door.update(&who, cluster.id.as_str(), update).await {
                Ok(updated) => updated,
                Err(e) if refused(&e) => {
                    note = Some(format!("spec change refused ({}): {e}", e.code()));
                    cluster
                }
                Err(e) => return Err(e.into()),
            },
            Err(fields) => {
                note = Some(format!(
                    "{} cannot be changed after creation; the cluster keeps its original values \
                     (delete this VirtualCluster and create a new one to change them)",
                    fields.join(" and ")
                ));
                cluster
            }
        }
    } else {
        cluster
    };
    let issued = if cluster.phase == Phase::Ready {
        Some(kubeconfig(ctx, vc, &who, &cluster).await?)
    } else {
        None
    };
    let now = now_ms();
    let s = status_for(
        Observed::Cluster(&cluster),
        vc.metadata.generation,
        vc.status.as_ref(),
        issued,
        note.as_deref(),
        now,
    );
    let renewal = issued.and_then(|i| status::renew_at(i, cluster.expires_at));
    let requeue = requeue_after(&s, renewal, now);
    write_status(&api, vc, s).await?;
    Ok(requeue.map_or_else(Action::await_change, Action::requeue))
}

/// The object is being deleted: delete its cluster, and let the object go once it is gone.
async fn cleanup(
    api: &Api<VirtualCluster>,
    vc: &VirtualCluster,
    ctx: &Context,
    who: &Principal,
) -> Result<Action, Error> {
    if !vc.finalizers().iter().any(|f| f == FINALIZER) {
        return Ok(Action::await_change());
    }
    let cluster = find_cluster(ctx, vc).await?;
    match &cluster {
        Some(c) if c.phase != Phase::Deleted => {
            if c.phase != Phase::Deleting {
                match ctx.door.delete(who, c.id.as_str()).await {
                    Ok(_) => {}
                    Err(e) if e.kind() == ErrorKind::NotFound => {}
                    Err(e) => return Err(e.into()),
                }
            }
            let s = VirtualClusterStatus {
                phase: Some("Deleting".into()),
                message: Some(format!("deleting cluster {} before this object goes", c.id)),
                ..vc.status.clone().unwrap_or_default()
            };
            write_status(api, vc, s).await?;
            Ok(Action::requeue(Duration::from_secs(1)))
        }
        _ => {
            remove_finalizer(api, vc).await?;
            Ok(Action::await_change())
        }
    }
}

/// Whether the service refused the request itself (as REST answers 4xx): reported in the
/// status, not retried as a failure.
fn refused(e: &crate::error::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::Invalid | ErrorKind::Forbidden | ErrorKind::Conflict | ErrorKind::NotFound
    )
}

/// The object's cluster: the one its status names, else one carrying its uid.
async fn find_cluster(ctx: &Context, vc: &VirtualCluster) -> Result<Option<Cluster>, Error> {
    let service = ctx.door.service();
    if let Some(id) = vc.status.as_ref().and_then(|s| s.cluster_id.as_deref()) {
        return match service.resolve(id).await {
            Ok(c) => Ok(Some(c)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        };
    }
    let Some(uid) = vc.uid() else { return Ok(None) };
    let selector = LabelSelector::parse([format!("{UID_LABEL}={uid}").as_str()])
        .map_err(crate::error::Error::from)?;
    let filter = ClusterFilter {
        labels: selector,
        limit: 10,
        ..ClusterFilter::default()
    };
    let page = service
        .store()
        .list_clusters(&filter)
        .await
        .map_err(crate::error::Error::from)?;
    // NB: the newest first; at most one exists unless someone copied the label by hand.
    Ok(page.items.into_iter().max_by_key(|c| c.created_at))
}

/// The kubeconfig Secret, (re)written when missing, for another cluster, or due for renewal.
async fn kubeconfig(
    ctx: &Context,
    vc: &VirtualCluster,
    who: &Principal,
    cluster: &Cluster,
) -> Result<Issued, Error> {
    let secrets: Api<Secret> =
        Api::namespaced(ctx.client.clone(), &vc.namespace().unwrap_or_default());
    let name = &vc.spec.kubeconfig_secret_name;
    let id = cluster.id.as_str();
    let now = now_ms();
    let current = secret::issued(&secrets, name, id).await?;
    if let Some(issued) = current.filter(|_| !needs_kubeconfig(current, cluster.expires_at, now)) {
        return Ok(issued);
    }
    let ttl = &ctx.config.kubeconfig_ttl;
    let life = Ttl::parse("kubeconfig_ttl", ttl).map_err(crate::error::Error::from)?;
    let kubeconfig = ctx.door.kubeconfig(who, id, ttl).await?;
    let yaml = kubeconfig.to_yaml().map_err(crate::error::Error::Other)?;
    let expires = (now + life.as_span()).min(cluster.expires_at);
    let issued = Issued {
        at: now,
        expires: expires.max(now),
    };
    secret::write(&secrets, vc, id, yaml, issued).await?;
    tracing::info!(cluster.id = id, secret = %name, expires = %issued.expires, "kubeconfig Secret written");
    Ok(issued)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_pass_tells_the_status_a_refusal_but_only_the_code_of_an_internal_error() {
        let refused = Error::Service(crate::error::Error::conflict("name_taken", "pick another"));
        assert!(refused.public().contains("pick another"));
        let internal = Error::Service(crate::error::Error::Other(anyhow::anyhow!(
            "password=hunter2 in a stack"
        )));
        let said = internal.public();
        assert!(!said.contains("hunter2"), "{said}");
        assert!(said.contains("internal"), "{said}");
    }
}
