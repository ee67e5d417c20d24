//! `GET /metrics` of the real `vcm` binary after a scripted lifecycle on the local driver (real
//! kube-apiserver and etcd): the counts and phases match what happened, the names match the
//! contract the shipped dashboard and alert rules are written against, no cluster id is ever a
//! label, authentication works as `[metrics]` says, and a request's id follows its cluster into
//! the reconciler's log lines.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::time::Duration;

#[path = "support/vcm_process.rs"]
mod vcm_process;

#[path = "support/monitoring.rs"]
mod monitoring;

use vcm_process::{TOKEN, Vcm, text};

/// A GET on loopback with an optional bearer token: status and body.
fn get(port: u16, path: &str, token: Option<&str>) -> (u16, String) {
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(conn, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n{auth}\r\n").unwrap();
    let mut raw = String::new();
    conn.read_to_string(&mut raw).unwrap();
    let status = raw[9..12].parse().unwrap();
    let body = raw.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_owned();
    (status, body)
}

/// Samples of an OpenMetrics text: `name{labels}` (labels as written) → value.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// The sum of every sample of `name` whose labels include each of `labels` (`k="v"`).
fn sum(samples: &BTreeMap<String, f64>, name: &str, labels: &[&str]) -> f64 {
    samples
        .iter()
        .filter(|(series, _)| {
            let (n, rest) = series.split_once('{').unwrap_or((series.as_str(), ""));
            n == name && labels.iter().all(|l| rest.contains(l))
        })
        .map(|(_, v)| v)
        .sum()
}

/// The metric names a scrape declares (`# TYPE` lines), counters with their `_total`.
fn declared(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| {
            let mut it = l.split_whitespace();
            let (name, kind) = (it.next().unwrap(), it.next().unwrap());
            if kind == "counter" {
                format!("{name}_total")
            } else {
                name.to_owned()
            }
        })
        .collect()
}

fn create(vcm: &Vcm, name: &str) -> String {
    let out = vcm.cli_ok(&["cluster", "create", "--name", name, "--output", "json"]);
    let c: serde_json::Value = serde_json::from_str(&out).unwrap();
    c["id"].as_str().unwrap().to_owned()
}

#[test]
fn a_scrape_after_a_lifecycle_states_what_happened() {
    let metrics_port = vcm::controlplane::free_port().unwrap();
    let listen = format!("127.0.0.1:{metrics_port}");
    let vcm = Vcm::start_with_env(&[("VCM_METRICS__LISTEN", &listen)]);

    // The lifecycle: two creates, both Ready; one deleted; refusals of three kinds.
    let kept = create(&vcm, "kept");
    let gone = create(&vcm, "gone");
    vcm.wait_phase(&kept, "Ready", Duration::from_secs(120));
    vcm.wait_phase(&gone, "Ready", Duration::from_secs(120));
    vcm.cli_ok(&["cluster", "delete", &gone, "--wait"]);
    assert_eq!(get(vcm.port, "/v1/clusters", None).0, 401);
    let bad = format!("vcm_{}", "0".repeat(64));
    assert_eq!(get(vcm.port, "/v1/clusters", Some(&bad)).0, 401);
    assert_eq!(get(vcm.port, "/v1/clusters/c-nothere", Some(TOKEN)).0, 404);

    // Authentication on the API's address: a token (admin or viewer), never anonymous, and a
    // CI token is refused with a message naming the fix.
    let (status, _) = get(vcm.port, "/metrics", None);
    assert_eq!(
        status, 401,
        "/metrics on the API address takes a credential"
    );
    let ci = vcm.cli_ok(&[
        "token", "create", "--name", "ci-bot", "--role", "ci", "--output", "json",
    ]);
    let ci: serde_json::Value = serde_json::from_str(&ci).unwrap();
    let ci_secret = ci["secret"].as_str().unwrap().to_owned();
    let (status, body) = get(vcm.port, "/metrics", Some(&ci_secret));
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("viewer") && body.contains("[metrics] listen"),
        "{body}"
    );
    let viewer = vcm.cli_ok(&[
        "token",
        "create",
        "--name",
        "prometheus",
        "--role",
        "viewer",
        "--output",
        "json",
    ]);
    let viewer: serde_json::Value = serde_json::from_str(&viewer).unwrap();
    let viewer_secret = viewer["secret"].as_str().unwrap().to_owned();
    let (status, by_token) = get(vcm.port, "/metrics", Some(&viewer_secret));
    assert_eq!(status, 200, "{by_token}");

    // The separate address: no credential, and nothing but /metrics.
    let (status, text_) = get(metrics_port, "/metrics", None);
    assert_eq!(status, 200, "{text_}");
    assert_eq!(get(metrics_port, "/v1/clusters", Some(TOKEN)).0, 404);
    assert!(
        text_.trim_end().ends_with("# EOF"),
        "OpenMetrics text ends with # EOF"
    );

    let s = samples(&text_);
    let want = |name: &str, labels: &[&str], value: f64| {
        let got = sum(&s, name, labels);
        assert!(
            (got - value).abs() < f64::EPSILON,
            "{name}{labels:?} = {got}, want {value}\n{text_}"
        );
    };
    want("vcm_cluster_creations_total", &[r#"driver="local""#], 2.0);
    want(
        "vcm_cluster_ready_duration_seconds_count",
        &[r#"driver="local""#, r#"host="local""#],
        2.0,
    );
    want(
        "vcm_cluster_deletions_total",
        &[r#"reason="requested""#],
        1.0,
    );
    want("vcm_clusters", &[r#"phase="Ready""#], 1.0);
    want("vcm_clusters", &[r#"phase="Deleted""#], 1.0);
    want("vcm_clusters", &[r#"phase="Pending""#], 0.0);
    want("vcm_host_clusters", &[r#"host="local""#], 1.0);
    want("vcm_host_up", &[r#"host="local""#], 1.0);
    want(
        "vcm_http_requests_total",
        &[
            r#"method="POST""#,
            r#"route="/v1/clusters""#,
            r#"status="202""#,
        ],
        2.0,
    );
    want(
        "vcm_http_requests_total",
        &[r#"route="/v1/clusters/{id}""#, r#"status="404""#],
        1.0,
    );
    want("vcm_auth_failures_total", &[r#"kind="missing""#], 2.0);
    want("vcm_auth_failures_total", &[r#"kind="api_token""#], 1.0);
    assert!(
        sum(&s, "vcm_cluster_oldest_in_phase_seconds", &[]) < 1.0,
        "{text_}"
    );
    assert!(
        sum(&s, "process_resident_memory_bytes", &[]) > 1e6,
        "{text_}"
    );
    for (name, step) in [
        (
            "vcm_reconciler_step_duration_seconds_count",
            r#"step="pending""#,
        ),
        (
            "vcm_reconciler_step_duration_seconds_count",
            r#"step="provisioning""#,
        ),
        (
            "vcm_reconciler_step_duration_seconds_count",
            r#"step="deleting""#,
        ),
    ] {
        assert!(sum(&s, name, &[step]) >= 1.0, "{name}{{{step}}}\n{text_}");
    }

    // No cluster id, token or principal is ever a label.
    for secret_or_id in [
        kept.as_str(),
        gone.as_str(),
        TOKEN,
        &ci_secret,
        &viewer_secret,
    ] {
        assert!(!text_.contains(secret_or_id), "{secret_or_id} in\n{text_}");
        assert!(
            !by_token.contains(secret_or_id),
            "{secret_or_id} in\n{by_token}"
        );
    }
    assert!(
        !text_.contains("token:"),
        "no principal is a label:\n{text_}"
    );

    // Every name of the contract is declared, and everything the shipped dashboard and alert
    // rules query is among them. NB: a labelled counter is written from its first event on;
    // these had none in this lifecycle (src/metrics/tests.rs and the reconciler's tests cover
    // them).
    let declared = declared(&text_);
    let no_event_yet = [
        "vcm_cluster_failures_total",
        "vcm_reconciler_retries_total",
        "vcm_webhook_deliveries_total",
        "vcm_status_reports_total",
        "vcm_notifications_total",
    ];
    for name in monitoring::exported_names() {
        if no_event_yet.contains(&name.as_str()) {
            continue;
        }
        assert!(
            declared.contains(&name),
            "{name} is in the contract (tests/support/monitoring.rs) but not exported; \
             declared: {declared:?}"
        );
    }
    for name in monitoring::referenced_metric_names() {
        if no_event_yet.contains(&name.as_str()) {
            assert!(monitoring::exported_names().contains(&name), "{name}");
            continue;
        }
        assert!(
            declared.contains(&name),
            "the dashboard or an alert rule queries {name}, which vcm does not export; \
             declared: {declared:?}"
        );
    }

    // The create's request id follows the cluster into the reconciler's log lines.
    let log = std::fs::read_dir(vcm.data.parent().unwrap())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect::<String>();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let created = lines
        .iter()
        .find(|l| {
            l["target"] == "vcm::request"
                && l["fields"]["action"] == "POST /v1/clusters"
                && l["fields"]["status"] == 202
                && l["fields"]["target"] == kept.as_str()
        })
        .unwrap_or_else(|| panic!("no request line for the create of {kept} in\n{log}"));
    let request_id = created["fields"]["request_id"].as_str().unwrap();
    assert!(!request_id.is_empty(), "{created}");
    for field in ["principal", "decision", "duration_ms"] {
        assert!(
            !created["fields"][field].is_null(),
            "{field} missing: {created}"
        );
    }
    let reconciled = lines
        .iter()
        .filter(|l| log_mentions(l, "cluster.id", &kept))
        .filter(|l| {
            l["target"]
                .as_str()
                .is_some_and(|t| t.starts_with("vcm::driver") || t.starts_with("vcm::reconciler"))
        })
        .collect::<Vec<_>>();
    assert!(
        !reconciled.is_empty(),
        "no reconciler line for {kept} in\n{log}"
    );
    for l in &reconciled {
        assert!(
            log_mentions(l, "request_id", request_id),
            "a reconciler line for {kept} lacks the create's request id {request_id}: {l}"
        );
    }
    let _ = text(&vcm.cli(&["cluster", "delete", &kept]));
}

/// Whether a JSON log line carries `key = value` in its fields or in a span around it.
fn log_mentions(line: &serde_json::Value, key: &str, value: &str) -> bool {
    line["fields"][key] == value
        || line["spans"]
            .as_array()
            .is_some_and(|spans| spans.iter().any(|s| s[key] == value))
}

#[test]
fn metrics_can_be_turned_off_or_opened() {
    let off = Vcm::start_with_env(&[("VCM_METRICS__ENABLED", "false")]);
    assert_eq!(get(off.port, "/metrics", Some(TOKEN)).0, 404);
    drop(off);
    let open = Vcm::start_with_env(&[("VCM_METRICS__AUTH", "none")]);
    let (status, body) = get(open.port, "/metrics", None);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("vcm_build_info"), "{body}");
}

#[test]
fn a_bad_metrics_section_stops_the_server_with_the_key_named() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vcm"))
        .args(["server", "--dev", "--listen=127.0.0.1:0"])
        .arg(format!("--data-dir={}", dir.path().display()))
        .env("VCM_METRICS__AUTH", "maybe")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let said = text(&out);
    assert!(
        said.contains("VCM_METRICS__AUTH") && said.contains("maybe") && said.contains("token"),
        "{said}"
    );
}

#[test]
fn usage_shows_a_local_clusters_processes_and_objects_and_hosts_their_use() {
    let vcm = Vcm::start();
    let id = create(&vcm, "used");
    // Not Ready yet, or Ready already: a 409 names the phase; once Ready it answers.
    let early = vcm.cli(&["cluster", "usage", &id]);
    if !early.status.success() {
        assert!(
            text(&early).contains("cluster_not_ready"),
            "{}",
            text(&early)
        );
    }
    vcm.wait_phase(&id, "Ready", Duration::from_secs(120));
    let missing = vcm.cli(&["cluster", "usage", "c-nothere"]);
    assert!(
        !missing.status.success() && text(&missing).contains("404"),
        "{}",
        text(&missing)
    );

    let usage = |vcm: &Vcm| -> serde_json::Value {
        serde_json::from_str(&vcm.cli_ok(&["cluster", "usage", &id, "--output", "json"])).unwrap()
    };
    let u = usage(&vcm);
    assert_eq!(u["cluster"], id.as_str());
    assert_eq!(u["driver"], "local");
    let names: Vec<&str> = u["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for want in [
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kwok",
    ] {
        assert!(names.contains(&want), "{want} missing from {u}");
    }
    for p in u["processes"].as_array().unwrap() {
        assert!(p["memory_bytes"].as_u64().unwrap() > 1_000_000, "{p}");
        assert!(p["pid"].as_u64().unwrap() > 1, "{p}");
    }
    let total = u["memory_bytes"].as_u64().unwrap();
    let sum: u64 = u["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["memory_bytes"].as_u64().unwrap())
        .sum();
    assert_eq!(total, sum, "{u}");
    assert!(u["objects"].is_object(), "{u}");

    // Counted now, not by a periodic metric: the default namespaces and its one fake node.
    assert!(u["objects"]["namespaces"].as_u64().unwrap() >= 4, "{u}");
    assert!(u["objects"]["nodes"].as_u64().unwrap() >= 1, "{u}");
    assert!(
        u["objects"]["serviceaccounts"].as_u64().unwrap() >= 1,
        "{u}"
    );
    assert_eq!(u["objects"]["deployments.apps"], 0, "{u}");
    let table = vcm.cli_ok(&["cluster", "usage", &id]);
    assert!(
        table.contains("kube-apiserver") && table.contains("namespaces"),
        "{table}"
    );

    let hosts: serde_json::Value =
        serde_json::from_str(&vcm.cli_ok(&["host", "list", "--output", "json"])).unwrap();
    let local = &hosts["items"][0];
    assert_eq!(local["name"], "local", "{hosts}");
    assert_eq!(local["clusters"], 1, "{hosts}");
    let max = local["max_clusters"].as_f64().unwrap();
    let used = local["used_percent"].as_f64().unwrap();
    assert!(
        (used - (100.0 / max * 10.0).round() / 10.0).abs() < 0.11,
        "{hosts}"
    );
    let table = vcm.cli_ok(&["host", "list"]);
    assert!(table.contains("local") && table.contains('%'), "{table}");
}
