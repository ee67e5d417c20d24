//! Which running processes are the local driver's: found by their command line, kept only if
//! they run the driver's binary for their role under vcm's user (`controlplane::Ownership`).

use std::path::PathBuf;
use std::time::Duration;

use super::{BINARIES, LocalDriver, STOP_GRACE, transient};
use crate::controlplane::{FoundProcess, Ownership, find_owned_processes, kill_group};
use crate::domain::ClusterId;
use crate::driver::DriverError;
use crate::poll::Poll;

// === impl LocalDriver ===

impl LocalDriver {
    /// Processes whose command line contains `needle`, sorted against the binaries `names`.
    pub(super) fn processes(&self, needle: &str, names: &[&str]) -> Vec<FoundProcess> {
        let expected: Vec<PathBuf> = names
            .iter()
            .filter_map(|n| self.exes.get(n))
            .flatten()
            .cloned()
            .collect();
        find_owned_processes(needle, &expected)
    }

    /// The API server process of cluster `id` (read from its own command line, so its port is
    /// right even if vcm died before recording anything), and the processes that carry its
    /// command line but are not vcm's (see `controlplane::Ownership`). Extra copies of vcm's
    /// (which only a bug could start) are killed.
    pub(super) fn apiserver_processes(
        &self,
        id: &ClusterId,
    ) -> (Option<RunningApiServer>, Vec<FoundProcess>) {
        let flag = format!("--cert-dir={}", self.cluster_dir(id).display());
        let (ours, foreign): (Vec<FoundProcess>, Vec<FoundProcess>) = self
            .processes(&flag, &["kube-apiserver"])
            .into_iter()
            .filter(|p| p.argv.contains(&flag))
            .partition(FoundProcess::is_vcms);
        for p in ours.iter().skip(1) {
            tracing::warn!(cluster.id = %id, pid = p.pid, "killing a duplicate kube-apiserver");
            kill_group(p.pid);
        }
        let running = ours.into_iter().next().map(|p| RunningApiServer {
            pid: p.pid,
            port: p
                .argv
                .iter()
                .find_map(|a| a.strip_prefix("--secure-port=")?.parse().ok())
                .unwrap_or(0),
            replaced: p.ownership == Ownership::Replaced,
            argv: p.argv,
        });
        (running, foreign)
    }

    /// vcm's API server process of cluster `id`, if one runs.
    pub(super) fn apiserver_of(&self, id: &ClusterId) -> Option<RunningApiServer> {
        self.apiserver_processes(id).0
    }

    /// Kill every process this driver started under its root (API servers, their components
    /// and etcd), without touching records or files. For tests and for operators tearing a
    /// machine down. Processes that are not vcm's (see `controlplane::Ownership`) are left.
    pub fn kill_all_processes(&self) -> usize {
        let procs = self.process_ids();
        for pid in &procs {
            kill_group(*pid);
        }
        procs.len()
    }

    /// Pids of every process of vcm's running from this driver's root.
    pub fn process_ids(&self) -> Vec<u32> {
        self.processes(&self.root.display().to_string(), &BINARIES)
            .into_iter()
            .filter(FoundProcess::is_vcms)
            .map(|p| p.pid)
            .collect()
    }
}

/// vcm's kube-apiserver of a cluster, as found running.
#[derive(Debug)]
pub(super) struct RunningApiServer {
    pub(super) pid: u32,
    /// From its `--secure-port`.
    pub(super) port: u16,
    pub(super) argv: Vec<String>,
    /// Its binary was replaced on disk: stopped and started again, not adopted.
    pub(super) replaced: bool,
}

/// Processes that are not vcm's but carry a command line of vcm's, for an error message.
pub(super) fn strangers(found: &[FoundProcess]) -> String {
    found
        .iter()
        .map(|p| match &p.ownership {
            Ownership::Foreign(why) => format!("pid {} ({why})", p.pid),
            _ => format!("pid {}", p.pid),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Wait until `port` can be bound again after its process was stopped, to start its successor
/// on it.
/// NB: a killed leader shows as gone while its other threads still close its sockets, so a
/// stopped process is not yet a free port.
pub(super) async fn wait_port_free(port: u16) -> Result<(), DriverError> {
    crate::poll::until(
        &format!("port {port} free"),
        STOP_GRACE,
        Duration::from_millis(20),
        || async move {
            Ok(match std::net::TcpListener::bind(("127.0.0.1", port)) {
                Ok(_) => Poll::Ready(()),
                Err(e) => Poll::Pending(e.to_string()),
            })
        },
    )
    .await
    .map_err(transient("waiting for a stopped process's port"))
}
