//! The private API's endpoints.

use std::sync::Arc;

use axum::http::StatusCode;
use serde::Serialize;
use serde_json::{Value, json};

use super::render::{self, Id, ItemsPage, ThreadJson, UserJson};
use super::rupload::{MediaKind, MediaStore};
use super::{ApiError, Ctx, Endpoint, JsonBody, Params, Viewer};
use crate::state::{
    AccountKind, ItemAttachment, ItemKind, Micros, NewItem, Sandbox, SandboxEvent, SentRecord,
    Thread, World,
};

type Res = Result<JsonBody, ApiError>;

/// Longest text a message may carry.
const MAX_TEXT: usize = 20_000;
/// A user counts as active when seen within this many µs.
const ACTIVE_WINDOW_US: Micros = 5 * 60 * 1_000_000;

pub(super) async fn handle(sb: &Arc<Sandbox>, endpoint: &Endpoint, ctx: Ctx) -> Res {
    match endpoint {
        Endpoint::Inbox => inbox(sb, &ctx, Folder::Inbox).await,
        Endpoint::PendingInbox => inbox(sb, &ctx, Folder::Pending).await,
        Endpoint::SpamInbox => inbox(sb, &ctx, Folder::Spam).await,
        Endpoint::Thread(t) => thread(sb, &ctx, t).await,
        Endpoint::GetByParticipants => get_by_participants(sb, &ctx).await,
        Endpoint::Broadcast(kind) => broadcast(sb, &ctx, kind).await,
        Endpoint::Approve(t) => flag(sb, &ctx, t, "approve").await,
        Endpoint::Decline(t) => flag(sb, &ctx, t, "decline").await,
        Endpoint::MarkUnread(t) => flag(sb, &ctx, t, "mark_unread").await,
        Endpoint::Mute(t) => flag(sb, &ctx, t, "mute").await,
        Endpoint::Unmute(t) => flag(sb, &ctx, t, "unmute").await,
        Endpoint::Hide(t) => flag(sb, &ctx, t, "hide").await,
        Endpoint::Activity(t) => activity(sb, &ctx, t).await,
        Endpoint::ItemReactions(t, i) => item_reaction(sb, &ctx, t, i).await,
        Endpoint::Seen(t, i) => seen(sb, &ctx, t, i).await,
        Endpoint::Delete(t, i) => delete(sb, &ctx, t, i).await,
        Endpoint::GetPresence => presence(sb, &ctx, None).await,
        Endpoint::FetchPresence => {
            let raw = ctx
                .params
                .get("request_data")
                .ok_or_else(|| ApiError::bad("request_data is required"))?;
            let ids = parse_id_list(raw)
                .ok_or_else(|| ApiError::bad("request_data must be a JSON array of user ids"))?;
            presence(sb, &ctx, Some(ids)).await
        }
        Endpoint::SearchSecondary => search(sb, &ctx).await,
        Endpoint::CurrentUser => current_user(sb, &ctx).await,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Folder {
    Inbox,
    Pending,
    Spam,
}

fn param_usize(p: &Params, name: &str, default: usize, max: usize) -> Result<usize, ApiError> {
    match p.get(name).map(|s| s.trim()).filter(|s| !s.is_empty()) {
        None => Ok(default),
        Some(raw) => raw
            .parse::<usize>()
            .map(|n| n.clamp(1, max))
            .map_err(|_| ApiError::bad(&format!("Invalid parameter {name}"))),
    }
}

fn owned_thread<'w>(w: &'w World, account: &Viewer, id: &str) -> Result<&'w Thread, ApiError> {
    w.thread(id)
        .ok()
        .filter(|t| t.account == account.id)
        .ok_or_else(|| ApiError::fail(StatusCode::NOT_FOUND, "Thread not found"))
}

async fn inbox(sb: &Sandbox, ctx: &Ctx, folder: Folder) -> Res {
    let user_json = sb.extension::<render::UserJsonCache>();
    let p = &ctx.params;
    let limit = param_usize(p, "limit", 20, 50)?;
    let msg_limit = param_usize(p, "thread_message_limit", 10, 50)?;
    let filter = p.get("selected_filter").map(String::as_str).unwrap_or("");
    if !matches!(filter, "" | "unread" | "flagged") {
        return Err(ApiError::bad("Invalid selected_filter"));
    }
    let cursor = match p.get("cursor").filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => Some(
            render::decode_cursor("thread", c).ok_or_else(|| ApiError::bad("Invalid cursor"))?,
        ),
    };
    if cursor.is_some() && p.get("direction").is_some_and(|d| d != "older") {
        return Err(ApiError::bad("Invalid direction"));
    }
    let acc = &ctx.account;
    let flap = ctx.flapping && ctx.request_no.is_multiple_of(2);
    let now = sb.now_us();
    sb.read(|w| {
        let all: Vec<&Thread> = w
            .threads_of(&acc.id)
            .into_iter()
            .filter(|t| match folder {
                Folder::Inbox => !t.pending && !t.spam && !t.hidden,
                Folder::Pending => t.pending && !t.spam && !t.declined,
                Folder::Spam => t.spam && !t.declined,
            })
            .collect();
        let unseen = all.iter().filter(|t| t.is_unread(&acc.pk)).count();
        let pending_total =
            w.threads_of(&acc.id).iter().filter(|t| t.pending && !t.spam && !t.declined).count();
        let filtered: Vec<&Thread> = all
            .into_iter()
            .filter(|t| match filter {
                "unread" => t.is_unread(&acc.pk),
                "flagged" => t.flagged,
                _ => true,
            })
            .filter(|t| match &cursor {
                None => true,
                Some((ts, id)) => {
                    let la = t.last_activity_us();
                    la < *ts || (la == *ts && t.id < *id)
                }
            })
            .collect();
        let page: Vec<&Thread> = filtered.iter().take(limit).copied().collect();
        let has_older = filtered.len() > page.len();
        let threads: Vec<ThreadJson<'_>> = page
            .iter()
            .map(|t| {
                let items: Vec<_> = t.visible_items().rev().take(msg_limit).collect();
                let has_older_items = t.visible_items().nth(items.len()).is_some();
                render::thread(
                    w,
                    &user_json,
                    t,
                    &acc.pk,
                    &ItemsPage { items, has_older: has_older_items, has_newer: false },
                )
            })
            .collect();
        fn cursor_obj<'t>(t: Option<&&'t Thread>) -> Option<InboxCursor<'t>> {
            t.map(|t| InboxCursor {
                cursor_timestamp_seconds: t.last_activity_us() / 1_000_000,
                cursor_thread_v2_id: t.v2_id.parse::<u64>().map_or(Id::Text(&t.v2_id), Id::Number),
            })
        }
        let oldest_cursor =
            page.last().map(|t| render::encode_cursor("thread", t.last_activity_us(), &t.id));
        let size = 1_024 + threads.iter().map(ThreadJson::size_hint).sum::<usize>();
        JsonBody::sized(
            size,
            &InboxJson {
                viewer: w.users.get(&acc.pk).map(render::user),
                inbox: InboxBody {
                    threads,
                    has_older: has_older ^ flap,
                    unseen_count: unseen,
                    unseen_count_ts: now,
                    oldest_cursor,
                    prev_cursor: cursor_obj(page.first()),
                    next_cursor: cursor_obj(page.last()),
                    blended_inbox_enabled: true,
                },
                seq_id: w.account(&acc.id).map_or(0, |a| a.seq_id) + 40_000,
                snapshot_at_ms: now / 1000,
                pending_requests_total: pending_total,
                has_pending_top_requests: pending_total > 0,
                most_recent_inviter: None,
                status: "ok",
            },
        )
    })
    .await
}

/// The inbox answer.
#[derive(Serialize)]
struct InboxJson<'a> {
    viewer: Option<UserJson<'a>>,
    inbox: InboxBody<'a>,
    seq_id: u64,
    snapshot_at_ms: Micros,
    pending_requests_total: usize,
    has_pending_top_requests: bool,
    most_recent_inviter: Option<()>,
    status: &'static str,
}

#[derive(Serialize)]
struct InboxBody<'a> {
    threads: Vec<ThreadJson<'a>>,
    has_older: bool,
    unseen_count: usize,
    unseen_count_ts: Micros,
    oldest_cursor: Option<String>,
    prev_cursor: Option<InboxCursor<'a>>,
    next_cursor: Option<InboxCursor<'a>>,
    blended_inbox_enabled: bool,
}

#[derive(Serialize)]
struct InboxCursor<'a> {
    cursor_timestamp_seconds: Micros,
    cursor_thread_v2_id: Id<'a>,
}

/// `{"thread": …, "status": "ok"}`.
#[derive(Serialize)]
struct ThreadAnswer<'a> {
    thread: ThreadJson<'a>,
    status: &'static str,
}

async fn thread(sb: &Sandbox, ctx: &Ctx, id: &str) -> Res {
    let user_json = sb.extension::<render::UserJsonCache>();
    let p = &ctx.params;
    let limit = param_usize(p, "limit", 20, 100)?;
    let direction = p.get("direction").map_or("older", String::as_str);
    if !matches!(direction, "older" | "newer") {
        return Err(ApiError::bad("Invalid direction"));
    }
    let cursor = match p.get("cursor").filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => {
            Some(render::decode_cursor("item", c).ok_or_else(|| ApiError::bad("Invalid cursor"))?)
        }
    };
    let acc = &ctx.account;
    let flap = ctx.flapping && ctx.request_no.is_multiple_of(2);
    sb.read(|w| {
        let t = owned_thread(w, acc, id)?;
        fn key(i: &crate::state::Item) -> (Micros, &str) {
            (i.timestamp_us, i.id.as_str())
        }
        let (items, has_older, has_newer) = match (&cursor, direction) {
            (Some((ts, cid)), "newer") => {
                let newer: Vec<_> =
                    t.visible_items().filter(|i| key(i) > (*ts, cid.as_str())).collect();
                let page: Vec<_> = newer.iter().take(limit).rev().copied().collect();
                let more = newer.len() > page.len();
                (page, true, more)
            }
            (Some((ts, cid)), _) => {
                let mut older = t.visible_items().rev().filter(|i| key(i) < (*ts, cid.as_str()));
                let page: Vec<_> = older.by_ref().take(limit).collect();
                (page, older.next().is_some(), true)
            }
            (None, _) => {
                let mut newest_first = t.visible_items().rev();
                let page: Vec<_> = newest_first.by_ref().take(limit).collect();
                (page, newest_first.next().is_some(), false)
            }
        };
        let body = render::thread(
            w,
            &user_json,
            t,
            &acc.pk,
            &ItemsPage { items, has_older: has_older ^ flap, has_newer },
        );
        JsonBody::sized(64 + body.size_hint(), &ThreadAnswer { thread: body, status: "ok" })
    })
    .await
}

/// Parses `[1,2]`, `["1","2"]`, or nested `[[1,2]]` into id strings, keeping
/// every digit of ids too large for a double.
fn parse_id_list(raw: &str) -> Option<Vec<String>> {
    let s = raw.trim();
    if !s.starts_with('[') || !s.ends_with(']') {
        return None;
    }
    let inner = s.trim_start_matches('[').trim_end_matches(']');
    let ids: Vec<String> = inner
        .split(',')
        .map(|x| x.trim().trim_matches('"').trim().to_owned())
        .filter(|x| !x.is_empty())
        .collect();
    if ids.iter().all(|x| x.bytes().all(|b| b.is_ascii_digit())) { Some(ids) } else { None }
}

async fn get_by_participants(sb: &Sandbox, ctx: &Ctx) -> Res {
    let user_json = sb.extension::<render::UserJsonCache>();
    let raw = ctx
        .params
        .get("recipient_users")
        .ok_or_else(|| ApiError::bad("recipient_users is required"))?;
    let users = parse_id_list(raw).ok_or_else(|| ApiError::bad("Invalid recipient_users"))?;
    if users.is_empty() {
        return Err(ApiError::bad("Invalid recipient_users"));
    }
    let acc = &ctx.account;
    sb.read(|w| {
        let t = w
            .find_thread(&acc.id, &users)
            .ok_or_else(|| ApiError::fail(StatusCode::NOT_FOUND, "Thread not found"))?;
        let items: Vec<_> = t.visible_items().rev().take(20).collect();
        let has_older = t.visible_items().nth(items.len()).is_some();
        let body = render::thread(
            w,
            &user_json,
            t,
            &acc.pk,
            &ItemsPage { items, has_older, has_newer: false },
        );
        JsonBody::sized(64 + body.size_hint(), &ThreadAnswer { thread: body, status: "ok" })
    })
    .await
}

/// Where a broadcast goes.
enum Recipients {
    Threads(Vec<String>),
    Users(Vec<String>),
}

fn recipients(p: &Params) -> Result<Recipients, ApiError> {
    match (p.get("thread_ids"), p.get("recipient_users")) {
        (Some(t), None) => {
            let ids = parse_id_list(t).ok_or_else(|| ApiError::bad("Invalid thread_ids"))?;
            if ids.len() != 1 {
                return Err(ApiError::bad("Invalid thread_ids"));
            }
            Ok(Recipients::Threads(ids))
        }
        (None, Some(u)) => {
            let t = u.trim();
            if !(t.starts_with("[[") && t.ends_with("]]")) {
                return Err(ApiError::bad("Invalid recipient_users"));
            }
            let ids = parse_id_list(t).ok_or_else(|| ApiError::bad("Invalid recipient_users"))?;
            if ids.is_empty() {
                return Err(ApiError::bad("Invalid recipient_users"));
            }
            Ok(Recipients::Users(ids))
        }
        _ => Err(ApiError::bad("Exactly one of thread_ids or recipient_users is required")),
    }
}

fn required<'p>(p: &'p Params, name: &str) -> Result<&'p str, ApiError> {
    p.get(name)
        .map(String::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::bad(&format!("{name} is required")))
}

fn check_text(text: &str) -> Result<(), ApiError> {
    if text.chars().count() > MAX_TEXT {
        return Err(ApiError::bad("Message is too long"));
    }
    Ok(())
}

/// The fields of a signed body (`signed_body=SIGNATURE.<JSON>`), as text.
fn signed_params(p: &Params) -> Result<Params, ApiError> {
    let json = p
        .get("signed_body")
        .and_then(|b| b.strip_prefix("SIGNATURE."))
        .ok_or_else(|| ApiError::bad("signed_body is required"))?;
    let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(json) else {
        return Err(ApiError::bad("Invalid signed_body"));
    };
    let mut out: Params = p
        .iter()
        .filter(|(k, _)| *k != "signed_body")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (k, v) in fields {
        let text = match v {
            Value::String(s) => s,
            other => other.to_string(),
        };
        // The app sends `recipient_users: "[]"` beside `thread_ids`: no users.
        if k == "recipient_users" && text == "[]" {
            continue;
        }
        out.insert(k, text);
    }
    Ok(out)
}

/// The uploaded media an attachment broadcast sends, checked against what
/// the broadcast kind takes (`photo_attachment` a photo, `raven_attachment`
/// a video, `voice_attachment` audio with its waveform).
fn attachment(
    sb: &Sandbox,
    ctx: &Ctx,
    p: &Params,
    kind: &str,
) -> Result<(ItemKind, ItemAttachment), ApiError> {
    let (want, item_kind) = match kind {
        "photo_attachment" => (MediaKind::Image, ItemKind::Media),
        "raven_attachment" => (MediaKind::Video, ItemKind::RavenMedia),
        _ => (MediaKind::Audio, ItemKind::VoiceMedia),
    };
    let fbid = required(p, "attachment_fbid")?;
    if want == MediaKind::Video
        && (p.get("video_result").map(String::as_str) != Some(fbid)
            || p.get("video").map(String::as_str) != Some("1"))
    {
        return Err(ApiError::bad("video_result must equal attachment_fbid, with video=1"));
    }
    if want == MediaKind::Audio {
        let waveform: Vec<f64> = serde_json::from_str(required(p, "waveform")?)
            .map_err(|_| ApiError::bad("waveform must be a JSON array of numbers"))?;
        if waveform.is_empty()
            || p.get("waveform_sampling_frequency_hz").map(String::as_str) != Some("10")
        {
            return Err(ApiError::bad("Invalid waveform"));
        }
        required(p, "upload_id")?;
    }
    let store = sb.extension::<MediaStore>();
    store
        .blob(fbid)
        .filter(|b| b.owner == ctx.account.pk && b.kind == want)
        .ok_or_else(|| ApiError::bad("Invalid attachment_fbid"))?;
    let base = sb.base_url().unwrap_or_default();
    let url = store
        .link(&base, fbid, sb.now_us())
        .ok_or_else(|| ApiError::bad("Invalid attachment_fbid"))?;
    Ok((item_kind, ItemAttachment { kind: want.attachment_type().to_owned(), url }))
}

async fn broadcast(sb: &Sandbox, ctx: &Ctx, kind: &str) -> Res {
    let signed;
    let p = if kind == "raven_attachment" {
        signed = signed_params(&ctx.params)?;
        &signed
    } else {
        &ctx.params
    };
    // Instagram answers 500 on the retired configure routes (instagrapi PR #2765).
    if matches!(kind, "configure_photo" | "configure_video" | "share_voice") {
        return Err(ApiError::fail(StatusCode::INTERNAL_SERVER_ERROR, "Oops, an error occurred."));
    }
    let recipients = recipients(p)?;
    let client_context = p
        .get("client_context")
        .or_else(|| p.get("mutation_token"))
        .or_else(|| p.get("offline_threading_id"))
        .filter(|c| !c.is_empty())
        .cloned();
    let mut new = NewItem { client_context: client_context.clone(), ..NewItem::default() };
    let mut reaction: Option<(String, Option<String>)> = None;
    match kind {
        "text" => {
            let text = required(p, "text")?;
            check_text(text)?;
            new.text = Some(text.to_owned());
            new.reply_to = p.get("replied_to_item_id").filter(|s| !s.is_empty()).cloned();
        }
        "link" => {
            let text = required(p, "link_text")?;
            check_text(text)?;
            let urls_raw = required(p, "link_urls")?;
            let urls: Vec<String> = serde_json::from_str(urls_raw)
                .map_err(|_| ApiError::bad("link_urls must be a JSON array of URLs"))?;
            let first = urls
                .first()
                .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
                .ok_or_else(|| ApiError::bad("link_urls must be a JSON array of URLs"))?;
            new.kind = Some(ItemKind::Link);
            new.text = Some(text.to_owned());
            new.link_url = Some(first.clone());
            new.reply_to = p.get("replied_to_item_id").filter(|s| !s.is_empty()).cloned();
        }
        "like" => {
            new.kind = Some(ItemKind::Like);
        }
        "media_share" => {
            let media_id = required(p, "media_id")?;
            new.kind = Some(ItemKind::MediaShare);
            new.media_id = Some(media_id.to_owned());
            new.text = p.get("text").cloned();
            if matches!(recipients, Recipients::Users(_)) {
                return Err(ApiError::bad("Media can only be sent to an existing thread"));
            }
        }
        "reaction" => {
            let item_id = required(p, "item_id")?;
            let status = p.get("reaction_status").map_or("created", String::as_str);
            let emoji = match status {
                "created" => Some(
                    p.get("emoji")
                        .filter(|e| !e.is_empty())
                        .cloned()
                        .unwrap_or_else(|| "\u{2764}\u{fe0f}".to_owned()),
                ),
                "deleted" => None,
                _ => return Err(ApiError::bad("Invalid reaction_status")),
            };
            reaction = Some((item_id.to_owned(), emoji));
        }
        "photo_attachment" | "voice_attachment" | "raven_attachment" => {
            if matches!(recipients, Recipients::Users(_)) {
                return Err(ApiError::bad("Media can only be sent to an existing thread"));
            }
            let (item_kind, att) = attachment(sb, ctx, p, kind)?;
            new.kind = Some(item_kind);
            new.attachments = vec![att];
        }
        _ => return Err(ApiError::fail(StatusCode::NOT_FOUND, "Page not found")),
    }
    let acc = ctx.account.clone();
    let now = sb.now_us();
    let kind_owned = kind.to_owned();
    sb.write(move |w| {
        // Idempotency: a repeated client_context returns the first ack.
        if let Some(cc) = &client_context
            && let Some(ack) = w.accounts.get(&acc.id).and_then(|a| a.acks.get(cc))
        {
            return Ok(JsonBody(ack.clone()));
        }
        let mut record = SentRecord {
            at_us: now,
            surface: "private".to_owned(),
            endpoint: format!("broadcast/{kind_owned}"),
            thread_id: None,
            item_id: None,
            recipient: None,
            text: new.text.clone(),
            accepted: false,
            error: None,
        };
        let result = (|| {
            let thread_id = match &recipients {
                Recipients::Threads(ids) => {
                    let id = ids.first().cloned().unwrap_or_default();
                    owned_thread(w, &acc, &id)?.id.clone()
                }
                Recipients::Users(users) => {
                    for u in users {
                        if !w.users.contains_key(u) || *u == acc.pk {
                            return Err(ApiError::bad("Invalid recipient_users"));
                        }
                    }
                    w.thread_with(&acc.id, users, false)?
                }
            };
            record.thread_id = Some(thread_id.clone());
            record.recipient =
                w.thread(&thread_id).ok().and_then(|t| t.participants.first().cloned());
            let (item_id, ts) = if let Some((target, emoji)) = &reaction {
                let it = w.set_reaction(&thread_id, target, &acc.pk, emoji.as_deref())?;
                (it.id, now)
            } else {
                if let Some(r) = &new.reply_to
                    && w.thread(&thread_id)?.item(r).is_none()
                {
                    return Err(ApiError::bad("Invalid replied_to_item_id"));
                }
                let it = w.append_item(&thread_id, &acc.pk, new.clone())?;
                (it.id, it.timestamp_us)
            };
            Ok((thread_id, item_id, ts))
        })();
        match result {
            Ok((thread_id, item_id, ts)) => {
                record.accepted = true;
                record.item_id = Some(item_id.clone());
                let participants: Vec<Id<'_>> = w
                    .thread(&thread_id)
                    .map(|t| t.participants.iter().map(|p| render::pk_number(p)).collect())
                    .unwrap_or_default();
                let timestamp = ts.to_string();
                let ack = JsonBody::of(&BroadcastAck {
                    action: "item_ack",
                    status_code: "200",
                    payload: AckPayload {
                        client_context: client_context.as_deref(),
                        item_id: &item_id,
                        timestamp: &timestamp,
                        thread_id: &thread_id,
                    },
                    message_metadata: [AckMetadata {
                        client_context: client_context.as_deref(),
                        item_id: &item_id,
                        timestamp: &timestamp,
                        thread_id: &thread_id,
                        participant_ids: participants,
                    }],
                    status: "ok",
                })?;
                if let Some(cc) = &client_context
                    && let Some(a) = w.accounts.get_mut(&acc.id)
                {
                    a.acks.insert(cc.clone(), ack.0.clone());
                }
                w.record_sent(&acc.id, record);
                Ok(ack)
            }
            Err(e) => {
                record.error = Some(e.message());
                w.record_sent(&acc.id, record);
                Err(e)
            }
        }
    })
    .await
}

/// The acknowledgement of a broadcast.
#[derive(Serialize)]
struct BroadcastAck<'a> {
    action: &'static str,
    status_code: &'static str,
    payload: AckPayload<'a>,
    message_metadata: [AckMetadata<'a>; 1],
    status: &'static str,
}

#[derive(Serialize)]
struct AckPayload<'a> {
    client_context: Option<&'a str>,
    item_id: &'a str,
    timestamp: &'a str,
    thread_id: &'a str,
}

#[derive(Serialize)]
struct AckMetadata<'a> {
    client_context: Option<&'a str>,
    item_id: &'a str,
    timestamp: &'a str,
    thread_id: &'a str,
    participant_ids: Vec<Id<'a>>,
}

async fn flag(sb: &Sandbox, ctx: &Ctx, id: &str, change: &str) -> Res {
    let acc = &ctx.account;
    sb.write(|w| {
        let key = owned_thread(w, acc, id)?.id.clone();
        let t = w.thread_mut(&key)?;
        match change {
            "approve" => {
                if !t.pending {
                    return Err(ApiError::bad("Thread is not a pending request"));
                }
                t.pending = false;
                t.spam = false;
            }
            "decline" => {
                if !t.pending || t.declined {
                    return Err(ApiError::bad("Thread is not a pending request"));
                }
                t.declined = true;
            }
            "mark_unread" => t.marked_unread = true,
            "mute" => t.muted = true,
            "unmute" => t.muted = false,
            "hide" => {
                t.hidden = true;
                if t.pending
                    && ctx
                        .params
                        .get("should_move_future_requests_to_spam")
                        .is_some_and(|v| v == "true")
                {
                    t.spam = true;
                }
            }
            _ => {}
        }
        w.emit(SandboxEvent::ThreadUpdated {
            account: acc.id.clone(),
            thread: key,
            change: change.to_owned(),
        });
        Ok(JsonBody::ok())
    })
    .await
}

async fn activity(sb: &Sandbox, ctx: &Ctx, id: &str) -> Res {
    let status = ctx.params.get("activity_status").map_or("1", String::as_str);
    let active = match status {
        "1" => true,
        "0" => false,
        _ => return Err(ApiError::bad("Invalid activity_status")),
    };
    let acc = &ctx.account;
    sb.write(|w| {
        let key = owned_thread(w, acc, id)?.id.clone();
        w.emit(SandboxEvent::Typing {
            account: acc.id.clone(),
            thread: key,
            actor: acc.pk.clone(),
            active,
        });
        Ok(JsonBody::ok())
    })
    .await
}

async fn item_reaction(sb: &Sandbox, ctx: &Ctx, t: &str, i: &str) -> Res {
    let p = &ctx.params;
    let status = p.get("reaction_status").map_or("created", String::as_str);
    let emoji = match status {
        "created" => Some(required(p, "emoji")?.to_owned()),
        "deleted" => None,
        _ => return Err(ApiError::bad("Invalid reaction_status")),
    };
    let acc = &ctx.account;
    sb.write(|w| {
        let key = owned_thread(w, acc, t)?.id.clone();
        let item = w.set_reaction(&key, i, &acc.pk, emoji.as_deref())?;
        JsonBody::of(&ReactionAnswer {
            thread_id: &key,
            item_id: &item.id,
            reaction_status: status,
            status: "ok",
        })
    })
    .await
}

/// The answer to a reaction change.
#[derive(Serialize)]
struct ReactionAnswer<'a> {
    thread_id: &'a str,
    item_id: &'a str,
    reaction_status: &'a str,
    status: &'static str,
}

async fn seen(sb: &Sandbox, ctx: &Ctx, t: &str, i: &str) -> Res {
    let acc = &ctx.account;
    if let Some(tid) = ctx.params.get("thread_id")
        && tid != t
    {
        return Err(ApiError::bad("thread_id does not match the path"));
    }
    let now = sb.now_us();
    sb.write(|w| {
        let key = owned_thread(w, acc, t)?.id.clone();
        let item = w.mark_seen(&key, i, &acc.pk)?;
        JsonBody::of(&json!({
            "action": "item_ack",
            "status_code": "200",
            "payload": {
                "client_context": ctx.params.get("client_context"),
                "item_id": item.id,
                "thread_id": key,
                "timestamp": now.to_string(),
            },
            "status": "ok",
        }))
    })
    .await
}

async fn delete(sb: &Sandbox, ctx: &Ctx, t: &str, i: &str) -> Res {
    let acc = &ctx.account;
    sb.write(|w| {
        let key = owned_thread(w, acc, t)?.id.clone();
        w.unsend(&key, i, &acc.pk)?;
        Ok(JsonBody::ok())
    })
    .await
}

async fn presence(sb: &Sandbox, ctx: &Ctx, ids: Option<Vec<String>>) -> Res {
    let acc = &ctx.account;
    let now = sb.now_us();
    sb.read(|w| {
        let ids: Vec<String> = match ids {
            // An id asked for twice is answered once, where first asked.
            Some(mut ids) => {
                let mut seen = std::collections::HashSet::new();
                ids.retain(|id| seen.insert(id.clone()));
                ids
            }
            None => {
                let mut v: Vec<String> = w
                    .threads_of(&acc.id)
                    .iter()
                    .flat_map(|t| t.participants.iter().cloned())
                    .collect();
                v.sort();
                v.dedup();
                v
            }
        };
        let users: Vec<&crate::state::User> = ids.iter().filter_map(|id| w.users.get(id)).collect();
        JsonBody::of(&PresenceAnswer {
            user_presence: PresenceMap { users: &users, now },
            status: "ok",
        })
    })
    .await
}

/// The answer of the presence endpoints.
#[derive(Serialize)]
struct PresenceAnswer<'a> {
    user_presence: PresenceMap<'a>,
    status: &'static str,
}

/// pk → presence of each user asked about.
struct PresenceMap<'a> {
    users: &'a [&'a crate::state::User],
    now: Micros,
}

#[derive(Serialize)]
struct Presence {
    is_active: bool,
    last_activity_at_ms: String,
    in_threads: [(); 0],
}

impl Serialize for PresenceMap<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.users.iter().map(|u| {
            let presence = Presence {
                is_active: self.now - u.last_active_us < ACTIVE_WINDOW_US,
                last_activity_at_ms: (u.last_active_us / 1000).to_string(),
                in_threads: [],
            };
            (&u.pk, presence)
        }))
    }
}

async fn search(sb: &Sandbox, ctx: &Ctx) -> Res {
    let user_json = sb.extension::<render::UserJsonCache>();
    let query = required(&ctx.params, "query")?.to_lowercase();
    let offset: usize = ctx
        .params
        .get("offsets")
        .and_then(|o| serde_json::from_str::<Value>(o).ok())
        .and_then(|v| {
            v.get("message_content").and_then(|m| {
                m.as_str()
                    .and_then(|s| s.parse().ok())
                    .or_else(|| m.as_u64().and_then(|n| usize::try_from(n).ok()))
            })
        })
        .unwrap_or(0);
    let acc = &ctx.account;
    const PAGE: usize = 30;
    let v = sb
        .read(|w| {
            let mut hits: Vec<(&Thread, &crate::state::Item)> = w
                .threads_of(&acc.id)
                .into_iter()
                .filter(|t| !t.spam)
                .flat_map(|t| t.visible_items().map(move |i| (t, i)))
                .filter(|(_, i)| {
                    i.text
                        .as_deref()
                        .is_some_and(|x| x.to_lowercase().contains(&query))
                })
                .collect();
            hits.sort_by_key(|h| std::cmp::Reverse(h.1.timestamp_us));
            let total = hits.len();
            let items: Vec<Value> = hits
                .iter()
                .skip(offset)
                .take(PAGE)
                .map(|(t, i)| {
                    let page = ItemsPage::default();
                    let mut thread = serde_json::to_value(render::thread(w, &user_json, t, &acc.pk, &page))
                        .unwrap_or_default();
                    if let Some(o) = thread.as_object_mut() {
                        o.remove("items");
                    }
                    json!({
                        "matched_message_info": {
                            "item_info": render::item(w, t, i, &acc.pk),
                            "matched_text_ranges": [],
                        },
                        "thread": thread,
                        "result_type": "message_content",
                    })
                })
                .collect();
            let next = offset + items.len();
            json!({
                "message_search_results": {
                    "message_search_result_items": items,
                    "num_results": total,
                    "has_more": next < total,
                    "next_offset": next.to_string(),
                },
                "reshared_content_search_results": {"message_search_result_items": [], "has_more": false},
                "status": "ok",
            })
        })
        .await;
    JsonBody::of(&v)
}

async fn current_user(sb: &Sandbox, ctx: &Ctx) -> Res {
    let acc = &ctx.account;
    sb.read(|w| {
        let u = w
            .users
            .get(&acc.pk)
            .ok_or_else(|| ApiError::fail(StatusCode::NOT_FOUND, "User not found"))?;
        let business = acc.kind == AccountKind::Business;
        let user = CurrentUser {
            user: render::user(u).with_numeric_pk(),
            is_business: business,
            account_type: if business { 2 } else { 1 },
            biography: "",
            external_url: "",
            email: format!("{}@example.invalid", u.username),
            phone_number: "",
        };
        JsonBody::of(&CurrentUserAnswer { user, status: "ok" })
    })
    .await
}

/// The answer of `accounts/current_user/`.
#[derive(Serialize)]
struct CurrentUserAnswer<'a> {
    user: CurrentUser<'a>,
    status: &'static str,
}

/// The logged-in user: the public shape plus the private fields.
#[derive(Serialize)]
struct CurrentUser<'a> {
    #[serde(flatten)]
    user: UserJson<'a>,
    is_business: bool,
    account_type: u8,
    biography: &'static str,
    external_url: &'static str,
    email: String,
    phone_number: &'static str,
}
