//! The local server of [`TestPostgres`](super::TestPostgres): `initdb`, `postgres` on a unix
//! socket in a temp directory, as a user `initdb` accepts, shut down on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::{Pid, Uid, User};
use sqlx::Connection as _;

/// The server's directory prefix under the system temp dir (`scripts/leak-check.sh` knows it).
const DIR_PREFIX: &str = "vcm-pg-";
/// The system user a root test process runs the server as.
const SERVER_USER: &str = "vcm-pg";
/// The server's superuser (trust authentication on the private socket).
const SUPERUSER: &str = "vcm";
/// The socket's port number (only its file name: `.s.PGSQL.5432`; no TCP port is opened).
const PORT: u16 = 5432;
/// How long start-up and shutdown may take on a loaded machine.
const START_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// A server of our own: its directory (data and socket), and its process while it runs.
#[derive(Debug)]
pub(super) struct LocalServer {
    bin: PathBuf,
    /// Who runs it: a root test process runs it as [`SERVER_USER`].
    user: Option<User>,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

// === impl LocalServer ===

impl LocalServer {
    pub(super) async fn start() -> anyhow::Result<Self> {
        let bin = bin_dir()?;
        let user = server_user()?;
        remove_stale_dirs();
        let dir = tempfile::Builder::new()
            .prefix(DIR_PREFIX)
            .tempdir()
            .context("creating the server's directory")?;
        std::fs::write(dir.path().join("owner.pid"), std::process::id().to_string())
            .context("writing owner.pid")?;
        if let Some(u) = &user {
            std::os::unix::fs::chown(dir.path(), Some(u.uid.as_raw()), Some(u.gid.as_raw()))
                .with_context(|| format!("giving {} to {SERVER_USER}", dir.path().display()))?;
        }
        let mut server = Self {
            bin,
            user,
            child: None,
            dir,
        };
        let out = server
            .command("initdb")
            .args([
                "-D",
                "data",
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
            ])
            .args(["--locale=C.UTF-8", "--no-sync", "--no-instructions"])
            .output()
            .context("running initdb")?;
        anyhow::ensure!(
            out.status.success(),
            "initdb failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        server.spawn()?;
        server.wait_ready().await?;
        Ok(server)
    }

    /// `postgres://` URL of database `db` over the socket.
    pub(super) fn url(&self, db: &str) -> String {
        let dir = self.dir.path().display();
        format!("postgres://{SUPERUSER}@localhost/{db}?host={dir}&port={PORT}")
    }

    /// `program` of the server's binaries, in its directory, as its user, killed by the kernel
    /// when the thread that starts it ends.
    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("setpriv");
        cmd.args(["--pdeathsig", "KILL"]);
        if let Some(u) = &self.user {
            cmd.arg(format!("--reuid={}", u.uid))
                .arg(format!("--regid={}", u.gid))
                .arg("--clear-groups");
        }
        cmd.arg("--").arg(self.bin.join(program));
        cmd.current_dir(self.dir.path()).stdin(Stdio::null());
        cmd
    }

    /// Start `postgres` on the data directory (in its own process group, log to
    /// `postgres.log`).
    pub(super) fn spawn(&mut self) -> anyhow::Result<()> {
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(self.dir.path().join("postgres.log"))
            .context("opening postgres.log")?;
        let mut cmd = self.command("postgres");
        let socket_dir = self.dir.path().display().to_string();
        cmd.args(["-D", "data", "-k", &socket_dir, "-p", &PORT.to_string()]);
        // NB: no TCP listener; durability off (a throw-away directory); room for every pool
        // of a conformance run (each case's store keeps a few connections open).
        for setting in [
            "listen_addresses=",
            "fsync=off",
            "synchronous_commit=off",
            "full_page_writes=off",
            "max_connections=300",
            "shared_buffers=32MB",
        ] {
            cmd.args(["-c", setting]);
        }
        cmd.stdout(log.try_clone().context("duplicating the log handle")?)
            .stderr(log);
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        self.child = Some(cmd.spawn().context("starting postgres")?);
        Ok(())
    }

    /// Wait until the server takes connections, or fail with its log.
    pub(super) async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let started = Instant::now();
        let url = self.url("postgres");
        loop {
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                anyhow::bail!("postgres exited ({status}):\n{}", self.log_tail());
            }
            let err = match sqlx::PgConnection::connect(&url).await {
                Ok(conn) => return conn.close().await.context("closing a probe connection"),
                Err(e) => e,
            };
            if started.elapsed() > START_TIMEOUT {
                anyhow::bail!(
                    "postgres took no connection in {START_TIMEOUT:?} ({err}):\n{}",
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Fast shutdown (SIGINT), waited for; SIGKILL if it takes too long.
    pub(super) async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = kill(Pid::from_raw(pid(&child)), Signal::SIGINT);
        let started = Instant::now();
        while matches!(child.try_wait(), Ok(None)) && started.elapsed() < STOP_TIMEOUT {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        kill_and_reap(child);
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // NB: an immediate shutdown (SIGQUIT) ends every backend and frees the shared memory
        // at once; the data is thrown away with the directory.
        let _ = kill(Pid::from_raw(pid(&child)), Signal::SIGQUIT);
        let started = Instant::now();
        while matches!(child.try_wait(), Ok(None)) && started.elapsed() < STOP_TIMEOUT {
            std::thread::sleep(Duration::from_millis(20));
        }
        kill_and_reap(child);
    }
}

fn pid(child: &Child) -> i32 {
    i32::try_from(child.id()).expect("process ids fit in an i32")
}

/// SIGKILL the process group of `child` (a no-op once it exited) and reap it.
fn kill_and_reap(mut child: Child) {
    let _ = killpg(Pid::from_raw(pid(&child)), Signal::SIGKILL);
    let _ = child.wait();
}

/// The directory of `initdb` and `postgres`: `VCM_POSTGRES_BIN_DIR`, PostgreSQL 15's, or the
/// newest under `/usr/lib/postgresql`.
fn bin_dir() -> anyhow::Result<PathBuf> {
    let has_server = |d: &Path| d.join("initdb").is_file() && d.join("postgres").is_file();
    if let Some(dir) = std::env::var_os("VCM_POSTGRES_BIN_DIR") {
        let dir = PathBuf::from(dir);
        anyhow::ensure!(
            has_server(&dir),
            "VCM_POSTGRES_BIN_DIR={} has no initdb and postgres",
            dir.display()
        );
        return Ok(dir);
    }
    let mut candidates = vec![PathBuf::from("/usr/lib/postgresql/15/bin")];
    if let Ok(entries) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut versions: Vec<(u32, PathBuf)> = entries
            .flatten()
            .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
            .collect();
        versions.sort_by(|a, b| b.cmp(a));
        candidates.extend(versions.into_iter().map(|(_, p)| p));
    }
    candidates.into_iter().find(|d| has_server(d)).context(
        "the PostgreSQL server binaries (initdb, postgres) are not installed in \
         /usr/lib/postgresql/15/bin: install them with `apt-get install postgresql-15` \
         (`make test` does, through scripts/postgres.sh), or set VCM_TEST_POSTGRES_URL to a \
         server the tests may create databases on",
    )
}

/// Who runs the server: `None` (this process's user) unless we are root, which `initdb`
/// refuses; then [`SERVER_USER`], made on first use.
fn server_user() -> anyhow::Result<Option<User>> {
    if !Uid::effective().is_root() {
        return Ok(None);
    }
    let lookup = || User::from_name(SERVER_USER).context("looking up the server's user");
    if let Some(user) = lookup()? {
        return Ok(Some(user));
    }
    // NB: concurrent `useradd`s (tests in parallel, test binaries side by side) trip over
    // each other's edits of /etc/passwd: one at a time, under a lock file.
    let lock_path = std::env::temp_dir().join("vcm-pg.useradd.lock");
    let lock = std::fs::File::create(&lock_path)
        .with_context(|| format!("creating {}", lock_path.display()))?;
    lock.lock().context("locking the user creation")?;
    if let Some(user) = lookup()? {
        return Ok(Some(user));
    }
    let out = Command::new("useradd")
        .args(["--system", "--user-group", "--no-create-home"])
        .args([
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            SERVER_USER,
        ])
        .output()
        .context("running useradd")?;
    anyhow::ensure!(
        out.status.success(),
        "useradd {SERVER_USER} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    lookup()?
        .with_context(|| format!("useradd made no user {SERVER_USER}"))
        .map(Some)
}

/// Remove server directories whose test process is gone (left by a killed test run; its
/// server died with it).
fn remove_stale_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let ours = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(DIR_PREFIX));
        let owner = std::fs::read_to_string(path.join("owner.pid"))
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok());
        if ours && owner.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists()) {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}
