//! The local driver: each cluster is a real kube-apiserver process on 127.0.0.1 with its own
//! CA, serving certificate and service-account keys, backed by one etcd that vcm starts and
//! supervises. Each cluster's data lives under its own etcd prefix (`/vcm/<id>/`). Beside the
//! API server run its kube-controller-manager, kube-scheduler and kwok with the fake nodes of its
//! size (`components`), so Deployments roll out, namespaces finish deleting and pods reach Running.
//!
//! NB: one shared etcd, not one per cluster: it is already running when a cluster is created, so
//! create-to-Ready is the API server's own start-up plus certificate generation, plus the
//! components' start until the node is Ready. Deleting a
//! cluster removes its prefix with etcd's JSON gateway (`/v3/kv/deleterange`).
//!
//! Processes are found by their command line (`--cert-dir=<root>/clusters/<id>`), not by pid
//! files, so after a vcm crash or restart they are re-adopted or killed from what really runs.
//! NB: a command line only nominates a process: it is adopted or signalled only if it runs the
//! binary the driver runs for that role under vcm's user (`controlplane::Ownership`). Anything
//! else is logged and left alone, and where it stands in the way (a port, etcd's data
//! directory) the error names it, for the operator to stop it.
//!
//! etcd speaks only TLS and requires client certificates from its own CA (`<root>/etcd/pki`,
//! see `controlplane::EtcdPki`); each cluster's API server has a client certificate of its own
//! in its directory, which goes with the cluster. vcm uses its own certificate to check etcd's
//! health, count a cluster's keys and delete them.
//!
//! Once a cluster is Ready, its port is part of every kubeconfig and of its service-account
//! issuer (`https://127.0.0.1:<port>`). A Ready cluster's API server that died is restarted on
//! that port with the same certificates and keys, or the cluster is reported lost; the port
//! stays held by this process (`controlplane::ports`) until the cluster is deleted.

mod apiserver;
mod bootstrap;
mod component;
mod components;
mod etcd;
mod procs;

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Mutex;

use self::procs::RunningApiServer;
use super::{BUILTIN_SIZES, Driver, DriverError, Ensured, HostInfo, LocalSize};
use crate::controlplane::{
    ApiServerOptions, EtcdPki, FoundProcess, KubeBins, Kubeconfig, KubeconfigUser, MissingBinary,
    Pki, RELEASE_BINARIES, hold_port, kill_group, release_port,
};
use crate::domain::{Cluster, ClusterId};

/// How long a new API server may take to answer `/readyz`.
const READY_TIMEOUT: Duration = Duration::from_secs(90);
/// How long a running API server of a Ready cluster may take to answer its liveness check: it
/// answered before, so a long silence means it hangs (and it is restarted).
const LIVENESS_TIMEOUT: Duration = Duration::from_secs(15);
/// Grace between SIGTERM and SIGKILL when stopping an API server.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// Every binary the driver runs.
const BINARIES: [&str; 5] = [
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
];

/// Runs clusters as local processes under `root`.
#[derive(Debug)]
pub struct LocalDriver {
    root: PathBuf,
    bins: KubeBins,
    /// The canonical paths of each binary in `BINARIES` (one per built Kubernetes release for
    /// the release binaries): a process is the driver's only if it runs one of these.
    exes: std::collections::BTreeMap<&'static str, Vec<PathBuf>>,
    /// Serialises etcd start-up and adoption; holds the client port once known.
    etcd: Mutex<Option<u16>>,
    /// etcd's CA, certificate and vcm's client certificate (`<root>/etcd/pki`).
    etcd_pki: EtcdPki,
    /// Run etcd with `--unsafe-no-fsync` (`[local] etcd_unsafe_no_fsync`).
    etcd_unsafe_no_fsync: bool,
    /// What each size means here (`[clusters.sizes.<name>.local]`).
    sizes: std::collections::BTreeMap<String, LocalSize>,
    /// Clusters this machine holds at once, and how that number came about (`[local]`).
    capacity: Option<(u32, String)>,
}

// === impl LocalDriver ===

impl LocalDriver {
    /// A driver keeping its state under `root` (`<data-dir>/local`). Fails with the build
    /// command if a control-plane binary (etcd, kube-apiserver, kube-controller-manager,
    /// kube-scheduler, kwok) cannot be found.
    pub fn new(root: impl Into<PathBuf>, bins: KubeBins) -> anyhow::Result<Self> {
        let mut exes = std::collections::BTreeMap::<&'static str, Vec<PathBuf>>::new();
        for name in BINARIES {
            let path = bins.get(name)?;
            let canonical = path
                .canonicalize()
                .map_err(|e| anyhow::anyhow!("resolving {}: {e}", path.display()))?;
            exes.entry(name).or_default().push(canonical);
        }
        // NB: a cluster of another Kubernetes version runs that release's binaries: they are
        // vcm's too.
        for minor in bins.available_minors() {
            let Some(release) = bins.for_minor(&minor) else {
                continue;
            };
            for name in RELEASE_BINARIES {
                let Some(canonical) = release.get(name).ok().and_then(|p| p.canonicalize().ok())
                else {
                    continue;
                };
                let known = exes.entry(name).or_default();
                if !known.contains(&canonical) {
                    known.push(canonical);
                }
            }
        }
        let root = root.into();
        std::fs::create_dir_all(root.join("clusters"))?;
        // NB: the command-line match below relies on an absolute, canonical root.
        let root = root.canonicalize()?;
        // NB: every port a cluster recorded was handed out in a kubeconfig and must only ever
        // serve that cluster again: hold them all now, before any create can be handed one,
        // even for clusters whose API server died while vcm was down.
        if let Ok(dirs) = std::fs::read_dir(root.join("clusters")) {
            for dir in dirs.flatten() {
                let port = std::fs::read_to_string(dir.path().join("port"))
                    .ok()
                    .and_then(|p| p.trim().parse::<u16>().ok());
                if let Some(port) = port {
                    hold_port(port);
                }
            }
        }
        let etcd_pki = EtcdPki::ensure(&root.join("etcd").join("pki"))?;
        Ok(Self {
            root,
            bins,
            exes,
            etcd: Mutex::new(None),
            etcd_pki,
            etcd_unsafe_no_fsync: false,
            sizes: BUILTIN_SIZES
                .iter()
                .filter_map(|n| Some(((*n).to_owned(), LocalSize::builtin(n)?)))
                .collect(),
            capacity: None,
        })
    }

    /// Hold at most `max` clusters at once (placement answers 503 past it); `why` says where
    /// the number comes from, for `GET /v1/hosts`.
    pub fn with_capacity(mut self, max: u32, why: impl Into<String>) -> Self {
        self.capacity = Some((max, why.into()));
        self
    }

    /// Run the shared etcd with `--unsafe-no-fsync` (`[local] etcd_unsafe_no_fsync`): faster
    /// creates, but a machine crash can corrupt every local cluster. An etcd already running
    /// with the other setting is restarted on its ports.
    pub fn with_etcd_unsafe_no_fsync(mut self, unsafe_no_fsync: bool) -> Self {
        self.etcd_unsafe_no_fsync = unsafe_no_fsync;
        self
    }

    /// Use these size profiles instead of the built-in ones.
    pub fn with_sizes(mut self, sizes: std::collections::BTreeMap<String, LocalSize>) -> Self {
        self.sizes = sizes;
        self
    }

    /// The Kubernetes minors whose binaries are built here, the default first.
    pub fn kubernetes_versions(&self) -> Vec<String> {
        self.bins.available_minors()
    }

    /// The binaries of `cluster`'s Kubernetes version (every process of a cluster is of it).
    fn bins_for(&self, cluster: &Cluster) -> Result<KubeBins, DriverError> {
        let version = &cluster.kubernetes_version;
        match self.bins.for_minor(version) {
            Some(bins) if RELEASE_BINARIES.iter().all(|n| bins.get(n).is_ok()) => Ok(bins),
            // Only a record from before the binaries changed can get here: versions are checked
            // against what is built at create.
            _ => Err(DriverError::Permanent(format!(
                "Kubernetes {version} is not built here (built: {}); build it with `{}`",
                self.kubernetes_versions().join(", "),
                crate::controlplane::BUILD_COMMAND
            ))),
        }
    }

    fn cluster_dir(&self, id: &ClusterId) -> PathBuf {
        self.root.join("clusters").join(id.as_str())
    }

    fn admin_kubeconfig_of(&self, id: &ClusterId, port: u16) -> Result<Kubeconfig, DriverError> {
        let dir = self.cluster_dir(id);
        let pki = Pki::existing(&dir).ok_or(DriverError::NotFound)?;
        Ok(Kubeconfig {
            name: id.to_string(),
            server: format!("https://127.0.0.1:{port}"),
            ca_pem: pki.ca_pem().map_err(transient("reading the cluster CA"))?,
            user: KubeconfigUser::ClientCert(
                pki.admin()
                    .map_err(transient("reading the admin certificate"))?,
            ),
            namespace: None,
        })
    }

    fn port_of(&self, id: &ClusterId) -> Option<u16> {
        std::fs::read_to_string(self.cluster_dir(id).join("port"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// What `cluster`'s size means here.
    fn size_of(&self, cluster: &Cluster) -> Result<&LocalSize, DriverError> {
        self.sizes.get(&cluster.size).ok_or_else(|| {
            // Only a record from before a configuration change can get here: sizes are checked
            // against the configuration at create.
            DriverError::Permanent(format!(
                "size {:?} is no longer configured for the local driver (sizes: {})",
                cluster.size,
                self.sizes.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })
    }

    fn apiserver_options(
        &self,
        cluster: &Cluster,
        etcd_port: u16,
    ) -> Result<ApiServerOptions, DriverError> {
        let id = &cluster.id;
        let size = self.size_of(cluster)?;
        let mut opts = ApiServerOptions::new(
            self.cluster_dir(id),
            format!("https://127.0.0.1:{etcd_port}"),
        );
        opts.etcd_prefix = format!("/vcm/{id}/registry");
        opts.etcd_tls = Some(self.etcd_client_files(id)?);
        opts.ready_timeout = READY_TIMEOUT;
        opts.extra_args = size.apiserver_args();
        opts.env = size.apiserver_env();
        // The controller-manager creates each namespace's `default` ServiceAccount.
        opts.service_account_admission = true;
        Ok(opts)
    }

    /// The directory all state lives in.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

#[async_trait]
impl Driver for LocalDriver {
    fn name(&self) -> &'static str {
        "local"
    }

    async fn hosts(&self) -> Vec<HostInfo> {
        vec![HostInfo {
            name: "local".into(),
            labels: Default::default(),
            max_clusters: self.capacity.as_ref().map(|(max, _)| *max),
            reachable: true,
            message: match &self.capacity {
                Some((_, why)) => format!(
                    "control planes run on this machine under {}; {why}",
                    self.root.display()
                ),
                None => format!(
                    "control planes run on this machine under {}",
                    self.root.display()
                ),
            },
        }]
    }

    #[tracing::instrument(skip_all, err(level = "warn"), fields(cluster.id = %cluster.id))]
    async fn ensure(&self, cluster: &Cluster) -> Result<Ensured, DriverError> {
        let apiserver = self.ensure_apiserver(cluster).await?;
        self.ensure_components(cluster, apiserver).await
    }

    #[tracing::instrument(skip_all, err(level = "warn"), fields(cluster.id = %id))]
    async fn delete(&self, id: &ClusterId) -> Result<(), DriverError> {
        self.stop_components(id).await?;
        let running = self.apiserver_of(id);
        if let Some(RunningApiServer { pid, .. }) = running {
            stop(pid).await;
            if self.apiserver_of(id).is_some() {
                return Err(DriverError::Transient(format!(
                    "kube-apiserver {pid} is still running"
                )));
            }
        }
        self.delete_etcd_prefix(id).await?;
        // NB: the port is given back only now: until the cluster is gone for good, a restart
        // must find it free (see `controlplane::ports`).
        let ports = [running.map(|r| r.port), self.port_of(id)];
        for dir in [self.components_dir(id), self.cluster_dir(id)] {
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(DriverError::Transient(format!(
                        "removing {}: {e}",
                        dir.display()
                    )));
                }
            }
        }
        ports.into_iter().flatten().for_each(release_port);
        Ok(())
    }

    async fn admin_kubeconfig(&self, cluster: &Cluster) -> Result<Kubeconfig, DriverError> {
        let port =
            match self.apiserver_of(&cluster.id) {
                Some(running) => running.port,
                None => return Err(DriverError::Transient(
                    "the cluster's kube-apiserver is not running; vcm restarts it within a minute"
                        .into(),
                )),
            };
        self.admin_kubeconfig_of(&cluster.id, port)
    }

    /// The processes whose command line names the cluster's directory (its API server) or its
    /// components' (controller manager, scheduler, kwok), read from `/proc`.
    async fn host_usage(
        &self,
        cluster: &Cluster,
    ) -> Result<crate::domain::usage::HostUsage, DriverError> {
        use crate::domain::usage::{HostUsage, ProcessUsage};
        let dirs = [
            self.cluster_dir(&cluster.id),
            self.components_dir(&cluster.id),
        ];
        let mut processes: Vec<ProcessUsage> = dirs
            .iter()
            .flat_map(|dir| crate::controlplane::find_processes(&format!("{}", dir.display())))
            .collect::<std::collections::BTreeMap<u32, Vec<String>>>()
            .into_iter()
            .filter_map(|(pid, argv)| {
                let (cpu_seconds, memory_bytes) = crate::metrics::of_pid(pid)?;
                let name = argv.first().map_or("?", |a| {
                    std::path::Path::new(a)
                        .file_name()
                        .and_then(|n| n.to_str())
                        .unwrap_or(a)
                });
                Some(ProcessUsage {
                    name: name.to_owned(),
                    pid,
                    cpu_seconds,
                    memory_bytes,
                })
            })
            .collect();
        processes.sort_by(|a, b| a.name.cmp(&b.name).then(a.pid.cmp(&b.pid)));
        let mut usage = HostUsage {
            cpu_seconds: Some(processes.iter().map(|p| p.cpu_seconds).sum()),
            memory_bytes: Some(processes.iter().map(|p| p.memory_bytes).sum()),
            processes,
            ..HostUsage::default()
        };
        if usage.processes.is_empty() {
            usage.notes.push(format!(
                "no process of cluster {} runs on this machine",
                cluster.id
            ));
        }
        Ok(usage)
    }

    async fn list_managed(&self) -> Result<Vec<ClusterId>, DriverError> {
        let mut ids: Vec<ClusterId> = std::fs::read_dir(self.root.join("clusters"))
            .map_err(transient("listing cluster directories"))?
            .flatten()
            .filter_map(|e| {
                e.file_name()
                    .to_str()
                    .map(|s| ClusterId::from_stored(s.to_owned()))
            })
            .collect();
        for id in self.component_cluster_ids() {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        // Processes whose directory is gone still count (a crash between the two steps).
        let prefix = format!("--cert-dir={}/", self.root.join("clusters").display());
        let running = self.processes(&prefix, &["kube-apiserver"]);
        for argv in running
            .into_iter()
            .filter(FoundProcess::is_vcms)
            .map(|p| p.argv)
        {
            if let Some(id) = argv.iter().find_map(|a| a.strip_prefix(&prefix)) {
                let id = ClusterId::from_stored(id.trim_end_matches('/').to_owned());
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }
        Ok(ids)
    }
}

/// A failed API server start: a missing binary is permanent (the message names the build
/// command), anything else may pass.
fn start_error(e: anyhow::Error) -> DriverError {
    let msg = format!("{e:#}");
    if e.chain().any(|c| c.is::<MissingBinary>()) {
        DriverError::Permanent(msg)
    } else {
        DriverError::Transient(msg)
    }
}

/// Stop an API server's process group (SIGTERM, then SIGKILL after the grace period).
async fn stop(pid: u32) {
    let stopped = tokio::task::spawn_blocking(move || {
        crate::controlplane::terminate_group(pid, STOP_GRACE);
    });
    if let Err(e) = stopped.await {
        tracing::warn!(pid, error = %e, "stopping the process group failed; killing it");
        kill_group(pid);
    }
}

fn transient<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> DriverError {
    move |e| DriverError::Transient(format!("{what}: {e:#}"))
}

fn permanent<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> DriverError {
    move |e| DriverError::Permanent(format!("{what}: {e:#}"))
}
