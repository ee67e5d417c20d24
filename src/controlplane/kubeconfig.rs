//! Kubeconfig documents for a cluster: admin (client certificate) or bearer token.

use std::path::Path;

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use super::pki::ClientCert;

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
    /// The document as a JSON value (kubectl reads JSON as well as YAML).
    pub fn to_value(&self) -> serde_json::Value {
        let user = match &self.user {
            KubeconfigUser::ClientCert(c) => serde_json::json!({
                "client-certificate-data": B64.encode(&c.cert_pem),
                "client-key-data": B64.encode(&c.key_pem),
            }),
            KubeconfigUser::Token(t) => serde_json::json!({ "token": t }),
        };
        let mut context = serde_json::json!({ "cluster": self.name, "user": self.name });
        if let Some(ns) = &self.namespace {
            context["namespace"] = serde_json::Value::String(ns.clone());
        }
        serde_json::json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{ "name": self.name, "cluster": {
                "server": self.server,
                "certificate-authority-data": B64.encode(&self.ca_pem),
            }}],
            "users": [{ "name": self.name, "user": user }],
            "contexts": [{ "name": self.name, "context": context }],
            "current-context": self.name,
            "preferences": {},
        })
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
        let kc = kube::config::Kubeconfig::from_yaml(&self.to_yaml()?)
            .context("parsing the generated kubeconfig")?;
        let mut config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .context("loading the generated kubeconfig")?;
        config.connect_timeout = Some(std::time::Duration::from_secs(5));
        kube::Client::try_from(config).context("building a Kubernetes client")
    }
}
