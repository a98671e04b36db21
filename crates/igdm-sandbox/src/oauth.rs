//! OAuth, Instagram Login flavour: the authorize page, the code exchange, the
//! long-lived exchange and refresh, and the token check every Graph call runs.
//!
//! Routes (see [`routes`]):
//! - `GET /oauth/authorize?client_id&redirect_uri&response_type=code&state&scope`:
//!   an HTML consent page with an account picker and "Allow" / "Deny" buttons;
//!   `POST /oauth/authorize` (form: the same fields plus `username` and
//!   `decision=allow|deny`) redirects (302) to
//!   `redirect_uri?code=<code>&state=<state>#_`, or to
//!   `redirect_uri?error=access_denied&error_reason=user_denied&error_description=…&state=…`;
//! - `POST /oauth/access_token` (form: `client_id`, `client_secret`,
//!   `grant_type=authorization_code`, `redirect_uri`, `code`) →
//!   `{access_token, user_id, permissions}`, a short-lived (1 h) token; the code
//!   is single-use and valid for 1 h; failures use api.instagram.com's
//!   `{"error_type","code","error_message"}` shape;
//! - `GET /access_token?grant_type=ig_exchange_token&client_secret&access_token`
//!   → `{access_token, token_type:"bearer", expires_in}` (60 days);
//! - `GET /refresh_access_token?grant_type=ig_refresh_token&access_token` →
//!   a new 60-day token, only for a long-lived token at least 24 h old;
//! - control: `POST /_sandbox/apps {"app_id","app_secret","redirect_uris":[…]}`,
//!   `GET /_sandbox/apps`, and `POST /_sandbox/tokens {"account_id","app_id"?,
//!   "kind":"short_lived"|"long_lived"|"page","scopes"?:[…]}` to mint a token directly.
//!
//! All expiry uses the sandbox's virtual clock.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::graph::error::{GraphError, GraphErrorType};
use crate::state::{AccountKind, Micros, Sandbox};

/// The app id that owns every account's built-in Graph tokens.
pub const SANDBOX_APP_ID: &str = "936619743392459";
/// Lifetime of a short-lived token (1 hour).
pub const SHORT_LIVED_US: Micros = 3_600 * 1_000_000;
/// Lifetime of a long-lived token (60 days).
pub const LONG_LIVED_US: Micros = 60 * 86_400 * 1_000_000;
/// Minimum age of a token before it can be refreshed (24 hours).
pub const REFRESH_MIN_AGE_US: Micros = 86_400 * 1_000_000;
/// Lifetime of an authorization code (1 hour).
pub const CODE_TTL_US: Micros = 3_600 * 1_000_000;

/// Scopes of the Instagram API with Instagram Login.
pub const VALID_SCOPES: &[&str] = &[
    "instagram_business_basic",
    "instagram_business_manage_messages",
    "instagram_business_manage_comments",
    "instagram_business_content_publish",
    "instagram_business_manage_insights",
];

/// What kind of token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    /// Instagram User token from the code exchange (1 h).
    ShortLived,
    /// Instagram User token from `ig_exchange_token` or a refresh (60 days).
    LongLived,
    /// Facebook Page token (Facebook Login flavour; does not expire).
    Page,
}

/// What a token grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// The business account.
    pub account_id: String,
    /// The app the token was issued to.
    pub app_id: String,
    /// Kind.
    pub kind: TokenKind,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// Issue time (µs, virtual clock).
    pub issued_us: Micros,
    /// Expiry (µs), `None` for tokens that do not expire.
    pub expires_us: Option<Micros>,
}

impl TokenInfo {
    /// Whether the token carries `scope`.
    #[must_use]
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

/// A registered app.
#[derive(Clone, Deserialize)]
pub struct App {
    /// The client id.
    pub app_id: String,
    /// The client secret (also the webhook signing key).
    pub app_secret: String,
    /// Allowed redirect URIs (exact match).
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// Display name on the consent page.
    #[serde(default)]
    pub name: Option<String>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("app_id", &self.app_id)
            .field("redirect_uris", &self.redirect_uris)
            .finish_non_exhaustive()
    }
}

struct Code {
    app_id: String,
    redirect_uri: String,
    account_id: String,
    scopes: Vec<String>,
    issued_us: Micros,
    used: bool,
}

#[derive(Default)]
struct Inner {
    apps: HashMap<String, App>,
    codes: HashMap<String, Code>,
    tokens: HashMap<String, TokenInfo>,
}

/// An error of `api.instagram.com/oauth/access_token`:
/// `{"error_type":"OAuthException","code":400,"error_message":…}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct IgOauthError {
    /// `error_message`.
    pub message: String,
}

impl IgOauthError {
    fn new(message: impl Into<String>) -> Self {
        Self { message: message.into() }
    }
}

impl IntoResponse for IgOauthError {
    fn into_response(self) -> Response {
        (
            StatusCode::BAD_REQUEST,
            Json(
                json!({"error_type": "OAuthException", "code": 400, "error_message": self.message}),
            ),
        )
            .into_response()
    }
}

/// Apps, authorization codes and issued tokens: a pure state machine driven
/// by the caller's notion of "now" (the virtual clock).
#[derive(Default)]
pub struct OauthStore {
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for OauthStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OauthStore").finish_non_exhaustive()
    }
}

fn random_token(prefix: &str, len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let body: String =
        (0..len).map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())])).collect();
    format!("{prefix}{body}")
}

/// Splits a comma- or space-separated scope list.
#[must_use]
pub fn split_scopes(raw: &str) -> Vec<String> {
    raw.split([',', ' ', '+']).map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

impl OauthStore {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers (or replaces) an app.
    pub fn register_app(&self, app: App) {
        self.lock().apps.insert(app.app_id.clone(), app);
    }

    /// A registered app.
    #[must_use]
    pub fn app(&self, app_id: &str) -> Option<App> {
        self.lock().apps.get(app_id).cloned()
    }

    /// Registered apps.
    #[must_use]
    pub fn apps(&self) -> Vec<App> {
        self.lock().apps.values().cloned().collect()
    }

    /// Checks an authorize request: known app, registered redirect URI,
    /// `response_type=code`, valid scopes. Returns the scopes.
    ///
    /// # Errors
    /// A message for the error page.
    pub fn check_authorize(
        &self,
        client_id: &str,
        redirect_uri: &str,
        response_type: &str,
        scope: &str,
    ) -> Result<Vec<String>, String> {
        let inner = self.lock();
        let app = inner.apps.get(client_id).ok_or_else(|| "Invalid platform app".to_owned())?;
        if !app.redirect_uris.iter().any(|u| u == redirect_uri) {
            return Err("Invalid redirect_uri".to_owned());
        }
        if response_type != "code" {
            return Err("Invalid response_type: only code is supported".to_owned());
        }
        let scopes = split_scopes(scope);
        if scopes.is_empty() {
            return Err("Invalid Scopes: scope is required".to_owned());
        }
        let bad: Vec<&str> =
            scopes.iter().map(String::as_str).filter(|s| !VALID_SCOPES.contains(s)).collect();
        if !bad.is_empty() {
            return Err(format!("Invalid Scopes: {}", bad.join(", ")));
        }
        Ok(scopes)
    }

    /// Issues a single-use authorization code.
    #[must_use]
    pub fn issue_code(
        &self,
        app_id: &str,
        redirect_uri: &str,
        account_id: &str,
        scopes: Vec<String>,
        now: Micros,
    ) -> String {
        let code = random_token("AQ", 150);
        self.lock().codes.insert(
            code.clone(),
            Code {
                app_id: app_id.to_owned(),
                redirect_uri: redirect_uri.to_owned(),
                account_id: account_id.to_owned(),
                scopes,
                issued_us: now,
                used: false,
            },
        );
        code
    }

    /// Exchanges a code for a short-lived token.
    ///
    /// # Errors
    /// Unknown app or secret, wrong grant type or redirect URI, an unknown,
    /// used or expired code.
    pub fn exchange_code(
        &self,
        form: &HashMap<String, String>,
        now: Micros,
    ) -> Result<(String, TokenInfo), IgOauthError> {
        let field = |k: &str| form.get(k).map(String::as_str).filter(|v| !v.is_empty());
        let client_id = field("client_id")
            .ok_or_else(|| IgOauthError::new("Missing required field client_id"))?;
        let secret = field("client_secret")
            .ok_or_else(|| IgOauthError::new("Missing required field client_secret"))?;
        let grant = field("grant_type")
            .ok_or_else(|| IgOauthError::new("Missing required field grant_type"))?;
        let redirect = field("redirect_uri")
            .ok_or_else(|| IgOauthError::new("Missing required field redirect_uri"))?;
        let code = field("code").ok_or_else(|| IgOauthError::new("Missing required field code"))?;
        // The redirect appends `#_`; tolerate clients that forgot to strip it.
        let code = code.strip_suffix("#_").unwrap_or(code);
        let mut inner = self.lock();
        let app =
            inner.apps.get(client_id).ok_or_else(|| IgOauthError::new("Invalid platform app"))?;
        if app.app_secret != secret {
            return Err(IgOauthError::new("Error validating client secret."));
        }
        if grant != "authorization_code" {
            return Err(IgOauthError::new(format!("Unsupported grant_type: {grant}")));
        }
        let entry =
            inner.codes.get_mut(code).filter(|c| !c.used && c.app_id == client_id).ok_or_else(
                || IgOauthError::new("Matching code was not found or was already used"),
            )?;
        if entry.redirect_uri != redirect {
            return Err(IgOauthError::new(
                "Error validating verification code. Please make sure your redirect_uri is identical to the one you used in the OAuth dialog request",
            ));
        }
        // Single use, even when it turns out to be expired.
        entry.used = true;
        if now - entry.issued_us > CODE_TTL_US {
            return Err(IgOauthError::new("This authorization code has expired"));
        }
        let info = TokenInfo {
            account_id: entry.account_id.clone(),
            app_id: entry.app_id.clone(),
            kind: TokenKind::ShortLived,
            scopes: entry.scopes.clone(),
            issued_us: now,
            expires_us: Some(now + SHORT_LIVED_US),
        };
        let token = random_token("IGAA", 160);
        inner.tokens.insert(token.clone(), info.clone());
        Ok((token, info))
    }

    /// Mints a token of `kind` directly (control API, tests).
    #[must_use]
    pub fn mint(
        &self,
        account_id: &str,
        app_id: &str,
        kind: TokenKind,
        scopes: Vec<String>,
        now: Micros,
    ) -> (String, TokenInfo) {
        let (prefix, expires) = match kind {
            TokenKind::ShortLived => ("IGAA", Some(now + SHORT_LIVED_US)),
            TokenKind::LongLived => ("IGAA", Some(now + LONG_LIVED_US)),
            TokenKind::Page => ("EAA", None),
        };
        let info = TokenInfo {
            account_id: account_id.to_owned(),
            app_id: app_id.to_owned(),
            kind,
            scopes,
            issued_us: now,
            expires_us: expires,
        };
        let token = random_token(prefix, 160);
        self.lock().tokens.insert(token.clone(), info.clone());
        (token, info)
    }

    /// Mints a Page token that expires at `expires_us` (`None`: never), as
    /// `/me/accounts` derives one from a Facebook user token
    /// ([`crate::fb_login`]).
    #[must_use]
    pub fn mint_page(
        &self,
        account_id: &str,
        app_id: &str,
        scopes: Vec<String>,
        now: Micros,
        expires_us: Option<Micros>,
    ) -> (String, TokenInfo) {
        let (token, mut info) = self.mint(account_id, app_id, TokenKind::Page, scopes, now);
        info.expires_us = expires_us;
        self.lock().tokens.insert(token.clone(), info.clone());
        (token, info)
    }

    /// Looks a token up and checks its expiry.
    ///
    /// # Errors
    /// 190/467 for an unknown token, 190/463 for an expired one.
    pub fn check(&self, token: &str, now: Micros) -> Result<Option<TokenInfo>, GraphError> {
        let inner = self.lock();
        let Some(info) = inner.tokens.get(token) else {
            return Ok(None);
        };
        if let Some(exp) = info.expires_us
            && now >= exp
        {
            return Err(GraphError::token_expired(to_utc(exp), to_utc(now)));
        }
        Ok(Some(info.clone()))
    }

    /// `ig_exchange_token`: short-lived → long-lived.
    ///
    /// # Errors
    /// Graph errors for a wrong grant type, secret or token.
    pub fn exchange_long(
        &self,
        grant: &str,
        secret: &str,
        token: &str,
        now: Micros,
    ) -> Result<(String, TokenInfo), GraphError> {
        if grant != "ig_exchange_token" {
            return Err(GraphError::invalid_param(format!(
                "Param grant_type must be one of {{ig_exchange_token}} - got \"{grant}\"."
            )));
        }
        let info = self.check(token, now)?.ok_or_else(GraphError::token_invalid)?;
        let app_secret = self.app(&info.app_id).map(|a| a.app_secret);
        if app_secret.as_deref() != Some(secret) {
            return Err(GraphError::new(
                101,
                GraphErrorType::OAuthException,
                "Error validating client secret.",
            ));
        }
        if info.kind != TokenKind::ShortLived {
            return Err(GraphError::invalid_param(
                "Only a short-lived Instagram User access token can be exchanged for a long-lived one",
            ));
        }
        Ok(self.mint(&info.account_id, &info.app_id, TokenKind::LongLived, info.scopes, now))
    }

    /// `ig_refresh_token`: a long-lived token at least 24 h old → a new 60-day token.
    ///
    /// # Errors
    /// Graph errors for a wrong grant type, an invalid, expired, short-lived
    /// or too recent token.
    pub fn refresh(
        &self,
        grant: &str,
        token: &str,
        now: Micros,
    ) -> Result<(String, TokenInfo), GraphError> {
        if grant != "ig_refresh_token" {
            return Err(GraphError::invalid_param(format!(
                "Param grant_type must be one of {{ig_refresh_token}} - got \"{grant}\"."
            )));
        }
        let info = self.check(token, now)?.ok_or_else(GraphError::token_invalid)?;
        if info.kind != TokenKind::LongLived {
            return Err(GraphError::invalid_param(
                "Only a long-lived Instagram User access token can be refreshed",
            ));
        }
        if !info.has_scope("instagram_business_basic") {
            return Err(GraphError::permission(
                "Refreshing a token requires the instagram_business_basic permission",
            ));
        }
        if now - info.issued_us < REFRESH_MIN_AGE_US {
            return Err(GraphError::invalid_param(
                "The access token can be refreshed only once it is at least 24 hours old",
            ));
        }
        Ok(self.mint(&info.account_id, &info.app_id, TokenKind::LongLived, info.scopes, now))
    }
}

fn to_utc(us: Micros) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::<chrono::Utc>::from_timestamp_micros(us).unwrap_or_default()
}

/// The sandbox's OAuth store.
#[must_use]
pub fn store(sandbox: &Sandbox) -> Arc<OauthStore> {
    sandbox.extension::<OauthStore>()
}

/// Routes of the OAuth surface and its control endpoints.
pub fn routes() -> Router<Arc<Sandbox>> {
    Router::new()
        .route("/oauth/authorize", get(authorize_page).post(authorize_decision))
        .route("/oauth/access_token", post(access_token))
        .route("/access_token", get(exchange_long))
        .route("/refresh_access_token", get(refresh))
        .route("/_sandbox/apps", post(register_app).get(list_apps))
        .route("/_sandbox/tokens", post(mint_token))
}

#[derive(Debug, Default, Deserialize)]
struct AuthorizeParams {
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    redirect_uri: String,
    #[serde(default)]
    response_type: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    decision: Option<String>,
}

fn escape_html(raw: &str) -> String {
    raw.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn error_page(message: &str) -> Response {
    let body = format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Error</title></head><body><h1>Error</h1><p id=\"error\">{}</p></body></html>",
        escape_html(message)
    );
    (StatusCode::BAD_REQUEST, Html(body)).into_response()
}

async fn authorize_page(
    State(sb): State<Arc<Sandbox>>,
    headers: HeaderMap,
    Query(p): Query<AuthorizeParams>,
) -> Response {
    let oauth = store(&sb);
    if let Err(e) = oauth.check_authorize(&p.client_id, &p.redirect_uri, &p.response_type, &p.scope)
    {
        return error_page(&e);
    }
    let app_name = oauth
        .app(&p.client_id)
        .and_then(|a| a.name)
        .unwrap_or_else(|| format!("App {}", p.client_id));
    let (accounts, logged_in) = sb
        .read(|w| {
            let mut list: Vec<String> = w
                .accounts
                .values()
                .filter(|a| a.kind == AccountKind::Business)
                .map(|a| a.username.clone())
                .collect();
            list.sort();
            let session = headers
                .get(header::COOKIE)
                .and_then(|c| c.to_str().ok())
                .and_then(|c| {
                    c.split(';')
                        .filter_map(|kv| kv.trim().split_once('='))
                        .find(|(k, _)| *k == "sessionid")
                        .map(|(_, v)| v.to_owned())
                })
                .and_then(|s| w.account_by_session(&s).map(|a| a.username.clone()));
            (list, session)
        })
        .await;
    let options: String = accounts
        .iter()
        .map(|u| {
            let selected = if logged_in.as_deref() == Some(u.as_str()) { " selected" } else { "" };
            format!("<option value=\"{0}\"{selected}>{0}</option>", escape_html(u))
        })
        .collect();
    let hidden = |name: &str, value: &str| {
        format!("<input type=\"hidden\" name=\"{name}\" value=\"{}\">", escape_html(value))
    };
    let body = format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Allow {app} to access your Instagram account?</title></head><body>\
<h1>{app} would like to access your Instagram professional account</h1>\
<p>Permissions: <span id=\"scopes\">{scopes}</span></p>\
<form method=\"post\" action=\"/oauth/authorize\">{h1}{h2}{h3}{h4}{h5}\
<label>Account <select name=\"username\" id=\"username\">{options}</select></label>\
<button type=\"submit\" name=\"decision\" value=\"allow\" id=\"allow\">Allow</button>\
<button type=\"submit\" name=\"decision\" value=\"deny\" id=\"deny\">Deny</button>\
</form></body></html>",
        app = escape_html(&app_name),
        scopes = escape_html(&split_scopes(&p.scope).join(", ")),
        h1 = hidden("client_id", &p.client_id),
        h2 = hidden("redirect_uri", &p.redirect_uri),
        h3 = hidden("response_type", &p.response_type),
        h4 = hidden("scope", &p.scope),
        h5 = hidden("state", p.state.as_deref().unwrap_or_default()),
    );
    Html(body).into_response()
}

fn redirect(location: &str) -> Response {
    (StatusCode::FOUND, [(header::LOCATION, location.to_owned())]).into_response()
}

fn with_query(base: &str, pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}{}", s.finish())
}

async fn authorize_decision(
    State(sb): State<Arc<Sandbox>>,
    Form(p): Form<AuthorizeParams>,
) -> Response {
    let oauth = store(&sb);
    let scopes =
        match oauth.check_authorize(&p.client_id, &p.redirect_uri, &p.response_type, &p.scope) {
            Ok(s) => s,
            Err(e) => return error_page(&e),
        };
    let state = p.state.clone().filter(|s| !s.is_empty());
    match p.decision.as_deref() {
        Some("allow") => {}
        Some("deny") => {
            let mut pairs = vec![
                ("error", "access_denied"),
                ("error_reason", "user_denied"),
                ("error_description", "The user denied your request."),
            ];
            if let Some(s) = &state {
                pairs.push(("state", s));
            }
            return redirect(&with_query(&p.redirect_uri, &pairs));
        }
        _ => return error_page("decision must be allow or deny"),
    }
    let Some(username) = p.username.as_deref().filter(|u| !u.is_empty()) else {
        return error_page("Choose the account to connect");
    };
    let account = sb
        .read(|w| {
            w.account_by_username(username)
                .filter(|a| a.kind == AccountKind::Business)
                .map(|a| a.id.clone())
        })
        .await;
    let Some(account_id) = account else {
        return error_page("Only Instagram professional accounts can connect with Instagram Login");
    };
    let code = oauth.issue_code(&p.client_id, &p.redirect_uri, &account_id, scopes, sb.now_us());
    let mut pairs = vec![("code", code.as_str())];
    if let Some(s) = &state {
        pairs.push(("state", s));
    }
    tracing::info!(client_id = %p.client_id, account = %account_id, "oauth code issued");
    redirect(&format!("{}#_", with_query(&p.redirect_uri, &pairs)))
}

async fn access_token(
    State(sb): State<Arc<Sandbox>>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    match store(&sb).exchange_code(&form, sb.now_us()) {
        Ok((token, info)) => Json(json!({
            "access_token": token,
            "user_id": info.account_id,
            "permissions": info.scopes.join(","),
        }))
        .into_response(),
        Err(e) => e.into_response(),
    }
}

fn long_lived_body(token: &str, info: &TokenInfo) -> Value {
    let expires_in = info.expires_us.map_or(0, |e| (e - info.issued_us) / 1_000_000);
    json!({"access_token": token, "token_type": "bearer", "expires_in": expires_in})
}

async fn exchange_long(
    State(sb): State<Arc<Sandbox>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let get = |k: &str| q.get(k).map(String::as_str).unwrap_or_default();
    for required in ["grant_type", "client_secret", "access_token"] {
        if get(required).is_empty() {
            return GraphError::missing_param(required).into_response();
        }
    }
    match store(&sb).exchange_long(
        get("grant_type"),
        get("client_secret"),
        get("access_token"),
        sb.now_us(),
    ) {
        Ok((token, info)) => Json(long_lived_body(&token, &info)).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn refresh(
    State(sb): State<Arc<Sandbox>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let get = |k: &str| q.get(k).map(String::as_str).unwrap_or_default();
    for required in ["grant_type", "access_token"] {
        if get(required).is_empty() {
            return GraphError::missing_param(required).into_response();
        }
    }
    match store(&sb).refresh(get("grant_type"), get("access_token"), sb.now_us()) {
        Ok((token, info)) => Json(long_lived_body(&token, &info)).into_response(),
        Err(e) => e.into_response(),
    }
}

fn control_error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": message.into()}))).into_response()
}

async fn register_app(
    State(sb): State<Arc<Sandbox>>,
    body: Result<Json<App>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(app) = match body {
        Ok(b) => b,
        Err(e) => return control_error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    if app.app_id.trim().is_empty() || app.app_secret.is_empty() {
        return control_error(StatusCode::BAD_REQUEST, "app_id and app_secret are required");
    }
    for uri in &app.redirect_uris {
        if url::Url::parse(uri).is_err() {
            return control_error(
                StatusCode::BAD_REQUEST,
                format!("redirect_uri {uri} is not an absolute URL"),
            );
        }
    }
    let out = json!({"app_id": app.app_id, "redirect_uris": app.redirect_uris, "name": app.name});
    store(&sb).register_app(app);
    (StatusCode::CREATED, Json(out)).into_response()
}

async fn list_apps(State(sb): State<Arc<Sandbox>>) -> Json<Value> {
    let apps: Vec<Value> = store(&sb)
        .apps()
        .into_iter()
        .map(|a| json!({"app_id": a.app_id, "redirect_uris": a.redirect_uris, "name": a.name}))
        .collect();
    Json(json!({"data": apps}))
}

#[derive(Deserialize)]
struct MintRequest {
    account_id: String,
    #[serde(default)]
    app_id: Option<String>,
    kind: TokenKind,
    #[serde(default)]
    scopes: Option<Vec<String>>,
}

async fn mint_token(
    State(sb): State<Arc<Sandbox>>,
    body: Result<Json<MintRequest>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(req) = match body {
        Ok(b) => b,
        Err(e) => return control_error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let account = sb
        .read(|w| {
            w.account(&req.account_id)
                .map(|a| (a.kind, a.graph.as_ref().map(|g| g.page_id.clone())))
                .ok()
        })
        .await;
    let Some((AccountKind::Business, page_id)) = account else {
        return control_error(
            StatusCode::NOT_FOUND,
            format!("no business account {}", req.account_id),
        );
    };
    let scopes =
        req.scopes.unwrap_or_else(|| VALID_SCOPES.iter().map(|s| (*s).to_owned()).collect());
    let app_id = req.app_id.unwrap_or_else(|| SANDBOX_APP_ID.to_owned());
    let (token, info) = store(&sb).mint(&req.account_id, &app_id, req.kind, scopes, sb.now_us());
    (
        StatusCode::CREATED,
        Json(json!({
            "access_token": token,
            "kind": info.kind,
            "account_id": info.account_id,
            "page_id": page_id,
            "app_id": info.app_id,
            "expires_at_us": info.expires_us,
        })),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_with_app() -> OauthStore {
        let s = OauthStore::default();
        s.register_app(App {
            app_id: "1".into(),
            app_secret: "sec".into(),
            redirect_uris: vec!["https://cb.test/x".into()],
            name: None,
        });
        s
    }

    fn form(code: &str) -> HashMap<String, String> {
        [
            ("client_id", "1"),
            ("client_secret", "sec"),
            ("grant_type", "authorization_code"),
            ("redirect_uri", "https://cb.test/x"),
            ("code", code),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    #[test]
    fn code_is_single_use_and_expires() {
        let s = store_with_app();
        let scopes = vec!["instagram_business_basic".to_owned()];
        let code = s.issue_code("1", "https://cb.test/x", "acc", scopes.clone(), 0);
        assert!(s.exchange_code(&form(&code), 10).is_ok());
        assert_eq!(
            s.exchange_code(&form(&code), 20).err().map(|e| e.message),
            Some("Matching code was not found or was already used".to_owned())
        );
        let late = s.issue_code("1", "https://cb.test/x", "acc", scopes, 0);
        assert!(s.exchange_code(&form(&late), CODE_TTL_US + 1).is_err());
    }

    #[test]
    fn refresh_needs_a_day() {
        let s = store_with_app();
        let (tok, _) =
            s.mint("acc", "1", TokenKind::LongLived, vec!["instagram_business_basic".into()], 0);
        assert!(s.refresh("ig_refresh_token", &tok, REFRESH_MIN_AGE_US - 1).is_err());
        assert!(s.refresh("ig_refresh_token", &tok, REFRESH_MIN_AGE_US).is_ok());
        let expired = s.refresh("ig_refresh_token", &tok, LONG_LIVED_US).err();
        assert_eq!(expired.map(|e| (e.code, e.subcode)), Some((190, Some(463))));
    }

    #[test]
    fn scopes_are_checked() {
        let s = store_with_app();
        assert!(
            s.check_authorize(
                "1",
                "https://cb.test/x",
                "code",
                "instagram_business_basic,instagram_business_manage_messages"
            )
            .is_ok()
        );
        assert_eq!(
            s.check_authorize("1", "https://cb.test/x", "code", "business_basic").err(),
            Some("Invalid Scopes: business_basic".to_owned())
        );
        assert!(
            s.check_authorize("1", "https://evil.test/", "code", "instagram_business_basic")
                .is_err()
        );
    }
}
