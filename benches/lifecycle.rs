//! Lifecycle benchmark (`cargo bench --bench lifecycle`), every figure a ratio against a baseline
//! measured in the same run on the same machine:
//!
//! 1. create-to-Ready of a local-driver cluster through the real `vcm` binary (POST, then poll
//!    GET every 20 ms), against the start-to-`/readyz` time of a bare kube-apiserver with the
//!    same flags and a pre-generated PKI on an already running etcd. Goal: ratio <= 1.2.
//! 2. `GET /v1/clusters/{id}` throughput and p99 against `GET /healthz` under the same load
//!    (closed loop, fixed concurrency, loopback only). Goal: >= 0.7 of its throughput.
//!
//! Environment: `BENCH_ROUNDS` (default 5), `BENCH_SECS` per load phase (default 5),
//! `BENCH_CONCURRENCY` (default 16).

use std::time::{Duration, Instant};

use anyhow::Context as _;
use vcm::controlplane::{ApiServer, ApiServerOptions, Etcd, KubeBins, Pki, free_port};

const TOKEN: &str = "vcm_00000000000000000000000000000000000000000000000000000000000000be";

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let rounds = env_or("BENCH_ROUNDS", 5) as usize;
    let secs = env_or("BENCH_SECS", 5);
    let conc = env_or("BENCH_CONCURRENCY", 16) as usize;
    let bins = KubeBins::locate();
    let work = tempfile::tempdir()?;

    // --- the vcm server under test ---------------------------------------------------------
    let port = free_port()?;
    let addr = format!("http://127.0.0.1:{port}");
    let mut server = std::process::Command::new(env!("CARGO_BIN_EXE_vcm"))
        .args([
            "server",
            "--dev",
            "--dev-token",
            TOKEN,
            "--log-level",
            "warn",
        ])
        .arg(format!("--listen=127.0.0.1:{port}"))
        .arg(format!("--data-dir={}", work.path().join("vcm").display()))
        .spawn()
        .context("starting vcm")?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(conc * 2)
        .build()?;
    wait_healthy(&http, &addr).await?;

    // --- baseline: a bare kube-apiserver with the same flags --------------------------------
    let etcd = Etcd::start(&bins, &work.path().join("baseline"), true).await?;
    let mut bare = vec![];
    let mut vcm = vec![];
    let mut ids = vec![];
    for round in 0..rounds {
        let dir = work.path().join(format!("baseline/apiserver-{round}"));
        Pki::generate(&dir, &[])?;
        let mut opts = ApiServerOptions::new(&dir, etcd.url());
        opts.etcd_prefix = format!("/bench/{round}/registry");
        opts.die_with_parent = true;
        let t = Instant::now();
        let server = ApiServer::start(&bins, &opts).await?;
        bare.push(t.elapsed());
        drop(server);

        let t = Instant::now();
        let created: serde_json::Value = http
            .post(format!("{addr}/v1/clusters"))
            .bearer_auth(TOKEN)
            .json(&serde_json::json!({}))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let id = created["id"].as_str().context("no id")?.to_owned();
        loop {
            let c = get_cluster(&http, &addr, &id).await?;
            match c["phase"].as_str() {
                Some("Ready") => break,
                Some("Failed") => anyhow::bail!("cluster failed: {}", c["message"]),
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
        vcm.push(t.elapsed());
        ids.push(id);
    }
    let (bare_med, vcm_med) = (median(&bare), median(&vcm));

    // --- GET throughput ---------------------------------------------------------------------
    let one = format!("{addr}/v1/clusters/{}", ids[0]);
    let health = load(&http, &format!("{addr}/healthz"), None, secs, conc).await?;
    let get = load(&http, &one, Some(TOKEN), secs, conc).await?;

    // --- clean up -------------------------------------------------------------------------
    for id in &ids {
        http.delete(format!("{addr}/v1/clusters/{id}"))
            .bearer_auth(TOKEN)
            .send()
            .await?;
    }
    for id in &ids {
        for _ in 0..300 {
            let c = get_cluster(&http, &addr, id).await?;
            if c["phase"] == "Deleted" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(server.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    server.wait()?;
    let leftover =
        vcm::controlplane::find_processes(&work.path().join("vcm").display().to_string());
    for (pid, _) in &leftover {
        vcm::controlplane::kill_group(*pid); // the shared etcd of the local driver
    }

    println!("## create-to-Ready ({rounds} rounds, medians)\n");
    println!("| measure | median | all |");
    println!("|---|---|---|");
    println!(
        "| bare kube-apiserver start to /readyz (baseline) | {:.2}s | {} |",
        bare_med,
        list(&bare)
    );
    println!(
        "| vcm local driver, POST to phase Ready | {:.2}s | {} |",
        vcm_med,
        list(&vcm)
    );
    println!(
        "\n**ratio vcm / baseline = {:.2}** (goal <= 1.2)\n",
        vcm_med / bare_med
    );
    println!("## GET throughput ({secs}s each, {conc} concurrent connections)\n");
    println!("| endpoint | req/s | p50 | p99 |");
    println!("|---|---|---|---|");
    for (name, r) in [
        ("GET /healthz (baseline)", &health),
        ("GET /v1/clusters/{id}", &get),
    ] {
        println!(
            "| {name} | {:.0} | {:.2}ms | {:.2}ms |",
            r.rps, r.p50_ms, r.p99_ms
        );
    }
    println!(
        "\n**throughput ratio = {:.2}** (goal >= 0.7)",
        get.rps / health.rps
    );
    Ok(())
}

async fn get_cluster(
    http: &reqwest::Client,
    addr: &str,
    id: &str,
) -> anyhow::Result<serde_json::Value> {
    let resp = http
        .get(format!("{addr}/v1/clusters/{id}"))
        .bearer_auth(TOKEN)
        .send()
        .await?;
    Ok(resp.json().await?)
}

async fn wait_healthy(http: &reqwest::Client, addr: &str) -> anyhow::Result<()> {
    for _ in 0..600 {
        if let Ok(r) = http.get(format!("{addr}/readyz")).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("vcm did not become ready at {addr}")
}

struct Load {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
}

async fn load(
    http: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    secs: u64,
    conc: usize,
) -> anyhow::Result<Load> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..conc {
        let (http, url, token) = (http.clone(), url.to_owned(), token.map(str::to_owned));
        tasks.spawn(async move {
            let mut lat = vec![];
            while Instant::now() < deadline {
                let t = Instant::now();
                let mut req = http.get(&url);
                if let Some(tok) = &token {
                    req = req.bearer_auth(tok);
                }
                let resp = req.send().await?;
                anyhow::ensure!(resp.status().is_success(), "{url}: {}", resp.status());
                resp.bytes().await?;
                lat.push(t.elapsed());
            }
            Ok::<_, anyhow::Error>(lat)
        });
    }
    let mut all = vec![];
    while let Some(res) = tasks.join_next().await {
        all.extend(res??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort();
    let pct =
        |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)].as_secs_f64() * 1e3;
    Ok(Load {
        rps: all.len() as f64 / elapsed,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
    })
}

fn median(v: &[Duration]) -> f64 {
    let mut s: Vec<f64> = v.iter().map(Duration::as_secs_f64).collect();
    s.sort_by(f64::total_cmp);
    s[s.len() / 2]
}

fn list(v: &[Duration]) -> String {
    v.iter()
        .map(|d| format!("{:.2}", d.as_secs_f64()))
        .collect::<Vec<_>>()
        .join(" ")
}
