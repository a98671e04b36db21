//! Maps a 50-thread inbox (10 items per thread, Instagram's shapes) with seed
//! 001's `list_conversations` mapping, next to a plain JSON parse of the same
//! bytes as the baseline.

use criterion::{Criterion, criterion_group, criterion_main};
use igdm_spec::Connector;
use serde_json::{Map, Value, json};

const SEED: &str = include_str!("../tests/fixtures/seed001.md");

fn inbox() -> Vec<u8> {
    let threads: Vec<Value> = (0..50u64)
        .map(|t| {
            let users: Vec<Value> = (0..(1 + t % 3))
                .map(|u| {
                    let pk = 5_512_345_000 + t * 10 + u;
                    // Instagram sends pks as numbers or strings.
                    let pk = if u % 2 == 0 { json!(pk) } else { json!(pk.to_string()) };
                    json!({
                        "pk": pk, "pk_id": format!("{}", 5_512_345_000 + t * 10 + u),
                        "username": format!("user_{t}_{u}"), "full_name": format!("User {t} {u}"),
                        "profile_pic_url": format!("https://scontent.cdninstagram.com/v/t51.2885-19/{t}{u}.jpg?stp=dst-jpg_s150x150"),
                        "is_private": false, "is_verified": u == 0,
                        "friendship_status": {"following": true, "blocking": false, "is_private": false}
                    })
                })
                .collect();
            let items: Vec<Value> = (0..10u64)
                .map(|i| {
                    let ts = 1_763_790_000_123_456u64 - (t * 10 + i) * 1_000_000;
                    json!({
                        "item_id": format!("3198542723987849279147287181352{:04}", t * 10 + i),
                        "user_id": if i % 2 == 0 { json!(178_612_345) } else { json!("5512345000") },
                        "timestamp": if i % 3 == 0 { json!(ts.to_string()) } else { json!(ts) },
                        "item_type": "text", "text": format!("message {i} in thread {t}: see you at 8?"),
                        "client_context": format!("7{:018}", t * 100 + i), "is_sent_by_viewer": i % 2 == 0,
                        "show_forward_attribution": false
                    })
                })
                .collect();
            json!({
                "thread_id": format!("3402823668417103009491281374439443{:05}", t),
                "thread_v2_id": format!("178459348239{:05}", t),
                "thread_type": "private", "is_group": t % 3 == 2, "thread_title": format!("Thread {t}"),
                "named": t % 3 == 2, "viewer_id": 178_612_345, "users": users, "items": items,
                "read_state": t % 2, "muted": false, "pending": false, "archived": false, "folder": 0,
                "last_activity_at": 1_763_790_000_123_456u64 - t * 60_000_000,
                "last_seen_at": {"178612345": {"item_id": "31985427239878492791472871813529600", "timestamp": "1763790000123456"}},
                "has_older": true, "has_newer": false, "oldest_cursor": format!("cursor{t}"), "newest_cursor": format!("newest{t}")
            })
        })
        .collect();
    serde_json::to_vec(&json!({
        "viewer": {"pk": 178_612_345, "username": "me"},
        "inbox": {"threads": threads, "has_older": true, "oldest_cursor": "MTc2Mzc4MDAwMDAwMDAwMA==", "unseen_count": 3},
        "seq_id": 123_456, "snapshot_at_ms": 1_763_790_001_000u64, "pending_requests_total": 0, "status": "ok"
    }))
    .expect("serializable")
}

fn bench(c: &mut Criterion) {
    let connector = Connector::load(SEED, "seed001.md").expect("seed 001 loads");
    let body = inbox();
    let params = Map::new();
    let out = connector.map_body("list_conversations", &params, &body).expect("maps");
    assert_eq!(out.data.as_array().map(Vec::len), Some(50));
    eprintln!("inbox body: {} bytes, 50 threads x 10 items", body.len());
    let mut g = c.benchmark_group("inbox_50_threads");
    g.bench_function("serde_json_parse", |b| {
        b.iter(|| serde_json::from_slice::<Value>(std::hint::black_box(&body)).expect("json"));
    });
    g.bench_function("list_conversations_map", |b| {
        b.iter(|| {
            connector
                .map_body("list_conversations", &params, std::hint::black_box(&body))
                .expect("maps")
        });
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
