//! The local driver's kube-apiserver: adopted when it runs, restarted on its port when a Ready
//! cluster's died, started otherwise.
//!
//! NB: one that runs but is not what this vcm would start (its binary was replaced on disk, or
//! its flags reach etcd another way: plain HTTP from an older vcm, another etcd port) is
//! stopped and goes through the same path as a dead one, on its port.

use super::procs::{RunningApiServer, strangers, wait_port_free};
use super::{LIVENESS_TIMEOUT, LocalDriver, READY_TIMEOUT, start_error, stop, transient};
use crate::controlplane::{ApiServer, FoundProcess, Pki, hold_port, release_port};
use crate::domain::{Cluster, Phase};
use crate::driver::{DriverError, Ensured};

// === impl LocalDriver ===

impl LocalDriver {
    /// Bring a Ready cluster's dead API server back on its port with its certificates and
    /// keys, so every kubeconfig and token handed out keeps working; `Lost` if that cannot be.
    async fn restart(
        &self,
        cluster: &Cluster,
        etcd_port: u16,
        recorded: Option<u16>,
        foreign: &[FoundProcess],
        why: &str,
    ) -> Result<Ensured, DriverError> {
        let id = &cluster.id;
        let dir = self.cluster_dir(id);
        let lost = |why: String| DriverError::Lost(format!("kube-apiserver died and {why}"));
        let Some(port) = recorded else {
            return Err(lost(format!(
                "its port record {} is gone",
                dir.join("port").display()
            )));
        };
        hold_port(port);
        if Pki::existing(&dir).is_none() {
            return Err(lost(format!(
                "its certificates under {} are gone",
                dir.display()
            )));
        }
        // An etcd that runs but does not answer is worth waiting for; it is not this cluster's
        // loss.
        self.etcd_healthy(etcd_port).await?;
        if !foreign.is_empty() && std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
            // NB: transient, not lost: the operator can stop that process, and the cluster
            // comes back on its port.
            return Err(DriverError::Transient(format!(
                "kube-apiserver is not running and port {port} is taken; {} carry this \
                 cluster's command line but are not vcm's kube-apiserver, so vcm neither \
                 adopts nor stops them: stop them, and vcm restarts the cluster on its port",
                strangers(foreign)
            )));
        }
        let mut opts = self.apiserver_options(cluster, etcd_port)?;
        opts.port = Some(port);
        // NB: a failed start here is final (the cluster fails as lost) rather than retried:
        // etcd is healthy and the certificates are there, so what keeps the API server
        // off its own port (the port taken by another program, a broken binary) does not heal
        // by itself, and a CI job is better told than left with a dead endpoint.
        let server = match ApiServer::start(&self.bins_for(cluster)?, &opts).await {
            Ok(server) => server,
            Err(e) => {
                return Err(lost(format!(
                    "could not be restarted on port {port}: {e:#}"
                )));
            }
        };
        let endpoint = server.endpoint();
        let pid = server.detach();
        tracing::warn!(pid, %endpoint, "kube-apiserver was down; restarted on its port");
        Ok(Ensured::Restarted {
            endpoint,
            message: format!(
                "kube-apiserver {why}; restarted on port {port} (pid {pid}) with the \
                 same certificates and issuer, so issued kubeconfigs keep working"
            ),
        })
    }

    /// Whether a running API server of ours is what this driver would start now: the current
    /// binary, reaching etcd on `etcd_port` over TLS with a client certificate.
    fn apiserver_is_current(&self, running: &RunningApiServer, etcd_port: u16) -> bool {
        let servers = format!("--etcd-servers=https://127.0.0.1:{etcd_port}");
        !running.replaced
            && running.argv.contains(&servers)
            && running
                .argv
                .iter()
                .any(|a| a.starts_with("--etcd-certfile="))
    }

    /// The API server part of `ensure`: adopt, restart or start it.
    pub(super) async fn ensure_apiserver(&self, cluster: &Cluster) -> Result<Ensured, DriverError> {
        let etcd_port = self.ensure_etcd().await?;
        let id = &cluster.id;
        let dir = self.cluster_dir(id);
        // NB: once Ready, kubeconfigs naming the port (and tokens naming the issuer
        // `https://127.0.0.1:<port>`) are out there: the control plane may only ever come back
        // on that port, and a cluster that cannot is lost.
        let handed_out = cluster.phase == Phase::Ready;
        let (running, foreign) = self.apiserver_processes(id);
        let mut why = "was not running";
        let running = match running {
            Some(running) if !self.apiserver_is_current(&running, etcd_port) => {
                tracing::warn!(
                    pid = running.pid,
                    replaced = running.replaced,
                    "kube-apiserver runs with another binary or other etcd flags than this vcm \
                     would give it; restarting it on its port"
                );
                stop(running.pid).await;
                if self.apiserver_of(id).is_some() {
                    return Err(DriverError::Transient(format!(
                        "kube-apiserver {} is still running after being stopped",
                        running.pid
                    )));
                }
                wait_port_free(running.port).await?;
                why = if running.replaced {
                    "ran a binary since replaced on disk"
                } else {
                    "reached etcd without TLS or on another port"
                };
                None
            }
            running => running,
        };
        if let Some(RunningApiServer { pid, port, .. }) = running {
            // Re-adopt: it runs; is it serving?
            hold_port(port);
            let pki = Pki::existing(&dir)
                .ok_or_else(|| DriverError::Transient("cluster PKI missing".into()))?;
            let endpoint = format!("https://127.0.0.1:{port}");
            let timeout = if handed_out {
                LIVENESS_TIMEOUT
            } else {
                READY_TIMEOUT
            };
            return match crate::controlplane::wait_ready(&endpoint, &pki, timeout, None).await {
                Ok(()) => Ok(Ensured::Ready { endpoint }),
                Err(e) => {
                    // NB: /readyz includes the API server's own etcd check: when the shared
                    // etcd is what is slow, every cluster would fail it, and restarting them all
                    // would not help. Wait for etcd instead.
                    self.etcd_healthy(etcd_port).await?;
                    tracing::warn!(pid, error = %format!("{e:#}"), "adopted kube-apiserver is not ready; restarting it");
                    stop(pid).await;
                    Err(DriverError::Transient(format!(
                        "kube-apiserver was not ready and was stopped to be restarted: {e:#}"
                    )))
                }
            };
        }
        let recorded = self.port_of(id);
        if handed_out {
            return self
                .restart(cluster, etcd_port, recorded, &foreign, why)
                .await;
        }
        let mut opts = self.apiserver_options(cluster, etcd_port)?;
        opts.port = recorded.filter(|p| {
            hold_port(*p);
            let free = std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok();
            if !free {
                // Another program took it: not ours any more, and this cluster takes a new one
                // (nothing was handed out yet).
                release_port(*p);
            }
            free
        });
        let server = ApiServer::start(&self.bins_for(cluster)?, &opts)
            .await
            .map_err(|e| match start_error(e) {
                DriverError::Transient(msg) if !foreign.is_empty() => {
                    DriverError::Transient(format!(
                        "{msg}\n(note: {} carry this cluster's command line but are not vcm's \
                         kube-apiserver; vcm neither adopts nor stops them)",
                        strangers(&foreign)
                    ))
                }
                other => other,
            })?;
        std::fs::write(dir.join("port"), server.port().to_string())
            .map_err(transient("recording the API server port"))?;
        let endpoint = server.endpoint();
        let pid = server.detach();
        tracing::info!(pid, %endpoint, "kube-apiserver ready");
        Ok(Ensured::Ready { endpoint })
    }
}
