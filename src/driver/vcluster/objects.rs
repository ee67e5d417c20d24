//! The host namespace of a cluster and the isolation objects vcm puts in it before the chart:
//! ResourceQuota `vcm-quota`, LimitRange `vcm-limits`, NetworkPolicy `vcm-isolation`.

use k8s_openapi::api::core::v1::{LimitRange, Namespace, ResourceQuota};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::Api;
use kube::api::PostParams;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::config::SizeProfile;
use super::host::{Host, is_conflict};
use super::{CLUSTER_ID_LABEL, DriverError, MANAGED_BY_LABEL, MANAGED_BY_VALUE};

/// Name of the ResourceQuota in every cluster namespace.
pub const QUOTA_NAME: &str = "vcm-quota";
/// Name of the LimitRange in every cluster namespace.
pub const LIMIT_RANGE_NAME: &str = "vcm-limits";
/// Name of the NetworkPolicy in every cluster namespace.
pub const NETWORK_POLICY_NAME: &str = "vcm-isolation";
/// The label every namespace carries with its own name (set by the API server since 1.21).
const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// Labels on everything vcm creates for cluster `id`.
pub fn labels(id: &str) -> Value {
    json!({ MANAGED_BY_LABEL: MANAGED_BY_VALUE, CLUSTER_ID_LABEL: id })
}

/// The namespace object.
pub fn namespace(name: &str, id: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": { "name": name, "labels": labels(id) },
    })
}

/// The ResourceQuota: the profile's `quota` as `hard`.
pub fn quota(id: &str, size: &SizeProfile) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": { "name": QUOTA_NAME, "labels": labels(id) },
        "spec": { "hard": size.quota },
    })
}

/// The LimitRange: per-container defaults, so pods without resources still fit the quota.
pub fn limit_range(id: &str, size: &SizeProfile) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": { "name": LIMIT_RANGE_NAME, "labels": labels(id) },
        "spec": { "limits": [{
            "type": "Container",
            "default": size.limit_default,
            "defaultRequest": size.limit_default_request,
        }]},
    })
}

/// The NetworkPolicy: every pod of the namespace (control plane and synced workloads) admits
/// ingress only from pods of the same namespace and from vcm's own namespace.
pub fn network_policy(id: &str, vcm_namespace: &str) -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": { "name": NETWORK_POLICY_NAME, "labels": labels(id) },
        "spec": {
            "podSelector": {},
            "policyTypes": ["Ingress"],
            "ingress": [{ "from": [
                { "podSelector": {} },
                { "namespaceSelector": { "matchLabels": { NAMESPACE_NAME_LABEL: vcm_namespace } } },
            ]}],
        },
    })
}

/// Create the namespace and its isolation objects, each only if missing (a 409 is fine, so
/// this is safe to repeat). Objects that already exist are left as they are.
pub async fn prepare(
    host: &Host,
    namespace: &str,
    id: &str,
    size: &SizeProfile,
) -> Result<(), DriverError> {
    let client = host.client.clone();
    create::<Namespace>(
        host,
        Api::all(client.clone()),
        self::namespace(namespace, id),
    )
    .await?;
    create::<ResourceQuota>(
        host,
        Api::namespaced(client.clone(), namespace),
        quota(id, size),
    )
    .await?;
    create::<LimitRange>(
        host,
        Api::namespaced(client.clone(), namespace),
        limit_range(id, size),
    )
    .await?;
    create::<NetworkPolicy>(
        host,
        Api::namespaced(client, namespace),
        network_policy(id, &host.config.vcm_namespace),
    )
    .await
}

async fn create<K>(host: &Host, api: Api<K>, object: Value) -> Result<(), DriverError>
where
    K: kube::Resource + Clone + std::fmt::Debug + DeserializeOwned + serde::Serialize,
{
    let what = format!(
        "creating {} {}",
        object["kind"].as_str().unwrap_or("object"),
        object["metadata"]["name"].as_str().unwrap_or("")
    );
    let typed: K = serde_json::from_value(object)
        .map_err(|e| DriverError::Permanent(format!("{what}: invalid object: {e}")))?;
    match api.create(&PostParams::default(), &typed).await {
        Ok(_) => Ok(()),
        Err(e) if is_conflict(&e) => Ok(()),
        Err(e) => Err(host.error(&what, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_policy_admits_only_the_namespace_itself_and_vcm() {
        let np: NetworkPolicy =
            serde_json::from_value(network_policy("c-abc", "vcm-system")).expect("valid policy");
        let spec = np.spec.expect("spec");
        assert_eq!(spec.policy_types, Some(vec!["Ingress".to_owned()]));
        let from = spec.ingress.expect("ingress")[0]
            .from
            .clone()
            .expect("from");
        assert_eq!(from.len(), 2);
        let ns_sel = from[1]
            .namespace_selector
            .clone()
            .expect("namespace selector");
        assert_eq!(
            ns_sel.match_labels.expect("labels")["kubernetes.io/metadata.name"],
            "vcm-system"
        );
    }

    #[test]
    fn quota_and_limit_range_come_from_the_size_profile() {
        let size = SizeProfile::small();
        let q: ResourceQuota = serde_json::from_value(quota("c-abc", &size)).expect("quota");
        let hard = q.spec.expect("spec").hard.expect("hard");
        assert_eq!(hard["count/pods"].0, "30");
        let lr: LimitRange =
            serde_json::from_value(limit_range("c-abc", &size)).expect("limit range");
        let item = &lr.spec.expect("spec").limits[0];
        assert_eq!(item.default.as_ref().expect("default")["cpu"].0, "500m");
    }
}
