//! What a local cluster's API server holds for its components, and the check that they work:
//! kwok's ClusterRole and binding, the fake nodes of its size, and readiness (every node is
//! Ready and the `default` namespace has its `default` ServiceAccount).

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::Api;
use kube::api::PostParams;

use super::component::KWOK_USER;
use crate::driver::{DriverError, LocalSize};
use crate::poll::Poll;

/// Create, once, what the components need in the cluster (an object that exists is kept):
/// kwok's role and the nodes of `size`.
pub(super) async fn bootstrap(client: &kube::Client, size: &LocalSize) -> Result<(), DriverError> {
    let pp = PostParams::default();
    // NB: kwok gets the rules of its own upstream ClusterRole (kustomize/rbac/role.yaml in
    // kwok v0.8.0), without the kwok.x-k8s.io CRDs (not enabled here), rather than
    // `system:masters`: it reads nodes, writes node and pod status, deletes pods (graceful
    // deletion, as a kubelet does), renews node leases and records events.
    let role: ClusterRole = object(serde_json::json!({
        "metadata": {"name": KWOK_USER, "labels": {"app.kubernetes.io/managed-by": "vcm"}},
        "rules": [
            {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": [""], "resources": ["nodes/status", "pods/status"], "verbs": ["patch", "update"]},
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch", "patch", "update", "delete"]},
            {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]},
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create", "get", "list", "watch", "patch", "update"]},
        ],
    }))?;
    created(
        Api::<ClusterRole>::all(client.clone())
            .create(&pp, &role)
            .await,
    )?;
    let binding: ClusterRoleBinding = object(serde_json::json!({
        "metadata": {"name": KWOK_USER, "labels": {"app.kubernetes.io/managed-by": "vcm"}},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": KWOK_USER},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": KWOK_USER}],
    }))?;
    created(
        Api::<ClusterRoleBinding>::all(client.clone())
            .create(&pp, &binding)
            .await,
    )?;
    let capacity = serde_json::json!({
        "cpu": size.node_cpu, "memory": size.node_memory, "ephemeral-storage": "100Gi",
        "pods": size.node_pods.to_string(),
    });
    let nodes = Api::<Node>::all(client.clone());
    for name in size.node_names() {
        let node: Node = object(serde_json::json!({
            "metadata": {
                "name": name,
                "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
                "labels": {
                    "type": "kwok",
                    "kubernetes.io/hostname": name,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                },
            },
            "spec": {"providerID": format!("kwok://{name}")},
            "status": {"allocatable": capacity, "capacity": capacity},
        }))?;
        created(nodes.create(&pp, &node).await)?;
    }
    Ok(())
}

/// Delete the fake nodes' leases, held by a kwok that is gone: a new kwok (another holder
/// identity) would otherwise wait for them to expire (40 s) before it manages the nodes and
/// their pods again.
pub(super) async fn release_node_leases(
    client: &kube::Client,
    size: &LocalSize,
) -> Result<(), DriverError> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    for name in size.node_names() {
        match leases.delete(&name, &Default::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => {
                return Err(DriverError::Transient(format!(
                    "deleting the lease of node {name} for a new kwok: {e}"
                )));
            }
        }
    }
    Ok(())
}

/// Wait until every fake node of `size` is Ready and the `default` ServiceAccount exists: then a
/// pod can be created, scheduled and run.
pub(super) async fn wait_workload_ready(
    client: &kube::Client,
    size: &LocalSize,
    timeout: Duration,
) -> anyhow::Result<()> {
    let nodes: Api<Node> = Api::all(client.clone());
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), "default");
    let want = size.node_names();
    let what = format!(
        "{} node(s) Ready and ServiceAccount default/default",
        want.len()
    );
    // NB: 50 ms, like the API server's own readiness poll: this wait ends every create, and
    // each poll is two cheap reads on a local API server.
    crate::poll::until(&what, timeout, Duration::from_millis(50), || {
        let (nodes, sas, want) = (nodes.clone(), sas.clone(), want.clone());
        async move {
            let listed = match nodes.list(&Default::default()).await {
                Ok(list) => list.items,
                Err(e) => return Ok(Poll::Pending(format!("listing nodes: {e}"))),
            };
            let not_ready: Vec<&String> = want
                .iter()
                .filter(|name| {
                    !listed.iter().any(|n| {
                        n.metadata.name.as_ref() == Some(name)
                            && n.status
                                .as_ref()
                                .and_then(|s| s.conditions.as_ref())
                                .is_some_and(|cs| {
                                    cs.iter().any(|c| c.type_ == "Ready" && c.status == "True")
                                })
                    })
                })
                .collect();
            if let Some(first) = not_ready.first() {
                return Ok(Poll::Pending(format!(
                    "{} of {} node(s) not Ready yet (kwok), e.g. {first}",
                    not_ready.len(),
                    want.len()
                )));
            }
            Ok(match sas.get_opt("default").await {
                Ok(Some(_)) => Poll::Ready(()),
                Ok(None) => {
                    Poll::Pending("no default ServiceAccount yet (kube-controller-manager)".into())
                }
                Err(e) => Poll::Pending(format!("reading ServiceAccounts: {e}")),
            })
        }
    })
    .await
}

fn object<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> Result<T, DriverError> {
    // The fixed objects above always deserialise; if one ever did not, that is a bug.
    serde_json::from_value(v)
        .map_err(|e| DriverError::Permanent(format!("building a Kubernetes object: {e}")))
}

fn created<T>(res: Result<T, kube::Error>) -> Result<(), DriverError> {
    match res {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(DriverError::Transient(format!(
            "preparing the cluster for its controllers and node failed: {e}"
        ))),
    }
}
