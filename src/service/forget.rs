//! Forgetting a cluster vcm cannot delete: the way out for a cluster stuck in `Deleting`
//! because its host was removed from the configuration.
//!
//! NB: a separate, admin-only use-case rather than a flag on delete: it is the one operation
//! that ends a record while resources may live on, so it must be deliberate, distinct in the
//! audit trail, and never reachable by a CI token retrying a delete.

use super::ClusterService;
use crate::domain::{Cluster, NewEvent, Phase, PhaseEvent, Principal, now_ms};
use crate::error::{Error, Result};

/// Event kind and reason of a forgotten cluster.
pub const FORGOTTEN: &str = "forgotten";

// === impl ClusterService ===

impl ClusterService {
    /// End a `Deleting` cluster as `Deleted` without asking the driver: whatever it had on
    /// its host stays there, and the events say so and who decided it. Admins only; a
    /// `Deleted` cluster is left as it is (repeating is harmless).
    pub async fn forget(&self, principal: &Principal, id_or_name: &str) -> Result<Cluster> {
        super::access::authorize_admin(
            principal,
            "forget a cluster (vcm then stops tracking resources it could not release)",
        )?;
        // NB: only a cluster whose host is gone: on a configured host the reconciler deletes it
        // for real, and forgetting would race that and end the record while its resources
        // are still being released.
        let cluster = self.resolve(id_or_name).await?;
        let configured = self.driver.hosts().await;
        if cluster.phase == Phase::Deleting && configured.iter().any(|h| h.name == cluster.host) {
            return Err(Error::conflict(
                "host_still_configured",
                format!(
                    "cluster {} is on host {:?}, which is still configured: its deletion will finish there (forget is only for clusters whose host was removed)",
                    cluster.name, cluster.host
                ),
            ));
        }
        self.modify(cluster.id.as_str(), |c| {
            match c.phase {
                Phase::Deleted => return Ok(vec![]),
                Phase::Deleting => {}
                phase => {
                    return Err(Error::conflict(
                        "cluster_not_deleting",
                        format!(
                            "cluster {} is {phase}; delete it first, and forget it only if the \
                             deletion cannot finish",
                            c.name
                        ),
                    ));
                }
            }
            let from = c.phase;
            c.phase = from.transition(PhaseEvent::ConfirmDeleted)?;
            c.deleted_at = Some(now_ms());
            c.attempts = 0;
            c.message = format!(
                "forgotten by {}: nothing was released on host {:?}; whatever the cluster had \
                 there is no longer tracked by vcm",
                principal, c.host
            );
            Ok(vec![
                NewEvent::new(FORGOTTEN, c.message.clone()).with_reason(FORGOTTEN),
                NewEvent::phase(from, c.phase, Some(FORGOTTEN), c.message.clone()),
            ])
        })
        .await
    }
}
