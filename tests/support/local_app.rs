//! The engine (service and reconciler over a SQLite file) on a real local driver, as
//! `vcm server --dev` runs it, for integration tests (included with `#[path]`).
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use vcm::controlplane::{KubeBins, find_processes};
use vcm::domain::{ClusterId, Principal, Role};
use vcm::driver::local::LocalDriver;
use vcm::reconciler::Reconciler;
use vcm::service::{ClusterPolicy, ClusterService};
use vcm::store::SqliteStore;

/// Dropping it kills every process under its directory.
pub struct App {
    pub service: ClusterService,
    pub reconciler: Reconciler,
    pub driver: Arc<LocalDriver>,
    pub dir: tempfile::TempDir,
}

impl Drop for App {
    fn drop(&mut self) {
        self.driver.kill_all_processes();
    }
}

pub async fn mk_app() -> App {
    vcm::telemetry::init_for_tests();
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("vcm.db").display());
    let store = Arc::new(SqliteStore::open(&db).await.unwrap());
    let driver = Arc::new(
        LocalDriver::new(dir.path().join("local"), KubeBins::locate())
            .unwrap_or_else(|e| panic!("{e:#}")),
    );
    let wake = Arc::new(Notify::new());
    let service = ClusterService::new(
        store,
        driver.clone(),
        ClusterPolicy::default(),
        wake.clone(),
    );
    // NB: a short health-check interval, so a dead component is noticed within a test.
    let reconciler = Reconciler::new(service.clone(), wake, 2)
        .with_health_check_interval(Duration::from_millis(200));
    App {
        service,
        reconciler,
        driver,
        dir,
    }
}

pub fn who() -> Principal {
    Principal::token("t-ci", "ci", Role::Admin, None)
}

/// Every process of cluster `id` (API server and components) under the driver's root.
pub fn processes_of(driver: &LocalDriver, id: &ClusterId) -> Vec<(u32, Vec<String>)> {
    let root = driver.root().display().to_string();
    find_processes(id.as_str())
        .into_iter()
        .filter(|(_, argv)| argv.iter().any(|a| a.contains(&root)))
        .collect()
}
