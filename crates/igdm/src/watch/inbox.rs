//! Turning an inbox snapshot of the private API into normalized events, by
//! comparing it with what the local store holds.
//!
//! The inbox answer (`GET direct_v2/inbox/`, the reference's §6.1) carries,
//! besides the threads, the account's realtime sequence number `seq_id` and
//! `snapshot_at_ms`; each thread carries its newest items (with their
//! reactions and `is_edited` / `edit_count`) and `last_seen_at`, where each
//! participant stopped reading. Items are mapped with the connector's own
//! `list` mapping, so a message reads the same here as in `igdm messages`.

use std::collections::{HashMap, HashSet};

use serde_json::{Value, json};

use igdm_model::{Conversation, Event, EventKind, EventReaction, Message, Page, Timestamp};
use igdm_spec::Connector;

use crate::Error;

/// What a poll of the inbox saw, before it is compared with the store.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    /// The account's realtime sequence number.
    pub seq_id: Option<i64>,
    /// When Instagram took the snapshot (ms).
    pub snapshot_at_ms: Option<i64>,
    /// Message requests waiting.
    pub pending_requests: u64,
    /// The viewer's own id.
    pub viewer: Option<String>,
    /// Threads with their newest items.
    pub threads: Vec<ThreadSnapshot>,
    /// `seq_id` has not moved since the last poll: nothing was read.
    pub unchanged: bool,
}

/// One thread of the snapshot.
#[derive(Debug)]
pub(crate) struct ThreadSnapshot {
    pub conversation: Conversation,
    /// Newest first.
    pub messages: Vec<Message>,
    /// Whether older items exist beyond `messages`.
    pub has_older: bool,
    /// The cursor to older items.
    pub oldest_cursor: Option<String>,
    /// item id → `edit_count`.
    pub edit_counts: HashMap<String, u64>,
    /// (message id, sender) → reaction time (µs), as Instagram reports it.
    pub reaction_times: HashMap<(String, String), i64>,
    /// Participant id → (item id, µs) where they stopped reading.
    pub last_seen: Vec<(String, String, i64)>,
}

fn id_of(v: &Value) -> Option<String> {
    igdm_model::ids::id_from_json(v)
}

fn int_of(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

/// Reads one inbox answer (`list_conversations` or `list_pending`).
/// `conversations` is the connector's mapping of the same answer.
pub(crate) fn read_inbox(
    connector: &Connector,
    raw: &Value,
    conversations: Vec<Conversation>,
    into: &mut Snapshot,
) -> Result<(), Error> {
    into.seq_id = into.seq_id.or_else(|| raw.get("seq_id").and_then(int_of));
    into.snapshot_at_ms =
        into.snapshot_at_ms.or_else(|| raw.get("snapshot_at_ms").and_then(int_of));
    if let Some(n) = raw.get("pending_requests_total").and_then(Value::as_u64) {
        into.pending_requests = n;
    }
    if into.viewer.is_none() {
        into.viewer = raw.get("viewer").and_then(|v| v.get("pk")).and_then(id_of);
    }
    let threads = raw
        .get("inbox")
        .and_then(|i| i.get("threads"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut by_id: HashMap<String, Conversation> =
        conversations.into_iter().map(|c| (c.id.to_string(), c)).collect();
    for t in threads {
        let Some(id) = t.get("thread_id").and_then(id_of) else { continue };
        let Some(conversation) = by_id.remove(&id) else { continue };
        if into.viewer.is_none() {
            into.viewer = t.get("viewer_id").and_then(id_of);
        }
        into.threads.push(read_thread(connector, &id, t, conversation)?);
    }
    Ok(())
}

/// Maps a thread object's items with the connector's `list` mapping.
pub(crate) fn thread_page(
    connector: &Connector,
    id: &str,
    thread: &Value,
) -> Result<Page<Message>, Error> {
    let body = serde_json::to_vec(&json!({ "thread": thread }))
        .map_err(|e| Error::Shape(e.to_string()))?;
    let params = crate::ops::params(&[("conversation_id", json!(id))]);
    let out =
        connector.map_body("list", &params, &body).map_err(|e| Error::Shape(e.to_string()))?;
    Ok(crate::ops::page_of::<Message>("list", out)?.0)
}

fn read_thread(
    connector: &Connector,
    id: &str,
    t: &Value,
    conversation: Conversation,
) -> Result<ThreadSnapshot, Error> {
    let page = thread_page(connector, id, t)?;
    let mut edit_counts = HashMap::new();
    let mut reaction_times = HashMap::new();
    for item in t.get("items").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default() {
        let Some(item_id) = item.get("item_id").and_then(id_of) else { continue };
        if let Some(n) = item.get("edit_count").and_then(Value::as_u64) {
            edit_counts.insert(item_id.clone(), n);
        }
        let emojis = item
            .get("reactions")
            .and_then(|r| r.get("emojis"))
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        for r in emojis {
            if let (Some(sender), Some(ts)) =
                (r.get("sender_id").and_then(id_of), r.get("timestamp").and_then(int_of))
            {
                reaction_times.insert((item_id.clone(), sender), ts);
            }
        }
    }
    let mut last_seen = Vec::new();
    if let Some(seen) = t.get("last_seen_at").and_then(Value::as_object) {
        for (pk, at) in seen {
            if let (Some(item), Some(ts)) =
                (at.get("item_id").and_then(id_of), at.get("timestamp").and_then(int_of))
            {
                last_seen.push((pk.clone(), item, ts));
            }
        }
    }
    Ok(ThreadSnapshot {
        conversation,
        has_older: page.has_more,
        oldest_cursor: page.next_cursor,
        messages: page.items,
        edit_counts,
        reaction_times,
        last_seen,
    })
}

/// An event with its de-duplication key (the keys `igdm serve` uses).
#[derive(Debug, Clone)]
pub(crate) struct Keyed {
    pub key: String,
    pub event: Event,
}

/// What the store holds of one thread, for the comparison.
#[derive(Debug, Default)]
pub(crate) struct Stored {
    /// Stored messages, newest first.
    pub messages: Vec<Message>,
    /// The latest read receipt kept for the conversation: (reader, ms).
    pub receipt: Option<(String, i64)>,
}

fn event(kind: EventKind, account: &str, conv: &str, at: Timestamp) -> Event {
    let mut e = Event::new(kind, account, at);
    e.conversation_id = Some(conv.to_owned());
    e
}

/// The `message` event of a new message.
pub(crate) fn message_event(account: &str, m: &Message) -> Keyed {
    let conv = m.conversation_id.as_str();
    let mut e = event(EventKind::Message, account, conv, m.timestamp);
    let mid = m.id.to_string();
    e.sender_id = Some(m.sender.id.to_string());
    e.recipient_id = Some(if m.sender.is_self { conv.to_owned() } else { account.to_owned() });
    e.message_id = Some(mid.clone());
    e.is_echo = m.sender.is_self;
    e.text.clone_from(&m.text);
    e.attachments.clone_from(&m.attachments);
    e.reply_to = m
        .reply_to
        .as_ref()
        .and_then(|r| r.message_id.as_ref())
        .map(|id| json!({ "mid": id.to_string() }));
    Keyed { key: format!("{account}:message:{mid}"), event: e }
}

/// Compares one thread of the snapshot with the store: new messages,
/// edits, unsends, reaction changes and read receipts.
pub(crate) fn diff_thread(
    account: &str,
    viewer: &str,
    snap: &ThreadSnapshot,
    stored: &Stored,
    now: Timestamp,
) -> Vec<Keyed> {
    let conv = snap.conversation.id.as_str();
    let mut out = Vec::new();
    let known: HashMap<&str, &Message> =
        stored.messages.iter().map(|m| (m.id.as_str(), m)).collect();
    // Oldest first, so a consumer sees a burst in the order it was sent.
    for m in snap.messages.iter().rev() {
        let mid = m.id.as_str();
        let Some(old) = known.get(mid) else {
            out.push(message_event(account, m));
            // Reactions it already carries are news too.
            let bare = Message { reactions: Vec::new(), ..m.clone() };
            out.extend(reaction_changes(account, conv, snap, m, &bare, now));
            continue;
        };
        if old.is_deleted {
            continue;
        }
        if m.text.is_some() && m.text != old.text {
            let n = snap.edit_counts.get(mid).copied();
            let mut e = event(EventKind::MessageEdit, account, conv, now);
            e.sender_id = Some(m.sender.id.to_string());
            e.message_id = Some(mid.to_owned());
            e.text.clone_from(&m.text);
            if let Some(n) = n {
                e.details = Some(json!({ "num_edit": n }));
            }
            let suffix = n.map_or_else(|| now.unix_millis().to_string(), |n| n.to_string());
            out.push(Keyed { key: format!("{account}:edit:{mid}:{suffix}"), event: e });
        }
        out.extend(reaction_changes(account, conv, snap, m, old, now));
    }
    // A stored message inside the window the snapshot covers that the
    // snapshot no longer shows was unsent.
    if let (Some(oldest), Some(_)) = (snap.messages.last(), snap.messages.first()) {
        let shown: HashSet<&str> = snap.messages.iter().map(|m| m.id.as_str()).collect();
        for old in &stored.messages {
            if old.is_deleted || old.timestamp < oldest.timestamp || shown.contains(old.id.as_str())
            {
                continue;
            }
            let mid = old.id.as_str();
            let mut e = event(EventKind::MessageDeleted, account, conv, now);
            e.sender_id = Some(old.sender.id.to_string());
            e.message_id = Some(mid.to_owned());
            out.push(Keyed { key: format!("{account}:deleted:{mid}"), event: e });
        }
    }
    // Read receipts of the other participants: the newest one that is newer
    // than the receipt kept.
    let newest_seen =
        snap.last_seen.iter().filter(|(pk, _, _)| pk != viewer).max_by_key(|(_, _, ts)| *ts);
    // Receipts are kept with millisecond precision.
    if let Some((pk, item, ts)) = newest_seen
        && stored.receipt.as_ref().is_none_or(|(_, kept)| *kept < ts.div_euclid(1000))
        && let Some(at) = Timestamp::from_unix_millis(ts.div_euclid(1000))
    {
        let mut e = event(EventKind::Seen, account, conv, at);
        e.sender_id = Some(pk.clone());
        e.recipient_id = Some(account.to_owned());
        e.message_id = Some(item.clone());
        out.push(Keyed { key: format!("{account}:seen:{pk}:{}", at.unix_millis()), event: e });
    }
    out
}

fn reaction_changes(
    account: &str,
    conv: &str,
    snap: &ThreadSnapshot,
    m: &Message,
    old: &Message,
    now: Timestamp,
) -> Vec<Keyed> {
    let mid = m.id.as_str();
    let before: HashMap<&str, &str> =
        old.reactions.iter().map(|r| (r.sender_id.as_str(), r.emoji.as_str())).collect();
    let after: HashMap<&str, &str> =
        m.reactions.iter().map(|r| (r.sender_id.as_str(), r.emoji.as_str())).collect();
    let mut out = Vec::new();
    let mut change = |sender: &str, emoji: Option<&str>, at: Timestamp| {
        let action = if emoji.is_some() { "react" } else { "unreact" };
        let mut e = event(EventKind::Reaction, account, conv, at);
        e.sender_id = Some(sender.to_owned());
        e.message_id = Some(mid.to_owned());
        e.reaction = Some(EventReaction {
            action: action.to_owned(),
            emoji: emoji.map(str::to_owned),
            reaction: None,
        });
        let key = format!(
            "{account}:reaction:{mid}:{action}:{}:{}:{sender}",
            emoji.unwrap_or("-"),
            at.unix_millis()
        );
        out.push(Keyed { key, event: e });
    };
    for (sender, emoji) in &after {
        if before.get(sender) != Some(emoji) {
            let at = snap
                .reaction_times
                .get(&(mid.to_owned(), (*sender).to_owned()))
                .and_then(|us| Timestamp::from_unix_micros(*us))
                .unwrap_or(now);
            change(sender, Some(emoji), at);
        }
    }
    for sender in before.keys() {
        if !after.contains_key(sender) {
            change(sender, None, now);
        }
    }
    out
}
