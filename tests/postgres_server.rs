//! The real `vcm` binary as a production server (`vcm server`, not `--dev`) on a real
//! PostgreSQL with the local driver, driven by the real CLI and used with the real `kubectl`:
//! the database goes away and comes back under it (issue 15: "requests answer 503 with
//! `Retry-After`, the reconciler pauses, and everything resumes when the database returns;
//! nothing is lost").
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/vcm_process.rs"]
mod vcm_process;

use std::time::{Duration, Instant};

use vcm::testing::postgres::TestPostgres;
use vcm_process::{Vcm, http_get, http_status, kubectl, text};

/// How long the database stays down. NB: the issue asks for 30 s under load; 10 s here keeps
/// the test short and still spans many reconciler polls, health checks and pruner passes
/// (1 s each in these servers), the pool's 5 s connection wait and the 2 s `/readyz` ping.
const OUTAGE: Duration = Duration::from_secs(10);
/// How long the server may take to notice the database is back.
const RESUME_WITHIN: Duration = Duration::from_secs(20);

/// `items` of `vcm cluster list --output json`, as (id, phase) pairs.
fn clusters(vcm: &Vcm) -> Vec<(String, String)> {
    let list: serde_json::Value =
        serde_json::from_str(&vcm.cli_ok(&["cluster", "list", "--output", "json"])).unwrap();
    let items = list["items"].as_array().or(list.as_array()).unwrap();
    items
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_owned(),
                c["phase"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The lines of every log the server wrote that contain `needle`.
fn log_lines(vcm: &Vcm, needle: &str) -> Vec<String> {
    let dir = vcm.data.parent().unwrap();
    let mut lines = vec![];
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("vcm-") && name.ends_with(".log") {
            let log = std::fs::read_to_string(entry.path()).unwrap();
            lines.extend(
                log.lines()
                    .filter(|l| l.contains(needle))
                    .map(str::to_owned),
            );
        }
    }
    lines
}

#[test]
fn a_postgres_outage_answers_503_with_retry_after_and_everything_resumes_when_it_returns() {
    // Arrange: a throw-away PostgreSQL (started and stopped on this thread: its server dies
    // with the thread that started it), a production vcm on it, a Ready cluster in use.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut pg = rt.block_on(TestPostgres::local());
    let url = rt.block_on(pg.database());
    let vcm = Vcm::start_on_store(&url, &[]);
    let created: serde_json::Value = serde_json::from_str(&vcm.cli_ok(&[
        "cluster", "create", "--name", "pg-one", "--wait", "--output", "json",
    ]))
    .unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["phase"], "Ready", "{created}");
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("pg-one.yaml");
    vcm.cli_ok(&[
        "cluster",
        "kubeconfig",
        "pg-one",
        "--output-file",
        kubeconfig.to_str().unwrap(),
    ]);
    let ns = kubectl(&kubeconfig, &["get", "ns"]);
    assert!(ns.status.success(), "kubectl get ns: {}", text(&ns));
    assert!(
        String::from_utf8_lossy(&ns.stdout).contains("default"),
        "{}",
        text(&ns)
    );
    vcm.cli_ok(&["token", "create", "--name", "ci-before", "--role", "ci"]);
    let before = clusters(&vcm);
    let tokens_before = vcm.cli_ok(&["token", "list", "--output", "json"]);
    let events_before = vcm.cli_ok(&["cluster", "events", &id, "--output", "json"]);
    assert_eq!(before, vec![(id.clone(), "Ready".to_owned())]);

    // Act 1: the database stops.
    rt.block_on(pg.stop());
    let down_at = Instant::now();
    let listed = http_get(vcm.port, "/v1/clusters", &vcm.token);
    let probe_started = Instant::now();
    let ready = http_status(vcm.port, "/readyz");
    let probe_took = probe_started.elapsed();
    let live = http_status(vcm.port, "/healthz");
    let cli_down = vcm.cli(&["cluster", "get", &id]);
    std::thread::sleep(OUTAGE.saturating_sub(down_at.elapsed()));
    let ready_late = http_status(vcm.port, "/readyz");
    let live_late = http_status(vcm.port, "/healthz");

    // Assert 1: 503 with Retry-After and the JSON error body; not ready, but alive.
    let (status, headers, body) = listed.expect("the server answers while the database is down");
    assert_eq!(status, 503, "{headers}{body}");
    assert!(headers.contains("\r\nretry-after: "), "{headers}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"]["code"], "store_unavailable", "{body}");
    assert!(
        body["error"]["request_id"]
            .as_str()
            .is_some_and(|r| !r.is_empty()),
        "{body}"
    );
    assert!(
        !body.to_string().contains("host=") && !body.to_string().contains("PostgreSQL"),
        "a 503 body carries no internal detail: {body}"
    );
    assert_eq!(ready, Some(503), "/readyz reflects the store");
    assert!(
        probe_took < Duration::from_secs(5),
        "/readyz took {probe_took:?}"
    );
    assert_eq!(live, Some(200), "/healthz is liveness only");
    assert_eq!((ready_late, live_late), (Some(503), Some(200)));
    assert!(!cli_down.status.success(), "{}", text(&cli_down));

    // Act 2: the database returns; vcm is not restarted.
    rt.block_on(pg.restart());
    let back_at = Instant::now();
    while !vcm.cli(&["cluster", "list"]).status.success() {
        assert!(back_at.elapsed() < RESUME_WITHIN, "the API never resumed");
        std::thread::sleep(Duration::from_millis(200));
    }
    let resumed_in = back_at.elapsed();
    while http_status(vcm.port, "/readyz") != Some(200) {
        assert!(
            back_at.elapsed() < RESUME_WITHIN,
            "/readyz never turned 200 again"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let after = clusters(&vcm);
    let tokens_after = vcm.cli_ok(&["token", "list", "--output", "json"]);
    let events_after = vcm.cli_ok(&["cluster", "events", &id, "--output", "json"]);
    let ns_after = kubectl(&kubeconfig, &["get", "ns"]);
    vcm.cli_ok(&["cluster", "delete", &id, "--wait"]);
    let deleted = vcm.cluster(&id);
    let final_list = clusters(&vcm);

    // Assert 2: nothing lost, the cluster still Ready and in use, the reconciler at work again.
    eprintln!("API resumed {resumed_in:?} after the database returned");
    assert_eq!(after, before, "every cluster is still there, in its phase");
    assert_eq!(tokens_after, tokens_before, "every token is still there");
    assert_eq!(
        events_after, events_before,
        "no event lost or invented by the outage"
    );
    assert!(
        ns_after.status.success(),
        "kubectl after the outage: {}",
        text(&ns_after)
    );
    assert_eq!(deleted["phase"], "Deleted", "{deleted}");
    assert_eq!(
        final_list.len(),
        before.len(),
        "the deleted record is kept: {final_list:?}"
    );
    assert!(
        vcm.apiserver_pids().is_empty(),
        "kube-apiserver processes left: {:?}",
        vcm.apiserver_pids()
    );
    let paused = log_lines(&vcm, "the reconciler pauses until it answers");
    let resumed = log_lines(&vcm, "the reconciler resumes");
    assert_eq!(paused.len(), 1, "one WARN for the outage: {paused:#?}");
    assert!(paused[0].contains("WARN"), "{paused:?}");
    assert_eq!(resumed.len(), 1, "one INFO when it is over: {resumed:#?}");
    // NB: other parts still log once per pass while the database is down (the pruner each
    // pass, the audit writer each retry); shown here, not asserted.
    let mut loud = std::collections::BTreeMap::<String, usize>::new();
    for line in log_lines(&vcm, "\"WARN\"")
        .iter()
        .chain(&log_lines(&vcm, "\"ERROR\""))
    {
        let line: serde_json::Value = serde_json::from_str(line).unwrap();
        let field = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
        let key = format!(
            "{} {}: {}",
            field(&line["level"]),
            field(&line["target"]),
            field(&line["fields"]["message"])
        );
        *loud.entry(key).or_default() += 1;
    }
    eprintln!("WARN and ERROR lines of the server, by message: {loud:#?}");

    // Cleanup: the server and its cluster processes (Drop), then PostgreSQL, on this thread.
    drop(vcm);
    drop(pg);
}
