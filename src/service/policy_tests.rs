#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use tokio::sync::Notify;

use super::*;
use crate::api::CreateClusterRequest;
use crate::config::policy::PolicyConfig;
use crate::domain::Role;
use crate::driver::HostInfo;
use crate::driver::fake::FakeDriver;
use crate::service::ClusterPolicy;

/// A service over a real SQLite file, putting requests to the `.rego` files `paths`.
async fn mk_service(dir: &Path, paths: Vec<std::path::PathBuf>) -> ClusterService {
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
    let policy = Policy::load(&PolicyConfig {
        paths,
        ..PolicyConfig::default()
    })
    .unwrap();
    ClusterService::new(
        store,
        driver,
        ClusterPolicy::default(),
        Arc::new(Notify::new()),
    )
    .with_policy(Some(Arc::new(policy)))
}

#[tokio::test]
async fn a_policy_that_reads_usage_gets_the_callers_live_clusters() {
    // Arrange: a quota of two live clusters per team and one per caller, by policy alone.
    let dir = tempfile::tempdir().unwrap();
    let rego = dir.path().join("quota.rego");
    std::fs::write(
        &rego,
        "package vcm\n\n\
         deny contains \"team web holds two\" if input.usage.team_live_clusters >= 2\n\n\
         deny contains \"you hold one\" if input.usage.principal_live_clusters >= 1\n",
    )
    .unwrap();
    let service = mk_service(dir.path(), vec![rego]).await;
    assert!(service.rego().unwrap().reads_usage());
    let first = Principal::token("t-1", "first", Role::Developer, Some("web".into()));
    let second = Principal::token("t-2", "second", Role::Developer, Some("web".into()));
    let third = Principal::token("t-3", "third", Role::Developer, Some("web".into()));

    // Act
    service
        .create(&first, CreateClusterRequest::default(), None)
        .await
        .unwrap();
    let again = service
        .create(&first, CreateClusterRequest::default(), None)
        .await
        .unwrap_err();
    service
        .create(&second, CreateClusterRequest::default(), None)
        .await
        .unwrap();
    let over = service
        .create(&third, CreateClusterRequest::default(), None)
        .await
        .unwrap_err();

    // Assert
    assert_eq!(again.code(), "policy_denied");
    assert!(again.to_string().contains("you hold one"), "{again}");
    assert!(!again.to_string().contains("team web holds two"), "{again}");
    assert_eq!(over.code(), "policy_denied");
    assert!(over.to_string().contains("team web holds two"), "{over}");
}

#[tokio::test]
async fn a_policy_that_cannot_read_usage_decides_without_it() {
    // Arrange: the shipped ci-labels rule, which reads no usage.
    let dir = tempfile::tempdir().unwrap();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/policies/ci_labels.rego");
    let service = mk_service(dir.path(), vec![shipped]).await;
    assert!(!service.rego().unwrap().reads_usage());
    let ci = Principal::token("t-ci", "ci", Role::Ci, Some("web".into()));
    let labelled = CreateClusterRequest {
        labels: Some(
            [
                ("repo".to_owned(), "web".to_owned()),
                ("pr".to_owned(), "1".to_owned()),
            ]
            .into(),
        ),
        ..CreateClusterRequest::default()
    };

    // Act
    let bare = service
        .create(&ci, CreateClusterRequest::default(), None)
        .await
        .unwrap_err();
    let made = service.create(&ci, labelled, None).await;

    // Assert
    assert_eq!(bare.code(), "policy_denied");
    assert!(
        bare.to_string().contains("ci clusters need the label repo"),
        "{bare}"
    );
    assert!(made.is_ok(), "{made:?}");
}
