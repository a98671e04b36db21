//! Accounts and authentication: the encrypted vault, browser login over CDP, OAuth token management and session upkeep.

#![warn(clippy::unwrap_used)]
