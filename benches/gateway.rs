//! Gateway benchmark (`cargo bench --bench gateway`, or `bench/run.sh gateway`): the same
//! requests to one local-driver cluster through vcm's gateway (`/k8s/<id>/…`, with a gateway
//! credential) and direct to its kube-apiserver (with a ServiceAccount token), in one run on one
//! machine, every figure a ratio of the two:
//!
//! 1. GET of a small ConfigMap, one connection: p50 and p99 latency. Goal: gateway <= 1.2x.
//! 2. The same GET over 16 connections: throughput. Goal: gateway >= 0.8x.
//! 3. LIST of `BENCH_OBJECTS` ConfigMaps of 1 KiB (default 500), one connection.
//! 4. Watch event latency: two watches open at once (one each way); each of `BENCH_EVENTS`
//!    ConfigMaps (default 50) is created direct, and each watch notes when its event arrives,
//!    measured from just before the create.
//!
//! Load comes from `wrk` (a separate process); vcm is the release build of the real binary,
//! serving HTTPS (kubectl sends credentials only over TLS, so that is how the gateway is used).
//! Both paths end at the same API server on the same cores, so the ratio is the gateway's cost:
//! one more TLS hop and vcm's checks. `BENCH_SECS` per load phase (default 5).

#[path = "support/wrk.rs"]
mod wrk;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use vcm::controlplane::free_port;
use wrk::{Load, env_or, which_wrk, wrk};

const TOKEN: &str = "vcm_00000000000000000000000000000000000000000000000000000000000000a1";

/// Where one path ends and how it authenticates.
struct Path {
    base: String,
    token: String,
    client: reqwest::Client,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let secs = env_or("BENCH_SECS", 5);
    let objects = env_or("BENCH_OBJECTS", 500) as usize;
    let events = env_or("BENCH_EVENTS", 50) as usize;
    which_wrk()?;
    let work = tempfile::tempdir()?;
    let (cert, key) = vcm::testing::loopback_certificate(work.path())?;
    let vcm_ca = reqwest::Certificate::from_pem(&std::fs::read(&cert)?)?;

    // --- vcm over HTTPS, one Ready cluster ------------------------------------------------
    let port = free_port()?;
    let addr = format!("https://127.0.0.1:{port}");
    let data = work.path().join("vcm");
    let server = std::process::Command::new(env!("CARGO_BIN_EXE_vcm"))
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
        .env("VCM_TLS__CERT_FILE", &cert)
        .env("VCM_TLS__KEY_FILE", &key)
        // NB: the limits still run on every request (their cost is measured), but wrk's
        // thousands of requests a second must not be refused.
        .env("VCM_GATEWAY__REQUESTS_PER_MINUTE", u32::MAX.to_string())
        .env("VCM_GATEWAY__BURST", u32::MAX.to_string())
        .spawn()
        .context("starting vcm")?;
    let server = Reaper {
        server,
        data: data.display().to_string(),
    };
    let api = reqwest::Client::builder()
        .tls_certs_only([vcm_ca.clone()])
        .build()?;
    let id = ready_cluster(&api, &addr).await?;
    let gateway = kubeconfig(&api, &addr, &id, "gateway").await?;
    let direct = kubeconfig(&api, &addr, &id, "direct").await?;
    let paths = [("direct", &direct), ("gateway", &gateway)];

    // --- the objects ------------------------------------------------------------------------
    let cms = "/api/v1/namespaces/default/configmaps";
    create_cm(&direct, "small", 16).await?;
    for i in 0..objects {
        create_cm(&direct, &format!("bulk-{i}"), 1024).await?;
    }

    // --- load from wrk ----------------------------------------------------------------------
    let pid = server.server.id();
    let mut rows: Vec<(&str, &str, Load, Load)> = vec![];
    for (what, path, conns) in [
        ("GET one ConfigMap", format!("{cms}/small"), 1),
        ("GET one ConfigMap", format!("{cms}/small"), 16),
        (
            "LIST ConfigMaps",
            format!("{cms}?labelSelector=bench%3Dbulk"),
            1,
        ),
    ] {
        let mut loads = vec![];
        for (_, p) in paths {
            loads.push(wrk(
                &format!("{}{path}", p.base),
                Some(&p.token),
                conns,
                secs,
                pid,
            )?);
        }
        let gateway = loads.pop().context("two loads")?;
        let direct = loads.pop().context("two loads")?;
        rows.push((what, if conns == 1 { "1" } else { "16" }, direct, gateway));
    }

    // --- watch event latency ----------------------------------------------------------------
    let mut arrivals: Vec<tokio::sync::mpsc::UnboundedReceiver<(String, Instant)>> = vec![];
    for (_, p) in paths {
        arrivals.push(watch(p, cms).await?);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut created = HashMap::new();
    for i in 0..events {
        let name = format!("event-{i}");
        created.insert(name.clone(), Instant::now());
        create_cm(&direct, &name, 16).await?;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut latencies = vec![];
    for rx in &mut arrivals {
        let mut seen = vec![];
        while seen.len() < events {
            let (name, at) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await
                .context("a watch fell silent")?
                .context("a watch ended")?;
            if let Some(t0) = created.get(&name) {
                seen.push(at.duration_since(*t0));
            }
        }
        latencies.push(seen);
    }
    drop(server);

    // --- report -----------------------------------------------------------------------------
    println!("## Gateway against direct ({secs}s per wrk run, {objects} objects listed)\n");
    println!(
        "| request | connections | path | req/s | p50 | p99 | vcm CPU/req | wrk CPU/req | ratio |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (what, conns, direct, gateway) in &rows {
        let ratio = if *conns == "1" {
            format!(
                "p50 {:.2}x, p99 {:.2}x",
                gateway.p50_ms / direct.p50_ms,
                gateway.p99_ms / direct.p99_ms
            )
        } else {
            format!("throughput {:.2}x", gateway.rps / direct.rps)
        };
        println!("| {what} | {conns} | direct | {direct} | |");
        println!("| {what} | {conns} | gateway | {gateway} | {ratio} |");
    }
    let (d, g) = (percentiles(&latencies[0]), percentiles(&latencies[1]));
    println!("\n## Watch event latency ({events} events, from just before each create)\n");
    println!("| path | p50 | p99 |");
    println!("|---|---|---|");
    println!("| direct | {:.2}ms | {:.2}ms |", d.0, d.1);
    println!(
        "| gateway | {:.2}ms | {:.2}ms | ratio p50 {:.2}x, p99 {:.2}x",
        g.0,
        g.1,
        g.0 / d.0,
        g.1 / d.1
    );
    Ok(())
}

/// The vcm server and everything it started: a local cluster's processes outlive a killed vcm
/// (a restarted one adopts them), so dropping this (at the end, or on an error) kills every
/// process working under the data directory too.
struct Reaper {
    server: std::process::Child,
    data: String,
}

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
        for (pid, _) in vcm::controlplane::find_processes(&self.data) {
            vcm::controlplane::kill_group(pid);
        }
    }
}

/// Create a cluster and wait until it is Ready; its id.
async fn ready_cluster(api: &reqwest::Client, addr: &str) -> anyhow::Result<String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while api.get(format!("{addr}/readyz")).send().await.is_err() {
        anyhow::ensure!(Instant::now() < deadline, "vcm did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let created: serde_json::Value = api
        .post(format!("{addr}/v1/clusters"))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"name": "bench", "ttl": "1h"}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let id = created["id"].as_str().context("no id")?.to_owned();
    loop {
        let c: serde_json::Value = api
            .get(format!("{addr}/v1/clusters/{id}"))
            .bearer_auth(TOKEN)
            .send()
            .await?
            .json()
            .await?;
        match c["phase"].as_str() {
            Some("Ready") => return Ok(id),
            Some("Failed") => anyhow::bail!("cluster failed: {}", c["message"]),
            _ => {
                anyhow::ensure!(Instant::now() < deadline, "cluster not Ready: {c}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// A kubeconfig of `mode`, as a server URL, token and client that trusts its CA.
async fn kubeconfig(
    api: &reqwest::Client,
    addr: &str,
    id: &str,
    mode: &str,
) -> anyhow::Result<Path> {
    let kc: serde_json::Value = api
        .post(format!("{addr}/v1/clusters/{id}/kubeconfig"))
        .bearer_auth(TOKEN)
        .header("accept", "application/json")
        .json(&serde_json::json!({ "mode": mode }))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let cluster = &kc["clusters"][0]["cluster"];
    let ca = cluster["certificate-authority-data"]
        .as_str()
        .context("no CA")?;
    use base64::Engine as _;
    let ca = base64::engine::general_purpose::STANDARD.decode(ca)?;
    Ok(Path {
        base: cluster["server"].as_str().context("no server")?.to_owned(),
        token: kc["users"][0]["user"]["token"]
            .as_str()
            .context("no token")?
            .to_owned(),
        client: reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&ca)?])
            .build()?,
    })
}

async fn create_cm(p: &Path, name: &str, bytes: usize) -> anyhow::Result<()> {
    p.client
        .post(format!("{}/api/v1/namespaces/default/configmaps", p.base))
        .bearer_auth(&p.token)
        .json(&serde_json::json!({
            "metadata": {"name": name, "labels": {"bench": name.split('-').next()}},
            "data": {"v": "x".repeat(bytes)},
        }))
        .send()
        .await?
        .error_for_status()?;
    Ok(())
}

/// A watch of `cms` from now on: the name of each ADDED object and when its event arrived.
async fn watch(
    p: &Path,
    cms: &str,
) -> anyhow::Result<tokio::sync::mpsc::UnboundedReceiver<(String, Instant)>> {
    let list: serde_json::Value = p
        .client
        .get(format!("{}{cms}?limit=1", p.base))
        .bearer_auth(&p.token)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .context("no resourceVersion")?;
    let response = p
        .client
        .get(format!("{}{cms}?watch=true&resourceVersion={rv}", p.base))
        .bearer_auth(&p.token)
        .send()
        .await?
        .error_for_status()?;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut response = response;
        let mut buf = Vec::new();
        while let Ok(Some(chunk)) = response.chunk().await {
            let at = Instant::now();
            buf.extend_from_slice(&chunk);
            while let Some(end) = buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buf.drain(..=end).collect();
                let Ok(event) = serde_json::from_slice::<serde_json::Value>(&line) else {
                    continue;
                };
                if event["type"] == "ADDED"
                    && let Some(name) = event["object"]["metadata"]["name"].as_str()
                    && tx.send((name.to_owned(), at)).is_err()
                {
                    return;
                }
            }
        }
    });
    Ok(rx)
}

/// p50 and p99 in milliseconds.
fn percentiles(v: &[Duration]) -> (f64, f64) {
    let mut ms: Vec<f64> = v.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() as f64 * q) as usize).min(ms.len() - 1)];
    (at(0.5), at(0.99))
}
