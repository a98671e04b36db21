//! The live inbox from Rust: a `Watcher` polls a sandbox account and a
//! `Hub::events()` stream hands its events to the program.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use igdm::PacingPolicy;
use igdm::watch::{Hub, PollPolicy, WatchStop, Watcher};
use igdm_model::EventKind;
use igdm_store::{MessageStore, Store};
use serde_json::json;

async fn store(dir: &std::path::Path, name: &str) -> Arc<dyn MessageStore> {
    let url = format!("sqlite://{}?mode=rwc", dir.join(name).display());
    match Store::open(&url).await.unwrap() {
        Store::Sqlite(s) => Arc::new(s),
        Store::Postgres(p) => Arc::new(p),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customers_message_arrives_on_the_event_stream() {
    let (running, seed) = igdm_test::sandbox::seeded().await;
    let base = running.base_url();
    let client = igdm_test::clients::web(&base, &seed, PacingPolicy::none());
    let dir = tempfile::tempdir().unwrap();
    let hub =
        Arc::new(Hub::new(store(dir.path(), "igdm.db").await, store(dir.path(), "log.db").await));
    let mut events = Box::pin(hub.events());
    let policy = PollPolicy::for_connector(client.connector())
        .with_interval(Duration::from_millis(200), true)
        .unwrap();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let watcher = Watcher::new(client, hub.clone(), policy);
    let task = tokio::spawn(watcher.run(stop_rx, move |_| {
        let _ = ready_tx.send(());
    }));
    ready_rx.await.expect("the first poll (the baseline) completes");

    let customer = seed.customers[0]["id"].as_str().unwrap();
    let sent = igdm_test::sandbox::post_ok(
        &base,
        &format!("/_sandbox/customers/{customer}/send"),
        json!({"to": seed.personal["id"], "text": "is the shop open today?"}),
    )
    .await;

    // A bound that keeps a broken watcher from hanging the suite; no speed is measured here.
    let event = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let e = events.next().await.expect("the stream stays open while the hub lives");
            if e.kind == EventKind::Message {
                return e;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no message event after the customer's send: {sent}"));
    assert_eq!(event.text.as_deref(), Some("is the shop open today?"), "{event:?}");
    assert!(!event.is_echo, "{event:?}");

    stop_tx.send(true).unwrap();
    let stopped = task.await.unwrap().unwrap();
    assert!(matches!(stopped, WatchStop::Stopped), "{stopped:?}");
}

/// With a media store, a photo that arrives while the account is watched is
/// kept: the file under its hash holds the bytes the customer sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arriving_media_are_kept_while_watching() {
    use base64::Engine as _;
    use sha2::Digest as _;
    let (running, seed) = igdm_test::sandbox::seeded().await;
    let base = running.base_url();
    let client = igdm_test::clients::web(&base, &seed, PacingPolicy::none());
    let dir = tempfile::tempdir().unwrap();
    let messages = store(dir.path(), "igdm.db").await;
    let hub = Arc::new(Hub::new(messages.clone(), store(dir.path(), "log.db").await));
    let media = Arc::new(
        igdm::MediaStore::open(dir.path().join("media"), igdm::MediaLimits::default()).unwrap(),
    );
    let policy = PollPolicy::for_connector(client.connector());
    let account = client.account().name.clone();
    let mut watcher = Watcher::new(client, hub, policy).with_media(media.clone());
    watcher.poll_once().await.unwrap(); // the baseline

    let mut photo = vec![0xFF, 0xD8, 0xFF, 0xE0];
    photo.extend((0..30_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8));
    let customer = seed.customers[0]["pk"].as_str().unwrap();
    let sent = igdm_test::sandbox::post_ok(
        &base,
        "/_sandbox/media/seed",
        json!({"to": seed.personal["id"], "from": customer, "media": [
            {"type": "image", "base64": base64::engine::general_purpose::STANDARD.encode(&photo)}
        ]}),
    )
    .await;
    let want = hex::encode(sha2::Sha256::digest(&photo));
    assert_eq!(sent["items"][0]["sha256"], json!(want), "{sent}");
    let item = sent["items"][0]["item_id"].as_str().unwrap();

    assert!(watcher.poll_once().await.unwrap() > 0, "the message is new");
    let path = media.path_of(&want).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), photo, "the kept file holds the sent bytes");
    let stored = messages.find_message(&account, item).await.unwrap().expect("stored");
    let refs = messages.media_refs(&account, stored.conversation_id.as_str(), item).await.unwrap();
    assert_eq!(refs.len(), 1, "{refs:?}");
    assert_eq!(refs[0].sha256, want);
}
