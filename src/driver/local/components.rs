//! The rest of a local cluster's control plane: kube-controller-manager, kube-scheduler and
//! kwok (the fake nodes of its size), each with its own client certificate from the cluster's CA.
//!
//! Their files live in `<root>/components/<id>/` (kubeconfigs 0600, logs, hard links to the
//! cluster's root CA and service-account key), not in `<root>/clusters/<id>/`.
//! NB: `clusters/<id>` in a command line means "the API server of `<id>`" to the driver (see
//! `apiserver_of`), to `list_managed` and to the lifecycle tests; keeping these processes out of
//! that path keeps that meaning. Each is found by its `--kubeconfig=<components dir>/…` flag,
//! so a restarted vcm re-adopts them like the API server; one whose binary was replaced on
//! disk is stopped and started again from the current one, and one that is not vcm's binary
//! under vcm's user is left alone (`controlplane::Ownership`).
//!
//! None of them serves a port: kube-controller-manager and kube-scheduler run with
//! `--secure-port=0`, and kwok without `--server-address`. Their liveness is their process.

use std::path::{Path, PathBuf};

use super::bootstrap::{bootstrap, release_node_leases, wait_workload_ready};
use super::component::Component;
use super::{LocalDriver, READY_TIMEOUT, stop, transient};
use crate::controlplane::{
    FoundProcess, KubeBins, Kubeconfig, KubeconfigUser, Ownership, Pki, Supervised,
    SupervisedOptions,
};
use crate::domain::{Cluster, ClusterId, Phase};
use crate::driver::{DriverError, Ensured};

// === impl LocalDriver ===

impl LocalDriver {
    pub(super) fn components_dir(&self, id: &ClusterId) -> PathBuf {
        self.root.join("components").join(id.as_str())
    }

    /// The rest of `ensure`, once the API server answers: start what is missing of the
    /// controller-manager, scheduler and kwok. A cluster being provisioned is Ready only when
    /// its node is Ready and its `default` ServiceAccount exists; a Ready cluster whose
    /// component died gets it back, reported as a restart (an event).
    pub(super) async fn ensure_components(
        &self,
        cluster: &Cluster,
        apiserver: Ensured,
    ) -> Result<Ensured, DriverError> {
        let (endpoint, repaired) = match apiserver {
            Ensured::Ready { endpoint } => (endpoint, None),
            Ensured::Restarted { endpoint, message } => (endpoint, Some(message)),
            in_progress @ Ensured::InProgress { .. } => return Ok(in_progress),
        };
        let id = &cluster.id;
        let port = endpoint
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| DriverError::Transient(format!("no port in {endpoint}")))?;
        let provisioning = cluster.phase != Phase::Ready;
        if provisioning {
            self.retarget_components(id, &endpoint).await?;
        }
        self.stop_replaced_components(id).await;
        let missing = Component::ALL
            .iter()
            .any(|c| self.component_pids(id, *c).is_empty());
        if !provisioning && !missing {
            // The health check of a Ready cluster: every process runs.
            return Ok(match repaired {
                Some(message) => Ensured::Restarted { endpoint, message },
                None => Ensured::Ready { endpoint },
            });
        }
        let client = self
            .admin_kubeconfig_of(id, port)?
            .client()
            .await
            .map_err(transient("connecting to the cluster's API server"))?;
        let size = self.size_of(cluster)?;
        bootstrap(&client, size).await?;
        if self.component_pids(id, Component::Kwok).is_empty() {
            release_node_leases(&client, size).await?;
        }
        let started = self
            .start_missing_components(id, port, &self.bins_for(cluster)?)
            .await?;
        // NB: `started` is empty only when what was missing came back meanwhile (another
        // ensure of the same cluster): nothing was repaired here.
        if provisioning || started.is_empty() {
            wait_workload_ready(&client, size, READY_TIMEOUT)
                .await
                .map_err(|e| DriverError::Transient(format!("{e:#}{}", self.component_logs(id))))?;
            return Ok(match repaired {
                Some(message) => Ensured::Restarted { endpoint, message },
                None => Ensured::Ready { endpoint },
            });
        }
        let names: Vec<String> = started
            .iter()
            .map(|(c, pid)| format!("{} (now pid {pid})", c.binary()))
            .collect();
        let message = format!(
            "{} {} not running; restarted with the cluster's credentials",
            names.join(", "),
            if names.len() == 1 { "was" } else { "were" }
        );
        tracing::warn!(cluster.id = %id, "{message}");
        let message = match repaired {
            Some(earlier) => format!("{earlier}; {message}"),
            None => message,
        };
        Ok(Ensured::Restarted { endpoint, message })
    }

    /// Stop each component of a cluster being provisioned whose kubeconfig names another API
    /// server (it came back on a new port before anything was handed out) and remove that
    /// kubeconfig, so the component starts again against `endpoint`.
    async fn retarget_components(&self, id: &ClusterId, endpoint: &str) -> Result<(), DriverError> {
        let dir = self.components_dir(id);
        for component in Component::ALL {
            let path = component.kubeconfig(&dir);
            let Ok(file) = kube::config::Kubeconfig::read_from(&path) else {
                continue;
            };
            let server = file
                .clusters
                .first()
                .and_then(|c| c.cluster.as_ref()?.server.clone());
            if server.as_deref() == Some(endpoint) {
                continue;
            }
            tracing::info!(cluster.id = %id, ?server, endpoint, "{} follows the API server to its new port", component.binary());
            for pid in self.component_pids(id, component) {
                stop(pid).await;
            }
            std::fs::remove_file(&path)
                .map_err(|e| DriverError::Transient(format!("removing {}: {e}", path.display())))?;
        }
        Ok(())
    }

    /// vcm's running processes of `component` in cluster `id`.
    fn component_processes(&self, id: &ClusterId, component: Component) -> Vec<FoundProcess> {
        let marker = component.marker(&self.components_dir(id));
        self.processes(&marker, &[component.binary()])
            .into_iter()
            .filter(|p| p.argv.contains(&marker) && p.is_vcms())
            .collect()
    }

    /// The pids of vcm's running processes of `component` in cluster `id`.
    pub(super) fn component_pids(&self, id: &ClusterId, component: Component) -> Vec<u32> {
        self.component_processes(id, component)
            .into_iter()
            .map(|p| p.pid)
            .collect()
    }

    /// Stop each component of cluster `id` whose binary was replaced on disk since it started,
    /// so it starts again from the current one.
    async fn stop_replaced_components(&self, id: &ClusterId) {
        for component in Component::ALL {
            for p in self.component_processes(id, component) {
                if p.ownership == Ownership::Replaced {
                    tracing::warn!(cluster.id = %id, pid = p.pid, "{}'s binary was replaced on disk; restarting it", component.binary());
                    stop(p.pid).await;
                }
            }
        }
    }

    /// Start each component of cluster `id` that is not running (API server on `port`);
    /// returns what it started, with pids. Files (kubeconfigs, CA and key links) are written
    /// the first time and reused after.
    pub(super) async fn start_missing_components(
        &self,
        id: &ClusterId,
        port: u16,
        bins: &KubeBins,
    ) -> Result<Vec<(Component, u32)>, DriverError> {
        let dir = self.components_dir(id);
        let mut started = vec![];
        for component in Component::ALL {
            if !self.component_pids(id, component).is_empty() {
                continue;
            }
            self.prepare_component(id, component, port)?;
            let opts = SupervisedOptions {
                log_path: dir.join(format!("{}.log", component.binary())),
                die_with_parent: false,
                env: vec![],
            };
            let program = bins
                .get(component.binary())
                .map_err(|e| DriverError::Permanent(e.to_string()))?;
            let process = Supervised::spawn(
                component.binary(),
                &program,
                &component.args(self, &dir)?,
                &opts,
            )
            .map_err(|e| DriverError::Transient(format!("{e:#}")))?;
            let pid = process.detach();
            tracing::info!(cluster.id = %id, pid, "started {}", component.binary());
            started.push((component, pid));
        }
        Ok(started)
    }

    /// The files `component` needs, written if missing.
    fn prepare_component(
        &self,
        id: &ClusterId,
        component: Component,
        port: u16,
    ) -> Result<(), DriverError> {
        let dir = self.components_dir(id);
        let pki = Pki::existing(&self.cluster_dir(id)).ok_or_else(|| {
            DriverError::Transient(format!(
                "the PKI under {} is missing",
                self.cluster_dir(id).display()
            ))
        })?;
        create_private_dir(&dir)?;
        // NB: hard links, not copies: the service-account key stays one file (mode 0600) on
        // disk, and goes with the last of the two directories.
        for (from, to) in [(pki.ca_cert(), "ca.crt"), (pki.sa_key(), "sa.key")] {
            let to = dir.join(to);
            if !to.exists() {
                std::fs::hard_link(&from, &to).map_err(|e| {
                    DriverError::Transient(format!(
                        "linking {} to {}: {e}",
                        from.display(),
                        to.display()
                    ))
                })?;
            }
        }
        let path = component.kubeconfig(&dir);
        if path.is_file() {
            return Ok(());
        }
        let cert = pki
            .client_cert(component.user(), &[])
            .map_err(|e| DriverError::Transient(format!("signing a client certificate: {e:#}")))?;
        Kubeconfig {
            name: component.binary().into(),
            server: format!("https://127.0.0.1:{port}"),
            ca_pem: pki
                .ca_pem()
                .map_err(|e| DriverError::Transient(format!("reading the CA: {e:#}")))?,
            user: KubeconfigUser::ClientCert(cert),
            namespace: None,
        }
        .write(&path)
        .map_err(|e| DriverError::Transient(format!("writing {}: {e:#}", path.display())))
    }

    /// Stop every component of cluster `id`; fails if one survives.
    pub(super) async fn stop_components(&self, id: &ClusterId) -> Result<(), DriverError> {
        let pids: Vec<u32> = Component::ALL
            .iter()
            .flat_map(|c| self.component_pids(id, *c))
            .collect();
        let mut stopping = tokio::task::JoinSet::new();
        for pid in pids {
            stopping.spawn(stop(pid));
        }
        stopping.join_all().await;
        let left: Vec<&str> = Component::ALL
            .iter()
            .filter(|c| !self.component_pids(id, **c).is_empty())
            .map(|c| c.binary())
            .collect();
        if !left.is_empty() {
            return Err(DriverError::Transient(format!(
                "{} still running after SIGKILL",
                left.join(", ")
            )));
        }
        Ok(())
    }

    /// The last lines of each component's log, for an error message.
    pub(super) fn component_logs(&self, id: &ClusterId) -> String {
        Component::ALL
            .iter()
            .map(|c| {
                let path = self.components_dir(id).join(format!("{}.log", c.binary()));
                format!(
                    "\n--- {} ---\n{}",
                    c.binary(),
                    crate::controlplane::log_tail(&path, 8)
                )
            })
            .collect()
    }

    /// Ids of clusters with a components directory or a running component (for
    /// `list_managed`).
    pub(super) fn component_cluster_ids(&self) -> Vec<ClusterId> {
        let base = self.root.join("components");
        let mut ids: Vec<ClusterId> = std::fs::read_dir(&base)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str().map(str::to_owned))
            .map(ClusterId::from_stored)
            .collect();
        let prefix = format!("--kubeconfig={}/", base.display());
        let names = Component::ALL.map(Component::binary);
        let running = self.processes(&prefix, &names);
        for argv in running
            .into_iter()
            .filter(FoundProcess::is_vcms)
            .map(|p| p.argv)
        {
            let id = argv
                .iter()
                .find_map(|a| a.strip_prefix(&prefix)?.split('/').next());
            if let Some(id) = id.map(|s| ClusterId::from_stored(s.to_owned()))
                && !ids.contains(&id)
            {
                ids.push(id);
            }
        }
        ids
    }
}

fn create_private_dir(dir: &Path) -> Result<(), DriverError> {
    use std::os::unix::fs::DirBuilderExt as _;
    match std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
    {
        Ok(()) => Ok(()),
        Err(e) => Err(DriverError::Transient(format!(
            "creating {}: {e}",
            dir.display()
        ))),
    }
}
