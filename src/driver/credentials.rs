//! CI credentials: a ServiceAccount inside the virtual cluster and a token minted for it with
//! the TokenRequest API. The admin kubeconfig is only used here, in memory, to mint.

use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use kube::Api;
use kube::api::PostParams;

use super::DriverError;
use crate::controlplane::{Kubeconfig, KubeconfigUser, Tunnel};

/// Namespace of the CI ServiceAccount inside each virtual cluster.
pub const CI_NAMESPACE: &str = "kube-system";
/// Name of the CI ServiceAccount; bound to `cluster-admin` of its own (disposable) cluster.
pub const CI_SERVICE_ACCOUNT: &str = "vcm-ci";
/// The API server refuses TokenRequests shorter than ten minutes.
const MIN_TOKEN_SECS: u64 = 600;

/// Mint a kubeconfig for the CI ServiceAccount of the cluster `admin` reaches, with a token
/// valid for `secs` seconds (at least ten minutes, the API server's floor).
pub async fn mint_ci_kubeconfig(
    admin: &Kubeconfig,
    name: &str,
    secs: u64,
) -> Result<Kubeconfig, DriverError> {
    mint_ci_kubeconfig_via(admin, name, secs, None).await
}

/// [`mint_ci_kubeconfig`], reaching the cluster through `via` when vcm cannot reach the
/// kubeconfig's server address itself. The kubeconfig keeps that address: it is what CI uses.
pub async fn mint_ci_kubeconfig_via(
    admin: &Kubeconfig,
    name: &str,
    secs: u64,
    via: Option<&Tunnel>,
) -> Result<Kubeconfig, DriverError> {
    let client = match via {
        Some(tunnel) => admin.client_via(tunnel).await,
        None => admin.client().await,
    }
    .map_err(|e| DriverError::Transient(format!("connecting to the cluster: {e:#}")))?;
    let pp = PostParams::default();
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), CI_NAMESPACE);
    let sa: ServiceAccount = serde_json::from_value(serde_json::json!({
        "metadata": {"name": CI_SERVICE_ACCOUNT, "labels": {"app.kubernetes.io/managed-by": "vcm"}},
    }))
    .map_err(fixture)?;
    create_if_missing(sas.create(&pp, &sa).await)?;
    let crbs: Api<ClusterRoleBinding> = Api::all(client.clone());
    let crb: ClusterRoleBinding = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "vcm-ci-cluster-admin", "labels": {"app.kubernetes.io/managed-by": "vcm"}},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": CI_SERVICE_ACCOUNT, "namespace": CI_NAMESPACE}],
    }))
    .map_err(fixture)?;
    create_if_missing(crbs.create(&pp, &crb).await)?;
    let req: TokenRequest = serde_json::from_value(serde_json::json!({
        "spec": {"audiences": [], "expirationSeconds": secs.max(MIN_TOKEN_SECS)},
    }))
    .map_err(fixture)?;
    let minted = sas
        .create_token_request(CI_SERVICE_ACCOUNT, &pp, &req)
        .await
        .map_err(|e| unavailable("minting a token", e))?;
    let token = minted
        .status
        .map(|s| s.token)
        .ok_or_else(|| DriverError::Transient("the API server returned no token".into()))?;
    Ok(Kubeconfig {
        name: name.to_owned(),
        server: admin.server.clone(),
        ca_pem: admin.ca_pem.clone(),
        user: KubeconfigUser::Token(token),
        namespace: Some("default".into()),
    })
}

fn create_if_missing<T>(res: Result<T, kube::Error>) -> Result<(), DriverError> {
    match res {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(unavailable("preparing the CI ServiceAccount", e)),
    }
}

fn unavailable(what: &str, e: kube::Error) -> DriverError {
    DriverError::Transient(format!("{what} in the cluster failed: {e}"))
}

/// The fixed objects above always deserialise; if one ever did not, that is a bug, not a retry.
fn fixture(e: serde_json::Error) -> DriverError {
    DriverError::Permanent(format!("building a Kubernetes object: {e}"))
}
