//! Seed 001 (loaded verbatim) runs every one of its 18 actions over real HTTP
//! against a local server answering in Instagram's shapes; the mapped output
//! and the exact requests are checked field by field.

mod common;

use std::sync::Arc;

use common::{Canned, Recorded, TestServer};
use igdm_model::ErrorClass;
use igdm_spec::{Connector, ExecError, Executor, ReqwestTransport, Session};
use serde_json::{Map, Value, json};

const SEED: &str = include_str!("fixtures/seed001.md");
const TID: &str = "340282366841710300949128137443944319108";
const TID2: &str = "340282366841710300949128267004113862656";
const ITEM1: &str = "7312345678901234567";
const ITEM2: &str = "7312345678901234001";
const VIEWER: u64 = 178_612_345;
const DEVICE: &str = "6f1c2a4e-2b1d-4c3e-9a8b-0d1e2f3a4b5c";
const TRICKY: &str = "it's \"quoted\" {{params.text}} | upper & a=b; ❤️";

fn connector() -> Arc<Connector> {
    Arc::new(Connector::load(SEED, "seed001.md").unwrap())
}

fn session() -> Session {
    Session::new()
        .with_cookies([
            ("sessionid", "178612345%3AabcDEF%3A12%3AAYc"),
            ("csrftoken", "csrf-1"),
            ("ds_user_id", "178612345"),
            ("mid", "Z0mid"),
            ("ig_did", "A1B2C3D4-0000-1111-2222-333344445555"),
        ])
        .with_device_uuid(DEVICE)
}

fn params(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

fn users_alice() -> Value {
    json!([{"pk": 5_512_345_678u64, "pk_id": "5512345678", "username": "alice", "full_name": "Alice A", "is_private": false}])
}

fn thread() -> Value {
    json!({
        "thread_id": TID, "thread_v2_id": "17845934823956581", "thread_type": "private",
        "thread_title": "alice", "viewer_id": VIEWER, "users": users_alice(), "read_state": 0,
        "last_activity_at": 1_763_790_000_123_456u64, "has_older": false, "oldest_cursor": "c1",
        "items": [
            {
                "item_id": ITEM1, "user_id": VIEWER, "timestamp": "1763790000123456", "item_type": "text",
                "text": TRICKY, "client_context": "6953110911234567890",
                "replied_to_message": {"item_id": ITEM2, "user_id": 5_512_345_678u64, "text": "hi", "item_type": "text"},
                "reactions": {"likes": [], "likes_count": 0, "emojis": [{"sender_id": 5_512_345_678u64, "timestamp": 1_763_790_001_000_000u64, "emoji": "❤️", "super_react_type": "none"}]}
            },
            {
                "item_id": ITEM2, "user_id": "5512345678", "timestamp": 1_763_789_000_000_000u64, "item_type": "media",
                "media": {"id": "3456789_5512345678", "media_type": 1, "image_versions2": {"candidates": [{"url": "https://scontent.cdninstagram.com/v/t51/abc.jpg", "width": 1080, "height": 1350}]}}
            }
        ]
    })
}

fn inbox() -> Value {
    let mut t1 = thread();
    t1["items"] = json!([{"item_id": ITEM1, "user_id": 5_512_345_678u64, "timestamp": 1_763_790_000_123_456u64, "item_type": "text", "text": "hi"}]);
    json!({
        "viewer": {"pk": VIEWER, "username": "me"},
        "inbox": {
            "threads": [
                t1,
                {
                    "thread_id": TID2, "thread_type": "private", "is_group": true, "thread_title": "Team", "viewer_id": VIEWER,
                    "read_state": 1, "last_activity_at": "1763780000000000",
                    "users": [
                        {"pk": "5512345679", "username": "bob", "full_name": "Bob B"},
                        {"pk": 5_512_345_680u64, "username": "carol", "full_name": "Carol C"}
                    ],
                    "items": [{"item_id": ITEM2, "user_id": "5512345679", "timestamp": "1763780000000000", "item_type": "text", "text": "dinner?"}]
                }
            ],
            "has_older": true, "oldest_cursor": "MTc2Mzc4MDAwMDAwMDAwMA==", "unseen_count": 1
        },
        "seq_id": 1234, "snapshot_at_ms": 1_763_790_001_000u64, "status": "ok"
    })
}

/// Instagram's answers by path.
fn instagram(r: &Recorded) -> Canned {
    let p = r.path.as_str();
    let thread_path = format!("/api/v1/direct_v2/threads/{TID}/");
    match (r.method.as_str(), p) {
        ("GET", "/api/v1/direct_v2/inbox/") => Canned::json(200, inbox())
            .header("x-ig-set-www-claim", "hmac.AR3claim")
            .header("set-cookie", "csrftoken=csrf-2; Domain=.instagram.com; Max-Age=31449600; Path=/; Secure")
            .header("set-cookie", "rur=\"\"; Domain=.instagram.com; expires=Thu, 01-Jan-1970 00:00:00 GMT; Max-Age=0; Path=/")
            .gzip(),
        ("GET", _) if p == thread_path => Canned::json(200, json!({"thread": thread(), "status": "ok"})),
        ("GET", "/api/v1/direct_v2/search_secondary/") => Canned::json(
            200,
            json!({"message_search_results": {"message_search_result_items": [{
                "matched_message_info": {"item_info": {"item_id": ITEM2, "text": "dinner at 8", "timestamp": 1_763_780_000_000_000u64, "user_id": 5_512_345_679u64}},
                "thread": {"thread_id": TID2, "thread_title": "Team"}
            }]}, "status": "ok"}),
        ),
        ("POST", "/api/v1/direct_v2/fetch_and_subscribe_presence/") => Canned::json(
            200,
            json!({"user_presence": {"5512345678": {"is_active": true, "last_activity_at_ms": 1_763_790_000_123u64}}, "status": "ok"}),
        ),
        ("POST", "/api/v1/direct_v2/threads/broadcast/text/") => {
            let cc = r.form_field("client_context").unwrap_or_default();
            let thread_id = if r.form_field("recipient_users").is_some() { TID2 } else { TID };
            Canned::json(
                200,
                json!({"action": "item_ack", "status_code": "200", "payload": {
                    "client_context": cc, "item_id": "7312345678901299999", "timestamp": "1763790005123456", "thread_id": thread_id
                }, "message_metadata": [{"client_context": cc, "item_id": "7312345678901299999", "participant_ids": [5_512_345_678u64]}], "status": "ok"}),
            )
        }
        ("POST", _) if p.starts_with("/api/v1/direct_v2/threads/") => Canned::json(200, json!({"status": "ok"})),
        ("GET", "/api/v1/accounts/current_user/") => {
            Canned::json(200, json!({"user": {"pk": VIEWER, "pk_id": "178612345", "username": "me", "full_name": "Me"}, "status": "ok"}))
        }
        ("GET", "/api/v1/direct_v2/get_presence/") => Canned::json(200, json!({"user_presence": {}, "status": "ok"})),
        _ => Canned::json(404, json!({"message": "unexpected", "status": "fail"})),
    }
}

async fn setup() -> (TestServer, Executor) {
    let server = TestServer::start(instagram).await;
    let exec = Executor::new(connector(), Arc::new(ReqwestTransport::new().unwrap()))
        .with_base_url(Some(server.url()));
    (server, exec)
}

/// Checks the headers every request of the seed carries.
fn assert_common_headers(r: &Recorded, csrf: &str, claim: &str) {
    let cookie = r.header("cookie").unwrap();
    assert!(cookie.contains("sessionid=178612345%3AabcDEF%3A12%3AAYc"), "{cookie}");
    assert!(cookie.contains(&format!("csrftoken={csrf}")), "{cookie}");
    assert!(cookie.contains("ds_user_id=178612345") && cookie.contains("mid=Z0mid"), "{cookie}");
    assert_eq!(r.header("x-csrftoken"), Some(csrf));
    assert_eq!(r.header("x-ig-www-claim"), Some(claim));
    assert_eq!(r.header("x-ig-app-id"), Some("936619743392459"));
    assert_eq!(r.header("x-mid"), Some("Z0mid"));
    assert_eq!(r.header("x-ig-device-id"), Some("A1B2C3D4-0000-1111-2222-333344445555"));
    assert!(r.header("user-agent").unwrap().starts_with("Instagram 275.0.0.27.98 Android"));
    // The seed's `Host: i.instagram.com` contradicts the overridden target: not sent.
    assert!(r.header("host").unwrap().starts_with("127.0.0.1:"), "{:?}", r.header("host"));
}

fn assert_form_post(r: &Recorded, path: &str) {
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, path);
    assert!(r.query.is_empty());
    assert_eq!(r.header("content-type"), Some("application/x-www-form-urlencoded; charset=UTF-8"));
}

fn is_uuid(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok()
}

#[tokio::test]
async fn list_conversations_maps_threads_and_rotates_session() {
    let (server, exec) = setup().await;
    let mut s = session();
    let out = exec.execute("list_conversations", &Map::new(), &mut s).await.unwrap();
    let r = server.last();
    assert_eq!(r.method, "GET");
    assert_eq!(r.path, "/api/v1/direct_v2/inbox/");
    // `selected_filter` renders empty (default "") and is dropped.
    assert_eq!(
        r.query_pairs(),
        [
            ("visual_message_return_type", "unseen"),
            ("thread_message_limit", "10"),
            ("persistentBadging", "true"),
            ("limit", "20")
        ]
    );
    assert_common_headers(&r, "csrf-1", "0");
    assert!(r.body.is_empty());
    assert_eq!(
        out.data,
        json!([
            {
                "id": TID, "type": "direct", "name": "alice",
                "participants": [{"id": 5_512_345_678u64, "name": "Alice A", "handle": "alice"}],
                "unread_count": 0, "updated_at": "2025-11-22T05:40:00.123456Z", "platform": "instagram", "connector": "instagram"
            },
            {
                // Instagram marks groups `private` too; the seed's ternary maps by thread_type only.
                "id": TID2, "type": "direct", "name": "Team",
                "participants": [
                    {"id": "5512345679", "name": "Bob B", "handle": "bob"},
                    {"id": 5_512_345_680u64, "name": "Carol C", "handle": "carol"}
                ],
                "unread_count": 1, "updated_at": "2025-11-22T02:53:20Z", "platform": "instagram", "connector": "instagram"
            }
        ])
    );
    assert!(out.warnings.is_empty(), "{:?}", out.warnings);
    // Response hooks and Set-Cookie rotation updated the session...
    assert_eq!(s.extra("ig_www_claim"), Some("hmac.AR3claim"));
    assert_eq!(s.cookie("csrftoken"), Some("csrf-2"));
    // ...and the next request carries them.
    exec.execute("mute", &params(json!({"conversation_id": TID})), &mut s).await.unwrap();
    assert_common_headers(&server.last(), "csrf-2", "hmac.AR3claim");
    // The raw (gunzipped) body stays available.
    assert_eq!(out.raw_json().unwrap()["seq_id"], 1234);
}

#[tokio::test]
async fn list_conversations_with_filter_and_limit() {
    let (server, exec) = setup().await;
    let mut s = session();
    exec.execute("list_conversations", &params(json!({"limit": 5, "filter": "unread"})), &mut s)
        .await
        .unwrap();
    let r = server.last();
    assert!(r.query_pairs().contains(&("limit", "5")));
    assert!(r.query_pairs().contains(&("selected_filter", "unread")));
}

#[tokio::test]
async fn get_conversation_maps_one_thread() {
    let (server, exec) = setup().await;
    let out = exec
        .execute("get_conversation", &params(json!({"conversation_id": TID})), &mut session())
        .await
        .unwrap();
    let r = server.last();
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("GET", format!("/api/v1/direct_v2/threads/{TID}/").as_str())
    );
    assert_eq!(r.query_pairs(), [("visual_message_return_type", "unseen"), ("limit", "1")]);
    assert_common_headers(&r, "csrf-1", "0");
    assert_eq!(
        out.data,
        json!({
            "id": TID, "type": "direct", "name": "alice",
            "participants": [{"id": 5_512_345_678u64, "name": "Alice A", "handle": "alice"}],
            "updated_at": "2025-11-22T05:40:00.123456Z", "platform": "instagram", "connector": "instagram"
        })
    );
}

#[tokio::test]
async fn list_maps_messages_per_item() {
    let (server, exec) = setup().await;
    let out = exec
        .execute("list", &params(json!({"conversation_id": TID, "limit": 2})), &mut session())
        .await
        .unwrap();
    let r = server.last();
    assert_eq!(r.path, format!("/api/v1/direct_v2/threads/{TID}/"));
    assert_eq!(
        r.query_pairs(),
        [("visual_message_return_type", "unseen"), ("direction", "older"), ("limit", "2")]
    );
    assert_eq!(
        out.data,
        json!([
            {
                "id": ITEM1, "conversation_id": TID, "content": TRICKY, "content_type": "text",
                // user_id is a number, viewer_id a number: same id.
                "sender": {"id": VIEWER, "type": "user", "is_self": true}, "is_outgoing": true,
                "timestamp": "2025-11-22T05:40:00.123456Z",
                "reactions": [{"sender_id": 5_512_345_678u64, "timestamp": 1_763_790_001_000_000u64, "emoji": "❤️", "super_react_type": "none"}],
                "reply_to": {"message_id": ITEM2, "preview": "hi"},
                "attachments": [], "connector": "instagram"
            },
            {
                "id": ITEM2, "conversation_id": TID, "content": null, "content_type": "text",
                // user_id as a string, viewer_id as a number: compared by text.
                "sender": {"id": "5512345678", "type": "user", "is_self": false}, "is_outgoing": false,
                "timestamp": "2025-11-22T05:23:20Z", "reactions": null,
                // Replies to nothing: the nested mapping collapses to null.
                "reply_to": null,
                "attachments": [{"type": "image", "url": "https://scontent.cdninstagram.com/v/t51/abc.jpg", "mime": "image/jpeg"}],
                "connector": "instagram"
            }
        ])
    );
}

#[tokio::test]
async fn list_rejects_limit_over_max_without_sending() {
    let (server, exec) = setup().await;
    let err = exec
        .execute("list", &params(json!({"conversation_id": TID, "limit": 101})), &mut session())
        .await
        .unwrap_err();
    let ExecError::InvalidParams(e) = &err else { panic!("{err:?}") };
    assert_eq!(e.class, ErrorClass::InvalidRequest);
    assert!(e.message.starts_with("limit:") && e.message.contains("100"), "{}", e.message);
    assert!(err.nothing_sent());
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn get_filters_items_by_id() {
    let (server, exec) = setup().await;
    let out = exec
        .execute(
            "get",
            &params(json!({"conversation_id": TID, "message_id": ITEM2})),
            &mut session(),
        )
        .await
        .unwrap();
    let r = server.last();
    assert_eq!(r.query_pairs(), [("visual_message_return_type", "unseen"), ("limit", "50")]);
    assert_eq!(
        out.data,
        json!({
            "id": ITEM2, "conversation_id": TID, "content": null, "content_type": "text",
            "sender": {"id": "5512345678", "type": "user"},
            "timestamp": "2025-11-22T05:23:20Z", "reactions": null, "connector": "instagram"
        })
    );
    // An id that is not in the page: no message, said as a warning.
    let out = exec
        .execute(
            "get",
            &params(json!({"conversation_id": TID, "message_id": "1' or '1'=='1"})),
            &mut session(),
        )
        .await
        .unwrap();
    assert_eq!(out.data, Value::Null);
    assert_eq!(out.warnings, ["the response root is empty"]);
}

#[tokio::test]
async fn search_sends_query_and_maps_results() {
    let (server, exec) = setup().await;
    let out = exec
        .execute("search", &params(json!({"query": "dinner & drinks"})), &mut session())
        .await
        .unwrap();
    let r = server.last();
    assert_eq!(r.path, "/api/v1/direct_v2/search_secondary/");
    assert_eq!(
        r.query_pairs(),
        [
            ("query", "dinner & drinks"),
            ("result_types", "[\"message_content\",\"reshared_content\"]"),
            ("offsets", "{\"message_content\":\"0\",\"reshared_content\":\"\"}")
        ]
    );
    assert_eq!(
        out.data,
        json!([{
            "id": ITEM2, "conversation_id": TID2, "content": "dinner at 8", "content_type": "text",
            "timestamp": "2025-11-22T02:53:20Z", "connector": "instagram"
        }])
    );
}

#[tokio::test]
async fn get_unread_takes_first_item_of_each_thread() {
    let (server, exec) = setup().await;
    let out = exec.execute("get_unread", &Map::new(), &mut session()).await.unwrap();
    let r = server.last();
    assert_eq!(
        r.query_pairs(),
        [
            ("visual_message_return_type", "unseen"),
            ("persistentBadging", "true"),
            ("limit", "20"),
            ("selected_filter", "unread")
        ]
    );
    // Items carry no thread_id on the wire, so the seed's `[].thread_id` is null.
    assert_eq!(
        out.data,
        json!([
            {"id": ITEM1, "conversation_id": null, "content": "hi", "is_read": false, "timestamp": "2025-11-22T05:40:00.123456Z", "connector": "instagram"},
            {"id": ITEM2, "conversation_id": null, "content": "dinner?", "is_read": false, "timestamp": "2025-11-22T02:53:20Z", "connector": "instagram"}
        ])
    );
}

#[tokio::test]
async fn get_presence_posts_ids_as_json() {
    let (server, exec) = setup().await;
    let out = exec
        .execute(
            "get_presence",
            &params(json!({"user_ids": ["5512345678", 5_512_345_679u64]})),
            &mut session(),
        )
        .await
        .unwrap();
    let r = server.last();
    assert_form_post(&r, "/api/v1/direct_v2/fetch_and_subscribe_presence/");
    assert_common_headers(&r, "csrf-1", "0");
    assert_eq!(
        r.form(),
        [
            ("_uuid".to_owned(), DEVICE.to_owned()),
            ("subscriptions_off".to_owned(), "false".to_owned()),
            ("request_data".to_owned(), "[\"5512345678\",\"5512345679\"]".to_owned())
        ]
    );
    // Instagram keys presence by user id (an object); the seed maps it as an
    // array, so every field reads null. The raw body keeps the data.
    assert_eq!(out.data, json!({"user_id": null, "is_active": null, "last_active_at": null}));
    assert_eq!(out.raw_json().unwrap()["user_presence"]["5512345678"]["is_active"], true);
}

#[tokio::test]
async fn send_posts_form_and_round_trips_text() {
    let (server, exec) = setup().await;
    let out = exec
        .execute("send", &params(json!({"conversation_id": TID, "text": TRICKY})), &mut session())
        .await
        .unwrap();
    let r = server.last();
    assert_form_post(&r, "/api/v1/direct_v2/threads/broadcast/text/");
    assert_common_headers(&r, "csrf-1", "0");
    let form = r.form();
    let names: Vec<&str> = form.iter().map(|(k, _)| k.as_str()).collect();
    // No reply_to: both optional reply fields are dropped.
    assert_eq!(
        names,
        [
            "thread_ids",
            "text",
            "action",
            "send_attribution",
            "client_context",
            "mutation_token",
            "_uuid",
            "offline_threading_id"
        ]
    );
    assert_eq!(r.form_field("thread_ids").unwrap(), format!("[{TID}]"));
    assert_eq!(r.form_field("text").unwrap(), TRICKY);
    assert_eq!(r.form_field("action").unwrap(), "send_item");
    assert_eq!(r.form_field("send_attribution").unwrap(), "message_button");
    assert_eq!(r.form_field("_uuid").unwrap(), DEVICE);
    for k in ["client_context", "mutation_token", "offline_threading_id"] {
        assert!(is_uuid(&r.form_field(k).unwrap()), "{k}");
    }
    assert_eq!(
        out.data,
        json!({
            "id": "7312345678901299999", "conversation_id": TID, "content": TRICKY, "content_type": "text",
            "is_outgoing": true, "timestamp": "2025-11-22T05:40:05.123456Z", "connector": "instagram"
        })
    );
}

#[tokio::test]
async fn send_reply_adds_reply_fields() {
    let (server, exec) = setup().await;
    exec.execute(
        "send",
        &params(json!({"conversation_id": TID, "text": "yes", "reply_to": ITEM2})),
        &mut session(),
    )
    .await
    .unwrap();
    let r = server.last();
    assert_eq!(r.form_field("replied_to_item_id").unwrap(), ITEM2);
    assert_eq!(r.form_field("replied_to_action_source").unwrap(), "swipe");
}

#[tokio::test]
async fn send_without_text_is_rejected_before_sending() {
    let (server, exec) = setup().await;
    let err = exec
        .execute("send", &params(json!({"conversation_id": TID})), &mut session())
        .await
        .unwrap_err();
    let ExecError::InvalidParams(e) = err else { panic!() };
    assert_eq!(e.message, "text: is required");
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn send_to_user_uses_nested_recipient_list() {
    let (server, exec) = setup().await;
    let out = exec
        .execute(
            "send_to_user",
            &params(json!({"user_id": "5512345679", "text": "Hey!"})),
            &mut session(),
        )
        .await
        .unwrap();
    let r = server.last();
    assert_form_post(&r, "/api/v1/direct_v2/threads/broadcast/text/");
    assert_eq!(r.form_field("recipient_users").unwrap(), "[[5512345679]]");
    assert_eq!(r.form_field("text").unwrap(), "Hey!");
    assert!(r.form_field("thread_ids").is_none());
    assert_eq!(
        out.data,
        json!({"id": "7312345678901299999", "conversation_id": TID2, "content": "Hey!", "is_outgoing": true, "connector": "instagram"})
    );
}

#[tokio::test]
async fn react_and_unreact() {
    let (server, exec) = setup().await;
    let p = params(json!({"conversation_id": TID, "message_id": ITEM1, "emoji": "❤️"}));
    let out = exec.execute("react", &p, &mut session()).await.unwrap();
    let r = server.last();
    assert_form_post(&r, &format!("/api/v1/direct_v2/threads/{TID}/items/{ITEM1}/reactions/"));
    assert_eq!(r.form_field("reaction_status").unwrap(), "created");
    assert_eq!(r.form_field("reaction_type").unwrap(), "like");
    assert_eq!(r.form_field("emoji").unwrap(), "❤️");
    assert!(is_uuid(&r.form_field("client_context").unwrap()));
    assert_eq!(r.form_field("_uuid").unwrap(), DEVICE);
    assert_eq!(out.data, json!({"success": true}));

    let out = exec
        .execute(
            "unreact",
            &params(json!({"conversation_id": TID, "message_id": ITEM1})),
            &mut session(),
        )
        .await
        .unwrap();
    let r = server.last();
    assert_form_post(&r, &format!("/api/v1/direct_v2/threads/{TID}/items/{ITEM1}/reactions/"));
    assert_eq!(r.form_field("reaction_status").unwrap(), "deleted");
    assert!(r.form_field("emoji").is_none());
    assert_eq!(out.data, json!({"success": true}));
}

#[tokio::test]
async fn mark_read_sends_thread_and_action() {
    let (server, exec) = setup().await;
    let out = exec
        .execute(
            "mark_read",
            &params(json!({"conversation_id": TID, "message_id": ITEM1})),
            &mut session(),
        )
        .await
        .unwrap();
    let r = server.last();
    assert_form_post(&r, &format!("/api/v1/direct_v2/threads/{TID}/items/{ITEM1}/seen/"));
    assert_eq!(r.form_field("thread_id").unwrap(), TID);
    assert_eq!(r.form_field("action").unwrap(), "mark_seen");
    assert_eq!(out.data, json!({"success": true}));
}

/// Action, params, expected path, expected form fields besides `_uuid`.
type Case = (&'static str, Value, String, Vec<(&'static str, &'static str)>);

#[tokio::test]
async fn thread_management_actions() {
    let (server, exec) = setup().await;
    let cases: [Case; 7] = [
        (
            "mark_unread",
            json!({"conversation_id": TID}),
            format!("/api/v1/direct_v2/threads/{TID}/mark_unread/"),
            vec![],
        ),
        (
            "delete",
            json!({"conversation_id": TID, "message_id": ITEM1}),
            format!("/api/v1/direct_v2/threads/{TID}/items/{ITEM1}/delete/"),
            vec![],
        ),
        (
            "mute",
            json!({"conversation_id": TID}),
            format!("/api/v1/direct_v2/threads/{TID}/mute/"),
            vec![],
        ),
        (
            "unmute",
            json!({"conversation_id": TID}),
            format!("/api/v1/direct_v2/threads/{TID}/unmute/"),
            vec![],
        ),
        (
            "archive",
            json!({"conversation_id": TID}),
            format!("/api/v1/direct_v2/threads/{TID}/hide/"),
            vec![("should_move_future_requests_to_spam", "false")],
        ),
        (
            "send_typing",
            json!({"conversation_id": TID}),
            format!("/api/v1/direct_v2/threads/{TID}/activity/"),
            vec![("activity_status", "1")],
        ),
        (
            "mute",
            json!({"conversation_id": TID2}),
            format!("/api/v1/direct_v2/threads/{TID2}/mute/"),
            vec![],
        ),
    ];
    for (action, p, path, extra) in cases {
        let out = exec.execute(action, &params(p), &mut session()).await.unwrap();
        let r = server.last();
        assert_form_post(&r, &path);
        assert_common_headers(&r, "csrf-1", "0");
        let mut want = vec![("_uuid".to_owned(), DEVICE.to_owned())];
        want.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        assert_eq!(r.form(), want, "{action}");
        assert_eq!(out.data, json!({"success": true}), "{action}");
    }
}

#[tokio::test]
async fn ids_with_url_characters_stay_inside_their_path_segment() {
    let (server, exec) = setup().await;
    exec.execute(
        "mute",
        &params(json!({"conversation_id": "../../accounts/x?y=1"})),
        &mut session(),
    )
    .await
    .unwrap();
    assert_eq!(
        server.last().path,
        "/api/v1/direct_v2/threads/..%2F..%2Faccounts%2Fx%3Fy%3D1/mute/"
    );
}

#[tokio::test]
async fn validate_and_keep_alive_probes_use_the_override() {
    let server = TestServer::start(|r: &Recorded| {
        let mut r = r.clone();
        r.path = r.path.strip_prefix("/prefix").unwrap_or("/not-prefixed").to_owned();
        instagram(&r)
    })
    .await;
    let base = server.url().join("/prefix/").unwrap();
    let exec = Executor::new(connector(), Arc::new(ReqwestTransport::new().unwrap()))
        .with_base_url(Some(base));
    let mut s = session();
    let out = exec.validate(&mut s).await.unwrap();
    let r = server.last();
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("GET", "/prefix/api/v1/accounts/current_user/")
    );
    assert_eq!(r.query_pairs(), [("edit", "true")]);
    assert_common_headers(&r, "csrf-1", "0");
    assert_eq!(out.data, json!({"user_id": VIEWER, "username": "me"}));
    exec.keep_alive(&mut s).await.unwrap();
    assert_eq!(server.last().path, "/prefix/api/v1/direct_v2/get_presence/");
    exec.execute("mute", &params(json!({"conversation_id": TID})), &mut s).await.unwrap();
    assert_eq!(server.last().path, format!("/prefix/api/v1/direct_v2/threads/{TID}/mute/"));
}

#[tokio::test]
async fn validate_maps_on_error_statuses() {
    let server = TestServer::start(|_| Canned::raw(401, "text/plain", "")).await;
    let exec = Executor::new(connector(), Arc::new(ReqwestTransport::new().unwrap()))
        .with_base_url(Some(server.url()));
    let err = exec.validate(&mut session()).await.unwrap_err();
    let ExecError::Api(e) = err else { panic!("{err:?}") };
    assert_eq!(e.class, ErrorClass::AuthExpired);
    assert_eq!(e.provider.unwrap().code.as_deref(), Some("reconnect_required"));
}

#[tokio::test]
async fn missing_cookies_fail_before_sending() {
    let (server, exec) = setup().await;
    let mut s = Session::new().with_cookies([("sessionid", "x"), ("csrftoken", "y")]);
    let err = exec.execute("list_conversations", &Map::new(), &mut s).await.unwrap_err();
    let ExecError::MissingCredentials(e) = err else { panic!() };
    assert!(e.message.contains("ds_user_id, mid, ig_did"), "{}", e.message);
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn bad_enum_and_unknown_params_are_rejected_before_sending() {
    let (server, exec) = setup().await;
    let err = exec
        .execute("list_conversations", &params(json!({"filter": "spam"})), &mut session())
        .await
        .unwrap_err();
    let ExecError::InvalidParams(e) = err else { panic!() };
    assert!(e.message.starts_with("filter:") && e.message.contains("\"unread\""), "{}", e.message);
    let err = exec
        .execute("list_conversations", &params(json!({"limt": 5})), &mut session())
        .await
        .unwrap_err();
    let ExecError::InvalidParams(e) = err else { panic!() };
    assert!(e.message.starts_with("limt: unknown parameter"), "{}", e.message);
    let err = exec
        .execute("list_conversations", &params(json!({"limit": 51})), &mut session())
        .await
        .unwrap_err();
    assert!(matches!(err, ExecError::InvalidParams(_)));
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn seed_error_detection_classifies_login_and_challenge() {
    let server = TestServer::start(|r: &Recorded| {
        if r.path.ends_with("/inbox/") {
            Canned::json(403, json!({"message": "login_required", "logout_reason": 2, "status": "fail"}))
        } else {
            Canned::json(
                400,
                json!({"message": "challenge_required", "challenge": {"url": "https://i.instagram.com/challenge/123/abc/", "api_path": "/challenge/123/abc/", "lock": true}, "status": "fail", "error_type": "checkpoint_challenge_required"}),
            )
        }
    })
    .await;
    let exec = Executor::new(connector(), Arc::new(ReqwestTransport::new().unwrap()))
        .with_base_url(Some(server.url()));
    let ExecError::Api(e) =
        exec.execute("list_conversations", &Map::new(), &mut session()).await.unwrap_err()
    else {
        panic!()
    };
    assert_eq!(e.class, ErrorClass::AuthExpired);
    assert_eq!(e.provider.as_ref().unwrap().status, Some(403));
    let ExecError::Api(e) = exec
        .execute("mute", &params(json!({"conversation_id": TID})), &mut session())
        .await
        .unwrap_err()
    else {
        panic!()
    };
    assert_eq!(e.class, ErrorClass::Challenge);
    assert_eq!(e.url.as_deref(), Some("https://i.instagram.com/challenge/123/abc/"));
}

#[test]
fn print_request_redacts_credentials() {
    let exec = Executor::new(connector(), Arc::new(ReqwestTransport::new().unwrap()));
    let req = exec
        .build_request("send", &params(json!({"conversation_id": TID, "text": "hi"})), &session())
        .unwrap();
    assert_eq!(
        req.url.as_str(),
        "https://i.instagram.com/api/v1/direct_v2/threads/broadcast/text/"
    );
    // Without an override the seed's Host matches the target and is kept.
    assert_eq!(req.headers.get("host").unwrap(), "i.instagram.com");
    let printed = format!("{req:?}");
    assert!(!printed.contains("178612345%3AabcDEF") && !printed.contains("csrf-1"), "{printed}");
    let shown = req.redacted_headers();
    assert!(shown.contains(&("cookie".to_owned(), "<redacted>".to_owned())));
}

#[tokio::test]
async fn a_built_request_is_sent_as_built() {
    let (server, exec) = setup().await;
    let mut s = session();
    let p = params(json!({"conversation_id": TID, "text": "hello"}));
    let req = exec.build_request("send", &p, &s).unwrap();
    let token = req.form_fields().into_iter().find(|(k, _)| k == "client_context").unwrap().1;
    let out = exec.send_built("send", &p, req, &mut s).await.unwrap();
    assert_eq!(server.last().form_field("client_context").unwrap(), token);
    assert_eq!(out.raw_json().unwrap()["payload"]["client_context"], json!(token));
    assert_eq!(out.data["content"], "hello");
}

#[tokio::test]
async fn a_deleted_sessionid_marks_the_session_invalidated() {
    let server = TestServer::start(|_| {
        Canned::json(403, json!({"message": "login_required", "logout_reason": 8, "status": "fail"}))
            .header("set-cookie", "sessionid=\"\"; Domain=.instagram.com; expires=Thu, 01-Jan-1970 00:00:00 GMT; Max-Age=0; Path=/")
    })
    .await;
    let exec = Executor::new(connector(), Arc::new(ReqwestTransport::new().unwrap()))
        .with_base_url(Some(server.url()));
    let mut s = session();
    let before = s.revision();
    let err = exec.keep_alive(&mut s).await.unwrap_err();
    let ExecError::Api(e) = err else { panic!("{err:?}") };
    // keep_alive's on_error maps 403 to mark_disconnected, an auth_expired outcome.
    assert_eq!(e.class, ErrorClass::AuthExpired);
    assert_eq!(e.provider.unwrap().code.as_deref(), Some("mark_disconnected"));
    assert!(s.invalidated());
    assert_eq!(s.cookie("sessionid"), None);
    assert!(s.revision() > before);
}
