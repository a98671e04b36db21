//! Group-commit latency of the webhook log: how long
//! `record_deliveries_leased` takes for groups of 1 to 64 deliveries of one
//! message event each, on a SQLite file (`synchronous = FULL`), without
//! anything else running. An acknowledgement waits for exactly this.
//!
//! `cargo bench -p igdm-store --bench groupcommit` runs
//! `IGDM_BENCH_COMMITS` (default 2,000) commits per group size; without
//! `--bench` it runs 20 as a smoke test.

#![allow(clippy::unwrap_used, clippy::cast_precision_loss)]

use std::time::Instant;

use igdm_model::{EventKind, Timestamp};
use igdm_store::{Lease, MessageStore, NewDelivery, NewEvent, Store};

/// `count` groups of `group` deliveries, numbered from `from`.
fn deliveries(from: usize, count: usize, group: usize) -> Vec<Vec<Vec<NewEvent>>> {
    (0..count)
        .map(|g| {
            (0..group)
                .map(|i| {
                    let n = from + g * group + i;
                    vec![NewEvent {
                        dedup_key: format!("17841400000000001:bench-{n}:message"),
                        kind: EventKind::Message,
                        account_id: "17841400000000001".into(),
                        payload: serde_json::json!({"kind": "message", "message_id": format!("bench-{n}"),
                            "sender_id": format!("c{}", n % 500), "recipient_id": "17841400000000001",
                            "timestamp": "2026-12-06T00:00:00Z", "text": "Hello, is this still available?"}),
                    }]
                })
                .collect()
        })
        .collect()
}

async fn run(name: &str, store: &dyn MessageStore, commits: usize) {
    let body = vec![b'x'; 330];
    let mut from = 0;
    for group in [1_usize, 8, 32, 64] {
        let groups = deliveries(from, commits, group);
        from += commits * group;
        let mut took = Vec::with_capacity(commits);
        let t0 = Instant::now();
        for events in &groups {
            let batch: Vec<NewDelivery<'_>> = events
                .iter()
                .map(|e| NewDelivery {
                    raw_body: &body,
                    received_at: Timestamp::now(),
                    events: e,
                    dead_letter: None,
                })
                .collect();
            let t = Instant::now();
            let until = Timestamp::now();
            let recorded = store
                .record_deliveries_leased(&batch, Lease { owner: "bench", until })
                .await
                .unwrap();
            took.push(t.elapsed());
            assert_eq!(recorded.len(), group);
        }
        let elapsed = t0.elapsed().as_secs_f64();
        took.sort();
        let pct = |p: f64| took[((took.len() - 1) as f64 * p) as usize].as_secs_f64() * 1e6;
        println!(
            "{name}: groups of {group:>2}: commit p50 {:.0} us, p90 {:.0} us, p99 {:.0} us; {:.0} deliveries/s",
            pct(0.5),
            pct(0.9),
            pct(0.99),
            (commits * group) as f64 / elapsed
        );
    }
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let commits = if bench {
        std::env::var("IGDM_BENCH_COMMITS").ok().and_then(|v| v.parse().ok()).unwrap_or(2_000)
    } else {
        20
    };
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("log.db").display());
        let Store::Sqlite(sqlite) = Store::open(&url).await.unwrap() else { unreachable!() };
        run("sqlite", &sqlite, commits).await;
    });
}
