//! `vcm team …`: a team's use of its quota; `vcm host …`: the hosts' use.

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

/// `vcm host` subcommands.
#[derive(Debug, Subcommand)]
pub enum HostCmd {
    /// The hosts: reachability, live clusters against their limit.
    List,
}

/// Runs a `vcm host` command.
pub async fn run_host(cmd: HostCmd, global: &GlobalOpts) -> anyhow::Result<ExitCode> {
    match cmd {
        HostCmd::List => {
            let hosts = global.client()?.hosts().await?;
            print!("{}", output::hosts(&hosts, global.output)?);
            Ok(ExitCode::SUCCESS)
        }
    }
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
