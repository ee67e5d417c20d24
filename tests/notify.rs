//! The alert notifier against real parts: the SQLite store in a file, the cluster service and
//! reconciler (over the scripted fake driver), and webhook receivers on 127.0.0.1 that record
//! what vcm posts. A cluster fails, a host fills up and a cluster sits in `Pending` past its
//! threshold; each is posted once per webhook, in vcm's JSON and in Slack's shape, and not
//! again after a restart. A receiver that is down, then answers 500, gets the alert later; one
//! over its rate limit gets the rest on a later minute.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use serde_json::Value;
use tokio::sync::Notify;

use vcm::api::CreateClusterRequest;
use vcm::config::notify::{AlertKind, NotifyConfig, NotifyWebhook, WebhookFormat};
use vcm::domain::{Phase, Principal, Role};
use vcm::driver::HostInfo;
use vcm::driver::fake::{FakeDriver, Outcome};
use vcm::notify::Notifier;
use vcm::reconciler::Reconciler;
use vcm::service::{ClusterPolicy, ClusterService};

const PUBLIC_URL: &str = "https://vcm.example.com";

/// A webhook receiver on loopback: records `(path, body)` of every post, and answers with the
/// scripted statuses first, 200 after.
#[derive(Clone, Default)]
struct Receiver {
    posts: Arc<Mutex<Vec<(String, Value)>>>,
    answers: Arc<Mutex<VecDeque<u16>>>,
}

impl Receiver {
    async fn start_on(self, addr: SocketAddr) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new()
            .route("/{*path}", axum::routing::post(record))
            .with_state(self);
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    }

    async fn start(self) -> SocketAddr {
        self.start_on(SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    fn answer(&self, statuses: &[u16]) {
        self.answers.lock().unwrap().extend(statuses);
    }

    fn posts(&self, path: &str) -> Vec<Value> {
        let posts = self.posts.lock().unwrap();
        posts
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, b)| b.clone())
            .collect()
    }
}

async fn record(
    State(rx): State<Receiver>,
    uri: axum::http::Uri,
    axum::Json(body): axum::Json<Value>,
) -> StatusCode {
    let status = rx.answers.lock().unwrap().pop_front().unwrap_or(200);
    rx.posts
        .lock()
        .unwrap()
        .push((uri.path().trim_start_matches('/').to_owned(), body));
    StatusCode::from_u16(status).unwrap()
}

struct World {
    service: ClusterService,
    driver: Arc<FakeDriver>,
    reconciler: Reconciler,
}

/// The service over the SQLite file `db`, one host `local` taking `max` clusters.
async fn world(db: &std::path::Path, max: u32) -> World {
    vcm::telemetry::init_for_tests();
    let store = vcm::store::open(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let driver = Arc::new(FakeDriver::default());
    driver.set_hosts(vec![HostInfo {
        name: "local".into(),
        labels: Default::default(),
        max_clusters: Some(max),
        reachable: true,
        message: String::new(),
    }]);
    let wake = Arc::new(Notify::new());
    let service = ClusterService::new(
        store,
        driver.clone(),
        ClusterPolicy::default(),
        wake.clone(),
    )
    .with_host_view_max_age(Duration::ZERO);
    let reconciler = Reconciler::new(service.clone(), wake, 2);
    World {
        service,
        driver,
        reconciler,
    }
}

fn hook(addr: SocketAddr, path: &str, format: WebhookFormat) -> NotifyWebhook {
    NotifyWebhook {
        url: format!("http://{addr}/{path}"),
        format,
        events: None,
        name: None,
    }
}

fn config(webhooks: Vec<NotifyWebhook>) -> NotifyConfig {
    NotifyConfig {
        webhooks,
        stuck_pending: "1s".into(),
        check_interval: "1s".into(),
        ..NotifyConfig::default()
    }
}

fn notifier(config: &NotifyConfig, w: &World) -> Notifier {
    Notifier::from_config(config, Some(PUBLIC_URL), w.service.clone())
        .unwrap()
        .expect("webhooks are configured")
        .with_metrics(w.service.metrics().clone())
}

async fn create(w: &World, name: &str) -> vcm::domain::Cluster {
    let who = Principal::token("t-ci", "ci", Role::Admin, None);
    let req = CreateClusterRequest {
        name: Some(name.into()),
        ..Default::default()
    };
    w.service.create(&who, req, None).await.unwrap().0
}

fn alerts(bodies: &[Value]) -> Vec<String> {
    let mut keys: Vec<String> = bodies
        .iter()
        .map(|b| b["alert"].as_str().unwrap_or("?").to_owned())
        .collect();
    keys.sort();
    keys
}

async fn backlog(w: &World) -> u64 {
    w.service
        .store()
        .census()
        .await
        .unwrap()
        .notification_backlog
}

#[tokio::test]
async fn each_alert_is_posted_once_in_both_formats_and_not_again_after_a_restart() {
    // Arrange: a JSON and a Slack webhook; the notifier's first pass marks where news starts.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("vcm.db");
    let rx = Receiver::default();
    let addr = rx.clone().start().await;
    let config = config(vec![
        hook(addr, "json", WebhookFormat::Json),
        hook(addr, "slack", WebhookFormat::Slack),
    ]);
    let w = world(&db, 1).await;
    let mut n = notifier(&config, &w);
    n.pass().await;
    assert!(rx.posts("json").is_empty(), "nothing to report yet");

    // Act: a cluster fails for good, another takes the host's only place and sits Pending.
    w.driver
        .script_ensure([Outcome::Permanent("the chart was refused".into())]);
    let doomed = create(&w, "doomed").await;
    w.reconciler.reconcile_until_idle(20).await;
    let failed = w
        .service
        .store()
        .get_cluster(&doomed.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(failed.phase, Phase::Failed, "{}", failed.message);
    let waiting = create(&w, "waiting").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    n.pass().await;
    n.pass().await;

    // Assert: each alert once per webhook.
    let json = rx.posts("json");
    assert_eq!(
        alerts(&json),
        ["cluster_failed", "cluster_stuck", "host_capacity"],
        "{json:#?}"
    );
    let by = |alert: &str| json.iter().find(|b| b["alert"] == alert).unwrap().clone();
    let f = by("cluster_failed");
    assert_eq!(f["subject"]["id"], doomed.id.as_str());
    assert_eq!(f["subject"]["name"], "doomed");
    assert_eq!(f["subject"]["owner"], "token:t-ci");
    assert_eq!(f["vcm"], PUBLIC_URL);
    assert!(
        f["summary"]
            .as_str()
            .unwrap()
            .contains("the chart was refused"),
        "{f}"
    );
    assert!(f["at"].as_str().unwrap().parse::<jiff::Timestamp>().is_ok());
    let h = by("host_capacity");
    assert_eq!(h["severity"], "critical");
    assert_eq!(h["subject"]["host"], "local");
    assert_eq!(h["subject"]["capacity"], 1);
    let s = by("cluster_stuck");
    assert_eq!(s["subject"]["id"], waiting.id.as_str());
    assert_eq!(s["subject"]["phase"], "Pending");
    let slack = rx.posts("slack");
    assert_eq!(slack.len(), 3, "{slack:#?}");
    for body in &slack {
        let text = body["text"].as_str().expect("Slack's text field");
        assert!(text.contains(PUBLIC_URL), "{text}");
        assert_eq!(body.as_object().unwrap().len(), 1, "text alone: {body}");
    }
    assert!(
        slack
            .iter()
            .any(|b| b["text"].as_str().unwrap().contains("doomed")),
        "{slack:#?}"
    );
    let metrics = w.service.metrics().render();
    assert!(
        metrics.contains(
            r#"vcm_notifications_total{format="slack",alert="cluster_failed",outcome="sent"} 1"#
        ),
        "{metrics}"
    );
    assert_eq!(backlog(&w).await, 0);

    // Act: a restart (a new store handle on the same file, a new notifier) and more passes.
    drop(n);
    let again = world(&db, 1).await;
    let mut n = notifier(&config, &again);
    n.pass().await;
    n.pass().await;

    // Assert: nothing is posted twice.
    assert_eq!(rx.posts("json").len(), 3, "{:#?}", rx.posts("json"));
    assert_eq!(rx.posts("slack").len(), 3);
}

#[tokio::test]
async fn an_alert_waits_while_its_receiver_is_down_or_failing_and_arrives_later() {
    // Arrange: a receiver that is not up yet, and answers 500 once when it is.
    let dir = tempfile::tempdir().unwrap();
    let w = world(&dir.path().join("vcm.db"), 10).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = port.local_addr().unwrap();
    drop(port);
    let config = config(vec![hook(addr, "s3cr3t", WebhookFormat::Json)]);
    let mut n = notifier(&config, &w);
    n.pass().await;
    w.driver.script_ensure([Outcome::Permanent("boom".into())]);
    create(&w, "one").await;
    w.reconciler.reconcile_until_idle(20).await;

    // Act + Assert: while the receiver is down the alert waits in the outbox.
    n.pass().await;
    assert_eq!(backlog(&w).await, 1, "it waits while the receiver is down");
    let later = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1);
    let waiting = w
        .service
        .store()
        .due_notifications(later, 10)
        .await
        .unwrap();
    let error = waiting[0].last_error.clone().expect("the failure is kept");
    assert!(
        !error.contains("s3cr3t"),
        "the URL (a credential) is kept out: {error}"
    );
    let rx = Receiver::default();
    rx.answer(&[500]);
    rx.clone().start_on(addr).await;
    n.pass().await;
    assert!(
        rx.posts("s3cr3t").is_empty(),
        "not before its backoff (2 s)"
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    n.pass().await;
    assert_eq!(rx.posts("s3cr3t").len(), 1, "answered 500");
    assert_eq!(backlog(&w).await, 1);
    tokio::time::sleep(Duration::from_millis(4100)).await;
    n.pass().await;

    // Assert: the same alert arrived on the third attempt, and is not sent again.
    let posts = rx.posts("s3cr3t");
    assert_eq!(posts.len(), 2, "{posts:#?}");
    assert_eq!(posts[0], posts[1], "the same alert, retried");
    assert_eq!(posts[1]["alert"], "cluster_failed");
    assert_eq!(backlog(&w).await, 0);
    n.pass().await;
    assert_eq!(rx.posts("s3cr3t").len(), 2);
    let metrics = w.service.metrics().render();
    assert!(
        metrics.contains(
            r#"vcm_notifications_total{format="json",alert="cluster_failed",outcome="retried"} 2"#
        ),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_webhook_over_its_rate_limit_gets_the_rest_later_and_filters_by_event() {
    // Arrange: one post a minute, failures only.
    let dir = tempfile::tempdir().unwrap();
    let w = world(&dir.path().join("vcm.db"), 1).await;
    let rx = Receiver::default();
    let addr = rx.clone().start().await;
    let mut config = config(vec![NotifyWebhook {
        events: Some(vec![AlertKind::ClusterFailed]),
        ..hook(addr, "json", WebhookFormat::Json)
    }]);
    config.max_per_minute = 1;
    let mut n = notifier(&config, &w);
    n.pass().await;

    // Act: two clusters fail.
    w.driver.script_ensure([
        Outcome::Permanent("first".into()),
        Outcome::Permanent("second".into()),
    ]);
    create(&w, "one").await;
    w.reconciler.reconcile_until_idle(20).await;
    create(&w, "two").await;
    w.reconciler.reconcile_until_idle(20).await;
    create(&w, "holder").await;
    n.pass().await;
    n.pass().await;

    // Assert: one posted, one waiting; no capacity alert for a webhook that wants failures.
    let posts = rx.posts("json");
    assert_eq!(alerts(&posts), ["cluster_failed"], "{posts:#?}");
    assert_eq!(backlog(&w).await, 1, "the second waits for the next minute");
}
