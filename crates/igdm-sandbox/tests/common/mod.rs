//! Shared helpers of the sandbox's HTTP tests: a served sandbox on
//! 127.0.0.1:0 and a web-session client that speaks like igdm would.
#![allow(dead_code, clippy::unwrap_used)]

use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{Value, json};

#[allow(unused_imports)]
pub use igdm_test::sandbox::{control, start, start_with};

/// A web session against the private API, built from the control API's cookies.
pub struct Web {
    pub base: String,
    pub client: reqwest::Client,
    pub cookies: Value,
    pub account: Value,
}

impl Web {
    /// Creates an account of `kind` and a session for it.
    pub async fn new(base: &str, kind: &str, username: &str) -> Self {
        let (status, account) = control(
            base,
            "POST",
            "/_sandbox/accounts",
            Some(json!({"kind": kind, "username": username})),
        )
        .await;
        assert_eq!(status, 200, "{account}");
        Self::for_account(base, account)
    }

    /// A session for an account the control API returned.
    pub fn for_account(base: &str, account: Value) -> Self {
        Self {
            base: base.to_owned(),
            client: reqwest::Client::builder().no_gzip().build().unwrap(),
            cookies: account["cookies"].clone(),
            account,
        }
    }

    pub fn pk(&self) -> String {
        self.account["pk"].as_str().unwrap().to_owned()
    }

    pub fn id(&self) -> String {
        self.account["id"].as_str().unwrap().to_owned()
    }

    fn cookie_header(&self) -> String {
        ["sessionid", "csrftoken", "ds_user_id", "mid", "ig_did"]
            .iter()
            .map(|k| format!("{k}={}", self.cookies[k].as_str().unwrap()))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub fn headers(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("cookie", HeaderValue::from_str(&self.cookie_header()).unwrap());
        h.insert(
            "x-csrftoken",
            HeaderValue::from_str(self.cookies["csrftoken"].as_str().unwrap()).unwrap(),
        );
        h.insert("x-ig-app-id", HeaderValue::from_static("936619743392459"));
        h
    }

    /// GET `/api/v1/{path}` with query pairs; returns (status, json).
    pub async fn get(&self, path: &str, query: &[(&str, &str)]) -> (u16, Value) {
        let r = self.get_raw(path, query).await;
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn get_raw(&self, path: &str, query: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .get(format!("{}/api/v1/{path}", self.base))
            .headers(self.headers())
            .query(query)
            .send()
            .await
            .unwrap()
    }

    /// POST a form to `/api/v1/{path}`; returns (status, json).
    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
        let r = self.post_raw(path, form).await;
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn post_raw(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .post(format!("{}/api/v1/{path}", self.base))
            .headers(self.headers())
            .form(form)
            .send()
            .await
            .unwrap()
    }

    /// The first page of a thread (`GET direct_v2/threads/{t}/`), asserting 200.
    pub async fn thread(&self, thread: &str) -> Value {
        let (s, v) = self.get(&format!("direct_v2/threads/{thread}/"), &[]).await;
        assert_eq!(s, 200, "{v}");
        v
    }

    /// The texts of a thread's first page, newest first.
    pub async fn thread_texts(&self, thread: &str) -> Vec<String> {
        let v = self.thread(thread).await;
        v["thread"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|i| i["text"].as_str().map(str::to_owned))
            .collect()
    }

    /// Sends text to a thread; returns the ack.
    pub async fn send_text(&self, thread: &str, text: &str, cc: &str) -> Value {
        let tids = format!("[{thread}]");
        let (s, v) = self
            .post(
                "direct_v2/threads/broadcast/text/",
                &[
                    ("thread_ids", &tids),
                    ("text", text),
                    ("client_context", cc),
                    ("action", "send_item"),
                ],
            )
            .await;
        assert_eq!(s, 200, "{v}");
        v
    }
}

/// Creates a customer; returns its control-API view.
pub async fn customer(base: &str, username: &str) -> Value {
    let (s, v) =
        control(base, "POST", "/_sandbox/customers", Some(json!({"username": username}))).await;
    assert_eq!(s, 200, "{v}");
    v
}

/// Makes a customer send text to an account; returns the result.
pub async fn customer_says(base: &str, customer: &Value, account: &str, text: &str) -> Value {
    let id = customer["id"].as_str().unwrap();
    let (s, v) = control(
        base,
        "POST",
        &format!("/_sandbox/customers/{id}/send"),
        Some(json!({"to": account, "text": text})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    v
}

/// The `type` tags of the events waiting in a receiver.
pub fn event_types(
    rx: &mut tokio::sync::broadcast::Receiver<igdm_sandbox::SandboxEvent>,
) -> Vec<String> {
    let mut kinds = Vec::new();
    while let Ok(e) = rx.try_recv() {
        kinds.push(serde_json::to_value(&e).unwrap()["type"].as_str().unwrap().to_owned());
    }
    kinds
}
