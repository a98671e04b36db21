//! Who may use the inbox, and which writes are the user's own.
//!
//! - Every request carries the access token: as `Authorization: Bearer`, or
//!   in a session cookie. `?token=` on a page load checks the token, sets
//!   an HttpOnly, SameSite=Strict cookie naming a fresh session and
//!   redirects to the same page without the token, so the token leaves the
//!   address bar and history at once. Anything else is 401.
//! - A write (any method but GET and HEAD) is refused when the browser says
//!   it comes from another site (`Sec-Fetch-Site`), when its `Origin` is not
//!   this server, and, in a cookie session, when its form does not carry the
//!   session's CSRF token. A bearer request needs no form token: no other
//!   site can make a browser send that header.
//! - The Host header must name loopback unless remote use was allowed, so a
//!   DNS-rebound name cannot reach the server through a victim's browser.
//! - Every answer carries a strict Content-Security-Policy (scripts and
//!   styles only from this server, no inline script, nothing remote).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::warn;

/// The cookie naming a browser session.
pub const SESSION_COOKIE: &str = "igdm_ui";
/// The form field carrying the session's CSRF token.
pub const CSRF_FIELD: &str = "csrf";
/// The largest form body a write may carry.
const MAX_FORM: usize = 256 * 1024;

/// The policy every answer carries.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
    media-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// How a request proved it holds the token.
#[derive(Debug, Clone)]
pub enum Caller {
    /// `Authorization: Bearer`.
    Bearer,
    /// A browser session; its CSRF token goes into every form.
    Session {
        /// The token the session's forms carry.
        csrf: String,
    },
}

impl Caller {
    /// The CSRF token forms must carry (empty for a bearer caller).
    #[must_use]
    pub fn csrf(&self) -> &str {
        match self {
            Self::Bearer => "",
            Self::Session { csrf } => csrf,
        }
    }
}

/// The access token and the browser sessions it opened (in memory: a
/// restarted server asks for the token again).
pub struct Gate {
    token: String,
    allow_remote: bool,
    sessions: Mutex<HashMap<String, String>>,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate").field("token", &"<redacted>").finish_non_exhaustive()
    }
}

impl Gate {
    /// A gate for `token`.
    #[must_use]
    pub fn new(token: String, allow_remote: bool) -> Self {
        Self { token, allow_remote, sessions: Mutex::new(HashMap::new()) }
    }

    fn open_session(&self) -> Option<String> {
        let id = igdm::random_token();
        let mut sessions = self.sessions.lock().ok()?;
        sessions.insert(id.clone(), igdm::random_token());
        Some(id)
    }

    fn session(&self, id: &str) -> Option<String> {
        self.sessions.lock().ok()?.get(id).cloned()
    }

    fn valid(&self, given: &str) -> bool {
        igdm::same_secret(given.as_bytes(), self.token.as_bytes())
    }
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find_map(|(k, v)| (k == name).then_some(v))
}

fn plain(status: StatusCode, message: &'static str) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], message).into_response()
}

fn unauthorized() -> Response {
    let mut r = plain(
        StatusCode::UNAUTHORIZED,
        "igdm ui: open the link `igdm ui` printed (it carries the access token), \
         or send Authorization: Bearer <IGDM_UI_TOKEN>\n",
    );
    r.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"igdm ui\""));
    r
}

/// Whether `host` (a Host header) names this machine's loopback.
fn loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    name == "localhost" || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The query string without its `token` pair.
fn without_token(query: &str) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form_urlencoded::parse(query.as_bytes()).filter(|(k, _)| k != "token"))
        .finish()
}

/// Whether a write comes from this server's own pages, by what the browser says.
fn same_origin(headers: &HeaderMap) -> bool {
    let text = |name| headers.get(name).and_then(|v: &HeaderValue| v.to_str().ok());
    if let Some(site) = text("sec-fetch-site")
        && site != "same-origin"
        && site != "none"
    {
        return false;
    }
    match (text("origin"), text("host")) {
        (Some(origin), Some(host)) => {
            origin.strip_prefix("http://").is_some_and(|o| o.eq_ignore_ascii_case(host))
        }
        (Some(_), None) => false,
        (None, _) => true,
    }
}

/// The middleware in front of every route.
pub async fn guard(State(gate): State<Arc<Gate>>, req: Request, next: Next) -> Response {
    let mut res = check(&gate, req, next).await;
    let h = res.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // Not `no-referrer`: under it browsers send `Origin: null` on form
    // posts, which the write check must refuse. Other sites get nothing.
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    res
}

async fn check(gate: &Gate, mut req: Request, next: Next) -> Response {
    let host = req.headers().get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !gate.allow_remote && !loopback_host(host) {
        warn!("refused a request for a host that is not loopback");
        return plain(StatusCode::MISDIRECTED_REQUEST, "igdm ui answers loopback names only\n");
    }
    // `?token=` on a page load: open a session and drop the token from the URL.
    let query = req.uri().query().unwrap_or("");
    if let Some((_, given)) = form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "token") {
        if req.method() != Method::GET || !gate.valid(&given) {
            warn!("refused a request with a wrong token");
            return unauthorized();
        }
        let Some(id) = gate.open_session() else {
            return plain(StatusCode::INTERNAL_SERVER_ERROR, "session table unavailable\n");
        };
        let rest = without_token(query);
        let to = if rest.is_empty() {
            req.uri().path().to_owned()
        } else {
            format!("{}?{rest}", req.uri().path())
        };
        let set = format!("{SESSION_COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict");
        let mut res = Response::new(Body::empty());
        *res.status_mut() = StatusCode::SEE_OTHER;
        if let (Ok(loc), Ok(set)) = (HeaderValue::from_str(&to), HeaderValue::from_str(&set)) {
            res.headers_mut().insert(header::LOCATION, loc);
            res.headers_mut().insert(header::SET_COOKIE, set);
        }
        return res;
    }
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let caller = match bearer {
        Some(t) if gate.valid(t) => Caller::Bearer,
        Some(_) => return unauthorized(),
        None => match cookie(req.headers(), SESSION_COOKIE).and_then(|id| gate.session(id)) {
            Some(csrf) => Caller::Session { csrf },
            None => return unauthorized(),
        },
    };
    if req.method() != Method::GET && req.method() != Method::HEAD {
        if !same_origin(req.headers()) {
            warn!("refused a cross-site write");
            return plain(StatusCode::FORBIDDEN, "igdm ui refuses writes from other sites\n");
        }
        if let Caller::Session { csrf } = &caller {
            let (parts, body) = req.into_parts();
            let Ok(bytes) = axum::body::to_bytes(body, MAX_FORM).await else {
                return plain(StatusCode::PAYLOAD_TOO_LARGE, "form too large\n");
            };
            let given = form_urlencoded::parse(&bytes).find(|(k, _)| k == CSRF_FIELD);
            if !given.is_some_and(|(_, v)| igdm::same_secret(v.as_bytes(), csrf.as_bytes())) {
                warn!("refused a write without the session's CSRF token");
                return plain(
                    StatusCode::FORBIDDEN,
                    "igdm ui: the form's CSRF token is missing or wrong; reload the page\n",
                );
            }
            req = Request::from_parts(parts, Body::from(bytes));
        }
    }
    req.extensions_mut().insert(caller);
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_origins() {
        assert!(loopback_host("127.0.0.1:8080"));
        assert!(loopback_host("localhost:1"));
        assert!(loopback_host("[::1]:80"));
        assert!(!loopback_host("evil.example:8080"));
        assert!(!loopback_host("127.0.0.1.evil.example"));
        let mut h = HeaderMap::new();
        h.insert("host", HeaderValue::from_static("127.0.0.1:9"));
        assert!(same_origin(&h));
        h.insert("origin", HeaderValue::from_static("http://127.0.0.1:9"));
        assert!(same_origin(&h));
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(!same_origin(&h));
        h.insert("sec-fetch-site", HeaderValue::from_static("same-origin"));
        h.insert("origin", HeaderValue::from_static("http://evil.example"));
        assert!(!same_origin(&h));
        assert_eq!(without_token("a=1&token=x&b=2"), "a=1&b=2");
    }
}
