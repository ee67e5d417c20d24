//! Tier C: a real node. containerd (+ runc, the CNI plugins) and a kubelet and kube-proxy of
//! the pinned release run in a network and mount namespace of the bed's own; the API server
//! listens on the host end of a veth pair into it.
//!
//! Isolation, so that two beds run side by side and nothing outlives one:
//! * `unshare --net --mount` starts a holder process; every node process joins its namespaces
//!   with `nsenter`. Bridges, routes, iptables rules and pod network namespaces live in that
//!   network namespace; the kubelet's and containerd's mounts (overlay rootfs, secret tmpfs,
//!   tmpfs on `/run` and on `/var/lib/kubelet`, where the device-plugin socket's path is fixed)
//!   in that mount namespace. Both vanish once its last process is gone.
//! * Bed `n` owns veth `vcmb<n>` (10.250.n.1 on the host, 10.250.n.2 in the namespace) and the
//!   cgroup `/vcm-bed-<n>` in every hierarchy (the kubelet's `cgroupRoot`). Creating the veth
//!   claims `n`.
//! * Teardown kills every process in the cgroup and in the mount namespace (containerd's shims
//!   are not children of anything the bed started), removes the cgroups, then the holder. A
//!   bed whose test process died without teardown is cleaned by the next bed's start
//!   ([`clean_stale`]) from the `node-state` file in its directory.

mod cleanup;
mod files;
mod prereq;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use super::{TestBed, eventually, failure, wait_node_ready};
use crate::controlplane::{Kubeconfig, KubeconfigUser, Supervised, SupervisedOptions};

use self::cleanup::{cgroup_pids, hierarchies, kill_all, mntns_pids, remove_cgroups};
pub use self::cleanup::{clean_stale, existing_cgroups};
pub use self::files::{POD_CIDR, SANDBOX_IMAGE};
pub use self::prereq::{IMAGES_COMMAND, image_files, preflight};
use self::prereq::{run, which};

/// The node's name.
pub const NODE_NAME: &str = "vcm-node";
/// The test workload image: prints a line, serves `/www` (one `index.html`) on port 8080.
pub const WORKLOAD_IMAGE: &str = "vcm.local/workload:2";
const CGROUP_PREFIX: &str = "vcm-bed-";
const VETH_PREFIX: &str = "vcmb";
const READY_TIMEOUT: Duration = Duration::from_secs(90);

/// A bed's addresses and names.
#[derive(Debug, Clone)]
pub struct Addresses {
    /// The bed's number.
    pub index: u8,
    /// Host end of the veth: the API server listens here.
    pub host: std::net::Ipv4Addr,
    /// The node's address inside the namespace (NodePorts answer here, from the host too).
    pub node: std::net::Ipv4Addr,
    /// The kubelet's cgroup root, in every hierarchy.
    pub cgroup: String,
    /// Host end of the veth.
    pub veth: String,
}

/// The node half of a tier-C bed. Dropping it tears the node down (see the module doc).
pub struct Node {
    /// kube-proxy, kubelet, containerd: stopped in this order.
    procs: Vec<Supervised>,
    holder: Supervised,
    mntns: String,
    addresses: Addresses,
    dir: PathBuf,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("addresses", &self.addresses)
            .finish_non_exhaustive()
    }
}

impl Node {
    /// The namespaces and the veth; the bed's number is the first free one.
    pub fn create(dir: &Path) -> anyhow::Result<Self> {
        let opts = SupervisedOptions {
            log_path: dir.join("ns-holder.log"),
            die_with_parent: true,
            env: vec![],
        };
        let holder = Supervised::spawn(
            "ns-holder",
            Path::new("unshare"),
            &[
                "--net",
                "--mount",
                "--propagation",
                "private",
                "--",
                "sleep",
                "infinity",
            ]
            .map(String::from),
            &opts,
        )?;
        let pid = holder.pid();
        // NB: unshare has made the namespaces once its exec of sleep shows in /proc.
        let t = Instant::now();
        let mntns = loop {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            if comm.trim() == "sleep" {
                break std::fs::read_link(format!("/proc/{pid}/ns/mnt"))
                    .context("reading the bed's mount namespace")?
                    .display()
                    .to_string();
            }
            anyhow::ensure!(
                t.elapsed() < Duration::from_secs(10),
                "unshare did not start"
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        let mut addresses = None;
        for index in 1..=250u8 {
            let veth = format!("{VETH_PREFIX}{index}");
            let added = Command::new("ip")
                .args([
                    "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns",
                ])
                .arg(pid.to_string())
                .output()
                .context("running ip")?;
            if added.status.success() {
                addresses = Some(Addresses {
                    index,
                    host: std::net::Ipv4Addr::new(10, 250, index, 1),
                    node: std::net::Ipv4Addr::new(10, 250, index, 2),
                    cgroup: format!("{CGROUP_PREFIX}{index}"),
                    veth,
                });
                break;
            }
        }
        let node = Self {
            procs: vec![],
            holder,
            mntns,
            addresses: addresses.context("no free bed number: veths vcmb1..vcmb250 all exist")?,
            dir: dir.to_path_buf(),
        };
        let a = node.addresses.clone();
        std::fs::write(
            dir.join("node-state"),
            format!(
                "cgroup={}\nmntns={}\nveth={}\n",
                a.cgroup, node.mntns, a.veth
            ),
        )?;
        run(
            "ip",
            &["addr", "add", &format!("{}/30", a.host), "dev", &a.veth],
        )?;
        run("ip", &["link", "set", &a.veth, "up"])?;
        let node_addr = format!("{}/30", a.node);
        let host_addr = a.host.to_string();
        for args in [
            vec!["ip", "link", "set", "lo", "up"],
            vec!["ip", "addr", "add", &node_addr, "dev", "eth0"],
            vec!["ip", "link", "set", "eth0", "up"],
            vec!["ip", "route", "add", "default", "via", &host_addr],
            vec!["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"],
            // The node's runtime state (shim sockets, iptables lock) stays in the bed.
            vec![
                "mount",
                "-t",
                "tmpfs",
                "-o",
                "mode=0755",
                "vcm-bed-run",
                "/run",
            ],
            // NB: the kubelet's device-plugin socket is at a fixed path
            // (/var/lib/kubelet/device-plugins/kubelet.sock) whatever its --root-dir; two beds
            // starting together raced for it ("bind: address already in use").
            vec!["mkdir", "-p", "/var/lib/kubelet"],
            vec![
                "mount",
                "-t",
                "tmpfs",
                "-o",
                "mode=0755",
                "vcm-bed-kubelet",
                "/var/lib/kubelet",
            ],
        ] {
            node.run_inside(&args)?;
        }
        node.make_cgroups()?;
        Ok(node)
    }

    /// Start containerd, import the images, then the kubelet and kube-proxy, and wait for the
    /// node to be Ready and kube-proxy to have programmed the `kubernetes` Service.
    pub async fn start(&mut self, bed: &TestBed, images: &Path) -> anyhow::Result<()> {
        let dir = self.dir.clone();
        let a = self.addresses.clone();
        let pki = bed.apiserver.pki();
        std::fs::create_dir_all(dir.join("cni"))?;
        std::fs::create_dir_all(dir.join("containerd"))?;
        std::fs::write(dir.join("containerd.toml"), files::containerd(&dir))?;
        std::fs::write(dir.join("cni/10-vcm-bed.conflist"), files::cni(&dir))?;
        std::fs::write(dir.join("resolv.conf"), "# vcm test bed: no DNS\n")?;
        let kubeconfig = |cn: &str, orgs: &[&str], file: &str| -> anyhow::Result<PathBuf> {
            let path = dir.join(file);
            Kubeconfig {
                name: "bed".into(),
                server: bed.apiserver.endpoint(),
                ca_pem: pki.ca_pem()?,
                user: KubeconfigUser::ClientCert(pki.client_cert(cn, orgs)?),
                namespace: None,
            }
            .write(&path)?;
            Ok(path)
        };
        let node_kc = kubeconfig(
            &format!("system:node:{NODE_NAME}"),
            &["system:nodes"],
            "node.kubeconfig",
        )?;
        let proxy_kc = kubeconfig("system:kube-proxy", &[], "kube-proxy.kubeconfig")?;
        std::fs::write(
            dir.join("kubelet.yaml"),
            files::kubelet(&dir, &a, &pki.ca_cert()),
        )?;
        std::fs::write(
            dir.join("kube-proxy.yaml"),
            files::kube_proxy(&proxy_kc, &a, NODE_NAME),
        )?;

        let sock = dir.join("containerd/containerd.sock");
        let containerd = self.spawn_inside(
            "containerd",
            &which("containerd").context("containerd")?,
            &[format!(
                "--config={}",
                dir.join("containerd.toml").display()
            )],
        )?;
        self.procs.push(containerd);
        let t = Instant::now();
        let ctr = |args: &[&str]| {
            let mut full = vec!["-a", sock.to_str().unwrap_or_default(), "-n", "k8s.io"];
            full.extend_from_slice(args);
            run("ctr", &full)
        };
        eventually("containerd", READY_TIMEOUT, || async {
            Ok(ctr(&["version"]).ok().map(|_| ()))
        })
        .await
        .map_err(|e| self.failure("containerd", e))?;
        let files = image_files();
        for image in &files {
            let path = images.join(image);
            ctr(&[
                "images",
                "import",
                "--no-unpack=false",
                path.to_str().unwrap_or_default(),
            ])
            .with_context(|| format!("importing {}", path.display()))?;
        }
        eprintln!(
            "tier C: containerd up and {} images imported in {:.1}s",
            files.len(),
            t.elapsed().as_secs_f64()
        );

        let kubelet = self.spawn_inside(
            "kubelet",
            &bed.bins.get("kubelet")?,
            &[
                format!("--config={}", dir.join("kubelet.yaml").display()),
                format!("--kubeconfig={}", node_kc.display()),
                format!("--root-dir={}", dir.join("kubelet").display()),
                format!("--cert-dir={}", dir.join("kubelet-pki").display()),
                format!("--hostname-override={NODE_NAME}"),
                format!("--node-ip={}", a.node),
            ],
        )?;
        self.procs.insert(0, kubelet);
        let proxy = self.spawn_inside(
            "kube-proxy",
            &bed.bins.get("kube-proxy")?,
            &[format!(
                "--config={}",
                dir.join("kube-proxy.yaml").display()
            )],
        )?;
        self.procs.insert(0, proxy);

        wait_node_ready(&bed.client(), NODE_NAME, READY_TIMEOUT)
            .await
            .map_err(|e| self.failure("kubelet", e))?;
        eventually(
            "kube-proxy to program the kubernetes Service",
            READY_TIMEOUT,
            || async {
                let rules = self.run_inside(&["iptables", "-t", "nat", "-S", "KUBE-SERVICES"])?;
                Ok(rules.contains("default/kubernetes").then_some(()))
            },
        )
        .await
        .map_err(|e| self.failure("kube-proxy", e))?;
        Ok(())
    }

    /// The bed's addresses.
    pub fn addresses(&self) -> &Addresses {
        &self.addresses
    }

    /// Run a command inside the bed's namespaces and return its stdout.
    pub fn run_inside(&self, args: &[&str]) -> anyhow::Result<String> {
        let target = self.holder.pid().to_string();
        let mut full = vec!["--target", target.as_str(), "--net", "--mount", "--"];
        full.extend_from_slice(args);
        run("nsenter", &full)
    }

    /// `ctr -n k8s.io <args>` against the bed's containerd.
    pub fn ctr(&self, args: &[&str]) -> anyhow::Result<String> {
        let sock = self.dir.join("containerd/containerd.sock");
        let mut full = vec!["-a", sock.to_str().unwrap_or_default(), "-n", "k8s.io"];
        full.extend_from_slice(args);
        run("ctr", &full)
    }

    /// Process ids in the bed's cgroups (containers) and mount namespace (node processes,
    /// shims), the holder excepted.
    pub fn processes(&self) -> Vec<u32> {
        let mut pids = cgroup_pids(&self.addresses.cgroup);
        pids.extend(mntns_pids(&self.mntns));
        pids.retain(|p| *p != self.holder.pid());
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    fn spawn_inside(
        &self,
        name: &str,
        program: &Path,
        args: &[String],
    ) -> anyhow::Result<Supervised> {
        let opts = SupervisedOptions {
            log_path: self.dir.join(format!("{name}.log")),
            die_with_parent: true,
            env: vec![],
        };
        let mut full = vec![
            "--target".to_owned(),
            self.holder.pid().to_string(),
            "--net".into(),
            "--mount".into(),
            "--".into(),
            program.display().to_string(),
        ];
        full.extend(args.iter().cloned());
        Supervised::spawn(name, Path::new("nsenter"), &full, &opts)
    }

    fn failure(&mut self, name: &str, err: anyhow::Error) -> anyhow::Error {
        failure(&mut self.procs, name, err)
    }

    fn make_cgroups(&self) -> anyhow::Result<()> {
        for h in hierarchies() {
            let dir = h.join(&self.addresses.cgroup);
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            if h.ends_with("cpuset") {
                for f in ["cpuset.cpus", "cpuset.mems"] {
                    let v = std::fs::read_to_string(h.join(f))?;
                    std::fs::write(dir.join(f), v.trim())
                        .with_context(|| format!("writing {}", dir.join(f).display()))?;
                }
            }
        }
        Ok(())
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        for p in &mut self.procs {
            p.stop(Duration::from_secs(5));
        }
        // NB: the holder is alive, so the namespace is this bed's: everything in it goes.
        kill_all(
            &self.addresses.cgroup,
            &self.mntns,
            self.holder.pid(),
            &|_| true,
        );
        remove_cgroups(&self.addresses.cgroup);
        self.holder.stop(Duration::ZERO);
        // NB: the kernel frees the namespace (and with it the veth) shortly after.
        let link = Path::new("/sys/class/net").join(&self.addresses.veth);
        let t = Instant::now();
        while link.exists() && t.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
