//! The `vcluster.yaml` (Helm values) vcm hands the CLI for one cluster.
//!
//! Only keys of the chart's v0.20+ schema are used, and only the ones vcm must decide: the
//! Kubernetes version, control-plane resources and persistence from the size profile, the TLS
//! SANs and exported server address, and telemetry off. Isolation (quota, limit range, network
//! policy) is *not* here: vcm creates those objects itself (see the module doc of
//! [`super`]).
//!
//! A host may add values of its own (`values_file`: a private registry, say). They are the
//! base and vcm's values are merged on top, so every key vcm decides stays vcm's.

use serde_json::{Value, json};

use super::DriverError;
use super::size::SizeProfile;

/// What the values depend on.
#[derive(Debug, Clone)]
pub struct ValuesInput<'a> {
    /// Release name (the cluster id).
    pub release: &'a str,
    /// Host namespace.
    pub namespace: &'a str,
    /// `ghcr.io/loft-sh/kubernetes` tag (`v1.36.0`).
    pub kubernetes_tag: &'a str,
    /// The size profile.
    pub size: &'a SizeProfile,
    /// The API address handed out; with `{node_port}` still in it when `node_port`.
    pub server: &'a str,
    /// Whether the API is handed out at a node port of the chart's Service.
    pub node_port: bool,
}

/// The values document as YAML: the host's values (if any) with vcm's merged on top.
pub fn render(input: &ValuesInput<'_>, host_values: Option<&Value>) -> Result<String, DriverError> {
    let mut doc = host_values.cloned().unwrap_or_else(|| json!({}));
    merge(&mut doc, values(input));
    serde_yaml_ng::to_string(&doc)
        .map_err(|e| DriverError::Permanent(format!("rendering the vcluster values: {e}")))
}

/// Merge `top` into `base`: maps merge key by key, recursively; anything else (a scalar, a
/// list, a map meeting a non-map) is replaced by `top`'s.
pub fn merge(base: &mut Value, top: Value) {
    match (base, top) {
        (Value::Object(base), Value::Object(top)) => {
            for (key, value) in top {
                match base.get_mut(&key) {
                    Some(existing) => merge(existing, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, top) => *base = top,
    }
}

/// The values document.
pub fn values(input: &ValuesInput<'_>) -> Value {
    let size = input.size;
    let mut limits = json!({ "memory": size.memory_limit });
    if let Some(cpu) = &size.cpu_limit {
        limits["cpu"] = json!(cpu);
    }
    let volume_claim = match &size.storage {
        None => json!({ "enabled": false }),
        Some(storage) => json!({ "enabled": true, "size": storage, "retentionPolicy": "Delete" }),
    };
    let mut doc = json!({
        "controlPlane": {
            "distro": { "k8s": { "enabled": true, "version": input.kubernetes_tag } },
            "statefulSet": {
                "persistence": { "volumeClaim": volume_claim },
                "resources": {
                    "requests": { "cpu": size.cpu_request, "memory": size.memory_request },
                    "limits": limits,
                },
            },
            "proxy": { "extraSANs": extra_sans(input) },
        },
        "telemetry": { "enabled": false },
    });
    // NB: a host name in the template is each cluster's own name under a wildcard DNS record:
    // the chart's Ingress (off unless a host's values file enables it) must route exactly it.
    if let Some(host) = host_of(input.server).filter(|h| is_ingress_host(h)) {
        doc["controlPlane"]["ingress"] = json!({ "host": host });
    }
    if input.node_port {
        doc["controlPlane"]["service"] = json!({ "spec": { "type": "NodePort" } });
    } else {
        // NB: with a node port the address is unknown until the Service exists, so the
        // syncer's kubeconfig keeps the chart's default; vcm replaces the server when it reads
        // the secret anyway (`readiness::parse_kubeconfig`).
        doc["exportKubeConfig"] = json!({ "server": input.server });
    }
    doc
}

/// Whether `host` is a DNS name an Ingress could route (not an address, not a Service name).
fn is_ingress_host(host: &str) -> bool {
    host.parse::<std::net::IpAddr>().is_err()
        && host.contains('.')
        && !host.ends_with(".svc")
        && !host.contains(".svc.")
}

/// The Service's `.svc` names (not in the chart's default SANs) and the host of the handed-out
/// server address, so the certificate matches whatever `server_template` says.
fn extra_sans(input: &ValuesInput<'_>) -> Vec<String> {
    let mut sans = vec![
        format!("{}.{}.svc", input.release, input.namespace),
        format!("{}.{}.svc.cluster.local", input.release, input.namespace),
    ];
    if let Some(host) = host_of(input.server)
        && !sans.iter().any(|s| s == host)
    {
        sans.push(host.to_owned());
    }
    sans
}

/// `host` of `https://host:port/path` (IPv6 brackets removed; the port may still be
/// `{node_port}`).
fn host_of(server: &str) -> Option<&str> {
    let rest = server.split_once("://").map_or(server, |(_, r)| r);
    let authority = rest.split('/').next()?;
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next()?
    } else {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    };
    (!host.is_empty()).then_some(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mk_input<'a>(size: &'a SizeProfile, server: &'a str) -> ValuesInput<'a> {
        ValuesInput {
            release: "c-abc",
            namespace: "vcm-c-abc",
            kubernetes_tag: "v1.34.0",
            size,
            server,
            node_port: server.contains("{node_port}"),
        }
    }

    #[test]
    fn small_values_disable_the_volume_and_carry_version_sans_and_server() {
        let size = SizeProfile::small();
        let v = values(&mk_input(&size, "https://c-abc.vcm-c-abc.svc:443"));
        let cp = &v["controlPlane"];
        assert_eq!(cp["distro"]["k8s"]["version"], "v1.34.0");
        assert_eq!(
            cp["statefulSet"]["persistence"]["volumeClaim"]["enabled"],
            false
        );
        assert_eq!(cp["statefulSet"]["resources"]["requests"]["cpu"], "200m");
        assert_eq!(
            cp["proxy"]["extraSANs"],
            json!(["c-abc.vcm-c-abc.svc", "c-abc.vcm-c-abc.svc.cluster.local"])
        );
        assert_eq!(
            v["exportKubeConfig"]["server"],
            "https://c-abc.vcm-c-abc.svc:443"
        );
        assert_eq!(v["telemetry"]["enabled"], false);
    }

    #[test]
    fn an_external_server_host_is_added_to_the_sans() {
        let size = SizeProfile::large();
        let v = values(&mk_input(&size, "https://c-abc.vc.example.com"));
        let sans = v["controlPlane"]["proxy"]["extraSANs"].clone();
        assert_eq!(sans[2], "c-abc.vc.example.com");
        assert_eq!(
            v["controlPlane"]["statefulSet"]["resources"]["limits"]["cpu"],
            "2"
        );
        assert_eq!(
            v["controlPlane"]["statefulSet"]["persistence"]["volumeClaim"]["size"],
            "10Gi"
        );
    }

    #[test]
    fn a_host_name_in_the_template_is_the_ingress_host_and_addresses_are_not() {
        let size = SizeProfile::small();
        let named = values(&mk_input(&size, "https://c-abc.vc.example.com"));
        assert_eq!(
            named["controlPlane"]["ingress"],
            json!({ "host": "c-abc.vc.example.com" })
        );
        for server in [
            "https://c-abc.vcm-c-abc.svc:443",
            "https://10.0.0.7:443",
            "https://[::1]:6443",
        ] {
            let v = values(&mk_input(&size, server));
            assert!(v["controlPlane"].get("ingress").is_none(), "{server}: {v}");
        }
    }

    #[test]
    fn host_of_handles_ports_paths_and_ipv6() {
        assert_eq!(host_of("https://127.0.0.1:6443"), Some("127.0.0.1"));
        assert_eq!(host_of("https://a.b/x"), Some("a.b"));
        assert_eq!(host_of("https://[::1]:443"), Some("::1"));
        assert_eq!(
            host_of("https://10.250.0.2:{node_port}"),
            Some("10.250.0.2")
        );
        assert_eq!(host_of("https://[fd00::2]:{node_port}/x"), Some("fd00::2"));
    }

    #[test]
    fn a_node_port_server_makes_the_service_a_node_port_and_exports_no_server() {
        let size = SizeProfile::small();
        let v = values(&mk_input(&size, "https://10.250.0.2:{node_port}"));
        assert_eq!(v["controlPlane"]["service"]["spec"]["type"], "NodePort");
        assert!(v.get("exportKubeConfig").is_none(), "{v}");
        assert_eq!(v["controlPlane"]["proxy"]["extraSANs"][2], "10.250.0.2");
        let plain = values(&mk_input(&size, "https://c-abc.vcm-c-abc.svc:443"));
        assert!(plain["controlPlane"].get("service").is_none(), "{plain}");
    }

    #[test]
    fn merge_keeps_host_only_keys_recurses_into_maps_and_lets_the_top_win() {
        let mut base = json!({
            "controlPlane": {
                "statefulSet": {
                    "image": { "registry": "registry.local:5000" },
                    "resources": { "limits": { "memory": "64Gi", "nvidia.com/gpu": "1" } },
                },
                "coredns": { "enabled": false },
                "proxy": { "extraSANs": ["host.example"] },
            },
            "telemetry": { "enabled": true },
            "exportKubeConfig": "not a map",
        });
        let top = json!({
            "controlPlane": {
                "statefulSet": { "resources": { "limits": { "memory": "1Gi" } } },
                "proxy": { "extraSANs": ["c-abc.vcm-c-abc.svc"] },
            },
            "telemetry": { "enabled": false },
            "exportKubeConfig": { "server": "https://x" },
        });
        merge(&mut base, top);
        assert_eq!(
            base,
            json!({
                "controlPlane": {
                    "statefulSet": {
                        "image": { "registry": "registry.local:5000" },
                        "resources": { "limits": { "memory": "1Gi", "nvidia.com/gpu": "1" } },
                    },
                    "coredns": { "enabled": false },
                    "proxy": { "extraSANs": ["c-abc.vcm-c-abc.svc"] },
                },
                "telemetry": { "enabled": false },
                "exportKubeConfig": { "server": "https://x" },
            }),
            "host-only keys kept, nested maps merged, vcm wins conflicts, lists replaced"
        );
    }

    #[test]
    fn rendered_values_put_vcm_over_the_host_values() {
        let size = SizeProfile::small();
        let host = json!({
            "controlPlane": {
                "service": { "spec": { "type": "LoadBalancer" }, "annotations": { "a": "b" } },
                "distro": { "k8s": { "image": { "registry": "r.local" } } },
            },
            "telemetry": { "enabled": true },
        });
        let yaml = render(
            &mk_input(&size, "https://10.0.0.1:{node_port}"),
            Some(&host),
        )
        .expect("renders");
        let v: Value = serde_yaml_ng::from_str(&yaml).expect("yaml");
        let cp = &v["controlPlane"];
        assert_eq!(
            cp["service"]["spec"]["type"], "NodePort",
            "vcm's node port wins"
        );
        assert_eq!(cp["service"]["annotations"]["a"], "b");
        assert_eq!(cp["distro"]["k8s"]["image"]["registry"], "r.local");
        assert_eq!(cp["distro"]["k8s"]["version"], "v1.34.0");
        assert_eq!(v["telemetry"]["enabled"], false);
    }
}
