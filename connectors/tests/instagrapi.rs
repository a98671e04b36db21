//! instagrapi as an independent oracle for the private API: the same inbox
//! and thread bodies (every one the sandbox serves for the demo seed, plus
//! `connectors/fixtures/private/`, one item per item type) go through
//! igdm's `instagram-web` mapping and through instagrapi's
//! `extract_direct_thread` / `extract_direct_message`, and the two readings
//! are compared field by field. Deliberate differences are listed in
//! `docs/wire-fidelity.md`; a body instagrapi's models reject is a bug of
//! whoever produced it.
//!
//! instagrapi (pinned) lives in a virtual environment under `target/`, which
//! `scripts/test` creates; `IGDM_INSTAGRAPI_PYTHON` names another interpreter.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use common::{Harness, Recording};
use igdm_model::Timestamp;
use igdm_spec::{Connector, Executor, ReqwestTransport};
use serde_json::{Map, Value, json};

fn web_connector() -> Connector {
    Connector::load(igdm_connectors::by_id("instagram-web").expect("web"), "instagram-web.md")
        .expect("loads")
}

/// What instagrapi read, by running the oracle script over `bodies`.
fn instagrapi_reads(python: &Path, bodies: &[Value]) -> Value {
    let mut child = Command::new(python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/instagrapi_oracle.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python starts");
    let input = serde_json::to_vec(bodies).expect("json");
    child.stdin.take().expect("stdin").write_all(&input).expect("write");
    let out = child.wait_with_output().expect("python ends");
    assert!(out.status.success(), "the oracle failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("oracle JSON")
}

/// The content type igdm must give each item type instagrapi reports
/// (Instagram's item-type groups: media, shares, XMA, system).
fn expected_content_type(item_type: &str, media_type: Option<i64>) -> &'static str {
    match item_type {
        "text" => "text",
        "link" => "link",
        "like" => "like_heart",
        "media" | "raven_media" | "visual_media" if media_type == Some(2) => "video",
        "media" | "raven_media" | "visual_media" | "animated_media" => "image",
        "voice_media" => "voice",
        "static_sticker" => "sticker",
        "media_share" | "xma_media_share" | "felix_share" => "media_share",
        "clip" | "xma_clip" | "reel_share" | "xma_reel_share" => "reel_share",
        "story_share" | "xma_story_share" => "story_reply",
        "xma_reel_mention" => "story_mention",
        "action_log" | "video_call_event" => "system",
        "reaction_log" => "reaction",
        "placeholder" | "expired_placeholder" => "unsupported",
        _ => "other",
    }
}

/// The raw items of the bodies, by item id (for µs timestamps and media types).
fn raw_items(bodies: &[Value]) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for b in bodies {
        let threads: Vec<&Value> = match b["kind"].as_str() {
            Some("inbox") => b["body"]["inbox"]["threads"].as_array().map(|a| a.iter().collect()),
            _ => Some(vec![&b["body"]["thread"]]),
        }
        .unwrap_or_default();
        for t in threads {
            for it in t["items"].as_array().map_or(&[][..], Vec::as_slice) {
                let id =
                    it["item_id"].as_str().map_or_else(|| it["item_id"].to_string(), str::to_owned);
                out.insert(id, it.clone());
            }
        }
    }
    out
}

fn micros(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// Field-by-field differences between igdm's messages and instagrapi's reading.
fn compare(bodies: &[Value], igdm: &BTreeMap<String, Value>, oracle: &Value) -> Vec<String> {
    let raw = raw_items(bodies);
    let mut diffs = Vec::new();
    let mut seen = BTreeSet::new();
    for g in oracle["messages"].as_array().map_or(&[][..], Vec::as_slice) {
        let id = g["item_id"].as_str().unwrap_or_default().to_owned();
        if let Some(e) = g["error"].as_str() {
            diffs.push(format!("{id}: instagrapi rejects the item: {e}"));
            continue;
        }
        let Some(m) = igdm.get(&id) else {
            diffs.push(format!("{id}: instagrapi reads an item igdm did not map"));
            continue;
        };
        seen.insert(id.clone());
        let label = format!("{id} ({})", g["item_type"]);
        let differ = |diffs: &mut Vec<String>, what: &str, ours: &Value, theirs: &Value| {
            if ours != theirs {
                diffs.push(format!("{label}: {what}: igdm {ours}, instagrapi {theirs}"));
            }
        };
        differ(&mut diffs, "user id", &m["sender"]["id"], &g["user_id"]);
        let ts = m["timestamp"].as_str().and_then(Timestamp::parse).map(|t| t.unix_micros());
        differ(
            &mut diffs,
            "timestamp (s)",
            &json!(ts.map(|us| us.div_euclid(1_000_000))),
            &g["seconds"],
        );
        let raw_item = raw.get(&id).cloned().unwrap_or(Value::Null);
        differ(
            &mut diffs,
            "timestamp (µs, raw)",
            &json!(ts),
            &json!(micros(&raw_item["timestamp"])),
        );
        let item_type = g["item_type"].as_str().unwrap_or_default();
        let media_type = raw_item["media"]["media_type"]
            .as_i64()
            .or_else(|| raw_item["visual_media"]["media"]["media_type"].as_i64());
        differ(
            &mut diffs,
            "content type",
            &m["content_type"],
            &json!(expected_content_type(item_type, media_type)),
        );
        match item_type {
            "link" => differ(&mut diffs, "link text", &m["text"], &g["link_text"]),
            "text" => differ(&mut diffs, "text", &m["text"], &g["text"]),
            _ => {}
        }
        // igdm keeps the playable media (the video of a video, not its preview
        // image); instagrapi keeps both. Each of igdm's URLs must be one of
        // instagrapi's, and igdm must keep one when instagrapi has any.
        let ours: BTreeSet<String> = m["attachments"]
            .as_array()
            .map(|a| a.iter().filter_map(|x| x["url"].as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        let theirs: BTreeSet<String> = g["media_urls"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
            .unwrap_or_default();
        if !theirs.is_empty() && (ours.is_empty() || !ours.is_subset(&theirs)) {
            diffs.push(format!(
                "{id} ({item_type}): media URLs igdm {ours:?}, instagrapi {theirs:?}"
            ));
        }
        let mut reactions: Vec<Value> = m["reactions"]
            .as_array()
            .map(|a| a.iter().map(|r| json!([r["sender_id"], r["emoji"]])).collect())
            .unwrap_or_default();
        reactions.sort_by_key(ToString::to_string);
        let mut theirs: Vec<Value> = g["reactions"].as_array().cloned().unwrap_or_default();
        theirs.sort_by_key(ToString::to_string);
        differ(&mut diffs, "reactions", &json!(reactions), &json!(theirs));
        differ(&mut diffs, "replied-to id", &m["reply_to"]["message_id"], &g["reply_id"]);
    }
    for id in igdm.keys() {
        if raw.contains_key(id) && !seen.contains(id) {
            diffs.push(format!("{id}: igdm mapped an item instagrapi did not read"));
        }
    }
    diffs
}

/// igdm's messages by id, as the typed model reads them (ids as strings).
fn index(messages: &Value, into: &mut BTreeMap<String, Value>) {
    let typed: Vec<igdm_model::Message> =
        serde_json::from_value(messages.clone()).expect("igdm messages");
    for m in typed {
        into.insert(m.id.as_str().to_owned(), serde_json::to_value(&m).expect("JSON"));
    }
}

/// igdm's and instagrapi's readings of threads: ids, participants, seen state.
fn compare_threads(igdm: &BTreeMap<String, Value>, oracle: &Value, viewer: &str) -> Vec<String> {
    let mut diffs = Vec::new();
    for t in oracle["threads"].as_array().map_or(&[][..], Vec::as_slice) {
        let id = t["thread_id"].as_str().unwrap_or_default();
        if let Some(e) = t["error"].as_str() {
            diffs.push(format!("thread {id}: instagrapi rejects it: {e}"));
            continue;
        }
        let Some(c) = igdm.get(id) else { continue };
        let ours: BTreeSet<String> = c["participants"]
            .as_array()
            .map(|a| a.iter().filter_map(|p| p["id"].as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        let theirs: BTreeSet<String> = t["user_ids"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .filter(|u| u != viewer)
                    .collect()
            })
            .unwrap_or_default();
        if ours != theirs {
            diffs.push(format!("thread {id}: participants igdm {ours:?}, instagrapi {theirs:?}"));
        }
        // Seen state: the thread is unread for the viewer exactly when the viewer's
        // last-seen item is not the newest item.
        let newest = t["item_ids"][0].as_str();
        let seen_by_viewer = t["seen"][viewer].as_str();
        if let (Some(newest), Some(unread)) = (newest, c["unread_count"].as_u64()) {
            let caught_up = seen_by_viewer == Some(newest);
            if caught_up != (unread == 0) {
                diffs.push(format!("thread {id}: unread_count {unread}, but the viewer's last seen item is {seen_by_viewer:?} and the newest {newest}"));
            }
        }
    }
    diffs
}

#[tokio::test]
async fn instagrapi_reads_the_sandbox_and_the_fixtures_as_igdm_does() {
    let test = "instagrapi_reads_the_sandbox_and_the_fixtures_as_igdm_does";
    let Some(python) = igdm_test::prereq::instagrapi(test) else { return };
    let h = Harness::start().await;
    let recorded = Arc::new(Mutex::new(Vec::new()));
    let transport = Recording {
        inner: ReqwestTransport::new().expect("transport"),
        bodies: Arc::clone(&recorded),
    };
    let exec = Executor::new(Arc::new(web_connector()), Arc::new(transport))
        .with_base_url(Some(url::Url::parse(&h.base_url()).expect("url")));
    let mut session = Harness::web_session(&h.seed.personal);
    let last_body = || -> Value {
        let b = recorded.lock().expect("lock").last().cloned().expect("a response");
        serde_json::from_slice(&b).expect("JSON body")
    };

    let mut bodies = Vec::new();
    let mut messages = BTreeMap::new();
    let mut conversations = BTreeMap::new();
    for action in ["list_conversations", "list_pending"] {
        let out =
            common::run(&exec, &mut session, action, json!({"limit": 20})).await.expect(action);
        bodies.push(json!({"kind": "inbox", "body": last_body()}));
        for c in out.data.as_array().map_or(&[][..], Vec::as_slice) {
            let id = c["id"].as_str().expect("id").to_owned();
            conversations.insert(id.clone(), c.clone());
            let out = common::run(&exec, &mut session, "list", json!({"conversation_id": id}))
                .await
                .expect("list");
            bodies.push(json!({"kind": "thread", "body": last_body()}));
            index(&out.data, &mut messages);
        }
    }
    assert!(conversations.len() >= 3, "the demo seed has threads: {conversations:?}");

    // One item per item type, from fixtures.
    let connector = web_connector();
    for (name, f) in igdm_test::fixtures::load("private") {
        let body = &f["body"];
        let id =
            body["thread"]["thread_id"].as_str().unwrap_or_else(|| panic!("{name}: thread_id"));
        let params: Map<String, Value> =
            [("conversation_id".to_owned(), json!(id))].into_iter().collect();
        let bytes = serde_json::to_vec(body).expect("json");
        let out =
            connector.map_body("list", &params, &bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        index(&out.data, &mut messages);
        bodies.push(json!({"kind": "thread", "body": body}));
    }

    let oracle = instagrapi_reads(&python, &bodies);
    let read = oracle["messages"].as_array().map_or(0, Vec::len);
    assert!(read >= 40, "instagrapi read only {read} items");
    let viewer = h.seed.personal["pk"]
        .as_str()
        .map_or_else(|| h.seed.personal["pk"].to_string(), str::to_owned);
    let mut diffs = compare(&bodies, &messages, &oracle);
    diffs.extend(compare_threads(&conversations, &oracle, &viewer));
    assert!(
        diffs.is_empty(),
        "{} differences between igdm and instagrapi:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}
