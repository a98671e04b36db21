//! The client's error type.

use std::path::Path;

use igdm_model::{ApiError, ErrorClass};

use crate::ledger::SendState;

/// A send left without a verdict, as front ends report it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UnsettledSend {
    /// The idempotency key: sending again with it reconciles again.
    pub idempotency_key: String,
    /// Its state in the send ledger (`unknown`).
    pub state: SendState,
    /// Ids of the account's messages that could be it (empty: none shows
    /// yet; two or more: igdm did not guess).
    pub candidates: Vec<String>,
}

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
    /// A send's outcome is unknown and the conversation shows more than one
    /// message of the account that could be it: igdm does not guess. The
    /// ledger keeps the send `unknown`; nothing was resent.
    #[error(
        "the send's outcome is unknown and {} messages of this account with the same text could be it ({}); nothing was resent and none was taken for it (idempotency key {key})",
        candidates.len(),
        candidates.join(", ")
    )]
    SendAmbiguous {
        /// The idempotency key of the send.
        key: String,
        /// The ids of the messages that could be the send, newest first.
        candidates: Vec<String>,
    },
    /// A write outside the send ledger may or may not have been applied
    /// (the transport's verdict); it was not retried.
    #[error("outcome unknown: {0}")]
    WriteOutcomeUnknown(String),
    /// The send ledger could not be read or written.
    #[error("send ledger: {0}")]
    Ledger(String),
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
            Self::OutcomeUnknown { .. } => {
                let mut e = ApiError::new(ErrorClass::Transient, self.to_string());
                e.retryable = true;
                e
            }
            Self::SendAmbiguous { .. } => {
                let mut e = ApiError::new(ErrorClass::Transient, self.to_string());
                e.retryable = false;
                e.remediation = "Read the conversation: if one of the candidates is this send, \
                    nothing more is needed; if none is, send again with a new idempotency key."
                    .into();
                e
            }
            Self::WriteOutcomeUnknown(_) | Self::Ledger(_) | Self::Io { .. } | Self::Shape(_) => {
                ApiError::new(ErrorClass::Transient, self.to_string())
            }
        }
    }

    /// Whether this is a send whose outcome is unknown (typed, never read
    /// from the message): [`Error::OutcomeUnknown`],
    /// [`Error::SendAmbiguous`] or [`Error::WriteOutcomeUnknown`].
    #[must_use]
    pub fn is_outcome_unknown(&self) -> bool {
        matches!(
            self,
            Self::OutcomeUnknown { .. } | Self::SendAmbiguous { .. } | Self::WriteOutcomeUnknown(_)
        )
    }

    /// For a send left without a verdict ([`Error::OutcomeUnknown`],
    /// [`Error::SendAmbiguous`]): its key, its state in the send ledger
    /// (`unknown`) and the messages that could be it.
    #[must_use]
    pub fn unsettled_send(&self) -> Option<UnsettledSend> {
        match self {
            Self::OutcomeUnknown { key } => Some(UnsettledSend {
                idempotency_key: key.clone(),
                state: SendState::Unknown,
                candidates: Vec::new(),
            }),
            Self::SendAmbiguous { key, candidates } => Some(UnsettledSend {
                idempotency_key: key.clone(),
                state: SendState::Unknown,
                candidates: candidates.clone(),
            }),
            _ => None,
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
