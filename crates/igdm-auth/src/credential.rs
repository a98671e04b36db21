//! Credentials: what igdm keeps per account.
//!
//! Every secret value sits in a [`SecretString`]. No type here derives
//! `Debug` over a secret: the hand-written `Debug` impls print names, lengths
//! and dates, never values. The types implement `Serialize` so the encrypted
//! vault can store them; serializing a credential therefore exposes its
//! secrets, and must only happen on the way into an encrypted file or onto
//! the stdout of a command whose contract is to print them.

use std::collections::BTreeMap;
use std::fmt;

use igdm_model::{Timestamp, open_enum};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// Serde helpers that expose a secret on serialization (vault only).
pub(crate) mod expose {
    use std::collections::BTreeMap;

    use secrecy::{ExposeSecret, SecretString};
    use serde::{Deserialize, Deserializer, Serializer, ser::SerializeMap};

    pub(crate) fn serialize<S: Serializer>(v: &SecretString, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(v.expose_secret())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SecretString, D::Error> {
        String::deserialize(d).map(SecretString::from)
    }

    pub(crate) mod option {
        use super::*;

        pub(crate) fn serialize<S: Serializer>(
            v: &Option<SecretString>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match v {
                Some(v) => s.serialize_some(v.expose_secret()),
                None => s.serialize_none(),
            }
        }

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<SecretString>, D::Error> {
            Ok(Option::<String>::deserialize(d)?.map(SecretString::from))
        }
    }

    pub(crate) mod map {
        use super::*;

        pub(crate) fn serialize<S: Serializer>(
            v: &BTreeMap<String, SecretString>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            let mut m = s.serialize_map(Some(v.len()))?;
            for (k, val) in v {
                m.serialize_entry(k, val.expose_secret())?;
            }
            m.end()
        }

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<BTreeMap<String, SecretString>, D::Error> {
            let raw = BTreeMap::<String, String>::deserialize(d)?;
            Ok(raw.into_iter().map(|(k, v)| (k, SecretString::from(v))).collect())
        }
    }
}

/// The device identity pinned to a cookie session. Instagram ties a session
/// to the device that created it: these values are generated once per
/// account and never regenerated (reference §11).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceIdentity {
    /// The device uuid sent as `_uuid` in form bodies.
    pub uuid: String,
    /// The user agent pinned to this account (a mismatch causes disconnects).
    pub user_agent: String,
    /// The last `x-ig-set-www-claim` value; `"0"` until the server sets one.
    #[serde(default = "default_claim")]
    pub www_claim: String,
}

fn default_claim() -> String {
    "0".to_owned()
}

impl DeviceIdentity {
    /// The user agent igdm pins for new web sessions (a desktop Chrome).
    pub const DEFAULT_USER_AGENT: &'static str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/146.0.0.0 Safari/537.36";

    /// A fresh identity with a random uuid and the given user agent.
    #[must_use]
    pub fn generate(user_agent: Option<&str>) -> Self {
        Self {
            uuid: uuid::Uuid::new_v4().to_string(),
            user_agent: user_agent.unwrap_or(Self::DEFAULT_USER_AGENT).to_owned(),
            www_claim: default_claim(),
        }
    }
}

/// A web session: the cookies of a logged-in browser.
#[derive(Clone, Serialize, Deserialize)]
pub struct CookieCredential {
    /// Cookie name to value.
    #[serde(with = "expose::map")]
    pub cookies: BTreeMap<String, SecretString>,
    /// The cookie domain from the connector (`instagram.com`).
    pub domain: String,
    /// When the session was first stored.
    pub created_at: Timestamp,
    /// When any cookie last changed.
    pub updated_at: Timestamp,
    /// A human label, usually the username.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The device the session is pinned to.
    pub device: DeviceIdentity,
    /// The base URL the session was obtained against, when it was not the
    /// real service (the sandbox). `None` means the real service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
}

impl CookieCredential {
    /// A new cookie credential created now, with a fresh device identity.
    #[must_use]
    pub fn new(
        cookies: BTreeMap<String, SecretString>,
        domain: impl Into<String>,
        label: Option<String>,
    ) -> Self {
        let now = Timestamp::now();
        Self {
            cookies,
            domain: domain.into(),
            created_at: now,
            updated_at: now,
            label,
            device: DeviceIdentity::generate(None),
            base_url: None,
        }
    }

    /// The value of one cookie.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&SecretString> {
        self.cookies.get(name)
    }

    /// The names of `required` cookies that are absent or empty.
    #[must_use]
    pub fn missing<'a>(&self, required: impl IntoIterator<Item = &'a str>) -> Vec<String> {
        required
            .into_iter()
            .filter(|n| self.cookies.get(*n).is_none_or(|v| v.expose_secret().is_empty()))
            .map(str::to_owned)
            .collect()
    }

    /// The `Cookie` request header value (`a=1; b=2`). The result is secret.
    #[must_use]
    pub fn cookie_header(&self) -> SecretString {
        let joined = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={}", v.expose_secret()))
            .collect::<Vec<_>>()
            .join("; ");
        SecretString::from(joined)
    }

    /// Applies one `Set-Cookie` style update: a value replaces the cookie,
    /// `None` (Max-Age ≤ 0 or an expiry in the past) deletes it. Returns
    /// whether anything changed.
    pub fn apply(&mut self, name: &str, value: Option<SecretString>) -> bool {
        let changed = match value {
            Some(v) => {
                let same = self
                    .cookies
                    .get(name)
                    .is_some_and(|old| old.expose_secret() == v.expose_secret());
                if !same {
                    self.cookies.insert(name.to_owned(), v);
                }
                !same
            }
            None => self.cookies.remove(name).is_some(),
        };
        if changed {
            self.updated_at = Timestamp::now();
        }
        changed
    }

    /// The user id implied by the session (`ds_user_id`, else the numeric
    /// prefix of `sessionid`).
    #[must_use]
    pub fn user_id(&self) -> Option<String> {
        if let Some(id) = self.cookies.get("ds_user_id") {
            return Some(id.expose_secret().to_owned());
        }
        let sid = self.cookies.get("sessionid")?.expose_secret();
        let prefix: String = sid.chars().take_while(char::is_ascii_digit).collect();
        (!prefix.is_empty()).then_some(prefix)
    }
}

impl fmt::Debug for CookieCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CookieCredential")
            .field("cookies", &self.cookies.keys().collect::<Vec<_>>())
            .field("domain", &self.domain)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .field("label", &self.label)
            .field("device", &self.device)
            .field("base_url", &self.base_url)
            .finish()
    }
}

open_enum! {
    /// What an access token is for.
    pub enum TokenKind {
        /// A long-lived Instagram User access token (Instagram Login, 60 days, refreshable).
        InstagramUser = "instagram_user",
        /// A Facebook Page access token (Facebook Login flavour).
        Page = "page",
        /// A short-lived token (one hour), before the long-lived exchange.
        ShortLived = "short_lived",
    }
}

/// An OAuth access token for the official API.
#[derive(Clone, Serialize, Deserialize)]
pub struct TokenCredential {
    /// The token itself.
    #[serde(with = "expose")]
    pub access_token: SecretString,
    /// When it expires; `None` for tokens that do not expire (Page tokens from a long-lived user token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    /// When it was issued (the refresh rule needs its age).
    pub issued_at: Timestamp,
    /// Granted scopes.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// What the token is for.
    pub kind: TokenKind,
    /// The Instagram user id (Instagram Login).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The Page id (Facebook Login).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_id: Option<String>,
    /// The app the token was issued to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    /// The base URL the token was obtained against, when not the real service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
}

impl fmt::Debug for TokenCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCredential")
            .field("access_token", &"[REDACTED]")
            .field("expires_at", &self.expires_at)
            .field("issued_at", &self.issued_at)
            .field("scopes", &self.scopes)
            .field("kind", &self.kind)
            .field("user_id", &self.user_id)
            .field("page_id", &self.page_id)
            .field("app_id", &self.app_id)
            .field("base_url", &self.base_url)
            .finish()
    }
}

/// An app's own secrets: the app secret (token exchange, webhook signatures)
/// and the webhook verify token.
#[derive(Clone, Serialize, Deserialize)]
pub struct AppSecrets {
    /// The Meta app id (public).
    pub app_id: String,
    /// The app secret.
    #[serde(with = "expose::option", default, skip_serializing_if = "Option::is_none")]
    pub app_secret: Option<SecretString>,
    /// The webhook `hub.verify_token`.
    #[serde(with = "expose::option", default, skip_serializing_if = "Option::is_none")]
    pub verify_token: Option<SecretString>,
}

impl fmt::Debug for AppSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppSecrets")
            .field("app_id", &self.app_id)
            .field("app_secret", &self.app_secret.as_ref().map(|_| "[REDACTED]"))
            .field("verify_token", &self.verify_token.as_ref().map(|_| "[REDACTED]"))
            .finish()
    }
}

/// One stored credential.
#[derive(Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Credential {
    /// A web cookie session (private API connectors).
    Cookies(CookieCredential),
    /// An OAuth access token (official API connectors).
    Token(TokenCredential),
    /// App secrets (app secret, webhook verify token).
    App(AppSecrets),
}

impl Credential {
    /// `"cookies"`, `"token"` or `"app"`.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Cookies(_) => "cookies",
            Self::Token(_) => "token",
            Self::App(_) => "app",
        }
    }

    /// A summary without secrets, for listings.
    #[must_use]
    pub fn summary(&self, account: &str) -> AccountSummary {
        let (label, expires_at, updated_at, token_kind, user_id) = match self {
            Self::Cookies(c) => (c.label.clone(), None, Some(c.updated_at), None, c.user_id()),
            Self::Token(t) => (
                None,
                t.expires_at,
                Some(t.issued_at),
                Some(t.kind.clone()),
                t.user_id.clone().or(t.page_id.clone()),
            ),
            Self::App(a) => (Some(a.app_id.clone()), None, None, None, None),
        };
        AccountSummary {
            account: account.to_owned(),
            kind: self.kind().to_owned(),
            label,
            user_id,
            token_kind,
            expires_at,
            updated_at,
        }
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cookies(c) => c.fmt(f),
            Self::Token(t) => t.fmt(f),
            Self::App(a) => a.fmt(f),
        }
    }
}

/// What a listing shows about an account: no secret values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountSummary {
    /// The account name.
    pub account: String,
    /// `"cookies"`, `"token"` or `"app"`.
    pub kind: String,
    /// The label (username for cookie sessions, app id for app secrets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The provider user id, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The token kind, for tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_kind: Option<TokenKind>,
    /// When the credential expires, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    /// When the credential last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> CookieCredential {
        let mut m = BTreeMap::new();
        m.insert("sessionid".to_owned(), SecretString::from("4242%3Asecretvalue"));
        m.insert("csrftoken".to_owned(), SecretString::from("csrfsecret"));
        CookieCredential::new(m, "instagram.com", Some("joe".to_owned()))
    }

    #[test]
    fn debug_never_shows_values() {
        let c = Credential::Cookies(sample());
        let d = format!("{c:?}");
        assert!(!d.contains("secretvalue") && !d.contains("csrfsecret"), "{d}");
        assert!(d.contains("sessionid"));
        let t = Credential::Token(TokenCredential {
            access_token: SecretString::from("IGQVJtokenvalue"),
            expires_at: None,
            issued_at: Timestamp::now(),
            scopes: vec![],
            kind: TokenKind::InstagramUser,
            user_id: Some("1".into()),
            page_id: None,
            app_id: None,
            base_url: None,
        });
        assert!(!format!("{t:?}").contains("tokenvalue"));
        let a = Credential::App(AppSecrets {
            app_id: "1".into(),
            app_secret: Some("appsecretvalue".into()),
            verify_token: Some("verifyvalue".into()),
        });
        let d = format!("{a:?}");
        assert!(!d.contains("appsecretvalue") && !d.contains("verifyvalue"), "{d}");
    }

    #[test]
    fn serde_round_trip_and_helpers() {
        let c = Credential::Cookies(sample());
        let json = serde_json::to_string(&c).unwrap();
        let back: Credential = serde_json::from_str(&json).unwrap();
        let Credential::Cookies(back) = back else { panic!("kind") };
        assert_eq!(back.get("sessionid").unwrap().expose_secret(), "4242%3Asecretvalue");
        assert_eq!(back.user_id().as_deref(), Some("4242"));
        assert_eq!(back.missing(["sessionid", "mid", "ig_did"]), vec!["mid", "ig_did"]);
        assert_eq!(
            back.cookie_header().expose_secret(),
            "csrftoken=csrfsecret; sessionid=4242%3Asecretvalue"
        );
        assert_eq!(back.device.www_claim, "0");
    }

    #[test]
    fn apply_rotates_and_deletes() {
        let mut c = sample();
        assert!(!c.apply("csrftoken", Some("csrfsecret".into())));
        assert!(c.apply("csrftoken", Some("rotated".into())));
        assert!(c.apply("csrftoken", None));
        assert!(c.get("csrftoken").is_none());
    }
}
