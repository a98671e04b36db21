//! Load-time and run-time errors.

use igdm_model::{ApiError, ErrorClass};

use crate::transport::TransportError;

/// A connector file that cannot be loaded, with the position in the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{source_name}:{line}:{column}: {message}")]
pub struct SpecError {
    /// The name the file was loaded under (usually its path).
    pub source_name: String,
    /// 1-based line in the file (0 when unknown).
    pub line: u64,
    /// 1-based column in the file, in characters (0 when unknown).
    pub column: u64,
    /// What is wrong.
    pub message: String,
}

impl SpecError {
    /// A new error at `line:column` of `source_name`.
    pub fn new(source_name: &str, line: u64, column: u64, message: impl Into<String>) -> Self {
        Self { source_name: source_name.to_owned(), line, column, message: message.into() }
    }
}

/// Why running an action failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExecError {
    /// The connector has no action of that name.
    #[error("unknown action `{0}`")]
    UnknownAction(String),
    /// The parameters broke the action's declaration; nothing was sent.
    #[error("{0}")]
    InvalidParams(ApiError),
    /// The session lacks credentials the connector requires; nothing was sent.
    #[error("{0}")]
    MissingCredentials(ApiError),
    /// A template could not be turned into a valid request; nothing was sent.
    #[error("cannot build the request: {0}")]
    Render(String),
    /// The provider answered with an error, classified.
    #[error("{0}")]
    Api(ApiError),
    /// The request failed in transport.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The provider answered 2xx with a body that is not the JSON expected.
    #[error("HTTP {status}: response is not JSON: {message}")]
    Decode {
        /// HTTP status.
        status: u16,
        /// The parse error.
        message: String,
    },
}

impl ExecError {
    /// Whether the request may have reached the provider with an unknown
    /// outcome (a write must be reconciled before any retry).
    #[must_use]
    pub fn outcome_unknown(&self) -> bool {
        matches!(self, ExecError::Transport(TransportError::OutcomeUnknown { .. }))
    }

    /// Whether the request certainly never left this process.
    #[must_use]
    pub fn nothing_sent(&self) -> bool {
        matches!(
            self,
            ExecError::UnknownAction(_)
                | ExecError::InvalidParams(_)
                | ExecError::MissingCredentials(_)
                | ExecError::Render(_)
                | ExecError::Transport(TransportError::NotSent { .. })
        )
    }

    /// The failure as a classified [`ApiError`].
    #[must_use]
    pub fn to_api_error(&self) -> ApiError {
        match self {
            ExecError::InvalidParams(e) | ExecError::MissingCredentials(e) | ExecError::Api(e) => {
                e.clone()
            }
            ExecError::UnknownAction(name) => {
                ApiError::invalid("action", format!("unknown action `{name}`"))
            }
            ExecError::Render(m) => ApiError::new(ErrorClass::InvalidRequest, m.clone()),
            ExecError::Transport(t) => ApiError::new(ErrorClass::Transient, t.to_string()),
            ExecError::Decode { message, .. } => {
                ApiError::new(ErrorClass::Transient, message.clone())
            }
        }
    }
}
