//! Starting the real `vcm` binary: what `--dev` means, a production server that could never be
//! administered refuses to start and says how to make the first admin token, and the offline
//! bootstrap that makes it. Also what sizes mean to the local driver's real API servers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use vcm::controlplane::{find_processes, free_port, kill_group};

fn vcm(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vcm"));
    cmd.args(args)
        .env_remove("VCM_TOKEN")
        .env_remove("VCM_CONFIG");
    cmd
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn get(port: u16, path: &str, token: &str) -> Option<u16> {
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-H"])
        .arg(format!("Authorization: Bearer {token}"))
        .arg(format!("http://127.0.0.1:{port}{path}"))
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).parse().ok()
}

/// A running server; dropping it kills it and whatever it started under `data`.
struct Running {
    child: std::process::Child,
    data: std::path::PathBuf,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for (pid, _) in find_processes(&self.data.display().to_string()) {
            kill_group(pid);
        }
    }
}

fn start(args: &[&str], data: &Path, port: u16) -> Running {
    let child = vcm(args)
        .arg(format!("--listen=127.0.0.1:{port}"))
        .arg(format!("--data-dir={}", data.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let running = Running {
        child,
        data: data.to_path_buf(),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while get(port, "/readyz", "") != Some(200) {
        assert!(Instant::now() < deadline, "vcm did not become ready");
        std::thread::sleep(Duration::from_millis(100));
    }
    running
}

#[test]
fn a_server_without_an_admin_credential_refuses_to_start_and_names_the_bootstrap_command() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_port().unwrap();

    // Act
    let refused = vcm(&["server"])
        .arg(format!("--listen=127.0.0.1:{port}"))
        .arg(format!("--data-dir={}", data.display()))
        .output()
        .unwrap();
    let bootstrap = vcm(&[
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
    let token: serde_json::Value = serde_json::from_slice(&bootstrap.stdout).unwrap_or_default();
    let token = token["secret"].as_str().unwrap_or_default().to_owned();
    let server = start(&["server"], &data, port);
    let with_token = get(port, "/v1/clusters", &token);
    let without = get(port, "/v1/clusters", "vcm_nope");
    drop(server);

    // Assert
    let msg = text(&refused);
    assert!(!refused.status.success(), "{msg}");
    assert!(
        msg.contains("no admin credential") && msg.contains("vcm token create --bootstrap"),
        "the refusal says how to make the first admin token: {msg}"
    );
    assert!(bootstrap.status.success(), "{}", text(&bootstrap));
    assert!(token.starts_with("vcm_"), "{}", text(&bootstrap));
    assert_eq!(with_token, Some(200), "the bootstrapped token is an admin");
    assert_eq!(without, Some(401));
}

#[test]
fn dev_mode_is_sqlite_and_the_local_driver_whatever_the_config_file_says() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("vcm.toml");
    std::fs::write(
        &config,
        "driver = \"vcluster\"\nstore_url = \"sqlite:///nonexistent/dir/x.db\"\n\
         [[hosts]]\nname = \"eks\"\nkubeconfig = \"/nonexistent\"\n",
    )
    .unwrap();
    let port = free_port().unwrap();

    // Act
    let server = start(
        &["server", "--dev", "--config", config.to_str().unwrap()],
        &data,
        port,
    );
    let token = std::fs::read_to_string(data.join("dev-token")).unwrap();
    let hosts = Command::new("curl")
        .args(["-s", "-H"])
        .arg(format!("Authorization: Bearer {}", token.trim()))
        .arg(format!("http://127.0.0.1:{port}/v1/hosts"))
        .output()
        .unwrap();
    drop(server);

    // Assert
    let hosts: serde_json::Value = serde_json::from_slice(&hosts.stdout).unwrap();
    assert_eq!(hosts["items"][0]["name"], "local", "{hosts}");
    assert!(
        data.join("vcm.db").exists(),
        "the store is SQLite in the data directory"
    );
}

#[test]
fn an_unknown_default_size_or_a_size_the_driver_cannot_make_stops_the_server_at_start() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("vcm.toml");
    std::fs::write(
        &config,
        "[clusters.sizes.xl.vcluster]\ncpu_request = \"1\"\nmemory_request = \"1Gi\"\n\
         memory_limit = \"2Gi\"\n[clusters]\ndefault_size = \"xl\"\n",
    )
    .unwrap();

    // Act
    let out = vcm(&["server", "--dev", "--config", config.to_str().unwrap()])
        .arg(format!("--data-dir={}", dir.path().join("data").display()))
        .arg("--listen=127.0.0.1:0")
        .output()
        .unwrap();

    // Assert
    let msg = text(&out);
    assert!(!out.status.success(), "{msg}");
    assert!(msg.contains("[clusters.sizes.xl.local]"), "{msg}");
}

#[test]
fn the_configured_sizes_are_exactly_what_create_accepts() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("vcm.toml");
    std::fs::write(
        &config,
        "[clusters]\ndefault_size = \"ci\"\n[clusters.sizes.ci.local]\n\
         max_requests_inflight = 50\nmax_mutating_requests_inflight = 20\nmemory_limit_mib = 256\n",
    )
    .unwrap();
    let port = free_port().unwrap();
    let server = start(
        &["server", "--dev", "--config", config.to_str().unwrap()],
        &data,
        port,
    );
    let token = std::fs::read_to_string(data.join("dev-token")).unwrap();
    let post = |body: &str| {
        let out = Command::new("curl")
            .args(["-s", "-w", "\n%{http_code}", "-H"])
            .arg(format!("Authorization: Bearer {}", token.trim()))
            .args(["-H", "Content-Type: application/json", "-d", body])
            .arg(format!("http://127.0.0.1:{port}/v1/clusters"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };

    // Act
    let builtin = post(r#"{"size":"small"}"#);
    let configured = post(r#"{"size":"ci","ttl":"5m"}"#);
    drop(server);

    // Assert
    assert!(builtin.ends_with("422"), "{builtin}");
    assert!(
        builtin.contains("unknown size") && builtin.contains("choose one of ci"),
        "the 422 lists the valid sizes: {builtin}"
    );
    assert!(configured.ends_with("202"), "{configured}");
}

#[test]
fn a_server_whose_configuration_maps_an_oidc_identity_to_admin_starts_without_an_admin_token() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("vcm.toml");
    std::fs::write(
        &config,
        "[[auth.oidc]]\nname = \"gh\"\nissuer = \"http://127.0.0.1:9\"\naudience = \"vcm\"\n\
         [[auth.oidc.rules]]\nclaims = { repository_owner = \"acme\" }\nrole = \"admin\"\n",
    )
    .unwrap();
    let port = free_port().unwrap();

    // Act
    let server = start(
        &["server", "--config", config.to_str().unwrap()],
        &data,
        port,
    );
    let healthz = get(port, "/healthz", "");
    drop(server);

    // Assert
    assert_eq!(
        healthz,
        Some(200),
        "an admin can sign in through the OIDC rule"
    );
}
