//! One module per area of the CLI.

pub mod sandbox;
pub mod serve;
pub mod spec;
