//! Parameters of Meta's Handover Protocol actions (`pass_thread_control`,
//! `take_thread_control`, `request_thread_control`, `get_thread_owner`),
//! built in one place for every front end (the bot's handover, the MCP
//! tools). Only the Facebook Login flavour (`instagram-page`) has them.

use serde_json::{Map, Value, json};

use crate::ops::params;

/// The Page Inbox's app id, which Meta's Handover Protocol docs give as the
/// target for passing a thread to people answering in the Page's inbox.
pub const PAGE_INBOX_APP_ID: &str = "263902037430900";

/// Whose thread a handover action is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Thread<'a> {
    /// The customer, by their id (IGSID).
    User(&'a str),
    /// A conversation; the client resolves it to its customer.
    Conversation(&'a str),
}

impl Thread<'_> {
    fn pair(self) -> (&'static str, Value) {
        match self {
            Self::User(id) => ("user_id", json!(id)),
            Self::Conversation(id) => ("conversation_id", json!(id)),
        }
    }
}

fn text(v: Option<&str>) -> Value {
    v.map_or(Value::Null, |s| json!(s))
}

/// `pass_thread_control`: give the thread to `target_app_id` (the Page
/// Inbox, [`PAGE_INBOX_APP_ID`], when `None`).
#[must_use]
pub fn pass_params(
    thread: Thread<'_>,
    target_app_id: Option<&str>,
    metadata: Option<&str>,
) -> Map<String, Value> {
    params(&[
        thread.pair(),
        ("target_app_id", json!(target_app_id.unwrap_or(PAGE_INBOX_APP_ID))),
        ("metadata", text(metadata)),
    ])
}

/// `take_thread_control`: take the thread back.
#[must_use]
pub fn take_params(thread: Thread<'_>, metadata: Option<&str>) -> Map<String, Value> {
    params(&[thread.pair(), ("metadata", text(metadata))])
}

/// `request_thread_control`: ask the app in control to pass the thread.
#[must_use]
pub fn request_params(thread: Thread<'_>, metadata: Option<&str>) -> Map<String, Value> {
    params(&[thread.pair(), ("metadata", text(metadata))])
}

/// `get_thread_owner`: which app controls the thread.
#[must_use]
pub fn owner_params(thread: Thread<'_>) -> Map<String, Value> {
    params(&[thread.pair()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pass_defaults_to_the_page_inbox_and_leaves_out_absent_metadata() {
        let p = pass_params(Thread::Conversation("c1"), None, None);
        assert_eq!(
            Value::Object(p),
            json!({"conversation_id": "c1", "target_app_id": PAGE_INBOX_APP_ID})
        );
        let p = take_params(Thread::User("u1"), Some("back to the bot"));
        assert_eq!(Value::Object(p), json!({"user_id": "u1", "metadata": "back to the bot"}));
    }
}
