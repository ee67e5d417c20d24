//! The web dashboard at `/ui` in a real browser: Playwright drives Debian's Chromium
//! (`tests/ui/dashboard.cjs`) against the real `vcm` binary on the local driver (real
//! kube-apiserver and etcd). An admin signs in, creates a cluster and sees it turn Ready, reads
//! its events and usage, downloads its kubeconfig (which the real kubectl then uses), sees the
//! hosts and the audit log, and deletes it; a viewer sees its team's cluster with no button
//! to change it, and the server refuses what the page does not offer. Screenshots of each page
//! are kept in `target/ui-artifacts/`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

#[path = "support/vcm_process.rs"]
mod vcm_process;

use vcm_process::{Vcm, text};

const CHROMIUM: &str = "/usr/bin/chromium";

/// playwright-core from `scripts/ui-tools.sh`, and the browser it drives.
fn tools() -> (PathBuf, PathBuf) {
    let modules = Path::new(env!("CARGO_MANIFEST_DIR")).join(".cache/ui-tools/node_modules");
    assert!(
        modules.join("playwright-core").is_dir(),
        "playwright-core is not in {}: run scripts/ui-tools.sh (`make test` does)",
        modules.display()
    );
    let chromium = std::env::var_os("VCM_CHROMIUM").map_or_else(|| CHROMIUM.into(), PathBuf::from);
    assert!(
        chromium.exists(),
        "no Chromium at {}: apt-get install chromium (scripts/ui-tools.sh does)",
        chromium.display()
    );
    (modules, chromium)
}

fn secret(vcm: &Vcm, args: &[&str]) -> String {
    let mut all = vec!["token", "create", "--output", "json"];
    all.extend_from_slice(args);
    let out: serde_json::Value = serde_json::from_str(&vcm.cli_ok(&all)).unwrap();
    out["secret"].as_str().unwrap().to_owned()
}

#[test]
fn an_admin_and_a_viewer_use_the_dashboard_in_a_real_browser() {
    let (modules, chromium) = tools();
    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/ui-artifacts");
    let _ = std::fs::remove_dir_all(&artifacts);
    std::fs::create_dir_all(&artifacts).unwrap();

    let vcm = Vcm::start();
    let developer = secret(
        &vcm,
        &["--name", "qa-dev", "--role", "developer", "--team", "qa"],
    );
    let viewer = secret(
        &vcm,
        &["--name", "qa-viewer", "--role", "viewer", "--team", "qa"],
    );
    // The viewer's team's cluster, made through the CLI while the browser starts.
    let out = vcm.cli_as(
        &developer,
        &["cluster", "create", "--name", "ui-team", "--output", "json"],
    );
    assert!(out.status.success(), "{}", text(&out));
    let team: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let team_id = team["id"].as_str().unwrap().to_owned();
    vcm.wait_phase(&team_id, "Ready", Duration::from_secs(180));

    let started = Instant::now();
    let out = Command::new("node")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui/dashboard.cjs"))
        .env("VCM_URL", &vcm.addr)
        .env("VCM_ADMIN_TOKEN", vcm_process::TOKEN)
        .env("VCM_VIEWER_TOKEN", &viewer)
        .env("VCM_TEAM_CLUSTER", "ui-team")
        .env("VCM_ARTIFACTS", &artifacts)
        .env("VCM_UI_TOOLS", &modules)
        .env("VCM_CHROMIUM", &chromium)
        .output()
        .expect("node runs (apt-get install nodejs)");
    let took = started.elapsed();
    let log = text(&out);
    std::fs::write(artifacts.join("dashboard.log"), &log).unwrap();
    println!("{log}");
    assert!(
        out.status.success(),
        "the browser test failed (screenshots in {}):\n{log}",
        artifacts.display()
    );
    println!("browser test: {:.1} s", took.as_secs_f64());

    // What the browser did, seen from the server.
    let gone = vcm.cli_ok(&["cluster", "list", "--output", "json"]);
    let list: serde_json::Value = serde_json::from_str(&gone).unwrap();
    let mine: Vec<_> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["name"] == "ui-e2e")
        .collect();
    assert_eq!(mine.len(), 1, "{gone}");
    assert_eq!(mine[0]["phase"], "Deleted", "{gone}");
    assert_eq!(
        vcm.cluster(&team_id)["phase"],
        "Ready",
        "the viewer's refused delete changed nothing"
    );
    for page in [
        "01-sign-in-refused",
        "03-clusters-ready",
        "04-cluster",
        "05-hosts",
        "06-audit",
        "07-viewer-cluster",
        "08-viewer-denied",
        "09-deleted",
    ] {
        let shot = artifacts.join(format!("{page}.png"));
        let len = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
        assert!(len > 1000, "no screenshot {}", shot.display());
    }
    vcm.cli_ok(&["cluster", "delete", &team_id, "--wait"]);
}

#[test]
fn the_dashboard_is_served_with_its_security_headers_and_needs_no_token() {
    let vcm = Vcm::start();
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", vcm.port)).unwrap();
    use std::io::{Read as _, Write as _};
    write!(conn, "GET /ui/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut raw = String::new();
    conn.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let head = head.to_ascii_lowercase();
    assert!(head.starts_with("http/1.0 200"), "{head}");
    for header in [
        "content-security-policy: default-src 'none'; script-src 'self'",
        "x-content-type-options: nosniff",
        "x-frame-options: deny",
        "referrer-policy: no-referrer",
    ] {
        assert!(head.contains(header), "{header} missing: {head}");
    }
    assert!(body.contains("/ui/app.js"), "{body}");
    // The page is public; what it shows is not.
    assert_eq!(
        vcm_process::http_status(vcm.port, "/v1/clusters"),
        Some(401)
    );
}
