//! Ingest benchmark: deliveries per second and acknowledgement latency of
//! the real receiver (HTTP, signature check, parsing, durable group commit,
//! processing running alongside) on SQLite and, when
//! `IGDM_TEST_DATABASE_URL` is reachable, PostgreSQL.
//!
//! The load generator shares the machine's cores with the receiver, so it is
//! kept lean: bodies are built and signed before the clock starts, and each
//! connection is a bare HTTP/1.1 keep-alive connection (hyper's client
//! connection, no pool). Every response is checked for 200.
//!
//! Each phase also reports how many deliveries shared a group commit and
//! how much this process wrote to storage per acknowledged delivery
//! (processing included): on a disk whose flushes are full cache flushes,
//! the second figure is what the p99 depends on. On PostgreSQL the server
//! does the writing, so that figure is about zero there.
//!
//! `cargo bench -p igdm-webhook --bench ingest` runs about a minute per
//! backend; under `cargo test` or nextest it is one smoke test (`smoke`) of a
//! few requests that fails on a refused delivery or one not stored and processed
//! exactly once. `IGDM_BENCH_SECS` sets the length of each
//! phase (default 4), `IGDM_BENCH_CONCURRENCY` the connections (default 64),
//! `IGDM_BENCH_ONLY=sqlite|sqlite-one|sqlite-split|postgres` one set-up; `IGDM_BENCH_WORKERS`,
//! `IGDM_BENCH_CLAIM_BATCH`, `IGDM_BENCH_WINDOW_MS` (`batch_window`) and
//! `IGDM_BENCH_DEFER_MS` (`defer_while_busy`) override the receiver's
//! [`Config`] fields of those names.

#![allow(clippy::unwrap_used, clippy::cast_precision_loss)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::SECRET;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::SendRequest;
use igdm_store::Store;
use igdm_webhook::{Config, Metrics, Secrets, Server, StoreLog, sign};

#[path = "../tests/common/mod.rs"]
mod common;

struct Settings {
    /// Smoke run: fail on any refused delivery and check that every
    /// acknowledged delivery is stored and processed exactly once.
    check: bool,
    throughput_secs: f64,
    paced_secs: f64,
    rate: u64,
    concurrency: usize,
}

/// A delivery ready to send: body and its signature header.
#[derive(Clone)]
struct Prepared {
    body: Bytes,
    signature: http::HeaderValue,
}

/// Builds and signs `count` distinct deliveries starting at number `from`:
/// one message each, from 500 customers.
fn prepare(from: usize, count: usize) -> Vec<Prepared> {
    (from..from + count)
        .map(|n| {
            let ts = 1_790_000_000_000_i64 + i64::try_from(n).unwrap();
            let body = serde_json::json!({"object": "instagram", "entry": [{"id": "17841400000000001", "time": ts,
                "messaging": [{"sender": {"id": format!("c{}", n % 500)}, "recipient": {"id": "17841400000000001"},
                "timestamp": ts, "message": {"mid": format!("bench-{n}"), "text": "Hello, is this still available?"}}]}]})
            .to_string()
            .into_bytes();
            let signature = http::HeaderValue::from_str(&sign(SECRET.as_bytes(), &body)).unwrap();
            Prepared { body: Bytes::from(body), signature }
        })
        .collect()
}

async fn start(
    log: StoreLog,
) -> (SocketAddr, Arc<Metrics>, tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let mut config = Config::new(Secrets::new(SECRET, "t"));
    config.workers = std::env::var("IGDM_BENCH_WORKERS").ok().and_then(|v| v.parse().ok());
    config.claim_batch = env_or("IGDM_BENCH_CLAIM_BATCH", config.claim_batch);
    config.batch_window = Duration::from_millis(env_or(
        "IGDM_BENCH_WINDOW_MS",
        u64::try_from(config.batch_window.as_millis()).unwrap_or(u64::MAX),
    ));
    config.defer_while_busy = std::env::var("IGDM_BENCH_DEFER_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_millis);
    let server = Server::new(config, log);
    let metrics = server.metrics();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        server
            .serve_with_shutdown(listener, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    (addr, metrics, stop, task)
}

/// One keep-alive HTTP/1.1 connection.
async fn connect(addr: SocketAddr) -> SendRequest<Full<Bytes>> {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    sender
}

/// POSTs one delivery and reads the whole answer; true on 200.
async fn send(conn: &mut SendRequest<Full<Bytes>>, addr: SocketAddr, d: &Prepared) -> bool {
    if conn.ready().await.is_err() {
        *conn = connect(addr).await;
    }
    let req = http::Request::post("/webhook")
        .header(http::header::HOST, "127.0.0.1")
        .header(http::header::CONTENT_TYPE, "application/json")
        .header("x-hub-signature-256", d.signature.clone())
        .body(Full::new(d.body.clone()))
        .unwrap();
    match conn.send_request(req).await {
        Ok(resp) => {
            let ok = resp.status() == http::StatusCode::OK;
            ok && resp.into_body().collect().await.is_ok()
        }
        Err(_) => false,
    }
}

/// CPU time this process has used (user + system), from `/proc/self/stat`;
/// zero where that file does not exist.
fn cpu_time() -> Duration {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return Duration::ZERO };
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields overall, in clock ticks (100 per second on Linux).
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else { return Duration::ZERO };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
    match (ticks(11), ticks(12)) {
        (Some(u), Some(s)) => Duration::from_millis((u + s) * 10),
        _ => Duration::ZERO,
    }
}

/// Bytes this process has caused to be written to storage, from
/// `/proc/self/io`; zero where that file does not exist.
fn written_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/io")
        .ok()
        .and_then(|io| {
            io.lines()
                .find_map(|l| l.strip_prefix("write_bytes:").and_then(|v| v.trim().parse().ok()))
        })
        .unwrap_or(0)
}

/// A reading of the writer's commit counter and of this process's bytes
/// written; [`DiskUse::since`] turns two readings into figures per
/// acknowledged delivery.
struct DiskUse {
    commits: u64,
    written: u64,
}

impl DiskUse {
    fn now(metrics: &Metrics) -> Self {
        Self { commits: metrics.commits.load(Ordering::Relaxed), written: written_bytes() }
    }

    fn since(&self, metrics: &Metrics, deliveries: usize) -> String {
        let now = Self::now(metrics);
        let n = deliveries.max(1) as f64;
        let commits = now.commits.saturating_sub(self.commits);
        format!(
            "{:.1} deliveries per group commit, {:.1} KiB written by this process per delivery",
            n / commits.max(1) as f64,
            now.written.saturating_sub(self.written) as f64 / 1024.0 / n,
        )
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Runs the throughput and the paced phase against a fresh server over
/// `log`, set up the way `igdm serve` sets it up.
async fn run(name: &str, log: StoreLog, s: &Settings) {
    let store = log.log().clone();
    let (addr, metrics, stop, task) = start(log).await;

    // Throughput: `concurrency` keep-alive connections sending back to back,
    // each delivery distinct. Bodies are prepared for a rate well above the goal.
    let burst = Arc::new(prepare(0, (s.throughput_secs * 40_000.0) as usize + 1_000));
    let next = Arc::new(AtomicUsize::new(0));
    let ok = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let mut conns = Vec::with_capacity(s.concurrency);
    for _ in 0..s.concurrency {
        conns.push(connect(addr).await);
    }
    let cpu0 = cpu_time();
    let disk0 = DiskUse::now(&metrics);
    let t0 = Instant::now();
    let until = t0 + Duration::from_secs_f64(s.throughput_secs);
    let workers: Vec<_> = conns
        .into_iter()
        .map(|mut conn| {
            let (burst, next, ok, failed) =
                (burst.clone(), next.clone(), ok.clone(), failed.clone());
            tokio::spawn(async move {
                while Instant::now() < until {
                    let Some(d) = burst.get(next.fetch_add(1, Ordering::Relaxed)) else { break };
                    let counter = if send(&mut conn, addr, d).await { &ok } else { &failed };
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu = (cpu_time() - cpu0).as_secs_f64();
    let acked = ok.load(Ordering::Relaxed);
    println!(
        "{name}: throughput {:.0} deliveries/s ({acked} acknowledged, {} failed, in {elapsed:.1} s, {} connections); \
         {:.0} us of CPU per delivery, load generator and processing included, using {:.2} cores",
        acked as f64 / elapsed,
        failed.load(Ordering::Relaxed),
        s.concurrency,
        cpu * 1e6 / acked.max(1) as f64,
        cpu / elapsed,
    );
    println!("{name}: throughput phase: {}", disk0.since(&metrics, acked));
    let sent = next.load(Ordering::Relaxed).min(burst.len());
    drop(burst);

    // Let processing catch up with the burst so that the paced run measures
    // a steady state, not the burst's backlog. On PostgreSQL the backlog
    // starts as deliveries not yet expanded into events: count them too.
    let drain = Instant::now();
    loop {
        let c = store.event_log_counts().await.unwrap();
        if c.pending + c.processing + c.unexpanded == 0
            || drain.elapsed() > Duration::from_secs(120)
        {
            println!(
                "{name}: processing caught up in {:.1} s ({:.0} events/s)",
                drain.elapsed().as_secs_f64(),
                acked as f64 / (elapsed + drain.elapsed().as_secs_f64())
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Latency at a fixed rate: request i goes out at start + i / rate on
    // connection i mod concurrency, so a stalled connection's delay counts
    // against every request queued behind it.
    let total = (s.rate as f64 * s.paced_secs) as usize;
    let paced = Arc::new(prepare(sent, total));
    let disk1 = DiskUse::now(&metrics);
    let start = tokio::time::Instant::now() + Duration::from_millis(50);
    let mut handles = Vec::with_capacity(s.concurrency);
    for c in 0..s.concurrency {
        let mut conn = connect(addr).await;
        let paced = paced.clone();
        let rate = s.rate as f64;
        let concurrency = s.concurrency;
        handles.push(tokio::spawn(async move {
            let mut out = Vec::new();
            let mut free_at = start;
            for i in (c..paced.len()).step_by(concurrency) {
                let at = start + Duration::from_secs_f64(i as f64 / rate);
                tokio::time::sleep_until(at).await;
                // The timer wakes up to a millisecond late; that is the load
                // generator's delay, not the receiver's, so the clock starts
                // when the request goes out. But when the previous answer on
                // this connection came after `at`, the receiver held this
                // request back and the wait counts.
                let begin = if free_at > at { at } else { tokio::time::Instant::now() };
                let ok = send(&mut conn, addr, &paced[i]).await;
                free_at = tokio::time::Instant::now();
                out.push((ok, free_at - begin));
            }
            out
        }));
    }
    let mut lat = Vec::with_capacity(total);
    let mut failed = 0;
    for h in handles {
        for (ok, d) in h.await.unwrap() {
            if ok { lat.push(d) } else { failed += 1 }
        }
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
    println!("{name}: paced phase: {}", disk1.since(&metrics, lat.len()));
    if s.check {
        let burst_failed = sent - acked;
        assert_eq!((burst_failed, failed), (0, 0), "{name}: refused deliveries");
        let acknowledged = (acked + lat.len()) as u64;
        let deadline = Instant::now() + Duration::from_secs(60);
        let counts = loop {
            let c = store.event_log_counts().await.unwrap();
            if c.pending + c.processing + c.unexpanded == 0 || Instant::now() > deadline {
                break c;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(counts.deliveries, acknowledged, "{name}: stored = acknowledged");
        assert_eq!(counts.done, acknowledged, "{name}: one event processed per delivery");
        assert_eq!((counts.failed, counts.dead_letters), (0, 0), "{name}: {counts:?}");
    }
    let _ = stop.send(());
    task.await.unwrap();
}

/// A new temporary directory for one set-up, after writing out what earlier
/// set-ups left in the page cache: their writeback would otherwise queue in
/// front of this set-up's syncs (one such run measured a p99 of 33 ms).
fn fresh_dir() -> tempfile::TempDir {
    let _ = std::process::Command::new("sync").status();
    tempfile::tempdir().unwrap()
}

fn sqlite_url(dir: &tempfile::TempDir, file: &str) -> String {
    format!("sqlite://{}?mode=rwc", dir.path().join(file).display())
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    igdm_test::bench_main(
        || {
            measure(&Settings {
                check: true,
                throughput_secs: 0.3,
                paced_secs: 0.3,
                rate: 200,
                concurrency: 4,
            });
        },
        || {
            let secs = env_or("IGDM_BENCH_SECS", 4.0);
            measure(&Settings {
                check: false,
                throughput_secs: secs,
                paced_secs: secs,
                rate: 2000,
                concurrency: env_or("IGDM_BENCH_CONCURRENCY", 64),
            });
        },
    );
}

fn measure(s: &Settings) {
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let only = std::env::var("IGDM_BENCH_ONLY").unwrap_or_default();
        if only.is_empty() || only == "sqlite" || only == "sqlite-one" {
            // One database file for the log and the messages.
            let dir = fresh_dir();
            let store = Store::open(&sqlite_url(&dir, "one.db")).await.unwrap();
            let log = StoreLog::from_store(store).await.unwrap();
            run("sqlite, one file", log, s).await;
        }
        if only.is_empty() || only == "sqlite" || only == "sqlite-split" {
            // The log in a file of its own, as `igdm serve` keeps it.
            let dir = fresh_dir();
            let log = Store::open(&sqlite_url(&dir, "split.webhooks.db")).await.unwrap();
            let messages = Store::open(&sqlite_url(&dir, "split.db")).await.unwrap();
            let log = StoreLog::from_stores(log, messages).await.unwrap();
            run("sqlite, log in its own file", log, s).await;
        }
        if (only.is_empty() || only == "postgres")
            && let Some(schema) = common::pg_schema("igdm-webhook bench ingest (PostgreSQL)").await
        {
            let _ = std::process::Command::new("sync").status();
            let store = Store::Postgres(schema.store().await);
            let log = StoreLog::from_store(store).await.unwrap();
            run("postgres", log, s).await;
        }
    });
}
