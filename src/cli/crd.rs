//! `vcm crd print`: the VirtualCluster CustomResourceDefinition, for `kubectl apply`.

use std::process::ExitCode;

use clap::Subcommand;

/// `vcm crd …`
#[derive(Debug, Subcommand)]
pub enum CrdCmd {
    /// Print the CRD as YAML: `vcm crd print | kubectl apply --server-side -f -`.
    Print,
}

/// Runs a `vcm crd` command (offline: no server involved).
pub fn run(cmd: CrdCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        CrdCmd::Print => {
            print!("{}", crate::crd::crd_yaml()?);
            Ok(ExitCode::SUCCESS)
        }
    }
}
