//! Helpers shared by the receiver tests: real stores, a real server on
//! 127.0.0.1:0, and signed deliveries.

#![allow(dead_code, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use igdm_model::Event;
use igdm_store::{MessageStore, SqliteStore};
pub use igdm_test::pg::PgSchema;
use igdm_webhook::{Config, Metrics, Secrets, Server, StoreLog, sign};
use serde_json::{Value, json};
use tokio::sync::{broadcast, oneshot};
use tokio::task::JoinHandle;

pub const SECRET: &str = "test-app-secret";
pub const TOKEN: &str = "test-verify-token";
pub const ACCOUNT: &str = "17841400000000001";

pub async fn sqlite_store(dir: &tempfile::TempDir) -> Arc<dyn MessageStore> {
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("igdm.db").display());
    Arc::new(SqliteStore::open(&url).await.unwrap())
}

/// A fresh schema on the test PostgreSQL server, or `None` once a missing
/// server is reported (a failure under CI).
pub async fn pg_schema(test: &str) -> Option<PgSchema> {
    PgSchema::create(test).await
}

pub struct Running {
    pub base: String,
    pub events: broadcast::Receiver<Event>,
    pub metrics: Arc<Metrics>,
    pub client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

pub fn config() -> Config {
    let mut c = Config::new(Secrets::new(SECRET, TOKEN));
    c.poll_interval = Duration::from_millis(50);
    c
}

pub async fn start(store: Arc<dyn MessageStore>, config: Config) -> Running {
    start_log(StoreLog::new(store), config).await
}

/// [`start`] over a pipeline set up by the caller.
pub async fn start_log(log: StoreLog, config: Config) -> Running {
    start_arc(Arc::new(log), config).await
}

/// [`start`] over any [`igdm_webhook::WebhookStore`].
pub async fn start_arc(store: Arc<dyn igdm_webhook::WebhookStore>, config: Config) -> Running {
    let server = Server::from_arc(config, store);
    let events = server.subscribe();
    let metrics = server.metrics();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        server
            .serve_with_shutdown(listener, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    Running { base, events, metrics, client: reqwest::Client::new(), stop: Some(stop), task }
}

impl Running {
    pub fn url(&self) -> String {
        format!("{}/webhook", self.base)
    }

    /// POSTs `body` signed with the test secret; returns the status.
    pub async fn post_signed(&self, body: &[u8]) -> u16 {
        post_signed(&self.client, self.url(), body.to_vec()).await
    }

    pub async fn post_json(&self, v: &Value) -> u16 {
        self.post_signed(v.to_string().as_bytes()).await
    }

    pub async fn metrics_text(&self) -> String {
        self.client
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Graceful stop: waits for in-flight work to drain.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        tokio::time::timeout(Duration::from_secs(30), self.task).await.unwrap().unwrap();
    }

    /// Collects `n` broadcast events (fails after 20 s).
    pub async fn next_events(&mut self, n: usize) -> Vec<Event> {
        let mut out = Vec::new();
        while out.len() < n {
            match tokio::time::timeout(Duration::from_secs(20), self.events.recv()).await {
                Ok(Ok(e)) => out.push(e),
                Ok(Err(e)) => panic!("broadcast receiver failed: {e}"),
                Err(_) => panic!("only {} of {n} events arrived", out.len()),
            }
        }
        out
    }

    /// Asserts that no further event arrives within `wait`.
    pub async fn assert_no_more_events(&mut self, wait: Duration) {
        if let Ok(Ok(e)) = tokio::time::timeout(wait, self.events.recv()).await {
            panic!("unexpected extra event: {e:?}");
        }
    }
}

/// POSTs `body` to `url` signed with the test secret; returns the status.
pub async fn post_signed(client: &reqwest::Client, url: String, body: Vec<u8>) -> u16 {
    client
        .post(url)
        .header("content-type", "application/json")
        .header("x-hub-signature-256", sign(SECRET.as_bytes(), &body))
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Asserts that `events` include every kind in `kinds`.
pub fn assert_kinds(events: &[Event], kinds: &[&str]) {
    let seen: std::collections::HashSet<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    for k in kinds {
        assert!(seen.contains(k), "no {k} event in {seen:?}");
    }
}

/// Polls `f` until it returns true (fails after 20 s).
pub async fn wait_until<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !f().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn envelope(messaging: Vec<Value>) -> Value {
    json!({"object": "instagram", "entry": [{"id": ACCOUNT, "time": 1_790_000_000_000_i64, "messaging": messaging}]})
}

/// A customer's message item.
pub fn customer_msg(customer: &str, mid: &str, ts: i64, message: Value) -> Value {
    let mut m = message;
    m["mid"] = json!(mid);
    json!({"sender": {"id": customer}, "recipient": {"id": ACCOUNT}, "timestamp": ts, "message": m})
}

pub fn from_customer(customer: &str, ts: i64, key: &str, body: Value) -> Value {
    json!({"sender": {"id": customer}, "recipient": {"id": ACCOUNT}, "timestamp": ts, key: body})
}
