//! Ingest benchmark: deliveries per second and acknowledgement latency of
//! the real receiver (HTTP, signature check, parsing, durable group commit,
//! processing running alongside) on SQLite and, when
//! `IGDM_TEST_DATABASE_URL` is reachable, PostgreSQL.
//!
//! `cargo bench -p igdm-webhook --bench ingest` runs about 20 seconds; under
//! `cargo test` (no `--bench` argument) it runs a few requests as a smoke test.

#![allow(clippy::unwrap_used, clippy::cast_precision_loss)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::SECRET;
use igdm_store::{MessageStore, SqliteStore};
use igdm_webhook::{Config, Secrets, Server, StoreLog, sign};

#[path = "../tests/common/mod.rs"]
mod common;

struct Settings {
    throughput_secs: f64,
    paced_secs: f64,
    rate: u64,
    concurrency: usize,
}

fn body(n: usize) -> (Vec<u8>, String) {
    let ts = 1_790_000_000_000_i64 + i64::try_from(n).unwrap();
    let b = serde_json::json!({"object": "instagram", "entry": [{"id": "17841400000000001", "time": ts,
        "messaging": [{"sender": {"id": format!("c{}", n % 500)}, "recipient": {"id": "17841400000000001"},
        "timestamp": ts, "message": {"mid": format!("bench-{n}"), "text": "Hello, is this still available?"}}]}]})
    .to_string()
    .into_bytes();
    let sig = sign(SECRET.as_bytes(), &b);
    (b, sig)
}

async fn start(
    store: Arc<dyn MessageStore>,
) -> (String, tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let server = Server::new(Config::new(Secrets::new(SECRET, "t")), StoreLog::new(store));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webhook", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        server
            .serve_with_shutdown(listener, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    (url, stop, task)
}

async fn send(client: &reqwest::Client, url: &str, b: &(Vec<u8>, String)) -> bool {
    client
        .post(url)
        .header("content-type", "application/json")
        .header("x-hub-signature-256", &b.1)
        .body(b.0.clone())
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn run(name: &str, store: Arc<dyn MessageStore>, s: &Settings) {
    let (url, stop, task) = start(store.clone()).await;
    let client = reqwest::Client::builder().pool_max_idle_per_host(s.concurrency).build().unwrap();
    let next = Arc::new(AtomicUsize::new(0));

    // Throughput: `concurrency` keep-alive connections sending back to back.
    let t0 = Instant::now();
    let until = t0 + Duration::from_secs_f64(s.throughput_secs);
    let ok = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..s.concurrency)
        .map(|_| {
            let (client, url, next, ok) = (client.clone(), url.clone(), next.clone(), ok.clone());
            tokio::spawn(async move {
                while Instant::now() < until {
                    let b = body(next.fetch_add(1, Ordering::Relaxed));
                    if send(&client, &url, &b).await {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let acked = ok.load(Ordering::Relaxed);
    println!(
        "{name}: throughput {:.0} deliveries/s ({acked} acknowledged in {elapsed:.1} s, {} connections)",
        acked as f64 / elapsed,
        s.concurrency
    );

    // Let processing catch up with the burst so that the paced run measures
    // a steady state, not the burst's backlog.
    let drain = Instant::now();
    loop {
        let c = store.event_log_counts().await.unwrap();
        if c.pending + c.processing == 0 || drain.elapsed() > Duration::from_secs(120) {
            println!("{name}: processing caught up in {:.1} s", drain.elapsed().as_secs_f64());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Latency at a fixed rate: each request is timed from its scheduled start.
    let total = (s.rate as f64 * s.paced_secs) as usize;
    let start = tokio::time::Instant::now();
    let mut handles = Vec::with_capacity(total);
    for i in 0..total {
        let at = start + Duration::from_secs_f64(i as f64 / s.rate as f64);
        let (client, url) = (client.clone(), url.clone());
        let b = body(next.fetch_add(1, Ordering::Relaxed));
        handles.push(tokio::spawn(async move {
            tokio::time::sleep_until(at).await;
            let ok = send(&client, &url, &b).await;
            (ok, at.elapsed())
        }));
    }
    let mut lat = Vec::with_capacity(total);
    let mut failed = 0;
    for h in handles {
        let (ok, d) = h.await.unwrap();
        if ok { lat.push(d) } else { failed += 1 }
    }
    lat.sort();
    println!(
        "{name}: at {}/s for {:.0} s: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, {failed} failed",
        s.rate,
        s.paced_secs,
        percentile(&lat, 0.50).as_secs_f64() * 1e3,
        percentile(&lat, 0.99).as_secs_f64() * 1e3,
        lat.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
    let _ = stop.send(());
    task.await.unwrap();
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let s = if bench {
        Settings { throughput_secs: 4.0, paced_secs: 4.0, rate: 2000, concurrency: 64 }
    } else {
        Settings { throughput_secs: 0.3, paced_secs: 0.3, rate: 200, concurrency: 4 }
    };
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("bench.db").display());
        run("sqlite", Arc::new(SqliteStore::open(&url).await.unwrap()), &s).await;
        if let Some((url, schema)) = common::pg_schema("bench").await {
            run("postgres", Arc::new(common::pg_store(&url, &schema).await), &s).await;
            common::drop_pg_schema(&url, &schema).await;
        }
    });
}
