//! A `vcm server --config` process with the vcluster driver and a tier-C test bed as its one
//! host, and the real CLI against it (included with `#[path]` by tests and benchmarks).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use vcm::controlplane::{KubeBins, find_processes, free_port, kill_group};
use vcm::testing::TestBed;

/// Chart values for a host without a registry: every image is one `scripts/node-images.sh`
/// built, imported into the node's containerd.
pub const HOST_VALUES: &str = r#"
controlPlane:
  distro:
    k8s:
      image: {registry: vcm.local, repository: vcluster-k8s}
      imagePullPolicy: Never
  statefulSet:
    image: {registry: vcm.local, repository: vcluster, tag: "0.36.1"}
    imagePullPolicy: Never
  coredns:
    deployment:
      image: vcm.local/coredns:1.14.2
"#;

/// A `vcm server --config` (not `--dev`: that forces the local driver) with a bootstrapped
/// admin token, serving HTTPS with a self-signed certificate (so its kubeconfigs point at its
/// gateway). Dropping it kills the server.
pub struct Server {
    child: Child,
    pub addr: String,
    token: String,
    data: PathBuf,
    /// The certificate it serves, which its clients trust.
    pub cacert: PathBuf,
}

impl Server {
    pub fn start(dir: &Path, config: &Path) -> Self {
        let data = dir.join("data");
        let boot = vcm_cmd(&[
            "token",
            "create",
            "--bootstrap",
            "--name",
            "root",
            "-o",
            "json",
        ])
        .arg(format!("--data-dir={}", data.display()))
        .output()
        .unwrap();
        assert!(boot.status.success(), "bootstrap: {}", text(&boot));
        let token: serde_json::Value = serde_json::from_slice(&boot.stdout).unwrap();
        let port = free_port().unwrap();
        let (cacert, key) = vcm::testing::loopback_certificate(dir).unwrap();
        let child = vcm_cmd(&["server", "--config", config.to_str().unwrap()])
            .arg(format!("--listen=127.0.0.1:{port}"))
            .arg(format!("--data-dir={}", data.display()))
            .env("VCM_TLS__CERT_FILE", &cacert)
            .env("VCM_TLS__KEY_FILE", &key)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("vcm.log")).unwrap())
            .spawn()
            .unwrap();
        let server = Self {
            child,
            addr: format!("https://127.0.0.1:{port}"),
            token: token["secret"].as_str().unwrap().to_owned(),
            data,
            cacert,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !server.cli(&["cluster", "list"]).status.success() {
            assert!(
                Instant::now() < deadline,
                "vcm did not start:\n{}",
                std::fs::read_to_string(dir.join("vcm.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        server
    }

    pub fn cli(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// The CLI with `args`, pointed at this server with its admin token.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = vcm_cmd(args);
        cmd.env("VCM_ADDR", &self.addr)
            .env("VCM_TOKEN", &self.token)
            .env("VCM_CACERT", &self.cacert);
        cmd
    }

    /// `vcm cluster create --name <name> --host bed --wait` (5 min at most), as JSON.
    pub fn create_ready(&self, name: &str) -> serde_json::Value {
        let out = self.create_command(name, "bed").output().unwrap();
        assert!(
            out.status.success(),
            "vcm cluster create failed: {}",
            text(&out)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// The command `vcm cluster create --name <name> --host <host> --wait --output json` (5 min
    /// at most), to run in the background.
    pub fn create_command(&self, name: &str, host: &str) -> Command {
        let mut cmd = self.command(&[
            "cluster",
            "create",
            "--name",
            name,
            "--host",
            host,
            "--wait",
            "--timeout",
            "5m",
            "--output",
            "json",
        ]);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd
    }

    pub fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(out.status.success(), "vcm {args:?} failed: {}", text(&out));
        String::from_utf8(out.stdout).unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for (pid, _) in find_processes(&self.data.display().to_string()) {
            kill_group(pid);
        }
    }
}

pub fn vcm_cmd(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vcm"));
    cmd.args(args)
        .env_remove("VCM_TOKEN")
        .env_remove("VCM_CONFIG");
    cmd
}

pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// vcm's configuration for the bed as its host, twice: `bed`, reached by address (a node port
/// of the node), and `bed-tunnel`, reached only through the bed's API server (`api_access =
/// "tunnel"`, with the default `.svc` address, which does not resolve on this machine).
pub fn write_config(dir: &Path, bed: &TestBed) -> PathBuf {
    write_config_with(dir, bed, "", true)
}

/// vcm's configuration for the bed as host `bed` (reached by address), with `bed_extra` (TOML
/// lines) added to that host's entry, and host `bed-tunnel` too when `tunnel`.
pub fn write_config_with(dir: &Path, bed: &TestBed, bed_extra: &str, tunnel: bool) -> PathBuf {
    let bins = KubeBins::locate();
    let cli = bins.get("vclusterctl").unwrap();
    let bin_dir = bins.dir_of("vclusterctl").unwrap();
    let values = dir.join("host-values.yaml");
    std::fs::write(&values, HOST_VALUES).unwrap();
    let node = bed.node().unwrap().addresses().node;
    let config = dir.join("vcm.toml");
    std::fs::write(
        &config,
        format!(
            r#"driver = "vcluster"

[vcluster]
cli = "{cli}"
helm_dir = "{bin_dir}"
chart_dir = "{bin_dir}/vcluster-chart"
cli_timeout_secs = 120
ready_timeout_secs = 300
orphan_grace_secs = 300
kubernetes_versions = {{ "1.36" = "v1.36.3" }}

[[hosts]]
name = "bed"
kubeconfig = "{kubeconfig}"
server_template = "https://{node}:{{node_port}}"
values_file = "{values}"
{bed_extra}
{tunnel}"#,
            cli = cli.display(),
            bin_dir = bin_dir.display(),
            kubeconfig = bed.kubeconfig_path().display(),
            values = values.display(),
            tunnel = if tunnel {
                format!(
                    "[[hosts]]\nname = \"bed-tunnel\"\nkubeconfig = \"{}\"\n\
                     api_access = \"tunnel\"\nvalues_file = \"{}\"\n",
                    bed.kubeconfig_path().display(),
                    values.display()
                )
            } else {
                String::new()
            },
        ),
    )
    .unwrap();
    config
}
