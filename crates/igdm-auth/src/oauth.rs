//! OAuth for the official API (Instagram Login) and the token manager.
//!
//! Flow (reference: Graph API §12):
//! 1. [`OAuthClient::authorize_url`] with the messaging scopes and a random
//!    `state` ([`new_state`]);
//! 2. [`CallbackServer`] on the redirect URI's loopback port receives
//!    `?code=…&state=…` (or `?error=access_denied…`), checks `state` and
//!    strips the `#_` suffix from the code;
//! 3. [`OAuthClient::exchange_code`]: `POST /oauth/access_token` → a
//!    short-lived token (1 h); the code is single-use;
//! 4. [`OAuthClient::exchange_long_lived`]: `GET /access_token?grant_type=ig_exchange_token`
//!    → a long-lived token (60 days);
//! 5. [`TokenManager`] refreshes it (`GET /refresh_access_token?grant_type=ig_refresh_token`)
//!    once fewer than 7 days remain and the token is at least 24 h old,
//!    one refresh at a time.
//!
//! Tokens and the app secret travel only in request bodies or query strings
//! sent to the provider; error messages carry the provider's message, never
//! a URL (reqwest errors are stripped of their URL, which may hold a token).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use chrono::Duration as ChronoDuration;
use igdm_model::Timestamp;
use rand::RngCore as _;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use tokio::sync::{Mutex, mpsc};
use url::Url;

use crate::credential::{Credential, TokenCredential, TokenKind};
use crate::error::AuthError;
use crate::store::CredentialStore;

/// The scopes igdm asks for: reading the account and its messages.
pub const MESSAGING_SCOPES: &[&str] =
    &["instagram_business_basic", "instagram_business_manage_messages"];

/// Refresh once fewer than this many days remain.
pub const REFRESH_WHEN_REMAINING: ChronoDuration = ChronoDuration::days(7);
/// A token must be at least this old before it can be refreshed.
pub const MIN_AGE_FOR_REFRESH: ChronoDuration = ChronoDuration::hours(24);

/// OAuth failures, each with a message that says what to do.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum OAuthError {
    /// The user declined the consent screen.
    #[error(
        "authorization was denied ({reason}): {description}. Run the command again and accept the permissions to connect the account"
    )]
    Denied {
        /// `error_reason` (e.g. `user_denied`).
        reason: String,
        /// `error_description`.
        description: String,
    },
    /// The callback's `state` did not match the one sent: a possible CSRF; nothing was exchanged.
    #[error(
        "the callback's state does not match the request (possible cross-site request forgery); nothing was exchanged. Start the authorization again"
    )]
    StateMismatch,
    /// The callback had neither a code nor an error.
    #[error("the callback carried no authorization code")]
    MissingCode,
    /// The code was refused (already used, expired, or for another redirect URI).
    #[error(
        "the authorization code was refused: {message}. Codes are single-use and short-lived: run the authorization again"
    )]
    CodeRejected {
        /// The provider's message.
        message: String,
    },
    /// The token has expired or was invalidated (Graph error 190).
    #[error(
        "the access token has expired or is invalid: {message}. Run `igdm oauth {account}` to authorize again"
    )]
    TokenExpired {
        /// The account.
        account: String,
        /// The provider's or igdm's explanation.
        message: String,
    },
    /// A refresh was asked for a token less than 24 hours old.
    #[error(
        "the token was issued less than 24 hours ago and cannot be refreshed yet (it stays valid until {expires})"
    )]
    TooEarlyToRefresh {
        /// When the current token expires.
        expires: String,
    },
    /// A Facebook user token was refused (Graph error 190: invalid or expired).
    #[error(
        "the Facebook user token was refused: {message}. Get a fresh user token (Facebook Login for Business or the Graph API Explorer) and run the command again"
    )]
    UserTokenRejected {
        /// The provider's message.
        message: String,
    },
    /// No Page of the user can be connected.
    #[error("no Page to connect: {detail}")]
    NoPage {
        /// Which Pages exist and what is missing.
        detail: String,
    },
    /// Any other provider error.
    #[error("{endpoint} failed with HTTP {status}: {message}")]
    Provider {
        /// Which call.
        endpoint: &'static str,
        /// The HTTP status.
        status: u16,
        /// The provider's message.
        message: String,
    },
    /// The network failed (the message has no URL).
    #[error("{endpoint}: network error: {message}")]
    Network {
        /// Which call.
        endpoint: &'static str,
        /// What failed.
        message: String,
    },
    /// No callback arrived in time.
    #[error("no authorization callback arrived within {0} seconds")]
    CallbackTimeout(u64),
    /// The redirect URI cannot be served locally.
    #[error("invalid redirect URI `{uri}`: {problem}")]
    InvalidRedirect {
        /// The URI.
        uri: String,
        /// Why.
        problem: String,
    },
    /// The callback server could not listen.
    #[error("cannot listen on {addr} for the callback: {message}")]
    Bind {
        /// The address.
        addr: String,
        /// The cause.
        message: String,
    },
}

/// A random, URL-safe `state` value (256 bits).
#[must_use]
pub fn new_state() -> String {
    let mut raw = [0u8; 32];
    rand::rng().fill_bytes(&mut raw);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

/// Strips the `#_` Instagram appends to the code (and any other fragment).
#[must_use]
pub fn clean_code(code: &str) -> &str {
    code.split('#').next().unwrap_or(code).trim()
}

/// Where the OAuth calls go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthEndpoints {
    /// The consent page (`https://www.instagram.com/oauth/authorize`).
    pub authorize: Url,
    /// The code exchange (`https://api.instagram.com/oauth/access_token`).
    pub token: Url,
    /// The long-lived exchange (`https://graph.instagram.com/access_token`).
    pub exchange: Url,
    /// The refresh (`https://graph.instagram.com/refresh_access_token`).
    pub refresh: Url,
}

impl OAuthEndpoints {
    /// The real Instagram endpoints.
    ///
    /// # Panics
    /// Never: the URLs are constants.
    #[must_use]
    #[allow(clippy::unwrap_used)]
    pub fn instagram() -> Self {
        Self {
            authorize: Url::parse("https://www.instagram.com/oauth/authorize").unwrap(),
            token: Url::parse("https://api.instagram.com/oauth/access_token").unwrap(),
            exchange: Url::parse("https://graph.instagram.com/access_token").unwrap(),
            refresh: Url::parse("https://graph.instagram.com/refresh_access_token").unwrap(),
        }
    }

    /// Every endpoint on one base URL with the real paths (the sandbox).
    ///
    /// # Errors
    /// [`AuthError::Spec`] when `base` is not a URL.
    pub fn with_base_url(base: &str) -> Result<Self, AuthError> {
        let base = Url::parse(&format!("{}/", base.trim_end_matches('/')))
            .map_err(|e| AuthError::Spec(format!("bad base URL `{base}`: {e}")))?;
        let join =
            |p: &str| base.join(p).map_err(|e| AuthError::Spec(format!("bad base URL: {e}")));
        Ok(Self {
            authorize: join("oauth/authorize")?,
            token: join("oauth/access_token")?,
            exchange: join("access_token")?,
            refresh: join("refresh_access_token")?,
        })
    }
}

/// The app's OAuth settings.
#[derive(Clone)]
pub struct OAuthApp {
    /// The Instagram app id.
    pub app_id: String,
    /// The Instagram app secret.
    pub app_secret: SecretString,
    /// The registered redirect URI.
    pub redirect_uri: Url,
}

impl std::fmt::Debug for OAuthApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthApp")
            .field("app_id", &self.app_id)
            .field("app_secret", &"[REDACTED]")
            .field("redirect_uri", &self.redirect_uri.as_str())
            .finish()
    }
}

/// What the code exchange returned.
pub struct ShortLivedToken {
    /// The one-hour token.
    pub access_token: SecretString,
    /// The Instagram user id (a string; the wire sends a number).
    pub user_id: Option<String>,
    /// Granted permissions.
    pub permissions: Vec<String>,
}

impl std::fmt::Debug for ShortLivedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShortLivedToken")
            .field("access_token", &"[REDACTED]")
            .field("user_id", &self.user_id)
            .field("permissions", &self.permissions)
            .finish()
    }
}

/// A source of the current time (the sandbox test moves it).
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// System time plus an adjustable offset, to follow a virtual clock.
#[derive(Debug, Default)]
pub struct OffsetClock {
    offset_secs: std::sync::atomic::AtomicI64,
}

impl OffsetClock {
    /// Moves this clock forward by `secs` (negative moves it back).
    pub fn advance(&self, secs: i64) {
        self.offset_secs.fetch_add(secs, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for OffsetClock {
    fn now(&self) -> Timestamp {
        let off = self.offset_secs.load(std::sync::atomic::Ordering::SeqCst);
        Timestamp(Timestamp::now().0 + ChronoDuration::seconds(off))
    }
}

/// Talks to the OAuth endpoints.
#[derive(Clone)]
pub struct OAuthClient {
    http: reqwest::Client,
    endpoints: OAuthEndpoints,
    app: OAuthApp,
    base_url: Option<String>,
}

impl std::fmt::Debug for OAuthClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthClient")
            .field("endpoints", &self.endpoints)
            .field("app", &self.app)
            .finish_non_exhaustive()
    }
}

fn net(endpoint: &'static str, e: reqwest::Error) -> OAuthError {
    OAuthError::Network { endpoint, message: e.without_url().to_string() }
}

/// The HTTP client of the token endpoints (30 s timeout).
pub(crate) fn http_client() -> Result<reqwest::Client, OAuthError> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| net("client", e))
}

/// Sends `req` and reads the answer: the status and the JSON body (or the
/// start of a non-JSON body as a string). Errors carry no URL.
pub(crate) async fn send_json(
    endpoint: &'static str,
    req: reqwest::RequestBuilder,
) -> Result<(u16, Value), OAuthError> {
    let resp = req.send().await.map_err(|e| net(endpoint, e))?;
    let status = resp.status().as_u16();
    let text = resp.text().await.map_err(|e| net(endpoint, e))?;
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|_| Value::String(text.chars().take(200).collect()));
    tracing::debug!(endpoint, status, "oauth response");
    Ok((status, body))
}

/// Reads a provider error from either envelope: Graph `{"error":{message,code,error_subcode}}`
/// or the code endpoint's `{"error_type","code","error_message"}`.
pub(crate) fn provider_error(body: &Value) -> (Option<i64>, Option<i64>, String) {
    if let Some(e) = body.get("error").filter(|e| e.is_object()) {
        let msg = e.get("message").and_then(Value::as_str).unwrap_or("unknown error").to_owned();
        return (
            e.get("code").and_then(Value::as_i64),
            e.get("error_subcode").and_then(Value::as_i64),
            msg,
        );
    }
    let msg = body
        .get("error_message")
        .or_else(|| body.get("message"))
        .and_then(Value::as_str)
        .unwrap_or("unknown error")
        .to_owned();
    (body.get("code").and_then(Value::as_i64), None, msg)
}

/// An id the wire sends as a string or a number.
pub(crate) fn id_string(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl OAuthClient {
    /// A client for `app` against `endpoints`; `base_url` is recorded in the
    /// stored credential when it is not the real service.
    ///
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn new(
        app: OAuthApp,
        endpoints: OAuthEndpoints,
        base_url: Option<String>,
    ) -> Result<Self, AuthError> {
        Ok(Self { http: http_client()?, endpoints, app, base_url })
    }

    /// The app settings.
    #[must_use]
    pub fn app(&self) -> &OAuthApp {
        &self.app
    }

    /// The consent URL with `scopes` and `state`.
    #[must_use]
    pub fn authorize_url(&self, scopes: &[&str], state: &str) -> Url {
        let mut u = self.endpoints.authorize.clone();
        u.query_pairs_mut()
            .append_pair("client_id", &self.app.app_id)
            .append_pair("redirect_uri", self.app.redirect_uri.as_str())
            .append_pair("response_type", "code")
            .append_pair("scope", &scopes.join(","))
            .append_pair("state", state);
        u
    }

    /// Exchanges an authorization code (the `#_` suffix is stripped) for a short-lived token.
    ///
    /// # Errors
    /// [`OAuthError::CodeRejected`] for a used, expired or foreign code.
    pub async fn exchange_code(&self, code: &str) -> Result<ShortLivedToken, OAuthError> {
        let code = clean_code(code);
        if code.is_empty() {
            return Err(OAuthError::MissingCode);
        }
        let form = [
            ("client_id", self.app.app_id.as_str()),
            ("client_secret", self.app.app_secret.expose_secret()),
            ("grant_type", "authorization_code"),
            ("redirect_uri", self.app.redirect_uri.as_str()),
            ("code", code),
        ];
        let (status, body) =
            send_json("code exchange", self.http.post(self.endpoints.token.clone()).form(&form))
                .await?;
        if !(200..300).contains(&status) {
            let (_, _, message) = provider_error(&body);
            return Err(OAuthError::CodeRejected { message });
        }
        // Instagram has answered both `{access_token,…}` and `{data:[{…}]}`.
        let data = body.get("data").and_then(|d| d.get(0)).unwrap_or(&body);
        let token = data.get("access_token").and_then(Value::as_str).ok_or_else(|| {
            OAuthError::Provider {
                endpoint: "code exchange",
                status,
                message: "the response has no access_token".into(),
            }
        })?;
        let permissions = match data.get("permissions") {
            Some(Value::Array(a)) => {
                a.iter().filter_map(Value::as_str).map(str::to_owned).collect()
            }
            Some(Value::String(s)) => {
                s.split(',').map(|p| p.trim().to_owned()).filter(|p| !p.is_empty()).collect()
            }
            _ => Vec::new(),
        };
        Ok(ShortLivedToken {
            access_token: SecretString::from(token.to_owned()),
            user_id: id_string(data.get("user_id")),
            permissions,
        })
    }

    fn token_from(
        &self,
        endpoint: &'static str,
        status: u16,
        body: &Value,
        now: Timestamp,
    ) -> Result<(SecretString, Option<Timestamp>), OAuthError> {
        let token = body.get("access_token").and_then(Value::as_str).ok_or_else(|| {
            OAuthError::Provider {
                endpoint,
                status,
                message: "the response has no access_token".into(),
            }
        })?;
        let expires_at = body
            .get("expires_in")
            .and_then(Value::as_i64)
            .map(|s| Timestamp(now.0 + ChronoDuration::seconds(s)));
        Ok((SecretString::from(token.to_owned()), expires_at))
    }

    fn classify(
        &self,
        endpoint: &'static str,
        account: &str,
        status: u16,
        body: &Value,
    ) -> OAuthError {
        let (code, subcode, message) = provider_error(body);
        if code == Some(190) || subcode == Some(463) || subcode == Some(467) {
            OAuthError::TokenExpired { account: account.to_owned(), message }
        } else {
            OAuthError::Provider { endpoint, status, message }
        }
    }

    /// Exchanges a short-lived token for a long-lived (60-day) one, issued at `now`.
    ///
    /// # Errors
    /// [`OAuthError::TokenExpired`] when the short-lived token is no longer valid,
    /// [`OAuthError::Provider`] otherwise.
    pub async fn exchange_long_lived(
        &self,
        account: &str,
        short: &ShortLivedToken,
        now: Timestamp,
    ) -> Result<TokenCredential, OAuthError> {
        let req = self.http.get(self.endpoints.exchange.clone()).query(&[
            ("grant_type", "ig_exchange_token"),
            ("client_secret", self.app.app_secret.expose_secret()),
            ("access_token", short.access_token.expose_secret()),
        ]);
        let (status, body) = send_json("long-lived exchange", req).await?;
        if !(200..300).contains(&status) {
            return Err(self.classify("long-lived exchange", account, status, &body));
        }
        let (access_token, expires_at) =
            self.token_from("long-lived exchange", status, &body, now)?;
        Ok(TokenCredential {
            access_token,
            expires_at,
            issued_at: now,
            scopes: short.permissions.clone(),
            kind: TokenKind::InstagramUser,
            user_id: short.user_id.clone(),
            page_id: None,
            app_id: Some(self.app.app_id.clone()),
            base_url: self.base_url.clone(),
        })
    }

    /// Refreshes a long-lived token at `now`; the result keeps scopes and ids.
    ///
    /// # Errors
    /// [`OAuthError::TokenExpired`] for an expired or invalid token,
    /// [`OAuthError::Provider`] otherwise (e.g. a token under 24 h old).
    pub async fn refresh(
        &self,
        account: &str,
        token: &TokenCredential,
        now: Timestamp,
    ) -> Result<TokenCredential, OAuthError> {
        let req = self.http.get(self.endpoints.refresh.clone()).query(&[
            ("grant_type", "ig_refresh_token"),
            ("access_token", token.access_token.expose_secret()),
        ]);
        let (status, body) = send_json("token refresh", req).await?;
        if !(200..300).contains(&status) {
            return Err(self.classify("token refresh", account, status, &body));
        }
        let (access_token, expires_at) = self.token_from("token refresh", status, &body, now)?;
        Ok(TokenCredential { access_token, expires_at, issued_at: now, ..token.clone() })
    }
}

/// What the callback server received.
#[derive(Debug, Clone)]
enum Callback {
    Code { code: String, state: Option<String> },
    Error { error: String, reason: String, description: String },
}

impl Callback {
    fn from_query(q: &BTreeMap<String, String>) -> Self {
        let get = |k: &str| q.get(k).cloned().unwrap_or_default();
        match q.get("error") {
            Some(error) => Self::Error {
                error: error.clone(),
                reason: get("error_reason"),
                description: get("error_description"),
            },
            None => Self::Code { code: get("code"), state: q.get("state").cloned() },
        }
    }
}

/// A one-shot HTTP server on the redirect URI's loopback address that waits
/// for the authorization callback.
#[derive(Debug)]
pub struct CallbackServer {
    addr: SocketAddr,
    rx: mpsc::Receiver<Callback>,
    task: tokio::task::JoinHandle<()>,
}

impl CallbackServer {
    /// Listens on the host and port of `redirect_uri`, which must be an
    /// `http` loopback URI (`http://127.0.0.1:PORT/path` or `http://localhost:PORT/path`).
    ///
    /// # Errors
    /// [`OAuthError::InvalidRedirect`] or [`OAuthError::Bind`].
    pub async fn bind(redirect_uri: &Url) -> Result<Self, OAuthError> {
        let bad = |problem: &str| OAuthError::InvalidRedirect {
            uri: redirect_uri.to_string(),
            problem: problem.to_owned(),
        };
        let host = redirect_uri.host_str().ok_or_else(|| bad("no host"))?;
        let ip = match host {
            "localhost" => "127.0.0.1".to_owned(),
            "127.0.0.1" | "[::1]" => host.trim_matches(['[', ']']).to_owned(),
            _ => {
                return Err(bad(
                    "the callback server only listens on loopback (127.0.0.1, ::1 or localhost); use `igdm oauth --paste` and paste the redirect URL otherwise",
                ));
            }
        };
        let port = redirect_uri.port_or_known_default().ok_or_else(|| bad("no port"))?;
        let addr: SocketAddr =
            format!("{}:{port}", if ip.contains(':') { format!("[{ip}]") } else { ip })
                .parse()
                .map_err(|_| bad("bad address"))?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| OAuthError::Bind { addr: addr.to_string(), message: e.to_string() })?;
        let addr = listener
            .local_addr()
            .map_err(|e| OAuthError::Bind { addr: addr.to_string(), message: e.to_string() })?;
        let (tx, rx) = mpsc::channel(4);
        let path = redirect_uri.path().to_owned();
        let app = axum::Router::new().route(
            &path,
            axum::routing::get(move |axum::extract::Query(q): axum::extract::Query<BTreeMap<String, String>>| {
                let tx = tx.clone();
                async move {
                    let cb = Callback::from_query(&q);
                    let ok = matches!(cb, Callback::Code { .. });
                    let _ = tx.send(cb).await;
                    axum::response::Html(if ok {
                        "<!doctype html><title>igdm</title><p>Authorization received. You can close this window and return to the terminal.</p>"
                    } else {
                        "<!doctype html><title>igdm</title><p>Authorization was not granted. Return to the terminal for details.</p>"
                    })
                }
            }),
        );
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { addr, rx, task })
    }

    /// The bound address.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Waits for the callback and checks it against `expected_state`.
    /// Returns the cleaned code.
    ///
    /// # Errors
    /// [`OAuthError::Denied`], [`OAuthError::StateMismatch`],
    /// [`OAuthError::MissingCode`] or [`OAuthError::CallbackTimeout`].
    pub async fn wait(
        mut self,
        expected_state: &str,
        limit: Duration,
    ) -> Result<String, OAuthError> {
        let cb = tokio::time::timeout(limit, self.rx.recv())
            .await
            .map_err(|_| OAuthError::CallbackTimeout(limit.as_secs()));
        // Stop serving and release the port before returning.
        self.task.abort();
        let _ = (&mut self.task).await;
        let cb = cb?.ok_or(OAuthError::MissingCode)?;
        check_callback(cb, expected_state)
    }
}

fn check_callback(cb: Callback, expected_state: &str) -> Result<String, OAuthError> {
    match cb {
        Callback::Error { error, reason, description } => Err(OAuthError::Denied {
            reason: if reason.is_empty() { error } else { reason },
            description: if description.is_empty() { "no description".into() } else { description },
        }),
        Callback::Code { code, state } => {
            if state.as_deref() != Some(expected_state) {
                tracing::warn!("oauth callback state mismatch; refusing the code");
                return Err(OAuthError::StateMismatch);
            }
            let code = clean_code(&code);
            if code.is_empty() {
                return Err(OAuthError::MissingCode);
            }
            Ok(code.to_owned())
        }
    }
}

/// Checks a redirect URL pasted by the user (`https://…/callback?code=…&state=…`)
/// and returns the cleaned code.
///
/// # Errors
/// As [`CallbackServer::wait`].
pub fn code_from_redirect(redirect: &str, expected_state: &str) -> Result<String, OAuthError> {
    let u = Url::parse(redirect.trim()).map_err(|e| OAuthError::InvalidRedirect {
        uri: "pasted URL".into(),
        problem: e.to_string(),
    })?;
    let q: BTreeMap<String, String> = u.query_pairs().into_owned().collect();
    let cb = Callback::from_query(&q);
    check_callback(cb, expected_state)
}

/// Keeps an account's long-lived token fresh.
///
/// [`TokenManager::access_token`] returns the stored token, refreshing it
/// first when fewer than 7 days remain and it is at least 24 h old. Only one
/// refresh runs at a time (a lock, then a re-read of the store so a refresh
/// finished by another caller is reused). An expired token is never
/// "refreshed": the user must authorize again.
pub struct TokenManager {
    store: Arc<dyn CredentialStore>,
    client: Option<OAuthClient>,
    account: String,
    clock: Arc<dyn Clock>,
    refresh_lock: Mutex<()>,
}

impl std::fmt::Debug for TokenManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenManager").field("account", &self.account).finish_non_exhaustive()
    }
}

/// What [`TokenManager::ensure_fresh`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// The token was fine as it was.
    Fresh,
    /// The token was refreshed and stored.
    Refreshed,
    /// The token needs a refresh but is less than 24 h old (rare: a token issued with under 7 days).
    TooYoung,
    /// The token does not expire (Page tokens) or is not an Instagram User token.
    NotRefreshable,
}

impl TokenManager {
    /// A manager for `account`. Refreshing needs no app secret: without a
    /// `client`, the refresh goes to the endpoints of the token's recorded
    /// base URL (the real Instagram when it has none).
    #[must_use]
    pub fn new(
        store: Arc<dyn CredentialStore>,
        account: impl Into<String>,
        client: Option<OAuthClient>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self { store, client, account: account.into(), clock, refresh_lock: Mutex::new(()) }
    }

    async fn load(&self) -> Result<TokenCredential, AuthError> {
        match self.store.get(&self.account).await? {
            Some(Credential::Token(t)) => Ok(t),
            Some(other) => Err(AuthError::WrongKind {
                account: self.account.clone(),
                found: other.kind(),
                expected: "token",
            }),
            None => Err(AuthError::NotFound(self.account.clone())),
        }
    }

    fn expired(&self, t: &TokenCredential, now: Timestamp) -> Option<OAuthError> {
        let exp = t.expires_at?;
        (now >= exp).then(|| OAuthError::TokenExpired {
            account: self.account.clone(),
            message: format!("it expired at {exp}"),
        })
    }

    fn needs_refresh(t: &TokenCredential, now: Timestamp) -> Option<bool> {
        let exp = t.expires_at?;
        if exp.0 - now.0 >= REFRESH_WHEN_REMAINING {
            return Some(false);
        }
        Some(true)
    }

    /// Refreshes the stored token when the rules say so.
    ///
    /// # Errors
    /// [`OAuthError::TokenExpired`] for an expired token; provider and store errors.
    pub async fn ensure_fresh(&self) -> Result<Freshness, AuthError> {
        let now = self.clock.now();
        let t = self.load().await?;
        if let Some(e) = self.expired(&t, now) {
            return Err(e.into());
        }
        if t.kind != TokenKind::InstagramUser {
            return Ok(Freshness::NotRefreshable);
        }
        match Self::needs_refresh(&t, now) {
            None => return Ok(Freshness::NotRefreshable),
            Some(false) => return Ok(Freshness::Fresh),
            Some(true) => {}
        }
        let _guard = self.refresh_lock.lock().await;
        // Another caller may have refreshed while we waited.
        let now = self.clock.now();
        let t = self.load().await?;
        if let Some(e) = self.expired(&t, now) {
            return Err(e.into());
        }
        if Self::needs_refresh(&t, now) != Some(true) {
            return Ok(Freshness::Fresh);
        }
        if now.0 - t.issued_at.0 < MIN_AGE_FOR_REFRESH {
            return Ok(Freshness::TooYoung);
        }
        tracing::info!(account = %self.account, "refreshing the long-lived token");
        let fresh = self.refresher(&t)?.refresh(&self.account, &t, now).await?;
        self.store.put(&self.account, Credential::Token(fresh)).await?;
        Ok(Freshness::Refreshed)
    }

    /// The access token, refreshed first when due.
    ///
    /// # Errors
    /// As [`Self::ensure_fresh`].
    pub async fn access_token(&self) -> Result<SecretString, AuthError> {
        self.ensure_fresh().await?;
        Ok(self.load().await?.access_token)
    }

    /// Refreshes now regardless of the 7-day window (still requires a token
    /// at least 24 h old and unexpired).
    ///
    /// # Errors
    /// [`OAuthError::TooEarlyToRefresh`], [`OAuthError::TokenExpired`], provider errors.
    pub async fn refresh_now(&self) -> Result<TokenCredential, AuthError> {
        self.refresh_checked(true).await
    }

    /// Refreshes now and leaves the 24-hour rule to the API: for a token
    /// whose real issue time is unknown (one given by hand, whose recorded
    /// `issued_at` is when it was added).
    ///
    /// # Errors
    /// [`OAuthError::TokenExpired`]; the API's refusal of a token under 24 h
    /// old ([`OAuthError::Provider`]); store errors.
    pub async fn refresh_ignoring_age(&self) -> Result<TokenCredential, AuthError> {
        self.refresh_checked(false).await
    }

    async fn refresh_checked(&self, check_age: bool) -> Result<TokenCredential, AuthError> {
        let _guard = self.refresh_lock.lock().await;
        let now = self.clock.now();
        let t = self.load().await?;
        if let Some(e) = self.expired(&t, now) {
            return Err(e.into());
        }
        if check_age && now.0 - t.issued_at.0 < MIN_AGE_FOR_REFRESH {
            let expires =
                t.expires_at.map_or_else(|| "it is revoked".to_owned(), |e| e.to_string());
            return Err(OAuthError::TooEarlyToRefresh { expires }.into());
        }
        let fresh = self.refresher(&t)?.refresh(&self.account, &t, now).await?;
        self.store.put(&self.account, Credential::Token(fresh.clone())).await?;
        Ok(fresh)
    }

    /// The client to refresh `t` with: the configured one, else one for the
    /// token's base URL. The refresh call sends only the token itself.
    fn refresher(&self, t: &TokenCredential) -> Result<OAuthClient, AuthError> {
        if let Some(c) = &self.client {
            return Ok(c.clone());
        }
        let endpoints = match &t.base_url {
            Some(b) => OAuthEndpoints::with_base_url(b)?,
            None => OAuthEndpoints::instagram(),
        };
        let placeholder = Url::parse("http://127.0.0.1/")
            .map_err(|e| AuthError::Spec(format!("placeholder redirect: {e}")))?;
        let app = OAuthApp {
            app_id: t.app_id.clone().unwrap_or_default(),
            app_secret: SecretString::from(String::new()),
            redirect_uri: placeholder,
        };
        OAuthClient::new(app, endpoints, t.base_url.clone())
    }
}

/// Runs the whole Instagram Login flow for `account`: binds the callback
/// server, hands the consent URL to `show` (print it, open a browser),
/// waits up to `limit` for the callback, checks `state`, exchanges the code
/// for a short-lived then a long-lived token, and stores it.
///
/// # Errors
/// Any [`OAuthError`] (denied, state mismatch, refused code, timeout) or a
/// store error. Nothing is stored on failure.
pub async fn run_authorization(
    client: &OAuthClient,
    account: &str,
    store: &dyn CredentialStore,
    clock: &dyn Clock,
    limit: Duration,
    show: impl FnOnce(&Url),
) -> Result<TokenCredential, AuthError> {
    crate::error::validate_account(account)?;
    let server = CallbackServer::bind(&client.app().redirect_uri).await?;
    let state = new_state();
    show(&client.authorize_url(MESSAGING_SCOPES, &state));
    let code = server.wait(&state, limit).await?;
    complete_authorization(client, account, store, clock, &code).await
}

/// Exchanges an authorization code (already checked against its `state`,
/// e.g. by [`code_from_redirect`] for a pasted redirect URL) for a
/// long-lived token and stores it.
///
/// # Errors
/// [`OAuthError::CodeRejected`], exchange and store errors; nothing is stored on failure.
pub async fn complete_authorization(
    client: &OAuthClient,
    account: &str,
    store: &dyn CredentialStore,
    clock: &dyn Clock,
    code: &str,
) -> Result<TokenCredential, AuthError> {
    crate::error::validate_account(account)?;
    let short = client.exchange_code(code).await?;
    let token = client.exchange_long_lived(account, &short, clock.now()).await?;
    store.put(account, Credential::Token(token.clone())).await?;
    tracing::info!(account, user_id = ?token.user_id, "instagram login token stored");
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_is_random_and_url_safe() {
        let a = new_state();
        assert_ne!(a, new_state());
        assert_eq!(a.len(), 43);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    }

    #[test]
    fn code_suffix_is_stripped_and_state_checked() {
        assert_eq!(clean_code("AQBx#_"), "AQBx");
        assert_eq!(
            code_from_redirect("http://127.0.0.1:9/cb?code=AQBx%23_&state=s1", "s1").unwrap(),
            "AQBx"
        );
        assert!(matches!(
            code_from_redirect("http://127.0.0.1:9/cb?code=AQBx&state=evil", "s1"),
            Err(OAuthError::StateMismatch)
        ));
        assert!(matches!(
            code_from_redirect("http://127.0.0.1:9/cb?code=AQBx", "s1"),
            Err(OAuthError::StateMismatch)
        ));
        let denied = code_from_redirect(
            "http://127.0.0.1:9/cb?error=access_denied&error_reason=user_denied&error_description=The+user+denied+your+request.",
            "s1",
        )
        .unwrap_err();
        assert!(denied.to_string().contains("user_denied"), "{denied}");
    }

    #[test]
    fn authorize_url_carries_scopes_and_state() {
        let app = OAuthApp {
            app_id: "990".into(),
            app_secret: "s".into(),
            redirect_uri: Url::parse("http://127.0.0.1:7/cb").unwrap(),
        };
        let c = OAuthClient::new(app, OAuthEndpoints::instagram(), None).unwrap();
        let u = c.authorize_url(MESSAGING_SCOPES, "xyz");
        let q: BTreeMap<String, String> = u.query_pairs().into_owned().collect();
        assert_eq!(u.host_str(), Some("www.instagram.com"));
        assert_eq!(q["scope"], "instagram_business_basic,instagram_business_manage_messages");
        assert_eq!(q["state"], "xyz");
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["redirect_uri"], "http://127.0.0.1:7/cb");
        assert!(!format!("{c:?}").contains("\"s\""));
    }
}
