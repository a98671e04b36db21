//! `igdm demo`: a walk through igdm against an embedded sandbox. Everything it
//! shows happens for real over HTTP on loopback: no credentials, no network.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, anyhow};
use serde_json::{Map, Value, json};

use igdm::{AccountConfig, Client, PacingPolicy};
use igdm_model::{ConversationKind, Timestamp};
use igdm_sandbox::{Sandbox, SandboxConfig};

use super::accounts::account_from_sandbox;
use super::output::{conversation_row, message_row};
use crate::Global;
use igdm_runtime::{connector, session_from};

/// Options of `igdm demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {}

fn step(n: u32, title: &str) {
    println!("\n\x1b[1m== {n}. {title}\x1b[0m");
}

fn say(line: impl AsRef<str>) {
    println!("   {}", line.as_ref());
}

fn client_for(
    name: &str,
    connector_id: &str,
    base: &str,
    account: &Value,
) -> anyhow::Result<Client> {
    let conn = connector(connector_id)?;
    let (mut config, credential): (AccountConfig, _) =
        account_from_sandbox(name, &conn, base, account)?;
    config.pacing = igdm::PacingOverride::default();
    let session = session_from(&credential);
    // The demo paces nothing: the sandbox is local and the walk should be quick.
    Ok(Client::builder(config, conn, session).pacing(PacingPolicy::none()).build()?)
}

async fn control(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    body: Value,
) -> anyhow::Result<Value> {
    let resp = http.post(format!("{base}{path}")).json(&body).send().await?;
    let status = resp.status();
    let v: Value = resp.json().await?;
    if !status.is_success() {
        return Err(anyhow!("sandbox {path}: {v}"));
    }
    Ok(v)
}

fn map(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// The embedded webhook receiver and bot of step 8, with their temporary store.
struct BotRun {
    task: tokio::task::JoinHandle<()>,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<()>,
    dir: std::path::PathBuf,
}

impl BotRun {
    async fn stop(self) {
        self.task.abort();
        let _ = self.stop.send(());
        let _ = self.server.await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starts `igdm serve` with the example bot in-process, subscribed to the sandbox's webhooks.
async fn start_bot(http: &reqwest::Client, base: &str, graph: &Client) -> anyhow::Result<BotRun> {
    let dir = std::env::temp_dir().join(format!("igdm-demo-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir)?;
    let url = format!("sqlite://{}?mode=rwc", dir.join("igdm.db").display());
    let store: Arc<dyn igdm_store::MessageStore> =
        Arc::new(igdm_store::SqliteStore::open(&url).await?);
    let secret = uuid::Uuid::new_v4().to_string();
    let verify = uuid::Uuid::new_v4().to_string();
    let mut config =
        igdm_webhook::Config::new(igdm_webhook::Secrets::new(secret.clone(), verify.clone()));
    config.poll_interval = std::time::Duration::from_millis(50);
    let server = igdm_webhook::Server::from_arc(
        config,
        Arc::new(igdm_webhook::StoreLog::new(store.clone())),
    );
    let events = server.subscribe();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let hook = format!("http://{}/webhook", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server_task = tokio::spawn(async move {
        let _ = server
            .serve_with_shutdown(listener, async {
                let _ = stopped.await;
            })
            .await;
    });
    control(
        http,
        base,
        "/_sandbox/webhooks",
        json!({"callback_url": hook, "verify_token": verify, "app_secret": secret}),
    )
    .await?;
    let bot_config = igdm_bot::BotConfig::parse(include_str!("../../../../examples/bot.yaml"))?;
    let bot = igdm_bot::Bot::new(bot_config, Arc::new(graph.clone()), store)?;
    let task = tokio::spawn(async move { bot.run(events).await });
    Ok(BotRun { task, stop, server: server_task, dir })
}

async fn sent_records(
    http: &reqwest::Client,
    base: &str,
    account: &str,
) -> anyhow::Result<Vec<Value>> {
    let v: Value =
        http.get(format!("{base}/_sandbox/accounts/{account}/sent")).send().await?.json().await?;
    Ok(v["sent"].as_array().cloned().unwrap_or_default())
}

async fn sent_count(http: &reqwest::Client, base: &str, account: &str) -> anyhow::Result<usize> {
    Ok(sent_records(http, base, account).await?.len())
}

/// Runs the walkthrough.
pub async fn run(_args: DemoArgs, _global: &Global) -> anyhow::Result<ExitCode> {
    step(1, "Start the embedded sandbox (a local emulator of Instagram's APIs)");
    let sandbox = Sandbox::new(SandboxConfig::default());
    let running = sandbox.serve("127.0.0.1:0".parse()?).await.context("starting the sandbox")?;
    let base = running.base_url();
    let seed = sandbox.seed_demo().await.map_err(|e| anyhow!("seeding the sandbox: {e}"))?;
    say(format!(
        "listening on {base}; seeded a personal and a business account with customers and history"
    ));
    let http = reqwest::Client::new();

    let web = client_for("personal", "instagram-web", &base, &seed.personal)?;
    let graph = client_for("business", "instagram-graph", &base, &seed.business)?;
    say(format!(
        "personal account @{} via instagram-web (cookie session); business account @{} via instagram-graph (OAuth token)",
        seed.personal["username"].as_str().unwrap_or("?"),
        seed.business["username"].as_str().unwrap_or("?")
    ));

    step(2, "Inbox of the personal account (private web API)");
    let (inbox, _) = web.conversations().limit(20).await?;
    for c in &inbox.items {
        say(conversation_row(c));
    }
    let (pending, _) = web.conversations().pending().await?;
    say(format!("message requests waiting: {}", pending.items.len()));

    step(3, "Read a thread, newest first, paging with the cursor igdm returns");
    let group = inbox
        .items
        .iter()
        .find(|c| c.kind == ConversationKind::Group)
        .or_else(|| inbox.items.first())
        .ok_or_else(|| anyhow!("the demo inbox is empty"))?;
    let (page, _) = web.messages(group.id.as_str()).limit(4).await?;
    for m in &page.items {
        say(message_row(m));
    }
    if let Some(cursor) = &page.next_cursor {
        let (older, _) = web.messages(group.id.as_str()).limit(4).cursor(cursor.clone()).await?;
        say(format!("-- older page via cursor: {} more message(s)", older.items.len()));
        for m in &older.items {
            say(message_row(m));
        }
    }

    step(4, "Send, then send again with the same idempotency key");
    let key = format!("demo-{}", Timestamp::now().unix_millis());
    let sent =
        web.send(group.id.as_str(), "Sounds good, see you there! 🎉").idempotency_key(&key).await?;
    say(format!(
        "{}: message {}",
        sent.outcome,
        sent.result.get("id").and_then(Value::as_str).unwrap_or("?")
    ));
    let again =
        web.send(group.id.as_str(), "Sounds good, see you there! 🎉").idempotency_key(&key).await?;
    say(format!("{}: same key, same message, nothing sent twice", again.outcome));

    step(5, "React to a friend's message");
    if let Some(theirs) = page.items.iter().find(|m| !m.sender.is_self) {
        web.invoke(
            "react",
            map(json!({"conversation_id": group.id, "message_id": theirs.id, "emoji": "❤️"})),
        )
        .await?;
        say(format!("❤️ on {:?}", theirs.text.as_deref().unwrap_or("[media]")));
    }

    step(6, "A friend writes: the new message arrives in the inbox");
    let personal_id = seed.personal["id"].as_str().unwrap_or_default().to_owned();
    let direct = inbox
        .items
        .iter()
        .find(|c| c.kind == ConversationKind::Direct)
        .ok_or_else(|| anyhow!("no direct conversation in the demo inbox"))?;
    let friend = direct.participants.first().ok_or_else(|| anyhow!("no participant"))?;
    control(
        &http,
        &base,
        &format!("/_sandbox/customers/{}/send", friend.id),
        json!({"to": personal_id, "text": "Are we still on for Friday?"}),
    )
    .await?;
    let (unread, _) = web.conversations().unread().await?;
    for c in &unread.items {
        say(format!("unread: {}", conversation_row(c)));
    }
    let (latest, _) = web.messages(direct.id.as_str()).limit(1).await?;
    for m in &latest.items {
        say(message_row(m));
    }

    step(7, "The business account (official Instagram Messaging API)");
    let (convs, _) = graph.conversations().limit(10).await?;
    for c in &convs.items {
        say(conversation_row(c));
    }
    // The long conversation: Graph details only its 20 most recent messages.
    let mut long = None;
    for c in &convs.items {
        let (msgs, warnings) = graph.messages(c.id.as_str()).limit(20).await?;
        if msgs.has_more {
            say(format!(
                "conversation with {} has more than 20 messages:",
                c.participants.first().and_then(|p| p.username.clone()).unwrap_or_default()
            ));
            for w in &warnings {
                say(format!("note: {w}"));
            }
            long = Some(c.clone());
            break;
        }
    }
    let long = long
        .or_else(|| convs.items.first().cloned())
        .ok_or_else(|| anyhow!("the business inbox is empty"))?;
    let business_id = seed.business["id"].as_str().unwrap_or_default().to_owned();
    let customer = long
        .participants
        .iter()
        .find(|p| Some(p.id.as_str()) != graph.account().user_id.as_deref())
        .ok_or_else(|| anyhow!("no customer in the conversation"))?;
    control(
        &http,
        &base,
        &format!("/_sandbox/customers/{}/send", customer.id),
        json!({"to": business_id, "text": "Hi! Is the sourdough available today?"}),
    )
    .await?;
    let (newest, _) = graph.messages(long.id.as_str()).limit(1).await?;
    for m in &newest.items {
        say(format!("customer wrote: {}", message_row(m)));
    }
    let reply = graph.send(long.id.as_str(), "Yes! Fresh out of the oven at 8am.").await?;
    say(format!("replied inside the 24-hour window: {}", reply.outcome));

    step(8, "The bot answers a customer (igdm serve --bot examples/bot.yaml)");
    let bot_task = start_bot(&http, &base, &graph).await?;
    let before = sent_count(&http, &base, &business_id).await?;
    let shopper = seed
        .customers
        .iter()
        .filter_map(|c| c["id"].as_str())
        .find(|id| long.participants.iter().all(|p| p.id.as_str() != *id))
        .or_else(|| seed.customers.first().and_then(|c| c["id"].as_str()))
        .ok_or_else(|| anyhow!("no customers in the demo seed"))?
        .to_owned();
    control(
        &http,
        &base,
        &format!("/_sandbox/customers/{shopper}/send"),
        json!({"to": business_id, "text": "Hi! How much is shipping to Canada?"}),
    )
    .await?;
    say("a customer writes: \"Hi! How much is shipping to Canada?\"");
    say(
        "  → signed webhook → igdm serve stores it → the bot classifies it and replies through the outbox",
    );
    let mut answered = false;
    for _ in 0..100 {
        let sent = sent_records(&http, &base, &business_id).await?;
        if let Some(reply) = sent.iter().skip(before).find(|r| r["accepted"] == json!(true)) {
            say(format!("bot replied: {}", reply["text"].as_str().unwrap_or("[card]")));
            answered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    if !answered {
        say("the bot did not answer within 10 seconds");
    }
    bot_task.stop().await;

    step(9, "An error class and how igdm handles it: the reply window closes");
    control(&http, &base, "/_sandbox/clock/advance", json!({"seconds": 25 * 3600})).await?;
    say("the sandbox clock moves 25 hours ahead");
    match graph.send(long.id.as_str(), "Are you still there?").await {
        Ok(_) => say("unexpected: the send went through"),
        Err(e) => {
            let api = e.to_api_error();
            say(format!("refused: {} (exit code {})", api.class, igdm::exit_code(&api.class)));
            say(format!("what to do: {}", api.remediation));
        }
    }

    step(10, "Another: Instagram blocks sends from the personal account");
    control(&http, &base, "/_sandbox/faults", json!({"account": personal_id, "mode": "feedback"}))
        .await?;
    say("the sandbox now answers sends with feedback_required, as Instagram does");
    match web.send(group.id.as_str(), "one more thing").await {
        Ok(_) => say("unexpected: the send went through"),
        Err(e) => {
            let api = e.to_api_error();
            say(format!("refused: {} — {}", api.class, api.message));
            say(format!("what to do: {}", api.remediation));
        }
    }
    let (still, _) = web.conversations().limit(5).await?;
    say(format!(
        "reads keep working while writes are paused: {} conversations listed",
        still.items.len()
    ));

    println!(
        "\nDone. Run `igdm sandbox --seed demo` to keep a sandbox running and point igdm at it."
    );
    running.shutdown().await;
    Ok(ExitCode::SUCCESS)
}
