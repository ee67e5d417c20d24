//! Store benchmark (`cargo bench --bench store`, or `bench/run.sh store`; issue 15): create
//! throughput and GET latency with 1 and 3 replicas on PostgreSQL against one replica on
//! SQLite (the baseline), in one run; list latency with 10,000 cluster records on both.
//!
//! * **sqlite-1**: one server over a SQLite file (`store::open`: behind the read-through
//!   cache, as `vcm server` opens it).
//! * **pg-1**, **pg-3**: one, and three, servers over one PostgreSQL database (a throw-away
//!   server, `TestPostgres`), the three sharing one audit signing key as replicas must.
//!
//! Every server is a process of its own (`support/replica.rs`: this binary run again in
//! `serve` mode, the real server built in code with the fake driver, audit log on, rate limits
//! on but never met; no reconciler). The load comes from wrk, outside every server: one wrk
//! per replica at the same time, `BENCH_CONNS` connections in all (split evenly), their
//! requests per second summed and the worst replica's p50 and p99 taken. A create is
//! `POST /v1/clusters` (202, a small cluster for one hour); during the create phases the
//! reaper keeps `BENCH_LIVE` live clusters (default 50). A GET is `GET /v1/clusters/{id}`.
//! Server CPU per request is the vcm processes' CPU time over their requests; PostgreSQL's
//! own CPU is not in it (it is in every PostgreSQL figure's latency and throughput).
//!
//! List: `BENCH_RECORDS` (default 10,000) clusters are stored through the store API
//! (`Store::insert_cluster`, each with its event, eight writers at once) into a fresh SQLite
//! file and a fresh PostgreSQL database before a server starts on each; then
//! `GET /v1/clusters?limit=100` (the first page of 100, the API's `limit`) at 1 and at
//! `BENCH_CONNS` connections. Goal: p99 < 20 ms.
//!
//! Rounds (`BENCH_ROUNDS`, default 2) alternate the order of the sides; figures are medians of
//! rounds, ratios against sqlite-1 in the same round. `BENCH_SECS` per phase (default 4).

#[path = "support/replica.rs"]
mod replica;
#[path = "support/seed.rs"]
mod seed;
#[path = "support/wrk.rs"]
mod wrk;

use std::path::Path;

use replica::{Reaper, Replica};
use seed::{TEAM, prepare, store_alone};
use vcm::domain::{ApiToken, Role, TokenSecret};
use vcm::testing::postgres::TestPostgres;
use wrk::{Load, env_or, median, which_wrk, wrk_with};

const CREATE_BODY: &str = r#"{"size":"small","ttl":"1h"}"#;
/// The goal for a page of 100 out of 10,000 records.
const LIST_P99_GOAL_MS: f64 = 20.0;

/// One side: its servers and its store.
struct Side {
    name: &'static str,
    url: String,
    replicas: Vec<Replica>,
    /// The GET phases' cluster (spared by the reaper).
    cluster: String,
}

/// A list side's figures: its name, (caller, connections, figures) for each load, and the
/// store alone's p50 and p99.
type ListSide = (
    &'static str,
    Vec<(&'static str, usize, Figures)>,
    (f64, f64),
);

/// A phase's figures on one side: summed throughput, worst replica's latencies.
#[derive(Clone, Copy)]
struct Figures {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    server_us: f64,
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("serve") {
        return replica::serve(&args[2], Path::new(&args[3]));
    }
    let secs = env_or("BENCH_SECS", 4);
    let rounds = env_or("BENCH_ROUNDS", 2).max(1);
    let conns = usize::try_from(env_or("BENCH_CONNS", 6))?.max(3);
    let keep = env_or("BENCH_LIVE", 50);
    let records = usize::try_from(env_or("BENCH_RECORDS", 10_000))?;
    which_wrk()?;
    let rt = tokio::runtime::Runtime::new()?;
    // NB: started on this thread, which outlives the run: the server dies with its thread.
    let pg = rt.block_on(TestPostgres::local());
    let work = tempfile::tempdir()?;
    let key = work.path().join("audit.key");
    let secret = TokenSecret::generate();
    let token = ApiToken {
        hash: secret.hash(),
        ..ApiToken::new("bench-admin", Role::Admin, None, None)
    };
    let auth = format!("Authorization: Bearer {}", secret.expose());
    // A developer of team `web`, which holds one record in ten: its list pages are the
    // records its team may see, found among all of them.
    let dev_secret = TokenSecret::generate();
    let dev = ApiToken {
        hash: dev_secret.hash(),
        ..ApiToken::new("bench-dev", Role::Developer, Some(TEAM.into()), None)
    };
    let dev_auth = format!("Authorization: Bearer {}", dev_secret.expose());
    // And one of a team with no record: its page is found by reading past every record.
    let lone_secret = TokenSecret::generate();
    let lone = ApiToken {
        hash: lone_secret.hash(),
        ..ApiToken::new("bench-lone", Role::Developer, Some("lone".into()), None)
    };
    let lone_auth = format!("Authorization: Bearer {}", lone_secret.expose());
    let script = work.path().join("create.lua");
    std::fs::write(&script, lua(secret.expose()))?;

    let sqlite_url = format!("sqlite://{}/vcm.db", work.path().display());
    let pg1_url = rt.block_on(pg.database());
    let pg3_url = rt.block_on(pg.database());
    let sides = [
        ("sqlite-1", sqlite_url, 1),
        ("pg-1", pg1_url, 1),
        ("pg-3", pg3_url, 3),
    ]
    .into_iter()
    .map(|(name, url, n)| {
        let cluster = rt.block_on(prepare(&url, &[&token], 0))?;
        let replicas = (0..n)
            .map(|_| Replica::start(&url, &key))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Side {
            name,
            url,
            replicas,
            cluster,
        })
    })
    .collect::<anyhow::Result<Vec<Side>>>()?;

    // [round][side] → (get, create)
    let mut runs: Vec<Vec<(Figures, Figures)>> = Vec::new();
    for round in 0..rounds {
        let mut order: Vec<usize> = (0..sides.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        let mut got = vec![None; sides.len()];
        for i in order {
            let side = &sides[i];
            let get = load(
                side,
                |_| format!("/v1/clusters/{}", side.cluster),
                &auth,
                conns,
                secs,
            )?;
            let reaper = Reaper::start(&side.url, keep, &side.cluster)?;
            let create_args = ["-s".to_owned(), script.display().to_string()];
            let create = load_with(side, "/v1/clusters", &create_args, conns, secs)?;
            reaper.stop()?;
            got[i] = Some((get, create));
        }
        runs.push(got.into_iter().map(Option::unwrap).collect());
    }
    drop(sides);

    // The list: fresh stores with `records` clusters, one server each.
    let list_sides = [
        (
            "sqlite-1",
            format!("sqlite://{}/list.db", work.path().display()),
        ),
        ("pg-1", rt.block_on(pg.database())),
    ];
    let mut lists = Vec::new();
    for (name, url) in list_sides {
        let seeded = std::time::Instant::now();
        let cluster = rt.block_on(prepare(&url, &[&token, &dev, &lone], records))?;
        eprintln!("{name}: {records} records stored in {:?}", seeded.elapsed());
        let alone = rt.block_on(store_alone(&url))?;
        let side = Side {
            name,
            replicas: vec![Replica::start(&url, &key)?],
            url,
            cluster,
        };
        let page = |_: usize| "/v1/clusters?limit=100".to_owned();
        let mut by_conns = Vec::new();
        let callers = [
            ("admin", &auth),
            ("developer", &dev_auth),
            ("developer, no record", &lone_auth),
        ];
        for (who, auth) in callers {
            for c in [1, conns] {
                let each: Vec<Figures> = (0..rounds)
                    .map(|_| load(&side, page, auth, c, secs))
                    .collect::<anyhow::Result<_>>()?;
                by_conns.push((who, c, med(&each)));
            }
        }
        lists.push((name, by_conns, alone));
    }
    report(&runs, &lists, rounds, secs, conns, keep, records);
    Ok(())
}

/// wrk with `auth` on `path(replica)` of every replica of `side` at once.
fn load(
    side: &Side,
    path: impl Fn(usize) -> String,
    auth: &str,
    conns: usize,
    secs: u64,
) -> anyhow::Result<Figures> {
    let args = ["-H".to_owned(), auth.to_owned()];
    let paths: Vec<String> = (0..side.replicas.len()).map(path).collect();
    run_all(side, &paths, &args, conns, secs)
}

fn load_with(
    side: &Side,
    path: &str,
    args: &[String],
    conns: usize,
    secs: u64,
) -> anyhow::Result<Figures> {
    let paths = vec![path.to_owned(); side.replicas.len()];
    run_all(side, &paths, args, conns, secs)
}

/// One wrk per replica, at the same time, `conns` connections split between them.
fn run_all(
    side: &Side,
    paths: &[String],
    args: &[String],
    conns: usize,
    secs: u64,
) -> anyhow::Result<Figures> {
    let n = side.replicas.len();
    let loads: Vec<Load> = std::thread::scope(|s| {
        let runs: Vec<_> = side
            .replicas
            .iter()
            .zip(paths)
            .enumerate()
            .map(|(i, (r, path))| {
                let c = conns / n + usize::from(i < conns % n);
                let url = format!("{}{path}", r.base);
                s.spawn(move || wrk_with(&url, args, c.max(1), secs, r.pid))
            })
            .collect();
        runs.into_iter()
            .map(|t| t.join().expect("a wrk thread panicked"))
            .collect::<anyhow::Result<Vec<Load>>>()
    })
    .map_err(|e| anyhow::anyhow!("{}: {e:#}", side.name))?;
    if n > 1 {
        let each: Vec<String> = loads.iter().map(|l| format!("{:.0}", l.rps)).collect();
        eprintln!("{}: req/s by replica: {}", side.name, each.join(", "));
    }
    let rps: f64 = loads.iter().map(|l| l.rps).sum();
    let cpu_us: f64 = loads.iter().map(|l| l.server_us * l.rps).sum();
    Ok(Figures {
        rps,
        p50_ms: loads.iter().map(|l| l.p50_ms).fold(0.0, f64::max),
        p99_ms: loads.iter().map(|l| l.p99_ms).fold(0.0, f64::max),
        server_us: cpu_us / rps,
    })
}

/// Each figure's median over rounds.
fn med(each: &[Figures]) -> Figures {
    let of = |f: fn(&Figures) -> f64| median(&each.iter().map(f).collect::<Vec<_>>());
    Figures {
        rps: of(|f| f.rps),
        p50_ms: of(|f| f.p50_ms),
        p99_ms: of(|f| f.p99_ms),
        server_us: of(|f| f.server_us),
    }
}

fn report(
    runs: &[Vec<(Figures, Figures)>],
    lists: &[ListSide],
    rounds: u64,
    secs: u64,
    conns: usize,
    keep: u64,
    records: usize,
) {
    let names = ["sqlite-1", "pg-1", "pg-3"];
    println!(
        "\n{rounds} rounds, {secs} s per phase, {conns} connections in all, medians of rounds"
    );
    println!("(create phases with {keep} live clusters kept by the reaper)\n");
    println!(
        "| request | side | req/s | p50 | p99 | vcm CPU/req | req/s ÷ sqlite-1 | p50 ÷ sqlite-1 | p99 ÷ sqlite-1 |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (label, pick) in [
        (
            "GET /v1/clusters/{id}",
            (|r: &(Figures, Figures)| r.0) as fn(&_) -> Figures,
        ),
        ("POST /v1/clusters", |r: &(Figures, Figures)| r.1),
    ] {
        for (s, name) in names.iter().enumerate() {
            let figs: Vec<Figures> = runs.iter().map(|round| pick(&round[s])).collect();
            let base: Vec<Figures> = runs.iter().map(|round| pick(&round[0])).collect();
            let ratio = |f: fn(&Figures) -> f64| {
                median(
                    &figs
                        .iter()
                        .zip(&base)
                        .map(|(a, b)| f(a) / f(b))
                        .collect::<Vec<_>>(),
                )
            };
            let m = med(&figs);
            println!(
                "| {label} | {name} | {:.0} | {:.2} ms | {:.2} ms | {:.0} µs | **{:.2}** | {:.2} | {:.2} |",
                m.rps,
                m.p50_ms,
                m.p99_ms,
                m.server_us,
                ratio(|f| f.rps),
                ratio(|f| f.p50_ms),
                ratio(|f| f.p99_ms),
            );
        }
    }
    println!("\nlist: GET /v1/clusters?limit=100 with {records} clusters stored\n");
    println!("(admin: every record; developer: the one in ten of team {TEAM}; no record: none)\n");
    println!("| side | caller | conns | req/s | p50 | p99 | p99 < {LIST_P99_GOAL_MS} ms |");
    println!("|---|---|---|---|---|---|---|");
    for (name, by_conns, (p50, p99)) in lists {
        println!("| {name} | store alone, admin | 1 | | {p50:.2} ms | {p99:.2} ms | |");
        for (who, c, f) in by_conns {
            let holds = if f.p99_ms < LIST_P99_GOAL_MS {
                "yes"
            } else {
                "**MISSED**"
            };
            println!(
                "| {name} | {who} | {c} | {:.0} | {:.2} ms | {:.2} ms | {holds} |",
                f.rps, f.p50_ms, f.p99_ms
            );
        }
    }
}

/// A wrk script creating a cluster per request; it prints the first refusal's answer, so a
/// failed run says why.
fn lua(secret: &str) -> String {
    format!(
        r#"wrk.method = "POST"
wrk.body = '{CREATE_BODY}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {secret}"
local told = false
response = function(status, headers, body)
  if status >= 300 and not told then
    told = true
    print("refused: " .. status .. " " .. body)
  end
end
"#
    )
}
