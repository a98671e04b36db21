//! The credentials and per-account state a connector's requests use.

use chrono::{DateTime, NaiveDateTime, Utc};
use indexmap::IndexMap;
use serde_json::{Map, Value};

/// The session of one account: cookies, an access token, `auth.*` extras
/// captured from responses (such as `ig_www_claim`) and the device uuid.
///
/// `Debug` never prints secret values, only names.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Session {
    cookies: IndexMap<String, String>,
    access_token: Option<String>,
    extras: IndexMap<String, String>,
    device_uuid: Option<String>,
    revision: u64,
    invalidated: bool,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("cookies", &self.cookies.keys().collect::<Vec<_>>())
            .field("access_token", &self.access_token.as_ref().map(|_| "<redacted>"))
            .field("extras", &self.extras.keys().collect::<Vec<_>>())
            .field("device_uuid", &self.device_uuid)
            .field("revision", &self.revision)
            .field("invalidated", &self.invalidated)
            .finish()
    }
}

impl Session {
    /// An empty session.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A session holding `cookies`.
    #[must_use]
    pub fn with_cookies<K: Into<String>, V: Into<String>>(
        mut self,
        cookies: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        for (k, v) in cookies {
            self.cookies.insert(k.into(), v.into());
        }
        self
    }

    /// A session holding a bearer access token.
    #[must_use]
    pub fn with_access_token(mut self, token: impl Into<String>) -> Self {
        self.access_token = Some(token.into());
        self
    }

    /// Sets the device uuid (`{{device.uuid}}`). Keep it stable per account.
    #[must_use]
    pub fn with_device_uuid(mut self, uuid: impl Into<String>) -> Self {
        self.device_uuid = Some(uuid.into());
        self
    }

    /// A fresh random device uuid, for a new account only: an existing
    /// account must keep the one it was created with.
    #[must_use]
    pub fn new_device_uuid() -> String {
        uuid::Uuid::new_v4().to_string()
    }

    /// A cookie's value.
    #[must_use]
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies.get(name).map(String::as_str)
    }

    /// All cookies, in the order they were set.
    pub fn cookies(&self) -> impl Iterator<Item = (&str, &str)> {
        self.cookies.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Sets a cookie.
    pub fn set_cookie(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let (name, value) = (name.into(), value.into());
        if self.cookies.get(&name) != Some(&value) {
            self.cookies.insert(name, value);
            self.revision += 1;
        }
    }

    /// Removes a cookie.
    pub fn remove_cookie(&mut self, name: &str) {
        if self.cookies.shift_remove(name).is_some() {
            self.revision += 1;
        }
    }

    /// The access token.
    #[must_use]
    pub fn access_token(&self) -> Option<&str> {
        self.access_token.as_deref()
    }

    /// Sets the access token.
    pub fn set_access_token(&mut self, token: impl Into<String>) {
        self.access_token = Some(token.into());
        self.revision += 1;
    }

    /// An `auth.<name>` extra value (for example `ig_www_claim`).
    #[must_use]
    pub fn extra(&self, name: &str) -> Option<&str> {
        self.extras.get(name).map(String::as_str)
    }

    /// All extras.
    pub fn extras(&self) -> impl Iterator<Item = (&str, &str)> {
        self.extras.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Sets an `auth.<name>` extra value.
    pub fn set_extra(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let (name, value) = (name.into(), value.into());
        if self.extras.get(&name) != Some(&value) {
            self.extras.insert(name, value);
            self.revision += 1;
        }
    }

    /// The device uuid.
    #[must_use]
    pub fn device_uuid(&self) -> Option<&str> {
        self.device_uuid.as_deref()
    }

    /// Increases whenever a response changed the session (a rotated cookie, a
    /// new claim); persist the session when it moved.
    #[must_use]
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// Whether a response deleted or expired the `sessionid` (or `xs`)
    /// cookie: the server ended the session.
    #[must_use]
    pub fn invalidated(&self) -> bool {
        self.invalidated
    }

    /// Applies to `self` what a call changed in its own copy of the session:
    /// `changed` started as a clone of `base`. Lets calls run on copies, in
    /// parallel, and fold their cookie rotations back into the shared
    /// session; what `self` learnt meanwhile from other calls is kept unless
    /// this call changed the same entry.
    pub fn absorb_changes(&mut self, base: &Session, changed: &Session) {
        for (k, v) in &changed.cookies {
            if base.cookies.get(k) != Some(v) {
                self.set_cookie(k.clone(), v.clone());
            }
        }
        for k in base.cookies.keys() {
            if !changed.cookies.contains_key(k) {
                self.remove_cookie(k);
            }
        }
        if changed.access_token != base.access_token
            && let Some(t) = &changed.access_token
        {
            self.set_access_token(t.clone());
        }
        for (k, v) in &changed.extras {
            if base.extras.get(k) != Some(v) {
                self.set_extra(k.clone(), v.clone());
            }
        }
        if changed.invalidated && !base.invalidated {
            self.invalidated = true;
        }
    }

    /// The `Cookie` header value, or `None` without cookies.
    #[must_use]
    pub fn cookie_header(&self) -> Option<String> {
        if self.cookies.is_empty() {
            return None;
        }
        Some(self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; "))
    }

    /// Applies one `Set-Cookie` header value at time `now`: sets the cookie,
    /// or deletes it when `Max-Age <= 0` or `Expires` is in the past.
    pub fn apply_set_cookie(&mut self, header: &str, now: DateTime<Utc>) {
        let mut parts = header.split(';');
        let Some((name, value)) = parts.next().and_then(|nv| nv.split_once('=')) else {
            return;
        };
        let (name, value) = (name.trim(), value.trim().trim_matches('"'));
        if name.is_empty() {
            return;
        }
        let mut delete = false;
        let mut max_age_seen = false;
        for attr in parts {
            let (k, v) =
                attr.split_once('=').map_or((attr.trim(), ""), |(k, v)| (k.trim(), v.trim()));
            if k.eq_ignore_ascii_case("max-age") {
                if let Ok(secs) = v.parse::<i64>() {
                    max_age_seen = true;
                    delete = secs <= 0;
                }
            } else if k.eq_ignore_ascii_case("expires")
                && !max_age_seen
                && let Some(t) = parse_http_date(v)
            {
                delete = t <= now;
            }
        }
        if delete {
            if matches!(name, "sessionid" | "xs") {
                self.invalidated = true;
            }
            self.remove_cookie(name);
        } else {
            self.set_cookie(name, value);
        }
    }

    /// The `auth` variable of expressions: `{cookies: {…}, access_token, <extras>…}`.
    #[must_use]
    pub(crate) fn auth_value(&self) -> Value {
        let mut m = Map::new();
        for (k, v) in &self.extras {
            m.insert(k.clone(), Value::String(v.clone()));
        }
        m.insert(
            "cookies".to_owned(),
            Value::Object(
                self.cookies.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect(),
            ),
        );
        if let Some(t) = &self.access_token {
            m.insert("access_token".to_owned(), Value::String(t.clone()));
        }
        Value::Object(m)
    }

    /// The `device` variable: `{uuid}`.
    #[must_use]
    pub(crate) fn device_value(&self) -> Value {
        let mut m = Map::new();
        if let Some(u) = &self.device_uuid {
            m.insert("uuid".to_owned(), Value::String(u.clone()));
        }
        Value::Object(m)
    }
}

/// Parses an HTTP date: IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the
/// cookie form with dashes (`Sun, 06-Nov-1994 08:49:37 GMT`) and RFC 850.
pub(crate) fn parse_http_date(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc2822(s) {
        return Some(t.with_timezone(&Utc));
    }
    for fmt in [
        "%a, %d-%b-%Y %H:%M:%S GMT",
        "%A, %d-%b-%y %H:%M:%S GMT",
        "%a, %d %b %Y %H:%M:%S GMT",
        "%a %b %e %H:%M:%S %Y",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(t.and_utc());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn absorb_changes_keeps_what_others_learnt() {
        let base = super::Session::new().with_cookies([("a", "1"), ("b", "2"), ("c", "3")]);
        let mut shared = base.clone();
        shared.set_cookie("b", "from-another-call");
        let mut mine = base.clone();
        mine.set_cookie("a", "rotated");
        mine.remove_cookie("c");
        mine.set_extra("ig_www_claim", "x");
        shared.absorb_changes(&base, &mine);
        assert_eq!(shared.cookie("a"), Some("rotated"));
        assert_eq!(shared.cookie("b"), Some("from-another-call"));
        assert_eq!(shared.cookie("c"), None);
        assert_eq!(shared.extra("ig_www_claim"), Some("x"));
        let before = shared.revision();
        shared.absorb_changes(&base, &base.clone());
        assert_eq!(shared.revision(), before, "nothing changed, nothing to persist");
    }

    use super::*;

    #[test]
    fn set_cookie_rotation_and_deletion() {
        let now = Utc::now();
        let mut s =
            Session::new().with_cookies([("sessionid", "s1"), ("csrftoken", "c1"), ("rur", "r")]);
        s.apply_set_cookie(
            "csrftoken=c2; Domain=.instagram.com; Max-Age=31449600; Path=/; Secure",
            now,
        );
        assert_eq!(s.cookie("csrftoken"), Some("c2"));
        s.apply_set_cookie("rur=\"\"; Domain=.instagram.com; expires=Thu, 01-Jan-1970 00:00:00 GMT; Max-Age=0; Path=/", now);
        assert_eq!(s.cookie("rur"), None);
        assert!(!s.invalidated());
        s.apply_set_cookie("sessionid=x; Expires=Thu, 01 Jan 1970 00:00:00 GMT", now);
        assert_eq!(s.cookie("sessionid"), None);
        assert!(s.invalidated());
        let dbg = format!("{:?}", s.with_access_token("secret-token"));
        assert!(!dbg.contains("c2") && !dbg.contains("secret-token"), "{dbg}");
    }
}
