//! Turning error responses into classified [`ApiError`]s.
//!
//! Order: the connector's `errors:` rules (first match wins), then the seed
//! vocabulary `session.error_detection` (response patterns, then status
//! codes), then generic HTTP rules (redirect targets, HTML on a JSON endpoint,
//! 429, 5xx, other 4xx).

use chrono::Utc;
use igdm_model::{ApiError, ErrorClass, ProviderError};
use serde_json::Value;

use crate::expr::values_equal;
use crate::session::parse_http_date;
use crate::transport::HttpResponse;

/// Which statuses a rule applies to.
#[derive(Debug, Clone, PartialEq)]
pub enum StatusMatch {
    /// Any status that is not 2xx (the default: a rule never fires on success
    /// unless it names a 2xx status).
    AnyError,
    /// One of these statuses.
    Codes(Vec<u16>),
    /// A class such as `4xx` (the first digit).
    Class(u16),
}

impl StatusMatch {
    fn matches(&self, status: u16) -> bool {
        match self {
            StatusMatch::AnyError => !(200..300).contains(&status),
            StatusMatch::Codes(c) => c.contains(&status),
            StatusMatch::Class(d) => status / 100 == *d,
        }
    }
}

/// One `errors:` rule.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorRule {
    /// Statuses it applies to.
    pub status: StatusMatch,
    /// JSON body paths (dotted) and the values they must equal (any of a list).
    pub json: Vec<(Vec<String>, Vec<Value>)>,
    /// Substrings the raw body must contain (any of them).
    pub body_contains: Vec<String>,
    /// A substring of the `Content-Type` (`html` also matches a body starting with `<`).
    pub content_type: Option<String>,
    /// The class assigned.
    pub class: ErrorClass,
    /// A fixed message (default: the provider's message).
    pub message: Option<String>,
    /// A dotted body path holding the URL the user must open.
    pub url: Option<Vec<String>>,
    /// The header carrying a retry delay (default `Retry-After` for rate limits).
    pub retry_after_header: Option<String>,
    /// A fixed retry delay or cool-down in seconds when no header gives one.
    pub retry_after: Option<u64>,
}

impl ErrorRule {
    fn matches(&self, resp: &HttpResponse, json: Option<&Value>, body: &str) -> bool {
        if !self.status.matches(resp.status) {
            return false;
        }
        if !self.body_contains.is_empty()
            && !self.body_contains.iter().any(|s| body.contains(s.as_str()))
        {
            return false;
        }
        if let Some(ct) = &self.content_type {
            let header = resp.header("content-type").unwrap_or("").to_ascii_lowercase();
            let sniff = ct == "html" && body.trim_start().starts_with('<');
            if !header.contains(&ct.to_ascii_lowercase()) && !sniff {
                return false;
            }
        }
        for (path, wanted) in &self.json {
            let Some(v) = json.and_then(|j| lookup(j, path)) else {
                return false;
            };
            if !wanted.iter().any(|w| values_equal(v, w)) {
                return false;
            }
        }
        true
    }
}

/// The seed's `session.error_detection`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ErrorDetection {
    /// Status → class.
    pub status_codes: Vec<(u16, ErrorClass)>,
    /// Body substring → class, tried before status codes.
    pub response_patterns: Vec<(String, ErrorClass)>,
}

/// Maps a class name, including the seed vocabulary (`session_expired`,
/// `challenge_required`, `reconnect_required`, …), to an [`ErrorClass`].
#[must_use]
pub fn class_from_name(name: &str) -> Option<ErrorClass> {
    let c = match name {
        "session_expired" | "login_required" | "reconnect_required" | "mark_disconnected"
        | "logged_out" | "unauthorized" => ErrorClass::AuthExpired,
        "challenge_required" | "checkpoint_challenge_required" | "suspended" => {
            ErrorClass::Challenge
        }
        "checkpoint_required" => ErrorClass::Checkpoint,
        "consent_required" => ErrorClass::Consent,
        "feedback_required" | "spam" => ErrorClass::ActionBlocked,
        "rate_limit" | "throttled" | "too_many_requests" | "rate_limit_error" => {
            ErrorClass::RateLimited
        }
        "window_closed" => ErrorClass::OutsideWindow,
        other => {
            let c = ErrorClass::parse(other);
            if !c.is_known() {
                return None;
            }
            c
        }
    };
    Some(c)
}

fn lookup<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut cur = v;
    for p in path {
        cur = match cur {
            Value::Object(m) => m.get(p)?,
            Value::Array(a) => a.get(p.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn text_at(v: Option<&Value>, path: &[&str]) -> Option<String> {
    let path: Vec<String> = path.iter().map(|s| (*s).to_owned()).collect();
    match lookup(v?, &path)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Parses a `Retry-After` value: delta-seconds or an HTTP-date. Past,
/// negative and unparseable values are `None`.
#[must_use]
pub fn parse_retry_after(raw: &str) -> Option<u64> {
    let raw = raw.trim();
    if let Ok(secs) = raw.parse::<i64>() {
        return u64::try_from(secs).ok();
    }
    if raw.starts_with('-') || raw.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return None;
    }
    let at = parse_http_date(raw)?;
    let secs = (at - Utc::now()).num_seconds();
    (secs > 0).then(|| u64::try_from(secs).ok()).flatten()
}

/// Everything the classifier knows about a connector.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Classifier {
    /// `errors:` rules.
    pub rules: Vec<ErrorRule>,
    /// `session.error_detection`.
    pub detection: ErrorDetection,
}

impl Classifier {
    /// Classifies a response. `None` means success.
    #[must_use]
    pub fn classify(&self, resp: &HttpResponse) -> Option<ApiError> {
        let body = String::from_utf8_lossy(&resp.body);
        let json: Option<Value> = serde_json::from_slice(&resp.body).ok();
        let json = json.as_ref();
        let success = (200..300).contains(&resp.status);

        if let Some(rule) = self.rules.iter().find(|r| r.matches(resp, json, &body)) {
            let mut e = build(rule.class.clone(), resp, json, &body);
            if let Some(m) = &rule.message {
                e.message.clone_from(m);
            }
            if let Some(path) = &rule.url {
                let url =
                    json.and_then(|j| lookup(j, path)).and_then(Value::as_str).map(str::to_owned);
                if url.is_some() {
                    e.url = url;
                }
            }
            let header = rule.retry_after_header.as_deref();
            e.retry_after = retry_after(resp, header, rule.class == ErrorClass::RateLimited)
                .or(rule.retry_after);
            return Some(e);
        }
        if !success {
            for (pattern, class) in &self.detection.response_patterns {
                if body.contains(pattern.as_str()) {
                    return Some(build(class.clone(), resp, json, &body));
                }
            }
            if let Some((_, class)) =
                self.detection.status_codes.iter().find(|(s, _)| *s == resp.status)
            {
                return Some(build(class.clone(), resp, json, &body));
            }
        }
        generic(resp, json, &body)
    }
}

fn retry_after(resp: &HttpResponse, header: Option<&str>, default_header: bool) -> Option<u64> {
    let name = header.or(default_header.then_some("retry-after"))?;
    resp.header(name).and_then(parse_retry_after)
}

/// Generic HTTP rules, after the connector's own.
fn generic(resp: &HttpResponse, json: Option<&Value>, body: &str) -> Option<ApiError> {
    let status = resp.status;
    let looks_html = json.is_none()
        && (resp.header("content-type").is_some_and(|c| c.contains("html"))
            || body.trim_start().starts_with('<'));
    if (300..400).contains(&status) {
        let location = resp.header("location").unwrap_or("").to_owned();
        let class = if location.contains("/challenge/") || location.contains("/accounts/suspended/")
        {
            ErrorClass::Challenge
        } else if location.contains("/checkpoint/") {
            ErrorClass::Checkpoint
        } else if location.contains("/consent/") {
            ErrorClass::Consent
        } else {
            ErrorClass::AuthExpired
        };
        let mut e = build(class, resp, json, body);
        e.message = format!("redirected to {location}");
        e.url = (!location.is_empty()).then_some(location);
        return Some(e);
    }
    if (200..300).contains(&status) {
        if looks_html {
            let mut e = build(ErrorClass::AuthExpired, resp, json, body);
            e.message = "an HTML page came back where JSON was expected (usually the login page)"
                .to_owned();
            return Some(e);
        }
        return None;
    }
    // A 404 is a missing object or a retired endpoint, whatever page comes
    // with it: it never ends the session (the login page arrives as a 200 or
    // a redirect, and challenges carry their own signals).
    let class = if status == 429 {
        ErrorClass::RateLimited
    } else if status >= 500 {
        ErrorClass::Transient
    } else if status == 404 {
        ErrorClass::NotFound
    } else if status == 401 || looks_html {
        ErrorClass::AuthExpired
    } else {
        ErrorClass::InvalidRequest
    };
    let mut e = build(class.clone(), resp, json, body);
    if matches!(class, ErrorClass::RateLimited | ErrorClass::Transient) {
        e.retry_after = retry_after(resp, None, true);
    }
    Some(e)
}

/// An [`ApiError`] of `class` with the provider's evidence from either
/// envelope: the private API's `{status:"fail", message, error_type, …}` or
/// Graph's `{error:{message, code, error_subcode, fbtrace_id}}`.
fn build(class: ErrorClass, resp: &HttpResponse, json: Option<&Value>, body: &str) -> ApiError {
    let graph = json.and_then(|j| j.get("error")).filter(|e| e.is_object());
    let (code, subcode, message, trace_id) = if graph.is_some() {
        (
            text_at(json, &["error", "code"]),
            text_at(json, &["error", "error_subcode"]),
            text_at(json, &["error", "message"]),
            text_at(json, &["error", "fbtrace_id"]),
        )
    } else {
        let code = text_at(json, &["error_type"]).or_else(|| text_at(json, &["message"]));
        let message = text_at(json, &["feedback_message"])
            .or_else(|| text_at(json, &["message"]))
            .or_else(|| text_at(json, &["logout_reason"]));
        (code, None, message, None)
    };
    let trace_id = trace_id.or_else(|| resp.header("x-fb-trace-id").map(str::to_owned));
    let message_text = message.clone().unwrap_or_else(|| {
        let snippet: String = body.chars().take(120).collect();
        if snippet.trim().is_empty() {
            format!("HTTP {}", resp.status)
        } else {
            format!("HTTP {}: {snippet}", resp.status)
        }
    });
    let url =
        if matches!(class, ErrorClass::Challenge | ErrorClass::Checkpoint | ErrorClass::Consent) {
            text_at(json, &["challenge", "url"])
                .or_else(|| text_at(json, &["checkpoint_url"]))
                .or_else(|| resp.header("location").map(str::to_owned))
        } else if class == ErrorClass::ActionBlocked {
            text_at(json, &["feedback_url"])
        } else {
            None
        };
    ApiError::new(class, message_text).with_url(url).with_provider(ProviderError {
        status: Some(resp.status),
        code,
        subcode,
        message,
        trace_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("120"), Some(120));
        assert_eq!(parse_retry_after("-5"), None);
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        let future = (Utc::now() + chrono::Duration::seconds(300))
            .format("%a, %d %b %Y %H:%M:%S GMT")
            .to_string();
        let got = parse_retry_after(&future).unwrap();
        assert!((290..=300).contains(&got), "{got}");
    }
}
