//! The official Instagram API (Graph): Send, Conversations, User Profile,
//! messenger_profile and handover APIs with their rate limits.
//!
//! Both hosts are served from the same origin: `graph.instagram.com` paths
//! with an Instagram User token (`/me/…`, `/{ig-id}/…`) and
//! `graph.facebook.com` paths with a Page token (`/{page-id}/…`, `/me/…`).
//! Every path accepts an optional `/vNN.N` prefix; the token comes from
//! `Authorization: Bearer …` or `access_token` (query or body). Bodies may be
//! JSON or forms whose object fields hold JSON.
//!
//! | Method | Path | What |
//! |---|---|---|
//! | POST | `/{self}/messages` | Send API ([`send`]) |
//! | GET | `/{self}/conversations?platform=instagram[&user_id][&limit][&after\|before][&fields]` | Conversations |
//! | GET | `/{conversation-id}[?fields=messages,participants,updated_time]`, `/{conversation-id}/messages` | One conversation |
//! | GET | `/{message-id}?fields=id,created_time,from,to,message,attachments,reactions,shares,story` | Message detail (20 most recent only) |
//! | GET | `/{igsid}?fields=name,username,profile_pic,…` | User Profile (consent required) |
//! | GET | `/{self}?fields=id,user_id,username,name,…` | The account itself (`/me` with an Instagram User token: in a `data` envelope, as documented; a Page token: the Page, `id,name,instagram_business_account{id,username}`) |
//! | GET/POST/DELETE | `/{self}/messenger_profile` | Ice breakers (read back in the format they were set in), persistent menu; changes answer `{success: true}` (Instagram User token) or `{result: "success"}` (Page token) |
//! | POST | `/{page-id}/message_attachments` | Reusable attachment (Page token) |
//! | POST | `/me/pass_thread_control`, `/me/take_thread_control`, `/me/request_thread_control` | Handover (Page token) |
//! | GET | `/me/thread_owner?recipient=`, `/me/secondary_receivers` | Handover (Page token) |
//! | GET/POST | `/{self}/subscribed_apps` | Webhook subscription of the account |
//!
//! `{self}` is `me`, the account's Instagram id or (Page tokens) its Page id.
//! Control routes live under `/_sandbox/graph/` (see [`control_routes`]).

pub mod error;
pub mod ext;
pub mod send;

mod conversations;
mod handover;
mod messages;
mod profile;

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use serde_json::{Map, Value, json};

use self::error::GraphError;
use self::ext::{RateClass, Usage, ext};
use crate::oauth::{self, TokenKind};
use crate::state::{Account, Micros, RequestOutcome, Sandbox, SandboxEvent, World};

/// Which login flavour a token belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// Instagram Login (`graph.instagram.com`, Instagram User token).
    Instagram,
    /// Facebook Login (`graph.facebook.com`, Page token).
    Page,
}

/// The authenticated caller of a Graph request.
#[derive(Clone)]
pub struct Caller {
    /// The business account.
    pub account_id: String,
    /// The app the token belongs to.
    pub app_id: String,
    /// Token flavour.
    pub flavour: Flavour,
    /// Granted scopes (`None`: the account's built-in token, everything granted).
    pub scopes: Option<Vec<String>>,
    /// The raw token, used to build `paging.next` links.
    token: String,
}

impl std::fmt::Debug for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token never reaches logs.
        f.debug_struct("Caller")
            .field("account_id", &self.account_id)
            .field("app_id", &self.app_id)
            .field("flavour", &self.flavour)
            .finish_non_exhaustive()
    }
}

impl Caller {
    /// Whether the caller may use the messaging APIs.
    fn can_message(&self) -> bool {
        self.scopes.as_ref().is_none_or(|s| {
            s.iter().any(|x| {
                x == "instagram_business_manage_messages" || x == "instagram_manage_messages"
            })
        })
    }
}

/// One parsed Graph request.
pub(crate) struct Req {
    pub method: Method,
    /// The path without the version prefix, e.g. `/me/messages`.
    pub path: String,
    /// The version prefix as sent (`v21.0`), if any.
    pub version: Option<String>,
    pub node: String,
    pub edge: Option<String>,
    /// Query and body parameters merged (body wins).
    pub params: Map<String, Value>,
    /// The file parts of a `multipart/form-data` body, by field name.
    pub files: HashMap<String, FilePart>,
}

/// The file parts of a body, by field name.
type FileParts = HashMap<String, FilePart>;

/// One file part of a `multipart/form-data` body.
#[derive(Debug, Clone)]
pub(crate) struct FilePart {
    /// The part's `filename`.
    pub filename: String,
    /// The part's `Content-Type`.
    pub content_type: Option<String>,
    /// The bytes.
    pub bytes: Bytes,
}

impl Req {
    /// A string parameter.
    pub fn param(&self, key: &str) -> Option<String> {
        match self.params.get(key)? {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        }
    }
}

fn is_version(seg: &str) -> bool {
    let Some(rest) = seg.strip_prefix('v') else {
        return false;
    };
    let mut parts = rest.split('.');
    matches!(
        (parts.next(), parts.next(), parts.next()),
        (Some(a), Some(b), None)
            if !a.is_empty() && !b.is_empty()
                && a.chars().all(|c| c.is_ascii_digit())
                && b.chars().all(|c| c.is_ascii_digit())
    )
}

/// The text fields (as [`send::form_to_json`] reads them) and the file parts
/// of a `multipart/form-data` body.
fn parse_multipart(
    boundary: &str,
    body: &Bytes,
) -> Result<(Map<String, Value>, FileParts), GraphError> {
    let malformed = || GraphError::invalid_param("Malformed multipart/form-data body");
    let delim = format!("--{boundary}");
    let find = |from: usize, needle: &[u8]| {
        body.get(from..)?.windows(needle.len()).position(|w| w == needle).map(|p| p + from)
    };
    let mut at = find(0, delim.as_bytes()).ok_or_else(malformed)? + delim.len();
    let (mut fields, mut files) = (Vec::new(), HashMap::new());
    while body.get(at..at + 2) == Some(b"\r\n") {
        let head_end = find(at, b"\r\n\r\n").ok_or_else(malformed)?;
        let head = String::from_utf8_lossy(&body[at + 2..head_end]).into_owned();
        let end = find(head_end, format!("\r\n{delim}").as_bytes()).ok_or_else(malformed)?;
        let data = body.slice(head_end + 4..end);
        let mut disposition = None;
        let mut content_type = None;
        for line in head.split("\r\n") {
            if let Some((k, v)) = line.split_once(':') {
                match k.trim().to_ascii_lowercase().as_str() {
                    "content-disposition" => disposition = Some(v.trim().to_owned()),
                    "content-type" => content_type = Some(v.trim().to_owned()),
                    _ => {}
                }
            }
        }
        let disposition = disposition.ok_or_else(malformed)?;
        let attr = |key: &str| {
            disposition.split(';').map(str::trim).find_map(|a| {
                a.strip_prefix(key)
                    .and_then(|r| r.strip_prefix("=\""))
                    .and_then(|r| r.strip_suffix('"'))
                    .map(str::to_owned)
            })
        };
        let name = attr("name").ok_or_else(malformed)?;
        match attr("filename") {
            Some(filename) => {
                files.insert(name, FilePart { filename, content_type, bytes: data });
            }
            None => fields.push((name, String::from_utf8_lossy(&data).into_owned())),
        }
        at = end + 2 + delim.len();
    }
    if body.get(at..at + 2) != Some(b"--") {
        return Err(malformed());
    }
    let fields = match send::form_to_json(fields) {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    Ok((fields, files))
}

fn parse_body(headers: &HeaderMap, body: &Bytes) -> Result<Map<String, Value>, GraphError> {
    if body.is_empty() {
        return Ok(Map::new());
    }
    let ctype = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let looks_json = ctype.contains("json") || body.first() == Some(&b'{');
    if looks_json {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(m)) => Ok(m),
            _ => Err(GraphError::invalid_param("Invalid JSON for postData")),
        }
    } else {
        let pairs = form_urlencoded::parse(body).map(|(k, v)| (k.into_owned(), v.into_owned()));
        match send::form_to_json(pairs) {
            Value::Object(m) => Ok(m),
            _ => Ok(Map::new()),
        }
    }
}

fn parse_req(
    method: Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Req, GraphError> {
    let mut segs: Vec<String> =
        uri.path().split('/').filter(|s| !s.is_empty()).map(percent_decode).collect();
    let version =
        if segs.first().is_some_and(|s| is_version(s)) { Some(segs.remove(0)) } else { None };
    if segs.is_empty() || segs.len() > 2 {
        return Err(GraphError::unknown_path(&segs.join("/")));
    }
    let query = uri.query().unwrap_or_default();
    let pairs =
        form_urlencoded::parse(query.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned()));
    let mut params = match send::form_to_json(pairs) {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    let ctype = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let mut files = HashMap::new();
    let fields = match ctype.strip_prefix("multipart/form-data; boundary=") {
        Some(boundary) => {
            let (fields, parts) = parse_multipart(boundary.trim_matches('"'), body)?;
            files = parts;
            fields
        }
        None => parse_body(headers, body)?,
    };
    for (k, v) in fields {
        params.insert(k, v);
    }
    let node = segs.remove(0);
    let edge = segs.pop();
    let path = match &edge {
        Some(e) => format!("/{node}/{e}"),
        None => format!("/{node}"),
    };
    Ok(Req { method, path, version, node, edge, params, files })
}

fn percent_decode(raw: &str) -> String {
    form_urlencoded::parse(format!("x={raw}").as_bytes())
        .next()
        .map_or_else(|| raw.to_owned(), |(_, v)| v.into_owned())
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let raw = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = raw.trim().split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("oauth") {
        Some(token.trim().to_owned())
    } else {
        None
    }
}

/// The `token_expired` fault: a token issued before the fault was set (an
/// account's built-in token always is) is refused as expired.
async fn refused_as_expired(
    sb: &Sandbox,
    account_id: &str,
    issued_us: Option<crate::state::Micros>,
) -> Result<(), GraphError> {
    let cutoff = sb
        .read(|w| {
            w.account(account_id)
                .ok()
                .filter(|a| a.fault == crate::state::FaultMode::TokenExpired)
                .and_then(|a| a.tokens_expired_before_us)
        })
        .await;
    match cutoff {
        Some(cut) if issued_us.is_none_or(|i| i < cut) => {
            let at =
                |us| chrono::DateTime::<chrono::Utc>::from_timestamp_micros(us).unwrap_or_default();
            Err(GraphError::token_expired(at(cut), at(sb.now_us())))
        }
        _ => Ok(()),
    }
}

/// Checks the token of a request against the OAuth store (virtual clock) and
/// the accounts' built-in tokens.
///
/// # Errors
/// 2500 without a token, 190/467 for an unknown one, 190/463 for an expired one.
pub async fn authenticate(sb: &Sandbox, token: Option<&str>) -> Result<Caller, GraphError> {
    let token = token.filter(|t| !t.is_empty()).ok_or_else(GraphError::token_missing)?;
    if let Some(info) = oauth::store(sb).check(token, sb.now_us())? {
        refused_as_expired(sb, &info.account_id, Some(info.issued_us)).await?;
        return Ok(Caller {
            account_id: info.account_id,
            app_id: info.app_id,
            flavour: if info.kind == TokenKind::Page { Flavour::Page } else { Flavour::Instagram },
            scopes: Some(info.scopes),
            token: token.to_owned(),
        });
    }
    let found = sb
        .read(|w| {
            w.account_by_token(token).and_then(|a| {
                a.graph.as_ref().map(|g| {
                    let flavour =
                        if g.page_token == token { Flavour::Page } else { Flavour::Instagram };
                    (a.id.clone(), flavour)
                })
            })
        })
        .await;
    if let Some((account_id, _)) = &found {
        refused_as_expired(sb, account_id, None).await?;
    }
    match found {
        Some((account_id, flavour)) => Ok(Caller {
            account_id,
            app_id: oauth::SANDBOX_APP_ID.to_owned(),
            flavour,
            scopes: None,
            token: token.to_owned(),
        }),
        None => Err(GraphError::token_invalid()),
    }
}

/// Whether `node` designates the caller's own account.
fn is_self(w: &World, caller: &Caller, node: &str) -> bool {
    if node == "me" || node == caller.account_id {
        return true;
    }
    caller.flavour == Flavour::Page
        && w.accounts
            .get(&caller.account_id)
            .and_then(|a| a.graph.as_ref())
            .is_some_and(|g| g.page_id == node)
}

/// Graph's time format: `2022-07-12T19:11:07+0000`.
#[must_use]
pub fn graph_time(us: Micros) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_micros(us)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%z")
        .to_string()
}

/// One requested field, with its nested field list (`messages{id,message}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Field {
    pub name: String,
    pub sub: Option<Vec<Field>>,
}

/// Parses Graph's `fields` syntax: `a,b{c,d},e`.
pub(crate) fn parse_fields(raw: &str) -> Vec<Field> {
    fn parse_list(chars: &[char], pos: &mut usize) -> Vec<Field> {
        let mut out = Vec::new();
        let mut name = String::new();
        while *pos < chars.len() {
            let c = chars[*pos];
            *pos += 1;
            match c {
                ',' => {
                    if !name.trim().is_empty() {
                        out.push(Field { name: name.trim().to_owned(), sub: None });
                    }
                    name.clear();
                }
                '{' => {
                    let sub = parse_list(chars, pos);
                    out.push(Field { name: name.trim().to_owned(), sub: Some(sub) });
                    name.clear();
                    // Skip up to the next separator.
                    while *pos < chars.len() && chars[*pos] != ',' && chars[*pos] != '}' {
                        *pos += 1;
                    }
                    if *pos < chars.len() && chars[*pos] == ',' {
                        *pos += 1;
                    }
                }
                '}' => break,
                other => name.push(other),
            }
        }
        if !name.trim().is_empty() {
            out.push(Field { name: name.trim().to_owned(), sub: None });
        }
        out
    }
    let chars: Vec<char> = raw.chars().collect();
    let mut pos = 0;
    parse_list(&chars, &mut pos)
        .into_iter()
        .map(|f| {
            // `messages.limit(5)` style modifiers are accepted and ignored.
            let name = f.name.split('.').next().unwrap_or_default().to_owned();
            Field { name, sub: f.sub }
        })
        .collect()
}

/// The fields of a request, or `defaults`.
pub(crate) fn requested_fields(req: &Req, defaults: &str) -> Vec<Field> {
    match req.param("fields").filter(|f| !f.trim().is_empty()) {
        Some(f) => parse_fields(&f),
        None => parse_fields(defaults),
    }
}

pub(crate) fn nonexisting_field(field: &str, node_type: &str) -> GraphError {
    GraphError::invalid_param(format!(
        "Tried accessing nonexisting field ({field}) on node type ({node_type})"
    ))
}

/// The Graph id of participant `pk` seen from `account`.
pub(crate) fn graph_user(w: &World, account: &Account, pk: &str) -> Value {
    if pk == account.pk {
        return json!({"username": account.username, "id": account.id});
    }
    match w.users.get(pk) {
        Some(u) => json!({"username": u.username, "id": u.igsid}),
        None => json!({"id": pk}),
    }
}

/// Adds Meta's usage headers for a rate class.
fn usage_headers(resp: &mut Response, account: &str, usage: Usage) {
    let app = json!({"call_count": usage.percent, "total_cputime": usage.percent / 4, "total_time": usage.percent / 4});
    let regain_minutes = (usage.regain_seconds / 60.0).ceil();
    let buc = json!({
        account: [{
            "type": "instagram",
            "call_count": usage.percent,
            "total_cputime": usage.percent / 4,
            "total_time": usage.percent / 4,
            "estimated_time_to_regain_access": regain_minutes,
        }]
    });
    if let Ok(v) = HeaderValue::from_str(&app.to_string()) {
        resp.headers_mut().insert("x-app-usage", v);
    }
    if let Ok(v) = HeaderValue::from_str(&buc.to_string()) {
        resp.headers_mut().insert("x-business-use-case-usage", v);
    }
}

/// Takes a rate token; on refusal returns the throttling error response.
pub(crate) fn rate_check(
    sb: &Sandbox,
    caller: &Caller,
    class: RateClass,
) -> Result<Usage, Response> {
    let usage = ext(sb).take(&caller.account_id, class);
    if usage.allowed {
        return Ok(usage);
    }
    sb.record_request(Some(&caller.account_id), class.stats_name(), RequestOutcome::Refused);
    let code = match (class, caller.flavour) {
        (RateClass::Conversations, Flavour::Page) => 32,
        (RateClass::Conversations, Flavour::Instagram) => 17,
        _ => 613,
    };
    let mut resp = GraphError::throttled(code).into_response();
    usage_headers(&mut resp, &caller.account_id, usage);
    Err(resp)
}

/// Finishes a rate-limited response: stats and usage headers.
pub(crate) fn finish(
    sb: &Sandbox,
    caller: &Caller,
    class: RateClass,
    usage: Usage,
    result: Result<Value, GraphError>,
) -> Response {
    let outcome = if result.is_ok() { RequestOutcome::Ok } else { RequestOutcome::Error };
    sb.record_request(Some(&caller.account_id), class.stats_name(), outcome);
    let mut resp = match result {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => e.into_response(),
    };
    usage_headers(&mut resp, &caller.account_id, usage);
    resp
}

/// Routes of the Graph API surface (any path of one or two segments, with an
/// optional version prefix) and its control endpoints.
pub fn routes() -> Router<Arc<Sandbox>> {
    Router::new()
        .route("/{a}", any(graph_entry))
        .route("/{a}/{b}", any(graph_entry))
        .route("/{a}/{b}/{c}", any(graph_entry))
        // Attachment uploads carry files of up to 25 MB.
        .layer(axum::extract::DefaultBodyLimit::max(36 * 1024 * 1024))
        .merge(control_routes())
}

async fn graph_entry(
    State(sb): State<Arc<Sandbox>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match dispatch(&sb, method, &uri, &headers, &body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn dispatch(
    sb: &Arc<Sandbox>,
    method: Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Response, GraphError> {
    let req = parse_req(method, uri, headers, body)?;
    let token = bearer(headers).or_else(|| req.param("access_token"));
    let caller = authenticate(sb, token.as_deref()).await?;
    let (latency, drop_writes) = sb
        .read(|w| {
            w.accounts.get(&caller.account_id).map_or((0, false), |a| (a.latency_ms, a.drop_writes))
        })
        .await;
    if drop_writes && req.method != Method::GET && req.method != Method::HEAD {
        // Lost in flight: nothing applied, the answer comes late if at all.
        tokio::time::sleep(std::time::Duration::from_millis(latency)).await;
        return Ok((StatusCode::BAD_GATEWAY, "Bad Gateway").into_response());
    }
    // The latency fault holds the answer after the request was applied.
    let answer = route(sb, req, caller).await;
    if latency > 0 && !drop_writes {
        tokio::time::sleep(std::time::Duration::from_millis(latency)).await;
    }
    answer
}

async fn route(sb: &Arc<Sandbox>, req: Req, caller: Caller) -> Result<Response, GraphError> {
    let own = sb.read(|w| is_self(w, &caller, &req.node)).await;
    let m = req.method.clone();
    let edge = req.edge.clone();
    if own {
        let need_messaging = matches!(
            edge.as_deref(),
            Some(
                "messages"
                    | "conversations"
                    | "pass_thread_control"
                    | "take_thread_control"
                    | "request_thread_control"
                    | "thread_owner"
                    | "secondary_receivers"
            )
        );
        if need_messaging && !caller.can_message() {
            return Err(GraphError::permission(
                "Application does not have permission for this action",
            ));
        }
        return match (m, edge.as_deref()) {
            (Method::POST, Some("messages")) => Ok(messages::send(sb, &caller, &req).await),
            (Method::GET, Some("conversations")) => {
                Ok(conversations::list(sb, &caller, &req).await)
            }
            (Method::GET | Method::POST | Method::DELETE, Some("messenger_profile")) => {
                profile::messenger_profile(sb, &caller, &req).await.map(IntoResponse::into_response)
            }
            (Method::POST, Some("message_attachments")) => {
                handover::upload_attachment(sb, &caller, &req)
                    .await
                    .map(IntoResponse::into_response)
            }
            (
                _,
                Some(
                    e @ ("pass_thread_control"
                    | "take_thread_control"
                    | "request_thread_control"
                    | "release_thread_control"
                    | "thread_owner"
                    | "secondary_receivers"),
                ),
            ) => handover::handle(sb, &caller, &req, e).await.map(IntoResponse::into_response),
            (Method::GET | Method::POST | Method::DELETE, Some("subscribed_apps")) => {
                Ok(subscribed_apps(&req).into_response())
            }
            (Method::GET, None) => {
                profile::account_node(sb, &caller, &req).await.map(IntoResponse::into_response)
            }
            (_, Some(e)) => Err(GraphError::unknown_path(e)),
            (m, None) => Err(GraphError::unknown_object(&req.node, &m.as_str().to_lowercase())),
        };
    }
    match (req.method.clone(), edge.as_deref()) {
        (Method::GET, None | Some("messages")) => {
            if !caller.can_message() {
                return Err(GraphError::permission(
                    "Application does not have permission for this action",
                ));
            }
            let kind = sb.read(|w| node_kind(w, &caller, &req.node)).await;
            match (kind, edge.as_deref()) {
                (NodeKind::Conversation, _) => {
                    Ok(conversations::conversation(sb, &caller, &req).await)
                }
                (NodeKind::Message, None) => Ok(conversations::message(sb, &caller, &req).await),
                (NodeKind::User, None) => {
                    profile::user_profile(sb, &caller, &req).await.map(IntoResponse::into_response)
                }
                _ => Err(GraphError::unknown_object(&req.node, "get")),
            }
        }
        (m, _) => Err(GraphError::unknown_object(&req.node, &m.as_str().to_lowercase())),
    }
}

fn subscribed_apps(req: &Req) -> axum::Json<Value> {
    if req.method == Method::GET {
        axum::Json(
            json!({"data": [{"id": oauth::SANDBOX_APP_ID, "subscribed_fields": ["messages"]}]}),
        )
    } else {
        axum::Json(json!({"success": true}))
    }
}

#[derive(Debug, PartialEq, Eq)]
enum NodeKind {
    Conversation,
    Message,
    User,
    Unknown,
}

fn node_kind(w: &World, caller: &Caller, node: &str) -> NodeKind {
    let threads = w.threads.values().filter(|t| t.account == caller.account_id && !t.is_group);
    for t in threads {
        if t.graph_id == node {
            return NodeKind::Conversation;
        }
        if t.items.iter().any(|i| i.mid == node) {
            return NodeKind::Message;
        }
    }
    if w.users.values().any(|u| u.igsid == node && !u.is_account) {
        return NodeKind::User;
    }
    NodeKind::Unknown
}

/// Keeps Graph-side state in step with domain events: comments become
/// private-reply targets and their media the account's posts.
pub async fn observe_event(sb: &Sandbox, event: &SandboxEvent) {
    if let SandboxEvent::Comment { account, sender, comment_id, media_id, timestamp_us, .. } = event
    {
        let ext = ext(sb);
        ext.add_post(account, media_id);
        ext.lock().comments.insert(
            comment_id.clone(),
            ext::CommentRef {
                account_id: account.clone(),
                sender_pk: sender.clone(),
                at_us: *timestamp_us,
                replied: false,
            },
        );
    }
}

/// Control routes of the Graph surface:
///
/// - `GET /_sandbox/graph/rate_limits`, `POST /_sandbox/graph/rate_limits`
///   `{"send_text_per_sec","send_audio_video_per_sec","conversations_per_sec","private_replies_per_hour"}`
///   (partial updates allowed);
/// - `GET|POST /_sandbox/graph/accounts/{id}/posts` (`POST {"id"?}` adds a post, generated when absent);
/// - `POST /_sandbox/graph/customers/{id}/availability {"available":bool}` (pk or IGSID);
/// - `POST /_sandbox/graph/accounts/{id}/receivers {"primary_app_id","secondary_app_ids":[…]}`;
/// - `GET /_sandbox/graph/accounts/{id}/messenger_profile`.
pub fn control_routes() -> Router<Arc<Sandbox>> {
    Router::new()
        .route("/_sandbox/graph/rate_limits", get(get_limits).post(set_limits))
        .route("/_sandbox/graph/accounts/{id}/posts", get(list_posts).post(add_post))
        .route("/_sandbox/graph/customers/{id}/availability", post(set_availability))
        .route("/_sandbox/graph/accounts/{id}/receivers", post(set_receivers).get(get_receivers))
        .route("/_sandbox/graph/accounts/{id}/messenger_profile", get(get_profile))
}

fn control_error(status: axum::http::StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({"error": message.into()}))).into_response()
}

async fn get_limits(State(sb): State<Arc<Sandbox>>) -> axum::Json<Value> {
    axum::Json(json!(ext(&sb).limits()))
}

async fn set_limits(
    State(sb): State<Arc<Sandbox>>,
    body: Result<axum::Json<Value>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let axum::Json(body) = match body {
        Ok(b) => b,
        Err(e) => return control_error(axum::http::StatusCode::BAD_REQUEST, e.body_text()),
    };
    let ext = ext(&sb);
    let mut limits = ext.limits();
    for (key, slot) in [
        ("send_text_per_sec", &mut limits.send_text_per_sec),
        ("send_audio_video_per_sec", &mut limits.send_audio_video_per_sec),
        ("conversations_per_sec", &mut limits.conversations_per_sec),
        ("private_replies_per_hour", &mut limits.private_replies_per_hour),
    ] {
        if let Some(v) = body.get(key) {
            match v.as_f64() {
                Some(x) if x > 0.0 && x.is_finite() => *slot = x,
                _ => {
                    return control_error(
                        axum::http::StatusCode::BAD_REQUEST,
                        format!("{key} must be a positive number"),
                    );
                }
            }
        }
    }
    ext.set_limits(limits);
    axum::Json(json!(limits)).into_response()
}

async fn business_account(sb: &Sandbox, id: &str) -> Option<String> {
    sb.read(|w| {
        w.account(id)
            .ok()
            .filter(|a| a.kind == crate::state::AccountKind::Business)
            .map(|a| a.id.clone())
    })
    .await
}

async fn list_posts(
    State(sb): State<Arc<Sandbox>>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Response {
    if business_account(&sb, &id).await.is_none() {
        return control_error(
            axum::http::StatusCode::NOT_FOUND,
            format!("no business account {id}"),
        );
    }
    axum::Json(json!({"data": ext(&sb).posts(&id).into_iter().map(|p| json!({"id": p})).collect::<Vec<_>>()})).into_response()
}

async fn add_post(
    State(sb): State<Arc<Sandbox>>,
    axum::extract::Path(id): axum::extract::Path<String>,
    body: Option<axum::Json<Value>>,
) -> Response {
    if business_account(&sb, &id).await.is_none() {
        return control_error(
            axum::http::StatusCode::NOT_FOUND,
            format!("no business account {id}"),
        );
    }
    let ext = ext(&sb);
    let post = body
        .as_ref()
        .and_then(|b| b.get("id"))
        .and_then(|v| v.as_str().map(str::to_owned).or_else(|| v.as_u64().map(|n| n.to_string())))
        .unwrap_or_else(|| ext.fresh_id("179"));
    ext.add_post(&id, &post);
    (axum::http::StatusCode::CREATED, axum::Json(json!({"id": post}))).into_response()
}

async fn set_availability(
    State(sb): State<Arc<Sandbox>>,
    axum::extract::Path(id): axum::extract::Path<String>,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let Some(available) = body.get("available").and_then(Value::as_bool) else {
        return control_error(axum::http::StatusCode::BAD_REQUEST, "available must be a boolean");
    };
    let pk = sb.read(|w| w.user(&id).filter(|u| !u.is_account).map(|u| u.pk.clone())).await;
    let Some(pk) = pk else {
        return control_error(axum::http::StatusCode::NOT_FOUND, format!("no customer {id}"));
    };
    ext(&sb).set_unavailable(&pk, !available);
    axum::Json(json!({"customer": pk, "available": available})).into_response()
}

async fn set_receivers(
    State(sb): State<Arc<Sandbox>>,
    axum::extract::Path(id): axum::extract::Path<String>,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    if business_account(&sb, &id).await.is_none() {
        return control_error(
            axum::http::StatusCode::NOT_FOUND,
            format!("no business account {id}"),
        );
    }
    let Some(primary) = body.get("primary_app_id").and_then(Value::as_str) else {
        return control_error(axum::http::StatusCode::BAD_REQUEST, "primary_app_id is required");
    };
    let mut secondary: Vec<String> = body
        .get("secondary_app_ids")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default();
    if !secondary.iter().any(|s| s == ext::PAGE_INBOX_APP_ID) {
        secondary.push(ext::PAGE_INBOX_APP_ID.to_owned());
    }
    let receivers = ext::Receivers { primary: primary.to_owned(), secondary };
    let out =
        json!({"primary_app_id": receivers.primary, "secondary_app_ids": receivers.secondary});
    ext(&sb).lock().receivers.insert(id, receivers);
    axum::Json(out).into_response()
}

async fn get_profile(
    State(sb): State<Arc<Sandbox>>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> axum::Json<Value> {
    let profile = ext(&sb).lock().profiles.get(&id).cloned().unwrap_or_default();
    axum::Json(Value::Object(profile))
}

async fn get_receivers(
    State(sb): State<Arc<Sandbox>>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> axum::Json<Value> {
    let r = ext(&sb).receivers(&id);
    axum::Json(json!({"primary_app_id": r.primary, "secondary_app_ids": r.secondary}))
}

/// Groups the query parameters of a request for building `paging` links.
pub(crate) fn paging_url(
    sb: &Sandbox,
    req: &Req,
    caller: &Caller,
    overrides: &[(&str, String)],
) -> Option<String> {
    let base = sb.base_url()?;
    let mut params: HashMap<String, String> = req
        .params
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "after" | "before" | "access_token"))
        .map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_owned)))
        .collect();
    for (k, v) in overrides {
        params.insert((*k).to_owned(), v.clone());
    }
    params.insert("access_token".to_owned(), caller.token.clone());
    let mut keys: Vec<&String> = params.keys().collect();
    keys.sort();
    let mut s = form_urlencoded::Serializer::new(String::new());
    for k in keys {
        s.append_pair(k, &params[k]);
    }
    let version = req.version.as_ref().map(|v| format!("/{v}")).unwrap_or_default();
    Some(format!("{base}{version}{}?{}", req.path, s.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caller_debug_hides_the_token() {
        let c = Caller {
            account_id: "1".into(),
            app_id: "2".into(),
            flavour: Flavour::Instagram,
            scopes: None,
            token: "IGAAsecret".into(),
        };
        assert!(!format!("{c:?}").contains("IGAAsecret"));
    }

    #[test]
    fn fields_syntax() {
        let f = parse_fields("id,messages{id,message},participants,updated_time");
        let names: Vec<&str> = f.iter().map(|x| x.name.as_str()).collect();
        assert_eq!(names, ["id", "messages", "participants", "updated_time"]);
        assert_eq!(f[1].sub.as_ref().map(Vec::len), Some(2));
        assert!(is_version("v21.0"));
        assert!(!is_version("me"));
        assert_eq!(graph_time(1_657_653_067_000_000), "2022-07-12T19:11:07+0000");
    }
}
