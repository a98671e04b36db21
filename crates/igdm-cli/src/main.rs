//! `igdm`: read and send Instagram Direct messages from the command line.
//!
//! Each area of the CLI lives in its own module under `cmd/`; this file only
//! parses arguments, sets up logging and dispatches.

#[cfg(test)]
mod catalog_tests;
mod cmd;

use std::process::ExitCode;

use clap::{CommandFactory as _, Parser, Subcommand};

/// Options every subcommand accepts.
#[derive(Debug, Clone, clap::Args)]
pub struct Global {
    /// More logging on stderr (-v debug, -vv trace). `IGDM_LOG` takes a full filter.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Print exactly one JSON document on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    /// The account to act as (default: the only account).
    #[arg(long, global = true, env = "IGDM_ACCOUNT")]
    pub account: Option<String>,
}

#[derive(Debug, Parser)]
#[command(
    name = "igdm",
    version,
    about = "Instagram Direct messages from the command line, a library, a webhook service and an MCP server"
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check and run connector spec files.
    #[command(subcommand)]
    Spec(cmd::spec::SpecCommand),
    /// Run the local Instagram emulator.
    Sandbox(cmd::sandbox::SandboxArgs),
    /// Receive Instagram webhooks: verify, store, process and stream events.
    Serve(cmd::serve::ServeArgs),
    /// Keep accounts live: poll their inboxes and stream every change as an event.
    Watch(cmd::watch::WatchArgs),
    /// Manage accounts.
    #[command(subcommand)]
    Accounts(cmd::accounts::AccountsCommand),
    /// Serve the account to AI agents over MCP (stdio, or HTTP with --http).
    Mcp(cmd::mcp::McpArgs),
    /// Serve a local web inbox of every account (read, search, reply, live).
    Ui(cmd::ui::UiArgs),
    /// Approve or reject the writes `igdm mcp --approve` held as drafts.
    #[command(subcommand)]
    Drafts(cmd::mcp::DraftsCommand),
    /// Mirror the account into the local store (incremental; resumable).
    Sync(cmd::store::SyncArgs),
    /// Export the stored messages of the account.
    Export(cmd::store::ExportArgs),
    /// Media kept from messages.
    #[command(subcommand)]
    Media(cmd::store::MediaCommand),
    /// Walk through igdm against an embedded sandbox (no credentials, no network).
    Demo(cmd::demo::DemoArgs),
    /// Log in to an account in a browser, or import its cookies.
    Login(cmd::auth::LoginArgs),
    /// Authorize an account with Instagram Login (OAuth), or store a Page token.
    Oauth(cmd::auth::OauthArgs),
    /// Run browser steps from stdin and print the cookies (for host applications).
    BrowserRun(cmd::auth::BrowserRunArgs),
    /// The DM bot's profile (ice breakers, persistent menu).
    #[command(subcommand)]
    Bot(cmd::bot::BotCommand),
    /// Take a conversation from the bot for a person, or give it back.
    #[command(subcommand)]
    Handover(cmd::bot::HandoverCommand),
    /// Check recorded exchanges against the connectors (`--replay DIR`).
    Doctor(cmd::spec::DoctorArgs),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page, or write one per subcommand into a directory.
    Man {
        /// Write `igdm.1` and a page per subcommand (`igdm-send.1`, …) here.
        #[arg(long, value_name = "DIR")]
        dir: Option<std::path::PathBuf>,
    },
    #[command(flatten)]
    Msg(cmd::msg::MsgCommand),
}

/// `igdm completions` and `igdm man`: generated from the argument definitions,
/// so they cannot fall behind them.
fn reference(command: &Command) -> anyhow::Result<ExitCode> {
    let mut cli = Cli::command();
    match command {
        Command::Completions { shell } => {
            clap_complete::generate(*shell, &mut cli, "igdm", &mut std::io::stdout());
        }
        Command::Man { dir: None } => clap_mangen::Man::new(cli).render(&mut std::io::stdout())?,
        Command::Man { dir: Some(dir) } => {
            std::fs::create_dir_all(dir)?;
            clap_mangen::generate_to(cli, dir)?;
            let mut pages: Vec<String> = std::fs::read_dir(dir)?
                .filter_map(Result::ok)
                .map(|e| e.path().display().to_string())
                .filter(|p| p.ends_with(".1"))
                .collect();
            pages.sort();
            for p in pages {
                println!("{p}");
            }
        }
        _ => {}
    }
    Ok(ExitCode::SUCCESS)
}

fn init_tracing(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let filter = std::env::var("IGDM_LOG").ok().map_or_else(
        || {
            EnvFilter::new(match verbose {
                0 => "warn,chromiumoxide=error",
                1 => "info,igdm=debug",
                2 => "debug",
                _ => "trace",
            })
        },
        EnvFilter::new,
    );
    // Logs go to stderr only: stdout carries results (and the MCP stdio transport).
    let _ =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

#[tokio::main]
async fn main() -> ExitCode {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = Cli::parse();
    init_tracing(cli.global.verbose);
    let result = match cli.command {
        Command::Spec(c) => cmd::spec::run(c, &cli.global).await,
        Command::Sandbox(a) => cmd::sandbox::run(a, &cli.global).await,
        Command::Serve(a) => cmd::serve::run(a, &cli.global).await,
        Command::Watch(a) => cmd::watch::run(a, &cli.global).await,
        Command::Accounts(c) => cmd::accounts::run(c, &cli.global).await,
        Command::Mcp(a) => cmd::mcp::run(a, &cli.global).await,
        Command::Ui(a) => cmd::ui::run(a, &cli.global).await,
        Command::Drafts(c) => cmd::mcp::drafts(c, &cli.global).await,
        Command::Sync(a) => cmd::store::sync_cmd(a, &cli.global).await,
        Command::Export(a) => cmd::store::export(a, &cli.global).await,
        Command::Media(c) => cmd::store::media(c, &cli.global).await,
        Command::Demo(a) => cmd::demo::run(a, &cli.global).await,
        Command::Bot(c) => cmd::bot::run(c, &cli.global).await,
        Command::Handover(c) => cmd::bot::handover(c, &cli.global).await,
        Command::Msg(c) => cmd::msg::run(c, &cli.global).await,
        Command::Doctor(a) => cmd::spec::doctor(&a, &cli.global),
        c @ (Command::Completions { .. } | Command::Man { .. }) => reference(&c),
        Command::Login(a) => cmd::auth::login(a, &cli.global).await,
        Command::Oauth(a) => cmd::auth::oauth(a, &cli.global).await,
        Command::BrowserRun(a) => cmd::auth::browser_run(a, &cli.global).await,
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(1)
        }
    }
}
