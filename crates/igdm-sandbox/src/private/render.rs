//! JSON shapes of the private API (users, items, threads, cursors).
//!
//! Deliberate irregularities, as Instagram has them: a user `pk` and an
//! item's `user_id` are JSON numbers for some users/items and strings for
//! others (decided by the id's last digit, so it is stable); item
//! timestamps are sometimes strings; unknown extra fields appear.

use base64::Engine as _;
use serde_json::{Map, Value, json};

use crate::state::{Item, ItemKind, Micros, Thread, User, World};

/// A pk as Instagram varies it: a number for even last digits, else a string.
#[must_use]
pub fn pk_value(pk: &str) -> Value {
    let even =
        pk.bytes().last().is_some_and(|b| b.is_ascii_digit() && (b - b'0').is_multiple_of(2));
    match pk.parse::<u64>() {
        Ok(n) if even => json!(n),
        _ => json!(pk),
    }
}

/// A pk as a JSON number when it parses (for `viewer_id` and friends).
#[must_use]
pub fn pk_number(pk: &str) -> Value {
    pk.parse::<u64>().map_or_else(|_| json!(pk), |n| json!(n))
}

/// A user in `users[]`, `viewer`, `inviter`.
#[must_use]
pub fn user(u: &User) -> Value {
    json!({
        "pk": pk_value(&u.pk),
        "pk_id": u.pk,
        "id": u.pk,
        "username": u.username,
        "full_name": u.full_name,
        "profile_pic_url": u.profile_pic_url,
        "profile_pic_id": format!("{}_{}", u.pk.chars().rev().collect::<String>(), u.pk),
        "is_private": u.is_private,
        "is_verified": u.is_verified,
        "has_anonymous_profile_picture": false,
        "friendship_status": {
            "following": u.is_business_follow_user,
            "blocking": false,
            "is_messaging_pseudo_blocking": false,
            "is_private": u.is_private,
            "incoming_request": false,
            "outgoing_request": false,
            "is_bestie": false,
            "is_restricted": false,
            "is_feed_favorite": false,
        },
        "interop_messaging_user_fbid": format!("1{}", &u.igsid[..u.igsid.len().min(15)]),
        "is_creator_agent_enabled": false,
    })
}

fn media_pk(item: &Item) -> String {
    item.id.chars().take(19).collect()
}

fn image_versions(url: &str) -> Value {
    json!({"candidates": [
        {"width": 1080, "height": 1350, "url": url, "scans_profile": "e35"},
        {"width": 640, "height": 800, "url": url, "scans_profile": "e35"},
    ]})
}

fn media_object(item: &Item, owner: &str, url: &str, video: bool) -> Value {
    let mut m = json!({
        "id": format!("{}_{owner}", media_pk(item)),
        "pk": media_pk(item),
        "media_type": if video { 2 } else { 1 },
        "original_width": 1080,
        "original_height": 1350,
        "image_versions2": image_versions(url),
        "organic_tracking_token": "eyJ2ZXJzaW9uIjo1fQ",
    });
    if video {
        m["video_versions"] =
            json!([{"type": 101, "width": 720, "height": 900, "url": url, "id": media_pk(item)}]);
        m["video_duration"] = json!(12.4);
    }
    m
}

fn first_url(item: &Item) -> String {
    item.attachments
        .first()
        .map(|a| a.url.clone())
        .or_else(|| item.link_url.clone())
        .unwrap_or_else(|| {
            format!("https://scontent.cdninstagram.com/v/t51.2885-15/{}_n.jpg", media_pk(item))
        })
}

fn xma(item: &Item, title: &str) -> Value {
    let url = first_url(item);
    json!([{
        "xma_layout_type": 0,
        "target_url": url,
        "title_text": title,
        "header_title_text": item.text.clone().unwrap_or_default(),
        "preview_url": url,
        "preview_width": 1080,
        "preview_height": 1920,
        "should_respect_server_preview_size": false,
    }])
}

/// An item, as in `items[]`. `viewer_pk` decides `is_sent_by_viewer`.
#[must_use]
pub fn item(thread: &Thread, it: &Item, viewer_pk: &str) -> Value {
    let last = it.id.bytes().last().unwrap_or(b'0');
    let user_id = if last.is_multiple_of(2) { pk_number(&it.sender) } else { json!(it.sender) };
    let timestamp = if last.is_multiple_of(3) {
        json!(it.timestamp_us.to_string())
    } else {
        json!(it.timestamp_us)
    };
    let mut m = Map::new();
    m.insert("item_id".into(), json!(it.id));
    m.insert("message_id".into(), json!(it.mid));
    m.insert("user_id".into(), user_id);
    m.insert("timestamp".into(), timestamp);
    m.insert("item_type".into(), json!(it.kind.as_str()));
    m.insert(
        "client_context".into(),
        json!(
            it.client_context
                .clone()
                .unwrap_or_else(|| it.id[it.id.len().saturating_sub(19)..].to_owned())
        ),
    );
    m.insert("is_sent_by_viewer".into(), json!(it.sender == viewer_pk));
    m.insert("show_forward_attribution".into(), json!(false));
    m.insert("is_shh_mode".into(), json!(false));
    m.insert("hide_in_thread".into(), json!(0));
    if !it.edits.is_empty() {
        m.insert("is_edited".into(), json!(true));
        m.insert("edit_count".into(), json!(it.edits.len()));
    }
    if !it.reactions.is_empty() {
        let emojis: Vec<Value> = it
            .reactions
            .iter()
            .map(|r| {
                json!({
                    "sender_id": pk_number(&r.sender),
                    "timestamp": r.timestamp_us,
                    "client_context": "",
                    "emoji": r.emoji,
                    "super_react_type": "none",
                })
            })
            .collect();
        let likes: Vec<Value> = it
            .reactions
            .iter()
            .filter(|r| r.emoji == "\u{2764}\u{fe0f}")
            .map(|r| json!({"sender_id": pk_number(&r.sender), "timestamp": r.timestamp_us}))
            .collect();
        m.insert(
            "reactions".into(),
            json!({"likes_count": likes.len(), "likes": likes, "emojis": emojis}),
        );
    }
    if let Some(target) = it.reply_to.as_ref().and_then(|r| thread.item(r)) {
        let mut replied = json!({
            "item_id": target.id,
            "user_id": pk_number(&target.sender),
            "timestamp": target.timestamp_us,
            "item_type": target.kind.as_str(),
            "is_sent_by_viewer": target.sender == viewer_pk,
        });
        if target.deleted {
            replied["text"] = Value::Null;
        } else if let Some(t) = &target.text {
            replied["text"] = json!(t);
        }
        m.insert("replied_to_message".into(), replied);
    }
    let text = it.text.clone().unwrap_or_default();
    match it.kind {
        ItemKind::Text | ItemKind::Postback => {
            m.insert("text".into(), json!(text));
        }
        ItemKind::Link => {
            let url = it.link_url.clone().unwrap_or_default();
            m.insert(
                "link".into(),
                json!({
                    "text": text,
                    "link_context": {
                        "link_url": url,
                        "link_title": url.trim_start_matches("https://").trim_start_matches("http://").split('/').next().unwrap_or_default(),
                        "link_summary": "",
                        "link_image_url": "",
                    },
                    "client_context": it.client_context,
                    "mutation_token": it.client_context,
                }),
            );
        }
        ItemKind::Like => {
            m.insert("like".into(), json!("\u{2764}\u{fe0f}"));
        }
        ItemKind::Media => {
            let video = it.attachments.first().is_some_and(|a| a.kind == "video");
            m.insert("media".into(), media_object(it, &it.sender, &first_url(it), video));
        }
        ItemKind::MediaShare => {
            let mut media = media_object(it, &it.sender, &first_url(it), false);
            media["code"] = json!(format!("C{}", &media_pk(it)[..10]));
            media["caption"] = json!({"text": text});
            if let Some(id) = &it.media_id {
                media["id"] = json!(id);
            }
            m.insert("media_share".into(), media);
        }
        ItemKind::ReelShare => {
            m.insert(
                "reel_share".into(),
                json!({
                    "text": text,
                    "type": "reply",
                    "reel_owner_id": pk_number(viewer_pk),
                    "is_reel_persisted": false,
                    "reel_type": "user_reel",
                    "media": media_object(it, viewer_pk, &first_url(it), false),
                }),
            );
        }
        ItemKind::Clip => {
            m.insert(
                "clip".into(),
                json!({"clip": media_object(it, &it.sender, &first_url(it), true)}),
            );
        }
        ItemKind::VoiceMedia => {
            m.insert(
                "voice_media".into(),
                json!({"media": {
                    "id": format!("{}_{}", media_pk(it), it.sender),
                    "media_type": 11,
                    "audio": {
                        "audio_src": first_url(it),
                        "duration": 4200,
                        "waveform_data": vec![0.25_f64; 20],
                        "waveform_sampling_frequency_hz": 10,
                    },
                }}),
            );
        }
        ItemKind::ActionLog => {
            m.insert(
                "action_log".into(),
                json!({"description": text, "bold": [], "text_attributes": []}),
            );
        }
        ItemKind::XmaMediaShare => {
            m.insert("xma_media_share".into(), xma(it, "Post"));
        }
        ItemKind::XmaStoryShare => {
            m.insert("xma_story_share".into(), xma(it, "Story"));
        }
        ItemKind::XmaReelMention => {
            m.insert("xma_reel_mention".into(), xma(it, "Mentioned you in their story"));
        }
        ItemKind::XmaClip => {
            m.insert("xma_clip".into(), xma(it, "Reel"));
        }
        ItemKind::GenericXma => {
            m.insert("generic_xma".into(), xma(it, &text));
        }
    }
    Value::Object(m)
}

/// Encodes an opaque cursor.
#[must_use]
pub fn encode_cursor(kind: &str, ts: Micros, id: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{kind}:{ts}:{id}"))
}

/// Decodes a cursor made by [`encode_cursor`] of the same `kind`.
#[must_use]
pub fn decode_cursor(kind: &str, raw: &str) -> Option<(Micros, String)> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(raw.trim()).ok()?;
    let s = String::from_utf8(bytes).ok()?;
    let mut parts = s.splitn(3, ':');
    if parts.next()? != kind {
        return None;
    }
    let ts = parts.next()?.parse().ok()?;
    Some((ts, parts.next()?.to_owned()))
}

/// A page of a thread's items, newest first, plus paging fields.
#[derive(Debug, Default)]
pub struct ItemsPage<'a> {
    /// Items, newest first.
    pub items: Vec<&'a Item>,
    /// More items older than the page.
    pub has_older: bool,
    /// More items newer than the page.
    pub has_newer: bool,
}

/// The thread object. `items` is the page to embed (newest first).
#[must_use]
pub fn thread(w: &World, t: &Thread, viewer_pk: &str, page: &ItemsPage<'_>) -> Value {
    let users: Vec<Value> =
        t.participants.iter().filter_map(|p| w.users.get(p)).map(user).collect();
    let items: Vec<Value> = page.items.iter().map(|i| item(t, i, viewer_pk)).collect();
    let last_activity = t.last_activity_us();
    let last_non_sender =
        t.visible_items().rev().find(|i| i.sender != viewer_pk).map_or(0, |i| i.timestamp_us);
    let mut last_seen = Map::new();
    for (pk, (item_id, ts)) in &t.last_seen {
        last_seen.insert(
            pk.clone(),
            json!({"item_id": item_id, "timestamp": ts.to_string(), "created_at": ts.to_string()}),
        );
    }
    let oldest = page.items.last();
    let newest = page.items.first();
    let oldest_cursor = oldest.map(|i| encode_cursor("item", i.timestamp_us, &i.id));
    let newest_cursor = newest.map(|i| encode_cursor("item", i.timestamp_us, &i.id));
    let title = t.title.clone().unwrap_or_else(|| {
        t.participants
            .iter()
            .filter_map(|p| w.users.get(p))
            .map(|u| u.username.clone())
            .collect::<Vec<_>>()
            .join(", ")
    });
    let inviter = w.accounts.get(&t.account).and_then(|a| w.users.get(&a.pk)).map(user);
    let mut v = json!({
        "thread_id": t.id,
        "thread_v2_id": t.v2_id,
        "thread_igid": t.id,
        "viewer_id": pk_number(viewer_pk),
        "users": users,
        "left_users": [],
        "admin_user_ids": if t.is_group { json!([pk_number(viewer_pk)]) } else { json!([]) },
        "items": items,
        "last_activity_at": last_activity,
        "last_non_sender_item_at": last_non_sender,
        "muted": t.muted,
        "vc_muted": false,
        "is_pin": false,
        "named": t.title.is_some(),
        "canonical": !t.is_group,
        "pending": t.pending,
        "archived": t.hidden,
        "is_spam": t.spam,
        "thread_type": "private",
        "is_group": t.is_group,
        "thread_title": title,
        "folder": 0,
        "read_state": i32::from(t.is_unread(viewer_pk)),
        "marked_as_unread": t.marked_unread,
        "input_mode": 0,
        "shh_mode_enabled": false,
        "theme": {"id": "418793046769837"},
        "last_seen_at": last_seen,
        "has_older": page.has_older,
        "has_newer": page.has_newer,
        "oldest_cursor": oldest_cursor,
        "newest_cursor": newest_cursor,
        "prev_cursor": newest_cursor,
        "next_cursor": oldest_cursor,
        "is_close_friend_thread": false,
        "relevancy_score": 0,
    });
    if let Some(inv) = inviter {
        v["inviter"] = inv;
    }
    if let Some(lp) = t.visible_items().next_back() {
        v["last_permanent_item"] = item(t, lp, viewer_pk);
    }
    v
}
