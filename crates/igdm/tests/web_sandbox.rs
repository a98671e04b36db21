//! The client library against the sandbox's private web API, over real HTTP.

use serde_json::{Value, json};

use igdm::{Client, PacingPolicy};
use igdm_model::{ErrorClass, SessionHealth};

struct Env {
    sandbox: igdm_sandbox::RunningSandbox,
    base: String,
    personal: Value,
    seed: igdm_sandbox::DemoSeed,
}

async fn env() -> Env {
    let (sandbox, seed) = igdm_test::sandbox::seeded().await;
    let base = sandbox.base_url();
    Env { personal: seed.personal.clone(), seed, base, sandbox }
}

fn web_client(env: &Env, pacing: PacingPolicy) -> Client {
    igdm_test::clients::web(&env.base, &env.seed, pacing)
}

async fn stats(env: &Env) -> Value {
    igdm_test::sandbox::stats(&env.base).await
}

#[tokio::test]
async fn inbox_thread_paging_send_and_react() {
    let env = env().await;
    let client = web_client(&env, PacingPolicy::none());

    let (page, _) = client.conversations().limit(20).await.unwrap();
    assert!(page.items.len() >= 2, "the demo personal account has several threads");
    let group = page
        .items
        .iter()
        .find(|c| c.id.as_str() == env.seed.group_thread_id)
        .expect("group thread listed");
    assert_eq!(group.kind, igdm_model::ConversationKind::Group);
    assert!(group.participants.len() >= 2);

    // Page through a whole thread with the cursors the connector returns.
    let thread = page.items[0].id.to_string();
    let mut seen = Vec::new();
    let mut customer_message = None;
    let mut cursor: Option<String> = None;
    loop {
        let mut req = client.messages(&thread).limit(5);
        if let Some(c) = cursor.take() {
            req = req.cursor(c);
        }
        let (p, _) = req.await.unwrap();
        seen.extend(p.items.iter().map(|m| m.id.to_string()));
        if customer_message.is_none() {
            customer_message = p.items.iter().find(|m| !m.sender.is_self).map(|m| m.id.to_string());
        }
        match (p.has_more, p.next_cursor) {
            (true, Some(c)) => cursor = Some(c),
            _ => break,
        }
    }
    let unique: std::collections::BTreeSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no message twice across pages");
    assert!(!seen.is_empty());

    // A send, then the same idempotency key again: one message only.
    let first = client
        .send(&thread, "it's {{not}} a 'template' | ok")
        .idempotency_key("key-1")
        .await
        .unwrap();
    assert_eq!(first.outcome, igdm::Sent::Sent);
    let again = client
        .send(&thread, "it's {{not}} a 'template' | ok")
        .idempotency_key("key-1")
        .await
        .unwrap();
    assert_eq!(again.outcome, igdm::Sent::Replayed);
    assert_eq!(again.result, first.result);
    let (latest, _) = client.messages(&thread).limit(3).await.unwrap();
    let mine: Vec<_> = latest
        .items
        .iter()
        .filter(|m| m.text.as_deref() == Some("it's {{not}} a 'template' | ok"))
        .collect();
    assert_eq!(mine.len(), 1, "the replayed key sent nothing");
    assert!(mine[0].sender.is_self);

    // React to the customer's latest message in the thread (found while paging: it
    // need not be among the newest few).
    let target = customer_message.expect("the demo thread holds a customer's message");
    let out = client
        .invoke(
            "react",
            serde_json::from_value(
                json!({"conversation_id": thread, "message_id": target, "emoji": "❤️"}),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(out.status, 200);
    let reacted = find_message(&client, &thread, &target).await;
    assert!(
        reacted.reactions.iter().any(|r| r.emoji == "❤️"),
        "the reaction is on the message: {:?}",
        reacted.reactions
    );
}

/// The message `id` of `thread`, paging back through the thread.
async fn find_message(client: &Client, thread: &str, id: &str) -> igdm_model::Message {
    let mut cursor: Option<String> = None;
    loop {
        let mut req = client.messages(thread).limit(20);
        if let Some(c) = cursor.take() {
            req = req.cursor(c);
        }
        let (p, _) = req.await.unwrap();
        if let Some(m) = p.items.into_iter().find(|m| m.id.as_str() == id) {
            return m;
        }
        match (p.has_more, p.next_cursor) {
            (true, Some(c)) => cursor = Some(c),
            _ => panic!("message {id} not found in {thread}"),
        }
    }
}

#[tokio::test]
async fn action_block_pauses_writes_but_not_reads() {
    let env = env().await;
    let client = web_client(&env, PacingPolicy::none());
    let account_id = env.personal["id"].as_str().unwrap().to_owned();
    let thread = env.seed.group_thread_id.clone();
    reqwest::Client::new()
        .post(format!("{}/_sandbox/faults", env.base))
        .json(&json!({"account": account_id, "mode": "feedback"}))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();

    let err = client.send(&thread, "hello").await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::ActionBlocked);
    assert!(matches!(client.state().unwrap().session.health, SessionHealth::ActionBlocked { .. }));

    // Reads still work while writes are paused.
    let (page, _) = client.conversations().await.unwrap();
    assert!(!page.items.is_empty());

    // A second write is refused locally: the sandbox sees no new write.
    let before = stats(&env).await;
    let err = client.send(&thread, "hello again").await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::ActionBlocked);
    let after = stats(&env).await;
    assert_eq!(before["total"], after["total"], "no request left igdm for a paused write");
    drop(env.sandbox);
}

#[tokio::test]
async fn challenge_stops_every_call() {
    let env = env().await;
    let client = web_client(&env, PacingPolicy::none());
    let account_id = env.personal["id"].as_str().unwrap().to_owned();
    reqwest::Client::new()
        .post(format!("{}/_sandbox/faults", env.base))
        .json(&json!({"account": account_id, "mode": "challenge"}))
        .send()
        .await
        .unwrap();
    let err = client.conversations().await.unwrap_err();
    let api = err.to_api_error();
    assert_eq!(api.class, ErrorClass::Challenge);
    assert!(api.needs_user);
    assert!(
        api.url.as_deref().is_some_and(|u| u.contains("/challenge/")),
        "the URL to open is kept: {api:?}"
    );
    let before = stats(&env).await;
    let err = client.conversations().await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Challenge);
    assert!(err.to_api_error().remediation.contains("igdm login me"));
    assert_eq!(before["total"], stats(&env).await["total"], "stopped accounts make no calls");
}

#[tokio::test]
async fn a_bare_404_is_not_found_and_locks_nothing() {
    let env = env().await;
    let client = web_client(&env, PacingPolicy::none());
    let account_id = env.personal["id"].as_str().unwrap().to_owned();
    let fault = |mode: &'static str| {
        igdm_test::sandbox::post_ok(
            &env.base,
            "/_sandbox/faults",
            json!({"account": account_id, "mode": mode}),
        )
    };
    fault("not_found").await;
    let err = client.conversations().await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::NotFound, "{err}");
    assert!(!err.to_api_error().needs_user);
    assert_eq!(
        client.state().unwrap().session.health,
        SessionHealth::Healthy,
        "a 404 does not stop the account"
    );

    // The next call reaches Instagram and works.
    fault("none").await;
    let before = stats(&env).await;
    let (page, _) = client.conversations().await.unwrap();
    assert!(!page.items.is_empty());
    assert_ne!(before["total"], stats(&env).await["total"], "the call was made");
}

#[tokio::test]
async fn an_undeclared_parameter_is_refused_before_any_request() {
    let env = env().await;
    let client = web_client(&env, PacingPolicy::none());
    let thread = env.seed.group_thread_id.clone();
    let before = stats(&env).await;
    let err = client
        .send(&thread, "pick one")
        .param("quick_replies", json!([{"title": "A", "payload": "B"}]))
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::InvalidRequest);
    let message = err.to_string();
    assert!(
        message.contains("quick_replies")
            && message.contains("instagram-graph")
            && message.contains("instagram-page"),
        "{message}"
    );
    let err = client
        .invoke(
            "react",
            igdm::ops::params(&[("conversation_id", json!(thread)), ("bogus", json!(1))]),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no igdm connector takes it"), "{err}");
    assert_eq!(before["total"], stats(&env).await["total"], "nothing reached the sandbox");

    // `limit` on an action that takes none is applied to the result instead.
    let all = client.invoke("search", igdm::ops::params(&[("query", json!("a"))])).await.unwrap();
    let n = all.data.as_array().unwrap().len();
    assert!(n >= 2, "the demo thread has several matches: {n}");
    let one = client
        .invoke("search", igdm::ops::params(&[("query", json!("a")), ("limit", json!(1))]))
        .await
        .unwrap();
    assert_eq!(one.data.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn reconciliation_matches_the_echoed_client_context_not_the_text() {
    let env = env().await;
    let connector = std::sync::Arc::new(
        igdm::spec::Connector::load(igdm_connectors::INSTAGRAM_WEB, "instagram-web.md").unwrap(),
    );
    let account = igdm_test::clients::account(
        "me",
        "instagram-web",
        igdm_model::Backend::Web,
        &env.base,
        &env.personal["pk"],
    );
    // A transport that gives up long before the sandbox answers a lost write.
    let transport =
        igdm::spec::ReqwestTransport::with_timeout(std::time::Duration::from_secs(1)).unwrap();
    let client =
        Client::builder(account, connector, igdm_test::clients::web_session(&env.personal))
            .transport(std::sync::Arc::new(transport))
            .pacing(PacingPolicy::none())
            .build()
            .unwrap();
    let thread = env.seed.group_thread_id.clone();
    let first = client.send(&thread, "see you at 5").idempotency_key("first").await.unwrap();
    assert_eq!(first.outcome, igdm::Sent::Sent);
    let first_id = first.result["id"].as_str().unwrap().to_owned();

    // The same text again within the minute, lost in flight: its outcome is unknown.
    let account_id = env.personal["id"].clone();
    let fault = |body: Value| igdm_test::sandbox::post_ok(&env.base, "/_sandbox/faults", body);
    fault(json!({"account": account_id, "drop_writes": true, "latency_ms": 3000})).await;
    let err = client.send(&thread, "see you at 5").idempotency_key("second").await.unwrap_err();
    assert!(
        matches!(err, igdm::Error::OutcomeUnknown { ref key } if key == "second"),
        "the first message is not taken for the second: {err:?}"
    );
    let recorded = client.ledger().get("second").await.unwrap().unwrap();
    assert_eq!(recorded.state, igdm::SendState::Unknown, "the ledger keeps the verdict typed");

    // Once the network is back, the same key reconciles again: still not the
    // first message, so it sends, once.
    fault(json!({"account": account_id, "drop_writes": false, "latency_ms": 0})).await;
    let second = client.send(&thread, "see you at 5").idempotency_key("second").await.unwrap();
    assert_eq!(second.outcome, igdm::Sent::Sent);
    let second_id = second.result["id"].as_str().unwrap().to_owned();
    assert_ne!(second_id, first_id);
    let again = client.send(&thread, "see you at 5").idempotency_key("second").await.unwrap();
    assert_eq!(again.outcome, igdm::Sent::Replayed);
    assert_eq!(again.result["id"], second.result["id"]);
    let (page, _) = client.messages(&thread).limit(20).await.unwrap();
    let ours = page
        .items
        .iter()
        .filter(|m| m.sender.is_self && m.text.as_deref() == Some("see you at 5"))
        .count();
    assert_eq!(ours, 2, "one message per key");
}

#[tokio::test]
async fn pacing_spaces_writes_and_budgets_refuse_before_sending() {
    let env = env().await;
    let policy = PacingPolicy {
        min_interval: std::time::Duration::from_millis(300),
        jitter: std::time::Duration::ZERO,
        hourly: Some(2),
        daily: None,
    };
    let client = web_client(&env, policy);
    let thread = env.seed.group_thread_id.clone();
    client.send(&thread, "one").await.unwrap();
    client.send(&thread, "two").await.unwrap();
    let state = client.state().unwrap();
    assert_eq!(state.writes.len(), 2);
    let gap = state.writes[1].0 - state.writes[0].0;
    assert!(
        gap >= chrono::Duration::milliseconds(300),
        "writes were spaced by the pacing interval: {gap}"
    );
    let before = stats(&env).await;
    let err = client.send(&thread, "three").await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::RateLimited);
    assert!(err.to_api_error().retry_after.is_some());
    assert_eq!(before["total"], stats(&env).await["total"], "a spent budget sends nothing");
}

#[tokio::test]
async fn invalid_params_fail_before_any_request() {
    let env = env().await;
    let client = web_client(&env, PacingPolicy::none());
    let before = stats(&env).await;
    let thread = env.seed.group_thread_id.clone();
    let err = client.send(&thread, "x".repeat(20_001)).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::InvalidRequest);
    let err = client.conversations().limit(10_000).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::InvalidRequest, "{err}");
    assert_eq!(before["total"], stats(&env).await["total"]);
}
