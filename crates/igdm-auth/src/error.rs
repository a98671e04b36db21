//! Errors of the auth crate. Messages never contain secret values: cookie
//! values, tokens, passphrases and app secrets are kept out of every variant.

use std::path::PathBuf;

/// Everything that can go wrong while storing secrets or authenticating.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// An account name is empty, too long or contains characters outside `[A-Za-z0-9._@-]`.
    #[error("invalid account name `{0}`: use 1-64 characters from A-Z a-z 0-9 . _ @ -")]
    InvalidAccount(String),
    /// No credential is stored under this account name.
    #[error("no credential stored for account `{0}`: run `igdm login {0}` first")]
    NotFound(String),
    /// A file operation on the vault or its key failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The vault could not be decrypted with the configured key.
    #[error("cannot decrypt {path}: {reason}")]
    WrongKey {
        /// The vault file.
        path: PathBuf,
        /// Which key was tried and what to do.
        reason: String,
    },
    /// The vault file or the key file is damaged or not an igdm vault.
    #[error("the vault {path} is unreadable: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Required cookies are missing from an import or a browser login.
    #[error("missing required cookies: {}", .0.join(", "))]
    MissingCookies(Vec<String>),
    /// Cookie input could not be read in any supported format.
    #[error("cannot read cookies: {0}")]
    CookieFormat(String),
    /// The connector's `auth` block is missing something or malformed.
    #[error("connector auth block: {0}")]
    Spec(String),
    /// A browser step failed (launch, navigation, selector, timeout, challenge).
    #[error(transparent)]
    Step(#[from] crate::browser::StepError),
    /// A browser login failed; `message` is the connector's own message for
    /// the failure (its `on_error` entry) when it has one.
    #[error("{message} ({error})")]
    LoginFailed {
        /// The message to show the user.
        message: String,
        /// What failed.
        error: crate::browser::StepError,
    },
    /// An OAuth step failed.
    #[error(transparent)]
    OAuth(#[from] crate::oauth::OAuthError),
    /// The stored credential is not of the kind this operation needs.
    #[error("account `{account}` holds a {found} credential, expected {expected}")]
    WrongKind {
        /// The account.
        account: String,
        /// What was found.
        found: &'static str,
        /// What was needed.
        expected: &'static str,
    },
    /// The account must be re-authenticated by a person before any call.
    #[error("account `{account}` needs the user: {message}")]
    NeedsUser {
        /// The account.
        account: String,
        /// What happened and the exact next step.
        message: String,
    },
}

impl AuthError {
    /// Wraps an I/O error with what was being done and where.
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Self::Io { action, path: path.into(), source }
    }
}

/// Checks an account name: 1-64 characters from `[A-Za-z0-9._@-]`.
///
/// # Errors
/// [`AuthError::InvalidAccount`] naming the bad input.
pub fn validate_account(name: &str) -> Result<(), AuthError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '-'));
    if ok { Ok(()) } else { Err(AuthError::InvalidAccount(name.to_owned())) }
}
