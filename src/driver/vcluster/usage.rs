//! A vCluster's use of its host: the pods of its namespace, what they request, their
//! ResourceQuotas, and what they use where the host serves the metrics API.

use k8s_openapi::api::core::v1::{Pod, ResourceQuota};
use kube::Api;
use kube::api::ListParams;

use super::host::Host;
use crate::domain::usage::{NamespaceUsage, QuotaUse, bytes, millicores};
use crate::driver::DriverError;

/// The namespace `ns` on `host`, and what could not be read (the metrics API is optional).
pub(super) async fn of_namespace(
    host: &Host,
    ns: &str,
) -> Result<(NamespaceUsage, Vec<String>), DriverError> {
    let pods: Api<Pod> = Api::namespaced(host.client.clone(), ns);
    let quotas: Api<ResourceQuota> = Api::namespaced(host.client.clone(), ns);
    let lp = ListParams::default();
    let (pods, quotas, used) = tokio::join!(pods.list(&lp), quotas.list(&lp), used(host, ns));
    let pods = pods.map_err(|e| host.error(&format!("listing the pods of {ns}"), e))?;
    let quotas = quotas.map_err(|e| host.error(&format!("listing the quotas of {ns}"), e))?;
    let mut usage = NamespaceUsage {
        name: ns.to_owned(),
        ..NamespaceUsage::default()
    };
    for pod in &pods.items {
        usage.pods += 1;
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        if phase == Some("Running") {
            usage.running_pods += 1;
        }
        if matches!(phase, Some("Succeeded" | "Failed")) {
            continue; // NB: a finished pod holds no resources; the scheduler ignores it too.
        }
        for c in pod.spec.iter().flat_map(|s| &s.containers) {
            let requests = c.resources.as_ref().and_then(|r| r.requests.as_ref());
            if let Some(r) = requests {
                usage.cpu_requests_millicores +=
                    r.get("cpu").and_then(|q| millicores(&q.0)).unwrap_or(0);
                usage.memory_requests_bytes +=
                    r.get("memory").and_then(|q| bytes(&q.0)).unwrap_or(0);
            }
        }
    }
    for q in &quotas.items {
        let quota = q.metadata.name.clone().unwrap_or_default();
        let status = q.status.as_ref();
        let hard = status.and_then(|s| s.hard.as_ref());
        let used = status.and_then(|s| s.used.as_ref());
        for (resource, limit) in hard.into_iter().flatten() {
            usage.quotas.push(QuotaUse {
                quota: quota.clone(),
                resource: resource.clone(),
                hard: limit.0.clone(),
                used: used
                    .and_then(|u| u.get(resource))
                    .map_or_else(|| "0".to_owned(), |q| q.0.clone()),
            });
        }
    }
    let mut notes = Vec::new();
    match used {
        Ok((cpu, memory)) => {
            usage.cpu_used_millicores = Some(cpu);
            usage.memory_used_bytes = Some(memory);
        }
        Err(why) => notes.push(why),
    }
    Ok((usage, notes))
}

/// CPU (millicores) and memory (bytes) the namespace's pods use now, from the metrics API
/// (metrics.k8s.io, served by metrics-server); `Err` says why there is no figure.
async fn used(host: &Host, ns: &str) -> Result<(u64, u64), String> {
    let path = format!("/apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods");
    let request = axum::http::Request::get(&path)
        .body(Vec::new())
        .map_err(|e| format!("building {path}: {e}"))?;
    let list: serde_json::Value = match host.client.request(request).await {
        Ok(list) => list,
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 503 => {
            return Err(format!(
                "host {} serves no metrics API (metrics.k8s.io), so actual use is not known; \
                 requests and quotas are",
                host.name()
            ));
        }
        Err(e) => {
            return Err(format!(
                "reading the metrics API of host {}: {e}",
                host.name()
            ));
        }
    };
    let (mut cpu, mut memory) = (0, 0);
    for pod in list["items"].as_array().into_iter().flatten() {
        for c in pod["containers"].as_array().into_iter().flatten() {
            cpu += c["usage"]["cpu"].as_str().and_then(millicores).unwrap_or(0);
            memory += c["usage"]["memory"].as_str().and_then(bytes).unwrap_or(0);
        }
    }
    Ok((cpu, memory))
}
