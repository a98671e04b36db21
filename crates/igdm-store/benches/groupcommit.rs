//! Group-commit latency of the webhook log: how long a group of 1 to 64
//! deliveries of one message event each takes to commit, stored two ways
//! in alternation: with their events (`record_deliveries_leased`) and raw,
//! unexpanded (`append_unexpanded`). An acknowledgement waits for exactly
//! this. Runs on a SQLite file (`synchronous = FULL`) and, when
//! `IGDM_TEST_DATABASE_URL` is set, on PostgreSQL in a schema of its own,
//! without anything else running.
//!
//! `cargo bench -p igdm-store --bench groupcommit` runs
//! `IGDM_BENCH_COMMITS` (default 2,000) commits per group size and way;
//! under `cargo test` or nextest it is one smoke test (`smoke`) of 20.

#![allow(clippy::unwrap_used, clippy::cast_precision_loss)]

use std::time::{Duration, Instant};

use igdm_model::{EventKind, Timestamp};
use igdm_store::{Lease, MessageStore, NewDelivery, NewEvent, RawDelivery, Store};

#[path = "common/pg.rs"]
mod pg;

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

/// Percentiles of commit times in microseconds.
fn pct(took: &mut [Duration], p: f64) -> f64 {
    took.sort();
    took[((took.len() - 1) as f64 * p) as usize].as_secs_f64() * 1e6
}

async fn run(name: &str, store: &dyn MessageStore, commits: usize) {
    let body = vec![b'x'; 330];
    let mut from = 0;
    for group in [1_usize, 8, 32, 64] {
        let groups = deliveries(from, commits, group);
        from += commits * group;
        let (mut full, mut raw) = (Vec::with_capacity(commits), Vec::with_capacity(commits));
        for events in &groups {
            let until = Timestamp::now();
            let lease = Lease { owner: "bench", until };
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
            let recorded = store.record_deliveries_leased(&batch, lease).await.unwrap();
            full.push(t.elapsed());
            assert_eq!(recorded.len(), group);
            let bodies: Vec<RawDelivery<'_>> = batch
                .iter()
                .map(|d| RawDelivery { raw_body: d.raw_body, received_at: d.received_at })
                .collect();
            let t = Instant::now();
            let ids = store.append_unexpanded(&bodies, Some(lease)).await.unwrap();
            raw.push(t.elapsed());
            assert_eq!(ids.len(), group);
        }
        let (f50, r50) = (pct(&mut full, 0.5), pct(&mut raw, 0.5));
        println!(
            "{name}: groups of {group:>2}: with events p50 {f50:.0} us, p99 {:.0} us; raw p50 {r50:.0} us, \
             p99 {:.0} us; raw takes {:.2}x the time at p50",
            pct(&mut full, 0.99),
            pct(&mut raw, 0.99),
            r50 / f50
        );
    }
}

fn main() {
    igdm_test::bench_main(
        || measure(20),
        || {
            let commits = std::env::var("IGDM_BENCH_COMMITS").ok().and_then(|v| v.parse().ok());
            measure(commits.unwrap_or(2_000));
        },
    );
}

fn measure(commits: usize) {
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("log.db").display());
        let Store::Sqlite(sqlite) = Store::open(&url).await.unwrap() else { unreachable!() };
        run("sqlite", &sqlite, commits).await;
        if let Some((pg, _schema)) =
            pg::postgres_store("igdm-store bench groupcommit (PostgreSQL)").await
        {
            run("postgres", &*pg, commits).await;
            if let Store::Postgres(p) = &pg {
                p.close().await;
            }
        }
    });
}
