//! `igdm serve` killed with SIGKILL during a burst of deliveries loses no
//! acknowledged event and applies none twice once restarted, on SQLite and
//! on PostgreSQL (`IGDM_TEST_DATABASE_URL`; see `igdm_test::prereq`).

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

const SECRET: &str = "crash-test-secret";
const ACCOUNT: &str = "17841400000000001";
const CUSTOMER: &str = "4242";

fn start(db: &str, home: &std::path::Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_igdm"))
        .args(["serve", "--addr", "127.0.0.1:0", "--database", db, "--lease-secs", "1"])
        .env("IGDM_APP_SECRET", SECRET)
        .env("IGDM_VERIFY_TOKEN", "t")
        .env("IGDM_HOME", home)
        .env_remove("IGDM_DATABASE_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix("igdm serve: listening on http://") {
                let _ = tx.send(rest.trim_end_matches("/webhook").to_owned());
            }
        }
    });
    let addr = rx.recv_timeout(Duration::from_secs(60)).expect("igdm serve did not start");
    (child, addr)
}

fn body(n: usize) -> String {
    let ts = 1_790_000_000_000_i64 + i64::try_from(n).unwrap();
    serde_json::json!({"object": "instagram", "entry": [{"id": ACCOUNT, "time": ts, "messaging": [
        {"sender": {"id": CUSTOMER}, "recipient": {"id": ACCOUNT}, "timestamp": ts,
         "message": {"mid": format!("crash-{n}"), "text": format!("message {n}")}},
        {"sender": {"id": CUSTOMER}, "recipient": {"id": ACCOUNT}, "timestamp": ts,
         "reaction": {"mid": format!("crash-{n}"), "action": "react", "reaction": "love", "emoji": "❤️"}}
    ]}]})
    .to_string()
}

/// POSTs delivery `n`; `Some(status)` when an answer came back.
fn post(addr: &str, n: usize) -> Option<u16> {
    let body = body(n);
    let sig = igdm_webhook::sign(SECRET.as_bytes(), body.as_bytes());
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(20))).ok()?;
    let req = format!(
        "POST /webhook HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         X-Hub-Signature-256: {sig}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    resp.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_a_burst_loses_no_acknowledged_event() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}?mode=rwc", dir.path().join("igdm.db").display());
    // `igdm serve` keeps the event log in a file of its own beside the store.
    let log_db = format!("sqlite://{}?mode=rwc", dir.path().join("igdm.webhooks.db").display());
    crash_and_restart(&db, &log_db, dir.path()).await;
}

/// The same on PostgreSQL, where the receiver stores raw bodies before the
/// acknowledgement and the killed process leaves deliveries unexpanded and
/// leased to itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_a_burst_loses_no_acknowledged_event_on_postgres() {
    let test = "sigkill_during_a_burst_loses_no_acknowledged_event_on_postgres";
    let Some(schema) = igdm_test::pg::PgSchema::create(test).await else { return };
    let db = schema.url_with_search_path();
    let dir = tempfile::tempdir().unwrap();
    crash_and_restart(&db, &db, dir.path()).await;
}

/// Kills `igdm serve` on `db` mid-burst, restarts it, replays what Meta
/// would retry, and checks the store; `log_db` is where its event log is.
async fn crash_and_restart(db: &str, log_db: &str, home: &std::path::Path) {
    let (mut first, addr) = start(db, home);

    // Four senders, each with its own range of deliveries, until the kill.
    let acked = Arc::new(Mutex::new(Vec::<usize>::new()));
    let attempted = Arc::new(Mutex::new(Vec::<usize>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let senders: Vec<_> = (0..4)
        .map(|t| {
            let (acked, attempted, stop, addr) =
                (acked.clone(), attempted.clone(), stop.clone(), addr.clone());
            std::thread::spawn(move || {
                for k in 0..5000 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let n = t * 10_000 + k;
                    attempted.lock().unwrap().push(n);
                    match post(&addr, n) {
                        Some(200) => acked.lock().unwrap().push(n),
                        Some(other) => panic!("delivery {n} answered {other}"),
                        None => break,
                    }
                }
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.lock().unwrap().len() < 300 {
        assert!(Instant::now() < deadline, "the burst did not get going");
        std::thread::sleep(Duration::from_millis(5));
    }
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    stop.store(true, Ordering::Relaxed);
    for s in senders {
        s.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    let attempted = attempted.lock().unwrap().clone();
    assert!(acked.len() >= 300);

    // The store already holds every acknowledged delivery.
    let log = igdm_store::Store::open(log_db).await.unwrap();
    let counts = log.event_log_counts().await.unwrap();
    let store = igdm_store::Store::open(db).await.unwrap();
    assert!(counts.deliveries >= acked.len() as u64);

    // Restart. Meta retries what was not acknowledged, and some acknowledged
    // deliveries come again as duplicates.
    let (mut second, addr) = start(db, home);
    let unacked: Vec<usize> = attempted.iter().copied().filter(|n| !acked.contains(n)).collect();
    for n in unacked.iter().chain(acked.iter().take(50)) {
        assert_eq!(post(&addr, *n), Some(200), "retry of {n}");
    }
    let total = attempted.len() as u64;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let c = log.event_log_counts().await.unwrap();
        if c.done == 2 * total && c.pending == 0 && c.processing == 0 && c.unexpanded == 0 {
            assert_eq!(c.failed, 0);
            break;
        }
        assert!(Instant::now() < deadline, "events not processed after restart: {c:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Every acknowledged message is stored once, with its one reaction.
    let mut stored = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = store.list_messages(ACCOUNT, CUSTOMER, 500, cursor.as_deref()).await.unwrap();
        stored.extend(page.items);
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(stored.len() as u64, total, "one row per delivered message");
    for n in &acked {
        let m = store.get_message(ACCOUNT, CUSTOMER, &format!("crash-{n}")).await.unwrap();
        let m = m.unwrap_or_else(|| panic!("acknowledged message {n} is missing"));
        assert_eq!(m.text.as_deref(), Some(format!("message {n}").as_str()));
        assert_eq!(m.reactions.len(), 1, "reaction of {n} applied once");
    }

    // SIGTERM stops the server gracefully: it drains and exits 0.
    let term = Command::new("kill").args(["-TERM", &second.id().to_string()]).status().unwrap();
    assert!(term.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = second.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "igdm serve did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "igdm serve exited with {status} on SIGTERM");
}
