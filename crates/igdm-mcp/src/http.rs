//! Streamable HTTP transport behind a bearer token.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::{IgdmServer, McpError};

/// Where and how to serve HTTP.
#[derive(Clone)]
pub struct HttpOptions {
    /// The address to bind (port 0 picks one).
    pub addr: SocketAddr,
    /// The bearer token every request must carry.
    pub token: String,
    /// Allow binding a non-loopback address (and any Host header).
    pub allow_remote: bool,
}

impl std::fmt::Debug for HttpOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpOptions")
            .field("addr", &self.addr)
            .field("token", &"<redacted>")
            .field("allow_remote", &self.allow_remote)
            .finish()
    }
}

/// A fresh random bearer token (256 bits, hex).
#[must_use]
pub fn generate_token() -> String {
    igdm::random_token()
}

async fn require_bearer(State(token): State<Arc<str>>, req: Request, next: Next) -> Response {
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(t) if igdm::same_secret(t.as_bytes(), token.as_bytes()) => next.run(req).await,
        _ => {
            warn!("refused an MCP request without a valid bearer token");
            (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer realm=\"igdm\"")],
                axum::Json(serde_json::json!({
                    "ok": false,
                    "error": {"class": "auth_expired", "message": "missing or wrong bearer token",
                              "remediation": "send Authorization: Bearer <IGDM_MCP_TOKEN>"}
                })),
            )
                .into_response()
        }
    }
}

/// The MCP endpoint at `/mcp`, behind the bearer token.
pub fn http_router(
    server: IgdmServer,
    token: &str,
    allow_remote: bool,
    cancel: CancellationToken,
) -> axum::Router {
    let mut config = StreamableHttpServerConfig::default().with_cancellation_token(cancel);
    if allow_remote {
        config = config.disable_allowed_hosts();
    }
    let service = StreamableHttpService::new(
        move || Ok(server.clone()),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let token: Arc<str> = Arc::from(token);
    axum::Router::new()
        .nest_service("/mcp", service)
        .layer(axum::middleware::from_fn_with_state(token, require_bearer))
}

/// A running HTTP server.
#[derive(Debug)]
pub struct RunningHttp {
    /// The bound address.
    pub addr: SocketAddr,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningHttp {
    /// The MCP endpoint URL.
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }

    /// Stops accepting requests and ends the sessions.
    pub fn shutdown(&self) {
        self.cancel.cancel();
    }

    /// Waits until the server stops.
    ///
    /// # Errors
    /// When serving failed.
    pub async fn wait(self) -> Result<(), McpError> {
        match self.task.await {
            Ok(r) => r.map_err(McpError::from),
            Err(e) => Err(McpError::Transport(e.to_string())),
        }
    }
}

/// Binds and serves `server` over Streamable HTTP.
///
/// # Errors
/// A non-loopback address without `allow_remote`, an empty token, or a bind failure.
pub async fn serve_http(server: IgdmServer, options: HttpOptions) -> Result<RunningHttp, McpError> {
    if !options.allow_remote && !options.addr.ip().is_loopback() {
        return Err(McpError::Config(format!(
            "{} is not a loopback address; pass --allow-remote to serve other hosts",
            options.addr
        )));
    }
    if options.token.len() < 16 {
        return Err(McpError::Config("the bearer token must be at least 16 characters".into()));
    }
    let listener = tokio::net::TcpListener::bind(options.addr).await?;
    let addr = listener.local_addr()?;
    let cancel = CancellationToken::new();
    let router = http_router(server, &options.token, options.allow_remote, cancel.child_token());
    let stop = cancel.clone();
    let task = tokio::spawn(async move {
        axum::serve(listener, router).with_graceful_shutdown(stop.cancelled_owned()).await
    });
    info!(%addr, "MCP server listening on http://{addr}/mcp");
    Ok(RunningHttp { addr, cancel, task })
}
