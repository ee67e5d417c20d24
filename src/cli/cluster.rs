//! `vcm cluster create|list|get|update|delete|kubeconfig|keepalive|events`: builds requests
//! for the typed client and renders what comes back.

use std::{collections::BTreeMap, path::PathBuf, process::ExitCode, time::Duration};

use anyhow::Context as _;
use clap::{Args, Subcommand};

use super::{
    GlobalOpts, OutputFormat, output,
    wait::{self, Target},
};
use crate::api::{CreateClusterRequest, DeletedClusters, KubeconfigKind, UpdateClusterRequest};
use crate::client::{Client, ListQuery};
use crate::domain::Ttl;

/// `vcm cluster …`.
#[derive(Debug, Subcommand)]
pub enum ClusterCmd {
    /// Create a cluster (it starts Pending; `--wait` waits until it is Ready).
    Create(CreateArgs),
    /// List clusters.
    List(ListArgs),
    /// Show one cluster.
    Get(IdArg),
    /// Change a cluster's ttl, idle timeout or labels.
    Update(UpdateArgs),
    /// Delete clusters by id or name, or every cluster matching labels.
    Delete(DeleteArgs),
    /// Get a kubeconfig with a short-lived token (YAML; JSON with `--output json`).
    Kubeconfig(KubeconfigArgs),
    /// List the gateway credentials of a cluster (what its kubeconfigs carry).
    Credentials(IdArg),
    /// Revoke a cluster's gateway credentials (or one): kubeconfigs that carry them stop
    /// working, and their open watches and exec sessions end within a second.
    Revoke(RevokeArgs),
    /// Mark a cluster active (resets its idle clock).
    Keepalive(IdArg),
    /// Show a cluster's lifecycle events.
    Events(IdArg),
    /// Show what a Ready cluster uses now: its processes or host namespace, and its objects.
    Usage(IdArg),
}

/// `vcm cluster create` flags.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Name (a DNS label of at most 40 characters); default: the generated id.
    #[arg(long)]
    pub name: Option<String>,
    /// Size profile (`small`, `medium`, `large` by default).
    #[arg(long)]
    pub size: Option<String>,
    /// Kubernetes minor version, e.g. `1.36`.
    #[arg(long)]
    pub kubernetes_version: Option<String>,
    /// Lifetime, e.g. `2h`.
    #[arg(long)]
    pub ttl: Option<String>,
    /// Delete after this long without activity, e.g. `30m`.
    #[arg(long)]
    pub idle_timeout: Option<String>,
    /// Label `key=value`; repeatable.
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = parse_label)]
    pub labels: Vec<(String, String)>,
    /// Host cluster to run on (default: the least-loaded host with room).
    #[arg(long, conflicts_with = "host_selector")]
    pub host: Option<String>,
    /// Run on a host with this label `key=value`; repeatable.
    #[arg(long = "host-selector", value_name = "KEY=VALUE", value_parser = parse_label)]
    pub host_selector: Vec<(String, String)>,
    /// Retrying with the same key returns the same cluster (a UUID, or the CI run id).
    /// Default: a fresh key per command, so the command's own retries never make two clusters.
    #[arg(long)]
    pub idempotency_key: Option<String>,
    /// While the server answers 429 or 503 (every host full, none reachable, busy), keep
    /// retrying the create this long, waiting as the server's `Retry-After` says; `0s`: fail at
    /// once.
    #[arg(long, default_value = "5m", value_parser = parse_duration_or_zero)]
    pub retry_for: Duration,
    /// Wait until the cluster is Ready; fail if it fails, is deleted, or `--timeout` passes.
    #[arg(long)]
    pub wait: bool,
    /// How long `--wait` waits.
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub timeout: Duration,
}

/// `vcm cluster list` flags.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only this phase (`Pending`, `Provisioning`, `Ready`, `Deleting`, `Deleted`, `Failed`).
    #[arg(long)]
    pub phase: Option<String>,
    /// Only this owner (`token:<id>`, see `vcm whoami`).
    #[arg(long)]
    pub owner: Option<String>,
    /// Only clusters with label `key=value`; repeat to require several.
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = parse_label)]
    pub labels: Vec<(String, String)>,
    /// Page size (1 to 500).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Fetch every page, not just the first.
    #[arg(long)]
    pub all: bool,
}

/// A cluster id or live name.
#[derive(Debug, Args)]
pub struct IdArg {
    /// Cluster id or name.
    pub id: String,
}

/// `vcm cluster update` flags.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Cluster id or name.
    pub id: String,
    /// New lifetime, counted from creation.
    #[arg(long)]
    pub ttl: Option<String>,
    /// New idle timeout.
    #[arg(long)]
    pub idle_timeout: Option<String>,
    /// Replace the labels with these `key=value` pairs; repeatable.
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = parse_label)]
    pub labels: Vec<(String, String)>,
}

/// `vcm cluster delete` flags.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Cluster ids or names.
    #[arg(required_unless_present = "labels", conflicts_with = "labels")]
    pub ids: Vec<String>,
    /// Delete every live cluster with label `key=value`; repeat to require several.
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = parse_label)]
    pub labels: Vec<(String, String)>,
    /// Wait until every cluster is Deleted.
    #[arg(long)]
    pub wait: bool,
    /// Admins: after requesting deletion, forget the clusters: they end Deleted without vcm
    /// releasing anything (for clusters whose host was removed from the configuration).
    #[arg(long, conflicts_with = "labels")]
    pub forget: bool,
    /// How long `--wait` waits.
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub timeout: Duration,
}

/// `vcm cluster kubeconfig` flags.
#[derive(Debug, Args)]
pub struct KubeconfigArgs {
    /// Cluster id or name.
    pub id: String,
    /// Token lifetime (default 1h; never beyond the cluster's expiry).
    #[arg(long)]
    pub ttl: Option<String>,
    /// Write to this file (mode 0600) instead of stdout.
    #[arg(long, value_name = "PATH")]
    pub output_file: Option<PathBuf>,
    /// `gateway` (through vcm, revocable) or `direct` (the cluster's own endpoint); default:
    /// the server's setting.
    #[arg(long, value_parser = parse_mode)]
    pub mode: Option<KubeconfigKind>,
}

/// `vcm cluster revoke` flags.
#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// Cluster id or name.
    pub id: String,
    /// Only this credential (`g-…`, the `vcm-credential-id` of its kubeconfig); default: all.
    #[arg(long, value_name = "ID")]
    pub credential: Option<String>,
}

/// Runs a `vcm cluster` command.
pub async fn run(cmd: ClusterCmd, global: &GlobalOpts) -> anyhow::Result<ExitCode> {
    let client = global.client()?;
    let out = global.output;
    match cmd {
        ClusterCmd::Create(args) => create(&client, args, out).await,
        ClusterCmd::List(args) => list(&client, args, out).await,
        ClusterCmd::Get(IdArg { id }) => print(output::cluster(&client.get(&id).await?, out)),
        ClusterCmd::Update(args) => {
            let req = UpdateClusterRequest {
                ttl: args.ttl,
                idle_timeout: args.idle_timeout,
                labels: labels_map(args.labels),
                ..Default::default()
            };
            print(output::cluster(&client.update(&args.id, &req).await?, out))
        }
        ClusterCmd::Delete(args) => delete(&client, args, out).await,
        ClusterCmd::Kubeconfig(args) => kubeconfig(&client, args, out).await,
        ClusterCmd::Credentials(IdArg { id }) => {
            print(output::credentials(&client.credentials(&id).await?, out))
        }
        ClusterCmd::Revoke(args) => {
            let revoked = client
                .revoke_credentials(&args.id, args.credential.as_deref())
                .await?;
            print(output::revoked(&revoked, out))
        }
        ClusterCmd::Keepalive(IdArg { id }) => {
            print(output::cluster(&client.keepalive(&id).await?, out))
        }
        ClusterCmd::Events(IdArg { id }) => print(output::events(&client.events(&id).await?, out)),
        ClusterCmd::Usage(IdArg { id }) => print(output::cluster_usage(
            &client.cluster_usage(&id).await?,
            out,
        )),
    }
}

async fn create(client: &Client, args: CreateArgs, out: OutputFormat) -> anyhow::Result<ExitCode> {
    let req = CreateClusterRequest {
        name: args.name,
        size: args.size,
        kubernetes_version: args.kubernetes_version,
        ttl: args.ttl,
        idle_timeout: args.idle_timeout,
        host: args.host,
        host_selector: labels_map(args.host_selector),
        labels: labels_map(args.labels),
    };
    let key = args
        .idempotency_key
        .unwrap_or_else(generated_idempotency_key);
    let cluster = create_with_retries(client, &req, &key, args.retry_for).await?;
    let cluster = if args.wait {
        wait::until(client, &cluster.id, Target::Ready, args.timeout).await?
    } else {
        cluster
    };
    print(output::cluster(&cluster, out))
}

/// `POST /v1/clusters`, retried on 429 and 503 with the same idempotency key until `retry_for`
/// has passed, telling the user on stderr what it waits for.
async fn create_with_retries(
    client: &Client,
    req: &CreateClusterRequest,
    key: &str,
    retry_for: Duration,
) -> anyhow::Result<crate::api::ClusterView> {
    let started = tokio::time::Instant::now();
    let mut attempt = 0u32;
    loop {
        let err = match client.create(req, Some(key)).await {
            Ok(cluster) => return Ok(cluster),
            Err(err) => err,
        };
        let Some(hint) = err.retry_after() else {
            return Err(err.into());
        };
        attempt += 1;
        let wait = retry_delay(attempt, hint);
        let waited = started.elapsed();
        if waited + wait > retry_for {
            let context = if attempt == 1 {
                "the server cannot take the cluster now (raise --retry-for to keep trying)".into()
            } else {
                format!(
                    "gave up after {attempt} attempts over {}s (--retry-for {})",
                    waited.as_secs(),
                    Ttl::from_secs(retry_for.as_secs())
                )
            };
            return Err(anyhow::Error::new(err).context(context));
        }
        eprintln!(
            "vcm: {err}; retrying in {}s (attempt {attempt}, Idempotency-Key {key})",
            wait.as_secs()
        );
        tokio::time::sleep(wait).await;
    }
}

/// How long to wait before retry number `attempt`: what the server asked for, else 1 s, 2 s,
/// 4 s … capped at 30 s.
fn retry_delay(attempt: u32, server_hint: Option<Duration>) -> Duration {
    const CAP: Duration = Duration::from_secs(30);
    server_hint
        .unwrap_or_else(|| Duration::from_secs(1 << attempt.saturating_sub(1).min(5)))
        .clamp(Duration::from_secs(1), CAP)
}

/// A fresh idempotency key: 128 random bits.
fn generated_idempotency_key() -> String {
    let mut bytes = [0u8; 16];
    rand::fill(&mut bytes[..]);
    format!("vcm-cli-{}", hex::encode(bytes))
}

async fn list(client: &Client, args: ListArgs, out: OutputFormat) -> anyhow::Result<ExitCode> {
    let query = ListQuery {
        phase: args.phase,
        owner: args.owner,
        labels: args
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect(),
        limit: args.limit,
        cursor: None,
    };
    let page = if args.all {
        crate::api::ClusterList {
            items: client.list_all(&query).await?,
            next_cursor: None,
        }
    } else {
        client.list(&query).await?
    };
    print(output::clusters(&page, out))
}

async fn delete(client: &Client, args: DeleteArgs, out: OutputFormat) -> anyhow::Result<ExitCode> {
    let ids = if args.labels.is_empty() {
        let mut ids = Vec::with_capacity(args.ids.len());
        for id in &args.ids {
            let deleting = client.delete(id).await?.id;
            if args.forget {
                client.forget(&deleting).await?;
            }
            ids.push(deleting);
        }
        ids
    } else {
        let labels: Vec<String> = args
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        client.delete_by_labels(&labels).await?.ids
    };
    if args.wait {
        let deadline = tokio::time::Instant::now() + args.timeout;
        for id in &ids {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            wait::until(client, id, Target::Deleted, left).await?;
        }
    }
    print(output::deleted(&DeletedClusters { ids }, args.wait, out))
}

async fn kubeconfig(
    client: &Client,
    args: KubeconfigArgs,
    out: OutputFormat,
) -> anyhow::Result<ExitCode> {
    let json = out == OutputFormat::Json;
    let text = client
        .kubeconfig(&args.id, args.ttl.as_deref(), args.mode, json)
        .await?;
    match args.output_file {
        Some(path) => {
            crate::fsutil::write_private(&path, text.as_bytes())
                .with_context(|| format!("writing the kubeconfig to {}", path.display()))?;
            eprintln!("kubeconfig written to {}", path.display());
        }
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

fn print(rendered: anyhow::Result<String>) -> anyhow::Result<ExitCode> {
    print!("{}", rendered?);
    Ok(ExitCode::SUCCESS)
}

fn labels_map(labels: Vec<(String, String)>) -> Option<BTreeMap<String, String>> {
    (!labels.is_empty()).then(|| labels.into_iter().collect())
}

/// `key=value` (the server checks the syntax further).
fn parse_mode(s: &str) -> Result<KubeconfigKind, String> {
    match s {
        "gateway" => Ok(KubeconfigKind::Gateway),
        "direct" => Ok(KubeconfigKind::Direct),
        _ => Err("use gateway or direct".into()),
    }
}

fn parse_label(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("{s:?} is not key=value")),
    }
}

/// A duration written like the API's (`90s`, `10m`, `2h`).
fn parse_duration(s: &str) -> Result<Duration, String> {
    Ttl::parse("timeout", s)
        .map(Ttl::as_duration)
        .map_err(|e| e.reason)
}

/// Like [`parse_duration`], and `0`/`0s` for "not at all".
fn parse_duration_or_zero(s: &str) -> Result<Duration, String> {
    match s.trim() {
        "0" | "0s" => Ok(Duration::ZERO),
        s => parse_duration(s),
    }
}

#[cfg(test)]
mod tests;
