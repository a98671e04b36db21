//! The send ledger: one persistent record per idempotency key of every send,
//! whichever front end makes it (library, CLI, MCP server, bot).
//!
//! A send first [`begin`](SendLedger::begin)s its key — getting the entry
//! already recorded under it, or a fresh `pending` one — and then marks it
//! `sending`, `sent` (with the provider's answer), `unknown` or `failed`. The
//! states are [`SendState`] (the store's outbox states, stored under stable
//! names). [`StoreLedger`] keeps the ledger in the local store's outbox
//! (SQLite or PostgreSQL), the same rows the bot's replies use;
//! [`MemoryLedger`] keeps it for one process only.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::Value;
use tokio::sync::OnceCell;

use igdm_model::Timestamp;
use igdm_store::{MessageStore, NewOutbox, OutboxBegin, OutboxEntry, Store, StoreError};

pub use igdm_store::OutboxState as SendState;

use crate::Error;

/// What a ledger call returns.
pub type LedgerFuture<'a, T> = BoxFuture<'a, Result<T, Error>>;

/// A send recorded in the ledger.
pub type LedgerEntry = OutboxEntry;

/// A send to record in the ledger.
pub type NewSend = NewOutbox;

/// The one record of every send and its outcome, by idempotency key.
pub trait SendLedger: Send + Sync {
    /// Records `new` under its key in state `pending`, or returns the entry
    /// already recorded under that key (`created: false`) untouched.
    fn begin<'a>(&'a self, new: &'a NewSend) -> LedgerFuture<'a, OutboxBegin>;

    /// Moves the entry under `key` to `state`, keeping the provider's
    /// `result` and/or an `error` when given. Entering
    /// [`SendState::Sending`] counts an attempt.
    fn mark<'a>(
        &'a self,
        key: &'a str,
        state: SendState,
        result: Option<&'a Value>,
        error: Option<&'a str>,
    ) -> LedgerFuture<'a, LedgerEntry>;

    /// The entry under `key`.
    fn get<'a>(&'a self, key: &'a str) -> LedgerFuture<'a, Option<LedgerEntry>>;

    /// Entries of `account` addressed to `conversation` recorded at or after
    /// `since`, oldest first.
    fn since<'a>(
        &'a self,
        account: &'a str,
        conversation: &'a str,
        since: Timestamp,
    ) -> LedgerFuture<'a, Vec<LedgerEntry>>;
}

fn store_error(e: StoreError) -> Error {
    Error::Ledger(e.to_string())
}

/// The ledger in a [`MessageStore`]'s outbox.
#[derive(Clone)]
pub struct StoreLedger {
    store: Source,
}

#[derive(Clone)]
enum Source {
    Open(Arc<dyn MessageStore>),
    /// Opened at the first send, so that commands that never send never open it.
    Lazy {
        url: String,
        cell: Arc<OnceCell<Arc<dyn MessageStore>>>,
    },
}

impl std::fmt::Debug for StoreLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let opened = match &self.store {
            Source::Open(_) => true,
            Source::Lazy { cell, .. } => cell.initialized(),
        };
        f.debug_struct("StoreLedger").field("opened", &opened).finish()
    }
}

impl StoreLedger {
    /// The ledger in `store`'s outbox.
    #[must_use]
    pub fn new(store: Arc<dyn MessageStore>) -> Self {
        Self { store: Source::Open(store) }
    }

    /// The ledger in the outbox of the store at `url` (as
    /// [`igdm_store::Store::open`] takes it), opened at the first send.
    #[must_use]
    pub fn open_on_first_use(url: impl Into<String>) -> Self {
        Self { store: Source::Lazy { url: url.into(), cell: Arc::new(OnceCell::new()) } }
    }

    async fn store(&self) -> Result<&Arc<dyn MessageStore>, Error> {
        match &self.store {
            Source::Open(s) => Ok(s),
            Source::Lazy { url, cell } => {
                cell.get_or_try_init(|| async {
                    let store = Store::open(url).await.map_err(store_error)?;
                    Ok::<_, Error>(store.into_shared())
                })
                .await
            }
        }
    }
}

impl SendLedger for StoreLedger {
    fn begin<'a>(&'a self, new: &'a NewSend) -> LedgerFuture<'a, OutboxBegin> {
        async move { self.store().await?.outbox_begin(new).await.map_err(store_error) }.boxed()
    }

    fn mark<'a>(
        &'a self,
        key: &'a str,
        state: SendState,
        result: Option<&'a Value>,
        error: Option<&'a str>,
    ) -> LedgerFuture<'a, LedgerEntry> {
        async move {
            self.store().await?.outbox_mark(key, state, result, error).await.map_err(store_error)
        }
        .boxed()
    }

    fn get<'a>(&'a self, key: &'a str) -> LedgerFuture<'a, Option<LedgerEntry>> {
        async move { self.store().await?.outbox_get(key).await.map_err(store_error) }.boxed()
    }

    fn since<'a>(
        &'a self,
        account: &'a str,
        conversation: &'a str,
        since: Timestamp,
    ) -> LedgerFuture<'a, Vec<LedgerEntry>> {
        async move {
            self.store()
                .await?
                .outbox_since(account, conversation, since)
                .await
                .map_err(store_error)
        }
        .boxed()
    }
}

/// A ledger kept in memory, for this process only (a client built without a
/// ledger uses one).
#[derive(Debug, Default)]
pub struct MemoryLedger {
    entries: Mutex<BTreeMap<String, LedgerEntry>>,
}

impl MemoryLedger {
    fn with<T>(&self, f: impl FnOnce(&mut BTreeMap<String, LedgerEntry>) -> T) -> Result<T, Error> {
        let mut guard =
            self.entries.lock().map_err(|_| Error::Ledger("ledger lock poisoned".into()))?;
        Ok(f(&mut guard))
    }
}

impl SendLedger for MemoryLedger {
    fn begin<'a>(&'a self, new: &'a NewSend) -> LedgerFuture<'a, OutboxBegin> {
        let out = if new.idempotency_key.is_empty() {
            Err(Error::Ledger("empty idempotency key".into()))
        } else {
            self.with(|m| {
                if let Some(entry) = m.get(&new.idempotency_key) {
                    return OutboxBegin { entry: entry.clone(), created: false };
                }
                let now = Timestamp::now();
                let entry = LedgerEntry {
                    idempotency_key: new.idempotency_key.clone(),
                    account_id: new.account_id.clone(),
                    conversation_id: new.conversation_id.clone(),
                    recipient_id: new.recipient_id.clone(),
                    payload: new.payload.clone(),
                    state: SendState::Pending,
                    attempts: 0,
                    last_error: None,
                    result: None,
                    created_at: now,
                    updated_at: now,
                };
                m.insert(entry.idempotency_key.clone(), entry.clone());
                OutboxBegin { entry, created: true }
            })
        };
        std::future::ready(out).boxed()
    }

    fn mark<'a>(
        &'a self,
        key: &'a str,
        state: SendState,
        result: Option<&'a Value>,
        error: Option<&'a str>,
    ) -> LedgerFuture<'a, LedgerEntry> {
        let out = self
            .with(|m| {
                let entry = m.get_mut(key)?;
                entry.state = state;
                if state == SendState::Sending {
                    entry.attempts += 1;
                }
                if let Some(r) = result {
                    entry.result = Some(r.clone());
                }
                if let Some(e) = error {
                    entry.last_error = Some(e.to_owned());
                }
                entry.updated_at = Timestamp::now();
                Some(entry.clone())
            })
            .and_then(|e| e.ok_or_else(|| Error::Ledger(format!("no send under key {key}"))));
        std::future::ready(out).boxed()
    }

    fn get<'a>(&'a self, key: &'a str) -> LedgerFuture<'a, Option<LedgerEntry>> {
        std::future::ready(self.with(|m| m.get(key).cloned())).boxed()
    }

    fn since<'a>(
        &'a self,
        account: &'a str,
        conversation: &'a str,
        since: Timestamp,
    ) -> LedgerFuture<'a, Vec<LedgerEntry>> {
        let out = self.with(|m| {
            let mut found: Vec<LedgerEntry> = m
                .values()
                .filter(|e| {
                    e.account_id == account
                        && (e.conversation_id.as_deref() == Some(conversation)
                            || e.recipient_id.as_deref() == Some(conversation))
                        && e.created_at.0 >= since.0
                })
                .cloned()
                .collect();
            found.sort_by_key(|e| e.created_at.0);
            found
        });
        std::future::ready(out).boxed()
    }
}
