//! A sandbox, the real webhook receiver over a real SQLite store, a Graph
//! client and a bot, wired over loopback HTTP.

#![allow(dead_code, clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use igdm::{AccountConfig, Client, PacingPolicy};
use igdm_bot::{Bot, BotConfig};
use igdm_model::{Backend, Event, EventKind, Timestamp};
use igdm_spec::{Connector, Session};
use igdm_store::{MessageStore, SqliteStore};
use igdm_webhook::{Config, Secrets, Server, StoreLog};
use serde_json::{Value, json};
use tokio::sync::{broadcast, oneshot};

pub const SECRET: &str = "bot-test-secret";
pub const TOKEN: &str = "bot-test-verify";
pub const EXAMPLE: &str = include_str!("../../../../examples/bot.yaml");

pub struct Env {
    pub sandbox: igdm_sandbox::RunningSandbox,
    pub base: String,
    pub http: reqwest::Client,
    pub account: Value,
    pub store: Arc<dyn MessageStore>,
    pub events: broadcast::Receiver<Event>,
    pub offset_secs: Arc<AtomicI64>,
    _dir: tempfile::TempDir,
    _stop: oneshot::Sender<()>,
}

impl Env {
    pub async fn start() -> Self {
        let sandbox = igdm_test::sandbox::start().await;
        let base = sandbox.base_url();
        let http = reqwest::Client::new();
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("igdm.db").display());
        let store: Arc<dyn MessageStore> = Arc::new(SqliteStore::open(&url).await.unwrap());

        let mut config = Config::new(Secrets::new(SECRET, TOKEN));
        config.poll_interval = Duration::from_millis(30);
        let server = Server::from_arc(config, Arc::new(StoreLog::new(store.clone())));
        let events = server.subscribe();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let hook = format!("http://{}/webhook", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = server
                .serve_with_shutdown(listener, async {
                    let _ = stopped.await;
                })
                .await;
        });

        let mut env = Self {
            sandbox,
            base,
            http,
            account: Value::Null,
            store,
            events,
            offset_secs: Arc::new(AtomicI64::new(0)),
            _dir: dir,
            _stop: stop,
        };
        let limits = json!({"send_text_per_sec": 100_000, "send_audio_video_per_sec": 100_000, "conversations_per_sec": 100_000});
        env.control("/_sandbox/graph/rate_limits", limits).await;
        env.account = env
            .control("/_sandbox/accounts", json!({"kind": "business", "username": "acme_studio"}))
            .await;
        let (s, v) = env
            .post(
                "/_sandbox/webhooks",
                json!({"callback_url": hook, "verify_token": TOKEN, "app_secret": SECRET, "batch_window_ms": 10}),
            )
            .await;
        assert_eq!(s, 201, "subscription handshake: {v}");
        env
    }

    pub fn account_id(&self) -> String {
        self.account["id"].as_str().unwrap().to_owned()
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self.http.post(format!("{}{path}", self.base)).json(&body).send().await.unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    pub async fn control(&self, path: &str, body: Value) -> Value {
        let (s, v) = self.post(path, body).await;
        assert!(s == 200 || s == 201, "{path}: {s} {v}");
        v
    }

    pub fn client(&self) -> Arc<Client> {
        self.client_over(None)
    }

    /// The account as `connector` (`backend`) sees it, on the sandbox.
    fn config(&self, name: &str, connector: &str, backend: Backend) -> AccountConfig {
        AccountConfig {
            name: name.into(),
            connector: connector.into(),
            backend,
            base_url: Some(self.base.clone()),
            user_id: Some(self.account_id()),
            username: Some("acme_studio".into()),
            pacing: igdm::PacingOverride::default(),
            created_at: Timestamp::now(),
        }
    }

    /// A client of the account over `transport` (default: reqwest's).
    pub fn client_over(&self, transport: Option<Arc<dyn igdm_spec::Transport>>) -> Arc<Client> {
        let connector = Arc::new(
            Connector::load(igdm_connectors::INSTAGRAM_GRAPH, "instagram-graph.md").unwrap(),
        );
        let account = self.config("shop", "instagram-graph", Backend::Graph);
        let session =
            Session::new().with_access_token(self.account["access_token"].as_str().unwrap());
        let mut builder = Client::builder(account, connector, session).pacing(PacingPolicy::none());
        if let Some(t) = transport {
            builder = builder.transport(t);
        }
        Arc::new(builder.build().unwrap())
    }

    /// A client of the account on the Facebook Login flavour (Page token),
    /// which has the Handover Protocol.
    pub fn page_client(&self) -> Arc<Client> {
        let connector = Arc::new(
            Connector::load(igdm_connectors::INSTAGRAM_PAGE, "instagram-page.md").unwrap(),
        );
        let account = self.config("shop-page", "instagram-page", Backend::Page);
        let mut session =
            Session::new().with_access_token(self.account["page_token"].as_str().unwrap());
        session.set_extra("user_id", self.account_id());
        session.set_extra("page_id", self.account["page_id"].as_str().unwrap());
        let builder = Client::builder(account, connector, session).pacing(PacingPolicy::none());
        Arc::new(builder.build().unwrap())
    }

    /// A bot on the example file (or `yaml`), reading the sandbox's virtual clock.
    pub fn bot(&self, yaml: Option<&str>) -> Bot {
        self.bot_with(yaml, self.client())
    }

    /// As [`Env::bot`], sending with `client`.
    pub fn bot_with(&self, yaml: Option<&str>, client: Arc<Client>) -> Bot {
        let mut config = BotConfig::parse(yaml.unwrap_or(EXAMPLE)).unwrap();
        config.policy.backoff_ms = 20;
        let offset = self.offset_secs.clone();
        Bot::new(config, client, self.store.clone()).unwrap().with_clock(Arc::new(move || {
            let secs = offset.load(Ordering::SeqCst);
            Timestamp(Timestamp::now().0 + chrono::Duration::seconds(secs))
        }))
    }

    pub async fn customer(&self, username: &str, full_name: &str) -> Value {
        self.control("/_sandbox/customers", json!({"username": username, "full_name": full_name}))
            .await
    }

    /// The customer acts; returns the sandbox's answer.
    pub async fn act(&self, customer: &Value, mut action: Value) -> Value {
        action["to"] = json!(self.account_id());
        let path = format!("/_sandbox/customers/{}/send", customer["id"].as_str().unwrap());
        self.control(&path, action).await
    }

    /// The customer acts and the resulting non-echo event arrives through the receiver.
    pub async fn act_event(&mut self, customer: &Value, action: Value) -> Event {
        self.act(customer, action).await;
        let igsid = customer["igsid"].as_str().unwrap().to_owned();
        self.next_event(|e| !e.is_echo && e.sender_id.as_deref() == Some(&igsid)).await
    }

    /// The next event matching `pred` (others are dropped).
    pub async fn next_event(&mut self, pred: impl Fn(&Event) -> bool) -> Event {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let e = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .expect("an event within 10 s")
                .unwrap();
            if matches!(
                e.kind,
                EventKind::Message
                    | EventKind::Postback
                    | EventKind::Handover
                    | EventKind::Referral
            ) && pred(&e)
            {
                return e;
            }
        }
    }

    /// The echo of `mid`.
    pub async fn echo_of(&mut self, mid: &str) -> Event {
        let mid = mid.to_owned();
        self.next_event(move |e| e.is_echo && e.message_id.as_deref() == Some(&mid)).await
    }

    /// GETs a control path.
    pub async fn get(&self, path: &str) -> Value {
        self.http.get(format!("{}{path}", self.base)).send().await.unwrap().json().await.unwrap()
    }

    /// What the account sent to `customer`, accepted or not.
    pub async fn sent_to(&self, customer: &Value) -> Vec<Value> {
        let v = self.get(&format!("/_sandbox/accounts/{}/sent", self.account_id())).await;
        let igsid = customer["igsid"].as_str().unwrap();
        v["sent"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["recipient"].as_str() == Some(igsid))
            .cloned()
            .collect()
    }

    /// A person replies from the Instagram app (a Send API call outside the bot).
    pub async fn human_reply(&self, customer: &Value, text: &str) -> String {
        let r = self
            .http
            .post(format!("{}/v21.0/me/messages", self.base))
            .bearer_auth(self.account["access_token"].as_str().unwrap())
            .json(&json!({"recipient": {"id": customer["igsid"]}, "message": {"text": text}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        r.json::<Value>().await.unwrap()["message_id"].as_str().unwrap().to_owned()
    }

    /// Advances the sandbox's clock and the bot's view of it.
    pub async fn advance(&self, seconds: i64) {
        self.control("/_sandbox/clock/advance", json!({"seconds": seconds})).await;
        self.offset_secs.fetch_add(seconds, Ordering::SeqCst);
    }
}
