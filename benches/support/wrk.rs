//! `wrk`, the load generator the benchmarks run outside the process under test, with the CPU
//! time it and the server spend per request, and the benchmarks' settings (included with
//! `#[path]`).
#![allow(dead_code)]

use anyhow::Context as _;

/// The number in environment variable `name` (a benchmark setting), else `default`.
pub fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Rate limits that are on, so every request goes through the limiter as in production, but
/// that the benchmarks' load never meets.
pub fn unmet_rate_limits() -> vcm::http::RateLimitConfig {
    vcm::http::RateLimitConfig {
        principal_per_minute: 60_000_000,
        principal_burst: 1_000_000,
        address_per_minute: 60_000_000,
        address_burst: 1_000_000,
        ..vcm::http::RateLimitConfig::default()
    }
}

pub struct Load {
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// CPU time the server spent per request, in microseconds.
    pub server_us: f64,
    /// CPU time wrk spent per request, in microseconds.
    pub wrk_us: f64,
}

impl std::fmt::Display for Load {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.0} | {:.2}ms | {:.2}ms | {:.1}µs | {:.1}µs",
            self.rps, self.p50_ms, self.p99_ms, self.server_us, self.wrk_us
        )
    }
}

pub fn available_cores() -> f64 {
    std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64)
}

/// User plus system CPU seconds of process `pid` so far (`/proc/<pid>/stat`, fields 14 and 15,
/// in clock ticks of 1/100 s, Linux's `USER_HZ` on every architecture it exposes to user space).
pub fn cpu_secs(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name, in parentheses, may hold spaces: count fields after its `)`.
    let after = stat.rsplit_once(')').context("odd /proc stat")?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    Ok(ticks / 100.0)
}

pub fn which_wrk() -> anyhow::Result<()> {
    let found = std::process::Command::new("wrk")
        .arg("--version")
        .output()
        .is_ok();
    anyhow::ensure!(
        found,
        "wrk not found: the load comes from wrk, outside the server's process. Install it \
         (Debian: apt-get install -y wrk) or run bench/run.sh, which does"
    );
    Ok(())
}

/// `wrk` against `url` for `secs` seconds over `conns` keep-alive connections (one thread: the
/// server keeps the other core), with the CPU time it and the server (`server_pid`) used. Fails
/// on any non-2xx answer.
pub fn wrk(
    url: &str,
    token: Option<&str>,
    conns: usize,
    secs: u64,
    server_pid: u32,
) -> anyhow::Result<Load> {
    let header = token.map(|t| ["-H".to_owned(), format!("Authorization: Bearer {t}")]);
    wrk_with(
        url,
        header.as_ref().map_or(&[][..], |h| &h[..]),
        conns,
        secs,
        server_pid,
    )
}

/// [`wrk`] with `args` of its own (`-s script.lua`, `-H …`).
pub fn wrk_with(
    url: &str,
    args: &[String],
    conns: usize,
    secs: u64,
    server_pid: u32,
) -> anyhow::Result<Load> {
    // NB: through bash, whose `times` then prints wrk's CPU time (its children's) last.
    let mut cmd = std::process::Command::new("bash");
    cmd.args(["-c", r#"wrk "$@" && times"#, "wrk", "-t1", "--latency"])
        .arg(format!("-c{conns}"))
        .arg(format!("-d{secs}s"))
        .args(args);
    let server_before = cpu_secs(server_pid)?;
    let out = cmd.arg(url).output().context("running wrk")?;
    let server_cpu = cpu_secs(server_pid)? - server_before;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    anyhow::ensure!(
        out.status.success(),
        "wrk failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    anyhow::ensure!(
        !text.contains("Non-2xx") && !text.contains("Socket errors"),
        "{url}: errors under load:\n{text}"
    );
    let field = |prefix: &str| -> anyhow::Result<&str> {
        text.lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(prefix))
            .map(str::trim)
            .with_context(|| format!("no {prefix:?} in wrk output:\n{text}"))
    };
    let rps: f64 = field("Requests/sec:")?.parse()?;
    // `times`: the shell's user and system time, then its children's (`0m1.234s 0m0.567s`).
    let children = text.lines().last().unwrap_or_default();
    let wrk_cpu = children
        .split_whitespace()
        .map(|t| -> anyhow::Result<f64> {
            let (m, s) = t
                .strip_suffix('s')
                .and_then(|t| t.split_once('m'))
                .with_context(|| format!("odd `times` output {children:?}"))?;
            Ok(m.parse::<f64>()? * 60.0 + s.parse::<f64>()?)
        })
        .sum::<anyhow::Result<f64>>()?;
    let requests = rps * secs as f64;
    Ok(Load {
        rps,
        p50_ms: millis(field("50%")?)?,
        p99_ms: millis(field("99%")?)?,
        server_us: server_cpu * 1e6 / requests,
        wrk_us: wrk_cpu * 1e6 / requests,
    })
}

/// wrk's `123.45us` / `1.23ms` / `1.02s` in milliseconds.
pub fn millis(s: &str) -> anyhow::Result<f64> {
    let (num, factor) = if let Some(n) = s.strip_suffix("us") {
        (n, 1e-3)
    } else if let Some(n) = s.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1e3)
    } else {
        anyhow::bail!("unknown wrk latency {s:?}")
    };
    Ok(num.parse::<f64>()? * factor)
}

/// The median of `values` (the mean of the middle two for an even count).
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

/// Each figure's median over the rounds.
pub fn median_load(loads: &[&Load]) -> Load {
    let of = |f: fn(&Load) -> f64| median(&loads.iter().map(|l| f(l)).collect::<Vec<_>>());
    Load {
        rps: of(|l| l.rps),
        p50_ms: of(|l| l.p50_ms),
        p99_ms: of(|l| l.p99_ms),
        server_us: of(|l| l.server_us),
        wrk_us: of(|l| l.wrk_us),
    }
}
