//! The igdm DM bot: intents, replies, reply windows, memory and human handover on top of the webhook pipeline.

#![warn(clippy::unwrap_used)]
