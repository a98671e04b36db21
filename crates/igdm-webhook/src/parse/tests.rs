use proptest::prelude::*;
use serde_json::json;

use super::*;

fn now() -> Timestamp {
    Timestamp::from_unix_millis(1_800_000_000_000).unwrap()
}

fn one(item: Value) -> ParsedEvent {
    let body = json!({"object": "instagram", "entry": [{"id": "17841400000000001", "time": 1_700_000_000_999_i64, "messaging": [item]}]});
    let mut p = parse_delivery(body.to_string().as_bytes(), now()).unwrap();
    assert_eq!(p.events.len(), 1);
    p.events.remove(0)
}

fn msg(body: Value) -> Value {
    json!({"sender": {"id": "900"}, "recipient": {"id": "17841400000000001"}, "timestamp": 1_700_000_000_123_i64, "message": body})
}

#[test]
fn text_message_is_normalized_with_millisecond_time() {
    let p = one(msg(json!({"mid": "aWdf1", "text": "hi", "quick_reply": {"payload": "YES"}})));
    let e = &p.event;
    assert_eq!(e.kind, EventKind::Message);
    assert_eq!(e.account_id, "17841400000000001");
    assert_eq!(e.conversation_id.as_deref(), Some("900"));
    assert_eq!(e.sender_id.as_deref(), Some("900"));
    assert_eq!(e.recipient_id.as_deref(), Some("17841400000000001"));
    assert_eq!(e.message_id.as_deref(), Some("aWdf1"));
    assert_eq!(e.text.as_deref(), Some("hi"));
    assert_eq!(e.quick_reply_payload.as_deref(), Some("YES"));
    assert_eq!(e.timestamp.to_rfc3339(), "2023-11-14T22:13:20.123Z");
    assert!(!e.is_echo);
    assert_eq!(p.dedup_key, "17841400000000001:message:aWdf1");
}

#[test]
fn echo_belongs_to_the_customer_conversation() {
    let item = json!({"sender": {"id": "17841400000000001"}, "recipient": {"id": "900"}, "timestamp": 5,
        "message": {"mid": "m2", "text": "hello", "is_echo": true}});
    let e = one(item).event;
    assert!(e.is_echo);
    assert_eq!(e.conversation_id.as_deref(), Some("900"));
}

#[test]
fn attachments_reply_and_flags() {
    let p = one(msg(json!({
        "mid": "m3",
        "attachments": [
            {"type": "image", "payload": {"url": "https://cdn/x.jpg"}},
            {"type": "ig_reel", "payload": {"url": "https://cdn/r", "title": "t", "reel_video_id": "1"}},
            {"type": "story_mention", "payload": {"url": "https://cdn/s"}},
            {"type": "ig_post", "payload": {"url": "https://cdn/p", "ig_post_media_id": "55"}},
            {"type": "hologram", "payload": {}}
        ],
        "reply_to": {"story": {"url": "https://cdn/st", "id": "st1"}},
        "is_self": true,
        "is_unsupported": true,
        "referral": {"ref": "r", "source": "ADS", "type": "OPEN_THREAD", "ad_id": "7"}
    })));
    let e = p.event;
    let kinds: Vec<_> = e.attachments.iter().map(|a| a.kind.as_str().to_owned()).collect();
    assert_eq!(kinds, ["image", "share", "story", "share", "hologram"]);
    assert_eq!(e.attachments[0].url.as_deref(), Some("https://cdn/x.jpg"));
    assert_eq!(e.reply_to.unwrap()["story"]["id"], "st1");
    let d = e.details.unwrap();
    assert_eq!(d["is_self"], true);
    assert_eq!(d["is_unsupported"], true);
    assert_eq!(d["referral"]["ad_id"], "7");
    assert_eq!(d["attachments"][1]["type"], "ig_reel");
}

#[test]
fn deletes_edits_reactions_postbacks_reads() {
    let del = one(msg(json!({"mid": "m4", "is_deleted": true})));
    assert_eq!(del.event.kind, EventKind::MessageDeleted);
    assert_eq!(del.dedup_key, "17841400000000001:deleted:m4");

    let edit = one(
        json!({"sender": {"id": "900"}, "recipient": {"id": "17841400000000001"}, "timestamp": 9,
        "message_edit": {"mid": "m4", "text": "new", "num_edit": 2}}),
    );
    assert_eq!(edit.event.kind, EventKind::MessageEdit);
    assert_eq!(edit.event.text.as_deref(), Some("new"));
    assert_eq!(edit.dedup_key, "17841400000000001:edit:m4:2");

    let react = one(
        json!({"sender": {"id": "900"}, "recipient": {"id": "17841400000000001"}, "timestamp": 10,
        "reaction": {"mid": "m4", "action": "react", "reaction": "love", "emoji": "❤️"}}),
    );
    let r = react.event.reaction.clone().unwrap();
    assert_eq!(
        (r.action.as_str(), r.emoji.as_deref(), r.reaction.as_deref()),
        ("react", Some("❤️"), Some("love"))
    );
    let unreact = one(
        json!({"sender": {"id": "900"}, "recipient": {"id": "17841400000000001"}, "timestamp": 11,
        "reaction": {"mid": "m4", "action": "unreact"}}),
    );
    assert_eq!(unreact.event.reaction.unwrap().emoji, None);
    assert_ne!(react.dedup_key, unreact.dedup_key);

    let pb = one(
        json!({"sender": {"id": "900"}, "recipient": {"id": "17841400000000001"}, "timestamp": 12,
        "postback": {"title": "Start", "payload": "GET_STARTED"}}),
    );
    assert_eq!(pb.event.postback.unwrap().payload.as_deref(), Some("GET_STARTED"));
    assert_eq!(pb.dedup_key, "17841400000000001:postback:900:12");

    let seen = one(
        json!({"sender": {"id": "900"}, "recipient": {"id": "17841400000000001"}, "timestamp": 13,
        "read": {"mid": "m4"}}),
    );
    assert_eq!(seen.event.kind, EventKind::Seen);
    assert_eq!(seen.event.message_id.as_deref(), Some("m4"));
}

#[test]
fn handover_referral_optin_and_unknown() {
    let h = one(
        json!({"sender": {"id": "900"}, "recipient": {"id": "17841400000000001"}, "timestamp": 14,
        "pass_thread_control": {"previous_owner_app_id": "1", "new_owner_app_id": "2", "metadata": "m"}}),
    );
    assert_eq!(h.event.kind, EventKind::Handover);
    let d = h.event.details.unwrap();
    assert_eq!(d["action"], "pass_thread_control");
    assert_eq!(d["pass_thread_control"]["new_owner_app_id"], "2");

    let roles = one(
        json!({"recipient": {"id": "17841400000000001"}, "timestamp": 15, "app_roles": {"123": ["primary_receiver"]}}),
    );
    assert_eq!(roles.event.kind, EventKind::Handover);

    let refl = one(
        json!({"sender": {"id": "900"}, "recipient": {"id": "17841400000000001"}, "timestamp": 16,
        "referral": {"ref": "promo", "source": "SHORTLINK", "type": "OPEN_THREAD"}}),
    );
    assert_eq!(refl.event.kind, EventKind::Referral);

    let opt = one(
        json!({"sender": {"id": "900"}, "recipient": {"id": "17841400000000001"}, "timestamp": 17,
        "optin": {"type": "notification_messages", "payload": "x"}}),
    );
    assert_eq!(opt.event.kind, EventKind::Optin);

    let unk = one(
        json!({"sender": {"id": "900"}, "recipient": {"id": "17841400000000001"}, "timestamp": 18, "game_play": {"score": 1}}),
    );
    assert_eq!(unk.event.kind, EventKind::Unknown("game_play".into()));
    assert_eq!(unk.event.details.unwrap()["raw"]["game_play"]["score"], 1);
}

#[test]
fn changes_shape_standby_and_comments() {
    let body = json!({"object": "instagram", "entry": [{
        "id": "17841400000000001", "time": 1_700_000_000_000_i64,
        "standby": [{"sender": {"id": "900"}, "recipient": {"id": "17841400000000001"}, "timestamp": 1, "message": {"mid": "s1", "text": "x"}}],
        "changes": [
            {"field": "messages", "value": {"sender": {"id": "901"}, "recipient": {"id": "17841400000000001"}, "timestamp": 2, "message": {"mid": "c1", "text": "via changes"}}},
            {"field": "comments", "value": {"id": "cm1", "from": {"id": "902", "username": "bob"}, "text": "nice", "media": {"id": "med", "media_product_type": "FEED"}}},
            {"field": "mentions", "value": {"media_id": "med2", "comment_id": "cm2"}},
            {"field": "story_insights", "value": {"media_id": "x", "impressions": 4}}
        ]
    }]});
    let p = parse_delivery(body.to_string().as_bytes(), now()).unwrap();
    let kinds: Vec<_> = p.events.iter().map(|e| e.event.kind.as_str().to_owned()).collect();
    assert_eq!(kinds, ["message", "message", "comment", "mention", "story_insights"]);
    assert_eq!(p.events[0].event.details.as_ref().unwrap()["standby"], true);
    assert_eq!(p.events[1].event.text.as_deref(), Some("via changes"));
    assert_eq!(p.events[2].dedup_key, "17841400000000001:comment:cm1");
    assert_eq!(p.events[2].event.sender_id.as_deref(), Some("902"));
    // A change without its own timestamp takes the entry's time.
    assert_eq!(p.events[2].event.timestamp.unix_millis(), 1_700_000_000_000);
    assert!(!p.events[4].is_known());
}

#[test]
fn malformed_bodies_are_errors_not_panics() {
    assert!(matches!(parse_delivery(b"not json", now()), Err(ParseError::NotJson(_))));
    assert!(matches!(parse_delivery(b"[1,2]", now()), Err(ParseError::NotEnvelope(_))));
    assert!(matches!(
        parse_delivery(br#"{"object":"instagram"}"#, now()),
        Err(ParseError::NotEnvelope(_))
    ));
    let odd = parse_delivery(
        br#"{"entry":[1, {"messaging": 5}, {"id": 12, "changes": [{"field": 3}]}]}"#,
        now(),
    )
    .unwrap();
    assert_eq!(odd.events.len(), 3);
    assert!(odd.events.iter().all(|e| !e.is_known()));
}

#[test]
fn same_item_same_key_numeric_ids_accepted() {
    let a = one(
        json!({"sender": {"id": 900}, "recipient": {"id": 17_841_400_000_000_001_i64}, "timestamp": "20", "read": {"mid": "m"}}),
    );
    let b = one(
        json!({"sender": {"id": "900"}, "recipient": {"id": "17841400000000001"}, "timestamp": 20, "read": {"mid": "m"}}),
    );
    assert_eq!(a.dedup_key, b.dedup_key);
    assert_eq!(a.event.sender_id.as_deref(), Some("900"));
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop::sample::select(vec![
            "message",
            "mid",
            "text",
            "id",
            "sender",
            "recipient",
            "timestamp",
            "entry",
            "messaging",
            "changes",
            "field",
            "value",
            "reaction",
            "read",
            "postback",
            "is_deleted",
            "attachments",
            "type",
            "payload",
        ])
        .prop_map(|s| Value::String(s.to_owned())),
        ".*".prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop::sample::select(vec![
                        "object",
                        "entry",
                        "id",
                        "time",
                        "messaging",
                        "standby",
                        "changes",
                        "field",
                        "value",
                        "sender",
                        "recipient",
                        "timestamp",
                        "message",
                        "mid",
                        "text",
                        "attachments",
                        "type",
                        "payload",
                        "url",
                        "is_echo",
                        "is_deleted",
                        "reaction",
                        "action",
                        "emoji",
                        "postback",
                        "read",
                        "message_edit",
                        "num_edit",
                        "referral",
                        "optin",
                        "reply_to",
                        "quick_reply",
                        "pass_thread_control",
                        "app_roles",
                        "from",
                        "media",
                        "comment_id",
                        "media_id",
                    ]),
                    inner
                ),
                0..8
            )
            .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_delivery(&bytes, now());
    }

    #[test]
    fn never_panics_on_arbitrary_json(v in arb_json()) {
        let body = serde_json::to_vec(&v).unwrap();
        let _ = parse_delivery(&body, now());
        let wrapped = serde_json::to_vec(&json!({"object": "instagram", "entry": [v]})).unwrap();
        let parsed = parse_delivery(&wrapped, now()).unwrap();
        for e in parsed.events {
            prop_assert!(!e.dedup_key.is_empty());
            serde_json::to_value(&e.event).unwrap();
        }
    }
}
