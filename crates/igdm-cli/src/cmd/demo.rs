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
use super::ctx::{connector, session_from};
use super::output::{conversation_row, message_row};
use crate::Global;

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
    let (mut config, credential): (AccountConfig, _) =
        account_from_sandbox(name, connector_id, base, account)?;
    config.pacing = igdm::PacingOverride::default();
    let session = session_from(&credential);
    // The demo paces nothing: the sandbox is local and the walk should be quick.
    Ok(Client::builder(config, connector(connector_id)?, session)
        .pacing(PacingPolicy::none())
        .build()?)
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

    step(8, "An error class and how igdm handles it: the reply window closes");
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

    step(9, "Another: Instagram blocks sends from the personal account");
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
    drop(Arc::clone(&sandbox));
    Ok(ExitCode::SUCCESS)
}
