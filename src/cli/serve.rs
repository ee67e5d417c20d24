//! `vcm server`: load the configuration, build the server from it, serve until signalled.

use std::process::ExitCode;

use anyhow::Context as _;

use super::ServerArgs;
use crate::{
    config::Config,
    domain::TokenSecret,
    server::{Server, shutdown_signal},
    telemetry,
};

/// Runs the server until SIGTERM or SIGINT.
pub async fn serve(args: ServerArgs) -> anyhow::Result<ExitCode> {
    let mut config = Config::load(args.config.as_deref(), &args.overrides())
        .context("loading the configuration")?;
    if let Some(token) = &args.dev_token {
        config.dev_token = Some(
            TokenSecret::parse(token)
                .context("--dev-token must be a vcm token: `vcm_` followed by 64 hex characters")?,
        );
    }
    telemetry::init(config.log.format, &config.log.level)?;
    if config.dev {
        tracing::info!(
            data_dir = %config.data_dir.display(),
            "development mode: SQLite store and local driver"
        );
    }
    let server = Server::build(config).await?;
    server.run_until_stopped(shutdown_signal()).await?;
    Ok(ExitCode::SUCCESS)
}
