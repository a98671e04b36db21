//! PostgreSQL only: webhook appends run on connections kept outside the
//! pool. One the server ended is noticed by the statement that uses it,
//! dropped, and not reused.

mod common;

use igdm_model::Timestamp;
use igdm_store::RawDelivery;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_recover_after_the_server_ends_their_connections() {
    let Some(h) = common::postgres("appends_recover_after_the_server_ends_their_connections").await
    else {
        return;
    };
    let now = Timestamp::now();
    let one = [RawDelivery { raw_body: b"one", received_at: now }];
    let two = [RawDelivery { raw_body: b"two", received_at: now }];
    h.store.append_unexpanded(&one, None).await.unwrap();

    assert!(h.terminate_connections().await >= 1, "the append's connection was not found");

    // The first append may fail on the dead connection; the one after it
    // must run on a new one.
    let mut failures = 0;
    while let Err(e) = h.store.append_unexpanded(&two, None).await {
        failures += 1;
        assert!(failures < 2, "appends keep failing after a reconnect: {e}");
    }
    // A failed append stored nothing: exactly two deliveries.
    let counts = h.reopen().await.event_log_counts().await.unwrap();
    assert_eq!(counts.deliveries, 2);
    assert_eq!(counts.unexpanded, 2);
}
