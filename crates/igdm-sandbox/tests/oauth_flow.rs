//! Instagram Login OAuth over HTTP: consent page, code exchange, long-lived
//! exchange, refresh rules and token expiry on the virtual clock.
#![allow(clippy::unwrap_used)]

mod graph_support;

use graph_support::{Env, assert_graph_error};
use serde_json::{Value, json};

const APP: &str = "1234567890123456";
const SECRET: &str = "oauth-app-secret";
const REDIRECT: &str = "https://app.example.com/callback";
const SCOPE: &str = "instagram_business_basic,instagram_business_manage_messages";

async fn env_with_app() -> Env {
    let env = Env::new().await;
    let (s, v) = env
        .control("POST", "/_sandbox/apps", json!({"app_id": APP, "app_secret": SECRET, "redirect_uris": [REDIRECT], "name": "Acme Inbox"}))
        .await;
    assert_eq!(s, 201, "{v}");
    env
}

fn query_of(location: &str) -> Vec<(String, String)> {
    let url = url::Url::parse(location).unwrap();
    url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

/// Approves the consent form like a browser would; returns the redirect Location.
async fn approve(env: &Env, decision: &str, state: &str) -> String {
    let r = env
        .client
        .post(format!("{}/oauth/authorize", env.base))
        .form(&[
            ("client_id", APP),
            ("redirect_uri", REDIRECT),
            ("response_type", "code"),
            ("scope", SCOPE),
            ("state", state),
            ("username", "acme_shop"),
            ("decision", decision),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 302);
    r.headers()["location"].to_str().unwrap().to_owned()
}

async fn exchange(env: &Env, code: &str) -> (u16, Value) {
    let r = env
        .client
        .post(format!("{}/oauth/access_token", env.base))
        .form(&[
            ("client_id", APP),
            ("client_secret", SECRET),
            ("grant_type", "authorization_code"),
            ("redirect_uri", REDIRECT),
            ("code", code),
        ])
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn get_json(env: &Env, path: &str, query: &[(&str, &str)]) -> graph_support::Resp {
    let r = env.client.get(format!("{}{path}", env.base)).query(query).send().await.unwrap();
    Env::resp(r).await
}

/// Runs the whole authorize → code → short-lived token dance.
async fn short_lived_token(env: &Env) -> String {
    let location = approve(env, "allow", "xyz").await;
    let code = query_of(&location).into_iter().find(|(k, _)| k == "code").unwrap().1;
    let (s, v) = exchange(env, code.trim_end_matches("#_")).await;
    assert_eq!(s, 200, "{v}");
    v["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn consent_page_and_code_exchange() {
    let env = env_with_app().await;
    let page = env
        .client
        .get(format!("{}/oauth/authorize", env.base))
        .query(&[
            ("client_id", APP),
            ("redirect_uri", REDIRECT),
            ("response_type", "code"),
            ("scope", SCOPE),
            ("state", "s1"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("Acme Inbox")
            && html.contains("id=\"allow\"")
            && html.contains("id=\"deny\""),
        "{html}"
    );
    assert!(html.contains("<option value=\"acme_shop\""), "{html}");

    let location = approve(&env, "allow", "s1").await;
    assert!(location.starts_with(REDIRECT) && location.ends_with("#_"), "{location}");
    let q = query_of(&location);
    assert_eq!(q.iter().find(|(k, _)| k == "state").unwrap().1, "s1");
    let code = q.iter().find(|(k, _)| k == "code").unwrap().1.clone();
    // `url` keeps the fragment apart; the raw code carries no `#_`.
    assert!(!code.contains('#'));

    let (s, v) = exchange(&env, &code).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["user_id"], env.id().as_str());
    assert_eq!(v["permissions"], SCOPE);
    let token = v["access_token"].as_str().unwrap();
    assert!(token.starts_with("IGAA"));

    // The code is single use.
    let (s, v) = exchange(&env, &code).await;
    assert_eq!(s, 400);
    assert_eq!(
        v,
        json!({"error_type": "OAuthException", "code": 400, "error_message": "Matching code was not found or was already used"})
    );

    // The token works on the Graph API.
    let me = env.graph_as(token, "GET", "/v21.0/me?fields=user_id,username", None).await;
    assert_eq!(me.status, 200, "{}", me.body);
    // The documented envelope: {"data": [{"user_id", "username"}]}.
    assert_eq!(me.body["data"][0]["username"], "acme_shop", "{}", me.body);
    assert_eq!(me.body["data"][0]["user_id"], env.id().as_str());
}

#[tokio::test]
async fn deny_bad_clients_and_stale_codes() {
    let env = env_with_app().await;
    let denied = approve(&env, "deny", "s2").await;
    let q = query_of(&denied);
    let get = |k: &str| q.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
    assert_eq!(get("error").as_deref(), Some("access_denied"));
    assert_eq!(get("error_reason").as_deref(), Some("user_denied"));
    assert_eq!(get("state").as_deref(), Some("s2"));
    assert!(get("code").is_none());

    // Unregistered redirect URI and deprecated scope names get an error page, no redirect.
    for (redirect, scope) in [("https://evil.example.com/cb", SCOPE), (REDIRECT, "business_basic")]
    {
        let r = env
            .client
            .get(format!("{}/oauth/authorize", env.base))
            .query(&[
                ("client_id", APP),
                ("redirect_uri", redirect),
                ("response_type", "code"),
                ("scope", scope),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 400);
        assert!(r.headers().get("location").is_none());
    }

    // A code older than an hour is refused.
    let location = approve(&env, "allow", "s3").await;
    let code = query_of(&location).into_iter().find(|(k, _)| k == "code").unwrap().1;
    env.advance(3601).await;
    let (s, v) = exchange(&env, &code).await;
    assert_eq!(s, 400);
    assert_eq!(v["error_message"], "This authorization code has expired");

    // A wrong secret is refused.
    let location = approve(&env, "allow", "s4").await;
    let code = query_of(&location).into_iter().find(|(k, _)| k == "code").unwrap().1;
    let r = env
        .client
        .post(format!("{}/oauth/access_token", env.base))
        .form(&[
            ("client_id", APP),
            ("client_secret", "nope"),
            ("grant_type", "authorization_code"),
            ("redirect_uri", REDIRECT),
            ("code", code.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error_message"], "Error validating client secret.");
}

#[tokio::test]
async fn short_lived_tokens_expire_after_an_hour() {
    let env = env_with_app().await;
    let token = short_lived_token(&env).await;
    env.advance(3599).await;
    assert_eq!(env.graph_as(&token, "GET", "/me", None).await.status, 200);
    env.advance(2).await;
    let expired = env.graph_as(&token, "GET", "/me", None).await;
    let msg = assert_graph_error(&expired, 190, Some(463));
    assert!(msg.starts_with("Error validating access token: Session has expired on "), "{msg}");
    assert_eq!(expired.body["error"]["type"], "OAuthException");
}

#[tokio::test]
async fn long_lived_exchange_and_refresh_rules() {
    let env = env_with_app().await;
    let short = short_lived_token(&env).await;

    let bad_secret = get_json(
        &env,
        "/access_token",
        &[("grant_type", "ig_exchange_token"), ("client_secret", "nope"), ("access_token", &short)],
    )
    .await;
    assert_eq!(bad_secret.status, 400);
    assert_eq!(bad_secret.body["error"]["message"], "Error validating client secret.");

    let long = get_json(
        &env,
        "/access_token",
        &[("grant_type", "ig_exchange_token"), ("client_secret", SECRET), ("access_token", &short)],
    )
    .await;
    assert_eq!(long.status, 200, "{}", long.body);
    assert_eq!(long.body["token_type"], "bearer");
    assert_eq!(long.body["expires_in"], 60 * 86_400);
    let long_token = long.body["access_token"].as_str().unwrap().to_owned();

    // Too young to refresh.
    env.advance(23 * 3600).await;
    let early = get_json(
        &env,
        "/refresh_access_token",
        &[("grant_type", "ig_refresh_token"), ("access_token", &long_token)],
    )
    .await;
    let msg = assert_graph_error(&early, 100, None);
    assert!(msg.contains("24 hours"), "{msg}");

    env.advance(3600).await;
    let refreshed = get_json(
        &env,
        "/refresh_access_token",
        &[("grant_type", "ig_refresh_token"), ("access_token", &long_token)],
    )
    .await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    assert_eq!(refreshed.body["expires_in"], 60 * 86_400);
    let new_token = refreshed.body["access_token"].as_str().unwrap().to_owned();
    assert_ne!(new_token, long_token);

    // Short-lived tokens cannot be refreshed.
    let short2 = short_lived_token(&env).await;
    let r = get_json(
        &env,
        "/refresh_access_token",
        &[("grant_type", "ig_refresh_token"), ("access_token", &short2)],
    )
    .await;
    assert_graph_error(&r, 100, None);

    // 60 days after the first exchange the old token is dead, the refreshed one alive.
    env.advance(59 * 86_400).await;
    let old = env.graph_as(&long_token, "GET", "/me", None).await;
    assert_graph_error(&old, 190, Some(463));
    let expired_refresh = get_json(
        &env,
        "/refresh_access_token",
        &[("grant_type", "ig_refresh_token"), ("access_token", &long_token)],
    )
    .await;
    assert_graph_error(&expired_refresh, 190, Some(463));
    assert_eq!(env.graph_as(&new_token, "GET", "/me", None).await.status, 200);
}

#[tokio::test]
async fn tokens_without_the_messaging_scope_cannot_message() {
    let env = env_with_app().await;
    let (s, v) = env
        .control("POST", "/_sandbox/tokens", json!({"account_id": env.id(), "app_id": APP, "kind": "long_lived", "scopes": ["instagram_business_basic"]}))
        .await;
    assert_eq!(s, 201, "{v}");
    let token = v["access_token"].as_str().unwrap();
    let r = env.graph_as(token, "GET", "/me/conversations?platform=instagram", None).await;
    assert_graph_error(&r, 10, None);
    assert_eq!(env.graph_as(token, "GET", "/me?fields=username", None).await.status, 200);
}
