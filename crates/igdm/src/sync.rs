//! Mirroring an account into the local store: the inbox, then each
//! conversation's messages, incrementally, with cursors so an interrupted sync
//! resumes where it stopped.
//!
//! Rules (Singer-style): a cursor is saved only after the page it describes is
//! committed, so a crash can repeat a page (upserts make that harmless) but
//! never skip one. An incremental pass reads newest-first until it reaches a
//! message it already has; when a whole page is new the gap is backfilled by
//! reading on. A full pass (or a conversation never completed) reads back to
//! the start of the history the API exposes.

use std::collections::HashSet;

use serde_json::{Value, json};
use tracing::{debug, info};

use igdm_model::{Conversation, Message, Timestamp};
use igdm_store::{MessageStore, SyncCursor};

use crate::keep::{KeepReport, Keeper, MediaStore};
use crate::ops::{page_of, params};
use crate::{Client, Error};

/// What a sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SyncReport {
    /// Conversations seen in the inbox.
    pub conversations: u64,
    /// Messages written (new or updated).
    pub messages: u64,
    /// Pages fetched.
    pub pages: u64,
    /// Conversations whose history reached its start.
    pub completed: u64,
    /// What keeping media did ([`sync_with_media`] only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media: Option<crate::keep::KeepReport>,
}

/// Progress events, for progress bars.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncProgress {
    /// The inbox listing found this many conversations so far.
    Conversations(u64),
    /// Started a conversation (index, total).
    Conversation {
        /// Which one.
        index: u64,
        /// Of how many.
        total: u64,
        /// Its id.
        id: String,
    },
    /// Messages written so far in all.
    Messages(u64),
}

/// Options of a sync.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// Read every conversation back to its start, not just what is new.
    pub full: bool,
    /// Page size for messages.
    pub page_size: u32,
    /// Page size for the inbox.
    pub inbox_page_size: u32,
    /// Stop after this many pages in all (for tests of interruption; `None` = no limit).
    pub max_pages: Option<u64>,
}

impl Default for SyncOptions {
    fn default() -> Self {
        Self { full: false, page_size: 20, inbox_page_size: 20, max_pages: None }
    }
}

/// Stopped early because `max_pages` was reached; what was committed stays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interrupted;

struct Run<'a> {
    keeper: Option<Keeper<'a>>,
    client: &'a Client,
    store: &'a dyn MessageStore,
    account: String,
    opts: &'a SyncOptions,
    report: SyncReport,
    progress: &'a mut dyn FnMut(SyncProgress),
}

impl Run<'_> {
    fn page_budget(&mut self) -> Result<(), Interrupted> {
        if self.opts.max_pages.is_some_and(|m| self.report.pages >= m) {
            return Err(Interrupted);
        }
        self.report.pages += 1;
        Ok(())
    }

    async fn inbox(&mut self) -> Result<Result<Vec<Conversation>, Interrupted>, Error> {
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        let mut seen_cursors = HashSet::new();
        loop {
            if let Err(i) = self.page_budget() {
                return Ok(Err(i));
            }
            let p = params(&[
                ("limit", json!(self.opts.inbox_page_size)),
                ("cursor", cursor.clone().map_or(Value::Null, Value::String)),
            ]);
            let out = self.client.invoke("list_conversations", p).await?;
            let (page, _) = page_of::<Conversation>("list_conversations", out)?;
            for c in &page.items {
                self.store.upsert_conversation(&self.account, c).await.map_err(store_err)?;
            }
            all.extend(page.items);
            (self.progress)(SyncProgress::Conversations(all.len() as u64));
            // `has_older` can flap: stop on an empty page or a repeated cursor.
            match page.next_cursor {
                Some(c) if page.has_more && seen_cursors.insert(c.clone()) && !all.is_empty() => {
                    cursor = Some(c)
                }
                _ => break,
            }
        }
        Ok(Ok(all))
    }

    async fn conversation(
        &mut self,
        conv: &Conversation,
    ) -> Result<Result<(), Interrupted>, Error> {
        let id = conv.id.as_str();
        let mut state = self
            .store
            .get_sync_cursor(&self.account, id)
            .await
            .map_err(store_err)?
            .unwrap_or_default();
        let stored_newest = state.newest_seen_at;
        let resume_backfill = !state.completed && state.oldest_cursor.is_some();

        // 1. Newest first, until a page reaches what the store already has.
        // Skipped when the inbox says nothing happened since the newest stored message.
        let unchanged = stored_newest.is_some_and(|n| conv.updated_at.is_some_and(|u| u <= n));
        let mut cursor: Option<String> = None;
        let mut seen_cursors = HashSet::new();
        let mut newest_this_run: Option<Timestamp> = None;
        let mut more = !unchanged;
        while more {
            if let Err(i) = self.page_budget() {
                return Ok(Err(i));
            }
            let (page, n) = self.fetch(id, cursor.as_deref()).await?;
            if newest_this_run.is_none() {
                newest_this_run = page.items.iter().map(|m| m.timestamp).max();
            }
            let reached_known =
                stored_newest.is_some_and(|t| page.items.iter().any(|m| m.timestamp <= t));
            let oldest = page.items.iter().map(|m| m.timestamp).min();
            if stored_newest.is_none() {
                // First sync of this conversation: the newest pass is the backfill.
                state.oldest_seen_at = oldest.or(state.oldest_seen_at);
                state.oldest_cursor.clone_from(&page.next_cursor);
                state.newest_seen_at = newest_this_run.or(state.newest_seen_at);
                state.completed = !page.has_more;
                self.store.set_sync_cursor(&self.account, id, &state).await.map_err(store_err)?;
            }
            debug!(conversation = id, written = n, reached_known, "page synced");
            match page.next_cursor {
                Some(c)
                    if page.has_more
                        && !reached_known
                        && !page.items.is_empty()
                        && seen_cursors.insert(c.clone()) =>
                {
                    cursor = Some(c);
                }
                _ => more = false,
            }
        }
        if unchanged {
            debug!(conversation = id, "no activity since the last sync");
        }
        if let Some(t) = newest_this_run {
            if state.newest_seen_at.is_none_or(|s| t > s) {
                state.newest_seen_at = Some(t);
            }
            self.store.set_sync_cursor(&self.account, id, &state).await.map_err(store_err)?;
        }

        // 2. Backfill older history when asked (--full) or when an earlier run was cut short.
        if (self.opts.full || resume_backfill) && !state.completed {
            let mut cursor = state.oldest_cursor.clone();
            while let Some(c) = cursor.take() {
                if !seen_cursors.insert(c.clone()) {
                    break;
                }
                if let Err(i) = self.page_budget() {
                    return Ok(Err(i));
                }
                let (page, _) = self.fetch(id, Some(&c)).await?;
                state.oldest_seen_at =
                    page.items.iter().map(|m| m.timestamp).min().or(state.oldest_seen_at);
                state.oldest_cursor.clone_from(&page.next_cursor);
                state.completed = !page.has_more || page.items.is_empty();
                self.store.set_sync_cursor(&self.account, id, &state).await.map_err(store_err)?;
                if !state.completed {
                    cursor.clone_from(&page.next_cursor);
                }
            }
        }
        if state.completed {
            self.report.completed += 1;
        }
        if let Some(keeper) = self.keeper.as_mut() {
            let report = self.report.media.get_or_insert_with(KeepReport::default);
            keeper.keep_conversation(id, report).await?;
        }
        Ok(Ok(()))
    }

    /// Fetches one page of a conversation and commits it.
    async fn fetch(
        &mut self,
        id: &str,
        cursor: Option<&str>,
    ) -> Result<(igdm_model::Page<Message>, u64), Error> {
        let p = params(&[
            ("conversation_id", json!(id)),
            ("limit", json!(self.opts.page_size)),
            ("cursor", cursor.map_or(Value::Null, |c| json!(c))),
        ]);
        let out = self.client.invoke("list", p).await?;
        let (page, _) = page_of::<Message>("list", out)?;
        let n = self.store.upsert_messages(&self.account, &page.items).await.map_err(store_err)?;
        self.report.messages += n;
        (self.progress)(SyncProgress::Messages(self.report.messages));
        Ok((page, n))
    }
}

fn store_err(e: igdm_store::StoreError) -> Error {
    Error::Config(format!("local store: {e}"))
}

/// Syncs `client`'s account into `store`.
///
/// Returns the report and whether the run was cut short by `max_pages`.
///
/// # Errors
/// API errors (a rate limit, a logout) end the run; what was committed stays
/// and the next run resumes from the saved cursors.
pub async fn sync(
    client: &Client,
    store: &dyn MessageStore,
    opts: &SyncOptions,
    progress: &mut dyn FnMut(SyncProgress),
) -> Result<(SyncReport, bool), Error> {
    run_sync(client, store, None, opts, progress).await
}

/// Syncs like [`sync`] and keeps the media of each conversation's messages
/// in `media` as soon as the conversation is synced, including messages
/// stored before (their expired links are refreshed by re-reading).
///
/// # Errors
/// As [`sync`].
pub async fn sync_with_media(
    client: &Client,
    store: &dyn MessageStore,
    media: &MediaStore,
    opts: &SyncOptions,
    progress: &mut dyn FnMut(SyncProgress),
) -> Result<(SyncReport, bool), Error> {
    let keeper = Keeper::new(client, store, media);
    run_sync(client, store, Some(keeper), opts, progress).await
}

async fn run_sync<'a>(
    client: &'a Client,
    store: &'a dyn MessageStore,
    keeper: Option<Keeper<'a>>,
    opts: &'a SyncOptions,
    progress: &'a mut dyn FnMut(SyncProgress),
) -> Result<(SyncReport, bool), Error> {
    let account = client.account().name.clone();
    let with_media = keeper.is_some();
    let mut run =
        Run { keeper, client, store, account, opts, report: SyncReport::default(), progress };
    if with_media {
        run.report.media = Some(KeepReport::default());
    }
    let convs = match run.inbox().await? {
        Ok(c) => c,
        Err(Interrupted) => return Ok((run.report, true)),
    };
    run.report.conversations = convs.len() as u64;
    let total = convs.len() as u64;
    for (i, conv) in convs.iter().enumerate() {
        (run.progress)(SyncProgress::Conversation {
            index: i as u64 + 1,
            total,
            id: conv.id.to_string(),
        });
        if let Err(Interrupted) = run.conversation(conv).await? {
            info!(pages = run.report.pages, "sync interrupted; the next run resumes");
            return Ok((run.report, true));
        }
    }
    // The inbox cursor records when a complete pass finished: readers use it
    // to decide whether the mirror is fresh enough to answer from.
    let done = SyncCursor {
        newest_seen_at: Some(Timestamp::now()),
        completed: true,
        ..SyncCursor::default()
    };
    store.set_sync_cursor(&run.account, "", &done).await.map_err(store_err)?;
    Ok((run.report, false))
}

/// When the last complete sync of `account` finished, if any.
///
/// # Errors
/// When the store cannot be read.
pub async fn last_synced(
    store: &dyn MessageStore,
    account: &str,
) -> Result<Option<Timestamp>, Error> {
    Ok(store.get_sync_cursor(account, "").await.map_err(store_err)?.and_then(|c| c.newest_seen_at))
}

/// The sync cursor type, re-exported for callers inspecting resumption.
pub type Cursor = SyncCursor;
