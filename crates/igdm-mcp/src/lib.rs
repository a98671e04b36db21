//! igdm mcp: the Instagram DM tool server for AI agents over the Model Context Protocol.
//!
//! One [`IgdmServer`] serves one account's [`igdm::Client`] over stdio
//! ([`serve_stdio`]) or Streamable HTTP behind a bearer token ([`serve_http`]).
//!
//! - Split tools (reads annotated read-only and idempotent, writes annotated
//!   destructive where they are) plus seed 001's multiplexed `Messages` tool,
//!   whose actions go through the same per-action policy.
//! - Every result is `{ok, data, page, truncated, warnings}`; errors are tool
//!   results with `isError` and `{ok: false, error: {class, message, retryable,
//!   retry_after, needs_user, remediation}}`.
//! - Content written by other people is marked `untrusted` with its
//!   provenance and a fixed note.
//! - [`Policy`]: read-only mode, a tool allowlist, a recipient allowlist and an
//!   approval mode in which writes become [drafts](drafts::Drafts).

#![warn(clippy::unwrap_used)]

pub mod drafts;
pub mod events;
pub mod http;
pub mod output;
pub mod server;
pub mod tools;

pub use drafts::{Draft, DraftStatus, Drafts};
pub use http::{HttpOptions, RunningHttp, generate_token, http_router, serve_http};
pub use output::{ToolError, ToolOutput, UNTRUSTED_NOTE};
pub use server::{INBOX_URI, IgdmServer, MEDIA_URI_TEMPLATE, McpConfig, MediaAccess, Policy};

use std::path::PathBuf;

use rmcp::ServiceExt as _;

/// Errors of the MCP server outside tool calls (those become tool results).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum McpError {
    /// `--allow` names a tool this server does not have.
    #[error("unknown tool {name:?} in --allow (tools: {known})")]
    UnknownTool {
        /// The name given.
        name: String,
        /// The tools that exist.
        known: String,
    },
    /// Inconsistent options.
    #[error("{0}")]
    Config(String),
    /// No draft with that id.
    #[error("no draft {0:?}")]
    NoDraft(String),
    /// The draft was already approved or rejected.
    #[error("draft {id} is already {status:?}")]
    Decided {
        /// The draft id.
        id: String,
        /// Its status.
        status: DraftStatus,
    },
    /// A draft file could not be read or written.
    #[error("drafts: {0}")]
    Draft(String),
    /// The transport failed.
    #[error("mcp transport: {0}")]
    Transport(String),
    /// Binding or serving HTTP failed.
    #[error("http: {0}")]
    Io(#[from] std::io::Error),
}

/// Serves `server` on stdin/stdout until the client disconnects. Logs must go
/// to stderr: stdout carries the protocol. With `events`, new lines of that
/// JSON Lines file (`igdm serve --events PATH`) reach the client as
/// [`events::EVENT_METHOD`] notifications.
///
/// # Errors
/// When the session cannot start or ends with a transport error.
pub async fn serve_stdio(server: IgdmServer, events: Option<PathBuf>) -> Result<(), McpError> {
    serve_io(server, rmcp::transport::stdio(), events).await
}

/// Serves `server` on any rmcp transport (a pipe, a socket pair) until the
/// client disconnects; `events` as in [`serve_stdio`].
///
/// # Errors
/// When the session cannot start or ends with a transport error.
pub async fn serve_io<T, E, A>(
    server: IgdmServer,
    transport: T,
    events: Option<PathBuf>,
) -> Result<(), McpError>
where
    T: rmcp::transport::IntoTransport<rmcp::RoleServer, E, A>,
    E: std::error::Error + Send + Sync + 'static,
{
    let account = server.client().account().name.clone();
    let running = server.serve(transport).await.map_err(|e| McpError::Transport(e.to_string()))?;
    let tail =
        events.map(|path| tokio::spawn(events::forward(path, account, running.peer().clone())));
    let result = running.waiting().await.map_err(|e| McpError::Transport(e.to_string()));
    if let Some(t) = tail {
        t.abort();
    }
    result.map(drop)
}
