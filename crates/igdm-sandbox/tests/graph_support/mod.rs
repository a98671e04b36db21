//! Helpers of the Graph, OAuth and webhook HTTP tests: a served sandbox with
//! one business account, customers that write to it, and a Graph client.
#![allow(dead_code, clippy::unwrap_used)]

pub mod receiver;

use igdm_sandbox::{RunningSandbox, Sandbox, SandboxConfig};
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

/// A served sandbox with one business account.
pub struct Env {
    pub running: RunningSandbox,
    pub base: String,
    pub client: reqwest::Client,
    pub account: Value,
}

/// A Graph response.
pub struct Resp {
    pub status: u16,
    pub body: Value,
    pub headers: HeaderMap,
}

impl Env {
    /// A sandbox with generous rate limits (tests of other rules must not trip them).
    pub async fn new() -> Self {
        let env = Self::with_default_limits().await;
        let (s, v) = env
            .control("POST", "/_sandbox/graph/rate_limits", json!({"send_text_per_sec": 100000, "send_audio_video_per_sec": 100000, "conversations_per_sec": 100000}))
            .await;
        assert_eq!(s, 200, "{v}");
        env
    }

    /// A sandbox with Meta's real per-second limits.
    pub async fn with_default_limits() -> Self {
        let running = Sandbox::new(SandboxConfig::default())
            .serve("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let base = running.base_url();
        let client =
            reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let mut env = Self { running, base, client, account: Value::Null };
        let (s, account) = env
            .control(
                "POST",
                "/_sandbox/accounts",
                json!({"kind": "business", "username": "acme_shop"}),
            )
            .await;
        assert_eq!(s, 200, "{account}");
        env.account = account;
        env
    }

    pub fn id(&self) -> String {
        self.account["id"].as_str().unwrap().to_owned()
    }

    pub fn token(&self) -> String {
        self.account["access_token"].as_str().unwrap().to_owned()
    }

    pub fn page_token(&self) -> String {
        self.account["page_token"].as_str().unwrap().to_owned()
    }

    pub fn page_id(&self) -> String {
        self.account["page_id"].as_str().unwrap().to_owned()
    }

    /// Calls the control API with a JSON body (GET ignores it).
    pub async fn control(&self, method: &str, path: &str, body: Value) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        let req = match method {
            "GET" => self.client.get(url),
            "DELETE" => self.client.delete(url),
            _ => self.client.post(url).json(&body),
        };
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Creates a customer.
    pub async fn customer(&self, username: &str) -> Value {
        let (s, v) =
            self.control("POST", "/_sandbox/customers", json!({"username": username})).await;
        assert_eq!(s, 200, "{v}");
        v
    }

    /// Makes a customer act towards the account (`{"text": …}` etc.).
    pub async fn act(&self, customer: &Value, action: Value) -> Value {
        let mut body = action;
        body["to"] = json!(self.id());
        let path = format!("/_sandbox/customers/{}/send", customer["id"].as_str().unwrap());
        let (s, v) = self.control("POST", &path, body).await;
        assert_eq!(s, 200, "{v}");
        v
    }

    /// A customer writes text to the account.
    pub async fn says(&self, customer: &Value, text: &str) -> Value {
        self.act(customer, json!({"text": text})).await
    }

    /// Moves the virtual clock.
    pub async fn advance(&self, seconds: i64) {
        let (s, v) =
            self.control("POST", "/_sandbox/clock/advance", json!({"seconds": seconds})).await;
        assert_eq!(s, 200, "{v}");
    }

    /// A Graph call with the account's Instagram token as a Bearer header.
    pub async fn graph(&self, method: &str, path: &str, body: Option<Value>) -> Resp {
        self.graph_as(&self.token(), method, path, body).await
    }

    /// A Graph call with a given token.
    pub async fn graph_as(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Resp {
        let url = format!("{}{path}", self.base);
        let mut req = match method {
            "GET" => self.client.get(url),
            "DELETE" => self.client.delete(url),
            _ => self.client.post(url),
        };
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.bearer_auth(token).send().await.unwrap();
        Self::resp(r).await
    }

    pub async fn resp(r: reqwest::Response) -> Resp {
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let body = r.json().await.unwrap_or(Value::Null);
        Resp { status, body, headers }
    }

    /// `POST /me/messages`.
    pub async fn send(&self, body: Value) -> Resp {
        self.graph("POST", "/v21.0/me/messages", Some(body)).await
    }

    /// Sends `message` to the customer's IGSID.
    pub async fn send_message(&self, customer: &Value, message: Value) -> Resp {
        self.send(json!({"recipient": {"id": customer["igsid"]}, "message": message})).await
    }
}

/// Asserts a Graph error envelope with `code` (and `subcode`) and returns its message.
pub fn assert_graph_error(r: &Resp, code: u64, subcode: Option<u64>) -> String {
    assert_eq!(r.status, 400, "{}", r.body);
    let e = &r.body["error"];
    assert_eq!(e["code"], code, "{}", r.body);
    assert_eq!(e["error_subcode"].as_u64(), subcode, "{}", r.body);
    assert!(e["type"].is_string(), "{}", r.body);
    assert!(e["fbtrace_id"].as_str().is_some_and(|t| !t.is_empty()), "{}", r.body);
    e["message"].as_str().unwrap().to_owned()
}
