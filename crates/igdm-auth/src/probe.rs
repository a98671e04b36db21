//! A [`SessionProbe`] over plain HTTP: the connector's keep-alive request
//! (`session.keep_alive.rest`, a GET) sent with the session's cookies and
//! device headers, reading back cookie rotations and the session signals of
//! the private API (reference §10.1–10.2):
//!
//! - 2xx JSON → alive; every `Set-Cookie` is applied (Max-Age ≤ 0 or an
//!   `Expires` in the past deletes), `x-ig-set-www-claim` updates the claim;
//! - `login_required` (403), 401/403, or an HTML page on the JSON endpoint → logged out;
//! - `challenge_required` / `checkpoint_required` (400) → challenge, with the
//!   challenge URL when given;
//! - 404, whatever the body → not found (a retired endpoint ends nothing);
//! - 429 or "Please wait a few minutes" → rate limited; 5xx / network → transient.

use std::time::Duration;

use igdm_model::{ApiError, ErrorClass, ProviderError};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use crate::credential::CookieCredential;
use crate::session::{ProbeOutcome, SessionProbe};
use crate::store::BoxFuture;

/// The web app id sent as `X-IG-App-ID`.
pub const WEB_APP_ID: &str = "936619743392459";

/// Sends the keep-alive GET to a fixed URL.
#[derive(Debug, Clone)]
pub struct HttpProbe {
    http: reqwest::Client,
    url: String,
}

impl HttpProbe {
    /// A probe for `url` (the keep-alive URL with `{{api.base_url}}` already resolved).
    ///
    /// # Errors
    /// [`crate::AuthError::Spec`] when the URL is not absolute or the client cannot be built.
    pub fn new(url: impl Into<String>) -> Result<Self, crate::AuthError> {
        let url = url.into();
        url::Url::parse(&url)
            .map_err(|e| crate::AuthError::Spec(format!("keep-alive URL: {e}")))?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| crate::AuthError::Spec(format!("HTTP client: {}", e.without_url())))?;
        Ok(Self { http, url })
    }

    /// Resolves a connector's keep-alive URL template against an API base URL
    /// (`{{api.base_url}}/direct_v2/get_presence/`).
    #[must_use]
    pub fn resolve(template: &str, api_base_url: &str) -> String {
        crate::browser::substitute(template, |k| {
            (k == "api.base_url").then(|| api_base_url.trim_end_matches('/').to_owned())
        })
    }

    async fn send(&self, cred: &CookieCredential) -> ProbeOutcome {
        let csrf = cred.get("csrftoken").map(|v| v.expose_secret().to_owned()).unwrap_or_default();
        let req = self
            .http
            .get(&self.url)
            .header("Cookie", cred.cookie_header().expose_secret())
            .header("X-CSRFToken", csrf)
            .header("X-IG-App-ID", WEB_APP_ID)
            .header("X-IG-WWW-Claim", &cred.device.www_claim)
            .header("X-Requested-With", "XMLHttpRequest")
            .header("User-Agent", &cred.device.user_agent)
            .header("Accept", "*/*");
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                return ProbeOutcome::Failed(ApiError::new(
                    ErrorClass::Transient,
                    format!("keep-alive: {}", e.without_url()),
                ));
            }
        };
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let html = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.contains("text/html"));
        let body = resp.text().await.unwrap_or_default();
        let json: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        let rotated = headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(parse_set_cookie)
            .collect::<Vec<_>>();
        if let Some(err) = classify(status, html, &body, &json) {
            tracing::debug!(status, class = %err.class, "keep-alive refused");
            return ProbeOutcome::Failed(err);
        }
        let www_claim =
            headers.get("x-ig-set-www-claim").and_then(|v| v.to_str().ok()).map(str::to_owned);
        ProbeOutcome::Alive { rotated, www_claim }
    }
}

impl SessionProbe for HttpProbe {
    fn keep_alive<'a>(&'a self, credential: &'a CookieCredential) -> BoxFuture<'a, ProbeOutcome> {
        Box::pin(self.send(credential))
    }
}

/// Parses one `Set-Cookie` header into a cookie update (`None` deletes).
fn parse_set_cookie(raw: &str) -> Option<(String, Option<SecretString>)> {
    let mut parts = raw.split(';');
    let (name, value) = parts.next()?.split_once('=')?;
    let name = name.trim();
    if name.is_empty() {
        return None;
    }
    let mut delete = false;
    for attr in parts {
        let (k, v) = attr.split_once('=').unwrap_or((attr, ""));
        match k.trim().to_ascii_lowercase().as_str() {
            "max-age" => delete |= v.trim().parse::<i64>().is_ok_and(|n| n <= 0),
            "expires" => {
                delete |= chrono::DateTime::parse_from_rfc2822(v.trim().replace('-', " ").as_str())
                    .is_ok_and(|t| t < chrono::Utc::now())
            }
            _ => {}
        }
    }
    let value = value.trim().trim_matches('"');
    let value = (!delete && !value.is_empty()).then(|| SecretString::from(value.to_owned()));
    Some((name.to_owned(), value))
}

fn classify(status: u16, html: bool, body: &str, json: &Value) -> Option<ApiError> {
    let message = json.get("message").and_then(Value::as_str).unwrap_or_default();
    let provider = ProviderError {
        status: Some(status),
        code: (!message.is_empty()).then(|| message.to_owned()),
        message: json.get("error_title").and_then(Value::as_str).map(str::to_owned),
        ..ProviderError::default()
    };
    let class = if message == "challenge_required" || message == "checkpoint_required" {
        if message == "checkpoint_required" {
            ErrorClass::Checkpoint
        } else {
            ErrorClass::Challenge
        }
    } else if message == "login_required" || json.get("logout_reason").is_some() {
        ErrorClass::AuthExpired
    } else if status == 404 {
        ErrorClass::NotFound
    } else if html {
        ErrorClass::AuthExpired
    } else if status == 429 || body.contains("Please wait a few minutes") {
        ErrorClass::RateLimited
    } else if status == 401 || status == 403 {
        ErrorClass::AuthExpired
    } else if status >= 500 {
        ErrorClass::Transient
    } else if (200..300).contains(&status) {
        return None;
    } else {
        ErrorClass::InvalidRequest
    };
    let url = json
        .get("challenge")
        .and_then(|c| c.get("url"))
        .or_else(|| json.get("checkpoint_url"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let text = if message.is_empty() {
        format!("keep-alive answered HTTP {status}")
    } else {
        message.to_owned()
    };
    Some(ApiError::new(class, text).with_url(url).with_provider(provider))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_cookie_updates_and_deletions() {
        let (n, v) = parse_set_cookie("csrftoken=abc; Path=/; Max-Age=31449600").unwrap();
        assert_eq!((n.as_str(), v.unwrap().expose_secret()), ("csrftoken", "abc"));
        let (_, v) = parse_set_cookie("sessionid=\"\"; Path=/; Max-Age=0").unwrap();
        assert!(v.is_none());
        let (_, v) =
            parse_set_cookie("ds_user_id=1; Expires=Thu, 01 Jan 1970 00:00:00 GMT").unwrap();
        assert!(v.is_none());
        assert!(parse_set_cookie("garbage").is_none());
    }

    #[test]
    fn classifies_session_signals() {
        let c = |s, h, b: &str| {
            classify(s, h, b, &serde_json::from_str(b).unwrap_or(Value::Null)).map(|e| e.class)
        };
        assert_eq!(c(200, false, r#"{"status":"ok"}"#), None);
        assert_eq!(
            c(403, false, r#"{"message":"login_required","status":"fail"}"#),
            Some(ErrorClass::AuthExpired)
        );
        assert_eq!(
            c(
                400,
                false,
                r#"{"message":"challenge_required","challenge":{"url":"https://i/challenge/"}}"#
            ),
            Some(ErrorClass::Challenge)
        );
        assert_eq!(c(404, false, "Not Found"), Some(ErrorClass::NotFound));
        assert_eq!(c(404, true, "<html>Not Found</html>"), Some(ErrorClass::NotFound));
        assert_eq!(c(200, true, "<html>"), Some(ErrorClass::AuthExpired));
        assert_eq!(c(429, false, "{}"), Some(ErrorClass::RateLimited));
        assert_eq!(c(502, false, ""), Some(ErrorClass::Transient));
        assert_eq!(
            HttpProbe::resolve("{{api.base_url}}/direct_v2/get_presence/", "http://h/api/v1/"),
            "http://h/api/v1/direct_v2/get_presence/"
        );
    }
}
