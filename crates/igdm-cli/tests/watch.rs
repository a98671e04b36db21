//! `igdm watch` against a sandbox over real HTTP: a customer's actions
//! arrive as normalized events on stdout; a watcher killed with SIGKILL and
//! restarted emits nothing twice and misses nothing; at idle it backs off and
//! stays within the connector's read budget; a challenge stops one account's
//! watcher while the others go on.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

struct Env {
    _sandbox: igdm_sandbox::RunningSandbox,
    base: String,
    home: tempfile::TempDir,
}

async fn env() -> Env {
    let sb = igdm_sandbox::Sandbox::new(igdm_sandbox::SandboxConfig::default());
    let running = sb.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    Env { base: running.base_url(), _sandbox: running, home: tempfile::tempdir().unwrap() }
}

/// A running `igdm watch`: its events (parsed stdout lines) and stderr lines.
struct Watch {
    child: Child,
    events: mpsc::Receiver<Value>,
    stderr: mpsc::Receiver<String>,
}

impl Watch {
    /// The next event, within `limit`.
    fn next(&self, limit: Duration) -> Option<Value> {
        self.events.recv_timeout(limit).ok()
    }

    /// Events until one matches `pred` (returned last), within `limit`.
    fn until(&self, limit: Duration, pred: impl Fn(&Value) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + limit;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let ev = self
                .next(left)
                .unwrap_or_else(|| panic!("no matching event within {limit:?}; saw {seen:#?}"));
            let hit = pred(&ev);
            seen.push(ev);
            if hit {
                return seen;
            }
        }
    }

    /// Waits for a stderr line containing `needle`.
    fn stderr_line(&self, needle: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(l) if l.contains(needle) => return l,
                Ok(_) => {}
                Err(_) => panic!("igdm watch never said {needle:?}"),
            }
        }
    }

    fn kill(mut self) -> Vec<Value> {
        self.child.kill().unwrap(); // SIGKILL
        self.child.wait().unwrap();
        // Whatever it flushed before dying.
        let mut rest = Vec::new();
        while let Ok(ev) = self.events.recv_timeout(Duration::from_millis(200)) {
            rest.push(ev);
        }
        rest
    }
}

impl Env {
    fn igdm(&self, args: &[&str]) -> (i32, String, String) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_igdm"));
        cmd.args(args)
            .env("IGDM_HOME", self.home.path())
            .env_remove("IGDM_VAULT_PASSPHRASE")
            .env_remove("IGDM_ACCOUNT")
            .env_remove("IGDM_DATABASE_URL");
        let out = tokio::task::block_in_place(|| cmd.output()).unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Adds a fresh sandbox web account; returns its sandbox id.
    async fn web_account(&self, name: &str) -> String {
        let (code, out, err) = self.igdm(&["accounts", "add", name, "--sandbox", &self.base]);
        assert_eq!(code, 0, "{out}\n{err}");
        let v = igdm_test::sandbox::control(&self.base, "GET", "/_sandbox/accounts", None).await.1;
        v["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["username"] == name)
            .and_then(|a| a["id"].as_str())
            .unwrap()
            .to_owned()
    }

    async fn customer(&self, username: &str) -> String {
        let v = igdm_test::sandbox::post_ok(
            &self.base,
            "/_sandbox/customers",
            json!({"username": username}),
        )
        .await;
        v["id"].as_str().unwrap().to_owned()
    }

    /// The customer acts toward `account` (text, reaction, read, edit, unsend…).
    async fn act(&self, customer: &str, account: &str, mut action: Value) -> Value {
        action["to"] = json!(account);
        igdm_test::sandbox::post_ok(
            &self.base,
            &format!("/_sandbox/customers/{customer}/send"),
            action,
        )
        .await
    }

    /// Requests the sandbox counted for `account`.
    async fn requests_of(&self, account: &str) -> u64 {
        let v = igdm_test::sandbox::stats(&self.base).await;
        v["accounts"][account]
            .as_object()
            .map_or(0, |per| per.values().map(|e| e["requests"].as_u64().unwrap_or(0)).sum())
    }

    fn watch(&self, args: &[&str]) -> Watch {
        let mut child = Command::new(env!("CARGO_BIN_EXE_igdm"))
            .arg("watch")
            .args(args)
            .env("IGDM_HOME", self.home.path())
            .env_remove("IGDM_VAULT_PASSPHRASE")
            .env_remove("IGDM_ACCOUNT")
            .env_remove("IGDM_DATABASE_URL")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, events) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let v: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("not a JSON event ({e}): {line}"));
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        let (tx, stderr) = mpsc::channel();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                eprintln!("[igdm watch] {line}");
                let _ = tx.send(line);
            }
        });
        Watch { child, events, stderr }
    }
}

const WAIT: Duration = Duration::from_secs(30);

fn is(kind: &str) -> impl Fn(&Value) -> bool + '_ {
    move |e: &Value| e["kind"] == kind
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_actions_arrive_as_events() {
    let env = env().await;
    let me = env.web_account("me").await;
    let cust = env.customer("shopper").await;
    // History before the watcher starts is its baseline, not news.
    env.act(&cust, &me, json!({"text": "before"})).await;

    let interval = Duration::from_millis(500);
    let w = env.watch(&["--events", "-", "--interval", "500ms"]);
    w.stderr_line("watching me", WAIT);

    let sent = env.act(&cust, &me, json!({"text": "hello there"})).await;
    let item = sent["item_id"].as_str().unwrap().to_owned();
    let before = env.requests_of(&me).await;
    let seen = w.until(WAIT, |e| e["kind"] == "message" && e["text"] == "hello there");
    let msg = seen.last().unwrap().clone();
    // It arrived by the second poll after the send: at most two polls of
    // (inbox + message requests), and one poll in flight meanwhile.
    let polls = env.requests_of(&me).await - before;
    assert!(polls <= 6, "{polls} requests before the message arrived (interval {interval:?})");
    assert!(seen.iter().all(|e| e["text"] != "before"), "the baseline was emitted: {seen:#?}");
    assert_eq!(msg["message_id"], item.as_str());
    assert_eq!(msg["is_echo"], false);
    assert_eq!(msg["sender_id"], cust.as_str());
    let account_pk = msg["account_id"].as_str().unwrap().to_owned();
    let conversation = msg["conversation_id"].as_str().unwrap().to_owned();
    assert!(msg["timestamp"].as_str().unwrap().ends_with('Z'));

    env.act(&cust, &me, json!({"reaction": {"mid": item, "emoji": "🔥"}})).await;
    let r = w.until(WAIT, is("reaction")).pop().unwrap();
    assert_eq!(r["message_id"], item.as_str());
    assert_eq!(r["reaction"]["action"], "react");
    assert_eq!(r["reaction"]["emoji"], "🔥");
    assert_eq!(r["sender_id"], cust.as_str());

    env.act(&cust, &me, json!({"unreact": {"mid": item}})).await;
    let r = w.until(WAIT, is("reaction")).pop().unwrap();
    assert_eq!(r["reaction"]["action"], "unreact");

    env.act(&cust, &me, json!({"edit": {"mid": item, "text": "hello, edited"}})).await;
    let e = w.until(WAIT, is("message_edit")).pop().unwrap();
    assert_eq!(e["message_id"], item.as_str());
    assert_eq!(e["text"], "hello, edited");
    assert_eq!(e["details"]["num_edit"], 1);

    env.act(&cust, &me, json!({"read": {"mid": item}})).await;
    let s = w.until(WAIT, is("seen")).pop().unwrap();
    assert_eq!(s["sender_id"], cust.as_str());
    assert_eq!(s["message_id"], item.as_str());

    let oops = env.act(&cust, &me, json!({"text": "oops"})).await;
    let oops_id = oops["item_id"].as_str().unwrap().to_owned();
    w.until(WAIT, |e| e["kind"] == "message" && e["message_id"] == oops_id.as_str());
    env.act(&cust, &me, json!({"unsend": {"mid": oops_id}})).await;
    let d = w.until(WAIT, is("message_deleted")).pop().unwrap();
    assert_eq!(d["message_id"], oops_id.as_str());

    // Every event names the same account and conversation.
    for e in [&msg, &r, &e, &s, &d] {
        assert_eq!(e["account_id"], account_pk.as_str());
        assert_eq!(e["conversation_id"], conversation.as_str());
    }
    // The store got them first.
    let db = format!("sqlite://{}", env.home.path().join("igdm.db").display());
    let store = igdm_store::Store::open(&db).await.unwrap();
    let stored = store.get_message("me", &conversation, &item).await.unwrap().unwrap();
    assert_eq!(stored.text.as_deref(), Some("hello, edited"));
    let gone = store.get_message("me", &conversation, &oops_id).await.unwrap().unwrap();
    assert!(gone.is_deleted);
    drop(w.kill());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_and_restart_emits_nothing_twice_and_misses_nothing() {
    let env = env().await;
    let me = env.web_account("me").await;
    let cust = env.customer("burst").await;
    env.act(&cust, &me, json!({"text": "start"})).await;
    let args = ["--events", "-", "--interval", "100ms"];
    let w = env.watch(&args);
    w.stderr_line("watching me", WAIT);

    // A burst the customer keeps sending while the watcher is killed and
    // restarted; some of it arrives while no watcher runs at all.
    let total = 40;
    let mut expected = Vec::new();
    let mut got: Vec<Value> = Vec::new();
    for i in 0..total {
        let v = env.act(&cust, &me, json!({"text": format!("burst {i}")})).await;
        expected.push(v["item_id"].as_str().unwrap().to_owned());
        if i == 12 {
            // Let some arrive, then kill mid-stream.
            got.extend(w.until(WAIT, |e| e["text"] == "burst 5"));
        }
        if i == 15 {
            break;
        }
    }
    got.extend(w.kill());
    for i in 16..total {
        let v = env.act(&cust, &me, json!({"text": format!("burst {i}")})).await;
        expected.push(v["item_id"].as_str().unwrap().to_owned());
    }
    let w = env.watch(&args);
    let last = expected.last().unwrap().clone();
    got.extend(w.until(WAIT, |e| e["message_id"] == last.as_str()));
    // Anything still due arrives within a few more polls.
    while let Some(ev) = w.next(Duration::from_secs(2)) {
        got.push(ev);
    }
    drop(w.kill());

    let mut counts: HashMap<String, usize> = HashMap::new();
    for e in got.iter().filter(|e| e["kind"] == "message") {
        *counts.entry(e["message_id"].as_str().unwrap().to_owned()).or_default() += 1;
    }
    for id in &expected {
        assert_eq!(
            counts.get(id).copied(),
            Some(1),
            "message {id} emitted {:?} times",
            counts.get(id)
        );
    }
    assert_eq!(counts.len(), expected.len(), "unexpected messages: {got:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_watching_backs_off_within_the_read_budget() {
    let env = env().await;
    let me = env.web_account("me").await;
    let interval = Duration::from_millis(100);
    let w = env.watch(&["--events", "-", "--interval", "100ms"]);
    w.stderr_line("watching me", WAIT);
    let start = env.requests_of(&me).await;
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(4));
    let first_half = env.requests_of(&me).await - start;
    std::thread::sleep(Duration::from_secs(4));
    let elapsed = t0.elapsed();
    let total = env.requests_of(&me).await - start;
    drop(w.kill());

    // The budget maths on Instagram's clock: the connector's declared
    // intervals and budget, with time compressed to the 100 ms interval.
    let connector = igdm_spec::Connector::load(
        igdm_connectors::by_id("instagram-web").unwrap(),
        "connectors/instagram-web.md",
    )
    .unwrap();
    let declared = igdm::PollPolicy::for_connector(&connector);
    let budget = declared.reads_per_window.expect("instagram-web declares a read budget");
    let policy = declared.clone().with_interval(interval, true).unwrap();
    let hourly = igdm::watch::hourly_rate(&policy, total, elapsed);
    assert!(
        hourly <= f64::from(budget),
        "{total} requests in {elapsed:?} = {hourly:.1}/h on Instagram's clock, over the budget {budget}/h"
    );
    // Backing off: far fewer polls than one per interval, and fewer in the
    // second half than in the first.
    let flat = (elapsed.as_secs_f64() / interval.as_secs_f64()) as u64;
    assert!(total * 4 < flat, "{total} requests in {elapsed:?} at {interval:?}: no backoff");
    assert!(total - first_half < first_half, "{first_half} then {}", total - first_half);
    // Against Instagram itself, a faster interval than declared is refused.
    assert!(declared.with_interval(interval, false).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_challenge_stops_one_watcher_and_the_others_go_on() {
    let env = env().await;
    let a = env.web_account("alice").await;
    let b = env.web_account("bob").await;
    let cust = env.customer("friend").await;
    let w = env.watch(&["alice", "bob", "--events", "-", "--interval", "200ms"]);
    // Both start, in either order.
    let first = w.stderr_line("igdm watch: watching", WAIT);
    let other = if first.contains("alice") { "watching bob" } else { "watching alice" };
    w.stderr_line(other, WAIT);
    igdm_test::sandbox::post_ok(
        &env.base,
        "/_sandbox/faults",
        json!({"account": a, "mode": "challenge"}),
    )
    .await;
    let line = w.stderr_line("stopped watching alice", WAIT);
    assert!(line.contains("challenge") || line.contains("Instagram"), "{line}");
    env.act(&cust, &b, json!({"text": "still there?"})).await;
    let ev = w.until(WAIT, |e| e["text"] == "still there?").pop().unwrap();
    assert_eq!(ev["kind"], "message");
    drop(w.kill());
}

/// The `rur` cookie the vault of `home` holds for `account`.
async fn stored_rur(home: &std::path::Path, account: &str) -> String {
    use igdm_auth::CredentialStore as _;
    use secrecy::ExposeSecret as _;
    let rt = igdm_runtime::Runtime::at(igdm::Home::at(home)).unwrap();
    match rt.vault().unwrap().get(account).await.unwrap() {
        Some(igdm_auth::Credential::Cookies(c)) => c.get("rur").unwrap().expose_secret().to_owned(),
        other => panic!("no cookies stored for {account}: {other:?}"),
    }
}

/// The watcher polls an account the runtime opened: cookies its polls rotate
/// reach the vault while it is still watching, not only when it stops (it is
/// killed here, so nothing runs at exit).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookies_the_polls_rotate_reach_the_vault_while_watching() {
    let env = env().await;
    env.web_account("me").await;
    let first = stored_rur(env.home.path(), "me").await;
    let w = env.watch(&["me", "--events", "-", "--interval", "200ms"]);
    w.stderr_line("watching me", WAIT);
    // The sandbox rotates `rur` every third request of a session.
    let deadline = Instant::now() + WAIT;
    while stored_rur(env.home.path(), "me").await == first {
        assert!(Instant::now() < deadline, "the rotated rur never reached the vault");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(w.kill());
}

/// Every message of `stream` (from the start), until `want` arrived or the
/// stream stays quiet: (`Nats-Msg-Id`, event).
async fn drain_stream(url: &str, stream: &str, want: usize) -> Vec<(String, Value)> {
    use futures::StreamExt as _;
    let js = async_nats::jetstream::new(async_nats::connect(url).await.unwrap());
    let deadline = Instant::now() + WAIT;
    let stream = loop {
        match js.get_stream(stream).await {
            Ok(s) => break s,
            Err(e) => {
                assert!(Instant::now() < deadline, "no stream {stream}: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let consumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::Config {
            deliver_policy: async_nats::jetstream::consumer::DeliverPolicy::All,
            ack_policy: async_nats::jetstream::consumer::AckPolicy::Explicit,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut messages = consumer.messages().await.unwrap();
    let mut got = Vec::new();
    loop {
        // Past `want`, wait a moment more for anything delivered twice.
        let quiet = if got.len() < want { WAIT } else { Duration::from_secs(1) };
        let Ok(Some(m)) = tokio::time::timeout(quiet, messages.next()).await else { break };
        let m = m.unwrap();
        let id = m
            .headers
            .as_ref()
            .and_then(|h| h.get("Nats-Msg-Id"))
            .map(|v| v.as_str().to_owned())
            .expect("every message carries Nats-Msg-Id");
        got.push((id, serde_json::from_slice(&m.payload).unwrap()));
        m.ack().await.unwrap();
    }
    got
}

/// Each id once, and the events as published.
fn once_per_id(got: &[(String, Value)]) -> Vec<Value> {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for (id, _) in got {
        *counts.entry(id.as_str()).or_default() += 1;
    }
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "ids delivered more than once: {twice:?}");
    got.iter().map(|(_, e)| e.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_publishes_a_burst_to_jetstream_once_per_event() {
    let Some(nats) = igdm_test::prereq::nats("watch_publishes_a_burst_to_jetstream_once_per_event")
    else {
        return;
    };
    let env = env().await;
    let me = env.web_account("me").await;
    let cust = env.customer("natsfan").await;
    env.act(&cust, &me, json!({"text": "first"})).await;
    let w =
        env.watch(&["--nats", &nats.url, "--nats-subject", "watch.test", "--interval", "100ms"]);
    w.stderr_line("watching me", WAIT);
    let mut expected = Vec::new();
    for i in 0..20 {
        let v = env.act(&cust, &me, json!({"text": format!("n {i}")})).await;
        expected.push(v["item_id"].as_str().unwrap().to_owned());
    }
    env.act(&cust, &me, json!({"reaction": {"mid": expected[19], "emoji": "👍"}})).await;
    let got = drain_stream(&nats.url, "WATCH_TEST", expected.len() + 1).await;
    drop(w.kill());
    let events = once_per_id(&got);
    let mut ids: Vec<&str> = events
        .iter()
        .filter(|e| e["kind"] == "message")
        .map(|e| e["message_id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    let mut want: Vec<&str> = expected.iter().map(String::as_str).collect();
    want.sort_unstable();
    assert_eq!(ids, want);
    assert_eq!(events.iter().filter(|e| e["kind"] == "reaction").count(), 1);
}

const SECRET: &str = "nats-test-secret";

/// A signed delivery of a customer message and a reaction to it.
fn delivery(n: usize) -> String {
    let ts = 1_790_000_000_000_i64 + i64::try_from(n).unwrap();
    json!({"object": "instagram", "entry": [{"id": "17841400000000001", "time": ts, "messaging": [
        {"sender": {"id": "4242"}, "recipient": {"id": "17841400000000001"}, "timestamp": ts,
         "message": {"mid": format!("nats-{n}"), "text": format!("message {n}")}},
        {"sender": {"id": "4242"}, "recipient": {"id": "17841400000000001"}, "timestamp": ts,
         "reaction": {"mid": format!("nats-{n}"), "action": "react", "reaction": "love", "emoji": "❤️"}}
    ]}]})
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_publishes_a_burst_to_jetstream_once_per_event() {
    let Some(nats) = igdm_test::prereq::nats("serve_publishes_a_burst_to_jetstream_once_per_event")
    else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}?mode=rwc", home.path().join("igdm.db").display());
    let mut child = Command::new(env!("CARGO_BIN_EXE_igdm"))
        .args(["serve", "--addr", "127.0.0.1:0", "--database", &db])
        .args(["--nats", &nats.url, "--nats-subject", "serve.test"])
        .env("IGDM_APP_SECRET", SECRET)
        .env("IGDM_VERIFY_TOKEN", "t")
        .env("IGDM_HOME", home.path())
        .env_remove("IGDM_DATABASE_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix("igdm serve: listening on ") {
                let _ = tx.send(rest.trim_end_matches("/webhook").to_owned());
            }
        }
    });
    let base = rx.recv_timeout(WAIT).expect("igdm serve did not start");
    let client = reqwest::Client::new();
    let n = 30;
    // The burst, then Meta's retries of a third of it.
    for i in (0..n).chain(0..n / 3) {
        let body = delivery(i);
        let sig = igdm_webhook::sign(SECRET.as_bytes(), body.as_bytes());
        let r = client
            .post(format!("{base}/webhook"))
            .header("content-type", "application/json")
            .header(igdm_webhook::SIGNATURE_HEADER, sig)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let got = drain_stream(&nats.url, "SERVE_TEST", 2 * n).await;
    child.kill().unwrap();
    child.wait().unwrap();
    let events = once_per_id(&got);
    assert_eq!(events.len(), 2 * n, "{events:#?}");
    for i in 0..n {
        let mid = format!("nats-{i}");
        for kind in ["message", "reaction"] {
            let c = events.iter().filter(|e| e["kind"] == kind && e["message_id"] == mid).count();
            assert_eq!(c, 1, "{kind} of {mid}");
        }
    }
}

/// `igdm watch --media` keeps a photo that arrives while it runs, in the
/// media store under its hash.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_media_keeps_an_arriving_photo() {
    use base64::Engine as _;
    use sha2::Digest as _;
    let env = env().await;
    let me = env.web_account("me").await;
    let who = igdm_test::sandbox::post_ok(
        &env.base,
        "/_sandbox/customers",
        json!({"username": "photo.sender"}),
    )
    .await;
    env.act(who["id"].as_str().unwrap(), &me, json!({"text": "before"})).await;
    let w = env.watch(&["--events", "-", "--interval", "500ms", "--media"]);
    w.stderr_line("watching me", WAIT);

    let mut photo = vec![0xFF, 0xD8, 0xFF, 0xE0];
    photo.extend((0..20_000u32).map(|i| (i.wrapping_mul(2_246_822_519) >> 24) as u8));
    let sent = igdm_test::sandbox::post_ok(
        &env.base,
        "/_sandbox/media/seed",
        json!({"to": me, "from": who["pk"], "media": [
            {"type": "image", "base64": base64::engine::general_purpose::STANDARD.encode(&photo)}
        ]}),
    )
    .await;
    let item = sent["items"][0]["item_id"].as_str().unwrap().to_owned();
    w.until(WAIT, |e| e["kind"] == "message" && e["message_id"] == item.as_str());
    let sha = hex::encode(sha2::Sha256::digest(&photo));
    let path = env.home.path().join("media").join(&sha[..2]).join(&sha);
    // Kept right after the poll committed the message: wait for that poll.
    let deadline = std::time::Instant::now() + WAIT;
    while !path.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(std::fs::read(&path).unwrap(), photo, "kept under its hash: {}", path.display());
    drop(w.kill());
}
