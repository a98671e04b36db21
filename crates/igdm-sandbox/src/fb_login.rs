//! Facebook Login flavour (`graph.facebook.com`): exchanging a user token for
//! a long-lived one, and the Page tokens of the Pages the user manages.
//!
//! Routes (every path also accepts a `/vNN.N` prefix):
//! - `GET /oauth/access_token?grant_type=fb_exchange_token&client_id&client_secret&fb_exchange_token`
//!   → `{access_token, token_type:"bearer", expires_in}`: a long-lived user
//!   token (60 days). A long-lived token can be exchanged again.
//! - `GET /me/accounts[?fields=…]` with a user token (`Authorization: Bearer`
//!   or `access_token`) → `{"data":[{id, name, access_token, tasks,
//!   category, category_list, instagram_business_account{id}}], "paging":{"cursors":{"before","after"}}}`:
//!   one entry per Page, each with a Page token. A Page token derived from a
//!   long-lived user token does not expire; one derived from a short-lived
//!   user token expires with it. Without `fields` the default set
//!   (`access_token, category, category_list, name, id, tasks`) is returned.
//! - control: `POST /_sandbox/fb/user_tokens {"account_id"|"account_ids":[…], "app_id"?, "scopes"?:[…]}`
//!   → `{access_token, expires_at_us, …}`: a short-lived (1 h) user token of a
//!   person who manages the Pages of those business accounts (what the
//!   Facebook Login dialog would hand the app).
//!
//! Failures use Graph's envelope ([`GraphError`]): 190/467 for an unknown
//! token, 190/463 for an expired one, 190 for a token of another app, 101 for
//! an unknown app id, 1 for a wrong app secret, 100 for a missing or bad
//! parameter, 100 for `accounts` asked of a Page or Instagram token.
//! Expiry follows the sandbox's virtual clock.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use rand::Rng as _;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::graph::error::{GraphError, GraphErrorType};
use crate::graph::{Flavour, authenticate};
use crate::oauth::{self, SANDBOX_APP_ID};
use crate::state::{AccountKind, Micros, Sandbox};

/// Lifetime of a short-lived user token (1 hour).
pub const SHORT_LIVED_US: Micros = 3_600 * 1_000_000;
/// Lifetime of a long-lived user token (60 days).
pub const LONG_LIVED_US: Micros = 60 * 86_400 * 1_000_000;
/// The scopes a user token carries unless the control call names others.
pub const DEFAULT_SCOPES: &[&str] = &[
    "instagram_basic",
    "instagram_manage_messages",
    "pages_manage_metadata",
    "pages_messaging",
    "pages_show_list",
];
/// The tasks the user can perform on each of their Pages.
const TASKS: &[&str] =
    &["ANALYZE", "ADVERTISE", "MESSAGING", "MODERATE", "CREATE_CONTENT", "MANAGE"];

/// A Facebook user token.
#[derive(Debug, Clone)]
struct UserToken {
    /// The business accounts whose Pages the user manages.
    accounts: Vec<String>,
    app_id: String,
    scopes: Vec<String>,
    expires_us: Micros,
    long_lived: bool,
}

/// The user tokens the sandbox issued.
#[derive(Default)]
pub struct FbUsers {
    tokens: Mutex<HashMap<String, UserToken>>,
}

impl std::fmt::Debug for FbUsers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FbUsers").finish_non_exhaustive()
    }
}

fn random_token() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let body: String =
        (0..180).map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())])).collect();
    format!("EAA{body}")
}

fn to_utc(us: Micros) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::<chrono::Utc>::from_timestamp_micros(us).unwrap_or_default()
}

impl FbUsers {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, UserToken>> {
        self.tokens.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn issue(&self, token: UserToken) -> String {
        let t = random_token();
        self.lock().insert(t.clone(), token);
        t
    }

    /// The user token `raw`, checked against `now`: `Ok(None)` when it is not
    /// a user token at all.
    fn check(&self, raw: &str, now: Micros) -> Result<Option<UserToken>, GraphError> {
        let Some(t) = self.lock().get(raw).cloned() else { return Ok(None) };
        if now >= t.expires_us {
            return Err(GraphError::token_expired(to_utc(t.expires_us), to_utc(now)));
        }
        Ok(Some(t))
    }
}

fn users(sb: &Sandbox) -> Arc<FbUsers> {
    sb.extension::<FbUsers>()
}

/// Routes of the Facebook Login token endpoints and their control endpoint.
pub fn routes() -> Router<Arc<Sandbox>> {
    Router::new()
        .route("/oauth/access_token", get(exchange))
        .route("/{a}/oauth/access_token", get(exchange_versioned))
        .route("/me/accounts", get(accounts))
        .route("/{a}/me/accounts", get(accounts_versioned))
        .route("/_sandbox/fb/user_tokens", post(mint_user_token))
}

fn is_version(seg: &str) -> bool {
    seg.strip_prefix('v').and_then(|r| r.split_once('.')).is_some_and(|(a, b)| {
        !a.is_empty()
            && !b.is_empty()
            && a.chars().all(|c| c.is_ascii_digit())
            && b.chars().all(|c| c.is_ascii_digit())
    })
}

fn unknown_version(seg: &str) -> Response {
    GraphError::new(
        2500,
        GraphErrorType::OAuthException,
        format!("Unknown path components: /{seg}"),
    )
    .into_response()
}

async fn exchange_versioned(
    State(sb): State<Arc<Sandbox>>,
    Path(version): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if !is_version(&version) {
        return unknown_version(&version);
    }
    exchange(State(sb), Query(q)).await
}

async fn exchange(
    State(sb): State<Arc<Sandbox>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    match exchange_token(&sb, &q) {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

fn exchange_token(sb: &Sandbox, q: &HashMap<String, String>) -> Result<Value, GraphError> {
    let get = |k: &str| q.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let grant = get("grant_type").ok_or_else(|| GraphError::missing_param("grant_type"))?;
    if grant != "fb_exchange_token" {
        return Err(GraphError::invalid_param(format!(
            "Param grant_type must be one of {{fb_exchange_token}} - got \"{grant}\"."
        )));
    }
    let client_id = get("client_id").ok_or_else(|| GraphError::missing_param("client_id"))?;
    let secret = get("client_secret").ok_or_else(|| GraphError::missing_param("client_secret"))?;
    let raw =
        get("fb_exchange_token").ok_or_else(|| GraphError::missing_param("fb_exchange_token"))?;
    let app = oauth::store(sb).app(client_id).ok_or_else(|| {
        GraphError::new(
            101,
            GraphErrorType::OAuthException,
            "Error validating application. Invalid application ID.",
        )
    })?;
    if app.app_secret != secret {
        return Err(GraphError::new(
            1,
            GraphErrorType::OAuthException,
            "Error validating client secret.",
        ));
    }
    let now = sb.now_us();
    let users = users(sb);
    let user = users.check(raw, now)?.ok_or_else(GraphError::token_invalid)?;
    if user.app_id != client_id {
        return Err(GraphError::new(
            190,
            GraphErrorType::OAuthException,
            "Error validating access token: The access token does not belong to this application.",
        ));
    }
    let token =
        users.issue(UserToken { expires_us: now + LONG_LIVED_US, long_lived: true, ..user });
    tracing::info!(client_id, "fb user token exchanged for a long-lived one");
    Ok(
        json!({"access_token": token, "token_type": "bearer", "expires_in": LONG_LIVED_US / 1_000_000}),
    )
}

fn request_token(headers: &HeaderMap, q: &HashMap<String, String>) -> Option<String> {
    let from_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|raw| raw.trim().split_once(' '))
        .filter(|(scheme, _)| {
            scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("oauth")
        })
        .map(|(_, t)| t.trim().to_owned());
    from_header.or_else(|| q.get("access_token").cloned()).filter(|t| !t.is_empty())
}

async fn accounts_versioned(
    State(sb): State<Arc<Sandbox>>,
    Path(version): Path<String>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if !is_version(&version) {
        return unknown_version(&version);
    }
    accounts(State(sb), headers, Query(q)).await
}

async fn accounts(
    State(sb): State<Arc<Sandbox>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    match page_list(&sb, request_token(&headers, &q), q.get("fields").map(String::as_str)).await {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

/// The top-level names of a `fields` list (`a,b{c},d` → a, b, d).
fn field_names(raw: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut name = String::new();
    for c in raw.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut name));
            }
            _ if depth == 0 => name.push(c),
            _ => {}
        }
    }
    out.push(name);
    out.into_iter().map(|n| n.trim().to_owned()).filter(|n| !n.is_empty()).collect()
}

async fn page_list(
    sb: &Sandbox,
    token: Option<String>,
    fields: Option<&str>,
) -> Result<Value, GraphError> {
    let now = sb.now_us();
    let Some(raw) = token else { return Err(GraphError::token_missing()) };
    let Some(user) = users(sb).check(&raw, now)? else {
        // A Page or Instagram token is valid but has no `accounts` edge.
        let caller = authenticate(sb, Some(&raw)).await?;
        let node = if caller.flavour == Flavour::Page { "Page" } else { "IGUser" };
        return Err(GraphError::invalid_param(format!(
            "Tried accessing nonexisting field (accounts) on node type ({node})"
        )));
    };
    let wanted = fields.map_or_else(
        || {
            ["access_token", "category", "category_list", "name", "id", "tasks"]
                .map(str::to_owned)
                .to_vec()
        },
        field_names,
    );
    let pages: Vec<(String, String, String)> = sb
        .read(|w| {
            user.accounts
                .iter()
                .filter_map(|id| w.account(id).ok())
                .filter(|a| a.kind == AccountKind::Business)
                .filter_map(|a| {
                    let g = a.graph.as_ref()?;
                    let name = if a.full_name.is_empty() {
                        a.username.clone()
                    } else {
                        a.full_name.clone()
                    };
                    Some((a.id.clone(), g.page_id.clone(), name))
                })
                .collect()
        })
        .await;
    let expires = (!user.long_lived).then_some(user.expires_us);
    let store = oauth::store(sb);
    let mut data = Vec::new();
    for (account_id, page_id, name) in &pages {
        let mut page = serde_json::Map::new();
        for f in &wanted {
            let v = match f.as_str() {
                "id" => json!(page_id),
                "name" => json!(name),
                "access_token" => {
                    let (t, _) = store.mint_page(
                        account_id,
                        &user.app_id,
                        user.scopes.clone(),
                        now,
                        expires,
                    );
                    json!(t)
                }
                "tasks" => json!(TASKS),
                "category" => json!("Shopping & retail"),
                "category_list" => json!([{"id": "200600219953504", "name": "Shopping & retail"}]),
                "instagram_business_account" => json!({"id": account_id}),
                other => {
                    return Err(GraphError::invalid_param(format!(
                        "Tried accessing nonexisting field ({other}) on node type (Page)"
                    )));
                }
            };
            page.insert(f.clone(), v);
        }
        page.entry("id").or_insert_with(|| json!(page_id));
        data.push(Value::Object(page));
    }
    let cursor = |id: Option<&(String, String, String)>| {
        id.map(|(_, p, _)| base64::engine::general_purpose::STANDARD.encode(p))
    };
    let mut out = json!({"data": data});
    if !pages.is_empty() {
        out["paging"] =
            json!({"cursors": {"before": cursor(pages.first()), "after": cursor(pages.last())}});
    }
    Ok(out)
}

#[derive(Deserialize)]
struct MintRequest {
    #[serde(default)]
    account_id: Option<String>,
    #[serde(default)]
    account_ids: Vec<String>,
    #[serde(default)]
    app_id: Option<String>,
    #[serde(default)]
    scopes: Option<Vec<String>>,
}

fn control_error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({"error": message.into()}))).into_response()
}

async fn mint_user_token(
    State(sb): State<Arc<Sandbox>>,
    body: Result<axum::Json<MintRequest>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let axum::Json(req) = match body {
        Ok(b) => b,
        Err(e) => return control_error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let mut ids = req.account_ids;
    ids.extend(req.account_id);
    if ids.is_empty() {
        return control_error(StatusCode::BAD_REQUEST, "account_id or account_ids is required");
    }
    let missing = sb
        .read(|w| {
            ids.iter()
                .find(|id| w.account(id).map_or(true, |a| a.kind != AccountKind::Business))
                .cloned()
        })
        .await;
    if let Some(id) = missing {
        return control_error(StatusCode::NOT_FOUND, format!("no business account {id}"));
    }
    let app_id = req.app_id.unwrap_or_else(|| SANDBOX_APP_ID.to_owned());
    let scopes =
        req.scopes.unwrap_or_else(|| DEFAULT_SCOPES.iter().map(|s| (*s).to_owned()).collect());
    let now = sb.now_us();
    let expires_us = now + SHORT_LIVED_US;
    let token = users(&sb).issue(UserToken {
        accounts: ids.clone(),
        app_id: app_id.clone(),
        scopes: scopes.clone(),
        expires_us,
        long_lived: false,
    });
    (
        StatusCode::CREATED,
        axum::Json(json!({
            "access_token": token,
            "account_ids": ids,
            "app_id": app_id,
            "scopes": scopes,
            "expires_at_us": expires_us,
        })),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_and_versions() {
        assert_eq!(
            field_names("name,access_token,instagram_business_account{id,username},tasks"),
            ["name", "access_token", "instagram_business_account", "tasks"]
        );
        assert!(is_version("v21.0"));
        assert!(!is_version("me") && !is_version("v21") && !is_version("vx.1"));
    }

    #[test]
    fn user_tokens_expire_on_the_given_clock() {
        let users = FbUsers::default();
        let t = users.issue(UserToken {
            accounts: vec!["1".into()],
            app_id: "9".into(),
            scopes: vec![],
            expires_us: 100,
            long_lived: false,
        });
        assert!(users.check(&t, 99).unwrap().is_some());
        let e = users.check(&t, 100).unwrap_err();
        assert_eq!((e.code, e.subcode), (190, Some(463)));
        assert!(users.check("EAAnope", 0).unwrap().is_none());
    }
}
