//! `igdm mcp` (the tool server for AI agents) and `igdm drafts` (approving
//! the writes it held back).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use serde_json::Value;

use igdm_mcp::{Draft, Drafts, HttpOptions, IgdmServer, McpConfig, Policy};

use super::output;
use crate::Global;
use igdm_runtime::Runtime;

/// `igdm mcp`.
#[derive(Debug, clap::Args)]
pub struct McpArgs {
    /// Serve Streamable HTTP at this address (e.g. 127.0.0.1:8765) instead of
    /// stdio. Every request needs `Authorization: Bearer $IGDM_MCP_TOKEN`
    /// (a token is generated and printed on stderr when the variable is unset).
    #[arg(long, value_name = "ADDR")]
    pub http: Option<SocketAddr>,
    /// Allow --http on a non-loopback address.
    #[arg(long, requires = "http")]
    pub allow_remote: bool,
    /// List no write tool and refuse every write (tools in --allow excepted).
    #[arg(long)]
    pub read_only: bool,
    /// Expose only these tools (with --read-only: the read tools plus these).
    /// An unknown name aborts startup.
    #[arg(long, value_delimiter = ',', value_name = "TOOL,…")]
    pub allow: Vec<String>,
    /// Send only to these user or conversation ids.
    #[arg(long, value_delimiter = ',', value_name = "ID,…")]
    pub recipients: Vec<String>,
    /// Hold every write as a draft until `igdm drafts approve ID`.
    #[arg(long)]
    pub approve: bool,
    /// Tail this JSON Lines file (`igdm serve --events PATH`) and send each
    /// new incoming event to the client as a `notifications/igdm/event`
    /// notification (stdio only).
    #[arg(long, value_name = "PATH", conflicts_with = "http")]
    pub events: Option<std::path::PathBuf>,
    /// Keep the account live with the watcher (`igdm watch`'s polling, into
    /// the local store): enables `wait_for_messages`.
    #[arg(long)]
    pub live: bool,
    /// With --live: the poll interval right after activity (see `igdm watch --interval`).
    #[arg(long, value_name = "DURATION", requires = "live", value_parser = super::watch::parse_interval)]
    pub interval: Option<std::time::Duration>,
    /// With --live: keep the media of messages as they arrive, in the media
    /// store (`IGDM_MEDIA_DIR`, see docs/media.md), as `igdm watch --media`.
    #[arg(long, requires = "live")]
    pub media: bool,
    /// Let agents send local files from this directory (send_media `path`);
    /// without it they send media by URL only.
    #[arg(long, value_name = "DIR")]
    pub media_from: Option<std::path::PathBuf>,
    /// Search the local store at this URL instead of asking Instagram.
    #[arg(long, env = "IGDM_DATABASE_URL", hide_env_values = true)]
    pub database: Option<String>,
}

/// `igdm drafts`.
#[derive(Debug, clap::Subcommand)]
pub enum DraftsCommand {
    /// List the drafts (pending first).
    List {
        /// Include approved and rejected drafts.
        #[arg(long)]
        all: bool,
    },
    /// Carry out a pending draft.
    Approve {
        /// The draft id.
        id: String,
    },
    /// Discard a pending draft.
    Reject {
        /// The draft id.
        id: String,
    },
}

fn drafts_of(ctx: &Runtime) -> Drafts {
    Drafts::new(ctx.home().join("drafts"))
}

fn non_empty(v: Vec<String>) -> Option<std::collections::BTreeSet<String>> {
    let set: std::collections::BTreeSet<String> =
        v.into_iter().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect();
    (!set.is_empty()).then_some(set)
}

/// Runs `igdm mcp` until the client disconnects (stdio) or Ctrl-C (HTTP).
pub async fn run(args: McpArgs, global: &Global) -> anyhow::Result<ExitCode> {
    let policy = Policy {
        read_only: args.read_only,
        allow: non_empty(args.allow),
        recipients: non_empty(args.recipients),
        approve: args.approve,
        media_from: args.media_from,
    };
    if let Some(dir) = &policy.media_from
        && !dir.is_dir()
    {
        anyhow::bail!("--media-from {}: not a directory", dir.display());
    }
    // Check the options before touching credentials or the network.
    policy.validate()?;
    let ctx = Runtime::from_env()?;
    let opened = ctx.open(global.account.as_deref()).await?;
    // A web session is kept alive while the server runs (the connector's
    // `session.keep_alive`, skipped while the agent's reads keep it alive);
    // a token is refreshed before it expires.
    opened.schedule_keep_alive();
    super::upkeep::announce_stop(&opened);
    let store = match &args.database {
        Some(url) => {
            Some(Arc::new(igdm_store::Store::open(url).await.context("opening the local store")?))
        }
        None => None,
    };
    // `--live`: the account's watcher, opened like `igdm watch`'s.
    let (stop_live, stop_rx) = tokio::sync::watch::channel(false);
    let mut live = None;
    let mut watchers = Vec::new();
    let files = Arc::new(ctx.media_store()?);
    if args.live {
        let policy = super::watch::policy_for(&opened, args.interval)?;
        let hub = super::watch::open_hub(&ctx, super::watch::Sinks::default()).await?;
        let keep = args.media.then_some(&files);
        watchers =
            super::watch::spawn(std::slice::from_ref(&opened), &hub, vec![policy], keep, &stop_rx);
        live = Some(hub);
    }
    let config = McpConfig {
        policy,
        drafts: Some(drafts_of(&ctx)),
        store,
        capabilities: Some(super::msg::capabilities(opened.client())),
        live,
        // get_message_media keeps media as `igdm media get` does.
        media: Some(igdm_mcp::MediaAccess {
            store: Arc::new(ctx.store().await.context("opening the local store")?),
            files,
        }),
        // A local file sent where the API takes media only by URL is
        // offered through a running `igdm serve --public-url`.
        public: Some(ctx.public_files()),
    };
    let server = IgdmServer::new(opened.client().clone(), config)?;
    match args.http {
        None => {
            tracing::info!(account = %opened.client().account().name, "serving MCP on stdio");
            igdm_mcp::serve_stdio(server, args.events).await?;
        }
        Some(addr) => {
            let token = match std::env::var("IGDM_MCP_TOKEN") {
                Ok(t) if !t.is_empty() => t,
                _ => {
                    let t = igdm_mcp::generate_token();
                    eprintln!("IGDM_MCP_TOKEN is unset; this run's bearer token: {t}");
                    t
                }
            };
            let running = igdm_mcp::serve_http(
                server,
                HttpOptions { addr, token, allow_remote: args.allow_remote },
            )
            .await?;
            eprintln!("igdm mcp: serving {} on {}", opened.client().account().name, running.url());
            tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
            running.shutdown();
            running.wait().await?;
        }
    }
    let _ = stop_live.send(true);
    for w in watchers {
        // The runtime's own stop was announced when it happened.
        if let Ok((name, Ok(end @ super::watch::Ended::Watcher(_)))) = w.await
            && let Some(why) = end.needs_user()
        {
            eprintln!("igdm mcp: {name} stopped being live: {why}");
        }
    }
    opened.finish().await?;
    Ok(ExitCode::SUCCESS)
}

fn draft_row(d: &Draft) -> String {
    let what = d
        .arguments
        .get("text")
        .and_then(Value::as_str)
        .map(|t| format!("{t:?}"))
        .unwrap_or_default();
    let target = ["conversation_id", "user_id"]
        .iter()
        .find_map(|k| d.arguments.get(*k).and_then(Value::as_str))
        .unwrap_or("-");
    let status = serde_json::to_value(d.status).ok();
    format!(
        "{}  {:<9} {:<8} {:<14} {:<24} {}",
        d.id,
        status.as_ref().and_then(Value::as_str).unwrap_or("?"),
        d.account,
        d.tool,
        target,
        what
    )
}

/// Runs `igdm drafts`.
pub async fn drafts(cmd: DraftsCommand, global: &Global) -> anyhow::Result<ExitCode> {
    let ctx = Runtime::from_env()?;
    let drafts = drafts_of(&ctx);
    match cmd {
        DraftsCommand::List { all } => {
            let list: Vec<Draft> = drafts
                .list()?
                .into_iter()
                .filter(|d| all || d.status == igdm_mcp::DraftStatus::Pending)
                .collect();
            if global.json {
                super::output::complete_list(&list);
            } else if list.is_empty() {
                println!("(no drafts)");
            } else {
                for d in &list {
                    println!("{}", draft_row(d));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        DraftsCommand::Reject { id } => {
            let d = drafts.reject(&id)?;
            output::object(global.json, &serde_json::to_value(&d)?, |_| format!("rejected {id}"));
            Ok(ExitCode::SUCCESS)
        }
        DraftsCommand::Approve { id } => {
            let pending = drafts.pending(&id)?;
            let opened = ctx.open(Some(&pending.account)).await?;
            let server = IgdmServer::new(
                opened.client().clone(),
                McpConfig { drafts: Some(drafts.clone()), ..McpConfig::default() },
            )?;
            let done = server.approve(&drafts, &id).await?;
            opened.finish().await?;
            let result = done.result.clone().unwrap_or(Value::Null);
            let ok = done.status == igdm_mcp::DraftStatus::Sent;
            output::object(global.json, &serde_json::to_value(&done)?, |_| {
                if ok {
                    format!("approved {id}: {} done", done.tool)
                } else {
                    format!(
                        "approved {id}, but {} failed: {}",
                        done.tool,
                        result["error"]["message"].as_str().unwrap_or("unknown error")
                    )
                }
            });
            Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
    }
}
