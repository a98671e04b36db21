//! Browser login: the connector's `auth.connect.playwright` block parsed into
//! typed [`Step`]s, the origin rewriting that points them at a sandbox, and
//! (feature `browser`) a runner that executes them in a real Chromium over
//! the DevTools protocol.
//!
//! The step vocabulary is the seed's runner protocol: `goto`, `wait_for`
//! (`any` of `url_matches` / `selector` / `cookie`, `timeout` in ms),
//! `assert_cookies`, `extract_cookies` (`names`, `optional`), `extract`
//! (`selector`, `attribute`, `as`), `click`, `type` (`selector`, `text`) and
//! `close`.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde_json::Value;

use crate::error::AuthError;

mod rewrite;
#[cfg(feature = "browser")]
mod runner;

pub use rewrite::UrlRewriter;
#[cfg(feature = "browser")]
pub use runner::{
    BrowserLogin, BrowserOptions, RunOutcome, browser_login, decide_headless, find_chromium,
    has_display, run_protocol, run_steps,
};

/// One condition of a `wait_for` step.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Condition {
    /// The page URL matches this regular expression.
    UrlMatches(String),
    /// An element matches this CSS selector.
    Selector(String),
    /// A cookie with this name exists.
    Cookie(String),
}

/// One browser step.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Step {
    /// Navigate to a URL.
    Goto {
        /// The URL.
        url: String,
    },
    /// Wait until any condition holds.
    WaitFor {
        /// The conditions; the first that holds ends the wait.
        any: Vec<Condition>,
        /// How long to wait.
        timeout: Duration,
    },
    /// Fail unless these cookies exist.
    AssertCookies(Vec<String>),
    /// Collect cookies into the result.
    ExtractCookies {
        /// Required cookies (missing ones fail the step).
        names: Vec<String>,
        /// Cookies collected when present.
        optional: Vec<String>,
    },
    /// Read an element's attribute (or its text) into the result.
    Extract {
        /// The CSS selector.
        selector: String,
        /// The attribute to read; the element's text when `None`.
        attribute: Option<String>,
        /// The result key.
        as_name: String,
    },
    /// Click an element.
    Click {
        /// The CSS selector.
        selector: String,
    },
    /// Replace an input's value by typing text. `{{name}}` in the text is
    /// replaced by the runner's input of that name.
    Type {
        /// The CSS selector.
        selector: String,
        /// The text (may be a secret; never logged).
        text: String,
    },
    /// Close the browser and end the run.
    Close,
}

impl Step {
    /// The step's name as written in the spec.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::Goto { .. } => "goto",
            Self::WaitFor { .. } => "wait_for",
            Self::AssertCookies(_) => "assert_cookies",
            Self::ExtractCookies { .. } => "extract_cookies",
            Self::Extract { .. } => "extract",
            Self::Click { .. } => "click",
            Self::Type { .. } => "type",
            Self::Close => "close",
        }
    }
}

/// The whole `auth.connect.playwright` block.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectSpec {
    /// `launch.headless` as written (the runner also needs a display to go headed).
    pub headless: Option<bool>,
    /// The steps in order.
    pub steps: Vec<Step>,
    /// `on_success.message`, with `{{name}}` placeholders for extracted values.
    pub on_success: Option<String>,
    /// `on_error.<code>.message` by error code (`timeout`, `challenge_required`, …).
    pub on_error: BTreeMap<String, String>,
}

impl ConnectSpec {
    /// Parses a connector's `auth.connect` block (which holds `playwright:`).
    ///
    /// # Errors
    /// [`AuthError::Spec`] naming what is missing or malformed.
    pub fn from_connect(connect: &Value) -> Result<Self, AuthError> {
        let pw = connect
            .get("playwright")
            .or_else(|| connect.get("browser"))
            .ok_or_else(|| AuthError::Spec("auth.connect has no `playwright` block".into()))?;
        Self::from_playwright(pw)
    }

    /// Parses the `playwright` block itself (also the `browser-run` stdin
    /// document: `{"steps": […], "launch": {"headless": …}}`).
    ///
    /// # Errors
    /// [`AuthError::Spec`] naming what is missing or malformed.
    pub fn from_playwright(pw: &Value) -> Result<Self, AuthError> {
        let headless = pw.get("launch").and_then(|l| l.get("headless")).and_then(Value::as_bool);
        let steps = parse_steps(
            pw.get("steps").ok_or_else(|| AuthError::Spec("`steps` is missing".into()))?,
        )?;
        let on_success = pw.get("on_success").and_then(message_of);
        let mut on_error = BTreeMap::new();
        if let Some(Value::Object(m)) = pw.get("on_error") {
            for (code, v) in m {
                if let Some(msg) = message_of(v) {
                    on_error.insert(code.clone(), msg);
                }
            }
        }
        Ok(Self { headless, steps, on_success, on_error })
    }

    /// The success message with `{{key}}` replaced by extracted values.
    #[must_use]
    pub fn success_message(&self, extracted: &BTreeMap<String, String>) -> Option<String> {
        self.on_success.as_ref().map(|m| substitute(m, |k| extracted.get(k).cloned()))
    }

    /// The spec's message for an error (by its code), else the error's own message.
    #[must_use]
    pub fn error_message(&self, err: &StepError) -> String {
        self.on_error.get(err.kind.code()).cloned().unwrap_or_else(|| err.message.clone())
    }
}

fn message_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Object(m) => m.get("message").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    }
}

/// Replaces `{{ key }}` placeholders using `lookup`; unknown keys stay as written.
pub(crate) fn substitute(template: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let key = after[..end].trim();
        match lookup(key) {
            Some(v) => out.push_str(&v),
            None => out.push_str(&rest[start..start + 2 + end + 2]),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

fn bad(index: usize, step: &str, problem: &str) -> AuthError {
    AuthError::Spec(format!("steps[{index}] ({step}): {problem}"))
}

fn string_list(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(a) => a.iter().map(|x| x.as_str().map(str::to_owned)).collect(),
        _ => None,
    }
}

fn str_field(m: &serde_json::Map<String, Value>, key: &str) -> Option<String> {
    m.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// Default `wait_for` timeout when none is written: 30 seconds.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(30);

fn parse_timeout(v: Option<&Value>) -> Option<Duration> {
    match v? {
        Value::Number(n) => n.as_u64().map(Duration::from_millis),
        Value::String(s) => s.trim().parse::<u64>().ok().map(Duration::from_millis),
        _ => None,
    }
}

fn parse_condition(m: &serde_json::Map<String, Value>) -> Option<Condition> {
    if let Some(u) = str_field(m, "url_matches") {
        return Some(Condition::UrlMatches(u));
    }
    if let Some(s) = str_field(m, "selector") {
        return Some(Condition::Selector(s));
    }
    str_field(m, "cookie").map(Condition::Cookie)
}

/// Parses a `steps` array.
///
/// # Errors
/// [`AuthError::Spec`] naming the step index and problem; every regex in
/// `url_matches` is compiled here so a bad pattern fails before a browser starts.
pub fn parse_steps(v: &Value) -> Result<Vec<Step>, AuthError> {
    let Value::Array(items) = v else {
        return Err(AuthError::Spec("`steps` must be a list".into()));
    };
    let mut steps = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let (name, body) = match item {
            Value::String(s) => (s.as_str(), &Value::Null),
            Value::Object(m) if m.len() == 1 => {
                m.iter().next().map(|(k, v)| (k.as_str(), v)).unwrap_or(("", &Value::Null))
            }
            _ => return Err(bad(i, "?", "a step is a name or an object with exactly one key")),
        };
        let step = match name {
            "goto" => Step::Goto {
                url: body
                    .as_str()
                    .map(str::to_owned)
                    .or_else(|| body.get("url").and_then(Value::as_str).map(str::to_owned))
                    .ok_or_else(|| bad(i, name, "needs a URL"))?,
            },
            "wait_for" => {
                let Value::Object(m) = body else { return Err(bad(i, name, "needs an object")) };
                let mut any = Vec::new();
                if let Some(list) = m.get("any") {
                    let Value::Array(list) = list else {
                        return Err(bad(i, name, "`any` must be a list"));
                    };
                    for c in list {
                        let cond = c.as_object().and_then(parse_condition).ok_or_else(|| {
                            bad(i, name, "each condition is url_matches, selector or cookie")
                        })?;
                        any.push(cond);
                    }
                } else if let Some(c) = parse_condition(m) {
                    any.push(c);
                }
                if any.is_empty() {
                    return Err(bad(
                        i,
                        name,
                        "needs at least one condition (url_matches, selector, cookie)",
                    ));
                }
                for c in &any {
                    if let Condition::UrlMatches(p) = c {
                        regex::Regex::new(p)
                            .map_err(|e| bad(i, name, &format!("bad url_matches pattern: {e}")))?;
                    }
                }
                let timeout = match m.get("timeout") {
                    None => DEFAULT_WAIT,
                    Some(t) => parse_timeout(Some(t))
                        .ok_or_else(|| bad(i, name, "timeout is a number of milliseconds"))?,
                };
                Step::WaitFor { any, timeout }
            }
            "assert_cookies" => Step::AssertCookies(
                string_list(body).ok_or_else(|| bad(i, name, "needs a list of cookie names"))?,
            ),
            "extract_cookies" => {
                let (names, optional) = match body {
                    Value::Object(m) => (
                        m.get("names")
                            .map(string_list)
                            .unwrap_or(Some(vec![]))
                            .ok_or_else(|| bad(i, name, "`names` is a list"))?,
                        m.get("optional")
                            .map(string_list)
                            .unwrap_or(Some(vec![]))
                            .ok_or_else(|| bad(i, name, "`optional` is a list"))?,
                    ),
                    other => {
                        (string_list(other).ok_or_else(|| bad(i, name, "needs `names`"))?, vec![])
                    }
                };
                Step::ExtractCookies { names, optional }
            }
            "extract" => {
                let Value::Object(m) = body else {
                    return Err(bad(i, name, "needs selector and as"));
                };
                Step::Extract {
                    selector: str_field(m, "selector")
                        .ok_or_else(|| bad(i, name, "needs `selector`"))?,
                    attribute: str_field(m, "attribute"),
                    as_name: str_field(m, "as").ok_or_else(|| bad(i, name, "needs `as`"))?,
                }
            }
            "click" => Step::Click {
                selector: body
                    .as_str()
                    .map(str::to_owned)
                    .or_else(|| body.get("selector").and_then(Value::as_str).map(str::to_owned))
                    .ok_or_else(|| bad(i, name, "needs a selector"))?,
            },
            "type" | "fill" => {
                let Value::Object(m) = body else {
                    return Err(bad(i, name, "needs selector and text"));
                };
                Step::Type {
                    selector: str_field(m, "selector")
                        .ok_or_else(|| bad(i, name, "needs `selector`"))?,
                    text: str_field(m, "text")
                        .or_else(|| str_field(m, "value"))
                        .ok_or_else(|| bad(i, name, "needs `text`"))?,
                }
            }
            "close" => Step::Close,
            other => {
                return Err(bad(
                    i,
                    other,
                    "unknown step (goto, wait_for, assert_cookies, extract_cookies, extract, click, type, close)",
                ));
            }
        };
        steps.push(step);
    }
    Ok(steps)
}

/// Why a browser run failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StepErrorKind {
    /// A wait ran out of time.
    Timeout,
    /// Instagram asked for a verification the run cannot complete.
    ChallengeRequired,
    /// Required cookies were not set.
    MissingCookies,
    /// An element never appeared.
    SelectorNotFound,
    /// Navigation failed.
    Navigation,
    /// The browser could not be started or crashed.
    Browser,
}

impl StepErrorKind {
    /// The error code, as used by the spec's `on_error` keys.
    #[must_use]
    pub fn code(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::ChallengeRequired => "challenge_required",
            Self::MissingCookies => "missing_cookies",
            Self::SelectorNotFound => "selector_not_found",
            Self::Navigation => "navigation_failed",
            Self::Browser => "browser_error",
        }
    }
}

/// A failed browser run.
#[derive(Debug, Clone, thiserror::Error)]
pub struct StepError {
    /// What kind of failure.
    pub kind: StepErrorKind,
    /// The index of the failing step, when one was running.
    pub step: Option<usize>,
    /// A message naming the step and what was expected (never a secret).
    pub message: String,
}

impl StepError {
    /// A new error.
    pub fn new(kind: StepErrorKind, step: Option<usize>, message: impl Into<String>) -> Self {
        Self { kind, step, message: message.into() }
    }
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.step {
            Some(i) => write!(f, "{} at step {i}: {}", self.kind.code(), self.message),
            None => write!(f, "{}: {}", self.kind.code(), self.message),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn seed_block() -> Value {
        json!({
            "launch": {"headless": false},
            "steps": [
                {"goto": "https://www.instagram.com/accounts/login/"},
                {"wait_for": {"any": [
                    {"url_matches": "https://www.instagram.com/$"},
                    {"url_matches": "https://www.instagram.com/direct/"},
                    {"selector": "[aria-label='Home']"}
                ], "timeout": 300000}},
                {"assert_cookies": ["sessionid", "csrftoken", "ds_user_id"]},
                {"extract_cookies": {"names": ["sessionid", "csrftoken", "ds_user_id", "mid", "ig_did"], "optional": ["rur", "ig_www_claim"]}},
                {"extract": {"selector": "img[data-testid='user-avatar']", "attribute": "alt", "as": "username"}},
                "close"
            ],
            "on_success": {"message": "Connected to Instagram as @{{username}}!"},
            "on_error": {
                "challenge_required": {"message": "Instagram requires verification. Please complete it in the browser."},
                "timeout": {"message": "Login timed out. Please try again."}
            }
        })
    }

    #[test]
    fn parses_the_seed_block() {
        let spec = ConnectSpec::from_connect(&json!({"playwright": seed_block()})).unwrap();
        assert_eq!(spec.headless, Some(false));
        assert_eq!(spec.steps.len(), 6);
        assert_eq!(
            spec.steps[0],
            Step::Goto { url: "https://www.instagram.com/accounts/login/".into() }
        );
        let Step::WaitFor { any, timeout } = &spec.steps[1] else { panic!("wait_for") };
        assert_eq!(any.len(), 3);
        assert_eq!(*timeout, Duration::from_secs(300));
        assert_eq!(spec.steps[5], Step::Close);
        let mut ex = BTreeMap::new();
        ex.insert("username".to_owned(), "joe".to_owned());
        assert_eq!(spec.success_message(&ex).unwrap(), "Connected to Instagram as @joe!");
        let err = StepError::new(StepErrorKind::Timeout, Some(1), "x");
        assert_eq!(spec.error_message(&err), "Login timed out. Please try again.");
        let err = StepError::new(StepErrorKind::Browser, None, "no chromium");
        assert_eq!(spec.error_message(&err), "no chromium");
    }

    #[test]
    fn rejects_bad_steps_with_their_index() {
        for (steps, needle) in [
            (json!([{"jump": 1}]), "steps[0] (jump): unknown step"),
            (
                json!(["close", {"wait_for": {"timeout": 5}}]),
                "steps[1] (wait_for): needs at least one condition",
            ),
            (json!([{"wait_for": {"url_matches": "("}}]), "bad url_matches pattern"),
            (json!([{"type": {"selector": "#a"}}]), "needs `text`"),
            (json!({"goto": "x"}), "must be a list"),
        ] {
            let err = parse_steps(&steps).unwrap_err().to_string();
            assert!(err.contains(needle), "{err} does not contain {needle}");
        }
    }

    #[test]
    fn substitute_keeps_unknown_keys() {
        let s = substitute("a {{ x }} b {{y}} {{", |k| (k == "x").then(|| "1".to_owned()));
        assert_eq!(s, "a 1 b {{y}} {{");
    }
}
