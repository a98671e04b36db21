//! The receiver end to end over real HTTP against a real SQLite store (and
//! PostgreSQL where configured): verification, signatures, limits, every
//! event kind, duplicates, reordering, batches, sinks and shutdown.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use igdm_model::{ContentType, Event, EventKind, Timestamp};
use igdm_store::MessageStore;
use igdm_webhook::{EventOutput, ForwardConfig, sign, verify};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verification_handshake() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start(sqlite_store(&dir).await, config()).await;
    let get = |q: &'static str| {
        let c = srv.client.clone();
        let url = format!("{}?{q}", srv.url());
        async move {
            let r = c.get(url).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    assert_eq!(
        get("hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=test-verify-token").await,
        (200, "1158201444".to_owned())
    );
    assert_eq!(get("hub.mode=subscribe&hub.challenge=1&hub.verify_token=wrong").await.0, 403);
    assert_eq!(
        get("hub.mode=unsubscribe&hub.challenge=1&hub.verify_token=test-verify-token").await.0,
        403
    );
    assert_eq!(get("hub.mode=subscribe&hub.challenge=1").await.0, 403);
    assert_eq!(get("").await.0, 403);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_signatures_oversize_and_malformed_bodies() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite_store(&dir).await;
    let mut cfg = config();
    cfg.body_limit = 64 * 1024;
    let srv = start(store.clone(), cfg).await;
    let body = envelope(vec![customer_msg("900", "m1", 1_790_000_000_000, json!({"text": "hi"}))])
        .to_string();

    // Missing, wrong and stale signatures: 401, nothing stored.
    let r = srv.client.post(srv.url()).body(body.clone()).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let wrong = sign(b"another-secret", body.as_bytes());
    let r = srv
        .client
        .post(srv.url())
        .header("x-hub-signature-256", wrong)
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let tampered = body.replace("hi", "ho");
    let r = srv
        .client
        .post(srv.url())
        .header("x-hub-signature-256", sign(SECRET.as_bytes(), body.as_bytes()))
        .body(tampered)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = srv
        .client
        .post(srv.url())
        .header("x-hub-signature-256", "sha1=abc")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(store.event_log_counts().await.unwrap().deliveries, 0);

    // Over the limit: 413, even when signed.
    let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(100 * 1024));
    assert_eq!(srv.post_signed(big.as_bytes()).await, 413);
    assert_eq!(store.event_log_counts().await.unwrap().deliveries, 0);

    // Signed but unparseable: kept as dead letters and acknowledged.
    assert_eq!(srv.post_signed(b"{not json").await, 200);
    assert_eq!(srv.post_signed(br#"{"object":"instagram"}"#).await, 200);
    let counts = store.event_log_counts().await.unwrap();
    assert_eq!(counts.dead_letters, 2);
    assert_eq!(counts.deliveries, 2);

    // A Facebook Page's Messenger delivery (Meta's `standby` example, object
    // `page`): kept and acknowledged, never applied as Instagram events.
    let page = br#"{"object":"page","entry":[{"id":"1234","time":1458692752478,"messaging":[{"sender":{"id":"55"},"recipient":{"id":"1234"},"timestamp":1458692752478,"message":{"mid":"m_page_1","text":"from Messenger"}}]}]}"#;
    assert_eq!(srv.post_signed(page).await, 200);
    let counts = store.event_log_counts().await.unwrap();
    assert_eq!((counts.deliveries, counts.dead_letters), (3, 3), "{counts:?}");

    let m = srv.metrics_text().await;
    assert!(m.contains("igdm_webhook_rejected_total{reason=\"signature\"} 4"), "{m}");
    assert!(m.contains("igdm_webhook_rejected_total{reason=\"too_large\"} 1"), "{m}");
    assert!(m.contains("igdm_webhook_dead_letters_total 3"), "{m}");
    let health = srv.client.get(format!("{}/healthz", srv.base)).send().await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_kind_reaches_the_store_and_the_channel() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite_store(&dir).await;
    let mut srv = start(store.clone(), config()).await;
    let c = "900";
    let t0: i64 = 1_790_000_000_000;
    let body = json!({"object": "instagram", "entry": [{
        "id": ACCOUNT, "time": t0 + 100,
        "messaging": [
            customer_msg(c, "m1", t0, json!({"text": "hello"})),
            customer_msg(c, "m2", t0 + 1, json!({"attachments": [{"type": "image", "payload": {"url": "https://cdn.example/i.jpg"}}]})),
            {"sender": {"id": ACCOUNT}, "recipient": {"id": c}, "timestamp": t0 + 2, "message": {"mid": "m3", "text": "reply", "is_echo": true}},
            from_customer(c, t0 + 3, "reaction", json!({"mid": "m3", "action": "react", "reaction": "love", "emoji": "❤️"})),
            from_customer(c, t0 + 4, "message_edit", json!({"mid": "m1", "text": "hello (edited)", "num_edit": 1})),
            customer_msg(c, "m4", t0 + 5, json!({"text": "oops"})),
            customer_msg(c, "m4", t0 + 6, json!({"is_deleted": true})),
            from_customer(c, t0 + 7, "postback", json!({"mid": "pb1", "title": "Hours", "payload": "HOURS"})),
            from_customer(c, t0 + 8, "read", json!({"mid": "m3"})),
            from_customer(c, t0 + 9, "referral", json!({"ref": "promo", "source": "SHORTLINK", "type": "OPEN_THREAD"})),
            from_customer(c, t0 + 10, "pass_thread_control", json!({"previous_owner_app_id": "1", "new_owner_app_id": "2", "metadata": "to humans"})),
            from_customer(c, t0 + 11, "optin", json!({"type": "notification_messages", "payload": "deals"})),
            customer_msg(c, "m5", t0 + 12, json!({"attachments": [{"type": "story_mention", "payload": {"url": "https://cdn.example/s"}}]})),
            customer_msg(c, "m6", t0 + 13, json!({"text": "nice story", "reply_to": {"story": {"url": "https://cdn.example/st", "id": "st1"}}})),
            customer_msg(c, "m7", t0 + 14, json!({"attachments": [{"type": "ig_reel", "payload": {"url": "https://cdn.example/r", "title": "reel"}}]})),
            customer_msg(c, "m8", t0 + 15, json!({"text": "Yes", "quick_reply": {"payload": "YES"}, "reply_to": {"mid": "m3"}})),
        ],
        "standby": [customer_msg(c, "m9", t0 + 16, json!({"text": "while another app is in control"}))],
        "changes": [
            {"field": "messages", "value": customer_msg("901", "m10", t0 + 17, json!({"text": "via changes"}))},
            {"field": "comments", "value": {"id": "cm1", "from": {"id": "902", "username": "bob"}, "text": "love it", "media": {"id": "med1", "media_product_type": "FEED"}}},
            {"field": "mentions", "value": {"media_id": "med2", "comment_id": "cm2"}},
            {"field": "story_insights", "value": {"media_id": "med3", "impressions": 7}}
        ]
    }]});
    assert_eq!(srv.post_json(&body).await, 200);
    let events = srv.next_events(21).await;
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
            "handover",
            "comment",
            "mention",
            "optin",
            "story_insights",
        ],
    );

    let s = &*store;
    let m1 = s.get_message(ACCOUNT, c, "m1").await.unwrap().unwrap();
    assert_eq!(m1.text.as_deref(), Some("hello (edited)"));
    assert!(m1.edited_at.is_some());
    assert_eq!(m1.timestamp, Timestamp::from_unix_millis(t0).unwrap());
    let m2 = s.get_message(ACCOUNT, c, "m2").await.unwrap().unwrap();
    assert_eq!(m2.content_type, ContentType::Image);
    assert_eq!(m2.attachments[0].url.as_deref(), Some("https://cdn.example/i.jpg"));
    let m3 = s.get_message(ACCOUNT, c, "m3").await.unwrap().unwrap();
    assert!(m3.sender.is_self, "echo stored as outgoing");
    assert_eq!(m3.sender.id.as_str(), ACCOUNT);
    assert_eq!(m3.reactions.len(), 1);
    assert_eq!(m3.reactions[0].sender_id.as_str(), c);
    assert!(s.get_message(ACCOUNT, c, "m4").await.unwrap().unwrap().is_deleted);
    assert_eq!(
        s.get_message(ACCOUNT, c, "m5").await.unwrap().unwrap().content_type,
        ContentType::StoryMention
    );
    assert_eq!(
        s.get_message(ACCOUNT, c, "m6").await.unwrap().unwrap().content_type,
        ContentType::StoryReply
    );
    assert_eq!(
        s.get_message(ACCOUNT, c, "m7").await.unwrap().unwrap().content_type,
        ContentType::ReelShare
    );
    let m8 = s.get_message(ACCOUNT, c, "m8").await.unwrap().unwrap();
    assert_eq!(m8.reply_to.unwrap().message_id.unwrap().as_str(), "m3");
    assert!(s.get_message(ACCOUNT, c, "m9").await.unwrap().is_some(), "standby message stored");
    assert!(
        s.get_message(ACCOUNT, "901", "m10").await.unwrap().is_some(),
        "changes-shaped message stored"
    );

    let conv = s.get_conversation(ACCOUNT, c).await.unwrap().unwrap();
    let last_customer = Timestamp::from_unix_millis(t0 + 16).unwrap();
    assert_eq!(
        conv.reply_window_ends_at,
        Some(Timestamp(last_customer.0 + chrono::TimeDelta::hours(24)))
    );
    assert!(s.get_user(ACCOUNT, c).await.unwrap().is_some());
    assert!(s.get_user(ACCOUNT, "902").await.unwrap().is_some(), "commenter stored");
    let receipt = s.get_raw_payload(ACCOUNT, "read_receipt", c).await.unwrap().unwrap();
    assert_eq!(receipt["message_id"], "m3");
    assert!(s.get_raw_payload(ACCOUNT, "thread_control", c).await.unwrap().is_some());
    assert!(s.get_raw_payload(ACCOUNT, "comment", "cm1").await.unwrap().is_some());

    let m = srv.metrics_text().await;
    assert!(m.contains("igdm_webhook_unknown_kinds_total 1"), "{m}");
    assert!(m.contains("igdm_webhook_events_processed_total 21"), "{m}");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_apply_once_and_order_does_not_matter() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite_store(&dir).await;
    let mut srv = start(store.clone(), config()).await;
    let c = "777";
    let t0: i64 = 1_790_000_100_000;
    // Edit, reaction and unsend arrive before the messages they concern.
    let early = envelope(vec![
        from_customer(
            c,
            t0 + 50,
            "message_edit",
            json!({"mid": "x1", "text": "second thoughts", "num_edit": 1}),
        ),
        from_customer(
            c,
            t0 + 51,
            "reaction",
            json!({"mid": "x1", "action": "react", "reaction": "love", "emoji": "❤️"}),
        ),
        customer_msg(c, "x2", t0 + 52, json!({"is_deleted": true})),
    ]);
    let late = envelope(vec![
        customer_msg(c, "x1", t0, json!({"text": "first thoughts"})),
        customer_msg(c, "x2", t0 + 1, json!({"text": "never mind"})),
    ]);
    assert_eq!(srv.post_json(&early).await, 200);
    assert_eq!(srv.post_json(&late).await, 200);
    // Meta retries both, and a third delivery repeats one item next to a new one.
    assert_eq!(srv.post_json(&early).await, 200);
    assert_eq!(srv.post_json(&late).await, 200);
    let mixed = envelope(vec![
        customer_msg(c, "x1", t0, json!({"text": "first thoughts"})),
        customer_msg(c, "x3", t0 + 60, json!({"text": "new"})),
    ]);
    assert_eq!(srv.post_json(&mixed).await, 200);

    let events = srv.next_events(6).await;
    srv.assert_no_more_events(Duration::from_millis(500)).await;
    let mut per_key: BTreeMap<(String, Option<String>), usize> = BTreeMap::new();
    for e in &events {
        *per_key.entry((e.kind.as_str().to_owned(), e.message_id.clone())).or_default() += 1;
    }
    assert!(per_key.values().all(|n| *n == 1), "an event was applied twice: {per_key:?}");

    let x1 = store.get_message(ACCOUNT, c, "x1").await.unwrap().unwrap();
    assert_eq!(x1.text.as_deref(), Some("second thoughts"), "edit that came first is applied");
    assert_eq!(x1.reactions.len(), 1, "reaction that came first is kept");
    assert!(
        store.get_message(ACCOUNT, c, "x2").await.unwrap().unwrap().is_deleted,
        "unsend that came first is kept"
    );
    let counts = store.event_log_counts().await.unwrap();
    assert_eq!(counts.deliveries, 5);
    assert_eq!(counts.dedup_hits, 6);
    assert_eq!(counts.done, 6);
    let m = srv.metrics_text().await;
    assert!(m.contains("igdm_webhook_dedup_hits_total 6"), "{m}");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_1000_events_in_one_post() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite_store(&dir).await;
    let mut srv = start(store.clone(), config()).await;
    let t0: i64 = 1_790_000_200_000;
    let items = (0..1000)
        .map(|i| {
            customer_msg(
                &format!("c{}", i % 10),
                &format!("b{i}"),
                t0 + i,
                json!({"text": format!("batch item {i} ✓ / é")}),
            )
        })
        .collect();
    let body = envelope(items).to_string();
    assert!(body.len() < 4 * 1024 * 1024);
    assert_eq!(srv.post_signed(body.as_bytes()).await, 200);
    let events = srv.next_events(1000).await;
    assert_eq!(events.iter().map(|e| e.message_id.clone()).collect::<HashSet<_>>().len(), 1000);
    for conv in 0..10 {
        let page = store.list_messages(ACCOUNT, &format!("c{conv}"), 200, None).await.unwrap();
        assert_eq!(page.items.len(), 100, "conversation c{conv}");
    }
    let b999 = store.get_message(ACCOUNT, "c9", "b999").await.unwrap().unwrap();
    assert_eq!(b999.text.as_deref(), Some("batch item 999 ✓ / é"));
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_file_and_signed_forward_hook_with_retry() {
    use axum::body::Bytes;
    use axum::http::{HeaderMap, StatusCode};

    // A hook that fails its first request, then accepts, and checks signatures.
    let seen: Arc<Mutex<(usize, Vec<Event>)>> = Arc::default();
    let hook_seen = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let seen = hook_seen.clone();
            async move {
                let sig = headers
                    .get("x-hub-signature-256")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                if !verify(b"forward-secret", &body, sig) {
                    return StatusCode::UNAUTHORIZED;
                }
                let mut g = seen.lock().unwrap();
                g.0 += 1;
                if g.0 == 1 {
                    return StatusCode::INTERNAL_SERVER_ERROR;
                }
                g.1.push(serde_json::from_slice(&body).unwrap());
                StatusCode::OK
            }
        }),
    );
    let hook = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_url = format!("http://{}/hook", hook.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(hook, app).await.unwrap() });

    let dir = tempfile::tempdir().unwrap();
    let store = sqlite_store(&dir).await;
    let events_path = dir.path().join("events.jsonl");
    let mut cfg = config();
    cfg.events = Some(EventOutput::File(events_path.clone()));
    let mut fwd = ForwardConfig::new(hook_url, "forward-secret");
    fwd.initial_backoff = Duration::from_millis(20);
    cfg.forward = Some(fwd);
    let srv = start(store, cfg).await;
    let t0: i64 = 1_790_000_300_000;
    let body = envelope(vec![
        customer_msg("555", "f1", t0, json!({"text": "one"})),
        from_customer("555", t0 + 1, "postback", json!({"title": "Go", "payload": "GO"})),
    ]);
    assert_eq!(srv.post_json(&body).await, 200);
    wait_until("two forwarded events", || {
        let seen = seen.clone();
        async move { seen.lock().unwrap().1.len() >= 2 }
    })
    .await;
    srv.stop().await;

    let (attempts, forwarded) = seen.lock().unwrap().clone();
    assert_eq!(attempts, 3, "the first attempt failed and was retried");
    assert_eq!(forwarded.len(), 2);
    let lines: Vec<Event> = std::fs::read_to_string(&events_path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0].kind, EventKind::Message);
    assert_eq!(lines[0].text.as_deref(), Some("one"));
    assert_eq!(lines[1].kind, EventKind::Postback);
    assert_eq!(lines[1].postback.as_ref().unwrap().payload.as_deref(), Some("GO"));
    let raw: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(&events_path).unwrap().lines().next().unwrap(),
    )
    .unwrap();
    assert!(raw.get("reaction").is_none(), "fields that do not apply are absent");
    assert_eq!(raw["timestamp"], "2026-09-21T14:18:20Z");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_drains_pending_events() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite_store(&dir).await;
    let mut cfg = config();
    cfg.workers = Some(1);
    cfg.claim_batch = 8;
    let srv = start(store.clone(), cfg).await;
    let t0: i64 = 1_790_000_400_000;
    let posts = (0..40).map(|i| {
        let body =
            envelope(vec![customer_msg("444", &format!("g{i}"), t0 + i, json!({"text": "x"}))]);
        post_signed(&srv.client, srv.url(), body.to_string().into_bytes())
    });
    let statuses = futures::future::join_all(posts).await;
    assert!(statuses.iter().all(|s| *s == 200));
    srv.stop().await;
    let counts = store.event_log_counts().await.unwrap();
    assert_eq!((counts.done, counts.pending, counts.processing), (40, 0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_share_one_postgres_schema() {
    let Some(schema) = pg_schema("two_servers_share_one_postgres_schema").await else { return };
    let a_store = Arc::new(schema.store().await);
    let b_store = Arc::new(schema.store().await);
    let mut a = start(a_store.clone(), config()).await;
    let mut b = start(b_store.clone(), config()).await;
    let t0: i64 = 1_790_000_500_000;
    // 60 deliveries, each sent to both servers at once, as two Meta retries would.
    let mut sends = Vec::new();
    for i in 0..60 {
        let body = envelope(vec![
            customer_msg(
                &format!("p{}", i % 6),
                &format!("pg{i}"),
                t0 + i,
                json!({"text": format!("n{i}")}),
            ),
            from_customer(
                &format!("p{}", i % 6),
                t0 + i + 1000,
                "read",
                json!({"mid": format!("pg{i}")}),
            ),
        ])
        .to_string();
        for srv in [&a, &b] {
            sends.push(post_signed(&srv.client, srv.url(), body.clone().into_bytes()));
        }
    }
    let statuses = futures::future::join_all(sends).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    wait_until("both servers to finish", || {
        let s = a_store.clone();
        async move {
            let c = s.event_log_counts().await.unwrap();
            c.done == 120 && c.pending == 0 && c.processing == 0
        }
    })
    .await;
    // Each event was processed by exactly one of the two servers.
    let mut got = Vec::new();
    for srv in [&mut a, &mut b] {
        while let Ok(e) = srv.events.try_recv() {
            got.push(e);
        }
    }
    assert_eq!(got.len(), 120, "each event processed once across both servers");
    let keys: HashSet<_> =
        got.iter().map(|e| (e.kind.as_str().to_owned(), e.message_id.clone())).collect();
    assert_eq!(keys.len(), 120);
    let counts = a_store.event_log_counts().await.unwrap();
    assert_eq!(counts.deliveries, 120);
    assert_eq!(counts.dedup_hits, 120);
    assert_eq!(a_store.list_messages(ACCOUNT, "p0", 100, None).await.unwrap().items.len(), 10);
    a.stop().await;
    b.stop().await;
}

/// Every event passes through the log's claims when the local queue is off
/// or full: nothing is lost or processed twice on the way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_past_the_local_queue_are_claimed_from_the_log() {
    for capacity in [0, 3] {
        let dir = tempfile::tempdir().unwrap();
        let store = sqlite_store(&dir).await;
        let mut cfg = config();
        cfg.local_queue = capacity;
        cfg.batch_window = Duration::from_millis(50);
        let mut srv = start(store.clone(), cfg).await;
        let t0: i64 = 1_790_000_600_000;
        let posts = (0..40).map(|i| {
            let body = envelope(vec![customer_msg(
                "555",
                &format!("q{capacity}-{i}"),
                t0 + i,
                json!({"text": format!("n{i}")}),
            )]);
            post_signed(&srv.client, srv.url(), body.to_string().into_bytes())
        });
        assert!(futures::future::join_all(posts).await.iter().all(|s| *s == 200));
        let events = srv.next_events(40).await;
        let ids: HashSet<_> = events.iter().map(|e| e.message_id.clone()).collect();
        assert_eq!(ids.len(), 40, "capacity {capacity}: each event once");
        srv.stop().await;
        let counts = store.event_log_counts().await.unwrap();
        assert_eq!((counts.done, counts.pending, counts.processing), (40, 0, 0));
        let page = store.list_messages(ACCOUNT, "555", 100, None).await.unwrap();
        assert_eq!(page.items.len(), 40, "capacity {capacity}");
    }
}

/// A receiver that stopped between acknowledging deliveries and expanding
/// them leaves them unexpanded in the log, leased to it. Once the lease runs
/// out another server claims them, parses the stored bodies, and stores
/// their events (or dead letters) once, even when a retry of the same
/// delivery came through that server first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_left_unexpanded_are_expanded_by_another_server() {
    let dir = tempfile::tempdir().unwrap();
    left_unexpanded_case(sqlite_store(&dir).await).await;
    // On PostgreSQL the receiver itself appends raw deliveries, so the retry
    // below is expanded through the same path as the stopped receiver's.
    let Some(schema) = pg_schema("deliveries_left_unexpanded_are_expanded_by_another_server").await
    else {
        return;
    };
    left_unexpanded_case(Arc::new(schema.store().await)).await;
}

async fn left_unexpanded_case(store: Arc<dyn MessageStore>) {
    let t0: i64 = 1_790_000_900_000;
    let body = |i: i64| {
        envelope(vec![customer_msg("444", &format!("u{i}"), t0 + i, json!({"text": "left"}))])
            .to_string()
    };
    let bodies: Vec<String> = (0..5).map(body).collect();
    let now = Timestamp::now();
    let mut raw: Vec<igdm_store::RawDelivery<'_>> = bodies
        .iter()
        .map(|b| igdm_store::RawDelivery { raw_body: b.as_bytes(), received_at: now })
        .collect();
    raw.push(igdm_store::RawDelivery { raw_body: b"{not json", received_at: now });
    let expired = Timestamp(now.0 - chrono::TimeDelta::seconds(1));
    let dead = igdm_store::Lease { owner: "stopped-receiver", until: expired };
    store.append_unexpanded(&raw, Some(dead)).await.unwrap();
    let mut srv = start(store.clone(), config()).await;
    // Meta retries one of them at the new server.
    assert_eq!(srv.post_signed(bodies[2].as_bytes()).await, 200);
    let events = srv.next_events(5).await;
    let ids: HashSet<_> = events.iter().map(|e| e.message_id.clone().unwrap()).collect();
    assert_eq!(ids, (0..5).map(|i| format!("u{i}")).collect::<HashSet<_>>());
    srv.assert_no_more_events(Duration::from_millis(300)).await;
    let c = store.event_log_counts().await.unwrap();
    assert_eq!((c.deliveries, c.unexpanded, c.done, c.dead_letters), (7, 0, 5, 1), "{c:?}");
    assert_eq!(c.dedup_hits, 1, "the retry's event was stored once");
    let m = srv.metrics_text().await;
    assert!(m.contains("igdm_webhook_dead_letters_total 1"), "{m}");
    assert!(m.contains("igdm_webhook_dedup_hits_total 1"), "{m}");
    assert!(m.contains("igdm_webhook_deliveries_unexpanded 0"), "{m}");
    srv.stop().await;
}

/// With the log in a database file of its own, deliveries and events stay
/// there and the messages land in the message store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_can_live_in_a_database_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let url = |f: &str| format!("sqlite://{}?mode=rwc", dir.path().join(f).display());
    let log = igdm_store::Store::open(&url("igdm.webhooks.db")).await.unwrap();
    let messages = igdm_store::Store::open(&url("igdm.db")).await.unwrap();
    let pipeline =
        igdm_webhook::StoreLog::from_stores(log.clone(), messages.clone()).await.unwrap();
    let mut srv = start_log(pipeline, config()).await;
    let t0: i64 = 1_790_000_700_000;
    for i in 0..5 {
        let body = envelope(vec![customer_msg(
            "666",
            &format!("s{i}"),
            t0 + i,
            json!({"text": format!("own file {i}")}),
        )]);
        assert_eq!(srv.post_json(&body).await, 200);
    }
    assert_eq!(srv.next_events(5).await.len(), 5);
    srv.stop().await;
    let in_log = log.event_log_counts().await.unwrap();
    assert_eq!((in_log.deliveries, in_log.done), (5, 5));
    assert_eq!(messages.event_log_counts().await.unwrap().deliveries, 0);
    assert_eq!(messages.list_messages(ACCOUNT, "666", 10, None).await.unwrap().items.len(), 5);
    assert!(log.list_messages(ACCOUNT, "666", 10, None).await.unwrap().items.is_empty());
    let conv = messages.get_conversation(ACCOUNT, "666").await.unwrap().unwrap();
    assert!(conv.reply_window_ends_at.is_some());
}

/// Events the drain does not reach are given back at shutdown: the next
/// server processes them at once, not after the 60-second lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_gives_back_what_it_did_not_process() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite_store(&dir).await;
    let mut cfg = config();
    cfg.batch_window = Duration::from_secs(30);
    cfg.poll_interval = Duration::from_secs(30);
    cfg.drain_timeout = Duration::ZERO;
    let srv = start(store.clone(), cfg).await;
    let t0: i64 = 1_790_000_800_000;
    for i in 0..20 {
        let body =
            envelope(vec![customer_msg("777", &format!("r{i}"), t0 + i, json!({"text": "x"}))]);
        assert_eq!(srv.post_json(&body).await, 200);
    }
    srv.stop().await;
    let c = store.event_log_counts().await.unwrap();
    assert_eq!(c.processing, 0, "nothing stays leased to a stopped server: {c:?}");
    // One event per delivery: what was not processed is either a pending
    // event or a delivery not yet expanded into its event.
    assert_eq!(c.pending + c.done + c.unexpanded, 20, "{c:?}");
    let left = c.pending + c.unexpanded;
    assert!(left > 0, "the drain was cut short, so some work was left: {c:?}");
    let released = store.claim_events("peek", 100, Duration::from_millis(1)).await.unwrap();
    assert!(released.iter().all(|e| e.attempts == 1), "a release is not an attempt");
    let unleased = store.claim_unexpanded("peek", 100, Duration::from_millis(1)).await.unwrap();
    assert_eq!(unleased.len() as u64, c.unexpanded, "no delivery stays leased to a stopped server");
    // Give the peeked claims back by letting their 1 ms lease run out.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let mut next = start(store.clone(), config()).await;
    next.next_events(usize::try_from(left).unwrap()).await;
    wait_until("the restarted server to process the released events", || {
        let s = store.clone();
        async move { s.event_log_counts().await.unwrap().done == 20 }
    })
    .await;
    next.stop().await;
}

#[tokio::test]
async fn processing_workers_default_to_what_the_backend_can_use() {
    use igdm_webhook::{StoreLog, WebhookStore as _};
    // SQLite writes one transaction at a time per file: one worker, so that
    // a burst leaves the CPU to the receiver. PostgreSQL applies in parallel.
    let dir = tempfile::tempdir().unwrap();
    let sqlite = StoreLog::new(sqlite_store(&dir).await);
    assert_eq!(sqlite.processing_workers(), 1);
    let Some(schema) = pg_schema("processing_workers_default_to_what_the_backend_can_use").await
    else {
        return;
    };
    let pg = StoreLog::new(Arc::new(schema.store().await));
    assert_eq!(pg.processing_workers(), 2);
    // Processing waits for a busy receiver on PostgreSQL only; on SQLite
    // the log's write gate already puts acknowledgements first.
    assert_eq!(sqlite.defer_while_busy(), Duration::ZERO);
    assert_eq!(pg.defer_while_busy(), Duration::from_secs(5));
}

/// A real pipeline whose appends of bodies containing `HOLD` wait until
/// [`HeldAppends::release`]: the receiver then has a delivery waiting for
/// its acknowledgement for as long as a test needs.
struct HeldAppends {
    inner: igdm_webhook::StoreLog,
    entered: tokio::sync::Semaphore,
    released: tokio::sync::Semaphore,
}

const HOLD: &[u8] = b"hold-this-append";

impl HeldAppends {
    fn release(&self) {
        self.released.add_permits(1);
    }
}

impl igdm_webhook::WebhookStore for HeldAppends {
    fn append_deliveries<'a>(
        &'a self,
        batch: &'a [igdm_webhook::NewDelivery],
        lease: Option<igdm_webhook::Lease<'a>>,
    ) -> igdm_webhook::StoreFuture<'a, Vec<igdm_webhook::DeliveryReceipt>> {
        Box::pin(async move {
            if batch.iter().any(|d| d.raw_body.windows(HOLD.len()).any(|w| w == HOLD)) {
                self.entered.add_permits(1);
                self.released.acquire().await?.forget();
            }
            self.inner.append_deliveries(batch, lease).await
        })
    }
    fn expand_deliveries<'a>(
        &'a self,
        batch: &'a [igdm_webhook::Expansion<'a>],
        lease: Option<igdm_webhook::Lease<'a>>,
    ) -> igdm_webhook::StoreFuture<'a, Vec<Option<igdm_webhook::ExpansionReceipt>>> {
        self.inner.expand_deliveries(batch, lease)
    }
    fn claim_deliveries<'a>(
        &'a self,
        owner: &'a str,
        limit: usize,
        lease: Duration,
    ) -> igdm_webhook::StoreFuture<'a, Vec<igdm_webhook::ClaimedDelivery>> {
        self.inner.claim_deliveries(owner, limit, lease)
    }
    fn claim_events<'a>(
        &'a self,
        worker_id: &'a str,
        limit: usize,
        lease: Duration,
    ) -> igdm_webhook::StoreFuture<'a, Vec<igdm_webhook::ClaimedEvent>> {
        self.inner.claim_events(worker_id, limit, lease)
    }
    fn complete_events<'a>(&'a self, ids: &'a [i64]) -> igdm_webhook::StoreFuture<'a, ()> {
        self.inner.complete_events(ids)
    }
    fn fail_event<'a>(
        &'a self,
        id: i64,
        error: &'a str,
        retry_after: Option<Duration>,
    ) -> igdm_webhook::StoreFuture<'a, ()> {
        self.inner.fail_event(id, error, retry_after)
    }
    fn apply_event<'a>(&'a self, event: &'a Event) -> igdm_webhook::StoreFuture<'a, ()> {
        self.inner.apply_event(event)
    }
    fn apply_events<'a>(&'a self, events: &'a [Event]) -> igdm_webhook::StoreFuture<'a, ()> {
        self.inner.apply_events(events)
    }
    fn counts(&self) -> igdm_webhook::StoreFuture<'_, igdm_webhook::LogCounts> {
        self.inner.counts()
    }
    fn processing_workers(&self) -> usize {
        self.inner.processing_workers()
    }
    fn commit_concurrency(&self) -> usize {
        self.inner.commit_concurrency()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processing_waits_for_a_busy_receiver_but_not_forever() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite_store(&dir).await;
    let held = Arc::new(HeldAppends {
        inner: igdm_webhook::StoreLog::new(store.clone()),
        entered: tokio::sync::Semaphore::new(0),
        released: tokio::sync::Semaphore::new(0),
    });
    let mut c = config();
    c.defer_while_busy = Some(Duration::from_millis(1500));
    let mut server = start_arc(held.clone(), c).await;

    // A delivery whose append is held keeps the receiver busy.
    let text = String::from_utf8(HOLD.to_vec()).unwrap();
    let busy =
        envelope(vec![customer_msg("c1", "m-held", 1_790_000_000_000, json!({"text": text}))]);
    let (url, body) = (server.url(), serde_json::to_vec(&busy).unwrap());
    let held_post =
        tokio::spawn(async move { post_signed(&reqwest::Client::new(), url, body).await });
    let entered = tokio::time::timeout(Duration::from_secs(10), held.entered.acquire()).await;
    entered.unwrap().unwrap().forget();

    // Another delivery is acknowledged (the second commit slot), but its
    // processing waits while the first waits for its acknowledgement...
    let next =
        envelope(vec![customer_msg("c2", "m-next", 1_790_000_000_001, json!({"text": "hi"}))]);
    assert_eq!(server.post_json(&next).await, 200);
    server.assert_no_more_events(Duration::from_millis(700)).await;
    assert!(store.get_message(ACCOUNT, "c2", "m-next").await.unwrap().is_none());

    // ...at most `defer_while_busy`: then it is processed, busy or not.
    let processed = server.next_events(1).await;
    assert_eq!(processed[0].message_id.as_deref(), Some("m-next"));
    assert!(!held_post.is_finished(), "the receiver was no longer busy");
    let text = server.metrics_text().await;
    let deferred: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("igdm_webhook_processing_deferred_seconds_total "))
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(deferred >= 0.7, "the wait is counted: {deferred} s");

    held.release();
    assert_eq!(held_post.await.unwrap(), 200);
    let processed = server.next_events(1).await;
    assert_eq!(processed[0].message_id.as_deref(), Some("m-held"));
    server.stop().await;
}
