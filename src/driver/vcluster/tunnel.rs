//! `api_access = "tunnel"`: vcm reaches a vCluster's API through the host's API server, with a
//! port-forward to the Ready control-plane pod for each connection (what `vcluster connect`
//! does, without a local port). The host's API is then all vcm needs to reach.

use std::io;

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::ListParams;

use super::host::Host;
use super::readiness::is_ready;
use crate::controlplane::Tunnel;

/// The port the control-plane container serves the API on when it names none `https`.
const API_PORT: u16 = 8443;
/// Name of the control-plane container's API port in the chart.
const API_PORT_NAME: &str = "https";
/// A name the vCluster's serving certificate always carries: the syncer's own kubeconfig
/// (secret `vc-<id>`) addresses the API as `https://localhost:8443`, as `vcluster connect`'s
/// port-forward does.
const TLS_SERVER_NAME: &str = "localhost";

/// The tunnel to the API of release `release` in namespace `ns` on `host`.
pub fn to_control_plane(host: &Host, ns: &str, release: &str) -> Tunnel {
    let pods: Api<Pod> = Api::namespaced(host.tunnel_client.clone(), ns);
    let selector = format!("app=vcluster,release={release}");
    let what = format!(
        "port-forward to the control plane of {release} in namespace {ns} on host {}",
        host.name()
    );
    Tunnel::new(what, TLS_SERVER_NAME, move || {
        let pods = pods.clone();
        let selector = selector.clone();
        Box::pin(async move {
            let list = pods
                .list(&ListParams::default().labels(&selector))
                .await
                .map_err(|e| io::Error::other(format!("listing pods {selector}: {e}")))?;
            let pod = list.items.iter().find(|p| is_ready(p)).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotConnected,
                    format!("no Ready control-plane pod ({selector})"),
                )
            })?;
            let name = pod.metadata.name.clone().unwrap_or_default();
            let port = api_port(pod);
            let mut forward = pods
                .portforward(&name, &[port])
                .await
                .map_err(|e| io::Error::other(format!("pod {name} port {port}: {e}")))?;
            let stream = forward.take_stream(port).ok_or_else(|| {
                io::Error::other(format!("pod {name}: no stream for port {port}"))
            })?;
            if let Some(failed) = forward.take_error(port) {
                tokio::spawn(async move {
                    if let Some(why) = failed.await {
                        tracing::debug!(pod = %name, port, %why, "port-forward ended with an error");
                    }
                });
            }
            Ok(stream)
        })
    })
}

/// The control-plane container's port named `https`, else [`API_PORT`].
fn api_port(pod: &Pod) -> u16 {
    pod.spec
        .iter()
        .flat_map(|s| &s.containers)
        .flat_map(|c| c.ports.iter().flatten())
        .find(|p| p.name.as_deref() == Some(API_PORT_NAME))
        .and_then(|p| u16::try_from(p.container_port).ok())
        .unwrap_or(API_PORT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mk_pod(ports: serde_json::Value) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "c-abc-0"},
            "spec": {"containers": [
                {"name": "init-done", "image": "x"},
                {"name": "syncer", "image": "x", "ports": ports},
            ]},
        }))
        .expect("a Pod")
    }

    #[test]
    fn the_api_port_is_the_container_port_named_https_else_8443() {
        let named = mk_pod(serde_json::json!([
            {"name": "metrics", "containerPort": 9090},
            {"name": "https", "containerPort": 9443},
        ]));
        assert_eq!(api_port(&named), 9443);
        let unnamed = mk_pod(serde_json::json!([{"containerPort": 9090}]));
        assert_eq!(api_port(&unnamed), API_PORT);
    }
}
