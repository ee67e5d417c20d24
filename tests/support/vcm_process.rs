//! A `vcm server --dev` process (the real binary) driven by the real CLI, for end-to-end tests
//! (included with `#[path]`); [`Vcm::start_on_store`] runs a production `vcm server` instead.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use vcm::controlplane::{find_processes, free_port, kill_group};

pub const TOKEN: &str = "vcm_e2e00000000000000000000000000000000000000000000000000000000000e2";

/// A `vcm server --dev` process over a data directory that outlives restarts. Dropping it kills
/// the server and every process under the data directory.
pub struct Vcm {
    child: Option<Child>,
    env: Vec<(String, String)>,
    /// `--dev` ([`TOKEN`] is its admin token), or a production server ([`Vcm::start_on_store`]).
    dev: bool,
    /// The admin token the CLI uses.
    pub token: String,
    /// The self-signed certificate it serves HTTPS with ([`Vcm::start_tls`]).
    pub cacert: Option<PathBuf>,
    pub addr: String,
    pub port: u16,
    pub data: PathBuf,
    _dir: tempfile::TempDir,
}

impl Vcm {
    pub fn start() -> Self {
        Self::start_with_env(&[])
    }

    /// A server with these extra `VCM_*` variables (configuration).
    pub fn start_with_env(env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let port = free_port().unwrap();
        let mut vcm = Self {
            child: None,
            dev: true,
            token: TOKEN.to_owned(),
            cacert: None,
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            addr: format!("http://127.0.0.1:{port}"),
            port,
            data,
            _dir: dir,
        };
        vcm.spawn();
        vcm
    }

    /// A server that speaks HTTPS with a self-signed certificate for 127.0.0.1 (kubectl sends
    /// credentials only over TLS, so gateway kubeconfigs need it); the CLI trusts it.
    pub fn start_tls() -> Self {
        Self::start_tls_with_env(&[])
    }

    /// [`Vcm::start_tls`] with these extra `VCM_*` variables (configuration).
    pub fn start_tls_with_env(env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let (cert, key) = vcm::testing::loopback_certificate(dir.path()).unwrap();
        let port = free_port().unwrap();
        let mut vcm = Self {
            child: None,
            dev: true,
            token: TOKEN.to_owned(),
            env: [
                ("VCM_TLS__CERT_FILE", cert.display().to_string()),
                ("VCM_TLS__KEY_FILE", key.display().to_string()),
            ]
            .into_iter()
            .chain(env.iter().map(|(k, v)| (*k, (*v).to_owned())))
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
            cacert: Some(cert),
            addr: format!("https://127.0.0.1:{port}"),
            port,
            data,
            _dir: dir,
        };
        vcm.spawn();
        vcm
    }

    /// A production server (`vcm server`, not `--dev`, so the store is the one `store_url`
    /// names; the local driver, the default) over plain HTTP on loopback, with these `VCM_*`
    /// variables. Its first admin token is made offline, as an operator would:
    /// `vcm token create --bootstrap` against the same store and data directory.
    pub fn start_on_store(store_url: &str, env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let port = free_port().unwrap();
        let env: Vec<(String, String)> = [("VCM_STORE_URL", store_url)]
            .iter()
            .chain(env)
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let bootstrap = Command::new(env!("CARGO_BIN_EXE_vcm"))
            .args(["token", "create", "--bootstrap", "--name", "admin"])
            .args(["--output", "json"])
            .arg(format!("--data-dir={}", data.display()))
            .env_remove("VCM_TOKEN")
            .env_remove("VCM_CONFIG")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .output()
            .expect("the vcm binary runs");
        assert!(
            bootstrap.status.success(),
            "vcm token create --bootstrap: {}",
            text(&bootstrap)
        );
        let created: serde_json::Value = serde_json::from_slice(&bootstrap.stdout).unwrap();
        let token = created["secret"].as_str().unwrap().to_owned();
        assert!(token.starts_with("vcm_"), "{created}");
        let mut vcm = Self {
            child: None,
            env,
            dev: false,
            token,
            cacert: None,
            addr: format!("http://127.0.0.1:{port}"),
            port,
            data,
            _dir: dir,
        };
        vcm.spawn();
        vcm
    }

    pub fn spawn(&mut self) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_vcm"));
        cmd.arg("server");
        if self.dev {
            cmd.args(["--dev", "--dev-token", TOKEN]);
        }
        let child = cmd
            .args(["--log-format", "json"])
            .arg(format!("--listen=127.0.0.1:{}", self.port))
            .arg(format!("--data-dir={}", self.data.display()))
            .env("VCM_PRUNE_INTERVAL_SECS", "1")
            .env("VCM_HEALTH_CHECK_INTERVAL_SECS", "1")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(std::process::Stdio::null())
            .stderr(self.log_file())
            .spawn()
            .expect("the vcm binary runs");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let ready = match self.cacert {
                None => http_status(self.port, "/readyz") == Some(200),
                Some(_) => self.cli(&["cluster", "list"]).status.success(),
            };
            if ready {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("vcm did not become ready");
    }

    /// A fresh log file per server start, beside the data directory (kept for debugging).
    pub fn log_file(&self) -> std::fs::File {
        let parent = self.data.parent().unwrap();
        let n = std::fs::read_dir(parent).map(|d| d.count()).unwrap_or(0);
        std::fs::File::create(parent.join(format!("vcm-{n}.log"))).unwrap()
    }

    pub fn sigkill(&mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    pub fn sigterm(&mut self) {
        let mut child = self.child.take().unwrap();
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        let status = child.wait().unwrap();
        assert!(status.success(), "vcm exits 0 on SIGTERM: {status}");
    }

    /// `vcm <args>` as a client of this server (its admin token).
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_as(&self.token, args)
    }

    /// `vcm <args>` as a client of this server, with `token`.
    pub fn cli_as(&self, token: &str, args: &[&str]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_vcm"));
        cmd.args(args)
            .env("VCM_ADDR", &self.addr)
            .env("VCM_TOKEN", token);
        if let Some(cacert) = &self.cacert {
            cmd.env("VCM_CACERT", cacert);
        }
        cmd.output().unwrap()
    }

    pub fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "vcm {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn cluster(&self, id: &str) -> serde_json::Value {
        serde_json::from_str(&self.cli_ok(&["cluster", "get", id, "--output", "json"])).unwrap()
    }

    pub fn wait_phase(&self, id: &str, phase: &str, timeout: Duration) -> serde_json::Value {
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

    pub fn apiserver_pids(&self) -> Vec<u32> {
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

/// A command's stdout and stderr together, for assertions and their messages.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The path of a shipped example policy file (`deploy/policies/<name>`).
pub fn shipped(name: &str) -> String {
    format!("{}/deploy/policies/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// The status code of a plain HTTP/1.0 GET on loopback (no client library needed).
pub fn http_status(port: u16, path: &str) -> Option<u16> {
    use std::io::{Read as _, Write as _};
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(conn, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut head = [0u8; 12];
    conn.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// A plain HTTP/1.0 GET on loopback with a bearer token: status, header block (lower-cased
/// names) and body. `None` if the server does not answer within 10 s.
pub fn http_get(port: u16, path: &str, token: &str) -> Option<(u16, String, String)> {
    use std::io::{Read as _, Write as _};
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        conn,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n"
    )
    .ok()?;
    let mut raw = String::new();
    conn.read_to_string(&mut raw).ok()?;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    let status = head.get(9..12)?.parse().ok()?;
    Some((status, head.to_ascii_lowercase(), body.to_owned()))
}

pub fn kubectl(kubeconfig: &Path, args: &[&str]) -> Output {
    Command::new("kubectl")
        .arg(format!("--kubeconfig={}", kubeconfig.display()))
        .args(args)
        .output()
        .expect("kubectl is installed")
}
