//! A sandbox on an ephemeral loopback port, optionally with the demo seed, and its
//! control API.

use igdm_sandbox::{DemoSeed, RunningSandbox, Sandbox, SandboxConfig};
use serde_json::{Value, json};

/// A sandbox with the default configuration, served on `127.0.0.1:0`.
///
/// # Panics
/// When the sandbox cannot bind loopback.
pub async fn start() -> RunningSandbox {
    start_with(SandboxConfig::default()).await
}

/// A sandbox with `config`, served on `127.0.0.1:0`.
///
/// # Panics
/// When the sandbox cannot bind loopback.
pub async fn start_with(config: SandboxConfig) -> RunningSandbox {
    Sandbox::new(config).serve("127.0.0.1:0".parse().expect("an address")).await.unwrap()
}

/// A sandbox with the demo seed (`maya.lens`, `sunrise_bakery` and their customers).
///
/// # Panics
/// When the sandbox cannot bind loopback or seed.
pub async fn seeded() -> (RunningSandbox, DemoSeed) {
    let running = start().await;
    let seed = running.sandbox().seed_demo().await.unwrap();
    (running, seed)
}

/// Calls the control API (`GET` or a JSON `POST`); returns the status and the JSON body
/// (`null` when there is none).
///
/// # Panics
/// When the request cannot be sent.
pub async fn control(base: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let c = reqwest::Client::new();
    let url = format!("{base}{path}");
    let req = match method {
        "GET" => c.get(url),
        _ => c.post(url).json(&body.unwrap_or_else(|| json!({}))),
    };
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// `POST`s to the control API and asserts success; returns the body.
///
/// # Panics
/// When the call fails or answers other than 200/201.
pub async fn post_ok(base: &str, path: &str, body: Value) -> Value {
    let (status, v) = control(base, "POST", path, Some(body)).await;
    assert!(status == 200 || status == 201, "{path}: {status} {v}");
    v
}

/// The sandbox's request counters (`/_sandbox/stats`).
///
/// # Panics
/// When the call fails.
pub async fn stats(base: &str) -> Value {
    control(base, "GET", "/_sandbox/stats", None).await.1
}
