//! Calls on one client run at the same time: the session is not held across a
//! request. Only a connector's declared `pacing.concurrency` serializes them.

use std::time::{Duration, Instant};

use serde_json::json;

use igdm::{Client, PacingPolicy};

/// How long the sandbox holds every answer of the account.
/// Longer than the spacing of the Graph connector's `conversations` bucket
/// (2 a second, spent one at a time: 550 ms), which still applies.
const LATENCY: Duration = Duration::from_millis(2000);

/// Runs two slow reads on `client` at once; returns when each finished,
/// after asserting both worked and took at least the injected latency.
async fn two_slow_reads(client: &Client) -> (Instant, Instant) {
    let timed = || async {
        let start = Instant::now();
        let (page, _) = client.conversations().await.unwrap();
        assert!(!page.items.is_empty());
        let end = Instant::now();
        assert!(end - start >= LATENCY, "the latency fault applied");
        end
    };
    tokio::join!(timed(), timed())
}

async fn slow(base: &str, account: &serde_json::Value) {
    igdm_test::sandbox::post_ok(
        base,
        "/_sandbox/faults",
        json!({"account": account["id"], "latency_ms": LATENCY.as_millis() as u64}),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_slow_calls_on_one_client_overlap() {
    let (sandbox, seed) = igdm_test::sandbox::seeded().await;
    let base = sandbox.base_url();
    slow(&base, &seed.business).await;
    let client = igdm_test::clients::graph(&base, &seed, PacingPolicy::none());
    let (a, b) = two_slow_reads(&client).await;
    // One after the other, the second would end a whole latency after the
    // first; overlapping, only the rate-limit bucket's spacing parts them.
    let apart = if a > b { a - b } else { b - a };
    assert!(apart < LATENCY * 3 / 4, "the calls overlapped: they ended {apart:?} apart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_concurrency_of_one_still_serializes() {
    let (sandbox, seed) = igdm_test::sandbox::seeded().await;
    let base = sandbox.base_url();
    slow(&base, &seed.personal).await;
    // The private connector declares `pacing.concurrency: 1`.
    let client = igdm_test::clients::web(&base, &seed, PacingPolicy::none());
    let (a, b) = two_slow_reads(&client).await;
    let apart = if a > b { a - b } else { b - a };
    assert!(apart >= LATENCY, "one request at a time: they ended {apart:?} apart");
}
