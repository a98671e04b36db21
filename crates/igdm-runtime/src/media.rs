//! Keeping the media of messages that arrive as events (`igdm serve
//! --media`): each message event with attachments is looked up in the
//! message store the receiver applied it to, and its files are downloaded
//! into the media store through the account's client (which re-reads the
//! message when a link has expired).
//!
//! A file that cannot be kept is logged and left for `igdm sync --media`
//! (or `igdm media get`) to catch up: keeping media never holds back the
//! events themselves.

use std::collections::HashMap;
use std::sync::Arc;

use igdm::MediaStore;
use igdm::keep::Keeper;
use igdm_model::{Event, EventKind};
use igdm_store::MessageStore;
use tokio::sync::broadcast;
use tracing::{debug, warn};

use crate::{LiveAccount, Runtime, RuntimeError};

/// Keeps the media of arriving message events, opening each account through
/// the runtime the first time one of its events carries media.
pub struct ArrivingMedia {
    rt: Arc<Runtime>,
    store: Arc<dyn MessageStore>,
    media: Arc<MediaStore>,
    names: HashMap<String, String>,
    /// By provider account id; `None` once it is known to match no account.
    open: HashMap<String, Option<LiveAccount>>,
}

impl std::fmt::Debug for ArrivingMedia {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArrivingMedia").field("names", &self.names).finish_non_exhaustive()
    }
}

impl ArrivingMedia {
    /// Keeps media in `media` for events applied to `store`; `names` maps
    /// provider account ids (`entry.id`) to igdm account names, as the
    /// receiver's account map does. An id it does not map is stored under
    /// itself and matched to the account whose recorded user id it is.
    #[must_use]
    pub fn new(
        rt: Arc<Runtime>,
        store: Arc<dyn MessageStore>,
        media: Arc<MediaStore>,
        names: HashMap<String, String>,
    ) -> Self {
        Self { rt, store, media, names, open: HashMap::new() }
    }

    /// Follows `events` until the sender closes, then ends the accounts it
    /// opened. Events missed because this fell behind are logged with the
    /// command that catches them up.
    pub async fn run(mut self, mut events: broadcast::Receiver<Event>) {
        loop {
            match events.recv().await {
                Ok(event) => {
                    if let Err(e) = self.keep(&event).await {
                        warn!(error = %e, "media of an arriving message not kept; `igdm sync --media` catches up");
                    }
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    warn!(
                        missed,
                        "fell behind arriving events; `igdm sync --media` keeps what was missed"
                    );
                }
                Err(broadcast::error::RecvError::Closed) => break,
            }
        }
        for live in self.open.into_values().flatten() {
            if let Err(e) = live.finish().await {
                warn!(account = live.name(), error = %e, "ending an account");
            }
        }
    }

    /// Keeps the media of `event`'s message, if it is a message with
    /// attachments of an account this runtime holds; returns how many files
    /// the message has kept.
    ///
    /// # Errors
    /// The account cannot be opened, the store fails, or a file could not be
    /// kept.
    pub async fn keep(&mut self, event: &Event) -> Result<usize, RuntimeError> {
        if !matches!(event.kind, EventKind::Message) || event.attachments.is_empty() {
            return Ok(0);
        }
        let (Some(conversation), Some(message)) =
            (event.conversation_id.as_deref(), event.message_id.as_deref())
        else {
            return Ok(0);
        };
        let provider = event.account_id.as_str();
        let stored_as = self.names.get(provider).map_or(provider, String::as_str).to_owned();
        let Some(live) = self.account(provider).await? else { return Ok(0) };
        let Some(message) = self.store.get_message(&stored_as, conversation, message).await? else {
            debug!(message, "an arriving message is not in the store; nothing to keep");
            return Ok(0);
        };
        let mut keeper = Keeper::new(live.client(), &*self.store, &self.media).stored_as(stored_as);
        let (files, _) = keeper.keep_message(&message).await?;
        debug!(message = message.id.as_str(), files = files.len(), "media kept");
        Ok(files.len())
    }

    /// The account events of `provider` belong to, opened on first use.
    async fn account(&mut self, provider: &str) -> Result<Option<LiveAccount>, RuntimeError> {
        if let Some(known) = self.open.get(provider) {
            return Ok(known.clone());
        }
        let name = match self.names.get(provider) {
            Some(name) => Some(name.clone()),
            None => self
                .rt
                .accounts()
                .accounts
                .iter()
                .find(|a| a.user_id.as_deref() == Some(provider))
                .map(|a| a.name.clone()),
        };
        let live = match name {
            Some(name) => Some(self.rt.open(Some(&name)).await?),
            None => {
                warn!(
                    account = provider,
                    "events of an account igdm does not hold: its media are not kept \
                     (add the account, or map it with --account-map ID=NAME)"
                );
                None
            }
        };
        self.open.insert(provider.to_owned(), live.clone());
        Ok(live)
    }
}
