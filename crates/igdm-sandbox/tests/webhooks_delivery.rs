//! Webhook delivery over real HTTP: the verification handshake, signatures
//! checked with an independently computed HMAC, Meta's escaping, payload
//! shapes, batching, retries, duplicates and reordering.
#![allow(clippy::unwrap_used)]

mod graph_support;

use graph_support::Env;
use graph_support::receiver::{Post, Receiver};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

const SECRET: &str = "app-secret-for-tests";

async fn subscribe(env: &Env, rx: &Receiver, extra: Value) -> (u16, Value) {
    let mut body =
        json!({"callback_url": rx.url, "verify_token": "let-me-in", "app_secret": SECRET});
    if let (Value::Object(b), Value::Object(e)) = (&mut body, extra) {
        b.extend(e);
    }
    env.control("POST", "/_sandbox/webhooks", body).await
}

fn expected_signature(body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn messaging(post: &Post) -> Vec<Value> {
    post.json()["entry"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|e| e["messaging"].as_array().cloned().unwrap_or_default())
        .collect()
}

#[tokio::test]
async fn subscription_requires_the_verification_handshake() {
    let env = Env::new().await;
    let rx = Receiver::start("the-right-token").await;
    let (s, v) = subscribe(&env, &rx, json!({})).await; // sends "let-me-in"
    assert_eq!(s, 422, "{v}");
    assert!(v["error"].as_str().unwrap().contains("verification failed"), "{v}");
    let checks = rx.verifications();
    assert_eq!(checks.len(), 1);
    assert_eq!(checks[0]["hub.mode"], "subscribe");
    assert_eq!(checks[0]["hub.verify_token"], "let-me-in");
    assert!(checks[0]["hub.challenge"].parse::<u64>().is_ok());

    let (s, v) = env
        .control("POST", "/_sandbox/webhooks", json!({"callback_url": rx.url, "verify_token": "the-right-token", "app_secret": SECRET}))
        .await;
    assert_eq!(s, 201, "{v}");
    let (_, list) = env.control("GET", "/_sandbox/webhooks", Value::Null).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert!(list.to_string().find(SECRET).is_none(), "secrets must not be listed");
}

#[tokio::test]
async fn deliveries_are_signed_over_the_exact_meta_escaped_body() {
    let env = Env::new().await;
    let rx = Receiver::start("let-me-in").await;
    let (s, v) = subscribe(&env, &rx, json!({})).await;
    assert_eq!(s, 201, "{v}");

    let c = env.customer("ines").await;
    let said = env.says(&c, "Olá/👋 café").await;
    let post = &rx.wait_for(1).await[0];

    let header = post.headers["x-hub-signature-256"].to_str().unwrap();
    assert_eq!(header, expected_signature(&post.body));
    assert!(header.chars().skip(7).all(|ch| ch.is_ascii_digit() || ('a'..='f').contains(&ch)));
    let raw = post.text();
    assert!(raw.is_ascii(), "non-ASCII must be escaped: {raw}");
    assert!(raw.contains(r"Ol\u00e1\/\ud83d\udc4b caf\u00e9"), "{raw}");

    let payload = post.json();
    assert_eq!(payload["object"], "instagram");
    let entry = &payload["entry"][0];
    assert_eq!(entry["id"], env.id().as_str());
    assert!(entry["time"].as_i64().unwrap() > 1_600_000_000_000);
    let m = &entry["messaging"][0];
    assert_eq!(m["sender"]["id"], c["igsid"]);
    assert_eq!(m["recipient"]["id"], env.id().as_str());
    assert_eq!(m["timestamp"].as_i64().unwrap(), said["timestamp_us"].as_i64().unwrap() / 1000);
    assert_eq!(m["message"]["mid"], said["mid"]);
    assert_eq!(m["message"]["text"], "Olá/👋 café");

    // What the account sends comes back as an echo.
    let sent = env.send_message(&c, json!({"text": "Obrigado!"})).await;
    assert_eq!(sent.status, 200, "{}", sent.body);
    let echo = &rx.wait_for(2).await[1];
    assert_eq!(
        echo.headers["x-hub-signature-256"].to_str().unwrap(),
        expected_signature(&echo.body)
    );
    let e = &messaging(echo)[0];
    assert_eq!(e["sender"]["id"], env.id().as_str());
    assert_eq!(e["recipient"]["id"], c["igsid"]);
    assert_eq!(e["message"]["is_echo"], true);
    assert_eq!(e["message"]["mid"], sent.body["message_id"]);

    let (_, deliveries) = env.control("GET", "/_sandbox/webhooks/deliveries", Value::Null).await;
    let list = deliveries["data"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["status"], 200);
    assert_eq!(list[0]["outcome"], "delivered");
    assert_eq!(list[0]["body"].as_str().unwrap(), raw);
}

#[tokio::test]
async fn queued_events_are_batched_into_one_post() {
    let env = Env::new().await;
    let rx = Receiver::start("let-me-in").await;
    let (s, v) = subscribe(&env, &rx, json!({"batch_window_ms": 1000})).await;
    assert_eq!(s, 201, "{v}");
    let a = env.customer("batch_a").await;
    let b = env.customer("batch_b").await;
    env.says(&a, "one").await;
    env.says(&b, "two").await;
    env.says(&a, "three").await;
    let posts = rx.wait_for(1).await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(rx.posts().len(), 1, "three queued events must share one POST");
    let texts: Vec<Value> =
        messaging(&posts[0]).iter().map(|m| m["message"]["text"].clone()).collect();
    assert_eq!(texts, [json!("one"), json!("two"), json!("three")]);
    let (_, d) = env.control("GET", "/_sandbox/webhooks/deliveries", Value::Null).await;
    assert_eq!(d["data"][0]["events"], 3);
}

#[tokio::test]
async fn failed_deliveries_are_retried_then_dropped() {
    let env = Env::new().await;
    let rx = Receiver::start("let-me-in").await;
    let (s, v) = subscribe(&env, &rx, json!({"retry_schedule_ms": [20, 40, 80]})).await;
    assert_eq!(s, 201, "{v}");
    let c = env.customer("retry_rui").await;

    rx.fail_next(2);
    env.says(&c, "first").await;
    let posts = rx.wait_for(3).await;
    assert_eq!(posts[0].body, posts[2].body, "a retry resends the same body");
    assert_eq!(posts[0].headers["x-hub-signature-256"], posts[2].headers["x-hub-signature-256"]);
    let (_, d) = env.control("GET", "/_sandbox/webhooks/deliveries", Value::Null).await;
    let attempts: Vec<(Value, Value, Value)> = d["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["attempt"].clone(), r["status"].clone(), r["outcome"].clone()))
        .collect();
    assert_eq!(
        attempts,
        [
            (json!(1), json!(500), json!("retrying")),
            (json!(2), json!(500), json!("retrying")),
            (json!(3), json!(200), json!("delivered")),
        ]
    );

    // A receiver that keeps failing exhausts the schedule: 1 try + 3 retries.
    env.control("DELETE", "/_sandbox/webhooks/deliveries", Value::Null).await;
    rx.fail_next(100);
    env.says(&c, "second").await;
    rx.wait_for(3 + 4).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(rx.posts().len(), 7, "no attempts beyond the schedule");
    let (_, d) = env.control("GET", "/_sandbox/webhooks/deliveries", Value::Null).await;
    let last = d["data"].as_array().unwrap().last().cloned().unwrap();
    assert_eq!(last["attempt"], 4);
    assert_eq!(last["outcome"], "dropped");
}

#[tokio::test]
async fn chaos_duplicates_and_reorders_deliveries() {
    let env = Env::new().await;
    let rx = Receiver::start("let-me-in").await;
    let (s, v) = subscribe(&env, &rx, json!({"batch_window_ms": 800})).await;
    assert_eq!(s, 201, "{v}");
    let c = env.customer("chaos_carl").await;

    let (s, v) = env.control("POST", "/_sandbox/webhooks/chaos", json!({"duplicate": 1})).await;
    assert_eq!(s, 200, "{v}");
    env.says(&c, "dup me").await;
    let posts = rx.wait_for(2).await;
    assert_eq!(posts[0].body, posts[1].body);
    assert_eq!(posts[0].headers["x-hub-signature-256"], posts[1].headers["x-hub-signature-256"]);
    let (_, d) = env.control("GET", "/_sandbox/webhooks/deliveries", Value::Null).await;
    assert_eq!(d["data"][1]["duplicate"], true);

    let (s, v) = env
        .control("POST", "/_sandbox/webhooks/chaos", json!({"duplicate": 0, "reorder": true}))
        .await;
    assert_eq!(s, 200, "{v}");
    for text in ["r1", "r2", "r3"] {
        env.says(&c, text).await;
    }
    let posts = rx.wait_for(5).await;
    let order: Vec<(Value, i64)> = posts[2..5]
        .iter()
        .map(|p| {
            let m = &messaging(p)[0];
            (m["message"]["text"].clone(), m["timestamp"].as_i64().unwrap())
        })
        .collect();
    assert_eq!(
        order.iter().map(|o| o.0.clone()).collect::<Vec<_>>(),
        [json!("r3"), json!("r2"), json!("r1")]
    );
    assert!(order[0].1 > order[2].1, "arrival order differs from timestamp order");

    let (s, _) = env.control("POST", "/_sandbox/webhooks/chaos", json!({"duplicate": 1.5})).await;
    assert_eq!(s, 400);
}

#[tokio::test]
async fn every_event_kind_has_meta_shape() {
    let env = Env::new().await;
    let rx = Receiver::start("let-me-in").await;
    let (s, v) = subscribe(&env, &rx, json!({"batch_window_ms": 0})).await;
    assert_eq!(s, 201, "{v}");
    let c = env.customer("shape_sofia").await;
    let said = env.says(&c, "hi").await;
    let mid = said["mid"].as_str().unwrap().to_owned();
    env.act(&c, json!({"reaction": {"mid": mid}})).await;
    env.act(&c, json!({"unreact": {"mid": mid}})).await;
    env.act(&c, json!({"edit": {"mid": mid, "text": "hi there"}})).await;
    env.act(&c, json!({"postback": {"title": "Start", "payload": "GET_STARTED"}})).await;
    env.act(&c, json!({"quick_reply": {"text": "Yes", "payload": "YES"}})).await;
    let sent = env.send_message(&c, json!({"text": "ok"})).await;
    env.act(&c, json!({"read": {"mid": sent.body["message_id"]}})).await;
    env.act(
        &c,
        json!({"comment": {"text": "love it @acme_shop", "media_id": "17900000000000042"}}),
    )
    .await;
    env.act(&c, json!({"unsend": {"mid": mid}})).await;

    // Wait until everything arrived: 9 messaging updates + 2 changes.
    let mut items: Vec<Value> = Vec::new();
    let mut changes: Vec<Value> = Vec::new();
    for _ in 0..300 {
        items = rx.posts().iter().flat_map(messaging).collect();
        changes = rx
            .posts()
            .iter()
            .flat_map(|p| {
                p.json()["entry"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .flat_map(|e| e["changes"].as_array().cloned().unwrap_or_default())
                    .collect::<Vec<_>>()
            })
            .collect();
        if items.len() >= 9 && changes.len() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let find =
        |key: &str| items.iter().filter(|m| m.get(key).is_some()).cloned().collect::<Vec<_>>();
    let reactions = find("reaction");
    assert_eq!(reactions.len(), 2, "{items:?}");
    assert_eq!(
        reactions[0]["reaction"],
        json!({"mid": mid, "action": "react", "reaction": "love", "emoji": "\u{2764}\u{fe0f}"})
    );
    assert_eq!(reactions[1]["reaction"], json!({"mid": mid, "action": "unreact"}));
    assert_eq!(
        find("message_edit")[0]["message_edit"],
        json!({"mid": mid, "text": "hi there", "num_edit": 1})
    );
    let postback = &find("postback")[0]["postback"];
    assert_eq!(
        (postback["title"].clone(), postback["payload"].clone()),
        (json!("Start"), json!("GET_STARTED"))
    );
    assert!(postback["mid"].is_string());
    assert_eq!(find("read")[0]["read"], json!({"mid": sent.body["message_id"]}));
    let messages = find("message");
    assert!(messages.iter().any(|m| m["message"]["quick_reply"] == json!({"payload": "YES"})));
    assert!(messages.iter().any(|m| m["message"] == json!({"mid": mid, "is_deleted": true})));

    assert_eq!(changes[0]["field"], "comments");
    assert_eq!(changes[0]["value"]["text"], "love it @acme_shop");
    assert_eq!(changes[0]["value"]["from"], json!({"id": c["igsid"], "username": "shape_sofia"}));
    assert_eq!(changes[0]["value"]["media"]["id"], "17900000000000042");
    assert_eq!(changes[1]["field"], "mentions");
}

#[tokio::test]
async fn subscribed_fields_filter_updates() {
    let env = Env::new().await;
    let rx = Receiver::start("let-me-in").await;
    let (s, v) = subscribe(&env, &rx, json!({"fields": ["message_reactions"]})).await;
    assert_eq!(s, 201, "{v}");
    let c = env.customer("filter_fay").await;
    let said = env.says(&c, "not delivered").await;
    env.act(&c, json!({"reaction": {"mid": said["mid"]}})).await;
    let posts = rx.wait_for(1).await;
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    assert_eq!(rx.posts().len(), 1);
    assert!(messaging(&posts[0])[0].get("reaction").is_some());
}

#[tokio::test]
async fn slow_receivers_time_out_and_dead_ones_are_unsubscribed() {
    let env = Env::new().await;
    let rx = Receiver::start("let-me-in").await;
    let (s, v) = subscribe(&env, &rx, json!({"timeout_ms": 150, "retry_schedule_ms": [10]})).await;
    assert_eq!(s, 201, "{v}");
    let c = env.customer("slow_sid").await;
    rx.slow_next(1);
    env.says(&c, "are you there").await;
    rx.wait_for(2).await;
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let (_, d) = env.control("GET", "/_sandbox/webhooks/deliveries", Value::Null).await;
    let list = d["data"].as_array().unwrap();
    assert_eq!(list[0]["error"], "timeout", "{d}");
    assert_eq!(list[0]["status"], Value::Null);
    assert_eq!(list[1]["outcome"], "delivered");

    // A callback failing for longer than disable_after is unsubscribed, like Meta after an hour.
    let dead = Receiver::start("let-me-in").await;
    let (s, v) = subscribe(
        &env,
        &dead,
        json!({"retry_schedule_ms": [30, 30, 30, 30, 30, 30, 30, 30], "disable_after_ms": 100}),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let dead_id = v["id"].as_str().unwrap().to_owned();
    dead.fail_next(1000);
    env.says(&c, "hello?").await;
    let mut active = true;
    for _ in 0..200 {
        let (_, list) = env.control("GET", "/_sandbox/webhooks", Value::Null).await;
        let sub = list["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == dead_id.as_str())
            .cloned()
            .unwrap();
        active = sub["active"].as_bool().unwrap();
        if !active {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(!active, "the failing subscription must be disabled");
    let (_, d) = env
        .control(
            "GET",
            &format!("/_sandbox/webhooks/deliveries?subscription_id={dead_id}"),
            Value::Null,
        )
        .await;
    assert_eq!(d["data"].as_array().unwrap().last().unwrap()["outcome"], "unsubscribed");
    let before = dead.posts().len();
    env.says(&c, "anyone?").await;
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(dead.posts().len(), before, "no deliveries after unsubscription");
}

#[tokio::test]
async fn entry_time_follows_the_virtual_clock() {
    let env = Env::new().await;
    let rx = Receiver::start("let-me-in").await;
    let (s, v) = subscribe(&env, &rx, json!({})).await;
    assert_eq!(s, 201, "{v}");
    env.advance(10 * 86_400).await;
    let c = env.customer("future_fe").await;
    env.says(&c, "from the future").await;
    let post = &rx.wait_for(1).await[0];
    let payload = post.json();
    let time = payload["entry"][0]["time"].as_i64().unwrap();
    let ts = payload["entry"][0]["messaging"][0]["timestamp"].as_i64().unwrap();
    assert!(time >= ts, "sent after the event: {time} vs {ts}");
    assert!(time - chrono::Utc::now().timestamp_millis() > 9 * 86_400_000);
}

#[tokio::test]
async fn messaging_can_arrive_in_the_changes_shape() {
    let env = Env::new().await;
    let rx = Receiver::start("let-me-in").await;
    let (s, v) = subscribe(&env, &rx, json!({"messages_as_changes": true})).await;
    assert_eq!(s, 201, "{v}");
    let c = env.customer("changes_cleo").await;
    env.says(&c, "same data, other shape").await;
    let post = &rx.wait_for(1).await[0];
    let entry = &post.json()["entry"][0];
    assert!(entry.get("messaging").is_none());
    assert_eq!(entry["changes"][0]["field"], "messages");
    assert_eq!(entry["changes"][0]["value"]["message"]["text"], "same data, other shape");
    assert_eq!(entry["changes"][0]["value"]["sender"]["id"], c["igsid"]);
}
