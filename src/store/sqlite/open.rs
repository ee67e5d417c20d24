//! Opening the embedded store: the database file (created with its directory), its audit
//! database beside it, their migrations, and the pools over them.

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context as _;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::SqliteStore;

/// How long a statement waits for SQLite's write lock before giving up as `Unavailable`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// SQLite has one writer at a time, so a few connections are enough for concurrent readers.
const MAX_CONNECTIONS: u32 = 8;
// === impl SqliteStore ===

impl SqliteStore {
    /// Open (creating the files and their directory if needed) and migrate the database at
    /// `url` and its audit database.
    pub async fn open(url: &str) -> anyhow::Result<Self> {
        let opts = SqliteConnectOptions::from_str(url)
            .with_context(|| format!("parsing SQLite URL {url:?}"))?;
        let memory = url.contains(":memory:") || url.contains("mode=memory");
        let (pool, audit) = if memory {
            let audit = SqliteConnectOptions::from_str("sqlite::memory:")
                .context("an in-memory audit database")?;
            (connect(opts, true).await, connect(audit, true).await)
        } else {
            let audit = opts.clone().filename(audit_path(opts.get_filename()));
            (connect(opts, false).await, connect(audit, false).await)
        };
        let pool = pool.with_context(|| format!("opening SQLite database {url:?}"))?;
        let audit = audit.with_context(|| format!("opening the audit database of {url:?}"))?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&pool)
            .await
            .context("running SQLite migrations")?;
        // NB: one server process owns an SQLite store, so reconcile claims left in it are an
        // earlier run's (a crash or restart mid-step): dropped, so a restarted server resumes
        // its clusters at once instead of waiting for them to run out. A CLI opening the store
        // beside a running server costs it nothing: its next renewal takes the claim again.
        sqlx::query("DELETE FROM cluster_claims")
            .execute(&pool)
            .await
            .context("dropping an earlier run's reconcile claims")?;
        sqlx::migrate!("./migrations/sqlite_audit")
            .run(&audit)
            .await
            .context("running the audit database's migrations")?;
        Ok(Self { pool, audit })
    }

    /// The audit database's file for a store at `url` (`<dir>/<name>-audit.db` beside
    /// `<dir>/<name>.db`); `None` for an in-memory store.
    pub fn audit_file(url: &str) -> Option<std::path::PathBuf> {
        let opts = SqliteConnectOptions::from_str(url).ok()?;
        let memory = url.contains(":memory:") || url.contains("mode=memory");
        (!memory).then(|| audit_path(opts.get_filename()))
    }
}

/// A pool over `opts`: one connection kept forever for an in-memory database (it lives as
/// long as its connection), a few over a file in WAL mode (its directory created).
async fn connect(opts: SqliteConnectOptions, memory: bool) -> anyhow::Result<SqlitePool> {
    let opts = opts
        .create_if_missing(true)
        .busy_timeout(BUSY_TIMEOUT)
        .foreign_keys(true);
    if memory {
        return Ok(SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(opts)
            .await?);
    }
    if let Some(dir) = opts
        .get_filename()
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating directory {}", dir.display()))?;
    }
    let opts = opts
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal);
    Ok(SqlitePoolOptions::new()
        .max_connections(MAX_CONNECTIONS)
        .connect_with(opts)
        .await?)
}

/// `<dir>/<stem>-audit.db` for `<dir>/<stem>.<ext>`.
fn audit_path(main: &std::path::Path) -> std::path::PathBuf {
    let stem = main
        .file_stem()
        .map_or_else(|| "vcm".into(), |s| s.to_string_lossy().into_owned());
    main.with_file_name(format!("{stem}-audit.db"))
}
