//! Facebook Login Page tokens against the sandbox over real HTTP: the
//! fb_exchange_token exchange, `/me/accounts`, the stored Page token working
//! on the Graph API and not expiring, and Graph-shaped failures.

mod common;

use common::Sb;
use igdm_auth::facebook::{FacebookEndpoints, FacebookLogin, connect_page};
use igdm_auth::oauth::{OAuthError, SystemClock};
use igdm_auth::{AuthError, Credential, CredentialStore, MemoryStore, TokenKind};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

const DAY: i64 = 86_400;

async fn setup() -> (Sb, Value, FacebookLogin) {
    let sb = Sb::start().await;
    let shop = sb.account("business", "page.shop", false, false).await;
    sb.post(
        "/_sandbox/apps",
        json!({"app_id": "4242", "app_secret": "fb-app-secret", "redirect_uris": []}),
    )
    .await;
    let fb = FacebookLogin::new(
        "4242",
        SecretString::from("fb-app-secret"),
        FacebookEndpoints::with_base_url(&sb.url()).unwrap(),
        Some(sb.url()),
    )
    .unwrap();
    (sb, shop, fb)
}

async fn user_token(sb: &Sb, accounts: &[&Value]) -> SecretString {
    let ids: Vec<&Value> = accounts.iter().map(|a| &a["id"]).collect();
    let v =
        sb.post("/_sandbox/fb/user_tokens", json!({"account_ids": ids, "app_id": "4242"})).await;
    SecretString::from(v["access_token"].as_str().unwrap().to_owned())
}

async fn graph_me(sb: &Sb, token: &str) -> (u16, Value) {
    let r = sb
        .http
        .get(format!("{}/v21.0/me", sb.url()))
        .query(&[("fields", "id,name")])
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test]
async fn user_token_becomes_a_stored_page_token_that_does_not_expire() {
    let (sb, shop, fb) = setup().await;
    let short = user_token(&sb, &[&shop]).await;
    let store = MemoryStore::new();
    let token = connect_page(&fb, "shop", &store, &SystemClock, &short, None).await.unwrap();
    assert_eq!(token.kind, TokenKind::Page);
    assert_eq!(token.page_id.as_deref(), shop["page_id"].as_str());
    assert_eq!(token.user_id.as_deref(), shop["id"].as_str());
    assert!(token.expires_at.is_none());
    let Some(Credential::Token(stored)) = store.get("shop").await.unwrap() else { panic!() };
    assert_ne!(stored.access_token.expose_secret(), short.expose_secret());

    // The Page token works on the Graph API, and still works 90 days later.
    let (status, me) = graph_me(&sb, stored.access_token.expose_secret()).await;
    assert_eq!(status, 200, "{me}");
    sb.advance(90 * DAY).await;
    let (status, me) = graph_me(&sb, stored.access_token.expose_secret()).await;
    assert_eq!(status, 200, "a Page token from a long-lived user token does not expire: {me}");
}

#[tokio::test]
async fn pages_are_chosen_and_refusals_are_explained() {
    let (sb, shop, fb) = setup().await;
    let other = sb.account("business", "page.other", false, false).await;
    let store = MemoryStore::new();

    // Two Pages qualify: the choice is asked for, then honoured.
    let short = user_token(&sb, &[&shop, &other]).await;
    let err = connect_page(&fb, "x", &store, &SystemClock, &short, None).await.unwrap_err();
    assert!(err.to_string().contains("--page-id"), "{err}");
    let page = other["page_id"].as_str().unwrap();
    let t = connect_page(&fb, "x", &store, &SystemClock, &short, Some(page)).await.unwrap();
    assert_eq!(t.page_id.as_deref(), Some(page));

    // A made-up token: Graph's 190, and nothing stored.
    let bad = SecretString::from("EAAnotatoken");
    let err = connect_page(&fb, "bad", &store, &SystemClock, &bad, None).await.unwrap_err();
    assert!(matches!(err, AuthError::OAuth(OAuthError::UserTokenRejected { .. })), "{err}");
    assert!(store.get("bad").await.unwrap().is_none());

    // A short-lived user token is dead after its hour.
    let short = user_token(&sb, &[&shop]).await;
    sb.advance(2 * 3600).await;
    let err = connect_page(&fb, "late", &store, &SystemClock, &short, None).await.unwrap_err();
    assert!(err.to_string().contains("Session has expired"), "{err}");

    // A wrong app secret.
    let short = user_token(&sb, &[&shop]).await;
    let wrong = FacebookLogin::new(
        "4242",
        SecretString::from("not-the-secret"),
        FacebookEndpoints::with_base_url(&sb.url()).unwrap(),
        None,
    )
    .unwrap();
    let err = connect_page(&wrong, "w", &store, &SystemClock, &short, None).await.unwrap_err();
    assert!(err.to_string().contains("Error validating client secret."), "{err}");
}

#[tokio::test]
async fn the_wire_shapes_match_graph() {
    let (sb, shop, _) = setup().await;
    let short = user_token(&sb, &[&shop]).await;
    let get = |path: &str, q: Vec<(&'static str, String)>| {
        let req = sb.http.get(format!("{}{path}", sb.url())).query(&q);
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let exchange = |token: String| {
        vec![
            ("grant_type", "fb_exchange_token".to_owned()),
            ("client_id", "4242".to_owned()),
            ("client_secret", "fb-app-secret".to_owned()),
            ("fb_exchange_token", token),
        ]
    };
    let (status, bad) = get("/v21.0/oauth/access_token", exchange("EAAbogus".into())).await;
    assert_eq!(status, 400);
    assert_eq!(bad["error"]["code"], 190);
    assert_eq!(bad["error"]["type"], "OAuthException");
    assert!(bad["error"]["fbtrace_id"].is_string(), "{bad}");
    let (status, missing) =
        get("/oauth/access_token", vec![("grant_type", "fb_exchange_token".into())]).await;
    assert_eq!((status, missing["error"]["code"].as_i64()), (400, Some(100)), "{missing}");

    let (status, long) =
        get("/v21.0/oauth/access_token", exchange(short.expose_secret().to_owned())).await;
    assert_eq!(status, 200, "{long}");
    assert_eq!(long["token_type"], "bearer");
    assert!(long["expires_in"].as_i64().unwrap() > 50 * DAY);

    // A Page token from the short-lived user token expires with it.
    let q = |t: &str| {
        vec![
            ("fields", "name,access_token,tasks,instagram_business_account".to_owned()),
            ("access_token", t.to_owned()),
        ]
    };
    let (status, pages) = get("/v21.0/me/accounts", q(short.expose_secret())).await;
    assert_eq!(status, 200, "{pages}");
    let page = &pages["data"][0];
    assert_eq!(page["id"], shop["page_id"]);
    assert_eq!(page["instagram_business_account"]["id"], shop["id"]);
    assert!(page["tasks"].as_array().unwrap().contains(&json!("MESSAGING")));
    assert!(pages["paging"]["cursors"]["after"].is_string());
    let page_token = page["access_token"].as_str().unwrap().to_owned();
    // `accounts` is not an edge of a Page.
    let (status, err) = get("/v21.0/me/accounts", q(&page_token)).await;
    assert_eq!((status, err["error"]["code"].as_i64()), (400, Some(100)), "{err}");
    sb.advance(2 * 3600).await;
    let (status, dead) = graph_me(&sb, &page_token).await;
    assert_eq!(status, 400, "{dead}");
    assert_eq!(
        (dead["error"]["code"].as_i64(), dead["error"]["error_subcode"].as_i64()),
        (Some(190), Some(463))
    );
}
