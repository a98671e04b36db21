//! Load benchmark: mixed private-API traffic through a sandbox on loopback.
//!
//! `cargo bench -p igdm-sandbox --bench load` runs for `IGDM_BENCH_SECS`
//! seconds (default 5) with `IGDM_BENCH_CONCURRENCY` workers (default 48) and
//! prints requests per second. Any non-2xx answer fails the run.
//!
//! The mix per 20 requests: 8 thread pages, 4 inbox pages, 3 text sends,
//! 2 presence calls, 2 current-user calls, 1 reaction.
//!
//! The client shares the machine with the server, so it is kept light:
//! each worker holds one keep-alive HTTP/1.1 connection (hyper's
//! connection-level client) and sends requests built from parts prepared
//! once; only the text sends' bodies differ per request (a fresh
//! `client_context` each, as real clients send). Every answer is read to the
//! end and its status checked.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, COOKIE, HOST};
use http::{HeaderValue, Method, Request, Uri};
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use igdm_sandbox::{NewAccount, NewItem, Sandbox, SandboxConfig};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing
    // and expects a quick run.
    let quick = !std::env::args().any(|a| a == "--bench");
    let secs = if quick { 1 } else { env_u64("IGDM_BENCH_SECS", 5) };
    let workers = env_u64("IGDM_BENCH_CONCURRENCY", 48);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(run(secs, workers));
}

/// What one thread's requests need.
struct ThreadTarget {
    id: String,
    page: Uri,
    reaction: Uri,
}

/// Everything a worker needs to build requests, prepared once.
struct Setup {
    host: HeaderValue,
    cookie: HeaderValue,
    csrf: HeaderValue,
    form: HeaderValue,
    inbox: Uri,
    presence: Uri,
    current_user: Uri,
    broadcast: Uri,
    reaction_body: Bytes,
    threads: Vec<ThreadTarget>,
}

fn uri(s: &str) -> Uri {
    s.parse().unwrap()
}

fn form(pairs: &[(&str, &str)]) -> Bytes {
    let mut f = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        f.append_pair(k, v);
    }
    Bytes::from(f.finish())
}

async fn setup(sb: &Arc<Sandbox>, addr: std::net::SocketAddr) -> Setup {
    let (account, threads) = sb
        .write(|w| {
            let a = w
                .create_account(NewAccount {
                    kind: igdm_sandbox::AccountKind::Personal,
                    username: "bench".into(),
                    full_name: None,
                    password: None,
                    two_factor: false,
                    challenge: false,
                })
                .unwrap();
            let mut threads = Vec::new();
            for n in 0..10 {
                let c = w.create_customer(&format!("customer{n}"), None).unwrap();
                let t = w.thread_with(&a.id, std::slice::from_ref(&c.pk), false).unwrap();
                let mut last = String::new();
                for m in 0..30 {
                    let who = if m % 2 == 0 { &c.pk } else { &a.pk };
                    let item = w
                        .append_item(
                            &t,
                            who,
                            NewItem { text: Some(format!("message {m}")), ..NewItem::default() },
                        )
                        .unwrap();
                    last = item.id;
                }
                threads.push((t, last));
            }
            (a, threads)
        })
        .await;
    let c = &account.cookies;
    let cookie = format!(
        "sessionid={}; csrftoken={}; ds_user_id={}",
        c.sessionid, c.csrftoken, c.ds_user_id
    );
    let api = "/api/v1/";
    Setup {
        host: HeaderValue::from_str(&addr.to_string()).unwrap(),
        cookie: HeaderValue::from_str(&cookie).unwrap(),
        csrf: HeaderValue::from_str(&c.csrftoken).unwrap(),
        form: HeaderValue::from_static("application/x-www-form-urlencoded"),
        inbox: uri(&format!("{api}direct_v2/inbox/?limit=10&thread_message_limit=1")),
        presence: uri(&format!("{api}direct_v2/get_presence/")),
        current_user: uri(&format!("{api}accounts/current_user/")),
        broadcast: uri(&format!("{api}direct_v2/threads/broadcast/text/")),
        reaction_body: form(&[("reaction_status", "created"), ("emoji", "❤️")]),
        threads: threads
            .into_iter()
            .map(|(t, item)| ThreadTarget {
                page: uri(&format!("{api}direct_v2/threads/{t}/?limit=10&direction=older")),
                reaction: uri(&format!("{api}direct_v2/threads/{t}/items/{item}/reactions/")),
                id: t,
            })
            .collect(),
    }
}

impl Setup {
    /// Request number `n` of worker `worker`, following the mix.
    fn request(&self, worker: u64, n: u64) -> Request<Full<Bytes>> {
        let thread = &self.threads[(n % 10) as usize];
        let (method, uri, body) = match n % 20 {
            0..=7 => (Method::GET, &thread.page, None),
            8..=11 => (Method::GET, &self.inbox, None),
            12..=14 => {
                let body = form(&[
                    ("thread_ids", &format!("[{}]", thread.id)),
                    ("text", &format!("load {n}")),
                    ("client_context", &format!("{worker}-{n}")),
                ]);
                (Method::POST, &self.broadcast, Some(body))
            }
            15..=16 => (Method::GET, &self.presence, None),
            17..=18 => (Method::GET, &self.current_user, None),
            _ => (Method::POST, &thread.reaction, Some(self.reaction_body.clone())),
        };
        let mut req = Request::builder()
            .method(method)
            .uri(uri.clone())
            .header(HOST, self.host.clone())
            .header(COOKIE, self.cookie.clone())
            .header("x-csrftoken", self.csrf.clone());
        if body.is_some() {
            req = req.header(CONTENT_TYPE, self.form.clone());
        }
        req.body(Full::new(body.unwrap_or_default())).unwrap()
    }
}

/// One keep-alive connection to the sandbox.
async fn connect(addr: std::net::SocketAddr) -> SendRequest<Full<Bytes>> {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await.unwrap();
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            eprintln!("connection error: {e}");
        }
    });
    sender
}

async fn run(secs: u64, workers: u64) {
    let sb = Sandbox::new(SandboxConfig::default());
    let running = sb.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = running.addr();
    let setup = Arc::new(setup(&sb, addr).await);
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut senders = Vec::new();
    for _ in 0..workers {
        senders.push(connect(addr).await);
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (worker, mut sender) in (0..workers).zip(senders) {
        let (setup, ok, failed, stop) =
            (Arc::clone(&setup), ok.clone(), failed.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut n: u64 = worker * 7;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let req = setup.request(worker, n);
                if let Err(e) = sender.ready().await {
                    eprintln!("transport error: {e}");
                    failed.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                match sender.send_request(req).await {
                    Ok(r) => {
                        let status = r.status();
                        let body = r.into_body().collect().await.map(|b| b.to_bytes());
                        match body {
                            Ok(_) if status.is_success() => {
                                ok.fetch_add(1, Ordering::Relaxed);
                            }
                            Ok(body) => {
                                eprintln!("error {status}: {}", String::from_utf8_lossy(&body));
                                failed.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) => {
                                eprintln!("transport error reading the body: {e}");
                                failed.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    Err(e) => {
                        eprintln!("transport error: {e}");
                        failed.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    println!(
        "sandbox load: {ok} requests in {elapsed:.2}s = {:.0} req/s with {workers} workers, {failed} errors",
        ok as f64 / elapsed
    );
    running.shutdown().await;
    assert_eq!(failed, 0, "the sandbox answered errors under load");
}
