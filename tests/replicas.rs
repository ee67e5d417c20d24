//! Several real `vcm server` processes on one PostgreSQL (issue 15, item 2): the singleton
//! workers run on exactly one of them, and when that one is SIGKILLed another takes over.
//!
//! NB: no clusters here. The local driver keeps each cluster's processes under one server's
//! data directory and its etcd and ports in that process, so a Ready cluster's health check
//! claimed by another replica would not find it: the local driver is one machine's, not a
//! shared host. Real clusters across replicas, with SIGKILLs mid-create and mid-delete, are in
//! `tests/replicas_real.rs` (the vcluster driver on a tier-C host); claims, placement and
//! takeover in detail with real PostgreSQL and a shared fake host in
//! `src/reconciler/tests/replicas.rs` and `src/service/replicas_tests.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/vcm_process.rs"]
mod vcm_process;

use std::time::{Duration, Instant};

use vcm::testing::postgres::TestPostgres;
use vcm_process::{Vcm, http_status};

/// How long a replica may take to take over a role whose leader died: one election period
/// (5 s) and the server's noticing the dead session, with room for a slow machine.
const TAKEOVER_WITHIN: Duration = Duration::from_secs(30);

/// Log lines of `vcm`'s runs in which it took role `role`.
fn led(vcm: &Vcm, role: &str) -> usize {
    let dir = vcm.data.parent().unwrap();
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("vcm-") && name.ends_with(".log") {
            let log = std::fs::read_to_string(entry.path()).unwrap();
            n += log
                .lines()
                .filter(|l| l.contains("this replica runs the singleton worker"))
                .filter(|l| l.contains(&format!("\"role\":\"{role}\"")))
                .count();
        }
    }
    n
}

fn leaders(replicas: &[Vcm], role: &str) -> Vec<usize> {
    (0..replicas.len())
        .filter(|i| led(&replicas[*i], role) > 0)
        .collect()
}

#[test]
fn the_pruner_runs_on_one_replica_and_moves_when_that_replica_is_killed() {
    // Arrange: a throw-away PostgreSQL and three production servers on it.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let pg = rt.block_on(TestPostgres::local());
    let url = rt.block_on(pg.database());
    // One audit signing key, as replicas must share (the first start makes it; they start one
    // after the other).
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("audit.key").display().to_string();
    let mut replicas: Vec<Vcm> = (0..3)
        .map(|_| Vcm::start_on_store(&url, &[("VCM_AUDIT__SIGNING_KEY", key.as_str())]))
        .collect();

    // Assert 1: one replica, and only one, runs the pruner.
    let deadline = Instant::now() + TAKEOVER_WITHIN;
    while leaders(&replicas, "pruner").is_empty() {
        assert!(Instant::now() < deadline, "no replica took the pruner role");
        std::thread::sleep(Duration::from_millis(200));
    }
    // NB: the others ask every 5 s; give them two chances to (wrongly) win.
    std::thread::sleep(Duration::from_secs(11));
    let first = leaders(&replicas, "pruner");
    assert_eq!(first.len(), 1, "one pruner among three replicas: {first:?}");

    // Act: SIGKILL the leader.
    let dead = first[0];
    replicas[dead].sigkill();

    // Assert 2: another replica takes the role, and only one.
    let deadline = Instant::now() + TAKEOVER_WITHIN;
    let survivors = || {
        leaders(&replicas, "pruner")
            .into_iter()
            .filter(|i| *i != dead)
            .collect::<Vec<_>>()
    };
    while survivors().is_empty() {
        assert!(
            Instant::now() < deadline,
            "no replica took the pruner over from the killed one"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(11));
    assert_eq!(survivors().len(), 1, "{:?}", survivors());
    for (i, vcm) in replicas.iter().enumerate() {
        if i != dead {
            assert_eq!(http_status(vcm.port, "/readyz"), Some(200), "replica {i}");
        }
    }

    // The survivors write audited requests at once: one chain, signed with the one key.
    let alive: Vec<&Vcm> = (0..replicas.len())
        .filter(|i| *i != dead)
        .map(|i| &replicas[i])
        .collect();
    std::thread::scope(|s| {
        for (r, vcm) in alive.iter().enumerate() {
            s.spawn(move || {
                for t in 0..5 {
                    let name = format!("r{r}-{t}");
                    vcm.cli_ok(&["token", "create", "--name", &name, "--role", "viewer"]);
                }
            });
        }
    });
    let verified = alive[0].cli_ok(&["audit", "verify"]);
    assert!(verified.contains("audit log intact"), "{verified}");
    drop(pg);
}
