//! `vcm token …`: API tokens. `create`, `list` and `revoke` go through the server (admins);
//! `create --bootstrap` writes the first admin token straight into the store a server will
//! use, so a production install never needs `--dev`.

use std::{path::PathBuf, process::ExitCode};

use anyhow::Context as _;
use clap::{Args, Subcommand};

use super::{GlobalOpts, OutputFormat, output};
use crate::{
    api::{CreateTokenRequest, CreatedToken},
    auth::bootstrap_token,
    config::{Config, ConfigOverrides},
    domain::{Role, TokenSecret},
    store,
};

/// `vcm token` subcommands.
#[derive(Debug, Subcommand)]
pub enum TokenCmd {
    /// Issue an API token; its secret is printed once, on stdout.
    Create(CreateArgs),
    /// List tokens (never their secrets).
    List,
    /// Revoke a token by id: the next request presenting it is refused.
    Revoke {
        /// The token's id (`t-…`, from `vcm token list`).
        id: String,
    },
}

/// `vcm token create` flags.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Name of the token (shows in events and `vcm token list`; need not be unique).
    #[arg(long)]
    pub name: String,
    /// admin, developer, ci or viewer [default: ci; admin with --bootstrap].
    #[arg(long)]
    pub role: Option<String>,
    /// Team: developers and viewers see their team's clusters.
    #[arg(long)]
    pub team: Option<String>,
    /// Valid for this long (`90d`); default: until revoked.
    #[arg(long)]
    pub ttl: Option<String>,
    /// Write an admin token straight into the store, without a server (none may be running
    /// yet): the way to make the first admin credential of a new installation.
    #[arg(long)]
    pub bootstrap: bool,
    /// With --bootstrap: the server's configuration file (for `store_url` and `data_dir`).
    #[arg(long, env = "VCM_CONFIG", value_name = "PATH", requires = "bootstrap")]
    pub config: Option<PathBuf>,
    /// With --bootstrap: the server's data directory (where the embedded store lives).
    #[arg(long, value_name = "DIR", requires = "bootstrap")]
    pub data_dir: Option<PathBuf>,
}

/// Runs a `vcm token` command.
pub async fn run(cmd: TokenCmd, global: &GlobalOpts) -> anyhow::Result<ExitCode> {
    match cmd {
        TokenCmd::Create(args) if args.bootstrap => bootstrap(args, global.output).await,
        TokenCmd::Create(args) => {
            let req = CreateTokenRequest {
                name: args.name,
                role: args.role.unwrap_or_else(|| "ci".into()),
                team: args.team,
                ttl: args.ttl,
            };
            let created = global.client()?.create_token(&req).await?;
            print_created(&created, global.output)
        }
        TokenCmd::List => {
            let list = global.client()?.list_tokens().await?;
            print!("{}", output::tokens(&list, global.output)?);
            Ok(ExitCode::SUCCESS)
        }
        TokenCmd::Revoke { id } => {
            let token = global.client()?.revoke_token(&id).await?;
            match global.output {
                OutputFormat::Table => eprintln!("token {} ({}) revoked", token.id, token.name),
                OutputFormat::Json => println!("{}", serde_json::to_string(&token)?),
                OutputFormat::Yaml => print!("{}", serde_yaml_ng::to_string(&token)?),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The secret alone on stdout (so `VCM_TOKEN=$(vcm token create …)` works), what it is on
/// stderr; JSON and YAML carry both.
fn print_created(created: &CreatedToken, output: OutputFormat) -> anyhow::Result<ExitCode> {
    let t = &created.token;
    match output {
        OutputFormat::Table => {
            eprintln!(
                "{} token {:?} ({}{}{}) issued; its secret is shown once, keep it in a secret store:",
                t.role,
                t.name,
                t.id,
                t.team
                    .as_deref()
                    .map(|team| format!(", team {team}"))
                    .unwrap_or_default(),
                t.expires_at
                    .as_deref()
                    .map(|e| format!(", expires {e}"))
                    .unwrap_or_default(),
            );
            println!("{}", created.secret);
        }
        OutputFormat::Json => println!("{}", serde_json::to_string(created)?),
        OutputFormat::Yaml => print!("{}", serde_yaml_ng::to_string(created)?),
    }
    Ok(ExitCode::SUCCESS)
}

async fn bootstrap(args: CreateArgs, output: OutputFormat) -> anyhow::Result<ExitCode> {
    if let Some(role) = args.role.as_deref().filter(|r| *r != "admin") {
        anyhow::bail!(
            "--bootstrap makes the first admin token; issue {role} tokens through the server \
             (VCM_TOKEN=<admin token> vcm token create --role {role} …)"
        );
    }
    anyhow::ensure!(
        args.team.is_none() && args.ttl.is_none(),
        "--bootstrap makes an admin token without team or expiry; issue tokens with --team or \
         --ttl through the server"
    );
    let overrides = ConfigOverrides {
        data_dir: args.data_dir.clone(),
        ..ConfigOverrides::default()
    };
    let config =
        Config::load(args.config.as_deref(), &overrides).context("loading the configuration")?;
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating {}", config.data_dir.display()))?;
    let store = store::open(&config.store_url()).await?;
    let secret = TokenSecret::generate();
    bootstrap_token(store.as_ref(), &args.name, Role::Admin, &secret).await?;
    let record = store
        .token_by_hash(&secret.hash())
        .await?
        .context("the bootstrap token was not stored")?;
    let created = CreatedToken::new(&record, &secret);
    if output == OutputFormat::Table {
        eprintln!("in the store {}:", store::redact_url(&config.store_url()));
    }
    print_created(&created, output)
}
