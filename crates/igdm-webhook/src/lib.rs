//! Webhook receiver for the Instagram Messaging API: signature checks, durable event log, parsing and processing.

#![warn(clippy::unwrap_used)]
