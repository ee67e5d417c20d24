//! A real PostgreSQL for the store's tests, a fresh database per test (or per case).
//!
//! [`TestPostgres::start`] uses the server `VCM_TEST_POSTGRES_URL` names when it is set (its
//! user must be allowed to create databases; the ones made are dropped at the end). Otherwise,
//! and always for [`TestPostgres::local`], it makes a server of its own from the machine's
//! PostgreSQL binaries (`/usr/lib/postgresql/15/bin`, or `VCM_POSTGRES_BIN_DIR`): `initdb` into
//! a temp directory and `postgres` listening only on a unix socket in that directory, no TCP
//! port. As root it runs both as the system user `vcm-pg` (made with `useradd` if missing),
//! since `initdb` refuses to run as root.
//!
//! The server runs under `setpriv --pdeathsig KILL`: dropping the handle (test passed or
//! panicked) shuts it down and removes the directory, and a test process killed outright takes
//! the server with it. `scripts/leak-check.sh` fails a test run that leaves one behind.

mod server;

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use sqlx::Connection as _;

use self::server::LocalServer;

/// A PostgreSQL server tests make databases on.
#[derive(Debug)]
pub struct TestPostgres {
    /// `None`: the server of `VCM_TEST_POSTGRES_URL`.
    local: Option<LocalServer>,
    /// A URL of the server's maintenance database, where databases are made.
    admin_url: String,
    /// Databases made on an external server, dropped with this handle.
    made: Mutex<Vec<String>>,
}

/// Numbers the databases of this process (several tests share one external server).
static NEXT_DATABASE: AtomicUsize = AtomicUsize::new(0);

// === impl TestPostgres ===

impl TestPostgres {
    /// The server of `VCM_TEST_POSTGRES_URL`, or a new local one; panics with what to install
    /// if there is neither.
    pub async fn start() -> Self {
        match std::env::var("VCM_TEST_POSTGRES_URL") {
            Ok(url) if !url.is_empty() => Self {
                local: None,
                admin_url: url,
                made: Mutex::default(),
            },
            _ => Self::local().await,
        }
    }

    /// A new local server, whatever `VCM_TEST_POSTGRES_URL` says (for tests that stop it).
    pub async fn local() -> Self {
        let server = LocalServer::start()
            .await
            .unwrap_or_else(|e| panic!("test PostgreSQL server: {e:#}"));
        Self {
            admin_url: server.url("postgres"),
            local: Some(server),
            made: Mutex::default(),
        }
    }

    /// A new, empty database's URL.
    pub async fn database(&self) -> String {
        let name = format!(
            "vcm_test_{}_{}",
            std::process::id(),
            NEXT_DATABASE.fetch_add(1, Ordering::Relaxed)
        );
        let create = async {
            let mut admin = sqlx::PgConnection::connect(&self.admin_url).await?;
            // NB: the name is ours (digits and underscores), quoted anyway.
            let sql = format!("CREATE DATABASE \"{name}\"");
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&mut admin)
                .await?;
            admin.close().await
        };
        create
            .await
            .unwrap_or_else(|e| panic!("creating test database {name}: {e}"));
        match &self.local {
            Some(server) => server.url(&name),
            None => {
                self.made
                    .lock()
                    .expect("no test panics holding the list")
                    .push(name.clone());
                with_database(&self.admin_url, &name)
            }
        }
    }

    /// Stop the local server (a fast shutdown: sessions are ended); its data stays.
    pub async fn stop(&mut self) {
        let server = self
            .local
            .as_mut()
            .expect("only a local server can be stopped");
        server.stop().await;
    }

    /// Start the stopped local server again on the same data and socket.
    pub async fn restart(&mut self) {
        let server = self
            .local
            .as_mut()
            .expect("only a local server can be restarted");
        let restarted = async {
            server.spawn()?;
            server.wait_ready().await
        };
        restarted
            .await
            .unwrap_or_else(|e| panic!("restarting the test PostgreSQL server: {e:#}"));
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        let made = std::mem::take(&mut *self.made.lock().unwrap_or_else(|e| e.into_inner()));
        if made.is_empty() {
            return;
        }
        // NB: Drop cannot await, and may run inside a runtime: a thread of its own does it.
        let url = self.admin_url.clone();
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                let mut admin = sqlx::PgConnection::connect(&url).await?;
                for name in made {
                    let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                    sqlx::query(sqlx::AssertSqlSafe(sql))
                        .execute(&mut admin)
                        .await?;
                }
                admin.close().await?;
                anyhow::Ok(())
            })
        });
        if let Ok(Err(e)) = dropped.join() {
            eprintln!("dropping test databases: {e:#}");
        }
    }
}

/// `url` with its database (path) replaced by `db`.
fn with_database(url: &str, db: &str) -> String {
    let start = url.find("://").map_or(0, |i| i + 3);
    let end = url[start..]
        .find(['?', '#'])
        .map_or(url.len(), |i| start + i);
    let path = url[start..end].find('/').map_or(end, |i| start + i);
    format!("{}/{db}{}", &url[..path], &url[end..])
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn a_url_gets_another_database_and_keeps_the_rest() {
        let cases = [
            (
                "postgres://u:p@db:5432/postgres",
                "postgres://u:p@db:5432/t1",
            ),
            ("postgres://u@db", "postgres://u@db/t1"),
            (
                "postgresql://u@db/x?sslmode=require",
                "postgresql://u@db/t1?sslmode=require",
            ),
            (
                "postgres://u@localhost/postgres?host=/tmp/s&port=5432",
                "postgres://u@localhost/t1?host=/tmp/s&port=5432",
            ),
        ];
        for (url, want) in cases {
            assert_eq!(with_database(url, "t1"), want, "{url}");
        }
    }
}
