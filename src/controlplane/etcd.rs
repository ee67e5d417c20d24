//! An etcd server on loopback ports.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};

use super::bins::KubeBins;
use super::etcd_pki::{EtcdPki, create_private_dir};
use super::ports::{PortLease, is_port_clash};
use super::process::{Supervised, SupervisedOptions};

/// How long etcd may take to answer `/health` before start-up counts as failed.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How an etcd is started.
#[derive(Debug, Clone, Default)]
pub struct EtcdOptions {
    /// See [`SupervisedOptions::die_with_parent`].
    pub die_with_parent: bool,
    /// The `(client, peer)` ports, or `None` for free ones.
    pub ports: Option<(u16, u16)>,
    /// Serve clients and peers over TLS with this PKI and require client certificates from
    /// it; `None`: plain HTTP (test beds only: a throwaway directory and loopback).
    pub tls: Option<EtcdPki>,
    /// `--unsafe-no-fsync`: faster writes; a machine crash can lose or corrupt the data.
    pub unsafe_no_fsync: bool,
}

/// A running etcd. Dropping it kills the process and gives back ports it picked (its data
/// directory stays with its owner).
#[derive(Debug)]
pub struct Etcd {
    process: Supervised,
    leases: [PortLease; 2],
    client_url: String,
    client_port: u16,
    peer_port: u16,
    data_dir: PathBuf,
}

// === impl Etcd ===

impl Etcd {
    /// Start a plain-HTTP etcd without fsync (for test beds: a temp directory on loopback, where
    /// speed matters and durability does not) with its data under `dir/etcd`, and wait until it
    /// is healthy. Ports are picked free; a port stolen between picking and binding is retried
    /// with new ports.
    pub async fn start(bins: &KubeBins, dir: &Path, die_with_parent: bool) -> anyhow::Result<Self> {
        let opts = EtcdOptions {
            die_with_parent,
            unsafe_no_fsync: true,
            ..EtcdOptions::default()
        };
        Self::start_with(bins, dir, &opts).await
    }

    /// Start etcd as `opts` say, with its data under `dir/etcd`, and wait until it is healthy.
    /// Given ports stay the caller's to release (a restarted etcd keeps its port, so API
    /// servers pointing at it keep working).
    pub async fn start_with(
        bins: &KubeBins,
        dir: &Path,
        opts: &EtcdOptions,
    ) -> anyhow::Result<Self> {
        let program = bins.get("etcd")?;
        let mut last_err = None;
        for _ in 0..3 {
            // NB: ports the caller chose stay the caller's to release.
            let leases = match opts.ports {
                Some((c, p)) => [PortLease::borrowed(c), PortLease::borrowed(p)],
                None => [PortLease::free()?, PortLease::free()?],
            };
            match Self::try_start(&program, dir, opts, leases).await {
                Ok(etcd) => return Ok(etcd),
                Err(e) if opts.ports.is_none() && is_port_clash(&e) => last_err = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last_err.unwrap_or_else(|| anyhow::anyhow!("etcd did not start")))
    }

    /// The command line for `opts` on ports `client` and `peer`.
    fn args(data_dir: &Path, opts: &EtcdOptions, client: u16, peer: u16) -> Vec<String> {
        let scheme = if opts.tls.is_some() { "https" } else { "http" };
        let client_url = format!("{scheme}://127.0.0.1:{client}");
        let peer_url = format!("{scheme}://127.0.0.1:{peer}");
        let mut args = vec![
            "--name=vcm".to_string(),
            format!("--data-dir={}", data_dir.display()),
            format!("--listen-client-urls={client_url}"),
            format!("--advertise-client-urls={client_url}"),
            format!("--listen-peer-urls={peer_url}"),
            format!("--initial-advertise-peer-urls={peer_url}"),
            format!("--initial-cluster=vcm={peer_url}"),
            "--log-level=warn".to_string(),
        ];
        if let Some(pki) = &opts.tls {
            let p = |path: PathBuf| path.display().to_string();
            args.extend([
                "--client-cert-auth=true".to_string(),
                format!("--trusted-ca-file={}", p(pki.ca_cert())),
                format!("--cert-file={}", p(pki.server_cert())),
                format!("--key-file={}", p(pki.server_key())),
                // NB: a single member has no peers, but its peer port still listens: on TLS
                // with the same CA, nobody without a certificate from it can speak raft there.
                "--peer-client-cert-auth=true".to_string(),
                format!("--peer-trusted-ca-file={}", p(pki.ca_cert())),
                format!("--peer-cert-file={}", p(pki.server_cert())),
                format!("--peer-key-file={}", p(pki.server_key())),
            ]);
        }
        if opts.unsafe_no_fsync {
            args.push("--unsafe-no-fsync=true".to_string());
        }
        args
    }

    async fn try_start(
        program: &Path,
        dir: &Path,
        opts: &EtcdOptions,
        leases: [PortLease; 2],
    ) -> anyhow::Result<Self> {
        let (client, peer) = (leases[0].port(), leases[1].port());
        let data_dir = dir.join("etcd");
        // NB: 0700 even for one an older vcm made 0755: it holds every cluster's Secrets.
        create_private_dir(&data_dir).context("creating the etcd data directory")?;
        let args = Self::args(&data_dir, opts, client, peer);
        let scheme = if opts.tls.is_some() { "https" } else { "http" };
        let client_url = format!("{scheme}://127.0.0.1:{client}");
        let sup = SupervisedOptions {
            log_path: dir.join("etcd.log"),
            die_with_parent: opts.die_with_parent,
            env: vec![],
        };
        let mut process = Supervised::spawn("etcd", program, &args, &sup)?;
        let http = match &opts.tls {
            Some(pki) => pki.http_client(Duration::from_secs(2))?,
            None => reqwest::Client::builder()
                .timeout(Duration::from_secs(2))
                .build()
                .context("building an HTTP client")?,
        };
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
            client_port: client,
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
        self.client_port
    }

    /// Let etcd outlive this handle (reaped by a thread); returns its pid. Its ports stay held
    /// until the owner calls [`super::release_port`].
    pub fn detach(self) -> u32 {
        let [client, peer] = self.leases;
        client.keep();
        peer.keep();
        self.process.detach()
    }

    /// `http(s)://127.0.0.1:<port>`, for `--etcd-servers`.
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
