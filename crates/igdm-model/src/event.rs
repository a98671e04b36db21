//! Normalized webhook events: one line of `igdm serve --events`, and what the
//! bot and the MCP server receive.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{Attachment, Timestamp, open_enum};

open_enum! {
    /// What happened.
    pub enum EventKind {
        /// A new message (or an echo of one the account sent, see `is_echo`).
        Message = "message",
        /// A message was edited.
        MessageEdit = "message_edit",
        /// A message was unsent.
        MessageDeleted = "message_deleted",
        /// A reaction was added or removed.
        Reaction = "reaction",
        /// A button, ice breaker or menu item was tapped.
        Postback = "postback",
        /// The other side read up to a message.
        Seen = "seen",
        /// A referral (ig.me link, ad) inside an existing thread.
        Referral = "referral",
        /// Thread control changed hands (pass, take, request).
        Handover = "handover",
        /// Someone commented on a post.
        Comment = "comment",
        /// The account was mentioned.
        Mention = "mention",
        /// A marketing opt-in.
        Optin = "optin",
    }
}

/// A reaction change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct EventReaction {
    /// `react` or `unreact`.
    pub action: String,
    /// The emoji, absent on unreact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emoji: Option<String>,
    /// The reaction name (`love`), absent on unreact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reaction: Option<String>,
}

/// A postback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct EventPostback {
    /// The button title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The payload the business set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
}

/// One normalized event. Fields that do not apply are `None`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// The business account the event belongs to (`entry.id`).
    pub account_id: String,
    /// The conversation, identified by the customer's id on the official API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
    /// Who caused the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_id: Option<String>,
    /// Who received it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient_id: Option<String>,
    /// The message concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// When the event happened.
    pub timestamp: Timestamp,
    /// Whether the account itself sent the message.
    #[serde(default)]
    pub is_echo: bool,
    /// Text (message, edit, comment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Attachments of a message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
    /// Reaction details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reaction: Option<EventReaction>,
    /// Postback details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postback: Option<EventPostback>,
    /// The message or story replied to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<serde_json::Value>,
    /// A quick-reply payload that was tapped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quick_reply_payload: Option<String>,
    /// Anything else specific to the kind (referral, handover, comment fields).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
}

impl Event {
    /// An event of `kind` for `account_id` at `timestamp`, every other field
    /// absent.
    #[must_use]
    pub fn new(kind: EventKind, account_id: impl Into<String>, timestamp: Timestamp) -> Self {
        Self {
            kind,
            account_id: account_id.into(),
            conversation_id: None,
            sender_id: None,
            recipient_id: None,
            message_id: None,
            timestamp,
            is_echo: false,
            text: None,
            attachments: Vec::new(),
            reaction: None,
            postback: None,
            reply_to: None,
            quick_reply_payload: None,
            details: None,
        }
    }
}
