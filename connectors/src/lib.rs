//! The connector files igdm ships, embedded so the binary needs nothing on disk.
//!
//! Each is a connector spec (YAML front matter + Markdown) that `igdm-spec` loads.

#![warn(clippy::unwrap_used)]
