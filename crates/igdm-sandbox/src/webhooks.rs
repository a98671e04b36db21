//! Webhook delivery, as Meta does it for `object: "instagram"`.
//!
//! A subscription is created through `POST /_sandbox/webhooks`; the sandbox
//! first runs Meta's verification handshake (`GET <callback>?hub.mode=subscribe
//! &hub.challenge=<n>&hub.verify_token=<token>`, which must echo the challenge)
//! and refuses the subscription otherwise. From then on every queued
//! [`WebhookItem`] is POSTed to the callback:
//!
//! - the body is serialized like Meta's (compact, non-ASCII as `\uXXXX`, `/` as
//!   `\/`) and signed with `X-Hub-Signature-256: sha256=<lowercase hex>` over the
//!   exact bytes, keyed by the app secret;
//! - items that queue up while a delivery is pending (or within the batch
//!   window) are batched into one POST, grouped into one `entry` per account;
//! - a failed POST (non-2xx, timeout, connection error) is retried on a
//!   configurable schedule, then dropped; continuous failure for longer than
//!   `disable_after` unsubscribes the callback, as Meta does after an hour;
//! - on request ([`Chaos`]) deliveries are duplicated or sent out of order.
//!
//! Every attempt is recorded and listed by `GET /_sandbox/webhooks/deliveries`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hmac::{Hmac, KeyInit, Mac};
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::sync::Notify;

use crate::state::{
    Account, AccountKind, Item, ItemKind, Micros, ReactionAction, Sandbox, SandboxEvent, World,
};

/// Most updates Meta puts in one POST.
pub const MAX_BATCH: usize = 1000;

/// Errors of the webhook control API.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The callback URL is not an absolute http(s) URL.
    #[error("callback_url must be an absolute http or https URL")]
    BadCallback,
    /// A required field is empty.
    #[error("{0} is required")]
    Missing(&'static str),
    /// The verification GET failed or did not echo the challenge.
    #[error("callback verification failed: {0}")]
    Verification(String),
    /// Unknown subscription id.
    #[error("no webhook subscription with id {0}")]
    UnknownSubscription(String),
    /// A chaos or config value is out of range.
    #[error("{0}")]
    Invalid(String),
}

impl IntoResponse for WebhookError {
    fn into_response(self) -> Response {
        let status = match self {
            Self::UnknownSubscription(_) => StatusCode::NOT_FOUND,
            Self::Verification(_) => StatusCode::UNPROCESSABLE_ENTITY,
            _ => StatusCode::BAD_REQUEST,
        };
        (status, Json(json!({"error": self.to_string()}))).into_response()
    }
}

/// Serializes JSON the way Meta's webhook bodies are encoded: compact, every
/// non-ASCII character as a `\uXXXX` escape (UTF-16 surrogate pairs beyond the
/// BMP) and `/` as `\/`.
#[must_use]
pub fn meta_json(value: &Value) -> String {
    // Outside string literals compact JSON is pure ASCII without '/', so the
    // substitution can run over the whole text.
    let compact = value.to_string();
    let mut out = String::with_capacity(compact.len() + 16);
    for ch in compact.chars() {
        if ch == '/' {
            out.push_str("\\/");
        } else if ch.is_ascii() {
            out.push(ch);
        } else {
            let mut units = [0u16; 2];
            for unit in ch.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

/// `sha256=<lowercase hex HMAC-SHA256(secret, body)>`, the value of `X-Hub-Signature-256`.
#[must_use]
pub fn signature_header(secret: &[u8], body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => return String::from("sha256="),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// How an item sits in its entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemShape {
    /// `entry[].messaging[]`: `{sender, recipient, timestamp, <body>}`.
    Messaging,
    /// `entry[].standby[]`: the same, for apps not in control of the thread.
    Standby,
    /// `entry[].changes[]`: `{field, value}`.
    Change,
}

/// One update waiting to be delivered.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookItem {
    /// The business account (`entry.id`).
    pub account_id: String,
    /// The subscription field this update belongs to (`messages`,
    /// `message_echoes`, `message_reactions`, `comments`, …).
    pub field: String,
    /// Where it goes in the entry.
    pub shape: ItemShape,
    /// The messaging object, or the change `value`.
    pub value: Value,
    /// The app controlling the thread (Handover Protocol), `None` when idle.
    /// Subscriptions of other apps receive messaging items under `standby`.
    pub thread_owner: Option<String>,
}

impl WebhookItem {
    /// A `messaging[]` item.
    #[must_use]
    pub fn messaging(
        account_id: impl Into<String>,
        field: impl Into<String>,
        value: Value,
    ) -> Self {
        Self {
            account_id: account_id.into(),
            field: field.into(),
            shape: ItemShape::Messaging,
            value,
            thread_owner: None,
        }
    }

    /// A `changes[]` item.
    #[must_use]
    pub fn change(account_id: impl Into<String>, field: impl Into<String>, value: Value) -> Self {
        Self {
            account_id: account_id.into(),
            field: field.into(),
            shape: ItemShape::Change,
            value,
            thread_owner: None,
        }
    }

    /// Whether a subscription to `fields` receives this item. Echoes also
    /// travel under `messages` (Facebook-Login style).
    #[must_use]
    pub fn matches(&self, fields: Option<&[String]>) -> bool {
        let Some(fields) = fields else { return true };
        fields.iter().any(|f| {
            f == &self.field
                || (self.field == "message_echoes" && f == "messages")
                || (self.shape == ItemShape::Standby && f == "standby")
        })
    }
}

/// Builds `{"object":"instagram","entry":[…]}` from items, one entry per
/// account in first-seen order; `time` is when the notification is sent (ms).
#[must_use]
pub fn build_payload(items: &[WebhookItem], now_ms: i64) -> Value {
    let mut entries: Vec<(String, serde_json::Map<String, Value>)> = Vec::new();
    for item in items {
        let idx = match entries.iter().position(|(id, _)| id == &item.account_id) {
            Some(i) => i,
            None => {
                let mut entry = serde_json::Map::new();
                entry.insert("id".into(), json!(item.account_id));
                entry.insert("time".into(), json!(now_ms));
                entries.push((item.account_id.clone(), entry));
                entries.len() - 1
            }
        };
        let entry = &mut entries[idx].1;
        let (key, value) = match item.shape {
            ItemShape::Messaging => ("messaging", item.value.clone()),
            ItemShape::Standby => ("standby", item.value.clone()),
            ItemShape::Change => ("changes", json!({"field": item.field, "value": item.value})),
        };
        if let Some(Value::Array(list)) = entry.get_mut(key) {
            list.push(value);
        } else {
            entry.insert(key.into(), Value::Array(vec![value]));
        }
    }
    json!({
        "object": "instagram",
        "entry": entries.into_iter().map(|(_, e)| Value::Object(e)).collect::<Vec<_>>(),
    })
}

/// Retry and batching settings of one subscription.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryPolicy {
    /// Delay before each retry; its length bounds the number of retries.
    pub retry_schedule: Vec<Duration>,
    /// Per-attempt timeout (Meta: 20 s).
    pub timeout: Duration,
    /// How long the worker waits for more items before POSTing a batch.
    pub batch_window: Duration,
    /// Continuous failure for this long unsubscribes the callback (Meta: 1 h).
    pub disable_after: Duration,
}

impl Default for DeliveryPolicy {
    fn default() -> Self {
        // Immediately, then with decreasing frequency for about 36 hours.
        let mut schedule = vec![
            Duration::from_secs(0),
            Duration::from_secs(5),
            Duration::from_secs(30),
            Duration::from_secs(120),
            Duration::from_secs(600),
            Duration::from_secs(1800),
            Duration::from_secs(3600),
        ];
        schedule.extend(std::iter::repeat_n(Duration::from_secs(3 * 3600), 11));
        Self {
            retry_schedule: schedule,
            timeout: Duration::from_secs(20),
            batch_window: Duration::from_millis(10),
            disable_after: Duration::from_secs(3600),
        }
    }
}

/// How many deliveries to duplicate.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Duplicate {
    /// Never.
    #[default]
    Off,
    /// Each successful POST is sent again with this probability.
    Probability(f64),
    /// The next `n` successful POSTs are sent twice.
    Count(u64),
}

/// Fault injection on deliveries (`POST /_sandbox/webhooks/chaos`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Chaos {
    /// Duplicate deliveries.
    pub duplicate: Duplicate,
    /// Deliver queued items one per POST, newest first.
    pub reorder: bool,
}

/// One delivery attempt, as listed by `GET /_sandbox/webhooks/deliveries`.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryRecord {
    /// Sequence number of the attempt (1-based, global).
    pub id: u64,
    /// The subscription.
    pub subscription_id: String,
    /// The callback URL.
    pub callback_url: String,
    /// Batch number: retries and duplicates of one POST share it.
    pub batch: u64,
    /// 1 for the first try, 2 for the first retry, …
    pub attempt: u32,
    /// HTTP status from the receiver, if one answered.
    pub status: Option<u16>,
    /// Whether the receiver answered 2xx.
    pub ok: bool,
    /// Network error or timeout description.
    pub error: Option<String>,
    /// Whether this POST is a chaos duplicate.
    pub duplicate: bool,
    /// What happens next: `delivered`, `retrying`, `dropped` or `unsubscribed`.
    pub outcome: String,
    /// Number of updates in the body.
    pub events: usize,
    /// The `X-Hub-Signature-256` header sent.
    pub signature: String,
    /// The exact body sent.
    pub body: String,
    /// When the attempt was made (real time, RFC 3339).
    pub at: String,
}

/// A subscription as shown by the control API (no secrets).
#[derive(Debug, Clone, Serialize)]
pub struct SubscriptionInfo {
    /// Subscription id.
    pub id: String,
    /// Callback URL.
    pub callback_url: String,
    /// The app it belongs to, if given.
    pub app_id: Option<String>,
    /// Subscribed fields (`None` = all).
    pub fields: Option<Vec<String>>,
    /// False once Meta-style auto-unsubscription happened.
    pub active: bool,
    /// Items waiting.
    pub queued: usize,
}

struct Subscription {
    id: String,
    callback_url: String,
    app_id: Option<String>,
    app_secret: Vec<u8>,
    fields: Option<Vec<String>>,
    policy: DeliveryPolicy,
    messages_as_changes: bool,
    active: bool,
    queue: VecDeque<WebhookItem>,
    notify: Arc<Notify>,
}

#[derive(Default)]
struct HubInner {
    subs: Vec<Subscription>,
    records: Vec<DeliveryRecord>,
    chaos: Chaos,
    next_sub: u64,
    next_record: u64,
    next_batch: u64,
    sandbox: Option<std::sync::Weak<Sandbox>>,
}

/// The webhook dispatcher. Cheap to clone; all clones share state.
#[derive(Clone)]
pub struct WebhookHub {
    inner: Arc<Mutex<HubInner>>,
    client: reqwest::Client,
}

impl std::fmt::Debug for WebhookHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookHub").finish_non_exhaustive()
    }
}

impl Default for WebhookHub {
    fn default() -> Self {
        Self::new()
    }
}

/// What `subscribe` needs.
#[derive(Clone, Deserialize)]
pub struct SubscribeRequest {
    /// Where updates are POSTed.
    pub callback_url: String,
    /// Echoed back by the verification GET.
    pub verify_token: String,
    /// HMAC key of the signatures; may be omitted when `app_id` names an
    /// app registered with `POST /_sandbox/apps` (its secret is used).
    #[serde(default)]
    pub app_secret: String,
    /// The app the subscription belongs to (optional).
    #[serde(default)]
    pub app_id: Option<String>,
    /// Subscribed fields; absent = every field.
    #[serde(default)]
    pub fields: Option<Vec<String>>,
    /// Retry delays in milliseconds (overrides the Meta-like default).
    #[serde(default)]
    pub retry_schedule_ms: Option<Vec<u64>>,
    /// Per-attempt timeout in milliseconds.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// Batch window in milliseconds.
    #[serde(default)]
    pub batch_window_ms: Option<u64>,
    /// Auto-unsubscribe after this much continuous failure, in milliseconds.
    #[serde(default)]
    pub disable_after_ms: Option<u64>,
    /// Deliver messaging updates as `entry[].changes[{field, value}]`, the
    /// other shape real subscriptions have been seen to use.
    #[serde(default)]
    pub messages_as_changes: bool,
}

impl std::fmt::Debug for SubscribeRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubscribeRequest")
            .field("callback_url", &self.callback_url)
            .field("app_id", &self.app_id)
            .field("fields", &self.fields)
            .finish_non_exhaustive()
    }
}

impl WebhookHub {
    /// A hub with no subscriptions.
    #[must_use]
    pub fn new() -> Self {
        let client =
            reqwest::Client::builder().user_agent("facebookexternalua").build().unwrap_or_default();
        Self { inner: Arc::new(Mutex::new(HubInner::default())), client }
    }

    fn lock(&self) -> MutexGuard<'_, HubInner> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Verifies the callback with Meta's handshake, then registers it and
    /// starts its delivery worker.
    ///
    /// # Errors
    /// Bad parameters, or a callback that does not echo the challenge.
    pub async fn subscribe(&self, req: SubscribeRequest) -> Result<SubscriptionInfo, WebhookError> {
        let url = url::Url::parse(&req.callback_url).map_err(|_| WebhookError::BadCallback)?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(WebhookError::BadCallback);
        }
        if req.verify_token.is_empty() {
            return Err(WebhookError::Missing("verify_token"));
        }
        if req.app_secret.is_empty() {
            return Err(WebhookError::Missing("app_secret"));
        }
        let mut policy = DeliveryPolicy::default();
        if let Some(s) = &req.retry_schedule_ms {
            policy.retry_schedule = s.iter().map(|ms| Duration::from_millis(*ms)).collect();
        }
        if let Some(ms) = req.timeout_ms {
            policy.timeout = Duration::from_millis(ms.max(1));
        }
        if let Some(ms) = req.batch_window_ms {
            policy.batch_window = Duration::from_millis(ms);
        }
        if let Some(ms) = req.disable_after_ms {
            policy.disable_after = Duration::from_millis(ms);
        }
        self.verify(&url, &req.verify_token, policy.timeout).await?;

        let notify = Arc::new(Notify::new());
        let info = {
            let mut inner = self.lock();
            inner.next_sub += 1;
            let id = inner.next_sub.to_string();
            let sub = Subscription {
                id,
                callback_url: req.callback_url.clone(),
                app_id: req.app_id.clone(),
                app_secret: req.app_secret.into_bytes(),
                fields: req.fields.clone(),
                messages_as_changes: req.messages_as_changes,
                policy,
                active: true,
                queue: VecDeque::new(),
                notify: notify.clone(),
            };
            let info = info_of(&sub);
            inner.subs.push(sub);
            info
        };
        tracing::info!(subscription = %info.id, callback = %info.callback_url, "webhook subscribed");
        let hub = self.clone();
        let id = info.id.clone();
        tokio::spawn(async move { hub.worker(id, notify).await });
        Ok(info)
    }

    async fn verify(
        &self,
        url: &url::Url,
        verify_token: &str,
        timeout: Duration,
    ) -> Result<(), WebhookError> {
        let challenge = rand::rng().random_range(100_000_000u64..10_000_000_000u64).to_string();
        let mut verify_url = url.clone();
        verify_url
            .query_pairs_mut()
            .append_pair("hub.mode", "subscribe")
            .append_pair("hub.challenge", &challenge)
            .append_pair("hub.verify_token", verify_token);
        let resp =
            self.client.get(verify_url).timeout(timeout).send().await.map_err(|e| {
                WebhookError::Verification(format!("GET failed: {}", e.without_url()))
            })?;
        let status = resp.status();
        let body = resp.text().await.map_err(|e| {
            WebhookError::Verification(format!("reading the body: {}", e.without_url()))
        })?;
        if !status.is_success() {
            return Err(WebhookError::Verification(format!(
                "callback answered HTTP {}",
                status.as_u16()
            )));
        }
        if body != challenge {
            return Err(WebhookError::Verification(
                "the response body is not the hub.challenge value".to_owned(),
            ));
        }
        Ok(())
    }

    /// Removes a subscription; its worker stops and pending items are dropped.
    ///
    /// # Errors
    /// Unknown id.
    pub fn unsubscribe(&self, id: &str) -> Result<(), WebhookError> {
        let mut inner = self.lock();
        let before = inner.subs.len();
        if let Some(sub) = inner.subs.iter().find(|s| s.id == id) {
            sub.notify.notify_one();
        }
        inner.subs.retain(|s| s.id != id);
        if inner.subs.len() == before {
            return Err(WebhookError::UnknownSubscription(id.to_owned()));
        }
        Ok(())
    }

    /// The current subscriptions.
    #[must_use]
    pub fn subscriptions(&self) -> Vec<SubscriptionInfo> {
        self.lock().subs.iter().map(info_of).collect()
    }

    /// Queues an update for every active subscription whose fields match.
    /// Messaging items of a thread another app controls reach a
    /// subscription as `standby` items.
    pub fn enqueue(&self, item: WebhookItem) {
        let mut inner = self.lock();
        for sub in inner.subs.iter_mut().filter(|s| s.active) {
            let app = sub.app_id.as_deref().unwrap_or(crate::oauth::SANDBOX_APP_ID);
            let standby = item.shape == ItemShape::Messaging
                && item.thread_owner.as_deref().is_some_and(|owner| owner != app);
            let mut copy = item.clone();
            if standby {
                copy.shape = ItemShape::Standby;
            } else if sub.messages_as_changes && copy.shape == ItemShape::Messaging {
                copy.shape = ItemShape::Change;
            }
            if copy.matches(sub.fields.as_deref()) {
                sub.queue.push_back(copy);
                sub.notify.notify_one();
            }
        }
    }

    /// Every attempt so far, oldest first.
    #[must_use]
    pub fn deliveries(&self) -> Vec<DeliveryRecord> {
        self.lock().records.clone()
    }

    /// Forgets the recorded attempts.
    pub fn clear_deliveries(&self) {
        self.lock().records.clear();
    }

    /// Replaces the chaos settings.
    pub fn set_chaos(&self, chaos: Chaos) {
        self.lock().chaos = chaos;
    }

    /// The chaos settings.
    #[must_use]
    pub fn chaos(&self) -> Chaos {
        self.lock().chaos
    }

    /// The delivery loop of one subscription.
    async fn worker(self, id: String, notify: Arc<Notify>) {
        loop {
            notify.notified().await;
            let Some(window) = self.with_sub(&id, |s| s.policy.batch_window) else {
                return;
            };
            if !window.is_zero() {
                tokio::time::sleep(window).await;
            }
            loop {
                let Some((items, reorder)) = self.take_batch(&id) else {
                    return;
                };
                if items.is_empty() {
                    break;
                }
                if reorder && items.len() > 1 {
                    for item in items.into_iter().rev() {
                        if !self.deliver(&id, vec![item]).await {
                            return;
                        }
                    }
                } else if !self.deliver(&id, items).await {
                    return;
                }
            }
        }
    }

    fn with_sub<T>(&self, id: &str, f: impl FnOnce(&mut Subscription) -> T) -> Option<T> {
        let mut inner = self.lock();
        inner.subs.iter_mut().find(|s| s.id == id).map(f)
    }

    fn take_batch(&self, id: &str) -> Option<(Vec<WebhookItem>, bool)> {
        let mut inner = self.lock();
        let reorder = inner.chaos.reorder;
        let sub = inner.subs.iter_mut().find(|s| s.id == id)?;
        if !sub.active {
            return None;
        }
        let n = sub.queue.len().min(MAX_BATCH);
        Some((sub.queue.drain(..n).collect(), reorder))
    }

    /// Whether a duplicate of a successful POST should follow.
    fn roll_duplicate(&self) -> bool {
        let mut inner = self.lock();
        match inner.chaos.duplicate {
            Duplicate::Off => false,
            Duplicate::Probability(p) => rand::rng().random_bool(p.clamp(0.0, 1.0)),
            Duplicate::Count(0) => false,
            Duplicate::Count(n) => {
                inner.chaos.duplicate =
                    if n == 1 { Duplicate::Off } else { Duplicate::Count(n - 1) };
                true
            }
        }
    }

    /// Now in milliseconds on the attached sandbox's virtual clock (real time
    /// when detached), for `entry[].time`.
    fn now_ms(&self) -> i64 {
        let sandbox = self.lock().sandbox.as_ref().and_then(std::sync::Weak::upgrade);
        sandbox.map_or_else(|| chrono::Utc::now().timestamp_millis(), |sb| sb.now_us() / 1000)
    }

    /// POSTs one batch with retries. Returns false when the subscription is gone.
    async fn deliver(&self, id: &str, items: Vec<WebhookItem>) -> bool {
        let body = meta_json(&build_payload(&items, self.now_ms()));
        let Some((url, secret, policy)) =
            self.with_sub(id, |s| (s.callback_url.clone(), s.app_secret.clone(), s.policy.clone()))
        else {
            return false;
        };
        let batch = Batch {
            subscription: id.to_owned(),
            signature: signature_header(&secret, body.as_bytes()),
            url,
            body,
            events: items.len(),
            number: {
                let mut inner = self.lock();
                inner.next_batch += 1;
                inner.next_batch
            },
        };
        let started = Instant::now();
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let result = self.post(&batch, policy.timeout).await;
            let retries_left = (attempt as usize) <= policy.retry_schedule.len();
            let give_up_time = started.elapsed() >= policy.disable_after;
            let outcome = if result.ok() {
                "delivered"
            } else if give_up_time {
                "unsubscribed"
            } else if retries_left {
                "retrying"
            } else {
                "dropped"
            };
            self.record(&batch, attempt, result, false, outcome);
            if outcome == "delivered" {
                if self.roll_duplicate() {
                    let again = self.post(&batch, policy.timeout).await;
                    let outcome = if again.ok() { "delivered" } else { "dropped" };
                    self.record(&batch, attempt, again, true, outcome);
                }
                return true;
            }
            if give_up_time {
                tracing::warn!(subscription = %id, "webhook callback failing continuously; unsubscribed");
                let _ = self.with_sub(id, |s| {
                    s.active = false;
                    s.queue.clear();
                });
                return false;
            }
            if !retries_left {
                tracing::warn!(subscription = %id, batch = batch.number, "webhook delivery dropped after retries");
                return true;
            }
            let delay = policy.retry_schedule[(attempt - 1) as usize];
            tokio::time::sleep(delay).await;
            if self.with_sub(id, |s| s.active) != Some(true) {
                return false;
            }
        }
    }

    async fn post(&self, batch: &Batch, timeout: Duration) -> PostResult {
        let result = self
            .client
            .post(&batch.url)
            .timeout(timeout)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header("X-Hub-Signature-256", &batch.signature)
            .body(batch.body.clone())
            .send()
            .await;
        match result {
            Ok(resp) => {
                let status = resp.status().as_u16();
                // Drain the body so the connection can be reused.
                let _ = resp.bytes().await;
                PostResult { status: Some(status), error: None }
            }
            Err(e) if e.is_timeout() => {
                PostResult { status: None, error: Some("timeout".to_owned()) }
            }
            Err(e) => PostResult { status: None, error: Some(e.without_url().to_string()) },
        }
    }

    fn record(
        &self,
        batch: &Batch,
        attempt: u32,
        result: PostResult,
        duplicate: bool,
        outcome: &str,
    ) {
        let mut inner = self.lock();
        inner.next_record += 1;
        let record = DeliveryRecord {
            id: inner.next_record,
            subscription_id: batch.subscription.clone(),
            callback_url: batch.url.clone(),
            batch: batch.number,
            attempt,
            ok: result.ok(),
            status: result.status,
            error: result.error,
            duplicate,
            outcome: outcome.to_owned(),
            events: batch.events,
            signature: batch.signature.clone(),
            body: batch.body.clone(),
            at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        };
        inner.records.push(record);
    }

    /// Uses `sandbox`'s virtual clock for `entry[].time`.
    pub fn attach(&self, sandbox: &Arc<Sandbox>) {
        self.lock().sandbox = Some(Arc::downgrade(sandbox));
    }
}

/// One POST body and what identifies it in the delivery log.
struct Batch {
    subscription: String,
    url: String,
    number: u64,
    signature: String,
    body: String,
    events: usize,
}

/// What one POST got back.
struct PostResult {
    status: Option<u16>,
    error: Option<String>,
}

impl PostResult {
    fn ok(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

fn info_of(sub: &Subscription) -> SubscriptionInfo {
    SubscriptionInfo {
        id: sub.id.clone(),
        callback_url: sub.callback_url.clone(),
        app_id: sub.app_id.clone(),
        fields: sub.fields.clone(),
        active: sub.active,
        queued: sub.queue.len(),
    }
}

/// Parses the chaos body `{"duplicate": 0.0-1.0 | count, "reorder": bool}`.
///
/// # Errors
/// A probability outside 0..=1 or a value of the wrong type.
pub fn parse_chaos(body: &Value) -> Result<Chaos, WebhookError> {
    let duplicate = match body.get("duplicate") {
        None | Some(Value::Null) => Duplicate::Off,
        Some(Value::Number(n)) if n.is_u64() => match n.as_u64() {
            Some(0) | None => Duplicate::Off,
            Some(c) => Duplicate::Count(c),
        },
        Some(Value::Number(n)) => match n.as_f64() {
            Some(p) if (0.0..=1.0).contains(&p) => Duplicate::Probability(p),
            _ => {
                return Err(WebhookError::Invalid(
                    "duplicate must be a probability between 0.0 and 1.0 or a whole count"
                        .to_owned(),
                ));
            }
        },
        Some(_) => {
            return Err(WebhookError::Invalid("duplicate must be a number".to_owned()));
        }
    };
    let reorder = match body.get("reorder") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(WebhookError::Invalid("reorder must be a boolean".to_owned())),
    };
    Ok(Chaos { duplicate, reorder })
}

fn chaos_json(chaos: Chaos) -> Value {
    let duplicate = match chaos.duplicate {
        Duplicate::Off => json!(0),
        Duplicate::Probability(p) => json!(p),
        Duplicate::Count(n) => json!(n),
    };
    json!({"duplicate": duplicate, "reorder": chaos.reorder})
}

#[derive(Deserialize)]
struct DeliveriesQuery {
    subscription_id: Option<String>,
}

/// Control routes of the webhook dispatcher (the hub is the sandbox's
/// [`WebhookHub`] extension):
///
/// - `POST /_sandbox/webhooks` [`SubscribeRequest`] → 201 [`SubscriptionInfo`] (after the handshake), 422 if it fails
/// - `GET /_sandbox/webhooks` → `{"data":[SubscriptionInfo…]}`
/// - `DELETE /_sandbox/webhooks/{id}` → `{"success":true}`
/// - `POST /_sandbox/webhooks/chaos` `{"duplicate":p|n,"reorder":bool}` → the settings; `GET` reads them
/// - `GET /_sandbox/webhooks/deliveries[?subscription_id=]` → `{"data":[DeliveryRecord…]}`
/// - `DELETE /_sandbox/webhooks/deliveries` → `{"success":true}`
pub fn routes() -> Router<Arc<Sandbox>> {
    Router::new()
        .route("/_sandbox/webhooks", post(subscribe_handler).get(list_handler))
        .route("/_sandbox/webhooks/{id}", axum::routing::delete(unsubscribe_handler))
        .route("/_sandbox/webhooks/chaos", post(chaos_handler).get(get_chaos_handler))
        .route(
            "/_sandbox/webhooks/deliveries",
            get(deliveries_handler).delete(clear_deliveries_handler),
        )
}

/// The sandbox's webhook hub.
#[must_use]
pub fn hub(sandbox: &Sandbox) -> Arc<WebhookHub> {
    sandbox.lasting_extension::<WebhookHub>()
}

/// Delivery workers hold the hub, so a reset empties it in place: every
/// subscription goes (its worker stops and its queue is dropped), and so
/// do the delivery records and the chaos settings. Ids keep counting up,
/// so that no stopping worker mistakes a new subscription for its own.
impl crate::state::Extension for WebhookHub {
    fn reset(&self) {
        let mut inner = self.lock();
        for sub in inner.subs.drain(..) {
            sub.notify.notify_one();
        }
        inner.records.clear();
        inner.chaos = Chaos::default();
    }
}

/// Starts turning the sandbox's domain events into webhook deliveries. Called
/// once by [`crate::serve`]; the task ends when the sandbox is dropped.
pub fn start(sandbox: &Arc<Sandbox>) {
    let mut events = sandbox.subscribe();
    hub(sandbox).attach(sandbox);
    let weak = Arc::downgrade(sandbox);
    tokio::spawn(async move {
        loop {
            let event = match events.recv().await {
                Ok(e) => e,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "webhook dispatcher lagged behind the event stream");
                    continue;
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            };
            let Some(sandbox) = weak.upgrade() else { break };
            crate::graph::observe_event(&sandbox, &event).await;
            let (items, customer) = sandbox
                .read(|w| {
                    let customer = event_thread(&event).and_then(|(account, thread)| {
                        w.threads
                            .get(thread)
                            .and_then(|t| t.participants.first())
                            .map(|pk| (account.to_owned(), pk.clone()))
                    });
                    (items_for_event(w, &event), customer)
                })
                .await;
            let owner = customer
                .and_then(|(account, pk)| crate::graph::ext::ext(&sandbox).owner(&account, &pk));
            let hub = hub(&sandbox);
            for mut item in items {
                item.thread_owner.clone_from(&owner);
                hub.enqueue(item);
            }
        }
    });
}

/// The (account, thread) an event happened in, if it concerns a thread.
fn event_thread(event: &SandboxEvent) -> Option<(&str, &str)> {
    match event {
        SandboxEvent::MessageCreated { account, thread, .. }
        | SandboxEvent::ReactionChanged { account, thread, .. }
        | SandboxEvent::Read { account, thread, .. }
        | SandboxEvent::Edited { account, thread, .. }
        | SandboxEvent::Unsent { account, thread, .. }
        | SandboxEvent::Postback { account, thread, .. }
        | SandboxEvent::Referral { account, thread, .. } => Some((account, thread)),
        _ => None,
    }
}

fn ms(us: Micros) -> i64 {
    us.div_euclid(1000)
}

fn igsid_of(w: &World, pk: &str) -> String {
    w.users.get(pk).map_or_else(|| pk.to_owned(), |u| u.igsid.clone())
}

fn message_body(w: &World, item: &Item, is_echo: bool) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("mid".into(), json!(item.mid));
    if let Some(t) = &item.text {
        m.insert("text".into(), json!(t));
    }
    if !item.attachments.is_empty() {
        let list: Vec<Value> = item
            .attachments
            .iter()
            .map(|a| json!({"type": a.kind, "payload": {"url": a.url}}))
            .collect();
        m.insert("attachments".into(), Value::Array(list));
    }
    if is_echo {
        m.insert("is_echo".into(), json!(true));
    }
    if let Some(q) = &item.quick_reply_payload {
        m.insert("quick_reply".into(), json!({"payload": q}));
    }
    if let Some(r) = &item.reply_to {
        let mid = w
            .threads
            .get(&item.thread_id)
            .and_then(|t| t.item(r))
            .map_or_else(|| r.clone(), |i| i.mid.clone());
        m.insert("reply_to".into(), json!({"mid": mid}));
    }
    if let Some(r) = &item.referral {
        m.insert("referral".into(), r.clone());
    }
    Value::Object(m)
}

fn envelope(sender: String, recipient: String, timestamp_ms: i64, key: &str, body: Value) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("sender".into(), json!({"id": sender}));
    m.insert("recipient".into(), json!({"id": recipient}));
    m.insert("timestamp".into(), json!(timestamp_ms));
    m.insert(key.into(), body);
    Value::Object(m)
}

/// The name Meta gives a reaction emoji (`love` for the heart, else `other`).
pub(crate) fn reaction_name(emoji: &str) -> &'static str {
    if emoji.trim_end_matches('\u{fe0f}') == "\u{2764}" { "love" } else { "other" }
}

/// A customer → account messaging update.
fn incoming(
    w: &World,
    acc: &Account,
    sender_pk: &str,
    at_us: Micros,
    field: &str,
    key: &str,
    body: Value,
) -> WebhookItem {
    WebhookItem::messaging(
        &acc.id,
        field,
        envelope(igsid_of(w, sender_pk), acc.id.clone(), ms(at_us), key, body),
    )
}

/// The customer of a one-to-one thread, as an IGSID.
fn thread_customer(w: &World, thread: &str) -> String {
    w.threads
        .get(thread)
        .and_then(|t| t.participants.first())
        .map(|pk| igsid_of(w, pk))
        .unwrap_or_default()
}

/// Turns one domain event into the webhook updates Meta would send. Only
/// business accounts' one-to-one threads produce webhooks.
#[must_use]
pub fn items_for_event(w: &World, event: &SandboxEvent) -> Vec<WebhookItem> {
    let business = |id: &str| w.accounts.get(id).filter(|a| a.kind == AccountKind::Business);
    // The business account of a one-to-one thread event.
    let owner = |id: &str, thread: &str| {
        business(id).filter(|_| w.threads.get(thread).is_some_and(|t| !t.is_group))
    };
    let mut out = Vec::new();
    match event {
        SandboxEvent::MessageCreated { account, thread, item, is_echo } => {
            let Some(acc) = owner(account, thread) else { return out };
            if item.kind == ItemKind::Postback {
                return out;
            }
            let body = message_body(w, item, *is_echo);
            if *is_echo {
                let env = envelope(
                    acc.id.clone(),
                    thread_customer(w, thread),
                    ms(item.timestamp_us),
                    "message",
                    body,
                );
                out.push(WebhookItem::messaging(&acc.id, "message_echoes", env));
            } else {
                out.push(incoming(
                    w,
                    acc,
                    &item.sender,
                    item.timestamp_us,
                    "messages",
                    "message",
                    body,
                ));
            }
        }
        SandboxEvent::ReactionChanged {
            account,
            thread,
            mid,
            actor,
            action,
            emoji,
            timestamp_us,
            ..
        } => {
            // No echo is sent for the business's own reactions.
            let Some(acc) = owner(account, thread).filter(|a| &a.pk != actor) else { return out };
            let body = match (action, emoji) {
                (ReactionAction::React, Some(e)) => json!({
                    "mid": mid, "action": "react", "reaction": reaction_name(e), "emoji": e,
                }),
                _ => json!({"mid": mid, "action": "unreact"}),
            };
            out.push(incoming(w, acc, actor, *timestamp_us, "message_reactions", "reaction", body));
        }
        SandboxEvent::Read { account, thread, reader, mid, timestamp_us, .. } => {
            let Some(acc) = owner(account, thread).filter(|a| &a.pk != reader) else { return out };
            out.push(incoming(
                w,
                acc,
                reader,
                *timestamp_us,
                "messaging_seen",
                "read",
                json!({"mid": mid}),
            ));
        }
        SandboxEvent::Edited { account, thread, item, num_edit } => {
            let Some(acc) = owner(account, thread) else { return out };
            let at = item.edits.last().map_or(item.timestamp_us, |e| e.at_us);
            let body = json!({"mid": item.mid, "text": item.text.clone().unwrap_or_default(), "num_edit": num_edit});
            if item.sender == acc.pk {
                let env = envelope(
                    acc.id.clone(),
                    thread_customer(w, thread),
                    ms(at),
                    "message_edit",
                    body,
                );
                out.push(WebhookItem::messaging(&acc.id, "message_edit", env));
            } else {
                out.push(incoming(w, acc, &item.sender, at, "message_edit", "message_edit", body));
            }
        }
        SandboxEvent::Unsent { account, thread, item, timestamp_us } => {
            let Some(acc) = owner(account, thread).filter(|a| a.pk != item.sender) else {
                return out;
            };
            let body = json!({"mid": item.mid, "is_deleted": true});
            out.push(incoming(w, acc, &item.sender, *timestamp_us, "messages", "message", body));
        }
        SandboxEvent::Postback { account, thread, sender, item, title, payload } => {
            let Some(acc) = owner(account, thread) else { return out };
            let body = json!({"mid": item.mid, "title": title, "payload": payload});
            out.push(incoming(
                w,
                acc,
                sender,
                item.timestamp_us,
                "messaging_postbacks",
                "postback",
                body,
            ));
        }
        SandboxEvent::Referral { account, thread, sender, referral, timestamp_us } => {
            let Some(acc) = owner(account, thread) else { return out };
            let mut body = referral.as_object().cloned().unwrap_or_default();
            body.entry("type").or_insert_with(|| json!("OPEN_THREAD"));
            body.entry("source").or_insert_with(|| json!("SHORTLINK"));
            out.push(incoming(
                w,
                acc,
                sender,
                *timestamp_us,
                "messaging_referral",
                "referral",
                Value::Object(body),
            ));
        }
        SandboxEvent::Comment { account, sender, comment_id, media_id, text, .. } => {
            let Some(acc) = business(account) else { return out };
            let username = w.users.get(sender).map(|u| u.username.clone()).unwrap_or_default();
            out.push(WebhookItem::change(
                &acc.id,
                "comments",
                json!({
                    "id": comment_id,
                    "from": {"id": igsid_of(w, sender), "username": username},
                    "text": text,
                    "media": {"id": media_id, "media_product_type": "FEED"},
                }),
            ));
            let handle = format!("@{}", acc.username);
            if text.split(|c: char| c.is_whitespace() || c == ',').any(|word| word == handle) {
                out.push(WebhookItem::change(
                    &acc.id,
                    "mentions",
                    json!({"comment_id": comment_id, "media_id": media_id}),
                ));
            }
        }
        _ => {}
    }
    out
}

async fn subscribe_handler(
    State(sb): State<Arc<Sandbox>>,
    body: Result<Json<SubscribeRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<SubscriptionInfo>), WebhookError> {
    let Json(mut req) = body.map_err(|e| WebhookError::Invalid(e.body_text()))?;
    if req.app_secret.is_empty()
        && let Some(app) = req.app_id.as_deref().and_then(|id| crate::oauth::store(&sb).app(id))
    {
        req.app_secret = app.app_secret;
    }
    let info = hub(&sb).subscribe(req).await?;
    Ok((StatusCode::CREATED, Json(info)))
}

async fn list_handler(State(sb): State<Arc<Sandbox>>) -> Json<Value> {
    Json(json!({"data": hub(&sb).subscriptions()}))
}

async fn unsubscribe_handler(
    State(sb): State<Arc<Sandbox>>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Json<Value>, WebhookError> {
    hub(&sb).unsubscribe(&id)?;
    Ok(Json(json!({"success": true})))
}

async fn chaos_handler(
    State(sb): State<Arc<Sandbox>>,
    body: Result<Json<Value>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, WebhookError> {
    let Json(body) = body.map_err(|e| WebhookError::Invalid(e.body_text()))?;
    let chaos = parse_chaos(&body)?;
    hub(&sb).set_chaos(chaos);
    Ok(Json(chaos_json(chaos)))
}

async fn get_chaos_handler(State(sb): State<Arc<Sandbox>>) -> Json<Value> {
    Json(chaos_json(hub(&sb).chaos()))
}

async fn deliveries_handler(
    State(sb): State<Arc<Sandbox>>,
    Query(q): Query<DeliveriesQuery>,
) -> Json<Value> {
    let records: Vec<DeliveryRecord> = hub(&sb)
        .deliveries()
        .into_iter()
        .filter(|r| q.subscription_id.as_ref().is_none_or(|s| &r.subscription_id == s))
        .collect();
    Json(json!({"data": records}))
}

async fn clear_deliveries_handler(State(sb): State<Arc<Sandbox>>) -> Json<Value> {
    hub(&sb).clear_deliveries();
    Json(json!({"success": true}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_escaping() {
        let v = json!({"text": "héllo 👍 a/b"});
        assert_eq!(meta_json(&v), r#"{"text":"h\u00e9llo \ud83d\udc4d a\/b"}"#);
        let back: Value = serde_json::from_str(&meta_json(&v)).unwrap_or_default();
        assert_eq!(back, v);
    }

    #[test]
    fn known_hmac_vector() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature_header(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn payload_groups_by_account() {
        let items = vec![
            WebhookItem::messaging("1", "messages", json!({"a": 1})),
            WebhookItem::change("2", "comments", json!({"id": "c"})),
            WebhookItem::messaging("1", "message_reactions", json!({"b": 2})),
        ];
        let p = build_payload(&items, 5);
        assert_eq!(p["entry"].as_array().map(Vec::len), Some(2));
        assert_eq!(p["entry"][0]["messaging"].as_array().map(Vec::len), Some(2));
        assert_eq!(p["entry"][1]["changes"][0]["field"], "comments");
    }

    #[test]
    fn chaos_parsing() {
        assert_eq!(
            parse_chaos(&json!({"duplicate": 2})).ok().map(|c| c.duplicate),
            Some(Duplicate::Count(2))
        );
        assert_eq!(
            parse_chaos(&json!({"duplicate": 0.5, "reorder": true})).ok(),
            Some(Chaos { duplicate: Duplicate::Probability(0.5), reorder: true })
        );
        assert!(parse_chaos(&json!({"duplicate": 1.5})).is_err());
    }
}
