//! The [`MessageStore`] trait every backend implements.

use futures::future::BoxFuture;
use igdm_model::{Account, Conversation, Message, Page, Timestamp, User};

use crate::StoreResult;
use crate::query::Query;
use crate::types::Lease;
use crate::types::{
    ConversationActivity, ConversationFilter, DeadLetterSource, Delivery, DeliveryId, EventId,
    EventLogCounts, Expansion, InsertedEvents, MediaRef, MediaUsage, MutationOutcome, NewDelivery,
    NewEvent, NewOutbox, OutboxBegin, OutboxEntry, OutboxState, RawDelivery, ReactionChange,
    RecordedDelivery, SearchHit, StoredEvent, SyncCursor,
};

/// A boxed future returned by every [`MessageStore`] method.
pub type StoreFuture<'a, T> = BoxFuture<'a, StoreResult<T>>;

/// igdm's local message store.
///
/// The trait is dyn-compatible: every method returns a boxed future, so a
/// `&dyn MessageStore` (what [`crate::Store`] dereferences to) serves any
/// backend. Ids are plain strings; `account` is the igdm account name the data
/// belongs to. Every write is committed when its future resolves.
pub trait MessageStore: Send + Sync {
    /// The backend's name: `"sqlite"` or `"postgres"`.
    fn backend_name(&self) -> &'static str;

    // ----- accounts, users, conversations -----

    /// Inserts or updates an account (keyed by its name).
    fn upsert_account<'a>(&'a self, account: &'a Account) -> StoreFuture<'a, ()>;
    /// The account with this name.
    fn get_account<'a>(&'a self, name: &'a str) -> StoreFuture<'a, Option<Account>>;
    /// Inserts or updates a user; `None` fields keep what was stored.
    fn upsert_user<'a>(&'a self, account: &'a str, user: &'a User) -> StoreFuture<'a, ()>;
    /// A stored user.
    fn get_user<'a>(&'a self, account: &'a str, user_id: &'a str) -> StoreFuture<'a, Option<User>>;
    /// Inserts or updates a conversation; `None` fields keep what was stored,
    /// and `updated_at` never moves backwards.
    fn upsert_conversation<'a>(
        &'a self,
        account: &'a str,
        conversation: &'a Conversation,
    ) -> StoreFuture<'a, ()>;
    /// Records activity in one-to-one conversations, all in one transaction:
    /// a conversation seen for the first time is created with its customer
    /// as the participant (and the customer as a user); for one already
    /// stored, `updated_at` and the reply window only move forward, and the
    /// unread flag is taken from the activity only when it is not older than
    /// what was stored. Other fields are kept. Several entries for the same
    /// conversation are merged first.
    fn record_activity<'a>(
        &'a self,
        account: &'a str,
        activity: &'a [ConversationActivity],
    ) -> StoreFuture<'a, ()>;
    /// A stored conversation.
    fn get_conversation<'a>(
        &'a self,
        account: &'a str,
        conversation_id: &'a str,
    ) -> StoreFuture<'a, Option<Conversation>>;
    /// Conversations by last activity, newest first. `cursor` is the
    /// `next_cursor` of the previous page.
    fn list_conversations<'a>(
        &'a self,
        account: &'a str,
        filter: &'a ConversationFilter,
        limit: u32,
        cursor: Option<&'a str>,
    ) -> StoreFuture<'a, Page<Conversation>>;
    /// Marks a conversation read (`read = true`: unread cleared, count 0) or unread.
    /// Fails with [`crate::StoreError::NotFound`] when it is not stored.
    fn mark_read<'a>(
        &'a self,
        account: &'a str,
        conversation_id: &'a str,
        read: bool,
    ) -> StoreFuture<'a, ()>;

    // ----- messages -----

    /// Inserts or updates one message; see [`MessageStore::upsert_messages`].
    fn upsert_message<'a>(&'a self, account: &'a str, message: &'a Message) -> StoreFuture<'a, ()>;
    /// Inserts or updates messages in one transaction with multi-row statements.
    ///
    /// The same message upserted twice is one row. A newer copy wins but `None`
    /// fields never erase stored values; a stored newer edit is not undone by an
    /// older copy; deletion is sticky; a non-empty reaction list replaces the
    /// stored one. A conversation that is not stored yet is created as a stub.
    /// Edits and deletions recorded before the message arrived are applied.
    /// Returns the number of distinct messages written.
    fn upsert_messages<'a>(
        &'a self,
        account: &'a str,
        messages: &'a [Message],
    ) -> StoreFuture<'a, u64>;
    /// A stored message, with its reactions.
    fn get_message<'a>(
        &'a self,
        account: &'a str,
        conversation_id: &'a str,
        message_id: &'a str,
    ) -> StoreFuture<'a, Option<Message>>;
    /// Messages of a conversation, newest first.
    fn list_messages<'a>(
        &'a self,
        account: &'a str,
        conversation_id: &'a str,
        limit: u32,
        cursor: Option<&'a str>,
    ) -> StoreFuture<'a, Page<Message>>;
    /// Adds or removes a reaction (stored even when the message is not yet).
    fn apply_reaction<'a>(
        &'a self,
        account: &'a str,
        conversation_id: &'a str,
        message_id: &'a str,
        sender_id: &'a str,
        change: &'a ReactionChange,
    ) -> StoreFuture<'a, ()>;
    /// Records an edit. Applied when the message is stored and the edit is not
    /// older than its last one; kept for later when the message is not stored.
    fn apply_edit<'a>(
        &'a self,
        account: &'a str,
        conversation_id: &'a str,
        message_id: &'a str,
        text: Option<&'a str>,
        edited_at: Timestamp,
    ) -> StoreFuture<'a, MutationOutcome>;
    /// Records an unsend. Kept for later when the message is not stored.
    fn apply_deletion<'a>(
        &'a self,
        account: &'a str,
        conversation_id: &'a str,
        message_id: &'a str,
        deleted_at: Timestamp,
    ) -> StoreFuture<'a, MutationOutcome>;

    /// A stored message found by its id alone, in any conversation of the
    /// account (the newest when two conversations share an id).
    fn find_message<'a>(
        &'a self,
        account: &'a str,
        message_id: &'a str,
    ) -> StoreFuture<'a, Option<Message>>;

    // ----- kept media -----

    /// Records that an attachment's bytes are kept (replaces the reference
    /// of the same message position).
    fn put_media_ref<'a>(&'a self, account: &'a str, media: &'a MediaRef) -> StoreFuture<'a, ()>;
    /// The kept attachments of a message, by position.
    fn media_refs<'a>(
        &'a self,
        account: &'a str,
        conversation_id: &'a str,
        message_id: &'a str,
    ) -> StoreFuture<'a, Vec<MediaRef>>;
    /// The kept attachments of a conversation's messages.
    fn conversation_media<'a>(
        &'a self,
        account: &'a str,
        conversation_id: &'a str,
    ) -> StoreFuture<'a, Vec<MediaRef>>;
    /// Whether the account already references a file with this hash.
    fn has_media<'a>(&'a self, account: &'a str, sha256: &'a str) -> StoreFuture<'a, bool>;
    /// What the account's kept media use (each distinct file once).
    fn media_usage<'a>(&'a self, account: &'a str) -> StoreFuture<'a, MediaUsage>;

    // ----- sync state and raw payloads -----

    /// The sync cursor of a conversation (`""` for the inbox).
    fn get_sync_cursor<'a>(
        &'a self,
        account: &'a str,
        conversation_id: &'a str,
    ) -> StoreFuture<'a, Option<SyncCursor>>;
    /// Replaces the sync cursor of a conversation (`""` for the inbox).
    fn set_sync_cursor<'a>(
        &'a self,
        account: &'a str,
        conversation_id: &'a str,
        cursor: &'a SyncCursor,
    ) -> StoreFuture<'a, ()>;
    /// Keeps a provider payload as received (opt-in; callers decide).
    /// `kind` names the object type (`"message"`, `"thread"`, …).
    fn put_raw_payload<'a>(
        &'a self,
        account: &'a str,
        kind: &'a str,
        object_id: &'a str,
        payload: &'a serde_json::Value,
    ) -> StoreFuture<'a, ()>;
    /// A kept provider payload.
    fn get_raw_payload<'a>(
        &'a self,
        account: &'a str,
        kind: &'a str,
        object_id: &'a str,
    ) -> StoreFuture<'a, Option<serde_json::Value>>;

    // ----- outbox -----

    /// Records a send under its idempotency key, or returns the entry already
    /// recorded under that key (its state and result are the first send's).
    fn outbox_begin<'a>(&'a self, new: &'a NewOutbox) -> StoreFuture<'a, OutboxBegin>;
    /// Moves an entry to `state`, storing the provider `result` and/or the
    /// `error`. Entering [`OutboxState::Sending`] counts an attempt.
    fn outbox_mark<'a>(
        &'a self,
        key: &'a str,
        state: OutboxState,
        result: Option<&'a serde_json::Value>,
        error: Option<&'a str>,
    ) -> StoreFuture<'a, OutboxEntry>;
    /// The entry under a key.
    fn outbox_get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<OutboxEntry>>;
    /// Entries still open (pending, sending or unknown), oldest first.
    fn outbox_pending<'a>(&'a self) -> StoreFuture<'a, Vec<OutboxEntry>>;
    /// Entries of `account` addressed to `conversation` (as its
    /// `conversation_id` or `recipient_id`) recorded at or after `since`,
    /// oldest first: what reconciliation must not mistake for another send.
    fn outbox_since<'a>(
        &'a self,
        account: &'a str,
        conversation: &'a str,
        since: Timestamp,
    ) -> StoreFuture<'a, Vec<OutboxEntry>>;

    // ----- webhook event log -----

    /// Stores a webhook body as received. The row is committed when this
    /// resolves (answer the HTTP request only after that).
    fn append_delivery<'a>(
        &'a self,
        raw_body: &'a [u8],
        received_at: Timestamp,
    ) -> StoreFuture<'a, DeliveryId>;
    /// A stored delivery (to replay or inspect it).
    fn get_delivery(&self, id: DeliveryId) -> StoreFuture<'_, Option<Delivery>>;
    /// Records a delivery (or a body never stored) that cannot be processed.
    /// Returns the dead letter's id.
    fn dead_letter<'a>(
        &'a self,
        source: DeadLetterSource<'a>,
        reason: &'a str,
    ) -> StoreFuture<'a, i64>;
    /// Stores the normalized events of a delivery in one transaction. An event
    /// whose dedup key is already stored is skipped and reported as a duplicate.
    fn insert_events<'a>(
        &'a self,
        delivery: DeliveryId,
        events: &'a [NewEvent],
    ) -> StoreFuture<'a, InsertedEvents>;
    /// Stores several deliveries with their events (or dead letters) in one
    /// transaction: a group commit, so many webhook requests share one disk
    /// flush. Everything is committed when this resolves; results are in
    /// input order. The default runs the single-delivery methods in turn.
    fn record_deliveries<'a>(
        &'a self,
        batch: &'a [NewDelivery<'a>],
    ) -> StoreFuture<'a, Vec<RecordedDelivery>> {
        Box::pin(async move {
            let mut out = Vec::with_capacity(batch.len());
            for d in batch {
                let id = self.append_delivery(d.raw_body, d.received_at).await?;
                let mut rec = RecordedDelivery {
                    id,
                    events: InsertedEvents::default(),
                    event_ids: Vec::new(),
                    dead_letter: None,
                };
                if let Some(reason) = d.dead_letter {
                    rec.dead_letter =
                        Some(self.dead_letter(DeadLetterSource::Delivery(id), reason).await?);
                }
                if !d.events.is_empty() {
                    rec.events = self.insert_events(id, d.events).await?;
                    rec.event_ids = align_event_ids(d.events, &rec.events);
                }
                out.push(rec);
            }
            Ok(out)
        })
    }
    /// [`MessageStore::record_deliveries`] with every newly stored event
    /// already claimed under `lease`, as [`MessageStore::claim_events`]
    /// would claim it (one attempt counted): the process that received the
    /// events processes them without claiming them back, and another claimer
    /// takes them only after the lease runs out. Duplicates are not claimed.
    fn record_deliveries_leased<'a>(
        &'a self,
        batch: &'a [NewDelivery<'a>],
        lease: Lease<'a>,
    ) -> StoreFuture<'a, Vec<RecordedDelivery>>;
    /// Appends raw deliveries in one group commit, before anything is known
    /// of their contents: the smallest write that makes a webhook delivery
    /// durable. They are stored unexpanded until
    /// [`MessageStore::expand_deliveries`] stores their events; with
    /// `lease` they are held for its owner, and other claimers take them
    /// ([`MessageStore::claim_unexpanded`]) only after it runs out. Ids are
    /// in input order; everything is committed when this resolves.
    fn append_unexpanded<'a>(
        &'a self,
        batch: &'a [RawDelivery<'a>],
        lease: Option<Lease<'a>>,
    ) -> StoreFuture<'a, Vec<DeliveryId>>;
    /// Claims up to `limit` unexpanded deliveries for `owner` for `lease`,
    /// oldest first: those never leased and those whose lease ran out.
    /// Concurrent claimers never get the same delivery while its lease runs.
    fn claim_unexpanded<'a>(
        &'a self,
        owner: &'a str,
        limit: u32,
        lease: std::time::Duration,
    ) -> StoreFuture<'a, Vec<Delivery>>;
    /// Gives unexpanded deliveries leased to `owner` back, so that any
    /// claimer may take them at once.
    fn release_unexpanded<'a>(
        &'a self,
        owner: &'a str,
        ids: &'a [DeliveryId],
    ) -> StoreFuture<'a, ()>;
    /// Stores what unexpanded deliveries contain, in one transaction: their
    /// events (de-duplicated as [`MessageStore::record_deliveries`] does,
    /// new ones claimed under `lease` when given) or their dead letters,
    /// and marks them expanded. A delivery that is not unexpanded (already
    /// expanded by another claimer, or never appended that way) is left
    /// alone and answered `None`; the others get what
    /// `record_deliveries` would report. Results are in input order.
    fn expand_deliveries<'a>(
        &'a self,
        batch: &'a [Expansion<'a>],
        lease: Option<Lease<'a>>,
    ) -> StoreFuture<'a, Vec<Option<RecordedDelivery>>>;
    /// Claims up to `limit` events for `worker` for `lease`: pending events
    /// whose retry time has come, and processing events whose lease ran out.
    /// Each claim counts an attempt. Concurrent claimers never get the same
    /// event while its lease runs; after it runs out the event may be handled
    /// twice (at-least-once), so handlers must be idempotent.
    fn claim_events<'a>(
        &'a self,
        worker: &'a str,
        limit: u32,
        lease: std::time::Duration,
    ) -> StoreFuture<'a, Vec<StoredEvent>>;
    /// Marks an event handled.
    fn complete_event(&self, id: EventId) -> StoreFuture<'_, ()>;
    /// Gives claimed events back unprocessed: those of `ids` still leased to
    /// `owner` become pending again at once, and the claim is not counted
    /// as an attempt. For a process that stops with claimed work left, so
    /// that others need not wait for its leases to run out. The default
    /// does nothing: the leases run out on their own.
    fn release_events<'a>(&'a self, owner: &'a str, ids: &'a [EventId]) -> StoreFuture<'a, ()> {
        let _ = (owner, ids);
        Box::pin(async { Ok(()) })
    }
    /// Marks several events handled in one statement (ids that do not exist
    /// are ignored). The default calls [`MessageStore::complete_event`] for each.
    fn complete_events<'a>(&'a self, ids: &'a [EventId]) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            for id in ids {
                self.complete_event(*id).await?;
            }
            Ok(())
        })
    }
    /// Records a failure: with `retry_at` the event is claimable again from
    /// then on; without, it is failed for good.
    fn fail_event<'a>(
        &'a self,
        id: EventId,
        error: &'a str,
        retry_at: Option<Timestamp>,
    ) -> StoreFuture<'a, ()>;
    /// One stored event.
    fn get_event(&self, id: EventId) -> StoreFuture<'_, Option<StoredEvent>>;
    /// Counters for metrics.
    fn event_log_counts(&self) -> StoreFuture<'_, EventLogCounts>;
    /// The pending, claimed and failed events and the dead letters: what a
    /// metrics scrape needs, without counting every event ever stored as
    /// [`MessageStore::event_log_counts`] does. The default derives it from
    /// that.
    fn event_backlog(&self) -> StoreFuture<'_, crate::types::EventBacklog> {
        Box::pin(async move {
            let c = self.event_log_counts().await?;
            Ok(crate::types::EventBacklog {
                pending: c.pending,
                processing: c.processing,
                failed: c.failed,
                dead_letters: c.dead_letters,
                unexpanded: c.unexpanded,
            })
        })
    }

    /// Refreshes planner statistics and compacts search indexes; run it after
    /// a bulk import (SQLite: `PRAGMA optimize` and FTS5 `optimize`;
    /// PostgreSQL: `ANALYZE` of the store's tables).
    fn optimize(&self) -> StoreFuture<'_, ()>;

    // ----- search -----

    /// Full-text search over an account's messages (deleted ones excluded),
    /// newest first, or best first among the newest
    /// [`crate::RELEVANCE_WINDOW`] matches with [`crate::SearchOrder::Relevance`]
    /// (found among the newest [`crate::RELEVANCE_CANDIDATES`] text matches).
    /// Parse the user's text with [`crate::query::parse`].
    fn search<'a>(
        &'a self,
        account: &'a str,
        query: &'a Query,
        limit: u32,
        cursor: Option<&'a str>,
    ) -> StoreFuture<'a, Page<SearchHit>>;

    /// Parses `text` with [`crate::query::parse`] and searches.
    fn search_text<'a>(
        &'a self,
        account: &'a str,
        text: &'a str,
        limit: u32,
        cursor: Option<&'a str>,
    ) -> StoreFuture<'a, Page<SearchHit>> {
        Box::pin(async move {
            let query = crate::query::parse(text);
            self.search(account, &query, limit, cursor).await
        })
    }
}

/// Lines up what `insert_events` returned with the events given to it: an
/// event's key is a duplicate of an earlier one in the same call, or of one
/// stored before (then every occurrence is a duplicate).
fn align_event_ids(events: &[NewEvent], got: &InsertedEvents) -> Vec<Option<EventId>> {
    let mut dups: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for k in &got.duplicates {
        *dups.entry(k.as_str()).or_default() += 1;
    }
    let mut occurrences: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for e in events {
        *occurrences.entry(e.dedup_key.as_str()).or_default() += 1;
    }
    let mut ids = got.inserted.iter().copied();
    let mut seen = std::collections::HashSet::new();
    events
        .iter()
        .map(|e| {
            let key = e.dedup_key.as_str();
            let stored_before = dups.get(key) == occurrences.get(key);
            (seen.insert(key) && !stored_before).then(|| ids.next()).flatten()
        })
        .collect()
}
