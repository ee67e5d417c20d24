//! The HTTP API through the typed client, against a server on a loopback port (port 0) with an
//! in-memory store and the scripted fake driver; the reconciler is driven step by step.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use reqwest::Url;
use tokio::sync::{Notify, oneshot};
use vcm::api::{CreateClusterRequest, UpdateClusterRequest};
use vcm::auth::{Authenticator, bootstrap_token};
use vcm::client::{Client, ClientError, ListQuery};
use vcm::config::Config;
use vcm::domain::{Role, TokenSecret};
use vcm::driver::fake::FakeDriver;
use vcm::http::AppState;
use vcm::reconciler::Reconciler;
use vcm::server::Server;
use vcm::service::{ClusterPolicy, ClusterService};
use vcm::store::{SqliteStore, Store};

const TOKEN: &str = "vcm_00000000000000000000000000000000000000000000000000000000000000aa";

/// A running server and what drives it; dropping it stops the server.
struct TestApp {
    addr: Url,
    client: Client,
    reconciler: Reconciler,
    _stop: oneshot::Sender<()>,
}

async fn spawn_app() -> TestApp {
    spawn_app_with(Arc::new(FakeDriver::default())).await
}

async fn spawn_app_with(driver: Arc<FakeDriver>) -> TestApp {
    vcm::telemetry::init_for_tests();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open("sqlite::memory:").await.unwrap());
    bootstrap_token(
        store.as_ref(),
        "ci",
        Role::Admin,
        &TokenSecret::parse(TOKEN).unwrap(),
    )
    .await
    .unwrap();
    let wake = Arc::new(Notify::new());
    let service = ClusterService::new(
        store.clone(),
        driver,
        ClusterPolicy::default(),
        wake.clone(),
    );
    let reconciler = Reconciler::new(service.clone(), wake, 2);
    let state = AppState::new(service, Arc::new(Authenticator::new(store)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = Server::build_with_listener(Config::default(), listener, state).unwrap();
    let addr: Url = format!("http://{}", server.addr()).parse().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(server.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    TestApp {
        client: Client::new(addr.clone(), Some(TOKEN.into())).unwrap(),
        addr,
        reconciler,
        _stop: stop,
    }
}

fn named(name: &str, labels: &[(&str, &str)]) -> CreateClusterRequest {
    CreateClusterRequest {
        name: Some(name.into()),
        labels: Some(
            labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        ),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_cluster_goes_from_create_to_ready_to_deleted_through_the_client() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let created = app
        .client
        .create(&named("web", &[("repo", "web")]), None)
        .await
        .unwrap();
    app.reconciler.reconcile_until_idle(20).await;
    let ready = app.client.get("web").await.unwrap();
    let updated = app
        .client
        .update(
            &created.id,
            &UpdateClusterRequest {
                ttl: Some("3h".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let kept = app.client.keepalive("web").await.unwrap();
    let deleting = app.client.delete("web").await.unwrap();
    let again = app.client.delete(&created.id).await.unwrap();
    app.reconciler.reconcile_until_idle(20).await;
    let deleted = app.client.get(&created.id).await.unwrap();
    let events = app.client.events(&created.id).await.unwrap();

    // Assert
    assert_eq!(created.phase, "Pending");
    assert_eq!(ready.phase, "Ready", "{ready:?}");
    assert_eq!(updated.ttl, "3h");
    assert_eq!(kept.id, created.id);
    assert_eq!(deleting.phase, "Deleting");
    assert_eq!(again.phase, "Deleting");
    assert_eq!(deleted.phase, "Deleted");
    let kinds: Vec<&str> = events.items.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds.first(), Some(&"created"), "{kinds:?}");
    assert!(kinds.contains(&"updated"), "{kinds:?}");
}

#[tokio::test]
async fn a_retried_create_with_the_same_key_returns_the_same_cluster() {
    // Arrange
    let app = spawn_app().await;
    let req = named("ci-run", &[]);

    // Act
    let first = app.client.create(&req, Some("run-17")).await.unwrap();
    let second = app.client.create(&req, Some("run-17")).await.unwrap();
    let other = app
        .client
        .create(&named("ci-other", &[]), Some("run-17"))
        .await
        .unwrap_err();

    // Assert
    assert_eq!(first.id, second.id);
    assert_eq!(other.status(), Some(409));
    assert_eq!(other.code(), Some("idempotency_key_reused"));
}

#[tokio::test]
async fn listing_follows_cursors_and_bulk_delete_takes_the_matching_clusters() {
    // Arrange
    let app = spawn_app().await;
    for n in 0..5 {
        let req = named(&format!("pr-{n}"), &[("repo", "web")]);
        app.client.create(&req, None).await.unwrap();
    }
    app.client
        .create(&named("other", &[("repo", "api")]), None)
        .await
        .unwrap();
    let query = ListQuery {
        labels: vec!["repo=web".into()],
        limit: Some(2),
        ..Default::default()
    };

    // Act
    let first_page = app.client.list(&query).await.unwrap();
    let all = app.client.list_all(&query).await.unwrap();
    let deleted = app
        .client
        .delete_by_labels(&["repo=web".into()])
        .await
        .unwrap();
    let pending = app
        .client
        .list_all(&ListQuery {
            phase: Some("Pending".into()),
            ..Default::default()
        })
        .await
        .unwrap();

    // Assert
    assert_eq!(first_page.items.len(), 2);
    assert!(first_page.next_cursor.is_some());
    assert_eq!(all.len(), 5);
    assert_eq!(deleted.ids.len(), 5);
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].name, "other");
}

#[tokio::test]
async fn api_errors_carry_status_code_message_and_request_id() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let err = app.client.get("nope").await.unwrap_err();

    // Assert
    let ClientError::Api {
        status,
        code,
        message,
        request_id,
        ..
    } = &err
    else {
        panic!("expected an API error, got {err:?}");
    };
    assert_eq!(*status, 404);
    assert_eq!(code, "cluster_not_found");
    assert!(!request_id.is_empty());
    assert_eq!(
        err.to_string(),
        format!("{message} (cluster_not_found, HTTP 404)")
    );
}

#[tokio::test]
async fn a_wrong_token_is_a_401_and_a_pending_cluster_has_no_kubeconfig() {
    // Arrange
    let app = spawn_app().await;
    let stranger = Client::new(app.addr.clone(), Some(format!("vcm_{}", "b".repeat(64)))).unwrap();
    app.client.create(&named("web", &[]), None).await.unwrap();

    // Act
    let unauthenticated = stranger.list(&ListQuery::default()).await.unwrap_err();
    let not_ready = app
        .client
        .kubeconfig("web", None, None, false)
        .await
        .unwrap_err();

    // Assert
    assert_eq!(unauthenticated.status(), Some(401));
    assert_eq!(unauthenticated.code(), Some("unauthenticated"));
    assert_eq!(not_ready.status(), Some(409));
    assert_eq!(not_ready.code(), Some("cluster_not_ready"));
}

#[tokio::test]
async fn a_server_side_failure_is_an_opaque_500() {
    // Arrange: the fake driver has no control plane to mint credentials from.
    let app = spawn_app().await;
    app.client.create(&named("web", &[]), None).await.unwrap();
    app.reconciler.reconcile_until_idle(20).await;

    // Act
    let err = app
        .client
        .kubeconfig("web", None, None, true)
        .await
        .unwrap_err();

    // Assert
    assert_eq!(err.status(), Some(500));
    assert_eq!(err.code(), Some("internal"));
    assert!(!err.to_string().contains("fake driver"), "{err}");
}

#[tokio::test]
async fn an_unreachable_server_is_an_error_naming_the_address_and_vcm_addr() {
    // Arrange: a port that was free a moment ago.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr: Url = format!("http://{}", listener.local_addr().unwrap())
        .parse()
        .unwrap();
    drop(listener);
    let client = Client::new(addr.clone(), Some(TOKEN.into())).unwrap();

    // Act
    let err = client.get("web").await.unwrap_err();

    // Assert
    assert!(matches!(err, ClientError::Connect { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains(addr.as_str()), "{message}");
    assert!(message.contains("VCM_ADDR"), "{message}");
}

/// One host with room for one cluster.
fn mk_full_driver() -> Arc<FakeDriver> {
    let driver = Arc::new(FakeDriver::default());
    driver.set_hosts(vec![vcm::driver::HostInfo {
        name: "only".into(),
        labels: Default::default(),
        max_clusters: Some(1),
        reachable: true,
        message: String::new(),
    }]);
    driver
}

fn mk_cli(app: &TestApp, args: &[&str]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_vcm"));
    cmd.args(args)
        .env("VCM_ADDR", app.addr.as_str())
        .env("VCM_TOKEN", TOKEN)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    cmd
}

#[tokio::test]
async fn a_full_host_answers_503_naming_its_use_with_retry_after() {
    // Arrange
    let app = spawn_app_with(mk_full_driver()).await;
    app.client.create(&named("first", &[]), None).await.unwrap();

    // Act
    let err = app
        .client
        .create(&named("second", &[]), None)
        .await
        .unwrap_err();

    // Assert
    let ClientError::Api {
        status,
        code,
        message,
        retry_after,
        ..
    } = err
    else {
        panic!("an API error: {err}");
    };
    assert_eq!(status, 503);
    assert_eq!(code, "no_capacity");
    assert!(
        message.contains("only 1/1"),
        "the message says which host is full: {message}"
    );
    assert_eq!(retry_after, Some(30));
}

#[tokio::test]
async fn cli_create_waits_out_a_full_host_and_makes_exactly_one_cluster() {
    // Arrange
    let app = spawn_app_with(mk_full_driver()).await;
    let first = app.client.create(&named("first", &[]), None).await.unwrap();
    let cli = mk_cli(
        &app,
        &[
            "cluster",
            "create",
            "--name",
            "second",
            "--retry-for",
            "2m",
            "-o",
            "json",
        ],
    )
    .spawn()
    .unwrap();

    // Act: the CLI is refused (503, Retry-After 30 s) until the first cluster is gone; free
    // the host only once it has said so, however slowly it started.
    let mut cli = cli;
    let mut stderr_pipe = cli.stderr.take().unwrap();
    let mut said = Vec::new();
    let waited = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        use tokio::io::AsyncReadExt as _;
        let mut buf = [0u8; 1024];
        while !String::from_utf8_lossy(&said).contains("retrying in") {
            let n = stderr_pipe.read(&mut buf).await.unwrap();
            assert!(
                n > 0,
                "the CLI ended without retrying: {}",
                String::from_utf8_lossy(&said)
            );
            said.extend_from_slice(&buf[..n]);
        }
    })
    .await;
    assert!(
        waited.is_ok(),
        "no retry message: {}",
        String::from_utf8_lossy(&said)
    );
    app.client.delete(&first.id).await.unwrap();
    app.reconciler.reconcile_until_idle(20).await;
    let out = tokio::time::timeout(std::time::Duration::from_secs(60), cli.wait_with_output())
        .await
        .expect("the CLI retries within the server's Retry-After")
        .unwrap();

    {
        use tokio::io::AsyncReadExt as _;
        stderr_pipe.read_to_end(&mut said).await.unwrap(); // the rest of what it said
    }

    // Assert
    let stderr = String::from_utf8_lossy(&said);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("no host has room") && stderr.contains("retrying in 30s"),
        "the CLI says what it waits for: {stderr}"
    );
    let created: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(created["name"], "second");
    let named_second = app
        .client
        .list(&ListQuery::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|c| c.name == "second")
        .count();
    assert_eq!(named_second, 1);
}

#[tokio::test]
async fn cli_create_gives_up_after_retry_for_with_the_servers_reason() {
    // Arrange
    let app = spawn_app_with(mk_full_driver()).await;
    app.client.create(&named("first", &[]), None).await.unwrap();

    // Act
    let out = mk_cli(&app, &["cluster", "create", "--retry-for", "0s"])
        .output()
        .await
        .unwrap();

    // Assert
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("only 1/1") && stderr.contains("--retry-for"),
        "{stderr}"
    );
}
