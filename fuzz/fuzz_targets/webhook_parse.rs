//! Webhook deliveries: any raw body parses into events or a parse error (a dead
//! letter), never a panic; every parsed event serializes.

#![no_main]

use igdm_model::Timestamp;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let at = Timestamp::from_unix_seconds(1_790_000_000).expect("a valid time");
    if let Ok(parsed) = igdm_webhook::parse_delivery(data, at) {
        for event in &parsed.events {
            serde_json::to_vec(&event.event).expect("an event serializes");
        }
    }
});
