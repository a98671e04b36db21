//! The emulated world: accounts, customers, threads, items, the virtual clock,
//! per-account faults, request statistics and the domain event stream.
//!
//! Everything lives behind one [`Sandbox`] shared as `Arc<Sandbox>`. The data
//! ([`World`]) sits under a tokio [`RwLock`]; use [`Sandbox::read`] and
//! [`Sandbox::write`] to reach it. Mutations made through [`World`]'s methods
//! queue [`SandboxEvent`]s that [`Sandbox::write`] broadcasts once the lock is
//! released, so subscribers ([`Sandbox::subscribe`]) never observe a
//! half-applied change.
//!
//! Identifier conventions (all ids are strings):
//! - user `pk`: 10–11 digits; a personal account's `id` equals its `pk`;
//! - business account `id`: the 17-digit Instagram professional id (`17841…`),
//!   with a separate `pk` for the private API and a 15-digit `page_id`;
//! - customer `igsid`: a 16-digit Instagram-scoped id used on the Graph API;
//! - private `thread_id`: 39 digits; `thread_v2_id`: 17 digits; Graph
//!   conversation id: an opaque base64 string starting with `aWdf`;
//! - private `item_id`: 35–36 digits, increasing with time; Graph `mid`: an
//!   opaque base64 string starting with `aWdf`;
//! - all times are Unix microseconds ([`Micros`]) on the virtual clock.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex as StdMutex, PoisonError};

use base64::Engine as _;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use tokio::sync::{RwLock, broadcast};

/// Unix time in microseconds on the sandbox's virtual clock.
pub type Micros = i64;

/// Errors of the sandbox's domain operations.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SandboxError {
    /// The named thing does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The request is malformed or breaks a rule.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The actor may not do this (e.g. unsend someone else's message).
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The thing already exists.
    #[error("conflict: {0}")]
    Conflict(String),
}

/// Configuration of a sandbox.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Seed of the id generator, so runs are reproducible.
    pub seed: u64,
    /// Every Nth authenticated private-API request of a session rotates the
    /// `rur` cookie (0 disables).
    pub rotate_rur_every: u64,
    /// Every Nth authenticated private-API request of a session rotates the
    /// `csrftoken` cookie (0 disables). The client must then send the new
    /// token in `X-CSRFToken` too.
    pub rotate_csrf_every: u64,
    /// Capacity of the domain event channel.
    pub event_capacity: usize,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self { seed: 0x1667_d3a1, rotate_rur_every: 3, rotate_csrf_every: 0, event_capacity: 4096 }
    }
}

/// Business (official API) or personal (private web API) account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountKind {
    /// A professional account reached through the official API.
    Business,
    /// A personal account reached through the private web API.
    Personal,
}

/// The web session cookies of an account.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct WebCookies {
    /// Main session token; its numeric prefix is the user pk.
    pub sessionid: String,
    /// CSRF token; must equal the `X-CSRFToken` header.
    pub csrftoken: String,
    /// The logged-in user pk.
    pub ds_user_id: String,
    /// Machine id.
    pub mid: String,
    /// Device id.
    pub ig_did: String,
    /// Region hint cookie, rotated by the server.
    pub rur: String,
}

impl fmt::Debug for WebCookies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebCookies").field("ds_user_id", &self.ds_user_id).finish_non_exhaustive()
    }
}

impl WebCookies {
    /// The cookies as a `Cookie` request header value.
    #[must_use]
    pub fn header_value(&self) -> String {
        format!(
            "sessionid={}; csrftoken={}; ds_user_id={}; mid={}; ig_did={}; rur={}",
            self.sessionid, self.csrftoken, self.ds_user_id, self.mid, self.ig_did, self.rur
        )
    }
}

/// Official-API credentials of a business account.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct GraphCredentials {
    /// Instagram user access token (Instagram Login flavour, `IGAA…`).
    pub access_token: String,
    /// The linked Facebook Page id.
    pub page_id: String,
    /// The Page access token (Facebook Login flavour, `EAA…`).
    pub page_token: String,
}

impl fmt::Debug for GraphCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GraphCredentials").field("page_id", &self.page_id).finish_non_exhaustive()
    }
}

/// A failure mode injected into an account's private-API responses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FaultMode {
    /// Behave normally.
    #[default]
    None,
    /// 403 `login_required` on every call.
    LoginRequired,
    /// 400 `challenge_required` with a `challenge` object.
    Challenge,
    /// 400 `feedback_required` on writes; reads keep working.
    Feedback,
    /// 429 "Please wait a few minutes before you try again." with `Retry-After`.
    Ratelimit,
    /// A 200 `text/html` login page on JSON endpoints.
    Html,
    /// `has_older` flaps between true and false across pages.
    Flapping,
    /// 404 with the literal body `Not Found` (what Instagram answers for a retired endpoint).
    NotFound,
    /// Successful answers drop optional fields and carry unknown ones.
    Drift,
    /// Graph API calls made with a token issued before the fault was set
    /// answer 190/463 (session has expired); the refresh endpoint still
    /// takes such a token, and tokens issued afterwards work.
    TokenExpired,
}

impl FaultMode {
    /// Parses the control API's mode names.
    #[must_use]
    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "none" => Self::None,
            "login_required" => Self::LoginRequired,
            "challenge" | "challenge_required" => Self::Challenge,
            "feedback" | "feedback_required" => Self::Feedback,
            "ratelimit" | "rate_limit" | "429" => Self::Ratelimit,
            "html" => Self::Html,
            "flapping" => Self::Flapping,
            "not_found" | "404" => Self::NotFound,
            "drift" => Self::Drift,
            "token_expired" | "190" => Self::TokenExpired,
            _ => return None,
        })
    }
}

/// One thing an account tried to send, as recorded for `GET /_sandbox/accounts/{id}/sent`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SentRecord {
    /// When it was attempted (µs, virtual clock).
    pub at_us: Micros,
    /// `private` or `graph`.
    pub surface: String,
    /// The endpoint or action (`broadcast/text`, `me/messages`, …).
    pub endpoint: String,
    /// Thread the item went to, if accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_id: Option<String>,
    /// Item id, if accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_id: Option<String>,
    /// Recipient (customer pk or IGSID), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient: Option<String>,
    /// Text sent, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Whether the sandbox accepted it.
    pub accepted: bool,
    /// Why it was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// An account the sandbox hosts (someone igdm acts as).
#[derive(Clone, Serialize)]
pub struct Account {
    /// Control-API id: the pk for personal accounts, the 17-digit professional id for business ones.
    pub id: String,
    /// Private-API user pk.
    pub pk: String,
    /// Business or personal.
    pub kind: AccountKind,
    /// Username.
    pub username: String,
    /// Display name.
    pub full_name: String,
    #[serde(skip)]
    pub(crate) password: String,
    /// Whether the login page asks for a 2FA code.
    pub two_factor: bool,
    /// Whether the login page inserts a challenge step.
    pub challenge: bool,
    #[serde(skip)]
    pub(crate) two_factor_code: String,
    #[serde(skip)]
    pub(crate) challenge_code: String,
    /// Web session cookies (every account has a web login).
    pub cookies: WebCookies,
    /// Official-API credentials (business accounts only).
    pub graph: Option<GraphCredentials>,
    /// Injected failure mode.
    pub fault: FaultMode,
    /// Injected latency (real milliseconds): the private and Graph APIs hold
    /// each answer of this account this long after applying the request.
    pub latency_ms: u64,
    /// Writes (private API; POST and DELETE on the Graph API) are lost in
    /// flight: never applied, answered (502) only after `latency_ms`; reads
    /// then answer at once.
    pub drop_writes: bool,
    /// With [`FaultMode::TokenExpired`]: Graph calls with tokens issued
    /// before this time (µs, virtual clock) are refused as expired.
    #[serde(skip)]
    pub(crate) tokens_expired_before_us: Option<Micros>,
    /// Everything the account tried to send.
    pub sent: Vec<SentRecord>,
    /// Customer pk → time of that customer's last message (for messaging windows).
    pub customer_last_message_at: HashMap<String, Micros>,
    /// client_context → broadcast ack already returned (private-API de-dup).
    #[serde(skip)]
    pub(crate) acks: HashMap<String, bytes::Bytes>,
    /// The account's realtime sequence number (`seq_id` of the inbox):
    /// every change to its threads moves it on, as Instagram's iris
    /// sequence does.
    #[serde(default)]
    pub seq_id: u64,
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account")
            .field("id", &self.id)
            .field("pk", &self.pk)
            .field("kind", &self.kind)
            .field("username", &self.username)
            .field("fault", &self.fault)
            .finish_non_exhaustive()
    }
}

impl Account {
    /// The 2FA code the login page expects (given back by the control API).
    #[must_use]
    pub fn two_factor_code(&self) -> &str {
        &self.two_factor_code
    }
    /// The challenge code the login page expects.
    #[must_use]
    pub fn challenge_code(&self) -> &str {
        &self.challenge_code
    }
    /// Whether `password` is the account's password.
    #[must_use]
    pub fn password_matches(&self, password: &str) -> bool {
        self.password == password
    }
}

/// A user: an account's own profile or a customer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct User {
    /// Private-API pk.
    pub pk: String,
    /// Instagram-scoped id on the official API.
    pub igsid: String,
    /// Username.
    pub username: String,
    /// Display name.
    pub full_name: String,
    /// Avatar URL.
    pub profile_pic_url: String,
    /// Verified badge.
    pub is_verified: bool,
    /// Private profile.
    pub is_private: bool,
    /// Follower count.
    pub follower_count: u64,
    /// Whether the user follows the business (official API profile field).
    pub is_user_follow_business: bool,
    /// Whether the business follows the user.
    pub is_business_follow_user: bool,
    /// Whether this user is one of the sandbox's accounts.
    pub is_account: bool,
    /// Last activity (µs), for presence.
    pub last_active_us: Micros,
}

/// What an item is. Names are the private API's `item_type` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ItemKind {
    /// Plain text.
    Text,
    /// Text with a link preview.
    Link,
    /// The heart.
    Like,
    /// A photo or video.
    Media,
    /// A shared post.
    MediaShare,
    /// A story reply or mention.
    ReelShare,
    /// A shared reel.
    Clip,
    /// A voice note.
    VoiceMedia,
    /// A video sent from the camera or gallery (`raven_attachment`), shown
    /// permanently (`view_mode: permanent`).
    RavenMedia,
    /// A system line ("X liked a message").
    ActionLog,
    /// XMA post share.
    XmaMediaShare,
    /// XMA story share.
    XmaStoryShare,
    /// XMA story mention.
    XmaReelMention,
    /// XMA reel.
    XmaClip,
    /// XMA reply to a reel or story.
    XmaReelShare,
    /// A generic XMA card (links, products).
    GenericXma,
    /// A postback (button tap) echoed into the thread.
    Postback,
    /// A view-once photo or video (`visual_media`, `view_mode: once`).
    VisualMedia,
    /// A GIF from the GIF picker (`animated_media`).
    AnimatedMedia,
    /// A sticker from the sticker tray (`static_sticker`).
    StaticSticker,
    /// A shared story that is no longer available (`story_share`).
    StoryShare,
    /// A shared IGTV video (`felix_share`).
    FelixShare,
    /// Content Instagram cannot show in this client (`placeholder`).
    Placeholder,
    /// A view-once message already seen or expired (`expired_placeholder`).
    ExpiredPlaceholder,
    /// A call started or ended in the thread (`video_call_event`).
    VideoCallEvent,
    /// A reaction recorded as its own item (`reaction_log`).
    ReactionLog,
}

impl ItemKind {
    /// The wire `item_type`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Link => "link",
            Self::Like => "like",
            Self::Media => "media",
            Self::MediaShare => "media_share",
            Self::ReelShare => "reel_share",
            Self::Clip => "clip",
            Self::VoiceMedia => "voice_media",
            Self::RavenMedia => "raven_media",
            Self::ActionLog => "action_log",
            Self::XmaMediaShare => "xma_media_share",
            Self::XmaStoryShare => "xma_story_share",
            Self::XmaReelMention => "xma_reel_mention",
            Self::XmaClip => "xma_clip",
            Self::XmaReelShare => "xma_reel_share",
            Self::GenericXma => "generic_xma",
            Self::Postback => "text",
            Self::VisualMedia => "visual_media",
            Self::AnimatedMedia => "animated_media",
            Self::StaticSticker => "static_sticker",
            Self::StoryShare => "story_share",
            Self::FelixShare => "felix_share",
            Self::Placeholder => "placeholder",
            Self::ExpiredPlaceholder => "expired_placeholder",
            Self::VideoCallEvent => "video_call_event",
            Self::ReactionLog => "reaction_log",
        }
    }
}

/// An attachment of an item, in official-API vocabulary.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ItemAttachment {
    /// `image`, `video`, `audio`, `file`, `share`, `story_mention`, `ig_reel`, `reel`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Where the content lives.
    pub url: String,
}

/// A reaction on an item.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ItemReaction {
    /// Reacting user's pk.
    pub sender: String,
    /// The emoji.
    pub emoji: String,
    /// When (µs).
    pub timestamp_us: Micros,
}

/// A past version of an edited item.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ItemEdit {
    /// The text before the edit.
    pub previous_text: String,
    /// When the edit happened (µs).
    pub at_us: Micros,
}

/// A message (thread item).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Item {
    /// Private-API item id (35–36 digits, increasing with time).
    pub id: String,
    /// Official-API message id (`aWdf…`).
    pub mid: String,
    /// The thread it belongs to.
    pub thread_id: String,
    /// Sender pk.
    pub sender: String,
    /// When it was sent (µs).
    pub timestamp_us: Micros,
    /// What it is.
    pub kind: ItemKind,
    /// Text (text, link, captions, story replies).
    pub text: Option<String>,
    /// Link URL for `link` items or share targets.
    pub link_url: Option<String>,
    /// Attachments (media, shares, story mentions).
    pub attachments: Vec<ItemAttachment>,
    /// Shared media id for shares.
    pub media_id: Option<String>,
    /// Reactions.
    pub reactions: Vec<ItemReaction>,
    /// Item id this replies to.
    pub reply_to: Option<String>,
    /// Unsent.
    pub deleted: bool,
    /// Edit history, oldest first.
    pub edits: Vec<ItemEdit>,
    /// Client idempotency token.
    pub client_context: Option<String>,
    /// Quick-reply payload that produced this message.
    pub quick_reply_payload: Option<String>,
    /// Postback title/payload when the item is a button tap.
    pub postback: Option<(String, String)>,
    /// Referral data attached to this message (ads, ig.me links).
    pub referral: Option<serde_json::Value>,
}

/// A conversation as seen by the owning account.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Thread {
    /// Private-API thread id (39 digits).
    pub id: String,
    /// `thread_v2_id` (17 digits).
    pub v2_id: String,
    /// Official-API conversation id (`aWdf…`).
    pub graph_id: String,
    /// Owning account id.
    pub account: String,
    /// Other participants' pks (the account itself excluded).
    pub participants: Vec<String>,
    /// Group thread.
    pub is_group: bool,
    /// Title of a named group.
    pub title: Option<String>,
    /// Items, oldest first.
    pub items: Vec<Item>,
    /// Notifications muted.
    pub muted: bool,
    /// Hidden by the account.
    pub hidden: bool,
    /// A message request not yet approved.
    pub pending: bool,
    /// Moved to the hidden-requests folder.
    pub spam: bool,
    /// A request the account declined: gone from its folders.
    #[serde(default)]
    pub declined: bool,
    /// Flagged by the account.
    pub flagged: bool,
    /// Marked unread by the account.
    pub marked_unread: bool,
    /// pk → (item id, µs) of the last item that user saw.
    pub last_seen: HashMap<String, (String, Micros)>,
    /// Creation time (µs).
    pub created_at_us: Micros,
}

impl Thread {
    /// Time of the last item, or creation time.
    #[must_use]
    pub fn last_activity_us(&self) -> Micros {
        self.items.last().map_or(self.created_at_us, |i| i.timestamp_us)
    }

    /// Visible (not unsent) items, oldest first.
    pub fn visible_items(&self) -> impl DoubleEndedIterator<Item = &Item> {
        self.items.iter().filter(|i| !i.deleted)
    }

    /// Whether the viewer (`viewer_pk`) has something unread: a visible item
    /// from someone else newer than what the viewer last saw.
    #[must_use]
    pub fn is_unread(&self, viewer_pk: &str) -> bool {
        if self.marked_unread {
            return true;
        }
        let seen_us = self.last_seen.get(viewer_pk).map(|(_, ts)| *ts);
        // Item times increase along the thread, so only the items after the
        // last seen time need a look (none at all for someone who just wrote).
        self.visible_items()
            .rev()
            .take_while(|i| seen_us.is_none_or(|seen| i.timestamp_us > seen))
            .any(|i| i.sender != viewer_pk)
    }

    /// Finds an item by private id or Graph mid.
    #[must_use]
    pub fn item(&self, id: &str) -> Option<&Item> {
        self.items.iter().find(|i| i.id == id || i.mid == id)
    }

    fn item_mut(&mut self, id: &str) -> Option<&mut Item> {
        self.items.iter_mut().find(|i| i.id == id || i.mid == id)
    }
}

/// What a reaction event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReactionAction {
    /// Added or replaced.
    React,
    /// Removed.
    Unreact,
}

/// A domain event, broadcast after each change. The webhook module turns
/// these into Meta-shaped deliveries.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum SandboxEvent {
    /// A new item. `is_echo` is true when the account itself sent it.
    MessageCreated {
        /// Owning account id.
        account: String,
        /// Thread id.
        thread: String,
        /// The item (sender, text, attachments, reply_to, quick reply, referral…).
        item: Item,
        /// Sent by the account (an echo) rather than by the customer.
        is_echo: bool,
    },
    /// A reaction was added or removed.
    ReactionChanged {
        /// Owning account id.
        account: String,
        /// Thread id.
        thread: String,
        /// Item id.
        item_id: String,
        /// Item mid.
        mid: String,
        /// Reacting user's pk.
        actor: String,
        /// React or unreact.
        action: ReactionAction,
        /// The emoji (absent on unreact).
        emoji: Option<String>,
        /// When (µs).
        timestamp_us: Micros,
    },
    /// Someone saw items up to `item_id`.
    Read {
        /// Owning account id.
        account: String,
        /// Thread id.
        thread: String,
        /// Reader pk.
        reader: String,
        /// Last seen item id.
        item_id: String,
        /// Its mid.
        mid: String,
        /// When (µs).
        timestamp_us: Micros,
    },
    /// An item's text was edited.
    Edited {
        /// Owning account id.
        account: String,
        /// Thread id.
        thread: String,
        /// The item after the edit.
        item: Item,
        /// Number of edits so far.
        num_edit: u32,
    },
    /// An item was unsent.
    Unsent {
        /// Owning account id.
        account: String,
        /// Thread id.
        thread: String,
        /// The item as it was (marked deleted).
        item: Item,
        /// When (µs).
        timestamp_us: Micros,
    },
    /// A customer tapped a button.
    Postback {
        /// Owning account id.
        account: String,
        /// Thread id.
        thread: String,
        /// Customer pk.
        sender: String,
        /// The item recording the tap.
        item: Item,
        /// Button title.
        title: String,
        /// Payload.
        payload: String,
    },
    /// A customer mentioned the account in a story (also a `MessageCreated`).
    StoryMention {
        /// Owning account id.
        account: String,
        /// Thread id.
        thread: String,
        /// The mention item.
        item: Item,
    },
    /// A referral (ig.me link, ad) inside an existing thread.
    Referral {
        /// Owning account id.
        account: String,
        /// Thread id.
        thread: String,
        /// Customer pk.
        sender: String,
        /// `ref`, `source`, `type`, `ad_id`, …
        referral: serde_json::Value,
        /// When (µs).
        timestamp_us: Micros,
    },
    /// A comment on one of the account's posts.
    Comment {
        /// Owning account id.
        account: String,
        /// Commenter pk.
        sender: String,
        /// Comment id.
        comment_id: String,
        /// Media id.
        media_id: String,
        /// Text.
        text: String,
        /// When (µs).
        timestamp_us: Micros,
    },
    /// Typing indicator.
    Typing {
        /// Owning account id.
        account: String,
        /// Thread id.
        thread: String,
        /// Who types.
        actor: String,
        /// Started (true) or stopped.
        active: bool,
    },
    /// A thread's flags changed (mute, hide, approve, mark unread).
    ThreadUpdated {
        /// Owning account id.
        account: String,
        /// Thread id.
        thread: String,
        /// Which change (`mute`, `unmute`, `hide`, `approve`, `mark_unread`).
        change: String,
    },
}

impl SandboxEvent {
    /// The account whose threads the event concerns.
    #[must_use]
    pub fn account(&self) -> &str {
        match self {
            Self::MessageCreated { account, .. }
            | Self::ReactionChanged { account, .. }
            | Self::Read { account, .. }
            | Self::Edited { account, .. }
            | Self::Unsent { account, .. }
            | Self::Postback { account, .. }
            | Self::StoryMention { account, .. }
            | Self::Referral { account, .. }
            | Self::Comment { account, .. }
            | Self::Typing { account, .. }
            | Self::ThreadUpdated { account, .. } => account,
        }
    }
}

/// Request counters of one endpoint class.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct EndpointStats {
    /// Requests received.
    pub requests: u64,
    /// Requests answered with success.
    pub ok: u64,
    /// Requests answered with an error (auth, fault, validation).
    pub errors: u64,
    /// Requests refused for exceeding a limit (429s and rate-limit errors).
    pub refused: u64,
}

/// How a request ended, for [`Sandbox::record_request`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestOutcome {
    /// Success.
    Ok,
    /// Any error other than a limit.
    Error,
    /// Refused for exceeding a limit.
    Refused,
}

/// The virtual clock: real time plus an offset.
#[derive(Debug, Default)]
pub struct Clock {
    offset_us: AtomicI64,
}

impl Clock {
    /// Now (µs).
    #[must_use]
    pub fn now_us(&self) -> Micros {
        chrono::Utc::now().timestamp_micros() + self.offset_us.load(Ordering::Relaxed)
    }
    /// The current offset (µs).
    #[must_use]
    pub fn offset_us(&self) -> Micros {
        self.offset_us.load(Ordering::Relaxed)
    }
    /// Moves the clock forward (or back with a negative value).
    pub fn advance_us(&self, delta: Micros) {
        self.offset_us.fetch_add(delta, Ordering::Relaxed);
    }
}

/// A new item to add with [`World::append_item`].
#[derive(Debug, Clone, Default)]
pub struct NewItem {
    /// Item type (defaults to text).
    pub kind: Option<ItemKind>,
    /// Text.
    pub text: Option<String>,
    /// Link URL.
    pub link_url: Option<String>,
    /// Attachments.
    pub attachments: Vec<ItemAttachment>,
    /// Shared media id.
    pub media_id: Option<String>,
    /// Reply target (item id or mid).
    pub reply_to: Option<String>,
    /// Client idempotency token.
    pub client_context: Option<String>,
    /// Quick-reply payload.
    pub quick_reply_payload: Option<String>,
    /// Postback (title, payload).
    pub postback: Option<(String, String)>,
    /// Referral data.
    pub referral: Option<serde_json::Value>,
    /// Explicit timestamp (µs) for seeding history; defaults to now.
    pub at_us: Option<Micros>,
}

/// Parameters of [`World::create_account`].
#[derive(Debug, Clone, Deserialize)]
pub struct NewAccount {
    /// Business or personal.
    pub kind: AccountKind,
    /// Username (unique).
    pub username: String,
    /// Display name (defaults from the username).
    #[serde(default)]
    pub full_name: Option<String>,
    /// Login password (defaults to `sandbox-password`).
    #[serde(default)]
    pub password: Option<String>,
    /// Ask for a 2FA code at login.
    #[serde(default)]
    pub two_factor: bool,
    /// Insert a challenge step at login.
    #[serde(default)]
    pub challenge: bool,
}

/// Everything the sandbox holds.
pub struct World {
    clock: Arc<Clock>,
    rng: StdRng,
    seq: u64,
    /// Accounts by id.
    pub accounts: HashMap<String, Account>,
    /// Users (account profiles and customers) by pk.
    pub users: HashMap<String, User>,
    /// Threads by private thread id.
    pub threads: HashMap<String, Thread>,
    /// Web sessions: sessionid → account id.
    pub sessions: HashMap<String, String>,
    outbox: Vec<SandboxEvent>,
    /// Thread id → index in its `items` of the newest item that someone
    /// other than the owning account sent (kept by [`World::append_item`],
    /// the only way items enter a thread).
    newest_incoming: HashMap<String, usize>,
}

impl fmt::Debug for World {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("World")
            .field("accounts", &self.accounts.len())
            .field("users", &self.users.len())
            .field("threads", &self.threads.len())
            .finish_non_exhaustive()
    }
}

fn b64(raw: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

impl World {
    fn new(clock: Arc<Clock>, seed: u64) -> Self {
        Self {
            clock,
            rng: StdRng::seed_from_u64(seed),
            seq: 0,
            accounts: HashMap::new(),
            users: HashMap::new(),
            threads: HashMap::new(),
            sessions: HashMap::new(),
            outbox: Vec::new(),
            newest_incoming: HashMap::new(),
        }
    }

    /// Now on the virtual clock (µs).
    #[must_use]
    pub fn now_us(&self) -> Micros {
        self.clock.now_us()
    }

    /// Queues an event; it is broadcast when the write lock is released.
    /// The account's `seq_id` moves on with every event.
    pub fn emit(&mut self, event: SandboxEvent) {
        // Typing is realtime-only: it never shows in the inbox.
        if !matches!(event, SandboxEvent::Typing { .. })
            && let Some(a) = self.accounts.get_mut(event.account())
        {
            a.seq_id += 1;
        }
        self.outbox.push(event);
    }

    /// `n` random decimal digits, the first one non-zero.
    pub fn digits(&mut self, n: usize) -> String {
        let mut s = String::with_capacity(n);
        s.push(char::from(b'1' + self.rng.random_range(0..9u8)));
        for _ in 1..n {
            s.push(char::from(b'0' + self.rng.random_range(0..10u8)));
        }
        s
    }

    /// A random lowercase hex/alnum token of `n` characters.
    pub fn token(&mut self, n: usize) -> String {
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        (0..n).map(|_| char::from(ALPHABET[self.rng.random_range(0..ALPHABET.len())])).collect()
    }

    fn fresh_pk(&mut self) -> String {
        loop {
            let pk = self.digits(11);
            if !self.users.contains_key(&pk) {
                return pk;
            }
        }
    }

    /// New web cookies for user `pk`; the session is registered for `account`.
    pub fn new_session(&mut self, account: &str, pk: &str) -> WebCookies {
        let sessionid = format!("{pk}%3A{}%3A{}", self.token(14), self.digits(2));
        let cookies = WebCookies {
            sessionid: sessionid.clone(),
            csrftoken: self.token(32),
            ds_user_id: pk.to_owned(),
            mid: format!("Z{}", self.token(27)),
            ig_did: uuid_like(&mut self.rng),
            rur: self.rur_value(pk),
        };
        self.sessions.insert(sessionid, account.to_owned());
        cookies
    }

    /// A fresh `rur` cookie value for `pk`.
    pub fn rur_value(&mut self, pk: &str) -> String {
        let regions = ["NAO", "CLN", "FRC", "EAG", "RVA"];
        let region = regions[self.rng.random_range(0..regions.len())];
        let expires = self.now_us() / 1_000_000 + 31_536_000;
        format!("\"{region}\\054{pk}\\054{expires}:01f7{}\"", self.token(40))
    }

    /// Creates an account with fresh credentials.
    ///
    /// # Errors
    /// [`SandboxError::Conflict`] when the username is taken, [`SandboxError::Invalid`] when empty.
    pub fn create_account(&mut self, new: NewAccount) -> Result<Account, SandboxError> {
        let username = new.username.trim().to_owned();
        validate_username(&username)?;
        if self.users.values().any(|u| u.username == username) {
            return Err(SandboxError::Conflict(format!("username {username} is taken")));
        }
        let pk = self.fresh_pk();
        let id = match new.kind {
            AccountKind::Personal => pk.clone(),
            AccountKind::Business => format!("17841{}", self.digits(12)),
        };
        let cookies = self.new_session(&id, &pk);
        let graph = match new.kind {
            AccountKind::Personal => None,
            AccountKind::Business => Some(GraphCredentials {
                access_token: format!("IGAA{}", self.token(180)),
                page_id: self.digits(15),
                page_token: format!("EAA{}", self.token(180)),
            }),
        };
        let full_name = new.full_name.unwrap_or_else(|| title_case(&username));
        let igsid = self.digits(16);
        let now = self.now_us();
        self.users.insert(
            pk.clone(),
            User {
                pk: pk.clone(),
                igsid,
                username: username.clone(),
                full_name: full_name.clone(),
                profile_pic_url: avatar_url(&pk),
                is_verified: false,
                is_private: new.kind == AccountKind::Personal,
                follower_count: 1_200,
                is_user_follow_business: false,
                is_business_follow_user: false,
                is_account: true,
                last_active_us: now,
            },
        );
        let two_factor_code = self.digits(6);
        let challenge_code = self.digits(6);
        let account = Account {
            id: id.clone(),
            pk,
            kind: new.kind,
            username,
            full_name,
            password: new.password.unwrap_or_else(|| "sandbox-password".to_owned()),
            two_factor: new.two_factor,
            challenge: new.challenge,
            two_factor_code,
            challenge_code,
            cookies,
            graph,
            fault: FaultMode::None,
            latency_ms: 0,
            drop_writes: false,
            tokens_expired_before_us: None,
            sent: Vec::new(),
            customer_last_message_at: HashMap::new(),
            acks: HashMap::new(),
            seq_id: 0,
        };
        self.accounts.insert(id, account.clone());
        Ok(account)
    }

    /// Creates a customer (a user who can message accounts).
    ///
    /// # Errors
    /// [`SandboxError::Conflict`] when the username is taken.
    pub fn create_customer(
        &mut self,
        username: &str,
        full_name: Option<String>,
    ) -> Result<User, SandboxError> {
        let username = username.trim().to_owned();
        validate_username(&username)?;
        if self.users.values().any(|u| u.username == username) {
            return Err(SandboxError::Conflict(format!("username {username} is taken")));
        }
        let pk = self.fresh_pk();
        let igsid = self.digits(16);
        let follower_count = self.rng.random_range(10..50_000);
        let user = User {
            pk: pk.clone(),
            igsid,
            full_name: full_name.unwrap_or_else(|| title_case(&username)),
            username,
            profile_pic_url: avatar_url(&pk),
            is_verified: false,
            is_private: false,
            follower_count,
            is_user_follow_business: true,
            is_business_follow_user: false,
            is_account: false,
            last_active_us: self.now_us(),
        };
        self.users.insert(pk, user.clone());
        Ok(user)
    }

    /// Account by id.
    ///
    /// # Errors
    /// [`SandboxError::NotFound`].
    pub fn account(&self, id: &str) -> Result<&Account, SandboxError> {
        self.accounts.get(id).ok_or_else(|| SandboxError::NotFound(format!("account {id}")))
    }

    /// Account by id, mutable.
    ///
    /// # Errors
    /// [`SandboxError::NotFound`].
    pub fn account_mut(&mut self, id: &str) -> Result<&mut Account, SandboxError> {
        self.accounts.get_mut(id).ok_or_else(|| SandboxError::NotFound(format!("account {id}")))
    }

    /// The account whose Instagram access token or Page token is `token`.
    #[must_use]
    pub fn account_by_token(&self, token: &str) -> Option<&Account> {
        self.accounts.values().find(|a| {
            a.graph.as_ref().is_some_and(|g| g.access_token == token || g.page_token == token)
        })
    }

    /// The account a web `sessionid` belongs to.
    #[must_use]
    pub fn account_by_session(&self, sessionid: &str) -> Option<&Account> {
        self.sessions.get(sessionid).and_then(|id| self.accounts.get(id))
    }

    /// The account whose username is `username`.
    #[must_use]
    pub fn account_by_username(&self, username: &str) -> Option<&Account> {
        self.accounts.values().find(|a| a.username == username)
    }

    /// A user by pk or IGSID.
    #[must_use]
    pub fn user(&self, pk_or_igsid: &str) -> Option<&User> {
        self.users.get(pk_or_igsid).or_else(|| self.users.values().find(|u| u.igsid == pk_or_igsid))
    }

    /// Thread by private id, Graph id or v2 id.
    ///
    /// # Errors
    /// [`SandboxError::NotFound`].
    pub fn thread(&self, id: &str) -> Result<&Thread, SandboxError> {
        self.threads
            .get(id)
            .or_else(|| self.threads.values().find(|t| t.graph_id == id || t.v2_id == id))
            .ok_or_else(|| SandboxError::NotFound(format!("thread {id}")))
    }

    /// Thread by id, mutable.
    ///
    /// # Errors
    /// [`SandboxError::NotFound`].
    pub fn thread_mut(&mut self, id: &str) -> Result<&mut Thread, SandboxError> {
        let key = self.thread(id)?.id.clone();
        self.threads.get_mut(&key).ok_or_else(|| SandboxError::NotFound(format!("thread {id}")))
    }

    /// The account's threads, most recent activity first.
    #[must_use]
    pub fn threads_of(&self, account: &str) -> Vec<&Thread> {
        let mut v: Vec<&Thread> = self.threads.values().filter(|t| t.account == account).collect();
        v.sort_by(|a, b| {
            b.last_activity_us().cmp(&a.last_activity_us()).then_with(|| b.id.cmp(&a.id))
        });
        v
    }

    /// The newest visible item of `t` that someone other than `viewer_pk`
    /// sent. For the owning account this is found without walking a long
    /// run of its own messages.
    #[must_use]
    pub fn newest_from_others<'t>(&self, t: &'t Thread, viewer_pk: &str) -> Option<&'t Item> {
        let owner = self.accounts.get(&t.account).map(|a| a.pk.as_str());
        if owner == Some(viewer_pk) && self.threads.get(&t.id).is_some_and(|w| std::ptr::eq(w, t)) {
            let Some(&index) = self.newest_incoming.get(&t.id) else {
                return None; // nobody but the account ever wrote
            };
            if let Some(item) = t.items.get(index).filter(|i| !i.deleted) {
                return Some(item);
            }
        }
        t.visible_items().rev().find(|i| i.sender != viewer_pk)
    }

    /// The account's thread whose participants are exactly `participants`.
    #[must_use]
    pub fn find_thread(&self, account: &str, participants: &[String]) -> Option<&Thread> {
        let mut want: Vec<&String> = participants.iter().collect();
        want.sort();
        want.dedup();
        self.threads.values().find(|t| {
            if t.account != account {
                return false;
            }
            let mut have: Vec<&String> = t.participants.iter().collect();
            have.sort();
            have == want
        })
    }

    /// Finds or creates the account's thread with `participants` (pks).
    ///
    /// A new thread is a message request (`pending`) when `pending` is set.
    ///
    /// # Errors
    /// [`SandboxError::NotFound`] for an unknown account or user,
    /// [`SandboxError::Invalid`] for an empty participant list.
    pub fn thread_with(
        &mut self,
        account: &str,
        participants: &[String],
        pending: bool,
    ) -> Result<String, SandboxError> {
        let own_pk = self.account(account)?.pk.clone();
        let participants: Vec<String> =
            participants.iter().filter(|p| **p != own_pk).cloned().collect();
        if participants.is_empty() {
            return Err(SandboxError::Invalid("no recipients".to_owned()));
        }
        for p in &participants {
            if !self.users.contains_key(p) {
                return Err(SandboxError::NotFound(format!("user {p}")));
            }
        }
        if let Some(t) = self.find_thread(account, &participants) {
            return Ok(t.id.clone());
        }
        let id = format!("340282366841710300949128{}", self.digits(15));
        let v2_id = format!("1{}", self.digits(16));
        let graph_id = b64(&format!("ig_thread:1:IGMessageThread:{account}:{v2_id}"));
        let now = self.now_us();
        let thread = Thread {
            id: id.clone(),
            v2_id,
            graph_id,
            account: account.to_owned(),
            is_group: participants.len() > 1,
            participants,
            title: None,
            items: Vec::new(),
            muted: false,
            hidden: false,
            declined: false,
            pending,
            spam: false,
            flagged: false,
            marked_unread: false,
            last_seen: HashMap::new(),
            created_at_us: now,
        };
        self.threads.insert(id.clone(), thread);
        Ok(id)
    }

    /// Appends an item sent by `sender` (a pk) to a thread and queues a
    /// `MessageCreated` event (an echo when the sender is the owning account).
    ///
    /// # Errors
    /// [`SandboxError::NotFound`] for an unknown thread or reply target.
    pub fn append_item(
        &mut self,
        thread_id: &str,
        sender: &str,
        new: NewItem,
    ) -> Result<Item, SandboxError> {
        let now = self.now_us();
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let jitter: u64 = self.rng.random_range(0..1 << 20);
        let thread = self.thread(thread_id)?;
        let (account_id, thread_key) = (thread.account.clone(), thread.id.clone());
        let last = thread.items.last().map_or(0, |i| i.timestamp_us);
        let ts = new.at_us.unwrap_or(now).max(last + 1);
        if let Some(r) = &new.reply_to
            && thread.item(r).is_none()
        {
            return Err(SandboxError::NotFound(format!("item {r}")));
        }
        let reply_to = new.reply_to.as_ref().and_then(|r| thread.item(r)).map(|i| i.id.clone());
        // Item ids grow with time like Instagram's: (µs << 64) | sequence.
        let raw = (u128::try_from(ts).unwrap_or(0) << 64) | u128::from((seq << 20) | jitter);
        let id = raw.to_string();
        let mid = b64(&format!("ig_item:1:IGMessage:{account_id}:{id}"));
        let item = Item {
            id,
            mid,
            thread_id: thread_key.clone(),
            sender: sender.to_owned(),
            timestamp_us: ts,
            kind: new.kind.unwrap_or(ItemKind::Text),
            text: new.text,
            link_url: new.link_url,
            attachments: new.attachments,
            media_id: new.media_id,
            reactions: Vec::new(),
            reply_to,
            deleted: false,
            edits: Vec::new(),
            client_context: new.client_context,
            quick_reply_payload: new.quick_reply_payload,
            postback: new.postback,
            referral: new.referral,
        };
        let account_pk = self.account(&account_id)?.pk.clone();
        let is_echo = sender == account_pk;
        let thread = self.thread_mut(&thread_key)?;
        thread.items.push(item.clone());
        let index = thread.items.len() - 1;
        thread.hidden = false;
        if is_echo {
            thread.marked_unread = false;
            thread.last_seen.insert(sender.to_owned(), (item.id.clone(), ts));
        }
        if let Some(u) = self.users.get_mut(sender) {
            u.last_active_us = u.last_active_us.max(ts);
        }
        if !is_echo {
            self.newest_incoming.insert(thread_key.clone(), index);
            if let Ok(acc) = self.account_mut(&account_id) {
                acc.customer_last_message_at.insert(sender.to_owned(), ts);
            }
        }
        self.emit(SandboxEvent::MessageCreated {
            account: account_id,
            thread: thread_key,
            item: item.clone(),
            is_echo,
        });
        Ok(item)
    }

    /// The thread's owner, the thread id and a not-unsent item, mutable.
    fn live_item_mut(
        &mut self,
        thread_id: &str,
        item_id: &str,
    ) -> Result<(String, String, &mut Item), SandboxError> {
        let thread = self.thread_mut(thread_id)?;
        let (account, thread_key) = (thread.account.clone(), thread.id.clone());
        let item = thread
            .item_mut(item_id)
            .filter(|i| !i.deleted)
            .ok_or_else(|| SandboxError::NotFound(format!("item {item_id}")))?;
        Ok((account, thread_key, item))
    }

    /// Sets (`Some(emoji)`) or removes (`None`) `actor`'s reaction on an item.
    /// One reaction per user: a new one replaces the old.
    ///
    /// # Errors
    /// [`SandboxError::NotFound`] for an unknown thread or item.
    pub fn set_reaction(
        &mut self,
        thread_id: &str,
        item_id: &str,
        actor: &str,
        emoji: Option<&str>,
    ) -> Result<Item, SandboxError> {
        let now = self.now_us();
        let (account, thread_key, item) = self.live_item_mut(thread_id, item_id)?;
        item.reactions.retain(|r| r.sender != actor);
        if let Some(e) = emoji {
            item.reactions.push(ItemReaction {
                sender: actor.to_owned(),
                emoji: e.to_owned(),
                timestamp_us: now,
            });
        }
        let snapshot = item.clone();
        self.emit(SandboxEvent::ReactionChanged {
            account,
            thread: thread_key,
            item_id: snapshot.id.clone(),
            mid: snapshot.mid.clone(),
            actor: actor.to_owned(),
            action: if emoji.is_some() { ReactionAction::React } else { ReactionAction::Unreact },
            emoji: emoji.map(str::to_owned),
            timestamp_us: now,
        });
        Ok(snapshot)
    }

    /// Unsends an item. Only its sender may.
    ///
    /// # Errors
    /// [`SandboxError::NotFound`], or [`SandboxError::Forbidden`] when `actor` is not the sender.
    pub fn unsend(
        &mut self,
        thread_id: &str,
        item_id: &str,
        actor: &str,
    ) -> Result<Item, SandboxError> {
        let now = self.now_us();
        let (account, thread_key, item) = self.live_item_mut(thread_id, item_id)?;
        if item.sender != actor {
            return Err(SandboxError::Forbidden("only the sender can unsend a message".to_owned()));
        }
        item.deleted = true;
        let snapshot = item.clone();
        self.emit(SandboxEvent::Unsent {
            account,
            thread: thread_key,
            item: snapshot.clone(),
            timestamp_us: now,
        });
        Ok(snapshot)
    }

    /// Edits an item's text. Only its sender may; at most 5 edits.
    ///
    /// # Errors
    /// [`SandboxError::NotFound`], [`SandboxError::Forbidden`], or
    /// [`SandboxError::Invalid`] past the edit limit.
    pub fn edit(
        &mut self,
        thread_id: &str,
        item_id: &str,
        actor: &str,
        text: &str,
    ) -> Result<Item, SandboxError> {
        let now = self.now_us();
        let (account, thread_key, item) = self.live_item_mut(thread_id, item_id)?;
        if item.sender != actor {
            return Err(SandboxError::Forbidden("only the sender can edit a message".to_owned()));
        }
        if item.edits.len() >= 5 {
            return Err(SandboxError::Invalid("edit limit reached".to_owned()));
        }
        let previous = item.text.replace(text.to_owned()).unwrap_or_default();
        item.edits.push(ItemEdit { previous_text: previous, at_us: now });
        let snapshot = item.clone();
        let num_edit = u32::try_from(snapshot.edits.len()).unwrap_or(u32::MAX);
        self.emit(SandboxEvent::Edited {
            account,
            thread: thread_key,
            item: snapshot.clone(),
            num_edit,
        });
        Ok(snapshot)
    }

    /// Records that `reader` saw the thread up to `item_id`.
    ///
    /// # Errors
    /// [`SandboxError::NotFound`].
    pub fn mark_seen(
        &mut self,
        thread_id: &str,
        item_id: &str,
        reader: &str,
    ) -> Result<Item, SandboxError> {
        let now = self.now_us();
        let thread = self.thread_mut(thread_id)?;
        let (account, thread_key) = (thread.account.clone(), thread.id.clone());
        let item = thread
            .item(item_id)
            .cloned()
            .ok_or_else(|| SandboxError::NotFound(format!("item {item_id}")))?;
        thread.last_seen.insert(reader.to_owned(), (item.id.clone(), now.max(item.timestamp_us)));
        if thread.participants.iter().all(|p| p != reader) {
            thread.marked_unread = false;
        }
        self.emit(SandboxEvent::Read {
            account,
            thread: thread_key,
            reader: reader.to_owned(),
            item_id: item.id.clone(),
            mid: item.mid.clone(),
            timestamp_us: now,
        });
        Ok(item)
    }

    /// Records an attempted send in the account's log.
    pub fn record_sent(&mut self, account: &str, record: SentRecord) {
        if let Some(a) = self.accounts.get_mut(account) {
            a.sent.push(record);
        }
    }
}

fn validate_username(username: &str) -> Result<(), SandboxError> {
    if username.is_empty()
        || username.len() > 30
        || !username.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
    {
        return Err(SandboxError::Invalid(format!(
            "username {username:?} must be 1-30 letters, digits, '_' or '.'"
        )));
    }
    Ok(())
}

fn title_case(username: &str) -> String {
    username
        .split(['_', '.'])
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            c.next().map_or_else(String::new, |f| f.to_uppercase().collect::<String>() + c.as_str())
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn avatar_url(pk: &str) -> String {
    format!("https://scontent.cdninstagram.com/v/t51.2885-19/{pk}_n.jpg")
}

fn uuid_like(rng: &mut StdRng) -> String {
    let b: [u8; 16] = rng.random();
    let h = hex::encode_upper(b);
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

type Stats = HashMap<String, HashMap<String, EndpointStats>>;

/// Module state that long-lived tasks share, and that therefore cannot be
/// swapped for a fresh value on reset: [`Sandbox::reset`] empties it in
/// place instead (see [`Sandbox::lasting_extension`]).
pub trait Extension: Default + Send + Sync + 'static {
    /// Forgets everything a client could observe, as a new sandbox would
    /// have it.
    fn reset(&self);
}

type AnyExtension = Arc<dyn Any + Send + Sync>;

/// How [`Sandbox::reset`] treats an extension.
#[derive(Clone, Copy)]
enum OnReset {
    /// Swap in this fresh value.
    Replace(fn() -> AnyExtension),
    /// Empty it in place.
    InPlace(fn(&(dyn Any + Send + Sync))),
}

/// An extension in use, with the way to reset it without knowing its type.
struct ExtensionSlot {
    value: AnyExtension,
    on_reset: OnReset,
}

fn fresh_extension<T: Default + Send + Sync + 'static>() -> AnyExtension {
    Arc::new(T::default())
}

fn reset_in_place<T: Extension>(value: &(dyn Any + Send + Sync)) {
    if let Some(t) = value.downcast_ref::<T>() {
        t.reset();
    }
}

/// The shared sandbox: world, clock, events, statistics.
pub struct Sandbox {
    world: RwLock<World>,
    clock: Arc<Clock>,
    events: broadcast::Sender<SandboxEvent>,
    stats: StdMutex<Stats>,
    config: SandboxConfig,
    extensions: StdMutex<HashMap<TypeId, ExtensionSlot>>,
    base_url: StdMutex<Option<String>>,
}

impl fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sandbox").field("config", &self.config).finish_non_exhaustive()
    }
}

impl Sandbox {
    /// A new, empty sandbox.
    #[must_use]
    pub fn new(config: SandboxConfig) -> Arc<Self> {
        let clock = Arc::new(Clock::default());
        let (events, _) = broadcast::channel(config.event_capacity.max(16));
        Arc::new(Self {
            world: RwLock::new(World::new(Arc::clone(&clock), config.seed)),
            clock,
            events,
            stats: StdMutex::new(HashMap::new()),
            config,
            extensions: StdMutex::new(HashMap::new()),
            base_url: StdMutex::new(None),
        })
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &SandboxConfig {
        &self.config
    }

    /// The virtual clock.
    #[must_use]
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Now on the virtual clock (µs).
    #[must_use]
    pub fn now_us(&self) -> Micros {
        self.clock.now_us()
    }

    /// Subscribes to domain events.
    #[must_use]
    pub fn subscribe(&self) -> broadcast::Receiver<SandboxEvent> {
        self.events.subscribe()
    }

    /// Broadcasts an event now (prefer [`World::emit`] inside [`Sandbox::write`]).
    pub fn emit(&self, event: SandboxEvent) {
        // No subscriber is not an error.
        let _ = self.events.send(event);
    }

    /// Runs `f` with shared access to the world.
    pub async fn read<R>(&self, f: impl FnOnce(&World) -> R) -> R {
        let w = self.world.read().await;
        f(&w)
    }

    /// Runs `f` with exclusive access to the world, then broadcasts the
    /// events it queued.
    pub async fn write<R>(&self, f: impl FnOnce(&mut World) -> R) -> R {
        let (result, events) = {
            let mut w = self.world.write().await;
            let result = f(&mut w);
            (result, std::mem::take(&mut w.outbox))
        };
        for e in events {
            self.emit(e);
        }
        result
    }

    /// Empties the world (accounts, customers, threads, sessions), resets
    /// the clock offset and the statistics, and resets every extension in
    /// use: webhook subscriptions, deliveries and chaos settings; OAuth
    /// apps, codes and tokens (Facebook Login user tokens too); Graph
    /// posts, profiles, receivers, thread owners and rate limits; logins in
    /// progress.
    pub async fn reset(&self) {
        {
            let mut w = self.world.write().await;
            *w = World::new(Arc::clone(&self.clock), self.config.seed ^ 0x5eed);
            // Reset the extensions while no request can reach the world,
            // so none sees new extension state beside the old world.
            let mut in_place = Vec::new();
            {
                let mut map = self.extensions.lock().unwrap_or_else(PoisonError::into_inner);
                for slot in map.values_mut() {
                    match slot.on_reset {
                        OnReset::Replace(fresh) => slot.value = fresh(),
                        OnReset::InPlace(reset) => in_place.push((Arc::clone(&slot.value), reset)),
                    }
                }
            }
            for (value, reset) in in_place {
                reset(value.as_ref());
            }
        }
        self.clock.offset_us.store(0, Ordering::Relaxed);
        self.stats.lock().unwrap_or_else(PoisonError::into_inner).clear();
    }

    /// Counts a request of endpoint class `class` (e.g. `private_read`,
    /// `private_write`, `graph_send`) for `account` (`None`: unauthenticated).
    pub fn record_request(&self, account: Option<&str>, class: &str, outcome: RequestOutcome) {
        let mut stats = self.stats.lock().unwrap_or_else(PoisonError::into_inner);
        let per = stats.entry(account.unwrap_or("-").to_owned()).or_default();
        let e = match per.get_mut(class) {
            Some(e) => e,
            None => per.entry(class.to_owned()).or_default(),
        };
        e.requests += 1;
        match outcome {
            RequestOutcome::Ok => e.ok += 1,
            RequestOutcome::Error => e.errors += 1,
            RequestOutcome::Refused => e.refused += 1,
        }
    }

    /// Account → endpoint class → counters.
    #[must_use]
    pub fn stats(&self) -> HashMap<String, HashMap<String, EndpointStats>> {
        self.stats.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Total requests counted for `account` so far (all classes).
    #[must_use]
    pub fn request_count(&self, account: &str) -> u64 {
        self.stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(account)
            .map_or(0, |m| m.values().map(|e| e.requests).sum())
    }

    /// A per-sandbox singleton of `T`, created on first use. Modules keep
    /// their own state here (OAuth tokens, rate-limit buckets, logins in
    /// progress). [`Sandbox::reset`] swaps in a fresh `T::default()`, so
    /// hold the `Arc` only for the duration of a request.
    #[must_use]
    pub fn extension<T: Default + Send + Sync + 'static>(&self) -> Arc<T> {
        self.extension_slot(OnReset::Replace(fresh_extension::<T>))
    }

    /// Like [`Sandbox::extension`], for state that long-lived tasks hold on
    /// to (webhook subscriptions and their delivery workers):
    /// [`Sandbox::reset`] empties it in place with [`Extension::reset`].
    /// Reach a type through one of the two methods only.
    #[must_use]
    pub fn lasting_extension<T: Extension>(&self) -> Arc<T> {
        self.extension_slot(OnReset::InPlace(reset_in_place::<T>))
    }

    fn extension_slot<T: Default + Send + Sync + 'static>(&self, on_reset: OnReset) -> Arc<T> {
        let mut map = self.extensions.lock().unwrap_or_else(PoisonError::into_inner);
        let slot = map
            .entry(TypeId::of::<T>())
            .or_insert_with(|| ExtensionSlot { value: Arc::new(T::default()), on_reset });
        match Arc::clone(&slot.value).downcast::<T>() {
            Ok(t) => t,
            Err(_) => {
                // Unreachable: the key is T's TypeId. Replace defensively.
                let t = Arc::new(T::default());
                slot.value = Arc::clone(&t) as AnyExtension;
                t
            }
        }
    }

    /// The base URL the sandbox is served at (`http://127.0.0.1:PORT`), once serving.
    #[must_use]
    pub fn base_url(&self) -> Option<String> {
        self.base_url.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    pub(crate) fn set_base_url(&self, url: String) {
        *self.base_url.lock().unwrap_or_else(PoisonError::into_inner) = Some(url);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn text(t: &str) -> NewItem {
        NewItem { text: Some(t.to_owned()), ..NewItem::default() }
    }

    #[tokio::test]
    async fn newest_from_others_and_unread_follow_the_thread() {
        let sb = Sandbox::new(SandboxConfig::default());
        sb.write(|w| {
            let a = w
                .create_account(NewAccount {
                    kind: AccountKind::Personal,
                    username: "owner".into(),
                    full_name: None,
                    password: None,
                    two_factor: false,
                    challenge: false,
                })
                .unwrap();
            let c = w.create_customer("writer", None).unwrap();
            let t = w.thread_with(&a.id, std::slice::from_ref(&c.pk), false).unwrap();
            let newest = |w: &World, pk: &str| {
                w.newest_from_others(w.thread(&t).unwrap(), pk).map(|i| i.text.clone().unwrap())
            };
            w.append_item(&t, &a.pk, text("a1")).unwrap();
            assert_eq!(newest(w, &a.pk), None, "only the account wrote");
            assert!(!w.thread(&t).unwrap().is_unread(&a.pk));
            w.append_item(&t, &c.pk, text("c1")).unwrap();
            let c2 = w.append_item(&t, &c.pk, text("c2")).unwrap();
            assert!(w.thread(&t).unwrap().is_unread(&a.pk), "the customer wrote since");
            for n in 0..50 {
                w.append_item(&t, &a.pk, text(&format!("a{n}"))).unwrap();
            }
            assert!(!w.thread(&t).unwrap().is_unread(&a.pk), "writing marks the thread seen");
            assert!(w.thread(&t).unwrap().is_unread(&c.pk), "the customer never looked");
            assert_eq!(newest(w, &a.pk).as_deref(), Some("c2"));
            assert_eq!(newest(w, &c.pk).as_deref(), Some("a49"));
            w.unsend(&t, &c2.id, &c.pk).unwrap();
            assert_eq!(newest(w, &a.pk).as_deref(), Some("c1"), "an unsent item is skipped");
            // A copy of the thread is walked rather than trusted to the index.
            let copy = w.thread(&t).unwrap().clone();
            assert_eq!(w.newest_from_others(&copy, &a.pk).unwrap().text.as_deref(), Some("c1"));
        })
        .await;
    }
}
