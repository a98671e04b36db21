//! The `igdm` binary against a running sandbox: accounts, messaging
//! subcommands, JSON output, exit codes, sync, local search and export; the
//! session upkeep (`igdm accounts keepalive`, the one session record that
//! `igdm accounts status` shows).

use assert_cmd::Command;
use igdm_auth::{CookieCredential, Credential, CredentialStore, Vault, VaultKey};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

struct Env {
    _sandbox: igdm_sandbox::RunningSandbox,
    base: String,
    home: tempfile::TempDir,
    seed: igdm_sandbox::DemoSeed,
}

async fn env() -> Env {
    let sb = igdm_sandbox::Sandbox::new(igdm_sandbox::SandboxConfig::default());
    let running = sb.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let seed = sb.seed_demo().await.unwrap();
    Env { base: running.base_url(), _sandbox: running, home: tempfile::tempdir().unwrap(), seed }
}

impl Env {
    fn igdm(&self, args: &[&str]) -> (i32, String, String) {
        self.igdm_with(&[], args)
    }

    /// Runs `igdm` with extra environment variables.
    fn igdm_with(&self, vars: &[(&str, &str)], args: &[&str]) -> (i32, String, String) {
        let mut cmd = Command::cargo_bin("igdm").unwrap();
        cmd.envs(vars.iter().copied());
        cmd.args(args)
            .env("IGDM_HOME", self.home.path())
            .env_remove("IGDM_VAULT_PASSPHRASE")
            .env_remove("IGDM_ACCOUNT")
            .env_remove("IGDM_DATABASE_URL")
            .env_remove("IGDM_TOKEN")
            .timeout(std::time::Duration::from_secs(60));
        // The sandbox runs on this runtime: hand this worker's tasks on
        // while the child runs, or a task it needs may wait behind us.
        let out = tokio::task::block_in_place(|| cmd.output()).unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn json(&self, args: &[&str]) -> (i32, Value) {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let (code, out, err) = self.igdm(&all);
        let v = serde_json::from_str(out.trim())
            .unwrap_or_else(|e| panic!("not one JSON document ({e}): {out}\n{err}"));
        (code, v)
    }

    /// The sandbox's id of the account created with `username`.
    async fn account_id(&self, username: &str) -> String {
        let v: Value = reqwest::get(format!("{}/_sandbox/accounts", self.base))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["username"] == username)
            .and_then(|a| a["id"].as_str())
            .unwrap()
            .to_owned()
    }

    /// Adds a fresh sandbox web account named `name`; returns its sandbox id.
    async fn web_account(&self, name: &str) -> String {
        let (code, out, err) = self.igdm(&["accounts", "add", name, "--sandbox", &self.base]);
        assert_eq!(code, 0, "{out}\n{err}");
        self.account_id(name).await
    }

    /// Adds a fresh sandbox official-API account named `name`; returns its sandbox id.
    async fn graph_account(&self, name: &str) -> String {
        let (code, out, err) = self.igdm(&[
            "accounts",
            "add",
            name,
            "--sandbox",
            &self.base,
            "--connector",
            "instagram-graph",
        ]);
        assert_eq!(code, 0, "{out}\n{err}");
        self.account_id(name).await
    }

    async fn fault(&self, id: &str, mode: &str) {
        self.control("/_sandbox/faults", json!({"account": id, "mode": mode})).await;
    }

    /// Every request the sandbox counted for account `id`.
    async fn requests_of(&self, id: &str) -> u64 {
        let v: Value = reqwest::get(format!("{}/_sandbox/stats", self.base))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["accounts"][id]
            .as_object()
            .map_or(0, |per| per.values().map(|e| e["requests"].as_u64().unwrap_or(0)).sum())
    }

    /// The cookie session stored in the vault for `name`.
    async fn cookies(&self, name: &str) -> CookieCredential {
        let home = self.home.path();
        let vault = Vault::open(home, VaultKey::IdentityFile(home.join(Vault::KEY_FILE))).unwrap();
        let Some(Credential::Cookies(c)) = vault.get(name).await.unwrap() else {
            panic!("no cookie credential for {name}")
        };
        c
    }

    /// The `igdm accounts status` row of `name`.
    fn status_of(&self, name: &str) -> Value {
        let (code, v) = self.json(&["accounts", "status"]);
        assert_eq!(code, 0, "{v}");
        v["items"].as_array().unwrap().iter().find(|r| r["name"] == name).cloned().unwrap()
    }

    async fn control(&self, path: &str, body: Value) -> Value {
        reqwest::Client::new()
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn web_account_end_to_end() {
    let env = env().await;
    let (code, out, err) = env.igdm(&[
        "accounts",
        "add",
        "me",
        "--sandbox",
        &env.base,
        "--connector",
        "instagram-web",
        "--min-write-interval",
        "0",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, list) = env.json(&["accounts", "list"]);
    assert_eq!(code, 0);
    assert_eq!(list["items"][0]["name"], "me");
    let me = env.account_id("me").await;
    // Strangers' first messages land in requests; once the account writes first they are in the inbox.
    let (code, pending) = env.json(&["conversations", "--pending"]);
    assert_eq!(code, 0, "{pending}");
    for c in &env.seed.customers[..2] {
        let (code, v) = env.json(&["send", "--user", c["id"].as_str().unwrap(), "hello there"]);
        assert_eq!(code, 0, "{v}");
        env.control(
            &format!("/_sandbox/customers/{}/send", c["id"].as_str().unwrap()),
            json!({"to": me, "text": format!("hi, it's {}", c["username"].as_str().unwrap())}),
        )
        .await;
    }

    let (code, convs) = env.json(&["conversations", "--limit", "10"]);
    assert_eq!(code, 0);
    assert!(!convs["items"].as_array().unwrap().is_empty(), "{convs}");
    assert!(
        convs.get("next_cursor").is_some()
            && convs.get("has_more").is_some()
            && convs["warnings"].is_array()
    );
    let thread = convs["items"][0]["id"].as_str().unwrap().to_owned();

    let (code, msgs) = env.json(&["messages", &thread, "--limit", "3"]);
    assert_eq!(code, 0);
    assert!(msgs["items"].as_array().unwrap().len() <= 3);

    let (code, sent) =
        env.json(&["send", &thread, "hello from the CLI", "--idempotency-key", "cli-1"]);
    assert_eq!(code, 0, "{sent}");
    assert_eq!(sent["outcome"], "sent");
    let (_, again) =
        env.json(&["send", &thread, "hello from the CLI", "--idempotency-key", "cli-1"]);
    assert_eq!(again["outcome"], "replayed");
    assert_eq!(again["result"], sent["result"]);
    let mid = sent["result"]["id"].as_str().unwrap().to_owned();

    for args in [
        vec!["mark-unread", thread.as_str()],
        vec!["mute", thread.as_str()],
        vec!["unmute", thread.as_str()],
        vec!["typing", thread.as_str()],
        vec!["delete", thread.as_str(), mid.as_str()],
    ] {
        let (code, v) = env.json(&args);
        assert_eq!(code, 0, "{args:?}: {v}");
    }

    // Printing a request sends nothing and shows no secret.
    let (code, out, _) = env.igdm(&["send", &thread, "dry run", "--print-request"]);
    assert_eq!(code, 0);
    assert!(out.contains("broadcast/text") && out.contains("<redacted>"), "{out}");
    assert!(!out.contains(env.seed.personal["cookies"]["sessionid"].as_str().unwrap()));

    // A raw call through the account's auth.
    let (code, raw) = env.json(&["request", "direct_v2/inbox/", "--query", "limit=2"]);
    assert_eq!(code, 0, "{raw}");
    assert_eq!(raw["status"], 200);
    assert_eq!(raw["body"]["status"], "ok");

    // Invalid input: exit 2 and one JSON error document.
    let (code, v) = env.json(&["conversations", "--limit", "100000"]);
    assert_eq!(code, 2, "{v}");
    assert_eq!(v["error"]["class"], "invalid_request");

    // A Graph-only action on the web connector names the backend that can.
    let (code, v) = env.json(&["ice-breakers", "get"]);
    assert_eq!(code, 2, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("instagram-graph"), "{v}");

    // Sync, then search locally with diacritic folding, then export.
    env.control(
        &format!("/_sandbox/customers/{}/send", env.seed.customers[0]["id"].as_str().unwrap()),
        json!({"to": me, "text": "Meet at the café at noon?"}),
    )
    .await;
    let (code, report) = env.json(&["sync", "--full"]);
    assert_eq!(code, 0, "{report}");
    assert!(report["messages"].as_u64().unwrap() >= 4, "{report}");
    let (code, hits) = env.json(&["search", "cafe"]);
    assert_eq!(code, 0);
    assert!(
        hits["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["message"]["text"].as_str().is_some_and(|t| t.contains("café"))),
        "{hits}"
    );
    // Right after a sync, reads are served from the store; --remote asks the API.
    let (code, local) = env.json(&["messages", &thread, "--limit", "2"]);
    assert_eq!(code, 0, "{local}");
    assert!(local["warnings"][0].as_str().unwrap().contains("local store"), "{local}");
    let (_, remote) = env.json(&["messages", &thread, "--limit", "2", "--remote"]);
    assert_eq!(remote["items"], local["items"], "the mirror matches Instagram");
    let (code, unread) = env.json(&["unread"]);
    assert_eq!(code, 0, "{unread}");
    assert!(unread["warnings"][0].as_str().unwrap().contains("local store"));
    let (code, jsonl, _) = env.igdm(&["export", "--format", "jsonl"]);
    assert_eq!(code, 0);
    let lines: Vec<Value> = jsonl.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len() as u64, report["messages"].as_u64().unwrap());
    let (code, csv, _) = env.igdm(&["export", "--format", "csv"]);
    assert_eq!(code, 0);
    assert!(csv.starts_with("conversation_id,message_id,timestamp"));

    // An auth failure: exit 3, with the next step named.
    env.control("/_sandbox/faults", json!({"account": me, "mode": "login_required"})).await;
    let _ = env.json(&["conversations"]);
    let (code, out, err) = env.igdm(&["conversations"]);
    assert_eq!(code, 3, "{out}{err}");
    assert!(err.contains("igdm login me"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn graph_account_policy_errors_map_to_exit_codes() {
    let env = env().await;
    env.graph_account("shop").await;
    let (code, convs) = env.json(&["conversations"]);
    assert_eq!(code, 0, "{convs}");
    let (code, caps) = env.json(&["capabilities"]);
    assert_eq!(code, 0);
    assert_eq!(caps["connector"], "instagram-graph");
    // Every official-API capability calls a documented endpoint.
    let all = caps["capabilities"].as_object().unwrap();
    assert!(all.values().all(|c| c["verified"] == true), "{caps}");
    let (code, actions) = env.json(&["actions", "--search", "ice"]);
    assert_eq!(code, 0);
    assert!(
        actions["items"].as_array().unwrap().iter().all(|a| a["input_schema"]["type"] == "object")
    );

    // A brand-new account never messaged by anyone: the window is closed → 6.
    let (code, v) =
        env.json(&["send", "--user", env.seed.customers[0]["igsid"].as_str().unwrap(), "hi"]);
    assert!(code == 6 || code == 5, "{v}");
    // Text over 1000 bytes is refused before sending, naming the field → 2.
    let long = "é".repeat(501);
    let (code, v) =
        env.json(&["send", "--user", env.seed.customers[0]["igsid"].as_str().unwrap(), &long]);
    assert_eq!(code, 2, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("text"), "{v}");
}

impl Env {
    /// What the sandbox recorded as sent by account `id`.
    async fn sent_by(&self, id: &str) -> Vec<Value> {
        let v: Value = reqwest::get(format!("{}/_sandbox/accounts/{id}/sent", self.base))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["sent"].as_array().cloned().unwrap_or_default()
    }

    /// Runs `args` and asserts that it is refused with exit 2 naming `param`
    /// and `supported_by`, before any request of account `id`.
    async fn refused_before_sending(
        &self,
        id: &str,
        args: &[&str],
        param: &str,
        supported_by: &str,
    ) {
        let (requests, sent) = (self.requests_of(id).await, self.sent_by(id).await);
        let (code, v) = self.json(args);
        assert_eq!(code, 2, "{args:?}: {v}");
        assert_eq!(v["error"]["class"], "invalid_request", "{v}");
        let message = v["error"]["message"].as_str().unwrap();
        assert!(message.contains(param) && message.contains(supported_by), "{message}");
        assert_eq!(self.requests_of(id).await, requests, "{args:?} made a request");
        assert_eq!(self.sent_by(id).await, sent, "{args:?} sent something");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_parameter_the_connector_cannot_honour_fails_before_sending() {
    let env = env().await;
    // A private-API account with a thread.
    let me = env.web_account("me").await;
    let customer = env.seed.customers[0]["id"].as_str().unwrap();
    let (code, v) = env.json(&["send", "--user", customer, "hello"]);
    assert_eq!(code, 0, "{v}");
    let (_, convs) = env.json(&["conversations"]);
    let thread = convs["items"][0]["id"].as_str().unwrap().to_owned();
    env.refused_before_sending(
        &me,
        &["send", &thread, "hi", "--quick-reply", "A=B"],
        "quick_replies",
        "instagram-graph",
    )
    .await;
    env.refused_before_sending(
        &me,
        &["send", &thread, "hi", "--human-agent"],
        "human_agent",
        "instagram-graph",
    )
    .await;

    // An official-API account with a conversation a customer opened: the
    // official API cannot quote-reply.
    let shop = env.graph_account("shop").await;
    env.control(
        &format!("/_sandbox/customers/{customer}/send"),
        json!({"to": shop, "text": "is the shop open?"}),
    )
    .await;
    let (code, convs) = env.json(&["--account", "shop", "conversations"]);
    assert_eq!(code, 0, "{convs}");
    let conv = convs["items"][0]["id"].as_str().unwrap().to_owned();
    let (_, msgs) = env.json(&["--account", "shop", "messages", &conv]);
    let mid = msgs["items"][0]["id"].as_str().unwrap().to_owned();
    env.refused_before_sending(
        &shop,
        &["--account", "shop", "send", &conv, "yes", "--reply-to", &mid],
        "reply_to",
        "instagram-web",
    )
    .await;
    // Without it the same send goes through.
    let (code, v) = env.json(&["--account", "shop", "send", &conv, "yes"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(env.sent_by(&shop).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn accounts_add_as_attaches_to_the_demo_accounts() {
    let env = env().await;
    let (code, added) =
        env.json(&["accounts", "add", "me", "--sandbox", &env.base, "--as", "maya.lens"]);
    assert_eq!(code, 0, "{added}");
    assert_eq!(added["connector"], "instagram-web");
    assert_eq!(added["username"], "maya.lens");
    assert_eq!(added["user_id"], env.seed.personal["pk"]);
    let (code, convs) = env.json(&["--account", "me", "conversations", "--limit", "20"]);
    assert_eq!(code, 0, "{convs}");
    let ids: Vec<&str> =
        convs["items"].as_array().unwrap().iter().filter_map(|c| c["id"].as_str()).collect();
    assert!(ids.contains(&env.seed.group_thread_id.as_str()), "the demo inbox: {convs}");

    let (code, added) =
        env.json(&["accounts", "add", "shop", "--sandbox", &env.base, "--as", "sunrise_bakery"]);
    assert_eq!(code, 0, "{added}");
    assert_eq!(added["connector"], "instagram-graph");
    let (code, convs) = env.json(&["--account", "shop", "conversations"]);
    assert_eq!(code, 0, "{convs}");
    assert!(!convs["items"].as_array().unwrap().is_empty(), "the demo business inbox: {convs}");

    // No new account was created on the sandbox.
    let (_, list) = igdm_test::sandbox::control(&env.base, "GET", "/_sandbox/accounts", None).await;
    let usernames: Vec<&str> = list["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["username"].as_str())
        .collect();
    assert!(!usernames.contains(&"me") && !usernames.contains(&"shop"), "{usernames:?}");

    let (code, out, err) =
        env.igdm(&["accounts", "add", "x", "--sandbox", &env.base, "--as", "nobody.here"]);
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("nobody.here") && err.contains("maya.lens"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn accounts_add_token_records_whom_the_token_belongs_to() {
    let env = env().await;
    let business = &env.seed.business;
    for (name, connector, token) in [
        ("shop", "instagram-graph", business["access_token"].as_str().unwrap()),
        ("page", "instagram-page", business["page_token"].as_str().unwrap()),
    ] {
        let (code, added) = env.json(&[
            "accounts",
            "add",
            name,
            "--connector",
            connector,
            "--base-url",
            &env.base,
            "--token",
            token,
        ]);
        assert_eq!(code, 0, "{added}");
        assert_eq!(added["user_id"], business["id"], "{connector}: {added}");
        assert_eq!(added["username"], "sunrise_bakery", "{connector}: {added}");
        let row = env.status_of(name);
        assert_eq!(row["user_id"], business["id"], "{row}");
        assert_eq!(row["username"], "sunrise_bakery", "{row}");
        // /me does not say when an Instagram Login token expires; a Page
        // token shows none (Page tokens from long-lived user tokens do not).
        let expiry = if connector == "instagram-graph" { json!("unknown") } else { Value::Null };
        assert_eq!(row["token_expires_at"], expiry, "{row}");
        // What was recorded is what the connector needs: `auth.page_id` for
        // Page URLs, `auth.user_id` to tell the account's own messages.
        let (code, convs) = env.json(&["--account", name, "conversations"]);
        assert_eq!(code, 0, "{connector}: {convs}");
        assert!(!convs["items"].as_array().unwrap().is_empty(), "{connector}: {convs}");
        let conv = convs["items"][0]["id"].as_str().unwrap();
        let (code, msgs) = env.json(&["--account", name, "messages", conv, "--remote"]);
        assert_eq!(code, 0, "{connector}: {msgs}");
        let items = msgs["items"].as_array().unwrap();
        assert!(
            items.iter().any(|m| m["sender"]["is_self"] == true)
                && items.iter().any(|m| m["sender"]["is_self"] == false),
            "{connector}: own and customer messages told apart: {msgs}"
        );
    }
    let home = env.home.path();
    let vault = Vault::open(home, VaultKey::IdentityFile(home.join(Vault::KEY_FILE))).unwrap();
    let Some(Credential::Token(t)) = vault.get("page").await.unwrap() else {
        panic!("no token stored")
    };
    assert_eq!(t.page_id.as_ref(), business["page_id"].as_str().map(str::to_owned).as_ref());

    // A token the API refuses stores nothing.
    let (code, out, err) = env.igdm(&[
        "accounts",
        "add",
        "bad",
        "--connector",
        "instagram-graph",
        "--base-url",
        &env.base,
        "--token",
        "IGAAnot-a-token",
    ]);
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("refused"), "{err}");
    let (_, list) = env.json(&["accounts", "list"]);
    assert!(list["items"].as_array().unwrap().iter().all(|a| a["name"] != "bad"), "{list}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepalive_rotates_into_the_vault_skips_after_reads_and_stops_at_logout() {
    let env = env().await;
    let id = env.web_account("keep.me").await;
    let before = env.cookies("keep.me").await;
    let old_rur = before.get("rur").unwrap().expose_secret().to_owned();
    assert_eq!(before.device.www_claim, "0");

    // The sandbox rotates `rur` every third request of an account.
    for _ in 0..3 {
        let (code, v) = env.json(&["accounts", "keepalive", "keep.me", "--once"]);
        assert_eq!(code, 0, "{v}");
        assert_eq!(v["items"][0]["outcome"], "alive", "{v}");
    }
    let after = env.cookies("keep.me").await;
    assert!(
        after.device.www_claim.starts_with("hmac."),
        "claim stored: {}",
        after.device.www_claim
    );
    assert_ne!(
        after.get("rur").unwrap().expose_secret(),
        old_rur,
        "the rotated rur is in the vault"
    );
    let st = env.status_of("keep.me");
    assert_eq!(st["health"]["state"], "healthy", "{st}");
    assert!(st["last_keep_alive_at"].is_string(), "{st}");
    assert!(st["last_read_at"].is_null(), "a keep-alive is not a real read: {st}");

    // A real read by the client proves the session: the keep-alive skips.
    let (code, out, err) = env.igdm(&["--account", "keep.me", "conversations"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let sent = env.requests_of(&id).await;
    let (code, v) = env.json(&["accounts", "keepalive", "keep.me", "--once"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["items"][0]["outcome"], "skipped_recent_read", "{v}");
    assert_eq!(env.requests_of(&id).await, sent, "nothing sent");

    // Logged out: the scheduled loop (1 s, jittered) stops at the first
    // signal with the exact next step, and never logs in by itself.
    env.fault(&id, "login_required").await;
    let (code, out, err) = env.igdm(&["accounts", "keepalive", "keep.me", "--interval", "1s"]);
    assert_eq!(code, 3, "{out}\n{err}");
    assert!(out.contains("run `igdm login keep.me`"), "{out}\n{err}");
    let st = env.status_of("keep.me");
    assert_eq!(st["health"]["state"], "logged_out", "{st}");
    assert!(st["next_step"].as_str().unwrap().contains("igdm login keep.me"), "{st}");

    // Marked: no further call reaches Instagram.
    let sent = env.requests_of(&id).await;
    let (code, v) = env.json(&["accounts", "keepalive", "--once"]);
    assert_eq!(code, 3, "{v}");
    assert_eq!(v["items"][0]["outcome"], "stopped", "{v}");
    assert!(v["items"][0]["next_step"].as_str().unwrap().contains("igdm login keep.me"));
    assert_eq!(env.requests_of(&id).await, sent, "nothing sent after the logout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_health_change_made_by_the_client_is_what_status_shows() {
    let env = env().await;
    let id = env.web_account("shown").await;
    let (code, out, err) = env.igdm(&["--account", "shown", "conversations"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let st = env.status_of("shown");
    assert_eq!(st["health"]["state"], "healthy", "{st}");
    assert!(st["last_success_at"].is_string() && st["last_read_at"].is_string(), "{st}");

    // The client meets a challenge on a read: the status shows it, with the
    // challenge URL and what to run.
    env.fault(&id, "challenge").await;
    let (code, out, err) = env.igdm(&["--account", "shown", "conversations"]);
    assert_eq!(code, 3, "{out}\n{err}");
    let st = env.status_of("shown");
    assert_eq!(st["health"]["state"], "challenge", "{st}");
    assert!(st["health"]["url"].as_str().unwrap().contains("/challenge/"), "{st}");
    assert!(st["last_error"].as_str().unwrap().contains("challenge_required"), "{st}");
    assert!(st["next_step"].as_str().unwrap().contains("igdm login shown"), "{st}");
    let (code, text, _) = env.igdm(&["accounts", "status"]);
    assert_eq!(code, 0);
    assert!(text.contains("challenge") && text.contains("igdm login shown"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_left_unknown_prints_its_ledger_state_and_exits_7() {
    let env = env().await;
    let (code, added) =
        env.json(&["accounts", "add", "shop", "--sandbox", &env.base, "--as", "sunrise_bakery"]);
    assert_eq!(code, 0, "{added}");
    let alex = env.seed.customers.iter().find(|c| c["username"] == "alex_rivera").unwrap().clone();
    let business = env.seed.business.clone();
    env.control(
        &format!("/_sandbox/customers/{}/send", alex["pk"].as_str().unwrap()),
        json!({"to": business["id"], "text": "Still open?"}),
    )
    .await;
    let (code, convs) = env.json(&["--account", "shop", "conversations"]);
    assert_eq!(code, 0, "{convs}");
    let conv = convs["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["participants"].as_array().unwrap().iter().any(|p| p["id"] == alex["igsid"]))
        .and_then(|c| c["id"].as_str())
        .expect("the conversation with alex")
        .to_owned();

    // An earlier `igdm send … --idempotency-key k1` lost its answer: the
    // ledger (the store's outbox in $IGDM_HOME) holds it as unknown.
    let url = format!("sqlite://{}?mode=rwc", env.home.path().join("igdm.db").display());
    let store = igdm_store::Store::open(&url).await.unwrap();
    store
        .outbox_begin(&igdm_store::NewOutbox {
            idempotency_key: "k1".into(),
            account_id: "shop".into(),
            conversation_id: Some(conv.clone()),
            recipient_id: None,
            payload: json!({"action": "send", "params": {"conversation_id": conv, "text": "ok"}}),
        })
        .await
        .unwrap();
    store.outbox_mark("k1", igdm_store::OutboxState::Sending, None, None).await.unwrap();
    store
        .outbox_mark("k1", igdm_store::OutboxState::Unknown, None, Some("timed out"))
        .await
        .unwrap();
    store.close().await;
    // Meanwhile the same text went out twice from the Instagram app.
    let mut elsewhere = Vec::new();
    for _ in 0..2 {
        let r: Value = reqwest::Client::new()
            .post(format!("{}/v21.0/me/messages", env.base))
            .bearer_auth(business["access_token"].as_str().unwrap())
            .json(&json!({"recipient": {"id": alex["igsid"]}, "message": {"text": "ok"}}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        elsewhere.push(r["message_id"].as_str().unwrap().to_owned());
    }
    let business_id = business["id"].as_str().unwrap();
    let sent_before = env.sent_by(business_id).await.len();

    let (code, v) =
        env.json(&["--account", "shop", "send", &conv, "ok", "--idempotency-key", "k1"]);
    assert_eq!(code, 7, "{v}");
    assert_eq!(v["idempotency_key"], "k1");
    assert_eq!(v["outcome"], "unknown");
    let mut candidates: Vec<String> = v["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    candidates.sort();
    elsewhere.sort();
    assert_eq!(candidates, elsewhere, "both messages are named, neither is taken for the send");
    assert_eq!(v["error"]["retryable"], false, "{v}");
    assert_eq!(env.sent_by(business_id).await.len(), sent_before, "nothing was resent");

    let (code, out, err) =
        env.igdm(&["--account", "shop", "send", &conv, "ok", "--idempotency-key", "k1"]);
    assert_eq!(code, 7, "{out}\n{err}");
    assert!(out.is_empty() && err.contains("unknown (key k1): "), "{err}");
    assert_eq!(env.sent_by(business_id).await.len(), sent_before, "nothing was resent");
}

#[tokio::test(flavor = "multi_thread")]
async fn send_photo_from_a_file_with_a_text() {
    use sha2::Digest as _;
    let env = env().await;
    env.web_account("snap").await;
    let customer = env.seed.customers[0]["id"].as_str().unwrap();
    let (code, v) = env.json(&["send", "--user", customer, "hello"]);
    assert_eq!(code, 0, "{v}");
    let (_, convs) = env.json(&["conversations", "--limit", "5"]);
    let thread = convs["items"][0]["id"].as_str().unwrap().to_owned();

    let picture = image::RgbImage::from_fn(640, 480, |x, y| {
        image::Rgb([(x * 5 + y) as u8, (x ^ (y * 3)) as u8, ((x * y) >> 4) as u8])
    });
    let mut bytes = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 90)
        .encode_image(&picture)
        .unwrap();
    let file = env.home.path().join("beach.jpg");
    std::fs::write(&file, &bytes).unwrap();

    let (code, out) =
        env.json(&["send", &thread, "--photo", file.to_str().unwrap(), "--text", "the beach"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out["result"]["content_type"], "image");
    assert_eq!(out["text"]["text"], "the beach");
    assert_eq!(out["bytes"], bytes.len());

    let (_, msgs) = env.json(&["messages", &thread, "--limit", "2"]);
    let photo = &msgs["items"][1];
    assert_eq!(photo["content_type"], "image", "{msgs}");
    let url = photo["attachments"][0]["url"].as_str().unwrap();
    let served = reqwest::get(url).await.unwrap().bytes().await.unwrap();
    assert_eq!(sha2::Sha256::digest(&served), sha2::Sha256::digest(&bytes));

    // A file of the wrong type fails before anything is sent: exit 2.
    let png = env.home.path().join("pic.png");
    std::fs::write(&png, b"\x89PNG\r\n\x1a\n0000").unwrap();
    let (code, err) = env.json(&["send", &thread, "--photo", png.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
}

/// `send --file` uploads a PDF on a Page-token account (Meta's attachment
/// upload, then the attachment id), and is refused before any request on a
/// personal account, whose API carries no files.
#[tokio::test(flavor = "multi_thread")]
async fn send_file_on_a_page_account_and_refused_on_a_personal_one() {
    use sha2::Digest as _;
    let env = env().await;
    let business = &env.seed.business;
    let (code, added) = env.json(&[
        "accounts",
        "add",
        "page",
        "--connector",
        "instagram-page",
        "--base-url",
        &env.base,
        "--token",
        business["page_token"].as_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{added}");
    let alex = env.seed.customers.iter().find(|c| c["username"] == "alex_rivera").unwrap();
    env.control(
        &format!("/_sandbox/customers/{}/send", alex["pk"].as_str().unwrap()),
        json!({"to": business["id"], "text": "can I see the menu?"}),
    )
    .await;
    let (code, convs) = env.json(&["--account", "page", "conversations", "--limit", "1"]);
    assert_eq!(code, 0, "{convs}");
    let conv = convs["items"][0]["id"].as_str().unwrap().to_owned();

    let mut pdf = b"%PDF-1.7\n".to_vec();
    pdf.extend((0..40_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8));
    pdf.extend_from_slice(b"\n%%EOF\n");
    let file = env.home.path().join("menu.pdf");
    std::fs::write(&file, &pdf).unwrap();
    let (code, out) = env.json(&[
        "--account",
        "page",
        "send",
        &conv,
        "--file",
        file.to_str().unwrap(),
        "--text",
        "the menu",
    ]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out["result"]["content_type"], "file", "{out}");
    assert_eq!(out["text"]["text"], "the menu", "{out}");
    let (_, msgs) = env.json(&["--account", "page", "messages", &conv, "--remote", "--limit", "3"]);
    let sent = msgs["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["content_type"] == "file")
        .unwrap_or_else(|| panic!("no file message: {msgs}"));
    let url = sent["attachments"][0]["url"].as_str().unwrap();
    let served = reqwest::get(url).await.unwrap().bytes().await.unwrap();
    assert_eq!(sha2::Sha256::digest(&served), sha2::Sha256::digest(&pdf));

    // A personal account: refused, nothing sent.
    let me = env.web_account("snap").await;
    let customer = env.seed.customers[0]["id"].as_str().unwrap();
    let (code, v) = env.json(&["--account", "snap", "send", "--user", customer, "hello"]);
    assert_eq!(code, 0, "{v}");
    let (_, convs) = env.json(&["--account", "snap", "conversations", "--limit", "5"]);
    let thread = convs["items"][0]["id"].as_str().unwrap().to_owned();
    let before = env.requests_of(&me).await;
    let (code, v) =
        env.json(&["--account", "snap", "send", &thread, "--file", file.to_str().unwrap()]);
    assert_eq!(code, 2, "{v}");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(message.contains("instagram-web") && message.contains("not files"), "{v}");
    assert_eq!(env.requests_of(&me).await, before, "nothing was sent");
}

/// An Instagram Login account has no upload: with `igdm serve --public-url`
/// running, `send --photo FILE` offers the file under an unguessable path of
/// that server and sends its URL; the server serves the bytes until the
/// offer expires, then answers 404. An agent's `send_media` with a local
/// path is offered the same way.
#[tokio::test(flavor = "multi_thread")]
async fn public_url_serves_a_local_file_for_an_instagram_login_send() {
    use sha2::Digest as _;
    use std::io::BufRead as _;
    let env = env().await;
    let shop = env.graph_account("shop").await;
    let alex = env.seed.customers.iter().find(|c| c["username"] == "alex_rivera").unwrap();
    env.control(
        &format!("/_sandbox/customers/{}/send", alex["pk"].as_str().unwrap()),
        json!({"to": shop, "text": "a picture please"}),
    )
    .await;
    let (code, convs) = env.json(&["--account", "shop", "conversations", "--limit", "1"]);
    assert_eq!(code, 0, "{convs}");
    let conv = convs["items"][0]["id"].as_str().unwrap().to_owned();
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90)
        .encode_image(&image::RgbImage::from_fn(200, 100, |x, y| {
            image::Rgb([(x * 3) as u8, (y * 5) as u8, (x ^ y) as u8])
        }))
        .unwrap();
    let file = env.home.path().join("cake.jpg");
    std::fs::write(&file, &jpeg).unwrap();

    // Without a server: refused, naming it.
    let (code, v) =
        env.json(&["--account", "shop", "send", &conv, "--photo", file.to_str().unwrap()]);
    assert_eq!(code, 2, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("igdm serve --public-url"), "{v}");

    // A free port for the server, known before it starts (the URL it announces).
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let public = format!("http://127.0.0.1:{port}");
    let db = format!("sqlite://{}?mode=rwc", env.home.path().join("serve.db").display());
    let mut serve = std::process::Command::new(env!("CARGO_BIN_EXE_igdm"))
        .args(["serve", "--addr", &format!("127.0.0.1:{port}"), "--database", &db])
        .args(["--public-url", &public])
        .env("IGDM_APP_SECRET", "public-url-test")
        .env("IGDM_VERIFY_TOKEN", "t")
        .env("IGDM_HOME", env.home.path())
        .env_remove("IGDM_DATABASE_URL")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = serve.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("offering files at") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(std::time::Duration::from_secs(60)).expect("igdm serve did not start");

    let (code, out, err) = env.igdm_with(
        &[("IGDM_PUBLIC_TTL_SECS", "3")],
        &["--json", "--account", "shop", "send", &conv, "--photo", file.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    let out: Value = serde_json::from_str(out.trim()).unwrap();
    let url = out["media_id"].as_str().unwrap().to_owned();
    let name = url.strip_prefix(&format!("{public}/public/")).unwrap_or_else(|| panic!("{out}"));
    assert_eq!(name.len(), 64, "an unguessable name: {url}");
    // The message was sent with that URL.
    let (_, msgs) = env.json(&["--account", "shop", "messages", &conv, "--remote", "--limit", "2"]);
    assert!(msgs.to_string().contains(&url), "{msgs}");
    let r = reqwest::get(&url).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    let served = r.bytes().await.unwrap();
    assert_eq!(sha2::Sha256::digest(&served), sha2::Sha256::digest(&jpeg));
    // Another name: nothing.
    let other = format!("{public}/public/{}", "0".repeat(64));
    assert_eq!(reqwest::get(&other).await.unwrap().status().as_u16(), 404);
    // After the offer's lifetime: gone, and the copy removed.
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    assert_eq!(reqwest::get(&url).await.unwrap().status().as_u16(), 404);
    assert!(!env.home.path().join("public").join(name).exists());

    // An agent's `send_media` with a local path goes the same way.
    let outbox = env.home.path().join("outbox");
    std::fs::create_dir(&outbox).unwrap();
    std::fs::write(outbox.join("cake.jpg"), &jpeg).unwrap();
    let mut mcp = tokio::process::Command::new(env!("CARGO_BIN_EXE_igdm"));
    mcp.args(["--account", "shop", "mcp", "--media-from", outbox.to_str().unwrap()])
        .env("IGDM_HOME", env.home.path())
        .env_remove("IGDM_DATABASE_URL")
        .env_remove("IGDM_MCP_TOKEN")
        .env_remove("IGDM_LOG");
    let agent = rmcp::ServiceExt::serve((), rmcp::transport::TokioChildProcess::new(mcp).unwrap())
        .await
        .unwrap();
    let args = json!({"conversation_id": conv, "kind": "photo",
                      "path": outbox.join("cake.jpg").to_str().unwrap()});
    let r = agent
        .call_tool(
            rmcp::model::CallToolRequestParams::new("send_media")
                .with_arguments(args.as_object().cloned().unwrap()),
        )
        .await
        .unwrap();
    let v = r.structured_content.clone().unwrap_or(Value::Null);
    assert_ne!(r.is_error, Some(true), "{v}");
    assert_eq!(v["ok"], json!(true), "{v}");
    let url = v["data"]["media_id"].as_str().unwrap_or_else(|| panic!("{v}")).to_owned();
    assert!(url.starts_with(&format!("{public}/public/")), "{v}");
    let r = reqwest::get(&url).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(sha2::Sha256::digest(r.bytes().await.unwrap()), sha2::Sha256::digest(&jpeg));
    let (_, msgs) = env.json(&["--account", "shop", "messages", &conv, "--remote", "--limit", "2"]);
    assert!(msgs.to_string().contains(&url), "{msgs}");
    agent.cancel().await.unwrap();

    serve.kill().unwrap();
    let _ = serve.wait();
}

/// `IGDM_RECORD` writes what real accounts exchange, without a secret or an
/// id of the account in it, and `igdm doctor --replay` maps it offline; a
/// recording whose shape the connector no longer reads is named.
#[tokio::test(flavor = "multi_thread")]
async fn recorded_exchanges_hold_no_secret_and_replay_offline() {
    let env = env().await;
    let me = env.web_account("recording.owner").await;
    let cookies = env.cookies("recording.owner").await;
    let customer = env.seed.customers[0]["id"].as_str().unwrap().to_owned();
    let customer_name = env.seed.customers[0]["username"].as_str().unwrap().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("recordings");
    let rec_arg = rec.to_str().unwrap();
    let recording = [("IGDM_RECORD", rec_arg)];

    let (code, out, err) = env.igdm_with(&recording, &["send", "--user", &customer, "hello"]);
    assert_eq!(code, 0, "{out}\n{err}");
    env.control(
        &format!("/_sandbox/customers/{customer}/send"),
        json!({"to": me, "text": "a recorded answer"}),
    )
    .await;
    let (code, out, err) = env.igdm_with(&recording, &["--json", "conversations"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let convs: Value = serde_json::from_str(out.trim()).unwrap();
    let thread = convs["items"][0]["id"].as_str().unwrap().to_owned();
    let (code, out, err) = env.igdm_with(&recording, &["messages", &thread, "--remote"]);
    assert_eq!(code, 0, "{out}\n{err}");
    // One raw call recorded by its flag alone.
    let (code, out, err) =
        env.igdm(&["request", "direct_v2/inbox/", "--query", "limit=2", "--record", rec_arg]);
    assert_eq!(code, 0, "{out}\n{err}");

    let files: Vec<std::path::PathBuf> = std::fs::read_dir(&rec)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    assert!(files.len() >= 4, "one file per exchange: {files:?}");
    assert!(
        files.iter().any(|f| f.to_string_lossy().ends_with("-request.json")),
        "the raw call is recorded: {files:?}"
    );
    let mut secrets: Vec<String> = ["sessionid", "csrftoken", "ds_user_id"]
        .iter()
        .filter_map(|n| cookies.get(n).map(|v| v.expose_secret().to_owned()))
        .collect();
    assert_eq!(secrets.len(), 3, "the session holds the cookies this test looks for");
    secrets.extend([me, thread, customer, customer_name]);
    let mut inbox_file = None;
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for s in &secrets {
            assert!(!text.contains(s.as_str()), "{s:?} left in {}:\n{text}", f.display());
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(f).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{}", f.display());
        }
        let v: Value = serde_json::from_str(&text).unwrap();
        if v["action"] == "list_conversations" {
            inbox_file = Some((f.clone(), v));
        }
    }
    assert!(
        std::fs::read_to_string(&files[0]).unwrap().contains("instagram-web"),
        "a recording names its connector"
    );

    let (code, out, err) = env.igdm(&["--json", "doctor", "--replay", rec_arg]);
    assert_eq!(code, 0, "{out}\n{err}");
    let report: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(report["failed"], 0, "{report}");
    let items = report["items"].as_array().unwrap();
    assert_eq!(items.len(), files.len());
    let inbox = items.iter().find(|i| i["action"] == "list_conversations").unwrap();
    assert!(inbox["items"].as_u64().unwrap() >= 1, "the inbox decodes into conversations: {inbox}");

    // Instagram renames a key the mapping reads: replay names the file.
    let (file, mut v) = inbox_file.expect("the inbox read was recorded");
    for t in v["response"]["body"]["inbox"]["threads"].as_array_mut().unwrap() {
        let o = t.as_object_mut().unwrap();
        let id = o.remove("thread_id").unwrap();
        o.insert("thread_key".into(), id);
    }
    std::fs::write(&file, serde_json::to_vec(&v).unwrap()).unwrap();
    let (code, out, err) = env.igdm(&["doctor", "--replay", rec_arg]);
    assert_eq!(code, 1, "{out}\n{err}");
    let name = file.file_name().unwrap().to_str().unwrap();
    let failing: Vec<&str> = out.lines().filter(|l| l.starts_with("FAIL")).collect();
    assert_eq!(failing.len(), 1, "{out}");
    assert!(failing[0].contains(name), "{out}");
    assert!(out.contains("1 failed"), "{out}");
}

/// `igdm run` reaches any action by name: lists as list documents, message
/// sends through the send ledger, and parameters the action does not take
/// refused before any request.
#[tokio::test(flavor = "multi_thread")]
async fn run_reaches_any_action_through_the_client() {
    let env = env().await;
    let me = env.web_account("runner").await;
    let customer = env.seed.customers[0]["id"].as_str().unwrap().to_owned();
    let (code, v) = env.json(&["send", "--user", &customer, "hello"]);
    assert_eq!(code, 0, "{v}");
    env.control(
        &format!("/_sandbox/customers/{customer}/send"),
        json!({"to": me, "text": "an answer"}),
    )
    .await;

    let (code, list) = env.json(&["run", "list_conversations", "--param", "limit=5"]);
    assert_eq!(code, 0, "{list}");
    assert!(list["has_more"].is_boolean() && list["warnings"].is_array(), "{list}");
    let thread = list["items"][0]["id"].as_str().unwrap().to_owned();

    let input = json!({"conversation_id": thread, "text": "sent by name"}).to_string();
    let (code, sent) =
        env.json(&["run", "send", "--input", &input, "--idempotency-key", "run-key-1"]);
    assert_eq!(code, 0, "{sent}");
    assert_eq!(sent["outcome"], "sent", "{sent}");
    let (code, again) =
        env.json(&["run", "send", "--input", &input, "--idempotency-key", "run-key-1"]);
    assert_eq!(code, 0, "{again}");
    assert_eq!(again["outcome"], "replayed", "the ledger holds the key: {again}");
    let (code, msgs) = env.json(&["messages", &thread, "--remote"]);
    assert_eq!(code, 0, "{msgs}");
    let copies =
        msgs["items"].as_array().unwrap().iter().filter(|m| m["text"] == "sent by name").count();
    assert_eq!(copies, 1, "{msgs}");

    // A write that sends no message: its mapped object.
    let (code, muted) = env.json(&["run", "mute", "-p", &format!("conversation_id={thread}")]);
    assert_eq!(code, 0, "{muted}");

    // Refused before any request: an undeclared parameter, a key where no
    // message is sent, an unknown action, input that is not an object.
    let before = env.requests_of(&me).await;
    let conv = format!("conversation_id={thread}");
    for args in [
        vec!["run", "send", "-p", conv.as_str(), "-p", "text=x", "-p", "quick_replies=[1]"],
        vec!["run", "mute", "-p", conv.as_str(), "--idempotency-key", "k"],
        vec!["run", "no_such_action"],
        vec!["run", "send", "--input", "[1, 2]"],
    ] {
        let (code, v) = env.json(&args);
        assert_eq!(code, 2, "{args:?}: {v}");
        assert_eq!(v["error"]["class"], "invalid_request", "{args:?}: {v}");
    }
    assert_eq!(env.requests_of(&me).await, before, "nothing was sent");
}

/// A connector file a user brings (seed 001's, verbatim) backs an account:
/// installed into the home by its id, then read and sent through like an
/// embedded connector.
#[tokio::test(flavor = "multi_thread")]
async fn a_connector_file_of_ones_own_backs_an_account() {
    let env = env().await;
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/../igdm-spec/tests/fixtures/seed001.md");
    let (code, out, err) = env.igdm(&[
        "--json",
        "accounts",
        "add",
        "seed",
        "--connector-file",
        file,
        "--sandbox",
        &env.base,
        "--as",
        "maya.lens",
        "--min-write-interval",
        "0",
    ]);
    assert_eq!(code, 0, "{out}\n{err}");
    let added: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(added["connector"], "instagram", "{added}");
    let installed = env.home.path().join("connectors/instagram.md");
    assert_eq!(
        std::fs::read_to_string(&installed).unwrap(),
        std::fs::read_to_string(file).unwrap(),
        "installed verbatim"
    );

    let (code, convs) = env.json(&["--account", "seed", "conversations"]);
    assert_eq!(code, 0, "{convs}");
    let thread = convs["items"][0]["id"].as_str().unwrap().to_owned();
    let (code, sent) = env.json(&["--account", "seed", "send", &thread, "through my own file"]);
    assert_eq!(code, 0, "{sent}");
    assert_eq!(sent["outcome"], "sent", "{sent}");
    let (code, msgs) = env.json(&["--account", "seed", "messages", &thread, "--remote"]);
    assert_eq!(code, 0, "{msgs}");
    assert!(
        msgs["items"].as_array().unwrap().iter().any(|m| m["text"] == "through my own file"),
        "{msgs}"
    );
    let (code, caps) = env.json(&["--account", "seed", "actions"]);
    assert_eq!(code, 0, "{caps}");
    assert_eq!(caps["items"].as_array().unwrap().len(), 18, "the file's actions: {caps}");
    // Recordings of such an account replay through the installed file.
    let rec = env.home.path().join("recordings");
    let rec = rec.to_str().unwrap();
    let (code, out, err) =
        env.igdm_with(&[("IGDM_RECORD", rec)], &["--account", "seed", "conversations"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let (code, report) = env.json(&["doctor", "--replay", rec]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["failed"], 0, "{report}");
    assert!(report["items"].to_string().contains("\"connector\":\"instagram\""), "{report}");

    // Another file under the same id, an embedded connector's id, a file
    // that does not load: refused, nothing added.
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(file).unwrap();
    let other = dir.path().join("other.md");
    std::fs::write(&other, text.replacen("name: Instagram", "name: Another", 1)).unwrap();
    let builtin = dir.path().join("builtin.md");
    std::fs::write(&builtin, text.replacen("id: instagram", "id: instagram-web", 1)).unwrap();
    let broken = dir.path().join("broken.md");
    std::fs::write(&broken, text.replacen("auth:", "auth: [", 1)).unwrap();
    for (path, says) in [(&other, "another file"), (&builtin, "embedded"), (&broken, "broken.md")] {
        let (code, out, err) = env.igdm(&[
            "accounts",
            "add",
            "again",
            "--connector-file",
            path.to_str().unwrap(),
            "--sandbox",
            &env.base,
            "--as",
            "maya.lens",
        ]);
        assert_ne!(code, 0, "{out}\n{err}");
        assert!(err.contains(says), "{says}: {err}");
    }
    let (_, list) = env.json(&["accounts", "list"]);
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
}

/// Completions and man pages come from the argument definitions.
#[tokio::test(flavor = "multi_thread")]
async fn completions_and_man_pages_cover_every_subcommand() {
    let env = env().await;
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let (code, out, err) = env.igdm(&["completions", shell]);
        assert_eq!(code, 0, "{shell}: {err}");
        for word in ["conversations", "run", "connector-file", "doctor"] {
            assert!(out.contains(word), "{shell} completion lacks {word}");
        }
    }
    let (code, page, err) = env.igdm(&["man"]);
    assert_eq!(code, 0, "{err}");
    assert!(page.starts_with(".ie") || page.contains(".TH igdm 1"), "{page}");
    assert!(page.contains("conversations") && page.contains("accounts"), "{page}");
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = env.igdm(&["man", "--dir", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    for name in ["igdm.1", "igdm-run.1", "igdm-accounts-add.1", "igdm-doctor.1"] {
        let path = dir.path().join(name);
        assert!(path.exists(), "{name} missing: {out}");
        assert!(out.contains(name), "{out}");
    }
    let add = std::fs::read_to_string(dir.path().join("igdm-accounts-add.1")).unwrap();
    assert!(add.contains("connector\\-file"), "{add}");
}

/// `igdm request` sends form bodies to path templates, and its writes count
/// against the account's write budget like any send.
#[tokio::test(flavor = "multi_thread")]
async fn raw_requests_send_forms_and_spend_the_write_budget() {
    let env = env().await;
    let (code, out, err) = env.igdm(&[
        "accounts",
        "add",
        "raw",
        "--sandbox",
        &env.base,
        "--min-write-interval",
        "0",
        "--writes-per-hour",
        "2",
    ]);
    assert_eq!(code, 0, "{out}\n{err}");
    let me = env.account_id("raw").await;
    let customer = env.seed.customers[0]["id"].as_str().unwrap().to_owned();
    let (code, sent) = env.json(&["send", "--user", &customer, "hello"]);
    assert_eq!(code, 0, "{sent}");
    let (_, convs) = env.json(&["conversations"]);
    let thread = convs["items"][0]["id"].as_str().unwrap().to_owned();
    let var = format!("t={thread}");

    let (code, v) = env.json(&[
        "request",
        "direct_v2/threads/{t}/mute/",
        "--var",
        &var,
        "--method",
        "POST",
        "--form",
        "_uuid=device-1",
    ]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["status"], 200, "{v}");
    assert_eq!(v["body"]["status"], "ok", "{v}");
    let (code, conv) = env.json(&["conversation", &thread]);
    assert_eq!(code, 0, "{conv}");
    assert_eq!(conv["muted"], true, "the form POST reached the thread: {conv}");

    // Two writes spent the hour's budget of two: the third is refused
    // before it is sent.
    let before = env.requests_of(&me).await;
    let (code, v) = env.json(&[
        "request",
        "direct_v2/threads/{t}/unmute/",
        "--var",
        &var,
        "--method",
        "POST",
        "--form",
        "_uuid=device-1",
    ]);
    assert_eq!(code, 4, "{v}");
    assert_eq!(v["error"]["class"], "rate_limited", "{v}");
    assert_eq!(env.requests_of(&me).await, before, "nothing was sent");

    // A placeholder without a value is refused.
    let (code, v) = env.json(&["request", "direct_v2/threads/{t}/"]);
    assert_eq!(code, 2, "{v}");
}

/// Message requests: listed, one accepted into the inbox, one declined.
#[tokio::test(flavor = "multi_thread")]
async fn requests_are_listed_approved_and_declined() {
    let env = env().await;
    let me = env.web_account("asked").await;
    for (c, text) in env.seed.customers[..2].iter().zip(["may I ask something?", "buy followers"]) {
        env.control(
            &format!("/_sandbox/customers/{}/send", c["id"].as_str().unwrap()),
            json!({"to": me, "text": text}),
        )
        .await;
    }
    let (code, pending) = env.json(&["requests", "list"]);
    assert_eq!(code, 0, "{pending}");
    let items = pending["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{pending}");
    let of = |name: &str| {
        items
            .iter()
            .find(|t| t["participants"].to_string().contains(name))
            .and_then(|t| t["id"].as_str())
            .unwrap()
            .to_owned()
    };
    let keep = of(env.seed.customers[0]["username"].as_str().unwrap());
    let drop = of(env.seed.customers[1]["username"].as_str().unwrap());

    let (code, v) = env.json(&["requests", "approve", &keep]);
    assert_eq!(code, 0, "{v}");
    let (code, v) = env.json(&["requests", "decline", &drop]);
    assert_eq!(code, 0, "{v}");

    let (_, pending) = env.json(&["requests", "list"]);
    assert_eq!(pending["items"].as_array().unwrap().len(), 0, "{pending}");
    let (_, inbox) = env.json(&["conversations"]);
    let ids: Vec<&str> =
        inbox["items"].as_array().unwrap().iter().filter_map(|t| t["id"].as_str()).collect();
    assert!(ids.contains(&keep.as_str()), "approved into the inbox: {inbox}");
    assert!(!ids.contains(&drop.as_str()), "declined, not in the inbox: {inbox}");
    // Declining twice is the provider's refusal, passed on.
    let (code, v) = env.json(&["requests", "decline", &drop]);
    assert_ne!(code, 0, "{v}");
}

/// `send --user @name` finds the user among the account's conversations, on
/// both surfaces; a name no conversation shows is not found (exit 5).
#[tokio::test(flavor = "multi_thread")]
async fn send_to_a_username_known_from_the_conversations() {
    let env = env().await;
    for (name, connector) in [("web.at", "instagram-web"), ("graph.at", "instagram-graph")] {
        let (code, out, err) = env.igdm(&[
            "accounts",
            "add",
            name,
            "--sandbox",
            &env.base,
            "--connector",
            connector,
            "--min-write-interval",
            "0",
        ]);
        assert_eq!(code, 0, "{out}\n{err}");
        let me = env.account_id(name).await;
        let customer = &env.seed.customers[0];
        env.control(
            &format!("/_sandbox/customers/{}/send", customer["id"].as_str().unwrap()),
            json!({"to": me, "text": "hello there"}),
        )
        .await;
        let at = format!("@{}", customer["username"].as_str().unwrap());
        let (code, sent) =
            env.json(&["--account", name, "send", "--user", &at, "answer by username"]);
        assert_eq!(code, 0, "{connector}: {sent}");
        assert_eq!(sent["outcome"], "sent", "{connector}: {sent}");

        let before = env.requests_of(&me).await;
        let (code, v) =
            env.json(&["--account", name, "send", "--user", "@nobody_here_at_all", "hi"]);
        assert_eq!(code, 5, "{connector}: {v}");
        assert_eq!(v["error"]["class"], "not_found", "{connector}: {v}");
        assert!(env.requests_of(&me).await > before, "{connector}: it read the conversations");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reply_comment_and_handover_reach_meta_where_the_account_can() {
    let env = env().await;
    let business = &env.seed.business;
    for (name, connector, token) in [
        ("shop", "instagram-graph", business["access_token"].as_str().unwrap()),
        ("page", "instagram-page", business["page_token"].as_str().unwrap()),
    ] {
        let args = ["accounts", "add", name, "--connector", connector, "--base-url", &env.base];
        let (code, added) =
            env.json(&[&args[..], &["--token", token, "--min-write-interval", "0"]].concat());
        assert_eq!(code, 0, "{added}");
    }
    let customer = &env.seed.customers[1];
    let igsid = customer["igsid"].as_str().unwrap();
    // A private reply on each flavour, then the one-per-comment rule.
    for name in ["shop", "page"] {
        let c = env
            .control(
                &format!("/_sandbox/customers/{}/send", customer["id"].as_str().unwrap()),
                json!({"to": business["id"], "comment": {"text": "how much is shipping?"}}),
            )
            .await;
        let id = c["comment_id"].as_str().unwrap().to_owned();
        let (code, sent) =
            env.json(&["--account", name, "reply-comment", &id, "Shipping is free!"]);
        assert_eq!(code, 0, "{name}: {sent}");
        assert_eq!(sent["outcome"], "sent", "{name}: {sent}");
        assert!(sent["result"]["id"].as_str().is_some_and(|m| !m.is_empty()), "{sent}");
        let (code, again) = env.json(&["--account", name, "reply-comment", &id, "Also, hi"]);
        assert_ne!(code, 0, "{name}: a second private reply to one comment: {again}");
        assert!(
            again["error"]["message"].as_str().unwrap().contains("Only one private reply"),
            "{again}"
        );
    }
    // The private API has no private replies: refused before any request.
    let me = env.web_account("personal.rc").await;
    let before = env.requests_of(&me).await;
    let (code, v) =
        env.json(&["--account", "personal.rc", "reply-comment", "17870913679156914", "hi"]);
    assert_ne!(code, 0, "{v}");
    assert_eq!(env.requests_of(&me).await, before, "nothing was sent: {v}");

    // Handover: the Page flavour tells Meta; Instagram Login records it locally.
    let (code, v) = env.json(&["--account", "page", "handover", "take", igsid]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["meta_action"], "pass_thread_control", "{v}");
    assert_eq!(v["human"], true);
    let (code, owner) = env.json(&[
        "--account",
        "page",
        "run",
        "get_thread_owner",
        "-p",
        &format!("user_id={igsid}"),
    ]);
    assert_eq!(code, 0, "{owner}");
    assert_eq!(owner["app_id"], "263902037430900", "{owner}");
    let (code, v) = env.json(&["--account", "page", "handover", "request", igsid]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["meta_action"], "request_thread_control", "{v}");
    let (code, v) = env.json(&["--account", "page", "handover", "release", igsid]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["meta_action"], "take_thread_control", "{v}");
    // `handover owner` and `handover apps` read thread control.
    let (code, owner) = env.json(&["--account", "page", "handover", "owner", igsid]);
    assert_eq!(code, 0, "{owner}");
    assert!(owner["app_id"].as_str().is_some_and(|a| a != "263902037430900"), "{owner}");
    let (code, apps) = env.json(&["--account", "page", "handover", "apps"]);
    assert_eq!(code, 0, "{apps}");
    assert!(apps.to_string().contains("263902037430900"), "the Page Inbox: {apps}");
    let (code, v) = env.json(&["--account", "shop", "handover", "apps"]);
    assert_ne!(code, 0, "Instagram Login has no handover endpoint: {v}");
    // Asking for a thread this app already has: Meta's refusal, as JSON.
    let (code, v) = env.json(&["--account", "page", "handover", "request", igsid]);
    assert_ne!(code, 0, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("already controls"), "{v}");

    let (code, v) = env.json(&["--account", "shop", "handover", "take", igsid]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["meta_action"], Value::Null, "{v}");
    let (code, v) = env.json(&["--account", "shop", "handover", "request", igsid]);
    assert_ne!(code, 0, "Instagram Login has no handover endpoint: {v}");
}

/// `send --like|--link|--template|--quick-reply` and `igdm menu`
/// reach their own actions: what the sandbox received is each action's item.
#[tokio::test(flavor = "multi_thread")]
async fn send_options_and_the_menu_reach_their_actions() {
    let env = env().await;
    let business = &env.seed.business;
    let token = business["access_token"].as_str().unwrap();
    let args =
        ["accounts", "add", "shop", "--connector", "instagram-graph", "--base-url", &env.base];
    let (code, added) =
        env.json(&[&args[..], &["--token", token, "--min-write-interval", "0"]].concat());
    assert_eq!(code, 0, "{added}");
    let customer = &env.seed.customers[0];
    env.control(
        &format!("/_sandbox/customers/{}/send", customer["id"].as_str().unwrap()),
        json!({"to": business["id"], "text": "hello shop"}),
    )
    .await;
    let (_, convs) = env.json(&["--account", "shop", "conversations", "--limit", "1"]);
    let conv = convs["items"][0]["id"].as_str().unwrap().to_owned();

    // Official API: the heart, a carousel, buttons, quick replies.
    let (code, v) = env.json(&["--account", "shop", "send", &conv, "--like"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["outcome"], "sent", "{v}");
    let dir = tempfile::tempdir().unwrap();
    let cards = dir.path().join("cards.json");
    std::fs::write(
        &cards,
        json!({"elements": [{"title": "Blue mug", "subtitle": "12 EUR",
                             "buttons": [{"type": "postback", "title": "Buy", "payload": "BUY_MUG"}]}]})
        .to_string(),
    )
    .unwrap();
    let (code, v) =
        env.json(&["--account", "shop", "send", &conv, "--template", cards.to_str().unwrap()]);
    assert_eq!(code, 0, "{v}");
    let buttons = dir.path().join("buttons.json");
    std::fs::write(
        &buttons,
        json!({"text": "What next?", "buttons": [{"type": "postback", "title": "Track", "payload": "TRACK"}]})
            .to_string(),
    )
    .unwrap();
    let (code, v) =
        env.json(&["--account", "shop", "send", &conv, "--template", buttons.to_str().unwrap()]);
    assert_eq!(code, 0, "{v}");
    let (code, v) = env.json(&[
        "--account",
        "shop",
        "send",
        &conv,
        "Which size?",
        "--quick-reply",
        "Small=S",
        "--quick-reply",
        "Large=L",
    ]);
    assert_eq!(code, 0, "{v}");
    let (code, msgs) =
        env.json(&["--account", "shop", "messages", &conv, "--remote", "--limit", "10"]);
    assert_eq!(code, 0, "{msgs}");
    let seen = msgs.to_string();
    for want in ["Blue mug", "What next?", "Which size?"] {
        assert!(seen.contains(want), "{want}: {msgs}");
    }
    // A template file that is neither shape is refused before any request.
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"cards": []}"#).unwrap();
    let before = env.requests_of(business["id"].as_str().unwrap()).await;
    let (code, v) =
        env.json(&["--account", "shop", "send", &conv, "--template", bad.to_str().unwrap()]);
    assert_ne!(code, 0, "{v}");
    let (code, v) = env.json(&["--account", "shop", "send", &conv, "text too", "--like"]);
    assert_ne!(code, 0, "{v}");
    assert_eq!(env.requests_of(business["id"].as_str().unwrap()).await, before);

    // The persistent menu: set, read back, delete.
    let (code, v) = env.json(&[
        "--account",
        "shop",
        "menu",
        "set",
        "--item",
        "Prices=PRICES",
        "--item",
        "Shop=https://example.com/shop",
    ]);
    assert_eq!(code, 0, "{v}");
    let (code, menu) = env.json(&["--account", "shop", "menu", "get"]);
    assert_eq!(code, 0, "{menu}");
    let text = menu.to_string();
    assert!(text.contains("PRICES") && text.contains("https://example.com/shop"), "{menu}");
    let (code, v) = env.json(&["--account", "shop", "menu", "delete"]);
    assert_eq!(code, 0, "{v}");
    let (_, menu) = env.json(&["--account", "shop", "menu", "get"]);
    assert!(!menu.to_string().contains("PRICES"), "{menu}");

    // Private API: the heart, a link with its preview, a shared post.
    let (code, out, err) = env.igdm(&[
        "accounts",
        "add",
        "personal.opts",
        "--sandbox",
        &env.base,
        "--min-write-interval",
        "0",
    ]);
    assert_eq!(code, 0, "{out}\n{err}");
    let me = env.account_id("personal.opts").await;
    let (code, v) = env.json(&[
        "--account",
        "personal.opts",
        "send",
        "--user",
        customer["id"].as_str().unwrap(),
        "hi",
    ]);
    assert_eq!(code, 0, "{v}");
    let thread =
        v["result"]["conversation_id"].as_str().unwrap_or_else(|| panic!("{v}")).to_owned();
    let (code, v) = env.json(&["--account", "personal.opts", "send", &thread, "--like"]);
    assert_eq!(code, 0, "{v}");
    let (code, v) = env.json(&[
        "--account",
        "personal.opts",
        "send",
        &thread,
        "see https://example.com/a",
        "--link",
        "https://example.com/a",
    ]);
    assert_eq!(code, 0, "{v}");
    let before = env.requests_of(&me).await;
    let (code, v) = env.json(&[
        "--account",
        "personal.opts",
        "send",
        &thread,
        "no link here",
        "--link",
        "https://example.com/b",
    ]);
    assert_ne!(code, 0, "the text must carry the link: {v}");
    assert_eq!(env.requests_of(&me).await, before, "refused before any request");
    let (code, items) =
        env.json(&["--account", "personal.opts", "messages", &thread, "--remote", "--limit", "5"]);
    assert_eq!(code, 0, "{items}");
    let kinds: Vec<&str> = items["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["content_type"].as_str())
        .collect();
    assert!(kinds.contains(&"like_heart"), "{items}");
    assert!(kinds.contains(&"link"), "{items}");
}
