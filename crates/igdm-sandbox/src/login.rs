//! The browser login flow a real (headless) browser completes:
//! `/accounts/login/` (username + password) → optional two-factor code →
//! optional challenge code → session cookies and a redirect to
//! `/direct/inbox/`, which shows the logged-in user's avatar
//! (`img[data-testid=user-avatar]`, `alt` = username) and a `Home` link.

use std::collections::HashMap;
use std::sync::{Arc, Mutex as StdMutex, PoisonError};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

use crate::private::parse_cookies;
use crate::state::{Account, FaultMode, Sandbox, WebCookies};

/// Routes of the login pages and the logged-in web pages.
pub fn routes() -> Router<Arc<Sandbox>> {
    Router::new()
        .route("/accounts/login/", get(login_get).post(login_post))
        .route("/accounts/login/two_factor/", get(two_factor_get).post(two_factor_post))
        .route("/accounts/logout/", get(logout).post(logout))
        .route("/challenge/{token}/", get(challenge_get).post(challenge_post))
        .route("/challenge/{pk}/{nonce}/", get(api_challenge_get).post(api_challenge_post))
        .route("/direct/inbox/", get(home))
        .route("/direct/t/{thread}/", get(home_thread))
        .route("/", get(home))
}

/// Login attempts in progress: token → (account id, passed 2FA).
#[derive(Debug, Default)]
struct PendingLogins(StdMutex<HashMap<String, (String, bool)>>);

impl PendingLogins {
    fn insert(&self, token: String, account: String, two_factor_done: bool) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(token, (account, two_factor_done));
    }
    fn get(&self, token: &str) -> Option<(String, bool)> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).get(token).cloned()
    }
    fn remove(&self, token: &str) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).remove(token);
    }
}

/// A `302 Found` redirect, as Instagram's web pages answer.
fn found(location: &str) -> Response {
    let mut r = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>body{{font-family:sans-serif;max-width:360px;margin:40px auto}}\
         input,button{{display:block;width:100%;margin:8px 0;padding:8px}}\
         .error{{color:#ed4956}}</style></head><body>{body}</body></html>",
        escape(title)
    )
}

/// The login page (also what JSON endpoints return in the `html` fault mode).
#[must_use]
pub fn login_page_html(error: Option<&str>) -> String {
    login_form(error, "")
}

fn login_form(error: Option<&str>, csrf: &str) -> String {
    let err = error.map_or_else(String::new, |e| {
        format!("<p class=\"error\" id=\"slfErrorAlert\" role=\"alert\">{}</p>", escape(e))
    });
    page(
        "Login • Instagram",
        &format!(
            "<main><h1>Instagram</h1>{err}\
             <form id=\"loginForm\" method=\"post\" action=\"/accounts/login/\">\
             <input type=\"hidden\" name=\"csrfmiddlewaretoken\" value=\"{}\">\
             <label>Phone number, username, or email\
             <input type=\"text\" name=\"username\" autocomplete=\"username\" aria-label=\"Phone number, username, or email\" required></label>\
             <label>Password<input type=\"password\" name=\"password\" autocomplete=\"current-password\" aria-label=\"Password\" required></label>\
             <button type=\"submit\">Log in</button></form></main>",
            escape(csrf)
        ),
    )
}

fn code_form(
    action: &str,
    token: &str,
    title: &str,
    text: &str,
    field: &str,
    error: Option<&str>,
) -> String {
    let err = error.map_or_else(String::new, |e| {
        format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e))
    });
    page(
        title,
        &format!(
            "<main><h1>{}</h1><p>{}</p>{err}<form method=\"post\" action=\"{}\">\
             <input type=\"hidden\" name=\"identifier\" value=\"{}\">\
             <input type=\"text\" name=\"{field}\" inputmode=\"numeric\" autocomplete=\"one-time-code\" aria-label=\"Security code\" required>\
             <button type=\"submit\">Confirm</button></form></main>",
            escape(title),
            escape(text),
            escape(action),
            escape(token)
        ),
    )
}

fn with_cookies(mut r: Response, cookies: &[String]) -> Response {
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(c) {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    r
}

async fn login_get(State(sb): State<Arc<Sandbox>>, headers: HeaderMap) -> Response {
    let cookies = parse_cookies(&headers);
    let csrf = match cookies.get("csrftoken").filter(|c| !c.is_empty()) {
        Some(c) => c.clone(),
        None => sb.write(|w| w.token(32)).await,
    };
    let r = Html(login_form(None, &csrf)).into_response();
    with_cookies(r, &[format!("csrftoken={csrf}; Path=/; SameSite=Lax; Max-Age=31449600")])
}

fn form(body: &[u8]) -> HashMap<String, String> {
    form_urlencoded::parse(body).into_owned().collect()
}

async fn login_post(State(sb): State<Arc<Sandbox>>, headers: HeaderMap, body: Bytes) -> Response {
    let f = form(&body);
    let cookies = parse_cookies(&headers);
    let csrf = cookies.get("csrftoken").cloned().unwrap_or_default();
    if csrf.is_empty() || f.get("csrfmiddlewaretoken") != Some(&csrf) {
        return (
            StatusCode::FORBIDDEN,
            Html(page("Forbidden", "<h1>CSRF token missing or incorrect</h1>")),
        )
            .into_response();
    }
    let username = f.get("username").map(|s| s.trim().to_owned()).unwrap_or_default();
    let password = f.get("password").cloned().unwrap_or_default();
    let account = sb.read(|w| w.account_by_username(&username).cloned()).await;
    let Some(account) = account else {
        return Html(login_form(
            Some("The username you entered doesn't belong to an account. Please check your username and try again."),
            &csrf,
        ))
        .into_response();
    };
    if !account.password_matches(&password) {
        return Html(login_form(
            Some("Sorry, your password was incorrect. Please double-check your password."),
            &csrf,
        ))
        .into_response();
    }
    next_step(&sb, &account, false).await
}

/// Moves a verified login to its next step: 2FA, challenge, or success.
async fn next_step(sb: &Arc<Sandbox>, account: &Account, two_factor_done: bool) -> Response {
    let pending = sb.extension::<PendingLogins>();
    if account.two_factor && !two_factor_done {
        let token = sb.write(|w| w.token(24)).await;
        pending.insert(token.clone(), account.id.clone(), false);
        return Html(two_factor_page(&token, None)).into_response();
    }
    if account.challenge {
        let token = sb.write(|w| w.token(24)).await;
        pending.insert(token.clone(), account.id.clone(), true);
        return found(&format!("/challenge/{token}/"));
    }
    success(sb, account).await
}

fn two_factor_page(token: &str, error: Option<&str>) -> String {
    code_form(
        "/accounts/login/two_factor/",
        token,
        "Two-factor authentication",
        "Enter the 6-digit code from your authentication app.",
        "verificationCode",
        error,
    )
}

fn challenge_page(token: &str, error: Option<&str>) -> String {
    code_form(
        &format!("/challenge/{token}/"),
        token,
        "Help us confirm it's you",
        "We detected an unusual login attempt. Enter the 6-digit code we sent to your email.",
        "security_code",
        error,
    )
}

async fn two_factor_get() -> Response {
    found("/accounts/login/")
}

async fn two_factor_post(State(sb): State<Arc<Sandbox>>, body: Bytes) -> Response {
    let f = form(&body);
    let token = f.get("identifier").cloned().unwrap_or_default();
    let pending = sb.extension::<PendingLogins>();
    let Some((account_id, _)) = pending.get(&token) else {
        return found("/accounts/login/");
    };
    let Some(account) = sb.read(|w| w.accounts.get(&account_id).cloned()).await else {
        return found("/accounts/login/");
    };
    let code = f.get("verificationCode").map(|s| s.trim().to_owned()).unwrap_or_default();
    if code != account.two_factor_code() {
        return Html(two_factor_page(
            &token,
            Some("Please check the security code and try again."),
        ))
        .into_response();
    }
    pending.remove(&token);
    next_step(&sb, &account, true).await
}

async fn challenge_get(State(sb): State<Arc<Sandbox>>, Path(token): Path<String>) -> Response {
    if sb.extension::<PendingLogins>().get(&token).is_none() {
        return found("/accounts/login/");
    }
    Html(challenge_page(&token, None)).into_response()
}

async fn challenge_post(
    State(sb): State<Arc<Sandbox>>,
    Path(token): Path<String>,
    body: Bytes,
) -> Response {
    let f = form(&body);
    let pending = sb.extension::<PendingLogins>();
    let Some((account_id, _)) = pending.get(&token) else {
        return found("/accounts/login/");
    };
    let Some(account) = sb.read(|w| w.accounts.get(&account_id).cloned()).await else {
        return found("/accounts/login/");
    };
    let code = f.get("security_code").map(|s| s.trim().to_owned()).unwrap_or_default();
    if code != account.challenge_code() {
        return Html(challenge_page(
            &token,
            Some("Please check the code we sent you and try again."),
        ))
        .into_response();
    }
    pending.remove(&token);
    success(&sb, &account).await
}

/// The account a private-API `challenge.api_path` (`/challenge/<pk>/<nonce>/`) names.
async fn challenged_account(sb: &Sandbox, pk: &str, nonce: &str) -> Option<Account> {
    sb.read(|w| {
        w.accounts
            .values()
            .find(|a| {
                a.pk == pk
                    && a.fault == FaultMode::Challenge
                    && a.cookies.mid.chars().skip(1).take(10).collect::<String>() == nonce
            })
            .cloned()
    })
    .await
}

fn api_challenge_page(pk: &str, nonce: &str, error: Option<&str>) -> String {
    code_form(
        &format!("/challenge/{pk}/{nonce}/"),
        nonce,
        "Help us confirm it's you",
        "Enter the 6-digit code we sent to your email to keep using your account.",
        "security_code",
        error,
    )
}

async fn api_challenge_get(
    State(sb): State<Arc<Sandbox>>,
    Path((pk, nonce)): Path<(String, String)>,
) -> Response {
    if challenged_account(&sb, &pk, &nonce).await.is_none() {
        return (StatusCode::NOT_FOUND, "Not Found").into_response();
    }
    Html(api_challenge_page(&pk, &nonce, None)).into_response()
}

/// Completing the challenge the private API pointed at lifts the
/// `challenge` fault of the account.
async fn api_challenge_post(
    State(sb): State<Arc<Sandbox>>,
    Path((pk, nonce)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let Some(account) = challenged_account(&sb, &pk, &nonce).await else {
        return (StatusCode::NOT_FOUND, "Not Found").into_response();
    };
    let f = form(&body);
    let code = f.get("security_code").map(|s| s.trim().to_owned()).unwrap_or_default();
    if code != account.challenge_code() {
        return Html(api_challenge_page(
            &pk,
            &nonce,
            Some("Please check the code we sent you and try again."),
        ))
        .into_response();
    }
    sb.write(|w| {
        if let Some(a) = w.accounts.get_mut(&account.id) {
            a.fault = FaultMode::None;
        }
    })
    .await;
    found("/direct/inbox/")
}

/// The `Set-Cookie` values of a fresh session.
#[must_use]
pub fn session_set_cookies(c: &WebCookies) -> Vec<String> {
    let year = 31_536_000;
    vec![
        format!("sessionid={}; Path=/; HttpOnly; SameSite=Lax; Max-Age={year}", c.sessionid),
        format!("csrftoken={}; Path=/; SameSite=Lax; Max-Age={year}", c.csrftoken),
        format!("ds_user_id={}; Path=/; SameSite=Lax; Max-Age=7776000", c.ds_user_id),
        format!("mid={}; Path=/; SameSite=Lax; Max-Age={year}", c.mid),
        format!("ig_did={}; Path=/; HttpOnly; SameSite=Lax; Max-Age={year}", c.ig_did),
        format!("rur={}; Path=/; HttpOnly; SameSite=Lax", c.rur),
    ]
}

async fn success(sb: &Arc<Sandbox>, account: &Account) -> Response {
    let cookies = sb.write(|w| w.new_session(&account.id, &account.pk)).await;
    tracing::debug!(account = %account.id, "web login completed");
    with_cookies(found("/direct/inbox/"), &session_set_cookies(&cookies))
}

async fn logout(State(sb): State<Arc<Sandbox>>, headers: HeaderMap) -> Response {
    let cookies = parse_cookies(&headers);
    if let Some(s) = cookies.get("sessionid") {
        let s = s.clone();
        sb.write(|w| {
            w.sessions.remove(&s);
        })
        .await;
    }
    with_cookies(
        found("/accounts/login/"),
        &[
            "sessionid=\"\"; Path=/; HttpOnly; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT"
                .to_owned(),
            "ds_user_id=\"\"; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT".to_owned(),
        ],
    )
}

async fn session_account(sb: &Sandbox, headers: &HeaderMap) -> Option<Account> {
    let cookies = parse_cookies(headers);
    let session = cookies.get("sessionid")?.clone();
    let ds = cookies.get("ds_user_id").cloned().unwrap_or_default();
    sb.read(|w| w.account_by_session(&session).cloned()).await.filter(|a| a.pk == ds)
}

const AVATAR: &str = "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' width='32' height='32'%3E%3Ccircle cx='16' cy='16' r='16' fill='%23c13584'/%3E%3C/svg%3E";

async fn home_page(sb: &Sandbox, headers: &HeaderMap, thread: Option<&str>) -> Response {
    let Some(account) = session_account(sb, headers).await else {
        return found("/accounts/login/");
    };
    let threads: Vec<(String, String)> = sb
        .read(|w| {
            w.threads_of(&account.id)
                .into_iter()
                .filter(|t| !t.pending && !t.hidden)
                .take(20)
                .map(|t| {
                    let name = t.title.clone().unwrap_or_else(|| {
                        t.participants
                            .iter()
                            .filter_map(|p| w.users.get(p))
                            .map(|u| u.username.clone())
                            .collect::<Vec<_>>()
                            .join(", ")
                    });
                    (t.id.clone(), name)
                })
                .collect()
        })
        .await;
    let list: String = threads
        .iter()
        .map(|(id, name)| {
            format!("<li><a href=\"/direct/t/{}/\">{}</a></li>", escape(id), escape(name))
        })
        .collect();
    let heading = thread.map_or_else(|| "Messages".to_owned(), |t| format!("Thread {}", escape(t)));
    Html(page(
        "Inbox • Direct",
        &format!(
            "<nav><a href=\"/\" aria-label=\"Home\">Home</a> \
             <a href=\"/direct/inbox/\" aria-label=\"Direct messaging\">Messages</a> \
             <img data-testid=\"user-avatar\" alt=\"{u}\" src=\"{AVATAR}\" width=\"32\" height=\"32\"></nav>\
             <main><h1>{heading}</h1><p>Logged in as @{u}</p><ul>{list}</ul></main>",
            u = escape(&account.username)
        ),
    ))
    .into_response()
}

async fn home(State(sb): State<Arc<Sandbox>>, headers: HeaderMap) -> Response {
    home_page(&sb, &headers, None).await
}

async fn home_thread(
    State(sb): State<Arc<Sandbox>>,
    Path(thread): Path<String>,
    headers: HeaderMap,
) -> Response {
    home_page(&sb, &headers, Some(&thread)).await
}
