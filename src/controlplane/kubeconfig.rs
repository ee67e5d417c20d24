//! Kubeconfig documents for a cluster: admin (client certificate) or bearer token.

use std::path::Path;

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use super::pki::ClientCert;
use super::tunnel::Tunnel;

/// Who a kubeconfig authenticates as.
#[derive(Clone)]
pub enum KubeconfigUser {
    /// A client certificate (the admin kubeconfig; never handed to CI).
    ClientCert(ClientCert),
    /// A bearer token (a ServiceAccount token minted with TokenRequest).
    Token(String),
}

impl std::fmt::Debug for KubeconfigUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ClientCert(_) => f.write_str("ClientCert(<redacted>)"),
            Self::Token(_) => f.write_str("Token(<redacted>)"),
        }
    }
}

/// A one-cluster, one-user, one-context kubeconfig.
#[derive(Debug, Clone)]
pub struct Kubeconfig {
    /// Name used for the cluster, user and context entries.
    pub name: String,
    /// `https://host:port`.
    pub server: String,
    /// The cluster CA certificate, PEM.
    pub ca_pem: String,
    /// The credentials.
    pub user: KubeconfigUser,
    /// The context's default namespace.
    pub namespace: Option<String>,
}

// === impl Kubeconfig ===

impl Kubeconfig {
    /// The document, as kube's own kubeconfig type: one cluster, one user, one context.
    pub fn to_kube(&self) -> kube::config::Kubeconfig {
        use kube::config::{
            AuthInfo, Cluster, Context, Kubeconfig as File, NamedAuthInfo, NamedCluster,
            NamedContext,
        };
        let auth_info = match &self.user {
            KubeconfigUser::ClientCert(c) => AuthInfo {
                client_certificate_data: Some(B64.encode(&c.cert_pem)),
                client_key_data: Some(B64.encode(&c.key_pem).into()),
                ..AuthInfo::default()
            },
            KubeconfigUser::Token(t) => AuthInfo {
                token: Some(t.clone().into()),
                ..AuthInfo::default()
            },
        };
        File {
            api_version: Some("v1".into()),
            kind: Some("Config".into()),
            clusters: vec![NamedCluster {
                name: self.name.clone(),
                cluster: Some(Cluster {
                    server: Some(self.server.clone()),
                    // NB: none for a server whose certificate the system roots verify
                    // (or plain HTTP): an empty value would make clients trust nothing.
                    certificate_authority_data: (!self.ca_pem.is_empty())
                        .then(|| B64.encode(&self.ca_pem)),
                    ..Cluster::default()
                }),
                ..NamedCluster::default()
            }],
            auth_infos: vec![NamedAuthInfo {
                name: self.name.clone(),
                auth_info: Some(auth_info),
                ..NamedAuthInfo::default()
            }],
            contexts: vec![NamedContext {
                name: self.name.clone(),
                context: Some(Context {
                    cluster: self.name.clone(),
                    user: Some(self.name.clone()),
                    namespace: self.namespace.clone(),
                    ..Context::default()
                }),
                ..NamedContext::default()
            }],
            current_context: Some(self.name.clone()),
            ..File::default()
        }
    }

    /// The document as a JSON value (kubectl reads JSON as well as YAML).
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self.to_kube()).expect("a kubeconfig serialises to JSON")
    }

    /// The document as YAML.
    pub fn to_yaml(&self) -> anyhow::Result<String> {
        serde_yaml_ng::to_string(&self.to_value()).context("rendering the kubeconfig as YAML")
    }

    /// Write the YAML to `path` with mode 0600 (it holds credentials).
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        crate::fsutil::write_private(path, self.to_yaml()?.as_bytes())
    }

    /// A `kube::Client` for this kubeconfig.
    pub async fn client(&self) -> anyhow::Result<kube::Client> {
        let mut config = kube::Config::from_custom_kubeconfig(self.to_kube(), &Default::default())
            .await
            .context("loading the generated kubeconfig")?;
        config.connect_timeout = Some(std::time::Duration::from_secs(5));
        kube::Client::try_from(config).context("building a Kubernetes client")
    }

    /// A `kube::Client` for this kubeconfig whose connections go through `tunnel` (the server
    /// address is not dialled; TLS checks the tunnel's server name against this kubeconfig's CA).
    pub async fn client_via(&self, tunnel: &Tunnel) -> anyhow::Result<kube::Client> {
        use kube::client::ConfigExt as _;
        use tower::ServiceBuilder;

        let mut config = kube::Config::from_custom_kubeconfig(self.to_kube(), &Default::default())
            .await
            .context("loading the generated kubeconfig")?;
        config.tls_server_name = Some(tunnel.tls_server_name().to_owned());
        let https = config
            .rustls_https_connector_with_connector(tunnel.connector())
            .context("building TLS for the tunnel")?;
        let http =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build(https);
        let service = ServiceBuilder::new()
            .layer(config.base_uri_layer())
            .option_layer(
                config
                    .auth_layer()
                    .context("the kubeconfig's credentials")?,
            )
            .map_err(tower::BoxError::from)
            .service(http);
        Ok(kube::Client::new(service, config.default_namespace))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_token_kubeconfig_has_the_shape_kubectl_reads_and_round_trips_through_kube() {
        // Arrange
        let kc = Kubeconfig {
            name: "web".into(),
            server: "https://127.0.0.1:6443".into(),
            ca_pem: "-----BEGIN CERTIFICATE-----\n".into(),
            user: KubeconfigUser::Token("t0k3n".into()),
            namespace: Some("default".into()),
        };

        // Act
        let value = kc.to_value();
        let parsed = kube::config::Kubeconfig::from_yaml(&kc.to_yaml().unwrap()).unwrap();

        // Assert
        assert_eq!(value["apiVersion"], "v1");
        assert_eq!(value["kind"], "Config");
        assert_eq!(value["current-context"], "web");
        assert_eq!(
            value["clusters"][0]["cluster"]["server"],
            "https://127.0.0.1:6443"
        );
        assert_eq!(
            value["clusters"][0]["cluster"]["certificate-authority-data"],
            B64.encode("-----BEGIN CERTIFICATE-----\n")
        );
        assert_eq!(value["users"][0]["user"]["token"], "t0k3n");
        assert_eq!(value["contexts"][0]["context"]["namespace"], "default");
        assert_eq!(parsed.current_context.as_deref(), Some("web"));
        assert!(
            !format!("{kc:?}").contains("t0k3n"),
            "Debug redacts the token"
        );
    }
}
