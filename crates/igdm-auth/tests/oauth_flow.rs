//! Instagram Login against the sandbox's OAuth endpoints over real HTTP:
//! consent, callback with state check, code exchange, long-lived exchange,
//! code reuse, denial, and the refresh rules on the sandbox's virtual clock.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::Sb;
use igdm_auth::oauth::{
    Clock, Freshness, OAuthApp, OAuthClient, OAuthEndpoints, OAuthError, OffsetClock, TokenManager,
    run_authorization,
};
use igdm_auth::{AuthError, Credential, CredentialStore, MemoryStore, TokenKind};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use url::Url;

const DAY: i64 = 86_400;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Setup {
    sb: Sb,
    client: OAuthClient,
}

async fn setup() -> Setup {
    let sb = Sb::start().await;
    sb.account("business", "shop.owner", false, false).await;
    let redirect = format!("http://127.0.0.1:{}/callback", free_port());
    sb.post(
        "/_sandbox/apps",
        json!({"app_id": "778899", "app_secret": "app-secret-QQ", "redirect_uris": [redirect]}),
    )
    .await;
    let app = OAuthApp {
        app_id: "778899".into(),
        app_secret: SecretString::from("app-secret-QQ"),
        redirect_uri: Url::parse(&redirect).unwrap(),
    };
    let client =
        OAuthClient::new(app, OAuthEndpoints::with_base_url(&sb.url()).unwrap(), Some(sb.url()))
            .unwrap();
    Setup { sb, client }
}

/// Plays the user on the consent page: posts the decision and follows the
/// redirect to the callback the way a browser would (the `#_` fragment is
/// not sent). `tamper` rewrites the callback URL first.
fn consent(sb_url: String, authorize: &Url, decision: &'static str, tamper: Option<&'static str>) {
    let q: Vec<(String, String)> = authorize.query_pairs().into_owned().collect();
    tokio::spawn(async move {
        let http =
            reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let mut form = q;
        form.push(("username".into(), "shop.owner".into()));
        form.push(("decision".into(), decision.into()));
        let r = http.post(format!("{sb_url}/oauth/authorize")).form(&form).send().await.unwrap();
        assert_eq!(r.status(), 302);
        let mut location = r.headers()["location"].to_str().unwrap().to_owned();
        if decision == "allow" {
            assert!(location.ends_with("#_"), "{location}");
        }
        if let Some(t) = tamper {
            let u = Url::parse(&location).unwrap();
            let pairs: Vec<(String, String)> = u
                .query_pairs()
                .into_owned()
                .map(|(k, v)| if k == "state" { (k, t.to_owned()) } else { (k, v) })
                .collect();
            let mut u2 = u;
            u2.set_fragment(None);
            u2.query_pairs_mut().clear().extend_pairs(pairs);
            location = u2.to_string();
        }
        let r = http.get(location).send().await.unwrap();
        assert!(r.status().is_success());
    });
}

#[tokio::test]
async fn full_flow_code_reuse_and_refresh_rules_on_the_virtual_clock() {
    let Setup { sb, client } = setup().await;
    let store: Arc<dyn CredentialStore> = Arc::new(MemoryStore::new());
    let clock = Arc::new(OffsetClock::default());

    // Authorize: consent, callback, short-lived, long-lived, stored.
    let mut seen = None;
    let token = run_authorization(
        &client,
        "shop",
        store.as_ref(),
        clock.as_ref(),
        Duration::from_secs(10),
        |u| {
            let q: std::collections::BTreeMap<String, String> =
                u.query_pairs().into_owned().collect();
            assert_eq!(q["scope"], "instagram_business_basic,instagram_business_manage_messages");
            seen = Some(u.clone());
            consent(sb.url(), u, "allow", None);
        },
    )
    .await
    .unwrap();
    assert!(seen.is_some());
    assert_eq!(token.kind, TokenKind::InstagramUser);
    assert!(token.access_token.expose_secret().starts_with("IGAA"));
    let left = token.expires_at.unwrap().0 - token.issued_at.0;
    assert!((left - chrono::Duration::days(60)).num_seconds().abs() < 5, "{left}");
    assert!(token.scopes.contains(&"instagram_business_manage_messages".to_owned()));
    let Some(Credential::Token(stored)) = store.get("shop").await.unwrap() else {
        panic!("stored")
    };
    assert_eq!(stored.access_token.expose_secret(), token.access_token.expose_secret());

    // The token works against the Graph API of the sandbox.
    let me = reqwest::Client::new()
        .get(format!("{}/me", sb.url()))
        .query(&[
            ("fields", "user_id,username"),
            ("access_token", token.access_token.expose_secret()),
        ])
        .send()
        .await
        .unwrap();
    assert!(me.status().is_success(), "{}", me.text().await.unwrap_or_default());

    // Refresh rules. Day 0: fresh, and a forced refresh is refused (under 24 h).
    // No app secret needed to refresh: the manager uses the token's recorded base URL.
    let mgr = TokenManager::new(Arc::clone(&store), "shop", None, clock.clone());
    assert_eq!(mgr.ensure_fresh().await.unwrap(), Freshness::Fresh);
    let err = mgr.refresh_now().await.unwrap_err();
    assert!(matches!(err, AuthError::OAuth(OAuthError::TooEarlyToRefresh { .. })), "{err}");
    // The sandbox enforces the same rule on its side.
    let err = client.refresh("shop", &stored, clock.now()).await.unwrap_err();
    assert!(matches!(err, OAuthError::Provider { status: 400, .. }), "{err}");

    // Day 30: more than 7 days left, nothing to do.
    sb.advance(30 * DAY).await;
    clock.advance(30 * DAY);
    assert_eq!(mgr.ensure_fresh().await.unwrap(), Freshness::Fresh);
    // Day 54: under 7 days left and old enough: refreshed once, stored, 60 more days.
    sb.advance(24 * DAY).await;
    clock.advance(24 * DAY);
    let (a, b) = tokio::join!(mgr.ensure_fresh(), mgr.ensure_fresh());
    let mut outcomes = [a.unwrap(), b.unwrap()];
    outcomes.sort_by_key(|f| *f == Freshness::Refreshed);
    assert_eq!(outcomes, [Freshness::Fresh, Freshness::Refreshed], "single-flight refresh");
    let Some(Credential::Token(fresh)) = store.get("shop").await.unwrap() else { panic!() };
    assert_ne!(fresh.access_token.expose_secret(), token.access_token.expose_secret());
    let left = fresh.expires_at.unwrap().0 - clock.now().0;
    assert!(left > chrono::Duration::days(59), "{left}");
    assert_eq!(
        mgr.access_token().await.unwrap().expose_secret(),
        fresh.access_token.expose_secret()
    );

    // Day 115: expired without a refresh: a clear error, no refresh attempted.
    sb.advance(61 * DAY).await;
    clock.advance(61 * DAY);
    let err = mgr.access_token().await.unwrap_err().to_string();
    assert!(err.contains("expired") && err.contains("igdm oauth shop"), "{err}");
    // The provider agrees (Graph error 190).
    let err = client.refresh("shop", &fresh, clock.now()).await.unwrap_err();
    assert!(matches!(err, OAuthError::TokenExpired { .. }), "{err}");
}

#[tokio::test]
async fn state_mismatch_denial_and_code_reuse_are_refused() {
    let Setup { sb, client } = setup().await;
    let store = MemoryStore::new();
    let clock = OffsetClock::default();

    let err = run_authorization(&client, "shop", &store, &clock, Duration::from_secs(10), |u| {
        consent(sb.url(), u, "allow", Some("forged-state"));
    })
    .await
    .unwrap_err();
    assert!(matches!(err, AuthError::OAuth(OAuthError::StateMismatch)), "{err}");
    assert!(err.to_string().contains("cross-site request forgery"));

    let err = run_authorization(&client, "shop", &store, &clock, Duration::from_secs(10), |u| {
        consent(sb.url(), u, "deny", None);
    })
    .await
    .unwrap_err();
    assert!(err.to_string().contains("user_denied"), "{err}");
    assert!(store.get("shop").await.unwrap().is_none(), "nothing stored on failure");

    // A code can be exchanged once.
    let server = igdm_auth::oauth::CallbackServer::bind(&client.app().redirect_uri).await.unwrap();
    let state = igdm_auth::oauth::new_state();
    consent(
        sb.url(),
        &client.authorize_url(igdm_auth::oauth::MESSAGING_SCOPES, &state),
        "allow",
        None,
    );
    let code = server.wait(&state, Duration::from_secs(10)).await.unwrap();
    client.exchange_code(&format!("{code}#_")).await.unwrap();
    let err = client.exchange_code(&code).await.unwrap_err();
    assert!(matches!(err, OAuthError::CodeRejected { .. }), "{err}");
    assert!(err.to_string().contains("already used"), "{err}");

    // No callback: a timeout, not a hang.
    let err =
        run_authorization(&client, "shop", &store, &clock, Duration::from_millis(300), |_| {})
            .await
            .unwrap_err();
    assert!(matches!(err, AuthError::OAuth(OAuthError::CallbackTimeout(_))), "{err}");
}
