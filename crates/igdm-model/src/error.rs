//! The error taxonomy: every provider failure becomes an [`ApiError`] whose
//! [`ErrorClass`] decides what igdm does next (retry, pause writes, stop and
//! ask the user), and whose fields tell a person or an agent the same.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{Timestamp, open_enum};

open_enum! {
    /// What kind of failure happened, independent of the provider.
    pub enum ErrorClass {
        /// The session or token is no longer valid (`login_required`, Graph 190, an HTML login page).
        AuthExpired = "auth_expired",
        /// Instagram wants the user to verify their identity (`challenge_required`).
        Challenge = "challenge",
        /// The account is locked at a checkpoint (`checkpoint_required`).
        Checkpoint = "checkpoint",
        /// The user must accept terms or consent (`consent_required`).
        Consent = "consent",
        /// Writes are blocked for a while (`feedback_required`, Graph 368); reads still work.
        ActionBlocked = "action_blocked",
        /// Too many requests (429, "Please wait a few minutes", Graph 4/17/32/613).
        RateLimited = "rate_limited",
        /// The official API's reply window is closed (Graph 10 / 2018278).
        OutsideWindow = "outside_window",
        /// The thing asked for does not exist (Graph 100 / 2018001, 100 / 33).
        NotFound = "not_found",
        /// The request was malformed or broke a limit; fix it, do not retry.
        InvalidRequest = "invalid_request",
        /// The recipient cannot be messaged (Graph 551, DM privacy).
        RecipientUnavailable = "recipient_unavailable",
        /// A passing failure (5xx, network, Graph 1/2); a bounded retry may help.
        Transient = "transient",
    }
}

impl ErrorClass {
    /// Whether retrying the same request later can succeed.
    #[must_use]
    pub fn retryable(&self) -> bool {
        matches!(self, Self::RateLimited | Self::Transient)
    }

    /// Whether writes may continue for the account after this error.
    #[must_use]
    pub fn writes_allowed(&self) -> bool {
        matches!(
            self,
            Self::OutsideWindow
                | Self::NotFound
                | Self::InvalidRequest
                | Self::RecipientUnavailable
                | Self::Transient
        )
    }

    /// Whether reads may continue for the account after this error.
    #[must_use]
    pub fn reads_allowed(&self) -> bool {
        !matches!(self, Self::AuthExpired | Self::Challenge | Self::Checkpoint | Self::Consent)
    }

    /// Whether a person has to act before the account works again.
    #[must_use]
    pub fn needs_user(&self) -> bool {
        matches!(self, Self::AuthExpired | Self::Challenge | Self::Checkpoint | Self::Consent)
    }

    /// A sentence telling the user what to do.
    #[must_use]
    pub fn remediation(&self) -> &'static str {
        match self {
            Self::AuthExpired => {
                "The session or token is no longer valid: log in again with `igdm login ACCOUNT`."
            }
            Self::Challenge => {
                "Instagram wants to verify it is you: open Instagram in a browser or the app, complete the check, then run `igdm login ACCOUNT`."
            }
            Self::Checkpoint => {
                "The account is held at a checkpoint: resolve it in the Instagram app, then run `igdm login ACCOUNT`."
            }
            Self::Consent => {
                "Instagram needs you to review and accept a notice: open Instagram, accept it, then retry."
            }
            Self::ActionBlocked => {
                "Instagram is blocking sends from this account for a while: reading still works; wait before sending again."
            }
            Self::RateLimited => {
                "Too many requests: igdm waits and retries; slow down if it persists."
            }
            Self::OutsideWindow => {
                "The 24-hour reply window is closed: wait for the customer to write again (a human agent may reply within 7 days with the HUMAN_AGENT tag)."
            }
            Self::NotFound => {
                "Nothing matches that id: check the conversation, message or user id."
            }
            Self::InvalidRequest => {
                "The request was refused as invalid: fix the named field and retry."
            }
            Self::RecipientUnavailable => {
                "This person cannot be messaged right now (blocked, deactivated or privacy settings)."
            }
            Self::Transient => {
                "A temporary failure at Instagram or on the network: retrying later should work."
            }
            Self::Unknown(_) => "An unexpected error: run with -v for details.",
        }
    }
}

/// What the provider said, kept as evidence.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct ProviderError {
    /// HTTP status, when there was a response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The provider's code (Graph `code`, or the private API's `message` / `error_type`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The provider's subcode (Graph `error_subcode`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subcode: Option<String>,
    /// The provider's message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// A trace id (Graph `fbtrace_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
}

/// A classified failure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, thiserror::Error)]
pub struct ApiError {
    /// The class that decides what happens next.
    pub class: ErrorClass,
    /// A human-readable message.
    pub message: String,
    /// Whether retrying later can succeed.
    pub retryable: bool,
    /// Seconds to wait before retrying, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// Whether the account may keep sending.
    pub writes_allowed: bool,
    /// Whether a person must act.
    pub needs_user: bool,
    /// What to do about it.
    pub remediation: String,
    /// A URL the user must open (challenge, checkpoint), when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The provider's own code and message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<ProviderError>,
}

impl ApiError {
    /// An error of `class` with the class's defaults.
    pub fn new(class: ErrorClass, message: impl Into<String>) -> Self {
        Self {
            retryable: class.retryable(),
            writes_allowed: class.writes_allowed(),
            needs_user: class.needs_user(),
            remediation: class.remediation().to_owned(),
            class,
            message: message.into(),
            retry_after: None,
            url: None,
            provider: None,
        }
    }

    /// An invalid-request error naming the offending field.
    pub fn invalid(field: &str, problem: impl fmt::Display) -> Self {
        let mut e = Self::new(ErrorClass::InvalidRequest, format!("{field}: {problem}"));
        e.remediation = format!("Fix `{field}` and retry.");
        e
    }

    /// Sets the retry delay.
    #[must_use]
    pub fn with_retry_after(mut self, secs: Option<u64>) -> Self {
        self.retry_after = secs;
        self
    }

    /// Sets the URL the user must open.
    #[must_use]
    pub fn with_url(mut self, url: Option<String>) -> Self {
        self.url = url;
        self
    }

    /// Attaches the provider's evidence.
    #[must_use]
    pub fn with_provider(mut self, provider: ProviderError) -> Self {
        self.provider = Some(provider);
        self
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.class, self.message)
    }
}

/// The health of an account's session, derived from what its calls returned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "state", rename_all = "snake_case")]
#[non_exhaustive]
pub enum SessionHealth {
    /// Everything works.
    Healthy,
    /// Works, but the credential expires soon.
    Expiring {
        /// When it expires.
        at: Timestamp,
    },
    /// The session is gone; log in again.
    LoggedOut {
        /// Why, as the provider said.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// The user must complete a check in Instagram (challenge, checkpoint, consent).
    Challenge {
        /// Where to complete it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        url: Option<String>,
    },
    /// Writes are blocked until a time; reads go on.
    ActionBlocked {
        /// When writes may resume.
        until: Timestamp,
    },
    /// Calls are throttled until a time.
    RateLimited {
        /// When calls may resume.
        until: Timestamp,
    },
    /// The account is suspended.
    Suspended,
}

impl SessionHealth {
    /// Default cool-down after an action block, in seconds.
    pub const ACTION_BLOCK_COOLDOWN_SECS: u64 = 6 * 3600;
    /// Default back-off after a rate limit without Retry-After, in seconds.
    pub const RATE_LIMIT_COOLDOWN_SECS: u64 = 60;

    /// The health implied by an error observed at `now`, or `None` when the
    /// error says nothing about the session (a bad parameter, a closed window).
    #[must_use]
    pub fn from_error(err: &ApiError, now: Timestamp) -> Option<Self> {
        let later = |secs: u64| {
            let secs = i64::try_from(secs).unwrap_or(i64::MAX / 2);
            Timestamp(now.0 + chrono::Duration::seconds(secs))
        };
        Some(match err.class {
            ErrorClass::AuthExpired => SessionHealth::LoggedOut {
                reason: err.provider.as_ref().and_then(|p| p.message.clone()),
            },
            ErrorClass::Challenge | ErrorClass::Checkpoint | ErrorClass::Consent => {
                if err.url.as_deref().is_some_and(|u| u.contains("/suspended/")) {
                    SessionHealth::Suspended
                } else {
                    SessionHealth::Challenge { url: err.url.clone() }
                }
            }
            ErrorClass::ActionBlocked => SessionHealth::ActionBlocked {
                until: later(err.retry_after.unwrap_or(Self::ACTION_BLOCK_COOLDOWN_SECS)),
            },
            ErrorClass::RateLimited => SessionHealth::RateLimited {
                until: later(err.retry_after.unwrap_or(Self::RATE_LIMIT_COOLDOWN_SECS)),
            },
            _ => return None,
        })
    }

    /// Whether reads may be attempted at `now`.
    #[must_use]
    pub fn reads_allowed(&self, now: Timestamp) -> bool {
        match self {
            Self::Healthy | Self::Expiring { .. } | Self::ActionBlocked { .. } => true,
            Self::RateLimited { until } => now >= *until,
            Self::LoggedOut { .. } | Self::Challenge { .. } | Self::Suspended => false,
        }
    }

    /// Whether writes may be attempted at `now`.
    #[must_use]
    pub fn writes_allowed(&self, now: Timestamp) -> bool {
        match self {
            Self::Healthy | Self::Expiring { .. } => true,
            Self::ActionBlocked { until } | Self::RateLimited { until } => now >= *until,
            Self::LoggedOut { .. } | Self::Challenge { .. } | Self::Suspended => false,
        }
    }

    /// Whether a person must act before the account works again.
    #[must_use]
    pub fn needs_user(&self) -> bool {
        matches!(self, Self::LoggedOut { .. } | Self::Challenge { .. } | Self::Suspended)
    }

    /// The snake_case name of the state.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Expiring { .. } => "expiring",
            Self::LoggedOut { .. } => "logged_out",
            Self::Challenge { .. } => "challenge",
            Self::ActionBlocked { .. } => "action_blocked",
            Self::RateLimited { .. } => "rate_limited",
            Self::Suspended => "suspended",
        }
    }
}

/// The non-secret session record of an account: its health and when calls
/// last worked. One record per account is shared by the client (every call
/// updates it) and the session upkeep (keep-alive, `igdm accounts status`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SessionState {
    /// The session health derived from the last calls.
    #[serde(default = "healthy")]
    pub health: SessionHealth,
    /// When a call last succeeded (a read, a write or a keep-alive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success_at: Option<Timestamp>,
    /// When a real read (not a keep-alive) last succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_read_at: Option<Timestamp>,
    /// When the last keep-alive ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_keep_alive_at: Option<Timestamp>,
    /// The message of the last failed call that said something about the
    /// session; cleared by the next success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

fn healthy() -> SessionHealth {
    SessionHealth::Healthy
}

impl Default for SessionState {
    fn default() -> Self {
        Self {
            health: SessionHealth::Healthy,
            last_success_at: None,
            last_read_at: None,
            last_keep_alive_at: None,
            last_error: None,
        }
    }
}

/// What kind of call worked, for [`SessionState::record_success`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    /// A real read.
    Read,
    /// A write.
    Write,
    /// A keep-alive probe (not a real read).
    KeepAlive,
}

impl SessionState {
    /// Whether calls must stop until the user acts (logged out, challenge, suspended).
    #[must_use]
    pub fn blocked(&self) -> bool {
        self.health.needs_user()
    }

    /// Records a call of `kind` that worked at `now`. A working call ends a
    /// rate limit, and an action block when it was a write or the block is
    /// over; a logout, challenge or suspension stays until the user acts.
    pub fn record_success(&mut self, kind: CallKind, now: Timestamp) {
        self.last_success_at = Some(now);
        match kind {
            CallKind::Read => self.last_read_at = Some(now),
            CallKind::KeepAlive => self.last_keep_alive_at = Some(now),
            CallKind::Write => {}
        }
        let clear = match &self.health {
            SessionHealth::RateLimited { .. } => true,
            SessionHealth::ActionBlocked { until } => kind == CallKind::Write || *until <= now,
            _ => false,
        };
        if clear {
            self.health = SessionHealth::Healthy;
        }
        if self.health == SessionHealth::Healthy {
            self.last_error = None;
        }
    }

    /// Records a failed call observed at `now`: when the error says
    /// something about the session, the health changes and the message is
    /// kept. Returns whether it did.
    pub fn record_failure(&mut self, err: &ApiError, now: Timestamp) -> bool {
        let Some(health) = SessionHealth::from_error(err, now) else { return false };
        self.health = health;
        self.last_error = Some(err.message.clone());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_block_pauses_writes_not_reads() {
        let now = Timestamp::from_unix_seconds(1_000_000).unwrap();
        let err = ApiError::new(ErrorClass::ActionBlocked, "feedback_required");
        let h = SessionHealth::from_error(&err, now).unwrap();
        assert!(h.reads_allowed(now));
        assert!(!h.writes_allowed(now));
        let later = Timestamp::from_unix_seconds(1_000_000 + 7 * 3600).unwrap();
        assert!(h.writes_allowed(later));
    }

    #[test]
    fn challenge_stops_everything_and_keeps_url() {
        let now = Timestamp::now();
        let err = ApiError::new(ErrorClass::Challenge, "challenge_required")
            .with_url(Some("https://i.instagram.com/challenge/1/abc/".into()));
        let h = SessionHealth::from_error(&err, now).unwrap();
        assert!(!h.reads_allowed(now) && !h.writes_allowed(now) && h.needs_user());
        assert_eq!(
            serde_json::to_value(&h).unwrap(),
            serde_json::json!({"state": "challenge", "url": "https://i.instagram.com/challenge/1/abc/"})
        );
        assert!(err.needs_user && !err.retryable);
    }

    #[test]
    fn class_only_errors_leave_health_alone() {
        let err = ApiError::invalid("text", "longer than 1000 bytes");
        assert_eq!(SessionHealth::from_error(&err, Timestamp::now()), None);
        assert_eq!(err.message, "text: longer than 1000 bytes");
    }
}
