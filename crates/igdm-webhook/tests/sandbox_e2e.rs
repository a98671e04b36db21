//! End to end from the sandbox: it subscribes the receiver with Meta's
//! verification handshake, then delivers real signed, batched (and, on
//! request, duplicated and reordered) webhooks for what customers do and what
//! the account sends.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use igdm_model::{ContentType, EventKind};
use igdm_sandbox::{Sandbox, SandboxConfig};
use serde_json::{Value, json};

struct Sb {
    running: igdm_sandbox::RunningSandbox,
    base: String,
    client: reqwest::Client,
    account: Value,
}

impl Sb {
    async fn start() -> Self {
        let running = Sandbox::new(SandboxConfig::default())
            .serve("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let base = running.base_url();
        let mut sb = Self { running, base, client: reqwest::Client::new(), account: Value::Null };
        let limits = json!({"send_text_per_sec": 100_000, "send_audio_video_per_sec": 100_000, "conversations_per_sec": 100_000});
        assert_eq!(sb.control("/_sandbox/graph/rate_limits", limits).await.0, 200);
        let (s, account) = sb
            .control("/_sandbox/accounts", json!({"kind": "business", "username": "acme_shop"}))
            .await;
        assert_eq!(s, 200, "{account}");
        sb.account = account;
        sb
    }

    fn id(&self) -> String {
        self.account["id"].as_str().unwrap().to_owned()
    }

    async fn control(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self.client.post(format!("{}{path}", self.base)).json(&body).send().await.unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    async fn customer(&self, username: &str) -> Value {
        let (s, v) = self.control("/_sandbox/customers", json!({"username": username})).await;
        assert_eq!(s, 200, "{v}");
        v
    }

    async fn act(&self, customer: &Value, mut action: Value) -> Value {
        action["to"] = json!(self.id());
        let path = format!("/_sandbox/customers/{}/send", customer["id"].as_str().unwrap());
        let (s, v) = self.control(&path, action).await;
        assert_eq!(s, 200, "{v}");
        v
    }

    /// The account replies through the Send API (it comes back as an echo).
    async fn reply(&self, customer: &Value, text: &str) -> String {
        let r = self
            .client
            .post(format!("{}/v21.0/me/messages", self.base))
            .bearer_auth(self.account["access_token"].as_str().unwrap())
            .json(&json!({"recipient": {"id": customer["igsid"]}, "message": {"text": text}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        r.json::<Value>().await.unwrap()["message_id"].as_str().unwrap().to_owned()
    }
}

async fn subscribe(sb: &Sb, srv: &Running, extra: Value) {
    let mut body = json!({"callback_url": srv.url(), "verify_token": TOKEN, "app_secret": SECRET, "batch_window_ms": 30});
    if let (Value::Object(b), Value::Object(e)) = (&mut body, extra) {
        b.extend(e);
    }
    let (s, v) = sb.control("/_sandbox/webhooks", body).await;
    assert_eq!(s, 201, "the sandbox's verification handshake must pass: {v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_customer_action_and_echo_from_the_sandbox() {
    let sb = Sb::start().await;
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite_store(&dir).await;
    let mut srv = start(store.clone(), config()).await;
    subscribe(&sb, &srv, json!({})).await;
    // A wrong verify token is refused by the receiver, so the sandbox refuses the subscription.
    let (s, _) = sb
        .control(
            "/_sandbox/webhooks",
            json!({"callback_url": srv.url(), "verify_token": "nope", "app_secret": SECRET}),
        )
        .await;
    assert_eq!(s, 422);

    let ana = sb.customer("ana").await;
    let igsid = ana["igsid"].as_str().unwrap().to_owned();
    let acc = sb.id();
    let first = sb.act(&ana, json!({"text": "Olá/👋 do you ship?"})).await;
    let m1 = first["mid"].as_str().unwrap().to_owned();
    let photo = sb
        .act(&ana, json!({"attachment": {"type": "image", "url": "https://cdn.example/p.jpg"}}))
        .await;
    let reel = sb
        .act(&ana, json!({"attachment": {"type": "ig_reel", "url": "https://cdn.example/r"}}))
        .await;
    let mention =
        sb.act(&ana, json!({"story_mention": {"url": "https://cdn.example/story"}})).await;
    let quick = sb.act(&ana, json!({"quick_reply": {"text": "Yes", "payload": "YES"}})).await;
    let reply_mid = sb.reply(&ana, "Yes, everywhere").await;
    sb.act(&ana, json!({"reaction": {"mid": reply_mid, "emoji": "❤️"}})).await;
    let threaded = sb.act(&ana, json!({"text": "great", "reply_to": reply_mid})).await;
    sb.act(&ana, json!({"edit": {"mid": m1, "text": "Do you ship to Lisbon?"}})).await;
    let oops = sb.act(&ana, json!({"text": "wrong chat"})).await;
    sb.act(&ana, json!({"unsend": {"mid": oops["mid"]}})).await;
    sb.act(&ana, json!({"postback": {"title": "Opening hours", "payload": "HOURS"}})).await;
    sb.act(&ana, json!({"read": {"mid": reply_mid}})).await;
    sb.act(
        &ana,
        json!({"referral": {"ref": "summer", "source": "SHORTLINK", "type": "OPEN_THREAD"}}),
    )
    .await;
    sb.act(&ana, json!({"comment": {"media_id": "178000111", "text": "love this"}})).await;
    sb.act(&ana, json!({"unreact": {"mid": reply_mid}})).await;

    let events = srv.next_events(16).await;
    assert_kinds(
        &events,
        &[
            "message",
            "message_edit",
            "message_deleted",
            "reaction",
            "postback",
            "seen",
            "referral",
            "comment",
        ],
    );
    assert!(
        events.iter().any(|e| e.is_echo && e.message_id.as_deref() == Some(reply_mid.as_str()))
    );
    assert!(events.iter().all(|e| e.account_id == acc));

    let s = &*store;
    let first = s.get_message(&acc, &igsid, &m1).await.unwrap().unwrap();
    assert_eq!(first.text.as_deref(), Some("Do you ship to Lisbon?"), "edit applied");
    let get = |mid: &Value| {
        let mid = mid.as_str().unwrap().to_owned();
        let (acc, igsid) = (acc.clone(), igsid.clone());
        async move { s.get_message(&acc, &igsid, &mid).await.unwrap().unwrap() }
    };
    assert_eq!(get(&photo["mid"]).await.content_type, ContentType::Image);
    assert_eq!(get(&reel["mid"]).await.content_type, ContentType::ReelShare);
    assert_eq!(get(&mention["mid"]).await.content_type, ContentType::StoryMention);
    assert_eq!(get(&quick["mid"]).await.text.as_deref(), Some("Yes"));
    let threaded = get(&threaded["mid"]).await;
    assert_eq!(threaded.reply_to.unwrap().message_id.unwrap().as_str(), reply_mid);
    assert!(get(&oops["mid"]).await.is_deleted, "unsend applied");
    let echo = s.get_message(&acc, &igsid, &reply_mid).await.unwrap().unwrap();
    assert!(echo.sender.is_self);
    assert!(echo.reactions.is_empty(), "react then unreact leaves no reaction");
    let conv = s.get_conversation(&acc, &igsid).await.unwrap().unwrap();
    assert!(conv.reply_window_ends_at.is_some());
    let receipt = s.get_raw_payload(&acc, "read_receipt", &igsid).await.unwrap().unwrap();
    assert_eq!(receipt["message_id"], reply_mid.as_str());
    srv.stop().await;
    sb.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicated_reordered_and_changes_shaped_deliveries_apply_once() {
    let sb = Sb::start().await;
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite_store(&dir).await;
    let mut srv = start(store.clone(), config()).await;
    subscribe(&sb, &srv, json!({"messages_as_changes": true, "batch_window_ms": 5})).await;
    let (s, v) =
        sb.control("/_sandbox/webhooks/chaos", json!({"duplicate": 1.0, "reorder": true})).await;
    assert_eq!(s, 200, "{v}");

    let bo = sb.customer("bo").await;
    let igsid = bo["igsid"].as_str().unwrap().to_owned();
    let mut mids = Vec::new();
    for i in 0..20 {
        mids.push(
            sb.act(&bo, json!({"text": format!("note {i}")})).await["mid"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    sb.act(&bo, json!({"reaction": {"mid": mids[3], "emoji": "👍"}})).await;
    sb.act(&bo, json!({"edit": {"mid": mids[5], "text": "note five, edited"}})).await;

    let events = srv.next_events(22).await;
    srv.assert_no_more_events(Duration::from_millis(800)).await;
    let mut per: BTreeMap<(String, Option<String>), usize> = BTreeMap::new();
    for e in &events {
        *per.entry((e.kind.as_str().to_owned(), e.message_id.clone())).or_default() += 1;
        assert!(e.details.as_ref().unwrap()["field"].is_string(), "came as changes[]");
    }
    assert!(per.values().all(|n| *n == 1), "{per:?}");
    assert_eq!(events.iter().filter(|e| e.kind == EventKind::Message).count(), 20);

    let page = store.list_messages(&sb.id(), &igsid, 100, None).await.unwrap();
    assert_eq!(page.items.len(), 20);
    let five = store.get_message(&sb.id(), &igsid, &mids[5]).await.unwrap().unwrap();
    assert_eq!(five.text.as_deref(), Some("note five, edited"));
    assert_eq!(
        store.get_message(&sb.id(), &igsid, &mids[3]).await.unwrap().unwrap().reactions.len(),
        1
    );
    let counts = store.event_log_counts().await.unwrap();
    assert!(counts.dedup_hits >= 22, "every delivery came twice: {counts:?}");
    srv.stop().await;
    sb.running.shutdown().await;
}
