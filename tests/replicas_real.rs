//! Three real `vcm server` replicas on one PostgreSQL making real vClusters on one tier-C host
//! (issue 15's end-to-end test): creates race for the host's capacity across replicas, one
//! replica is SIGKILLed in the middle of a create step and another in the middle of a delete
//! step, and still every cluster converges, none is provisioned twice, and the host never holds
//! more clusters than its capacity.
//!
//! NB: the vcluster driver, not the local one: a vCluster lives on a shared host, so any
//! replica can carry on what a dead one started. The local driver's clusters are processes of
//! the server that made them (`tests/replicas.rs` says more).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/vcm_process.rs"]
mod vcm_process;
#[path = "support/vcm_server.rs"]
mod vcm_server;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::Api;
use kube::api::ListParams;
use vcm::testing::TestBed;
use vcm::testing::postgres::TestPostgres;
use vcm_process::{Vcm, text};

/// The host's capacity: small, so concurrent creates on three replicas compete for it, and the
/// two-core test machine runs that many real control planes.
const CAPACITY: usize = 2;
/// Creates sent at once, spread over the replicas.
const CREATES: usize = 6;
/// A real vCluster becomes Ready in about a minute here; a takeover adds one claim lifetime
/// (30 s) and a retried CLI call.
const CONVERGE_WITHIN: Duration = Duration::from_secs(420);
const MANAGED: &str = "app.kubernetes.io/managed-by=vcm";

/// The reconcile-claim holder name of `vcm`'s current run (logged as the reconciler starts).
fn replica_id(vcm: &Vcm) -> String {
    let dir = vcm.data.parent().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut newest: Option<(std::time::SystemTime, String)> = None;
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !(name.starts_with("vcm-") && name.ends_with(".log")) {
                continue;
            }
            let modified = entry.metadata().unwrap().modified().unwrap();
            let log = std::fs::read_to_string(entry.path()).unwrap();
            let id = log
                .lines()
                .filter(|l| l.contains("reconciler started"))
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .find_map(|v| {
                    let r = &v["fields"]["replica"];
                    r.as_str().or(v["replica"].as_str()).map(str::to_owned)
                });
            if let Some(id) = id
                && newest.as_ref().is_none_or(|(t, _)| modified > *t)
            {
                newest = Some((modified, id));
            }
        }
        if let Some((_, id)) = newest {
            return id;
        }
        assert!(
            Instant::now() < deadline,
            "no 'reconciler started' line in {dir:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The replica (not `spare`) holding a live reconcile claim on one of `ids` whose phase is
/// `phase`, waiting up to a minute for one: the replica to kill "in the middle of" that step.
async fn claim_holder(
    pg: &sqlx::PgPool,
    replicas: &[Vcm],
    ids: &[String],
    phase: &str,
    spare: Option<usize>,
) -> (usize, String) {
    let names: Vec<String> = replicas.iter().map(replica_id).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let now_ms = jiff::Timestamp::now().as_millisecond();
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT c.cluster_id, c.holder FROM cluster_claims c \
             WHERE c.until_ms > $1 ORDER BY c.cluster_id",
        )
        .bind(now_ms)
        .fetch_all(pg)
        .await
        .unwrap();
        for (cluster, holder) in rows {
            let Some(i) = names.iter().position(|n| *n == holder) else {
                continue;
            };
            if spare == Some(i) {
                continue;
            }
            if ids.contains(&cluster) && replicas[i].cluster(&cluster)["phase"] == phase {
                return (i, cluster);
            }
        }
        assert!(
            Instant::now() < deadline,
            "no replica held a claim on a {phase} cluster of {ids:?} within a minute"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn managed_namespaces(bed: &TestBed) -> Vec<String> {
    let api: Api<Namespace> = Api::all(bed.client());
    api.list(&ListParams::default().labels(MANAGED))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect()
}

fn wait_gone(vcm: &Vcm, id: &str) {
    let deadline = Instant::now() + CONVERGE_WITHIN;
    loop {
        let out = vcm.cli(&["cluster", "get", id, "--output", "json"]);
        if !out.status.success() {
            assert!(text(&out).contains("not found"), "{}", text(&out));
            return;
        }
        let c: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        if c["phase"] == "Deleted" {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "cluster {id} was never deleted: {c}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_replicas_share_a_host_through_sigkills_mid_create_and_mid_delete() {
    // Arrange: a real host, a throw-away PostgreSQL, three production servers on it sharing
    // one audit key, and a watcher counting the host's cluster namespaces all along.
    let bed = TestBed::tier_c().await;
    let pg = TestPostgres::local().await;
    let url = pg.database().await;
    let db = sqlx::PgPool::connect(&url).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    // The vcluster driver with the bed as its one host, of [`CAPACITY`].
    let config = vcm_server::write_config_with(
        dir.path(),
        &bed,
        &format!("max_clusters = {CAPACITY}"),
        false,
    );
    let key = dir.path().join("audit.key").display().to_string();
    let env = [
        ("VCM_CONFIG", config.to_str().unwrap()),
        ("VCM_AUDIT__SIGNING_KEY", key.as_str()),
    ];
    let mut replicas: Vec<Vcm> =
        tokio::task::block_in_place(|| (0..3).map(|_| Vcm::start_on_store(&url, &env)).collect());
    let most = Arc::new(AtomicUsize::new(0));
    let watcher = {
        let (client, most) = (bed.client(), most.clone());
        tokio::spawn(async move {
            let api: Api<Namespace> = Api::all(client);
            loop {
                if let Ok(list) = api.list(&ListParams::default().labels(MANAGED)).await {
                    most.fetch_max(list.items.len(), Ordering::SeqCst);
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
    };

    // Act 1: six creates at once, two through each replica.
    let outcomes: Vec<std::process::Output> = tokio::task::block_in_place(|| {
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..CREATES)
                .map(|n| {
                    let vcm = &replicas[n % replicas.len()];
                    s.spawn(move || {
                        let name = format!("race-{n}");
                        vcm.cli(&[
                            "cluster",
                            "create",
                            "--name",
                            &name,
                            "--host",
                            "bed",
                            "--output",
                            "json",
                            "--retry-for",
                            "0s",
                        ])
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        })
    });

    // Assert 1: exactly the host's capacity was granted; the rest were refused for it.
    let mut ids = Vec::new();
    for out in &outcomes {
        if out.status.success() {
            let c: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            ids.push(c["id"].as_str().unwrap().to_owned());
        } else {
            assert!(text(out).contains("no host has room"), "{}", text(out));
        }
    }
    assert_eq!(ids.len(), CAPACITY, "granted: {ids:?}");

    // Act 2: SIGKILL the replica in the middle of a create step (it holds the claim of a
    // Provisioning cluster).
    let (killed, during) = claim_holder(&db, &replicas, &ids, "Provisioning", None).await;
    replicas[killed].sigkill();
    eprintln!("SIGKILLed replica {killed} while it provisioned {during}");
    let alive = (killed + 1) % replicas.len();

    // Assert 2: both clusters reach Ready through the survivors, once each.
    let started = Instant::now();
    tokio::task::block_in_place(|| {
        for id in &ids {
            replicas[alive].wait_phase(id, "Ready", CONVERGE_WITHIN);
        }
    });
    eprintln!(
        "both Ready {:.1}s after the kill",
        started.elapsed().as_secs_f64()
    );
    let expected: BTreeSet<String> = ids.iter().map(|id| format!("vcm-{id}")).collect();
    let found: BTreeSet<String> = managed_namespaces(&bed).await.into_iter().collect();
    assert_eq!(found, expected, "one host namespace per cluster, no other");
    for id in &ids {
        let pods: Api<Pod> = Api::namespaced(bed.client(), &format!("vcm-{id}"));
        let control = ListParams::default().labels(&format!("app=vcluster,release={id}"));
        let names: Vec<_> = (pods.list(&control).await.unwrap().items.into_iter())
            .filter_map(|p| p.metadata.name)
            .collect();
        assert_eq!(names.len(), 1, "one control plane for {id}: {names:?}");
    }

    // Act 3: the killed replica comes back; both clusters are deleted through the other two,
    // and one of those is SIGKILLed in the middle of a delete step.
    tokio::task::block_in_place(|| replicas[killed].spawn());
    for (n, id) in ids.iter().enumerate() {
        replicas[(killed + 1 + n) % replicas.len()].cli_ok(&["cluster", "delete", id]);
    }
    let (killed_again, during) = claim_holder(&db, &replicas, &ids, "Deleting", Some(killed)).await;
    replicas[killed_again].sigkill();
    eprintln!("SIGKILLed replica {killed_again} while it deleted {during}");
    let alive = (killed_again + 1) % replicas.len();

    // Assert 3: both are deleted, the host holds nothing of them, and the host never held more
    // than its capacity; the audit log of all three replicas is one intact chain.
    tokio::task::block_in_place(|| {
        for id in &ids {
            wait_gone(&replicas[alive], id);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let left = managed_namespaces(&bed).await;
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "left on the host: {left:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    watcher.abort();
    let most = most.load(Ordering::SeqCst);
    assert!(most <= CAPACITY, "the host held {most} clusters at once");
    let verified = replicas[alive].cli_ok(&["audit", "verify"]);
    assert!(verified.contains("audit log intact"), "{verified}");
    drop(replicas);
    db.close().await;
    drop(pg);
}
