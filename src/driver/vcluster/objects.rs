//! The host namespace of a cluster and the isolation objects vcm puts in it before the chart:
//! Pod Security labels on the namespace, ResourceQuota `vcm-quota`, LimitRange `vcm-limits`,
//! NetworkPolicy `vcm-isolation`, and RoleBinding `vcm-namespace` (vcm's own access to the
//! namespace's Secrets; see deploy/host-rbac.yaml).

use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::core::v1::{LimitRange, Namespace, ResourceQuota};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::Api;
use kube::api::PostParams;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::host::{Host, is_conflict};
use super::size::{PodSecurityLevel, SizeProfile};
use super::{
    CLUSTER_ID_LABEL, DriverError, INSTALLATION_LABEL, MANAGED_BY_LABEL, MANAGED_BY_VALUE,
};

/// Name of the ResourceQuota in every cluster namespace.
pub const QUOTA_NAME: &str = "vcm-quota";
/// Name of the LimitRange in every cluster namespace.
pub const LIMIT_RANGE_NAME: &str = "vcm-limits";
/// Name of the NetworkPolicy in every cluster namespace.
pub const NETWORK_POLICY_NAME: &str = "vcm-isolation";
/// Name of the NetworkPolicy that opens the control plane's API port on `{node_port}` hosts.
pub const API_NETWORK_POLICY_NAME: &str = "vcm-api";
/// The port the vCluster control plane serves its API on (the chart's Service target).
const CONTROL_PLANE_PORT: u16 = 8443;
/// Name of the RoleBinding (and of the ClusterRole it binds) that gives vcm the Secrets of the
/// namespace, and of nothing else (deploy/host-rbac.yaml).
pub const NAMESPACE_ROLE: &str = "vcm-namespace";
/// The label every namespace carries with its own name (set by the API server since 1.21).
const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";
/// The quota key limiting NodePort Services (it counts their ports).
const NODE_PORTS_QUOTA: &str = "services.nodeports";
/// Node ports of the chart's Service when it is a NodePort: `https` and `kubelet` (chart
/// v0.36.1 `templates/service.yaml`; the kubelet port is there while
/// `networking.advanced.proxyKubelets.byHostname`, on by default).
const CONTROL_PLANE_NODE_PORTS: u64 = 2;
/// The cloud instance metadata address (AWS, GCP, Azure): credentials of the node live there.
const METADATA_CIDR: &str = "169.254.169.254/32";

/// Labels on everything vcm creates for cluster `id`.
pub fn labels(id: &str) -> Value {
    json!({ MANAGED_BY_LABEL: MANAGED_BY_VALUE, CLUSTER_ID_LABEL: id })
}

/// The namespace object, with the Pod Security Standard its pods must meet and the
/// installation that owns it.
pub fn namespace(
    name: &str,
    id: &str,
    pod_security: PodSecurityLevel,
    installation: Option<&str>,
) -> Value {
    let mut labels = labels(id);
    if let Some(me) = installation {
        labels[INSTALLATION_LABEL] = json!(me);
    }
    for mode in ["enforce", "warn", "audit"] {
        labels[format!("pod-security.kubernetes.io/{mode}")] = json!(pod_security.as_str());
        labels[format!("pod-security.kubernetes.io/{mode}-version")] = json!("latest");
    }
    json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": { "name": name, "labels": labels },
    })
}

/// The RoleBinding that gives `username` (vcm's own identity on the host) the ClusterRole
/// `vcm-namespace` in this namespace only.
pub fn namespace_role_binding(id: &str, username: &str) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": { "name": NAMESPACE_ROLE, "labels": labels(id) },
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": NAMESPACE_ROLE,
        },
        "subjects": [{ "apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": username }],
    })
}

/// The ResourceQuota: the profile's `quota` as `hard`. With `node_port` (the host hands the
/// API out at a node port) `services.nodeports`, if limited, gets room for the chart's own
/// Service.
///
/// NB: the quota is for what the cluster's users run; without this, a size that allows no
/// node ports (`small`) would refuse the control plane's Service and the install would fail.
pub fn quota(id: &str, size: &SizeProfile, node_port: bool) -> Value {
    let mut hard = size.quota.clone();
    if node_port && let Some(limit) = hard.get_mut(NODE_PORTS_QUOTA) {
        match limit.trim().parse::<u64>() {
            Ok(n) => *limit = (n + CONTROL_PLANE_NODE_PORTS).to_string(),
            Err(_) => tracing::warn!(
                cluster.id = id,
                limit = %limit,
                "{NODE_PORTS_QUOTA} is not a plain count; the control plane's node port is not added"
            ),
        }
    }
    json!({
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": { "name": QUOTA_NAME, "labels": labels(id) },
        "spec": { "hard": hard },
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
/// ingress only from pods of the same namespace and from vcm's own namespace, and sends
/// traffic only to its own namespace, to namespaces vcm does not manage (DNS, the host's
/// services) and outside the cluster, never to the cloud metadata address.
///
/// NB: other clusters' namespaces are excluded by their `managed-by=vcm` label. The `ipBlock`
/// rule is for addresses outside the cluster: CNIs that apply ipBlock to pod addresses too
/// (Calico does) would let it reach other pods, so on such a host the operator lists the pod
/// CIDR in the host's `egress_except`, which joins the metadata address in `except`.
pub fn network_policy(id: &str, vcm_namespace: &str, egress_except: &[String]) -> Value {
    // NB: an empty `except` is not the same as none to every API server version: leave the
    // IPv6 one out unless something is excepted.
    let ipv6: Vec<&str> = egress_except
        .iter()
        .map(String::as_str)
        .filter(|c| c.contains(':'))
        .collect();
    let ipv6_except = (!ipv6.is_empty()).then_some(ipv6);
    let except: Vec<&str> = std::iter::once(METADATA_CIDR)
        .chain(
            egress_except
                .iter()
                .map(String::as_str)
                .filter(|c| !c.contains(':')),
        )
        .collect();
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": { "name": NETWORK_POLICY_NAME, "labels": labels(id) },
        "spec": {
            "podSelector": {},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{ "from": [
                { "podSelector": {} },
                { "namespaceSelector": { "matchLabels": { NAMESPACE_NAME_LABEL: vcm_namespace } } },
            ]}],
            "egress": [
                { "to": [
                    { "podSelector": {} },
                    { "namespaceSelector": { "matchExpressions": [{
                        "key": MANAGED_BY_LABEL, "operator": "NotIn", "values": [MANAGED_BY_VALUE],
                    }]}},
                ]},
                { "to": [{ "ipBlock": { "cidr": "0.0.0.0/0", "except": except } }] },
                { "to": [{ "ipBlock": { "cidr": "::/0", "except": ipv6_except } }] },
            ],
        },
    })
}

/// With `{node_port}` in the host's `server_template`, vcm and CI reach the control plane from
/// outside the cluster, which [`network_policy`] would refuse: this second policy admits TCP
/// to the API port (8443, behind both of the chart's Service ports) of the control-plane pod
/// only, from anywhere. The API authenticates every caller; the workloads stay isolated.
pub fn api_network_policy(id: &str) -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": { "name": API_NETWORK_POLICY_NAME, "labels": labels(id) },
        "spec": {
            "podSelector": { "matchLabels": { "app": "vcluster", "release": id } },
            "policyTypes": ["Ingress"],
            "ingress": [{ "ports": [{ "protocol": "TCP", "port": CONTROL_PLANE_PORT }] }],
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
    installation: Option<&str>,
) -> Result<(), DriverError> {
    let client = host.client.clone();
    create::<Namespace>(
        host,
        Api::all(client.clone()),
        self::namespace(namespace, id, size.pod_security, installation),
    )
    .await?;
    // NB: first after the namespace: vcm's host role holds no Secrets anywhere, and the chart
    // (helm's release records, the kubeconfig Secret vcm reads) needs them here.
    let me = whoami(host).await?;
    create::<RoleBinding>(
        host,
        Api::namespaced(client.clone(), namespace),
        namespace_role_binding(id, &me),
    )
    .await?;
    create::<ResourceQuota>(
        host,
        Api::namespaced(client.clone(), namespace),
        quota(id, size, host.config.uses_node_port()),
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
        Api::namespaced(client.clone(), namespace),
        network_policy(id, &host.config.vcm_namespace, &host.config.egress_except),
    )
    .await?;
    if host.config.uses_node_port() {
        create::<NetworkPolicy>(
            host,
            Api::namespaced(client, namespace),
            api_network_policy(id),
        )
        .await?;
    }
    Ok(())
}

/// Whether `prepare` has given vcm the namespace's Secrets (its RoleBinding exists): until it
/// has, vcm may not read Helm's release records there (its host role holds no Secrets).
pub async fn prepared(host: &Host, namespace: &str) -> Result<bool, DriverError> {
    let bindings: Api<RoleBinding> = Api::namespaced(host.client.clone(), namespace);
    let found = bindings
        .get_opt(NAMESPACE_ROLE)
        .await
        .map_err(|e| host.error(&format!("reading RoleBinding {NAMESPACE_ROLE}"), e))?;
    Ok(found.is_some())
}

/// vcm's user name on `host` (a SelfSubjectReview: whatever credentials it was given).
async fn whoami(host: &Host) -> Result<String, DriverError> {
    let review: SelfSubjectReview = serde_json::from_value(json!({
        "apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview",
    }))
    .map_err(|e| DriverError::Permanent(format!("building a SelfSubjectReview: {e}")))?;
    let answer = Api::<SelfSubjectReview>::all(host.client.clone())
        .create(&PostParams::default(), &review)
        .await
        .map_err(|e| host.error("asking the host who vcm is (SelfSubjectReview)", e))?;
    answer
        .status
        .and_then(|s| s.user_info?.username)
        .ok_or_else(|| DriverError::Permanent("the host's SelfSubjectReview named no user".into()))
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
        let np: NetworkPolicy = serde_json::from_value(network_policy("c-abc", "vcm-system", &[]))
            .expect("valid policy");
        let spec = np.spec.expect("spec");
        assert_eq!(
            spec.policy_types,
            Some(vec!["Ingress".to_owned(), "Egress".to_owned()])
        );
        let egress = spec.egress.clone().expect("egress");
        let to_others = egress[0].to.clone().expect("to")[1]
            .namespace_selector
            .clone()
            .expect("namespace selector")
            .match_expressions
            .expect("expressions");
        assert_eq!(
            (to_others[0].key.as_str(), to_others[0].operator.as_str()),
            (MANAGED_BY_LABEL, "NotIn"),
            "no traffic to other clusters' namespaces"
        );
        let outside = egress[1].to.clone().expect("to")[0]
            .ip_block
            .clone()
            .expect("ip block");
        assert_eq!(outside.except, Some(vec![METADATA_CIDR.to_owned()]));
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
    fn the_hosts_egress_exceptions_join_the_metadata_address_by_family() {
        let np: NetworkPolicy = serde_json::from_value(network_policy(
            "c-abc",
            "vcm-system",
            &["10.0.0.0/16".into(), "fd00::/8".into()],
        ))
        .expect("valid policy");
        let egress = np.spec.expect("spec").egress.expect("egress");
        let block = |i: usize| egress[i].to.clone().expect("to")[0].ip_block.clone();
        assert_eq!(
            block(1).expect("v4").except,
            Some(vec![METADATA_CIDR.to_owned(), "10.0.0.0/16".to_owned()])
        );
        assert_eq!(
            block(2).expect("v6").except,
            Some(vec!["fd00::/8".to_owned()])
        );
    }

    #[test]
    fn the_api_policy_opens_only_the_control_plane_port_of_its_own_pod() {
        let np = api_network_policy("c-abc");
        assert_eq!(
            np["spec"]["podSelector"]["matchLabels"],
            json!({ "app": "vcluster", "release": "c-abc" })
        );
        assert_eq!(np["spec"]["policyTypes"], json!(["Ingress"]));
        assert_eq!(
            np["spec"]["ingress"],
            json!([{ "ports": [{ "protocol": "TCP", "port": 8443 }] }])
        );
    }

    #[test]
    fn quota_and_limit_range_come_from_the_size_profile() {
        let size = SizeProfile::small();
        let q: ResourceQuota = serde_json::from_value(quota("c-abc", &size, false)).expect("quota");
        let hard = q.spec.expect("spec").hard.expect("hard");
        assert_eq!(hard["count/pods"].0, "30");
        assert_eq!(hard["services.nodeports"].0, "0");
        let lr: LimitRange =
            serde_json::from_value(limit_range("c-abc", &size)).expect("limit range");
        let item = &lr.spec.expect("spec").limits[0];
        assert_eq!(item.default.as_ref().expect("default")["cpu"].0, "500m");
    }

    #[test]
    fn a_node_port_host_allows_the_control_plane_its_node_ports_if_limited() {
        let hard = |size: &SizeProfile| {
            let q: ResourceQuota =
                serde_json::from_value(quota("c-abc", size, true)).expect("quota");
            q.spec.expect("spec").hard.expect("hard")
        };
        assert_eq!(hard(&SizeProfile::small())["services.nodeports"].0, "2");
        assert!(
            !hard(&SizeProfile::medium()).contains_key("services.nodeports"),
            "no limit stays no limit"
        );
    }
}
