//! Watch benchmark: event latency (a sandbox customer's message → its line on
//! `igdm watch --events -`, the built binary over real HTTP) and the cost per
//! event of the sinks `igdm watch` and `igdm serve` publish to.
//!
//! Latency depends on where in the poll interval a message lands, so the
//! sends are spread evenly over the interval; figures are reported in
//! milliseconds and as multiples of the interval, which is what carries over
//! to the connector's default interval (30 s): the sandbox's interval is the
//! default compressed in time, like the tests'.
//!
//! `cargo bench -p igdm-cli --bench watch`: `IGDM_BENCH_SAMPLES` messages
//! (default 20) at `IGDM_BENCH_INTERVAL_MS` (default 1000), then
//! `IGDM_BENCH_EVENTS` events (default 5000) through each sink (JSON lines to
//! a file; NATS JetStream when `nats-server` is installed). Under `cargo
//! test` it is one smoke test of a few of each.
//!
//! The samples must fit the connector's read budget (`poll_reads_per_hour`,
//! 60 for instagram-web, compressed with the interval: 60 requests per 120
//! intervals). Each sample costs two or three polls, so about 25 fit; beyond
//! that the watcher waits for its budget window, by design, and a sample
//! times out.

#![allow(clippy::unwrap_used, clippy::cast_precision_loss, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use igdm_model::{Event, EventKind, Timestamp};
use igdm_webhook::{EventOutput, EventSink, JsonLinesSink, NatsSink};
use serde_json::{Value, json};

struct Settings {
    samples: usize,
    interval_ms: u64,
    events: usize,
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    igdm_test::bench_main(
        || run(&Settings { samples: 3, interval_ms: 200, events: 200 }),
        || {
            run(&Settings {
                samples: env_or("IGDM_BENCH_SAMPLES", 20),
                interval_ms: env_or("IGDM_BENCH_INTERVAL_MS", 1000),
                events: env_or("IGDM_BENCH_EVENTS", 5000),
            });
        },
    );
}

fn run(s: &Settings) {
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        latency(s).await;
        sinks(s).await;
    });
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn latency(s: &Settings) {
    let sb = igdm_sandbox::Sandbox::new(igdm_sandbox::SandboxConfig::default());
    let running = sb.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let base = running.base_url();
    let home = tempfile::tempdir().unwrap();
    let igdm = |args: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_igdm"));
        c.args(args)
            .env("IGDM_HOME", home.path())
            .env_remove("IGDM_VAULT_PASSPHRASE")
            .env_remove("IGDM_ACCOUNT")
            .env_remove("IGDM_DATABASE_URL");
        c
    };
    let out = tokio::task::block_in_place(|| {
        igdm(&["--json", "accounts", "add", "me", "--sandbox", &base]).output()
    })
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let added: Value = serde_json::from_slice(&out.stdout).unwrap();
    let accounts = igdm_test::sandbox::control(&base, "GET", "/_sandbox/accounts", None).await.1;
    let acct = accounts["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["pk"] == added["user_id"])
        .and_then(|a| a["id"].as_str())
        .unwrap()
        .to_owned();
    let cust = igdm_test::sandbox::post_ok(&base, "/_sandbox/customers", json!({"username": "b"}))
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let send = |text: String| {
        let (base, cust, acct) = (base.clone(), cust.clone(), acct.clone());
        async move {
            igdm_test::sandbox::post_ok(
                &base,
                &format!("/_sandbox/customers/{cust}/send"),
                json!({"to": acct, "text": text}),
            )
            .await;
        }
    };
    send("start".to_owned()).await;
    let interval = Duration::from_millis(s.interval_ms);
    let mut child =
        igdm(&["watch", "--events", "-", "--interval", &format!("{}ms", s.interval_ms)])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
    let (tx, lines) = mpsc::channel::<(Instant, String)>();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send((Instant::now(), line));
        }
    });
    let (tx, ready) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("watching me") {
                let _ = tx.send(());
            }
        }
    });
    ready.recv_timeout(Duration::from_secs(60)).expect("igdm watch started");
    let mut samples = Vec::with_capacity(s.samples);
    for i in 0..s.samples {
        // Spread the sends evenly over the interval (the watcher's interval
        // returns to the minimum after each event).
        let offset = interval.mul_f64((i * 7 % 10) as f64 / 10.0);
        tokio::time::sleep(offset).await;
        let text = format!("latency {i}");
        let sent = Instant::now();
        send(text.clone()).await;
        loop {
            let (at, line) = lines.recv_timeout(Duration::from_secs(60)).expect("the event");
            let v: Value = serde_json::from_str(&line).unwrap();
            if v["text"] == text.as_str() {
                samples.push(at.duration_since(sent).as_secs_f64() * 1000.0);
                break;
            }
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    samples.sort_by(f64::total_cmp);
    let ms = s.interval_ms as f64;
    let (p50, p99) = (percentile(&samples, 0.5), percentile(&samples, 0.99));
    println!(
        "watch latency, {} messages at a {} ms interval: p50 {p50:.0} ms ({:.2} × interval), p99 {p99:.0} ms ({:.2} × interval); at the default 30 s interval: p50 {:.1} s, p99 {:.1} s",
        samples.len(),
        s.interval_ms,
        p50 / ms,
        p99 / ms,
        p50 / ms * 30.0,
        p99 / ms * 30.0
    );
}

fn events(n: usize) -> Vec<Arc<Event>> {
    (0..n)
        .map(|i| {
            let mut e = Event::new(
                EventKind::Message,
                "17841400000000001",
                Timestamp::from_unix_millis(1_790_000_000_000 + i as i64).unwrap(),
            );
            e.conversation_id = Some("340282366841710300949128171234567890".to_owned());
            e.sender_id = Some("4242".to_owned());
            e.message_id = Some(format!("3402823668417103009491281{i:013}"));
            e.text = Some(format!("message number {i} of the bench"));
            Arc::new(e)
        })
        .collect()
}

async fn per_event(name: &str, sink: &dyn EventSink, events: &[Arc<Event>]) {
    let started = Instant::now();
    for batch in events.chunks(100) {
        sink.publish(batch).await.unwrap();
    }
    let us = started.elapsed().as_secs_f64() * 1e6 / events.len() as f64;
    println!("sink {name}: {:.1} µs per event ({} events, batches of 100)", us, events.len());
}

async fn sinks(s: &Settings) {
    let evs = events(s.events);
    let dir = tempfile::tempdir().unwrap();
    let file =
        JsonLinesSink::open(&EventOutput::File(dir.path().join("events.jsonl"))).await.unwrap();
    per_event("json lines (file, flushed per batch)", &file, &evs).await;
    let lines = std::fs::read_to_string(dir.path().join("events.jsonl")).unwrap().lines().count();
    assert_eq!(lines, s.events);
    if let Some(nats) = igdm_test::prereq::nats("watch bench: NATS sink") {
        let sink = NatsSink::connect(&nats.url, "bench.events").await.unwrap();
        per_event("NATS JetStream (acknowledged)", &sink, &evs).await;
    }
}
