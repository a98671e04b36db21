//! `igdm serve --bot` and `igdm mcp`, as processes of the built binary,
//! across 120 virtual days on the sandbox: both follow the sandbox's clock
//! (`IGDM_SANDBOX_CLOCK`), refresh the account's 60-day Instagram Login
//! token in place before it runs out, and still answer at the end — the bot
//! replies to a customer, an MCP tool call works — with a refreshed token in
//! the vault.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use igdm_auth::{Credential, CredentialStore as _, TokenCredential};
use igdm_test::sandbox::{control, post_ok};
use rmcp::ServiceExt as _;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::TokioChildProcess;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

const BIN: &str = env!("CARGO_BIN_EXE_igdm");
const SECRET: &str = "runtime-days-secret";
const VERIFY: &str = "runtime-days-verify";
const BOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/bot.yaml");
const DAY: i64 = 86_400;

fn igdm(home: &Path, base: &str) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.env("IGDM_HOME", home)
        .env("IGDM_SANDBOX_CLOCK", format!("{base}/_sandbox/clock"))
        .env("IGDM_APP_SECRET", SECRET)
        .env("IGDM_VERIFY_TOKEN", VERIFY)
        .env_remove("IGDM_ACCOUNT")
        .env_remove("IGDM_VAULT_PASSPHRASE")
        .env_remove("IGDM_MCP_TOKEN")
        .env_remove("IGDM_DATABASE_URL")
        .env_remove("IGDM_LOG_DATABASE_URL")
        .env_remove("IGDM_TOKEN")
        .env_remove("IGDM_LOG")
        .kill_on_drop(true);
    cmd
}

async fn run_ok(home: &Path, base: &str, args: &[&str]) -> Value {
    let out = igdm(home, base).args(args).arg("--json").output().await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "igdm {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{args:?}: {e}: {stdout}"))
}

/// The token the vault holds for `shop` (read as any igdm process would).
async fn stored(home: &Path) -> TokenCredential {
    let key = igdm_auth::VaultKey::IdentityFile(home.join(igdm_auth::Vault::KEY_FILE));
    let vault = igdm_auth::Vault::open(home, key).unwrap();
    match vault.get("shop").await.unwrap() {
        Some(Credential::Token(t)) => t,
        other => panic!("no token for shop: {other:?}"),
    }
}

async fn sandbox_now(base: &str) -> chrono::DateTime<chrono::Utc> {
    let (_, v) = control(base, "GET", "/_sandbox/clock", None).await;
    chrono::DateTime::from_timestamp_micros(v["now_us"].as_i64().unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_bot_and_mcp_keep_answering_across_120_virtual_days() {
    let sandbox = igdm_test::sandbox::start().await;
    let base = sandbox.base_url();
    let home_dir = tempfile::tempdir().unwrap();
    let home = home_dir.path();

    let account =
        post_ok(&base, "/_sandbox/accounts", json!({"kind": "business", "username": "acme_days"}))
            .await;
    let account_id = account["id"].as_str().unwrap().to_owned();
    let minted =
        post_ok(&base, "/_sandbox/tokens", json!({"account_id": account_id, "kind": "long_lived"}))
            .await;
    let token = minted["access_token"].as_str().unwrap().to_owned();

    // `accounts add --token` records whom the token belongs to; its expiry
    // is unknown until the first refresh.
    let added = run_ok(
        home,
        &base,
        &[
            "accounts",
            "add",
            "shop",
            "--connector",
            "instagram-graph",
            "--token",
            &token,
            "--base-url",
            &base,
        ],
    )
    .await;
    assert_eq!(added["user_id"], json!(account_id));
    assert_eq!(added["username"], json!("acme_days"));
    let status = run_ok(home, &base, &["accounts", "status"]).await;
    let row = &status["items"][0];
    assert_eq!(row["user_id"], json!(account_id), "{status}");
    assert_eq!(row["username"], json!("acme_days"), "{status}");
    assert_eq!(row["token_expires_at"], json!("unknown"), "{status}");

    // igdm serve --bot, with the sandbox's webhooks pointed at it.
    let mut serve = igdm(home, &base)
        .args(["--account", "shop", "serve", "--addr", "127.0.0.1:0", "--bot", BOT])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(serve.stderr.take().unwrap()).lines();
    let hook = loop {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("igdm serve starts within 30 s")
            .unwrap()
            .expect("igdm serve ended before listening");
        if let Some(url) = line.split("listening on ").nth(1) {
            break url.trim().to_owned();
        }
    };
    let stderr_tail = tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Ok(Some(l)) = lines.next_line().await {
            seen.push(l);
        }
        seen
    });
    let (s, v) = control(
        &base,
        "POST",
        "/_sandbox/webhooks",
        Some(json!({"callback_url": hook, "verify_token": VERIFY, "app_secret": SECRET, "batch_window_ms": 10})),
    )
    .await;
    assert_eq!(s, 201, "subscription: {v}");

    // igdm mcp over stdio, driven by a real MCP client.
    let mut mcp_cmd = igdm(home, &base);
    mcp_cmd.args(["--account", "shop", "mcp"]);
    let mcp = ().serve(TokioChildProcess::new(mcp_cmd).unwrap()).await.unwrap();

    // 120 days in steps of 5: after each step the processes must have the
    // token out of its refresh window (more than 7 days left) again.
    for step in 1..=24 {
        post_ok(&base, "/_sandbox/clock/advance", json!({"seconds": 5 * DAY})).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let t = stored(home).await;
            let now = sandbox_now(&base).await;
            if t.expires_at.is_some_and(|e| e.0 - now > chrono::Duration::days(7)) {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "day {}: no refreshed token in the vault (expires {:?})",
                step * 5,
                t.expires_at
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let fresh = stored(home).await;
    assert_ne!(fresh.access_token.expose_secret(), token, "the vault holds a refreshed token");
    let status = run_ok(home, &base, &["accounts", "status"]).await;
    let shown = status["items"][0]["token_expires_at"].as_str().unwrap_or_default().to_owned();
    let shown = chrono::DateTime::parse_from_rfc3339(&shown)
        .unwrap_or_else(|e| panic!("token_expires_at is a time after a refresh ({e}): {status}"));
    assert!(shown > sandbox_now(&base).await, "{status}");

    // The original token is long dead at the API; both processes still work.
    assert!(serve.try_wait().unwrap().is_none(), "igdm serve is still running");
    let args = json!({}).as_object().cloned().unwrap();
    let listed = mcp
        .call_tool(CallToolRequestParams::new("list_conversations").with_arguments(args))
        .await
        .unwrap();
    let v = listed.structured_content.clone().unwrap_or(Value::Null);
    assert_ne!(listed.is_error, Some(true), "list_conversations after 120 days: {v}");
    assert_eq!(v["ok"], json!(true), "{v}");

    let customer = post_ok(
        &base,
        "/_sandbox/customers",
        json!({"username": "late.customer", "full_name": "Late Customer"}),
    )
    .await;
    let path = format!("/_sandbox/customers/{}/send", customer["id"].as_str().unwrap());
    post_ok(&base, &path, json!({"to": account_id, "text": "how much is shipping?"})).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let reply = loop {
        let (_, sent) =
            control(&base, "GET", &format!("/_sandbox/accounts/{account_id}/sent"), None).await;
        let replies: Vec<Value> = sent["sent"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["accepted"] == json!(true) && r["recipient"] == customer["igsid"])
            .cloned()
            .collect();
        if let Some(r) = replies.first() {
            break r.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the bot did not answer after 120 days: {sent}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(reply["text"].as_str().unwrap_or("").contains("ship"), "{reply}");

    mcp.cancel().await.unwrap();
    serve.kill().await.unwrap();
    let said = stderr_tail.await.unwrap();
    assert!(!said.iter().any(|l| l.contains("stopped.")), "no account stopped: {said:?}");

    // With nothing running to refresh it, the token runs out: the next
    // command stops with the step that brings the account back.
    post_ok(&base, "/_sandbox/clock/advance", json!({"seconds": 61 * DAY})).await;
    let out =
        igdm(home, &base).args(["--account", "shop", "conversations"]).output().await.unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("has expired") && err.contains("igdm oauth shop"), "{err}");
}
