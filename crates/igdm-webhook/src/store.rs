//! What the receiver needs from a store: a durable event log with
//! de-duplication and leased work claims, plus applying a normalized event to
//! the message store.
//!
//! [`WebhookStore`] is the seam. The SQLite/PostgreSQL implementation lives
//! next to `igdm-store`; [`MemoryStore`] is a process-local implementation
//! for embedding in tests and demos where durability is not wanted.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use igdm_model::{Event, Timestamp};

/// Any store error.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A boxed future returned by [`WebhookStore`] methods.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, BoxError>> + Send + 'a>>;

/// A verified delivery to append to the log.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    /// The body exactly as received.
    pub raw_body: Bytes,
    /// When it was received.
    pub received_at: Timestamp,
    /// Its events, or why it could not be parsed.
    pub content: DeliveryContent,
}

/// What a delivery contained.
#[derive(Debug, Clone)]
pub enum DeliveryContent {
    /// The parsed events.
    Events(Vec<NewEvent>),
    /// The body was signed but could not be parsed; it goes to the dead-letter table.
    DeadLetter {
        /// Why it could not be parsed.
        reason: String,
    },
}

/// One event to insert into the log.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// Unique key: a second insert with the same key is a duplicate.
    pub dedup_key: String,
    /// The event kind (`message`, `reaction`, or an unknown raw kind).
    pub kind: String,
    /// The business account (`entry.id`).
    pub account_id: String,
    /// The normalized [`Event`] as JSON.
    pub payload: serde_json::Value,
}

/// What appending one delivery did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeliveryReceipt {
    /// The delivery's id in the log.
    pub delivery_id: i64,
    /// Events newly inserted.
    pub inserted: usize,
    /// Events already present (de-duplicated).
    pub duplicates: usize,
    /// Whether the delivery went to the dead-letter table.
    pub dead_lettered: bool,
}

/// An event claimed by a worker.
#[derive(Debug, Clone)]
pub struct ClaimedEvent {
    /// The event's id in the log.
    pub id: i64,
    /// Its kind.
    pub kind: String,
    /// The business account.
    pub account_id: String,
    /// The normalized event as JSON.
    pub payload: serde_json::Value,
    /// When its delivery was received.
    pub received_at: Timestamp,
    /// How many times it was claimed before (0 on the first claim).
    pub attempts: u32,
}

/// Counts the event log can report for `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogCounts {
    /// Events waiting to be processed (including claimed ones).
    pub pending: u64,
    /// Events that failed for good.
    pub failed: u64,
    /// Deliveries in the dead-letter table.
    pub dead_letters: u64,
}

/// The storage the webhook pipeline runs on.
pub trait WebhookStore: Send + Sync + 'static {
    /// Appends deliveries and inserts their events, all in one transaction.
    /// When this returns `Ok`, every delivery is durable.
    fn record_deliveries<'a>(
        &'a self,
        batch: &'a [NewDelivery],
    ) -> StoreFuture<'a, Vec<DeliveryReceipt>>;

    /// Claims up to `limit` unprocessed events whose lease is free, holding
    /// them for `lease`. Concurrent claimers never get the same event.
    fn claim_events<'a>(
        &'a self,
        worker_id: &'a str,
        limit: usize,
        lease: Duration,
    ) -> StoreFuture<'a, Vec<ClaimedEvent>>;

    /// Marks events processed.
    fn complete_events<'a>(&'a self, ids: &'a [i64]) -> StoreFuture<'a, ()>;

    /// Records a processing failure. With `retry_after` the event becomes
    /// claimable again after that delay; without it, it fails for good.
    fn fail_event<'a>(
        &'a self,
        id: i64,
        error: &'a str,
        retry_after: Option<Duration>,
    ) -> StoreFuture<'a, ()>;

    /// Applies a normalized event to the message store (conversations,
    /// users, messages, reactions, read state, edits, deletions, reply window).
    fn apply_event<'a>(&'a self, event: &'a Event) -> StoreFuture<'a, ()>;

    /// Counts for `/metrics`.
    fn counts(&self) -> StoreFuture<'_, LogCounts>;
}

#[derive(Debug)]
struct MemEvent {
    id: i64,
    ev: NewEvent,
    received_at: Timestamp,
    attempts: u32,
    lease_until: Option<std::time::Instant>,
    not_before: Option<std::time::Instant>,
    state: MemState,
}

#[derive(Debug, PartialEq, Eq)]
enum MemState {
    Pending,
    Done,
    Failed,
}

#[derive(Debug, Default)]
struct MemInner {
    deliveries: Vec<NewDelivery>,
    keys: HashSet<String>,
    events: Vec<MemEvent>,
    applied: Vec<Event>,
    dead: u64,
}

/// An in-memory [`WebhookStore`]: nothing survives the process. Applied
/// events are kept in order for inspection.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<MemInner>,
}

impl MemoryStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Every event applied so far, in order.
    #[must_use]
    pub fn applied(&self) -> Vec<Event> {
        self.inner.lock().map(|g| g.applied.clone()).unwrap_or_default()
    }

    /// Number of deliveries appended (dead letters included).
    #[must_use]
    pub fn delivery_count(&self) -> usize {
        self.inner.lock().map(|g| g.deliveries.len()).unwrap_or_default()
    }
}

fn poisoned<T>(_: T) -> BoxError {
    "memory store lock poisoned".into()
}

impl WebhookStore for MemoryStore {
    fn record_deliveries<'a>(
        &'a self,
        batch: &'a [NewDelivery],
    ) -> StoreFuture<'a, Vec<DeliveryReceipt>> {
        Box::pin(async move {
            let mut g = self.inner.lock().map_err(poisoned)?;
            let mut out = Vec::with_capacity(batch.len());
            for d in batch {
                g.deliveries.push(d.clone());
                let delivery_id = i64::try_from(g.deliveries.len()).unwrap_or(i64::MAX);
                let mut r = DeliveryReceipt { delivery_id, ..DeliveryReceipt::default() };
                match &d.content {
                    DeliveryContent::DeadLetter { .. } => {
                        g.dead += 1;
                        r.dead_lettered = true;
                    }
                    DeliveryContent::Events(evs) => {
                        for ev in evs {
                            if g.keys.insert(ev.dedup_key.clone()) {
                                let id = i64::try_from(g.events.len() + 1).unwrap_or(i64::MAX);
                                g.events.push(MemEvent {
                                    id,
                                    ev: ev.clone(),
                                    received_at: d.received_at,
                                    attempts: 0,
                                    lease_until: None,
                                    not_before: None,
                                    state: MemState::Pending,
                                });
                                r.inserted += 1;
                            } else {
                                r.duplicates += 1;
                            }
                        }
                    }
                }
                out.push(r);
            }
            Ok(out)
        })
    }

    fn claim_events<'a>(
        &'a self,
        _worker_id: &'a str,
        limit: usize,
        lease: Duration,
    ) -> StoreFuture<'a, Vec<ClaimedEvent>> {
        Box::pin(async move {
            let now = std::time::Instant::now();
            let mut g = self.inner.lock().map_err(poisoned)?;
            let mut out = Vec::new();
            for e in &mut g.events {
                if out.len() >= limit {
                    break;
                }
                let free =
                    e.lease_until.is_none_or(|t| t <= now) && e.not_before.is_none_or(|t| t <= now);
                if e.state == MemState::Pending && free {
                    e.lease_until = Some(now + lease);
                    out.push(ClaimedEvent {
                        id: e.id,
                        kind: e.ev.kind.clone(),
                        account_id: e.ev.account_id.clone(),
                        payload: e.ev.payload.clone(),
                        received_at: e.received_at,
                        attempts: e.attempts,
                    });
                    e.attempts += 1;
                }
            }
            Ok(out)
        })
    }

    fn complete_events<'a>(&'a self, ids: &'a [i64]) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut g = self.inner.lock().map_err(poisoned)?;
            let wanted: HashSet<i64> = ids.iter().copied().collect();
            for e in g.events.iter_mut().filter(|e| wanted.contains(&e.id)) {
                e.state = MemState::Done;
            }
            Ok(())
        })
    }

    fn fail_event<'a>(
        &'a self,
        id: i64,
        _error: &'a str,
        retry_after: Option<Duration>,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut g = self.inner.lock().map_err(poisoned)?;
            if let Some(e) = g.events.iter_mut().find(|e| e.id == id) {
                e.lease_until = None;
                match retry_after {
                    Some(d) => e.not_before = Some(std::time::Instant::now() + d),
                    None => e.state = MemState::Failed,
                }
            }
            Ok(())
        })
    }

    fn apply_event<'a>(&'a self, event: &'a Event) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.inner.lock().map_err(poisoned)?.applied.push(event.clone());
            Ok(())
        })
    }

    fn counts(&self) -> StoreFuture<'_, LogCounts> {
        Box::pin(async move {
            let g = self.inner.lock().map_err(poisoned)?;
            let mut by: HashMap<bool, u64> = HashMap::new();
            for e in &g.events {
                match e.state {
                    MemState::Pending => *by.entry(true).or_default() += 1,
                    MemState::Failed => *by.entry(false).or_default() += 1,
                    MemState::Done => {}
                }
            }
            Ok(LogCounts {
                pending: by.get(&true).copied().unwrap_or(0),
                failed: by.get(&false).copied().unwrap_or(0),
                dead_letters: g.dead,
            })
        })
    }
}
