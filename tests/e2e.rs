//! End to end: the real `vcm` binary with `--dev` (SQLite + local driver, real kube-apiserver and
//! etcd processes), driven by the real CLI, used with the real `kubectl`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use vcm::controlplane::{find_processes, free_port, kill_group};

const TOKEN: &str = "vcm_e2e00000000000000000000000000000000000000000000000000000000000e2";

/// A `vcm server --dev` process over a data directory that outlives restarts. Dropping it kills
/// the server and every process under the data directory.
struct Vcm {
    child: Option<Child>,
    addr: String,
    port: u16,
    data: PathBuf,
    _dir: tempfile::TempDir,
}

impl Vcm {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let port = free_port().unwrap();
        let mut vcm = Self {
            child: None,
            addr: format!("http://127.0.0.1:{port}"),
            port,
            data,
            _dir: dir,
        };
        vcm.spawn();
        vcm
    }

    fn spawn(&mut self) {
        let child = Command::new(env!("CARGO_BIN_EXE_vcm"))
            .args([
                "server",
                "--dev",
                "--dev-token",
                TOKEN,
                "--log-format",
                "json",
            ])
            .arg(format!("--listen=127.0.0.1:{}", self.port))
            .arg(format!("--data-dir={}", self.data.display()))
            .env("VCM_PRUNE_INTERVAL_SECS", "1")
            .env("VCM_HEALTH_CHECK_INTERVAL_SECS", "1")
            .stdout(std::process::Stdio::null())
            .stderr(self.log_file())
            .spawn()
            .expect("the vcm binary runs");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if http_status(self.port, "/readyz") == Some(200) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("vcm did not become ready");
    }

    /// A fresh log file per server start, beside the data directory (kept for debugging).
    fn log_file(&self) -> std::fs::File {
        let parent = self.data.parent().unwrap();
        let n = std::fs::read_dir(parent).map(|d| d.count()).unwrap_or(0);
        std::fs::File::create(parent.join(format!("vcm-{n}.log"))).unwrap()
    }

    fn sigkill(&mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    fn sigterm(&mut self) {
        let mut child = self.child.take().unwrap();
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        let status = child.wait().unwrap();
        assert!(status.success(), "vcm exits 0 on SIGTERM: {status}");
    }

    /// `vcm <args>` as a client of this server.
    fn cli(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_vcm"))
            .args(args)
            .env("VCM_ADDR", &self.addr)
            .env("VCM_TOKEN", TOKEN)
            .output()
            .unwrap()
    }

    fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "vcm {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn cluster(&self, id: &str) -> serde_json::Value {
        serde_json::from_str(&self.cli_ok(&["cluster", "get", id, "--output", "json"])).unwrap()
    }

    fn wait_phase(&self, id: &str, phase: &str, timeout: Duration) -> serde_json::Value {
        let deadline = Instant::now() + timeout;
        loop {
            let c = self.cluster(id);
            if c["phase"] == phase {
                return c;
            }
            assert!(
                Instant::now() < deadline,
                "cluster {id} never reached {phase}: {c}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn apiserver_pids(&self) -> Vec<u32> {
        find_processes(&self.data.display().to_string())
            .into_iter()
            .filter(|(_, argv)| argv.iter().any(|a| a.contains("kube-apiserver")))
            .map(|(p, _)| p)
            .collect()
    }
}

impl Drop for Vcm {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        for (pid, _) in find_processes(&self.data.display().to_string()) {
            kill_group(pid);
        }
    }
}

/// The status code of a plain HTTP/1.0 GET on loopback (no client library needed).
fn http_status(port: u16, path: &str) -> Option<u16> {
    use std::io::{Read as _, Write as _};
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(conn, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut head = [0u8; 12];
    conn.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

fn kubectl(kubeconfig: &Path, args: &[&str]) -> Output {
    Command::new("kubectl")
        .arg(format!("--kubeconfig={}", kubeconfig.display()))
        .args(args)
        .output()
        .expect("kubectl is installed")
}

#[test]
fn clusters_are_created_used_with_kubectl_isolated_expired_and_deleted_without_leaks() {
    // Arrange
    let vcm = Vcm::start();

    // Act: two clusters through the CLI, waiting for Ready.
    let one: serde_json::Value = serde_json::from_str(&vcm.cli_ok(&[
        "cluster", "create", "--name", "one", "--wait", "--output", "json",
    ]))
    .unwrap();
    let two: serde_json::Value = serde_json::from_str(&vcm.cli_ok(&[
        "cluster", "create", "--name", "two", "--wait", "--output", "json",
    ]))
    .unwrap();
    assert_eq!(one["phase"], "Ready");
    assert_eq!(two["phase"], "Ready");
    let secs = |v: &serde_json::Value| v.as_str().unwrap().parse::<jiff::Timestamp>().unwrap();
    let took = secs(&one["ready_at"]).duration_since(secs(&one["created_at"]));
    assert!(
        took.as_secs_f64() > 0.3,
        "ready_at must be when it became ready: {one}"
    );
    assert!(
        one["message"].as_str().unwrap().starts_with("ready in"),
        "{one}"
    );
    let short = vcm.cli_ok(&[
        "cluster", "create", "--name", "short", "--ttl", "20s", "--output", "json",
    ]);
    let short: serde_json::Value = serde_json::from_str(&short).unwrap();

    // Kubeconfigs for each, used with kubectl: a ConfigMap in one is not seen in two.
    let dir = tempfile::tempdir().unwrap();
    let (k1, k2) = (dir.path().join("one.yaml"), dir.path().join("two.yaml"));
    vcm.cli_ok(&[
        "cluster",
        "kubeconfig",
        "one",
        "--output-file",
        k1.to_str().unwrap(),
    ]);
    vcm.cli_ok(&[
        "cluster",
        "kubeconfig",
        "two",
        "--output-file",
        k2.to_str().unwrap(),
    ]);
    let yaml = std::fs::read_to_string(&k1).unwrap();
    assert!(
        yaml.contains("token:") && !yaml.contains("client-key-data"),
        "CI gets a token, never the admin certificate"
    );
    let created = kubectl(&k1, &["create", "configmap", "hello", "--from-literal=k=v"]);
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let seen = kubectl(
        &k1,
        &["get", "configmap", "hello", "-o", "jsonpath={.data.k}"],
    );
    assert_eq!(String::from_utf8_lossy(&seen.stdout), "v");
    let other = kubectl(&k2, &["get", "configmap", "hello"]);
    assert!(
        !other.status.success(),
        "cluster two must not see cluster one's ConfigMap"
    );
    assert!(
        String::from_utf8_lossy(&other.stderr).contains("NotFound"),
        "{}",
        String::from_utf8_lossy(&other.stderr)
    );

    // The 20s cluster expires on its own.
    let id = short["id"].as_str().unwrap();
    let gone = vcm.wait_phase(id, "Deleted", Duration::from_secs(90));
    assert_eq!(gone["delete_reason"], "expired");
    let events = vcm.cli_ok(&["cluster", "events", id, "--output", "json"]);
    assert!(events.contains("expired"), "{events}");

    // Delete the rest, waiting.
    vcm.cli_ok(&["cluster", "delete", "one", "two", "--wait"]);

    // Assert: no kube-apiserver of this vcm is left.
    assert_eq!(vcm.cluster(one["id"].as_str().unwrap())["phase"], "Deleted");
    assert!(
        vcm.apiserver_pids().is_empty(),
        "kube-apiserver processes left: {:?}",
        vcm.apiserver_pids()
    );
}

#[test]
fn sigkill_while_provisioning_and_while_deleting_converges_after_restart_without_leaks() {
    // Arrange
    let mut vcm = Vcm::start();
    let created = vcm.cli_ok(&["cluster", "create", "--name", "crashy", "--output", "json"]);
    let id = serde_json::from_str::<serde_json::Value>(&created).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Act 1: SIGKILL while Provisioning, restart.
    vcm.wait_phase(&id, "Provisioning", Duration::from_secs(30));
    vcm.sigkill();
    vcm.spawn();

    // Assert 1: it converges to Ready with exactly one API server.
    vcm.wait_phase(&id, "Ready", Duration::from_secs(120));
    assert_eq!(
        vcm.apiserver_pids().len(),
        1,
        "exactly one kube-apiserver after restart"
    );
    let endpoint = vcm.cluster(&id)["endpoint"].as_str().unwrap().to_owned();

    // Act 2: SIGKILL while Deleting, restart.
    vcm.cli_ok(&["cluster", "delete", "crashy"]);
    // NB: the reconciler may finish the deletion before this read (a local delete takes well
    // under a second), so either phase is right here; what matters is where it ends below.
    let phase = vcm.cluster(&id)["phase"].clone();
    assert!(
        phase == "Deleting" || phase == "Deleted",
        "a deleted cluster is Deleting or Deleted, not {phase}"
    );
    vcm.sigkill();
    vcm.spawn();

    // Assert 2: deleted, with no process, directory or port left behind.
    vcm.wait_phase(&id, "Deleted", Duration::from_secs(120));
    assert!(
        vcm.apiserver_pids().is_empty(),
        "kube-apiserver left after the crash: {:?}",
        vcm.apiserver_pids()
    );
    assert!(
        !vcm.data.join("local/clusters").join(&id).exists(),
        "cluster directory leaked"
    );
    let port: u16 = endpoint.rsplit(':').next().unwrap().parse().unwrap();
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "port {port} still served"
    );

    // A graceful stop with no live cluster leaves nothing running at all.
    vcm.sigterm();
    let left = find_processes(&vcm.data.display().to_string());
    assert!(
        left.is_empty(),
        "processes left after a graceful stop: {left:?}"
    );
}

#[test]
fn a_ready_clusters_dead_api_server_comes_back_on_its_port_and_the_issued_kubeconfig_works() {
    // Arrange
    let vcm = Vcm::start();
    let created: serde_json::Value = serde_json::from_str(&vcm.cli_ok(&[
        "cluster", "create", "--name", "phoenix", "--wait", "--output", "json",
    ]))
    .unwrap();
    let kubeconfig = vcm.data.parent().unwrap().join("phoenix.yaml");
    vcm.cli_ok(&[
        "cluster",
        "kubeconfig",
        "phoenix",
        "--output-file",
        kubeconfig.to_str().unwrap(),
    ]);
    let before = vcm.apiserver_pids();
    assert_eq!(before.len(), 1, "one cluster, one API server");

    // Act: the API server dies under the cluster.
    kill_group(before[0]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let events = loop {
        let events = vcm.cli_ok(&["cluster", "events", "phoenix", "--output", "json"]);
        if events.contains("control_plane_restarted") {
            break events;
        }
        assert!(Instant::now() < deadline, "no restart event: {events}");
        std::thread::sleep(Duration::from_millis(250));
    };
    let after = vcm.cluster("phoenix");
    let used = kubectl(&kubeconfig, &["get", "namespaces", "-o", "name"]);

    // Assert
    assert_eq!(after["phase"], "Ready", "{after}");
    assert_eq!(
        after["endpoint"], created["endpoint"],
        "same port: kubeconfigs keep working"
    );
    assert!(events.contains("restarted on port"), "{events}");
    assert!(
        used.status.success(),
        "the kubeconfig issued before the crash works: {}",
        String::from_utf8_lossy(&used.stderr)
    );
    assert_ne!(vcm.apiserver_pids(), before, "a new process serves it");
}
