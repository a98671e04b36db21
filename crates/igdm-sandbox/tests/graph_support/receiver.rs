//! A tiny webhook receiver: answers Meta's verification GET and records POSTs,
//! failing the first N of them on request.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;

/// One received POST.
#[derive(Debug, Clone)]
pub struct Post {
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Post {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.body.to_vec()).unwrap()
    }
}

#[derive(Clone, Default)]
struct Shared {
    verify_token: String,
    posts: Arc<Mutex<Vec<Post>>>,
    verifications: Arc<Mutex<Vec<HashMap<String, String>>>>,
    fail_next: Arc<AtomicUsize>,
    slow_next: Arc<AtomicUsize>,
}

/// A running receiver.
pub struct Receiver {
    pub url: String,
    shared: Shared,
}

impl Receiver {
    /// Starts a receiver that accepts `verify_token`.
    pub async fn start(verify_token: &str) -> Self {
        let shared = Shared { verify_token: verify_token.to_owned(), ..Shared::default() };
        let app =
            Router::new().route("/hook", get(verify).post(receive)).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { url: format!("http://{addr}/hook"), shared }
    }

    /// The next `n` POSTs get a 500.
    pub fn fail_next(&self, n: usize) {
        self.shared.fail_next.store(n, Ordering::SeqCst);
    }

    /// The next `n` POSTs are answered only after a second.
    pub fn slow_next(&self, n: usize) {
        self.shared.slow_next.store(n, Ordering::SeqCst);
    }

    /// Every POST so far (failed ones included).
    pub fn posts(&self) -> Vec<Post> {
        self.shared.posts.lock().unwrap().clone()
    }

    /// Query strings of the verification GETs.
    pub fn verifications(&self) -> Vec<HashMap<String, String>> {
        self.shared.verifications.lock().unwrap().clone()
    }

    /// Waits until at least `n` POSTs arrived (5 s at most).
    pub async fn wait_for(&self, n: usize) -> Vec<Post> {
        for _ in 0..500 {
            let posts = self.posts();
            if posts.len() >= n {
                return posts;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("expected {n} webhook POSTs, got {}", self.posts().len());
    }
}

impl Receiver {
    /// Every `entry[].messaging[]` item received so far, in arrival order.
    pub fn messaging(&self) -> Vec<serde_json::Value> {
        self.posts()
            .iter()
            .flat_map(|p| {
                p.json()["entry"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .flat_map(|e| e["messaging"].as_array().cloned().unwrap_or_default())
            })
            .collect()
    }

    /// Waits until at least `n` messaging items arrived, however batched (5 s at most).
    pub async fn wait_for_messaging(&self, n: usize) -> Vec<serde_json::Value> {
        for _ in 0..500 {
            let items = self.messaging();
            if items.len() >= n {
                return items;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("expected {n} messaging items, got {}", self.messaging().len());
    }
}

async fn verify(
    State(s): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> (StatusCode, String) {
    s.verifications.lock().unwrap().push(q.clone());
    let ok = q.get("hub.mode").map(String::as_str) == Some("subscribe")
        && q.get("hub.verify_token") == Some(&s.verify_token);
    match (ok, q.get("hub.challenge")) {
        (true, Some(c)) => (StatusCode::OK, c.clone()),
        _ => (StatusCode::FORBIDDEN, String::new()),
    }
}

async fn receive(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> StatusCode {
    s.posts.lock().unwrap().push(Post { headers, body });
    let slow =
        s.slow_next.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
    if slow {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let failing =
        s.fail_next.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
    if failing { StatusCode::INTERNAL_SERVER_ERROR } else { StatusCode::OK }
}
