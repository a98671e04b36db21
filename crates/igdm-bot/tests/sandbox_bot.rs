//! The bot against the sandbox over real HTTP: scripted customers, the real
//! webhook receiver, the outbox in a real SQLite store, and what the account
//! actually sent according to `/_sandbox/accounts/{id}/sent`.

#![allow(clippy::unwrap_used)]

mod common;

use common::Env;
use igdm_bot::{Handled, SendStatus};
use igdm_store::OutboxState;
use serde_json::json;

fn sends(h: &Handled) -> Vec<SendStatus> {
    match h {
        Handled::Replied { sends, .. } => sends.iter().map(|s| s.status.clone()).collect(),
        other => panic!("expected replies, got {other:?}"),
    }
}

fn intent(h: &Handled) -> &str {
    match h {
        Handled::Replied { intent, .. } => intent,
        other => panic!("expected replies, got {other:?}"),
    }
}

fn all_sent(h: &Handled) -> bool {
    sends(h).iter().all(|s| matches!(s, SendStatus::Sent { message_id: Some(_) }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_intent_story_mention_quick_reply_and_duplicates() {
    let mut env = Env::start().await;
    let bot = env.bot(None);
    let ana = env.customer("ana.sousa", "Ana Sousa").await;

    // Enquiry by keyword: text with quick replies, templated with the first name.
    let e = env.act_event(&ana, json!({"text": "Hi! How much is the tote?"})).await;
    let h = bot.handle(&e).await.unwrap();
    assert_eq!(intent(&h), "enquiry");
    assert!(all_sent(&h), "{h:?}");

    // A quick-reply tap on "See products": a product card.
    let e = env
        .act_event(&ana, json!({"quick_reply": {"text": "See products", "payload": "PRODUCTS"}}))
        .await;
    let h = bot.handle(&e).await.unwrap();
    assert_eq!(intent(&h), "products");
    assert!(all_sent(&h));

    let e = env.act_event(&ana, json!({"text": "I want to order two please"})).await;
    assert_eq!(intent(&bot.handle(&e).await.unwrap()), "order");
    let e = env.act_event(&ana, json!({"text": "Open to a collab with my page?"})).await;
    assert_eq!(intent(&bot.handle(&e).await.unwrap()), "collab");
    // Support: two replies (text, then an image).
    let e = env.act_event(&ana, json!({"text": "my bag arrived damaged"})).await;
    let h = bot.handle(&e).await.unwrap();
    assert_eq!(intent(&h), "support");
    assert_eq!(sends(&h).len(), 2);
    assert!(all_sent(&h));
    // An ice-breaker / menu postback.
    let e = env
        .act_event(&ana, json!({"postback": {"title": "Let's collaborate", "payload": "COLLAB"}}))
        .await;
    assert_eq!(intent(&bot.handle(&e).await.unwrap()), "collab");
    // Nothing matches: general.
    let e = env.act_event(&ana, json!({"text": "good morning"})).await;
    let general = e.clone();
    assert_eq!(intent(&bot.handle(&e).await.unwrap()), "general");
    // A story mention: a thank-you.
    let e =
        env.act_event(&ana, json!({"story_mention": {"url": "https://cdn.example/story/1"}})).await;
    let h = bot.handle(&e).await.unwrap();
    assert_eq!(intent(&h), "story_mention");

    // Duplicate deliveries send nothing more.
    for _ in 0..2 {
        match bot.handle(&general).await.unwrap() {
            Handled::Duplicate(open) => assert!(open.is_empty()),
            other => panic!("expected a duplicate, got {other:?}"),
        }
    }

    let sent = env.sent_to(&ana).await;
    assert!(sent.iter().all(|s| s["accepted"] == true), "{sent:#?}");
    let texts: Vec<Option<&str>> = sent.iter().map(|s| s["text"].as_str()).collect();
    assert_eq!(sent.len(), 9, "one reply per message, two for support: {texts:?}");
    assert_eq!(
        texts[0],
        Some("Hi Ana! Our prices start at $25 and we ship worldwide in 3-5 days.")
    );
    assert_eq!(texts[1], None, "the product card has no text");
    assert!(texts[2].unwrap().starts_with("Great choice, Ana!"));
    assert!(texts[4].unwrap().starts_with("Sorry to hear that, Ana."));
    assert_eq!(texts[5], None, "the returns guide image");
    assert_eq!(texts[7], Some("Thanks for your message, Ana! How can we help?"));
    assert!(texts[8].unwrap().contains("Thanks for the mention"));

    // The echoes of the bot's own replies are not a human takeover.
    let last_mid = match &h {
        Handled::Replied { sends, .. } => match &sends[0].status {
            SendStatus::Sent { message_id: Some(m) } => m.clone(),
            s => panic!("{s:?}"),
        },
        _ => unreachable!(),
    };
    let echo = env.echo_of(&last_mid).await;
    assert!(matches!(bot.handle(&echo).await.unwrap(), Handled::Ignored(_)));
    let e = env.act_event(&ana, json!({"text": "thanks!"})).await;
    assert!(all_sent(&bot.handle(&e).await.unwrap()), "the bot still answers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reply_window_is_checked_locally_on_the_virtual_clock() {
    let mut env = Env::start().await;
    let bot = env.bot(None);
    let bob = env.customer("bob", "Bob Stone").await;

    // The message is processed 25 hours late (igdm was down): refused before any request.
    let late = env.act_event(&bob, json!({"text": "what's the price?"})).await;
    env.advance(25 * 3600).await;
    let h = bot.handle(&late).await.unwrap();
    match &sends(&h)[0] {
        SendStatus::Refused { reason } => {
            assert!(reason.contains("24-hour reply window"), "{reason}");
        }
        s => panic!("expected a refusal, got {s:?}"),
    }
    assert!(env.sent_to(&bob).await.is_empty(), "no hopeful call that ends in 2018278");
    let key = match &h {
        Handled::Replied { sends, .. } => sends[0].key.clone(),
        _ => unreachable!(),
    };
    let entry = env.store.outbox_get(&key).await.unwrap().unwrap();
    assert_eq!(entry.state, OutboxState::Failed);
    assert!(entry.last_error.unwrap().contains("reply window"));

    // A new message opens the window again.
    let e = env.act_event(&bob, json!({"text": "hello?"})).await;
    assert!(all_sent(&bot.handle(&e).await.unwrap()));
    assert_eq!(env.sent_to(&bob).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn human_takeover_pauses_until_release_or_idle_time() {
    let mut env = Env::start().await;
    let bot = env.bot(None);
    let cy = env.customer("cy", "Cy Moreau").await;
    let account = env.account_id();
    let igsid = cy["igsid"].as_str().unwrap().to_owned();

    let e = env.act_event(&cy, json!({"text": "do you ship to Paris?"})).await;
    assert!(all_sent(&bot.handle(&e).await.unwrap()));

    // A person answers from the Instagram app: its echo pauses the bot.
    let mid = env.human_reply(&cy, "Hi Cy, it's Marie from the shop, yes we do!").await;
    let echo = env.echo_of(&mid).await;
    assert_eq!(bot.handle(&echo).await.unwrap(), Handled::TakenOver);
    let e = env.act_event(&cy, json!({"text": "great, how much?"})).await;
    assert_eq!(bot.handle(&e).await.unwrap(), Handled::Paused);

    // After the idle time without the person, the bot answers again.
    env.advance(61 * 60).await;
    let e = env.act_event(&cy, json!({"text": "hello? price please"})).await;
    assert!(all_sent(&bot.handle(&e).await.unwrap()));

    // `igdm handover take`: paused regardless of idle time, until released.
    igdm_bot::take_over(&*env.store, &account, &igsid, igdm_model::Timestamp::now()).await.unwrap();
    env.advance(3 * 3600).await;
    let e = env.act_event(&cy, json!({"text": "anyone?"})).await;
    assert_eq!(bot.handle(&e).await.unwrap(), Handled::Paused);
    assert!(igdm_bot::release(&*env.store, &account, &igsid).await.unwrap());
    let e = env.act_event(&cy, json!({"text": "I want to order"})).await;
    let h = bot.handle(&e).await.unwrap();
    assert_eq!(intent(&h), "order");
    assert!(all_sent(&h));

    let bot_texts: Vec<String> = env
        .sent_to(&cy)
        .await
        .iter()
        .filter_map(|s| s["text"].as_str().map(str::to_owned))
        .filter(|t| !t.contains("Marie"))
        .collect();
    assert_eq!(bot_texts.len(), 3, "{bot_texts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_mid_send_delivers_each_reply_exactly_once() {
    let mut env = Env::start().await;
    let dee = env.customer("dee", "Dee Park").await;
    let e = env.act_event(&dee, json!({"text": "my bag arrived broken"})).await;

    // The first process records both replies, then sends the first one and
    // dies before it can note the result.
    {
        let first = env.bot(None);
        let planned = first.prepare(&e).await.unwrap();
        assert_eq!(planned.len(), 2);
        let text = planned[0].payload["params"]["text"].as_str().unwrap().to_owned();
        env.store
            .outbox_mark(&planned[0].idempotency_key, OutboxState::Sending, None, None)
            .await
            .unwrap();
        env.human_reply(&dee, &text).await;
    }
    assert_eq!(env.sent_to(&dee).await.len(), 1);

    // After the restart the webhook is delivered again, and the open entries are resumed.
    let second = env.bot(None);
    let resumed = second.resume().await.unwrap();
    let statuses: Vec<_> = resumed.iter().map(|r| r.status.clone()).collect();
    assert_eq!(statuses.len(), 2, "{resumed:?} {:?}", env.store.outbox_pending().await.unwrap());
    assert_eq!(statuses[0], SendStatus::Reconciled, "the first reply had arrived");
    assert!(matches!(statuses[1], SendStatus::Sent { .. }), "{statuses:?}");
    match second.handle(&e).await.unwrap() {
        Handled::Duplicate(open) => assert!(open.is_empty()),
        other => panic!("expected a duplicate, got {other:?}"),
    }
    assert!(second.resume().await.unwrap().is_empty());

    let sent = env.sent_to(&dee).await;
    assert_eq!(sent.len(), 2, "the text once and the image once: {sent:#?}");
    assert!(sent[0]["text"].as_str().unwrap().starts_with("Sorry to hear that, Dee."));
    assert!(sent[1]["text"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profile_sync_sets_ice_breakers_and_menu() {
    let env = Env::start().await;
    let bot = env.bot(None);
    let done = bot.sync_profile().await.unwrap();
    assert_eq!(done, ["set_ice_breakers", "set_persistent_menu"]);
    let profile =
        env.get(&format!("/_sandbox/graph/accounts/{}/messenger_profile", env.account_id())).await;
    let text = profile.to_string();
    assert!(text.contains("What are your prices?"), "{profile}");
    assert!(text.contains("Visit the shop"), "{profile}");
}

const INBOX: &str = igdm_bot::config::PAGE_INBOX_APP_ID;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thread_control_on_the_page_flavour_pauses_and_releases() {
    let mut env = Env::start().await;
    let bot = env.bot(None);
    let fay = env.customer("fay", "Fay Ng").await;
    let igsid = fay["igsid"].as_str().unwrap().to_owned();
    let first = env.act_event(&fay, json!({"text": "do you ship to Oslo?"})).await;
    assert!(all_sent(&bot.handle(&first).await.unwrap()));

    let control = |action: &str, new_owner: &str, previous: &str| igdm_model::Event {
        kind: igdm_model::EventKind::Handover,
        conversation_id: Some(igsid.clone()),
        sender_id: Some(igsid.clone()),
        message_id: None,
        is_echo: false,
        text: None,
        attachments: Vec::new(),
        quick_reply_payload: None,
        postback: None,
        details: Some(
            json!({"action": action, action: {"new_owner_app_id": new_owner, "previous_owner_app_id": previous}}),
        ),
        ..first.clone()
    };
    assert_eq!(
        bot.handle(&control("take_thread_control", INBOX, "1")).await.unwrap(),
        Handled::TakenOver
    );
    let e = env.act_event(&fay, json!({"text": "hello?"})).await;
    assert_eq!(bot.handle(&e).await.unwrap(), Handled::Paused);
    assert_eq!(
        bot.handle(&control("pass_thread_control", "1", INBOX)).await.unwrap(),
        Handled::Released
    );
    let e = env.act_event(&fay, json!({"text": "price?"})).await;
    assert!(all_sent(&bot.handle(&e).await.unwrap()));
    assert_eq!(env.sent_to(&fay).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_answers_from_the_receivers_event_stream_despite_duplicated_deliveries() {
    let env = Env::start().await;
    // Every webhook POST is delivered twice.
    env.control("/_sandbox/webhooks/chaos", json!({"duplicate": 1.0})).await;
    let bot = std::sync::Arc::new(env.bot(None));
    let events = env.events.resubscribe();
    let runner = bot.clone();
    let task = tokio::spawn(async move { runner.run(events).await });
    let gus = env.customer("gus", "Gus Hall").await;
    env.act(&gus, json!({"text": "I want to order"})).await;
    let mut sent = Vec::new();
    for _ in 0..100 {
        sent = env.sent_to(&gus).await;
        if !sent.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(sent[0]["text"].as_str().unwrap().starts_with("Great choice, Gus!"));
    // The echo of that reply comes through the stream too and is not a takeover.
    env.act(&gus, json!({"text": "thanks, and shipping cost?"})).await;
    for _ in 0..100 {
        sent = env.sent_to(&gus).await;
        if sent.len() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // Give any duplicate a chance to (wrongly) produce a second reply.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let sent = env.sent_to(&gus).await;
    assert_eq!(sent.len(), 2, "exactly one reply per message: {sent:?}");
    let deliveries = env.get("/_sandbox/webhooks/deliveries").await;
    let records = deliveries["data"].as_array().unwrap();
    let batches: std::collections::HashSet<u64> =
        records.iter().map(|r| r["batch"].as_u64().unwrap()).collect();
    assert!(records.len() > batches.len(), "the sandbox did duplicate deliveries");
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limited_replies_are_retried_with_backoff() {
    let mut env = Env::start().await;
    let mut config = igdm_bot::BotConfig::parse(common::EXAMPLE).unwrap();
    config.policy.backoff_ms = 400;
    let hal = env.customer("hal", "Hal Berg").await;
    let e = env.act_event(&hal, json!({"text": "my bag arrived damaged"})).await;
    // One send per second: the second reply of the pair is refused at first.
    env.control("/_sandbox/graph/rate_limits", json!({"send_text_per_sec": 1})).await;
    let bot = igdm_bot::Bot::new(config, env.client(), env.store.clone()).unwrap();
    let h = bot.handle(&e).await.unwrap();
    assert!(all_sent(&h), "{h:?}");
    let sent = env.sent_to(&hal).await;
    let accepted = sent.iter().filter(|s| s["accepted"] == true).count();
    assert_eq!(accepted, 2, "{sent:#?}");
    assert!(sent.iter().any(|s| s["accepted"] == false), "a refusal was retried: {sent:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_whose_answers_are_lost_are_reconciled_through_the_ledger_or_reported() {
    let mut env = Env::start().await;
    let dee = env.customer("dee", "Dee Park").await;
    let impatient = env.client_over(Some(std::sync::Arc::new(
        igdm_test::clients::ImpatientWrites::new(std::time::Duration::from_secs(1)),
    )));
    let bot = env.bot_with(None, impatient);

    // Both replies (a text and an image) are applied, their answers lost.
    let e = env.act_event(&dee, json!({"text": "my bag arrived broken"})).await;
    slow(&env, 2500).await;
    let handled = bot.handle(&e).await.unwrap();
    let Handled::Replied { sends, .. } = handled else { panic!("{handled:?}") };
    let statuses: Vec<_> = sends.iter().map(|s| s.status.clone()).collect();
    assert_eq!(statuses, [SendStatus::Reconciled, SendStatus::Reconciled], "{sends:?}");
    assert_eq!(env.sent_to(&dee).await.len(), 2, "each reply once");
    for s in &sends {
        let entry = env.store.outbox_get(&s.key).await.unwrap().unwrap();
        assert_eq!(entry.state, OutboxState::Sent, "the ledger has the verdict");
        assert!(entry.result.unwrap()["id"].is_string());
    }

    // The same reply text also went out from the app: two messages could be
    // the bot's, so it reports them and sends nothing more.
    slow(&env, 0).await;
    let e2 = env.act_event(&dee, json!({"text": "my bag arrived broken again"})).await;
    let planned = bot.prepare(&e2).await.unwrap();
    let text = planned[0].payload["params"]["text"].as_str().unwrap().to_owned();
    slow(&env, 2500).await;
    let human = env.human_reply(&dee, &text).await;
    let before = env.sent_to(&dee).await.len();
    let handled = bot.handle(&e2).await.unwrap();
    slow(&env, 0).await;
    let Handled::Duplicate(sends) = handled else { panic!("{handled:?}") };
    let SendStatus::Unknown { candidates } = &sends[0].status else {
        panic!("an ambiguity is reported: {sends:?}")
    };
    assert_eq!(candidates.len(), 2, "{candidates:?}");
    assert!(candidates.contains(&human));
    let entry = env.store.outbox_get(&sends[0].key).await.unwrap().unwrap();
    assert_eq!(entry.state, OutboxState::Unknown);
    assert_eq!(sends[1].status, SendStatus::Reconciled, "{sends:?}");
    assert_eq!(env.sent_to(&dee).await.len(), before + 2, "each reply once, nothing resent");
}

/// The sandbox holds every answer of the account `ms` real milliseconds
/// after applying the request (0: off).
async fn slow(env: &Env, ms: u64) {
    env.control("/_sandbox/faults", json!({"account": env.account_id(), "latency_ms": ms})).await;
}

const ESCALATING: &str = r#"
brand: Acme Studio
intents:
  - name: spring
    referral_ref: [SPRING24]
    replies:
      - text: "Welcome! Your spring code is SPRING24."
  - name: human
    keywords: ["a person"]
    handover: true
    replies:
      - text: "Connecting you with our team."
  - name: general
    replies:
      - text: "Thanks for your message!"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_referral_picks_its_intent_and_an_escalation_passes_thread_control() {
    let mut env = Env::start().await;
    let client = env.page_client();
    let bot = env.bot_with(Some(ESCALATING), client.clone());
    let gil = env.customer("gil.amar", "Gil Amar").await;
    let igsid = gil["igsid"].as_str().unwrap().to_owned();
    let owner = |client: std::sync::Arc<igdm::Client>, igsid: String| async move {
        let mut p = serde_json::Map::new();
        p.insert("user_id".into(), json!(igsid));
        client.invoke("get_thread_owner", p).await.unwrap().data["app_id"].clone()
    };

    // A first message that came through an ig.me link carries its ref.
    let referral = json!({"ref": "SPRING24", "source": "SHORTLINK", "type": "OPEN_THREAD"});
    let e = env.act_event(&gil, json!({"text": "hi!", "referral": referral})).await;
    assert_eq!(e.kind, igdm_model::EventKind::Message);
    let h = bot.handle(&e).await.unwrap();
    assert_eq!(intent(&h), "spring");
    assert!(all_sent(&h), "{h:?}");
    // In an existing conversation the link arrives as a referral of its own.
    let e = env.act_event(&gil, json!({"referral": referral})).await;
    assert_eq!(e.kind, igdm_model::EventKind::Referral);
    let h = bot.handle(&e).await.unwrap();
    assert_eq!(intent(&h), "spring");
    assert!(all_sent(&h), "{h:?}");
    // A referral no intent names gets no reply.
    let other = json!({"ref": "UNKNOWN", "source": "SHORTLINK", "type": "OPEN_THREAD"});
    let e = env.act_event(&gil, json!({"referral": other})).await;
    assert!(matches!(bot.handle(&e).await.unwrap(), Handled::Ignored(_)));

    // The escalation intent replies, then passes the thread to the Page Inbox.
    let e = env.act_event(&gil, json!({"text": "can I talk to a person?"})).await;
    let h = bot.handle(&e).await.unwrap();
    assert_eq!(intent(&h), "human");
    assert!(all_sent(&h), "{h:?}");
    assert_eq!(
        owner(client.clone(), igsid.clone()).await,
        json!(igdm_bot::config::PAGE_INBOX_APP_ID)
    );
    // Meta reports the pass back as a handover event: it keeps the pause.
    let passed = env.next_event(|e| e.kind == igdm_model::EventKind::Handover).await;
    assert_eq!(bot.handle(&passed).await.unwrap(), Handled::TakenOver);
    let e = env.act_event(&gil, json!({"text": "hello?"})).await;
    assert_eq!(bot.handle(&e).await.unwrap(), Handled::Paused);
    assert_eq!(env.sent_to(&gil).await.len(), 3, "the paused message got no reply");

    // Given back: thread control returns to this app and the bot answers.
    let done = igdm_bot::give_back(&client, &*env.store, &env.account_id(), &igsid, "resolved")
        .await
        .unwrap();
    assert_eq!(done.meta_action, Some("take_thread_control"));
    assert!(done.was_taken);
    assert_ne!(
        owner(client.clone(), igsid.clone()).await,
        json!(igdm_bot::config::PAGE_INBOX_APP_ID)
    );
    // The take is reported back too: the bot keeps the conversation.
    let taken = env.next_event(|e| e.kind == igdm_model::EventKind::Handover).await;
    assert_eq!(bot.handle(&taken).await.unwrap(), Handled::Released);
    let e = env.act_event(&gil, json!({"text": "what about shipping"})).await;
    assert!(all_sent(&bot.handle(&e).await.unwrap()));
}
