//! `vcm team …`: a team's use of its quota.

use std::process::ExitCode;

use clap::Subcommand;

use super::{GlobalOpts, output};

/// `vcm team` subcommands.
#[derive(Debug, Subcommand)]
pub enum TeamCmd {
    /// A team's live clusters, by principal, against its `[quotas]` entry (admins: any team;
    /// members: their own).
    Usage {
        /// The team's name.
        team: String,
    },
}

/// Runs a `vcm team` command.
pub async fn run(cmd: TeamCmd, global: &GlobalOpts) -> anyhow::Result<ExitCode> {
    match cmd {
        TeamCmd::Usage { team } => {
            let usage = global.client()?.team_usage(&team).await?;
            print!("{}", output::team_usage(&usage, global.output)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}
