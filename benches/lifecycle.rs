//! Lifecycle benchmark (`cargo bench --bench lifecycle`, or `bench/run.sh`), every figure a
//! ratio against a baseline measured in the same run on the same machine:
//!
//! 1. create-to-Ready of a local-driver cluster through the real `vcm` binary (POST, then poll
//!    GET every 20 ms), against the start-to-`/readyz` time of a bare kube-apiserver with the
//!    same flags and a pre-generated PKI on an already running etcd. Goal: ratio <= 1.2.
//! 2. `GET /v1/clusters/{id}` throughput and p99 against `GET /healthz`, at 16 and at 200
//!    connections. Load comes from `wrk`, a separate process (a generator inside this process
//!    would share the runtime and the cores with what it measures). Goal: >= 0.9 of /healthz.
//! 3. `GET /v1/clusters?limit=100` with 1,000 clusters stored, at 16 and 200 connections.
//!    Goal: p99 under 5 ms at 200, against /healthz's p99 under the same load.
//!
//! Every load row also says how much CPU the server and wrk spent per request (from
//! `/proc/<pid>/stat` and the shell's `times`): with both on the same cores, a closed loop's
//! throughput is bounded by their sum, and its p99 by connections / throughput.
//!
//! The server is the release build of the real binary (`cargo bench` builds it). Environment:
//! `BENCH_ROUNDS` (default 5), `BENCH_SECS` per load phase (default 5), `BENCH_STORED`
//! (clusters stored for the list phase, default 1000). Needs `wrk` (Debian: `apt-get install
//! wrk`; `bench/run.sh` installs it).

#[path = "support/wrk.rs"]
mod wrk;

use std::time::{Duration, Instant};

use anyhow::Context as _;
use vcm::controlplane::{ApiServer, ApiServerOptions, Etcd, KubeBins, Pki, free_port};
use vcm::domain::{ClusterName, NewEvent, Phase, now_ms};
use vcm::driver::LocalSize;
use wrk::{available_cores, env_or, which_wrk, wrk};

const TOKEN: &str = "vcm_00000000000000000000000000000000000000000000000000000000000000be";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let rounds = env_or("BENCH_ROUNDS", 5) as usize;
    let secs = env_or("BENCH_SECS", 5);
    let stored = env_or("BENCH_STORED", 1000) as usize;
    let bins = KubeBins::locate();
    let work = tempfile::tempdir()?;
    which_wrk()?;

    // --- a store with `stored` ended clusters, for the list phase ---------------------------
    // NB: ended (Deleted) records: the list query and its JSON are the same as for live ones,
    // and nothing starts 1,000 control planes.
    let data = work.path().join("vcm");
    std::fs::create_dir_all(&data)?;
    {
        let store =
            vcm::store::open(&format!("sqlite://{}", data.join("vcm.db").display())).await?;
        for i in 0..stored {
            let mut c = vcm::store::conformance::mk_cluster("stored");
            c.name = ClusterName::parse(&format!("stored-{i}"))?;
            c.phase = Phase::Deleted;
            c.deleted_at = Some(now_ms());
            c.labels = vcm::domain::Labels::parse(
                [
                    ("repo".to_string(), "web".to_string()),
                    ("pr".to_string(), i.to_string()),
                ]
                .into(),
            )?;
            store
                .insert_cluster(&c, &NewEvent::new("created", "bench"), None)
                .await?;
        }
    }

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
        .arg(format!("--data-dir={}", data.display()))
        // NB: the limiter still runs on every request (its cost is measured), but one token
        // sending 50,000 requests a second must not be refused.
        .env(
            "VCM_RATE_LIMITS__PRINCIPAL_PER_MINUTE",
            u32::MAX.to_string(),
        )
        .env("VCM_RATE_LIMITS__PRINCIPAL_BURST", u32::MAX.to_string())
        .spawn()
        .context("starting vcm")?;
    let http = reqwest::Client::builder().build()?;
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
        // The same size limits vcm gives a `small` cluster.
        opts.extra_args = LocalSize::default().apiserver_args();
        opts.env = LocalSize::default().apiserver_env();
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

    // --- GET and list under load from wrk --------------------------------------------------
    let one = format!("{addr}/v1/clusters/{}", ids[0]);
    let health_url = format!("{addr}/healthz");
    let list_url = format!("{addr}/v1/clusters?limit=100");
    let page_bytes = http
        .get(&list_url)
        .bearer_auth(TOKEN)
        .send()
        .await?
        .error_for_status()?
        .bytes()
        .await?
        .len();
    let pid = server.id();
    let mut get_rows = vec![];
    for conns in [16, 200] {
        let health = wrk(&health_url, None, conns, secs, pid)?;
        let get = wrk(&one, Some(TOKEN), conns, secs, pid)?;
        get_rows.push((conns, health, get));
    }
    let whoami_url = format!("{addr}/v1/whoami");
    let mut auth_rows = vec![];
    for conns in [16, 200] {
        let health = wrk(&health_url, None, conns, secs, pid)?;
        let whoami = wrk(&whoami_url, Some(TOKEN), conns, secs, pid)?;
        auth_rows.push((conns, health, whoami));
    }
    let mut list_rows = vec![];
    for conns in [16, 200] {
        let health = wrk(&health_url, None, conns, secs, pid)?;
        let listed = wrk(&list_url, Some(TOKEN), conns, secs, pid)?;
        list_rows.push((conns, health, listed));
    }

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
    println!("## GET /v1/clusters/{{id}} against GET /healthz (wrk, {secs}s each)\n");
    let header =
        "| connections | endpoint | req/s | p50 | p99 | server CPU/req | wrk CPU/req | ratio |";
    println!("{header}\n|---|---|---|---|---|---|---|---|");
    for (conns, health, get) in &get_rows {
        println!("| {conns} | GET /healthz (baseline) | {health} | |");
        println!(
            "| {conns} | GET /v1/clusters/{{id}} | {get} | **{:.2}** |",
            get.rps / health.rps
        );
    }
    println!("\ngoal: throughput ratio >= 0.9\n");
    println!(
        "## Authentication: GET /v1/whoami (bearer token, rate limiter, 100-byte JSON) against GET /healthz\n"
    );
    println!("{header}\n|---|---|---|---|---|---|---|---|");
    for (conns, health, whoami) in &auth_rows {
        println!("| {conns} | GET /healthz (baseline) | {health} | |");
        println!(
            "| {conns} | GET /v1/whoami | {whoami} | **{:.2}** |",
            whoami.rps / health.rps
        );
    }
    println!();
    for (conns, health, whoami) in &auth_rows {
        println!(
            "added server CPU per request for authentication at {conns} connections: {:.1} µs",
            whoami.server_us - health.server_us
        );
    }
    println!();
    println!(
        "## GET /v1/clusters?limit=100 with {stored} clusters stored ({page_bytes} bytes a page)\n"
    );
    println!("{header}\n|---|---|---|---|---|---|---|---|");
    for (conns, health, listed) in &list_rows {
        println!("| {conns} | GET /healthz (baseline) | {health} | |");
        println!(
            "| {conns} | GET /v1/clusters?limit=100 | {listed} | {:.2} |",
            listed.rps / health.rps
        );
    }
    let (_, _, at200) = &list_rows[1];
    let cpu_us = at200.server_us + at200.wrk_us;
    println!(
        "\n**list p99 {:.2} ms at 200 connections** (goal < 5 ms). A p99 under 5 ms at 200 \
         connections needs at least 200 / 5 ms = 40,000 pages/s ({:.1} GB/s); server and wrk \
         together spent {cpu_us:.0} µs of CPU per page, so these cores serve at most {:.0} \
         pages/s, whose closed-loop latency is at least {:.1} ms.",
        at200.p99_ms,
        40_000.0 * page_bytes as f64 / 1e9,
        available_cores() * 1e6 / cpu_us,
        200.0 / (available_cores() * 1e6 / cpu_us) * 1e3,
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
