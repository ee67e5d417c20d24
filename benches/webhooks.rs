//! Webhook door benchmark (`cargo bench --bench webhooks`, or `bench/run.sh webhooks`): how
//! fast vcm answers a GitHub delivery, against a bare request to the same server in the same
//! run. Each delivery is GitHub's documented `pull_request` `opened` payload (compact JSON, raw
//! UTF-8), signed, with a delivery id of its own, so every one goes the whole way: the
//! signature over the raw body, the JSON read, and the delivery recorded in SQLite (one write
//! transaction, WAL with `synchronous = NORMAL` like every write of vcm) before the 202. The repository has no rule, so no cluster work runs beside the load.
//!
//! Baseline: `GET /healthz` (routing, middleware, no store). Figures: p50 and p99 at one
//! connection, throughput at 8, and the server's CPU per request. The providers' timeout is
//! 10 s (Bitbucket): the goal is p99 far below that under load, not a ratio.

#[path = "support/wrk.rs"]
mod wrk;

use anyhow::Context as _;
use vcm::controlplane::free_port;
use wrk::{Load, env_or, which_wrk, wrk, wrk_with};

const SECRET: &str = "bench-webhook-secret";

fn main() -> anyhow::Result<()> {
    let secs = env_or("BENCH_SECS", 5);
    which_wrk()?;
    let work = tempfile::tempdir()?;
    let payload = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/webhooks/github/pull_request.opened.json"
    ))?;
    // NB: a repository no rule names: the delivery is recorded and answered, nothing more.
    let body = String::from_utf8(payload)?.replace("nimbus-labs/vcm-demo", "bench-org/no-rule");
    let signature = vcm::webhooks::signature::sign(SECRET.as_bytes(), body.as_bytes());
    let body_file = work.path().join("body.json");
    std::fs::write(&body_file, &body)?;
    let script = work.path().join("deliver.lua");
    std::fs::write(&script, lua(&body_file.display().to_string(), &signature))?;
    let config = work.path().join("vcm.toml");
    std::fs::write(
        &config,
        "[webhooks.github]\nsecrets = [\"env:BENCH_WEBHOOK_SECRET\"]\n",
    )?;

    let port = free_port()?;
    let data = work.path().join("vcm");
    let server = std::process::Command::new(env!("CARGO_BIN_EXE_vcm"))
        .args(["server", "--dev", "--log-level", "warn"])
        .arg(format!("--listen=127.0.0.1:{port}"))
        .arg(format!("--data-dir={}", data.display()))
        .env("VCM_CONFIG", &config)
        .env("BENCH_WEBHOOK_SECRET", SECRET)
        .spawn()
        .context("starting vcm")?;
    let server = Reaper(server);
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&base)?;
    let pid = server.0.id();

    // One delivery by hand first: it must be taken (a 202), or the load measures refusals.
    let probe = std::process::Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST"])
        .args([
            "-H",
            "Content-Type: application/json",
            "-H",
            "X-GitHub-Event: pull_request",
        ])
        .args(["-H", "X-GitHub-Delivery: bench-probe"])
        .args(["-H", &format!("X-Hub-Signature-256: {signature}")])
        .args(["--data-binary", &format!("@{}", body_file.display())])
        .arg(format!("{base}/v1/webhooks/github"))
        .output()?;
    anyhow::ensure!(
        String::from_utf8_lossy(&probe.stdout) == "202",
        "the probe delivery was not taken: {}",
        String::from_utf8_lossy(&probe.stdout)
    );

    let script_args = ["-s".to_owned(), script.display().to_string()];
    let mut rows: Vec<(&str, Load, Load)> = vec![];
    for (what, conns) in [("latency", 1), ("throughput", 8)] {
        let healthz = wrk(&format!("{base}/healthz"), None, conns, secs, pid)?;
        let door = wrk_with(
            &format!("{base}/v1/webhooks/github"),
            &script_args,
            conns,
            secs,
            pid,
        )?;
        rows.push((what, healthz, door));
    }

    println!(
        "\nwebhook door: GitHub pull_request delivery ({} bytes, signed, recorded) against GET /healthz, {secs} s per run\n",
        body.len()
    );
    println!("| run | conns | path | req/s | p50 | p99 | server CPU/req | wrk CPU/req |");
    println!("|---|---|---|---|---|---|---|---|");
    for (what, healthz, door) in &rows {
        let conns = if *what == "latency" { 1 } else { 8 };
        println!("| {what} | {conns} | GET /healthz | {healthz} |");
        println!("| {what} | {conns} | POST /v1/webhooks/github | {door} |");
    }
    let (_, h1, d1) = &rows[0];
    let (_, h8, d8) = &rows[1];
    println!(
        "\nratios (door / healthz): p50 {:.2}x, p99 {:.2}x at 1 connection; throughput {:.2}x at 8",
        d1.p50_ms / h1.p50_ms,
        d1.p99_ms / h1.p99_ms,
        d8.rps / h8.rps
    );
    println!(
        "door p99 at 8 connections: {:.2} ms (providers give up after 10 000 ms)",
        d8.p99_ms
    );
    Ok(())
}

/// A wrk script posting `body_file` with GitHub's headers and a new delivery id each time.
fn lua(body_file: &str, signature: &str) -> String {
    format!(
        r#"local f = assert(io.open("{body_file}", "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["User-Agent"] = "GitHub-Hookshot/6b2f1d8"
wrk.headers["X-GitHub-Event"] = "pull_request"
wrk.headers["X-Hub-Signature-256"] = "{signature}"
local n = 0
local run = tostring(os.time()) .. "-" .. tostring(math.random(1, 1000000000))
request = function()
  n = n + 1
  wrk.headers["X-GitHub-Delivery"] = run .. "-" .. n
  return wrk.format()
end
"#
    )
}

fn wait_ready(base: &str) -> anyhow::Result<()> {
    for _ in 0..300 {
        let out = std::process::Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
            .arg(format!("{base}/readyz"))
            .output()?;
        if out.stdout == b"200" {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    anyhow::bail!("vcm did not become ready at {base}")
}

/// Kills the server when the benchmark ends, however it ends.
struct Reaper(std::process::Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
