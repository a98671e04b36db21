//! igdm mcp: the Instagram DM tool server for AI agents over the Model Context Protocol.

#![warn(clippy::unwrap_used)]
