//! `igdm sandbox`.

use std::process::ExitCode;

use crate::Global;

/// Options of `igdm sandbox`.
#[derive(Debug, clap::Args)]
pub struct SandboxArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8765")]
    pub addr: String,
}

/// Runs the sandbox until interrupted.
pub async fn run(args: SandboxArgs, _global: &Global) -> anyhow::Result<ExitCode> {
    anyhow::bail!("sandbox on {} is being built", args.addr)
}
