//! Local message store: the MessageStore trait with SQLite and PostgreSQL backends, full-text search and one conformance suite.

#![warn(clippy::unwrap_used)]
