//! Whether a virtual cluster is ready, decided by vcm rather than the CLI: the control-plane
//! pod is Ready, the syncer wrote secret `vc-<id>`, and the API answers the secret's
//! credentials at the address vcm hands out. Also: turning that secret into a [`Kubeconfig`].

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::Api;
use kube::api::ListParams;

use super::DriverError;
use super::host::{Host, describe};
use crate::controlplane::{ClientCert, Kubeconfig, KubeconfigUser, Tunnel};

/// Key of the kubeconfig in secret `vc-<id>`.
pub const SECRET_KEY: &str = "config";
/// How long the API probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// What the readiness check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// All three conditions hold.
    Ready,
    /// What is still missing, for people.
    Waiting(String),
}

/// Check the three conditions in order and report the first one missing.
pub async fn check(
    host: &Host,
    namespace: &str,
    release: &str,
    name: &str,
    server: &str,
    via: Option<&Tunnel>,
) -> Result<Readiness, DriverError> {
    if let Some(waiting) = pod_waiting(host, namespace, release).await? {
        return Ok(Readiness::Waiting(waiting));
    }
    let secret = super::secret_name(release);
    let Some(yaml) = read_kubeconfig(host, namespace, &secret).await? else {
        return Ok(Readiness::Waiting(format!(
            "waiting for the syncer to write secret {secret} (key `{SECRET_KEY}`)"
        )));
    };
    let kubeconfig = match parse_kubeconfig(&yaml, name, server) {
        Ok(k) => k,
        Err(e) => {
            return Ok(Readiness::Waiting(format!(
                "secret {secret} has no usable kubeconfig yet: {e}"
            )));
        }
    };
    let at = match via {
        Some(tunnel) => tunnel.what().to_owned(),
        None => format!("the API at {server}"),
    };
    Ok(match probe(&kubeconfig, via).await {
        Ok(()) => Readiness::Ready,
        Err(e) => Readiness::Waiting(format!("waiting for {at} to answer: {e}")),
    })
}

/// `None` if a control-plane pod is Ready, else what its state is.
async fn pod_waiting(
    host: &Host,
    namespace: &str,
    release: &str,
) -> Result<Option<String>, DriverError> {
    let pods: Api<Pod> = Api::namespaced(host.client.clone(), namespace);
    let selector = format!("app=vcluster,release={release}");
    let list = pods
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|e| host.error("listing control-plane pods", e))?;
    if list.items.iter().any(is_ready) {
        return Ok(None);
    }
    let Some(pod) = list.items.first() else {
        return Ok(Some(format!(
            "waiting for the control-plane pod ({selector}) to be created"
        )));
    };
    Ok(Some(format!(
        "waiting for control-plane pod {} to be Ready ({})",
        pod.metadata.name.as_deref().unwrap_or("?"),
        pod_state(pod)
    )))
}

/// Whether the chart's control-plane workload (StatefulSet, or Deployment for sizes without a
/// volume, named after the release) exists. A Ready cluster without one has lost its control
/// plane: nothing would ever recreate its pod.
pub async fn workload_exists(
    host: &Host,
    namespace: &str,
    release: &str,
) -> Result<bool, DriverError> {
    let sets: Api<StatefulSet> = Api::namespaced(host.client.clone(), namespace);
    let set = sets
        .get_metadata_opt(release)
        .await
        .map_err(|e| host.error("reading the control-plane StatefulSet", e))?;
    if set.is_some() {
        return Ok(true);
    }
    let deployments: Api<Deployment> = Api::namespaced(host.client.clone(), namespace);
    let deployment = deployments
        .get_metadata_opt(release)
        .await
        .map_err(|e| host.error("reading the control-plane Deployment", e))?;
    Ok(deployment.is_some())
}

pub fn is_ready(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// `phase Pending; PodScheduled=False (Unschedulable: …)`.
pub fn pod_state(pod: &Pod) -> String {
    let Some(status) = &pod.status else {
        return "no status yet".into();
    };
    let mut parts = vec![format!(
        "phase {}",
        status.phase.as_deref().unwrap_or("unknown")
    )];
    for c in status.conditions.iter().flatten() {
        if c.status != "True" {
            let why = [c.reason.as_deref(), c.message.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(": ");
            parts.push(format!("{}={} {why}", c.type_, c.status).trim().to_owned());
        }
    }
    for cs in status.container_statuses.iter().flatten() {
        if let Some(w) = cs.state.as_ref().and_then(|s| s.waiting.as_ref()) {
            parts.push(format!(
                "container {} waiting: {}",
                cs.name,
                w.reason.as_deref().unwrap_or("?")
            ));
        }
    }
    parts.join("; ")
}

/// The kubeconfig YAML in secret `secret`, `None` if the secret or its key is missing.
pub async fn read_kubeconfig(
    host: &Host,
    namespace: &str,
    secret: &str,
) -> Result<Option<String>, DriverError> {
    let secrets: Api<Secret> = Api::namespaced(host.client.clone(), namespace);
    let found = secrets
        .get_opt(secret)
        .await
        .map_err(|e| host.error(&format!("reading secret {secret}"), e))?;
    Ok(found
        .and_then(|s| s.data)
        .and_then(|mut d| d.remove(SECRET_KEY))
        .map(|b| String::from_utf8_lossy(&b.0).into_owned()))
}

/// The current context of `yaml` as a vcm kubeconfig named `name`, with `server` instead of
/// the address the syncer wrote.
pub fn parse_kubeconfig(yaml: &str, name: &str, server: &str) -> anyhow::Result<Kubeconfig> {
    let kc = kube::config::Kubeconfig::from_yaml(yaml)?;
    let context_name = kc
        .current_context
        .clone()
        .or_else(|| kc.contexts.first().map(|c| c.name.clone()))
        .ok_or_else(|| anyhow::anyhow!("no context"))?;
    let context = kc
        .contexts
        .iter()
        .find(|c| c.name == context_name)
        .and_then(|c| c.context.clone())
        .ok_or_else(|| anyhow::anyhow!("context {context_name} is not defined"))?;
    let cluster = kc
        .clusters
        .iter()
        .find(|c| c.name == context.cluster)
        .and_then(|c| c.cluster.clone())
        .ok_or_else(|| anyhow::anyhow!("cluster {} is not defined", context.cluster))?;
    let user_name = context.user.clone().unwrap_or_default();
    let auth = kc
        .auth_infos
        .iter()
        .find(|u| u.name == user_name)
        .and_then(|u| u.auth_info.clone())
        .ok_or_else(|| anyhow::anyhow!("user {user_name} is not defined"))?;
    let ca = cluster
        .certificate_authority_data
        .ok_or_else(|| anyhow::anyhow!("no certificate-authority-data"))?;
    // NB: kube keeps keys and tokens as `SecretString`; its serialiser exposes them, which
    // saves vcm a direct dependency on `secrecy`.
    let auth = serde_json::to_value(&auth)?;
    let field = |key: &str| auth.get(key).and_then(|v| v.as_str()).map(str::to_owned);
    let user = match (
        field("client-certificate-data"),
        field("client-key-data"),
        field("token"),
    ) {
        (Some(cert), Some(key), _) => KubeconfigUser::ClientCert(ClientCert {
            cert_pem: decode(&cert, "client-certificate-data")?,
            key_pem: decode(&key, "client-key-data")?,
        }),
        (_, _, Some(token)) => KubeconfigUser::Token(token),
        _ => anyhow::bail!("user {user_name} has neither client certificate data nor a token"),
    };
    Ok(Kubeconfig {
        name: name.to_owned(),
        server: server.to_owned(),
        ca_pem: decode(&ca, "certificate-authority-data")?,
        user,
        namespace: None,
    })
}

fn decode(b64: &str, what: &str) -> anyhow::Result<String> {
    let bytes = B64
        .decode(b64.trim())
        .map_err(|e| anyhow::anyhow!("{what} is not base64: {e}"))?;
    String::from_utf8(bytes).map_err(|_| anyhow::anyhow!("{what} is not PEM text"))
}

/// `GET /version` with the kubeconfig's credentials, at its address or through `via`.
async fn probe(kubeconfig: &Kubeconfig, via: Option<&Tunnel>) -> Result<(), String> {
    let client = match via {
        Some(tunnel) => kubeconfig.client_via(tunnel).await,
        None => kubeconfig.client().await,
    }
    .map_err(|e| format!("{e:#}"))?;
    match tokio::time::timeout(PROBE_TIMEOUT, client.apiserver_version()).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(describe(&e)),
        Err(_) => Err(format!("no answer within {}s", PROBE_TIMEOUT.as_secs())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = r#"
apiVersion: v1
kind: Config
clusters:
- name: my-vcluster
  cluster:
    server: https://localhost:8443
    certificate-authority-data: Q0EtUEVN
contexts:
- name: my-vcluster
  context: {cluster: my-vcluster, user: my-vcluster}
current-context: my-vcluster
users:
- name: my-vcluster
  user:
    client-certificate-data: Q0VSVA==
    client-key-data: S0VZ
"#;

    #[test]
    fn the_secret_kubeconfig_is_rewritten_to_the_handed_out_server() {
        let kc = parse_kubeconfig(YAML, "web", "https://c-abc.vcm-c-abc.svc:443").expect("parses");
        assert_eq!(kc.server, "https://c-abc.vcm-c-abc.svc:443");
        assert_eq!(kc.ca_pem, "CA-PEM");
        let KubeconfigUser::ClientCert(cert) = kc.user else {
            panic!("expected a client certificate")
        };
        assert_eq!(
            (cert.cert_pem.as_str(), cert.key_pem.as_str()),
            ("CERT", "KEY")
        );
    }

    #[test]
    fn a_token_user_is_kept_as_a_token() {
        let yaml = YAML.replace(
            "client-certificate-data: Q0VSVA==\n    client-key-data: S0VZ",
            "token: abc",
        );
        let kc = parse_kubeconfig(&yaml, "web", "https://x").expect("parses");
        assert!(matches!(kc.user, KubeconfigUser::Token(t) if t == "abc"));
    }

    #[test]
    fn a_kubeconfig_without_credentials_is_refused() {
        let yaml = YAML.replace(
            "client-certificate-data: Q0VSVA==\n    client-key-data: S0VZ",
            "username: x",
        );
        let err = parse_kubeconfig(&yaml, "web", "https://x").expect_err("no credentials");
        assert!(err.to_string().contains("neither"), "{err}");
    }
}
