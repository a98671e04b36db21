//! The one table of actions: for every action a connector may declare, the
//! command and the MCP tool that reach it.
//!
//! `igdm actions` prints each action's entries beside the account's own
//! actions, `docs/actions.md` is generated from this table, and the CLI's
//! tests fail when a connector declares an action the table does not name,
//! when an entry names a command or option the CLI does not have, or a tool
//! the MCP server does not offer. Every action can also be run by name with
//! `igdm run ACTION`; an entry says how a person or an agent reaches it
//! without knowing the action's parameters.

/// How a front end reaches an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reach {
    /// A command (with the option that selects the action, if any), or an
    /// MCP tool, of its own.
    Direct(&'static str),
    /// A step of this command or tool (an upload before a media send, a
    /// lookup before a send to a user), not run on its own.
    StepOf(&'static str),
    /// Not offered on this front end, for the reason given (`igdm run`
    /// still runs it by name).
    Not(&'static str),
}

impl Reach {
    /// The command or tool named, if any.
    #[must_use]
    pub fn target(&self) -> Option<&'static str> {
        match self {
            Self::Direct(t) | Self::StepOf(t) => Some(t),
            Self::Not(_) => None,
        }
    }

    fn cell(&self, quote: bool) -> String {
        let q = |t: &str| if quote { format!("`{t}`") } else { t.to_owned() };
        match self {
            Self::Direct(t) => q(t),
            Self::StepOf(t) => format!("step of {}", q(t)),
            Self::Not(why) => format!("not offered: {why}"),
        }
    }
}

/// One action and the front ends that reach it.
#[derive(Debug, Clone, Copy)]
pub struct ActionEntry {
    /// The action's name, as connectors declare it.
    pub action: &'static str,
    /// What it does, in a few words.
    pub summary: &'static str,
    /// The `igdm` command (words after `igdm`, then the option).
    pub cli: Reach,
    /// The MCP tool.
    pub mcp: Reach,
}

impl ActionEntry {
    /// The `cli` and `mcp` entries as JSON, for `igdm actions`.
    #[must_use]
    pub fn reach_json(&self) -> serde_json::Value {
        serde_json::json!({"cli": self.cli.cell(false), "mcp": self.mcp.cell(false)})
    }
}

use Reach::{Direct, Not, StepOf};

const fn e(action: &'static str, summary: &'static str, cli: Reach, mcp: Reach) -> ActionEntry {
    ActionEntry { action, summary, cli, mcp }
}

/// Every action the built-in connectors declare, reads first.
pub const ACTIONS: &[ActionEntry] = &[
    e(
        "list_conversations",
        "list conversations",
        Direct("conversations"),
        Direct("list_conversations"),
    ),
    e("get_conversation", "one conversation", Direct("conversation"), Direct("get_conversation")),
    e("list", "messages of a conversation", Direct("messages"), Direct("list_messages")),
    e("get", "one message", Direct("message"), Direct("get_message")),
    e("search", "search messages", Direct("search --remote"), Direct("search")),
    e("get_unread", "unread conversations", Direct("unread --remote"), Direct("get_unread")),
    e("get_presence", "when users were last active", Direct("presence"), Direct("get_presence")),
    e("get_profile", "a user's profile", Direct("profile"), Direct("get_user_profile")),
    e("list_pending", "message requests", Direct("requests list"), Direct("list_conversations")),
    e(
        "find_conversation",
        "the conversation with a user",
        StepOf("send --user"),
        StepOf("send_to_user"),
    ),
    e(
        "get_ice_breakers",
        "the ice-breaker questions",
        Direct("ice-breakers get"),
        Direct("get_ice_breakers"),
    ),
    e(
        "get_persistent_menu",
        "the persistent menu",
        Direct("menu get"),
        Direct("get_persistent_menu"),
    ),
    e(
        "get_thread_owner",
        "the app that controls a thread",
        Direct("handover owner"),
        Direct("get_thread_owner"),
    ),
    e(
        "list_secondary_receivers",
        "the apps a thread can be passed to",
        Direct("handover apps"),
        Direct("list_secondary_receivers"),
    ),
    e("send", "send text", Direct("send"), Direct("send")),
    e("send_to_user", "send text to a user", Direct("send --user"), Direct("send_to_user")),
    e("send_like", "send the heart", Direct("send --like"), Direct("send_like")),
    e("send_link", "send text with link previews", Direct("send --link"), Direct("send_link")),
    e("media_share", "share a post", Direct("send --share"), Direct("media_share")),
    e("send_photo", "send a photo file", Direct("send --photo"), Direct("send_media")),
    e("send_video", "send a video", Direct("send --video"), Direct("send_media")),
    e("send_voice", "send a voice note file", Direct("send --voice"), Direct("send_media")),
    e("send_image", "send an image by URL", Direct("send --image"), Direct("send_media")),
    e("send_audio", "send audio by URL", Direct("send --voice"), Direct("send_media")),
    e("send_file", "send a file by URL", Direct("send --file"), Direct("send_media")),
    e(
        "send_attachment",
        "send an uploaded attachment",
        StepOf("send --photo"),
        StepOf("send_media"),
    ),
    e("upload_photo", "upload a photo", StepOf("send --photo"), StepOf("send_media")),
    e("upload_video", "upload a video", StepOf("send --video"), StepOf("send_media")),
    e("upload_video_offset", "resume a video upload", StepOf("send --video"), StepOf("send_media")),
    e("upload_voice", "upload a voice note", StepOf("send --voice"), StepOf("send_media")),
    e("upload_voice_offset", "resume a voice upload", StepOf("send --voice"), StepOf("send_media")),
    e(
        "upload_attachment_file",
        "upload a file for sending",
        StepOf("send --file"),
        StepOf("send_media"),
    ),
    e(
        "upload_attachment",
        "upload media by URL for reuse",
        Not(
            "an upload by URL to reuse by id: `igdm run upload_attachment`, then `send_attachment`",
        ),
        Not("agents send media by URL or file with send_media"),
    ),
    e(
        "send_quick_replies",
        "text with quick replies",
        Direct("send --quick-reply"),
        Direct("send_quick_replies"),
    ),
    e(
        "send_generic_template",
        "a carousel of cards",
        Direct("send --template"),
        Direct("send_generic_template"),
    ),
    e(
        "send_button_template",
        "text with buttons",
        Direct("send --template"),
        Direct("send_button_template"),
    ),
    e(
        "reply_to_comment",
        "a private reply to a comment",
        Direct("reply-comment"),
        Direct("reply_to_comment"),
    ),
    e("react", "react to a message", Direct("react"), Direct("react")),
    e("unreact", "remove a reaction", Direct("unreact"), Direct("unreact")),
    e("mark_read", "mark seen", Direct("mark-read"), Direct("mark_read")),
    e("mark_unread", "mark unread", Direct("mark-unread"), Direct("mark_unread")),
    e("delete", "unsend a message", Direct("delete"), Direct("delete")),
    e("mute", "mute a conversation", Direct("mute"), Direct("mute")),
    e("unmute", "unmute a conversation", Direct("unmute"), Direct("unmute")),
    e("archive", "hide a conversation", Direct("archive"), Direct("archive")),
    e("approve", "accept a message request", Direct("requests approve"), Direct("approve")),
    e("decline", "decline a message request", Direct("requests decline"), Direct("decline")),
    e("send_typing", "show typing", Direct("typing"), Direct("send_typing")),
    e(
        "set_ice_breakers",
        "replace the ice breakers",
        Direct("ice-breakers set"),
        Direct("set_ice_breakers"),
    ),
    e(
        "delete_ice_breakers",
        "remove the ice breakers",
        Direct("ice-breakers delete"),
        Direct("delete_ice_breakers"),
    ),
    e(
        "set_persistent_menu",
        "replace the persistent menu",
        Direct("menu set"),
        Direct("set_persistent_menu"),
    ),
    e(
        "delete_persistent_menu",
        "remove the persistent menu",
        Direct("menu delete"),
        Direct("delete_persistent_menu"),
    ),
    e(
        "pass_thread_control",
        "hand a thread to another app",
        Direct("handover take"),
        Direct("pass_thread_control"),
    ),
    e(
        "take_thread_control",
        "take a thread back",
        Direct("handover release"),
        Direct("take_thread_control"),
    ),
    e(
        "request_thread_control",
        "ask for a thread",
        Direct("handover request"),
        Direct("request_thread_control"),
    ),
];

/// The entry of `action`, if the table has one.
#[must_use]
pub fn entry(action: &str) -> Option<&'static ActionEntry> {
    ACTIONS.iter().find(|e| e.action == action)
}

/// `docs/actions.md`: the table, with a column per connector marking the
/// actions it declares (`connectors` holds each connector's id and action
/// names).
#[must_use]
pub fn markdown(connectors: &[(&str, Vec<String>)]) -> String {
    use std::fmt::Write as _;
    let mut out = String::from(
        "# Actions\n\n\
         Generated from `crates/igdm/src/catalog.rs` (the CLI's tests fail when this file is \
         stale: run `IGDM_BLESS=1 cargo test -p igdm-cli catalog` to rewrite it).\n\n\
         Every action a built-in connector declares, the `igdm` command and the MCP tool that \
         reach it, and the connectors that declare it. Any action also runs by name through \
         the account's limits, pacing and send ledger: `igdm run ACTION --param k=v` \
         (`igdm actions` lists an account's actions with their parameters).\n\n",
    );
    out.push_str("| action | what | CLI | MCP tool |");
    for (id, _) in connectors {
        let _ = write!(out, " {id} |");
    }
    out.push_str("\n| --- | --- | --- | --- |");
    for _ in connectors {
        out.push_str(" --- |");
    }
    out.push('\n');
    for e in ACTIONS {
        let cli = match e.cli {
            Direct(t) => format!("`igdm {t}`"),
            StepOf(t) => format!("step of `igdm {t}`"),
            Not(_) => e.cli.cell(true),
        };
        let _ = write!(out, "| `{}` | {} | {} | {} |", e.action, e.summary, cli, e.mcp.cell(true));
        for (_, actions) in connectors {
            out.push_str(if actions.iter().any(|a| a == e.action) { " ✓ |" } else { " |" });
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_action_is_listed_once() {
        let mut seen = std::collections::HashSet::new();
        for e in ACTIONS {
            assert!(seen.insert(e.action), "{} is listed twice", e.action);
        }
        assert_eq!(entry("send_like").map(|e| e.mcp), Some(Direct("send_like")));
        assert!(entry("no_such_action").is_none());
    }
}
