//! The send ledger and the reconciliation of official-API sends whose outcome
//! is unknown, over real HTTP to the sandbox with its network faults, and the
//! ledger's conformance on SQLite, PostgreSQL and in memory.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use igdm::ledger::NewSend;
use igdm::{Client, MemoryLedger, PacingPolicy, SendLedger, SendState, Sent, StoreLedger};
use igdm_model::Timestamp;
use igdm_store::{MessageStore, Store};
use igdm_test::clients::ImpatientWrites;

struct Env {
    _sandbox: igdm_sandbox::RunningSandbox,
    _dir: tempfile::TempDir,
    base: String,
    seed: igdm_sandbox::DemoSeed,
    store: Arc<dyn MessageStore>,
}

async fn env() -> Env {
    let (sandbox, seed) = igdm_test::sandbox::seeded().await;
    let base = sandbox.base_url();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("igdm.db").display());
    let store = Store::open(&url).await.unwrap().into_shared();
    Env { _sandbox: sandbox, _dir: dir, base, seed, store }
}

/// The business account over the official API, its sends in `ledger`.
fn graph_client(env: &Env, ledger: Arc<dyn SendLedger>) -> Client {
    let connector = Arc::new(
        igdm::spec::Connector::load(igdm_connectors::INSTAGRAM_GRAPH, "instagram-graph.md")
            .unwrap(),
    );
    let biz = &env.seed.business;
    let account = igdm_test::clients::account(
        "shop",
        "instagram-graph",
        igdm_model::Backend::Graph,
        &env.base,
        &biz["ig_user_id"],
    );
    Client::builder(account, connector, igdm_test::clients::graph_session(biz))
        .transport(Arc::new(ImpatientWrites::new(Duration::from_secs(1))))
        .pacing(PacingPolicy::none())
        .ledger(ledger)
        .build()
        .unwrap()
}

/// A customer writes to the business (opening the reply window); returns
/// the conversation's id.
async fn customer_writes(env: &Env, client: &Client) -> String {
    let alex = env
        .seed
        .customers
        .iter()
        .find(|c| c["username"] == "alex_rivera")
        .expect("the demo has alex_rivera")
        .clone();
    let pk = alex["pk"].as_str().unwrap();
    igdm_test::sandbox::post_ok(
        &env.base,
        &format!("/_sandbox/customers/{pk}/send"),
        json!({"to": env.seed.business["id"], "text": "Are you open at 5?"}),
    )
    .await;
    let mut p = serde_json::Map::new();
    p.insert("user_id".into(), alex["igsid"].clone());
    let conv = client.invoke("find_conversation", p).await.unwrap();
    conv.data["id"].as_str().unwrap().to_owned()
}

async fn fault(env: &Env, body: Value) {
    let mut body = body;
    body["account"] = env.seed.business["id"].clone();
    igdm_test::sandbox::post_ok(&env.base, "/_sandbox/faults", body).await;
}

/// The business's own messages with `text` in the conversation, newest first.
async fn own_with_text(client: &Client, conversation: &str, text: &str) -> Vec<String> {
    let (page, _) = client.messages(conversation).limit(20).await.unwrap();
    page.items
        .iter()
        .filter(|m| m.sender.is_self && m.text.as_deref() == Some(text))
        .map(|m| m.id.to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_official_send_whose_answer_is_lost_is_reconciled_to_its_own_message() {
    let env = env().await;
    let client = graph_client(&env, Arc::new(StoreLedger::new(env.store.clone())));
    let conv = customer_writes(&env, &client).await;

    // The same text once, confirmed: the ledger knows its message.
    let first = client.send(&conv, "See you at 5!").idempotency_key("first").await.unwrap();
    assert_eq!(first.outcome, Sent::Sent);
    let first_id = first.result["id"].as_str().unwrap().to_owned();

    // Again, applied by the sandbox but answered after the write gave up.
    fault(&env, json!({"latency_ms": 2500})).await;
    let second = client.send(&conv, "See you at 5!").idempotency_key("second").await.unwrap();
    fault(&env, json!({"latency_ms": 0})).await;
    assert_eq!(second.outcome, Sent::Reconciled, "{second:?}");
    let second_id = second.result["id"].as_str().unwrap().to_owned();
    assert_ne!(second_id, first_id, "the first message is not taken for the second");

    let ours = own_with_text(&client, &conv, "See you at 5!").await;
    assert_eq!(ours.len(), 2, "nothing was resent: {ours:?}");
    assert!(ours.contains(&second_id) && ours.contains(&first_id));
    let entry = env.store.outbox_get("second").await.unwrap().unwrap();
    assert_eq!(entry.state, SendState::Sent);
    assert_eq!(entry.result.as_ref().unwrap()["id"], json!(second_id));

    // The key is spent: the same call replays the reconciled message.
    let again = client.send(&conv, "See you at 5!").idempotency_key("second").await.unwrap();
    assert_eq!(again.outcome, Sent::Replayed);
    assert_eq!(again.result["id"], json!(second_id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_official_send_lost_in_flight_stays_unknown_until_the_caller_sends_again() {
    let env = env().await;
    let client = graph_client(&env, Arc::new(StoreLedger::new(env.store.clone())));
    let conv = customer_writes(&env, &client).await;

    fault(&env, json!({"drop_writes": true, "latency_ms": 2500})).await;
    let err = client.send(&conv, "Your order is ready").idempotency_key("lost").await.unwrap_err();
    fault(&env, json!({"drop_writes": false, "latency_ms": 0})).await;
    assert!(matches!(err, igdm::Error::OutcomeUnknown { ref key } if key == "lost"), "{err:?}");
    let unsettled = err.unsettled_send().unwrap();
    assert_eq!(unsettled.state, SendState::Unknown);
    assert!(unsettled.candidates.is_empty());
    assert_eq!(env.store.outbox_get("lost").await.unwrap().unwrap().state, SendState::Unknown);
    assert!(own_with_text(&client, &conv, "Your order is ready").await.is_empty(), "not resent");

    // Reading again finds nothing and sends nothing.
    assert_eq!(client.reconcile_send("lost").await.unwrap(), None);
    assert!(own_with_text(&client, &conv, "Your order is ready").await.is_empty());

    // The caller decides to send again with the same key: once.
    let sent = client.send(&conv, "Your order is ready").idempotency_key("lost").await.unwrap();
    assert_eq!(sent.outcome, Sent::Sent);
    assert_eq!(own_with_text(&client, &conv, "Your order is ready").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_same_text_official_sends_in_the_window_are_reported_never_guessed() {
    let env = env().await;
    let client = graph_client(&env, Arc::new(StoreLedger::new(env.store.clone())));
    let conv = customer_writes(&env, &client).await;

    // The same text from somewhere this ledger does not see (another
    // process with its own ledger, the Instagram app).
    let elsewhere = graph_client(&env, Arc::new(MemoryLedger::default()));
    let theirs = elsewhere.send(&conv, "ok").await.unwrap();
    assert_eq!(theirs.outcome, Sent::Sent);

    fault(&env, json!({"latency_ms": 2500})).await;
    let err = client.send(&conv, "ok").idempotency_key("mine").await.unwrap_err();
    fault(&env, json!({"latency_ms": 0})).await;
    let igdm::Error::SendAmbiguous { ref key, ref candidates } = err else {
        panic!("an ambiguity is reported: {err:?}");
    };
    assert_eq!(key, "mine");
    let ours = own_with_text(&client, &conv, "ok").await;
    assert_eq!(ours.len(), 2, "nothing was resent: {ours:?}");
    let mut named = candidates.clone();
    named.sort();
    let mut expected = ours.clone();
    expected.sort();
    assert_eq!(named, expected, "the candidates are named");
    assert!(named.contains(&theirs.result["id"].as_str().unwrap().to_owned()));
    assert_eq!(err.unsettled_send().unwrap().candidates.len(), 2);
    assert!(!err.to_api_error().retryable, "an ambiguity is not fixed by retrying");
    assert_eq!(env.store.outbox_get("mine").await.unwrap().unwrap().state, SendState::Unknown);

    // Asking again neither guesses nor sends.
    let again = client.reconcile_send("mine").await.unwrap_err();
    assert!(matches!(again, igdm::Error::SendAmbiguous { .. }), "{again:?}");
    assert_eq!(own_with_text(&client, &conv, "ok").await.len(), 2);
}

/// What every ledger does, whatever keeps it.
async fn ledger_conformance(ledger: &dyn SendLedger, label: &str) {
    let new = |key: &str, conv: &str| NewSend {
        idempotency_key: key.into(),
        account_id: "shop".into(),
        conversation_id: Some(conv.into()),
        recipient_id: Some("4711".into()),
        payload: json!({"action": "send", "params": {"text": "hi"}}),
    };
    let before = Timestamp(Timestamp::now().0 - chrono::Duration::seconds(1));
    let begun = ledger.begin(&new("k1", "c1")).await.unwrap();
    assert!(begun.created, "{label}");
    assert_eq!(begun.entry.state, SendState::Pending, "{label}");
    let sending = ledger.mark("k1", SendState::Sending, None, None).await.unwrap();
    assert_eq!(sending.attempts, 1, "{label}");
    ledger.mark("k1", SendState::Unknown, None, Some("timed out")).await.unwrap();
    let result = json!({"id": "m1"});
    let sent = ledger.mark("k1", SendState::Sent, Some(&result), None).await.unwrap();
    assert_eq!(sent.state, SendState::Sent, "{label}");
    assert_eq!(sent.last_error.as_deref(), Some("timed out"), "{label}: errors are kept");

    // The same key again returns the first send untouched.
    let again = ledger.begin(&new("k1", "other")).await.unwrap();
    assert!(!again.created, "{label}");
    assert_eq!(again.entry.state, SendState::Sent, "{label}");
    assert_eq!(again.entry.result, Some(result), "{label}");
    assert_eq!(again.entry.conversation_id.as_deref(), Some("c1"), "{label}");

    ledger.begin(&new("k2", "c2")).await.unwrap();
    ledger.mark("k2", SendState::Failed, None, Some("blocked")).await.unwrap();
    let got = ledger.get("k2").await.unwrap().unwrap();
    assert_eq!(got.state, SendState::Failed, "{label}");
    assert_eq!(ledger.get("nope").await.unwrap(), None, "{label}");
    assert!(ledger.mark("nope", SendState::Sent, None, None).await.is_err(), "{label}");

    // By conversation, or by recipient; only since the time asked.
    let keys = |v: Vec<igdm::ledger::LedgerEntry>| {
        v.into_iter().map(|e| e.idempotency_key).collect::<Vec<_>>()
    };
    assert_eq!(keys(ledger.since("shop", "c1", before).await.unwrap()), ["k1"], "{label}");
    assert_eq!(keys(ledger.since("shop", "4711", before).await.unwrap()), ["k1", "k2"], "{label}");
    assert!(ledger.since("other", "c1", before).await.unwrap().is_empty(), "{label}");
    let later = Timestamp(Timestamp::now().0 + chrono::Duration::seconds(5));
    assert!(ledger.since("shop", "c1", later).await.unwrap().is_empty(), "{label}");
}

#[tokio::test]
async fn the_ledger_behaves_the_same_on_sqlite_postgresql_and_in_memory() {
    ledger_conformance(&MemoryLedger::default(), "memory").await;

    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("igdm.db").display());
    ledger_conformance(&StoreLedger::open_on_first_use(url.clone()), "sqlite").await;
    // Another process opening the same store sees the same ledger.
    let reopened = StoreLedger::new(Store::open(&url).await.unwrap().into_shared());
    assert_eq!(reopened.get("k1").await.unwrap().unwrap().state, SendState::Sent);

    let Some(schema) = igdm_test::pg::PgSchema::create("igdm_ledger_conformance").await else {
        return;
    };
    let pg: Arc<dyn MessageStore> = Arc::new(schema.store().await);
    ledger_conformance(&StoreLedger::new(pg), "postgresql").await;
}
