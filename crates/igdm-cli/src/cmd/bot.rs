//! `igdm bot sync-profile`, `igdm handover take|release`, and the bot that
//! `igdm serve --bot FILE` runs on the webhook event stream.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, anyhow, bail};
use igdm::handover;
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
    /// A person takes the conversation: thread control passes to the inbox
    /// app where the account has the Handover Protocol, and the bot stays
    /// quiet until release.
    Take {
        /// The conversation (the customer's IGSID on the official API).
        conversation: String,
        /// The app that gets thread control (default: the Page Inbox).
        #[arg(long, value_name = "APP_ID", default_value = igdm_bot::config::PAGE_INBOX_APP_ID)]
        to_app: String,
        /// A note passed along with thread control.
        #[arg(long, default_value = "")]
        metadata: String,
    },
    /// Give the conversation back to the bot (taking thread control back
    /// where the account has the Handover Protocol).
    Release {
        /// The conversation (the customer's IGSID on the official API).
        conversation: String,
        /// A note passed along with thread control.
        #[arg(long, default_value = "")]
        metadata: String,
    },
    /// Ask the app that has the conversation to pass it to this one
    /// (Handover Protocol accounts only).
    Request {
        /// The conversation (the customer's IGSID on the official API).
        conversation: String,
        /// A note passed along with the request.
        #[arg(long, default_value = "")]
        metadata: String,
    },
    /// Which app controls the conversation now (Handover Protocol accounts
    /// only; none while the thread is idle).
    Owner {
        /// The conversation (the customer's IGSID).
        conversation: String,
    },
    /// The apps the account set up as secondary receivers, which a
    /// conversation can be passed to (Handover Protocol accounts only).
    Apps,
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

/// Runs `igdm handover take|release|request CONVERSATION`, `owner
/// CONVERSATION` and `apps`.
pub async fn handover(cmd: HandoverCommand, global: &Global) -> anyhow::Result<ExitCode> {
    let rt = Runtime::from_env()?;
    let live = rt.open(global.account.as_deref()).await?;
    let client = live.client().clone();
    let (action, params) = match &cmd {
        HandoverCommand::Owner { conversation } => {
            ("get_thread_owner", handover::owner_params(handover::Thread::User(conversation)))
        }
        HandoverCommand::Apps => ("list_secondary_receivers", serde_json::Map::new()),
        _ => return pass_control(&rt, &live, &cmd, global).await,
    };
    let out = client.invoke(action, params).await;
    live.finish().await?;
    Ok(match out {
        Ok(out) => {
            super::output::object(global.json, &out.data, |v| {
                serde_json::to_string_pretty(v).unwrap_or_default()
            });
            ExitCode::SUCCESS
        }
        Err(e) => super::output::client_error(global.json, &e),
    })
}

/// `igdm handover take|release|request CONVERSATION`.
async fn pass_control(
    rt: &Runtime,
    live: &LiveAccount,
    cmd: &HandoverCommand,
    global: &Global,
) -> anyhow::Result<ExitCode> {
    let client = live.client().clone();
    let account_id = client.account().user_id.clone().ok_or_else(|| {
        anyhow!(
            "account {:?} has no Instagram id: log in again with igdm oauth",
            client.account().name
        )
    })?;
    let store = rt.store().await?;
    let (result, conversation, human) = match cmd {
        HandoverCommand::Take { conversation, to_app, metadata } => {
            let now = Timestamp::now();
            let done = igdm_bot::hand_to_person(
                &client,
                &*store,
                &account_id,
                conversation,
                now,
                to_app,
                metadata,
            )
            .await;
            (done, conversation, Some(true))
        }
        HandoverCommand::Release { conversation, metadata } => {
            let done =
                igdm_bot::give_back(&client, &*store, &account_id, conversation, metadata).await;
            (done, conversation, Some(false))
        }
        HandoverCommand::Request { conversation, metadata } => {
            (igdm_bot::request_control(&client, conversation, metadata).await, conversation, None)
        }
        HandoverCommand::Owner { .. } | HandoverCommand::Apps => {
            bail!("`igdm handover owner|apps` only read thread control")
        }
    };
    live.finish().await?;
    let done = match result {
        Ok(done) => done,
        Err(igdm_bot::BotError::Client(e)) => {
            return Ok(super::output::client_error(global.json, &e));
        }
        Err(e) => return Err(e.into()),
    };
    if global.json {
        println!(
            "{}",
            json!({"conversation": conversation, "human": human, "meta_action": done.meta_action})
        );
        return Ok(ExitCode::SUCCESS);
    }
    let told = done.meta_action.map_or_else(
        || " (recorded locally; this account's API has no handover)".to_owned(),
        |a| format!(" ({a})"),
    );
    match human {
        Some(true) => println!(
            "{conversation}: a person has the conversation; the bot stays quiet until release{told}"
        ),
        Some(false) if !done.was_taken => {
            println!("{conversation}: was not taken over; the bot answers{told}");
        }
        Some(false) => println!("{conversation}: the bot answers again{told}"),
        None => println!("{conversation}: thread control requested{told}"),
    }
    Ok(ExitCode::SUCCESS)
}
