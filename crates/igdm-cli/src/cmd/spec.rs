//! `igdm spec validate|run`.

use std::process::ExitCode;

use crate::Global;

/// Connector spec commands.
#[derive(Debug, clap::Subcommand)]
pub enum SpecCommand {
    /// Load a connector file and list its actions.
    Validate {
        /// The connector file.
        file: std::path::PathBuf,
    },
}

/// Runs a spec command.
pub async fn run(cmd: SpecCommand, _global: &Global) -> anyhow::Result<ExitCode> {
    match cmd {
        SpecCommand::Validate { file } => anyhow::bail!("spec validate {} is being built", file.display()),
    }
}
