//! Governance benchmark (`cargo bench --bench governance`, or `bench/run.sh governance`): what
//! the operators' Rego policy and the audit log cost per request, as a ratio against the same
//! request to the same kind of server with both off, in one run.
//!
//! * **off**: no policy, `AppState::with_audit(None)`.
//! * **on**: the shipped example policies (`deploy/policies/*.rego` with `data.json`), and the
//!   audit log as `AppState::new` sets it up (an ephemeral Ed25519 key, reads fail open): every
//!   request is a hash-chained record in the store, and a create waits for its `received`
//!   record to be stored before it runs.
//!
//! Both servers run in this process, built in code (`Server::build_with_listener`), each over
//! a SQLite file of its own opened as the real server opens it (`store::open`: SQLite behind
//! the read-through cache), with the fake driver (a create is accepted, 202, and no control
//! plane starts; no reconciler runs). The caller is a `ci` token of team `web`, the caller the
//! example policies ask the most of; each create (`POST /v1/clusters`, no idempotency key, the
//! server names it) asks for a small cluster for one hour with the `repo` and `pr` labels, which
//! every rule allows. The load comes from wrk, a separate process; the server CPU per request
//! is this process's CPU time (user + system) from the start of a wrk run until the audit log
//! has written everything it was handed, divided by the requests.
//!
//! During the create phases the store holds a steady `BENCH_LIVE` live clusters (default 50):
//! a reaper, `python3` with its `sqlite3` module in a process of its own (so its CPU time is
//! not counted as the server's), deletes all but the newest `BENCH_LIVE` every 20 ms, with
//! their events: the same ~50 small write transactions a second on both sides. NB: without
//! it the create figures measure the store, not the governance: each create reads every live
//! cluster for placement (about 10 µs each), so four seconds of creates make one three to
//! eight times dearer, and the faster side, having created more, pays more.
//!
//! Each round starts a fresh pair of servers (empty stores) and runs every phase on both, the
//! side that goes first alternating between rounds; the ratios are medians of the rounds' own
//! ratios. Goals (issue): on/off ≤ 1.3 for create, ≤ 1.1 for GET, on each figure: p50 and p99
//! at one connection, throughput at `THROUGHPUT_CONNS` (as a cost: off req/s over on req/s),
//! server CPU per request at `THROUGHPUT_CONNS`.
//!
//! Settings: `BENCH_SECS` per phase (default 4), `BENCH_ROUNDS` (default 3), `BENCH_LIVE`
//! (default 50); to take the cost apart, `BENCH_ON=policy` or `audit` (one of the two on) and
//! `BENCH_ONLY=get` or `create` (that request's phases alone, e.g. under `perf record`).

#[path = "support/wrk.rs"]
mod wrk;

use std::sync::Arc;

use anyhow::Context as _;
use tokio::runtime::Runtime;
use tokio::sync::{Notify, oneshot};
use vcm::audit::Auditor;
use vcm::auth::Authenticator;
use vcm::config::Config;
use vcm::config::policy::PolicyConfig;
use vcm::domain::{ApiToken, Role, TokenSecret};
use vcm::driver::fake::FakeDriver;
use vcm::http::AppState;
use vcm::policy::Policy;
use vcm::server::Server;
use vcm::service::{ClusterPolicy, ClusterService};
use vcm::store::Store;
use wrk::{Load, cpu_secs, env_or, median, median_load, which_wrk, wrk_with};

/// Allowed by every example policy for a `ci` caller of team `web`: `repo` and `pr` labels
/// (ci_labels), at most 2 h (max_ttl), a size the team may have (team_sizes), and not large
/// (business_hours refuses large ones outside office hours).
const CREATE_BODY: &str =
    r#"{"size":"small","ttl":"1h","labels":{"repo":"bench-org-app","pr":"42"}}"#;
/// The same without labels: the policy must refuse it, or the policy is not being asked.
const DENIED_BODY: &str = r#"{"size":"small","ttl":"1h"}"#;
/// Connections of the throughput phases: enough to keep both cores busy (with wrk on one of
/// them), few enough that the figure is the server's work rather than queueing.
const THROUGHPUT_CONNS: usize = 8;
/// How often the reaper trims the store: short enough that a side creating 2,000 clusters a
/// second holds at most 40 more than `BENCH_LIVE`, long enough to hold SQLite's write lock
/// seldom (a create that finds it taken waits a millisecond or more).
const REAP_EVERY_SECS: f64 = 0.02;
/// The reaper: deletes every cluster but the newest `keep` and the GET phases' one (events go
/// with them: `ON DELETE CASCADE`).
const REAPER: &str = r#"
import sqlite3, sys, time
db, keep, spare, every = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
con = sqlite3.connect(db, timeout=10, isolation_level=None)
con.execute("PRAGMA foreign_keys = ON")
print("ready", flush=True)
while True:
    con.execute(
        "DELETE FROM clusters WHERE id <> ? AND id NOT IN "
        "(SELECT id FROM clusters ORDER BY created_ms DESC, id DESC LIMIT ?)",
        (spare, keep),
    )
    time.sleep(every)
"#;
/// The issue's goals for on / off, on every figure.
const GET_GOAL: f64 = 1.1;
const CREATE_GOAL: f64 = 1.3;

/// What a server runs with.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Governance {
    policy: bool,
    audit: bool,
}

const OFF: Governance = Governance {
    policy: false,
    audit: false,
};
const BOTH: Governance = Governance {
    policy: true,
    audit: true,
};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Request {
    Get,
    Create,
}

// === impl Request ===

impl Request {
    /// Its `BENCH_ONLY` name.
    fn name(self) -> &'static str {
        match self {
            Self::Get => "get",
            Self::Create => "create",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Get => "GET /v1/clusters/{id}",
            Self::Create => "POST /v1/clusters",
        }
    }
}

/// One server of the pair.
struct Side {
    base: String,
    /// The SQLite file.
    db: std::path::PathBuf,
    /// The GET phases read this cluster.
    cluster: String,
    store: Arc<dyn Store>,
    audit: Option<Auditor>,
    _dir: tempfile::TempDir,
    _stop: oneshot::Sender<()>,
}

/// One phase on both sides in one round, and for a create the live clusters each store held
/// right after it.
struct Pair {
    off: Load,
    on: Load,
    live: (u64, u64),
}

fn main() -> anyhow::Result<()> {
    let secs = env_or("BENCH_SECS", 4);
    let rounds = env_or("BENCH_ROUNDS", 3).max(1);
    let keep = env_or("BENCH_LIVE", 50);
    let on_with = match std::env::var("BENCH_ON").unwrap_or_default().as_str() {
        "" | "both" => BOTH,
        "policy" => Governance {
            policy: true,
            ..OFF
        },
        "audit" => Governance { audit: true, ..OFF },
        other => anyhow::bail!("BENCH_ON={other:?}: give both, policy or audit"),
    };
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    let phases: Vec<(Request, usize)> = [
        (Request::Get, 1),
        (Request::Get, THROUGHPUT_CONNS),
        (Request::Create, 1),
        (Request::Create, THROUGHPUT_CONNS),
    ]
    .into_iter()
    .filter(|(r, _)| only.is_empty() || only.eq_ignore_ascii_case(r.name()))
    .collect();
    which_wrk()?;
    let rt = Runtime::new()?;
    let pid = std::process::id();
    let secret = TokenSecret::generate();
    let token = ApiToken {
        hash: secret.hash(),
        ..ApiToken::new("bench-ci", Role::Ci, Some("web".into()), None)
    };
    let work = tempfile::tempdir()?;
    let script = work.path().join("create.lua");
    std::fs::write(&script, lua(secret.expose()))?;
    let create_args = ["-s".to_owned(), script.display().to_string()];
    let get_args = [
        "-H".to_owned(),
        format!("Authorization: Bearer {}", secret.expose()),
    ];

    let mut results: Vec<Vec<Pair>> = phases.iter().map(|_| Vec::new()).collect();
    for round in 0..rounds {
        let off = rt.block_on(start(OFF, &token, secret.expose()))?;
        let on = rt.block_on(start(on_with, &token, secret.expose()))?;
        for ((request, conns), pairs) in phases.iter().zip(&mut results) {
            let run = |side: &Side| -> anyhow::Result<(Load, u64)> {
                let Request::Create = request else {
                    let url = format!("{}/v1/clusters/{}", side.base, side.cluster);
                    return Ok((measure(&rt, side, &url, &get_args, *conns, secs, pid)?, 0));
                };
                let reaper = Reaper::start(side, keep)?;
                let url = format!("{}/v1/clusters", side.base);
                let load = measure(&rt, side, &url, &create_args, *conns, secs, pid)?;
                let live = rt.block_on(live_clusters(side))?;
                reaper.stop()?;
                Ok((load, live))
            };
            // NB: the side that goes first alternates, so drift favours neither.
            let ((off, off_live), (on, on_live)) = if round % 2 == 0 {
                let first = run(&off)?;
                (first, run(&on)?)
            } else {
                let first = run(&on)?;
                (run(&off)?, first)
            };
            let live = (off_live, on_live);
            pairs.push(Pair { off, on, live });
        }
    }
    report(on_with, &phases, &results, rounds, secs, keep);
    Ok(())
}

/// Prints the figures, the ratios and whether each goal holds.
fn report(
    on_with: Governance,
    phases: &[(Request, usize)],
    results: &[Vec<Pair>],
    rounds: u64,
    secs: u64,
    keep: u64,
) {
    let on = match (on_with.policy, on_with.audit) {
        (true, true) => "policy + audit",
        (true, false) => "policy alone",
        _ => "audit alone",
    };
    println!(
        "\non = {on}, off = neither: {rounds} rounds, {secs} s per phase, medians of rounds\n"
    );
    println!("| request | conns | side | req/s | p50 | p99 | server CPU/req | wrk CPU/req |");
    println!("|---|---|---|---|---|---|---|---|");
    for ((request, conns), pairs) in phases.iter().zip(results) {
        let name = request.label();
        let off: Vec<&Load> = pairs.iter().map(|p| &p.off).collect();
        let on: Vec<&Load> = pairs.iter().map(|p| &p.on).collect();
        println!("| {name} | {conns} | off | {} |", median_load(&off));
        println!("| {name} | {conns} | on | {} |", median_load(&on));
    }
    for ((request, conns), pairs) in phases.iter().zip(results) {
        if *request == Request::Create {
            let live: Vec<(u64, u64)> = pairs.iter().map(|p| p.live).collect();
            println!("\nlive clusters after each create run at {conns} conns (off, on): {live:?}");
        }
    }
    if phases.iter().any(|(r, _)| *r == Request::Create) {
        println!("(the reaper keeps the newest {keep}; the rest were created since its last pass)");
    }

    println!("\n| request | figure | on / off (median of rounds) | each round | goal | holds |");
    println!("|---|---|---|---|---|---|");
    let mut verdicts = Vec::new();
    for request in [Request::Get, Request::Create] {
        let at = |conns: usize| {
            let i = phases.iter().position(|p| *p == (request, conns))?;
            Some(&results[i])
        };
        let (Some(one), Some(many)) = (at(1), at(THROUGHPUT_CONNS)) else {
            continue;
        };
        let goal = match request {
            Request::Get => GET_GOAL,
            Request::Create => CREATE_GOAL,
        };
        let figures = [
            ("p50, 1 conn".to_owned(), ratios(one, |l| l.p50_ms)),
            ("p99, 1 conn".to_owned(), ratios(one, |l| l.p99_ms)),
            (
                format!("throughput cost (off req/s ÷ on req/s), {THROUGHPUT_CONNS} conns"),
                ratios(many, |l| 1.0 / l.rps),
            ),
            (
                format!("server CPU/req, {THROUGHPUT_CONNS} conns"),
                ratios(many, |l| l.server_us),
            ),
        ];
        let mut holds_all = true;
        for (figure, each) in &figures {
            let ratio = median(each);
            let holds = ratio <= goal;
            holds_all &= holds;
            let each: Vec<String> = each.iter().map(|r| format!("{r:.2}")).collect();
            let verdict = if holds { "yes" } else { "**MISSED**" };
            let name = request.label();
            let each = each.join(", ");
            println!("| {name} | {figure} | **{ratio:.2}x** | {each} | ≤ {goal} | {verdict} |");
        }
        verdicts.push((request, goal, holds_all));
    }
    println!();
    if on_with != BOTH {
        println!("(the goals are for policy + audit together; this run turned on one of them)");
    }
    for (request, goal, holds_all) in verdicts {
        let name = request.label();
        match holds_all {
            true => println!("goal ≤ {goal}x for {name}: holds on every figure"),
            false => println!("goal ≤ {goal}x for {name}: MISSED (see the figures marked above)"),
        }
    }
}

/// Starts one server over a fresh SQLite file, with `token` in its store, and checks by hand
/// that a create is accepted (202) and a GET answered (200), and that the governance is as
/// configured: the policy refuses a create without labels, and requests are recorded.
async fn start(with: Governance, token: &ApiToken, secret: &str) -> anyhow::Result<Side> {
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}/vcm.db", dir.path().display());
    // NB: `store::open`, as the server opens it: SQLite behind the read-through cache. Without
    // the cache a GET is two SQLite reads, and the ratio would measure those instead.
    let store = vcm::store::open(&url).await?;
    store.insert_token(token).await?;
    let mut service = ClusterService::new(
        store.clone(),
        Arc::new(FakeDriver::default()),
        ClusterPolicy::default(),
        Arc::new(Notify::new()),
    );
    if with.policy {
        let policies = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/policies");
        let policy = Policy::load(&PolicyConfig {
            paths: vec![policies.into()],
            data: Some(format!("{policies}/data.json").into()),
            ..PolicyConfig::default()
        })
        .context("loading deploy/policies")?;
        service = service.with_policy(Some(Arc::new(policy)));
    }
    let state = AppState::new(service, Arc::new(Authenticator::new(store.clone())))
        .try_with_rate_limits(wrk::unmet_rate_limits())?;
    let state = if with.audit {
        state
    } else {
        state.with_audit(None)
    };
    let audit = state.audit.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let server = Server::build_with_listener(Config::default(), listener, state)?;
    let base = format!("http://{}", server.addr());
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(server.run_until_stopped(async move {
        let _ = stopped.await;
    }));

    // By hand first: a refused request would measure the refusal.
    let http = reqwest::Client::new();
    let auth = format!("Bearer {secret}");
    let post = |body: &'static str| {
        http.post(format!("{base}/v1/clusters"))
            .header("authorization", &auth)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let created = post(CREATE_BODY).await?;
    let status = created.status();
    let body: serde_json::Value = created.json().await?;
    anyhow::ensure!(
        status == 202,
        "the probe create was not accepted: {status} {body}"
    );
    let cluster = body["id"]
        .as_str()
        .context("the probe create's answer has no id")?
        .to_owned();
    let got = http
        .get(format!("{base}/v1/clusters/{cluster}"))
        .header("authorization", &auth)
        .send()
        .await?;
    anyhow::ensure!(
        got.status() == 200,
        "the probe GET failed: {}",
        got.status()
    );
    if with.policy {
        let denied = post(DENIED_BODY).await?;
        anyhow::ensure!(
            denied.status() == 403,
            "the policy did not refuse a ci create without labels ({}): is it loaded?",
            denied.status()
        );
    }
    if let Some(audit) = &audit {
        audit.flush().await;
    }
    let recorded = store.audit_head().await?.is_some();
    anyhow::ensure!(
        recorded == with.audit,
        "audit records: expected {}, found {recorded}",
        with.audit
    );
    Ok(Side {
        base,
        db: dir.path().join("vcm.db"),
        cluster,
        store,
        audit,
        _dir: dir,
        _stop: stop,
    })
}

/// wrk against `url`, with the server CPU per request counted until the audit log has written
/// what the run handed it (a record still queued when wrk stops is part of the run's cost).
fn measure(
    rt: &Runtime,
    side: &Side,
    url: &str,
    args: &[String],
    conns: usize,
    secs: u64,
    pid: u32,
) -> anyhow::Result<Load> {
    let before = cpu_secs(pid)?;
    // NB: wrk_with's own server figure stops with wrk; it is replaced below.
    let mut load = wrk_with(url, args, conns, secs, pid)?;
    if let Some(audit) = &side.audit {
        rt.block_on(audit.flush());
    }
    let cpu = cpu_secs(pid)? - before;
    load.server_us = cpu * 1e6 / (load.rps * secs as f64);
    Ok(load)
}

/// The reaper process (see the module doc), killed when dropped.
struct Reaper(std::process::Child);

// === impl Reaper ===

impl Reaper {
    /// Starts trimming `side`'s store to `keep` live clusters, once it has the file open.
    fn start(side: &Side, keep: u64) -> anyhow::Result<Self> {
        let mut child = std::process::Command::new("python3")
            .args(["-c", REAPER])
            .arg(&side.db)
            .arg(keep.to_string())
            .arg(&side.cluster)
            .arg(REAP_EVERY_SECS.to_string())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .context("starting the reaper: python3 with its sqlite3 module (Debian: python3)")?;
        let stdout = child.stdout.take().context("the reaper's stdout")?;
        let reaper = Self(child);
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)?;
        anyhow::ensure!(line.trim() == "ready", "the reaper did not start: {line:?}");
        Ok(reaper)
    }

    /// Stops it; an error if it had stopped on its own (it failed, and the store grew).
    fn stop(mut self) -> anyhow::Result<()> {
        if let Some(status) = self.0.try_wait()? {
            anyhow::bail!("the reaper stopped during the run ({status}): see its error above");
        }
        Ok(())
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Live clusters of team `web` (the benchmark's caller's).
async fn live_clusters(side: &Side) -> anyhow::Result<u64> {
    Ok(side
        .store
        .team_use("web")
        .await?
        .iter()
        .map(|u| u.clusters)
        .sum())
}

/// A wrk script creating a cluster per request.
fn lua(secret: &str) -> String {
    format!(
        r#"wrk.method = "POST"
wrk.body = '{CREATE_BODY}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {secret}"
"#
    )
}

/// Each round's on/off ratio of `figure`.
fn ratios(pairs: &[Pair], figure: impl Fn(&Load) -> f64) -> Vec<f64> {
    pairs
        .iter()
        .map(|p| figure(&p.on) / figure(&p.off))
        .collect()
}
