//! Metrics benchmark (`cargo bench --bench metrics`, or `bench/run.sh metrics`): what counting a
//! request into `/metrics` costs on the read path, as a ratio against the same request to the
//! same kind of server with metrics off, in one run.
//!
//! * **off**: `[metrics] enabled = false` (`AppState::with_metrics`): no `/metrics`, nothing
//!   counted on the request path.
//! * **on**: the default: every request adds one to `vcm_http_requests_total` and observes
//!   `vcm_http_request_duration_seconds` for its door, method, route template and status.
//!
//! Both servers run in this process, built in code (`Server::build_with_listener`) over a SQLite
//! file of their own opened as the real server opens it (`store::open`, behind the
//! read-through cache), with the fake driver, rate limits on but never met, and the audit log
//! off on both (it costs a GET more than the metrics do; with it on, the ratio would be
//! flattered by a larger denominator). The request is `GET /v1/clusters/{id}` by an admin
//! token; the load comes from wrk, a separate process, and the server CPU per request is this
//! process's CPU time during a wrk run divided by the requests.
//!
//! Each round starts a fresh pair of servers and runs both phases (1 connection, then
//! `THROUGHPUT_CONNS`) on both, the side that goes first alternating; the ratios are medians
//! of the rounds' ratios. Goal (issue): on/off ≤ 1.05 on each figure: p50 and p99 at one
//! connection, throughput at `THROUGHPUT_CONNS` (as a cost: off req/s over on req/s), server
//! CPU per request at `THROUGHPUT_CONNS`. A scrape's own cost (`GET /metrics` with the
//! series those runs made) is reported beside them.
//!
//! Settings: `BENCH_SECS` per phase (default 4), `BENCH_ROUNDS` (default 3).

#[path = "support/wrk.rs"]
mod wrk;

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use tokio::runtime::Runtime;
use tokio::sync::{Notify, oneshot};
use vcm::auth::Authenticator;
use vcm::config::Config;
use vcm::config::metrics::MetricsConfig;
use vcm::domain::{ApiToken, Role, TokenSecret};
use vcm::driver::fake::FakeDriver;
use vcm::http::AppState;
use vcm::server::Server;
use vcm::service::{ClusterPolicy, ClusterService};
use wrk::{Load, cpu_secs, env_or, median, median_load, which_wrk, wrk_with};

/// Connections of the throughput phase: enough to keep both cores busy (with wrk on one of
/// them), few enough that the figure is the server's work rather than queueing.
const THROUGHPUT_CONNS: usize = 8;
/// The issue's goal for on / off, on every figure.
const GOAL: f64 = 1.05;

/// One server of the pair.
struct Side {
    base: String,
    cluster: String,
    _dir: tempfile::TempDir,
    _stop: oneshot::Sender<()>,
}

fn main() -> anyhow::Result<()> {
    let secs = env_or("BENCH_SECS", 4);
    let rounds = env_or("BENCH_ROUNDS", 3).max(1);
    which_wrk()?;
    let rt = Runtime::new()?;
    let pid = std::process::id();
    let secret = TokenSecret::generate();
    let token = ApiToken {
        hash: secret.hash(),
        ..ApiToken::new("bench-admin", Role::Admin, None, None)
    };
    let args = [
        "-H".to_owned(),
        format!("Authorization: Bearer {}", secret.expose()),
    ];
    let phases = [1, THROUGHPUT_CONNS];
    // results[phase][round] = (off, on)
    let mut results: Vec<Vec<(Load, Load)>> = phases.iter().map(|_| Vec::new()).collect();
    let mut scrapes = Vec::new();
    for round in 0..rounds {
        let off = rt.block_on(start(false, &token, secret.expose()))?;
        let on = rt.block_on(start(true, &token, secret.expose()))?;
        for (conns, pairs) in phases.iter().zip(&mut results) {
            let run = |side: &Side| -> anyhow::Result<Load> {
                let url = format!("{}/v1/clusters/{}", side.base, side.cluster);
                let before = cpu_secs(pid)?;
                let mut load = wrk_with(&url, &args, *conns, secs, pid)?;
                let cpu = cpu_secs(pid)? - before;
                load.server_us = cpu * 1e6 / (load.rps * secs as f64);
                Ok(load)
            };
            // NB: the side that goes first alternates, so drift favours neither.
            let pair = if round % 2 == 0 {
                let first = run(&off)?;
                (first, run(&on)?)
            } else {
                let first = run(&on)?;
                (run(&off)?, first)
            };
            pairs.push(pair);
        }
        scrapes.push(rt.block_on(scrape(&on, secret.expose()))?);
    }
    report(&phases, &results, &scrapes, rounds, secs);
    Ok(())
}

/// Prints the figures, the ratios and whether the goal holds.
fn report(
    phases: &[usize],
    results: &[Vec<(Load, Load)>],
    scrapes: &[(f64, usize)],
    rounds: u64,
    secs: u64,
) {
    println!(
        "\non = metrics counted (the default), off = [metrics] enabled = false; audit off on both"
    );
    println!("{rounds} rounds, {secs} s per phase, medians of rounds\n");
    println!("| request | conns | side | req/s | p50 | p99 | server CPU/req | wrk CPU/req |");
    println!("|---|---|---|---|---|---|---|---|");
    for (conns, pairs) in phases.iter().zip(results) {
        let off: Vec<&Load> = pairs.iter().map(|p| &p.0).collect();
        let on: Vec<&Load> = pairs.iter().map(|p| &p.1).collect();
        println!(
            "| GET /v1/clusters/{{id}} | {conns} | off | {} |",
            median_load(&off)
        );
        println!(
            "| GET /v1/clusters/{{id}} | {conns} | on | {} |",
            median_load(&on)
        );
    }
    let one = &results[0];
    let many = &results[1];
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
    println!("\n| figure | on / off (median of rounds) | each round | goal | holds |");
    println!("|---|---|---|---|---|");
    let mut holds_all = true;
    for (figure, each) in &figures {
        let ratio = median(each);
        let holds = ratio <= GOAL;
        holds_all &= holds;
        let each: Vec<String> = each.iter().map(|r| format!("{r:.3}")).collect();
        let verdict = if holds { "yes" } else { "**MISSED**" };
        println!(
            "| {figure} | **{ratio:.3}x** | {} | ≤ {GOAL} | {verdict} |",
            each.join(", ")
        );
    }
    let ms: Vec<f64> = scrapes.iter().map(|s| s.0).collect();
    let bytes = scrapes.iter().map(|s| s.1).max().unwrap_or(0);
    println!(
        "\na scrape of the `on` server after each round (GET /metrics, {bytes} bytes): median {:.2} ms",
        median(&ms)
    );
    match holds_all {
        true => println!("goal ≤ {GOAL}x for GET: holds on every figure"),
        false => println!("goal ≤ {GOAL}x for GET: MISSED (see the figures marked above)"),
    }
}

/// Starts one server over a fresh SQLite file with `token` in its store and one cluster, and
/// checks by hand that the GET is answered (200) and that metrics are as configured.
async fn start(metrics: bool, token: &ApiToken, secret: &str) -> anyhow::Result<Side> {
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}/vcm.db", dir.path().display());
    let store = vcm::store::open(&url).await?;
    store.insert_token(token).await?;
    let service = ClusterService::new(
        store.clone(),
        Arc::new(FakeDriver::default()),
        ClusterPolicy::default(),
        Arc::new(Notify::new()),
    );
    let state = AppState::new(service, Arc::new(Authenticator::new(store.clone())))
        .try_with_rate_limits(wrk::unmet_rate_limits())?
        .with_audit(None)
        .with_metrics(&MetricsConfig {
            enabled: metrics,
            ..MetricsConfig::default()
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let server = Server::build_with_listener(Config::default(), listener, state)?;
    let base = format!("http://{}", server.addr());
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(server.run_until_stopped(async move {
        let _ = stopped.await;
    }));

    let http = reqwest::Client::new();
    let auth = format!("Bearer {secret}");
    let created = http
        .post(format!("{base}/v1/clusters"))
        .header("authorization", &auth)
        .header("content-type", "application/json")
        .body(r#"{"size":"small","ttl":"1h"}"#)
        .send()
        .await?;
    let status = created.status();
    let body: serde_json::Value = created.json().await?;
    anyhow::ensure!(
        status == 202,
        "the probe create was not accepted: {status} {body}"
    );
    let cluster = body["id"].as_str().context("no id")?.to_owned();
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
    let scraped = http
        .get(format!("{base}/metrics"))
        .header("authorization", &auth)
        .send()
        .await?;
    let want = if metrics { 200 } else { 404 };
    anyhow::ensure!(
        scraped.status() == want,
        "GET /metrics answered {}, expected {want}",
        scraped.status()
    );
    if metrics {
        let text = scraped.text().await?;
        anyhow::ensure!(
            text.contains(r#"route="/v1/clusters/{id}",status="200"} 1"#),
            "the probe GET was not counted:\n{text}"
        );
    }
    Ok(Side {
        base,
        cluster,
        _dir: dir,
        _stop: stop,
    })
}

/// How long a scrape of `side` takes, and its size.
async fn scrape(side: &Side, secret: &str) -> anyhow::Result<(f64, usize)> {
    let http = reqwest::Client::new();
    let started = Instant::now();
    let text = http
        .get(format!("{}/metrics", side.base))
        .header("authorization", format!("Bearer {secret}"))
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    Ok((started.elapsed().as_secs_f64() * 1000.0, text.len()))
}

/// Each round's on/off ratio of `figure`.
fn ratios(pairs: &[(Load, Load)], figure: impl Fn(&Load) -> f64) -> Vec<f64> {
    pairs.iter().map(|p| figure(&p.1) / figure(&p.0)).collect()
}
