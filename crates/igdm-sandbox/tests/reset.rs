//! `POST /_sandbox/reset` over real HTTP: besides the world, it empties the
//! Graph, OAuth (Instagram and Facebook Login) and webhook state, so a reset
//! sandbox is a new sandbox.
#![allow(clippy::unwrap_used)]

mod graph_support;

use std::time::Duration;

use graph_support::receiver::Receiver;
use graph_support::{Env, assert_graph_error};
use serde_json::{Value, json};

const SECRET: &str = "reset-test-secret";

#[tokio::test]
async fn reset_empties_graph_oauth_and_webhook_state() {
    // Graph: Env::new raises the rate limits far above Meta's.
    let env = Env::new().await;
    let (_, limits) = env.control("GET", "/_sandbox/graph/rate_limits", Value::Null).await;
    assert_eq!(limits["send_text_per_sec"], 100_000.0, "{limits}");

    // OAuth: an app.
    let (s, v) = env
        .control(
            "POST",
            "/_sandbox/apps",
            json!({"app_id": "1234567890123456", "app_secret": "s", "redirect_uris": ["https://app.example.com/cb"], "name": "Acme"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let (_, apps) = env.control("GET", "/_sandbox/apps", Value::Null).await;
    assert_eq!(apps["data"].as_array().unwrap().len(), 1, "{apps}");

    // Facebook Login: a user token that lists the account's Page.
    let (s, v) =
        env.control("POST", "/_sandbox/fb/user_tokens", json!({"account_id": env.id()})).await;
    assert_eq!(s, 201, "{v}");
    let fb_token = v["access_token"].as_str().unwrap().to_owned();
    let pages = env.graph_as(&fb_token, "GET", "/me/accounts", None).await;
    assert_eq!(pages.status, 200, "{}", pages.body);

    // Webhooks: a subscription, chaos settings and a delivery.
    let rx = Receiver::start("let-me-in").await;
    let (s, v) = env
        .control(
            "POST",
            "/_sandbox/webhooks",
            json!({"callback_url": rx.url, "verify_token": "let-me-in", "app_secret": SECRET}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = env.control("POST", "/_sandbox/webhooks/chaos", json!({"reorder": true})).await;
    assert_eq!(s, 200, "{v}");
    let c = env.customer("before_reset").await;
    env.says(&c, "hello").await;
    rx.wait_for(1).await;
    let (_, deliveries) = env.control("GET", "/_sandbox/webhooks/deliveries", Value::Null).await;
    assert!(!deliveries["data"].as_array().unwrap().is_empty(), "{deliveries}");

    let (s, _) = env.control("POST", "/_sandbox/reset", Value::Null).await;
    assert_eq!(s, 200);

    let (_, limits) = env.control("GET", "/_sandbox/graph/rate_limits", Value::Null).await;
    assert_eq!(limits["send_text_per_sec"], 300.0, "Meta's limits again: {limits}");
    assert_eq!(limits["conversations_per_sec"], 2.0, "{limits}");
    let (_, apps) = env.control("GET", "/_sandbox/apps", Value::Null).await;
    assert_eq!(apps["data"], json!([]), "no apps after a reset");
    let pages = env.graph_as(&fb_token, "GET", "/me/accounts", None).await;
    assert_graph_error(&pages, 190, Some(467));
    let (_, subs) = env.control("GET", "/_sandbox/webhooks", Value::Null).await;
    assert_eq!(subs["data"], json!([]), "no subscriptions after a reset");
    let (_, deliveries) = env.control("GET", "/_sandbox/webhooks/deliveries", Value::Null).await;
    assert_eq!(deliveries["data"], json!([]), "no delivery records after a reset");
    let (_, chaos) = env.control("GET", "/_sandbox/webhooks/chaos", Value::Null).await;
    assert_eq!(chaos["reorder"], false, "{chaos}");

    // The old subscription's worker is gone too: new events reach no one.
    let posts_before = rx.posts().len();
    let (s, account) = env
        .control("POST", "/_sandbox/accounts", json!({"kind": "business", "username": "acme_shop"}))
        .await;
    assert_eq!(s, 200, "{account}");
    let c = env.customer("after_reset").await;
    let path = format!("/_sandbox/customers/{}/send", c["id"].as_str().unwrap());
    let (s, v) = env.control("POST", &path, json!({"to": account["id"], "text": "anyone?"})).await;
    assert_eq!(s, 200, "{v}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx.posts().len(), posts_before, "nothing is delivered after a reset");
    let (_, deliveries) = env.control("GET", "/_sandbox/webhooks/deliveries", Value::Null).await;
    assert_eq!(deliveries["data"], json!([]));
}
