//! The JSON control API under `/_sandbox/`: create accounts and customers,
//! make customers act, move the clock, inject faults, read logs and stats.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::state::{
    Account, AccountKind, FaultMode, ItemAttachment, ItemKind, NewAccount, NewItem, Sandbox,
    SandboxError, SandboxEvent, User, World,
};

/// Routes of the control API.
pub fn routes() -> Router<Arc<Sandbox>> {
    Router::new()
        .route("/_sandbox/accounts", post(create_account).get(list_accounts))
        .route("/_sandbox/accounts/{id}", get(get_account))
        .route("/_sandbox/accounts/{id}/sent", get(sent))
        .route("/_sandbox/accounts/{id}/threads", get(account_threads))
        .route("/_sandbox/customers", post(create_customer).get(list_customers))
        .route("/_sandbox/customers/{id}/send", post(customer_send))
        .route("/_sandbox/clock", get(clock))
        .route("/_sandbox/clock/advance", post(advance_clock))
        .route("/_sandbox/faults", post(set_fault))
        .route("/_sandbox/reset", post(reset))
        .route("/_sandbox/seed", post(seed))
        .route("/_sandbox/stats", get(stats))
}

/// A control-API error: `{"error":{"message","type"}}`.
#[derive(Debug)]
pub struct ControlError(StatusCode, String);

impl From<SandboxError> for ControlError {
    fn from(e: SandboxError) -> Self {
        let status = match &e {
            SandboxError::NotFound(_) => StatusCode::NOT_FOUND,
            SandboxError::Conflict(_) => StatusCode::CONFLICT,
            SandboxError::Forbidden(_) => StatusCode::FORBIDDEN,
            _ => StatusCode::BAD_REQUEST,
        };
        Self(status, e.to_string())
    }
}

impl From<JsonRejection> for ControlError {
    fn from(e: JsonRejection) -> Self {
        Self(StatusCode::BAD_REQUEST, e.body_text())
    }
}

impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({"error": {"message": self.1, "type": "SandboxControlError"}})))
            .into_response()
    }
}

type Res = Result<Json<Value>, ControlError>;

fn bad(msg: impl Into<String>) -> ControlError {
    ControlError(StatusCode::BAD_REQUEST, msg.into())
}

/// The control API's view of an account, credentials included.
#[must_use]
pub fn account_json(a: &Account) -> Value {
    let c = &a.cookies;
    let mut v = json!({
        "id": a.id,
        "pk": a.pk,
        "kind": a.kind,
        "username": a.username,
        "full_name": a.full_name,
        "password": a.password,
        "two_factor": a.two_factor,
        "challenge": a.challenge,
        "fault": a.fault,
        "cookies": {
            "sessionid": c.sessionid,
            "csrftoken": c.csrftoken,
            "ds_user_id": c.ds_user_id,
            "mid": c.mid,
            "ig_did": c.ig_did,
            "rur": c.rur,
        },
        "cookie_header": c.header_value(),
    });
    if a.two_factor {
        v["two_factor_code"] = json!(a.two_factor_code());
    }
    // Also answers the challenge the private API's `challenge` fault points at.
    v["challenge_code"] = json!(a.challenge_code());
    if let Some(g) = &a.graph {
        v["access_token"] = json!(g.access_token);
        v["page_id"] = json!(g.page_id);
        v["page_token"] = json!(g.page_token);
        v["ig_user_id"] = json!(a.id);
    }
    v
}

/// The control API's view of a customer.
#[must_use]
pub fn user_json(u: &User) -> Value {
    json!({
        "id": u.pk,
        "pk": u.pk,
        "igsid": u.igsid,
        "username": u.username,
        "full_name": u.full_name,
        "profile_pic_url": u.profile_pic_url,
    })
}

async fn create_account(
    State(sb): State<Arc<Sandbox>>,
    body: Result<Json<NewAccount>, JsonRejection>,
) -> Res {
    let Json(new) = body?;
    let account = sb.write(|w| w.create_account(new)).await?;
    Ok(Json(account_json(&account)))
}

async fn list_accounts(State(sb): State<Arc<Sandbox>>) -> Res {
    let list = sb
        .read(|w| {
            let mut v: Vec<&Account> = w.accounts.values().collect();
            v.sort_by(|a, b| a.username.cmp(&b.username));
            v.into_iter().map(account_json).collect::<Vec<_>>()
        })
        .await;
    Ok(Json(json!({ "accounts": list })))
}

async fn get_account(State(sb): State<Arc<Sandbox>>, Path(id): Path<String>) -> Res {
    let v = sb.read(|w| w.account(&id).map(account_json)).await?;
    Ok(Json(v))
}

async fn sent(State(sb): State<Arc<Sandbox>>, Path(id): Path<String>) -> Res {
    let v = sb.read(|w| w.account(&id).map(|a| json!({ "account": a.id, "sent": a.sent }))).await?;
    Ok(Json(v))
}

async fn account_threads(State(sb): State<Arc<Sandbox>>, Path(id): Path<String>) -> Res {
    let v = sb
        .read(|w| {
            w.account(&id)?;
            let threads: Vec<Value> = w
                .threads_of(&id)
                .into_iter()
                .map(|t| {
                    json!({
                        "thread_id": t.id,
                        "thread_v2_id": t.v2_id,
                        "conversation_id": t.graph_id,
                        "participants": t.participants,
                        "is_group": t.is_group,
                        "title": t.title,
                        "pending": t.pending,
                        "muted": t.muted,
                        "hidden": t.hidden,
                        "items": t.items.len(),
                        "visible_items": t.visible_items().count(),
                        "last_activity_at_us": t.last_activity_us(),
                    })
                })
                .collect();
            Ok::<_, SandboxError>(json!({ "account": id, "threads": threads }))
        })
        .await?;
    Ok(Json(v))
}

#[derive(Deserialize)]
struct NewCustomer {
    username: String,
    #[serde(default)]
    full_name: Option<String>,
}

async fn create_customer(
    State(sb): State<Arc<Sandbox>>,
    body: Result<Json<NewCustomer>, JsonRejection>,
) -> Res {
    let Json(new) = body?;
    let user = sb.write(|w| w.create_customer(&new.username, new.full_name)).await?;
    Ok(Json(user_json(&user)))
}

async fn list_customers(State(sb): State<Arc<Sandbox>>) -> Res {
    let list = sb
        .read(|w| {
            let mut v: Vec<&User> = w.users.values().filter(|u| !u.is_account).collect();
            v.sort_by(|a, b| a.username.cmp(&b.username));
            v.into_iter().map(user_json).collect::<Vec<_>>()
        })
        .await;
    Ok(Json(json!({ "customers": list })))
}

/// What a customer does, for `POST /_sandbox/customers/{id}/send`.
#[derive(Debug, Default, Deserialize)]
pub struct CustomerAction {
    /// The account (id) the customer acts towards.
    pub to: String,
    /// Send a text message.
    #[serde(default)]
    pub text: Option<String>,
    /// Send an attachment `{type, url}`.
    #[serde(default)]
    pub attachment: Option<ItemAttachment>,
    /// Reply to an item (mid or item id) with the message.
    #[serde(default)]
    pub reply_to: Option<String>,
    /// React `{mid, emoji}`.
    #[serde(default)]
    pub reaction: Option<MidEmoji>,
    /// Remove the reaction on `{mid}` (or a bare mid string).
    #[serde(default)]
    pub unreact: Option<Value>,
    /// Tap a button `{title, payload}`.
    #[serde(default)]
    pub postback: Option<TitlePayload>,
    /// Tap a quick reply `{text, payload}`.
    #[serde(default)]
    pub quick_reply: Option<TextPayload>,
    /// Mention the account in a story `{url}`.
    #[serde(default)]
    pub story_mention: Option<UrlOnly>,
    /// Read up to `{mid}`.
    #[serde(default)]
    pub read: Option<MidOnly>,
    /// Edit own message `{mid, text}`.
    #[serde(default)]
    pub edit: Option<MidText>,
    /// Unsend own message `{mid}`.
    #[serde(default)]
    pub unsend: Option<MidOnly>,
    /// A referral `{ref, source, type, ad_id?}`; with `text` it rides on the message.
    #[serde(default)]
    pub referral: Option<Value>,
    /// Comment on a post `{media_id, text}`.
    #[serde(default)]
    pub comment: Option<Value>,
    /// Typing indicator (true/false).
    #[serde(default)]
    pub typing: Option<bool>,
}

/// `{mid, emoji}`.
#[derive(Debug, Deserialize)]
pub struct MidEmoji {
    /// Target message.
    pub mid: String,
    /// Emoji (default ❤️).
    #[serde(default)]
    pub emoji: Option<String>,
}

/// `{mid}`.
#[derive(Debug, Deserialize)]
pub struct MidOnly {
    /// Target message.
    pub mid: String,
}

/// `{mid, text}`.
#[derive(Debug, Deserialize)]
pub struct MidText {
    /// Target message.
    pub mid: String,
    /// New text.
    pub text: String,
}

/// `{title, payload}`.
#[derive(Debug, Deserialize)]
pub struct TitlePayload {
    /// Button title.
    pub title: String,
    /// Payload.
    pub payload: String,
}

/// `{text, payload}`.
#[derive(Debug, Deserialize)]
pub struct TextPayload {
    /// Quick-reply text.
    pub text: String,
    /// Payload.
    pub payload: String,
}

/// `{url}`.
#[derive(Debug, Deserialize)]
pub struct UrlOnly {
    /// URL.
    pub url: String,
}

/// Maps an official-API attachment type to the private item type.
#[must_use]
pub fn attachment_item_kind(kind: &str) -> ItemKind {
    match kind {
        "audio" => ItemKind::VoiceMedia,
        "share" => ItemKind::XmaMediaShare,
        "story_mention" => ItemKind::XmaReelMention,
        "ig_reel" | "reel" => ItemKind::XmaClip,
        "file" | "template" | "fallback" => ItemKind::GenericXma,
        _ => ItemKind::Media,
    }
}

fn thread_containing(w: &World, account: &str, mid: &str) -> Result<String, SandboxError> {
    w.threads
        .values()
        .find(|t| t.account == account && t.item(mid).is_some())
        .map(|t| t.id.clone())
        .ok_or_else(|| SandboxError::NotFound(format!("message {mid}")))
}

/// Applies a customer action to the world.
///
/// # Errors
/// Unknown customer, account or message; an action with nothing to do.
pub fn apply_customer_action(
    w: &mut World,
    customer: &str,
    action: CustomerAction,
) -> Result<Value, SandboxError> {
    let user = w
        .user(customer)
        .filter(|u| !u.is_account)
        .cloned()
        .ok_or_else(|| SandboxError::NotFound(format!("customer {customer}")))?;
    let account = w.account(&action.to)?.clone();
    let pk = user.pk;
    let now = w.now_us();

    if let Some(r) = action.reaction {
        let t = thread_containing(w, &account.id, &r.mid)?;
        let emoji = r.emoji.unwrap_or_else(|| "\u{2764}\u{fe0f}".to_owned());
        let item = w.set_reaction(&t, &r.mid, &pk, Some(&emoji))?;
        return Ok(json!({"thread_id": t, "item_id": item.id, "mid": item.mid, "action": "react"}));
    }
    if let Some(u) = action.unreact {
        let mid = match &u {
            Value::String(s) => s.clone(),
            Value::Object(o) => o
                .get("mid")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| SandboxError::Invalid("unreact needs a mid".to_owned()))?,
            _ => return Err(SandboxError::Invalid("unreact needs a mid".to_owned())),
        };
        let t = thread_containing(w, &account.id, &mid)?;
        let item = w.set_reaction(&t, &mid, &pk, None)?;
        return Ok(
            json!({"thread_id": t, "item_id": item.id, "mid": item.mid, "action": "unreact"}),
        );
    }
    if let Some(r) = action.read {
        let t = thread_containing(w, &account.id, &r.mid)?;
        let item = w.mark_seen(&t, &r.mid, &pk)?;
        return Ok(json!({"thread_id": t, "item_id": item.id, "mid": item.mid, "action": "read"}));
    }
    if let Some(e) = action.edit {
        let t = thread_containing(w, &account.id, &e.mid)?;
        let item = w.edit(&t, &e.mid, &pk, &e.text)?;
        return Ok(
            json!({"thread_id": t, "item_id": item.id, "mid": item.mid, "action": "edit", "num_edit": item.edits.len()}),
        );
    }
    if let Some(u) = action.unsend {
        let t = thread_containing(w, &account.id, &u.mid)?;
        let item = w.unsend(&t, &u.mid, &pk)?;
        return Ok(
            json!({"thread_id": t, "item_id": item.id, "mid": item.mid, "action": "unsend"}),
        );
    }
    if let Some(c) = action.comment {
        let text = c.get("text").and_then(Value::as_str).unwrap_or_default().to_owned();
        let media_id = c
            .get("media_id")
            .and_then(Value::as_str)
            .map_or_else(|| format!("{}_{}", w.digits(19), account.pk), str::to_owned);
        let comment_id = w.digits(17);
        w.emit(SandboxEvent::Comment {
            account: account.id.clone(),
            sender: pk,
            comment_id: comment_id.clone(),
            media_id: media_id.clone(),
            text,
            timestamp_us: now,
        });
        return Ok(json!({"comment_id": comment_id, "media_id": media_id, "action": "comment"}));
    }

    // Everything else happens inside the customer's thread with the account.
    let pending = account.kind == AccountKind::Personal;
    let thread = w.thread_with(&account.id, std::slice::from_ref(&pk), pending)?;

    if let Some(active) = action.typing {
        w.emit(SandboxEvent::Typing {
            account: account.id.clone(),
            thread: thread.clone(),
            actor: pk,
            active,
        });
        return Ok(json!({"thread_id": thread, "action": "typing"}));
    }
    if let Some(p) = action.postback {
        let item = w.append_item(
            &thread,
            &pk,
            NewItem {
                kind: Some(ItemKind::Postback),
                text: Some(p.title.clone()),
                postback: Some((p.title.clone(), p.payload.clone())),
                ..NewItem::default()
            },
        )?;
        w.emit(SandboxEvent::Postback {
            account: account.id.clone(),
            thread: thread.clone(),
            sender: pk,
            item: item.clone(),
            title: p.title,
            payload: p.payload,
        });
        return Ok(item_result(w, &thread, &item.id));
    }
    if action.referral.is_some() && action.text.is_none() && action.attachment.is_none() {
        let referral = action.referral.unwrap_or(Value::Null);
        w.emit(SandboxEvent::Referral {
            account: account.id.clone(),
            thread: thread.clone(),
            sender: pk,
            referral,
            timestamp_us: now,
        });
        return Ok(json!({"thread_id": thread, "action": "referral"}));
    }
    let mut new =
        NewItem { reply_to: action.reply_to, referral: action.referral, ..NewItem::default() };
    if let Some(q) = action.quick_reply {
        new.text = Some(q.text);
        new.quick_reply_payload = Some(q.payload);
    } else if let Some(s) = action.story_mention {
        new.kind = Some(ItemKind::XmaReelMention);
        new.attachments.push(ItemAttachment { kind: "story_mention".to_owned(), url: s.url });
    } else if let Some(a) = action.attachment {
        new.kind = Some(attachment_item_kind(&a.kind));
        new.text = action.text;
        new.attachments.push(a);
    } else if let Some(text) = action.text {
        if text.is_empty() {
            return Err(SandboxError::Invalid("text is empty".to_owned()));
        }
        if text.contains("http://") || text.contains("https://") {
            new.kind = Some(ItemKind::Link);
            new.link_url = text
                .split_whitespace()
                .find(|w| w.starts_with("http://") || w.starts_with("https://"))
                .map(str::to_owned);
        }
        new.text = Some(text);
    } else {
        return Err(SandboxError::Invalid(
            "nothing to do: give text, attachment, reaction, unreact, postback, quick_reply, \
             story_mention, read, edit, unsend, referral, comment or typing"
                .to_owned(),
        ));
    }
    let is_mention = new.kind == Some(ItemKind::XmaReelMention);
    let item = w.append_item(&thread, &pk, new)?;
    if is_mention {
        w.emit(SandboxEvent::StoryMention {
            account: account.id.clone(),
            thread: thread.clone(),
            item: item.clone(),
        });
    }
    Ok(item_result(w, &thread, &item.id))
}

fn item_result(w: &World, thread: &str, item_id: &str) -> Value {
    let t = w.thread(thread).ok();
    let item = t.and_then(|t| t.item(item_id));
    json!({
        "thread_id": thread,
        "conversation_id": t.map(|t| t.graph_id.clone()),
        "item_id": item_id,
        "mid": item.map(|i| i.mid.clone()),
        "timestamp_us": item.map(|i| i.timestamp_us),
        "item_type": item.map(|i| i.kind.as_str()),
    })
}

async fn customer_send(
    State(sb): State<Arc<Sandbox>>,
    Path(id): Path<String>,
    body: Result<Json<CustomerAction>, JsonRejection>,
) -> Res {
    let Json(action) = body?;
    let v = sb.write(|w| apply_customer_action(w, &id, action)).await?;
    Ok(Json(v))
}

fn clock_json(sb: &Sandbox) -> Value {
    let now = sb.now_us();
    json!({
        "now_us": now,
        "now_ms": now / 1000,
        "now": igdm_time(now),
        "offset_seconds": sb.clock().offset_us() / 1_000_000,
    })
}

fn igdm_time(us: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_micros(us)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        .unwrap_or_default()
}

async fn clock(State(sb): State<Arc<Sandbox>>) -> Res {
    Ok(Json(clock_json(&sb)))
}

#[derive(Deserialize)]
struct Advance {
    seconds: i64,
}

async fn advance_clock(
    State(sb): State<Arc<Sandbox>>,
    body: Result<Json<Advance>, JsonRejection>,
) -> Res {
    let Json(a) = body?;
    if a.seconds < 0 {
        return Err(bad("seconds must be >= 0: the clock only moves forward"));
    }
    let us = a.seconds.checked_mul(1_000_000).ok_or_else(|| bad("seconds out of range"))?;
    sb.clock().advance_us(us);
    Ok(Json(clock_json(&sb)))
}

#[derive(Deserialize)]
struct FaultBody {
    account: String,
    /// Left as it is when absent.
    #[serde(default)]
    mode: Option<String>,
    /// Real milliseconds the APIs hold each answer after applying
    /// the request (0 turns it off); left as it is when absent.
    #[serde(default)]
    latency_ms: Option<u64>,
    /// Writes are lost in flight (never applied, answered 502 after the
    /// latency); left as it is when absent.
    #[serde(default)]
    drop_writes: Option<bool>,
}

async fn set_fault(
    State(sb): State<Arc<Sandbox>>,
    body: Result<Json<FaultBody>, JsonRejection>,
) -> Res {
    let Json(f) = body?;
    let mode = f
        .mode
        .as_deref()
        .map(|m| {
            FaultMode::parse(m).ok_or_else(|| {
                bad(format!(
                    "unknown mode {m:?}: none|login_required|challenge|feedback|ratelimit|html|flapping|not_found|drift|token_expired"
                ))
            })
        })
        .transpose()?;
    let now = sb.now_us();
    let (mode, latency_ms, drop_writes) = sb
        .write(|w| {
            w.account_mut(&f.account).map(|a| {
                if let Some(m) = mode {
                    a.fault = m;
                    a.tokens_expired_before_us = (m == FaultMode::TokenExpired).then_some(now);
                }
                if let Some(ms) = f.latency_ms {
                    a.latency_ms = ms;
                }
                if let Some(d) = f.drop_writes {
                    a.drop_writes = d;
                }
                (a.fault, a.latency_ms, a.drop_writes)
            })
        })
        .await?;
    Ok(Json(
        json!({"account": f.account, "mode": mode, "latency_ms": latency_ms, "drop_writes": drop_writes}),
    ))
}

async fn reset(State(sb): State<Arc<Sandbox>>) -> Res {
    sb.reset().await;
    Ok(Json(json!({"status": "ok"})))
}

#[derive(Deserialize)]
struct SeedBody {
    #[serde(default)]
    name: Option<String>,
}

async fn seed(State(sb): State<Arc<Sandbox>>, body: Result<Json<SeedBody>, JsonRejection>) -> Res {
    let name = body.ok().and_then(|Json(b)| b.name).unwrap_or_else(|| "demo".to_owned());
    if name != "demo" {
        return Err(bad(format!("unknown seed {name:?}: the only seed is \"demo\"")));
    }
    let seed = sb.seed_demo().await?;
    serde_json::to_value(seed)
        .map(Json)
        .map_err(|e| ControlError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

async fn stats(State(sb): State<Arc<Sandbox>>) -> Res {
    let stats = sb.stats();
    let mut total = crate::state::EndpointStats::default();
    for per in stats.values() {
        for e in per.values() {
            total.requests += e.requests;
            total.ok += e.ok;
            total.errors += e.errors;
            total.refused += e.refused;
        }
    }
    Ok(Json(json!({"accounts": stats, "total": total})))
}
