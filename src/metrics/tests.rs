use std::time::Duration;

use axum::http::Method;

use super::*;

fn line<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    text.lines().find(|l| l.starts_with(prefix))
}

#[test]
fn a_request_is_counted_by_route_template_and_status() {
    let m = Metrics::new();
    m.request(
        "api",
        &Method::GET,
        Some("/v1/clusters/{id}"),
        200,
        Duration::from_millis(3),
    );
    m.request(
        "api",
        &Method::GET,
        Some("/v1/clusters/{id}"),
        200,
        Duration::from_millis(30),
    );
    m.request("api", &Method::GET, None, 404, Duration::from_millis(1));
    let text = m.render();
    assert!(
        text.contains(
            r#"vcm_http_requests_total{door="api",method="GET",route="/v1/clusters/{id}",status="200"} 2"#
        ),
        "{text}"
    );
    assert!(
        text.contains(
            r#"vcm_http_requests_total{door="api",method="GET",route="unmatched",status="404"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"vcm_http_request_duration_seconds_bucket{le="0.005",door="api",method="GET",route="/v1/clusters/{id}"} 1"#)
            || text.contains(r#"vcm_http_request_duration_seconds_bucket{door="api",method="GET",route="/v1/clusters/{id}",le="0.005"} 1"#),
        "{text}"
    );
    assert!(text.trim_end().ends_with("# EOF"), "{text}");
}

#[test]
fn the_census_replaces_the_last_one() {
    let m = Metrics::new();
    m.set_census(&Census {
        counts: vec![
            ("Ready", "local".into(), "small".into(), "1.36".into(), 3),
            ("Pending", "local".into(), "small".into(), "1.36".into(), 1),
        ],
        oldest: vec![("Pending", 12.5)],
    });
    m.set_census(&Census {
        counts: vec![("Ready", "local".into(), "small".into(), "1.36".into(), 4)],
        oldest: vec![],
    });
    let text = m.render();
    assert!(
        text.contains(r#"vcm_clusters{phase="Ready",host="local",size="small",version="1.36"} 4"#),
        "{text}"
    );
    assert!(
        line(&text, r#"vcm_clusters{phase="Pending""#).is_none(),
        "{text}"
    );
    for phase in WAITING_PHASES {
        assert!(
            text.contains(&format!(
                r#"vcm_cluster_oldest_in_phase_seconds{{phase="{phase}"}} 0.0"#
            )),
            "{phase}: {text}"
        );
    }
}

#[test]
fn hosts_and_events_are_exported() {
    let m = Metrics::new();
    m.set_hosts(&[HostFigures {
        name: "eks-a".into(),
        capacity: Some(10),
        clusters: 9,
        up: true,
    }]);
    m.creation("local");
    m.ready("local", "local", Duration::from_secs(4));
    m.failure("local", "driver_unavailable");
    m.deletion("expired");
    m.retry("provisioning");
    m.step("provisioning", Duration::from_millis(40));
    m.auth_failure("api_token");
    m.delivery("github", "accepted");
    m.status_report("github", "sent");
    m.queue_depth(5);
    m.set_outbox_depth(2);
    m.notification("slack", "host_capacity", "retried");
    m.set_notification_depth(3);
    m.set_audit(7, 1);
    m.set_audit(7, 1);
    let text = m.render();
    for want in [
        r#"vcm_host_capacity_clusters{host="eks-a"} 10"#,
        r#"vcm_host_clusters{host="eks-a"} 9"#,
        r#"vcm_host_up{host="eks-a"} 1"#,
        r#"vcm_cluster_creations_total{driver="local"} 1"#,
        r#"vcm_cluster_ready_duration_seconds_count{driver="local",host="local"} 1"#,
        r#"vcm_cluster_failures_total{driver="local",reason="driver_unavailable"} 1"#,
        r#"vcm_cluster_deletions_total{reason="expired"} 1"#,
        r#"vcm_reconciler_retries_total{step="provisioning"} 1"#,
        r#"vcm_reconciler_step_duration_seconds_count{step="provisioning"} 1"#,
        r#"vcm_auth_failures_total{kind="api_token"} 1"#,
        r#"vcm_webhook_deliveries_total{provider="github",outcome="accepted"} 1"#,
        r#"vcm_status_reports_total{provider="github",outcome="sent"} 1"#,
        "vcm_audit_write_failures_total 1",
        "vcm_reconciler_queue_depth 5",
        "vcm_status_outbox_depth 2",
        r#"vcm_notifications_total{format="slack",alert="host_capacity",outcome="retried"} 1"#,
        "vcm_notification_outbox_depth 3",
        "vcm_audit_queue_depth 7",
        "vcm_build_info{version=",
        "process_cpu_seconds_total ",
        "process_resident_memory_bytes ",
        "process_open_fds ",
        "process_start_time_seconds ",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
}

#[test]
fn odd_methods_share_one_label() {
    assert_eq!(
        method_label(&Method::from_bytes(b"PROPFIND").expect("a token")),
        "other"
    );
    assert_eq!(method_label(&Method::DELETE), "DELETE");
}
