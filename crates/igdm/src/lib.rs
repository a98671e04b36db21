//! The igdm client library: one typed interface over every Instagram connector.
//!
//! A [`Client`] serves one account through one connector. Every call goes
//! through the same layers — the session-health gate (a challenge stops all
//! calls, an action block pauses writes only), the connector's rate-limit
//! buckets, write pacing, retries with backoff for retryable classes only, and
//! health updates — and sends are idempotent: the same key never sends twice,
//! and a send whose outcome is unknown is reconciled by reading the thread,
//! never blindly resent.
//!
//! ```no_run
//! # async fn demo(client: igdm::Client) -> Result<(), igdm::Error> {
//! let (page, _warnings) = client.conversations().unread().limit(20).await?;
//! for c in &page.items {
//!     println!("{} {:?}", c.id, c.title);
//! }
//! let sent = client.send(page.items[0].id.as_str(), "hello").idempotency_key("k1").await?;
//! println!("{}", sent.result);
//! # Ok(()) }
//! ```

#![warn(clippy::unwrap_used)]

pub mod accounts;
pub mod catalog;
pub mod client;
mod error;
pub mod handover;
pub mod home;
pub mod keep;
pub mod ledger;
pub mod media;
pub mod ops;
pub mod pacing;
pub mod public;
pub mod replay;
pub mod state;
pub mod sync;
pub mod watch;

pub use accounts::{AccountConfig, Accounts, PacingOverride};
pub use client::{
    CallError, Client, ClientBuilder, RawBody, RetryPolicy, SessionSink, TokenRenewal,
};
pub use error::{Error, UnsettledSend, exit_code};
pub use home::Home;
pub use keep::{DedupStats, KeepReport, Keeper, MediaLimits, MediaStore};
pub use ledger::{MemoryLedger, SendLedger, SendState, StoreLedger};
pub use media::{MediaKind, MediaOutcome, SendMedia};
pub use ops::{
    ListConversations, ListMessages, MESSAGE_SENDS, Performed, SendAction, SendMessage,
    SendOutcome, Sent,
};
pub use pacing::{PaceDecision, PacingPolicy};
pub use public::{random_token, same_secret};
pub use state::{AccountState, StateFile};
pub use sync::{SyncOptions, SyncProgress, SyncReport, last_synced, sync, sync_with_media};
pub use watch::{Hub, PollPolicy, WatchStop, Watcher};

pub use igdm_model as model;
pub use igdm_spec as spec;
