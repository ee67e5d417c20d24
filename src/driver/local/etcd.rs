//! The shared etcd of the local driver: started or adopted on demand, its ports held while it
//! runs, each cluster's keys under `/vcm/<id>/` removed with the cluster.

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use super::{LocalDriver, permanent, stop, transient};
use crate::controlplane::{Etcd, find_processes, hold_port, release_port};
use crate::domain::ClusterId;
use crate::driver::DriverError;

// === impl LocalDriver ===

impl LocalDriver {
    pub(super) fn etcd_dir(&self) -> PathBuf {
        self.root.join("etcd")
    }

    /// Start etcd, or adopt the one already running from our data directory; returns its port.
    pub(super) async fn ensure_etcd(&self) -> Result<u16, DriverError> {
        let mut known = self.etcd.lock().await;
        let data_flag = format!("--data-dir={}", self.etcd_dir().join("etcd").display());
        let running = find_processes(&data_flag)
            .into_iter()
            .find(|(_, argv)| argv.contains(&data_flag));
        if let Some((_, argv)) = running {
            let port = argv
                .iter()
                .find_map(|a| a.strip_prefix("--listen-client-urls=http://127.0.0.1:"))
                .and_then(|p| p.parse().ok());
            if let Some(port) = port {
                // A restarted vcm adopts etcd: its ports are ours again.
                hold_port(port);
                if let Some(peer) = flag_port(&argv, "--listen-peer-urls=http://127.0.0.1:") {
                    hold_port(peer);
                }
                *known = Some(port);
                return Ok(port);
            }
        }
        // Reuse the last port when possible: API servers have it in their `--etcd-servers`.
        let port_file = self.etcd_dir().join("ports");
        let saved = std::fs::read_to_string(&port_file).ok().and_then(|s| {
            let (c, p) = s.trim().split_once(' ')?;
            Some((c.parse().ok()?, p.parse().ok()?))
        });
        std::fs::create_dir_all(self.etcd_dir())
            .map_err(permanent("creating the etcd directory"))?;
        if let Some((client, peer)) = saved {
            hold_port(client);
            hold_port(peer);
        }
        let etcd = match Etcd::start_on(&self.bins, &self.etcd_dir(), false, saved).await {
            Ok(e) => e,
            Err(_) if saved.is_some() => {
                // Taken by someone else meanwhile: new ports, and the old ones are not ours.
                if let Some((client, peer)) = saved {
                    release_port(client);
                    release_port(peer);
                }
                Etcd::start_on(&self.bins, &self.etcd_dir(), false, None)
                    .await
                    .map_err(transient("starting etcd"))?
            }
            Err(e) => return Err(transient("starting etcd")(e)),
        };
        let port = etcd.client_port();
        let _ = std::fs::write(&port_file, format!("{port} {}", etcd.peer_port()));
        tracing::info!(port, pid = etcd.pid(), "started etcd for local clusters");
        etcd.detach();
        *known = Some(port);
        Ok(port)
    }

    pub(super) async fn delete_etcd_prefix(&self, id: &ClusterId) -> Result<(), DriverError> {
        let port = self.ensure_etcd().await?;
        let prefix = format!("/vcm/{id}/");
        let end = format!("/vcm/{id}0"); // '0' is the byte after '/': the end of the prefix range
        let body = serde_json::json!({"key": B64.encode(&prefix), "range_end": B64.encode(&end)});
        let resp = reqwest::Client::new()
            .post(format!("http://127.0.0.1:{port}/v3/kv/deleterange"))
            .json(&body)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(transient("deleting the cluster's etcd keys"))?;
        if !resp.status().is_success() {
            return Err(DriverError::Transient(format!(
                "etcd refused to delete {prefix}: {}",
                resp.status()
            )));
        }
        Ok(())
    }

    /// Number of keys under the cluster's prefix (for leak checks).
    pub async fn etcd_key_count(&self, id: &ClusterId) -> Result<u64, DriverError> {
        let port = self.ensure_etcd().await?;
        let body = serde_json::json!({
            "key": B64.encode(format!("/vcm/{id}/")),
            "range_end": B64.encode(format!("/vcm/{id}0")),
            "count_only": true,
        });
        let resp: serde_json::Value = reqwest::Client::new()
            .post(format!("http://127.0.0.1:{port}/v3/kv/range"))
            .json(&body)
            .send()
            .await
            .map_err(transient("counting etcd keys"))?
            .json()
            .await
            .map_err(transient("counting etcd keys"))?;
        Ok(resp["count"]
            .as_str()
            .and_then(|c| c.parse().ok())
            .unwrap_or(0))
    }

    /// Stop the shared etcd if no cluster's API server runs any more (a graceful `vcm server`
    /// shutdown with no live clusters leaves nothing running).
    pub async fn stop_etcd_if_unused(&self) {
        let prefix = format!("--cert-dir={}/", self.root.join("clusters").display());
        if !find_processes(&prefix).is_empty() {
            return;
        }
        let data_flag = format!("--data-dir={}", self.etcd_dir().join("etcd").display());
        for (pid, argv) in find_processes(&data_flag) {
            stop(pid).await;
            for flag in [
                "--listen-client-urls=http://127.0.0.1:",
                "--listen-peer-urls=http://127.0.0.1:",
            ] {
                if let Some(port) = flag_port(&argv, flag) {
                    release_port(port);
                }
            }
        }
        *self.etcd.lock().await = None;
    }
}

/// `Transient` unless etcd on `port` answers `/health` with 200.
pub(super) async fn etcd_healthy(port: u16) -> Result<(), DriverError> {
    let resp = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/health"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .map_err(transient("checking etcd's health"))?;
    if !resp.status().is_success() {
        return Err(DriverError::Transient(format!(
            "etcd answered /health with {}",
            resp.status()
        )));
    }
    Ok(())
}

/// The port in the argument that starts with `flag` (`--flag=http://127.0.0.1:<port>`).
fn flag_port(argv: &[String], flag: &str) -> Option<u16> {
    argv.iter()
        .find_map(|a| a.strip_prefix(flag))
        .and_then(|p| p.parse().ok())
}
