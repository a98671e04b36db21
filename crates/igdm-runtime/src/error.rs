//! The runtime's errors.

/// What can go wrong opening or keeping an account.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// The home, the accounts file, a state file or the client.
    #[error(transparent)]
    Igdm(#[from] igdm::Error),
    /// The vault, a token refresh, the session records.
    #[error(transparent)]
    Auth(#[from] igdm_auth::AuthError),
    /// The local store.
    #[error("opening the local store: {0}")]
    Store(#[from] igdm_store::StoreError),
    /// No embedded connector has this id.
    #[error("no connector {id:?} (known: {known})")]
    UnknownConnector {
        /// The id asked for.
        id: String,
        /// The ids there are.
        known: String,
    },
    /// An embedded connector that does not load.
    #[error("connector {id}: {message}")]
    Connector {
        /// The connector.
        id: String,
        /// Why it does not load.
        message: String,
    },
    /// The vault holds nothing for the account.
    #[error("no credentials stored for {account:?}: run `igdm login {account}`")]
    NoCredentials {
        /// The account.
        account: String,
    },
    /// The API refused a token being added.
    #[error("the token was refused; nothing was stored for {account:?}: {source}")]
    TokenRefused {
        /// The account.
        account: String,
        /// The refusal.
        source: Box<igdm::Error>,
    },
    /// The API did not say which account a token belongs to.
    #[error("the API did not say which Instagram account the token belongs to: {0}")]
    Unidentified(String),
    /// The account's credential can no longer be used; the message is the next step.
    #[error("{account} stopped: {next_step}")]
    Stopped {
        /// The account.
        account: String,
        /// What the user must do.
        next_step: String,
    },
    /// The recording directory (`IGDM_RECORD`) could not be prepared.
    #[error("recording into {dir}: {source}")]
    Recording {
        /// The directory.
        dir: String,
        /// Why.
        source: std::io::Error,
    },
    /// The sandbox clock could not be followed.
    #[error("the sandbox clock at {url}: {message}")]
    Clock {
        /// The clock URL.
        url: String,
        /// What failed.
        message: String,
    },
    /// A lock of the runtime was poisoned by a panic.
    #[error("the runtime's {0} lock was poisoned")]
    Poisoned(&'static str),
}
