//! JSON shapes of the private API (users, items, threads, cursors).
//!
//! Deliberate irregularities, as Instagram has them: a user `pk` and an
//! item's `user_id` are JSON numbers for some users/items and strings for
//! others (decided by the id's last digit, so it is stable); item
//! timestamps are sometimes strings; unknown extra fields appear.
//!
//! The shapes are typed views that borrow from the [`World`] and serialize
//! straight into the response body, field by field in Instagram's order:
//! no intermediate `serde_json::Value` tree is built on the hot paths.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine as _;
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::state::{Item, ItemKind, ItemReaction, Micros, Thread, User, World};

/// An id that Instagram writes as a JSON number or as a string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Id<'a> {
    /// Written as a number.
    Number(u64),
    /// Written as a string.
    Text(&'a str),
}

impl Serialize for Id<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Number(n) => s.serialize_u64(*n),
            Self::Text(t) => s.serialize_str(t),
        }
    }
}

/// A pk as Instagram varies it: a number for even last digits, else a string.
#[must_use]
pub fn pk_value(pk: &str) -> Id<'_> {
    let even =
        pk.bytes().last().is_some_and(|b| b.is_ascii_digit() && (b - b'0').is_multiple_of(2));
    match pk.parse::<u64>() {
        Ok(n) if even => Id::Number(n),
        _ => Id::Text(pk),
    }
}

/// A pk as a JSON number when it parses (for `viewer_id` and friends).
#[must_use]
pub fn pk_number(pk: &str) -> Id<'_> {
    pk.parse::<u64>().map_or(Id::Text(pk), Id::Number)
}

/// A microsecond timestamp written as a number or, as Instagram sometimes
/// does, as a string of digits.
#[derive(Debug, Clone, Copy)]
enum Stamp {
    Number(Micros),
    Text(Micros),
}

impl Serialize for Stamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Number(n) => s.serialize_i64(*n),
            Self::Text(n) => s.collect_str(n),
        }
    }
}

/// `friendship_status` of a user.
#[derive(Debug, Serialize)]
struct FriendshipStatus {
    following: bool,
    blocking: bool,
    is_messaging_pseudo_blocking: bool,
    is_private: bool,
    incoming_request: bool,
    outgoing_request: bool,
    is_bestie: bool,
    is_restricted: bool,
    is_feed_favorite: bool,
}

/// A user in `users[]`, `viewer`, `inviter`.
#[derive(Debug, Serialize)]
pub struct UserJson<'a> {
    pk: Id<'a>,
    pk_id: &'a str,
    id: &'a str,
    username: &'a str,
    full_name: &'a str,
    profile_pic_url: &'a str,
    profile_pic_id: String,
    is_private: bool,
    is_verified: bool,
    has_anonymous_profile_picture: bool,
    friendship_status: FriendshipStatus,
    interop_messaging_user_fbid: String,
    is_creator_agent_enabled: bool,
}

impl UserJson<'_> {
    /// The same user with `pk` always a number (the logged-in user's own
    /// profile has it so).
    #[must_use]
    pub fn with_numeric_pk(mut self) -> Self {
        if let Id::Text(pk) = self.pk {
            self.pk = pk_number(pk);
        }
        self
    }
}

/// A user in `users[]`, `viewer`, `inviter`.
#[must_use]
pub fn user(u: &User) -> UserJson<'_> {
    UserJson {
        pk: pk_value(&u.pk),
        pk_id: &u.pk,
        id: &u.pk,
        username: &u.username,
        full_name: &u.full_name,
        profile_pic_url: &u.profile_pic_url,
        profile_pic_id: format!("{}_{}", u.pk.chars().rev().collect::<String>(), u.pk),
        is_private: u.is_private,
        is_verified: u.is_verified,
        has_anonymous_profile_picture: false,
        friendship_status: FriendshipStatus {
            following: u.is_business_follow_user,
            blocking: false,
            is_messaging_pseudo_blocking: false,
            is_private: u.is_private,
            incoming_request: false,
            outgoing_request: false,
            is_bestie: false,
            is_restricted: false,
            is_feed_favorite: false,
        },
        interop_messaging_user_fbid: format!("1{}", &u.igsid[..u.igsid.len().min(15)]),
        is_creator_agent_enabled: false,
    }
}

/// Users' `users[]` entries, serialized once per version of each user:
/// every thread shows its participants and its inviter, and they rarely
/// change. An entry is reused only while the user is equal, field for
/// field, to the one it was made from.
#[derive(Debug, Default)]
pub struct UserJsonCache(Mutex<HashMap<String, (User, Arc<RawValue>)>>);

impl UserJsonCache {
    /// `u` as in `users[]`.
    pub fn user<'a>(&self, u: &'a User) -> UserEntry<'a> {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((seen, json)) = map.get(&u.pk)
            && seen == u
        {
            return UserEntry::Serialized(Arc::clone(json));
        }
        match serde_json::value::to_raw_value(&user(u)) {
            Ok(raw) => {
                let json: Arc<RawValue> = Arc::from(raw);
                map.insert(u.pk.clone(), (u.clone(), Arc::clone(&json)));
                UserEntry::Serialized(json)
            }
            Err(_) => UserEntry::Fresh(user(u)),
        }
    }
}

/// A user in `users[]`, `inviter`: already serialized, or to serialize.
#[derive(Debug)]
pub enum UserEntry<'a> {
    /// From the [`UserJsonCache`].
    Serialized(Arc<RawValue>),
    /// Rendered for this answer.
    Fresh(UserJson<'a>),
}

impl Serialize for UserEntry<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Serialized(raw) => raw.serialize(s),
            Self::Fresh(u) => u.serialize(s),
        }
    }
}

fn media_pk(item: &Item) -> String {
    item.id.chars().take(19).collect()
}

fn image_versions(url: &str) -> Value {
    json!({"candidates": [
        {"width": 1080, "height": 1350, "url": url, "scans_profile": "e35"},
        {"width": 640, "height": 800, "url": url, "scans_profile": "e35"},
    ]})
}

fn media_object(w: &World, item: &Item, owner: &str, url: &str, video: bool) -> Value {
    let mut user = json!({"pk": pk_number(owner), "pk_id": owner, "id": owner});
    if let Some(u) = w.users.get(owner) {
        user["username"] = json!(u.username);
        user["full_name"] = json!(u.full_name);
        user["profile_pic_url"] = json!(u.profile_pic_url);
        user["is_private"] = json!(false);
    }
    let mut m = json!({
        "id": format!("{}_{owner}", media_pk(item)),
        "pk": media_pk(item),
        "media_type": if video { 2 } else { 1 },
        "original_width": 1080,
        "original_height": 1350,
        "image_versions2": image_versions(url),
        "organic_tracking_token": "eyJ2ZXJzaW9uIjo1fQ",
        // Every media object names its owner, its shortcode and when it was
        // posted (instagrapi's Media model requires all three).
        "user": user,
        "code": format!("C{}", media_pk(item).chars().take(10).collect::<String>()),
        "taken_at": item.timestamp_us.div_euclid(1_000_000),
    });
    if video {
        m["video_versions"] =
            json!([{"type": 101, "width": 720, "height": 900, "url": url, "id": media_pk(item)}]);
        m["video_duration"] = json!(12.4);
    }
    m
}

/// The media of a `visual_media` item: its model types `video_duration` as
/// whole seconds where feed media carry fractions, so none is given.
fn visual_media_object(w: &World, item: &Item, video: bool) -> Value {
    let mut m = media_object(w, item, &item.sender, &first_url(item), video);
    if let Some(o) = m.as_object_mut() {
        o.remove("video_duration");
    }
    m
}

fn first_url(item: &Item) -> String {
    item.attachments
        .first()
        .map(|a| a.url.clone())
        .or_else(|| item.link_url.clone())
        .unwrap_or_else(|| {
            format!("https://scontent.cdninstagram.com/v/t51.2885-15/{}_n.jpg", media_pk(item))
        })
}

fn xma(item: &Item, title: &str) -> Value {
    let url = first_url(item);
    json!([{
        "xma_layout_type": 0,
        "target_url": url,
        "title_text": title,
        "header_title_text": item.text.clone().unwrap_or_default(),
        "preview_url": url,
        "preview_width": 1080,
        "preview_height": 1920,
        "should_respect_server_preview_size": false,
    }])
}

/// The heart, which also counts as a like.
const HEART: &str = "\u{2764}\u{fe0f}";

/// One entry of `reactions.emojis`.
#[derive(Serialize)]
struct EmojiReaction<'a> {
    sender_id: Id<'a>,
    timestamp: Micros,
    client_context: &'static str,
    emoji: &'a str,
    super_react_type: &'static str,
}

/// One entry of `reactions.likes`.
#[derive(Serialize)]
struct LikeReaction<'a> {
    sender_id: Id<'a>,
    timestamp: Micros,
}

/// An item's `reactions` object.
struct Reactions<'a>(&'a [ItemReaction]);

impl Serialize for Reactions<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let likes = || self.0.iter().filter(|r| r.emoji == HEART);
        let mut m = s.serialize_map(Some(3))?;
        m.serialize_entry("likes_count", &likes().count())?;
        m.serialize_entry(
            "likes",
            &likes()
                .map(|r| LikeReaction {
                    sender_id: pk_number(&r.sender),
                    timestamp: r.timestamp_us,
                })
                .collect::<Vec<_>>(),
        )?;
        m.serialize_entry(
            "emojis",
            &self
                .0
                .iter()
                .map(|r| EmojiReaction {
                    sender_id: pk_number(&r.sender),
                    timestamp: r.timestamp_us,
                    client_context: "",
                    emoji: &r.emoji,
                    super_react_type: "none",
                })
                .collect::<Vec<_>>(),
        )?;
        m.end()
    }
}

/// `replied_to_message` of an item that answers another.
#[derive(Serialize)]
struct RepliedTo<'a> {
    item_id: &'a str,
    user_id: Id<'a>,
    timestamp: Micros,
    item_type: &'static str,
    is_sent_by_viewer: bool,
    /// Absent without text; `null` once the target was unsent.
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<Option<&'a str>>,
}

/// `link` of a link item.
#[derive(Serialize)]
struct LinkJson<'a> {
    text: &'a str,
    link_context: LinkContext<'a>,
    client_context: Option<&'a str>,
    mutation_token: Option<&'a str>,
}

#[derive(Serialize)]
struct LinkContext<'a> {
    link_url: &'a str,
    link_title: &'a str,
    link_summary: &'static str,
    link_image_url: &'static str,
}

/// An item, as in `items[]`; build it with [`item`].
#[derive(Debug, Clone, Copy)]
pub struct ItemJson<'a> {
    w: &'a World,
    thread: &'a Thread,
    it: &'a Item,
    viewer_pk: &'a str,
}

/// An item, as in `items[]`. `viewer_pk` decides `is_sent_by_viewer`.
#[must_use]
pub fn item<'a>(
    w: &'a World,
    thread: &'a Thread,
    it: &'a Item,
    viewer_pk: &'a str,
) -> ItemJson<'a> {
    ItemJson { w, thread, it, viewer_pk }
}

impl Serialize for ItemJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Self { w, thread, it, viewer_pk } = *self;
        let last = it.id.bytes().last().unwrap_or(b'0');
        let user_id =
            if last.is_multiple_of(2) { pk_number(&it.sender) } else { Id::Text(&it.sender) };
        let timestamp = if last.is_multiple_of(3) {
            Stamp::Text(it.timestamp_us)
        } else {
            Stamp::Number(it.timestamp_us)
        };
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("item_id", &it.id)?;
        m.serialize_entry("message_id", &it.mid)?;
        m.serialize_entry("user_id", &user_id)?;
        m.serialize_entry("timestamp", &timestamp)?;
        m.serialize_entry("item_type", it.kind.as_str())?;
        let client_context = it
            .client_context
            .as_deref()
            .unwrap_or_else(|| &it.id[it.id.len().saturating_sub(19)..]);
        m.serialize_entry("client_context", client_context)?;
        m.serialize_entry("is_sent_by_viewer", &(it.sender == viewer_pk))?;
        m.serialize_entry("show_forward_attribution", &false)?;
        m.serialize_entry("is_shh_mode", &false)?;
        m.serialize_entry("hide_in_thread", &0)?;
        if !it.edits.is_empty() {
            m.serialize_entry("is_edited", &true)?;
            m.serialize_entry("edit_count", &it.edits.len())?;
        }
        if !it.reactions.is_empty() {
            m.serialize_entry("reactions", &Reactions(&it.reactions))?;
        }
        if let Some(target) = it.reply_to.as_ref().and_then(|r| thread.item(r)) {
            let text = if target.deleted { Some(None) } else { target.text.as_deref().map(Some) };
            let replied = RepliedTo {
                item_id: &target.id,
                user_id: pk_number(&target.sender),
                timestamp: target.timestamp_us,
                item_type: target.kind.as_str(),
                is_sent_by_viewer: target.sender == viewer_pk,
                text,
            };
            m.serialize_entry("replied_to_message", &replied)?;
        }
        let text = it.text.as_deref().unwrap_or_default();
        match it.kind {
            ItemKind::Text | ItemKind::Postback => m.serialize_entry("text", text)?,
            ItemKind::Link => {
                let url = it.link_url.as_deref().unwrap_or_default();
                let title = url
                    .trim_start_matches("https://")
                    .trim_start_matches("http://")
                    .split('/')
                    .next()
                    .unwrap_or_default();
                let link = LinkJson {
                    text,
                    link_context: LinkContext {
                        link_url: url,
                        link_title: title,
                        link_summary: "",
                        link_image_url: "",
                    },
                    client_context: it.client_context.as_deref(),
                    mutation_token: it.client_context.as_deref(),
                };
                m.serialize_entry("link", &link)?;
            }
            ItemKind::Like => m.serialize_entry("like", HEART)?,
            ItemKind::Media => {
                let video = it.attachments.first().is_some_and(|a| a.kind == "video");
                m.serialize_entry(
                    "media",
                    &media_object(w, it, &it.sender, &first_url(it), video),
                )?;
            }
            ItemKind::MediaShare => {
                let mut media = media_object(w, it, &it.sender, &first_url(it), false);
                media["code"] = json!(format!("C{}", &media_pk(it)[..10]));
                media["caption"] = json!({"text": text});
                if let Some(id) = &it.media_id {
                    media["id"] = json!(id);
                }
                m.serialize_entry("media_share", &media)?;
            }
            ItemKind::ReelShare => m.serialize_entry(
                "reel_share",
                &json!({
                    "text": text,
                    "type": "reply",
                    "reel_owner_id": pk_number(viewer_pk),
                    "is_reel_persisted": false,
                    "reel_type": "user_reel",
                    "media": media_object(w, it, viewer_pk, &first_url(it), false),
                }),
            )?,
            ItemKind::Clip => m.serialize_entry(
                "clip",
                &json!({"clip": media_object(w, it, &it.sender, &first_url(it), true)}),
            )?,
            ItemKind::RavenMedia => m.serialize_entry(
                "visual_media",
                &json!({
                    "media": visual_media_object(w, it, true),
                    "view_mode": "permanent",
                    "seen_count": 0,
                    "replay_expiring_at_us": null,
                }),
            )?,
            ItemKind::VoiceMedia => m.serialize_entry(
                "voice_media",
                &json!({"media": {
                    "id": format!("{}_{}", media_pk(it), it.sender),
                    "media_type": 11,
                    "audio": {
                        "audio_src": first_url(it),
                        "duration": 4200,
                        "waveform_data": vec![0.25_f64; 20],
                        "waveform_sampling_frequency_hz": 10,
                    },
                }}),
            )?,
            ItemKind::ActionLog => m.serialize_entry(
                "action_log",
                &json!({"description": text, "bold": [], "text_attributes": []}),
            )?,
            ItemKind::XmaMediaShare => m.serialize_entry("xma_media_share", &xma(it, "Post"))?,
            ItemKind::XmaStoryShare => m.serialize_entry("xma_story_share", &xma(it, "Story"))?,
            ItemKind::XmaReelMention => {
                m.serialize_entry("xma_reel_mention", &xma(it, "Mentioned you in their story"))?
            }
            ItemKind::XmaClip => m.serialize_entry("xma_clip", &xma(it, "Reel"))?,
            ItemKind::XmaReelShare => {
                m.serialize_entry("xma_reel_share", &xma(it, "Replied to their story"))?;
            }
            ItemKind::GenericXma => m.serialize_entry("generic_xma", &xma(it, text))?,
            ItemKind::VisualMedia => {
                let video = it.attachments.first().is_some_and(|a| a.kind == "video");
                let expires = it.timestamp_us / 1_000_000 + 24 * 3600;
                m.serialize_entry(
                    "visual_media",
                    &json!({
                        "media": visual_media_object(w, it, video),
                        "view_mode": "once",
                        "seen_count": 0,
                        "url_expire_at_secs": expires,
                    }),
                )?;
            }
            ItemKind::AnimatedMedia => {
                let url = first_url(it);
                let mp4 = url.strip_suffix(".gif").map(|u| format!("{u}.mp4"));
                m.serialize_entry(
                    "animated_media",
                    &json!({
                        "id": media_pk(it),
                        "images": {"fixed_height": {
                            "url": url,
                            "mp4": mp4.unwrap_or_else(|| url.clone()),
                            "width": "356",
                            "height": "200",
                        }},
                        "is_random": false,
                        "is_sticker": false,
                    }),
                )?;
            }
            ItemKind::StaticSticker => {
                m.serialize_entry("static_sticker", &json!({"id": media_pk(it)}))?;
            }
            ItemKind::StoryShare => m.serialize_entry(
                "story_share",
                &json!({
                    "text": text,
                    "message": "This story is unavailable",
                    "title": "Story unavailable",
                    "reason": 3,
                    "is_linked": false,
                }),
            )?,
            ItemKind::FelixShare => m.serialize_entry(
                "felix_share",
                &json!({
                    "text": text,
                    "video": media_object(w, it, &it.sender, &first_url(it), true),
                }),
            )?,
            ItemKind::Placeholder => m.serialize_entry(
                "placeholder",
                &json!({
                    "is_linked": false,
                    "title": "Post unavailable",
                    "message": "This post is unavailable.",
                }),
            )?,
            ItemKind::ExpiredPlaceholder => m.serialize_entry(
                "placeholder",
                &json!({
                    "is_linked": false,
                    "title": "Message unavailable",
                    "message": "This message is no longer available.",
                }),
            )?,
            ItemKind::VideoCallEvent => m.serialize_entry(
                "video_call_event",
                &json!({"action": "video_call_ended", "description": text}),
            )?,
            ItemKind::ReactionLog => {}
        }
        m.end()
    }
}

/// Encodes an opaque cursor.
#[must_use]
pub fn encode_cursor(kind: &str, ts: Micros, id: &str) -> String {
    let mut raw = String::with_capacity(kind.len() + id.len() + 22);
    raw.push_str(kind);
    raw.push(':');
    let _ = write!(raw, "{ts}");
    raw.push(':');
    raw.push_str(id);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

/// Decodes a cursor made by [`encode_cursor`] of the same `kind`.
#[must_use]
pub fn decode_cursor(kind: &str, raw: &str) -> Option<(Micros, String)> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(raw.trim()).ok()?;
    let s = String::from_utf8(bytes).ok()?;
    let mut parts = s.splitn(3, ':');
    if parts.next()? != kind {
        return None;
    }
    let ts = parts.next()?.parse().ok()?;
    Some((ts, parts.next()?.to_owned()))
}

/// A page of a thread's items, newest first, plus paging fields.
#[derive(Debug, Default)]
pub struct ItemsPage<'a> {
    /// Items, newest first.
    pub items: Vec<&'a Item>,
    /// More items older than the page.
    pub has_older: bool,
    /// More items newer than the page.
    pub has_newer: bool,
}

/// `theme` of a thread.
#[derive(Debug, Serialize)]
struct Theme {
    id: &'static str,
}

/// One entry of `last_seen_at`.
#[derive(Debug, Serialize)]
struct LastSeen<'a> {
    item_id: &'a str,
    #[serde(serialize_with = "serialize_display")]
    timestamp: Micros,
    #[serde(serialize_with = "serialize_display")]
    created_at: Micros,
}

fn serialize_display<S: Serializer>(n: &Micros, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(n)
}

/// `last_seen_at`: pk → where that user stopped reading.
#[derive(Debug)]
struct LastSeenMap<'a>(&'a HashMap<String, (String, Micros)>);

impl Serialize for LastSeenMap<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(
            self.0.iter().map(|(pk, (item_id, ts))| {
                (pk, LastSeen { item_id, timestamp: *ts, created_at: *ts })
            }),
        )
    }
}

/// The thread object; build it with [`thread`].
#[derive(Debug, Serialize)]
pub struct ThreadJson<'a> {
    thread_id: &'a str,
    thread_v2_id: &'a str,
    thread_igid: &'a str,
    viewer_id: Id<'a>,
    users: Vec<UserEntry<'a>>,
    left_users: [(); 0],
    admin_user_ids: Vec<Id<'a>>,
    items: Vec<ItemJson<'a>>,
    last_activity_at: Micros,
    last_non_sender_item_at: Micros,
    muted: bool,
    vc_muted: bool,
    mentions_muted: bool,
    approval_required_for_new_members: bool,
    is_pin: bool,
    named: bool,
    canonical: bool,
    pending: bool,
    archived: bool,
    is_spam: bool,
    thread_type: &'static str,
    is_group: bool,
    thread_title: String,
    folder: u8,
    read_state: i32,
    marked_as_unread: bool,
    input_mode: u8,
    shh_mode_enabled: bool,
    theme: Theme,
    last_seen_at: LastSeenMap<'a>,
    has_older: bool,
    has_newer: bool,
    oldest_cursor: Option<String>,
    newest_cursor: Option<String>,
    prev_cursor: Option<String>,
    next_cursor: Option<String>,
    is_close_friend_thread: bool,
    relevancy_score: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    inviter: Option<UserEntry<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_permanent_item: Option<ItemJson<'a>>,
}

impl ThreadJson<'_> {
    /// About how many bytes the serialized thread takes, to size the
    /// answer's buffer once.
    #[must_use]
    pub fn size_hint(&self) -> usize {
        const THREAD: usize = 1_600;
        const USER: usize = 700;
        const ITEM: usize = 450;
        THREAD
            + USER * (self.users.len() + usize::from(self.inviter.is_some()))
            + ITEM * (self.items.len() + usize::from(self.last_permanent_item.is_some()))
    }
}

/// The thread object. `items` is the page to embed (newest first); users
/// come from `users` (see [`UserJsonCache`]).
#[must_use]
pub fn thread<'a>(
    w: &'a World,
    users: &UserJsonCache,
    t: &'a Thread,
    viewer_pk: &'a str,
    page: &ItemsPage<'a>,
) -> ThreadJson<'a> {
    let members = || t.participants.iter().filter_map(|p| w.users.get(p));
    let oldest_cursor = page.items.last().map(|i| encode_cursor("item", i.timestamp_us, &i.id));
    let newest_cursor = page.items.first().map(|i| encode_cursor("item", i.timestamp_us, &i.id));
    let title = t
        .title
        .clone()
        .unwrap_or_else(|| members().map(|u| u.username.as_str()).collect::<Vec<_>>().join(", "));
    let viewer_id = pk_number(viewer_pk);
    ThreadJson {
        thread_id: &t.id,
        thread_v2_id: &t.v2_id,
        thread_igid: &t.id,
        viewer_id,
        users: members().map(|u| users.user(u)).collect(),
        left_users: [],
        admin_user_ids: if t.is_group { vec![viewer_id] } else { Vec::new() },
        items: page.items.iter().map(|i| item(w, t, i, viewer_pk)).collect(),
        last_activity_at: t.last_activity_us(),
        last_non_sender_item_at: w.newest_from_others(t, viewer_pk).map_or(0, |i| i.timestamp_us),
        muted: t.muted,
        vc_muted: false,
        mentions_muted: false,
        approval_required_for_new_members: false,
        is_pin: false,
        named: t.title.is_some(),
        canonical: !t.is_group,
        pending: t.pending,
        archived: t.hidden,
        is_spam: t.spam,
        thread_type: "private",
        is_group: t.is_group,
        thread_title: title,
        folder: 0,
        read_state: i32::from(t.is_unread(viewer_pk)),
        marked_as_unread: t.marked_unread,
        input_mode: 0,
        shh_mode_enabled: false,
        theme: Theme { id: "418793046769837" },
        last_seen_at: LastSeenMap(&t.last_seen),
        has_older: page.has_older,
        has_newer: page.has_newer,
        prev_cursor: newest_cursor.clone(),
        next_cursor: oldest_cursor.clone(),
        oldest_cursor,
        newest_cursor,
        is_close_friend_thread: false,
        relevancy_score: 0,
        inviter: w.accounts.get(&t.account).and_then(|a| w.users.get(&a.pk)).map(|u| users.user(u)),
        last_permanent_item: t.visible_items().next_back().map(|lp| item(w, t, lp, viewer_pk)),
    }
}
