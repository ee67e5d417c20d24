//! A test bed of real Kubernetes binaries on loopback ports.
//!
//! * Tier A: etcd (TLS, client certificates, as the local driver runs it) + kube-apiserver
//!   with a PKI of its own and an admin kubeconfig. Enough for
//!   anything that only talks to the API (RBAC, TokenRequest, ConfigMaps, CRDs).
//! * Tier B: tier A + kube-controller-manager + kube-scheduler + kwok with one fake node, so
//!   namespaces finish deleting, Deployments make Pods, Pods reach Running and every namespace
//!   gets its `default` ServiceAccount.
//!
//! * Tier C: tier B without kwok, plus a real node: containerd, runc, the CNI plugins, a kubelet
//!   and kube-proxy in network and mount namespaces of the bed's own ([`tier_c`]); needs root
//!   and the images of `scripts/node-images.sh`.
//!
//! Every process runs in its own process group under `setpriv --pdeathsig KILL`: dropping the
//! bed (test passed or panicked) kills the groups and removes the temp directory, and a test
//! process killed outright (Ctrl-C, SIGKILL) takes its children with it.

pub mod postgres;
mod tier_b;
pub mod tier_c;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::controlplane::{
    ApiServer, ApiServerOptions, Etcd, EtcdClientFiles, EtcdOptions, EtcdPki, KubeBins, Kubeconfig,
    Pki, PortLease, Supervised,
};

/// Which components a [`TestBed`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    /// etcd + kube-apiserver.
    A,
    /// A + controller-manager + scheduler + kwok with one fake node.
    B,
    /// A + controller-manager + scheduler + a real node (kubelet, containerd, kube-proxy).
    C,
}

/// A running test bed. Fields drop in declaration order: the node (tier C), the helpers, then
/// the API server, then etcd, and the temp directory last.
pub struct TestBed {
    /// Tier C's node: torn down first.
    node: Option<tier_c::Node>,
    helpers: Vec<Supervised>,
    /// Ports of the helpers, given back once they are stopped.
    ports: Vec<PortLease>,
    apiserver: ApiServer,
    etcd: Etcd,
    client: kube::Client,
    started_in: Duration,
    tier: Tier,
    bins: KubeBins,
    dir: tempfile::TempDir,
}

impl std::fmt::Debug for TestBed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestBed")
            .field("tier", &self.tier)
            .field("endpoint", &self.apiserver.endpoint())
            .field("dir", &self.dir.path())
            .finish_non_exhaustive()
    }
}

// === impl TestBed ===

impl TestBed {
    /// Start tier A, panicking with an actionable message if it cannot.
    pub async fn tier_a() -> Self {
        Self::start(Tier::A)
            .await
            .unwrap_or_else(|e| panic!("test bed (tier A) failed: {e:#}"))
    }

    /// Start tier B, panicking with an actionable message if it cannot.
    pub async fn tier_b() -> Self {
        Self::start(Tier::B)
            .await
            .unwrap_or_else(|e| panic!("test bed (tier B) failed: {e:#}"))
    }

    /// Start tier C, panicking with an actionable message if it cannot.
    pub async fn tier_c() -> Self {
        Self::start(Tier::C)
            .await
            .unwrap_or_else(|e| panic!("test bed (tier C) failed: {e:#}"))
    }

    /// Start a test bed of the given tier with binaries from [`KubeBins::locate`].
    pub async fn start(tier: Tier) -> anyhow::Result<Self> {
        let started = Instant::now();
        let bins = KubeBins::locate();
        // Fail before creating anything if a binary is missing: the message names the build.
        bins.get("etcd")?;
        bins.get("kube-apiserver")?;
        if tier != Tier::A {
            for b in ["kube-controller-manager", "kube-scheduler", "kwok"] {
                bins.get(b)?;
            }
        }
        let images = match tier {
            Tier::C => Some(tier_c::preflight(&bins)?),
            _ => None,
        };
        remove_stale_dirs();
        let dir = tempfile::Builder::new()
            .prefix(DIR_PREFIX)
            .tempdir()
            .context("creating the test bed directory")?;
        std::fs::write(dir.path().join("owner.pid"), std::process::id().to_string())
            .context("writing owner.pid")?;

        // NB: etcd on TLS with client certificates, as the local driver runs it, so tests
        // exercise the same API server flags; fsync stays off (a temp directory).
        let etcd_pki = EtcdPki::ensure(&dir.path().join("etcd-pki"))?;
        let etcd_opts = EtcdOptions {
            die_with_parent: true,
            ports: None,
            tls: Some(etcd_pki.clone()),
            unsafe_no_fsync: true,
        };
        let mut node = match tier {
            Tier::C => Some(tier_c::Node::create(dir.path())?),
            _ => None,
        };
        let etcd = Etcd::start_with(&bins, dir.path(), &etcd_opts).await?;
        let mut opts = ApiServerOptions::new(dir.path().join("apiserver"), etcd.url());
        opts.etcd_tls = Some(etcd_client_files(&etcd_pki)?);
        opts.die_with_parent = true;
        opts.service_account_admission = tier != Tier::A;
        if let Some(node) = &node {
            // NB: the node reaches the API server on the host end of its veth, and pods (in-
            // cluster clients) through the `kubernetes` Service's first address.
            let host = node.addresses().host;
            opts.bind_address = host.into();
            opts.extra_sans = vec![host.to_string(), "10.0.0.1".into()];
            let pki = Pki::generate(&opts.dir, &opts.extra_sans)?;
            opts.extra_args = vec![
                // NB: appended to the default `RBAC` (the flag is a list).
                "--authorization-mode=Node".into(),
                "--kubelet-preferred-address-types=InternalIP".into(),
                format!(
                    "--kubelet-client-certificate={}",
                    pki.admin_cert().display()
                ),
                format!("--kubelet-client-key={}", pki.admin_key().display()),
            ];
        }
        let apiserver = ApiServer::start(&bins, &opts).await?;
        let client = apiserver.client().await?;

        let mut bed = Self {
            node: None,
            helpers: vec![],
            ports: vec![],
            apiserver,
            etcd,
            client,
            started_in: Duration::ZERO,
            tier,
            bins,
            dir,
        };
        if tier != Tier::A {
            (bed.helpers, bed.ports) = tier_b::start(&bed, tier == Tier::B).await?;
        }
        if let (Some(n), Some(images)) = (node.as_mut(), images) {
            n.start(&bed, &images).await?;
        }
        bed.node = node;
        bed.started_in = started.elapsed();
        eprintln!(
            "test bed tier {tier:?} ready in {:.2}s",
            bed.started_in.as_secs_f64()
        );
        Ok(bed)
    }

    /// An admin client.
    pub fn client(&self) -> kube::Client {
        self.client.clone()
    }

    /// The admin kubeconfig file (for `kubectl --kubeconfig`).
    pub fn kubeconfig_path(&self) -> PathBuf {
        self.apiserver.kubeconfig_path()
    }

    /// The admin kubeconfig.
    pub fn kubeconfig(&self) -> Kubeconfig {
        self.apiserver
            .admin_kubeconfig()
            .expect("the test bed wrote its PKI at start")
    }

    /// The API server.
    pub fn apiserver(&self) -> &ApiServer {
        &self.apiserver
    }

    /// etcd.
    pub fn etcd(&self) -> &Etcd {
        &self.etcd
    }

    /// How long start-up took.
    pub fn started_in(&self) -> Duration {
        self.started_in
    }

    /// The tier.
    pub fn tier(&self) -> Tier {
        self.tier
    }

    /// The binaries in use.
    pub fn bins(&self) -> &KubeBins {
        &self.bins
    }

    /// The bed's temp directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Tier C's node.
    pub fn node(&self) -> Option<&tier_c::Node> {
        self.node.as_ref()
    }

    /// Process ids of every process of this bed (for leak checks).
    pub fn pids(&self) -> Vec<u32> {
        let mut pids: Vec<u32> = self.helpers.iter().map(Supervised::pid).collect();
        if let Some(node) = &self.node {
            pids.extend(node.processes());
        }
        pids.push(self.apiserver.pid());
        pids.push(self.etcd.pid());
        pids
    }
}

/// A client certificate for the bed's API server from `pki`, written beside it.
fn etcd_client_files(pki: &EtcdPki) -> anyhow::Result<EtcdClientFiles> {
    let cert = pki.client_cert("kube-apiserver")?;
    let files = EtcdClientFiles {
        ca: pki.ca_cert(),
        cert: pki.dir().join("apiserver-client.crt"),
        key: pki.dir().join("apiserver-client.key"),
    };
    std::fs::write(&files.cert, cert.cert_pem).context("writing the etcd client certificate")?;
    crate::fsutil::write_private(&files.key, cert.key_pem.as_bytes())?;
    Ok(files)
}

/// Prefix of every test bed directory under the system temp dir.
const DIR_PREFIX: &str = "vcm-testbed-";

/// Remove test bed directories whose owning test process is gone (left by a killed test run).
fn remove_stale_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let is_bed = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(DIR_PREFIX));
        if !is_bed {
            continue;
        }
        let owner = std::fs::read_to_string(path.join("owner.pid"))
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok());
        if owner.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists()) {
            tier_c::clean_stale(&path);
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

/// Wait until node `name` reports `Ready`.
pub(crate) async fn wait_node_ready(
    client: &kube::Client,
    name: &str,
    timeout: Duration,
) -> anyhow::Result<()> {
    let nodes: kube::Api<k8s_openapi::api::core::v1::Node> = kube::Api::all(client.clone());
    eventually(&format!("node {name} Ready"), timeout, || async {
        let Some(node) = nodes.get_opt(name).await? else {
            return Ok(None);
        };
        let ready = node
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        Ok(ready.then_some(()))
    })
    .await
}

/// `err` with the exit status and log tail of process `name` among `procs`, if it is one.
pub(crate) fn failure(procs: &mut [Supervised], name: &str, err: anyhow::Error) -> anyhow::Error {
    let Some(p) = procs.iter_mut().find(|p| p.name() == name) else {
        return err;
    };
    let status = p
        .exit_status()
        .map(|s| format!(" (exited: {s})"))
        .unwrap_or_default();
    anyhow::anyhow!("{err:#}\n{name}{status} log tail:\n{}", p.log_tail(30))
}

/// Poll `f` every 100 ms until it returns `Ok(Some(v))`, or fail after `timeout` with the last
/// error or `what`. (Errors are retried here: in tests, "not yet" often looks like one.)
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    crate::poll::until(what, timeout, Duration::from_millis(100), || {
        let fut = f();
        async move {
            Ok(match fut.await {
                Ok(Some(v)) => crate::poll::Poll::Ready(v),
                Ok(None) => crate::poll::Poll::Pending("condition not met".into()),
                Err(e) => crate::poll::Poll::Pending(format!("{e:#}")),
            })
        }
    })
    .await
}

/// A self-signed certificate for `127.0.0.1` and its key, written as `cert.pem` and `key.pem`
/// in `dir`: for a vcm server that speaks HTTPS on loopback (kubectl sends credentials only
/// over TLS, so gateway kubeconfigs need one). Clients trust `cert.pem` itself.
pub fn loopback_certificate(dir: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let key_pair = rcgen::KeyPair::generate().context("generating a key")?;
    let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .context("naming the certificate")?;
    let signed = params.self_signed(&key_pair).context("signing")?;
    std::fs::write(&cert, signed.pem()).context("writing the certificate")?;
    crate::fsutil::write_private(&key, key_pair.serialize_pem().as_bytes())?;
    Ok((cert, key))
}
