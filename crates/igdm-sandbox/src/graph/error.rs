//! Graph API error envelope: `{"error":{"message","type","code","error_subcode","fbtrace_id"}}`.
//!
//! Every failure of the emulated Graph endpoints goes through [`GraphError`], so
//! the body shape, the HTTP status and the `fbtrace_id` are the same everywhere.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rand::Rng;
use serde_json::{Map, Value, json};

/// The `type` of a Graph error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphErrorType {
    /// `OAuthException`: tokens, permissions, most messaging errors.
    OAuthException,
    /// `GraphMethodException`: unknown objects and unsupported requests.
    GraphMethodException,
    /// `IGApiException`: Instagram-specific failures (OAuth endpoints on `api.instagram.com`).
    IgApiException,
}

impl GraphErrorType {
    /// The wire string.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OAuthException => "OAuthException",
            Self::GraphMethodException => "GraphMethodException",
            Self::IgApiException => "IGApiException",
        }
    }
}

/// One Graph API error, rendered as Meta's error envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphError {
    /// HTTP status of the response.
    pub status: StatusCode,
    /// `error.message`.
    pub message: String,
    /// `error.type`.
    pub kind: GraphErrorType,
    /// `error.code`.
    pub code: u32,
    /// `error.error_subcode`, when Meta sends one.
    pub subcode: Option<u32>,
    /// `error.is_transient`, sent on throttling errors.
    pub is_transient: Option<bool>,
    /// `error.error_user_title`.
    pub user_title: Option<String>,
    /// `error.error_user_msg`.
    pub user_msg: Option<String>,
}

impl GraphError {
    /// A new error with HTTP 400 and no subcode.
    #[must_use]
    pub fn new(code: u32, kind: GraphErrorType, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            kind,
            code,
            subcode: None,
            is_transient: None,
            user_title: None,
            user_msg: None,
        }
    }

    /// Sets the subcode.
    #[must_use]
    pub fn with_subcode(mut self, subcode: u32) -> Self {
        self.subcode = Some(subcode);
        self
    }

    /// Sets the HTTP status.
    #[must_use]
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// Sets `error_user_title` / `error_user_msg`.
    #[must_use]
    pub fn with_user_text(mut self, title: impl Into<String>, msg: impl Into<String>) -> Self {
        self.user_title = Some(title.into());
        self.user_msg = Some(msg.into());
        self
    }

    /// `(#100) <detail>`: an invalid parameter.
    #[must_use]
    pub fn invalid_param(detail: impl AsRef<str>) -> Self {
        Self::new(100, GraphErrorType::OAuthException, format!("(#100) {}", detail.as_ref()))
    }

    /// `(#100) The parameter <name> is required`.
    #[must_use]
    pub fn missing_param(name: &str) -> Self {
        Self::invalid_param(format!("The parameter {name} is required"))
    }

    /// 100 / 2018001: the recipient is unknown or never wrote to the account.
    #[must_use]
    pub fn no_matching_user() -> Self {
        Self::invalid_param("No matching user found").with_subcode(2_018_001)
    }

    /// 10 / 2018278: the send is outside the allowed messaging window.
    #[must_use]
    pub fn outside_window() -> Self {
        Self::new(
            10,
            GraphErrorType::OAuthException,
            "(#10) This message is sent outside of allowed window.",
        )
        .with_subcode(2_018_278)
    }

    /// 551 / 1545041: the customer blocked the account or is unreachable.
    #[must_use]
    pub fn person_unavailable() -> Self {
        Self::new(
            551,
            GraphErrorType::OAuthException,
            "(#551) This person isn't available right now.",
        )
        .with_subcode(1_545_041)
    }

    /// 230: profile access without the user's consent.
    #[must_use]
    pub fn consent_required() -> Self {
        Self::new(
            230,
            GraphErrorType::OAuthException,
            "(#230) User consent is required to access user profile",
        )
    }

    /// 190 / 463: the access token expired at `expired_at` (Graph's wording).
    #[must_use]
    pub fn token_expired(
        expired_at: chrono::DateTime<chrono::Utc>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Self {
        let fmt = "%A, %d-%b-%y %H:%M:%S UTC";
        Self::new(
            190,
            GraphErrorType::OAuthException,
            format!(
                "Error validating access token: Session has expired on {}. The current time is {}.",
                expired_at.format(fmt),
                now.format(fmt)
            ),
        )
        .with_subcode(463)
    }

    /// 190 / 467: the access token is not one the sandbox issued (or was revoked).
    #[must_use]
    pub fn token_invalid() -> Self {
        Self::new(
            190,
            GraphErrorType::OAuthException,
            "Invalid OAuth access token - Cannot parse access token",
        )
        .with_subcode(467)
    }

    /// 2500: no access token on a call that needs one.
    #[must_use]
    pub fn token_missing() -> Self {
        Self::new(
            2500,
            GraphErrorType::OAuthException,
            "An active access token must be used to query information about the current user.",
        )
    }

    /// 100 / 33: the object does not exist or this token cannot see it.
    #[must_use]
    pub fn unknown_object(id: &str, method: &str) -> Self {
        Self::new(
            100,
            GraphErrorType::GraphMethodException,
            format!(
                "Unsupported {method} request. Object with ID '{id}' does not exist, cannot be loaded due to missing permissions, or does not support this operation. Please read the Graph API documentation at https://developers.facebook.com/docs/graph-api"
            ),
        )
        .with_subcode(33)
    }

    /// 2500: a path the Graph API does not know.
    #[must_use]
    pub fn unknown_path(segment: &str) -> Self {
        Self::new(
            2500,
            GraphErrorType::OAuthException,
            format!("Unknown path components: /{segment}"),
        )
    }

    /// A throttling error (codes 4, 17, 32, 613, 80002).
    #[must_use]
    pub fn throttled(code: u32) -> Self {
        let message = match code {
            4 => "(#4) Application request limit reached",
            17 => "(#17) User request limit reached",
            32 => "(#32) Page request limit reached",
            80002 => {
                "(#80002) There have been too many calls to this Instagram account. Wait a bit and try again. For more info, please refer to https://developers.facebook.com/docs/graph-api/overview/rate-limiting."
            }
            _ => "(#613) Calls to this api have exceeded the rate limit.",
        };
        let mut err = Self::new(code, GraphErrorType::OAuthException, message);
        err.is_transient = Some(true);
        err
    }

    /// 10: a permission or policy problem with a custom message.
    #[must_use]
    pub fn permission(message: impl AsRef<str>) -> Self {
        Self::new(10, GraphErrorType::OAuthException, format!("(#10) {}", message.as_ref()))
    }

    /// The `{"error":{…}}` body with a fresh `fbtrace_id`.
    #[must_use]
    pub fn to_body(&self) -> Value {
        let mut inner = Map::new();
        inner.insert("message".into(), json!(self.message));
        inner.insert("type".into(), json!(self.kind.as_str()));
        inner.insert("code".into(), json!(self.code));
        if let Some(sub) = self.subcode {
            inner.insert("error_subcode".into(), json!(sub));
        }
        if let Some(transient) = self.is_transient {
            inner.insert("is_transient".into(), json!(transient));
        }
        if let Some(title) = &self.user_title {
            inner.insert("error_user_title".into(), json!(title));
        }
        if let Some(msg) = &self.user_msg {
            inner.insert("error_user_msg".into(), json!(msg));
        }
        inner.insert("fbtrace_id".into(), json!(fbtrace_id()));
        json!({ "error": inner })
    }
}

impl std::fmt::Display for GraphError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "graph error {}", self.code)?;
        if let Some(sub) = self.subcode {
            write!(f, "/{sub}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for GraphError {}

impl IntoResponse for GraphError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, axum::Json(self.to_body())).into_response();
        // Graph marks OAuth failures with this header as well as the body.
        if self.code == 190 || self.code == 2500 {
            let value = format!(
                "OAuth \"Facebook Platform\" \"invalid_token\" \"{}\"",
                self.message.replace('"', "'")
            );
            if let Ok(v) = axum::http::HeaderValue::from_str(&value) {
                resp.headers_mut().insert(axum::http::header::WWW_AUTHENTICATE, v);
            }
        }
        resp
    }
}

/// A random trace id in Graph's style (23 url-safe characters).
#[must_use]
pub fn fbtrace_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut rng = rand::rng();
    (0..23).map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())])).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_has_meta_fields() {
        let body = GraphError::outside_window().to_body();
        let e = &body["error"];
        assert_eq!(e["message"], "(#10) This message is sent outside of allowed window.");
        assert_eq!(e["type"], "OAuthException");
        assert_eq!(e["code"], 10);
        assert_eq!(e["error_subcode"], 2_018_278);
        assert_eq!(e["fbtrace_id"].as_str().map(str::len), Some(23));
    }

    #[test]
    fn expired_token_message_names_both_times() {
        let at = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default();
        let now = chrono::DateTime::from_timestamp(1_700_003_600, 0).unwrap_or_default();
        let e = GraphError::token_expired(at, now);
        assert!(e.message.starts_with(
            "Error validating access token: Session has expired on Tuesday, 14-Nov-23 22:13:20 UTC."
        ));
        assert_eq!(e.subcode, Some(463));
    }
}
