//! igdm sandbox: a faithful local emulator of Instagram's messaging APIs,
//! webhooks, OAuth and login page.
//!
//! One HTTP server on loopback serves:
//! - the private web API under `/api/v1/` (cookie auth, CSRF, `Set-Cookie`
//!   rotation, microsecond timestamps, 39-digit thread ids, injectable
//!   failure modes) — module `private`;
//! - the official Graph API, OAuth (Instagram Login, and Facebook Login's
//!   user-token exchange and Page tokens) and webhook delivery — modules
//!   [`graph`], [`oauth`], [`fb_login`], [`webhooks`];
//! - a browser login page at `/accounts/login/` — module `login`;
//! - a JSON control API under `/_sandbox/` — module `control`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), igdm_sandbox::ServeError> {
//! use igdm_sandbox::{Sandbox, SandboxConfig};
//! let sandbox = Sandbox::new(SandboxConfig::default());
//! let running = igdm_sandbox::serve(sandbox, "127.0.0.1:0".parse().expect("addr")).await?;
//! println!("{}", running.base_url());
//! running.shutdown().await;
//! # Ok(()) }
//! ```

#![warn(clippy::unwrap_used)]

pub mod control;
pub mod fb_login;
pub mod graph;
pub mod login;
pub mod oauth;
pub mod private;
pub mod seed;
pub mod state;
pub mod webhooks;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tower_http::compression::CompressionLayer;

pub use seed::DemoSeed;
pub use state::{
    Account, AccountKind, EndpointStats, FaultMode, GraphCredentials, Item, ItemAttachment,
    ItemKind, ItemReaction, Micros, NewAccount, NewItem, ReactionAction, RequestOutcome, Sandbox,
    SandboxConfig, SandboxError, SandboxEvent, SentRecord, Thread, User, WebCookies, World,
};

/// Errors of [`serve`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
}

/// The complete HTTP surface of a sandbox: private API, login page, control
/// API, Graph API, OAuth and webhook control, with gzip compression for
/// clients that send `Accept-Encoding: gzip`.
pub fn router(sandbox: Arc<Sandbox>) -> Router {
    Router::new()
        .merge(private::routes())
        .merge(login::routes())
        .merge(control::routes())
        .merge(graph::routes())
        .merge(oauth::routes())
        .merge(fb_login::routes())
        .merge(webhooks::routes())
        .layer(CompressionLayer::new().gzip(true).no_br().no_deflate().no_zstd())
        .with_state(sandbox)
}

/// A sandbox being served.
#[derive(Debug)]
pub struct RunningSandbox {
    addr: SocketAddr,
    sandbox: Arc<Sandbox>,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl RunningSandbox {
    /// The bound address.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`.
    #[must_use]
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The shared state.
    #[must_use]
    pub fn sandbox(&self) -> &Arc<Sandbox> {
        &self.sandbox
    }

    /// Stops accepting connections, lets in-flight requests finish, and waits.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.task).await;
    }

    /// Waits until the server stops (it stops only through [`Self::shutdown`]
    /// or a fatal error).
    pub async fn wait(mut self) {
        let _ = (&mut self.task).await;
    }
}

impl Drop for RunningSandbox {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Binds `addr` (use port 0 for an ephemeral port) and serves the sandbox
/// in a background task.
///
/// # Errors
/// [`ServeError::Bind`] when the address cannot be bound.
pub async fn serve(sandbox: Arc<Sandbox>, addr: SocketAddr) -> Result<RunningSandbox, ServeError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })?;
    let local = listener.local_addr().map_err(|source| ServeError::Bind { addr, source })?;
    sandbox.set_base_url(format!("http://{local}"));
    webhooks::start(&sandbox);
    let app = router(Arc::clone(&sandbox));
    let (tx, rx) = oneshot::channel::<()>();
    // Small JSON answers must not wait for delayed ACKs (Nagle).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::debug!(%err, "TCP_NODELAY not set");
        }
    });
    let task = tokio::spawn(async move {
        let server = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = rx.await;
        });
        if let Err(err) = server.await {
            tracing::error!(%err, "sandbox server stopped");
        }
    });
    tracing::info!(addr = %local, "sandbox listening");
    Ok(RunningSandbox { addr: local, sandbox, shutdown: Some(tx), task })
}

impl Sandbox {
    /// Serves this sandbox on `addr`; see [`serve`].
    ///
    /// # Errors
    /// [`ServeError::Bind`].
    pub async fn serve(self: &Arc<Self>, addr: SocketAddr) -> Result<RunningSandbox, ServeError> {
        serve(Arc::clone(self), addr).await
    }
}
