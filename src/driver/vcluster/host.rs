//! One host cluster: its configuration, a Kubernetes client for it, and how its API errors map
//! to driver errors.

use std::time::Duration;

use anyhow::Context as _;

use super::DriverError;
use super::config::HostConfig;

/// How long a reachability check may take (`hosts()` answers quickly even if a host is down).
pub const REACHABILITY_TIMEOUT: Duration = Duration::from_secs(3);
/// TCP connect timeout of host clients: an unreachable host fails fast instead of hanging a
/// reconcile step.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Read timeout of host clients (no watches are used, so every answer is short).
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// A host cluster vcm talks to.
#[derive(Clone)]
pub struct Host {
    /// What the operator configured.
    pub config: HostConfig,
    /// A client with the host's credentials.
    pub client: kube::Client,
    /// The same without a read timeout, for port-forwards that stay open (see [`super::tunnel`]).
    pub tunnel_client: kube::Client,
    /// The chart values of `values_file` (a mapping), the base of every cluster's values.
    pub values: Option<serde_json::Value>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("name", &self.config.name)
            .field("kubeconfig", &self.config.kubeconfig)
            .field("context", &self.config.context)
            .field("values_file", &self.config.values_file)
            .finish_non_exhaustive()
    }
}

// === impl Host ===

impl Host {
    /// A client from the host's kubeconfig and context, or from the in-cluster configuration,
    /// and the host's `values_file`, which must be a YAML mapping.
    pub async fn connect(config: HostConfig) -> anyhow::Result<Self> {
        let values = config
            .values_file
            .as_deref()
            .map(|path| load_values(path, &config.name))
            .transpose()?;
        let mut kube_config = match &config.kubeconfig {
            Some(path) => {
                let kc = kube::config::Kubeconfig::read_from(path).with_context(|| {
                    format!(
                        "reading kubeconfig {} of host {}",
                        path.display(),
                        config.name
                    )
                })?;
                let opts = kube::config::KubeConfigOptions {
                    context: config.context.clone(),
                    ..Default::default()
                };
                kube::Config::from_custom_kubeconfig(kc, &opts)
                    .await
                    .with_context(|| {
                        format!(
                            "loading kubeconfig {} (context {}) of host {}",
                            path.display(),
                            config.context.as_deref().unwrap_or("<current>"),
                            config.name
                        )
                    })?
            }
            None => kube::Config::incluster().with_context(|| {
                format!(
                    "host {} has no kubeconfig, and vcm is not running in a cluster",
                    config.name
                )
            })?,
        };
        kube_config.connect_timeout = Some(CONNECT_TIMEOUT);
        // NB: a pooled tunnel connection (or a watch through the gateway) may carry nothing
        // for minutes; the API server and kubelet keep port-forwards open while idle.
        let tunnel_client = kube::Client::try_from(kube_config.clone())
            .with_context(|| format!("building a Kubernetes client for host {}", config.name))?;
        kube_config.read_timeout = Some(READ_TIMEOUT);
        let client = kube::Client::try_from(kube_config)
            .with_context(|| format!("building a Kubernetes client for host {}", config.name))?;
        Ok(Self {
            config,
            client,
            tunnel_client,
            values,
        })
    }

    /// The host's name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// `Ok(version)` if the host's API answers within [`REACHABILITY_TIMEOUT`], else why not.
    pub async fn check(&self) -> Result<String, String> {
        match tokio::time::timeout(REACHABILITY_TIMEOUT, self.client.apiserver_version()).await {
            Ok(Ok(info)) => Ok(info.git_version),
            Ok(Err(e)) => Err(format!("the API server did not answer: {}", describe(&e))),
            Err(_) => Err(format!(
                "the API server did not answer within {}s",
                REACHABILITY_TIMEOUT.as_secs()
            )),
        }
    }

    /// Map a failed API call on this host to a driver error: unreachable, throttled or 5xx is
    /// transient; any other refusal is permanent (credentials, RBAC or a bad object, which a
    /// person must fix).
    pub fn error(&self, what: &str, e: kube::Error) -> DriverError {
        match &e {
            kube::Error::Api(s) if s.code == 429 || s.code >= 500 => DriverError::Transient(
                format!("host {} failed {what}: {}", self.name(), describe(&e)),
            ),
            kube::Error::Api(_) => DriverError::Permanent(format!(
                "host {} refused {what}: {}",
                self.name(),
                describe(&e)
            )),
            _ => DriverError::Transient(format!(
                "host {} is unreachable ({what}): {}",
                self.name(),
                describe(&e)
            )),
        }
    }
}

/// The chart values in `path` (host `host`'s `values_file`): a YAML mapping.
fn load_values(path: &std::path::Path, host: &str) -> anyhow::Result<serde_json::Value> {
    let what = || format!("values_file {} of host {host}", path.display());
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", what()))?;
    let values: serde_json::Value =
        serde_yaml_ng::from_str(&text).with_context(|| format!("{} is not valid YAML", what()))?;
    anyhow::ensure!(
        values.is_object(),
        "{} must be a mapping of chart values (like a vcluster.yaml), not {}",
        what(),
        match values {
            serde_json::Value::Null => "empty",
            serde_json::Value::Array(_) => "a list",
            _ => "a scalar",
        }
    );
    Ok(values)
}

/// A kube error with its causes, on one line.
pub fn describe(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => format!("{} ({} {})", s.message, s.code, s.reason),
        other => {
            let mut msg = other.to_string();
            let mut source = std::error::Error::source(other);
            while let Some(cause) = source {
                let text = cause.to_string();
                if !msg.contains(&text) {
                    msg.push_str(": ");
                    msg.push_str(&text);
                }
                source = cause.source();
            }
            msg
        }
    }
}

/// `true` if the error is a 404.
pub fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

/// `true` if the error is a 409 (already exists).
pub fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_values_file_must_exist_parse_and_be_a_mapping_and_errors_name_file_and_host() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cases = [
            (None, "reading values_file"),
            (Some("a: [unclosed"), "is not valid YAML"),
            (Some(""), "not empty"),
            (Some("- a\n- b\n"), "not a list"),
            (Some("just text"), "not a scalar"),
        ];
        for (i, (content, expected)) in cases.into_iter().enumerate() {
            let path = dir.path().join(format!("values-{i}.yaml"));
            if let Some(text) = content {
                std::fs::write(&path, text).expect("written");
            }
            let err = format!("{:#}", load_values(&path, "eks-1").expect_err(expected));
            assert!(err.contains(expected), "{content:?}: {err}");
            assert!(
                err.contains(&path.display().to_string()),
                "names the file: {err}"
            );
            assert!(err.contains("host eks-1"), "names the host: {err}");
        }
        let path = dir.path().join("ok.yaml");
        std::fs::write(&path, "controlPlane:\n  coredns: {enabled: false}\n").expect("written");
        let values = load_values(&path, "eks-1").expect("a mapping");
        assert_eq!(values["controlPlane"]["coredns"]["enabled"], false);
    }
}
