//! `igdm ui` over real HTTP, against an account opened through the runtime
//! on a sandbox, its store filled and kept live by a watcher: the token
//! gate, CSRF, escaping, the inbox, search, paging, replies through the send
//! ledger, and live updates over server-sent events.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{TOKEN, env};
use igdm_model::{Message, Timestamp};
use igdm_test::sandbox::post_ok;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A hidden form field's value on a page.
fn field(page: &str, name: &str) -> String {
    let at = page
        .find(&format!("name=\"{name}\" value=\""))
        .unwrap_or_else(|| panic!("no {name} in {page}"));
    let rest = &page[at + name.len() + 15..];
    rest[..rest.find('"').unwrap()].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_needs_the_token_and_the_link_sets_a_strict_cookie() {
    let env = env().await;
    for path in ["/", "/assets/app.js", &env.thread_path(), "/live/web/x"] {
        let r = env.http.get(env.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path}");
        assert!(
            r.headers()["content-security-policy"].to_str().unwrap().contains("script-src 'self'")
        );
    }
    let wrong = env.http.get(env.url("/")).bearer_auth("f".repeat(32)).send().await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let wrong = env.http.get(env.url("/?token=nope")).send().await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let forged =
        env.http.get(env.url("/")).header("cookie", "igdm_ui=made-up").send().await.unwrap();
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);

    // The bearer token works as is.
    let r = env.http.get(env.url("/")).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // ?token= opens a session and takes the token out of the address.
    let r = env.http.get(env.url(&format!("/?account=web&token={TOKEN}"))).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/?account=web");
    let set = r.headers()["set-cookie"].to_str().unwrap();
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"), "{set}");
    assert!(!set.contains(TOKEN), "the cookie names a session, not the token");
    let cookie = set.split(';').next().unwrap();
    let (status, headers, page) = env.get(cookie, "/?account=web").await;
    assert_eq!(status, StatusCode::OK);
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("default-src 'none'"), "{csp}");
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{csp}");
    // No inline script: every script element loads from the server.
    assert_eq!(page.matches("<script").count(), page.matches("<script src=\"/assets/").count());
    assert!(page.contains("cust_ui"), "the conversation is listed: {page}");
    // A Host that is not loopback (DNS rebinding) is refused even with the token.
    let r = env
        .http
        .get(env.url("/"))
        .bearer_auth(TOKEN)
        .header("host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::MISDIRECTED_REQUEST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_containing_a_script_is_shown_as_text() {
    let env = env().await;
    let cookie = env.session().await;
    let (status, _, page) = env.get(&cookie, &env.thread_path()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains(
            "hi &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;"
        ),
        "{page}"
    );
    assert!(!page.contains("<script>alert"), "{page}");
    assert!(!page.contains("<b>bold"), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_writes_are_refused_and_a_reply_goes_through_the_ledger() {
    let env = env().await;
    let cookie = env.session().await;
    let (_, _, page) = env.get(&cookie, &env.thread_path()).await;
    let (csrf, key) = (field(&page, "csrf"), field(&page, "key"));
    assert_eq!(csrf.len(), 64);
    let send = format!("{}/send", env.thread_path());
    let origin = env.origin();
    let form =
        [("csrf", csrf.as_str()), ("key", key.as_str()), ("text", "forged"), ("reply_to", "")];

    // A form on another site posting here: the browser sends the cookie only
    // if SameSite allowed it, and says where the form came from.
    let (s, _) = env
        .post(
            &send,
            &[
                ("cookie", &cookie),
                ("origin", "http://evil.example"),
                ("sec-fetch-site", "cross-site"),
            ],
            &form,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) =
        env.post(&send, &[("cookie", &cookie), ("origin", "http://evil.example")], &form).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) =
        env.post(&send, &[("cookie", &cookie), ("sec-fetch-site", "same-site")], &form).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // Same origin but without the session's CSRF token, or with another's.
    let no_csrf = [("key", key.as_str()), ("text", "forged"), ("reply_to", "")];
    let (s, _) = env.post(&send, &[("cookie", &cookie), ("origin", &origin)], &no_csrf).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let other = env.session().await;
    let (s, _) = env.post(&send, &[("cookie", &other), ("origin", &origin)], &form).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // No cookie at all.
    let (s, _) = env.post(&send, &[("origin", &origin)], &form).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(env.sent_texts().await.is_empty(), "nothing refused reached Instagram");

    // The real form, sent twice (a double click): one send.
    let reply =
        [("csrf", csrf.as_str()), ("key", key.as_str()), ("text", "thanks <3"), ("reply_to", "")];
    let headers = [
        ("cookie", cookie.as_str()),
        ("origin", origin.as_str()),
        ("sec-fetch-site", "same-origin"),
    ];
    for _ in 0..2 {
        let (s, body) = env.post(&send, &headers, &reply).await;
        assert_eq!(s, StatusCode::SEE_OTHER, "{body}");
    }
    assert_eq!(env.sent_texts().await, vec!["thanks <3".to_owned()]);
    let entry = env.store.outbox_get(&key).await.unwrap().expect("the send is in the ledger");
    assert_eq!(entry.state, igdm_store::OutboxState::Sent);
    let (_, _, page) = env.get(&cookie, &env.thread_path()).await;
    assert!(page.contains("thanks &lt;3"), "the reply shows in the thread: {page}");
    // A bearer client needs no form token (no other site can send the header).
    let r = env
        .http
        .post(env.url(&send))
        .bearer_auth(TOKEN)
        .form(&[("key", "bearer-1"), ("text", "from a script")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(env.sent_texts().await.contains(&"from a script".to_owned()));
    // An empty reply is refused before any request.
    let (s, _) =
        env.post(&send, &headers, &[("csrf", csrf.as_str()), ("key", "k2"), ("text", "  ")]).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(env.sent_texts().await.len(), 2);
    // The inbox counts both against the account's write budget.
    let (_, _, page) = env.get(&cookie, "/").await;
    assert!(page.contains("\">2 of ") || page.contains("\">2 writes"), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inbox_lists_filters_and_searches_and_threads_page_back() {
    let env = env().await;
    let cookie = env.session().await;
    let (_, _, page) = env.get(&cookie, "/").await;
    assert!(page.contains("web_ui") || page.contains(">web<"), "{page}");
    assert!(page.contains("private web API"), "the account's surface: {page}");
    assert!(page.contains("health health-healthy"), "the account's health: {page}");
    assert!(page.contains(" writes in 24 h</span>"), "the account's write budget: {page}");
    assert!(page.contains(&format!("href=\"/t/web/{}\"", env.conversation)), "{page}");
    assert!(page.contains("class=\"conv unread\""), "the new conversation is unread: {page}");

    // Unread filter: the conversation read, it leaves the unread list.
    env.store.mark_read("web", &env.conversation, true).await.unwrap();
    let (_, _, page) = env.get(&cookie, "/?unread=1").await;
    assert!(!page.contains(&format!("/t/web/{}", env.conversation)), "{page}");
    let (_, _, page) = env.get(&cookie, "/").await;
    assert!(page.contains(&format!("/t/web/{}", env.conversation)), "{page}");
    let (s, _, _) = env.get(&cookie, "/?account=nobody").await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Message requests are a folder of their own: a customer's first
    // message to a personal account is one; a friend's thread is in the inbox.
    let friend: igdm_model::Conversation = serde_json::from_value(json!({
        "id": "friend-1", "kind": "direct", "folder": "inbox",
        "participants": [{"id": "c9", "username": "friend"}],
        "updated_at": Timestamp::now(),
    }))
    .unwrap();
    env.store.upsert_conversation("web", &friend).await.unwrap();
    let customer = format!("/t/web/{}", env.conversation);
    let (_, _, page) = env.get(&cookie, "/?folder=requests").await;
    assert!(page.contains(&customer) && page.contains("class=\"folder\">request<"), "{page}");
    assert!(!page.contains("/t/web/friend-1"), "{page}");
    let (_, _, page) = env.get(&cookie, "/?folder=inbox").await;
    assert!(page.contains("/t/web/friend-1") && page.contains(">friend<"), "{page}");
    assert!(!page.contains(&customer), "{page}");
    let (s, _, _) = env.get(&cookie, "/?folder=elsewhere").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // Search goes through the store's full-text index.
    let (_, _, page) = env.get(&cookie, "/?q=alert").await;
    assert!(page.contains("id=\"hits\""), "{page}");
    assert!(page.contains(&format!("href=\"/t/web/{}\"", env.conversation)), "{page}");
    let (_, _, page) = env.get(&cookie, "/?q=nothinglikethis").await;
    assert!(page.contains("No message matches"), "{page}");

    // A long thread: the newest page, then older ones from the store.
    let now = Timestamp::now();
    let long: Vec<Message> = (0..75)
        .map(|i| {
            serde_json::from_value(json!({
                "id": format!("long-{i:03}"),
                "conversation_id": "long-thread",
                "sender": {"id": "c1", "username": "longtalker"},
                "timestamp": Timestamp(now.0 - chrono_secs(1000 - i)),
                "content_type": "text",
                "text": format!("message number {i:03}"),
                "reply_to": if i == 74 { json!({"message_id": "long-073", "preview": "quoted <i>text</i>"}) } else { Value::Null },
                "reactions": if i == 74 { json!([{"sender_id": "c1", "emoji": "🔥"}]) } else { json!([]) },
            }))
            .unwrap()
        })
        .collect();
    env.store.upsert_messages("web", &long).await.unwrap();
    let (_, _, page) = env.get(&cookie, "/t/web/long-thread").await;
    assert!(page.contains("message number 074") && page.contains("message number 025"), "{page}");
    assert!(!page.contains("message number 024"), "{page}");
    assert!(page.contains("quoted &lt;i&gt;text&lt;/i&gt;"), "the reply's quote: {page}");
    assert!(page.contains("<li>🔥</li>"), "reactions: {page}");
    let at = page.find("class=\"older\" href=\"").expect("a link to older messages") + 20;
    let older = page[at..at + page[at..].find('"').unwrap()].replace("&amp;", "&");
    let (s, _, page) = env.get(&cookie, &older).await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains("message number 024") && page.contains("message number 000"), "{page}");
    assert!(!page.contains("message number 025"), "{page}");
}

fn chrono_secs(s: i64) -> chrono::TimeDelta {
    chrono::TimeDelta::seconds(s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_message_reaches_an_open_thread_live() {
    let env = env().await;
    let cookie = env.session().await;
    let (_, _, page) = env.get(&cookie, &env.thread_path()).await;
    let live = format!("/live/web/{}", env.conversation);
    assert!(page.contains(&format!("data-live=\"{live}\"")), "{page}");
    let r = env.http.get(env.url(&live)).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let mut body = r;
    // The stream is open: now the customer writes.
    post_ok(
        &env.base,
        &format!("/_sandbox/customers/{}/send", env.customer),
        json!({"to": env.account_id, "text": "live <one>"}),
    )
    .await;
    let mut seen = String::new();
    let got = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(chunk) = body.chunk().await.unwrap() {
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if seen.contains("live &lt;one&gt;") {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(got, Ok(true), "the message never came down the stream: {seen}");
    assert!(seen.contains("event: message"), "{seen}");
    assert!(seen.contains("class=\"msg in\""), "{seen}");
    env.live.finish().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_reply_is_explained_and_the_ledger_states_are_shown() {
    let env = env().await;
    let cookie = env.session().await;
    let (_, _, page) = env.get(&cookie, &env.thread_path()).await;
    let (csrf, key) = (field(&page, "csrf"), field(&page, "key"));
    let send = format!("{}/send", env.thread_path());
    let origin = env.origin();
    let headers = [("cookie", cookie.as_str()), ("origin", origin.as_str())];

    // Instagram refuses the write: the page says so and keeps the text.
    igdm_test::sandbox::post_ok(
        &env.base,
        "/_sandbox/faults",
        json!({"account": env.account_id, "mode": "feedback"}),
    )
    .await;
    let form = [("csrf", csrf.as_str()), ("key", key.as_str()), ("text", "blocked <reply>")];
    let (s, page) = env.post(&send, &headers, &form).await;
    assert_eq!(s, StatusCode::BAD_GATEWAY, "{page}");
    assert!(page.contains("Not sent: "), "{page}");
    assert!(page.contains(">blocked &lt;reply&gt;</textarea>"), "the text is kept: {page}");
    assert_ne!(field(&page, "key"), key, "a new attempt gets a new key");
    assert!(env.sent_texts().await.is_empty());
    let entry =
        env.store.outbox_get(&key).await.unwrap().expect("the refused send is in the ledger");
    assert_eq!(entry.state, igdm_store::OutboxState::Failed);
    assert!(page.contains("class=\"send state-failed\""), "{page}");

    // A send the ledger holds as unknown is shown as such, with why it is not resent.
    let unknown = igdm_store::NewOutbox {
        idempotency_key: "ui-unknown-1".into(),
        account_id: "web".into(),
        conversation_id: Some(env.conversation.clone()),
        recipient_id: None,
        payload: json!({"action": "send", "params": {"text": "did this arrive?"}}),
    };
    env.store.outbox_begin(&unknown).await.unwrap();
    env.store
        .outbox_mark("ui-unknown-1", igdm_store::OutboxState::Unknown, None, Some("timed out"))
        .await
        .unwrap();
    let (_, _, page) = env.get(&cookie, &env.thread_path()).await;
    assert!(page.contains("class=\"send state-unknown\""), "{page}");
    assert!(
        page.contains("did this arrive?") && page.contains("never resends it blindly"),
        "{page}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attachments_come_from_the_media_store_never_from_instagrams_cdn() {
    let env = env().await;
    let cookie = env.session().await;
    let cdn = "https://scontent.cdninstagram.example/v/photo.jpg?sig=viewer";
    let with = |id: &str, kind: &str| -> Message {
        serde_json::from_value(json!({
            "id": id,
            "conversation_id": "media-thread",
            "sender": {"id": "c2", "username": "sender"},
            "timestamp": Timestamp::now(),
            "content_type": kind,
            "attachments": [{"type": kind, "url": cdn}],
        }))
        .unwrap()
    };
    env.store
        .upsert_messages(
            "web",
            &[with("kept-photo", "image"), with("kept-file", "file"), with("gone", "image")],
        )
        .await
        .unwrap();
    let png = b"\x89PNG\r\n\x1a\nnot really a picture";
    let html = b"<script>alert(1)</script>";
    for (mid, bytes, mime) in
        [("kept-photo", &png[..], "image/png"), ("kept-file", &html[..], "text/html")]
    {
        let stored = env.media.put(bytes).await.unwrap();
        env.store
            .put_media_ref(
                "web",
                &igdm_store::MediaRef {
                    conversation_id: "media-thread".into(),
                    message_id: mid.into(),
                    position: 0,
                    sha256: stored.sha256,
                    size: stored.size,
                    mime: Some(mime.into()),
                    stored_at: Timestamp::now(),
                },
            )
            .await
            .unwrap();
    }
    let (_, _, page) = env.get(&cookie, "/t/web/media-thread").await;
    assert!(!page.contains("cdninstagram"), "no CDN link reaches the page: {page}");
    assert!(page.contains("href=\"/media/web/media-thread/kept-photo/0\""), "{page}");
    assert!(page.contains("not kept locally"), "{page}");

    let r = env
        .http
        .get(env.url("/media/web/media-thread/kept-photo/0"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "image/png");
    assert_eq!(r.bytes().await.unwrap().as_ref(), png);
    // A kept file that is not media downloads; it never renders as a page.
    let r = env
        .http
        .get(env.url("/media/web/media-thread/kept-file/0"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "application/octet-stream");
    assert_eq!(r.headers()["content-disposition"], "attachment");
    let (s, _, _) = env.get(&cookie, "/media/web/media-thread/gone/0").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let r = env.http.get(env.url("/media/web/media-thread/kept-photo/0")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}
