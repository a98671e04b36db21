//! Conversations API: thread lists with Graph cursor paging, one
//! conversation, and message detail limited to the 20 most recent messages.

use std::sync::Arc;

use axum::response::Response;
use base64::Engine as _;
use serde_json::{Map, Value, json};

use super::error::GraphError;
use super::ext::RateClass;
use super::{
    Caller, Field, Req, finish, graph_time, graph_user, nonexisting_field, paging_url,
    parse_fields, rate_check, requested_fields,
};
use crate::state::{Account, Item, Micros, Sandbox, Thread, World};

/// Only this many most recent messages of a conversation can be read in detail.
pub const DETAIL_LIMIT: usize = 20;
/// Requests-folder threads inactive this long are not listed (30 days).
pub const REQUEST_INACTIVE_US: Micros = 30 * 86_400 * 1_000_000;
const DEFAULT_LIMIT: usize = 25;
const MESSAGES_DEFAULT_LIMIT: usize = 20;
const MAX_LIMIT: usize = 100;

fn cursor_of(id: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id)
}

fn decode_cursor(raw: &str) -> Option<String> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(raw.trim_end_matches('='))
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
}

fn parse_limit(req: &Req, default: usize) -> Result<usize, GraphError> {
    match req.param("limit") {
        None => Ok(default),
        Some(raw) => match raw.parse::<usize>() {
            Ok(0) | Err(_) => {
                Err(GraphError::invalid_param("Param limit must be a positive integer"))
            }
            Ok(n) => Ok(n.min(MAX_LIMIT)),
        },
    }
}

/// Slices `ids` by the `after` / `before` cursors and `limit`; returns the
/// window's indices and whether more exist after and before it.
fn page_window(req: &Req, ids: &[String], limit: usize) -> Result<(usize, usize), GraphError> {
    let find = |raw: &str| -> Result<usize, GraphError> {
        let id = decode_cursor(raw).ok_or_else(|| GraphError::invalid_param("Invalid cursor"))?;
        ids.iter().position(|x| *x == id).ok_or_else(|| GraphError::invalid_param("Invalid cursor"))
    };
    if let Some(after) = req.param("after") {
        let start = find(&after)? + 1;
        let end = (start + limit).min(ids.len());
        return Ok((start.min(ids.len()), end));
    }
    if let Some(before) = req.param("before") {
        let end = find(&before)?;
        let start = end.saturating_sub(limit);
        return Ok((start, end));
    }
    Ok((0, limit.min(ids.len())))
}

fn paging(v: &View<'_>, ids: &[String], start: usize, end: usize, limit: usize) -> Value {
    let mut p = Map::new();
    if start < end {
        p.insert(
            "cursors".into(),
            json!({"before": cursor_of(&ids[start]), "after": cursor_of(&ids[end - 1])}),
        );
        if end < ids.len()
            && let Some(url) = paging_url(
                v.sb,
                v.req,
                v.caller,
                &[("limit", limit.to_string()), ("after", cursor_of(&ids[end - 1]))],
            )
        {
            p.insert("next".into(), json!(url));
        }
        if start > 0
            && let Some(url) = paging_url(
                v.sb,
                v.req,
                v.caller,
                &[("limit", limit.to_string()), ("before", cursor_of(&ids[start]))],
            )
        {
            p.insert("previous".into(), json!(url));
        }
    }
    Value::Object(p)
}

fn listed_threads<'a>(w: &'a World, account: &str, now: Micros) -> Vec<&'a Thread> {
    w.threads_of(account)
        .into_iter()
        .filter(|t| !t.is_group && t.visible_items().next().is_some())
        .filter(|t| !(t.pending && now - t.last_activity_us() > REQUEST_INACTIVE_US))
        .collect()
}

/// `GET /{self}/conversations`.
pub(crate) async fn list(sb: &Arc<Sandbox>, caller: &Caller, req: &Req) -> Response {
    let usage = match rate_check(sb, caller, RateClass::Conversations) {
        Ok(u) => u,
        Err(resp) => return resp,
    };
    let now = sb.now_us();
    let result = sb.read(|w| list_inner(sb, w, caller, req, now)).await;
    finish(sb, caller, RateClass::Conversations, usage, result)
}

fn list_inner(
    sb: &Sandbox,
    w: &World,
    caller: &Caller,
    req: &Req,
    now: Micros,
) -> Result<Value, GraphError> {
    match req.param("platform").as_deref() {
        // Instagram Login documents its find-by-person request without
        // `platform` (the host serves Instagram only); listing still needs it.
        None | Some("")
            if caller.flavour == super::Flavour::Instagram && req.param("user_id").is_some() => {}
        None | Some("") => return Err(GraphError::missing_param("platform")),
        Some("instagram") => {}
        Some("messenger") => return Ok(json!({"data": []})),
        Some(other) => {
            return Err(GraphError::invalid_param(format!(
                "Param platform must be one of {{instagram, messenger}} - got \"{other}\"."
            )));
        }
    }
    let account = w.account(&caller.account_id).map_err(|_| GraphError::token_invalid())?;
    let limit = parse_limit(req, DEFAULT_LIMIT)?;
    let mut threads = listed_threads(w, &account.id, now);
    let user_filter = req.param("user_id");
    if let Some(igsid) = &user_filter {
        let pk = w.users.values().find(|u| &u.igsid == igsid).map(|u| u.pk.clone());
        threads.retain(|t| pk.as_ref().is_some_and(|pk| t.participants.contains(pk)));
    }
    let fields =
        requested_fields(req, if user_filter.is_some() { "id" } else { "id,updated_time" });
    let ids: Vec<String> = threads.iter().map(|t| t.graph_id.clone()).collect();
    let (start, end) = page_window(req, &ids, limit)?;
    let view = View { sb, w, account, req, caller };
    let mut data = Vec::with_capacity(end - start);
    for t in &threads[start..end] {
        data.push(render_conversation(&view, t, &fields)?);
    }
    let mut out = Map::new();
    out.insert("data".into(), Value::Array(data));
    out.insert("paging".into(), paging(&view, &ids, start, end, limit));
    Ok(Value::Object(out))
}

/// What every renderer needs: the request, its caller and the world they see.
struct View<'a> {
    sb: &'a Sandbox,
    w: &'a World,
    account: &'a Account,
    req: &'a Req,
    caller: &'a Caller,
}

fn render_conversation(v: &View<'_>, t: &Thread, fields: &[Field]) -> Result<Value, GraphError> {
    let (w, account) = (v.w, v.account);
    let mut out = Map::new();
    for f in fields {
        match f.name.as_str() {
            "id" => {
                out.insert("id".into(), json!(t.graph_id));
            }
            "updated_time" => {
                out.insert("updated_time".into(), json!(graph_time(t.last_activity_us())));
            }
            "message_count" => {
                out.insert("message_count".into(), json!(t.visible_items().count()));
            }
            "unread_count" => {
                let unread = t.visible_items().rev().take_while(|i| i.sender != account.pk).count();
                out.insert(
                    "unread_count".into(),
                    json!(if t.is_unread(&account.pk) { unread } else { 0 }),
                );
            }
            "participants" => {
                let mut list: Vec<Value> =
                    t.participants.iter().map(|pk| graph_user(w, account, pk)).collect();
                list.push(graph_user(w, account, &account.pk));
                out.insert("participants".into(), json!({"data": list}));
            }
            "messages" => {
                out.insert("messages".into(), messages_edge(v, t, f.sub.as_deref(), false)?);
            }
            other => return Err(nonexisting_field(other, "Conversation")),
        }
    }
    if !out.contains_key("id") {
        out.insert("id".into(), json!(t.graph_id));
    }
    Ok(Value::Object(out))
}

/// A conversation's messages, newest first. The `/messages` edge pages with
/// cursors (`top_level`); the nested field shows the first page.
fn messages_edge(
    v: &View<'_>,
    t: &Thread,
    sub: Option<&[Field]>,
    top_level: bool,
) -> Result<Value, GraphError> {
    let items: Vec<&Item> = t.visible_items().rev().collect();
    let ids: Vec<String> = items.iter().map(|i| i.mid.clone()).collect();
    let default_fields = parse_fields("id,created_time");
    let fields = sub.unwrap_or(&default_fields);
    let mut data = Vec::new();
    let (start, end, limit) = if top_level {
        let limit = parse_limit(v.req, MESSAGES_DEFAULT_LIMIT)?;
        let (s, e) = page_window(v.req, &ids, limit)?;
        (s, e, limit)
    } else {
        (0, MESSAGES_DEFAULT_LIMIT.min(ids.len()), MESSAGES_DEFAULT_LIMIT)
    };
    for (idx, item) in items.iter().enumerate().take(end).skip(start) {
        if idx < DETAIL_LIMIT {
            data.push(render_message(v.w, v.account, t, item, fields)?);
        } else {
            data.push(json!({"id": item.mid, "created_time": graph_time(item.timestamp_us)}));
        }
    }
    let mut out = Map::new();
    out.insert("data".into(), Value::Array(data));
    if top_level {
        out.insert("paging".into(), paging(v, &ids, start, end, limit));
    } else if start < end {
        out.insert(
            "paging".into(),
            json!({"cursors": {"before": cursor_of(&ids[start]), "after": cursor_of(&ids[end - 1])}}),
        );
    }
    Ok(Value::Object(out))
}

fn render_message(
    w: &World,
    account: &Account,
    t: &Thread,
    item: &Item,
    fields: &[Field],
) -> Result<Value, GraphError> {
    let mut out = Map::new();
    for f in fields {
        let name = f.name.as_str();
        let value = match name {
            "id" => json!(item.mid),
            "created_time" => json!(graph_time(item.timestamp_us)),
            "from" => graph_user(w, account, &item.sender),
            "to" => {
                let to: Vec<Value> = if item.sender == account.pk {
                    t.participants.iter().map(|pk| graph_user(w, account, pk)).collect()
                } else {
                    vec![graph_user(w, account, &account.pk)]
                };
                json!({"data": to})
            }
            "message" => json!(item.text.clone().unwrap_or_default()),
            "attachments" => {
                let list: Vec<Value> = item
                    .attachments
                    .iter()
                    .filter(|a| !matches!(a.kind.as_str(), "share" | "story_mention" | "template"))
                    .map(|a| match a.kind.as_str() {
                        "image" => json!({"image_data": {"url": a.url, "preview_url": a.url}}),
                        "video" => json!({"video_data": {"url": a.url, "preview_url": a.url}}),
                        "audio" => json!({"audio_data": {"url": a.url}}),
                        _ => json!({"file_url": a.url}),
                    })
                    .collect();
                if list.is_empty() {
                    continue;
                }
                json!({"data": list})
            }
            "shares" => {
                let list: Vec<Value> = item
                    .attachments
                    .iter()
                    .filter(|a| a.kind == "share")
                    .map(|a| json!({"link": a.url}))
                    .collect();
                if list.is_empty() {
                    continue;
                }
                json!({"data": list})
            }
            "story" => {
                let Some(a) = item.attachments.iter().find(|a| a.kind == "story_mention") else {
                    continue;
                };
                json!({"mention": {"link": a.url, "id": item.media_id.clone().unwrap_or_else(|| item.id.clone())}})
            }
            "reactions" => {
                if item.reactions.is_empty() {
                    continue;
                }
                let list: Vec<Value> = item
                    .reactions
                    .iter()
                    .map(|r| json!({"reaction": crate::webhooks::reaction_name(&r.emoji), "emoji": r.emoji, "users": [graph_user(w, account, &r.sender)]}))
                    .collect();
                json!({"data": list})
            }
            "is_unsupported" => json!(false),
            other => return Err(nonexisting_field(other, "Message")),
        };
        out.insert(name.to_owned(), value);
    }
    // A Graph node always names itself, whatever fields were asked for
    // (the story-mention example asks for `story` and gets `id` too).
    if !out.contains_key("id") {
        out.insert("id".into(), json!(item.mid));
    }
    Ok(Value::Object(out))
}

fn owned_thread<'a>(w: &'a World, caller: &Caller, id: &str) -> Option<&'a Thread> {
    w.threads.values().find(|t| {
        t.account == caller.account_id
            && !t.is_group
            && (t.graph_id == id || t.items.iter().any(|i| i.mid == id))
    })
}

/// Runs `f` on the caller's thread that `req.node` names (conversation id or
/// message id), under the Conversations API rate limit.
async fn with_owned_thread(
    sb: &Arc<Sandbox>,
    caller: &Caller,
    req: &Req,
    f: impl FnOnce(&World, &Account, &Thread) -> Result<Value, GraphError>,
) -> Response {
    let usage = match rate_check(sb, caller, RateClass::Conversations) {
        Ok(u) => u,
        Err(resp) => return resp,
    };
    let result = sb
        .read(|w| {
            let t = owned_thread(w, caller, &req.node)
                .ok_or_else(|| GraphError::unknown_object(&req.node, "get"))?;
            let account = w.account(&caller.account_id).map_err(|_| GraphError::token_invalid())?;
            f(w, account, t)
        })
        .await;
    finish(sb, caller, RateClass::Conversations, usage, result)
}

/// `GET /{conversation-id}` and `GET /{conversation-id}/messages`.
pub(crate) async fn conversation(sb: &Arc<Sandbox>, caller: &Caller, req: &Req) -> Response {
    with_owned_thread(sb, caller, req, |w, account, t| {
        let view = View { sb, w, account, req, caller };
        if req.edge.as_deref() == Some("messages") {
            let fields = req.param("fields").map(|f| parse_fields(&f));
            return messages_edge(&view, t, fields.as_deref(), true);
        }
        render_conversation(&view, t, &requested_fields(req, "id"))
    })
    .await
}

/// The error for a message outside the readable window (deleted or older
/// than the 20 most recent).
#[must_use]
pub fn message_unavailable() -> GraphError {
    GraphError::invalid_param(
        "The message has been deleted or is not one of the 20 most recent messages of its conversation",
    )
}

/// `GET /{message-id}`.
pub(crate) async fn message(sb: &Arc<Sandbox>, caller: &Caller, req: &Req) -> Response {
    with_owned_thread(sb, caller, req, |w, account, t| {
        let item = t
            .items
            .iter()
            .find(|i| i.mid == req.node)
            .ok_or_else(|| GraphError::unknown_object(&req.node, "get"))?;
        let recent = t.visible_items().rev().take(DETAIL_LIMIT).any(|i| i.mid == item.mid);
        if item.deleted || !recent {
            return Err(message_unavailable());
        }
        let fields = requested_fields(req, "id,created_time");
        render_message(w, account, t, item, &fields)
    })
    .await
}
