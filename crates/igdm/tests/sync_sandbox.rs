//! Syncing the sandbox's demo data into a real SQLite store.

use serde_json::Value;

use igdm::{Client, PacingPolicy, SyncOptions, sync};
use igdm_store::{ConversationFilter, MessageStore, Store};

async fn setup() -> (igdm_sandbox::RunningSandbox, igdm_sandbox::DemoSeed, Client) {
    let (running, seed) = igdm_test::sandbox::seeded().await;
    let client = igdm_test::clients::web(&running.base_url(), &seed, PacingPolicy::none());
    (running, seed, client)
}

/// The sandbox's own view: thread id → number of visible items, inbox threads only.
async fn truth(base: &str, account: &str) -> Vec<(String, u64)> {
    let v: Value = reqwest::get(format!("{base}/_sandbox/accounts/{account}/threads"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["threads"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["pending"] != Value::Bool(true))
        .map(|t| {
            (t["thread_id"].as_str().unwrap().to_owned(), t["visible_items"].as_u64().unwrap())
        })
        .collect()
}

async fn stored_ids(store: &dyn MessageStore, conv: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = store.list_messages("me", conv, 7, cursor.as_deref()).await.unwrap();
        ids.extend(page.items.iter().map(|m| m.id.to_string()));
        match page.next_cursor {
            Some(c) if page.has_more => cursor = Some(c),
            _ => break,
        }
    }
    ids
}

#[tokio::test]
async fn full_sync_reproduces_every_conversation_and_message() {
    let (running, seed, client) = setup().await;
    let dir = tempfile::tempdir().unwrap();
    let store =
        Store::open(&format!("sqlite://{}/igdm.db?mode=rwc", dir.path().display())).await.unwrap();
    let opts = SyncOptions { full: true, page_size: 5, ..SyncOptions::default() };
    let (report, interrupted) = sync(&client, &*store, &opts, &mut |_| {}).await.unwrap();
    assert!(!interrupted);
    let truth = truth(&running.base_url(), seed.personal["id"].as_str().unwrap()).await;
    assert_eq!(report.conversations as usize, truth.len());
    let mut total = 0;
    for (thread, count) in &truth {
        let conv =
            store.get_conversation("me", thread).await.unwrap().expect("conversation stored");
        assert_eq!(conv.id.as_str(), thread);
        let ids = stored_ids(&*store, thread).await;
        let unique: std::collections::BTreeSet<_> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len(), "no duplicates in {thread}");
        assert_eq!(ids.len() as u64, *count, "every message of {thread} is stored");
        total += count;
    }
    assert_eq!(report.messages, total);
    let group = store.get_conversation("me", &seed.group_thread_id).await.unwrap().unwrap();
    assert_eq!(group.kind, igdm_model::ConversationKind::Group);

    // Synced text matches what the API serves, field by field.
    let (live, _) = client.messages(seed.group_thread_id.as_str()).limit(20).await.unwrap();
    for m in &live.items {
        let stored =
            store.get_message("me", &seed.group_thread_id, m.id.as_str()).await.unwrap().unwrap();
        assert_eq!(stored.text, m.text);
        assert_eq!(stored.timestamp, m.timestamp);
        assert_eq!(stored.sender.id, m.sender.id);
        assert_eq!(stored.content_type, m.content_type);
    }
    let _ = store.list_conversations("me", &ConversationFilter::default(), 50, None).await.unwrap();
}

#[tokio::test]
async fn interrupted_sync_resumes_without_duplicates_or_gaps() {
    let (running, seed, client) = setup().await;
    let dir = tempfile::tempdir().unwrap();
    let store =
        Store::open(&format!("sqlite://{}/igdm.db?mode=rwc", dir.path().display())).await.unwrap();
    let account = seed.personal["id"].as_str().unwrap().to_owned();
    // Cut the first run short after a few pages, several times, then finish.
    let mut runs = 0;
    loop {
        runs += 1;
        let opts =
            SyncOptions { full: true, page_size: 2, max_pages: Some(3), ..SyncOptions::default() };
        let (_, interrupted) = sync(&client, &*store, &opts, &mut |_| {}).await.unwrap();
        if !interrupted {
            break;
        }
        assert!(runs < 50, "sync never finished");
    }
    assert!(runs > 2, "the runs were really interrupted");
    // New messages arrive; an incremental sync picks them up without a full pass.
    let thread = seed.group_thread_id.clone();
    for text in ["one", "two", "three", "four", "five"] {
        client.send(&thread, text).await.unwrap();
    }
    let (_, interrupted) = sync(
        &client,
        &*store,
        &SyncOptions { page_size: 2, ..SyncOptions::default() },
        &mut |_| {},
    )
    .await
    .unwrap();
    assert!(!interrupted);
    for (thread, count) in truth(&running.base_url(), &account).await {
        let ids = stored_ids(&*store, &thread).await;
        let unique: std::collections::BTreeSet<_> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len(), "no duplicates in {thread}");
        assert_eq!(ids.len() as u64, count, "no gaps in {thread}");
    }
}
