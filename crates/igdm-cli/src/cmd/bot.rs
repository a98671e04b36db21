//! `igdm bot sync-profile`, `igdm handover take|release`, and the bot that
//! `igdm serve --bot FILE` runs on the webhook event stream.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, anyhow, bail};
use igdm_bot::{Bot, BotConfig};
use igdm_model::Timestamp;
use igdm_store::{MessageStore, Store};
use serde_json::json;

use crate::Global;
use igdm_runtime::{LiveAccount, Runtime};

/// `igdm bot …`.
#[derive(Debug, clap::Subcommand)]
pub enum BotCommand {
    /// Make the account's ice breakers and persistent menu match the bot file.
    SyncProfile(SyncProfileArgs),
}

/// Options of `igdm bot sync-profile`.
#[derive(Debug, clap::Args)]
pub struct SyncProfileArgs {
    /// The bot file (YAML, see docs/bot.md).
    #[arg(long, value_name = "FILE")]
    pub bot: PathBuf,
}

/// `igdm handover …`.
#[derive(Debug, clap::Subcommand)]
pub enum HandoverCommand {
    /// A person takes the conversation: the bot stays quiet until release.
    Take {
        /// The conversation (the customer's IGSID on the official API).
        conversation: String,
    },
    /// Give the conversation back to the bot.
    Release {
        /// The conversation (the customer's IGSID on the official API).
        conversation: String,
    },
}

fn shared(store: Store) -> Arc<dyn MessageStore> {
    match store {
        Store::Sqlite(s) => Arc::new(s),
        Store::Postgres(p) => Arc::new(p),
    }
}

fn load(path: &Path) -> anyhow::Result<BotConfig> {
    Ok(BotConfig::load(path)?)
}

/// A bot for the `--account` account over `store`, and the live account it answers as.
async fn bot_for(
    rt: &Runtime,
    path: &Path,
    store: Arc<dyn MessageStore>,
    global: &Global,
) -> anyhow::Result<(Bot, LiveAccount)> {
    let config = load(path)?;
    let opened = rt.open(global.account.as_deref()).await?;
    let account = opened.client().account();
    if account.connector == "instagram-web" {
        bail!(
            "the bot answers business accounts on the official API; {:?} uses the private web API",
            account.name
        );
    }
    let bot = Bot::new(config, Arc::new(opened.client().clone()), store)?;
    Ok((bot, opened))
}

/// Starts the bot on `server`'s event stream (for `igdm serve --bot FILE`).
/// Open replies of an earlier run are sent first.
///
/// # Errors
/// An invalid bot file, a missing account or credentials, an unreachable store.
pub async fn start(
    rt: &Runtime,
    path: &Path,
    database: &str,
    server: &igdm_webhook::Server,
    global: &Global,
) -> anyhow::Result<(tokio::task::JoinHandle<()>, LiveAccount)> {
    let store = Store::open(database).await.context("opening the store for the bot")?;
    let (bot, live) = bot_for(rt, path, shared(store), global).await?;
    super::upkeep::announce_stop(&live);
    let events = server.subscribe();
    eprintln!("igdm serve: bot from {} is answering", path.display());
    Ok((tokio::spawn(async move { bot.run(events).await }), live))
}

/// Runs `igdm bot …`.
pub async fn run(cmd: BotCommand, global: &Global) -> anyhow::Result<ExitCode> {
    match cmd {
        BotCommand::SyncProfile(args) => {
            let rt = Runtime::from_env()?;
            let store = shared(rt.store().await?);
            let (bot, live) = bot_for(&rt, &args.bot, store, global).await?;
            let done = bot.sync_profile().await;
            live.finish().await?;
            let done = done?;
            if global.json {
                println!("{}", json!({"ok": true, "actions": done}));
            } else {
                println!(
                    "ice breakers: {}, persistent menu: {}",
                    bot.config().ice_breakers.len(),
                    bot.config().persistent_menu.len()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Runs `igdm handover take|release CONVERSATION`.
pub async fn handover(cmd: HandoverCommand, global: &Global) -> anyhow::Result<ExitCode> {
    let ctx = Runtime::from_env()?;
    let account = ctx.account(global.account.as_deref())?;
    let account_id = account.user_id.clone().ok_or_else(|| {
        anyhow!("account {:?} has no Instagram id: log in again with igdm oauth", account.name)
    })?;
    let store = ctx.store().await?;
    let (conversation, taken) = match cmd {
        HandoverCommand::Take { conversation } => {
            igdm_bot::take_over(&*store, &account_id, &conversation, Timestamp::now()).await?;
            (conversation, true)
        }
        HandoverCommand::Release { conversation } => {
            let was = igdm_bot::release(&*store, &account_id, &conversation).await?;
            if !was && !global.json {
                eprintln!("igdm handover: {conversation} was not taken over");
            }
            (conversation, false)
        }
    };
    if global.json {
        println!("{}", json!({"conversation": conversation, "human": taken}));
    } else if taken {
        println!(
            "{conversation}: a person has the conversation; the bot stays quiet until release"
        );
    } else {
        println!("{conversation}: the bot answers again");
    }
    Ok(ExitCode::SUCCESS)
}
