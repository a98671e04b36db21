//! Load benchmark: mixed private-API traffic through a sandbox on loopback.
//!
//! `cargo bench -p igdm-sandbox --bench load` runs for `IGDM_BENCH_SECS`
//! seconds (default 5) with `IGDM_BENCH_CONCURRENCY` workers (default 48) and
//! prints requests per second. Any non-2xx answer fails the run.
//!
//! The mix per 20 requests: 8 thread pages, 4 inbox pages, 3 text sends,
//! 2 presence calls, 2 current-user calls, 1 reaction.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use igdm_sandbox::{NewAccount, NewItem, Sandbox, SandboxConfig};
use reqwest::header::{HeaderMap, HeaderValue};

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

struct Setup {
    base: String,
    headers: HeaderMap,
    threads: Vec<(String, String)>,
}

async fn setup(sb: &Arc<Sandbox>, base: String) -> Setup {
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
    let mut headers = HeaderMap::new();
    let cookie = format!(
        "sessionid={}; csrftoken={}; ds_user_id={}",
        c.sessionid, c.csrftoken, c.ds_user_id
    );
    headers.insert("cookie", HeaderValue::from_str(&cookie).unwrap());
    headers.insert("x-csrftoken", HeaderValue::from_str(&c.csrftoken).unwrap());
    Setup { base, headers, threads }
}

async fn run(secs: u64, workers: u64) {
    let sb = Sandbox::new(SandboxConfig::default());
    let running = sb.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let setup = Arc::new(setup(&sb, running.base_url()).await);
    let client = reqwest::Client::builder().no_gzip().pool_max_idle_per_host(256).build().unwrap();
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..workers {
        let (client, setup, ok, failed, stop) =
            (client.clone(), Arc::clone(&setup), ok.clone(), failed.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut n: u64 = worker * 7;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let (thread, item) = &setup.threads[(n % 10) as usize];
                let api = format!("{}/api/v1/", setup.base);
                let req = match n % 20 {
                    0..=7 => client
                        .get(format!("{api}direct_v2/threads/{thread}/"))
                        .query(&[("limit", "10"), ("direction", "older")]),
                    8..=11 => client
                        .get(format!("{api}direct_v2/inbox/"))
                        .query(&[("limit", "10"), ("thread_message_limit", "1")]),
                    12..=14 => {
                        client.post(format!("{api}direct_v2/threads/broadcast/text/")).form(&[
                            ("thread_ids", format!("[{thread}]")),
                            ("text", format!("load {n}")),
                            ("client_context", format!("{worker}-{n}")),
                        ])
                    }
                    15..=16 => client.get(format!("{api}direct_v2/get_presence/")),
                    17..=18 => client.get(format!("{api}accounts/current_user/")),
                    _ => client
                        .post(format!("{api}direct_v2/threads/{thread}/items/{item}/reactions/"))
                        .form(&[("reaction_status", "created"), ("emoji", "❤️")]),
                };
                match req.headers(setup.headers.clone()).send().await {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(r) => {
                        let status = r.status();
                        let body = r.text().await.unwrap_or_default();
                        eprintln!("error {status}: {body}");
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        eprintln!("transport error: {e}");
                        failed.fetch_add(1, Ordering::Relaxed);
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
