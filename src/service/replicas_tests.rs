//! Placement and quotas across replicas: several services, each with its own store
//! connection pool, on one real PostgreSQL database, as several vcm processes run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use tokio::sync::Notify;

use super::*;
use crate::api::CreateClusterRequest;
use crate::config::quotas::{QuotaLimits, QuotasConfig};
use crate::domain::{Phase, Principal, Role};
use crate::driver::HostInfo;
use crate::driver::fake::FakeDriver;
use crate::error::Error;
use crate::testing::postgres::TestPostgres;

const REPLICAS: usize = 3;

/// `REPLICAS` services on the database at `url`, each with its own pool (as separate
/// processes have), one host allowing `max_clusters`, and `quotas`.
async fn mk_replicas(url: &str, max_clusters: u32, quotas: &QuotasConfig) -> Vec<ClusterService> {
    let mut services = Vec::new();
    for _ in 0..REPLICAS {
        let store = crate::store::open(url).await.unwrap();
        let driver = Arc::new(FakeDriver::default());
        driver.set_hosts(vec![HostInfo {
            name: "shared".into(),
            labels: Default::default(),
            max_clusters: Some(max_clusters),
            reachable: true,
            message: String::new(),
        }]);
        let policy = ClusterPolicy {
            quotas: quotas.clone(),
            ..ClusterPolicy::default()
        };
        services.push(ClusterService::new(
            store,
            driver,
            policy,
            Arc::new(Notify::new()),
        ));
    }
    services
}

/// `per_replica` creates at once through each service by `who(i)`; how many succeeded, and
/// the error codes of the rest.
async fn create_at_once(
    services: &[ClusterService],
    per_replica: usize,
    who: impl Fn(usize) -> Principal,
) -> (usize, Vec<&'static str>) {
    let start = Arc::new(tokio::sync::Barrier::new(services.len() * per_replica));
    let mut tasks = Vec::new();
    for (r, service) in services.iter().enumerate() {
        for i in 0..per_replica {
            let (service, start, who) = (service.clone(), start.clone(), who(r * per_replica + i));
            tasks.push(tokio::spawn(async move {
                start.wait().await;
                service
                    .create(&who, CreateClusterRequest::default(), None)
                    .await
            }));
        }
    }
    let mut made = 0;
    let mut refused = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => made += 1,
            Err(e) => refused.push(Error::code(&e)),
        }
    }
    (made, refused)
}

async fn live(service: &ClusterService) -> usize {
    let all = service.store().live_clusters().await.unwrap();
    all.iter().filter(|c| c.phase != Phase::Deleted).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_through_three_replicas_never_overfill_a_host() {
    // Arrange
    let pg = TestPostgres::start().await;
    let url = pg.database().await;
    let services = mk_replicas(&url, 5, &QuotasConfig::default()).await;

    // Act: 24 creates at once, 8 through each replica, for 5 places.
    let (made, refused) = create_at_once(&services, 8, |i| {
        Principal::token(&format!("t-{i}"), "ci", Role::Admin, None)
    })
    .await;

    // Assert
    assert_eq!(
        made, 5,
        "exactly the host's max_clusters succeed; refused: {refused:?}"
    );
    assert!(refused.iter().all(|c| *c == "no_capacity"), "{refused:?}");
    assert_eq!(live(&services[0]).await, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_through_three_replicas_never_exceed_a_team_quota() {
    // Arrange: room on the host for all, a team quota of 4.
    let pg = TestPostgres::start().await;
    let url = pg.database().await;
    let quotas = QuotasConfig {
        default: None,
        teams: [(
            "web".to_owned(),
            QuotaLimits {
                max_clusters: Some(4),
                ..QuotaLimits::default()
            },
        )]
        .into(),
    };
    let services = mk_replicas(&url, 1000, &quotas).await;

    // Act: 18 creates at once by six members of the team, through three replicas.
    let (made, refused) = create_at_once(&services, 6, |i| {
        Principal::token(&format!("t-{}", i % 6), "ci", Role::Ci, Some("web".into()))
    })
    .await;

    // Assert
    assert_eq!(
        made, 4,
        "exactly the team's quota succeeds; refused: {refused:?}"
    );
    assert!(
        refused.iter().all(|c| *c == "quota_exceeded"),
        "{refused:?}"
    );
    assert_eq!(live(&services[0]).await, 4);
}
