//! Every embedded connector loads, and declares what igdm's clients rely on:
//! the shared action names, the capability vocabulary, error tables, pacing
//! and rate limits.

use std::time::Duration;

use igdm_spec::Connector;

/// Actions every connector has under the same name and meaning.
const SHARED: &[&str] = &[
    "list_conversations",
    "get_conversation",
    "list",
    "get",
    "send",
    "send_to_user",
    "send_like",
    "media_share",
    "react",
    "unreact",
    "mark_read",
    "send_typing",
];

/// The engine's normalized capability names; every connector says yes or no.
const VOCABULARY: &[&str] = &[
    "list_conversations",
    "get_conversation",
    "list_messages",
    "get_message",
    "search",
    "send_text",
    "send_media",
    "reply",
    "react",
    "unreact",
    "mark_read",
    "mark_unread",
    "unsend",
    "mute",
    "unmute",
    "archive",
    "typing",
    "presence",
];

fn load(id: &str) -> Connector {
    let text = igdm_connectors::by_id(id).unwrap();
    Connector::load(text, &format!("{id}.md")).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn every_connector_loads_with_shared_names_and_capabilities() {
    for (id, _) in igdm_connectors::all() {
        let c = load(id);
        assert_eq!(c.id, *id);
        assert!(!c.classifier().rules.is_empty(), "{id} declares an error table");
        for action in SHARED {
            assert!(c.action(action).is_some(), "{id} lacks the shared action {action}");
        }
        let caps = c.capabilities.as_ref().unwrap();
        assert!(caps.version.as_deref().unwrap().ends_with(id));
        for name in VOCABULARY {
            assert!(caps.actions.contains_key(*name), "{id}: capability {name} undeclared");
        }
        for action in c.actions() {
            let named = caps.actions.iter().any(|(k, cap)| {
                cap.supported && cap.action.as_deref().unwrap_or(k) == action.name()
            });
            assert!(named, "{id}: action {} is not listed as a capability", action.name());
        }
        for read in ["list_conversations", "list", "get", "get_conversation"] {
            assert!(c.action(read).unwrap().readonly(), "{id}: {read} is a read");
            assert!(c.action(read).unwrap().has_page() || !read.starts_with("list"));
        }
        assert!(!c.action("send").unwrap().readonly());
    }
}

#[test]
fn web_declares_pacing_and_official_apis_declare_rate_limits() {
    let web = load("instagram-web");
    let p = web.pacing.as_ref().unwrap();
    assert_eq!(p.write_min_interval, Some(Duration::from_secs(4)));
    assert!(p.write_jitter.is_some());
    assert_eq!((p.writes_per_hour, p.writes_per_day), (Some(60), Some(300)));
    assert_eq!(p.concurrency, Some(1));
    assert!(p.action_block_cooldown.is_some());

    for id in ["instagram-graph", "instagram-page"] {
        let c = load(id);
        let per_second = |bucket: &str| c.rate_limits[bucket].per_second;
        assert_eq!(per_second("send_text"), Some(300.0));
        assert_eq!(per_second("send_audio_video"), Some(10.0));
        assert_eq!(per_second("conversations"), Some(2.0));
        assert!(c.rate_limits["send_text"].applies("send", false));
        assert!(c.rate_limits["send_audio_video"].applies("send_video", false));
        assert!(!c.rate_limits["send_text"].applies("send_video", false));
        assert!(c.rate_limits["conversations"].applies("list", true));
        let limits = c.limits.as_ref().unwrap();
        assert_eq!(limits.text_max_bytes, Some(1000));
        assert_eq!(limits.history_max_messages, Some(20));
        assert_eq!(c.action("send").unwrap().params()["text"].max_bytes, Some(1000));
        assert_eq!(
            c.action("send_quick_replies").unwrap().params()["quick_replies"].max_length,
            Some(13)
        );
    }
    assert!(load("instagram-page").action("pass_thread_control").is_some());
    assert!(load("instagram-graph").action("pass_thread_control").is_none());
}

/// Capabilities say whether a public source confirms their endpoint: on the
/// private API typing over HTTP is unconfirmed (Instagram's apps send it over
/// realtime), every other offered capability calls a confirmed endpoint, and
/// an unverified one says why.
#[test]
fn capabilities_say_what_is_verified() {
    for id in ["instagram-web", "instagram-graph", "instagram-page"] {
        let c = Connector::load(igdm_connectors::by_id(id).unwrap(), id).unwrap();
        let caps = c.capabilities.as_ref().unwrap();
        let unverified: Vec<&str> = caps
            .actions
            .iter()
            .filter(|(_, cap)| cap.supported && !cap.verified)
            .map(|(name, _)| name.as_str())
            .collect();
        let expected: &[&str] = if id == "instagram-web" { &["typing"] } else { &[] };
        assert_eq!(unverified, expected, "{id}");
        for name in unverified {
            let note = caps.actions[name].note.as_deref().unwrap_or_default();
            assert!(note.contains("public source"), "{id} {name}: say why: {note:?}");
        }
    }
}
