//! vcm servers in processes of their own for the store benchmark (included with `#[path]`):
//! the benchmark's binary runs itself again as `<bench> serve <store-url> <audit-key>`, which
//! builds the real server in code (`Server::build_with_listener`) over `store::open(url)` as
//! `vcm server` opens it, with the fake driver (a create is accepted, 202, and no control plane
//! starts; no reconciler runs) and the audit log signed with a key shared by every replica, and
//! serves until its stdin closes. Several of them on one PostgreSQL database are replicas.
//!
//! Also the reaper: it trims a store to the newest `keep` live clusters every 20 ms during the
//! create phases (see `benches/governance.rs`: without it every create reads more live clusters
//! for placement than the one before, and the faster side, having created more, pays more).
#![allow(dead_code)]

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::Notify;
use vcm::audit::{Auditor, Signer};
use vcm::auth::Authenticator;
use vcm::config::Config;
use vcm::config::audit::FailMode;
use vcm::driver::fake::FakeDriver;
use vcm::http::AppState;
use vcm::server::Server;
use vcm::service::{ClusterPolicy, ClusterService};

/// How often the reaper trims the store (as `benches/governance.rs`).
const REAP_EVERY: Duration = Duration::from_millis(20);

/// `serve` mode: one server over `url`, until stdin closes. Prints `listening <addr>`.
pub fn serve(url: &str, key: &Path) -> anyhow::Result<()> {
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let store = vcm::store::open(url).await?;
        let service = ClusterService::new(
            store.clone(),
            Arc::new(FakeDriver::default()),
            ClusterPolicy::default(),
            Arc::new(Notify::new()),
        );
        let signer = Arc::new(Signer::load_or_create(key)?);
        let audit = Auditor::start(store.clone(), signer, FailMode::Open, None)?;
        let state = AppState::new(service, Arc::new(Authenticator::new(store.clone())))
            .with_audit(Some(audit))
            .try_with_rate_limits(crate::wrk::unmet_rate_limits())?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let server = Server::build_with_listener(Config::default(), listener, state)?;
        println!("listening {}", server.addr());
        let stdin_closed = tokio::task::spawn_blocking(|| {
            let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        });
        server
            .run_until_stopped(async move {
                let _ = stdin_closed.await;
            })
            .await
    })
}

/// A server process in `serve` mode; killed when dropped.
pub struct Replica {
    pub base: String,
    pub pid: u32,
    child: Child,
    _stdin: ChildStdin,
}

impl Replica {
    /// Starts one over `url`, signing the audit log with the key at `key` (made by the first).
    pub fn start(url: &str, key: &Path) -> anyhow::Result<Self> {
        let mut child = Command::new(std::env::current_exe()?)
            .arg("serve")
            .arg(url)
            .arg(key)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("starting a server process")?;
        let stdin = child.stdin.take().context("its stdin")?;
        let stdout = child.stdout.take().context("its stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let addr = line
            .trim()
            .strip_prefix("listening ")
            .with_context(|| format!("the server did not start: {line:?}"))?;
        Ok(Self {
            base: format!("http://{addr}"),
            pid: child.id(),
            child,
            _stdin: stdin,
        })
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The reaper: a thread of the benchmark's process (not a server's) deleting every cluster of
/// the store at `url` but the newest `keep` and `spare` (the GET phases' cluster), with their
/// events, every [`REAP_EVERY`]. Stopped when dropped.
pub struct Reaper {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<anyhow::Result<()>>>,
}

impl Reaper {
    pub fn start(url: &str, keep: u64, spare: &str) -> anyhow::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let (url, spare, stopped) = (url.to_owned(), spare.to_owned(), stop.clone());
        let keep = i64::try_from(keep)?;
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(reap(&url, keep, &spare, &stopped))
        });
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops it; an error if it failed during the run (the store then grew).
    pub fn stop(mut self) -> anyhow::Result<()> {
        self.stop.store(true, Ordering::SeqCst);
        let thread = self.thread.take().context("stopped twice")?;
        thread
            .join()
            .map_err(|_| anyhow::anyhow!("the reaper panicked"))?
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn reap(url: &str, keep: i64, spare: &str, stop: &AtomicBool) -> anyhow::Result<()> {
    const SQL: &str = "DELETE FROM clusters WHERE id <> $1 AND id NOT IN \
                       (SELECT id FROM clusters ORDER BY created_ms DESC, id DESC LIMIT $2)";
    if url.starts_with("postgres") {
        let pool = sqlx::PgPool::connect(url).await?;
        while !stop.load(Ordering::SeqCst) {
            sqlx::query(SQL)
                .bind(spare)
                .bind(keep)
                .execute(&pool)
                .await?;
            tokio::time::sleep(REAP_EVERY).await;
        }
    } else {
        use sqlx::ConnectOptions as _;
        let opts: sqlx::sqlite::SqliteConnectOptions = url.parse()?;
        let mut conn = opts
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            .connect()
            .await?;
        let sql = SQL.replace('$', "?");
        while !stop.load(Ordering::SeqCst) {
            sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .bind(spare)
                .bind(keep)
                .execute(&mut conn)
                .await?;
            tokio::time::sleep(REAP_EVERY).await;
        }
    }
    Ok(())
}
