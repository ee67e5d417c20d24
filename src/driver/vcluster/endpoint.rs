//! The API address vcm probes and hands out for a cluster: `server_template` filled in, and,
//! with `{node_port}`, the node port the host allocated to the chart's Service.
//!
//! NB: a node port is only known once the chart's Service exists, so the address is resolved
//! on every readiness check and kubeconfig read rather than stored: the Service is the one
//! source of truth (re-installing the chart may allocate another port).

use k8s_openapi::api::core::v1::Service;
use kube::Api;

use super::DriverError;
use super::host::Host;
use super::template::fill_node_port;

/// Name of the chart's Service port the API is served on.
const HTTPS_PORT_NAME: &str = "https";
/// The Service port the chart serves the API on when no port is named [`HTTPS_PORT_NAME`].
const HTTPS_PORT: i32 = 443;

/// Where a cluster's API is, as far as the host tells now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// The address, fully filled in.
    Known(String),
    /// Not known yet (the Service or its node port does not exist yet), for people.
    Waiting(String),
}

/// The address of cluster `id` (`name` for `{name}`) on `host`: the template filled in, and
/// with `{node_port}`, the node port of Service `<id>` in namespace `ns`.
pub async fn resolve(host: &Host, ns: &str, id: &str, name: &str) -> Result<Endpoint, DriverError> {
    let server = host.config.server_for(id, name);
    if !host.config.uses_node_port() {
        return Ok(Endpoint::Known(server));
    }
    let services: Api<Service> = Api::namespaced(host.client.clone(), ns);
    let service = services
        .get_opt(id)
        .await
        .map_err(|e| host.error(&format!("reading Service {id}"), e))?;
    let Some(service) = service else {
        return Ok(Endpoint::Waiting(format!(
            "waiting for the chart's Service {id} (its node port is the address in \
             server_template {:?})",
            host.config.server_template
        )));
    };
    Ok(match node_port(&service) {
        Some(port) => Endpoint::Known(fill_node_port(&server, port)),
        None => Endpoint::Waiting(format!(
            "waiting for a node port on Service {id} (port {HTTPS_PORT_NAME:?} or \
             {HTTPS_PORT}; type {})",
            service
                .spec
                .as_ref()
                .and_then(|s| s.type_.as_deref())
                .unwrap_or("ClusterIP")
        )),
    })
}

/// The node port of the Service's port named `https`, else of its port 443.
fn node_port(service: &Service) -> Option<u16> {
    let ports = service.spec.as_ref()?.ports.as_ref()?;
    let https = ports
        .iter()
        .find(|p| p.name.as_deref() == Some(HTTPS_PORT_NAME))
        .or_else(|| ports.iter().find(|p| p.port == HTTPS_PORT))?;
    https.node_port.and_then(|p| u16::try_from(p).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mk_service(ports: serde_json::Value) -> Service {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "c-abc"},
            "spec": {"type": "NodePort", "ports": ports},
        }))
        .expect("a Service")
    }

    #[test]
    fn the_node_port_of_the_https_port_is_taken_else_that_of_port_443() {
        let cases = [
            (
                serde_json::json!([
                    {"name": "kubelet", "port": 10250, "nodePort": 31000},
                    {"name": "https", "port": 8443, "nodePort": 31443},
                    {"port": 443, "nodePort": 32000},
                ]),
                Some(31443),
                "the port named https wins",
            ),
            (
                serde_json::json!([
                    {"name": "kubelet", "port": 10250, "nodePort": 31000},
                    {"name": "api", "port": 443, "nodePort": 32000},
                ]),
                Some(32000),
                "without a port named https, port 443",
            ),
            (
                serde_json::json!([{"name": "https", "port": 443}]),
                None,
                "no node port allocated (yet, or a ClusterIP Service)",
            ),
            (
                serde_json::json!([{"name": "kubelet", "port": 10250, "nodePort": 31000}]),
                None,
                "another port's node port is never taken",
            ),
        ];
        for (ports, expected, why) in cases {
            assert_eq!(node_port(&mk_service(ports)), expected, "{why}");
        }
    }
}
