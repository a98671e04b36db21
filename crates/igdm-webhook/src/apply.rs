//! [`WebhookStore`] over igdm's message store: the event log calls map to
//! `igdm_store::MessageStore`'s webhook log, and applying an event maps to its
//! conversation, user and message writes.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use igdm_model::{
    AttachmentType, ContentType, Conversation, ConversationKind, Event, EventKind, Folder, Message,
    Participant, ReplyTo, SendStatus, Sender, Timestamp, User,
};
use igdm_store::{EventId, MessageStore, ReactionChange};

use crate::store::{
    BoxError, ClaimedDelivery, ClaimedEvent, DeliveryContent, DeliveryReceipt, Expansion,
    ExpansionReceipt, Lease, LogCounts, NewDelivery, StoreFuture, WebhookStore,
};

/// How long the official API's standard reply window stays open after the
/// customer's last message, postback or ice-breaker / menu tap.
pub const REPLY_WINDOW: chrono::TimeDelta = chrono::TimeDelta::hours(24);

/// The webhook pipeline on top of `igdm_store` stores.
///
/// Three handles, which may all be one: deliveries are appended on `log`
/// (durable); claims, completions and failures go through `queue`, a handle
/// on the log's database; events are applied through `store`, the message
/// store. On SQLite the log can live in a database file of its own
/// ([`StoreLog::with_message_store`]) so that applying events, the heavy
/// writes, never holds the write lock an acknowledgement waits for.
pub struct StoreLog {
    /// Where events are applied: conversations, users, messages.
    store: Arc<dyn MessageStore>,
    /// Where processing claims, completes and fails events: the log's
    /// database, possibly through a handle with relaxed durability.
    queue: Arc<dyn MessageStore>,
    /// Where deliveries are appended before they are acknowledged.
    log: Arc<dyn MessageStore>,
    accounts: HashMap<String, String>,
    /// SQLite has one writer per database: this process's writes to the
    /// log's database queue here instead of meeting in SQLite's busy handler
    /// (which sleeps), and appends go first.
    log_gate: Option<Arc<Gate>>,
    /// The same for the message store's database; the same gate as
    /// `log_gate` while both are one database.
    store_gate: Option<Arc<Gate>>,
}

/// A write gate where deliveries waiting to be acknowledged go before
/// processing: processing writes only while no delivery waits or is being
/// appended. Appends may overlap each other (they reach SQLite through one
/// connection, which runs them in turn, so the next group is ready the
/// moment the previous one commits); a processing write excludes them all.
#[derive(Debug, Default)]
struct Gate {
    lock: tokio::sync::RwLock<()>,
    urgent_waiting: AtomicUsize,
    urgent_done: tokio::sync::Notify,
}

impl Gate {
    async fn urgent(&self) -> tokio::sync::RwLockReadGuard<'_, ()> {
        self.urgent_waiting.fetch_add(1, Ordering::SeqCst);
        let g = self.lock.read().await;
        if self.urgent_waiting.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.urgent_done.notify_waiters();
        }
        g
    }

    async fn background(&self) -> tokio::sync::RwLockWriteGuard<'_, ()> {
        loop {
            let done = self.urgent_done.notified();
            tokio::pin!(done);
            done.as_mut().enable();
            if self.urgent_waiting.load(Ordering::SeqCst) > 0 {
                done.await;
                continue;
            }
            let g = self.lock.write().await;
            if self.urgent_waiting.load(Ordering::SeqCst) == 0 {
                return g;
            }
        }
    }
}

fn shared(store: igdm_store::Store) -> Arc<dyn MessageStore> {
    match store {
        igdm_store::Store::Sqlite(s) => Arc::new(s),
        igdm_store::Store::Postgres(p) => Arc::new(p),
    }
}

impl std::fmt::Debug for StoreLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreLog")
            .field("backend", &self.store.backend_name())
            .finish_non_exhaustive()
    }
}

impl StoreLog {
    /// Wraps a message store. Events are stored under the account named by
    /// their `entry.id` unless [`StoreLog::with_account_names`] maps it.
    #[must_use]
    pub fn new(store: Arc<dyn MessageStore>) -> Self {
        let gate = Self::gate_for(&*store);
        Self {
            log: store.clone(),
            queue: store.clone(),
            store,
            accounts: HashMap::new(),
            store_gate: gate.clone(),
            log_gate: gate,
        }
    }

    fn gate_for(store: &dyn MessageStore) -> Option<Arc<Gate>> {
        (store.backend_name() == "sqlite").then(|| Arc::new(Gate::default()))
    }

    /// Processing (claims, completions, and applying events unless
    /// [`StoreLog::with_message_store`] names another database) goes through
    /// `store` instead, a handle on the log's database, typically one whose
    /// commits do not wait for the disk (`igdm_store::Store::relaxed`).
    /// Deliveries are still appended on the durable handle before they are
    /// acknowledged; everything processing writes can be rebuilt from them,
    /// because an undone claim or completion is claimed again and applying
    /// is idempotent.
    #[must_use]
    pub fn with_processing_store(mut self, store: Arc<dyn MessageStore>) -> Self {
        if Arc::ptr_eq(&self.store, &self.queue) {
            self.store = store.clone();
        }
        self.queue = store;
        self
    }

    /// Applies events to `store`, a database other than the log's (the log
    /// keeps deliveries and the work queue). On SQLite this takes the
    /// message writes, full-text index included, off the database whose
    /// single write lock every acknowledgement needs.
    #[must_use]
    pub fn with_message_store(mut self, store: Arc<dyn MessageStore>) -> Self {
        self.store_gate = Self::gate_for(&*store);
        self.store = store;
        self
    }

    /// The gate for processing writes to the log's database (none on PostgreSQL).
    async fn lock_log(&self) -> Option<tokio::sync::RwLockWriteGuard<'_, ()>> {
        match &self.log_gate {
            Some(g) => Some(g.background().await),
            None => None,
        }
    }

    /// The gate for applying events (none on PostgreSQL).
    async fn lock(&self) -> Option<tokio::sync::RwLockWriteGuard<'_, ()>> {
        match &self.store_gate {
            Some(g) => Some(g.background().await),
            None => None,
        }
    }

    /// Wraps a store opened with `igdm_store::Store::open`: deliveries are
    /// committed durably on it, processing goes through its relaxed handle
    /// (see [`StoreLog::with_processing_store`]).
    ///
    /// # Errors
    /// When the relaxed handle cannot be set up.
    pub async fn from_store(store: igdm_store::Store) -> Result<Self, igdm_store::StoreError> {
        let relaxed = shared(store.relaxed().await?);
        Ok(Self::new(shared(store)).with_processing_store(relaxed))
    }

    /// [`StoreLog::from_store`] with the log in a database of its own:
    /// deliveries are committed durably on `log`, claims and completions go
    /// through its relaxed handle, and events are applied through the
    /// relaxed handle of `messages` (see [`StoreLog::with_message_store`]).
    ///
    /// # Errors
    /// When a relaxed handle cannot be set up.
    pub async fn from_stores(
        log: igdm_store::Store,
        messages: igdm_store::Store,
    ) -> Result<Self, igdm_store::StoreError> {
        let queue = shared(log.relaxed().await?);
        let store = shared(messages.relaxed().await?);
        Ok(Self::new(shared(log)).with_processing_store(queue).with_message_store(store))
    }

    /// Maps provider account ids (`entry.id`) to igdm account names.
    #[must_use]
    pub fn with_account_names(mut self, names: HashMap<String, String>) -> Self {
        self.accounts = names;
        self
    }

    /// The message store events are applied to.
    #[must_use]
    pub fn inner(&self) -> &Arc<dyn MessageStore> {
        &self.store
    }

    /// The store holding the event log (deliveries, events, dead letters).
    #[must_use]
    pub fn log(&self) -> &Arc<dyn MessageStore> {
        &self.log
    }

    fn account<'a>(&'a self, provider_id: &'a str) -> &'a str {
        self.accounts.get(provider_id).map_or(provider_id, String::as_str)
    }

    async fn apply(&self, e: &Event) -> Result<(), BoxError> {
        let account = self.account(&e.account_id);
        let s = &*self.store;
        match &e.kind {
            EventKind::Message => {
                let Some(conv) = e.conversation_id.as_deref() else { return Ok(()) };
                let customer_action = !e.is_echo;
                self.touch_conversation(account, conv, e.timestamp, customer_action).await?;
                if let Some(msg) = to_message(e, conv) {
                    s.upsert_message(account, &msg).await?;
                }
            }
            EventKind::MessageEdit => {
                if let (Some(conv), Some(mid)) =
                    (e.conversation_id.as_deref(), e.message_id.as_deref())
                {
                    s.apply_edit(account, conv, mid, e.text.as_deref(), e.timestamp).await?;
                }
            }
            EventKind::MessageDeleted => {
                if let (Some(conv), Some(mid)) =
                    (e.conversation_id.as_deref(), e.message_id.as_deref())
                {
                    s.apply_deletion(account, conv, mid, e.timestamp).await?;
                }
            }
            EventKind::Reaction => {
                if let (Some(conv), Some(mid), Some(sender), Some(r)) = (
                    e.conversation_id.as_deref(),
                    e.message_id.as_deref(),
                    e.sender_id.as_deref(),
                    &e.reaction,
                ) {
                    let emoji = r.emoji.clone().or_else(|| r.reaction.clone());
                    let change = if r.action == "unreact" {
                        ReactionChange::Remove(emoji)
                    } else {
                        ReactionChange::Add(emoji.unwrap_or_else(|| "❤️".to_owned()))
                    };
                    s.apply_reaction(account, conv, mid, sender, &change).await?;
                }
            }
            EventKind::Postback => {
                if let Some(conv) = e.conversation_id.as_deref() {
                    self.touch_conversation(account, conv, e.timestamp, true).await?;
                    s.put_raw_payload(
                        account,
                        "postback",
                        &event_object_id(e),
                        &serde_json::to_value(e)?,
                    )
                    .await?;
                }
            }
            EventKind::Seen => {
                if let Some(conv) = e.conversation_id.as_deref() {
                    if e.sender_id.as_deref() == Some(e.account_id.as_str()) {
                        // The account read the thread (from another client).
                        self.touch_conversation(account, conv, e.timestamp, false).await?;
                        s.mark_read(account, conv, true).await?;
                    } else {
                        // The customer read up to `message_id`: keep the latest receipt.
                        let newer = match s.get_raw_payload(account, "read_receipt", conv).await? {
                            Some(prev) => prev
                                .get("timestamp")
                                .and_then(|t| t.as_str())
                                .and_then(Timestamp::parse)
                                .is_none_or(|t| t <= e.timestamp),
                            None => true,
                        };
                        if newer {
                            let receipt = serde_json::json!({
                                "message_id": e.message_id,
                                "sender_id": e.sender_id,
                                "timestamp": e.timestamp,
                            });
                            s.put_raw_payload(account, "read_receipt", conv, &receipt).await?;
                        }
                    }
                }
            }
            EventKind::Referral | EventKind::Optin | EventKind::Handover => {
                if let Some(conv) = e.conversation_id.as_deref() {
                    self.touch_conversation(account, conv, e.timestamp, false).await?;
                    let kind = match e.kind {
                        EventKind::Handover => "thread_control",
                        EventKind::Referral => "referral",
                        _ => "optin",
                    };
                    s.put_raw_payload(account, kind, conv, &serde_json::to_value(e)?).await?;
                }
            }
            EventKind::Comment | EventKind::Mention => {
                if let Some(from) = e.details.as_ref().and_then(|d| d.get("from"))
                    && let Some(id) = from.get("id").and_then(igdm_model::ids::id_from_json)
                {
                    let user = User {
                        id: id.into(),
                        username: from.get("username").and_then(|u| u.as_str()).map(str::to_owned),
                        ..User::default()
                    };
                    s.upsert_user(account, &user).await?;
                }
                let kind = if e.kind == EventKind::Comment { "comment" } else { "mention" };
                s.put_raw_payload(account, kind, &event_object_id(e), &serde_json::to_value(e)?)
                    .await?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Applies a batch: messages go in one `upsert_messages` per account and
    /// each conversation is touched once; the other kinds follow one by one
    /// (after the messages, so an edit or reaction in the same batch finds
    /// its message).
    async fn apply_batch(&self, events: &[Event]) -> Result<(), BoxError> {
        type Touch = (Timestamp, Option<Timestamp>);
        let mut touches: HashMap<(&str, &str), Touch> = HashMap::new();
        let mut messages: HashMap<&str, Vec<Message>> = HashMap::new();
        let mut others = Vec::new();
        for e in events {
            match (&e.kind, e.conversation_id.as_deref()) {
                (EventKind::Message, Some(conv)) => {
                    let account = self.account(&e.account_id);
                    let t = touches.entry((account, conv)).or_insert((e.timestamp, None));
                    t.0 = t.0.max(e.timestamp);
                    if !e.is_echo {
                        t.1 = Some(t.1.map_or(e.timestamp, |c| c.max(e.timestamp)));
                    }
                    if let Some(m) = to_message(e, conv) {
                        messages.entry(account).or_default().push(m);
                    }
                }
                (EventKind::Message, None) => {}
                _ => others.push(e),
            }
        }
        let mut activity: HashMap<&str, Vec<igdm_store::ConversationActivity>> = HashMap::new();
        for ((account, conv), (at, customer_at)) in touches {
            activity.entry(account).or_default().push(igdm_store::ConversationActivity {
                conversation_id: conv.to_owned(),
                customer_id: conv.to_owned(),
                at,
                unread: customer_at == Some(at),
                reply_window_ends_at: customer_at.map(|t| Timestamp(t.0 + REPLY_WINDOW)),
            });
        }
        for (account, rows) in activity {
            let _g = self.lock().await;
            self.store.record_activity(account, &rows).await?;
        }
        for (account, msgs) in messages {
            let _g = self.lock().await;
            self.store.upsert_messages(account, &msgs).await?;
        }
        for e in others {
            let _g = self.lock().await;
            self.apply(e).await?;
        }
        Ok(())
    }

    /// Creates the conversation and its customer when new, moves its last
    /// activity forward, and (for a customer action) extends the reply window.
    async fn touch_conversation(
        &self,
        account: &str,
        conv: &str,
        at: Timestamp,
        customer_action: bool,
    ) -> Result<(), BoxError> {
        self.touch_conversation_at(account, conv, at, customer_action.then_some(at)).await
    }

    /// [`Self::touch_conversation`] for several events at once: `at` is the
    /// latest of them, `customer_at` the latest customer action among them.
    async fn touch_conversation_at(
        &self,
        account: &str,
        conv: &str,
        at: Timestamp,
        customer_at: Option<Timestamp>,
    ) -> Result<(), BoxError> {
        let s = &*self.store;
        let existing = s.get_conversation(account, conv).await?;
        if existing.is_none() {
            s.upsert_user(account, &User { id: conv.into(), ..User::default() }).await?;
        }
        let window = customer_at.map(|t| Timestamp(t.0 + REPLY_WINDOW));
        let window = match (existing.as_ref().and_then(|c| c.reply_window_ends_at), window) {
            (Some(old), Some(new)) => Some(old.max(new)),
            (old, new) => new.or(old),
        };
        let newer = existing.as_ref().and_then(|c| c.updated_at).is_none_or(|u| u <= at);
        let conversation = Conversation {
            id: conv.into(),
            kind: existing.as_ref().map_or(ConversationKind::Direct, |c| c.kind.clone()),
            title: existing.as_ref().and_then(|c| c.title.clone()),
            participants: existing.as_ref().map_or_else(
                || vec![Participant { id: conv.into(), username: None, display_name: None }],
                |c| c.participants.clone(),
            ),
            unread: if newer {
                customer_at == Some(at)
            } else {
                existing.as_ref().is_some_and(|c| c.unread)
            },
            unread_count: existing.as_ref().and_then(|c| c.unread_count),
            updated_at: Some(at),
            muted: existing.as_ref().is_some_and(|c| c.muted),
            hidden: existing.as_ref().is_some_and(|c| c.hidden),
            folder: existing.as_ref().map_or(Folder::Inbox, |c| c.folder.clone()),
            reply_window_ends_at: window,
        };
        s.upsert_conversation(account, &conversation).await?;
        Ok(())
    }
}

fn event_object_id(e: &Event) -> String {
    e.message_id.clone().unwrap_or_else(|| {
        format!("{}:{}", e.sender_id.as_deref().unwrap_or("-"), e.timestamp.unix_millis())
    })
}

fn raw_attachment_types(e: &Event) -> Vec<String> {
    e.details
        .as_ref()
        .and_then(|d| d.get("attachments"))
        .and_then(|a| a.as_array())
        .map(|a| a.iter().filter_map(|x| x.get("type")?.as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

/// The stored message for a `message` event (`None` without a mid).
fn to_message(e: &Event, conv: &str) -> Option<Message> {
    let mid = e.message_id.clone()?;
    let flag = |k: &str| {
        e.details.as_ref().and_then(|d| d.get(k)).and_then(serde_json::Value::as_bool) == Some(true)
    };
    let raw_types = raw_attachment_types(e);
    let story_reply = e.reply_to.as_ref().is_some_and(|r| r.get("story").is_some());
    let content_type = if flag("is_unsupported") {
        ContentType::Unsupported
    } else if raw_types.iter().any(|t| t == "story_mention") {
        ContentType::StoryMention
    } else if story_reply {
        ContentType::StoryReply
    } else if let Some(first) = e.attachments.first() {
        match &first.kind {
            AttachmentType::Image => ContentType::Image,
            AttachmentType::Video => ContentType::Video,
            AttachmentType::Audio => ContentType::Audio,
            AttachmentType::File => ContentType::File,
            AttachmentType::Share if raw_types.iter().any(|t| t == "ig_reel" || t == "reel") => {
                ContentType::ReelShare
            }
            AttachmentType::Share => ContentType::MediaShare,
            AttachmentType::Story => ContentType::StoryReply,
            _ => ContentType::Link,
        }
    } else {
        ContentType::Text
    };
    let is_self = e.is_echo || e.sender_id.as_deref() == Some(e.account_id.as_str());
    Some(Message {
        id: mid.into(),
        conversation_id: conv.into(),
        sender: Sender {
            id: e.sender_id.clone().unwrap_or_default().into(),
            username: None,
            display_name: None,
            is_self,
        },
        timestamp: e.timestamp,
        content_type,
        text: e.text.clone(),
        attachments: e.attachments.clone(),
        reactions: Vec::new(),
        reply_to: e.reply_to.as_ref().and_then(|r| {
            let mid = r.get("mid").and_then(igdm_model::ids::id_from_json);
            let story = r
                .get("story")
                .and_then(|s| s.get("url"))
                .and_then(|u| u.as_str())
                .map(str::to_owned);
            (mid.is_some() || story.is_some())
                .then(|| ReplyTo { message_id: mid.map(Into::into), preview: story })
        }),
        is_deleted: false,
        edited_at: None,
        send_status: e.is_echo.then_some(SendStatus::Sent),
    })
}

/// A received delivery as the store records it.
fn store_delivery(d: &NewDelivery) -> igdm_store::NewDelivery<'_> {
    igdm_store::NewDelivery {
        raw_body: &d.raw_body,
        received_at: d.received_at,
        events: d.content.events(),
        dead_letter: d.content.dead_letter(),
    }
}

/// What the log stored of one delivery's contents.
fn expansion_receipt(r: &igdm_store::RecordedDelivery) -> ExpansionReceipt {
    ExpansionReceipt {
        inserted: r.events.inserted.len(),
        duplicates: r.events.duplicates.len(),
        dead_lettered: r.dead_letter.is_some(),
        event_ids: r.event_ids.iter().map(|id| id.map(|id| id.0)).collect(),
    }
}

impl StoreLog {
    /// Whether deliveries are appended raw and expanded after the
    /// acknowledgement (PostgreSQL), or stored with their events in the
    /// acknowledged commit (SQLite).
    ///
    /// On PostgreSQL the events' rows, indexes and foreign key cost server
    /// CPU on the acknowledgement's path: raw appends doubled the ingest
    /// bench's deliveries/s (3.8k to 7.8-8.3k on the 2-core reference
    /// machine) and lowered p99 at 2,000/s (16.7 to 12.9-13.5 ms). On SQLite
    /// the appender writes the events in the same transaction for little
    /// more (group-commit bench, p50: 0.06 ms more for one delivery, 0.18 ms
    /// for eight), while expanding afterwards is a second processing
    /// transaction on the log that appends wait behind at the write gate:
    /// p99 at 2,000/s went from 4.3-5.0 ms to 8.1-10.0 ms (3 alternating
    /// runs each), while bursts ran 4% slower to 38% faster.
    fn append_raw(&self) -> bool {
        self.log.backend_name() == "postgres"
    }

    /// Stores deliveries with their events in one transaction, new events
    /// leased under `lease`.
    async fn record_deliveries(
        &self,
        batch: &[NewDelivery],
        lease: Option<Lease<'_>>,
    ) -> Result<Vec<DeliveryReceipt>, BoxError> {
        let new: Vec<igdm_store::NewDelivery<'_>> = batch.iter().map(store_delivery).collect();
        let recorded = {
            let _g = match &self.log_gate {
                Some(g) => Some(g.urgent().await),
                None => None,
            };
            match lease {
                Some(lease) => self.log.record_deliveries_leased(&new, lease).await?,
                None => self.log.record_deliveries(&new).await?,
            }
        };
        Ok(recorded
            .iter()
            .map(|r| DeliveryReceipt {
                delivery_id: r.id.0,
                dead_lettered: r.dead_letter.is_some(),
                expanded: Some(expansion_receipt(r)),
            })
            .collect())
    }
}

impl WebhookStore for StoreLog {
    fn append_deliveries<'a>(
        &'a self,
        batch: &'a [NewDelivery],
        lease: Option<Lease<'a>>,
    ) -> StoreFuture<'a, Vec<DeliveryReceipt>> {
        Box::pin(async move {
            if !self.append_raw() {
                return self.record_deliveries(batch, lease).await;
            }
            // Deliveries with events are stored raw; the rare dead letters
            // go with their dead-letter row, in a second transaction when a
            // group holds both.
            let raw: Vec<igdm_store::RawDelivery<'_>> = batch
                .iter()
                .filter(|d| d.content.dead_letter().is_none())
                .map(|d| igdm_store::RawDelivery {
                    raw_body: &d.raw_body,
                    received_at: d.received_at,
                })
                .collect();
            let dead: Vec<igdm_store::NewDelivery<'_>> = batch
                .iter()
                .filter(|d| d.content.dead_letter().is_some())
                .map(store_delivery)
                .collect();
            let (raw_ids, dead_ids) = {
                let _g = match &self.log_gate {
                    Some(g) => Some(g.urgent().await),
                    None => None,
                };
                let raw_ids = self.log.append_unexpanded(&raw, lease).await?;
                let dead_ids = if dead.is_empty() {
                    Vec::new()
                } else {
                    self.log.record_deliveries(&dead).await?
                };
                (raw_ids, dead_ids)
            };
            let (mut raw_ids, mut dead_ids) = (raw_ids.into_iter(), dead_ids.into_iter());
            batch
                .iter()
                .map(|d| {
                    let receipt = match &d.content {
                        DeliveryContent::Events(_) => raw_ids.next().map(|id| DeliveryReceipt {
                            delivery_id: id.0,
                            dead_lettered: false,
                            expanded: None,
                        }),
                        DeliveryContent::DeadLetter { .. } => {
                            dead_ids.next().map(|r| DeliveryReceipt {
                                delivery_id: r.id.0,
                                dead_lettered: r.dead_letter.is_some(),
                                expanded: Some(expansion_receipt(&r)),
                            })
                        }
                    };
                    receipt.ok_or_else(|| {
                        BoxError::from("the log answered fewer deliveries than it was given")
                    })
                })
                .collect()
        })
    }

    fn expand_deliveries<'a>(
        &'a self,
        batch: &'a [Expansion<'a>],
        lease: Option<Lease<'a>>,
    ) -> StoreFuture<'a, Vec<Option<ExpansionReceipt>>> {
        Box::pin(async move {
            let expansions: Vec<igdm_store::Expansion<'_>> = batch
                .iter()
                .map(|e| igdm_store::Expansion {
                    delivery: igdm_store::DeliveryId(e.delivery_id),
                    events: e.content.events(),
                    dead_letter: e.content.dead_letter(),
                })
                .collect();
            let expanded = {
                let _g = self.lock_log().await;
                self.queue.expand_deliveries(&expansions, lease).await?
            };
            Ok(expanded.into_iter().map(|r| r.as_ref().map(expansion_receipt)).collect())
        })
    }

    fn claim_deliveries<'a>(
        &'a self,
        owner: &'a str,
        limit: usize,
        lease: Duration,
    ) -> StoreFuture<'a, Vec<ClaimedDelivery>> {
        Box::pin(async move {
            let limit = u32::try_from(limit).unwrap_or(u32::MAX);
            let claimed = {
                let _g = self.lock_log().await;
                self.queue.claim_unexpanded(owner, limit, lease).await?
            };
            Ok(claimed
                .into_iter()
                .map(|d| ClaimedDelivery {
                    id: d.id.0,
                    raw_body: bytes::Bytes::from(d.raw_body),
                    received_at: d.received_at,
                })
                .collect())
        })
    }

    fn release_deliveries<'a>(&'a self, owner: &'a str, ids: &'a [i64]) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let ids: Vec<igdm_store::DeliveryId> =
                ids.iter().copied().map(igdm_store::DeliveryId).collect();
            let _g = self.lock_log().await;
            self.queue.release_unexpanded(owner, &ids).await?;
            Ok(())
        })
    }

    fn claim_events<'a>(
        &'a self,
        worker_id: &'a str,
        limit: usize,
        lease: Duration,
    ) -> StoreFuture<'a, Vec<ClaimedEvent>> {
        Box::pin(async move {
            let limit = u32::try_from(limit).unwrap_or(u32::MAX);
            let claimed = {
                let _g = self.lock_log().await;
                self.queue.claim_events(worker_id, limit, lease).await?
            };
            Ok(claimed
                .into_iter()
                .map(|e| ClaimedEvent {
                    id: e.id.0,
                    kind: e.kind.as_str().to_owned(),
                    account_id: e.account_id,
                    payload: e.payload,
                    received_at: e.created_at,
                    attempts: e.attempts.saturating_sub(1),
                })
                .collect())
        })
    }

    fn complete_events<'a>(&'a self, ids: &'a [i64]) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let ids: Vec<EventId> = ids.iter().copied().map(EventId).collect();
            let _g = self.lock_log().await;
            self.queue.complete_events(&ids).await?;
            Ok(())
        })
    }

    fn release_events<'a>(&'a self, owner: &'a str, ids: &'a [i64]) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let ids: Vec<EventId> = ids.iter().copied().map(EventId).collect();
            let _g = self.lock_log().await;
            self.queue.release_events(owner, &ids).await?;
            Ok(())
        })
    }

    fn fail_event<'a>(
        &'a self,
        id: i64,
        error: &'a str,
        retry_after: Option<Duration>,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let retry_at = retry_after.map(|d| {
                let d = chrono::TimeDelta::from_std(d).unwrap_or(chrono::TimeDelta::hours(1));
                Timestamp(Timestamp::now().0 + d)
            });
            let _g = self.lock_log().await;
            self.queue.fail_event(EventId(id), error, retry_at).await?;
            Ok(())
        })
    }

    fn apply_event<'a>(&'a self, event: &'a Event) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let _g = self.lock().await;
            self.apply(event).await
        })
    }

    fn apply_events<'a>(&'a self, events: &'a [Event]) -> StoreFuture<'a, ()> {
        Box::pin(self.apply_batch(events))
    }

    fn processing_workers(&self) -> usize {
        // SQLite takes one write at a time per file, so a second worker
        // mostly competes with the receiver for CPU. On the 2-core reference
        // machine, one worker instead of two acknowledged about 1.1-1.3
        // times as many deliveries per second in a burst (processing caught
        // up afterwards) with the same p99 at 2,000/s. PostgreSQL applies
        // batches in parallel.
        if self.store.backend_name() == "sqlite" { 1 } else { 2 }
    }

    fn commit_concurrency(&self) -> usize {
        // PostgreSQL commits from several connections in parallel (as many
        // as the durable pool holds; processing has a pool of its own); on
        // the 2-core reference machine 8 acknowledged about 1.35 times as
        // many deliveries per second as 4. SQLite has one writer, but its
        // appends run in turn on one connection: with a second group handed
        // over while the first commits, the next commit starts at once
        // instead of after the writer task is scheduled again. Ingest bench,
        // 64 connections: about 20,300-20,600 deliveries/s with 2 against
        // 11,300-15,600 with 1 and 16,000-19,500 with 4, p99 at 2,000/s
        // unchanged (3.6-4.1 ms).
        if self.log.backend_name() == "postgres" { 8 } else { 2 }
    }

    fn defer_while_busy(&self) -> Duration {
        // On PostgreSQL processing slows acknowledgements twice over: the
        // server's CPU, and the WAL every acknowledgement's commit flushes
        // (about 3.5 KiB per event processed, against 0.5 KiB per delivery
        // appended). Ingest bench, 64 connections, 3 alternating runs:
        // 22.4-23.1k deliveries/s deferring against 9.7-10.7k without; the
        // burst was processed in the 11-12 s after it. On SQLite the log's
        // write gate already serves acknowledgements first, and deferring on
        // top measured slower (20.1-20.9k against 21.6-22.3k).
        if self.log.backend_name() == "postgres" { Duration::from_secs(5) } else { Duration::ZERO }
    }

    fn counts(&self) -> StoreFuture<'_, LogCounts> {
        Box::pin(async move {
            let c = self.queue.event_backlog().await?;
            Ok(LogCounts {
                pending: c.pending + c.processing,
                failed: c.failed,
                dead_letters: c.dead_letters,
                unexpanded: c.unexpanded,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::Gate;

    /// Whether `fut` is still pending after the runtime has had a moment.
    async fn still_pending<F: std::future::Future>(fut: F) -> bool {
        tokio::time::timeout(Duration::from_millis(50), fut).await.is_err()
    }

    #[tokio::test]
    async fn appends_overlap_and_processing_waits_for_all_of_them() {
        let gate = Arc::new(Gate::default());
        let first = gate.urgent().await;
        let second = tokio::time::timeout(Duration::from_secs(5), gate.urgent())
            .await
            .expect("a second append does not wait for the first");
        assert!(still_pending(gate.background()).await, "processing waits while appends run");
        drop(first);
        assert!(still_pending(gate.background()).await, "… all of them");
        drop(second);
        let processing = gate.background().await;
        // While processing writes, an append waits for it.
        assert!(still_pending(gate.urgent()).await);
        drop(processing);
        drop(gate.urgent().await);
    }

    #[tokio::test]
    async fn a_waiting_append_goes_before_waiting_processing() {
        let gate = Arc::new(Gate::default());
        let running = gate.background().await;
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (g, o) = (gate.clone(), order.clone());
        let processing = tokio::spawn(async move {
            let _w = g.background().await;
            o.lock().unwrap().push("processing");
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let (g, o) = (gate.clone(), order.clone());
        let append = tokio::spawn(async move {
            let _r = g.urgent().await;
            o.lock().unwrap().push("append");
        });
        // Processing has been waiting for a while; once the append waits
        // too, the running write ends.
        let registered = std::time::Instant::now();
        while gate.urgent_waiting.load(std::sync::atomic::Ordering::SeqCst) == 0 {
            assert!(registered.elapsed() < Duration::from_secs(5), "the append never waited");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        drop(running);
        append.await.unwrap();
        processing.await.unwrap();
        assert_eq!(*order.lock().unwrap(), ["append", "processing"]);
    }
}
