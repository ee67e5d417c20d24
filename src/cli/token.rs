//! `vcm token …`: API tokens. Today: the offline bootstrap of the first admin token, written
//! straight into the store a server will use, so a production install never needs `--dev`.

use std::{path::PathBuf, process::ExitCode};

use anyhow::Context as _;
use clap::{Args, Subcommand};

use super::OutputFormat;
use crate::{
    auth::bootstrap_token,
    config::{Config, ConfigOverrides},
    domain::{Role, TokenSecret},
    store,
};

/// `vcm token` subcommands.
#[derive(Debug, Subcommand)]
pub enum TokenCmd {
    /// Create an API token.
    Create(CreateArgs),
}

/// `vcm token create` flags.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Write the token straight into the store (no server needed, none may be running yet):
    /// the way to make the first admin credential of a new installation. The secret is printed
    /// once on stdout and never logged.
    #[arg(long)]
    pub bootstrap: bool,
    /// Name of the token (shows in audit records and events).
    #[arg(long, default_value = "admin")]
    pub name: String,
    /// The server's configuration file (for `store_url` and `data_dir`).
    #[arg(long, env = "VCM_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// The server's data directory (where the embedded store lives).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

/// Runs a `vcm token` command.
pub async fn run(cmd: TokenCmd, output: OutputFormat) -> anyhow::Result<ExitCode> {
    match cmd {
        TokenCmd::Create(args) => create(args, output).await,
    }
}

async fn create(args: CreateArgs, output: OutputFormat) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.bootstrap,
        "`vcm token create` needs --bootstrap: issuing tokens through a running server is not \
         available yet; --bootstrap writes an admin token into the store offline"
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
    match output {
        OutputFormat::Table => {
            eprintln!(
                "admin token {:?} created in {} (shown once; keep it in a secret store):",
                args.name,
                config.store_url()
            );
            println!("{}", secret.expose());
        }
        OutputFormat::Json => println!(
            "{}",
            serde_json::json!({"name": args.name, "role": "admin", "token": secret.expose()})
        ),
        OutputFormat::Yaml => print!(
            "{}",
            serde_yaml_ng::to_string(
                &serde_json::json!({"name": args.name, "role": "admin", "token": secret.expose()})
            )?
        ),
    }
    Ok(ExitCode::SUCCESS)
}
