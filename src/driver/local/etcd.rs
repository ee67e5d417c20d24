//! The shared etcd of the local driver: started or adopted on demand, its ports held while it
//! runs, each cluster's keys under `/vcm/<id>/` removed with the cluster.
//!
//! etcd serves clients and its (unused) peer port on TLS with certificates from its own CA and
//! requires a client certificate from it (`--client-cert-auth`). fsync is on unless
//! `[local] etcd_unsafe_no_fsync` says otherwise.
//!
//! NB: no etcd RBAC per prefix (auth with a role per cluster limited to `/vcm/<id>/`): every
//! process here runs as vcm's user, and that user can read etcd's CA key and vcm's own client
//! key, so a role would not stop a subverted API server from reading another cluster's keys.
//! It would also need etcd to compact itself (an API server's compaction writes
//! `compact_rev_key` outside its prefix), and vcm's calls, which go through etcd's JSON gateway
//! (it reaches etcd's gRPC as etcd's own certificate, whatever the caller presents), to carry
//! a password-based token. The boundary is the user: per-cluster users would be the step that
//! makes roles worth it.
//!
//! NB: an etcd of ours that runs with other settings (plain HTTP from an older vcm, the other
//! fsync setting, or a binary replaced on disk) is stopped and started again on the same ports
//! and data: API servers keep their `--etcd-servers` port, and those with plain-HTTP flags are
//! restarted by `ensure` (see `apiserver`).

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use super::procs::{strangers, wait_port_free};
use super::{LocalDriver, permanent, stop, transient};
use crate::controlplane::{
    Etcd, EtcdClientFiles, EtcdOptions, EtcdPki, FoundProcess, Ownership, hold_port, release_port,
};
use crate::domain::ClusterId;
use crate::driver::DriverError;

/// How long vcm's own calls to etcd (health, count, delete) may take.
const ETCD_CALL_TIMEOUT: Duration = Duration::from_secs(10);

// === impl LocalDriver ===

impl LocalDriver {
    pub(super) fn etcd_dir(&self) -> PathBuf {
        self.root.join("etcd")
    }

    fn etcd_data_flag(&self) -> String {
        format!("--data-dir={}", self.etcd_dir().join("etcd").display())
    }

    /// vcm's etcd processes (ours or replaced) and the others carrying etcd's data directory.
    fn etcd_processes(&self) -> (Vec<FoundProcess>, Vec<FoundProcess>) {
        let flag = self.etcd_data_flag();
        self.processes(&flag, &["etcd"])
            .into_iter()
            .filter(|p| p.argv.contains(&flag))
            .partition(FoundProcess::is_vcms)
    }

    /// Whether a running etcd of ours has the command line this driver would give it.
    fn etcd_is_current(&self, p: &FoundProcess) -> bool {
        let ca = format!("--trusted-ca-file={}", self.etcd_pki.ca_cert().display());
        let no_fsync = p.argv.iter().any(|a| a == "--unsafe-no-fsync=true");
        p.ownership == Ownership::Ours
            && p.argv.iter().any(|a| a == "--client-cert-auth=true")
            && p.argv.contains(&ca)
            && no_fsync == self.etcd_unsafe_no_fsync
    }

    /// Start etcd, or adopt the one already running from our data directory; returns its port.
    pub(super) async fn ensure_etcd(&self) -> Result<u16, DriverError> {
        let mut known = self.etcd.lock().await;
        let (ours, foreign) = self.etcd_processes();
        let mut keep_ports = None;
        for p in ours {
            let ports = flag_port(&p.argv, "--listen-client-urls=")
                .zip(flag_port(&p.argv, "--listen-peer-urls="));
            if let Some((client, peer)) = ports {
                // A restarted vcm adopts etcd: its ports are ours again.
                hold_port(client);
                hold_port(peer);
                if self.etcd_is_current(&p) {
                    *known = Some(client);
                    return Ok(client);
                }
                keep_ports = Some((client, peer));
            }
            tracing::warn!(
                pid = p.pid,
                "etcd runs with other settings than this vcm's (plain HTTP, fsync, or a \
                 replaced binary); restarting it on its ports"
            );
            stop(p.pid).await;
        }
        if !foreign.is_empty() {
            // NB: an etcd we may not stop holds the data directory's lock, and maybe the port
            // every API server names: starting a second one would only fail or split the data.
            return Err(DriverError::Transient(format!(
                "{} carry the local driver's etcd data directory {} on their command line but \
                 are not vcm's etcd; vcm neither adopts nor stops them: stop them, and vcm \
                 starts its etcd",
                strangers(&foreign),
                self.etcd_dir().join("etcd").display(),
            )));
        }
        if let Some((client, peer)) = keep_ports {
            wait_port_free(client).await?;
            wait_port_free(peer).await?;
        }
        // Reuse the last port when possible: API servers have it in their `--etcd-servers`.
        let port_file = self.etcd_dir().join("ports");
        let saved = keep_ports.or_else(|| {
            let s = std::fs::read_to_string(&port_file).ok()?;
            let (c, p) = s.trim().split_once(' ')?;
            Some((c.parse().ok()?, p.parse().ok()?))
        });
        std::fs::create_dir_all(self.etcd_dir())
            .map_err(permanent("creating the etcd directory"))?;
        if let Some((client, peer)) = saved {
            hold_port(client);
            hold_port(peer);
        }
        // Recreates whatever of the PKI went missing since the driver started.
        let pki =
            EtcdPki::ensure(self.etcd_pki.dir()).map_err(permanent("preparing etcd's PKI"))?;
        let mut opts = EtcdOptions {
            die_with_parent: false,
            ports: saved,
            tls: Some(pki),
            unsafe_no_fsync: self.etcd_unsafe_no_fsync,
        };
        let etcd = match Etcd::start_with(&self.bins, &self.etcd_dir(), &opts).await {
            Ok(e) => e,
            Err(_) if saved.is_some() => {
                // Taken by someone else meanwhile: new ports, and the old ones are not ours.
                if let Some((client, peer)) = saved {
                    release_port(client);
                    release_port(peer);
                }
                opts.ports = None;
                Etcd::start_with(&self.bins, &self.etcd_dir(), &opts)
                    .await
                    .map_err(transient("starting etcd"))?
            }
            Err(e) => return Err(transient("starting etcd")(e)),
        };
        let port = etcd.client_port();
        let _ = std::fs::write(&port_file, format!("{port} {}", etcd.peer_port()));
        tracing::info!(
            port,
            pid = etcd.pid(),
            fsync = !self.etcd_unsafe_no_fsync,
            "started etcd (TLS, client certificates) for local clusters"
        );
        etcd.detach();
        *known = Some(port);
        Ok(port)
    }

    /// The etcd CA and cluster `id`'s own etcd client certificate, in its directory (written
    /// the first time, and again if etcd's CA changed).
    /// NB: one certificate per cluster rather than one for every API server: a cluster's
    /// directory then holds nothing another cluster's files could be swapped for, and deleting
    /// the cluster deletes its key. etcd still lets every certificate of its CA read every
    /// prefix (no etcd RBAC per prefix, see docs).
    pub(super) fn etcd_client_files(&self, id: &ClusterId) -> Result<EtcdClientFiles, DriverError> {
        let dir = self.cluster_dir(id);
        let files = EtcdClientFiles {
            ca: dir.join("etcd-ca.crt"),
            cert: dir.join("etcd-client.crt"),
            key: dir.join("etcd-client.key"),
        };
        let ca = self
            .etcd_pki
            .ca_pem()
            .map_err(transient("reading etcd's CA"))?;
        let current = std::fs::read_to_string(&files.ca).is_ok_and(|have| have == ca)
            && files.cert.is_file()
            && files.key.is_file();
        if current {
            return Ok(files);
        }
        std::fs::create_dir_all(&dir).map_err(transient("creating the cluster directory"))?;
        let cert = self
            .etcd_pki
            .client_cert(&format!("vcm-cluster-{id}"))
            .map_err(transient("signing the cluster's etcd client certificate"))?;
        crate::fsutil::write_private(&files.key, cert.key_pem.as_bytes())
            .map_err(transient("writing the cluster's etcd client key"))?;
        std::fs::write(&files.cert, cert.cert_pem)
            .map_err(transient("writing the cluster's etcd client certificate"))?;
        std::fs::write(&files.ca, ca).map_err(transient("writing etcd's CA"))?;
        Ok(files)
    }

    /// A POST of `body` to etcd's JSON gateway at `path`, with vcm's client certificate.
    async fn etcd_call(
        &self,
        path: &str,
        body: serde_json::Value,
        what: &'static str,
    ) -> Result<serde_json::Value, DriverError> {
        let port = self.ensure_etcd().await?;
        let http = self
            .etcd_pki
            .http_client(ETCD_CALL_TIMEOUT)
            .map_err(transient("preparing vcm's etcd client"))?;
        let resp = http
            .post(format!("https://127.0.0.1:{port}{path}"))
            .json(&body)
            .send()
            .await
            .map_err(transient(what))?;
        if !resp.status().is_success() {
            return Err(DriverError::Transient(format!(
                "{what}: etcd answered {}",
                resp.status()
            )));
        }
        resp.json().await.map_err(transient(what))
    }

    pub(super) async fn delete_etcd_prefix(&self, id: &ClusterId) -> Result<(), DriverError> {
        let body = serde_json::json!({
            "key": B64.encode(format!("/vcm/{id}/")),
            // '0' is the byte after '/': the end of the prefix range.
            "range_end": B64.encode(format!("/vcm/{id}0")),
        });
        self.etcd_call(
            "/v3/kv/deleterange",
            body,
            "deleting the cluster's etcd keys",
        )
        .await
        .map(drop)
    }

    /// Number of keys under the cluster's prefix (for leak checks).
    pub async fn etcd_key_count(&self, id: &ClusterId) -> Result<u64, DriverError> {
        let body = serde_json::json!({
            "key": B64.encode(format!("/vcm/{id}/")),
            "range_end": B64.encode(format!("/vcm/{id}0")),
            "count_only": true,
        });
        let resp = self
            .etcd_call("/v3/kv/range", body, "counting etcd keys")
            .await?;
        Ok(resp["count"]
            .as_str()
            .and_then(|c| c.parse().ok())
            .unwrap_or(0))
    }

    /// The shared etcd's PKI: its CA, and vcm's client certificate (for tests and operators
    /// who need to look inside etcd).
    pub fn etcd_pki(&self) -> &EtcdPki {
        &self.etcd_pki
    }

    /// Stop the shared etcd if no cluster's API server runs any more (a graceful `vcm server`
    /// shutdown with no live clusters leaves nothing running).
    pub async fn stop_etcd_if_unused(&self) {
        let prefix = format!("--cert-dir={}/", self.root.join("clusters").display());
        let apiservers = self.processes(&prefix, &["kube-apiserver"]);
        if apiservers.iter().any(FoundProcess::is_vcms) {
            return;
        }
        for p in self.etcd_processes().0 {
            stop(p.pid).await;
            for flag in ["--listen-client-urls=", "--listen-peer-urls="] {
                if let Some(port) = flag_port(&p.argv, flag) {
                    release_port(port);
                }
            }
        }
        *self.etcd.lock().await = None;
    }

    /// `Transient` unless etcd on `port` answers `/health` with 200 (to vcm's certificate).
    pub(super) async fn etcd_healthy(&self, port: u16) -> Result<(), DriverError> {
        let http = self
            .etcd_pki
            .http_client(Duration::from_secs(5))
            .map_err(transient("preparing vcm's etcd client"))?;
        let resp = http
            .get(format!("https://127.0.0.1:{port}/health"))
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
}

/// The port in the argument `<flag>http(s)://127.0.0.1:<port>`.
fn flag_port(argv: &[String], flag: &str) -> Option<u16> {
    argv.iter()
        .find_map(|a| a.strip_prefix(flag))
        .and_then(|url| {
            url.strip_prefix("https://127.0.0.1:")
                .or_else(|| url.strip_prefix("http://127.0.0.1:"))
        })
        .and_then(|p| p.parse().ok())
}
