//! The inbox's test setup: an account opened through the runtime on a
//! sandbox, a customer who wrote to it, a watcher keeping the store live,
//! and the inbox served on loopback.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use igdm::Home;
use igdm::watch::{Hub, PollPolicy, Watcher};
use igdm_runtime::{LiveAccount, Runtime};
use igdm_store::MessageStore;
use igdm_test::sandbox::post_ok;
use igdm_ui::{Inbox, InboxAccount, RunningUi, UiOptions};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::json;

pub const TOKEN: &str = "0123456789abcdef0123456789abcdef";
pub const HOSTILE: &str = "hi <script>alert('x')</script> & <b>bold</b>";

pub struct Env {
    pub _sandbox: igdm_sandbox::RunningSandbox,
    pub _home: tempfile::TempDir,
    pub base: String,
    /// The account's sandbox id.
    pub account_id: String,
    pub customer: String,
    /// The conversation with the customer, as the store names it.
    pub conversation: String,
    pub store: Arc<dyn MessageStore>,
    /// The media store the inbox serves kept attachments from.
    pub media: Arc<igdm::MediaStore>,
    pub live: LiveAccount,
    pub ui: RunningUi,
    pub stop: tokio::sync::watch::Sender<bool>,
    pub http: reqwest::Client,
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        self.ui.shutdown();
    }
}

/// A sandbox web account `web` in a fresh home, a customer who wrote
/// `HOSTILE` to it, a watcher polling it into the store, and the inbox
/// served on loopback with `TOKEN`.
pub async fn env() -> Env {
    let sandbox = igdm_test::sandbox::start().await;
    let base = sandbox.base_url();
    let account =
        post_ok(&base, "/_sandbox/accounts", json!({"kind": "personal", "username": "web_ui"}))
            .await;
    let account_id = account["id"].as_str().unwrap().to_owned();
    let customer = post_ok(&base, "/_sandbox/customers", json!({"username": "cust_ui"})).await;
    let customer = customer["id"].as_str().unwrap().to_owned();
    post_ok(
        &base,
        &format!("/_sandbox/customers/{customer}/send"),
        json!({"to": account_id, "text": HOSTILE}),
    )
    .await;

    let home = tempfile::tempdir().unwrap();
    let mut rt = Runtime::at(Home::at(home.path())).unwrap();
    let (config, credential) = igdm_test::clients::web_login(&base, "web", &account);
    rt.add_account(config, credential).await.unwrap();
    let live = rt.open(Some("web")).await.unwrap();

    let store = rt.store().await.unwrap().into_shared();
    let log_url = format!("sqlite://{}?mode=rwc", home.path().join("watch.db").display());
    let log = igdm_store::Store::open(&log_url).await.unwrap().into_shared();
    let hub = Arc::new(Hub::new(store.clone(), log));
    let policy = PollPolicy::for_connector(live.client().connector())
        .with_interval(Duration::from_millis(200), true)
        .unwrap();
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let watcher = Watcher::new(live.client().clone(), hub.clone(), policy);
    tokio::spawn(watcher.run(stop_rx, |_| {}));

    // The watcher's first poll stores what the inbox shows.
    let conversation = wait_for(Duration::from_secs(20), || {
        let store = store.clone();
        async move {
            let page =
                store.list_conversations("web", &Default::default(), 10, None).await.unwrap();
            page.items.first().map(|c| c.id.as_str().to_owned())
        }
    })
    .await
    .expect("the watcher never stored the customer's conversation");

    let media = Arc::new(
        igdm::MediaStore::open(home.path().join("media"), igdm::MediaLimits::default()).unwrap(),
    );
    let inbox = Inbox {
        accounts: vec![InboxAccount::opened(live.clone())],
        store: store.clone(),
        hub: Some(hub),
        media: Some(media.clone()),
    };
    let ui = igdm_ui::serve(inbox, UiOptions::new("127.0.0.1:0".parse().unwrap(), TOKEN.into()))
        .await
        .unwrap();
    let http =
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    Env {
        _sandbox: sandbox,
        _home: home,
        base,
        account_id,
        customer,
        conversation,
        store,
        media,
        live,
        ui,
        stop,
        http,
    }
}

pub async fn wait_for<T, F, Fut>(limit: Duration, mut probe: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = probe().await {
            return Some(v);
        }
        if tokio::time::Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl Env {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.ui.addr)
    }

    pub fn origin(&self) -> String {
        format!("http://{}", self.ui.addr)
    }

    pub fn thread_path(&self) -> String {
        format!("/t/web/{}", self.conversation)
    }

    /// Opens a browser session the way `igdm ui --open` does; returns its cookie.
    pub async fn session(&self) -> String {
        let r = self.http.get(self.url(&format!("/?token={TOKEN}"))).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let set = r.headers()["set-cookie"].to_str().unwrap();
        set.split(';').next().unwrap().to_owned()
    }

    pub async fn get(&self, cookie: &str, path: &str) -> (StatusCode, HeaderMap, String) {
        let r = self.http.get(self.url(path)).header("cookie", cookie).send().await.unwrap();
        let (status, headers) = (r.status(), r.headers().clone());
        (status, headers, r.text().await.unwrap())
    }

    /// Posts a form with `headers` (the browser's) and returns status and body.
    pub async fn post(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        form: &[(&str, &str)],
    ) -> (StatusCode, String) {
        let mut req = self.http.post(self.url(path)).form(form);
        for (k, v) in headers {
            req = req.header(*k, HeaderValue::from_str(v).unwrap());
        }
        let r = req.send().await.unwrap();
        (r.status(), r.text().await.unwrap())
    }

    /// The texts the sandbox accepted from the account.
    pub async fn sent_texts(&self) -> Vec<String> {
        let v = igdm_test::sandbox::control(
            &self.base,
            "GET",
            &format!("/_sandbox/accounts/{}/sent", self.account_id),
            None,
        )
        .await
        .1;
        v["sent"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|s| s["accepted"] == true)
                    .filter_map(|s| s["text"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
}
