//! What the receiver needs from a store: a durable event log with
//! de-duplication and leased work claims, plus applying a normalized event to
//! the message store.
//!
//! [`WebhookStore`] is the seam; [`crate::StoreLog`] implements it over
//! `igdm_store` (SQLite or PostgreSQL).

use std::future::Future;
use std::pin::Pin;
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

impl DeliveryContent {
    /// The events, none for a dead letter.
    #[must_use]
    pub fn events(&self) -> &[NewEvent] {
        match self {
            Self::Events(events) => events,
            Self::DeadLetter { .. } => &[],
        }
    }

    /// Why the body could not be parsed, for a dead letter.
    #[must_use]
    pub fn dead_letter(&self) -> Option<&str> {
        match self {
            Self::DeadLetter { reason } => Some(reason),
            Self::Events(_) => None,
        }
    }
}

pub use igdm_store::{Lease, NewEvent};

/// What appending one delivery did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeliveryReceipt {
    /// The delivery's id in the log.
    pub delivery_id: i64,
    /// Whether the delivery went to the dead-letter table.
    pub dead_lettered: bool,
    /// Its events, when the store stored them with the delivery; `None`
    /// when it stored the delivery unexpanded, for
    /// [`WebhookStore::expand_deliveries`] after the acknowledgement.
    pub expanded: Option<ExpansionReceipt>,
}

/// A delivery stored unexpanded and what it turned out to contain, for
/// [`WebhookStore::expand_deliveries`].
#[derive(Debug, Clone, Copy)]
pub struct Expansion<'a> {
    /// The delivery's id in the log.
    pub delivery_id: i64,
    /// Its events, or why it could not be parsed.
    pub content: &'a DeliveryContent,
}

/// What expanding one delivery did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExpansionReceipt {
    /// Events newly inserted.
    pub inserted: usize,
    /// Events already present (de-duplicated).
    pub duplicates: usize,
    /// Whether the delivery went to the dead-letter table.
    pub dead_lettered: bool,
    /// For each of the delivery's events, in order: its id in the log when
    /// it was newly inserted, `None` when it was a duplicate.
    pub event_ids: Vec<Option<i64>>,
}

/// A delivery stored unexpanded, claimed from the log by a worker (one whose
/// receiver stopped before expanding it, or one that did not fit in the
/// receiver's local queue).
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    /// The delivery's id in the log.
    pub id: i64,
    /// The body exactly as received.
    pub raw_body: Bytes,
    /// When it was received.
    pub received_at: Timestamp,
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
    /// Deliveries stored but not yet expanded into events.
    pub unexpanded: u64,
}

/// The storage the webhook pipeline runs on.
pub trait WebhookStore: Send + Sync + 'static {
    /// Makes deliveries durable, in one transaction, before they are
    /// acknowledged. A delivery with events is stored either raw and
    /// unexpanded (the smallest write that keeps it, held under `lease`
    /// when given) or with its events (new ones claimed under `lease`),
    /// whichever acknowledges faster on the backend; a dead letter is
    /// stored with its dead-letter row. When this returns `Ok`, every
    /// delivery is durable. Receipts are in input order.
    fn append_deliveries<'a>(
        &'a self,
        batch: &'a [NewDelivery],
        lease: Option<Lease<'a>>,
    ) -> StoreFuture<'a, Vec<DeliveryReceipt>>;

    /// Stores the events of deliveries appended unexpanded, de-duplicated
    /// against every event stored before; new events are stored claimed
    /// under `lease` when given. `None` for a delivery some other claimer
    /// already expanded. Results are in input order.
    fn expand_deliveries<'a>(
        &'a self,
        batch: &'a [Expansion<'a>],
        lease: Option<Lease<'a>>,
    ) -> StoreFuture<'a, Vec<Option<ExpansionReceipt>>>;

    /// Claims up to `limit` unexpanded deliveries whose lease is free or ran
    /// out, holding them for `lease`.
    fn claim_deliveries<'a>(
        &'a self,
        owner: &'a str,
        limit: usize,
        lease: Duration,
    ) -> StoreFuture<'a, Vec<ClaimedDelivery>>;

    /// Gives unexpanded deliveries leased to `owner` back, so that any
    /// worker may claim them at once. The default leaves them until their
    /// lease runs out.
    fn release_deliveries<'a>(&'a self, owner: &'a str, ids: &'a [i64]) -> StoreFuture<'a, ()> {
        let _ = (owner, ids);
        Box::pin(async { Ok(()) })
    }

    /// Claims up to `limit` unprocessed events whose lease is free, holding
    /// them for `lease`. Concurrent claimers never get the same event.
    fn claim_events<'a>(
        &'a self,
        worker_id: &'a str,
        limit: usize,
        lease: Duration,
    ) -> StoreFuture<'a, Vec<ClaimedEvent>>;

    /// Gives events leased to `owner` back unprocessed, so that any worker
    /// may claim them at once. The default leaves them until their lease
    /// runs out.
    fn release_events<'a>(&'a self, owner: &'a str, ids: &'a [i64]) -> StoreFuture<'a, ()> {
        let _ = (owner, ids);
        Box::pin(async { Ok(()) })
    }

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

    /// Applies several events; the same as [`WebhookStore::apply_event`] on
    /// each in turn, which is the default. Implementations may group writes.
    fn apply_events<'a>(&'a self, events: &'a [Event]) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            for e in events {
                self.apply_event(e).await?;
            }
            Ok(())
        })
    }

    /// Counts for `/metrics`.
    fn counts(&self) -> StoreFuture<'_, LogCounts>;

    /// How many processing workers a process should run when its
    /// configuration does not say. The default is 2.
    fn processing_workers(&self) -> usize {
        2
    }

    /// How many group commits may be in flight at once. The default, 1,
    /// commits one group after another.
    fn commit_concurrency(&self) -> usize {
        1
    }

    /// How long processing may wait for a busy receiver when the
    /// configuration does not say (see `Config::defer_while_busy`). The
    /// default, zero, never waits.
    fn defer_while_busy(&self) -> Duration {
        Duration::ZERO
    }
}
