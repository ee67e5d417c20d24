//! `vcm audit list|verify`: read the audit log, and walk its chain.
//!
//! `verify` fetches every record in order (or reads an exported JSON lines file) and checks
//! the chain here, on the caller's machine, with the server's public key or one given with
//! `--public-key`. Exit code: 0 intact, 1 broken (the first record edited, deleted or inserted
//! is named), 2 could not check.

use std::io::BufRead as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use serde::Serialize;

use super::{GlobalOpts, OutputFormat};
use crate::audit::{Anchor, Broken, Verified, Walk};
use crate::domain::AuditRecord;

/// Records fetched per page while verifying.
const VERIFY_PAGE: usize = 1000;
/// Progress is reported every this many records.
const PROGRESS_EVERY: u64 = 20_000;

/// `vcm audit` subcommands.
#[derive(Debug, Subcommand)]
pub enum AuditCmd {
    /// Audit records, newest first (admins).
    List(ListArgs),
    /// Walk the chain and report the first record edited, deleted or inserted (admins).
    /// Exit code: 0 intact, 1 broken, 2 could not check.
    Verify(VerifyArgs),
}

/// `vcm audit list` flags.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Written at or after this time (RFC 3339, e.g. 2026-11-30T09:00:00Z).
    #[arg(long)]
    pub since: Option<String>,
    /// Written before this time (RFC 3339).
    #[arg(long)]
    pub until: Option<String>,
    /// Only this principal (`token:t-…`, `oidc:github:…`, `webhook:github`).
    #[arg(long)]
    pub principal: Option<String>,
    /// Only this action (`POST /v1/clusters`); a trailing `*` matches a prefix.
    #[arg(long)]
    pub action: Option<String>,
    /// Only this decision: allowed, denied, unauthenticated, throttled, failed.
    #[arg(long)]
    pub decision: Option<String>,
    /// Only records about this cluster (or token, or team) id.
    #[arg(long)]
    pub cluster: Option<String>,
    /// At most this many records (1 to 1000).
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// Oldest first.
    #[arg(long)]
    pub oldest_first: bool,
}

/// `vcm audit verify` flags.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Check an exported JSON lines file (`[audit] export`) instead of the server's store.
    /// Needs `--public-key`; the walk starts at the file's first record.
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// The audit key to trust (base64 of its 32 bytes, as `GET /v1/audit/anchor` shows it);
    /// without it, the server's own is used.
    #[arg(long, value_name = "BASE64")]
    pub public_key: Option<String>,
}

/// What `verify` prints with `--output json|yaml`.
#[derive(Debug, Serialize)]
struct Report {
    intact: bool,
    #[serde(flatten)]
    verified: Option<Verified>,
    broken: Option<Broken>,
    public_key: String,
}

/// Runs a `vcm audit` command.
pub async fn run(cmd: AuditCmd, global: &GlobalOpts) -> anyhow::Result<ExitCode> {
    match cmd {
        AuditCmd::List(args) => list(args, global).await,
        AuditCmd::Verify(args) => match verify(args, global).await {
            Ok(code) => Ok(code),
            Err(e) => {
                eprintln!("error: {e:#}");
                Ok(ExitCode::from(2))
            }
        },
    }
}

async fn list(args: ListArgs, global: &GlobalOpts) -> anyhow::Result<ExitCode> {
    let mut query: Vec<(&str, String)> = vec![("limit", args.limit.to_string())];
    let filters = [
        ("since", args.since),
        ("until", args.until),
        ("principal", args.principal),
        ("action", args.action),
        ("decision", args.decision),
        ("cluster", args.cluster),
    ];
    query.extend(filters.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))));
    if args.oldest_first {
        query.push(("order", "asc".into()));
    }
    let page = global.client()?.audit_page(&query).await?;
    print!("{}", table(&page.items, global.output)?);
    Ok(ExitCode::SUCCESS)
}

fn table(records: &[AuditRecord], format: OutputFormat) -> anyhow::Result<String> {
    match format {
        OutputFormat::Json => return Ok(serde_json::to_string_pretty(records)? + "\n"),
        OutputFormat::Yaml => return Ok(serde_yaml_ng::to_string(records)?),
        OutputFormat::Table => {}
    }
    let mut table = super::output::mk_table();
    table.set_header(vec![
        "SEQ",
        "TIME",
        "PRINCIPAL",
        "ACTION",
        "TARGET",
        "DECISION",
        "STATUS",
        "MESSAGE",
    ]);
    for r in records {
        let e = &r.entry;
        let decision = e.decision.map_or("received", |d| d.as_str());
        let message = e
            .messages
            .first()
            .or(e.auth_error.as_ref())
            .map_or("", String::as_str);
        table.add_row(vec![
            r.seq.to_string(),
            e.time.to_string(),
            e.principal.clone().unwrap_or_else(|| "-".into()),
            e.action.clone(),
            e.target.clone().unwrap_or_else(|| "-".into()),
            decision.to_owned(),
            e.status.map_or_else(|| "-".into(), |s| s.to_string()),
            message.chars().take(80).collect(),
        ]);
    }
    Ok(format!("{table}\n"))
}

async fn verify(args: VerifyArgs, global: &GlobalOpts) -> anyhow::Result<ExitCode> {
    let outcome = match &args.file {
        Some(file) => {
            let key = args.public_key.clone().context(
                "--file needs --public-key: an exported file carries no key of its own \
                 (an admin reads it with: vcm audit verify --output json, or GET /v1/audit/anchor)",
            )?;
            (verify_file(file, &key)?, key)
        }
        None => verify_server(global, args.public_key.as_deref()).await?,
    };
    let (result, public_key) = outcome;
    let report = Report {
        intact: result.is_ok(),
        verified: result.as_ref().ok().cloned(),
        broken: result.as_ref().err().cloned(),
        public_key,
    };
    match global.output {
        OutputFormat::Json => println!("{}", serde_json::to_string(&report)?),
        OutputFormat::Yaml => print!("{}", serde_yaml_ng::to_string(&report)?),
        OutputFormat::Table => match &result {
            Ok(v) => {
                let range = match (v.first_seq, v.last_seq) {
                    (Some(a), Some(b)) => format!(" (records {a} to {b})"),
                    _ => String::new(),
                };
                let purged = match v.purged {
                    0 => String::new(),
                    n => format!("; {n} older records purged behind a signed checkpoint"),
                };
                println!(
                    "audit log intact: {} records{range}, {} signed{purged}",
                    v.records, v.signed
                );
            }
            Err(b) => println!("audit log BROKEN at record {}: {}", b.seq, b.problem),
        },
    }
    Ok(if result.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

async fn verify_server(
    global: &GlobalOpts,
    pinned: Option<&str>,
) -> anyhow::Result<(Result<Verified, Broken>, String)> {
    let client = global.client()?;
    let anchor: Anchor = client.audit_anchor().await?;
    let key = pinned.unwrap_or(&anchor.public_key).to_owned();
    let mut walk = match Walk::start(&anchor, &key) {
        Ok(walk) => walk,
        Err(broken) => return Ok((Err(broken), key)),
    };
    let mut cursor: Option<String> = None;
    let mut seen = 0u64;
    loop {
        let mut query = vec![
            ("order", "asc".to_owned()),
            ("limit", VERIFY_PAGE.to_string()),
        ];
        if let Some(c) = &cursor {
            query.push(("cursor", c.clone()));
        }
        let page = client.audit_page(&query).await?;
        for r in &page.items {
            if let Err(broken) = walk.push(r) {
                return Ok((Err(broken), key));
            }
            seen += 1;
            if seen.is_multiple_of(PROGRESS_EVERY) {
                eprintln!("verified {seen} records…");
            }
        }
        match page.next_cursor {
            Some(next) if !page.items.is_empty() => cursor = Some(next),
            _ => break,
        }
    }
    Ok((walk.finish(), key))
}

fn verify_file(file: &std::path::Path, key: &str) -> anyhow::Result<Result<Verified, Broken>> {
    let reader = std::io::BufReader::new(
        std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?,
    );
    let mut walk: Option<Walk> = None;
    for (n, line) in reader.lines().enumerate() {
        let line = line.with_context(|| format!("reading {}", file.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let record: AuditRecord = serde_json::from_str(&line).with_context(|| {
            format!(
                "{} line {} is not an audit record; was the file edited?",
                file.display(),
                n + 1
            )
        })?;
        let walk = match &mut walk {
            Some(walk) => walk,
            None => {
                // NB: the file may start anywhere (an export begun after records were written,
                // or rotated): its first record's link is taken as the anchor.
                let anchor = Anchor {
                    genesis: record.prev.clone(),
                    checkpoint: None,
                    public_key: key.to_owned(),
                };
                let mut first =
                    Walk::start(&anchor, key).map_err(|b| anyhow::anyhow!(b.problem))?;
                first.skip_to(record.seq);
                walk.insert(first)
            }
        };
        if let Err(broken) = walk.push(&record) {
            return Ok(Err(broken));
        }
    }
    Ok(match walk {
        Some(walk) => walk.finish(),
        None => anyhow::bail!("{} holds no audit record", file.display()),
    })
}
