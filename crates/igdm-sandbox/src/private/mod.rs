//! The private web API under `/api/v1/`, as strict as Instagram.
//!
//! Every request goes through the same gate, in this order:
//! 1. the endpoint must exist (paths end with `/`), else 404;
//! 2. POSTs must be form-encoded (a JSON body gets a 400 fail envelope) and
//!    carry an `X-CSRFToken` header equal to the `csrftoken` cookie (403);
//! 3. the `Cookie` header must carry a known `sessionid` whose
//!    `ds_user_id` matches, and a `csrftoken` (403 `login_required`);
//! 4. the account's injected [`FaultMode`] applies;
//! 5. the endpoint runs; the response carries `x-ig-set-www-claim`,
//!    `ig-set-ig-u-rur` and, every few requests, `Set-Cookie` rotations.

mod handlers;
pub mod render;
pub(crate) mod rupload;

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use serde::Serialize;
use serde_json::{Value, json};

use crate::state::{
    Account, AccountKind, FaultMode, RequestOutcome, Sandbox, SandboxError, SentRecord,
};

/// Routes of the private web API.
pub fn routes() -> Router<Arc<Sandbox>> {
    Router::new().route("/api/v1/{*rest}", any(dispatch)).merge(rupload::routes())
}

/// Which endpoint a path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Inbox,
    PendingInbox,
    SpamInbox,
    Thread(String),
    GetByParticipants,
    Broadcast(String),
    Approve(String),
    Decline(String),
    ItemReactions(String, String),
    Seen(String, String),
    Delete(String, String),
    MarkUnread(String),
    Mute(String),
    Unmute(String),
    Hide(String),
    Activity(String),
    GetPresence,
    FetchPresence,
    SearchSecondary,
    CurrentUser,
}

impl Endpoint {
    fn parse(method: &Method, rest: &str) -> Option<Self> {
        let path = rest.strip_suffix('/')?;
        let seg: Vec<&str> = path.split('/').collect();
        let get = *method == Method::GET;
        let post = *method == Method::POST;
        let e = match seg.as_slice() {
            ["direct_v2", "inbox"] if get => Self::Inbox,
            ["direct_v2", "pending_inbox"] if get => Self::PendingInbox,
            ["direct_v2", "spam_inbox"] if get => Self::SpamInbox,
            ["direct_v2", "threads", "get_by_participants"] if get => Self::GetByParticipants,
            ["direct_v2", "threads", "broadcast", kind] if post => {
                Self::Broadcast((*kind).to_owned())
            }
            ["direct_v2", "threads", t] if get => Self::Thread((*t).to_owned()),
            ["direct_v2", "threads", t, "approve"] if post => Self::Approve((*t).to_owned()),
            ["direct_v2", "threads", t, "decline"] if post => Self::Decline((*t).to_owned()),
            ["direct_v2", "threads", t, "mark_unread"] if post => Self::MarkUnread((*t).to_owned()),
            ["direct_v2", "threads", t, "mute"] if post => Self::Mute((*t).to_owned()),
            ["direct_v2", "threads", t, "unmute"] if post => Self::Unmute((*t).to_owned()),
            ["direct_v2", "threads", t, "hide"] if post => Self::Hide((*t).to_owned()),
            ["direct_v2", "threads", t, "activity"] if post => Self::Activity((*t).to_owned()),
            ["direct_v2", "threads", t, "items", i, "reactions"] if post => {
                Self::ItemReactions((*t).to_owned(), (*i).to_owned())
            }
            ["direct_v2", "threads", t, "items", i, "seen"] if post => {
                Self::Seen((*t).to_owned(), (*i).to_owned())
            }
            ["direct_v2", "threads", t, "items", i, "delete"] if post => {
                Self::Delete((*t).to_owned(), (*i).to_owned())
            }
            ["direct_v2", "get_presence"] if get => Self::GetPresence,
            ["direct_v2", "fetch_and_subscribe_presence"] if post => Self::FetchPresence,
            ["direct_v2", "search_secondary"] if get => Self::SearchSecondary,
            ["accounts", "current_user"] if get => Self::CurrentUser,
            _ => return None,
        };
        Some(e)
    }

    /// Whether the endpoint changes state (blocked by `feedback_required`).
    fn is_write(&self) -> bool {
        !matches!(
            self,
            Self::Inbox
                | Self::PendingInbox
                | Self::SpamInbox
                | Self::Thread(_)
                | Self::GetByParticipants
                | Self::GetPresence
                | Self::FetchPresence
                | Self::SearchSecondary
                | Self::CurrentUser
        )
    }

    fn class(&self) -> &'static str {
        match self {
            Self::Broadcast(_) => "private_send",
            e if e.is_write() => "private_write",
            _ => "private_read",
        }
    }
}

/// An error response of the private API.
#[derive(Debug)]
pub(crate) enum ApiError {
    /// A JSON fail envelope.
    Json(StatusCode, Value),
    /// A plain-text body.
    Text(StatusCode, &'static str),
    /// An HTML page.
    Html(StatusCode, String),
}

impl ApiError {
    pub(crate) fn fail(status: StatusCode, message: &str) -> Self {
        Self::Json(status, json!({"message": message, "status": "fail"}))
    }
    pub(crate) fn bad(message: &str) -> Self {
        Self::fail(StatusCode::BAD_REQUEST, message)
    }
    fn status(&self) -> StatusCode {
        match self {
            Self::Json(s, _) | Self::Text(s, _) | Self::Html(s, _) => *s,
        }
    }
    fn message(&self) -> String {
        match self {
            Self::Json(_, v) => {
                v.get("message").and_then(Value::as_str).unwrap_or("fail").to_owned()
            }
            Self::Text(_, t) => (*t).to_owned(),
            Self::Html(..) => "html".to_owned(),
        }
    }
}

impl From<SandboxError> for ApiError {
    fn from(e: SandboxError) -> Self {
        match e {
            SandboxError::NotFound(what) if what.starts_with("thread") => {
                Self::fail(StatusCode::NOT_FOUND, "Thread not found")
            }
            SandboxError::NotFound(what) if what.starts_with("item") => {
                Self::fail(StatusCode::NOT_FOUND, "Message not found")
            }
            SandboxError::NotFound(what) if what.starts_with("user") => {
                Self::bad("Invalid recipient_users")
            }
            SandboxError::Forbidden(_) => Self::bad("You can only unsend messages you sent."),
            other => Self::bad(&other.to_string()),
        }
    }
}

/// A successful answer's body, serialized once, straight from the typed
/// shapes of [`render`].
#[derive(Debug, Clone)]
pub(crate) struct JsonBody(Bytes);

impl JsonBody {
    /// Serializes a small answer.
    pub(crate) fn of<T: Serialize + ?Sized>(v: &T) -> Result<Self, ApiError> {
        Self::sized(256, v)
    }

    /// Serializes `v` into a buffer of `capacity` bytes to start with, so
    /// that large answers (inbox, thread pages) are not copied while the
    /// buffer grows.
    pub(crate) fn sized<T: Serialize + ?Sized>(capacity: usize, v: &T) -> Result<Self, ApiError> {
        let mut buf = Vec::with_capacity(capacity);
        match serde_json::to_writer(&mut buf, v) {
            Ok(()) => Ok(Self(Bytes::from(buf))),
            Err(err) => {
                tracing::error!(%err, "response not serializable");
                Err(ApiError::fail(StatusCode::INTERNAL_SERVER_ERROR, "Oops, an error occurred."))
            }
        }
    }

    /// `{"status": "ok"}`.
    pub(crate) fn ok() -> Self {
        Self(Bytes::from_static(br#"{"status":"ok"}"#))
    }
}

fn json_response(status: StatusCode, body: Bytes) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    r
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            Self::Json(s, v) => json_response(s, Bytes::from(v.to_string())),
            Self::Text(s, t) => {
                let mut r = (s, t).into_response();
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                );
                r
            }
            Self::Html(s, h) => {
                let mut r = (s, h).into_response();
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                );
                r
            }
        }
    }
}

/// Parses a `Cookie` header into name → value.
pub(crate) fn parse_cookies(headers: &HeaderMap) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for v in headers.get_all(header::COOKIE) {
        let Ok(s) = v.to_str() else { continue };
        for part in s.split(';') {
            if let Some((k, v)) = part.trim().split_once('=') {
                out.insert(k.trim().to_owned(), v.trim().trim_matches('"').to_owned());
            }
        }
    }
    out
}

/// Form or query parameters.
pub(crate) type Params = HashMap<String, String>;

fn parse_form(raw: &[u8]) -> Params {
    form_urlencoded::parse(raw).into_owned().collect()
}

/// The authenticated account, as much of it as a request needs (cheap to copy
/// out of the world: no logs, no history).
#[derive(Debug, Clone)]
pub(crate) struct Viewer {
    pub(crate) id: String,
    pub(crate) pk: String,
    pub(crate) kind: AccountKind,
    pub(crate) fault: FaultMode,
    latency_ms: u64,
    drop_writes: bool,
    mid: String,
}

impl Viewer {
    fn of(a: &Account) -> Self {
        Self {
            id: a.id.clone(),
            pk: a.pk.clone(),
            kind: a.kind,
            fault: a.fault,
            latency_ms: a.latency_ms,
            drop_writes: a.drop_writes,
            mid: a.cookies.mid.clone(),
        }
    }
}

/// The request context handlers get.
pub(crate) struct Ctx {
    pub(crate) account: Viewer,
    pub(crate) params: Params,
    pub(crate) flapping: bool,
    pub(crate) drift: bool,
    pub(crate) request_no: u64,
}

fn login_required() -> ApiError {
    ApiError::Json(
        StatusCode::FORBIDDEN,
        json!({
            "message": "login_required",
            "error_title": "You've been logged out",
            "error_body": "Please log back in.",
            "logout_reason": 2,
            "status": "fail",
            "error_type": "login_required",
        }),
    )
}

fn csrf_failed() -> ApiError {
    ApiError::fail(StatusCode::FORBIDDEN, "CSRF token missing or incorrect")
}

fn challenge(base: &str, account: &Viewer, api_path: &str) -> ApiError {
    let nonce: String = account.mid.chars().skip(1).take(10).collect();
    let path = format!("/challenge/{}/{nonce}/", account.pk);
    ApiError::Json(
        StatusCode::BAD_REQUEST,
        json!({
            "message": "challenge_required",
            "challenge": {
                "url": format!("{base}{path}?next={api_path}"),
                "api_path": path,
                "hide_webview_header": true,
                "lock": true,
                "logout": false,
                "native_flow": true,
                "flow_render_type": 0,
            },
            "status": "fail",
            "error_type": "checkpoint_challenge_required",
        }),
    )
}

fn feedback_required() -> ApiError {
    ApiError::Json(
        StatusCode::BAD_REQUEST,
        json!({
            "message": "feedback_required",
            "spam": true,
            "feedback_title": "Try Again Later",
            "feedback_message": "We limit how often you can do certain things on Instagram to protect our community. Tell us if you think we made a mistake.",
            "feedback_url": "repute/report_problem/scraping/",
            "feedback_appeal_label": "Tell us",
            "feedback_ignore_label": "OK",
            "feedback_action": "report_problem",
            "status": "fail",
        }),
    )
}

/// The "Please wait a few minutes" 429.
pub(crate) const PLEASE_WAIT: &str = "Please wait a few minutes before you try again.";

fn base_url(sb: &Sandbox, headers: &HeaderMap) -> String {
    sb.base_url().unwrap_or_else(|| {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1");
        format!("http://{host}")
    })
}

async fn dispatch(
    State(sb): State<Arc<Sandbox>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let rest = uri.path().strip_prefix("/api/v1/").unwrap_or_default();
    let Some(endpoint) = Endpoint::parse(&method, rest) else {
        sb.record_request(None, "private_unknown", RequestOutcome::Error);
        return ApiError::fail(StatusCode::NOT_FOUND, "Page not found").into_response();
    };
    let class = endpoint.class();
    match gate(&sb, &endpoint, &uri, &headers, &body).await {
        Err((account, err)) => {
            let outcome = if err.status() == StatusCode::TOO_MANY_REQUESTS {
                RequestOutcome::Refused
            } else {
                RequestOutcome::Error
            };
            sb.record_request(account.as_ref().map(|a| a.id.as_str()), class, outcome);
            if let (Some(a), Endpoint::Broadcast(kind)) = (&account, &endpoint) {
                let (msg, now) = (err.message(), sb.now_us());
                let id = a.id.clone();
                let kind = kind.clone();
                sb.write(|w| {
                    w.record_sent(
                        &id,
                        SentRecord {
                            at_us: now,
                            surface: "private".to_owned(),
                            endpoint: format!("broadcast/{kind}"),
                            thread_id: None,
                            item_id: None,
                            recipient: None,
                            text: None,
                            accepted: false,
                            error: Some(msg),
                        },
                    );
                })
                .await;
            }
            let retry = err.status() == StatusCode::TOO_MANY_REQUESTS;
            let mut r = err.into_response();
            if retry {
                r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
            }
            r
        }
        Ok(ctx) => {
            let account_id = ctx.account.id.clone();
            let pk = ctx.account.pk.clone();
            let request_no = ctx.request_no;
            let drifting = ctx.drift;
            let latency = std::time::Duration::from_millis(ctx.account.latency_ms);
            let drop_writes = ctx.account.drop_writes;
            if drop_writes && endpoint.is_write() {
                // Lost in flight: nothing applied, the answer comes late if at all.
                tokio::time::sleep(latency).await;
                sb.record_request(Some(&account_id), class, RequestOutcome::Error);
                return ApiError::fail(StatusCode::BAD_GATEWAY, "Bad Gateway").into_response();
            }
            let mut result = handlers::handle(&sb, &endpoint, ctx).await;
            // The request is applied; a slow network delays only the answer,
            // so a client that gives up meanwhile cannot know what happened.
            if !latency.is_zero() && !drop_writes {
                tokio::time::sleep(latency).await;
            }
            if drifting && let Ok(body) = &mut result {
                *body = drifted(body);
            }
            let (mut response, outcome) = match result {
                Ok(JsonBody(bytes)) => (json_response(StatusCode::OK, bytes), RequestOutcome::Ok),
                Err(e) => (e.into_response(), RequestOutcome::Error),
            };
            sb.record_request(Some(&account_id), class, outcome);
            decorate(&sb, &mut response, &pk, request_no);
            response
        }
    }
}

/// Authenticates and applies faults; on success returns the handler context.
async fn gate(
    sb: &Arc<Sandbox>,
    endpoint: &Endpoint,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Ctx, (Option<Viewer>, ApiError)> {
    let cookies = parse_cookies(headers);
    let is_post = endpoint_is_post(endpoint);
    if is_post {
        let is_json = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.to_ascii_lowercase().contains("json"));
        let trimmed = body.iter().find(|b| !b.is_ascii_whitespace());
        if is_json || matches!(trimmed, Some(b'{' | b'[')) {
            return Err((None, ApiError::bad("Invalid request: expected a form-encoded body")));
        }
        let header_token =
            headers.get("x-csrftoken").and_then(|v| v.to_str().ok()).unwrap_or_default();
        match cookies.get("csrftoken") {
            Some(c) if !c.is_empty() && c == header_token => {}
            _ => return Err((None, csrf_failed())),
        }
    } else if cookies.get("csrftoken").is_none_or(String::is_empty) {
        return Err((None, csrf_failed()));
    }
    let session = cookies.get("sessionid").cloned().unwrap_or_default();
    let ds_user_id = cookies.get("ds_user_id").cloned().unwrap_or_default();
    let account = sb
        .read(|w| w.account_by_session(&session).map(Viewer::of))
        .await
        .filter(|a| !session.is_empty() && a.pk == ds_user_id);
    let Some(account) = account else {
        return Err((None, login_required()));
    };
    let fault = account.fault;
    let write = endpoint.is_write();
    let err = match fault {
        FaultMode::LoginRequired => Some(login_required()),
        FaultMode::Challenge => Some(challenge(&base_url(sb, headers), &account, uri.path())),
        FaultMode::Feedback if write => Some(feedback_required()),
        FaultMode::Ratelimit => Some(ApiError::fail(StatusCode::TOO_MANY_REQUESTS, PLEASE_WAIT)),
        FaultMode::Html => {
            Some(ApiError::Html(StatusCode::OK, crate::login::login_page_html(None)))
        }
        FaultMode::NotFound => Some(ApiError::Text(StatusCode::NOT_FOUND, "Not Found")),
        _ => None,
    };
    if let Some(e) = err {
        return Err((Some(account), e));
    }
    let mut params = uri.query().map(|q| parse_form(q.as_bytes())).unwrap_or_default();
    if is_post {
        params.extend(parse_form(body));
    }
    let request_no = sb.request_count(&account.id) + 1;
    Ok(Ctx {
        flapping: fault == FaultMode::Flapping,
        drift: fault == FaultMode::Drift,
        account,
        params,
        request_no,
    })
}

fn endpoint_is_post(e: &Endpoint) -> bool {
    e.is_write() || *e == Endpoint::FetchPresence
}

/// Optional fields the `drift` fault drops wherever they appear.
const DRIFT_DROPPED: &[&str] = &[
    "full_name",
    "profile_pic_url",
    "is_verified",
    "friendship_status",
    "thread_title",
    "last_seen_at",
    "has_newer",
    "newest_cursor",
    "show_forward_attribution",
    "last_permanent_item",
    "inviter",
    "unseen_count_ts",
];

/// `body` reshaped by [`drift`] (the `drift` fault; a rare path, so it
/// may go through a `Value`).
fn drifted(body: &JsonBody) -> JsonBody {
    match serde_json::from_slice::<Value>(&body.0) {
        Ok(mut v) => {
            drift(&mut v);
            JsonBody(Bytes::from(v.to_string()))
        }
        Err(_) => body.clone(),
    }
}

/// Reshapes a successful body the way Instagram's silent API changes do:
/// optional fields vanish and unknown ones appear (`drift` fault).
fn drift(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for key in DRIFT_DROPPED {
                map.shift_remove(*key);
            }
            for child in map.values_mut() {
                drift(child);
            }
            map.insert(
                "igd_unannounced_field".to_owned(),
                json!({"rollout": "h2", "enabled": true}),
            );
        }
        Value::Array(items) => items.iter_mut().for_each(drift),
        _ => {}
    }
}

/// The `x-ig-set-www-claim` value of each account for its current epoch
/// of ten requests: derived from the pk and the epoch alone, so it is
/// hashed once per epoch rather than on every request.
#[derive(Debug, Default)]
struct ClaimCache(std::sync::Mutex<HashMap<String, (u64, HeaderValue)>>);

impl ClaimCache {
    fn claim(&self, pk: &str, epoch: u64) -> Option<HeaderValue> {
        let mut map = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((e, v)) = map.get(pk)
            && *e == epoch
        {
            return Some(v.clone());
        }
        let v = HeaderValue::from_str(&format!("hmac.AR{}", pk_hash(pk, epoch))).ok()?;
        map.insert(pk.to_owned(), (epoch, v.clone()));
        Some(v)
    }
}

/// Adds the claim headers and the periodic cookie rotations.
fn decorate(sb: &Sandbox, response: &mut Response, pk: &str, request_no: u64) {
    let h = response.headers_mut();
    if let Some(v) = sb.extension::<ClaimCache>().claim(pk, request_no / 10) {
        h.insert("x-ig-set-www-claim", v);
    }
    let cfg = sb.config();
    let rotate_rur = cfg.rotate_rur_every > 0 && request_no.is_multiple_of(cfg.rotate_rur_every);
    let rotate_csrf = cfg.rotate_csrf_every > 0 && request_no.is_multiple_of(cfg.rotate_csrf_every);
    if !rotate_rur && !rotate_csrf {
        return;
    }
    // Derived from the account and the request number: no lock on the world.
    let expires = sb.now_us() / 1_000_000 + 31_536_000;
    let rur = format!("\"NAO\\054{pk}\\054{expires}:01f7{}\"", pk_hash(pk, request_no));
    let csrf = rotate_csrf.then(|| pk_hash(&format!("csrf:{pk}"), request_no)[..32].to_owned());
    let h = response.headers_mut();
    if rotate_rur {
        if let Ok(v) = HeaderValue::from_str(&rur) {
            h.insert("ig-set-ig-u-rur", v);
        }
        let cookie = format!("rur={rur}; Path=/; HttpOnly; SameSite=Lax; Max-Age=31536000");
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            h.append(header::SET_COOKIE, v);
        }
    }
    if let Some(c) = csrf {
        let cookie = format!("csrftoken={c}; Path=/; SameSite=Lax; Max-Age=31449600");
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            h.append(header::SET_COOKIE, v);
        }
    }
}

fn pk_hash(pk: &str, epoch: u64) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(format!("{pk}:{epoch}").as_bytes());
    hex::encode(&digest[..24])
}
