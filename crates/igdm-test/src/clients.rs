//! `igdm::Client`s of the sandbox's demo accounts, over real HTTP.

use std::sync::Arc;

use igdm::{AccountConfig, Client, PacingOverride, PacingPolicy};
use igdm_model::{Backend, Timestamp};
use igdm_sandbox::DemoSeed;
use igdm_spec::{Connector, Session};
use serde_json::Value;

/// The device id the tests' web sessions present.
pub const DEVICE_UUID: &str = "6f1c2a52-3f4e-4b7e-9d51-0d9b6f4e2a10";

/// An account record named `name` on `connector`, pointed at `base`.
#[must_use]
pub fn account(
    name: &str,
    connector: &str,
    backend: Backend,
    base: &str,
    id: &Value,
) -> AccountConfig {
    AccountConfig {
        name: name.into(),
        connector: connector.into(),
        backend,
        base_url: Some(base.to_owned()),
        user_id: id.as_str().map(str::to_owned),
        username: None,
        pacing: PacingOverride::default(),
        created_at: Timestamp::now(),
    }
}

/// The record and cookie credential of a sandbox personal account (its
/// control-API view) named `name`, as `igdm accounts add --sandbox` stores
/// them: what `igdm_runtime::Runtime::add_account` takes.
///
/// # Panics
/// When the view has no cookies.
#[must_use]
pub fn web_login(base: &str, name: &str, view: &Value) -> (AccountConfig, igdm_auth::Credential) {
    let cookies = view["cookies"]
        .as_object()
        .expect("cookies")
        .iter()
        .map(|(k, v)| (k.clone(), secrecy::SecretString::from(v.as_str().unwrap_or("").to_owned())))
        .collect();
    let mut credential =
        igdm_auth::CookieCredential::new(cookies, "instagram.com", Some(name.to_owned()));
    credential.base_url = Some(base.to_owned());
    let mut config = account(name, "instagram-web", Backend::Web, base, &view["pk"]);
    config.username = view["username"].as_str().map(str::to_owned);
    (config, igdm_auth::Credential::Cookies(credential))
}

/// A private-API session from an account's control-API view (its cookies).
///
/// # Panics
/// When the view has no cookies.
#[must_use]
pub fn web_session(account: &Value) -> Session {
    let cookies = account["cookies"].as_object().expect("cookies");
    Session::new()
        .with_cookies(cookies.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_owned())))
        .with_device_uuid(DEVICE_UUID)
}

/// An Instagram Login session (the user token and the account's Instagram id).
///
/// # Panics
/// When the view has no token or id.
#[must_use]
pub fn graph_session(account: &Value) -> Session {
    let mut s = Session::new().with_access_token(account["access_token"].as_str().expect("token"));
    s.set_extra("user_id", account["ig_user_id"].as_str().expect("ig_user_id"));
    s
}

/// The personal demo account (`me`) over the private web API.
///
/// # Panics
/// When the connector does not load or the client cannot be built.
#[must_use]
pub fn web(base: &str, seed: &DemoSeed, pacing: PacingPolicy) -> Client {
    let connector =
        Arc::new(Connector::load(igdm_connectors::INSTAGRAM_WEB, "instagram-web.md").unwrap());
    let acct = account("me", "instagram-web", Backend::Web, base, &seed.personal["pk"]);
    Client::builder(acct, connector, web_session(&seed.personal)).pacing(pacing).build().unwrap()
}

/// The business demo account (`shop`) over the official Instagram API.
///
/// # Panics
/// When the connector does not load or the client cannot be built.
#[must_use]
pub fn graph(base: &str, seed: &DemoSeed, pacing: PacingPolicy) -> Client {
    let connector =
        Arc::new(Connector::load(igdm_connectors::INSTAGRAM_GRAPH, "instagram-graph.md").unwrap());
    let biz = &seed.business;
    let acct = account("shop", "instagram-graph", Backend::Graph, base, &biz["ig_user_id"]);
    Client::builder(acct, connector, graph_session(biz)).pacing(pacing).build().unwrap()
}

/// The business demo account (`page`) over the Facebook Login flavour (its
/// Page token and Page id).
///
/// # Panics
/// When the connector does not load or the client cannot be built.
#[must_use]
pub fn page(base: &str, seed: &DemoSeed, pacing: PacingPolicy) -> Client {
    let connector =
        Arc::new(Connector::load(igdm_connectors::INSTAGRAM_PAGE, "instagram-page.md").unwrap());
    let biz = &seed.business;
    let mut session = Session::new().with_access_token(biz["page_token"].as_str().expect("token"));
    session.set_extra("page_id", biz["page_id"].as_str().expect("page_id"));
    session.set_extra("user_id", biz["ig_user_id"].as_str().expect("ig_user_id"));
    let acct = account("page", "instagram-page", Backend::Graph, base, &biz["ig_user_id"]);
    Client::builder(acct, connector, session).pacing(pacing).build().unwrap()
}

/// A transport whose writes give up after a timeout while reads wait as long
/// as the server holds them. With the sandbox's latency fault a write is
/// applied but its answer lost (an unknown outcome), and reading the
/// conversation afterwards still works.
#[derive(Debug, Clone)]
pub struct ImpatientWrites {
    reads: igdm_spec::ReqwestTransport,
    writes: igdm_spec::ReqwestTransport,
}

impl ImpatientWrites {
    /// Writes time out after `write_timeout`.
    ///
    /// # Panics
    /// When no HTTP client can be built.
    #[must_use]
    pub fn new(write_timeout: std::time::Duration) -> Self {
        Self {
            reads: igdm_spec::ReqwestTransport::new().expect("HTTP client"),
            writes: igdm_spec::ReqwestTransport::with_timeout(write_timeout).expect("HTTP client"),
        }
    }
}

type TransportFuture<'a> = std::pin::Pin<
    Box<
        dyn std::future::Future<Output = Result<igdm_spec::HttpResponse, igdm_spec::TransportError>>
            + Send
            + 'a,
    >,
>;

impl igdm_spec::Transport for ImpatientWrites {
    fn send(&self, req: igdm_spec::HttpRequest) -> TransportFuture<'_> {
        if req.method == reqwest::Method::GET {
            self.reads.send(req)
        } else {
            self.writes.send(req)
        }
    }
}
