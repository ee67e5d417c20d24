//! The `vcluster.yaml` (Helm values) vcm hands the CLI for one cluster.
//!
//! Only keys of the chart's v0.20+ schema are used, and only the ones vcm must decide: the
//! Kubernetes version, control-plane resources and persistence from the size profile, the TLS
//! SANs and exported server address, and telemetry off. Isolation (quota, limit range, network
//! policy) is *not* here: vcm creates those objects itself (see the module doc of
//! [`super`]).

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
    /// The API address written into the exported kubeconfig.
    pub server: &'a str,
}

/// The values document as YAML.
pub fn render(input: &ValuesInput<'_>) -> Result<String, DriverError> {
    serde_yaml_ng::to_string(&values(input))
        .map_err(|e| DriverError::Permanent(format!("rendering the vcluster values: {e}")))
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
    json!({
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
        "exportKubeConfig": { "server": input.server },
        "telemetry": { "enabled": false },
    })
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

/// `host` of `https://host:port/path` (IPv6 brackets removed).
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
    fn host_of_handles_ports_paths_and_ipv6() {
        assert_eq!(host_of("https://127.0.0.1:6443"), Some("127.0.0.1"));
        assert_eq!(host_of("https://a.b/x"), Some("a.b"));
        assert_eq!(host_of("https://[::1]:443"), Some("::1"));
    }
}
