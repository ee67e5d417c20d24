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
    let given = match (&args.dev_token, &args.dev_token_file) {
        (Some(token), _) => Some(token.clone()),
        (None, Some(path)) => Some(crate::fsutil::read_private(path)?),
        (None, None) => None,
    };
    if let Some(token) = given {
        config.dev_token =
            Some(TokenSecret::parse(&token).context(
                "the dev token must be a vcm token: `vcm_` followed by 64 hex characters",
            )?);
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
