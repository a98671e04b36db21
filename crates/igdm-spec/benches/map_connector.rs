//! Maps a whole Instagram-shaped read through the shipped `instagram-web`
//! connector: one inbox page of 50 threads with 20 mixed items each
//! (`list_conversations`) and the 50 thread bodies (`list` on each, 1,000
//! messages), next to plain parses of the same bytes as baselines.
//!
//! Every variant runs once per round, interleaved, so the ratios come from the
//! same machine load; the table gives medians. The bytes are written to
//! `target/bench-data/mapping/` for `scripts/bench-instagrapi`, which runs
//! instagrapi's extractors on the very same files.
//!
//! `cargo bench -p igdm-spec --bench map_connector` (rounds: `BENCH_ROUNDS`,
//! default 40).

use std::alloc::System;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use igdm_spec::Connector;
use serde_json::{Map, Value, json};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

const WEB: &str = include_str!("../../../connectors/instagram-web.md");
const THREADS: u64 = 50;
const ITEMS: u64 = 20;
const VIEWER: u64 = 178_612_345;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn cdn(kind: &str, t: u64, i: u64) -> String {
    format!(
        "https://scontent-cdg4-1.cdninstagram.com/v/t51.2885-15/{kind}_{t}_{i}_n.jpg?stp=dst-jpg_e35_p1080x1080&_nc_ht=scontent-cdg4-1.cdninstagram.com&_nc_cat=1&_nc_ohc=Qx7ZbYh2abcQ7kNvgE&edm=AI8qBrIBAAAA&oh=00_AYD{t}{i}&oe=67600000"
    )
}

fn image_media(t: u64, i: u64) -> Value {
    json!({
        "id": format!("3{:018}_{}", t * 100 + i, 5_512_345_000 + t),
        "media_type": 1,
        "image_versions2": {"candidates": [
            {"width": 1080, "height": 1350, "url": cdn("img", t, i), "scans_profile": "e35"},
            {"width": 640, "height": 800, "url": cdn("img640", t, i), "scans_profile": "e35"},
            {"width": 320, "height": 400, "url": cdn("img320", t, i), "scans_profile": "e35"}
        ]},
        "pk": 3_000_000_000_000_000_000u64 + t * 100 + i, "code": format!("C{t}x{i}"),
        "taken_at": 1_763_700_000 + t * 100 + i, "like_count": 12 + i, "user": owner(t), "caption": null,
        "original_width": 1080, "original_height": 1350, "organic_tracking_token": "eyJ2ZXJzaW9uIjo1fQ=="
    })
}

fn video_media(t: u64, i: u64) -> Value {
    let mut m = image_media(t, i);
    m["media_type"] = json!(2);
    m["video_versions"] = json!([
        {"type": 101, "width": 720, "height": 1280, "url": cdn("vid", t, i), "id": format!("{}101", t * 100 + i)},
        {"type": 102, "width": 480, "height": 854, "url": cdn("vid480", t, i), "id": format!("{}102", t * 100 + i)}
    ]);
    m["video_duration"] = json!(12.48);
    m
}

fn owner(t: u64) -> Value {
    json!({"pk": 99_000_000 + t, "pk_id": (99_000_000 + t).to_string(), "id": (99_000_000 + t).to_string(),
           "username": format!("creator_{t}"),
           "full_name": format!("Creator {t}"), "is_verified": t.is_multiple_of(2),
           "profile_pic_url": cdn("pp", t, 0)})
}

/// One item of every kind the connector maps, in turn.
fn item(t: u64, i: u64, users: &[u64]) -> Value {
    let n = t * ITEMS + i;
    let ts = 1_763_790_000_123_456u64 - n * 1_000_000;
    let from_viewer = i.is_multiple_of(3);
    let sender =
        if from_viewer { VIEWER } else { users[usize::try_from(i).unwrap() % users.len()] };
    let mut item = json!({
        "item_id": format!("3198542723987849279147287181{:09}", n),
        // Instagram sends ids and times as numbers or strings.
        "user_id": if i.is_multiple_of(2) { json!(sender) } else { json!(sender.to_string()) },
        "timestamp": if i.is_multiple_of(4) { json!(ts.to_string()) } else { json!(ts) },
        "client_context": format!("7{:018}", n),
        "is_sent_by_viewer": from_viewer,
        "show_forward_attribution": false,
        "is_shh_mode": false,
        "hide_in_thread": 0,
        "uq_seq_id": 1_000 + n,
    });
    let (kind, body) = match i % 13 {
        0 => (
            "text",
            json!({"text": format!("message {i} in thread {t}: are we still on for 8? 🍕")}),
        ),
        1 => (
            "link",
            json!({"link": {"text": format!("look at https://example.com/a/{n}"), "link_context": {
            "link_url": format!("https://example.com/a/{n}"), "link_title": "An article",
            "link_summary": "What happened next", "link_image_url": cdn("link", t, i)}}}),
        ),
        2 => ("media", json!({"media": image_media(t, i)})),
        3 => ("media", json!({"media": video_media(t, i)})),
        4 => (
            "raven_media",
            json!({"visual_media": {"media": image_media(t, i), "view_mode": "once",
            "seen_count": 0, "expiring_media_action_summary": {"type": "delivered", "timestamp": ts, "count": 1}}}),
        ),
        5 => (
            "voice_media",
            json!({"voice_media": {"media": {"id": format!("{n}_voice"), "media_type": 11,
            "audio": {"audio_src": cdn("audio", t, i), "duration": 4_210, "waveform_data": [0.1, 0.5, 0.8, 0.3, 0.2, 0.6, 0.9, 0.4],
                      "waveform_sampling_frequency_hz": 10}}, "is_shh_mode": false}}),
        ),
        6 => (
            "clip",
            json!({"clip": {"clip": merged(video_media(t, i), json!({
            "caption": {"text": format!("reel {n} #travel")}, "user": owner(t), "code": format!("C{n}xyz")}))}}),
        ),
        7 => (
            "reel_share",
            json!({"reel_share": {"text": "😂😂", "type": "reply", "reel_owner_id": 99_000_000 + t,
            "is_reel_persisted": false, "reel_type": "user_reel", "media": image_media(t, i)}}),
        ),
        8 => (
            "media_share",
            json!({"media_share": merged(image_media(t, i), json!({
            "caption": {"text": format!("post {n}: sunset"), "pk": n},
            "user": owner(t), "code": format!("B{n}abc"), "like_count": 120 + n}))}),
        ),
        9 => (
            "xma_media_share",
            json!({"generic_xma": [{"title_text": format!("@creator_{t}"),
            "subtitle_text": "shared a post", "target_url": format!("https://www.instagram.com/p/B{n}abc/"),
            "preview_url_info": {"url": cdn("xma", t, i), "width": 1080, "height": 1080},
            "header_title_text": format!("creator_{t}"), "xma_layout_type": 0}]}),
        ),
        10 => ("like", json!({"like": "❤️"})),
        11 => (
            "action_log",
            json!({"action_log": {"description": format!("User {t} liked a message"),
            "bold": [{"start": 0, "end": 6}], "text_attributes": []}}),
        ),
        _ => ("text", json!({"text": format!("reply {i} in {t}, see you there")})),
    };
    item = merged(item, body);
    let m = item.as_object_mut().expect("object");
    m.insert("item_type".into(), json!(kind));
    if i % 4 == 1 {
        m.insert("reactions".into(), json!({"likes": [], "likes_count": 0, "emojis": [
            {"sender_id": VIEWER, "timestamp": ts + 5_000_000, "emoji": "❤️", "super_react_type": "none"},
            {"sender_id": users[0], "timestamp": ts + 6_000_000, "emoji": "😂", "super_react_type": "none"}]}));
    }
    if i % 5 == 2 {
        m.insert("replied_to_message".into(), json!({"item_id": format!("3198542723987849279147287181{:09}", n + 1),
            "user_id": users[0], "timestamp": ts - 1_000_000, "item_type": "text", "text": "earlier message"}));
    }
    item
}

/// `base` with the fields of `extra` added.
fn merged(mut base: Value, extra: Value) -> Value {
    if let (Some(m), Value::Object(x)) = (base.as_object_mut(), extra) {
        m.extend(x);
    }
    base
}

fn thread(t: u64) -> Value {
    let users: Vec<u64> = (0..(1 + t % 3)).map(|u| 5_512_345_000 + t * 10 + u).collect();
    let user_objs: Vec<Value> = users
        .iter()
        .enumerate()
        .map(|(u, pk)| {
            json!({
                "pk": if u % 2 == 0 { json!(pk) } else { json!(pk.to_string()) }, "pk_id": pk.to_string(),
                "username": format!("user_{t}_{u}"), "full_name": format!("User {t} {u}"),
                "profile_pic_url": cdn("pp", t, u as u64), "is_private": false, "is_verified": u == 0,
                "friendship_status": {"following": true, "blocking": false, "is_private": false, "incoming_request": false}
            })
        })
        .collect();
    let items: Vec<Value> = (0..ITEMS).map(|i| item(t, i, &users)).collect();
    json!({
        "thread_id": format!("3402823668417103009491281374439443{:05}", t),
        "thread_v2_id": format!("178459348239{:05}", t),
        "thread_type": "private", "is_group": t % 3 == 2, "thread_title": format!("Thread {t}"),
        "named": t % 3 == 2, "viewer_id": VIEWER, "users": user_objs, "items": items,
        "read_state": t % 2, "muted": t.is_multiple_of(7), "pending": false, "archived": false, "folder": 0,
        "is_spam": false, "marked_as_unread": t.is_multiple_of(5), "admin_user_ids": [], "canonical": t % 3 != 2,
        "vc_muted": false, "mentions_muted": false, "approval_required_for_new_members": false, "input_mode": 0,
        "last_activity_at": 1_763_790_000_123_456u64 - t * 60_000_000,
        "last_seen_at": {VIEWER.to_string(): {"item_id": "3198542723987849279147287181000000000", "timestamp": "1763790000123456", "created_at": "1763790000123456"}},
        "has_older": true, "has_newer": false, "oldest_cursor": format!("cursor{t}"), "newest_cursor": format!("newest{t}")
    })
}

struct Data {
    inbox: Vec<u8>,
    threads: Vec<(String, Vec<u8>)>,
}

fn data() -> Data {
    let threads: Vec<Value> = (0..THREADS).map(thread).collect();
    let inbox = serde_json::to_vec(&json!({
        "viewer": {"pk": VIEWER, "username": "me"},
        "inbox": {"threads": threads, "has_older": true, "oldest_cursor": "MTc2Mzc4MDAwMDAwMDAwMA==", "unseen_count": 3},
        "seq_id": 123_456, "snapshot_at_ms": 1_763_790_001_000u64, "pending_requests_total": 0, "status": "ok"
    }))
    .expect("serializable");
    let threads = threads
        .into_iter()
        .map(|t| {
            let id = t["thread_id"].as_str().expect("id").to_owned();
            (id, serde_json::to_vec(&json!({"thread": t, "status": "ok"})).expect("serializable"))
        })
        .collect();
    Data { inbox, threads }
}

fn write_out(d: &Data) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-data/mapping");
    std::fs::create_dir_all(&dir).expect("bench-data dir");
    std::fs::write(dir.join("inbox.json"), &d.inbox).expect("write inbox");
    for (i, (_, body)) in d.threads.iter().enumerate() {
        std::fs::write(dir.join(format!("thread-{i:02}.json")), body).expect("write thread");
    }
    dir
}

fn map_all(c: &Connector, d: &Data) -> (usize, usize) {
    let out = c.map_body("list_conversations", &Map::new(), &d.inbox).expect("inbox maps");
    let conversations = out.data.as_array().map_or(0, Vec::len);
    let mut messages = 0;
    for (id, body) in &d.threads {
        let mut p = Map::new();
        p.insert("conversation_id".into(), Value::String(id.clone()));
        let out = c.map_body("list", &p, body).expect("thread maps");
        messages += out.data.as_array().map_or(0, Vec::len);
    }
    (conversations, messages)
}

fn parse_all(d: &Data) -> usize {
    let mut n = 0;
    for body in std::iter::once(&d.inbox).chain(d.threads.iter().map(|(_, b)| b)) {
        let v: Value = serde_json::from_slice(std::hint::black_box(body)).expect("json");
        n += usize::from(v.is_object());
    }
    n
}

fn sonic_all(d: &Data) -> usize {
    let mut n = 0;
    for body in std::iter::once(&d.inbox).chain(d.threads.iter().map(|(_, b)| b)) {
        let v: sonic_rs::Value = sonic_rs::from_slice(std::hint::black_box(body)).expect("json");
        n += usize::from(sonic_rs::JsonValueTrait::is_object(&v));
    }
    n
}

/// Allocations and reallocations made by `f`.
/// sonic-rs building the same `serde_json::Value` tree through serde.
fn sonic_serde_all(d: &Data) -> usize {
    let mut n = 0;
    for body in std::iter::once(&d.inbox).chain(d.threads.iter().map(|(_, b)| b)) {
        let v: Value = sonic_rs::from_slice(std::hint::black_box(body)).expect("json");
        n += usize::from(v.is_object());
    }
    n
}

fn allocs(f: impl FnOnce()) -> u64 {
    let region = Region::new(GLOBAL);
    f();
    let s = region.change();
    (s.allocations + s.reallocations) as u64
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    // Under `cargo test` and nextest: one quick round that checks the mapping.
    igdm_test::bench_main(|| run(true), || run(false));
}

fn run(quick: bool) {
    let rounds: usize = if quick {
        1
    } else {
        std::env::var("BENCH_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(40)
    };
    let c = Connector::load(WEB, "instagram-web.md").expect("instagram-web loads");
    let d = data();
    let dir = write_out(&d);
    let thread_bytes: usize = d.threads.iter().map(|(_, b)| b.len()).sum();
    let (conversations, messages) = map_all(&c, &d);
    assert_eq!((conversations, messages), (50, 1_000));
    // Every message is mapped without a warning and with a known content type.
    let mut p = Map::new();
    p.insert("conversation_id".into(), Value::String(d.threads[0].0.clone()));
    let sample = c.map_body("list", &p, &d.threads[0].1).expect("maps");
    assert!(sample.warnings.is_empty(), "{:?}", sample.warnings);
    for m in sample.data.as_array().expect("messages") {
        assert!(m["content_type"].is_string() && m["content_type"] != "unsupported", "{m}");
    }

    let (mut parse, mut sonic, mut map) = (Vec::new(), Vec::new(), Vec::new());
    let mut sonic_serde = Vec::new();
    let (mut parse_inbox, mut map_inbox) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let t = Instant::now();
        std::hint::black_box(parse_all(&d));
        parse.push(t.elapsed());
        let t = Instant::now();
        std::hint::black_box(sonic_all(&d));
        sonic.push(t.elapsed());
        let t = Instant::now();
        std::hint::black_box(sonic_serde_all(&d));
        sonic_serde.push(t.elapsed());
        let t = Instant::now();
        std::hint::black_box(map_all(&c, &d));
        map.push(t.elapsed());
        let t = Instant::now();
        std::hint::black_box(serde_json::from_slice::<Value>(&d.inbox).expect("json"));
        parse_inbox.push(t.elapsed());
        let t = Instant::now();
        std::hint::black_box(
            c.map_body("list_conversations", &Map::new(), &d.inbox).expect("maps"),
        );
        map_inbox.push(t.elapsed());
    }
    let a_parse = allocs(|| {
        parse_all(&d);
    });
    let a_map = allocs(|| {
        map_all(&c, &d);
    });
    let (parse, sonic, map) = (median(&mut parse), median(&mut sonic), median(&mut map));
    let sonic_serde = median(&mut sonic_serde);
    let (parse_inbox, map_inbox) = (median(&mut parse_inbox), median(&mut map_inbox));
    let per_msg = |x: Duration| x.as_secs_f64() * 1e6 / messages as f64;
    println!(
        "instagram-web: inbox {} B ({THREADS} threads x {ITEMS} items) + {THREADS} thread bodies {} B; {messages} messages, {conversations} conversations; {rounds} rounds, medians; data in {}",
        d.inbox.len(),
        thread_bytes,
        dir.display()
    );
    println!("| what | time | per message | vs serde_json | allocations per message |");
    println!("|---|---|---|---|---|");
    println!(
        "| serde_json::Value parse, inbox + threads | {:.2} ms | {:.2} µs | 1.00x | {:.1} |",
        ms(parse),
        per_msg(parse),
        a_parse as f64 / messages as f64
    );
    println!(
        "| sonic_rs::Value parse, inbox + threads | {:.2} ms | {:.2} µs | {:.2}x | |",
        ms(sonic),
        per_msg(sonic),
        ms(sonic) / ms(parse)
    );
    println!(
        "| sonic_rs into serde_json::Value, inbox + threads | {:.2} ms | {:.2} µs | {:.2}x | |",
        ms(sonic_serde),
        per_msg(sonic_serde),
        ms(sonic_serde) / ms(parse)
    );
    println!(
        "| map inbox + threads (parse included) | {:.2} ms | {:.2} µs | {:.2}x | {:.1} |",
        ms(map),
        per_msg(map),
        ms(map) / ms(parse),
        a_map as f64 / messages as f64
    );
    println!(
        "| inbox only: list_conversations vs its parse | {:.2} ms | | {:.2}x | |",
        ms(map_inbox),
        ms(map_inbox) / ms(parse_inbox)
    );
    // For scripts/bench-instagrapi's side-by-side table.
    let summary = json!({
        "rounds": rounds, "messages": messages, "parse_ms": ms(parse), "sonic_ms": ms(sonic),
        "map_ms": ms(map), "parse_inbox_ms": ms(parse_inbox), "map_inbox_ms": ms(map_inbox),
        "map_allocs_per_message": a_map as f64 / messages as f64,
    });
    std::fs::write(dir.join("rust.json"), summary.to_string()).expect("write summary");
}
