//! What `Server::build` assembles from the configuration: the store, the driver, the service
//! with its policy, the authenticator, and the background workers. `vcm server` only loads the
//! configuration and calls [`super::Server::build`].

use std::sync::Arc;

use anyhow::Context as _;
use tokio::sync::Notify;

use super::Background;
use crate::audit::{Auditor, Retention, Signer};
use crate::gateway::Gateway;
use crate::{
    auth::{Authenticator, OidcVerifier, TokenReviewer, bootstrap_token},
    config::{ClustersConfig, Config, DriverKind, Sizes, quotas::QuotasConfig},
    controlplane::{KubeBins, pinned_kubernetes_minor},
    domain::{Role, Timestamp, TokenSecret, Ttl},
    driver::{Driver, local::LocalDriver, vcluster::VclusterDriver},
    http::AppState,
    reconciler::Reconciler,
    service::{ClusterPolicy, ClusterService},
    store::{self, Store},
    webhooks::{Doors, Engine, status::Reporter},
    workers::{Pruner, PrunerConfig},
};

/// Name and role of the token `--dev` accepts.
const DEV_TOKEN_NAME: &str = "dev";
const DEV_TOKEN_ROLE: Role = Role::Admin;
/// The file a dev server keeps its token in, under the data directory.
pub const DEV_TOKEN_FILE: &str = "dev-token";

/// Builds the application state and the background tasks from `config`.
pub async fn assemble(config: &Config) -> anyhow::Result<(AppState, Background)> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating {}", config.data_dir.display()))?;
    let store = store::open(&config.store_url()).await?;
    if config.dev {
        let secret = match &config.dev_token {
            Some(secret) => secret.clone(),
            None => dev_token(&config.data_dir)?,
        };
        bootstrap_token(store.as_ref(), DEV_TOKEN_NAME, DEV_TOKEN_ROLE, &secret).await?;
    } else {
        ensure_an_admin_can_sign_in(store.as_ref(), config).await?;
    }
    let sizes = config.sizes()?;
    let installation = store
        .installation_id()
        .await
        .context("reading the store's installation id")?;
    let (driver, local, versions) = make_driver(config, &sizes, &installation).await?;
    let wake = Arc::new(Notify::new());
    let policy = load_policy(config)?;
    let service = ClusterService::new(
        store.clone(),
        driver,
        cluster_policy(&config.clusters, &config.quotas, &sizes, versions)?,
        wake.clone(),
    )
    .with_host_view_max_age(secs(config.host_probe_max_age_secs))
    .with_policy(policy.clone());
    let retention = Ttl::parse("retention", &config.clusters.retention)
        .context("configuration clusters.retention")?;
    let background = Background {
        reconciler: Reconciler::new(service.clone(), wake, config.reconcile_parallelism)
            .with_delete_parallel(config.delete_parallelism)
            .with_health_check_interval(secs(config.health_check_interval_secs)),
        pruner: Pruner::new(
            service.clone(),
            PrunerConfig {
                interval: std::time::Duration::from_secs(config.prune_interval_secs.max(1)),
                retention: retention.as_duration(),
            },
        ),
        local,
        pull_requests: None,
        policy,
        audit_retention: None,
        notifier: crate::notify::Notifier::from_config(
            &config.notify,
            config.webhooks.public_url.as_deref(),
            service.clone(),
        )
        .context("configuration [notify]")?
        .map(|n| n.with_metrics(service.metrics().clone())),
        crd: None,
    };
    let mut background = background;
    let doors = if config.webhooks.github.is_some() || config.webhooks.bitbucket.is_some() {
        let reporter = Reporter::from_config(&config.webhooks, service.store().clone())
            .context("configuration [webhooks]")?
            .map(|r| r.with_metrics(service.metrics().clone()));
        let engine =
            Engine::new(service.clone(), config.pull_requests.clone()).with_reporter(reporter);
        background.pull_requests = Some(engine.clone());
        Some(Doors::new(&config.webhooks, engine).context("configuration [webhooks]")?)
    } else {
        None
    };
    let auditor = auditor(config, store.clone())?;
    background.audit_retention = match (&auditor, config.audit.retention()) {
        (Some(auditor), Ok(Some(keep))) => Some(Retention::new(auditor.clone(), keep)),
        _ => None,
    };
    if config.crd.enabled {
        let door = crate::crd::door::Door::new(service.clone(), auditor.clone());
        let controller = crate::crd::Controller::connect(&config.crd, door)
            .await
            .context("configuration [crd]")?;
        tracing::info!(
            namespaces = config.crd.namespaces.len(),
            "the VirtualCluster door is on"
        );
        background.crd = Some(controller);
    }
    let state =
        AppState::new(service, Arc::new(authenticator(store, config).await?)).with_audit(auditor);
    let state = match doors {
        Some(doors) => state.with_webhooks(doors),
        None => state,
    };
    Ok((
        state
            .try_with_rate_limits(config.rate_limits.clone())
            .context("configuration [rate_limits]")?
            .with_metrics(&config.metrics)
            .with_gateway(
                Gateway::try_new(
                    config.gateway.clone(),
                    config.tls.cert_file.clone(),
                    config.tls.cert_file.is_some(),
                )
                .context("configuration [gateway]")?,
            ),
        background,
    ))
}

/// The audit log `[audit]` describes: its key loaded (or generated), its export opened; `None`
/// when it is turned off.
fn auditor(config: &Config, store: Arc<dyn Store>) -> anyhow::Result<Option<Auditor>> {
    let audit = &config.audit;
    audit
        .validate()
        .map_err(|e| anyhow::anyhow!("configuration [audit]: {e}"))?;
    if !audit.enabled {
        tracing::warn!("the audit log is off ([audit] enabled = false): requests are not recorded");
        return Ok(None);
    }
    let signer = Signer::load_or_create(&audit.signing_key(&config.data_dir))
        .context("configuration [audit] signing_key")?;
    let auditor = Auditor::start(store, Arc::new(signer), audit.reads, audit.export())
        .context("configuration [audit] export")?;
    Ok(Some(auditor))
}

/// API tokens from the store, plus the CI OIDC issuers and Kubernetes clusters of `[auth]`.
async fn authenticator(store: Arc<dyn Store>, config: &Config) -> anyhow::Result<Authenticator> {
    config
        .auth
        .validate(&config.hosts)
        .context("invalid configuration")?;
    let mut auth = Authenticator::new(store);
    if !config.auth.oidc.is_empty() {
        auth = auth.with_oidc(OidcVerifier::new(&config.auth.oidc)?);
    }
    if !config.auth.kubernetes.is_empty() {
        auth = auth.with_kubernetes(
            TokenReviewer::new(&config.auth.kubernetes, &config.hosts)
                .await
                .context("preparing [[auth.kubernetes]]")?,
        );
    }
    Ok(auth)
}

fn secs(n: u64) -> std::time::Duration {
    std::time::Duration::from_secs(n.max(1))
}

/// A production server whose store holds no usable admin credential could never be
/// administered: refuse to start, and say how to make the first one.
async fn ensure_an_admin_can_sign_in(store: &dyn Store, config: &Config) -> anyhow::Result<()> {
    // NB: an admin may also come from configuration: a client-certificate, CI OIDC or
    // ServiceAccount rule granting the admin role.
    let configured_admin = config.tls.client_ca_file.as_ref().is_some_and(|_| {
        config
            .tls
            .client_rules
            .iter()
            .any(|r| r.role == Role::Admin)
    }) || config
        .auth
        .oidc
        .iter()
        .flat_map(|o| &o.rules)
        .any(|r| r.role == Role::Admin)
        || config
            .auth
            .kubernetes
            .iter()
            .flat_map(|k| &k.rules)
            .any(|r| r.role == Role::Admin);
    if configured_admin {
        return Ok(());
    }
    let now = Timestamp::now();
    let admins = store
        .list_tokens()
        .await
        .context("looking for an admin token")?
        .into_iter()
        .filter(|t| t.role == Role::Admin && t.is_active(now))
        .count();
    anyhow::ensure!(
        admins > 0,
        "no admin credential exists in the store ({}), so nobody could administer this server. \
         Create the first admin token offline, before starting the server:\n\n    \
         vcm token create --bootstrap --name admin --data-dir {}\n\n\
         (add the server's --config if it sets store_url; the token is printed once: keep it in \
         a secret store), or give the admin role to a client certificate, CI OIDC or \
         ServiceAccount rule in the configuration (role = \"admin\" in [[tls.client_rules]], \
         [[auth.oidc.rules]] or [[auth.kubernetes.rules]]), or run `vcm server --dev` for a \
         development server with a generated token",
        store::redact_url(&config.store_url()),
        config.data_dir.display(),
    );
    Ok(())
}

/// The generated dev token: created once, kept in `<data-dir>/dev-token` (mode 0600, checked
/// when read back) so a restarted dev server accepts the same token. The secret itself is
/// never printed: the terminal and the log show only where it is.
fn dev_token(data_dir: &std::path::Path) -> anyhow::Result<TokenSecret> {
    let path = data_dir.join(DEV_TOKEN_FILE);
    if path.exists() {
        let saved = crate::fsutil::read_private(&path)?;
        if let Some(secret) = TokenSecret::parse(&saved) {
            tracing::info!(path = %path.display(), "dev token: export VCM_TOKEN=$(cat {})", path.display());
            return Ok(secret);
        }
    }
    let secret = TokenSecret::generate();
    crate::fsutil::write_private(&path, format!("{}\n", secret.expose()).as_bytes())?;
    tracing::info!(
        path = %path.display(),
        "dev token created: export VCM_TOKEN=$(cat {})",
        path.display()
    );
    Ok(secret)
}

/// The configured driver, the local driver again if that is it (for its shutdown duty), and
/// the Kubernetes versions it offers (the first is the default).
async fn make_driver(
    config: &Config,
    sizes: &Sizes,
    installation: &str,
) -> anyhow::Result<(Arc<dyn Driver>, Option<Arc<LocalDriver>>, Vec<String>)> {
    match config.driver {
        DriverKind::Local => {
            let shared = config
                .store_url
                .as_deref()
                .is_some_and(|u| u.starts_with("postgres"));
            if shared {
                // NB: any replica may claim any cluster's next step, but a local cluster's
                // processes, etcd and port live with the server whose data directory holds
                // them: on another replica its health check finds nothing.
                tracing::warn!(
                    "the local driver keeps clusters on this machine, under this server's data \
                     directory: run one vcm replica with it; several replicas on one \
                     PostgreSQL store need a host they all reach (driver = \"vcluster\")"
                );
            }
            let capacity = local_capacity(&config.local);
            tracing::info!(max_clusters = capacity.0, "local capacity: {}", capacity.1);
            let local = Arc::new(
                LocalDriver::new(config.data_dir.join("local"), KubeBins::locate())
                    .context("preparing the local driver")?
                    .with_sizes(sizes.local.clone())
                    .with_capacity(capacity.0, capacity.1)
                    .with_etcd_unsafe_no_fsync(config.local.etcd_unsafe_no_fsync),
            );
            let versions = local.kubernetes_versions();
            tracing::info!(?versions, "Kubernetes versions of local clusters");
            Ok((local.clone(), Some(local), versions))
        }
        DriverKind::Vcluster => {
            let mut vc = config.vcluster.clone();
            vc.sizes = sizes.vcluster.clone();
            vc.installation = Some(installation.to_owned());
            let mut versions: Vec<String> = vc.kubernetes_versions.keys().cloned().collect();
            versions.sort_by(|a, b| b.cmp(a)); // newest first: the default
            let driver = VclusterDriver::new(config.hosts.clone(), vc)
                .await
                .context("preparing the vcluster driver")?;
            Ok((Arc::new(driver), None, versions))
        }
    }
}

/// How many clusters the local driver holds, and why (for `GET /v1/hosts`).
fn local_capacity(local: &crate::config::LocalConfig) -> (u32, String) {
    match (local.max_clusters, crate::config::total_memory_mib()) {
        (Some(max), _) => (max, format!("capacity {max} clusters (local.max_clusters)")),
        (None, Some(total)) => {
            let max = local.capacity(total);
            let why = format!(
                "capacity {max} clusters: {total} MiB of memory, less {} MiB reserved, at {} MiB \
                 per cluster (local.max_clusters sets it)",
                local.reserved_memory_mib, local.cluster_memory_mib
            );
            (max, why)
        }
        (None, None) => {
            // NB: no /proc/meminfo (not Linux?): count one machine as a small one.
            let max = local.capacity(8 * 1024);
            (
                max,
                format!("capacity {max} clusters (memory unknown; local.max_clusters sets it)"),
            )
        }
    }
}

/// Defaults and bounds for clusters, from the configuration.
/// The Rego policy `[policy]` names, compiled (a file that does not compile stops the start,
/// naming it), or `None`.
fn load_policy(config: &Config) -> anyhow::Result<Option<Arc<crate::policy::Policy>>> {
    config
        .policy
        .validate()
        .map_err(|e| anyhow::anyhow!("configuration [policy]: {e}"))?;
    if !config.policy.enabled() {
        return Ok(None);
    }
    let policy = crate::policy::Policy::load(&config.policy).context("configuration [policy]")?;
    tracing::info!(files = ?policy.sources(), "policy loaded");
    Ok(Some(Arc::new(policy)))
}

fn cluster_policy(
    c: &ClustersConfig,
    quotas: &QuotasConfig,
    sizes: &Sizes,
    versions: Vec<String>,
) -> anyhow::Result<ClusterPolicy> {
    quotas
        .validate(&sizes.names)
        .context("configuration [quotas]")?;
    let ttl = |field: &str, s: &str| {
        Ttl::parse(field, s).with_context(|| format!("configuration clusters.{field}"))
    };
    let default_idle_timeout = match c.default_idle_timeout.as_str() {
        "" => None,
        s => Some(ttl("default_idle_timeout", s)?),
    };
    Ok(ClusterPolicy {
        default_size: c.default_size.clone(),
        sizes: sizes.names.clone(),
        default_ttl: ttl("default_ttl", &c.default_ttl)?,
        max_ttl: ttl("max_ttl", &c.max_ttl)?,
        default_idle_timeout,
        max_kubeconfig_ttl: ttl("max_kubeconfig_ttl", &c.max_kubeconfig_ttl)?,
        default_kubernetes_version: versions
            .first()
            .cloned()
            .unwrap_or_else(pinned_kubernetes_minor),
        kubernetes_versions: versions,
        quotas: quotas.clone(),
    })
}
