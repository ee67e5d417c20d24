//! Tokens through the real `vcm` binary against a real `vcm server --dev`: an admin issues a
//! `ci` and a `developer` token with `vcm token create`, each can do what its role allows and
//! no more, a revoked token stops working on its next request, token files must be private,
//! and no secret ever reaches the server's log or its database file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use vcm::controlplane::{find_processes, free_port, kill_group};

/// A running `vcm server --dev`, its log going to a file; dropping it kills it.
struct Server {
    child: std::process::Child,
    data: PathBuf,
    log: PathBuf,
    addr: String,
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

fn start(dir: &Path, extra: &[&str]) -> Result<Server, String> {
    let port = free_port().unwrap();
    let data = dir.join("data");
    let log = dir.join("server.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_vcm"))
        .args(["server", "--dev"])
        .args(extra)
        .arg(format!("--listen=127.0.0.1:{port}"))
        .arg(format!("--data-dir={}", data.display()))
        .env_remove("VCM_TOKEN")
        .env_remove("VCM_CONFIG")
        .stdout(std::fs::File::create(dir.join("server.out")).unwrap())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let addr = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "server exited {status}: {}",
                std::fs::read_to_string(&log).unwrap()
            ));
        }
        let ready = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
            .arg(format!("{addr}/readyz"))
            .output()
            .is_ok_and(|o| o.stdout == b"200");
        if ready {
            break;
        }
        assert!(Instant::now() < deadline, "vcm did not become ready");
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(Server {
        child,
        data,
        log,
        addr,
    })
}

/// The admin token the dev server keeps in its data directory.
fn admin_token(server: &Server) -> String {
    std::fs::read_to_string(server.data.join("dev-token"))
        .unwrap()
        .trim()
        .to_owned()
}

/// `vcm <args>` against `server` with `token` in VCM_TOKEN.
fn vcm(server: &Server, token: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vcm"));
    cmd.args(args)
        .env("VCM_ADDR", &server.addr)
        .env_remove("VCM_TOKEN")
        .env_remove("VCM_TOKEN_FILE")
        .env_remove("VCM_CONFIG")
        .stdin(Stdio::null());
    if let Some(t) = token {
        cmd.env("VCM_TOKEN", t);
    }
    cmd.output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(out)))
}

#[test]
fn an_admin_issues_ci_and_developer_tokens_that_do_exactly_their_role_and_no_secret_is_kept() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &[]).unwrap();
    let admin = admin_token(&server);

    // Act
    let ci = vcm(
        &server,
        Some(&admin),
        &[
            "token", "create", "--name", "pipeline", "--role", "ci", "--team", "web", "-o", "json",
        ],
    );
    let ci = json(&ci);
    let ci_secret = ci["secret"].as_str().unwrap().to_owned();
    let dev = vcm(
        &server,
        Some(&admin),
        &[
            "token",
            "create",
            "--name",
            "alice",
            "--role",
            "developer",
            "--team",
            "web",
            "--ttl",
            "30d",
        ],
    );
    let dev_secret = String::from_utf8_lossy(&dev.stdout).trim().to_owned();
    let ci_lists_tokens = vcm(&server, Some(&ci_secret), &["token", "list"]);
    let ci_whoami = vcm(&server, Some(&ci_secret), &["whoami"]);
    let dev_lists_clusters = vcm(
        &server,
        Some(&dev_secret),
        &["cluster", "list", "-o", "json"],
    );
    let listed = vcm(&server, Some(&admin), &["token", "list", "-o", "json"]);
    let table = vcm(&server, Some(&admin), &["token", "list"]);
    let ci_id = ci["token"]["id"].as_str().unwrap();
    let revoked = vcm(&server, Some(&admin), &["token", "revoke", ci_id]);
    let after = vcm(&server, Some(&ci_secret), &["cluster", "list"]);
    let log_path = server.log.clone();
    let db_path = server.data.join("vcm.db");
    drop(server);

    // Assert
    assert!(ci_secret.starts_with("vcm_"), "{ci}");
    assert_eq!(ci["token"]["role"], "ci");
    assert_eq!(ci["token"]["team"], "web");
    assert!(
        dev.status.success() && dev_secret.starts_with("vcm_"),
        "{}",
        text(&dev)
    );
    assert!(
        String::from_utf8_lossy(&dev.stderr).contains("shown once"),
        "{}",
        text(&dev)
    );
    assert_eq!(
        String::from_utf8_lossy(&ci_whoami.stdout).trim(),
        format!(
            "pipeline (token:{}), role ci, team web",
            ci["token"]["id"].as_str().unwrap()
        )
    );
    assert!(!ci_lists_tokens.status.success());
    assert!(
        text(&ci_lists_tokens).contains("only an admin may list tokens"),
        "{}",
        text(&ci_lists_tokens)
    );
    assert!(
        dev_lists_clusters.status.success(),
        "{}",
        text(&dev_lists_clusters)
    );
    let listed_text = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert_eq!(
        json(&listed)["items"].as_array().unwrap().len(),
        3,
        "{listed_text}"
    );
    assert!(
        text(&table).contains("pipeline") && text(&table).contains("alice"),
        "{}",
        text(&table)
    );
    assert!(revoked.status.success(), "{}", text(&revoked));
    assert!(!after.status.success());
    assert!(text(&after).contains("revoked"), "{}", text(&after));
    let log = std::fs::read(&log_path).unwrap();
    let db = std::fs::read(&db_path).unwrap();
    for secret in [&admin, &ci_secret, &dev_secret] {
        let hex = &secret.as_bytes()[4..];
        assert!(
            !listed_text.contains(secret.as_str()),
            "a list shows no secret"
        );
        assert!(
            !log.windows(hex.len()).any(|w| w == hex),
            "a secret is in the server log"
        );
        assert!(
            !db.windows(hex.len()).any(|w| w == hex),
            "a secret is in the database file"
        );
    }
}

#[test]
fn token_files_must_be_private_and_tokens_never_go_in_clear_text_to_another_machine() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();
    let shared = dir.path().join("shared-token");
    std::fs::write(&shared, "vcm_".to_owned() + &"ab".repeat(32)).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o644)).unwrap();
    let refused = start(dir.path(), &["--dev-token-file", shared.to_str().unwrap()]);
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o600)).unwrap();
    let server = start(dir.path(), &["--dev-token-file", shared.to_str().unwrap()]).unwrap();
    let own = dir.path().join("own-token");
    std::fs::copy(&shared, &own).unwrap();
    std::fs::set_permissions(&own, std::fs::Permissions::from_mode(0o640)).unwrap();

    // Act
    let wide = vcm(
        &server,
        None,
        &["cluster", "list", "--token-file", own.to_str().unwrap()],
    );
    std::fs::set_permissions(&own, std::fs::Permissions::from_mode(0o600)).unwrap();
    let private = vcm(
        &server,
        None,
        &["cluster", "list", "--token-file", own.to_str().unwrap()],
    );
    let mut far = Command::new(env!("CARGO_BIN_EXE_vcm"));
    // NB: 192.0.2.0/24 is TEST-NET-1; the CLI refuses before it sends anything.
    let far = far
        .args(["cluster", "list", "--addr", "http://192.0.2.1:8080"])
        .env("VCM_TOKEN", "vcm_".to_owned() + &"ab".repeat(32))
        .env_remove("VCM_ADDR")
        .output()
        .unwrap();

    // Assert
    let refused = refused.err().expect("a shared dev token file is refused");
    assert!(
        refused.contains("mode 0644") && refused.contains("chmod 600"),
        "{refused}"
    );
    assert!(!wide.status.success());
    assert!(text(&wide).contains("mode 0640"), "{}", text(&wide));
    assert!(private.status.success(), "{}", text(&private));
    assert!(!far.status.success());
    assert!(
        text(&far).contains("--allow-insecure-http"),
        "{}",
        text(&far)
    );
}

#[test]
fn a_team_at_its_quota_is_refused_with_the_quota_named_and_the_cli_shows_its_use() {
    // Arrange: team web may hold one small cluster.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("vcm.toml");
    std::fs::write(
        &config,
        "[quotas.teams.web]\nmax_clusters = 1\nsizes = [\"small\"]\n",
    )
    .unwrap();
    let server = start(dir.path(), &["--config", &config.display().to_string()]).unwrap();
    let admin = admin_token(&server);
    let dev = json(&vcm(
        &server,
        Some(&admin),
        &[
            "token",
            "create",
            "--name",
            "alice",
            "--role",
            "developer",
            "--team",
            "web",
            "-o",
            "json",
        ],
    ))["secret"]
        .as_str()
        .unwrap()
        .to_owned();

    // Act
    let first = vcm(&server, Some(&dev), &["cluster", "create", "--name", "one"]);
    let second = vcm(&server, Some(&dev), &["cluster", "create", "--name", "two"]);
    let large = vcm(
        &server,
        Some(&admin),
        &["cluster", "create", "--size", "large", "--name", "big"],
    );
    let usage = vcm(&server, Some(&dev), &["team", "usage", "web", "-o", "json"]);
    let table = vcm(&server, Some(&dev), &["team", "usage", "web"]);
    let other = vcm(&server, Some(&dev), &["team", "usage", "data"]);

    // Assert
    assert!(first.status.success(), "{}", text(&first));
    assert!(!second.status.success());
    let refusal = text(&second);
    assert!(
        refusal.contains("quota max_clusters of team web reached: 1 live clusters of 1"),
        "{refusal}"
    );
    assert!(
        large.status.success(),
        "an admin has no team, so no quota: {}",
        text(&large)
    );
    let usage = json(&usage);
    assert_eq!(usage["live_clusters"], 1, "{usage}");
    assert_eq!(usage["max_clusters"], 1);
    assert_eq!(usage["sizes"], serde_json::json!(["small"]));
    assert_eq!(usage["principals"][0]["live_clusters"], 1);
    assert!(
        text(&table).contains("team web: 1 live clusters (max 1)"),
        "{}",
        text(&table)
    );
    assert!(!other.status.success());
    assert!(
        text(&other).contains("only an admin or a member of team data"),
        "{}",
        text(&other)
    );
}
