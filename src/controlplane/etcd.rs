//! An etcd server on loopback ports.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};

use super::bins::KubeBins;
use super::ports::{PortLease, is_port_clash};
use super::process::{Supervised, SupervisedOptions};

/// How long etcd may take to answer `/health` before start-up counts as failed.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A running etcd. Dropping it kills the process and gives back ports it picked (its data
/// directory stays with its owner).
#[derive(Debug)]
pub struct Etcd {
    process: Supervised,
    leases: [PortLease; 2],
    client_url: String,
    peer_port: u16,
    data_dir: PathBuf,
}

// === impl Etcd ===

impl Etcd {
    /// Start etcd with its data under `dir/etcd` and wait until it is healthy. Ports are picked
    /// free; a port stolen between picking and binding is retried with new ports.
    pub async fn start(bins: &KubeBins, dir: &Path, die_with_parent: bool) -> anyhow::Result<Self> {
        Self::start_on(bins, dir, die_with_parent, None).await
    }

    /// Like [`Etcd::start`], on the given `(client, peer)` ports if any (a restarted etcd keeps
    /// its port, so API servers pointing at it keep working).
    pub async fn start_on(
        bins: &KubeBins,
        dir: &Path,
        die_with_parent: bool,
        given: Option<(u16, u16)>,
    ) -> anyhow::Result<Self> {
        let program = bins.get("etcd")?;
        let mut last_err = None;
        for _ in 0..3 {
            // NB: ports the caller chose stay the caller's to release.
            let leases = match given {
                Some((c, p)) => [PortLease::borrowed(c), PortLease::borrowed(p)],
                None => [PortLease::free()?, PortLease::free()?],
            };
            match Self::try_start(&program, dir, die_with_parent, leases).await {
                Ok(etcd) => return Ok(etcd),
                Err(e) if given.is_none() && is_port_clash(&e) => last_err = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last_err.unwrap_or_else(|| anyhow::anyhow!("etcd did not start")))
    }

    async fn try_start(
        program: &Path,
        dir: &Path,
        die_with_parent: bool,
        leases: [PortLease; 2],
    ) -> anyhow::Result<Self> {
        let (client, peer) = (leases[0].port(), leases[1].port());
        let data_dir = dir.join("etcd");
        std::fs::create_dir_all(&data_dir).context("creating the etcd data directory")?;
        let client_url = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let args = vec![
            "--name=vcm".to_string(),
            format!("--data-dir={}", data_dir.display()),
            format!("--listen-client-urls={client_url}"),
            format!("--advertise-client-urls={client_url}"),
            format!("--listen-peer-urls={peer_url}"),
            format!("--initial-advertise-peer-urls={peer_url}"),
            format!("--initial-cluster=vcm={peer_url}"),
            // NB: control planes here are disposable; fsync would dominate start-up time.
            "--unsafe-no-fsync=true".to_string(),
            "--log-level=warn".to_string(),
        ];
        let opts = SupervisedOptions {
            log_path: dir.join("etcd.log"),
            die_with_parent,
            env: vec![],
        };
        let mut process = Supervised::spawn("etcd", program, &args, &opts)?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .context("building an HTTP client")?;
        let healthy = crate::poll::until("etcd", READY_TIMEOUT, Duration::from_millis(50), || {
            let exited = process.exit_status().map(|status| {
                format!(
                    "etcd exited ({status}) during start-up:\n{}",
                    process.log_tail(20)
                )
            });
            let (http, url) = (http.clone(), format!("{client_url}/health"));
            async move {
                if let Some(exited) = exited {
                    bail!(exited);
                }
                Ok(match http.get(url).send().await {
                    Ok(resp) if resp.status().is_success() => crate::poll::Poll::Ready(()),
                    Ok(resp) => {
                        crate::poll::Poll::Pending(format!("/health answered {}", resp.status()))
                    }
                    Err(e) => crate::poll::Poll::Pending(format!("{e}")),
                })
            }
        })
        .await;
        if let Err(e) = healthy {
            bail!("{e:#}\n{}", process.log_tail(20));
        }
        Ok(Self {
            process,
            leases,
            client_url,
            peer_port: peer,
            data_dir,
        })
    }

    /// The peer port.
    pub fn peer_port(&self) -> u16 {
        self.peer_port
    }

    /// The client port.
    pub fn client_port(&self) -> u16 {
        self.client_url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or(0)
    }

    /// Let etcd outlive this handle (reaped by a thread); returns its pid. Its ports stay held
    /// until the owner calls [`super::release_port`].
    pub fn detach(self) -> u32 {
        let [client, peer] = self.leases;
        client.keep();
        peer.keep();
        self.process.detach()
    }

    /// `http://127.0.0.1:<port>`, for `--etcd-servers`.
    pub fn url(&self) -> &str {
        &self.client_url
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The process handle.
    pub fn process(&mut self) -> &mut Supervised {
        &mut self.process
    }
}
