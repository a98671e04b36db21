//! igdm sandbox: a faithful local emulator of Instagram's messaging APIs, webhooks, OAuth and login page.

#![warn(clippy::unwrap_used)]
