//! Executes validated Send API requests against the world: recipient and
//! window checks on the virtual clock, thread control, then the item (and its
//! echo event) or the sender action.

use std::sync::Arc;

use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::error::GraphError;
use super::ext::{GraphExt, RateClass, ext};
use super::send::{
    MediaKind, MediaSource, MessagingType, OutAttachment, OutMessage, Recipient, SendBucket,
    SendKind, SendRequest, parse_send,
};
use super::{Caller, Req, finish, rate_check};
use crate::private::rupload::MediaStore;
use crate::state::{
    ItemAttachment, ItemKind, Micros, NewItem, Sandbox, SandboxEvent, SentRecord, World,
};

/// Standard messaging window: 24 hours.
pub const WINDOW_US: Micros = 24 * 3_600 * 1_000_000;
/// HUMAN_AGENT window: 7 days.
pub const HUMAN_AGENT_WINDOW_US: Micros = 7 * 24 * 3_600 * 1_000_000;
/// Private replies: 7 days after the comment.
pub const PRIVATE_REPLY_WINDOW_US: Micros = 7 * 24 * 3_600 * 1_000_000;

const HEART: &str = "\u{2764}\u{fe0f}";

/// `POST /{self}/messages`.
pub(crate) async fn send(sb: &Arc<Sandbox>, caller: &Caller, req: &Req) -> Response {
    let endpoint = format!("{}/messages", req.node);
    let body = Value::Object(req.params.clone());
    let parsed = match parse_send(&body) {
        Ok(p) => p,
        Err(e) => {
            record_refusal(sb, caller, &endpoint, &body, &e).await;
            sb.record_request(
                Some(&caller.account_id),
                RateClass::SendText.stats_name(),
                crate::state::RequestOutcome::Error,
            );
            return e.into_response();
        }
    };
    let class = match (&parsed.recipient, parsed.bucket()) {
        (Recipient::CommentId(_), _) => RateClass::PrivateReply,
        (_, SendBucket::Text) => RateClass::SendText,
        (_, SendBucket::AudioVideo) => RateClass::SendAudioVideo,
    };
    let usage = match rate_check(sb, caller, class) {
        Ok(u) => u,
        Err(resp) => {
            let err = GraphError::throttled(613);
            record_refusal(sb, caller, &endpoint, &body, &err).await;
            return resp;
        }
    };
    let ext = ext(sb);
    let now = sb.now_us();
    let caller_c = caller.clone();
    let cdn = Cdn { store: sb.extension::<MediaStore>(), base: sb.base_url().unwrap_or_default() };
    let result = sb
        .write(|w| {
            let outcome = execute(w, &ext, &cdn, &caller_c, &parsed, now);
            let text = match &parsed.kind {
                SendKind::Message(m) => m.text.clone(),
                _ => None,
            };
            let recipient = match &parsed.recipient {
                Recipient::Id(id) | Recipient::CommentId(id) => id.clone(),
            };
            let record = match &outcome {
                Ok(done) => SentRecord {
                    at_us: now,
                    surface: "graph".to_owned(),
                    endpoint: endpoint.clone(),
                    thread_id: done.thread_id.clone(),
                    item_id: done.item_id.clone(),
                    recipient: Some(recipient),
                    text,
                    accepted: true,
                    error: None,
                },
                Err(e) => SentRecord {
                    at_us: now,
                    surface: "graph".to_owned(),
                    endpoint: endpoint.clone(),
                    thread_id: None,
                    item_id: None,
                    recipient: Some(recipient),
                    text,
                    accepted: false,
                    error: Some(e.message.clone()),
                },
            };
            w.record_sent(&caller_c.account_id, record);
            outcome.map(|d| d.response)
        })
        .await;
    finish(sb, caller, class, usage, result)
}

async fn record_refusal(
    sb: &Sandbox,
    caller: &Caller,
    endpoint: &str,
    body: &Value,
    err: &GraphError,
) {
    let recipient = body
        .get("recipient")
        .and_then(|r| r.get("id").or_else(|| r.get("comment_id")))
        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned));
    let text =
        body.get("message").and_then(|m| m.get("text")).and_then(Value::as_str).map(str::to_owned);
    let record = SentRecord {
        at_us: sb.now_us(),
        surface: "graph".to_owned(),
        endpoint: endpoint.to_owned(),
        thread_id: None,
        item_id: None,
        recipient,
        text,
        accepted: false,
        error: Some(err.message.clone()),
    };
    let account = caller.account_id.clone();
    sb.write(|w| w.record_sent(&account, record)).await;
}

struct SendingAccount {
    id: String,
    pk: String,
}

struct Done {
    response: Value,
    thread_id: Option<String>,
    item_id: Option<String>,
}

/// The CDN that serves uploaded files' bytes.
struct Cdn {
    store: Arc<MediaStore>,
    base: String,
}

fn execute(
    w: &mut World,
    ext: &GraphExt,
    cdn: &Cdn,
    caller: &Caller,
    req: &SendRequest,
    now: Micros,
) -> Result<Done, GraphError> {
    // Only what the send needs: cloning the account would copy its whole sent log.
    let account = {
        let a = w.account(&caller.account_id).map_err(|_| GraphError::token_invalid())?;
        SendingAccount { id: a.id.clone(), pk: a.pk.clone() }
    };
    let (customer_pk, igsid, thread_id) = match &req.recipient {
        Recipient::Id(id) => {
            let user = w
                .users
                .values()
                .find(|u| &u.igsid == id && !u.is_account)
                .cloned()
                .ok_or_else(GraphError::no_matching_user)?;
            if ext.is_unavailable(&user.pk) {
                return Err(GraphError::person_unavailable());
            }
            let thread = w
                .find_thread(&account.id, std::slice::from_ref(&user.pk))
                .map(|t| t.id.clone())
                .ok_or_else(GraphError::no_matching_user)?;
            let last = w
                .account(&account.id)
                .ok()
                .and_then(|a| a.customer_last_message_at.get(&user.pk).copied())
                .ok_or_else(GraphError::no_matching_user)?;
            let limit = if req.messaging_type == MessagingType::MessageTag {
                HUMAN_AGENT_WINDOW_US
            } else {
                WINDOW_US
            };
            if now - last > limit {
                return Err(GraphError::outside_window());
            }
            (user.pk, user.igsid, thread)
        }
        Recipient::CommentId(comment_id) => {
            private_reply_target(w, ext, &account.id, comment_id, req, now)?
        }
    };
    if let Some(owner) = ext.owner(&account.id, &customer_pk)
        && owner != caller.app_id
    {
        return Err(GraphError::permission(
            "This thread is controlled by another app; take or request thread control before sending",
        ));
    }
    let recipient_only = json!({"recipient_id": igsid});
    match &req.kind {
        SendKind::Message(m) => {
            let new = new_item(ext, cdn, now, &account.id, m)?;
            let item = w
                .append_item(&thread_id, &account.pk, new)
                .map_err(|e| GraphError::invalid_param(e.to_string()))?;
            if let Recipient::CommentId(c) = &req.recipient
                && let Some(entry) = ext.lock().comments.get_mut(c)
            {
                entry.replied = true;
            }
            Ok(Done {
                response: json!({"recipient_id": igsid, "message_id": item.mid}),
                thread_id: Some(thread_id),
                item_id: Some(item.id),
            })
        }
        SendKind::React { message_id, .. } | SendKind::Unreact { message_id } => {
            let in_thread = w
                .thread(&thread_id)
                .ok()
                .and_then(|t| t.item(message_id))
                .is_some_and(|i| !i.deleted);
            if !in_thread {
                return Err(GraphError::invalid_param(
                    "Param payload[message_id] must be a message of this conversation",
                ));
            }
            let emoji = matches!(req.kind, SendKind::React { .. }).then_some(HEART);
            let item = w
                .set_reaction(&thread_id, message_id, &account.pk, emoji)
                .map_err(|e| GraphError::invalid_param(e.to_string()))?;
            Ok(Done {
                response: recipient_only,
                thread_id: Some(thread_id),
                item_id: Some(item.id),
            })
        }
        SendKind::TypingOn | SendKind::TypingOff => {
            w.emit(SandboxEvent::Typing {
                account: account.id.clone(),
                thread: thread_id.clone(),
                actor: account.pk.clone(),
                active: req.kind == SendKind::TypingOn,
            });
            Ok(Done { response: recipient_only, thread_id: Some(thread_id), item_id: None })
        }
        SendKind::MarkSeen => {
            let last = w.thread(&thread_id).ok().and_then(|t| {
                t.visible_items().rev().find(|i| i.sender != account.pk).map(|i| i.id.clone())
            });
            if let Some(item_id) = &last {
                w.mark_seen(&thread_id, item_id, &account.pk)
                    .map_err(|e| GraphError::invalid_param(e.to_string()))?;
            }
            Ok(Done { response: recipient_only, thread_id: Some(thread_id), item_id: last })
        }
    }
}

fn private_reply_target(
    w: &mut World,
    ext: &GraphExt,
    account_id: &str,
    comment_id: &str,
    req: &SendRequest,
    now: Micros,
) -> Result<(String, String, String), GraphError> {
    if !matches!(req.kind, SendKind::Message(_)) {
        return Err(GraphError::invalid_param(
            "A private reply (recipient[comment_id]) must carry a message",
        ));
    }
    let comment = ext
        .lock()
        .comments
        .get(comment_id)
        .filter(|c| c.account_id == account_id)
        .cloned()
        .ok_or_else(|| {
            GraphError::invalid_param(format!(
                "Param recipient[comment_id] is not a valid comment: {comment_id}"
            ))
        })?;
    if comment.replied {
        return Err(GraphError::permission("Only one private reply can be sent for a comment"));
    }
    if now - comment.at_us > PRIVATE_REPLY_WINDOW_US {
        return Err(GraphError::outside_window());
    }
    let igsid = w
        .users
        .get(&comment.sender_pk)
        .map(|u| u.igsid.clone())
        .ok_or_else(GraphError::no_matching_user)?;
    if ext.is_unavailable(&comment.sender_pk) {
        return Err(GraphError::person_unavailable());
    }
    let thread = w
        .thread_with(account_id, std::slice::from_ref(&comment.sender_pk), true)
        .map_err(|e| GraphError::invalid_param(e.to_string()))?;
    Ok((comment.sender_pk, igsid, thread))
}

fn new_item(
    ext: &GraphExt,
    cdn: &Cdn,
    now: Micros,
    account_id: &str,
    m: &OutMessage,
) -> Result<NewItem, GraphError> {
    let mut new = NewItem { text: m.text.clone(), ..NewItem::default() };
    if let Some(text) = &m.text
        && let Some(url) =
            text.split_whitespace().find(|w| w.starts_with("http://") || w.starts_with("https://"))
    {
        new.kind = Some(ItemKind::Link);
        new.link_url = Some(url.to_owned());
    }
    match &m.attachment {
        None => {}
        Some(OutAttachment::Media { kind, source }) => {
            let (kind, url) = match source {
                MediaSource::Url(u) => (*kind, u.clone()),
                MediaSource::AttachmentId(id) => {
                    let stored = ext
                        .lock()
                        .attachments
                        .get(id)
                        .filter(|a| a.account_id == account_id)
                        .cloned()
                        .ok_or_else(|| GraphError::invalid_param(format!("Param message[attachment][payload][attachment_id] is not a valid attachment: {id}")))?;
                    if stored.kind != *kind {
                        return Err(GraphError::invalid_param(format!(
                            "Attachment {id} is of type {}, not {}",
                            stored.kind.as_str(),
                            kind.as_str()
                        )));
                    }
                    // An uploaded file goes out with a fresh CDN link to its bytes.
                    let url = match &stored.media {
                        Some(media) => cdn.store.link(&cdn.base, media, now).ok_or_else(|| {
                            GraphError::invalid_param(format!("Attachment {id} has no content"))
                        })?,
                        None => stored.url,
                    };
                    (stored.kind, url)
                }
            };
            new.kind = Some(match kind {
                MediaKind::Audio => ItemKind::VoiceMedia,
                MediaKind::File => ItemKind::GenericXma,
                MediaKind::Image | MediaKind::Video => ItemKind::Media,
            });
            new.attachments.push(ItemAttachment { kind: kind.as_str().to_owned(), url });
        }
        Some(OutAttachment::LikeHeart) => {
            new.kind = Some(ItemKind::Like);
            new.text = Some(HEART.to_owned());
        }
        Some(OutAttachment::MediaShare { post_id }) => {
            if !ext.posts(account_id).iter().any(|p| p == post_id) {
                return Err(GraphError::invalid_param(format!(
                    "Param message[attachment][payload][id] must be a post owned by this Instagram account: {post_id} is not"
                )));
            }
            new.kind = Some(ItemKind::MediaShare);
            new.media_id = Some(post_id.clone());
            new.attachments.push(ItemAttachment {
                kind: "share".to_owned(),
                url: format!("https://www.instagram.com/p/{post_id}/"),
            });
        }
        Some(OutAttachment::Template { template_type, payload }) => {
            new.kind = Some(ItemKind::GenericXma);
            let summary = if template_type == "button" {
                payload.get("text").and_then(Value::as_str).map(str::to_owned)
            } else {
                payload
                    .get("elements")
                    .and_then(|e| e.get(0))
                    .and_then(|e| e.get("title"))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            };
            new.text = summary;
            new.attachments
                .push(ItemAttachment { kind: "template".to_owned(), url: String::new() });
        }
    }
    Ok(new)
}
