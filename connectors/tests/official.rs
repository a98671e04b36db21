//! `instagram-graph` (Instagram Login) and `instagram-page` (Facebook Page
//! token) against the sandbox's Graph API, over real HTTP. Both connectors run
//! every shared test; the page-only features have their own.

mod common;

use common::{Harness, ack, api_err, invalid, ok, run};
use igdm_model::{ContentType, Conversation, ConversationKind, ErrorClass, Message, User};
use igdm_spec::{Executor, Session};
use serde_json::{Value, json};

const GRAPH: &str = "instagram-graph";
const PAGE: &str = "instagram-page";

/// A sandbox with generous Graph rate limits (tests make calls back to back),
/// the executor of `id` and the business account's session for it.
async fn setup(id: &str) -> (Harness, Executor, Session) {
    let h = Harness::start().await;
    h.control(
        "/_sandbox/graph/rate_limits",
        json!({"send_text_per_sec": 10000.0, "send_audio_video_per_sec": 10000.0, "conversations_per_sec": 10000.0}),
    )
    .await;
    let exec = h.executor(id);
    let s = if id == PAGE {
        Harness::page_session(&h.seed.business)
    } else {
        Harness::graph_session(&h.seed.business)
    };
    (h, exec, s)
}

fn business_id(h: &Harness) -> String {
    h.seed.business["id"].as_str().unwrap().to_owned()
}

/// The customer writes to the business, opening the 24 h window.
async fn customer_writes(h: &Harness, username: &str, text: &str) -> Value {
    let pk = h.customer(username)["pk"].as_str().unwrap().to_owned();
    h.control(
        &format!("/_sandbox/customers/{pk}/send"),
        json!({"to": business_id(h), "text": text}),
    )
    .await
}

fn igsid(h: &Harness, username: &str) -> String {
    h.customer(username)["igsid"].as_str().unwrap().to_owned()
}

async fn alex_conversation(exec: &Executor, s: &mut Session, h: &Harness) -> Conversation {
    let (c, _) = ok::<Conversation>(
        exec,
        s,
        "find_conversation",
        json!({"user_id": igsid(h, "alex_rivera")}),
    )
    .await;
    c
}

#[tokio::test]
async fn conversations_and_the_twenty_message_limit() {
    for id in [GRAPH, PAGE] {
        let (h, exec, mut s) = setup(id).await;
        let alex = igsid(&h, "alex_rivera");

        let (all, out) =
            ok::<Vec<Conversation>>(&exec, &mut s, "list_conversations", json!({})).await;
        assert_eq!(all.len(), 2, "{id}: Alex and Jordan");
        assert!(!out.page.unwrap().has_more);
        assert!(all.iter().all(|c| c.kind == ConversationKind::Direct && c.updated_at.is_some()));
        let with_alex =
            all.iter().find(|c| c.participants.iter().any(|p| p.id.as_str() == alex)).unwrap();
        assert_eq!(
            with_alex.participants.len(),
            1,
            "{id}: the account itself is not a participant"
        );
        assert_eq!(with_alex.participants[0].username.as_deref(), Some("alex_rivera"));

        let (first, out) =
            ok::<Vec<Conversation>>(&exec, &mut s, "list_conversations", json!({"limit": 1})).await;
        let page = out.page.unwrap();
        assert!(page.has_more);
        let (second, _) = ok::<Vec<Conversation>>(
            &exec,
            &mut s,
            "list_conversations",
            json!({"limit": 1, "cursor": page.next_cursor.unwrap()}),
        )
        .await;
        assert_ne!(first[0].id, second[0].id);

        let found = alex_conversation(&exec, &mut s, &h).await;
        assert_eq!(found, *with_alex);
        let (got, _) = ok::<Conversation>(
            &exec,
            &mut s,
            "get_conversation",
            json!({"conversation_id": found.id.as_str()}),
        )
        .await;
        assert_eq!(got, found);

        // 26 messages: the 20 newest in detail, then has_more with a warning, never silence.
        let (msgs, out) = ok::<Vec<Message>>(
            &exec,
            &mut s,
            "list",
            json!({"conversation_id": found.id.as_str()}),
        )
        .await;
        assert_eq!(msgs.len(), 20, "{id}");
        let page = out.page.unwrap();
        assert!(page.has_more, "{id}: more messages exist");
        assert!(
            out.warnings.iter().any(|w| w.contains("20 most recent")),
            "{id}: {:?}",
            out.warnings
        );
        assert!(msgs.windows(2).all(|w| w[0].timestamp >= w[1].timestamp));
        assert!(msgs.iter().all(|m| m.conversation_id == found.id));
        let heart = &msgs[0];
        assert_eq!(heart.sender.id.as_str(), alex);
        assert!(!heart.sender.is_self);
        let ours = msgs.iter().find(|m| m.text.as_deref() == Some("See you Saturday! 🎂")).unwrap();
        assert!(ours.sender.is_self, "{id}: the account's own message");
        assert_eq!(ours.reactions.len(), 1);
        assert_eq!(ours.reactions[0].sender_id.as_str(), alex);
        let (older, out) = ok::<Vec<Message>>(
            &exec,
            &mut s,
            "list",
            json!({"conversation_id": found.id.as_str(), "cursor": page.next_cursor.unwrap()}),
        )
        .await;
        assert!(older.is_empty(), "{id}: older messages are not readable in detail");
        assert!(!out.page.unwrap().has_more);
        assert!(
            out.warnings.iter().any(|w| w.contains("20 most recent")),
            "{id}: undetailed messages are not silent: {:?}",
            out.warnings
        );

        let (one, _) = ok::<Message>(
            &exec,
            &mut s,
            "get",
            json!({"conversation_id": found.id.as_str(), "message_id": ours.id.as_str()}),
        )
        .await;
        assert_eq!(one, *ours);

        let jordan = ok::<Vec<Message>>(
            &exec,
            &mut s,
            "list",
            json!({"conversation_id": all.iter().find(|c| c.id != found.id).unwrap().id.as_str()}),
        )
        .await;
        let (jordan, out) = jordan;
        assert!(out.page.as_ref().is_some_and(|p| !p.has_more), "{id}");
        assert!(out.warnings.is_empty(), "{id}: all messages in detail: {:?}", out.warnings);
        let kinds: Vec<_> = jordan.iter().map(|m| m.content_type.clone()).collect();
        assert!(kinds.contains(&ContentType::StoryMention), "{id}: {kinds:?}");
        assert!(kinds.contains(&ContentType::MediaShare), "{id}: {kinds:?}");

        let (user, _) = ok::<User>(&exec, &mut s, "get_profile", json!({"user_id": alex})).await;
        assert_eq!(user.id.as_str(), alex);
        assert_eq!(user.username.as_deref(), Some("alex_rivera"));
        assert_eq!(user.display_name.as_deref(), Some("Alex Rivera"));
        assert!(user.follower_count.is_some());
    }
}

#[tokio::test]
async fn every_send_kind_reaches_the_conversation() {
    for id in [GRAPH, PAGE] {
        let (h, exec, mut s) = setup(id).await;
        let alex = igsid(&h, "alex_rivera");
        customer_writes(&h, "alex_rivera", "One more question!").await;
        let conv = alex_conversation(&exec, &mut s, &h).await;
        let to = |extra: Value| {
            let mut p = json!({"user_id": alex, "conversation_id": conv.id.as_str()});
            p.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            p
        };

        let (sent, _) =
            ok::<Message>(&exec, &mut s, "send", to(json!({"text": "Sure, ask away"}))).await;
        assert!(sent.sender.is_self);
        assert_eq!(sent.conversation_id, conv.id);
        assert_eq!(sent.content_type, ContentType::Text);
        let (same, _) =
            ok::<Message>(&exec, &mut s, "send_to_user", to(json!({"text": "(and hello)"}))).await;
        assert_ne!(same.id, sent.id);
        let qr = json!([{"content_type": "text", "title": "Yes", "payload": "Y"}, {"content_type": "text", "title": "No", "payload": "N"}]);
        ok::<Message>(
            &exec,
            &mut s,
            "send_quick_replies",
            to(json!({"text": "Pick one", "quick_replies": qr})),
        )
        .await;
        ok::<Message>(&exec, &mut s, "send", to(json!({"text": "Or this", "quick_replies": qr})))
            .await;
        for (action, url) in [
            ("send_image", "https://cdn.example/cake.jpg"),
            ("send_audio", "https://cdn.example/note.m4a"),
            ("send_video", "https://cdn.example/clip.mp4"),
            ("send_file", "https://cdn.example/menu.pdf"),
        ] {
            let (m, _) = ok::<Message>(&exec, &mut s, action, to(json!({"url": url}))).await;
            assert_eq!(m.attachments[0].url.as_deref(), Some(url), "{id} {action}");
        }
        ok::<Message>(&exec, &mut s, "send_like", to(json!({}))).await;
        let post = h
            .control(&format!("/_sandbox/graph/accounts/{}/posts", business_id(&h)), json!({}))
            .await;
        ok::<Message>(&exec, &mut s, "media_share", to(json!({"media_id": post["id"]}))).await;
        let elements = json!([{
            "title": "Birthday cake",
            "subtitle": "Chocolate hazelnut, 15 people",
            "image_url": "https://cdn.example/cake.jpg",
            "buttons": [{"type": "web_url", "title": "Order", "url": "https://sunrise-bakery.example/order"}],
        }]);
        ok::<Message>(&exec, &mut s, "send_generic_template", to(json!({"elements": elements})))
            .await;
        let buttons = json!([{"type": "postback", "title": "Talk to us", "payload": "HUMAN"}]);
        ok::<Message>(
            &exec,
            &mut s,
            "send_button_template",
            to(json!({"text": "Need help?", "buttons": buttons})),
        )
        .await;

        let (msgs, _) =
            ok::<Vec<Message>>(&exec, &mut s, "list", json!({"conversation_id": conv.id.as_str()}))
                .await;
        let newest: Vec<_> = msgs.iter().take(11).map(|m| m.content_type.clone()).collect();
        assert_eq!(
            newest[8..],
            [ContentType::Text, ContentType::Text, ContentType::Text],
            "{id}: {newest:?}"
        );
        assert!(
            newest.contains(&ContentType::Image) && newest.contains(&ContentType::Video),
            "{id}: {newest:?}"
        );
        assert!(
            newest.contains(&ContentType::Audio) && newest.contains(&ContentType::File),
            "{id}: {newest:?}"
        );
        assert!(
            msgs.iter().any(|m| m.id == sent.id && m.text.as_deref() == Some("Sure, ask away"))
        );
        assert!(msgs.iter().take(11).all(|m| m.sender.is_self));

        // Reactions, typing, seen.
        let theirs = msgs.iter().find(|m| m.text.as_deref() == Some("One more question!")).unwrap();
        ack(&exec, &mut s, "react", json!({"user_id": alex, "message_id": theirs.id.as_str()}))
            .await;
        let (got, _) = ok::<Message>(
            &exec,
            &mut s,
            "get",
            json!({"conversation_id": conv.id.as_str(), "message_id": theirs.id.as_str()}),
        )
        .await;
        assert_eq!(got.reactions.len(), 1, "{id}");
        assert_eq!(got.reactions[0].emoji, "love");
        assert_eq!(
            got.reactions[0].sender_id.as_str(),
            h.seed.business["ig_user_id"].as_str().unwrap()
        );
        ack(&exec, &mut s, "unreact", json!({"user_id": alex, "message_id": theirs.id.as_str()}))
            .await;
        let (got, _) = ok::<Message>(
            &exec,
            &mut s,
            "get",
            json!({"conversation_id": conv.id.as_str(), "message_id": theirs.id.as_str()}),
        )
        .await;
        assert!(got.reactions.is_empty());
        ack(&exec, &mut s, "send_typing", json!({"user_id": alex})).await;
        ack(&exec, &mut s, "send_typing", json!({"user_id": alex, "typing": false})).await;
        ack(&exec, &mut s, "mark_read", json!({"user_id": alex})).await;
    }
}

#[tokio::test]
async fn ice_breakers_and_persistent_menu() {
    for id in [GRAPH, PAGE] {
        let (_h, exec, mut s) = setup(id).await;
        let questions = json!([
            {"question": "What are your opening hours?", "payload": "HOURS"},
            {"question": "Do you deliver?", "payload": "DELIVERY"},
        ]);
        ack(&exec, &mut s, "set_ice_breakers", json!({"ice_breakers": questions})).await;
        let got = run(&exec, &mut s, "get_ice_breakers", json!({})).await.unwrap().data;
        assert_eq!(got[0]["locale"], "default", "{id}: {got}");
        assert_eq!(got[0]["call_to_actions"], questions);
        ack(&exec, &mut s, "delete_ice_breakers", json!({})).await;
        let got = run(&exec, &mut s, "get_ice_breakers", json!({})).await.unwrap().data;
        // Documented `{"data": []}`: no locale blocks, an empty list.
        assert_eq!(got, json!([]), "{id}: {got}");

        let items = json!([
            {"type": "postback", "title": "Order status", "payload": "STATUS"},
            {"type": "web_url", "title": "Menu", "url": "https://sunrise-bakery.example/menu"},
        ]);
        ack(&exec, &mut s, "set_persistent_menu", json!({"items": items})).await;
        let got = run(&exec, &mut s, "get_persistent_menu", json!({})).await.unwrap().data;
        assert_eq!(got[0]["call_to_actions"], items, "{id}: {got}");
        ack(&exec, &mut s, "delete_persistent_menu", json!({})).await;
        let got = run(&exec, &mut s, "get_persistent_menu", json!({})).await.unwrap().data;
        assert!(got.is_null(), "{id}: {got}");

        let too_many: Vec<Value> =
            (0..5).map(|i| json!({"question": format!("q{i}"), "payload": "p"})).collect();
        invalid(
            &exec,
            &mut s,
            "set_ice_breakers",
            json!({"ice_breakers": too_many}),
            "ice_breakers",
        )
        .await;
    }
}

#[tokio::test]
async fn graph_errors_map_to_classes() {
    for id in [GRAPH, PAGE] {
        let (h, exec, mut s) = setup(id).await;
        let alex = igsid(&h, "alex_rivera");
        let text = json!({"user_id": alex, "text": "hello"});

        // The demo's last message from Alex is days old: the window is closed.
        let e = api_err(&exec, &mut s, "send", text.clone()).await;
        assert_eq!(e.class, ErrorClass::OutsideWindow, "{id}: {e}");
        assert_eq!(e.provider.as_ref().unwrap().subcode.as_deref(), Some("2018278"));
        assert!(!e.retryable);
        // A person's reply may use HUMAN_AGENT within 7 days.
        let (m, _) = ok::<Message>(
            &exec,
            &mut s,
            "send",
            json!({"user_id": alex, "text": "Sorry for the wait!", "human_agent": true}),
        )
        .await;
        assert!(m.sender.is_self);

        // 551: the person is unavailable.
        customer_writes(&h, "alex_rivera", "hi again").await;
        let pk = h.customer("alex_rivera")["pk"].as_str().unwrap().to_owned();
        h.control(
            &format!("/_sandbox/graph/customers/{pk}/availability"),
            json!({"available": false}),
        )
        .await;
        let e = api_err(&exec, &mut s, "send", text.clone()).await;
        assert_eq!(e.class, ErrorClass::RecipientUnavailable, "{id}: {e}");
        h.control(
            &format!("/_sandbox/graph/customers/{pk}/availability"),
            json!({"available": true}),
        )
        .await;

        // 100 / 2018001: nobody by that id.
        let e =
            api_err(&exec, &mut s, "send", json!({"user_id": "1234567890123456", "text": "hello"}))
                .await;
        assert_eq!(e.class, ErrorClass::NotFound, "{id}: {e}");

        // Throttling (code 4/17/32/613).
        h.control("/_sandbox/graph/rate_limits", json!({"send_text_per_sec": 10000.0, "send_audio_video_per_sec": 10000.0, "conversations_per_sec": 0.001}))
            .await;
        let mut throttled = None;
        for _ in 0..3 {
            if let Err(igdm_spec::ExecError::Api(e)) =
                run(&exec, &mut s, "list_conversations", json!({})).await
            {
                throttled = Some(e);
                break;
            }
        }
        let e = throttled.unwrap_or_else(|| panic!("{id}: never throttled"));
        assert_eq!(e.class, ErrorClass::RateLimited, "{id}: {e}");
        assert!(e.retryable);

        // 190: a token Graph does not know.
        let mut bad = s.clone();
        bad.set_access_token("IGAAbogus0000000000000000000000");
        let e = api_err(&exec, &mut bad, "send", text.clone()).await;
        assert_eq!(e.class, ErrorClass::AuthExpired, "{id}: {e}");
        assert!(e.needs_user);
    }
}

#[tokio::test]
async fn limits_are_checked_before_sending() {
    for id in [GRAPH, PAGE] {
        let (h, exec, mut s) = setup(id).await;
        let alex = igsid(&h, "alex_rivera");
        let before = h.total_requests().await;

        let qr: Vec<Value> = (0..14)
            .map(|i| json!({"content_type": "text", "title": format!("{i}"), "payload": "p"}))
            .collect();
        let elements: Vec<Value> = (0..11).map(|i| json!({"title": format!("card {i}")})).collect();
        let buttons: Vec<Value> = (0..4)
            .map(|i| json!({"type": "postback", "title": format!("b{i}"), "payload": "p"}))
            .collect();
        let cases = [
            // 1000 bytes, not characters: 501 × "é" is 1002 bytes.
            ("send", json!({"user_id": alex, "text": "é".repeat(501)}), "text"),
            (
                "send_quick_replies",
                json!({"user_id": alex, "text": "pick", "quick_replies": qr}),
                "quick_replies",
            ),
            ("send_generic_template", json!({"user_id": alex, "elements": elements}), "elements"),
            (
                "send_button_template",
                json!({"user_id": alex, "text": "t", "buttons": buttons}),
                "buttons",
            ),
            ("react", json!({"user_id": alex, "message_id": "m", "reaction": "wow"}), "reaction"),
            ("send_image", json!({"url": "https://cdn.example/a.jpg"}), "user_id"),
        ];
        for (action, params, field) in cases {
            invalid(&exec, &mut s, action, params, field).await;
        }
        let e = invalid(
            &exec,
            &mut s,
            "send",
            json!({"user_id": alex, "text": "é".repeat(501)}),
            "text",
        )
        .await;
        assert!(e.message.contains("bytes"), "{}", e.message);

        // Per-element limits name the full path of the offending field.
        let mut replies: Vec<Value> = (0..5)
            .map(|i| json!({"content_type": "text", "title": format!("r{i}"), "payload": "p"}))
            .collect();
        replies[3]["title"] = json!("x".repeat(21));
        let long_payload = json!([{"title": "ok", "payload": "p".repeat(1001)}]);
        let card = |title: String, subtitle: String, buttons: usize| {
            let buttons: Vec<Value> = (0..buttons)
                .map(|i| json!({"type": "postback", "title": format!("b{i}"), "payload": "p"}))
                .collect();
            json!({"title": title, "subtitle": subtitle, "buttons": buttons})
        };
        let ok_card = card("card".into(), "sub".into(), 1);
        let questions: Vec<Value> = (0..2)
            .map(|i| json!({"question": "q".repeat(if i == 1 { 81 } else { 5 }), "payload": "p"}))
            .collect();
        let nested = [
            (
                "send_quick_replies",
                json!({"user_id": alex, "text": "pick", "quick_replies": replies}),
                "quick_replies[3].title: longer than 20 characters",
            ),
            (
                "send",
                json!({"user_id": alex, "text": "pick", "quick_replies": long_payload}),
                "quick_replies[0].payload: longer than 1000 characters",
            ),
            (
                "send_quick_replies",
                json!({"user_id": alex, "text": "pick", "quick_replies": []}),
                "quick_replies: fewer than 1 elements (0)",
            ),
            (
                "send_generic_template",
                json!({"user_id": alex, "elements": [ok_card, card("t".repeat(81), "s".into(), 0)]}),
                "elements[1].title: longer than 80 characters",
            ),
            (
                "send_generic_template",
                json!({"user_id": alex, "elements": [card("t".into(), "s".repeat(81), 0)]}),
                "elements[0].subtitle: longer than 80 characters",
            ),
            (
                "send_generic_template",
                json!({"user_id": alex, "elements": [card("t".into(), "s".into(), 4)]}),
                "elements[0].buttons: more than 3 elements (4)",
            ),
            (
                "send_generic_template",
                json!({"user_id": alex, "elements": [{"subtitle": "no title"}]}),
                "elements[0].title: is required",
            ),
            (
                "send_button_template",
                json!({"user_id": alex, "text": "t", "buttons": [{"type": "call", "title": "x"}]}),
                r#"buttons[0].type: "call" is not one of "web_url", "postback""#,
            ),
            (
                "set_ice_breakers",
                json!({"ice_breakers": questions}),
                "ice_breakers[1].question: longer than 80 characters",
            ),
            (
                "send",
                json!({"user_id": alex, "text": ""}),
                "text: is required (got an empty string)",
            ),
            (
                "send",
                json!({"user_id": "", "text": "hi"}),
                "user_id: is required (got an empty string)",
            ),
        ];
        for (action, params, message) in nested {
            let field = message.split(':').next().unwrap_or(message);
            let e = invalid(&exec, &mut s, action, params, field).await;
            assert_eq!(e.message, message, "{id} {action}");
        }

        assert_eq!(h.total_requests().await, before, "{id}: nothing reached the sandbox");
    }
}

#[tokio::test]
async fn page_attachments_and_handover() {
    let (h, exec, mut s) = setup(PAGE).await;
    let alex = igsid(&h, "alex_rivera");
    customer_writes(&h, "alex_rivera", "Can I talk to a person?").await;

    let up = run(
        &exec,
        &mut s,
        "upload_attachment",
        json!({"type": "image", "url": "https://cdn.example/menu.jpg"}),
    )
    .await
    .unwrap();
    let attachment = up.data["attachment_id"].as_str().unwrap().to_owned();
    let (m, _) = ok::<Message>(
        &exec,
        &mut s,
        "send_attachment",
        json!({"user_id": alex, "type": "image", "attachment_id": attachment}),
    )
    .await;
    assert_eq!(m.content_type, ContentType::Image);

    let receivers = run(&exec, &mut s, "list_secondary_receivers", json!({})).await.unwrap().data;
    let inbox =
        receivers.as_array().unwrap().iter().find(|r| r["id"] == "263902037430900").unwrap();
    assert_eq!(inbox["name"], "Page Inbox");
    ack(
        &exec,
        &mut s,
        "pass_thread_control",
        json!({"user_id": alex, "target_app_id": "263902037430900", "metadata": "to a person"}),
    )
    .await;
    let owner =
        run(&exec, &mut s, "get_thread_owner", json!({"user_id": alex})).await.unwrap().data;
    assert_eq!(owner["app_id"], "263902037430900");
    ack(
        &exec,
        &mut s,
        "request_thread_control",
        json!({"user_id": alex, "metadata": "back to the bot"}),
    )
    .await;
    ack(&exec, &mut s, "take_thread_control", json!({"user_id": alex})).await;
    let owner =
        run(&exec, &mut s, "get_thread_owner", json!({"user_id": alex})).await.unwrap().data;
    assert!(owner["app_id"].is_string(), "{owner}");
    assert_ne!(owner["app_id"], "263902037430900");

    // Instagram Login has no handover endpoints.
    let graph = h.executor(GRAPH);
    assert!(graph.connector().action("pass_thread_control").is_none());
}

#[tokio::test]
async fn no_conversation_is_not_found() {
    for id in [GRAPH, PAGE] {
        let (h, exec, mut s) = setup(id).await;
        let before = h.total_requests().await;
        let e = api_err(&exec, &mut s, "find_conversation", json!({"user_id": "7777777777777777"}))
            .await;
        assert_eq!(e.class, ErrorClass::NotFound, "{id}: {e}");
        assert!(e.message.contains("7777777777777777"), "{id}: {}", e.message);
        assert_eq!(h.total_requests().await, before + 1, "{id}: one lookup was made");
        // A customer who wrote is found.
        alex_conversation(&exec, &mut s, &h).await;
    }
}
