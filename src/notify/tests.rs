use std::time::{Duration, Instant};

use serde_json::json;

use super::alert::{self, Severity};
use super::send::{self, MAX_BACKOFF, Outcome, Target};
use crate::config::notify::{AlertKind, NotifyWebhook, WebhookFormat};
use crate::domain::{ClusterEvent, Phase, Timestamp};
use crate::driver::HostInfo;
use crate::service::HostUse;
use crate::store::conformance::mk_cluster;

fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + secs).expect("a valid time")
}

fn mk_host(name: &str, max: Option<u32>, clusters: u32) -> HostUse {
    HostUse {
        host: HostInfo {
            name: name.into(),
            labels: Default::default(),
            max_clusters: max,
            reachable: true,
            message: String::new(),
        },
        clusters,
    }
}

fn mk_target(events: Option<Vec<AlertKind>>, max_per_minute: u32) -> Target {
    let hook = NotifyWebhook {
        url: "http://127.0.0.1:9/hook/secret-part".into(),
        format: WebhookFormat::Slack,
        events,
        name: None,
    };
    Target::from_config(0, &hook, max_per_minute).expect("a valid webhook")
}

#[test]
fn a_failed_cluster_becomes_one_alert_keyed_by_its_id() {
    // Arrange
    let cluster = mk_cluster("web");
    let event = ClusterEvent {
        id: 7,
        cluster_id: cluster.id.clone(),
        at: at(0),
        kind: "phase_changed".into(),
        from_phase: Some(Phase::Provisioning),
        to_phase: Some(Phase::Failed),
        reason: Some("driver_error".into()),
        message: "image pull failed".into(),
    };

    // Act
    let found = alert::cluster_failed(&event, Some(&cluster));
    let payload = found.payload("https://vcm.example.com");

    // Assert
    assert_eq!(found.dedupe_key, format!("cluster_failed:{}", cluster.id));
    assert_eq!(payload["alert"], "cluster_failed");
    assert_eq!(payload["severity"], "warning");
    assert_eq!(payload["vcm"], "https://vcm.example.com");
    assert_eq!(payload["at"], at(0).to_string());
    assert_eq!(payload["subject"]["id"], cluster.id.as_str());
    assert_eq!(payload["subject"]["name"], "web");
    assert_eq!(payload["subject"]["owner"], "token:test");
    assert_eq!(payload["subject"]["phase"], "Failed");
    assert_eq!(payload["subject"]["reason"], "driver_error");
    assert_eq!(payload["subject"]["message"], "image pull failed");
    assert!(
        payload["summary"]
            .as_str()
            .is_some_and(|s| s.contains("web") && s.contains("image pull failed")),
        "{payload}"
    );
    let gone = alert::cluster_failed(&event, None);
    assert_eq!(
        gone.dedupe_key, found.dedupe_key,
        "a purged cluster is still named"
    );
}

#[test]
fn hosts_are_reported_at_the_ratio_and_critical_when_full() {
    let hosts = [
        mk_host("roomy", Some(10), 8),
        mk_host("near", Some(10), 9),
        mk_host("full", Some(2), 2),
        mk_host("unlimited", None, 500),
    ];
    let found = alert::hosts_at_capacity(&hosts, 0.9, at(0));
    let keys: Vec<(&str, Severity)> = found
        .iter()
        .map(|a| (a.dedupe_key.as_str(), a.severity))
        .collect();
    assert_eq!(
        keys,
        vec![
            ("host_capacity:near", Severity::Warning),
            ("host_capacity:full", Severity::Critical)
        ],
        "below the ratio and without a limit are not reported"
    );
    assert_eq!(
        found[1].subject,
        json!({"host": "full", "clusters": 2, "capacity": 2, "use": 1.0})
    );
}

#[test]
fn a_cluster_is_stuck_only_past_its_phases_threshold() {
    let threshold = |p: Phase| (p == Phase::Pending).then_some(Duration::from_secs(300));
    let pending = mk_cluster("slow");
    assert!(alert::cluster_stuck(&pending, at(0), &threshold, at(300)).is_none());
    let found = alert::cluster_stuck(&pending, at(0), &threshold, at(301)).expect("stuck");
    assert_eq!(
        found.dedupe_key,
        format!("cluster_stuck:{}:Pending", pending.id)
    );
    assert_eq!(found.subject["waited_secs"], 301);
    let ready = crate::domain::Cluster {
        phase: Phase::Ready,
        ..pending
    };
    assert!(
        alert::cluster_stuck(&ready, at(0), &threshold, at(9999)).is_none(),
        "Ready is never stuck"
    );
}

#[test]
fn slack_gets_escaped_text_and_json_gets_the_payload() {
    let payload = json!({
        "alert": "host_capacity", "severity": "critical",
        "summary": "host <a&b> is full", "vcm": "vcm-1", "subject": {}, "at": "x"
    });
    assert_eq!(alert::body(WebhookFormat::Json, &payload), payload);
    let slack = alert::body(WebhookFormat::Slack, &payload);
    assert_eq!(
        slack,
        json!({"text": ":rotating_light: [host_capacity] host &lt;a&amp;b&gt; is full (vcm-1)"})
    );
}

#[test]
fn answers_are_sent_retried_or_given_up() {
    assert_eq!(send::classify(204, "", None), Outcome::Sent);
    for status in [500, 502, 503, 408, 429] {
        assert!(
            matches!(send::classify(status, "busy", None), Outcome::Retry { .. }),
            "{status} may pass"
        );
    }
    for status in [400, 401, 403, 404, 410] {
        assert!(
            matches!(send::classify(status, "no", None), Outcome::GiveUp { .. }),
            "{status} will not pass"
        );
    }
}

#[test]
fn backoff_doubles_honours_retry_after_and_is_bounded() {
    assert_eq!(send::backoff(1, None), Duration::from_secs(2));
    assert_eq!(send::backoff(2, None), Duration::from_secs(4));
    assert_eq!(send::backoff(30, None), MAX_BACKOFF);
    assert_eq!(
        send::backoff(1, Some(Duration::from_secs(30))),
        Duration::from_secs(30),
        "Retry-After wins when longer"
    );
    assert_eq!(
        send::backoff(1, Some(Duration::from_secs(86_400))),
        MAX_BACKOFF
    );
}

#[test]
fn the_rate_limit_allows_max_per_minute_then_frees_up() {
    let mut target = mk_target(None, 2);
    let t0 = Instant::now();
    assert!(target.take(t0));
    assert!(target.take(t0 + Duration::from_secs(1)));
    assert!(!target.take(t0 + Duration::from_secs(2)), "the third waits");
    assert!(
        target.take(t0 + Duration::from_secs(60)),
        "the first left the window"
    );
    assert!(!target.take(t0 + Duration::from_secs(60)));
}

#[test]
fn a_target_is_filed_by_a_digest_and_never_shows_its_url() {
    let target = mk_target(Some(vec![AlertKind::ClusterFailed]), 10);
    assert_eq!(target.id.len(), 16);
    assert_eq!(target.name, "slack-0");
    assert!(!format!("{target:?}").contains("secret-part"));
    assert!(target.wants(AlertKind::ClusterFailed));
    assert!(!target.wants(AlertKind::HostCapacity));
    assert!(
        mk_target(None, 10).wants(AlertKind::ClusterStuck),
        "default: all"
    );
}
