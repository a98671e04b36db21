//! Facebook Login Page tokens for the instagram-page connector (reference:
//! Graph API §12, "FB Login flavour").
//!
//! 1. [`FacebookLogin::exchange_user_token`]: a short-lived Facebook user
//!    token (from Facebook Login for Business or the Graph API Explorer) →
//!    `GET /oauth/access_token?grant_type=fb_exchange_token&client_id&client_secret&fb_exchange_token`
//!    → a long-lived user token (~60 days). It needs the app secret, so it
//!    runs here, never in a browser.
//! 2. [`FacebookLogin::pages`]: `GET /me/accounts?fields=name,access_token,tasks,instagram_business_account`
//!    with the long-lived user token → the user's Pages, each with a Page
//!    token. Page tokens derived from a long-lived user token do not expire.
//! 3. [`choose_page`] picks the Page to connect: the one named by id, else
//!    the only Page with a linked Instagram professional account and the
//!    MESSAGING task.
//! 4. [`connect_page`] runs the three steps and stores the Page token in the
//!    credential store. The user token itself is not kept.
//!
//! Tokens and the app secret travel only in query strings sent to the
//! provider; errors carry the provider's message, never a URL.

use chrono::Duration as ChronoDuration;
use igdm_model::Timestamp;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use url::Url;

use crate::credential::{Credential, TokenCredential, TokenKind};
use crate::error::AuthError;
use crate::oauth::{Clock, OAuthError, http_client, id_string, provider_error, send_json};
use crate::store::CredentialStore;

/// The Graph API version the instagram-page connector speaks.
pub const GRAPH_VERSION: &str = "v21.0";

/// Where the Facebook Login calls go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FacebookEndpoints {
    /// The token exchange (`https://graph.facebook.com/v21.0/oauth/access_token`).
    pub exchange: Url,
    /// The user's Pages (`https://graph.facebook.com/v21.0/me/accounts`).
    pub accounts: Url,
}

impl FacebookEndpoints {
    /// The real endpoints on graph.facebook.com.
    ///
    /// # Errors
    /// Never in practice: the URL is a constant.
    pub fn facebook() -> Result<Self, AuthError> {
        Self::with_base_url("https://graph.facebook.com")
    }

    /// The same paths on another origin (the sandbox).
    ///
    /// # Errors
    /// [`AuthError::Spec`] when `base` is not a URL.
    pub fn with_base_url(base: &str) -> Result<Self, AuthError> {
        let base = Url::parse(&format!("{}/", base.trim_end_matches('/')))
            .map_err(|e| AuthError::Spec(format!("bad base URL `{base}`: {e}")))?;
        let join = |p: &str| {
            base.join(&format!("{GRAPH_VERSION}/{p}"))
                .map_err(|e| AuthError::Spec(format!("bad base URL: {e}")))
        };
        Ok(Self { exchange: join("oauth/access_token")?, accounts: join("me/accounts")? })
    }
}

/// A long-lived Facebook user token.
pub struct UserToken {
    /// The token.
    pub access_token: SecretString,
    /// When it expires, when the provider said.
    pub expires_at: Option<Timestamp>,
}

impl std::fmt::Debug for UserToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserToken")
            .field("access_token", &"[REDACTED]")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// One Page the user manages, with its Page token.
#[derive(Clone)]
pub struct PageGrant {
    /// The Page id.
    pub page_id: String,
    /// The Page name.
    pub name: Option<String>,
    /// The linked Instagram professional account, when any.
    pub instagram_id: Option<String>,
    /// What the user may do on the Page (`MESSAGING`, `MODERATE`, …).
    pub tasks: Vec<String>,
    /// The Page token.
    pub access_token: SecretString,
}

impl std::fmt::Debug for PageGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PageGrant")
            .field("page_id", &self.page_id)
            .field("name", &self.name)
            .field("instagram_id", &self.instagram_id)
            .field("tasks", &self.tasks)
            .field("access_token", &"[REDACTED]")
            .finish()
    }
}

impl PageGrant {
    /// Whether the Page can serve Instagram messaging: a linked Instagram
    /// account and the MESSAGING task.
    #[must_use]
    pub fn can_message(&self) -> bool {
        self.instagram_id.is_some() && self.tasks.iter().any(|t| t == "MESSAGING")
    }
}

/// Talks to the Facebook Login endpoints for one app.
#[derive(Clone)]
pub struct FacebookLogin {
    http: reqwest::Client,
    endpoints: FacebookEndpoints,
    app_id: String,
    app_secret: SecretString,
    base_url: Option<String>,
}

impl std::fmt::Debug for FacebookLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FacebookLogin")
            .field("endpoints", &self.endpoints)
            .field("app_id", &self.app_id)
            .field("app_secret", &"[REDACTED]")
            .finish_non_exhaustive()
    }
}

impl FacebookLogin {
    /// A client for the app `app_id` against `endpoints`; `base_url` is
    /// recorded in the stored credential when it is not the real service.
    ///
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn new(
        app_id: impl Into<String>,
        app_secret: SecretString,
        endpoints: FacebookEndpoints,
        base_url: Option<String>,
    ) -> Result<Self, AuthError> {
        let http = http_client()?;
        Ok(Self { http, endpoints, app_id: app_id.into(), app_secret, base_url })
    }

    async fn get(
        &self,
        endpoint: &'static str,
        url: Url,
        query: &[(&str, &str)],
    ) -> Result<Value, OAuthError> {
        let (status, body) = send_json(endpoint, self.http.get(url).query(query)).await?;
        if (200..300).contains(&status) {
            return Ok(body);
        }
        let (code, _, message) = provider_error(&body);
        if code == Some(190) {
            return Err(OAuthError::UserTokenRejected { message });
        }
        Err(OAuthError::Provider { endpoint, status, message })
    }

    /// Exchanges a short-lived user token for a long-lived one (~60 days),
    /// issued at `now`.
    ///
    /// # Errors
    /// [`OAuthError::UserTokenRejected`] for an invalid or expired user
    /// token, [`OAuthError::Provider`] for a wrong app id or secret.
    pub async fn exchange_user_token(
        &self,
        short: &SecretString,
        now: Timestamp,
    ) -> Result<UserToken, OAuthError> {
        let body = self
            .get(
                "user token exchange",
                self.endpoints.exchange.clone(),
                &[
                    ("grant_type", "fb_exchange_token"),
                    ("client_id", &self.app_id),
                    ("client_secret", self.app_secret.expose_secret()),
                    ("fb_exchange_token", short.expose_secret()),
                ],
            )
            .await?;
        let token = body.get("access_token").and_then(Value::as_str).ok_or_else(|| {
            OAuthError::Provider {
                endpoint: "user token exchange",
                status: 200,
                message: "the response has no access_token".into(),
            }
        })?;
        let expires_at = body
            .get("expires_in")
            .and_then(Value::as_i64)
            .map(|s| Timestamp(now.0 + ChronoDuration::seconds(s)));
        Ok(UserToken { access_token: SecretString::from(token.to_owned()), expires_at })
    }

    /// The Pages the user manages, with their Page tokens (every page of
    /// the list is followed).
    ///
    /// # Errors
    /// [`OAuthError::UserTokenRejected`] for an invalid or expired user token.
    pub async fn pages(&self, user: &UserToken) -> Result<Vec<PageGrant>, OAuthError> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut query = vec![
                ("fields", "id,name,access_token,tasks,instagram_business_account"),
                ("access_token", user.access_token.expose_secret()),
            ];
            if let Some(a) = after.as_deref() {
                query.push(("after", a));
            }
            let body = self.get("page list", self.endpoints.accounts.clone(), &query).await?;
            let data = body.get("data").and_then(Value::as_array).cloned().unwrap_or_default();
            for p in &data {
                let (Some(page_id), Some(token)) =
                    (id_string(p.get("id")), p.get("access_token").and_then(Value::as_str))
                else {
                    continue;
                };
                out.push(PageGrant {
                    page_id,
                    name: p.get("name").and_then(Value::as_str).map(str::to_owned),
                    instagram_id: id_string(
                        p.get("instagram_business_account").and_then(|a| a.get("id")),
                    ),
                    tasks: p
                        .get("tasks")
                        .and_then(Value::as_array)
                        .map(|t| t.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                        .unwrap_or_default(),
                    access_token: SecretString::from(token.to_owned()),
                });
            }
            let next = body.pointer("/paging/next").and_then(Value::as_str);
            let cursor = body.pointer("/paging/cursors/after").and_then(Value::as_str);
            match (next, cursor) {
                (Some(_), Some(c)) if !data.is_empty() => after = Some(c.to_owned()),
                _ => break,
            }
        }
        Ok(out)
    }
}

/// Picks the Page to connect: `page_id` when given, else the only Page
/// that can serve Instagram messaging.
///
/// # Errors
/// [`OAuthError::NoPage`] saying which Pages exist and what is missing.
pub fn choose_page<'a>(
    pages: &'a [PageGrant],
    page_id: Option<&str>,
) -> Result<&'a PageGrant, OAuthError> {
    let list = || {
        pages
            .iter()
            .map(|p| {
                format!(
                    "{} ({}{})",
                    p.page_id,
                    p.name.as_deref().unwrap_or("unnamed"),
                    if p.can_message() { "" } else { ", cannot message on Instagram" }
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    if pages.is_empty() {
        return Err(OAuthError::NoPage {
            detail: "the user manages no Page (or the token lacks pages_show_list)".into(),
        });
    }
    let chosen = match page_id {
        Some(id) => pages.iter().find(|p| p.page_id == id).ok_or_else(|| OAuthError::NoPage {
            detail: format!("the user does not manage Page {id}; their Pages: {}", list()),
        })?,
        None => {
            let usable: Vec<&PageGrant> = pages.iter().filter(|p| p.can_message()).collect();
            match usable.as_slice() {
                [one] => *one,
                [] => {
                    return Err(OAuthError::NoPage {
                        detail: format!(
                            "no Page has a linked Instagram professional account and the MESSAGING task: {}",
                            list()
                        ),
                    });
                }
                _ => {
                    return Err(OAuthError::NoPage {
                        detail: format!(
                            "several Pages qualify; choose one with --page-id: {}",
                            list()
                        ),
                    });
                }
            }
        }
    };
    if !chosen.can_message() {
        return Err(OAuthError::NoPage {
            detail: format!(
                "Page {} needs a linked Instagram professional account and the MESSAGING task",
                chosen.page_id
            ),
        });
    }
    Ok(chosen)
}

/// Exchanges `short` for a long-lived user token, reads the user's Pages,
/// picks one ([`choose_page`]) and stores its Page token for `account`.
/// Nothing is stored on failure.
///
/// # Errors
/// [`OAuthError`]s of each step, store errors.
pub async fn connect_page(
    fb: &FacebookLogin,
    account: &str,
    store: &dyn CredentialStore,
    clock: &dyn Clock,
    short: &SecretString,
    page_id: Option<&str>,
) -> Result<TokenCredential, AuthError> {
    crate::error::validate_account(account)?;
    let now = clock.now();
    let user = fb.exchange_user_token(short, now).await?;
    let pages = fb.pages(&user).await?;
    let page = choose_page(&pages, page_id)?;
    let token = TokenCredential {
        access_token: page.access_token.clone(),
        // Derived from a long-lived user token: it does not expire.
        expires_at: None,
        issued_at: now,
        scopes: Vec::new(),
        kind: TokenKind::Page,
        user_id: page.instagram_id.clone(),
        page_id: Some(page.page_id.clone()),
        app_id: Some(fb.app_id.clone()),
        base_url: fb.base_url.clone(),
    };
    store.put(account, Credential::Token(token.clone())).await?;
    tracing::info!(account, page_id = %page.page_id, "facebook page token stored");
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(id: &str, ig: Option<&str>, tasks: &[&str]) -> PageGrant {
        PageGrant {
            page_id: id.into(),
            name: Some(format!("Page {id}")),
            instagram_id: ig.map(str::to_owned),
            tasks: tasks.iter().map(|t| (*t).to_owned()).collect(),
            access_token: SecretString::from(format!("EAAsecret{id}")),
        }
    }

    #[test]
    fn page_choice_explains_itself() {
        let pages = vec![page("1", None, &["MESSAGING"]), page("2", Some("17"), &["MESSAGING"])];
        assert_eq!(choose_page(&pages, None).unwrap().page_id, "2");
        assert_eq!(choose_page(&pages, Some("2")).unwrap().page_id, "2");
        let e = choose_page(&pages, Some("1")).unwrap_err().to_string();
        assert!(e.contains("linked Instagram"), "{e}");
        let e = choose_page(&pages, Some("9")).unwrap_err().to_string();
        assert!(e.contains("does not manage Page 9") && e.contains("1 (Page 1"), "{e}");
        let two =
            vec![page("2", Some("17"), &["MESSAGING"]), page("3", Some("18"), &["MESSAGING"])];
        assert!(choose_page(&two, None).unwrap_err().to_string().contains("--page-id"));
        assert!(choose_page(&[], None).is_err());
        assert!(!format!("{:?}", pages[1]).contains("EAAsecret"));
    }

    #[test]
    fn endpoints_keep_the_version() {
        let e = FacebookEndpoints::with_base_url("http://127.0.0.1:9/").unwrap();
        assert_eq!(e.exchange.as_str(), "http://127.0.0.1:9/v21.0/oauth/access_token");
        assert_eq!(e.accounts.as_str(), "http://127.0.0.1:9/v21.0/me/accounts");
        let real = FacebookEndpoints::facebook().unwrap();
        assert_eq!(real.accounts.host_str(), Some("graph.facebook.com"));
    }
}
