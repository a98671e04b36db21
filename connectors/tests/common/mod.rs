//! Shared harness: a sandbox served on 127.0.0.1:0 with the demo data, and
//! executors of the embedded connectors pointed at it.

#![allow(dead_code)]

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use igdm_model::{ApiError, ErrorClass};
use igdm_sandbox::{DemoSeed, RunningSandbox};
use igdm_spec::{
    ActionOutput, Connector, ExecError, Executor, HttpRequest, HttpResponse, ReqwestTransport,
    Session, Transport, TransportError,
};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

/// A transport that keeps every response body it passes on.
pub struct Recording {
    pub inner: ReqwestTransport,
    pub bodies: Arc<Mutex<Vec<bytes::Bytes>>>,
}

impl Transport for Recording {
    fn send(
        &self,
        req: HttpRequest,
    ) -> Pin<Box<dyn Future<Output = Result<HttpResponse, TransportError>> + Send + '_>> {
        let bodies = Arc::clone(&self.bodies);
        Box::pin(async move {
            let resp = self.inner.send(req).await?;
            bodies.lock().expect("lock").push(resp.body.clone());
            Ok(resp)
        })
    }
}

/// A running sandbox with the demo seed.
pub struct Harness {
    pub running: RunningSandbox,
    pub seed: DemoSeed,
    pub http: reqwest::Client,
}

impl Harness {
    pub async fn start() -> Self {
        let (running, seed) = igdm_test::sandbox::seeded().await;
        Self { running, seed, http: reqwest::Client::new() }
    }

    pub fn base_url(&self) -> String {
        self.running.base_url()
    }

    /// An executor of the embedded connector `id`, pointed at the sandbox.
    pub fn executor(&self, id: &str) -> Executor {
        let text = igdm_connectors::by_id(id).unwrap();
        let connector = Connector::load(text, &format!("{id}.md")).unwrap();
        let transport = ReqwestTransport::new().unwrap();
        Executor::new(Arc::new(connector), Arc::new(transport))
            .with_base_url(Some(url::Url::parse(&self.base_url()).unwrap()))
    }

    /// An executor like [`Self::executor`] that also keeps every response
    /// body it receives.
    pub fn recording_executor(&self, id: &str) -> (Executor, Arc<Mutex<Vec<bytes::Bytes>>>) {
        let text = igdm_connectors::by_id(id).unwrap();
        let connector = Connector::load(text, &format!("{id}.md")).unwrap();
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let transport =
            Recording { inner: ReqwestTransport::new().unwrap(), bodies: Arc::clone(&bodies) };
        let exec = Executor::new(Arc::new(connector), Arc::new(transport))
            .with_base_url(Some(url::Url::parse(&self.base_url()).unwrap()));
        (exec, bodies)
    }

    /// A web session from an account's control-API view (its cookies).
    pub fn web_session(account: &Value) -> Session {
        igdm_test::clients::web_session(account)
    }

    /// An Instagram Login session (user token + the account's IG id).
    pub fn graph_session(account: &Value) -> Session {
        igdm_test::clients::graph_session(account)
    }

    /// A Facebook Page session (page token + page id + IG id).
    pub fn page_session(account: &Value) -> Session {
        let mut s = Session::new().with_access_token(account["page_token"].as_str().unwrap());
        s.set_extra("user_id", account["ig_user_id"].as_str().unwrap());
        s.set_extra("page_id", account["page_id"].as_str().unwrap());
        s
    }

    /// `POST /_sandbox/faults`.
    pub async fn fault(&self, account: &str, mode: &str) {
        let r = self
            .http
            .post(format!("{}/_sandbox/faults", self.base_url()))
            .json(&json!({"account": account, "mode": mode}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "fault {mode}: {}", r.text().await.unwrap());
    }

    /// Total requests the sandbox has seen (`GET /_sandbox/stats`).
    pub async fn total_requests(&self) -> u64 {
        let v: Value = self
            .http
            .get(format!("{}/_sandbox/stats", self.base_url()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["total"]["requests"].as_u64().unwrap()
    }

    /// `POST` to a control route with a JSON body.
    pub async fn control(&self, path: &str, body: Value) -> Value {
        let r =
            self.http.post(format!("{}{path}", self.base_url())).json(&body).send().await.unwrap();
        let status = r.status();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status} {v}");
        v
    }

    /// A customer of the demo by username.
    pub fn customer(&self, username: &str) -> &Value {
        self.seed.customers.iter().find(|c| c["username"] == username).unwrap()
    }
}

/// Runs `action` with `params` (a JSON object).
pub async fn run(
    exec: &Executor,
    session: &mut Session,
    action: &str,
    params: Value,
) -> Result<ActionOutput, ExecError> {
    let map: Map<String, Value> = match params {
        Value::Object(m) => m,
        Value::Null => Map::new(),
        other => panic!("params must be an object, got {other}"),
    };
    exec.execute(action, &map, session).await
}

/// Runs `action` and deserializes its mapped result.
pub async fn ok<T: DeserializeOwned>(
    exec: &Executor,
    session: &mut Session,
    action: &str,
    params: Value,
) -> (T, ActionOutput) {
    let out = run(exec, session, action, params).await.unwrap_or_else(|e| panic!("{action}: {e}"));
    let data: T = serde_json::from_value(out.data.clone()).unwrap_or_else(|e| {
        panic!("{action}: {e}\n{}", serde_json::to_string_pretty(&out.data).unwrap())
    });
    (data, out)
}

/// Runs `action`, expecting a classified provider error.
pub async fn api_err(
    exec: &Executor,
    session: &mut Session,
    action: &str,
    params: Value,
) -> ApiError {
    match run(exec, session, action, params).await {
        Err(ExecError::Api(e)) => e,
        Err(other) => panic!("{action}: expected a provider error, got {other}"),
        Ok(out) => panic!("{action}: expected a provider error, got {}", out.data),
    }
}

/// Runs `action`, expecting its parameters to be refused before sending, with
/// a message naming `field`.
pub async fn invalid(
    exec: &Executor,
    session: &mut Session,
    action: &str,
    params: Value,
    field: &str,
) -> ApiError {
    match run(exec, session, action, params).await {
        Err(e @ ExecError::InvalidParams(_)) => {
            assert!(e.nothing_sent());
            let ExecError::InvalidParams(api) = e else { unreachable!() };
            assert_eq!(api.class, ErrorClass::InvalidRequest);
            assert!(api.message.starts_with(&format!("{field}: ")), "{action}: {}", api.message);
            api
        }
        Err(other) => panic!("{action}: expected invalid params, got {other}"),
        Ok(out) => panic!("{action}: expected invalid params, got {}", out.data),
    }
}

/// Asserts an acknowledgement (`{ok: true}`).
pub async fn ack(exec: &Executor, session: &mut Session, action: &str, params: Value) {
    let out = run(exec, session, action, params).await.unwrap_or_else(|e| panic!("{action}: {e}"));
    assert_eq!(out.data, json!({"ok": true}), "{action}");
}
