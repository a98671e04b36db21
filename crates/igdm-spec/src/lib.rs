//! Connector-spec engine: the connector file format, the expression language, and the executor over a transport trait.

#![warn(clippy::unwrap_used)]
