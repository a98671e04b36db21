//! Normalized Instagram Direct model shared by every igdm backend and interface.
//!
//! Everything here is plain data: no I/O, no clocks except where a caller
//! passes one in. Backends (the private web API, the official Graph API) map
//! their wire shapes into these types; the CLI, the MCP server, the store and
//! the webhook pipeline speak them.
//!
//! Conventions:
//! - ids are strings everywhere ([`ids`]); a JSON number is accepted on input;
//! - times are [`Timestamp`]s serialized as RFC 3339 UTC; converting a wire
//!   value is the job of the caller that knows its unit ([`time`]);
//! - enums that mirror provider vocabularies are open: they keep an
//!   `Unknown(String)` variant with the raw value instead of failing.

#![warn(clippy::unwrap_used)]

pub mod error;
pub mod event;
pub mod ids;
pub mod open_enum;
pub mod time;
pub mod types;

pub use error::{ApiError, CallKind, ErrorClass, ProviderError, SessionHealth, SessionState};
pub use event::{Event, EventKind, EventPostback, EventReaction};
pub use ids::{AccountId, ConversationId, MessageId, UserId};
pub use time::Timestamp;
pub use types::*;
