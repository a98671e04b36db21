//! Turns a verified delivery body into normalized [`Event`]s with their
//! de-duplication keys.
//!
//! Meta sends two shapes, sometimes for the same field: messaging items under
//! `entry[].messaging[]` (or `entry[].standby[]` for apps not in control of
//! the thread) and change items under `entry[].changes[]{field, value}`. Both
//! are accepted for every field. The parser works on `serde_json::Value` and
//! never fails on an odd item: what it does not recognise becomes an event of
//! an unknown kind that keeps the raw item.

use igdm_model::{
    Attachment, AttachmentType, Event, EventKind, EventPostback, EventReaction, Timestamp,
};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

/// Why a body could not be parsed at all (it is dead-lettered).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The body is not JSON.
    #[error("body is not JSON: {0}")]
    NotJson(String),
    /// The body is JSON but not a webhook envelope (`{"entry": [...]}`).
    #[error("body is not a webhook envelope: {0}")]
    NotEnvelope(&'static str),
}

/// One event parsed from a delivery, ready for the event log.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedEvent {
    /// The key that makes a retried delivery apply once.
    pub dedup_key: String,
    /// The normalized event. Unknown kinds carry the raw item in `details.raw`.
    pub event: Event,
}

impl ParsedEvent {
    /// Whether the kind is one this version knows.
    #[must_use]
    pub fn is_known(&self) -> bool {
        self.event.kind.is_known()
    }
}

/// A parsed delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedDelivery {
    /// The envelope's `object` (`instagram`, `page`), when present.
    pub object: Option<String>,
    /// Every event, in the order they appear.
    pub events: Vec<ParsedEvent>,
}

/// Parses a delivery body. `received_at` stands in for a missing timestamp.
///
/// # Errors
/// When the body is not JSON or has no `entry` array; such a delivery is kept
/// in the dead-letter table.
pub fn parse_delivery(body: &[u8], received_at: Timestamp) -> Result<ParsedDelivery, ParseError> {
    let root: Value =
        serde_json::from_slice(body).map_err(|e| ParseError::NotJson(e.to_string()))?;
    let Value::Object(root) = root else {
        return Err(ParseError::NotEnvelope("the body is not a JSON object"));
    };
    let Some(Value::Array(entries)) = root.get("entry") else {
        return Err(ParseError::NotEnvelope("there is no `entry` array"));
    };
    let object = root.get("object").and_then(Value::as_str).map(str::to_owned);
    let mut events = Vec::new();
    for entry in entries {
        parse_entry(entry, received_at, &mut events);
    }
    Ok(ParsedDelivery { object, events })
}

fn parse_entry(entry: &Value, received_at: Timestamp, out: &mut Vec<ParsedEvent>) {
    let Value::Object(entry) = entry else {
        out.push(unknown("entry", "", entry, received_at, None));
        return;
    };
    let account_id = entry.get("id").and_then(id_of).unwrap_or_default();
    let entry_time = entry.get("time").and_then(event_time);
    let fallback_time = entry_time.unwrap_or(received_at);
    for (list, standby) in [("messaging", false), ("standby", true)] {
        if let Some(items) = entry.get(list) {
            for item in as_items(items) {
                out.push(parse_messaging(&account_id, item, fallback_time, standby, None));
            }
        }
    }
    if let Some(changes) = entry.get("changes") {
        for change in as_items(changes) {
            out.push(parse_change(&account_id, change, fallback_time));
        }
    }
    // The flat form some documentation shows: `entry.field` / `entry.value`.
    if entry.contains_key("field") && entry.contains_key("value") && !entry.contains_key("changes")
    {
        out.push(parse_change(&account_id, &Value::Object(entry.clone()), fallback_time));
    }
}

fn as_items(v: &Value) -> Vec<&Value> {
    match v {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    }
}

/// An id given as a string or an integer.
fn id_of(v: &Value) -> Option<String> {
    igdm_model::ids::id_from_json(v).filter(|s| !s.is_empty())
}

/// A millisecond value given as an integer, a float or a numeric string.
fn millis(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64().filter(|f| f.is_finite() && f.abs() < 9.0e15).map(|f| {
                #[allow(clippy::cast_possible_truncation)]
                let ms = f as i64;
                ms
            })
        }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Below this, a webhook time is in seconds, not milliseconds: as milliseconds
/// it would fall before March 1973, as seconds it is beyond the year 5000.
const SECONDS_BELOW: i64 = 100_000_000_000;

/// A webhook time. Meta's examples use milliseconds for messaging events and
/// `entry.time`, but seconds for some change events (`mentions`: `"time":
/// 1520622968`); a value too small to be milliseconds of this era is seconds.
fn event_time(v: &Value) -> Option<Timestamp> {
    let n = millis(v)?;
    if n.abs() < SECONDS_BELOW {
        Timestamp::from_unix_seconds(n)
    } else {
        Timestamp::from_unix_millis(n)
    }
}

fn str_of(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn bool_of(v: Option<&Value>) -> bool {
    matches!(v, Some(Value::Bool(true)))
}

fn content_hash(account_id: &str, item: &Value) -> String {
    let mut h = Sha256::new();
    h.update(account_id.as_bytes());
    h.update([0]);
    h.update(serde_json::to_vec(item).unwrap_or_default());
    hex::encode(h.finalize())
}

fn base_event(kind: EventKind, account_id: &str, timestamp: Timestamp) -> Event {
    Event::new(kind, account_id, timestamp)
}

fn unknown(
    kind: &str,
    account_id: &str,
    item: &Value,
    timestamp: Timestamp,
    field: Option<&str>,
) -> ParsedEvent {
    let kind = if kind.is_empty() { "unknown" } else { kind };
    let mut event = base_event(EventKind::Unknown(kind.to_owned()), account_id, timestamp);
    let mut details = Map::new();
    if let Some(field) = field {
        details.insert("field".into(), Value::String(field.to_owned()));
    }
    details.insert("raw".into(), item.clone());
    event.details = Some(Value::Object(details));
    ParsedEvent {
        dedup_key: format!("{account_id}:unknown:{}", content_hash(account_id, item)),
        event,
    }
}

/// Merges `extra` into the event's details object.
fn add_details(event: &mut Event, extra: Map<String, Value>) {
    if extra.is_empty() {
        return;
    }
    match event.details.as_mut() {
        Some(Value::Object(d)) => d.extend(extra),
        _ => event.details = Some(Value::Object(extra)),
    }
}

/// The keys of a messaging item that are not its event body.
const ENVELOPE_KEYS: &[&str] = &["sender", "recipient", "timestamp", "time"];

fn parse_messaging(
    account_id: &str,
    item: &Value,
    fallback_time: Timestamp,
    standby: bool,
    field: Option<&str>,
) -> ParsedEvent {
    let Value::Object(obj) = item else {
        return unknown(field.unwrap_or("messaging"), account_id, item, fallback_time, field);
    };
    let raw_ts = obj.get("timestamp").and_then(millis);
    let timestamp = obj.get("timestamp").and_then(event_time).unwrap_or(fallback_time);
    let ts_key = raw_ts.map_or_else(|| "-".to_owned(), |t| t.to_string());
    let sender = obj.get("sender").and_then(|s| s.get("id")).and_then(id_of);
    let recipient = obj.get("recipient").and_then(|s| s.get("id")).and_then(id_of);
    // The customer is whichever side is not the account.
    let customer = match (&sender, &recipient) {
        (Some(s), _) if s != account_id => Some(s.clone()),
        (_, Some(r)) => Some(r.clone()),
        (s, None) => s.clone(),
    };
    let ev = |kind: EventKind| {
        let mut e = base_event(kind, account_id, timestamp);
        e.sender_id.clone_from(&sender);
        e.recipient_id.clone_from(&recipient);
        e.conversation_id.clone_from(&customer);
        let mut d = Map::new();
        if standby {
            d.insert("standby".into(), Value::Bool(true));
        }
        if let Some(f) = field {
            d.insert("field".into(), Value::String(f.to_owned()));
        }
        add_details(&mut e, d);
        e
    };
    let sender_key = sender.clone().unwrap_or_else(|| "-".to_owned());

    if let Some(msg) = obj.get("message").filter(|m| m.is_object()) {
        let mid = str_of(msg.get("mid"));
        let is_deleted = bool_of(msg.get("is_deleted"));
        let kind = if is_deleted { EventKind::MessageDeleted } else { EventKind::Message };
        let mut e = ev(kind.clone());
        e.message_id.clone_from(&mid);
        e.is_echo = bool_of(msg.get("is_echo"));
        e.text = str_of(msg.get("text"));
        let mut d = Map::new();
        if let Some(Value::Array(atts)) = msg.get("attachments") {
            e.attachments = atts.iter().map(attachment).collect();
            d.insert("attachments".into(), Value::Array(atts.clone()));
        }
        if let Some(reply) = msg.get("reply_to").filter(|v| !v.is_null()) {
            e.reply_to = Some(reply.clone());
        }
        e.quick_reply_payload = msg.get("quick_reply").and_then(|q| str_of(q.get("payload")));
        for flag in ["is_self", "is_unsupported"] {
            if bool_of(msg.get(flag)) {
                d.insert(flag.into(), Value::Bool(true));
            }
        }
        if let Some(r) =
            msg.get("referral").or_else(|| obj.get("referral")).filter(|v| !v.is_null())
        {
            d.insert("referral".into(), r.clone());
        }
        add_details(&mut e, d);
        let key = match (&mid, is_deleted) {
            (Some(mid), false) => format!("{account_id}:message:{mid}"),
            (Some(mid), true) => format!("{account_id}:deleted:{mid}"),
            (None, _) => format!("{account_id}:{kind}:{}", content_hash(account_id, item)),
        };
        return ParsedEvent { dedup_key: key, event: e };
    }
    if let Some(edit) = obj.get("message_edit").filter(|m| m.is_object()) {
        let mut e = ev(EventKind::MessageEdit);
        let mid = str_of(edit.get("mid"));
        e.message_id.clone_from(&mid);
        e.text = str_of(edit.get("text"));
        let num_edit = edit.get("num_edit").and_then(millis);
        if let Some(n) = num_edit {
            add_details(&mut e, Map::from_iter([("num_edit".to_owned(), json!(n))]));
        }
        let key = match mid {
            Some(mid) => format!(
                "{account_id}:edit:{mid}:{}",
                num_edit.map_or_else(|| ts_key.clone(), |n| n.to_string())
            ),
            None => format!("{account_id}:edit:{}", content_hash(account_id, item)),
        };
        return ParsedEvent { dedup_key: key, event: e };
    }
    if let Some(r) = obj.get("reaction").filter(|m| m.is_object()) {
        let mut e = ev(EventKind::Reaction);
        let mid = str_of(r.get("mid"));
        e.message_id.clone_from(&mid);
        let action = str_of(r.get("action")).unwrap_or_else(|| "react".to_owned());
        let reaction = str_of(r.get("reaction"));
        e.reaction = Some(EventReaction {
            action: action.clone(),
            emoji: str_of(r.get("emoji")),
            reaction: reaction.clone(),
        });
        let key = format!(
            "{account_id}:reaction:{}:{action}:{}:{ts_key}:{sender_key}",
            mid.as_deref().unwrap_or("-"),
            reaction.as_deref().unwrap_or("-")
        );
        return ParsedEvent { dedup_key: key, event: e };
    }
    if let Some(p) = obj.get("postback").filter(|m| m.is_object()) {
        let mut e = ev(EventKind::Postback);
        let mid = str_of(p.get("mid"));
        e.message_id.clone_from(&mid);
        e.postback = Some(EventPostback {
            title: str_of(p.get("title")),
            payload: str_of(p.get("payload")),
        });
        if let Some(r) = p.get("referral").filter(|v| !v.is_null()) {
            add_details(&mut e, Map::from_iter([("referral".to_owned(), r.clone())]));
        }
        let key = match mid {
            Some(mid) => format!("{account_id}:postback:{mid}"),
            None => format!("{account_id}:postback:{sender_key}:{ts_key}"),
        };
        return ParsedEvent { dedup_key: key, event: e };
    }
    if let Some(read) = obj.get("read").filter(|m| m.is_object()) {
        let mut e = ev(EventKind::Seen);
        e.message_id = str_of(read.get("mid"));
        if let Some(w) = read.get("watermark").filter(|v| !v.is_null()) {
            add_details(&mut e, Map::from_iter([("watermark".to_owned(), w.clone())]));
        }
        return ParsedEvent {
            dedup_key: format!("{account_id}:seen:{sender_key}:{ts_key}"),
            event: e,
        };
    }
    let handover =
        ["pass_thread_control", "take_thread_control", "request_thread_control", "app_roles"]
            .into_iter()
            .find(|k| obj.contains_key(*k));
    if let Some(action) = handover {
        let mut e = ev(EventKind::Handover);
        let mut d = Map::new();
        d.insert("action".into(), Value::String(action.to_owned()));
        d.insert(action.into(), obj.get(action).cloned().unwrap_or(Value::Null));
        add_details(&mut e, d);
        return ParsedEvent {
            dedup_key: format!("{account_id}:handover:{action}:{sender_key}:{ts_key}"),
            event: e,
        };
    }
    if let Some(r) = obj.get("referral").filter(|v| !v.is_null()) {
        let mut e = ev(EventKind::Referral);
        add_details(&mut e, Map::from_iter([("referral".to_owned(), r.clone())]));
        return ParsedEvent {
            dedup_key: format!("{account_id}:referral:{}", content_hash(account_id, item)),
            event: e,
        };
    }
    if let Some(o) = obj.get("optin").filter(|v| !v.is_null()) {
        let mut e = ev(EventKind::Optin);
        add_details(&mut e, Map::from_iter([("optin".to_owned(), o.clone())]));
        return ParsedEvent {
            dedup_key: format!("{account_id}:optin:{}", content_hash(account_id, item)),
            event: e,
        };
    }
    let kind = obj
        .keys()
        .find(|k| !ENVELOPE_KEYS.contains(&k.as_str()))
        .map_or("messaging", String::as_str);
    let mut p = unknown(kind, account_id, item, timestamp, field);
    p.event.sender_id = sender;
    p.event.recipient_id = recipient;
    p.event.conversation_id = customer;
    p
}

/// Every webhook field the parser reads: the messaging fields below plus the
/// change fields `comments`, `live_comments` and `mentions`. Each has a
/// documented-example fixture under `connectors/fixtures/webhooks/`.
pub const KNOWN_FIELDS: &[&str] = &[
    "messages",
    "message_echoes",
    "message_reactions",
    "message_edit",
    "messaging_seen",
    "messaging_postbacks",
    "messaging_referral",
    "messaging_handover",
    "messaging_optins",
    "standby",
    "comments",
    "live_comments",
    "mentions",
];

/// Fields whose `changes[].value` is a messaging item: the first ten of
/// [`KNOWN_FIELDS`].
const MESSAGING_FIELDS: &[&str] = KNOWN_FIELDS.split_at(10).0;

fn parse_change(account_id: &str, change: &Value, fallback_time: Timestamp) -> ParsedEvent {
    let field = change.get("field").and_then(Value::as_str).unwrap_or_default();
    let Some(value) = change.get("value") else {
        return unknown(
            if field.is_empty() { "change" } else { field },
            account_id,
            change,
            fallback_time,
            Some(field),
        );
    };
    if MESSAGING_FIELDS.contains(&field) {
        return parse_messaging(account_id, value, fallback_time, field == "standby", Some(field));
    }
    let ts = value.get("timestamp").and_then(event_time).unwrap_or(fallback_time);
    match field {
        "comments" | "live_comments" => {
            let mut e = base_event(EventKind::Comment, account_id, ts);
            let id = value.get("id").or_else(|| value.get("comment_id")).and_then(id_of);
            e.message_id.clone_from(&id);
            e.text = str_of(value.get("text"));
            e.sender_id = value.get("from").and_then(|f| f.get("id")).and_then(id_of);
            e.recipient_id = Some(account_id.to_owned());
            let mut d = Map::new();
            d.insert("field".into(), Value::String(field.to_owned()));
            for k in ["from", "media", "parent_id"] {
                if let Some(v) = value.get(k).filter(|v| !v.is_null()) {
                    d.insert(k.into(), v.clone());
                }
            }
            add_details(&mut e, d);
            let key = match id {
                Some(id) => format!("{account_id}:comment:{id}"),
                None => format!("{account_id}:comment:{}", content_hash(account_id, value)),
            };
            ParsedEvent { dedup_key: key, event: e }
        }
        "mentions" => {
            let mut e = base_event(EventKind::Mention, account_id, ts);
            e.recipient_id = Some(account_id.to_owned());
            e.message_id = value.get("comment_id").and_then(id_of);
            let mut d = Map::new();
            d.insert("field".into(), Value::String(field.to_owned()));
            for k in ["media_id", "comment_id"] {
                if let Some(v) = value.get(k).filter(|v| !v.is_null()) {
                    d.insert(k.into(), v.clone());
                }
            }
            add_details(&mut e, d);
            ParsedEvent {
                dedup_key: format!("{account_id}:mention:{}", content_hash(account_id, value)),
                event: e,
            }
        }
        other => unknown(
            if other.is_empty() { "change" } else { other },
            account_id,
            value,
            ts,
            Some(field),
        ),
    }
}

fn attachment(a: &Value) -> Attachment {
    let raw_type = a.get("type").and_then(Value::as_str).unwrap_or("unknown");
    let kind = match raw_type {
        "image" => AttachmentType::Image,
        "video" => AttachmentType::Video,
        "audio" => AttachmentType::Audio,
        "file" => AttachmentType::File,
        "share" | "ig_post" | "ig_reel" | "reel" => AttachmentType::Share,
        "story_mention" | "story" | "ig_story" => AttachmentType::Story,
        "fallback" | "template" => AttachmentType::Link,
        other => AttachmentType::Unknown(other.to_owned()),
    };
    let payload = a.get("payload");
    Attachment {
        kind,
        url: payload.and_then(|p| str_of(p.get("url"))),
        mime: None,
        size: None,
        duration: None,
    }
}

#[cfg(test)]
mod tests;
