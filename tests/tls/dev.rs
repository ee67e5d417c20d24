//! `vcm server --dev` on a non-loopback address: the real binary makes a self-signed
//! certificate, logs where it is, and serves HTTPS with it. Traffic stays on this machine
//! (the wildcard address is reached through 127.0.0.1, which the certificate names).

use std::{
    os::unix::fs::PermissionsExt as _,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use reqwest::StatusCode;
use vcm::controlplane::{find_processes, free_port, kill_group};

use super::TOKEN;

/// The dev server; dropping it kills it and whatever it started under its data directory.
struct Running {
    child: Child,
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

#[tokio::test]
async fn a_dev_server_on_a_non_loopback_address_serves_https_with_a_generated_certificate() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log = dir.path().join("server.log");
    let port = free_port().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_vcm"))
        .args(["server", "--dev", "--dev-token", TOKEN])
        .arg(format!("--listen=0.0.0.0:{port}"))
        .arg(format!("--data-dir={}", data.display()))
        .env_remove("VCM_CONFIG")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let _running = Running {
        child,
        data: data.clone(),
    };
    let cert_file = data.join(vcm::tls::dev::DEV_CERT_FILE);
    let key_file = data.join(vcm::tls::dev::DEV_KEY_FILE);

    // Act
    let deadline = Instant::now() + Duration::from_secs(30);
    let ready = loop {
        assert!(
            Instant::now() < deadline,
            "the dev server did not serve HTTPS: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        if let Ok(pem) = std::fs::read(&cert_file) {
            let client = reqwest::Client::builder()
                .tls_certs_only([reqwest::Certificate::from_pem(&pem).unwrap()])
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap();
            if let Ok(r) = client
                .get(format!("https://127.0.0.1:{port}/readyz"))
                .send()
                .await
            {
                break r.status();
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/readyz"))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    let cli = tokio::process::Command::new(env!("CARGO_BIN_EXE_vcm"))
        .args(["cluster", "list", "--output", "json"])
        .env("VCM_ADDR", format!("https://127.0.0.1:{port}"))
        .env("VCM_TOKEN", TOKEN)
        .env("VCM_CACERT", &cert_file)
        .output()
        .await
        .unwrap();

    // Assert
    assert_eq!(ready, StatusCode::OK);
    assert_eq!(
        plain.map(|r| r.status()).ok(),
        Some(StatusCode::BAD_REQUEST),
        "no plain HTTP off loopback: a plain request is told to use https"
    );
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the key is the owner's only");
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains(&cert_file.display().to_string()),
        "the log names the certificate for clients to trust: {logged}"
    );
    assert!(
        cli.status.success(),
        "the CLI trusts the dev certificate through VCM_CACERT: {}",
        String::from_utf8_lossy(&cli.stderr)
    );
}
