//! One module per area of the CLI.

pub mod accounts;
pub mod auth;
pub mod bot;
pub mod demo;
pub mod mcp;
pub mod msg;
pub mod output;
pub mod sandbox;
pub mod serve;
pub mod spec;
pub mod store;
pub mod ui;
pub mod upkeep;
pub mod watch;
