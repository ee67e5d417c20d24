//! Running the pinned `vclusterctl` binary: explicit arguments (never a shell), a private
//! `HOME` and working directory, a scrubbed environment, a deadline, and the whole process
//! group killed when the call ends, whatever way it ends.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::process::Command;

use super::DriverError;
use super::config::VclusterConfig;
use super::host::Host;
use super::output::{classify, collect, or_none, text_of};
use crate::controlplane::{BUILD_COMMAND, kill_group};

/// How long to wait for the output pipes to close once the process group is dead.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
/// Variables passed through to the CLI besides the ones vcm sets: proxies and CA bundles may be
/// needed to reach a host; nothing else of vcm's environment (tokens, database URLs) leaks.
const PASS_THROUGH_ENV: &[&str] = &[
    "HTTPS_PROXY",
    "HTTP_PROXY",
    "NO_PROXY",
    "https_proxy",
    "http_proxy",
    "no_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
];
/// Where a pod finds its ServiceAccount credentials (in-cluster hosts).
const SA_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// One CLI call to make.
#[derive(Debug)]
pub struct Invocation<'a> {
    /// `create` or `delete`, for messages.
    pub verb: &'static str,
    /// The arguments after the binary (the host's `--context` is appended).
    pub args: Vec<String>,
    /// A values file to write into the working directory and pass with `-f`.
    pub values: Option<&'a str>,
}

/// Run `vclusterctl` against `host`. `Ok` carries the output tail; a non-zero exit is
/// `Transient` if the output shows connectivity trouble, else `Permanent` with the CLI's own
/// words; a timeout kills the process group and is `Transient`.
pub async fn run(
    config: &VclusterConfig,
    host: &Host,
    call: Invocation<'_>,
) -> Result<String, DriverError> {
    if !is_executable(&config.cli) {
        return Err(missing_cli(&config.cli));
    }
    // NB: 0700: the CLI writes the host's credentials into its TMPDIR (this directory).
    let work = tempfile::Builder::new()
        .prefix("vcm-vclusterctl-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .tempdir()
        .map_err(|e| DriverError::Transient(format!("creating a temp directory: {e}")))?;
    let dir = work.path();
    let mut args = call.args;
    prepare_home(dir).map_err(|e| DriverError::Transient(format!("preparing HOME: {e}")))?;
    if let Some(values) = call.values {
        let path = dir.join("values.yaml");
        std::fs::write(&path, values)
            .map_err(|e| DriverError::Transient(format!("writing the values file: {e}")))?;
        args.push("-f".into());
        args.push(path.display().to_string());
    }
    if let Some(context) = &host.config.context {
        args.push(format!("--context={context}"));
    }
    let kubeconfig = match &host.config.kubeconfig {
        // NB: absolute, because the CLI runs in its own working directory.
        Some(path) => std::path::absolute(path).unwrap_or_else(|_| path.clone()),
        None => write_in_cluster_kubeconfig(dir).map_err(|e| {
            DriverError::Permanent(format!(
                "host {}: no kubeconfig configured and no in-cluster credentials: {e}",
                host.name()
            ))
        })?,
    };

    let mut cmd = Command::new(&config.cli);
    cmd.args(&args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", search_path(&config.helm_dir))
        .env("HOME", dir)
        .env("TMPDIR", dir)
        .env("KUBECONFIG", &kubeconfig)
        .env("VCLUSTER_SKIP_VERSION_CHECK", "true")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // NB: its own process group, so the helm it starts dies with it on a timeout.
        .process_group(0)
        .kill_on_drop(true);
    for key in PASS_THROUGH_ENV {
        if let Some(v) = std::env::var_os(key) {
            cmd.env(key, v);
        }
    }
    tracing::debug!(
        host = host.name(),
        verb = call.verb,
        ?args,
        "running vclusterctl"
    );
    let mut child = cmd.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied => {
            missing_cli(&config.cli)
        }
        _ => DriverError::Transient(format!("starting {}: {e}", config.cli.display())),
    })?;
    let group = GroupGuard(child.id());
    let tail = Arc::new(Mutex::new(Vec::new()));
    let readers = [
        child
            .stdout
            .take()
            .map(|o| tokio::spawn(collect(o, tail.clone()))),
        child
            .stderr
            .take()
            .map(|e| tokio::spawn(collect(e, tail.clone()))),
    ];

    let waited = tokio::time::timeout(config.cli_timeout, child.wait()).await;
    drop(group); // kill whatever the CLI left running (or all of it, on a timeout)
    let status = match waited {
        Ok(status) => Some(status),
        Err(_) => {
            let _ = child.start_kill();
            let _ = tokio::time::timeout(DRAIN_TIMEOUT, child.wait()).await;
            None
        }
    };
    for mut reader in readers.into_iter().flatten() {
        if tokio::time::timeout(DRAIN_TIMEOUT, &mut reader)
            .await
            .is_err()
        {
            reader.abort(); // a process outside the group still holds the pipe
        }
    }
    let output = text_of(&tail);
    match status {
        None => Err(DriverError::Transient(format!(
            "vcluster {} did not finish within {}s and was killed; last output: {}",
            call.verb,
            config.cli_timeout.as_secs(),
            or_none(&output)
        ))),
        Some(Err(e)) => Err(DriverError::Transient(format!(
            "waiting for vcluster {}: {e}",
            call.verb
        ))),
        Some(Ok(status)) if status.success() => {
            tracing::debug!(host = host.name(), verb = call.verb, %output, "vclusterctl succeeded");
            Ok(output)
        }
        Some(Ok(status)) => Err(classify(call.verb, host.name(), status, &output)),
    }
}

/// The error for a CLI that is not there: names the build command.
pub fn missing_cli(path: &Path) -> DriverError {
    DriverError::Permanent(format!(
        "the vcluster CLI {} is missing or not executable; build it with `{BUILD_COMMAND}` \
         or set the driver's `cli` path",
        path.display()
    ))
}

/// Kills the CLI's process group when dropped (normal end, timeout or a cancelled future).
struct GroupGuard(Option<u32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            kill_group(pid);
        }
    }
}

/// `helm_dir` first, then this process's `PATH`: the CLI finds the pinned helm and never
/// downloads one.
fn search_path(helm_dir: &Path) -> std::ffi::OsString {
    let mut dirs = vec![helm_dir.to_path_buf()];
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    std::env::join_paths(dirs).unwrap_or_else(|_| helm_dir.as_os_str().to_owned())
}

/// A private `~/.vcluster/config.json`: helm driver, telemetry off, no platform login.
fn prepare_home(dir: &Path) -> std::io::Result<()> {
    let cfg = dir.join(".vcluster");
    std::fs::create_dir_all(&cfg)?;
    std::fs::write(
        cfg.join("config.json"),
        r#"{"driver":{"type":"helm"},"telemetryDisabled":true}"#,
    )
}

/// A kubeconfig pointing at the in-cluster API with the pod's ServiceAccount files (read by
/// path, so token rotation keeps working).
fn write_in_cluster_kubeconfig(dir: &Path) -> anyhow::Result<PathBuf> {
    let host = std::env::var("KUBERNETES_SERVICE_HOST")?;
    let port = std::env::var("KUBERNETES_SERVICE_PORT")?;
    anyhow::ensure!(
        Path::new(SA_DIR).join("token").is_file(),
        "{SA_DIR}/token is missing"
    );
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host
    };
    let doc = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "in-cluster", "cluster": {
            "server": format!("https://{host}:{port}"),
            "certificate-authority": format!("{SA_DIR}/ca.crt"),
        }}],
        "users": [{"name": "in-cluster", "user": {"tokenFile": format!("{SA_DIR}/token")}}],
        "contexts": [{"name": "in-cluster", "context": {"cluster": "in-cluster", "user": "in-cluster"}}],
        "current-context": "in-cluster",
    });
    let path = dir.join("in-cluster.kubeconfig");
    std::fs::write(&path, serde_json::to_vec(&doc)?)?;
    Ok(path)
}

pub use crate::controlplane::is_executable;
