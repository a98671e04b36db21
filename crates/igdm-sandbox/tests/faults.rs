//! Injected failure modes, each at Instagram's real status and body.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Web, control, start};
use serde_json::{Value, json};

async fn set_fault(base: &str, account: &str, mode: &str) {
    let (s, v) =
        control(base, "POST", "/_sandbox/faults", Some(json!({"account": account, "mode": mode})))
            .await;
    assert_eq!(s, 200, "{v}");
}

async fn thread_of(web: &Web) -> String {
    let c = common::customer(&web.base, "alex").await;
    let users = format!("[[{}]]", c["pk"].as_str().unwrap());
    let (_, ack) = web
        .post("direct_v2/threads/broadcast/text/", &[("recipient_users", &users), ("text", "hi")])
        .await;
    ack["payload"]["thread_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn login_required_and_challenge() {
    let sb = start().await;
    let base = sb.base_url();
    let web = Web::new(&base, "personal", "maya").await;
    set_fault(&base, &web.id(), "login_required").await;
    let (s, v) = web.get("direct_v2/inbox/", &[]).await;
    assert_eq!(s, 403);
    assert_eq!(v["message"], "login_required");
    assert_eq!(v["status"], "fail");
    assert!(v["logout_reason"].is_number());

    set_fault(&base, &web.id(), "challenge").await;
    let (s, v) = web.get("direct_v2/inbox/", &[]).await;
    assert_eq!(s, 400);
    assert_eq!(v["message"], "challenge_required");
    assert_eq!(v["error_type"], "checkpoint_challenge_required");
    let ch = &v["challenge"];
    assert!(ch["api_path"].as_str().unwrap().starts_with("/challenge/"));
    assert!(ch["url"].as_str().unwrap().starts_with(&base));
    assert_eq!(ch["lock"], true);
    assert_eq!(ch["logout"], false);

    // Completing the challenge at its URL lifts the block.
    let (_, acc) = control(&base, "GET", &format!("/_sandbox/accounts/{}", web.id()), None).await;
    let page = format!("{base}{}", ch["api_path"].as_str().unwrap());
    let c = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let html = c.get(&page).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("name=\"security_code\""));
    let r = c.post(&page).form(&[("security_code", "000000x")]).send().await.unwrap();
    assert_eq!(r.status(), 200, "a wrong code keeps the page");
    let code = acc["challenge_code"].as_str().unwrap();
    let r = c.post(&page).form(&[("security_code", code)]).send().await.unwrap();
    assert_eq!(r.status(), 302);
    let (s, _) = web.get("direct_v2/inbox/", &[]).await;
    assert_eq!(s, 200, "challenge passed");
    let r = c.get(&page).send().await.unwrap();
    assert_eq!(r.status(), 404, "no pending challenge any more");

    set_fault(&base, &web.id(), "none").await;
    let (s, _) = web.get("direct_v2/inbox/", &[]).await;
    assert_eq!(s, 200);
    sb.shutdown().await;
}

#[tokio::test]
async fn feedback_blocks_writes_not_reads() {
    let sb = start().await;
    let base = sb.base_url();
    let web = Web::new(&base, "personal", "maya").await;
    let thread = thread_of(&web).await;
    set_fault(&base, &web.id(), "feedback").await;
    let (s, v) = web.get(&format!("direct_v2/threads/{thread}/"), &[]).await;
    assert_eq!(s, 200, "reads keep working: {v}");
    let (s, v) = web.get("direct_v2/inbox/", &[]).await;
    assert_eq!(s, 200, "{v}");
    let tids = format!("[{thread}]");
    let (s, v) = web
        .post("direct_v2/threads/broadcast/text/", &[("thread_ids", &tids), ("text", "blocked?")])
        .await;
    assert_eq!(s, 400);
    assert_eq!(v["message"], "feedback_required");
    assert_eq!(v["spam"], true);
    assert!(v["feedback_title"].is_string() && v["feedback_message"].is_string());
    let (s, _) = web.post(&format!("direct_v2/threads/{thread}/mute/"), &[]).await;
    assert_eq!(s, 400);
    // The refused send is in the log, marked not accepted.
    let (_, sent) =
        control(&base, "GET", &format!("/_sandbox/accounts/{}/sent", web.id()), None).await;
    let last = sent["sent"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["accepted"], false);
    assert_eq!(last["error"], "feedback_required");
    sb.shutdown().await;
}

#[tokio::test]
async fn rate_limit_html_and_not_found() {
    let sb = start().await;
    let base = sb.base_url();
    let web = Web::new(&base, "personal", "maya").await;
    set_fault(&base, &web.id(), "ratelimit").await;
    let r = web.get_raw("direct_v2/inbox/", &[]).await;
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers().get("retry-after").unwrap().to_str().unwrap().parse().unwrap();
    assert!(retry > 0);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["message"], "Please wait a few minutes before you try again.");
    let (_, stats) = control(&base, "GET", "/_sandbox/stats", None).await;
    assert_eq!(stats["accounts"][web.id()]["private_read"]["refused"], 1, "{stats}");

    set_fault(&base, &web.id(), "html").await;
    let r = web.get_raw("direct_v2/inbox/", &[]).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("content-type").unwrap().to_str().unwrap().starts_with("text/html"));
    let body = r.text().await.unwrap();
    assert!(body.contains("<form") && body.contains("name=\"password\""));

    set_fault(&base, &web.id(), "not_found").await;
    let r = web.get_raw("direct_v2/inbox/", &[]).await;
    assert_eq!(r.status(), 404);
    assert_eq!(r.text().await.unwrap(), "Not Found");

    let (s, _) = control(
        &base,
        "POST",
        "/_sandbox/faults",
        Some(json!({"account": web.id(), "mode": "explode"})),
    )
    .await;
    assert_eq!(s, 400);
    sb.shutdown().await;
}

#[tokio::test]
async fn flapping_has_older() {
    let sb = start().await;
    let base = sb.base_url();
    let web = Web::new(&base, "personal", "maya").await;
    let thread = thread_of(&web).await;
    set_fault(&base, &web.id(), "flapping").await;
    let mut flags = Vec::new();
    for _ in 0..4 {
        let (s, v) = web.get(&format!("direct_v2/threads/{thread}/"), &[("limit", "10")]).await;
        assert_eq!(s, 200);
        flags.push(v["thread"]["has_older"].as_bool().unwrap());
    }
    // One item only: the honest answer is false, but it flaps.
    assert!(flags.contains(&true) && flags.contains(&false), "{flags:?}");
    sb.shutdown().await;
}

#[tokio::test]
async fn drift_drops_optional_fields_and_adds_unknown_ones() {
    let sb = start().await;
    let base = sb.base_url();
    let web = Web::new(&base, "personal", "maya").await;
    let thread = thread_of(&web).await;
    set_fault(&base, &web.id(), "drift").await;
    let (s, v) = web.get(&format!("direct_v2/threads/{thread}/"), &[]).await;
    assert_eq!(s, 200);
    assert_eq!(v["status"], "ok");
    let th = &v["thread"];
    assert_eq!(th["thread_id"], thread.as_str());
    assert!(th.get("thread_title").is_none() && th.get("last_seen_at").is_none());
    assert!(th["users"][0].get("full_name").is_none());
    assert_eq!(th["users"][0]["username"], "alex");
    assert!(th["items"][0]["item_id"].is_string());
    assert!(v.get("igd_unannounced_field").is_some());
    assert!(th["items"][0].get("igd_unannounced_field").is_some());
    sb.shutdown().await;
}

async fn graph_me(base: &str, token: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .get(format!("{base}/me"))
        .query(&[("fields", "user_id,username"), ("access_token", token)])
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn token_expired_refuses_older_tokens_until_a_refresh() {
    let sb = start().await;
    let base = sb.base_url();
    let (_, shop) = control(
        &base,
        "POST",
        "/_sandbox/accounts",
        Some(json!({"kind": "business", "username": "shop_fault"})),
    )
    .await;
    let id = shop["id"].as_str().unwrap().to_owned();
    let (_, minted) = control(
        &base,
        "POST",
        "/_sandbox/tokens",
        Some(json!({"account_id": id, "kind": "long_lived"})),
    )
    .await;
    let old = minted["access_token"].as_str().unwrap().to_owned();
    assert_eq!(graph_me(&base, &old).await.0, 200);
    control(&base, "POST", "/_sandbox/clock/advance", Some(json!({"seconds": 86_400}))).await;

    set_fault(&base, &id, "token_expired").await;
    for token in [old.as_str(), shop["access_token"].as_str().unwrap()] {
        let (s, v) = graph_me(&base, token).await;
        assert_eq!(s, 400, "{v}");
        assert_eq!(v["error"]["code"], json!(190), "{v}");
        assert_eq!(v["error"]["error_subcode"], json!(463), "{v}");
        assert!(v["error"]["message"].as_str().unwrap().contains("Session has expired"), "{v}");
    }
    // The refresh endpoint still takes the refused token; its successor works.
    let r: Value = reqwest::Client::new()
        .get(format!("{base}/refresh_access_token"))
        .query(&[("grant_type", "ig_refresh_token"), ("access_token", old.as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let fresh = r["access_token"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned();
    let (s, v) = graph_me(&base, &fresh).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["username"], json!("shop_fault"));

    set_fault(&base, &id, "none").await;
    assert_eq!(
        graph_me(&base, &old).await.0,
        200,
        "the fault lifted, the old token is valid again"
    );
}
