//! A kube-apiserver with its own PKI, on a loopback port.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};

use super::bins::KubeBins;
use super::kubeconfig::{Kubeconfig, KubeconfigUser};
use super::pki::Pki;
use super::ports::{PortLease, is_port_clash};
use super::process::{Supervised, SupervisedOptions};
use crate::poll::Poll;

/// How a kube-apiserver is started.
#[derive(Debug, Clone)]
pub struct ApiServerOptions {
    /// Directory for its PKI, kubeconfig and log (created if missing).
    pub dir: PathBuf,
    /// `--etcd-servers`.
    pub etcd_url: String,
    /// `--etcd-prefix`: lets several API servers share one etcd without seeing each other.
    pub etcd_prefix: String,
    /// The CA and client certificate for an etcd on TLS (`--etcd-cafile`, `--etcd-certfile`,
    /// `--etcd-keyfile`); `None` for plain HTTP.
    pub etcd_tls: Option<EtcdClientFiles>,
    /// Keep the `ServiceAccount` admission plugin. It needs the controller-manager to create each
    /// namespace's `default` ServiceAccount, so control planes without one turn it off (as
    /// envtest does).
    pub service_account_admission: bool,
    /// See [`SupervisedOptions::die_with_parent`].
    pub die_with_parent: bool,
    /// The port, or `None` for a free one.
    pub port: Option<u16>,
    /// The address it listens on and clients use (default 127.0.0.1). Any other address is
    /// also advertised (`--advertise-address`: the `kubernetes` Service's endpoint), and must be
    /// among the serving certificate's SANs (`extra_sans`).
    pub bind_address: std::net::IpAddr,
    /// Extra subject alternative names for the serving certificate.
    pub extra_sans: Vec<String>,
    /// How long to wait for `/readyz`.
    pub ready_timeout: Duration,
    /// Further flags (a size profile's limits), after the ones vcm always sets.
    pub extra_args: Vec<String>,
    /// Environment of the process (a size profile's `GOMEMLIMIT`).
    pub env: Vec<(String, String)>,
}

impl ApiServerOptions {
    /// Defaults for a control plane in `dir` backed by `etcd_url`.
    pub fn new(dir: impl Into<PathBuf>, etcd_url: impl Into<String>) -> Self {
        Self {
            dir: dir.into(),
            etcd_url: etcd_url.into(),
            etcd_prefix: "/registry".into(),
            etcd_tls: None,
            service_account_admission: false,
            die_with_parent: false,
            port: None,
            bind_address: std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            extra_sans: vec![],
            ready_timeout: Duration::from_secs(60),
            extra_args: vec![],
            env: vec![],
        }
    }
}

/// What a kube-apiserver needs to reach an etcd that requires client certificates.
#[derive(Debug, Clone)]
pub struct EtcdClientFiles {
    /// The CA that signed etcd's certificate.
    pub ca: PathBuf,
    /// The client certificate.
    pub cert: PathBuf,
    /// The client key.
    pub key: PathBuf,
}

/// A running kube-apiserver. Dropping it kills the process and gives back a port it picked.
#[derive(Debug)]
pub struct ApiServer {
    process: Supervised,
    port: u16,
    bind_address: std::net::IpAddr,
    lease: PortLease,
    pki: Pki,
    dir: PathBuf,
}

// === impl ApiServer ===

impl ApiServer {
    /// The command-line flags for an API server on `port` using `pki`. Public so benchmarks run
    /// a bare kube-apiserver with exactly the flags vcm uses.
    pub fn args(opts: &ApiServerOptions, pki: &Pki, port: u16) -> Vec<String> {
        let p = |path: PathBuf| path.display().to_string();
        let mut args = vec![
            format!("--etcd-servers={}", opts.etcd_url),
            format!("--etcd-prefix={}", opts.etcd_prefix),
            format!("--bind-address={}", opts.bind_address),
            format!("--secure-port={port}"),
            format!("--cert-dir={}", opts.dir.display()),
            format!("--tls-cert-file={}", p(pki.serving_cert())),
            format!("--tls-private-key-file={}", p(pki.serving_key())),
            format!("--client-ca-file={}", p(pki.ca_cert())),
            "--authorization-mode=RBAC".into(),
            format!("--service-account-issuer=https://127.0.0.1:{port}"),
            format!("--service-account-key-file={}", p(pki.sa_pub())),
            format!("--service-account-signing-key-file={}", p(pki.sa_key())),
            "--service-cluster-ip-range=10.0.0.0/24".into(),
            "--allow-privileged=true".into(),
            "--profiling=false".into(),
            // NB: a control plane per CI job has no audience for the endpoints reconciler's
            // lease and would otherwise fight nothing; keep the default behaviour though, so
            // `kubernetes` Service endpoints exist like on a real cluster.
        ];
        if !opts.bind_address.is_loopback() {
            args.push(format!("--advertise-address={}", opts.bind_address));
        }
        if let Some(tls) = &opts.etcd_tls {
            args.extend([
                format!("--etcd-cafile={}", tls.ca.display()),
                format!("--etcd-certfile={}", tls.cert.display()),
                format!("--etcd-keyfile={}", tls.key.display()),
            ]);
        }
        if !opts.service_account_admission {
            args.push("--disable-admission-plugins=ServiceAccount".into());
        }
        args.extend(opts.extra_args.iter().cloned());
        args
    }

    /// Generate a PKI (or reuse the one in `opts.dir`), start the process and wait for
    /// `/readyz`. On failure the error carries the tail of the API server's log.
    pub async fn start(bins: &KubeBins, opts: &ApiServerOptions) -> anyhow::Result<Self> {
        let program = bins.get("kube-apiserver")?;
        std::fs::create_dir_all(&opts.dir)
            .with_context(|| format!("creating {}", opts.dir.display()))?;
        let pki = match Pki::existing(&opts.dir) {
            Some(pki) => pki,
            None => Pki::generate(&opts.dir, &opts.extra_sans)?,
        };
        let mut last_err = None;
        for _ in 0..3 {
            // NB: a port the caller chose stays the caller's to release; one picked here is
            // given back if the start fails or the server is dropped.
            let lease = match opts.port {
                Some(p) => PortLease::borrowed(p),
                None => PortLease::free()?,
            };
            match Self::try_start(&program, opts, &pki, lease).await {
                Ok(server) => return Ok(server),
                Err(e) if opts.port.is_none() && is_port_clash(&e) => last_err = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last_err.unwrap_or_else(|| anyhow::anyhow!("kube-apiserver did not start")))
    }

    async fn try_start(
        program: &Path,
        opts: &ApiServerOptions,
        pki: &Pki,
        lease: PortLease,
    ) -> anyhow::Result<Self> {
        let port = lease.port();
        let sup = SupervisedOptions {
            log_path: opts.dir.join("kube-apiserver.log"),
            die_with_parent: opts.die_with_parent,
            env: opts.env.clone(),
        };
        let process = Supervised::spawn(
            "kube-apiserver",
            program,
            &Self::args(opts, pki, port),
            &sup,
        )?;
        let mut server = Self {
            process,
            port,
            bind_address: opts.bind_address,
            lease,
            pki: pki.clone(),
            dir: opts.dir.clone(),
        };
        server
            .admin_kubeconfig()?
            .write(&server.kubeconfig_path())?;
        server.wait_ready(opts.ready_timeout).await?;
        Ok(server)
    }

    /// Poll `/readyz` with the admin certificate until it answers 200.
    pub async fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<()> {
        wait_ready(
            &self.endpoint(),
            &self.pki,
            timeout,
            Some(&mut self.process),
        )
        .await
    }

    /// `https://<bind address>:<port>` (`https://127.0.0.1:<port>` by default).
    pub fn endpoint(&self) -> String {
        format!("https://{}:{}", self.bind_address, self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The PKI.
    pub fn pki(&self) -> &Pki {
        &self.pki
    }

    /// The directory holding PKI, kubeconfig and log.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the admin kubeconfig is written.
    pub fn kubeconfig_path(&self) -> PathBuf {
        self.dir.join("admin.kubeconfig")
    }

    /// The admin (`system:masters`) kubeconfig.
    pub fn admin_kubeconfig(&self) -> anyhow::Result<Kubeconfig> {
        Ok(Kubeconfig {
            name: "vcm".into(),
            server: self.endpoint(),
            ca_pem: self.pki.ca_pem()?,
            user: KubeconfigUser::ClientCert(self.pki.admin()?),
            namespace: None,
        })
    }

    /// An admin `kube::Client`.
    pub async fn client(&self) -> anyhow::Result<kube::Client> {
        self.admin_kubeconfig()?.client().await
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The process handle.
    pub fn process(&mut self) -> &mut Supervised {
        &mut self.process
    }

    /// Let the process outlive this handle; returns its pid. Its port stays held until the
    /// owner calls [`super::release_port`].
    pub fn detach(self) -> u32 {
        self.lease.keep();
        self.process.detach()
    }
}

/// Poll `<endpoint>/readyz` with `pki`'s admin certificate until it answers 200, failing early
/// (with its log) if `process` exits.
pub async fn wait_ready(
    endpoint: &str,
    pki: &Pki,
    timeout: Duration,
    mut process: Option<&mut Supervised>,
) -> anyhow::Result<()> {
    let admin = pki.admin()?;
    let http = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(pki.ca_pem()?.as_bytes())
            .context("parsing the cluster CA")?])
        .identity(
            reqwest::Identity::from_pem(format!("{}{}", admin.cert_pem, admin.key_pem).as_bytes())
                .context("loading the admin certificate")?,
        )
        .timeout(Duration::from_secs(2))
        .build()
        .context("building an HTTP client")?;
    let what = format!("kube-apiserver at {endpoint}");
    let waited = crate::poll::until(&what, timeout, Duration::from_millis(50), || {
        let exited = process.as_deref_mut().and_then(|p| {
            let status = p.exit_status()?;
            Some(format!(
                "kube-apiserver exited ({status}) during start-up:\n{}",
                p.log_tail(30)
            ))
        });
        let (http, url) = (http.clone(), format!("{endpoint}/readyz"));
        async move {
            if let Some(exited) = exited {
                bail!(exited);
            }
            Ok(match http.get(url).send().await {
                Ok(resp) if resp.status().is_success() => Poll::Ready(()),
                Ok(resp) => Poll::Pending(format!("/readyz answered {}", resp.status())),
                Err(e) => Poll::Pending(format!("{e}")),
            })
        }
    })
    .await;
    waited.map_err(|e| {
        let log = process.map(|p| p.log_tail(30)).unwrap_or_default();
        anyhow::anyhow!("{e:#}\n{log}")
    })
}
