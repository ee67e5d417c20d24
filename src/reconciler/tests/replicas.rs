//! Three replicas (a service with its own pool and a reconciler each) on one real PostgreSQL,
//! sharing one host (the fake driver, wrapped to catch two calls on one cluster at once).
//! Replicas are killed mid-step by aborting their reconciler: its steps are dropped and its
//! claims stay in the database until they run out, as after a SIGKILL.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;

use super::*;
use crate::controlplane::Kubeconfig;
use crate::driver::{DriverError, Ensured, HostInfo};
use crate::testing::postgres::TestPostgres;

/// The shared host: the fake driver, counting calls in flight per cluster.
struct Watched {
    inner: Arc<FakeDriver>,
    busy: Arc<std::sync::Mutex<HashMap<ClusterId, usize>>>,
    overlaps: AtomicUsize,
    delete_delay: Duration,
}

/// One call in flight on a cluster, counted off when the call ends or is dropped.
struct Busy {
    busy: Arc<std::sync::Mutex<HashMap<ClusterId, usize>>>,
    id: ClusterId,
}

impl Drop for Busy {
    fn drop(&mut self) {
        let mut busy = self.busy.lock().unwrap();
        *busy.get_mut(&self.id).unwrap() -= 1;
    }
}

impl Watched {
    fn enter(&self, id: &ClusterId) -> Busy {
        let mut busy = self.busy.lock().unwrap();
        let n = busy.entry(id.clone()).or_insert(0);
        *n += 1;
        if *n > 1 {
            self.overlaps.fetch_add(1, Ordering::SeqCst);
        }
        Busy {
            busy: self.busy.clone(),
            id: id.clone(),
        }
    }
}

#[async_trait]
impl crate::driver::Driver for Watched {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    async fn hosts(&self) -> Vec<HostInfo> {
        self.inner.hosts().await
    }
    async fn ensure(&self, cluster: &Cluster) -> Result<Ensured, DriverError> {
        let _busy = self.enter(&cluster.id);
        self.inner.ensure(cluster).await
    }
    async fn delete(&self, id: &ClusterId) -> Result<(), DriverError> {
        let _busy = self.enter(id);
        tokio::time::sleep(self.delete_delay).await;
        self.inner.delete(id).await
    }
    async fn admin_kubeconfig(&self, cluster: &Cluster) -> Result<Kubeconfig, DriverError> {
        self.inner.admin_kubeconfig(cluster).await
    }
    async fn list_managed(&self) -> Result<Vec<ClusterId>, DriverError> {
        self.inner.list_managed().await
    }
}

/// Claims `replica` holds now, read straight from the database.
async fn claims_of(pool: &sqlx::PgPool, replica: &str) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM cluster_claims WHERE holder = $1")
        .bind(replica)
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn wait_until(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_converge_every_cluster_when_two_die_mid_step() {
    // Arrange: one database, one host with room for 6, three replicas.
    crate::telemetry::init_for_tests();
    let pg = TestPostgres::start().await;
    let url = pg.database().await;
    let db = sqlx::PgPool::connect(&url).await.unwrap();
    let fake = Arc::new(FakeDriver::default());
    fake.set_hosts(vec![HostInfo {
        name: "shared".into(),
        max_clusters: Some(6),
        ..mk_local_host()
    }]);
    fake.set_ensure_delay(Duration::from_millis(400));
    let driver = Arc::new(Watched {
        inner: fake.clone(),
        busy: Arc::default(),
        overlaps: AtomicUsize::new(0),
        delete_delay: Duration::from_millis(400),
    });
    let mut services = Vec::new();
    let mut replicas = Vec::new();
    for _ in 0..3 {
        let store = crate::store::open(&url).await.unwrap();
        let wake = Arc::new(Notify::new());
        let service = ClusterService::new(
            store,
            driver.clone(),
            ClusterPolicy::default(),
            wake.clone(),
        );
        let reconciler = Reconciler::new(service.clone(), wake, 4)
            .with_claim_ttl(Duration::from_secs(1))
            .with_health_check_interval(Duration::from_millis(200));
        let id = reconciler.replica().to_owned();
        let run = tokio::spawn(reconciler.run(CancellationToken::new()));
        services.push(service);
        replicas.push((id, run));
    }

    // Act 1: eight creates at once through the three replicas, for six places.
    let creates: Vec<_> = (0..8)
        .map(|i| {
            let service = services[i % 3].clone();
            tokio::spawn(async move {
                let req = CreateClusterRequest {
                    name: Some(format!("c{i}")),
                    ..Default::default()
                };
                service.create(&who(), req, None).await
            })
        })
        .collect();
    let mut ids = Vec::new();
    for t in creates {
        match t.await.unwrap() {
            Ok((c, _)) => ids.push(c.id),
            Err(e) => assert_eq!(e.code(), "no_capacity", "{e}"),
        }
    }
    assert_eq!(ids.len(), 6, "exactly the host's max_clusters are accepted");

    // Kill replica 0 while it holds clusters being provisioned.
    let (dead, run) = &replicas[0];
    wait_until("replica 0 claims a cluster", async || {
        claims_of(&db, dead).await > 0
    })
    .await;
    run.abort();

    // Assert 1: every cluster becomes Ready, on the replicas left.
    let reader = services[1].clone();
    for id in &ids {
        wait_until(&format!("{id} is Ready"), async || {
            phase_of(&reader, id).await.phase == Phase::Ready
        })
        .await;
    }

    // Act 2: delete three through replicas 1 and 2, and kill replica 1 mid-delete.
    for (i, id) in ids[..3].iter().enumerate() {
        services[1 + i % 2]
            .delete(&who(), id.as_str(), DeleteReason::Requested)
            .await
            .unwrap();
    }
    let (dying, run) = &replicas[1];
    wait_until("replica 1 claims a cluster", async || {
        claims_of(&db, dying).await > 0
    })
    .await;
    run.abort();

    // Assert 2: the deleted ones are Deleted, the rest Ready, by the last replica.
    for id in &ids[..3] {
        wait_until(&format!("{id} is Deleted"), async || {
            phase_of(&reader, id).await.phase == Phase::Deleted
        })
        .await;
    }
    for id in &ids[3..] {
        assert_eq!(phase_of(&reader, id).await.phase, Phase::Ready);
    }
    let mut managed = fake.list_managed().await.unwrap();
    managed.sort();
    let mut kept = ids[3..].to_vec();
    kept.sort();
    assert_eq!(managed, kept, "the host holds exactly the live clusters");
    assert_eq!(
        driver.overlaps.load(Ordering::SeqCst),
        0,
        "two replicas called the driver for one cluster at once"
    );
    replicas[2].1.abort();
}

#[tokio::test]
async fn a_poll_leaves_the_clusters_another_replica_is_stepping_to_it() {
    // Arrange: two replicas on one database and four due clusters, two of which replica A is
    // stepping now (it holds their claims).
    crate::telemetry::init_for_tests();
    let pg = TestPostgres::start().await;
    let url = pg.database().await;
    let mut replicas = Vec::new();
    for _ in 0..2 {
        let store = crate::store::open(&url).await.unwrap();
        let wake = Arc::new(Notify::new());
        let driver = Arc::new(FakeDriver::default());
        let service = ClusterService::new(store, driver, ClusterPolicy::default(), wake.clone());
        replicas.push((service.clone(), Reconciler::new(service, wake, 8)));
    }
    let (service, a) = &replicas[0];
    let b = &replicas[1].1;
    let mut ids = Vec::new();
    for name in ["c0", "c1", "c2", "c3"] {
        ids.push(mk_cluster(service, name).await.id);
    }
    let now = Timestamp::now();
    let until = now + jiff::SignedDuration::from_secs(30);
    for id in &ids[..2] {
        let claimed = service.store().claim_cluster(id, a.replica(), until, now);
        assert!(claimed.await.unwrap());
    }

    // Act: one poll of each. NB: on this current-thread runtime the steps spawned do not run
    // before the poll returns, so what each poll started is still in flight to be counted.
    let mut started = Vec::new();
    for r in [a, b] {
        let mut tasks = JoinSet::new();
        r.dispatch(&mut tasks).await.unwrap();
        let mut busy: Vec<ClusterId> = r.in_flight.lock().unwrap().keys().cloned().collect();
        busy.sort();
        started.push((tasks.len(), busy));
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
    }

    // Assert: B neither steps nor tries to claim what A holds; A still sees its own.
    let mut free = ids[2..].to_vec();
    free.sort();
    assert_eq!(
        started[1],
        (2, free),
        "replica B starts only the free clusters"
    );
    assert_eq!(
        started[0].0, 4,
        "replica A sees its own claims and the free ones"
    );
}
