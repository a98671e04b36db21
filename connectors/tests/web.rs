//! `instagram-web` against the sandbox's private API, over real HTTP.

mod common;

use std::collections::{BTreeSet, HashSet};

use common::{Harness, ack, api_err, invalid, ok, run};
use igdm_model::{ContentType, Conversation, ConversationKind, ErrorClass, Folder, Message};
use igdm_sandbox::DemoSeed;
use igdm_spec::{Executor, Session};
use serde_json::{Value, json};

const WEB: &str = "instagram-web";

/// A sandbox, the web connector's executor, and the session of one demo account.
async fn setup(account: fn(&DemoSeed) -> &Value) -> (Harness, Executor, Session) {
    let h = Harness::start().await;
    let exec = h.executor(WEB);
    let s = Harness::web_session(account(&h.seed));
    (h, exec, s)
}

fn id_of(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn conversations_map_to_the_model_and_page_with_returned_cursors() {
    let (h, exec, mut s) = setup(|seed| &seed.personal).await;

    let (all, out) = ok::<Vec<Conversation>>(&exec, &mut s, "list_conversations", json!({})).await;
    let page = out.page.unwrap();
    assert!(!page.has_more && page.next_cursor.is_none());
    assert_eq!(all.len(), 2, "the pending request is not in the inbox");
    let group = all.iter().find(|c| c.id.as_str() == h.seed.group_thread_id).unwrap();
    assert_eq!(group.kind, ConversationKind::Group, "is_group decides, not thread_type");
    assert_eq!(group.title.as_deref(), Some("Weekend trip"));
    let names: HashSet<_> = group.participants.iter().filter_map(|p| p.username.clone()).collect();
    assert_eq!(names, HashSet::from(["priya.n".to_owned(), "lucas_m".to_owned()]));
    assert!(group.participants.iter().all(|p| p.id.as_str().chars().all(|c| c.is_ascii_digit())));
    assert_eq!(group.folder, Folder::Inbox);
    assert!(group.updated_at.is_some());
    let direct = all.iter().find(|c| c.id.as_str() != h.seed.group_thread_id).unwrap();
    assert_eq!(direct.kind, ConversationKind::Direct);
    assert!(all[0].updated_at >= all[1].updated_at, "newest activity first");

    // One per page: the cursor comes back to the caller and leads to the rest.
    let (first, out) =
        ok::<Vec<Conversation>>(&exec, &mut s, "list_conversations", json!({"limit": 1})).await;
    let page = out.page.unwrap();
    assert!(page.has_more);
    let cursor = page.next_cursor.unwrap();
    let (second, out) = ok::<Vec<Conversation>>(
        &exec,
        &mut s,
        "list_conversations",
        json!({"limit": 1, "cursor": cursor}),
    )
    .await;
    assert_eq!(first.len(), 1);
    assert_eq!(second.len(), 1);
    assert_ne!(first[0].id, second[0].id);
    assert!(!out.page.unwrap().has_more);

    let (unread, _) =
        ok::<Vec<Conversation>>(&exec, &mut s, "list_conversations", json!({"filter": "unread"}))
            .await;
    assert!(unread.iter().all(|c| c.unread));

    let (pending, _) = ok::<Vec<Conversation>>(&exec, &mut s, "list_pending", json!({})).await;
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].id.as_str(), h.seed.pending_thread_id);
    assert_eq!(pending[0].folder, Folder::Pending);

    let (one, _) = ok::<Conversation>(
        &exec,
        &mut s,
        "get_conversation",
        json!({"conversation_id": h.seed.group_thread_id}),
    )
    .await;
    assert_eq!(one, *group);
}

#[tokio::test]
async fn messages_page_through_the_long_conversation() {
    let (h, exec, mut s) = setup(|seed| &seed.business).await;
    let thread = h.seed.long_thread_id.clone();
    let biz_pk = h.seed.business["pk"].as_str().unwrap().to_owned();

    let mut all: Vec<Message> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut params = json!({"conversation_id": thread});
        if let Some(c) = &cursor {
            params["cursor"] = json!(c);
        }
        let (items, out) = ok::<Vec<Message>>(&exec, &mut s, "list", params).await;
        pages += 1;
        assert!(!items.is_empty());
        all.extend(items);
        let page = out.page.unwrap();
        if !page.has_more {
            assert!(page.next_cursor.is_none());
            break;
        }
        assert_ne!(page.next_cursor, cursor, "a new cursor every page");
        cursor = page.next_cursor;
        assert!(pages < 5);
    }
    assert_eq!(pages, 2, "20 + the rest");
    assert_eq!(all.len(), 26);
    let ids: HashSet<_> = all.iter().map(|m| m.id.clone()).collect();
    assert_eq!(ids.len(), 26, "no message twice");
    assert!(all.windows(2).all(|w| w[0].timestamp >= w[1].timestamp), "newest first");
    assert!(all.iter().all(|m| m.conversation_id.as_str() == thread));
    assert!(all.iter().all(|m| m.sender.is_self == (m.sender.id.as_str() == biz_pk)));

    let newest = &all[0];
    assert_eq!(newest.content_type, ContentType::LikeHeart);
    assert!(!newest.sender.is_self);
    let photo = all.iter().find(|m| m.content_type == ContentType::Image).unwrap();
    assert_eq!(photo.attachments.len(), 1);
    assert!(photo.attachments[0].url.as_deref().unwrap().ends_with("demo_cake_sample.jpg"));
    let link = all.iter().find(|m| m.content_type == ContentType::Link).unwrap();
    assert!(link.text.as_deref().unwrap().contains("https://sunrise-bakery.example/pay/4821"));
    let reply =
        all.iter().find(|m| m.text.as_deref() == Some("Chocolate hazelnut please!")).unwrap();
    let quoted = reply.reply_to.as_ref().unwrap();
    assert!(quoted.preview.as_deref().unwrap().starts_with("Great. Any flavour in mind?"));
    assert!(all.iter().any(|m| Some(&m.id) == quoted.message_id.as_ref()));
    assert_eq!(reply.reactions.len(), 1);
    assert_eq!(reply.reactions[0].emoji, "\u{2764}\u{fe0f}");
    assert_eq!(reply.reactions[0].sender_id.as_str(), biz_pk);

    let recent = all.iter().find(|m| m.text.as_deref() == Some("See you Saturday! 🎂")).unwrap();
    assert_eq!(recent.reactions[0].emoji, "😍");
    let (got, _) = ok::<Message>(
        &exec,
        &mut s,
        "get",
        json!({"conversation_id": thread, "message_id": recent.id.as_str()}),
    )
    .await;
    assert_eq!(got, *recent);
}

#[tokio::test]
async fn item_types_of_the_personal_threads_map_to_content_types() {
    let (h, exec, mut s) = setup(|seed| &seed.personal).await;
    let (convs, _) = ok::<Vec<Conversation>>(&exec, &mut s, "list_conversations", json!({})).await;
    let sam = convs.iter().find(|c| c.kind == ConversationKind::Direct).unwrap();
    let (items, _) =
        ok::<Vec<Message>>(&exec, &mut s, "list", json!({"conversation_id": sam.id.as_str()}))
            .await;
    let kinds: Vec<ContentType> = items.iter().map(|m| m.content_type.clone()).collect();
    assert!(kinds.contains(&ContentType::ReelShare), "clip and reel_share: {kinds:?}");
    assert!(kinds.contains(&ContentType::Voice), "{kinds:?}");
    let voice = items.iter().find(|m| m.content_type == ContentType::Voice).unwrap();
    assert!(voice.attachments[0].url.as_deref().unwrap().ends_with("demo.m4a"));
    let story_reply = items.iter().find(|m| m.text.as_deref() == Some("love this spot")).unwrap();
    assert_eq!(story_reply.content_type, ContentType::ReelShare);

    let (group, _) = ok::<Vec<Message>>(
        &exec,
        &mut s,
        "list",
        json!({"conversation_id": h.seed.group_thread_id}),
    )
    .await;
    let log = group.last().unwrap();
    assert_eq!(log.content_type, ContentType::System);
    assert_eq!(log.text.as_deref(), Some("maya.lens named the group Weekend trip."));
    let plan =
        group.iter().find(|m| m.text.as_deref() == Some("I can drive, leaving at 5pm")).unwrap();
    assert!(plan.sender.is_self);
    assert_eq!(plan.reactions[0].emoji, "👍");

    // Senders carry the username and name from the thread's users.
    let others: Vec<&Message> = group.iter().filter(|m| !m.sender.is_self).collect();
    assert!(!others.is_empty());
    for m in &others {
        assert!(m.sender.username.is_some(), "{:?}", m.sender);
        assert!(m.sender.display_name.is_some(), "{:?}", m.sender);
    }
    let members =
        &convs.iter().find(|c| c.id.as_str() == h.seed.group_thread_id).unwrap().participants;
    for m in &others {
        let member = members.iter().find(|p| p.id == m.sender.id).unwrap();
        assert_eq!(m.sender.username, member.username);
        assert_eq!(m.sender.display_name, member.display_name);
    }
    let from_sam: Vec<&Message> = items.iter().filter(|m| !m.sender.is_self).collect();
    let sam_name = sam.participants.first().and_then(|p| p.username.clone());
    assert!(sam_name.is_some());
    assert!(!from_sam.is_empty());
    assert!(from_sam.iter().all(|m| m.sender.username == sam_name), "{from_sam:?}");
}

#[tokio::test]
async fn search_unread_and_presence() {
    let (h, exec, mut s) = setup(|seed| &seed.business).await;

    let (found, _) =
        ok::<Vec<Message>>(&exec, &mut s, "search", json!({"query": "cupcakes"})).await;
    assert!(!found.is_empty());
    assert!(found.iter().all(|m| m.conversation_id.as_str() == h.seed.long_thread_id));
    assert!(found.iter().any(|m| m.text.as_deref() == Some("Can you also do a few cupcakes?")));

    let (convs, _) = ok::<Vec<Conversation>>(&exec, &mut s, "list_conversations", json!({})).await;
    let jordan = convs
        .iter()
        .find(|c| c.participants.iter().any(|p| p.username.as_deref() == Some("jordan.lee")))
        .unwrap();
    assert!(jordan.unread);
    let (unread, _) = ok::<Vec<Message>>(&exec, &mut s, "get_unread", json!({})).await;
    assert_eq!(unread.len(), convs.iter().filter(|c| c.unread).count());
    let newest = unread.iter().find(|m| m.conversation_id == jordan.id).unwrap();
    assert_eq!(
        newest.content_type,
        ContentType::StoryMention,
        "the thread's newest item: a story mention"
    );
    assert!(!newest.sender.is_self);

    let alex = h.customer("alex_rivera")["pk"].as_str().unwrap().to_owned();
    let jordan = h.customer("jordan.lee")["pk"].as_str().unwrap().to_owned();
    let out =
        run(&exec, &mut s, "get_presence", json!({"user_ids": [alex, jordan]})).await.unwrap();
    let list = out.data.as_array().unwrap();
    let ids: HashSet<&str> = list.iter().map(|p| p["user_id"].as_str().unwrap()).collect();
    assert_eq!(ids, HashSet::from([alex.as_str(), jordan.as_str()]), "{}", out.data);
    for p in list {
        assert!(p["is_active"].is_boolean(), "{p}");
        // Milliseconds on the wire, RFC 3339 out.
        let at = p["last_active_at"].as_str().unwrap();
        assert!(igdm_model::Timestamp::parse(at).is_some(), "{at}");
    }
}

#[tokio::test]
async fn writes_round_trip_through_the_thread() {
    let (h, exec, mut s) = setup(|seed| &seed.personal).await;
    let me = h.seed.personal["pk"].as_str().unwrap().to_owned();
    let group = h.seed.group_thread_id.clone();

    let (sent, _) = ok::<Message>(
        &exec,
        &mut s,
        "send",
        json!({"conversation_id": group, "text": "see you at 5"}),
    )
    .await;
    assert_eq!(sent.conversation_id.as_str(), group);
    assert_eq!(sent.sender.id.as_str(), me);
    assert!(sent.sender.is_self);
    assert_eq!(sent.content_type, ContentType::Text);

    // The same client_context twice: one message.
    let key =
        json!({"conversation_id": group, "text": "once", "client_context": "6794317423556461913"});
    let (a, _) = ok::<Message>(&exec, &mut s, "send", key.clone()).await;
    let (b, _) = ok::<Message>(&exec, &mut s, "send", key).await;
    assert_eq!(a.id, b.id);

    // A quote reply needs the quoted item's id and client_context (raw item).
    let raw = run(&exec, &mut s, "list", json!({"conversation_id": group}))
        .await
        .unwrap()
        .raw_json()
        .unwrap();
    let target = raw["thread"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["text"] == "Cabin is booked for Friday 🎉")
        .unwrap()
        .clone();
    let (reply, _) = ok::<Message>(
        &exec,
        &mut s,
        "send",
        json!({
            "conversation_id": group,
            "text": "yay",
            "reply_to": target["item_id"],
            "reply_to_client_context": target["client_context"],
        }),
    )
    .await;
    let (items, _) =
        ok::<Vec<Message>>(&exec, &mut s, "list", json!({"conversation_id": group})).await;
    let listed = items.iter().find(|m| m.id == reply.id).unwrap();
    assert_eq!(
        listed.reply_to.as_ref().unwrap().message_id.as_ref().unwrap().as_str(),
        target["item_id"]
    );
    assert_eq!(
        listed.reply_to.as_ref().unwrap().preview.as_deref(),
        Some("Cabin is booked for Friday 🎉")
    );
    assert_eq!(items[0].id, reply.id);

    let (link, _) = ok::<Message>(
        &exec,
        &mut s,
        "send_link",
        json!({"conversation_id": group, "text": "map: https://maps.example/cabin", "urls": ["https://maps.example/cabin"]}),
    )
    .await;
    assert_eq!(link.content_type, ContentType::Link);
    let (like, _) =
        ok::<Message>(&exec, &mut s, "send_like", json!({"conversation_id": group})).await;
    assert_eq!(like.content_type, ContentType::LikeHeart);
    let (share, _) = ok::<Message>(
        &exec,
        &mut s,
        "media_share",
        json!({"conversation_id": group, "media_id": "3180000000000000001_1234567890"}),
    )
    .await;
    assert_eq!(share.content_type, ContentType::MediaShare);
    let (items, _) =
        ok::<Vec<Message>>(&exec, &mut s, "list", json!({"conversation_id": group})).await;
    let kinds: Vec<_> = items.iter().take(3).map(|m| m.content_type.clone()).collect();
    assert_eq!(kinds, vec![ContentType::MediaShare, ContentType::LikeHeart, ContentType::Link]);

    // A new conversation with a user.
    let jordan = h.customer("jordan.lee")["pk"].as_str().unwrap().to_owned();
    let (opened, _) = ok::<Message>(
        &exec,
        &mut s,
        "send_to_user",
        json!({"user_id": jordan, "text": "hi Jordan"}),
    )
    .await;
    let (conv, _) = ok::<Conversation>(
        &exec,
        &mut s,
        "get_conversation",
        json!({"conversation_id": opened.conversation_id.as_str()}),
    )
    .await;
    assert_eq!(conv.participants[0].id.as_str(), jordan);

    // Reactions.
    let priya_msg = items.iter().find(|m| m.text.as_deref() == Some("Perfect")).unwrap().id.clone();
    ack(
        &exec,
        &mut s,
        "react",
        json!({"conversation_id": group, "message_id": priya_msg.as_str(), "emoji": "🔥"}),
    )
    .await;
    let (got, _) = ok::<Message>(
        &exec,
        &mut s,
        "get",
        json!({"conversation_id": group, "message_id": priya_msg.as_str()}),
    )
    .await;
    assert_eq!(got.reactions.len(), 1);
    assert_eq!(
        (got.reactions[0].sender_id.as_str(), got.reactions[0].emoji.as_str()),
        (me.as_str(), "🔥")
    );
    ack(
        &exec,
        &mut s,
        "unreact",
        json!({"conversation_id": group, "message_id": priya_msg.as_str()}),
    )
    .await;
    let (got, _) = ok::<Message>(
        &exec,
        &mut s,
        "get",
        json!({"conversation_id": group, "message_id": priya_msg.as_str()}),
    )
    .await;
    assert!(got.reactions.is_empty());

    // Unsend.
    ack(&exec, &mut s, "delete", json!({"conversation_id": group, "message_id": sent.id.as_str()}))
        .await;
    let (items, _) =
        ok::<Vec<Message>>(&exec, &mut s, "list", json!({"conversation_id": group})).await;
    assert!(items.iter().all(|m| m.id != sent.id));

    ack(&exec, &mut s, "send_typing", json!({"conversation_id": group})).await;
    ack(&exec, &mut s, "send_typing", json!({"conversation_id": group, "typing": false})).await;
}

#[tokio::test]
async fn thread_state_writes() {
    let (h, exec, mut s) = setup(|seed| &seed.personal).await;
    let group = h.seed.group_thread_id.clone();
    let get = |s: &mut Session| {
        let exec = exec.clone();
        let group = group.clone();
        let mut s2 = s.clone();
        async move {
            let (c, _) = ok::<Conversation>(
                &exec,
                &mut s2,
                "get_conversation",
                json!({"conversation_id": group}),
            )
            .await;
            c
        }
    };

    let (items, _) =
        ok::<Vec<Message>>(&exec, &mut s, "list", json!({"conversation_id": group})).await;
    ack(
        &exec,
        &mut s,
        "mark_read",
        json!({"conversation_id": group, "message_id": items[0].id.as_str()}),
    )
    .await;
    assert!(!get(&mut s).await.unread);
    ack(&exec, &mut s, "mark_unread", json!({"conversation_id": group})).await;
    assert!(get(&mut s).await.unread);

    ack(&exec, &mut s, "mute", json!({"conversation_id": group})).await;
    assert!(get(&mut s).await.muted);
    ack(&exec, &mut s, "unmute", json!({"conversation_id": group})).await;
    assert!(!get(&mut s).await.muted);

    ack(&exec, &mut s, "archive", json!({"conversation_id": group})).await;
    assert!(get(&mut s).await.hidden);
    let (inbox, _) = ok::<Vec<Conversation>>(&exec, &mut s, "list_conversations", json!({})).await;
    assert!(inbox.iter().all(|c| c.id.as_str() != group), "hidden threads leave the inbox");

    let pending = h.seed.pending_thread_id.clone();
    ack(&exec, &mut s, "approve", json!({"conversation_id": pending})).await;
    let (inbox, _) = ok::<Vec<Conversation>>(&exec, &mut s, "list_conversations", json!({})).await;
    let accepted = inbox.iter().find(|c| c.id.as_str() == pending).unwrap();
    assert_eq!(accepted.folder, Folder::Inbox);
    let (requests, _) = ok::<Vec<Conversation>>(&exec, &mut s, "list_pending", json!({})).await;
    assert!(requests.is_empty());
}

#[tokio::test]
async fn every_error_class_of_the_private_api() {
    let h = Harness::start().await;
    let exec = h.executor(WEB);
    let account = id_of(&h.seed.personal);
    let mut s = Harness::web_session(&h.seed.personal);
    let group = h.seed.group_thread_id.clone();
    let send = json!({"conversation_id": group, "text": "hello"});
    let read = json!({"conversation_id": group});

    h.fault(&account, "login_required").await;
    let e = api_err(&exec, &mut s, "list", read.clone()).await;
    assert_eq!(e.class, ErrorClass::AuthExpired);
    assert!(e.needs_user);

    h.fault(&account, "challenge").await;
    let e = api_err(&exec, &mut s, "list", read.clone()).await;
    assert_eq!(e.class, ErrorClass::Challenge);
    assert!(e.url.as_deref().unwrap().contains("/challenge/"), "{:?}", e.url);

    h.fault(&account, "feedback").await;
    let e = api_err(&exec, &mut s, "send", send.clone()).await;
    assert_eq!(e.class, ErrorClass::ActionBlocked);
    assert!(!e.writes_allowed);
    ok::<Vec<Message>>(&exec, &mut s, "list", read.clone()).await; // reads still work

    h.fault(&account, "ratelimit").await;
    let e = api_err(&exec, &mut s, "send", send.clone()).await;
    assert_eq!(e.class, ErrorClass::RateLimited);
    assert_eq!(e.retry_after, Some(60));

    h.fault(&account, "html").await;
    let e = api_err(&exec, &mut s, "list", read.clone()).await;
    assert_eq!(e.class, ErrorClass::AuthExpired);

    h.fault(&account, "not_found").await;
    let e = api_err(&exec, &mut s, "list", read.clone()).await;
    assert_eq!(e.class, ErrorClass::NotFound, "a bare 404 Not Found is not a challenge");
    assert!(!e.needs_user, "a 404 asks nothing of the user: {e:?}");

    h.fault(&account, "none").await;
    let e = api_err(
        &exec,
        &mut s,
        "get_conversation",
        json!({"conversation_id": "340282366841710300949128137443944319108"}),
    )
    .await;
    assert_eq!(e.class, ErrorClass::NotFound, "a JSON 404 is a missing thread, not a challenge");

    // The session is gone for good: the sandbox no longer knows the cookie.
    let mut stale = Harness::web_session(&h.seed.personal);
    stale.set_cookie("sessionid", "0%3Aexpired%3A0");
    let e = api_err(&exec, &mut stale, "list_conversations", json!({})).await;
    assert_eq!(e.class, ErrorClass::AuthExpired);
}

#[tokio::test]
async fn invalid_params_fail_before_any_request() {
    let (h, exec, mut s) = setup(|seed| &seed.personal).await;
    let group = h.seed.group_thread_id.clone();
    let before = h.total_requests().await;

    let cases = [
        ("send", json!({"conversation_id": group, "text": "x".repeat(20_001)}), "text"),
        ("send", json!({"conversation_id": group}), "text"),
        ("list", json!({"conversation_id": group, "limit": 50}), "limit"),
        (
            "media_share",
            json!({"conversation_id": group, "media_id": "1", "media_type": "reel"}),
            "media_type",
        ),
        ("send", json!({"conversation_id": group, "text": "x", "bogus": 1}), "bogus"),
        ("get_presence", json!({"user_ids": vec!["1"; 101]}), "user_ids"),
        // An empty id or text is as good as none: it never reaches Instagram.
        ("send", json!({"conversation_id": "", "text": "hi"}), "conversation_id"),
        ("send", json!({"conversation_id": group, "text": ""}), "text"),
        ("list", json!({"conversation_id": ""}), "conversation_id"),
    ];
    for (action, params, field) in cases {
        invalid(&exec, &mut s, action, params, field).await;
    }

    assert_eq!(h.total_requests().await, before, "nothing reached the sandbox");
}

#[tokio::test]
async fn a_message_outside_the_page_is_not_found() {
    let (h, exec, mut s) = setup(|seed| &seed.personal).await;
    let group = h.seed.group_thread_id.clone();
    let e =
        api_err(&exec, &mut s, "get", json!({"conversation_id": group, "message_id": "1"})).await;
    assert_eq!(e.class, ErrorClass::NotFound);
    assert_eq!(e.message, format!("no message 1 among the 20 newest of conversation {group}"));
}

/// The item types the connector's `content_type` mapping names: the keys of
/// its `item_type | map_value` pairs, read from the connector file.
fn item_types_the_mapping_reads() -> BTreeSet<String> {
    let text = igdm_connectors::by_id(WEB).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains(": .item_type | map_value:"))
        .expect("the item_type map of `list`");
    let pairs = line.split("map_value:").nth(1).unwrap();
    let quoted: Vec<&str> = pairs.split('\'').skip(1).step_by(2).collect();
    quoted.iter().step_by(2).map(|s| (*s).to_owned()).collect()
}

#[tokio::test]
async fn the_demo_seed_shows_every_item_type_the_mapping_reads() {
    let h = Harness::start().await;
    let (exec, bodies) = h.recording_executor(WEB);
    for account in [&h.seed.personal, &h.seed.business] {
        let mut s = Harness::web_session(account);
        for action in ["list_conversations", "list_pending"] {
            let (convs, _) = ok::<Vec<Conversation>>(&exec, &mut s, action, json!({})).await;
            for c in convs {
                let params = json!({"conversation_id": c.id.as_str()});
                let _: (Vec<Message>, _) = ok(&exec, &mut s, "list", params).await;
            }
        }
    }
    let mut seen = BTreeSet::new();
    for body in bodies.lock().unwrap().iter() {
        let v: Value = serde_json::from_slice(body).unwrap();
        let threads =
            v["inbox"]["threads"].as_array().cloned().unwrap_or_else(|| vec![v["thread"].clone()]);
        for t in &threads {
            for it in t["items"].as_array().into_iter().flatten() {
                seen.insert(it["item_type"].as_str().unwrap().to_owned());
            }
        }
    }
    let read = item_types_the_mapping_reads();
    assert!(read.len() >= 20, "the map was found: {read:?}");
    let missing: Vec<&String> = read.difference(&seen).collect();
    assert!(
        missing.is_empty(),
        "item types the mapping reads that the demo never shows: {missing:?}"
    );
    let unmapped: Vec<&String> = seen.difference(&read).collect();
    assert!(
        unmapped.is_empty(),
        "item types the demo shows that the mapping does not name: {unmapped:?}"
    );
}
