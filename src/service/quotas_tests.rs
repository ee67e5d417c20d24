#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use tokio::sync::Notify;

use super::*;
use crate::api::CreateClusterRequest;
use crate::config::quotas::QuotaLimits;
use crate::domain::{DeleteReason, Role};
use crate::driver::HostInfo;
use crate::driver::fake::FakeDriver;
use crate::service::ClusterPolicy;

/// A service over a real SQLite file (the store `vcm server` opens: cached, one writer).
async fn mk_service(quotas: QuotasConfig, dir: &std::path::Path) -> ClusterService {
    let url = format!("sqlite://{}", dir.join("vcm.db").display());
    let store = crate::store::open(&url).await.unwrap();
    let driver = Arc::new(FakeDriver::default());
    driver.set_hosts(vec![HostInfo {
        name: "local".into(),
        labels: Default::default(),
        max_clusters: Some(1000),
        reachable: true,
        message: String::new(),
    }]);
    ClusterService::new(
        store,
        driver,
        ClusterPolicy {
            quotas,
            ..ClusterPolicy::default()
        },
        Arc::new(Notify::new()),
    )
}

fn member(id: &str, role: Role) -> Principal {
    Principal::token(id, id, role, Some("web".into()))
}

fn quotas(team: QuotaLimits) -> QuotasConfig {
    QuotasConfig {
        default: None,
        teams: [("web".to_owned(), team)].into(),
    }
}

fn sized(size: &str) -> CreateClusterRequest {
    CreateClusterRequest {
        size: Some(size.into()),
        ..CreateClusterRequest::default()
    }
}

#[tokio::test]
async fn twenty_concurrent_creates_at_the_edge_of_a_team_quota_never_exceed_it() {
    let dir = tempfile::tempdir().unwrap();
    let limits = QuotaLimits {
        max_clusters: Some(5),
        ..QuotaLimits::default()
    };
    let service = mk_service(quotas(limits), dir.path()).await;
    for i in 0..2 {
        let who = member(&format!("t-early-{i}"), Role::Developer);
        service
            .create(&who, CreateClusterRequest::default(), None)
            .await
            .unwrap();
    }

    // Twenty creates at once from four members, with three places left.
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let service = service.clone();
            let who = member(&format!("t-ci-{}", i % 4), Role::Ci);
            tokio::spawn(async move {
                service
                    .create(&who, CreateClusterRequest::default(), None)
                    .await
            })
        })
        .collect();
    let mut made = 0;
    let mut refusals = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => made += 1,
            Err(e) => refusals.push((e.code(), e.kind(), e.to_string())),
        }
    }
    assert_eq!(made, 3, "{refusals:?}");
    assert_eq!(refusals.len(), 17);
    for (code, kind, message) in &refusals {
        assert_eq!(
            (*code, *kind),
            ("quota_exceeded", crate::error::ErrorKind::Forbidden)
        );
        assert!(
            message.contains("quota max_clusters of team web reached: 5 live clusters of 5"),
            "{message}"
        );
    }
    let usage = service
        .team_usage(&member("t-ci-0", Role::Ci), "web")
        .await
        .unwrap();
    assert_eq!((usage.live_clusters, usage.max_clusters), (5, Some(5)));

    // A deleted cluster gives its place back at once.
    let admin = Principal::token("t-admin", "admin", Role::Admin, None);
    let first = usage.principals[0].subject.clone();
    let theirs = service
        .list(
            &admin,
            &crate::store::ClusterFilter {
                owner: Some(first),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    service
        .delete(&admin, theirs.items[0].id.as_str(), DeleteReason::Requested)
        .await
        .unwrap();
    service
        .create(
            &member("t-late", Role::Developer),
            CreateClusterRequest::default(),
            None,
        )
        .await
        .expect("a place was freed");
}

#[tokio::test]
async fn a_principal_quota_and_a_teams_sizes_are_enforced_and_shown_to_members_only() {
    let dir = tempfile::tempdir().unwrap();
    let limits = QuotaLimits {
        max_clusters: Some(10),
        max_clusters_per_principal: Some(1),
        sizes: Some(vec!["small".into(), "medium".into()]),
    };
    let service = mk_service(quotas(limits), dir.path()).await;
    let ci = member("t-ci", Role::Ci);
    service.create(&ci, sized("small"), None).await.unwrap();
    let second = service
        .create(&ci, sized("small"), None)
        .await
        .expect_err("one each");
    assert_eq!(second.code(), "quota_exceeded");
    assert!(
        second.to_string().contains(
            "quota max_clusters_per_principal of t-ci (token:t-ci) reached: 1 live clusters of 1"
        ),
        "{second}"
    );
    let large = service
        .create(&member("t-dev", Role::Developer), sized("large"), None)
        .await
        .expect_err("large is not the team's");
    assert_eq!(large.code(), "quota_exceeded");
    assert!(
        large
            .to_string()
            .contains("size large is not allowed for team web; allowed: small, medium"),
        "{large}"
    );
    // A principal of another team (no entry, no default) has no limits.
    let other = Principal::token("t-data", "data", Role::Developer, Some("data".into()));
    service
        .create(&other, sized("large"), None)
        .await
        .expect("no quota for data");

    let usage = service
        .team_usage(&member("t-view", Role::Viewer), "web")
        .await
        .unwrap();
    assert_eq!(usage.live_clusters, 1);
    assert_eq!(usage.max_clusters_per_principal, Some(1));
    assert_eq!(usage.principals.len(), 1);
    assert_eq!(usage.principals[0].subject, "token:t-ci");
    assert!(
        (usage.principals[0].ttl_hours - 2.0).abs() < 1e-9,
        "{usage:?}"
    );
    let refused = service
        .team_usage(&other, "web")
        .await
        .expect_err("not a member");
    assert_eq!(refused.kind(), crate::error::ErrorKind::Forbidden);
    let admin = Principal::token("t-admin", "admin", Role::Admin, None);
    assert_eq!(
        service
            .team_usage(&admin, "data")
            .await
            .unwrap()
            .live_clusters,
        1
    );
}
