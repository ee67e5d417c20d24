//! etcd fsync on (the default) against `--unsafe-no-fsync`: create-to-Ready of local clusters
//! through `LocalDriver`, one live cluster at a time, alternating, and etcd's own disk figures.
//!
//!     cargo bench --bench etcd_fsync          (ROUNDS=5 by default)
//!
//! Figures and how to read them: docs/PERFORMANCE.md, "etcd fsync".
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use vcm::controlplane::{KubeBins, find_processes};
use vcm::domain::{Cluster, ClusterName, Phase};
use vcm::driver::local::LocalDriver;
use vcm::driver::{Driver, Ensured};

/// Kills every process of vcm's under the driver's root when dropped.
struct Guard {
    driver: LocalDriver,
    _dir: tempfile::TempDir,
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.driver.kill_all_processes();
    }
}

fn mk_guard(configure: impl FnOnce(LocalDriver) -> LocalDriver) -> Guard {
    let dir = tempfile::tempdir().unwrap();
    let driver = LocalDriver::new(dir.path().join("local"), KubeBins::locate())
        .unwrap_or_else(|e| panic!("{e:#}"));
    Guard {
        driver: configure(driver),
        _dir: dir,
    }
}

fn mk_cluster() -> Cluster {
    let mut c = vcm::store::conformance::mk_cluster("local");
    c.name = ClusterName::from_id(&c.id);
    c.phase = Phase::Provisioning;
    c
}

fn etcd_argv(root: &Path) -> (u32, Vec<String>) {
    let flag = format!("--data-dir={}", root.join("etcd").join("etcd").display());
    find_processes(&flag).pop().expect("etcd runs")
}

fn flag<'a>(argv: &'a [String], name: &str) -> Option<&'a str> {
    argv.iter().find_map(|a| a.strip_prefix(name))
}

fn main() {
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(create_to_ready_with_and_without_fsync());
}

/// Create-to-Ready of local clusters with and without fsync, one live cluster at a time.
/// (figures in docs/PERFORMANCE.md).
async fn create_to_ready_with_and_without_fsync() {
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let fsync = mk_guard(|d| d);
    let no_fsync = mk_guard(|d| d.with_etcd_unsafe_no_fsync(true));
    // Start both etcds first: their start is not part of a create.
    for g in [&fsync, &no_fsync] {
        let c = mk_cluster();
        g.driver.ensure(&c).await.unwrap();
        g.driver.delete(&c.id).await.unwrap();
    }
    let before = [etcd_disk(&fsync).await, etcd_disk(&no_fsync).await];
    let mut times: [Vec<f64>; 2] = [vec![], vec![]];
    for _ in 0..rounds {
        for (i, g) in [&fsync, &no_fsync].into_iter().enumerate() {
            let c = mk_cluster();
            let started = Instant::now();
            let ensured = g.driver.ensure(&c).await.unwrap();
            times[i].push(started.elapsed().as_secs_f64());
            assert!(matches!(ensured, Ensured::Ready { .. }));
            g.driver.delete(&c.id).await.unwrap();
        }
    }
    let after = [etcd_disk(&fsync).await, etcd_disk(&no_fsync).await];
    for (i, (name, t)) in ["fsync", "unsafe-no-fsync"]
        .iter()
        .zip(&mut times)
        .enumerate()
    {
        let per_create = |k: usize| (after[i][k] - before[i][k]) / rounds as f64;
        eprintln!(
            "{name}: per create+delete: {:.0} WAL fsyncs taking {:.3}s, {:.0} backend commits \
             taking {:.3}s",
            per_create(0),
            per_create(1),
            per_create(2),
            per_create(3)
        );
        t.sort_by(f64::total_cmp);
        let mean = t.iter().sum::<f64>() / t.len() as f64;
        eprintln!(
            "{name}: mean {mean:.2}s, median {:.2}s, min {:.2}s, max {:.2}s ({:?})",
            t[t.len() / 2],
            t[0],
            t[t.len() - 1],
            t.iter().map(|s| format!("{s:.2}")).collect::<Vec<_>>()
        );
    }
}

/// etcd's WAL fsync count and seconds, and backend commit count and seconds, from its
/// `/metrics` (read with vcm's client certificate).
async fn etcd_disk(g: &Guard) -> [f64; 4] {
    let (_, argv) = etcd_argv(g.driver.root());
    let url = flag(&argv, "--listen-client-urls=").unwrap();
    let text = g
        .driver
        .etcd_pki()
        .http_client(Duration::from_secs(5))
        .unwrap()
        .get(format!("{url}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let metric = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    [
        metric("etcd_disk_wal_fsync_duration_seconds_count"),
        metric("etcd_disk_wal_fsync_duration_seconds_sum"),
        metric("etcd_disk_backend_commit_duration_seconds_count"),
        metric("etcd_disk_backend_commit_duration_seconds_sum"),
    ]
}
