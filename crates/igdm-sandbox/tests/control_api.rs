//! The `/_sandbox/` control API and the demo seed, over real HTTP.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Web, control, customer, start};
use igdm_sandbox::SandboxEvent;
use serde_json::{Value, json};

#[tokio::test]
async fn accounts_carry_their_credentials() {
    let sb = start().await;
    let base = sb.base_url();
    let (s, biz) = control(
        &base,
        "POST",
        "/_sandbox/accounts",
        Some(json!({"kind": "business", "username": "shop"})),
    )
    .await;
    assert_eq!(s, 200);
    assert!(biz["id"].as_str().unwrap().starts_with("17841"));
    assert!(biz["access_token"].as_str().unwrap().starts_with("IGAA"));
    assert!(biz["page_token"].as_str().unwrap().starts_with("EAA"));
    assert_eq!(biz["page_id"].as_str().unwrap().len(), 15);
    let (s, me) = control(
        &base,
        "POST",
        "/_sandbox/accounts",
        Some(json!({"kind": "personal", "username": "me", "two_factor": true})),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(me["id"], me["pk"]);
    for k in ["sessionid", "csrftoken", "ds_user_id", "mid", "ig_did"] {
        assert!(me["cookies"][k].as_str().is_some_and(|v| !v.is_empty()), "{k}");
    }
    assert!(me.get("access_token").is_none());
    assert_eq!(me["two_factor_code"].as_str().unwrap().len(), 6);
    let (s, _) = control(
        &base,
        "POST",
        "/_sandbox/accounts",
        Some(json!({"kind": "personal", "username": "me"})),
    )
    .await;
    assert_eq!(s, 409, "usernames are unique");
    let (s, _) = control(
        &base,
        "POST",
        "/_sandbox/accounts",
        Some(json!({"kind": "robot", "username": "x"})),
    )
    .await;
    assert_eq!(s, 400);
    let (s, _) = control(&base, "GET", "/_sandbox/accounts/nope", None).await;
    assert_eq!(s, 404);
    sb.shutdown().await;
}

#[tokio::test]
async fn customer_actions_change_data_and_emit_events() {
    let sb = start().await;
    let base = sb.base_url();
    let (_, biz) = control(
        &base,
        "POST",
        "/_sandbox/accounts",
        Some(json!({"kind": "business", "username": "shop"})),
    )
    .await;
    let to = biz["id"].as_str().unwrap();
    let c = customer(&base, "alex").await;
    assert_eq!(c["igsid"].as_str().unwrap().len(), 16);
    let send = format!("/_sandbox/customers/{}/send", c["id"].as_str().unwrap());
    let mut events = sb.sandbox().subscribe();

    let (s, m) =
        control(&base, "POST", &send, Some(json!({"to": to, "text": "is the shop open?"}))).await;
    assert_eq!(s, 200, "{m}");
    let mid = m["mid"].as_str().unwrap().to_owned();
    assert!(mid.starts_with("aWdf"));
    assert!(m["conversation_id"].as_str().unwrap().starts_with("aWdf"));
    let actions = [
        json!({"to": to, "reaction": {"mid": mid, "emoji": "❤️"}}),
        json!({"to": to, "unreact": {"mid": mid}}),
        json!({"to": to, "read": {"mid": mid}}),
        json!({"to": to, "edit": {"mid": mid, "text": "is the shop open today?"}}),
        json!({"to": to, "postback": {"title": "Hours", "payload": "HOURS"}}),
        json!({"to": to, "quick_reply": {"text": "Yes", "payload": "YES"}}),
        json!({"to": to, "story_mention": {"url": "https://lookaside.example/story"}}),
        json!({"to": to, "attachment": {"type": "image", "url": "https://cdn.example/a.jpg"}}),
        json!({"to": to, "referral": {"ref": "summer", "source": "IGME", "type": "OPEN_THREAD"}}),
        json!({"to": to, "comment": {"media_id": "1790_1", "text": "nice"}}),
        json!({"to": to, "unsend": {"mid": mid}}),
    ];
    for a in actions {
        let (s, v) = control(&base, "POST", &send, Some(a.clone())).await;
        assert_eq!(s, 200, "{a} -> {v}");
    }
    let (s, _) = control(&base, "POST", &send, Some(json!({"to": to}))).await;
    assert_eq!(s, 400, "nothing to do");
    let (s, _) =
        control(&base, "POST", &send, Some(json!({"to": to, "unsend": {"mid": "aWdfnope"}}))).await;
    assert_eq!(s, 404);

    let mut kinds = Vec::new();
    while let Ok(e) = events.try_recv() {
        if let SandboxEvent::MessageCreated { is_echo, .. } = &e {
            assert!(!is_echo);
        }
        kinds.push(serde_json::to_value(&e).unwrap()["type"].as_str().unwrap().to_owned());
    }
    for k in [
        "message_created",
        "reaction_changed",
        "read",
        "edited",
        "postback",
        "story_mention",
        "referral",
        "comment",
        "unsent",
    ] {
        assert!(kinds.iter().any(|x| x == k), "{k} missing from {kinds:?}");
    }
    let (_, threads) =
        control(&base, "GET", &format!("/_sandbox/accounts/{to}/threads"), None).await;
    let t = &threads["threads"][0];
    assert_eq!(t["pending"], false, "business threads are not requests");
    assert_eq!(t["visible_items"], 4, "{threads}");
    sb.shutdown().await;
}

#[tokio::test]
async fn clock_sent_log_stats_and_reset() {
    let sb = start().await;
    let base = sb.base_url();
    let (_, before) = control(&base, "GET", "/_sandbox/clock", None).await;
    let (s, after) =
        control(&base, "POST", "/_sandbox/clock/advance", Some(json!({"seconds": 86_400}))).await;
    assert_eq!(s, 200);
    let delta = after["now_us"].as_i64().unwrap() - before["now_us"].as_i64().unwrap();
    assert!((86_400_000_000..86_460_000_000).contains(&delta), "{delta}");
    assert_eq!(after["offset_seconds"], 86_400);
    let (s, _) =
        control(&base, "POST", "/_sandbox/clock/advance", Some(json!({"seconds": -5}))).await;
    assert_eq!(s, 400);

    let web = Web::new(&base, "personal", "maya").await;
    let c = customer(&base, "alex").await;
    let users = format!("[[{}]]", c["pk"].as_str().unwrap());
    let (_, ack) = web
        .post(
            "direct_v2/threads/broadcast/text/",
            &[("recipient_users", &users), ("text", "hey"), ("client_context", "x1")],
        )
        .await;
    // The item's time is on the virtual clock (a day ahead).
    let ts: i64 = ack["payload"]["timestamp"].as_str().unwrap().parse().unwrap();
    assert!(ts >= after["now_us"].as_i64().unwrap());
    let (_, sent) =
        control(&base, "GET", &format!("/_sandbox/accounts/{}/sent", web.id()), None).await;
    let rec = &sent["sent"][0];
    assert_eq!(rec["accepted"], true);
    assert_eq!(rec["text"], "hey");
    assert_eq!(rec["endpoint"], "broadcast/text");
    assert_eq!(rec["item_id"], ack["payload"]["item_id"]);
    web.get("direct_v2/inbox/", &[]).await;

    let (_, stats) = control(&base, "GET", "/_sandbox/stats", None).await;
    let mine = &stats["accounts"][web.id()];
    assert_eq!(mine["private_send"]["requests"], 1, "{stats}");
    assert_eq!(mine["private_read"]["ok"], 1);
    assert!(stats["total"]["requests"].as_u64().unwrap() >= 2);

    let (s, _) = control(&base, "POST", "/_sandbox/reset", None).await;
    assert_eq!(s, 200);
    let (s, _) = web.get("direct_v2/inbox/", &[]).await;
    assert_eq!(s, 403, "sessions are gone after a reset");
    let (_, accounts) = control(&base, "GET", "/_sandbox/accounts", None).await;
    assert_eq!(accounts["accounts"], json!([]));
    let (_, clock) = control(&base, "GET", "/_sandbox/clock", None).await;
    assert_eq!(clock["offset_seconds"], 0);
    sb.shutdown().await;
}

#[tokio::test]
async fn demo_seed_is_realistic() {
    let sb = start().await;
    let base = sb.base_url();
    let (s, seed) = control(&base, "POST", "/_sandbox/seed", Some(json!({"name": "demo"}))).await;
    assert_eq!(s, 200, "{seed}");
    assert_eq!(seed["business"]["kind"], "business");
    assert_eq!(seed["personal"]["kind"], "personal");
    assert!(seed["customers"].as_array().unwrap().len() >= 5);

    // The business's long conversation, read through the private API.
    let biz = Web::for_account(&base, seed["business"].clone());
    let long = seed["long_thread_id"].as_str().unwrap();
    let (s, t) = biz.get(&format!("direct_v2/threads/{long}/"), &[("limit", "100")]).await;
    assert_eq!(s, 200);
    let items = t["thread"]["items"].as_array().unwrap();
    assert!(items.len() > 20, "{}", items.len());
    let types: Vec<&str> = items.iter().map(|i| i["item_type"].as_str().unwrap()).collect();
    for k in ["text", "link", "like", "media"] {
        assert!(types.contains(&k), "{k} in {types:?}");
    }
    assert!(items.iter().any(|i| i.get("replied_to_message").is_some()));
    assert!(items.iter().any(|i| i.get("reactions").is_some()));

    let me = Web::for_account(&base, seed["personal"].clone());
    let (_, inbox) = me.get("direct_v2/inbox/", &[]).await;
    let threads = inbox["inbox"]["threads"].as_array().unwrap();
    let group: Vec<&Value> = threads.iter().filter(|t| t["is_group"] == true).collect();
    assert_eq!(group.len(), 1);
    assert_eq!(group[0]["thread_title"], "Weekend trip");
    assert_eq!(group[0]["users"].as_array().unwrap().len(), 2);
    let (_, pending) = me.get("direct_v2/pending_inbox/", &[]).await;
    assert_eq!(pending["inbox"]["threads"][0]["thread_id"], seed["pending_thread_id"]);
    let (s, _) = control(&base, "POST", "/_sandbox/seed", Some(json!({"name": "demo"}))).await;
    assert_eq!(s, 409, "seeding twice collides on usernames");
    sb.shutdown().await;
}

#[tokio::test]
async fn seeded_media_arrive_as_items_with_working_links_and_bad_bytes_are_refused() {
    use base64::Engine as _;
    use sha2::Digest as _;
    let sb = start().await;
    let base = sb.base_url();
    let (_, me) = control(
        &base,
        "POST",
        "/_sandbox/accounts",
        Some(json!({"kind": "personal", "username": "me"})),
    )
    .await;
    let me = me["id"].as_str().unwrap().to_owned();
    let sam = customer(&base, "sam").await;
    let from = sam["pk"].as_str().unwrap();
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let photo = [0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3];
    let voice = b"\x00\x00\x00\x18ftypM4A \x00\x00\x02\x00";
    let (s, v) = control(
        &base,
        "POST",
        "/_sandbox/media/seed",
        Some(json!({"to": me, "from": from, "media": [
            {"type": "image", "base64": b64(&photo)},
            {"type": "audio", "base64": b64(voice)},
        ]})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let items = v["items"].as_array().unwrap();
    let kinds: Vec<&str> = items.iter().map(|i| i["item_type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["media", "voice_media"]);
    assert_eq!(items[0]["sha256"], json!(hex::encode(sha2::Sha256::digest(photo))));
    // The thread serves them from CDN links, like uploads.
    let (_, media) = control(&base, "GET", "/_sandbox/media", None).await;
    let listed = media["media"].as_array().unwrap();
    assert!(
        listed.iter().any(|m| m["media_id"] == items[1]["media_id"] && m["owner"] == json!(from))
    );

    for (body, want) in [
        (json!({"to": me, "from": from, "media": [{"type": "image", "base64": b64(voice)}]}), 400),
        (json!({"to": me, "from": from, "media": [{"type": "gif", "base64": b64(&photo)}]}), 400),
        (json!({"to": me, "from": from, "media": [{"type": "image", "base64": "%%"}]}), 400),
        (
            json!({"to": me, "from": "404", "media": [{"type": "image", "base64": b64(&photo)}]}),
            404,
        ),
    ] {
        let (s, v) = control(&base, "POST", "/_sandbox/media/seed", Some(body)).await;
        assert_eq!(s, want, "{v}");
        assert!(v["error"].as_str().is_some(), "{v}");
    }
}
