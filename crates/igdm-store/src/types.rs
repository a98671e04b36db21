//! Types of the store API that the shared model does not have.

use igdm_model::{EventKind, Folder, Message, Timestamp};
use serde::{Deserialize, Serialize};

/// Filters for [`crate::MessageStore::list_conversations`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConversationFilter {
    /// Only unread (`Some(true)`) or only read (`Some(false)`) conversations.
    pub unread: Option<bool>,
    /// Only conversations in this folder.
    pub folder: Option<Folder>,
}

/// A reaction change on a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReactionChange {
    /// The sender reacted with this emoji.
    Add(String),
    /// The sender removed this emoji, or every reaction of theirs with `None`.
    Remove(Option<String>),
}

/// What happened to an edit or a deletion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MutationOutcome {
    /// The message was stored and is now changed.
    Applied,
    /// The message is not stored yet; the change is kept and applied when it arrives.
    Deferred,
    /// The stored message already carries a newer edit; nothing changed.
    Stale,
}

/// How far sync got in one conversation (or, with conversation `""`, the inbox).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncCursor {
    /// Time of the newest item seen.
    pub newest_seen_at: Option<Timestamp>,
    /// Time of the oldest item seen.
    pub oldest_seen_at: Option<Timestamp>,
    /// The provider cursor to fetch items newer than the newest seen.
    pub newest_cursor: Option<String>,
    /// The provider cursor to fetch items older than the oldest seen.
    pub oldest_cursor: Option<String>,
    /// Whether the history has been fetched back to its start.
    pub completed: bool,
}

/// Where an outbox entry stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OutboxState {
    /// Recorded, not attempted yet.
    Pending,
    /// A send is under way.
    Sending,
    /// Instagram confirmed it; `result` holds the response.
    Sent,
    /// Failed for good; `last_error` says why.
    Failed,
    /// A send was attempted and its outcome is unknown (timeout, crash):
    /// reconcile before retrying.
    Unknown,
    /// A state this version of igdm does not know, read from a store a newer
    /// version wrote. Never written; treated as closed (not retried).
    #[serde(other)]
    Unrecognized,
}

impl OutboxState {
    /// The stored name of the state.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Failed => "failed",
            Self::Unknown => "unknown",
            Self::Unrecognized => "unrecognized",
        }
    }

    /// Whether a send in this state may still be attempted or reconciled
    /// (pending, sending or unknown).
    #[must_use]
    pub fn is_open(self) -> bool {
        matches!(self, Self::Pending | Self::Sending | Self::Unknown)
    }

    /// Reads a stored name; a name this version does not know is
    /// [`OutboxState::Unrecognized`].
    #[must_use]
    pub fn from_stored(raw: &str) -> Self {
        Self::parse(raw).unwrap_or(Self::Unrecognized)
    }

    /// Parses a stored name.
    #[must_use]
    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "pending" => Self::Pending,
            "sending" => Self::Sending,
            "sent" => Self::Sent,
            "failed" => Self::Failed,
            "unknown" => Self::Unknown,
            _ => return None,
        })
    }
}

/// A send to record in the outbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewOutbox {
    /// The caller's idempotency key; unique across the store.
    pub idempotency_key: String,
    /// The account that sends.
    pub account_id: String,
    /// The conversation, when sending into a thread.
    pub conversation_id: Option<String>,
    /// The recipient, when sending to a user.
    pub recipient_id: Option<String>,
    /// What to send (connector-specific JSON).
    pub payload: serde_json::Value,
}

/// A stored outbox entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxEntry {
    /// The idempotency key.
    pub idempotency_key: String,
    /// The account that sends.
    pub account_id: String,
    /// The conversation, when sending into a thread.
    pub conversation_id: Option<String>,
    /// The recipient, when sending to a user.
    pub recipient_id: Option<String>,
    /// What to send.
    pub payload: serde_json::Value,
    /// Where it stands.
    pub state: OutboxState,
    /// How many times it entered [`OutboxState::Sending`].
    pub attempts: u32,
    /// The last error recorded.
    pub last_error: Option<String>,
    /// The provider's answer once sent.
    pub result: Option<serde_json::Value>,
    /// When it was recorded.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
}

/// The answer of [`crate::MessageStore::outbox_begin`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxBegin {
    /// The entry under the key: the new one, or the one recorded first.
    pub entry: OutboxEntry,
    /// Whether this call created it (`false`: the key was already used).
    pub created: bool,
}

/// The id of a stored webhook delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DeliveryId(pub i64);

/// A stored webhook delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// Its id.
    pub id: DeliveryId,
    /// When it was received.
    pub received_at: Timestamp,
    /// The body exactly as received.
    pub raw_body: Vec<u8>,
    /// How many of its events were already stored from an earlier delivery.
    pub duplicates: u64,
}

/// The id of a stored webhook event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventId(pub i64);

/// What a dead letter refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadLetterSource<'a> {
    /// A delivery already stored with [`crate::MessageStore::append_delivery`].
    Delivery(DeliveryId),
    /// A body that was never stored as a delivery (for example, a bad signature).
    RawBody(&'a [u8]),
}

/// A normalized event to store from a delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewEvent {
    /// A key unique to the event across retried deliveries (for example
    /// `"{account}:{mid}:{kind}"`); the same key is stored once.
    pub dedup_key: String,
    /// What happened.
    pub kind: EventKind,
    /// The business account the event belongs to.
    pub account_id: String,
    /// The normalized event ([`igdm_model::Event`] as JSON, or any JSON).
    pub payload: serde_json::Value,
}

/// Activity in a one-to-one conversation, for
/// [`crate::MessageStore::record_activity`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationActivity {
    /// The conversation.
    pub conversation_id: String,
    /// The other person, when the conversation is created.
    pub customer_id: String,
    /// When the activity happened.
    pub at: Timestamp,
    /// Whether the conversation is unread after it.
    pub unread: bool,
    /// When the reply window it opened ends, if it opened one.
    pub reply_window_ends_at: Option<Timestamp>,
}

/// One webhook delivery for [`crate::MessageStore::record_deliveries`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NewDelivery<'a> {
    /// The body as received.
    pub raw_body: &'a [u8],
    /// When it was received.
    pub received_at: Timestamp,
    /// Its normalized events (stored as [`crate::MessageStore::insert_events`] does).
    pub events: &'a [NewEvent],
    /// Why it cannot be processed, when it goes to the dead-letter table instead.
    pub dead_letter: Option<&'a str>,
}

/// A delivery stored before it is parsed, for
/// [`crate::MessageStore::append_unexpanded`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawDelivery<'a> {
    /// The body as received.
    pub raw_body: &'a [u8],
    /// When it was received.
    pub received_at: Timestamp,
}

/// What an unexpanded delivery turned out to contain, for
/// [`crate::MessageStore::expand_deliveries`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Expansion<'a> {
    /// The delivery, as [`crate::MessageStore::append_unexpanded`] stored it.
    pub delivery: DeliveryId,
    /// Its normalized events.
    pub events: &'a [NewEvent],
    /// Why it cannot be processed, when it goes to the dead-letter table instead.
    pub dead_letter: Option<&'a str>,
}

/// A claim taken on events as they are stored
/// ([`crate::MessageStore::record_deliveries_leased`]), the same claim
/// [`crate::MessageStore::claim_events`] takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease<'a> {
    /// Who holds the claim.
    pub owner: &'a str,
    /// When the claim runs out and another claimer may take the events.
    pub until: Timestamp,
}

/// What [`crate::MessageStore::record_deliveries`] stored for one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedDelivery {
    /// The delivery's id.
    pub id: DeliveryId,
    /// Its events: stored (in input order), or already stored (in dedup-key order).
    pub events: InsertedEvents,
    /// For each of the delivery's events, in input order: its id when this
    /// call stored it, `None` when it was a duplicate.
    pub event_ids: Vec<Option<EventId>>,
    /// The dead letter's id, when it was dead-lettered.
    pub dead_letter: Option<i64>,
}

/// The answer of [`crate::MessageStore::insert_events`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InsertedEvents {
    /// The ids of the events stored by this call, in input order.
    pub inserted: Vec<EventId>,
    /// The dedup keys that were already stored (or repeated in the input).
    pub duplicates: Vec<String>,
}

/// Where a stored event stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventState {
    /// Waiting to be claimed (possibly not before a retry time).
    Pending,
    /// Claimed by a worker until its lease ends.
    Processing,
    /// Handled.
    Done,
    /// Failed for good.
    Failed,
}

impl EventState {
    /// The stored name of the state.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Processing => "processing",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }

    /// Parses a stored name.
    #[must_use]
    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "pending" => Self::Pending,
            "processing" => Self::Processing,
            "done" => Self::Done,
            "failed" => Self::Failed,
            _ => return None,
        })
    }
}

/// A stored webhook event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    /// Its id.
    pub id: EventId,
    /// The delivery it came in.
    pub delivery_id: DeliveryId,
    /// Its dedup key.
    pub dedup_key: String,
    /// What happened.
    pub kind: EventKind,
    /// The business account.
    pub account_id: String,
    /// The event JSON.
    pub payload: serde_json::Value,
    /// Where it stands.
    pub state: EventState,
    /// How many times it was claimed.
    pub attempts: u32,
    /// The worker holding it, while processing.
    pub lease_owner: Option<String>,
    /// When the current lease ends.
    pub lease_until: Option<Timestamp>,
    /// The last error recorded by [`crate::MessageStore::fail_event`].
    pub last_error: Option<String>,
    /// When it was stored.
    pub created_at: Timestamp,
}

/// Counters of the webhook event log, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventLogCounts {
    /// Deliveries stored.
    pub deliveries: u64,
    /// Events waiting to be claimed (including those waiting for a retry time).
    pub pending: u64,
    /// Events claimed (including those whose lease ran out).
    pub processing: u64,
    /// Events handled.
    pub done: u64,
    /// Events failed for good.
    pub failed: u64,
    /// Dead letters.
    pub dead_letters: u64,
    /// Events dropped because their dedup key was already stored.
    pub dedup_hits: u64,
    /// Deliveries stored but not yet expanded into events.
    pub unexpanded: u64,
}

/// The part of the event log still to be dealt with, for metrics: what
/// [`crate::MessageStore::event_backlog`] counts from partial indexes, so its
/// cost follows the backlog, not the history.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventBacklog {
    /// Events waiting to be claimed (including those waiting for a retry time).
    pub pending: u64,
    /// Events claimed (including those whose lease ran out).
    pub processing: u64,
    /// Events failed for good.
    pub failed: u64,
    /// Dead letters.
    pub dead_letters: u64,
    /// Deliveries stored but not yet expanded into events.
    pub unexpanded: u64,
}

/// One search result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchHit {
    /// The message found.
    pub message: Message,
    /// A short excerpt with matches between [`SNIPPET_START`] and [`SNIPPET_END`].
    pub snippet: String,
    /// Relevance when the search ranks (`sort:relevance`); higher is better.
    /// 0 in newest-first order and when the query has no words (filters only).
    pub rank: f64,
}

/// Marks the start of a match in [`SearchHit::snippet`].
pub const SNIPPET_START: &str = "[";
/// Marks the end of a match in [`SearchHit::snippet`].
pub const SNIPPET_END: &str = "]";

#[cfg(test)]
mod tests {
    use super::OutboxState;

    #[test]
    fn outbox_states_keep_stable_names_and_read_unknown_ones() {
        for state in [
            OutboxState::Pending,
            OutboxState::Sending,
            OutboxState::Sent,
            OutboxState::Failed,
            OutboxState::Unknown,
        ] {
            let name = state.as_str();
            assert_eq!(OutboxState::from_stored(name), state);
            assert_eq!(serde_json::to_value(state).unwrap(), serde_json::json!(name));
            assert_eq!(
                serde_json::from_value::<OutboxState>(serde_json::json!(name)).unwrap(),
                state
            );
        }
        // A state a newer version wrote.
        assert_eq!(OutboxState::from_stored("parked"), OutboxState::Unrecognized);
        assert_eq!(
            serde_json::from_value::<OutboxState>(serde_json::json!("parked")).unwrap(),
            OutboxState::Unrecognized
        );
        assert!(!OutboxState::Unrecognized.is_open());
        assert!(OutboxState::Unknown.is_open() && !OutboxState::Sent.is_open());
    }
}
