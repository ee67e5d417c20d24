//! A cluster's use: what its driver reads on the host, and the objects in its API.

use std::collections::BTreeMap;
use std::time::Duration;

use super::ClusterService;
use super::access::Action;
use crate::domain::usage::{ClusterUsage, HostUsage};
use crate::domain::{Cluster, Phase, Principal, Timestamp};
use crate::error::{Error, Result};

/// How long reading the cluster's API server may take before its object counts are left out.
const OBJECTS_TIMEOUT: Duration = Duration::from_secs(5);

// === impl ClusterService ===

impl ClusterService {
    /// What a Ready cluster `principal` may read uses now. Parts that cannot be read are left
    /// out with a note; a cluster that is not Ready is `409 cluster_not_ready`.
    pub async fn usage(&self, principal: &Principal, id_or_name: &str) -> Result<ClusterUsage> {
        let cluster = self
            .resolve_for(principal, id_or_name, Action::Read)
            .await?;
        if cluster.phase != Phase::Ready {
            return Err(Error::conflict(
                "cluster_not_ready",
                format!(
                    "cluster {} is {}; its use is read once it is Ready",
                    cluster.name, cluster.phase
                ),
            ));
        }
        let (on_host, objects) = tokio::join!(
            self.driver().host_usage(&cluster),
            self.object_counts(&cluster)
        );
        let mut notes = Vec::new();
        let on_host = on_host.unwrap_or_else(|e| {
            notes.push(format!("its use of the host could not be read: {e}"));
            HostUsage::default()
        });
        notes.extend(on_host.notes.iter().cloned());
        let objects = objects
            .map_err(|why| notes.push(format!("its objects could not be counted: {why}")))
            .ok();
        Ok(ClusterUsage {
            cluster: cluster.id.to_string(),
            at: Timestamp::now(),
            driver: self.driver().name().to_owned(),
            host: cluster.host.clone(),
            on_host,
            objects,
            notes,
        })
    }

    /// The objects the cluster's API holds, for the kinds CI workloads make: each counted by
    /// a one-item list (its `remainingItemCount`), so the figure is exact and current.
    async fn object_counts(
        &self,
        cluster: &Cluster,
    ) -> std::result::Result<BTreeMap<String, u64>, String> {
        let admin = self
            .driver()
            .admin_kubeconfig(cluster)
            .await
            .map_err(|e| e.to_string())?;
        let read = async {
            let client = match self.driver().tunnel(cluster) {
                Some(tunnel) => admin.client_via(&tunnel).await,
                None => admin.client().await,
            }
            .map_err(|e| format!("connecting to its API server: {e:#}"))?;
            let mut counts = BTreeMap::new();
            for (group_version, resource) in COUNTED {
                let path = match group_version {
                    "v1" => format!("/api/v1/{resource}?limit=1"),
                    gv => format!("/apis/{gv}/{resource}?limit=1"),
                };
                let request = axum::http::Request::get(&path)
                    .body(Vec::new())
                    .map_err(|e| e.to_string())?;
                let list: serde_json::Value = client
                    .request(request)
                    .await
                    .map_err(|e| format!("listing {resource}: {e}"))?;
                let key = match group_version.split_once('/') {
                    Some((group, _)) => format!("{resource}.{group}"),
                    None => (*resource).to_owned(),
                };
                counts.insert(key, list_count(&list));
            }
            Ok::<_, String>(counts)
        };
        tokio::time::timeout(OBJECTS_TIMEOUT, read)
            .await
            .map_err(|_| format!("its API server did not answer within {OBJECTS_TIMEOUT:?}"))?
    }
}

/// The kinds counted, as `(group/version, resource)`.
const COUNTED: [(&str, &str); 12] = [
    ("v1", "namespaces"),
    ("v1", "nodes"),
    ("v1", "pods"),
    ("v1", "services"),
    ("v1", "configmaps"),
    ("v1", "secrets"),
    ("v1", "serviceaccounts"),
    ("v1", "persistentvolumeclaims"),
    ("apps/v1", "deployments"),
    ("apps/v1", "statefulsets"),
    ("batch/v1", "jobs"),
    ("apiextensions.k8s.io/v1", "customresourcedefinitions"),
];

/// How many objects a one-item list stands for: its item, plus `remainingItemCount`.
fn list_count(list: &serde_json::Value) -> u64 {
    let items = list["items"].as_array().map_or(0, Vec::len) as u64;
    items + list["metadata"]["remainingItemCount"].as_u64().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_one_item_list_counts_its_remaining_items() {
        let list = serde_json::json!({"metadata": {"remainingItemCount": 41}, "items": [{}]});
        assert_eq!(list_count(&list), 42);
        assert_eq!(
            list_count(&serde_json::json!({"metadata": {}, "items": [{}]})),
            1
        );
        assert_eq!(
            list_count(&serde_json::json!({"metadata": {}, "items": []})),
            0
        );
    }
}
