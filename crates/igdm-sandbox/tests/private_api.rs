//! The private web API over real HTTP: shapes, auth, paging, idempotency.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Web, control, customer, customer_says, start};
use serde_json::{Value, json};

fn is_digits(v: &Value, min: usize, max: usize) -> bool {
    v.as_str()
        .is_some_and(|s| s.len() >= min && s.len() <= max && s.bytes().all(|b| b.is_ascii_digit()))
}

/// Starts a thread from the account to a new customer; returns the thread id.
async fn open_thread(web: &Web, username: &str) -> (String, Value) {
    let c = customer(&web.base, username).await;
    let users = format!("[[{}]]", c["pk"].as_str().unwrap());
    let cc = format!("69{}", c["pk"].as_str().unwrap());
    let (s, ack) = web
        .post(
            "direct_v2/threads/broadcast/text/",
            &[("recipient_users", &users), ("text", "hello"), ("client_context", &cc)],
        )
        .await;
    assert_eq!(s, 200, "{ack}");
    (ack["payload"]["thread_id"].as_str().unwrap().to_owned(), c)
}

#[tokio::test]
async fn broadcast_ack_thread_shape_and_recipient_reuse() {
    let sb = start().await;
    let web = Web::new(&sb.base_url(), "personal", "maya").await;
    let c = customer(&sb.base_url(), "alex").await;
    let users = format!("[[{}]]", c["pk"].as_str().unwrap());
    let (s, ack) = web
        .post(
            "direct_v2/threads/broadcast/text/",
            &[
                ("recipient_users", &users),
                ("text", "hi there"),
                ("client_context", "c-1"),
                ("action", "send_item"),
            ],
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(ack["action"], "item_ack");
    assert_eq!(ack["status_code"], "200");
    assert_eq!(ack["status"], "ok");
    assert_eq!(ack["payload"]["client_context"], "c-1");
    let thread_id = ack["payload"]["thread_id"].as_str().unwrap().to_owned();
    assert!(is_digits(&ack["payload"]["thread_id"], 38, 40), "{ack}");
    assert!(is_digits(&ack["payload"]["item_id"], 19, 40), "{ack}");
    assert!(is_digits(&ack["payload"]["timestamp"], 16, 16), "µs timestamp: {ack}");

    // Same recipient again: the thread is reused.
    let (_, ack2) = web
        .post(
            "direct_v2/threads/broadcast/text/",
            &[("recipient_users", &users), ("text", "again"), ("client_context", "c-2")],
        )
        .await;
    assert_eq!(ack2["payload"]["thread_id"], thread_id.as_str());

    let (s, t) = web.get(&format!("direct_v2/threads/{thread_id}/"), &[]).await;
    assert_eq!(s, 200);
    assert_eq!(t["status"], "ok");
    let th = &t["thread"];
    assert_eq!(th["thread_id"], thread_id.as_str());
    assert_eq!(th["thread_type"], "private");
    assert_eq!(th["viewer_id"].as_u64().unwrap().to_string(), web.pk());
    assert_eq!(th["users"][0]["username"], "alex");
    assert!(th["users"][0]["pk"].is_number() || th["users"][0]["pk"].is_string());
    let items = th["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    // Newest first, text payload under its type's key.
    assert_eq!(items[0]["text"], "again");
    assert_eq!(items[1]["text"], "hi there");
    assert_eq!(items[0]["item_type"], "text");
    assert_eq!(items[0]["is_sent_by_viewer"], true);
    let ts = |i: &Value| -> i64 {
        i["timestamp"]
            .as_i64()
            .or_else(|| i["timestamp"].as_str().and_then(|s| s.parse().ok()))
            .unwrap()
    };
    assert!(ts(&items[0]) > ts(&items[1]));
    assert!(ts(&items[0]) > 1_000_000_000_000_000, "microseconds");
    assert!(th["last_activity_at"].as_i64().unwrap() > 1_000_000_000_000_000);
    sb.shutdown().await;
}

#[tokio::test]
async fn client_context_dedup_returns_first_ack() {
    let sb = start().await;
    let web = Web::new(&sb.base_url(), "personal", "maya").await;
    let (thread, _) = open_thread(&web, "alex").await;
    let a1 = web.send_text(&thread, "once", "5555555555555555555").await;
    let a2 = web.send_text(&thread, "once", "5555555555555555555").await;
    assert_eq!(a1, a2);
    let texts = web.thread_texts(&thread).await;
    assert_eq!(texts, vec!["once", "hello"]);
    let (_, sent) =
        control(&sb.base_url(), "GET", &format!("/_sandbox/accounts/{}/sent", web.id()), None)
            .await;
    assert_eq!(sent["sent"].as_array().unwrap().len(), 2, "{sent}");
    sb.shutdown().await;
}

#[tokio::test]
async fn thread_pagination_with_cursors() {
    let sb = start().await;
    let base = sb.base_url();
    let web = Web::new(&base, "personal", "maya").await;
    let (thread, c) = open_thread(&web, "alex").await;
    for n in 0..24 {
        customer_says(&base, &c, &web.id(), &format!("m{n}")).await;
    }
    // 25 items: "hello" + m0..m23.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut q = vec![("limit", "10"), ("direction", "older")];
        if let Some(c) = &cursor {
            q.push(("cursor", c.as_str()));
        }
        let (s, t) = web.get(&format!("direct_v2/threads/{thread}/"), &q).await;
        assert_eq!(s, 200, "{t}");
        let th = &t["thread"];
        for i in th["items"].as_array().unwrap() {
            seen.push(i["text"].as_str().unwrap_or_default().to_owned());
        }
        pages += 1;
        if !th["has_older"].as_bool().unwrap() {
            break;
        }
        cursor = Some(th["oldest_cursor"].as_str().unwrap().to_owned());
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 25);
    assert_eq!(seen[0], "m23");
    assert_eq!(seen[24], "hello");
    // Cursors are opaque: an item id is not one.
    let (s, v) = web.get(&format!("direct_v2/threads/{thread}/"), &[("cursor", "12345")]).await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["status"], "fail");
    sb.shutdown().await;
}

#[tokio::test]
async fn inbox_paging_filters_and_pending_requests() {
    let sb = start().await;
    let base = sb.base_url();
    let web = Web::new(&base, "personal", "maya").await;
    for n in 0..5 {
        open_thread(&web, &format!("friend{n}")).await;
    }
    // A stranger writes first: a message request.
    let stranger = customer(&base, "stranger").await;
    customer_says(&base, &stranger, &web.id(), "hi, saw your photos").await;

    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut q =
            vec![("limit", "2"), ("thread_message_limit", "1"), ("persistentBadging", "true")];
        if let Some(c) = &cursor {
            q.push(("cursor", c.as_str()));
            q.push(("direction", "older"));
        }
        let (s, v) = web.get("direct_v2/inbox/", &q).await;
        assert_eq!(s, 200, "{v}");
        let inbox = &v["inbox"];
        assert!(v["snapshot_at_ms"].as_i64().unwrap() > 1_000_000_000_000);
        assert_eq!(v["pending_requests_total"], 1);
        assert!(inbox["prev_cursor"]["cursor_timestamp_seconds"].is_number());
        assert!(inbox["next_cursor"]["cursor_thread_v2_id"].is_number());
        for t in inbox["threads"].as_array().unwrap() {
            assert!(t["items"].as_array().unwrap().len() <= 1);
            ids.push(t["thread_id"].as_str().unwrap().to_owned());
        }
        if !inbox["has_older"].as_bool().unwrap() {
            break;
        }
        cursor = Some(inbox["oldest_cursor"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids.len(), 5);
    let mut dedup = ids.clone();
    dedup.sort();
    dedup.dedup();
    assert_eq!(dedup.len(), 5);

    let (_, pending) = web.get("direct_v2/pending_inbox/", &[]).await;
    let pt = &pending["inbox"]["threads"][0];
    assert_eq!(pt["pending"], true);
    let pid = pt["thread_id"].as_str().unwrap().to_owned();
    let (s, _) =
        web.post(&format!("direct_v2/threads/{pid}/approve/"), &[("filter", "DEFAULT")]).await;
    assert_eq!(s, 200);
    let (_, unread) = web.get("direct_v2/inbox/", &[("selected_filter", "unread")]).await;
    let unread_ids: Vec<&str> = unread["inbox"]["threads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["thread_id"].as_str().unwrap())
        .collect();
    assert_eq!(unread_ids, vec![pid.as_str()]);
    let (_, flagged) = web.get("direct_v2/inbox/", &[("selected_filter", "flagged")]).await;
    assert_eq!(flagged["inbox"]["threads"].as_array().unwrap().len(), 0);
    let (s, _) = web.get("direct_v2/inbox/", &[("selected_filter", "bogus")]).await;
    assert_eq!(s, 400);
    sb.shutdown().await;
}

#[tokio::test]
async fn auth_is_strict() {
    let sb = start().await;
    let base = sb.base_url();
    let web = Web::new(&base, "personal", "maya").await;
    let raw = reqwest::Client::new();
    // No cookies at all.
    let r = raw.get(format!("{base}/api/v1/direct_v2/inbox/")).send().await.unwrap();
    assert_eq!(r.status(), 403);
    // Unknown session.
    let r = raw
        .get(format!("{base}/api/v1/direct_v2/inbox/"))
        .header(
            "cookie",
            format!("sessionid=999%3Anope%3A1; ds_user_id={}; csrftoken=abc", web.pk()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["message"], "login_required");
    assert_eq!(v["status"], "fail");
    assert!(v.get("logout_reason").is_some() && v.get("error_type").is_some());
    // POST without the CSRF header.
    let mut h = web.headers();
    h.remove("x-csrftoken");
    let r = raw
        .post(format!("{base}/api/v1/direct_v2/threads/1/mute/"))
        .headers(h)
        .form(&[("_uuid", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v, json!({"message": "CSRF token missing or incorrect", "status": "fail"}));
    // Header that does not match the cookie (case-insensitive header name).
    let mut h = web.headers();
    h.remove("x-csrftoken");
    let r = raw
        .post(format!("{base}/api/v1/direct_v2/threads/1/mute/"))
        .headers(h)
        .header("X-CSRFTOKEN", "wrong")
        .form(&[("_uuid", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // JSON bodies are refused like Instagram does.
    let r = raw
        .post(format!("{base}/api/v1/direct_v2/threads/broadcast/text/"))
        .headers(web.headers())
        .json(&json!({"thread_ids": "[1]", "text": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], "fail");
    // Unknown endpoint.
    let (s, _) = web.get("direct_v2/nope/", &[]).await;
    assert_eq!(s, 404);
    sb.shutdown().await;
}

#[tokio::test]
async fn set_cookie_rotation_and_claim_header() {
    let sb = start().await;
    let web = Web::new(&sb.base_url(), "personal", "maya").await;
    let mut rur_rotations = 0;
    for _ in 0..6 {
        let r = web.get_raw("accounts/current_user/", &[("edit", "true")]).await;
        assert_eq!(r.status(), 200);
        let claim = r.headers().get("x-ig-set-www-claim").unwrap().to_str().unwrap().to_owned();
        assert!(claim.starts_with("hmac."), "{claim}");
        for c in r.headers().get_all("set-cookie") {
            let c = c.to_str().unwrap();
            if c.starts_with("rur=") {
                rur_rotations += 1;
                assert!(c.contains("Path=/"));
            }
        }
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["user"]["username"], "maya");
        assert_eq!(v["user"]["pk"].as_u64().unwrap().to_string(), web.pk());
    }
    assert_eq!(rur_rotations, 2, "every third request rotates rur");
    sb.shutdown().await;
}

#[tokio::test]
async fn csrf_rotation_requires_the_new_token() {
    let config = igdm_sandbox::SandboxConfig { rotate_csrf_every: 2, ..Default::default() };
    let sb = common::start_with(config).await;
    let mut web = Web::new(&sb.base_url(), "personal", "maya").await;
    web.get("accounts/current_user/", &[]).await;
    let r = web.get_raw("accounts/current_user/", &[]).await;
    let new = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|c| c.to_str().ok())
        .find_map(|c| c.strip_prefix("csrftoken="))
        .map(|c| c.split(';').next().unwrap().to_owned())
        .expect("csrftoken rotated on the second request");
    // Cookie updated but the header left stale: rejected.
    let stale = web.cookies["csrftoken"].as_str().unwrap().to_owned();
    web.cookies["csrftoken"] = json!(new);
    let mut h = web.headers();
    h.insert("x-csrftoken", stale.parse().unwrap());
    let r = web
        .client
        .post(format!("{}/api/v1/direct_v2/fetch_and_subscribe_presence/", web.base))
        .headers(h)
        .form(&[("request_data", "[]"), ("subscriptions_off", "false")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // Both updated: accepted.
    let (s, v) =
        web.post("direct_v2/fetch_and_subscribe_presence/", &[("request_data", "[]")]).await;
    assert_eq!(s, 200, "{v}");
    sb.shutdown().await;
}

#[tokio::test]
async fn reactions_seen_unread_mute_hide_typing() {
    let sb = start().await;
    let base = sb.base_url();
    let web = Web::new(&base, "personal", "maya").await;
    let (thread, c) = open_thread(&web, "alex").await;
    let said = customer_says(&base, &c, &web.id(), "how are you?").await;
    let item = said["item_id"].as_str().unwrap();
    let mut events = sb.sandbox().subscribe();

    let path = format!("direct_v2/threads/{thread}/items/{item}/reactions/");
    let (s, v) = web
        .post(
            &path,
            &[
                ("reaction_status", "created"),
                ("reaction_type", "like"),
                ("emoji", "😂"),
                ("client_context", "r1"),
            ],
        )
        .await;
    assert_eq!((s, v["status"].as_str()), (200, Some("ok")), "{v}");
    let t = web.thread(&thread).await;
    let emojis = &t["thread"]["items"][0]["reactions"]["emojis"];
    assert_eq!(emojis[0]["emoji"], "😂");
    assert_eq!(emojis[0]["sender_id"].as_u64().unwrap().to_string(), web.pk());
    let (s, _) = web.post(&path, &[("reaction_status", "deleted"), ("client_context", "r2")]).await;
    assert_eq!(s, 200);
    let t = web.thread(&thread).await;
    assert!(t["thread"]["items"][0].get("reactions").is_none());
    // Broadcast-style reaction too.
    let tids = format!("[{thread}]");
    let (s, v) = web
        .post(
            "direct_v2/threads/broadcast/reaction/",
            &[
                ("thread_ids", &tids),
                ("item_id", item),
                ("emoji", "❤️"),
                ("reaction_status", "created"),
                ("item_type", "reaction"),
                ("node_type", "item"),
            ],
        )
        .await;
    assert_eq!(s, 200, "{v}");

    let (s, _) = web
        .post(
            &format!("direct_v2/threads/{thread}/items/{item}/seen/"),
            &[("action", "mark_seen"), ("thread_id", &thread)],
        )
        .await;
    assert_eq!(s, 200);
    let (_, unread) = web.get("direct_v2/inbox/", &[("selected_filter", "unread")]).await;
    assert_eq!(unread["inbox"]["threads"].as_array().unwrap().len(), 0);
    let (s, _) = web.post(&format!("direct_v2/threads/{thread}/mark_unread/"), &[]).await;
    assert_eq!(s, 200);
    let (_, unread) = web.get("direct_v2/inbox/", &[("selected_filter", "unread")]).await;
    assert_eq!(unread["inbox"]["threads"].as_array().unwrap().len(), 1);

    for (ep, muted) in [("mute", true), ("unmute", false)] {
        let (s, _) = web.post(&format!("direct_v2/threads/{thread}/{ep}/"), &[]).await;
        assert_eq!(s, 200);
        let t = web.thread(&thread).await;
        assert_eq!(t["thread"]["muted"], muted);
    }
    let (s, _) = web
        .post(&format!("direct_v2/threads/{thread}/activity/"), &[("activity_status", "1")])
        .await;
    assert_eq!(s, 200);
    let (s, _) = web
        .post(
            &format!("direct_v2/threads/{thread}/hide/"),
            &[("should_move_future_requests_to_spam", "false")],
        )
        .await;
    assert_eq!(s, 200);
    let (_, inbox) = web.get("direct_v2/inbox/", &[]).await;
    assert_eq!(inbox["inbox"]["threads"].as_array().unwrap().len(), 0);

    let kinds = common::event_types(&mut events);
    for k in ["reaction_changed", "read", "typing", "thread_updated"] {
        assert!(kinds.iter().any(|x| x == k), "{k} in {kinds:?}");
    }
    sb.shutdown().await;
}

#[tokio::test]
async fn delete_only_own_items() {
    let sb = start().await;
    let base = sb.base_url();
    let web = Web::new(&base, "personal", "maya").await;
    let (thread, c) = open_thread(&web, "alex").await;
    let theirs = customer_says(&base, &c, &web.id(), "mine, not yours").await;
    let ack = web.send_text(&thread, "oops", "d-1").await;
    let own = ack["payload"]["item_id"].as_str().unwrap();
    let (s, v) = web
        .post(
            &format!(
                "direct_v2/threads/{thread}/items/{}/delete/",
                theirs["item_id"].as_str().unwrap()
            ),
            &[],
        )
        .await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["status"], "fail");
    let (s, v) = web.post(&format!("direct_v2/threads/{thread}/items/{own}/delete/"), &[]).await;
    assert_eq!((s, v), (200, json!({"status": "ok"})));
    let texts = web.thread_texts(&thread).await;
    assert_eq!(texts, vec!["mine, not yours", "hello"]);
    let (s, _) = web.post(&format!("direct_v2/threads/{thread}/items/{own}/delete/"), &[]).await;
    assert_eq!(s, 404, "already unsent");
    sb.shutdown().await;
}

#[tokio::test]
async fn link_like_media_share_and_retired_endpoints() {
    let sb = start().await;
    let web = Web::new(&sb.base_url(), "personal", "maya").await;
    let (thread, _) = open_thread(&web, "alex").await;
    let tids = format!("[{thread}]");
    let (s, v) = web
        .post(
            "direct_v2/threads/broadcast/link/",
            &[
                ("thread_ids", &tids),
                ("link_text", "look https://example.com/a"),
                ("link_urls", "[\"https://example.com/a\"]"),
                ("client_context", "l1"),
            ],
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, _) = web
        .post(
            "direct_v2/threads/broadcast/like/",
            &[("thread_ids", &tids), ("client_context", "k1")],
        )
        .await;
    assert_eq!(s, 200);
    let (s, _) = web
        .post(
            "direct_v2/threads/broadcast/media_share/?media_type=photo",
            &[
                ("thread_ids", &tids),
                ("media_id", "3100000000000000000_123"),
                ("client_context", "m1"),
            ],
        )
        .await;
    assert_eq!(s, 200);
    // Media to a thread that does not exist fails.
    let (s, _) = web
        .post(
            "direct_v2/threads/broadcast/media_share/",
            &[("thread_ids", "[340282366841710300949128999999999999999]"), ("media_id", "1_2")],
        )
        .await;
    assert_eq!(s, 404);
    let t = web.thread(&thread).await;
    let items = t["thread"]["items"].as_array().unwrap();
    assert_eq!(items[0]["item_type"], "media_share");
    assert!(items[0]["media_share"]["id"].is_string());
    assert_eq!(items[1]["item_type"], "like");
    assert_eq!(items[2]["item_type"], "link");
    assert_eq!(items[2]["link"]["link_context"]["link_url"], "https://example.com/a");
    for retired in ["configure_photo", "configure_video", "share_voice"] {
        let (s, _) = web
            .post(&format!("direct_v2/threads/broadcast/{retired}/"), &[("thread_ids", &tids)])
            .await;
        assert_eq!(s, 500, "{retired}");
    }
    // Neither or both recipient fields: refused before anything is created.
    let (s, _) = web.post("direct_v2/threads/broadcast/text/", &[("text", "x")]).await;
    assert_eq!(s, 400);
    let (s, _) = web.post("direct_v2/threads/broadcast/text/", &[("thread_ids", &tids)]).await;
    assert_eq!(s, 400, "text is required");
    sb.shutdown().await;
}

#[tokio::test]
async fn presence_search_participants_and_current_user() {
    let sb = start().await;
    let base = sb.base_url();
    let web = Web::new(&base, "personal", "maya").await;
    let (thread, c) = open_thread(&web, "alex").await;
    customer_says(&base, &c, &web.id(), "the blue sofa is still available?").await;
    let pk = c["pk"].as_str().unwrap();

    let (s, v) = web.get("direct_v2/get_presence/", &[]).await;
    assert_eq!(s, 200);
    assert_eq!(v["user_presence"][pk]["is_active"], true);
    assert!(v["user_presence"][pk]["last_activity_at_ms"].is_string());
    let req = format!("[{pk}]");
    let (s, v) = web
        .post(
            "direct_v2/fetch_and_subscribe_presence/",
            &[("request_data", &req), ("subscriptions_off", "false")],
        )
        .await;
    assert_eq!(s, 200);
    assert!(v["user_presence"][pk].is_object());

    let (s, v) = web
        .get(
            "direct_v2/search_secondary/",
            &[
                ("query", "BLUE sofa"),
                ("result_types", "[\"message_content\",\"reshared_content\"]"),
                ("offsets", "{\"message_content\":\"0\",\"reshared_content\":\"\"}"),
            ],
        )
        .await;
    assert_eq!(s, 200);
    let hits = v["message_search_results"]["message_search_result_items"].as_array().unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(
        hits[0]["matched_message_info"]["item_info"]["text"],
        "the blue sofa is still available?"
    );
    assert_eq!(hits[0]["thread"]["thread_id"], thread.as_str());
    let (s, _) = web.get("direct_v2/search_secondary/", &[]).await;
    assert_eq!(s, 400);

    let (s, v) =
        web.get("direct_v2/threads/get_by_participants/", &[("recipient_users", &req)]).await;
    assert_eq!(s, 200);
    assert_eq!(v["thread"]["thread_id"], thread.as_str());
    let (_, other) =
        control(&base, "POST", "/_sandbox/customers", Some(json!({"username": "nobody"}))).await;
    let req2 = format!("[{}]", other["pk"].as_str().unwrap());
    let (s, _) =
        web.get("direct_v2/threads/get_by_participants/", &[("recipient_users", &req2)]).await;
    assert_eq!(s, 404);
    sb.shutdown().await;
}

#[tokio::test]
async fn gzip_when_asked() {
    let sb = start().await;
    let web = Web::new(&sb.base_url(), "personal", "maya").await;
    let (thread, _) = open_thread(&web, "alex").await;
    let r = web
        .client
        .get(format!("{}/api/v1/direct_v2/threads/{thread}/", web.base))
        .headers(web.headers())
        .header("accept-encoding", "gzip, deflate")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers().get("content-encoding").unwrap(), "gzip");
    let bytes = r.bytes().await.unwrap();
    let mut out = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut out).unwrap();
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["status"], "ok");
    // Without the header: identity.
    let r = web.get_raw(&format!("direct_v2/threads/{thread}/"), &[]).await;
    assert!(r.headers().get("content-encoding").is_none());
    sb.shutdown().await;
}
