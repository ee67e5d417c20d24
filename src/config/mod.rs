//! Layered configuration for `vcm server`.
//!
//! Sources, lowest precedence first: built-in defaults < a TOML file (`--config`) < `VCM_*`
//! environment variables (`__` separates nested keys: `VCM_LOG__LEVEL=debug`) < command-line
//! flags. An unknown key in any source is an error that names the key, so a typo never falls
//! back silently to a default.

use std::{
    net::{Ipv4Addr, SocketAddr},
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::Context as _;
use figment::{
    Figment,
    providers::{Format as _, Serialized, Toml},
};
use serde::{Deserialize, Serialize};

pub use self::auth::{
    AuthConfig, KubernetesAuthConfig, OidcIssuerConfig, OidcRule, ServiceAccountRule,
};
pub use self::local::{LocalConfig, total_memory_mib};
pub use self::sizes::{BUILTIN_SIZES, SizeConfig, Sizes};
pub use self::tls::{ClientCertRule, TlsConfig};
pub use self::webhooks::{DoorConfig, OnNewCommit, PrRule, WebhooksConfig, rule_for};
use crate::domain::TokenSecret;
pub use crate::driver::vcluster::{HostConfig, VclusterConfig};
pub use crate::gateway::{GatewayConfig, KubeconfigMode};
pub use crate::http::RateLimitConfig;

/// `[audit]`: export, fail mode of reads, retention and the signing key.
pub mod audit;
/// The `[auth]` section: CI OIDC issuers and Kubernetes clusters whose tokens are accepted.
pub mod auth;
/// `[clusters]`: defaults and bounds for new clusters.
mod clusters;
/// `[crd]`: the VirtualCluster door: management cluster and namespace → team mapping.
pub mod crd;
/// `VCM_*` environment variables as a configuration source.
mod env;
/// `[local]`: capacity and etcd durability of the local driver.
pub mod local;
/// `[metrics]`: `/metrics`, its authentication and its own listen address.
pub mod metrics;
/// `[notify]`: the alert notifier's webhooks and thresholds.
pub mod notify;
/// `[policy]`: the Rego policy files, their data document, time limit and reload period.
pub mod policy;
/// `[quotas]`: live clusters per team and principal, and the sizes a team may create.
pub mod quotas;
/// Size profiles: `[clusters.sizes.<name>.<driver>]`, resolved and checked at start-up.
pub mod sizes;
/// `[tls]`: server certificate, client CA and client-certificate rules.
pub mod tls;
pub mod webhooks;

pub use self::clusters::ClustersConfig;
use self::env::EnvSource;

/// The server configuration, after all sources are merged.
///
/// NB: `Debug` is derived: the only secret, `dev_token`, is a [`TokenSecret`], whose `Debug`
/// redacts it, and it is never serialised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP API listens on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Directory for the embedded store and local clusters; relative paths are taken from the
    /// working directory.
    pub data_dir: PathBuf,
    /// Logging settings.
    pub log: LogConfig,
    /// Seconds in-flight requests get to finish after a shutdown signal.
    pub shutdown_grace_secs: u64,
    /// Allow plain HTTP on a non-loopback `listen` address (e.g. behind a TLS-terminating proxy).
    pub allow_plain_http_non_loopback: bool,
    /// TLS and mutual TLS for the API listener (`[tls]`); none configured: plain HTTP.
    pub tls: TlsConfig,
    /// Store URL; default `sqlite://<data_dir>/vcm.db`.
    pub store_url: Option<String>,
    /// Defaults and bounds for clusters.
    pub clusters: ClustersConfig,
    /// Request budgets per principal and per client address.
    pub rate_limits: RateLimitConfig,
    /// Reconcile steps run at once (each waits for a control plane to start).
    pub reconcile_parallelism: usize,
    /// Deletion steps run at once, apart from `reconcile_parallelism`, so expiry and deletes
    /// never queue behind slow creates.
    pub delete_parallelism: usize,
    /// Seconds between liveness checks of a Ready cluster's control plane (a dead local API
    /// server is restarted on its port; a vanished one makes the cluster fail as `lost`).
    pub health_check_interval_secs: u64,
    /// Seconds placement trusts its view of the hosts' reachability before refreshing it in the
    /// background (creates never wait on a probe).
    pub host_probe_max_age_secs: u64,
    /// Seconds between pruner passes (TTL expiry, idleness, orphans, purge).
    pub prune_interval_secs: u64,
    /// Which driver makes clusters: `local` (processes on this machine, the default) or
    /// `vcluster` (vCluster on the `hosts` below).
    pub driver: DriverKind,
    /// How the local driver uses this machine: capacity, etcd durability.
    pub local: LocalConfig,
    /// Host clusters for the vcluster driver.
    pub hosts: Vec<HostConfig>,
    /// How the vcluster CLI and chart are found and run.
    pub vcluster: VclusterConfig,
    /// Bearer tokens accepted besides vcm API tokens: CI OIDC and Kubernetes ServiceAccounts.
    pub auth: AuthConfig,
    /// The cluster gateway (`/k8s/<id>/…`) and the kubeconfigs that point at it.
    pub gateway: GatewayConfig,
    /// The webhook doors and their secrets.
    pub webhooks: WebhooksConfig,
    /// Which repositories' pull requests get clusters (`[[pull_requests]]`); first match wins.
    pub pull_requests: Vec<PrRule>,
    /// Live clusters per team and principal, and the sizes a team may create.
    pub quotas: quotas::QuotasConfig,
    /// The operators' Rego policy (`docs/POLICY.md`).
    pub policy: policy::PolicyConfig,
    /// The audit log (`docs/AUDIT.md`).
    pub audit: audit::AuditConfig,
    /// `/metrics` (`docs/MONITORING.md`).
    pub metrics: metrics::MetricsConfig,
    /// The alert notifier (`docs/MONITORING.md`, "Notifications").
    pub notify: notify::NotifyConfig,
    /// The VirtualCluster door (README, "Clusters from GitOps").
    pub crd: crd::CrdConfig,
    /// Development mode (`vcm server --dev`): always the embedded SQLite store under `data_dir`
    /// and the local driver, whatever `store_url` and `driver` say, and an admin token kept in
    /// `<data_dir>/dev-token`. NB: the flag only, never a config file or `VCM_DEV`: a stray
    /// variable must not turn a production server into one with a generated admin token.
    #[serde(skip)]
    pub dev: bool,
    /// The token `--dev-token` asks a dev server to accept (flag only, never from a file).
    #[serde(skip)]
    pub dev_token: Option<TokenSecret>,
}

/// Which driver makes clusters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DriverKind {
    /// Real kube-apiserver processes on this machine.
    #[default]
    Local,
    /// vCluster virtual clusters on host clusters.
    Vcluster,
}

/// Logging settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// Output format of log lines.
    pub format: LogFormat,
    /// `EnvFilter` directives (e.g. `info` or `info,vcm=debug`); `RUST_LOG` wins when set.
    pub level: String,
}

/// Output format of log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line, for log collectors.
    Json,
    /// Human-readable lines, for a terminal.
    #[default]
    Pretty,
}

/// Values given as command-line flags; `None` leaves the lower sources in charge.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigOverrides {
    /// `--listen`
    pub listen: Option<SocketAddr>,
    /// `--data-dir`
    pub data_dir: Option<PathBuf>,
    /// `--log-format`
    pub log_format: Option<LogFormat>,
    /// `--log-level`
    pub log_level: Option<String>,
    /// `--dev`
    pub dev: bool,
}

/// A configuration that loads but must not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `listen` is not a loopback address and plain HTTP there was not allowed explicitly.
    #[error(
        "refusing to serve plain HTTP on non-loopback address {addr}: configure TLS \
         ([tls] cert_file and key_file), listen on a loopback address (e.g. --listen \
         127.0.0.1:{port}), or set allow_plain_http_non_loopback = true \
         (VCM_ALLOW_PLAIN_HTTP_NON_LOOPBACK=true) when a TLS-terminating proxy is in front",
        port = addr.port()
    )]
    PlainHttpOnNonLoopback {
        /// The refused address.
        addr: SocketAddr,
    },
    /// A duration-valued key does not hold a duration (`90s`, `30m`, `2h`, `7d`).
    #[error("clusters.{key}: {reason}")]
    InvalidDuration {
        /// The key under `[clusters]`.
        key: &'static str,
        /// What is wrong and what would be accepted.
        reason: String,
    },
    /// The `[tls]` section is incomplete or inconsistent.
    #[error("{0}")]
    InvalidTls(String),
    /// A `[local]` value makes no sense.
    #[error("{0}")]
    InvalidLocal(String),
    /// A `[notify]` value makes no sense.
    #[error("{0}")]
    InvalidNotify(String),
    /// The `[crd]` door cannot work as configured.
    #[error("{0}")]
    InvalidCrd(String),
}

// === impl Config ===

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 8080)),
            data_dir: PathBuf::from("./.vcm"),
            log: LogConfig::default(),
            shutdown_grace_secs: 30,
            allow_plain_http_non_loopback: false,
            tls: TlsConfig::default(),
            store_url: None,
            clusters: ClustersConfig::default(),
            rate_limits: RateLimitConfig::default(),
            reconcile_parallelism: 4,
            delete_parallelism: 2,
            health_check_interval_secs: 30,
            host_probe_max_age_secs: 10,
            prune_interval_secs: 5,
            driver: DriverKind::Local,
            local: LocalConfig::default(),
            hosts: vec![],
            vcluster: VclusterConfig::default(),
            auth: AuthConfig::default(),
            gateway: GatewayConfig::default(),
            webhooks: WebhooksConfig::default(),
            pull_requests: Vec::new(),
            quotas: quotas::QuotasConfig::default(),
            policy: policy::PolicyConfig::default(),
            audit: audit::AuditConfig::default(),
            metrics: metrics::MetricsConfig::default(),
            notify: notify::NotifyConfig::default(),
            crd: crd::CrdConfig::default(),
            dev: false,
            dev_token: None,
        }
    }
}

impl Config {
    /// Loads and validates the configuration from defaults, `file` (if given, it must exist),
    /// the process environment and `overrides`.
    pub fn load(file: Option<&Path>, overrides: &ConfigOverrides) -> anyhow::Result<Self> {
        // Variables that are not valid UTF-8 cannot be configuration; skip rather than panic.
        let env = std::env::vars_os()
            .filter_map(|(key, value)| Some((key.into_string().ok()?, value.into_string().ok()?)));
        Self::load_from(file, env, overrides)
    }

    /// Like [`Config::load`], with the environment given as `(name, value)` pairs.
    pub fn load_from(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        overrides: &ConfigOverrides,
    ) -> anyhow::Result<Self> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            // NB: checked here because figment's own error for a missing file omits the path.
            std::fs::metadata(path)
                .with_context(|| format!("cannot read config file {}", path.display()))?;
            figment = figment.merge(Toml::file_exact(path));
        }
        let mut config: Config = overrides
            .apply(figment.merge(EnvSource::new(env)))
            .extract()
            .context("invalid configuration")?;
        config.dev = overrides.dev;
        if config.dev {
            // NB: `--dev` is exactly the embedded default the README promises, so a config file
            // meant for production cannot turn a dev server into one that touches real hosts.
            config.driver = DriverKind::Local;
            config.store_url = None;
        }
        config.validate()?;
        config.sizes().context("invalid configuration")?;
        anyhow::ensure!(
            config.driver == DriverKind::Local || !config.hosts.is_empty(),
            "invalid configuration: driver = \"vcluster\" needs at least one [[hosts]] entry \
             (name, and kubeconfig unless vcm runs inside the host cluster)"
        );
        let mut names = std::collections::HashSet::new();
        for host in &config.hosts {
            anyhow::ensure!(
                !host.name.is_empty(),
                "invalid configuration: every [[hosts]] entry needs a name"
            );
            anyhow::ensure!(
                names.insert(host.name.as_str()),
                "invalid configuration: two [[hosts]] entries are named {:?}",
                host.name
            );
            host.validate()
                .map_err(|e| anyhow::anyhow!("invalid configuration: hosts.{}.{e}", host.name))?;
            for cidr in &host.egress_except {
                let ok = cidr.split_once('/').is_some_and(|(ip, bits)| {
                    let max = if ip.contains(':') { 128 } else { 32 };
                    ip.parse::<std::net::IpAddr>().is_ok()
                        && bits.parse::<u8>().is_ok_and(|b| b <= max)
                });
                anyhow::ensure!(
                    ok,
                    "invalid configuration: hosts.{}.egress_except: {cidr:?} is not a CIDR \
                     (e.g. \"10.0.0.0/8\")",
                    host.name
                );
            }
        }
        config
            .auth
            .validate(&config.hosts)
            .context("invalid configuration")?;
        Ok(config)
    }

    /// Checks rules that span fields or depend on the deployment, and that every duration
    /// parses (so a bad one is reported by its key when the configuration loads).
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.clusters.validate_durations()?;
        self.tls.validate().map_err(ConfigError::InvalidTls)?;
        self.local.validate().map_err(ConfigError::InvalidLocal)?;
        self.notify.validate().map_err(ConfigError::InvalidNotify)?;
        self.crd.validate().map_err(ConfigError::InvalidCrd)?;
        if self.dev {
            // NB: a dev server on a non-loopback address without [tls] gets a generated
            // self-signed certificate when it is built (`Server::build`), which checks again.
            return Ok(());
        }
        self.ensure_listen_allowed(self.listen)
    }

    /// Refuses plain HTTP on `addr` unless it is loopback or explicitly allowed; with TLS
    /// configured every address is allowed.
    pub fn ensure_listen_allowed(&self, addr: SocketAddr) -> Result<(), ConfigError> {
        if addr.ip().is_loopback() || self.allow_plain_http_non_loopback || self.tls.enabled() {
            Ok(())
        } else {
            Err(ConfigError::PlainHttpOnNonLoopback { addr })
        }
    }

    /// The store URL: `store_url`, or an SQLite file in the data directory.
    pub fn store_url(&self) -> String {
        self.store_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("vcm.db").display()))
    }

    /// The size profiles, resolved and checked against the active driver.
    pub fn sizes(&self) -> anyhow::Result<Sizes> {
        sizes::resolve(
            &self.clusters.sizes,
            &self.clusters.default_size,
            self.driver,
        )
    }

    /// How long in-flight requests may take to finish after a shutdown signal.
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }
}

// === impl LogConfig ===

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::default(),
            level: "info".to_owned(),
        }
    }
}

// === impl ConfigOverrides ===

impl ConfigOverrides {
    /// Merges every flag that was given on top of `figment`.
    fn apply(&self, figment: Figment) -> Figment {
        fn set<T: Serialize>(figment: Figment, key: &str, value: Option<&T>) -> Figment {
            match value {
                Some(value) => figment.merge(Serialized::global(key, value)),
                None => figment,
            }
        }
        let figment = set(figment, "listen", self.listen.as_ref());
        let figment = set(figment, "data_dir", self.data_dir.as_ref());
        let figment = set(figment, "log.format", self.log_format.as_ref());
        set(figment, "log.level", self.log_level.as_ref())
    }
}

#[cfg(test)]
mod examples_tests;
#[cfg(test)]
mod tests;
