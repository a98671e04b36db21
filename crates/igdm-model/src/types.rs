//! Accounts, conversations, messages, users and pages.
//!
//! Reading, the types also take the vocabulary of the original connector
//! format (seed 001): `type` and `name` of a conversation, `handle` and
//! `name` of a participant, `content` of a message. Connector files written
//! to that shape back an account unchanged; igdm writes its own names.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{ConversationId, MessageId, Timestamp, UserId, open_enum};

open_enum! {
    /// Which Instagram surface an account is reached through.
    pub enum Backend {
        /// The private web API with a cookie session (personal accounts).
        Web = "web",
        /// The official Instagram API with Instagram Login (graph.instagram.com).
        Graph = "graph",
        /// The official API through a Facebook Page token (graph.facebook.com).
        Page = "page",
    }
}

/// An Instagram account igdm acts as.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Account {
    /// The local name the user gave the account (`--account NAME`).
    pub name: String,
    /// The connector id that serves it (`instagram-web`, `instagram-graph`, `instagram-page`).
    pub connector: String,
    /// The surface behind the connector.
    pub backend: Backend,
    /// The provider's id for the account (user pk, IG professional id or page id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserId>,
    /// The account's username, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// A base URL override (for the sandbox or a proxy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// When the account was added.
    pub created_at: Timestamp,
}

open_enum! {
    /// One-to-one or group conversation.
    pub enum ConversationKind {
        /// Two participants.
        Direct = "direct",
        /// More than two participants.
        Group = "group",
    }
}

open_enum! {
    /// The inbox folder a conversation sits in.
    pub enum Folder {
        /// The main inbox (primary or general).
        Inbox = "inbox",
        /// Message requests not yet accepted.
        Pending = "pending",
        /// Hidden requests.
        Spam = "spam",
    }
}

/// A participant of a conversation as listed by the provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Participant {
    /// The user id.
    pub id: UserId,
    /// The username (handle), when known.
    #[serde(default, alias = "handle", skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The display name, when known.
    #[serde(default, alias = "name", skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

/// A conversation (thread).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Conversation {
    /// The conversation id.
    pub id: ConversationId,
    /// Direct or group.
    #[serde(alias = "type")]
    pub kind: ConversationKind,
    /// The title, when the provider gives one.
    #[serde(default, alias = "name", skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The other participants.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub participants: Vec<Participant>,
    /// Whether there is something unread.
    #[serde(default)]
    pub unread: bool,
    /// Number of unread messages, when the provider says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unread_count: Option<u64>,
    /// Time of the last activity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
    /// Notifications muted.
    #[serde(default)]
    pub muted: bool,
    /// Hidden (archived).
    #[serde(default)]
    pub hidden: bool,
    /// Inbox folder.
    #[serde(default = "default_folder")]
    pub folder: Folder,
    /// When the official API's reply window closes, where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_window_ends_at: Option<Timestamp>,
}

fn default_folder() -> Folder {
    Folder::Inbox
}

open_enum! {
    /// What a message carries.
    pub enum ContentType {
        /// Plain text.
        Text = "text",
        /// Text with a link preview.
        Link = "link",
        /// A photo or GIF.
        Image = "image",
        /// A video.
        Video = "video",
        /// An audio clip.
        Audio = "audio",
        /// A voice note.
        Voice = "voice",
        /// A file (PDF).
        File = "file",
        /// A sticker.
        Sticker = "sticker",
        /// The heart sticker (`like_heart`, private API `like`).
        LikeHeart = "like_heart",
        /// A shared post.
        MediaShare = "media_share",
        /// A shared reel or clip.
        ReelShare = "reel_share",
        /// A reply to a story.
        StoryReply = "story_reply",
        /// A mention of the account in a story.
        StoryMention = "story_mention",
        /// A reaction shown as its own item.
        Reaction = "reaction",
        /// A system notice (action log, title change, call event).
        System = "system",
        /// Content the provider marks as unsupported.
        Unsupported = "unsupported",
    }
}

open_enum! {
    /// The kind of an attachment.
    pub enum AttachmentType {
        /// Image or GIF.
        Image = "image",
        /// Video.
        Video = "video",
        /// Audio.
        Audio = "audio",
        /// Voice note.
        Voice = "voice",
        /// File.
        File = "file",
        /// Sticker.
        Sticker = "sticker",
        /// Shared post or reel.
        Share = "share",
        /// Story (reply or mention).
        Story = "story",
        /// Anything else with a URL.
        Link = "link",
    }
}

/// A media attachment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Attachment {
    /// The kind of attachment.
    #[serde(rename = "type")]
    pub kind: AttachmentType,
    /// Where to fetch it. Instagram URLs expire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// MIME type, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime: Option<String>,
    /// Size in bytes, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Duration in seconds, for audio and video.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<f64>,
}

/// A reaction on a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Reaction {
    /// Who reacted.
    pub sender_id: UserId,
    /// The emoji (or the Graph reaction name, such as `love`).
    pub emoji: String,
}

/// What a message replies to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ReplyTo {
    /// The message replied to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<MessageId>,
    /// A short preview of its text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview: Option<String>,
}

/// Who sent a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Sender {
    /// The user id.
    pub id: UserId,
    /// The username, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The display name, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Whether the account itself sent it.
    #[serde(default)]
    pub is_self: bool,
}

open_enum! {
    /// Where an outgoing message stands.
    pub enum SendStatus {
        /// Accepted locally, not yet confirmed by Instagram.
        Pending = "pending",
        /// Confirmed by Instagram.
        Sent = "sent",
        /// Failed; a retry may succeed.
        FailedRetriable = "failed_retriable",
        /// Failed for good.
        FailedPermanent = "failed_permanent",
    }
}

/// A message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Message {
    /// The provider's message id.
    pub id: MessageId,
    /// The conversation it belongs to.
    pub conversation_id: ConversationId,
    /// Who sent it.
    pub sender: Sender,
    /// When it was sent.
    pub timestamp: Timestamp,
    /// What it carries.
    pub content_type: ContentType,
    /// Its text, when it has one. Kept after deletion.
    #[serde(default, alias = "content", skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Media attachments.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub attachments: Vec<Attachment>,
    /// Reactions on it.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub reactions: Vec<Reaction>,
    /// What it replies to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<ReplyTo>,
    /// Whether it was unsent.
    #[serde(default)]
    pub is_deleted: bool,
    /// When it was last edited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<Timestamp>,
    /// For outgoing messages, where the send stands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_status: Option<SendStatus>,
}

/// An Instagram user.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct User {
    /// The user id (pk or IGSID).
    pub id: UserId,
    /// The username.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Profile picture URL (expires after a few days).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_picture_url: Option<String>,
    /// Whether the user follows the account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follows_account: Option<bool>,
    /// Whether the account follows the user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub followed_by_account: Option<bool>,
    /// Verified badge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_verified: Option<bool>,
    /// Follower count, when the provider gives it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follower_count: Option<u64>,
}

/// One page of a list, with the cursor for the next one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Page<T> {
    /// The items on this page.
    pub items: Vec<T>,
    /// Pass this back to get the next page; `None` at the end.
    pub next_cursor: Option<String>,
    /// Whether more items exist beyond this page.
    pub has_more: bool,
}

impl<T> Page<T> {
    /// A last page holding `items`.
    #[must_use]
    pub fn last(items: Vec<T>) -> Self {
        Self { items, next_cursor: None, has_more: false }
    }

    /// Maps the items, keeping the cursor.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next_cursor: self.next_cursor,
            has_more: self.has_more,
        }
    }
}

/// A list a mapping left null (nothing there) reads as empty.
fn null_as_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_type_is_open() {
        let known: ContentType = serde_json::from_str("\"reel_share\"").unwrap();
        assert_eq!(known, ContentType::ReelShare);
        let unknown: ContentType = serde_json::from_str("\"xma_future_thing\"").unwrap();
        assert_eq!(unknown, ContentType::Unknown("xma_future_thing".into()));
        assert_eq!(serde_json::to_string(&unknown).unwrap(), "\"xma_future_thing\"");
    }

    #[test]
    fn message_round_trips() {
        let m = Message {
            id: "3".into(),
            conversation_id: "340282366841710300949128137443944319108".into(),
            sender: Sender {
                id: "1".into(),
                username: Some("a".into()),
                display_name: None,
                is_self: false,
            },
            timestamp: Timestamp::from_unix_micros(1_700_000_000_000_000).unwrap(),
            content_type: ContentType::Text,
            text: Some("hi 'there' {{x}} | y".into()),
            attachments: vec![],
            reactions: vec![Reaction { sender_id: "2".into(), emoji: "❤️".into() }],
            reply_to: None,
            is_deleted: false,
            edited_at: None,
            send_status: Some(SendStatus::Sent),
        };
        let json = serde_json::to_value(&m).unwrap();
        assert_eq!(json["timestamp"], "2023-11-14T22:13:20Z");
        assert_eq!(json["sender"]["id"], "1");
        let back: Message = serde_json::from_value(json).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn the_original_format_names_read_and_igdm_names_are_written() {
        let c: Conversation = serde_json::from_value(serde_json::json!({
            "id": "1", "type": "group", "name": "Trip",
            "participants": [{"id": 7, "handle": "ana", "name": "Ana"}]
        }))
        .unwrap();
        assert_eq!(c.kind, ConversationKind::Group);
        assert_eq!(c.title.as_deref(), Some("Trip"));
        assert_eq!(c.participants[0].username.as_deref(), Some("ana"));
        assert_eq!(c.participants[0].display_name.as_deref(), Some("Ana"));
        let out = serde_json::to_value(&c).unwrap();
        assert_eq!(out["kind"], "group");
        assert_eq!(out["title"], "Trip");
        assert!(out.get("type").is_none() && out.get("name").is_none());

        let m: Message = serde_json::from_value(serde_json::json!({
            "id": "3", "conversation_id": "1", "sender": {"id": "7"},
            "timestamp": "2023-11-14T22:13:20Z", "content_type": "text",
            "content": "hi", "reactions": null, "attachments": null
        }))
        .unwrap();
        assert_eq!(m.text.as_deref(), Some("hi"));
        assert!(m.reactions.is_empty() && m.attachments.is_empty());
        assert_eq!(serde_json::to_value(&m).unwrap()["text"], "hi");
    }
}
