//! Graph-side state kept beside the world (a [`Sandbox`] extension): the
//! accounts' posts, unavailable customers, messenger profiles, thread owners,
//! reusable attachments, comments open to private replies and rate buckets.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::send::MediaKind;
use crate::state::{Micros, Sandbox};

/// The Page Inbox app, always a secondary receiver.
pub const PAGE_INBOX_APP_ID: &str = "263902037430900";

/// A rate-limit class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RateClass {
    /// Send API: text, links, reactions, stickers (300/s).
    SendText,
    /// Send API: audio and video (10/s).
    SendAudioVideo,
    /// Conversations API (2/s).
    Conversations,
    /// Private replies to post and reel comments (750/h).
    PrivateReply,
}

impl RateClass {
    /// The statistics class name.
    #[must_use]
    pub fn stats_name(self) -> &'static str {
        match self {
            Self::SendText => "graph_send",
            Self::SendAudioVideo => "graph_send_media",
            Self::Conversations => "graph_conversations",
            Self::PrivateReply => "graph_private_reply",
        }
    }
}

/// Per-account limits (real time), settable through the control API.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RateLimits {
    /// Text, links, reactions and stickers per second.
    pub send_text_per_sec: f64,
    /// Audio and video sends per second.
    pub send_audio_video_per_sec: f64,
    /// Conversations API calls per second.
    pub conversations_per_sec: f64,
    /// Private replies per hour.
    pub private_replies_per_hour: f64,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            send_text_per_sec: 300.0,
            send_audio_video_per_sec: 10.0,
            conversations_per_sec: 2.0,
            private_replies_per_hour: 750.0,
        }
    }
}

impl RateLimits {
    /// (bucket capacity, refill per second) of a class.
    fn budget(&self, class: RateClass) -> (f64, f64) {
        let per_sec = |r: f64| (r, r);
        match class {
            RateClass::SendText => per_sec(self.send_text_per_sec),
            RateClass::SendAudioVideo => per_sec(self.send_audio_video_per_sec),
            RateClass::Conversations => per_sec(self.conversations_per_sec),
            RateClass::PrivateReply => {
                (self.private_replies_per_hour, self.private_replies_per_hour / 3600.0)
            }
        }
    }
}

/// A token bucket: refilled continuously, holding at most one period's budget.
#[derive(Debug, Clone)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// The outcome of taking a token.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Usage {
    /// Whether the call may proceed.
    pub allowed: bool,
    /// Share of the period's budget in use, 0–100.
    pub percent: u32,
    /// Seconds until a token is available again (0 when allowed).
    pub regain_seconds: f64,
}

/// Reusable attachment uploaded with `message_attachments`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAttachment {
    /// Owning account.
    pub account_id: String,
    /// Media kind.
    pub kind: MediaKind,
    /// Source URL (empty for an uploaded file).
    pub url: String,
    /// The media id of an uploaded file's bytes in the CDN store.
    pub media: Option<String>,
}

/// A comment that can receive a private reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommentRef {
    /// Owning account.
    pub account_id: String,
    /// Commenter pk.
    pub sender_pk: String,
    /// When it was made (µs).
    pub at_us: Micros,
    /// Whether the one allowed private reply was sent.
    pub replied: bool,
}

/// Who may send on an account's threads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receivers {
    /// The primary receiver app.
    pub primary: String,
    /// Secondary receivers (the Page Inbox is always one).
    pub secondary: Vec<String>,
}

#[derive(Default)]
pub(crate) struct Inner {
    pub posts: HashMap<String, Vec<String>>,
    pub unavailable: HashSet<String>,
    pub profiles: HashMap<String, serde_json::Map<String, Value>>,
    pub owners: HashMap<(String, String), String>,
    pub receivers: HashMap<String, Receivers>,
    pub attachments: HashMap<String, StoredAttachment>,
    pub comments: HashMap<String, CommentRef>,
    pub limits: RateLimits,
    buckets: HashMap<(String, RateClass), Bucket>,
    pub next_id: u64,
}

/// The Graph extension state.
#[derive(Default)]
pub struct GraphExt {
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for GraphExt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphExt").finish_non_exhaustive()
    }
}

impl GraphExt {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes one token of `class` for `account`.
    #[must_use]
    pub fn take(&self, account: &str, class: RateClass) -> Usage {
        let mut inner = self.lock();
        let (capacity, refill) = inner.limits.budget(class);
        let (capacity, refill) = (capacity.max(0.001), refill.max(1e-9));
        let now = Instant::now();
        let bucket = inner
            .buckets
            .entry((account.to_owned(), class))
            .or_insert(Bucket { tokens: capacity, last: now });
        let elapsed = now.duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * refill).min(capacity);
        bucket.last = now;
        let allowed = bucket.tokens >= 1.0;
        if allowed {
            bucket.tokens -= 1.0;
        }
        let used = ((capacity - bucket.tokens) / capacity * 100.0).clamp(0.0, 100.0);
        let regain = if allowed { 0.0 } else { (1.0 - bucket.tokens) / refill };
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let percent = if allowed { used.round() as u32 } else { 100 };
        Usage { allowed, percent, regain_seconds: regain }
    }

    /// The current limits.
    #[must_use]
    pub fn limits(&self) -> RateLimits {
        self.lock().limits
    }

    /// Replaces the limits and empties the buckets.
    pub fn set_limits(&self, limits: RateLimits) {
        let mut inner = self.lock();
        inner.limits = limits;
        inner.buckets.clear();
    }

    /// A fresh numeric id with `digits` digits (attachment ids, post ids).
    pub(crate) fn fresh_id(&self, prefix: &str) -> String {
        let mut inner = self.lock();
        inner.next_id += 1;
        let n = inner.next_id;
        let noise: u32 = rand::random_range(100_000..999_999);
        format!("{prefix}{noise}{n:06}")
    }

    /// The account's posts.
    #[must_use]
    pub fn posts(&self, account: &str) -> Vec<String> {
        self.lock().posts.get(account).cloned().unwrap_or_default()
    }

    /// Adds a post to the account.
    pub fn add_post(&self, account: &str, post_id: &str) {
        let mut inner = self.lock();
        let list = inner.posts.entry(account.to_owned()).or_default();
        if !list.iter().any(|p| p == post_id) {
            list.push(post_id.to_owned());
        }
    }

    /// Marks a customer (pk) unavailable or available again.
    pub fn set_unavailable(&self, pk: &str, unavailable: bool) {
        let mut inner = self.lock();
        if unavailable {
            inner.unavailable.insert(pk.to_owned());
        } else {
            inner.unavailable.remove(pk);
        }
    }

    /// Whether the customer (pk) is unavailable.
    #[must_use]
    pub fn is_unavailable(&self, pk: &str) -> bool {
        self.lock().unavailable.contains(pk)
    }

    /// The receivers of an account (defaults: the sandbox app, then the Page Inbox).
    #[must_use]
    pub fn receivers(&self, account: &str) -> Receivers {
        self.lock().receivers.get(account).cloned().unwrap_or_else(|| Receivers {
            primary: crate::oauth::SANDBOX_APP_ID.to_owned(),
            secondary: vec![PAGE_INBOX_APP_ID.to_owned()],
        })
    }

    /// The app controlling a thread (`None`: idle).
    #[must_use]
    pub fn owner(&self, account: &str, customer_pk: &str) -> Option<String> {
        self.lock().owners.get(&(account.to_owned(), customer_pk.to_owned())).cloned()
    }
}

/// The sandbox's Graph extension.
#[must_use]
pub fn ext(sandbox: &Sandbox) -> std::sync::Arc<GraphExt> {
    sandbox.extension::<GraphExt>()
}
