//! The igdm client library: one typed interface over every Instagram connector, with rate limits, retries, session health and idempotent sends.

#![warn(clippy::unwrap_used)]
