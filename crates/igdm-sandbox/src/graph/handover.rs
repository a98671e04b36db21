//! Facebook-Login-only endpoints: the Handover Protocol and reusable
//! attachment upload (`message_attachments`).

use std::sync::Arc;

use axum::Json;
use serde_json::{Value, json};

use super::FilePart;
use super::error::GraphError;
use super::ext::{StoredAttachment, ext};
use super::send::MediaKind;
use super::send::parse_send;
use super::{Caller, Flavour, Req};
use crate::private::rupload::{MediaKind as Stored, MediaStore};
use crate::state::Sandbox;
use crate::webhooks::{WebhookItem, hub};

fn page_only(caller: &Caller, edge: &str) -> Result<(), GraphError> {
    if caller.flavour == Flavour::Page { Ok(()) } else { Err(GraphError::unknown_path(edge)) }
}

/// `POST /{page-id}/message_attachments`.
pub(crate) async fn upload_attachment(
    sb: &Arc<Sandbox>,
    caller: &Caller,
    req: &Req,
) -> Result<Json<Value>, GraphError> {
    page_only(caller, "message_attachments")?;
    match req.param("platform").as_deref() {
        Some("instagram") => {}
        None => return Err(GraphError::missing_param("platform")),
        Some(other) => {
            return Err(GraphError::invalid_param(format!(
                "Param platform must be one of {{instagram}} - got \"{other}\"."
            )));
        }
    }
    let message = req.params.get("message").ok_or_else(|| GraphError::missing_param("message"))?;
    if let Some(part) = req.files.get("filedata") {
        return upload_file(sb, caller, message, part);
    }
    // Reuse the Send API validation for the attachment itself.
    let probe = json!({"recipient": {"id": "0"}, "message": message});
    let parsed = parse_send(&probe)?;
    let super::send::SendKind::Message(m) = parsed.kind else {
        return Err(GraphError::missing_param("message[attachment]"));
    };
    let Some(super::send::OutAttachment::Media {
        kind,
        source: super::send::MediaSource::Url(url),
    }) = m.attachment
    else {
        return Err(GraphError::invalid_param(
            "Param message[attachment] must be an image, video, audio or file with payload[url]",
        ));
    };
    let ext = ext(sb);
    let id = ext.fresh_id("5");
    ext.lock().attachments.insert(
        id.clone(),
        StoredAttachment { account_id: caller.account_id.clone(), kind, url, media: None },
    );
    Ok(Json(json!({"attachment_id": id})))
}

/// An upload "from a server" (Meta's "Upload Media for Instagram
/// Messaging", developers.facebook.com/documentation/business-messaging/
/// instagram-messaging/features/attachment-upload): the file in the
/// `filedata` part, `message.attachment.type` naming its kind. The page's
/// table of formats and sizes, and its refusal of non-ASCII file names, are
/// checked; the bytes are kept and served from the CDN when sent.
fn upload_file(
    sb: &Arc<Sandbox>,
    caller: &Caller,
    message: &Value,
    part: &FilePart,
) -> Result<Json<Value>, GraphError> {
    let attachment = message
        .get("attachment")
        .ok_or_else(|| GraphError::missing_param("message[attachment]"))?;
    let raw = attachment
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| GraphError::missing_param("message[attachment][type]"))?;
    let kind = MediaKind::parse(raw).ok_or_else(|| {
        GraphError::invalid_param(format!(
            "Param message[attachment][type] must be one of {{image, video, audio, file}} - got \"{raw}\"."
        ))
    })?;
    if attachment.pointer("/payload/url").is_some() {
        return Err(GraphError::invalid_param(
            "Only one of message[attachment][payload][url] or filedata can be set",
        ));
    }
    if !part.filename.is_ascii() || part.filename.is_empty() {
        return Err(GraphError::invalid_param(
            "filedata: the file name must be ASCII (non-ASCII file names are not supported)",
        ));
    }
    // Formats per kind, by content type and by the bytes themselves.
    let ctype = part.content_type.as_deref().unwrap_or_default();
    let head = &part.bytes[..part.bytes.len().min(16)];
    let (stored, mime, ok) = match kind {
        MediaKind::Image => {
            let (mime, ok): (&'static str, bool) = match ctype {
                "image/jpeg" => ("image/jpeg", head.starts_with(&[0xFF, 0xD8, 0xFF])),
                "image/png" => ("image/png", head.starts_with(b"\x89PNG")),
                "image/gif" => ("image/gif", head.starts_with(b"GIF8")),
                _ => ("", false),
            };
            (Stored::Image, mime, ok)
        }
        MediaKind::Video => {
            let mime = if ctype == "video/quicktime" { "video/quicktime" } else { "video/mp4" };
            (
                Stored::Video,
                mime,
                matches!(ctype, "video/mp4" | "video/quicktime") && Stored::Video.looks_right(head),
            )
        }
        MediaKind::Audio => (
            Stored::Audio,
            "audio/mp4",
            matches!(ctype, "audio/mp4" | "audio/aac" | "audio/x-m4a")
                && Stored::Audio.looks_right(head),
        ),
        MediaKind::File => (
            Stored::File,
            "application/pdf",
            ctype == "application/pdf" && Stored::File.looks_right(head),
        ),
    };
    if !ok {
        return Err(GraphError::invalid_param(format!(
            "filedata: {ctype:?} content is not a supported {} format",
            kind.as_str()
        )));
    }
    if part.bytes.len() as u64 > stored.max_bytes() {
        return Err(GraphError::invalid_param(format!(
            "filedata: the {} is larger than {} bytes",
            kind.as_str(),
            stored.max_bytes()
        )));
    }
    let media =
        sb.extension::<MediaStore>().keep(&caller.account_id, stored, mime, part.bytes.clone());
    let ext = ext(sb);
    let id = ext.fresh_id("5");
    ext.lock().attachments.insert(
        id.clone(),
        StoredAttachment {
            account_id: caller.account_id.clone(),
            kind,
            url: String::new(),
            media: Some(media),
        },
    );
    Ok(Json(json!({"attachment_id": id})))
}

fn recipient_pk(w: &crate::state::World, req: &Req) -> Result<(String, String), GraphError> {
    let raw = req.params.get("recipient").ok_or_else(|| GraphError::missing_param("recipient"))?;
    let id = match raw {
        Value::Object(o) => o.get("id").and_then(|v| {
            v.as_str().map(str::to_owned).or_else(|| v.as_u64().map(|n| n.to_string()))
        }),
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
    .ok_or_else(|| GraphError::missing_param("recipient[id]"))?;
    w.users
        .values()
        .find(|u| u.igsid == id && !u.is_account)
        .map(|u| (u.pk.clone(), u.igsid.clone()))
        .ok_or_else(GraphError::no_matching_user)
}

/// The handover endpoints.
pub(crate) async fn handle(
    sb: &Arc<Sandbox>,
    caller: &Caller,
    req: &Req,
    edge: &str,
) -> Result<Json<Value>, GraphError> {
    page_only(caller, edge)?;
    let ext = ext(sb);
    let receivers = ext.receivers(&caller.account_id);
    if edge == "secondary_receivers" {
        let data: Vec<Value> = receivers
            .secondary
            .iter()
            .map(|id| {
                let name = if id == super::ext::PAGE_INBOX_APP_ID {
                    "Page Inbox".to_owned()
                } else {
                    format!("App {id}")
                };
                json!({"id": id, "name": name})
            })
            .collect();
        return Ok(Json(json!({"data": data})));
    }
    let (pk, igsid) = if edge == "thread_owner" {
        let id = req.param("recipient").ok_or_else(|| GraphError::missing_param("recipient"))?;
        sb.read(|w| {
            w.users
                .values()
                .find(|u| u.igsid == id && !u.is_account)
                .map(|u| (u.pk.clone(), u.igsid.clone()))
        })
        .await
        .ok_or_else(GraphError::no_matching_user)?
    } else {
        sb.read(|w| recipient_pk(w, req)).await?
    };
    let account = caller.account_id.clone();
    let key = (account.clone(), pk.clone());
    let metadata = req.param("metadata");
    let current = ext.owner(&account, &pk);
    let (kind, body) = match edge {
        "thread_owner" => {
            let data: Vec<Value> =
                current.iter().map(|o| json!({"thread_owner": {"app_id": o}})).collect();
            return Ok(Json(json!({"data": data})));
        }
        "pass_thread_control" => {
            let target = req
                .param("target_app_id")
                .ok_or_else(|| GraphError::missing_param("target_app_id"))?;
            if current.as_ref().is_some_and(|o| o != &caller.app_id) {
                return Err(GraphError::permission(
                    "Only the thread owner can pass thread control",
                ));
            }
            let known =
                target == receivers.primary || receivers.secondary.iter().any(|s| s == &target);
            if !known {
                return Err(GraphError::invalid_param(format!(
                    "Param target_app_id must be the primary or a secondary receiver: {target} is not"
                )));
            }
            ext.lock().owners.insert(key, target.clone());
            (
                "pass_thread_control",
                json!({"previous_owner_app_id": current.unwrap_or_else(|| caller.app_id.clone()), "new_owner_app_id": target, "metadata": metadata}),
            )
        }
        "take_thread_control" => {
            let idle = current.is_none();
            if caller.app_id != receivers.primary && !idle {
                return Err(GraphError::permission(
                    "Only the primary receiver can take thread control",
                ));
            }
            ext.lock().owners.insert(key, caller.app_id.clone());
            (
                "take_thread_control",
                json!({"previous_owner_app_id": current, "new_owner_app_id": caller.app_id, "metadata": metadata}),
            )
        }
        "release_thread_control" => {
            if current.as_ref() != Some(&caller.app_id) {
                return Err(GraphError::permission(
                    "Only the thread owner can release thread control",
                ));
            }
            ext.lock().owners.remove(&key);
            (
                "pass_thread_control",
                json!({"previous_owner_app_id": caller.app_id, "new_owner_app_id": receivers.primary, "metadata": metadata}),
            )
        }
        _ => {
            // request_thread_control
            if current.as_ref() == Some(&caller.app_id) {
                return Err(GraphError::invalid_param("The app already controls this thread"));
            }
            (
                "request_thread_control",
                json!({"requested_owner_app_id": caller.app_id, "metadata": metadata}),
            )
        }
    };
    let now_ms = sb.now_us() / 1000;
    // Handover notices go to every subscribed app, never as standby.
    hub(sb).enqueue(WebhookItem::messaging(
        account.clone(),
        "messaging_handover",
        json!({
            "sender": {"id": igsid},
            "recipient": {"id": account},
            "timestamp": now_ms,
            kind: body,
        }),
    ));
    tracing::debug!(edge, account = %caller.account_id, "thread control changed");
    Ok(Json(json!({"success": true})))
}
