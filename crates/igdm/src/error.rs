//! The client's error type.

use std::path::Path;

use igdm_model::{ApiError, ErrorClass};

/// Anything that can go wrong in the client library.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The provider (or igdm's own checks before sending) refused the call.
    #[error("{0}")]
    Api(ApiError),
    /// The connector cannot do this; `hint` names a backend that can.
    #[error("the {connector} connector cannot {action}{hint}")]
    Unsupported {
        /// The connector asked.
        connector: String,
        /// The normalized action.
        action: String,
        /// ": use … instead", or empty.
        hint: String,
    },
    /// A send may or may not have reached Instagram and reading the thread did
    /// not show it; nothing was resent.
    #[error(
        "the send's outcome is unknown and the thread does not show it yet; nothing was resent. Retry with the same idempotency key ({key}) to reconcile again"
    )]
    OutcomeUnknown {
        /// The idempotency key of the send.
        key: String,
    },
    /// The connector file is broken.
    #[error(transparent)]
    Spec(#[from] igdm_spec::SpecError),
    /// igdm's own configuration (accounts, home directory) is broken.
    #[error("{0}")]
    Config(String),
    /// The home directory is unusable.
    #[error("{0}")]
    Home(String),
    /// Local I/O failed.
    #[error("{path}: {source}")]
    Io {
        /// The file concerned.
        path: String,
        /// The failure.
        source: std::io::Error,
    },
    /// The provider's answer did not fit igdm's model.
    #[error("unexpected response shape: {0}")]
    Shape(String),
}

impl Error {
    /// An I/O error on `path`.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io { path: path.display().to_string(), source }
    }

    /// The error as an [`ApiError`] for JSON output and exit codes.
    #[must_use]
    pub fn to_api_error(&self) -> ApiError {
        match self {
            Self::Api(e) => e.clone(),
            Self::Unsupported { .. } | Self::Spec(_) | Self::Config(_) | Self::Home(_) => {
                ApiError::new(ErrorClass::InvalidRequest, self.to_string())
            }
            Self::OutcomeUnknown { .. } | Self::Io { .. } | Self::Shape(_) => {
                let mut e = ApiError::new(ErrorClass::Transient, self.to_string());
                if matches!(self, Self::OutcomeUnknown { .. }) {
                    e.retryable = true;
                }
                e
            }
        }
    }

    /// The error class.
    #[must_use]
    pub fn class(&self) -> ErrorClass {
        self.to_api_error().class
    }
}

/// The process exit code for an error class, as the CLI documents it:
/// 2 invalid input, 3 authentication, 4 rate limited or blocked, 5 not found,
/// 6 refused by messaging policy, 1 anything else.
#[must_use]
pub fn exit_code(class: &ErrorClass) -> u8 {
    match class {
        ErrorClass::InvalidRequest => 2,
        ErrorClass::AuthExpired
        | ErrorClass::Challenge
        | ErrorClass::Checkpoint
        | ErrorClass::Consent => 3,
        ErrorClass::RateLimited | ErrorClass::ActionBlocked => 4,
        ErrorClass::NotFound => 5,
        ErrorClass::OutsideWindow | ErrorClass::RecipientUnavailable => 6,
        _ => 1,
    }
}
