//! `igdm ui`: a local web inbox over the account runtime, the store and the
//! live event stream.
//!
//! Pages are rendered on the server from the store (one HTML builder escapes
//! every value it did not get as a `&'static str`); a small script embedded
//! in the binary adds live updates (server-sent events fed by the
//! watchers' [`igdm::watch::Hub`]) and keyboard navigation. Everything
//! works without it but live updates. Replies go through the account's
//! [`igdm::Client`], hence its send ledger: a form carries an idempotency
//! key minted when it was rendered, so a form sent twice sends once, and a
//! send whose outcome is unknown is shown as such, never resent.
//!
//! ```no_run
//! # async fn demo(inbox: igdm_ui::Inbox) -> Result<(), igdm_ui::UiError> {
//! let options = igdm_ui::UiOptions::new("127.0.0.1:0".parse().unwrap(), igdm_ui::random_token());
//! let running = igdm_ui::serve(inbox, options).await?;
//! println!("open {}", running.login_url());
//! running.wait().await
//! # }
//! ```

#![warn(clippy::unwrap_used)]

mod auth;
mod html;
mod live;
mod pages;

use std::net::SocketAddr;
use std::sync::Arc;

use igdm::watch::Hub;
use igdm_model::Backend;
use igdm_runtime::LiveAccount;
use igdm_store::MessageStore;

/// Errors of the web inbox.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UiError {
    /// A bad option (address, token).
    #[error("{0}")]
    Config(String),
    /// The socket could not be bound or served.
    #[error("serving: {0}")]
    Io(#[from] std::io::Error),
}

/// One account the inbox shows.
#[derive(Debug, Clone)]
pub struct InboxAccount {
    /// The account's local name.
    pub name: String,
    /// The surface it is reached through.
    pub backend: Backend,
    /// The opened account, or why it could not be opened (the next step).
    pub live: Result<LiveAccount, String>,
}

impl InboxAccount {
    /// An account opened through the runtime.
    #[must_use]
    pub fn opened(live: LiveAccount) -> Self {
        let account = live.client().account();
        Self { name: account.name.clone(), backend: account.backend.clone(), live: Ok(live) }
    }
}

/// What the inbox reads and acts on.
#[derive(Clone)]
pub struct Inbox {
    /// The accounts, in the order shown.
    pub accounts: Vec<InboxAccount>,
    /// The local store (conversations, messages, search, send ledger).
    pub store: Arc<dyn MessageStore>,
    /// The watchers' hub whose events feed live updates; without it pages
    /// show what the store holds when loaded.
    pub hub: Option<Arc<Hub>>,
    /// The media store kept attachments are served from; without it they
    /// are listed, never fetched from Instagram's CDN.
    pub media: Option<Arc<igdm::MediaStore>>,
}

impl std::fmt::Debug for Inbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbox")
            .field("accounts", &self.accounts)
            .field("store", &self.store.backend_name())
            .field("live", &self.hub.is_some())
            .finish_non_exhaustive()
    }
}

impl Inbox {
    fn account(&self, name: &str) -> Option<&InboxAccount> {
        self.accounts.iter().find(|a| a.name == name)
    }
}

/// Where and how to serve.
#[derive(Clone)]
pub struct UiOptions {
    /// The address to bind (port 0 picks one).
    pub addr: SocketAddr,
    /// The access token every request must carry.
    pub token: String,
    /// Allow a non-loopback address (and any Host header).
    pub allow_remote: bool,
}

impl UiOptions {
    /// Loopback-only options.
    #[must_use]
    pub fn new(addr: SocketAddr, token: String) -> Self {
        Self { addr, token, allow_remote: false }
    }
}

impl std::fmt::Debug for UiOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UiOptions")
            .field("addr", &self.addr)
            .field("token", &"<redacted>")
            .field("allow_remote", &self.allow_remote)
            .finish()
    }
}

/// A fresh random access token (256 bits, hex).
#[must_use]
pub fn random_token() -> String {
    igdm::random_token()
}

/// The inbox's routes behind the token gate.
///
/// Live streams end when `stop` turns true (the server's graceful shutdown
/// waits for them).
pub fn router(
    inbox: Inbox,
    token: &str,
    allow_remote: bool,
    stop: tokio::sync::watch::Receiver<bool>,
) -> axum::Router {
    let gate = Arc::new(auth::Gate::new(token.to_owned(), allow_remote));
    pages::routes(Arc::new(pages::App { inbox, stop }))
        .layer(axum::middleware::from_fn_with_state(gate, auth::guard))
}

/// A running inbox server.
pub struct RunningUi {
    /// The bound address.
    pub addr: SocketAddr,
    token: String,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl std::fmt::Debug for RunningUi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningUi").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl RunningUi {
    /// The inbox's address, without the token.
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// The link that opens a browser session (carries the token: print it once).
    #[must_use]
    pub fn login_url(&self) -> String {
        format!("http://{}/?token={}", self.addr, self.token)
    }

    /// Stops accepting requests.
    pub fn shutdown(&self) {
        let _ = self.stop.send(true);
    }

    /// Waits until the server stops.
    ///
    /// # Errors
    /// When serving failed.
    pub async fn wait(self) -> Result<(), UiError> {
        match self.task.await {
            Ok(r) => Ok(r?),
            Err(e) => Err(UiError::Config(format!("the server task ended: {e}"))),
        }
    }
}

/// Binds and serves `inbox`.
///
/// # Errors
/// A non-loopback address without `allow_remote`, a token shorter than 16
/// characters, or a bind failure.
pub async fn serve(inbox: Inbox, options: UiOptions) -> Result<RunningUi, UiError> {
    if !options.allow_remote && !options.addr.ip().is_loopback() {
        return Err(UiError::Config(format!(
            "{} is not a loopback address; pass --allow-remote to serve other hosts",
            options.addr
        )));
    }
    if options.token.len() < 16 {
        return Err(UiError::Config("the access token must be at least 16 characters".into()));
    }
    let listener = tokio::net::TcpListener::bind(options.addr).await?;
    let addr = listener.local_addr()?;
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let router = router(inbox, &options.token, options.allow_remote, stopped.clone());
    let task = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = stopped.wait_for(|s| *s).await;
            })
            .await
    });
    tracing::info!(%addr, "igdm ui listening");
    Ok(RunningUi { addr, token: options.token, stop, task })
}
