//! Webhook receiver for the Instagram Messaging API: signature checks,
//! durable event log, parsing and processing.
//!
//! The pipeline: `POST /webhook` verifies `X-Hub-Signature-256` over the raw
//! body, parses it into normalized [`igdm_model::Event`]s with de-duplication
//! keys, and hands the delivery to a writer that commits many deliveries per
//! transaction; the request is answered 200 only after its delivery is
//! durable. On PostgreSQL only the raw body is stored before the answer,
//! and workers store the delivery's events (de-duplicated) afterwards; on
//! SQLite the events go into the acknowledged commit. Workers apply the
//! events to the message store and publish them to the in-process broadcast channel, the
//! JSON-lines event stream and the outgoing hook.
//!
//! Only the delivery commit waits for the disk (SQLite `synchronous = FULL`,
//! PostgreSQL's default commit). New deliveries (or events) are stored
//! leased to this process and handed to its workers in memory, so
//! processing neither claims them back nor parses them again; claims from
//! the log pick up what other processes stored, retries and expired leases.
//! Processing writes through relaxed handles ([`StoreLog::from_store`],
//! [`StoreLog::from_stores`]): what it writes can be rebuilt from the
//! durable bodies, because an undone expansion, claim or completion is done
//! again and applying an event is idempotent. On SQLite the log is best kept
//! in a database file of its own ([`StoreLog::from_stores`]), so that
//! applying events never holds the write lock acknowledgements need.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use igdm_webhook::{Config, Secrets, Server, StoreLog};
//! let store = igdm_store::Store::open("sqlite:///var/lib/igdm/igdm.db?mode=rwc").await?;
//! let log = igdm_store::Store::open("sqlite:///var/lib/igdm/igdm.webhooks.db?mode=rwc").await?;
//! let config = Config::new(Secrets::new("app-secret", "verify-token"));
//! let server = Server::new(config, StoreLog::from_stores(log, store).await?);
//! let mut events = server.subscribe();
//! tokio::spawn(async move { while let Ok(ev) = events.recv().await { println!("{}", ev.kind) } });
//! server.serve("127.0.0.1:8080".parse()?).await?;
//! # Ok(()) }
//! ```

#![warn(clippy::unwrap_used)]

pub mod apply;
pub mod metrics;
pub mod parse;
pub mod server;
pub mod signature;
pub mod sinks;
pub mod store;

pub use apply::{REPLY_WINDOW, StoreLog};
pub use metrics::Metrics;
pub use parse::{ParseError, ParsedDelivery, ParsedEvent, parse_delivery};
pub use server::{Config, Secrets, ServeError, Server, WEBHOOK_PATH, shutdown_signal};
pub use signature::{SIGNATURE_HEADER, sign, verify};
pub use sinks::{
    EventOutput, EventSink, ForwardConfig, ForwardSink, JsonLinesSink, NatsSink, SinkError,
    SinkFuture, event_id,
};
pub use store::{
    BoxError, ClaimedDelivery, ClaimedEvent, DeliveryContent, DeliveryReceipt, Expansion,
    ExpansionReceipt, Lease, LogCounts, NewDelivery, NewEvent, StoreFuture, WebhookStore,
};
