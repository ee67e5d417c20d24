//! `vcm server`: load the configuration, build the application state, serve until signalled.
//!
//! NB: the state is built here until `Server::build` owns the wiring (store, driver, service,
//! authenticator, reconciler); then this file shrinks to loading the configuration.

use std::{process::ExitCode, sync::Arc};

use anyhow::Context as _;
use tokio::sync::Notify;

use super::ServerArgs;
use crate::{
    auth::{Authenticator, bootstrap_token},
    config::{ClustersConfig, Config, DriverKind},
    controlplane::{KubeBins, pinned_kubernetes_minor},
    domain::{TokenSecret, Ttl},
    driver::Driver,
    driver::local::LocalDriver,
    driver::vcluster::{ChartSource, HostConfig, VclusterConfig, VclusterDriver},
    http::AppState,
    reconciler::Reconciler,
    server::{Background, Server, shutdown_signal},
    service::{ClusterPolicy, ClusterService},
    store, telemetry,
    workers::{Pruner, PrunerConfig},
};

/// Name and role of the token `--dev` accepts.
const DEV_TOKEN_NAME: &str = "dev";
const DEV_TOKEN_ROLE: &str = "admin";

/// Runs the server until SIGTERM or SIGINT.
pub async fn serve(args: ServerArgs) -> anyhow::Result<ExitCode> {
    let config = Config::load(args.config.as_deref(), &args.overrides())
        .context("loading the configuration")?;
    telemetry::init(config.log.format, &config.log.level)?;
    if args.dev {
        tracing::info!("development mode");
    }
    let (state, background) = app_state(&config, &args).await?;
    let server = Server::build(config, state)
        .await?
        .with_background(background);
    server.run_until_stopped(shutdown_signal()).await?;
    Ok(ExitCode::SUCCESS)
}

async fn app_state(config: &Config, args: &ServerArgs) -> anyhow::Result<(AppState, Background)> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating {}", config.data_dir.display()))?;
    let store = store::open(&config.store_url()).await?;
    let (driver, local, versions) = make_driver(config).await?;
    let wake = Arc::new(Notify::new());
    let service = ClusterService::new(
        store.clone(),
        driver,
        cluster_policy(&config.clusters, versions)?,
        wake.clone(),
    );
    let retention = Ttl::parse("retention", &config.clusters.retention)
        .context("configuration clusters.retention")?;
    let background = Background {
        reconciler: Reconciler::new(service.clone(), wake, config.reconcile_parallelism),
        pruner: Pruner::new(
            service.clone(),
            PrunerConfig {
                interval: std::time::Duration::from_secs(config.prune_interval_secs.max(1)),
                retention: retention.as_duration(),
            },
        ),
        local,
    };
    if args.dev {
        let secret = match &args.dev_token {
            Some(token) => TokenSecret::parse(token)
                .context("--dev-token must be a vcm token: `vcm_` followed by 64 hex characters")?,
            None => dev_token(&config.data_dir)?,
        };
        bootstrap_token(store.as_ref(), DEV_TOKEN_NAME, DEV_TOKEN_ROLE, &secret).await?;
    }
    Ok((
        AppState::new(service, Arc::new(Authenticator::new(store))),
        background,
    ))
}

/// The generated dev token: created once, kept in `<data-dir>/dev-token` (mode 0600) so a
/// restarted dev server accepts the same token. Shown on the terminal when created, like
/// `vault server -dev`, never in the log.
fn dev_token(data_dir: &std::path::Path) -> anyhow::Result<TokenSecret> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let path = data_dir.join("dev-token");
    if let Ok(saved) = std::fs::read_to_string(&path)
        && let Some(secret) = TokenSecret::parse(saved.trim())
    {
        eprintln!(
            "dev token: in {} (export VCM_TOKEN=$(cat {}))",
            path.display(),
            path.display()
        );
        return Ok(secret);
    }
    let secret = TokenSecret::generate();
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("writing {}", path.display()))?;
    writeln!(f, "{}", secret.expose()).with_context(|| format!("writing {}", path.display()))?;
    eprintln!(
        "dev token (shown once; also in {}):\n\n    export VCM_TOKEN={}\n",
        path.display(),
        secret.expose()
    );
    Ok(secret)
}

/// The configured driver, the local driver again if that is it (for its shutdown duty), and
/// the Kubernetes versions it offers (the first is the default).
async fn make_driver(
    config: &Config,
) -> anyhow::Result<(Arc<dyn Driver>, Option<Arc<LocalDriver>>, Vec<String>)> {
    match config.driver {
        DriverKind::Local => {
            let local = Arc::new(
                LocalDriver::new(config.data_dir.join("local"), KubeBins::locate())
                    .context("preparing the local driver")?,
            );
            Ok((local.clone(), Some(local), vec![pinned_kubernetes_minor()]))
        }
        DriverKind::Vcluster => {
            anyhow::ensure!(
                !config.hosts.is_empty(),
                "driver = \"vcluster\" needs at least one [[hosts]] entry (name, kubeconfig or in-cluster)"
            );
            let v = &config.vcluster;
            let mut vc = VclusterConfig::from_bins(&KubeBins::locate()).unwrap_or_default();
            if let Some(cli) = &v.cli {
                vc.cli = cli.clone();
            }
            if let Some(dir) = &v.helm_dir {
                vc.helm_dir = dir.clone();
            }
            if let Some(dir) = &v.chart_dir {
                vc.chart = ChartSource::LocalDir(dir.clone());
            } else if let (Some(repo), Some(version)) = (&v.chart_repo, &v.chart_version) {
                vc.chart = ChartSource::Repo {
                    repo: repo.clone(),
                    version: version.clone(),
                };
            }
            vc.cli_timeout = std::time::Duration::from_secs(v.cli_timeout_secs.max(1));
            vc.ready_timeout = std::time::Duration::from_secs(v.ready_timeout_secs.max(1));
            vc.orphan_grace = std::time::Duration::from_secs(v.orphan_grace_secs);
            let mut versions: Vec<String> = vc.kubernetes_versions.keys().cloned().collect();
            versions.sort_by(|a, b| b.cmp(a)); // newest first: the default
            let hosts = config
                .hosts
                .iter()
                .map(|h| {
                    let mut host = HostConfig::new(h.name.clone(), h.kubeconfig.clone());
                    host.context = h.context.clone();
                    host.labels = h.labels.clone();
                    host.max_clusters = h.max_clusters;
                    if let Some(t) = &h.server_template {
                        host.server_template = t.clone();
                    }
                    if let Some(ns) = &h.vcm_namespace {
                        host.vcm_namespace = ns.clone();
                    }
                    host
                })
                .collect();
            let driver = VclusterDriver::new(hosts, vc)
                .await
                .context("preparing the vcluster driver")?;
            Ok((Arc::new(driver), None, versions))
        }
    }
}

/// Defaults and bounds for clusters, from the configuration.
fn cluster_policy(c: &ClustersConfig, versions: Vec<String>) -> anyhow::Result<ClusterPolicy> {
    let ttl = |field: &str, s: &str| {
        Ttl::parse(field, s).with_context(|| format!("configuration clusters.{field}"))
    };
    let default_idle_timeout = match c.default_idle_timeout.as_str() {
        "" => None,
        s => Some(ttl("default_idle_timeout", s)?),
    };
    Ok(ClusterPolicy {
        default_size: c.default_size.clone(),
        sizes: c.sizes.clone(),
        default_ttl: ttl("default_ttl", &c.default_ttl)?,
        max_ttl: ttl("max_ttl", &c.max_ttl)?,
        default_idle_timeout,
        max_kubeconfig_ttl: ttl("max_kubeconfig_ttl", &c.max_kubeconfig_ttl)?,
        default_kubernetes_version: versions
            .first()
            .cloned()
            .unwrap_or_else(pinned_kubernetes_minor),
        kubernetes_versions: versions,
    })
}
