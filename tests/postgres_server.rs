//! The real `vcm` binary as a production server (`vcm server`, not `--dev`) on a real
//! PostgreSQL with the local driver, driven by the real CLI and used with the real `kubectl`:
//! the database stops for 30 s under a steady load of creates, GETs and lists, and comes back
//! (issue 15: "PostgreSQL stopped for 30 s under load: 503s, no lost records, recovery";
//! "requests answer 503 with `Retry-After`, the reconciler pauses, and everything resumes when
//! the database returns; nothing is lost").
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/load.rs"]
mod load;
#[path = "support/vcm_process.rs"]
mod vcm_process;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use load::{Answer, Kind};
use vcm::testing::postgres::TestPostgres;
use vcm_process::{Vcm, http_get, http_status, kubectl, text};

/// How long the database stays down (the figure): many reconciler polls, health
/// checks and pruner passes (1 s each in these servers), audit retries (1 s), the pool's 5 s
/// connection wait and the 2 s `/readyz` ping.
const OUTAGE: Duration = Duration::from_secs(30);
/// How long the server may take to notice the database is back.
const RESUME_WITHIN: Duration = Duration::from_secs(20);
/// Load before the database stops and after the API answers again.
const STEADY: Duration = Duration::from_secs(5);
/// Threads sending creates, and threads sending GETs and lists.
const CREATORS: usize = 2;
const READERS: usize = 4;
/// Live clusters the local driver takes: the Ready one and a few of the load's, so the
/// creates' control planes stay few (the rest are refused, 503 `no_capacity`).
const MAX_CLUSTERS: &str = "3";

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
fn a_30s_postgres_outage_under_load_answers_503_loses_nothing_and_everything_resumes() {
    // Arrange: a throw-away PostgreSQL (started and stopped on this thread: its server dies
    // with the thread that started it), a production vcm on it, a Ready cluster in use.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut pg = rt.block_on(TestPostgres::local());
    let url = rt.block_on(pg.database());
    let vcm = Vcm::start_on_store(&url, &[("VCM_LOCAL__MAX_CLUSTERS", MAX_CLUSTERS)]);
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
    vcm.cli_ok(&["token", "create", "--name", "ci-before", "--role", "ci"]);
    let before = clusters(&vcm);
    let tokens_before = vcm.cli_ok(&["token", "list", "--output", "json"]);
    let events_before = vcm.cli_ok(&["cluster", "events", &id, "--output", "json"]);
    assert_eq!(before, vec![(id.clone(), "Ready".to_owned())]);

    // Act: steady load throughout; the database stops after STEADY, for OUTAGE.
    let stop = AtomicBool::new(false);
    let mut t = Timeline::default();
    let (answers, undeleted, probes) = std::thread::scope(|s| {
        let load = s.spawn(|| load::run(vcm.port, &vcm.token, &id, CREATORS, READERS, &stop));
        std::thread::sleep(STEADY);
        t.stopping = Instant::now();
        rt.block_on(pg.stop());
        t.down = Instant::now();
        let probes = outage_probes(&vcm, &id, t.down);
        t.restarting = Instant::now();
        rt.block_on(pg.restart());
        t.back = Instant::now();
        while !vcm.cli(&["cluster", "list"]).status.success() {
            assert!(t.back.elapsed() < RESUME_WITHIN, "the API never resumed");
            std::thread::sleep(Duration::from_millis(200));
        }
        t.resumed = Instant::now();
        while http_status(vcm.port, "/readyz") != Some(200) {
            let late = t.back.elapsed() >= RESUME_WITHIN;
            assert!(!late, "/readyz never turned 200 again");
            std::thread::sleep(Duration::from_millis(200));
        }
        std::thread::sleep(STEADY);
        stop.store(true, Ordering::SeqCst);
        let (answers, undeleted) = load.join().unwrap();
        (answers, undeleted, probes)
    });
    let (stopping_at, down_at, restarting_at) = (t.stopping, t.down, t.restarting);
    let resumed_in = t.resumed - t.back;

    // Assert 1: the server answered every request within the client timeout, never a 500;
    // every 503 carries Retry-After; while the database was down everything was a 503.
    eprintln!("API resumed {resumed_in:?} after the database returned");
    let mut by = std::collections::BTreeMap::<String, usize>::new();
    for a in &answers {
        let code = a.code.as_deref().unwrap_or("");
        *by.entry(format!("{:?} {:?} {code}", a.kind, a.status))
            .or_default() += 1;
    }
    eprintln!(
        "{} answers by request, status and code: {by:#?}",
        answers.len()
    );
    let slowest = answers.iter().map(|a| a.took).max().unwrap();
    eprintln!("slowest answer: {slowest:?}");
    assert!(
        answers.iter().all(|a| a.status.is_some()),
        "every request is answered within {:?}: {by:#?}",
        load::CLIENT_TIMEOUT
    );
    assert!(
        answers
            .iter()
            .all(|a| a.status.is_some_and(|s| s < 500 || s == 503)),
        "no 5xx but 503: {by:#?}"
    );
    assert!(
        answers.iter().all(|a| a.status != Some(429)),
        "a token that could not be checked is no failed authentication: {by:#?}"
    );
    for a in answers.iter().filter(|a| a.status == Some(503)) {
        assert!(a.retry_after.is_some(), "a 503 without Retry-After: {a:?}");
    }
    // NB: a request sent just before the stop may still be answered; one sent a second after
    // it and answered before the restart began cannot be.
    let down = |at: Instant| at > down_at + Duration::from_secs(1) && at < restarting_at;
    let answered_down = |a: &&Answer| down(a.at) && a.at + a.took < restarting_at;
    for kind in [Kind::Create, Kind::Get, Kind::List] {
        let during: Vec<&Answer> = answers
            .iter()
            .filter(|a| a.kind == kind)
            .filter(answered_down)
            .collect();
        assert!(
            during.len() >= 2,
            "{kind:?}: load kept up through the outage"
        );
        assert!(
            during.iter().all(|a| a.status == Some(503)),
            "{kind:?} during the outage (from 0 s to {:?}): {:#?}",
            restarting_at - down_at,
            during
                .iter()
                .filter(|a| a.status != Some(503))
                .map(|a| (a.at - down_at, a.took, a.status, &a.code))
                .collect::<Vec<_>>()
        );
    }
    // NB: a second's grace after the API first answered again, for the pool's connections
    // the restart broke.
    let resumed_at = t.resumed + Duration::from_secs(1);
    let steady = |a: &&Answer| a.at + a.took < stopping_at || a.at > resumed_at;
    for kind in [Kind::Get, Kind::List] {
        let odd: Vec<_> = answers
            .iter()
            .filter(|a| a.kind == kind)
            .filter(steady)
            .filter(|a| a.status != Some(200))
            .map(|a| (a.at.saturating_duration_since(down_at), a.status, &a.code))
            .collect();
        assert!(
            odd.is_empty(),
            "{kind:?} before and after the outage: {odd:?}"
        );
    }
    probes.check();

    // Assert 2: nothing lost. Every cluster accepted before or after the outage is still
    // there with its events and is torn down by the resumed reconciler; the Ready cluster,
    // its events and the tokens are as they were.
    let accepted: Vec<&str> = answers
        .iter()
        .filter_map(|a| a.created.as_deref())
        .collect();
    assert!(
        accepted.len() >= 2,
        "some creates were accepted around the outage: {by:#?}"
    );
    for cid in &undeleted {
        vcm.cli_ok(&["cluster", "delete", cid]);
    }
    for cid in &accepted {
        let done = vcm.wait_phase(cid, "Deleted", Duration::from_secs(120));
        assert_eq!(done["labels"]["load"], "yes", "{done}");
        let events: serde_json::Value =
            serde_json::from_str(&vcm.cli_ok(&["cluster", "events", cid, "--output", "json"]))
                .unwrap();
        let kinds = events.to_string();
        assert!(kinds.contains("\"created\""), "{cid}: {events}");
    }
    assert_eq!(vcm.cluster(&id)["phase"], "Ready");
    let tokens_after = vcm.cli_ok(&["token", "list", "--output", "json"]);
    let events_after = vcm.cli_ok(&["cluster", "events", &id, "--output", "json"]);
    let ns_after = kubectl(&kubeconfig, &["get", "ns"]);
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

    // Assert 3: the reconciler provisions again, deletes, and the audit chain verifies.
    let after: serde_json::Value = serde_json::from_str(&vcm.cli_ok(&[
        "cluster", "create", "--name", "pg-after", "--wait", "--output", "json",
    ]))
    .unwrap();
    assert_eq!(after["phase"], "Ready", "{after}");
    for name in ["pg-one", "pg-after"] {
        vcm.cli_ok(&["cluster", "delete", name, "--wait"]);
    }
    assert_eq!(vcm.cluster(&id)["phase"], "Deleted");
    assert!(
        vcm.apiserver_pids().is_empty(),
        "kube-apiserver processes left: {:?}",
        vcm.apiserver_pids()
    );
    let verified = vcm.cli_ok(&["audit", "verify"]);
    assert!(verified.contains("audit log intact"), "{verified}");
    assert_quiet_outage_logs(&vcm);

    // Cleanup: the server and its cluster processes (Drop), then PostgreSQL, on this thread.
    drop(vcm);
    drop(pg);
}

/// When the database was told to stop, was down, was told to start, was back, and when
/// the API answered again.
struct Timeline {
    stopping: Instant,
    down: Instant,
    restarting: Instant,
    back: Instant,
    resumed: Instant,
}

impl Default for Timeline {
    fn default() -> Self {
        let now = Instant::now();
        Self {
            stopping: now,
            down: now,
            restarting: now,
            back: now,
            resumed: now,
        }
    }
}

/// What probes and the CLI saw while the database was down.
struct Probes {
    listed: Option<(u16, String, String)>,
    ready: Option<u16>,
    probe_took: Duration,
    live: Option<u16>,
    cli_down: std::process::Output,
    ready_late: Option<u16>,
    live_late: Option<u16>,
}

/// Probe the server from `down_at` until the outage's end.
fn outage_probes(vcm: &Vcm, id: &str, down_at: Instant) -> Probes {
    let listed = http_get(vcm.port, "/v1/clusters", &vcm.token);
    let probe_started = Instant::now();
    let ready = http_status(vcm.port, "/readyz");
    let probe_took = probe_started.elapsed();
    let live = http_status(vcm.port, "/healthz");
    let cli_down = vcm.cli(&["cluster", "get", id]);
    std::thread::sleep(OUTAGE.saturating_sub(down_at.elapsed()));
    Probes {
        listed,
        ready,
        probe_took,
        live,
        cli_down,
        ready_late: http_status(vcm.port, "/readyz"),
        live_late: http_status(vcm.port, "/healthz"),
    }
}

impl Probes {
    /// 503 with Retry-After and the JSON error body; not ready, but alive.
    fn check(&self) {
        let (status, headers, body) = self
            .listed
            .clone()
            .expect("the server answers while the database is down");
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
        assert_eq!(self.ready, Some(503), "/readyz reflects the store");
        assert!(
            self.probe_took < Duration::from_secs(5),
            "/readyz took {:?}",
            self.probe_took
        );
        assert_eq!(self.live, Some(200), "/healthz is liveness only");
        assert_eq!((self.ready_late, self.live_late), (Some(503), Some(200)));
        assert!(!self.cli_down.status.success(), "{}", text(&self.cli_down));
    }
}

/// One WARN when the outage starts and one INFO when it ends, from each of the reconciler,
/// the pruner and the audit writer; the rest of the server's WARN and ERROR lines shown by
/// message.
fn assert_quiet_outage_logs(vcm: &Vcm) {
    for (down, up) in [
        (
            "the reconciler pauses until it answers",
            "the reconciler resumes",
        ),
        (
            "the store is unavailable: the audit log cannot be written",
            "the audit log is written again",
        ),
    ] {
        let paused = log_lines(vcm, down);
        let resumed = log_lines(vcm, up);
        assert_eq!(paused.len(), 1, "one WARN for the outage: {paused:#?}");
        assert!(paused[0].contains("\"WARN\""), "{paused:?}");
        assert_eq!(resumed.len(), 1, "one INFO when it is over: {resumed:#?}");
        assert!(resumed[0].contains("\"INFO\""), "{resumed:?}");
    }
    // NB: the pruner is a singleton: the outage also ends its role (its leader's session is
    // gone), and a new run starts when the role is won again, so it says nothing at the end.
    let pruner = log_lines(vcm, "the pruner skips its passes");
    assert!(pruner.len() <= 1, "at most one WARN: {pruner:#?}");
    let per_item = log_lines(vcm, "pruner item failed");
    assert!(
        per_item.len() <= 2,
        "no WARN per pruner item: {per_item:#?}"
    );
    let audit_errors = log_lines(vcm, "the audit log could not be written");
    assert!(
        audit_errors.is_empty(),
        "no ERROR per audit retry: {audit_errors:#?}"
    );
    let per_request: Vec<String> = log_lines(vcm, "request unavailable")
        .into_iter()
        .filter(|l| l.contains("store_unavailable") || l.contains("audit_unavailable"))
        .collect();
    assert!(
        per_request.is_empty(),
        "no WARN per 503 of the outage ({} lines): {:#?}",
        per_request.len(),
        per_request.first()
    );
    let mut loud = std::collections::BTreeMap::<String, usize>::new();
    for line in log_lines(vcm, "\"WARN\"")
        .iter()
        .chain(&log_lines(vcm, "\"ERROR\""))
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
}
