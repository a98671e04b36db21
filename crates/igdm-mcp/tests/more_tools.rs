//! The tools for every user-facing connector action (issue #25): each one
//! against the sandbox on an account whose connector has it, its effect
//! read back from the sandbox, and the write policy applied to them.

mod common;

use std::collections::BTreeSet;

use serde_json::{Value, json};

use common::{Env, call, env, fails, graph_client, mcp, ok, web_client};
use igdm_mcp::{DraftStatus, Drafts, McpConfig, Policy};

/// The business demo account over the Facebook Login flavour.
fn page_client(env: &Env) -> igdm::Client {
    igdm_test::clients::page(&env.base, &env.seed, igdm::PacingPolicy::none())
}

const NEW_READS: &[&str] = &["get_persistent_menu", "get_thread_owner", "list_secondary_receivers"];
const NEW_WRITES: &[&str] = &[
    "send_like",
    "send_link",
    "media_share",
    "send_quick_replies",
    "send_generic_template",
    "send_button_template",
    "reply_to_comment",
    "set_persistent_menu",
    "delete_persistent_menu",
    "pass_thread_control",
    "take_thread_control",
    "request_thread_control",
];

async fn names(
    c: &rmcp::service::RunningService<rmcp::service::RoleClient, ()>,
) -> BTreeSet<String> {
    c.list_all_tools().await.unwrap().iter().map(|t| t.name.to_string()).collect()
}

/// A new customer who wrote to the business, and their conversation as the
/// official API names it.
async fn customer_conversation(
    env: &Env,
    c: &rmcp::service::RunningService<rmcp::service::RoleClient, ()>,
    username: &str,
) -> (Value, String) {
    let customer = igdm_test::sandbox::post_ok(
        &env.base,
        "/_sandbox/customers",
        json!({"username": username, "full_name": username}),
    )
    .await;
    let path = format!("/_sandbox/customers/{}/send", customer["id"].as_str().unwrap());
    igdm_test::sandbox::post_ok(
        &env.base,
        &path,
        json!({"to": env.seed.business["id"], "text": "hello, are you open?"}),
    )
    .await;
    let igsid = customer["igsid"].as_str().unwrap().to_owned();
    let convs = ok(c, "list_conversations", json!({"limit": 50})).await;
    let conv = convs["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|cv| cv["participants"].to_string().contains(&igsid))
        .unwrap_or_else(|| panic!("no conversation with {username}: {convs}"))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    (customer, conv)
}

/// The messages the sandbox accepted from the account `id`.
async fn sent_by(env: &Env, id: &Value) -> Vec<Value> {
    let path = format!("/_sandbox/accounts/{}/sent", id.as_str().unwrap());
    let (status, v) = igdm_test::sandbox::control(&env.base, "GET", &path, None).await;
    assert_eq!(status, 200, "{v}");
    v["sent"].as_array().unwrap().iter().filter(|r| r["accepted"] == json!(true)).cloned().collect()
}

/// The messages the sandbox accepted from the business account.
async fn sent_by_business(env: &Env) -> Vec<Value> {
    sent_by(env, &env.seed.business["id"]).await
}

/// A send tool that must go out once per key: `sent`, then `replayed`
/// with nothing sent again. Returns the message and the sandbox's record of it.
async fn sends_once(
    env: &Env,
    account: &Value,
    c: &rmcp::service::RunningService<rmcp::service::RoleClient, ()>,
    tool: &str,
    mut args: Value,
    key: &str,
) -> (Value, Value) {
    args["idempotency_key"] = json!(key);
    let before = sent_by(env, account).await.len();
    let first = ok(c, tool, args.clone()).await;
    assert_eq!(first["data"]["outcome"], json!("sent"), "{tool}: {first}");
    assert_eq!(first["data"]["idempotency_key"], json!(key));
    let sent = sent_by(env, account).await;
    assert_eq!(sent.len(), before + 1, "{tool}: one message reached the sandbox");
    let again = ok(c, tool, args).await;
    assert_eq!(again["data"]["outcome"], json!("replayed"), "{tool}: {again}");
    assert_eq!(again["data"]["message"]["id"], first["data"]["message"]["id"]);
    assert_eq!(sent_by(env, account).await.len(), before + 1, "{tool}: not sent again");
    (first["data"]["message"].clone(), sent[before].clone())
}

#[tokio::test]
async fn official_api_sends_every_message_kind_through_the_ledger() {
    let env = env().await;
    let biz_v = &env.seed.business["id"];
    let biz = biz_v.as_str().unwrap().to_owned();
    igdm_test::sandbox::post_ok(
        &env.base,
        &format!("/_sandbox/graph/accounts/{biz}/posts"),
        json!({"id": "17900000000000001"}),
    )
    .await;
    for (flavour, client) in [("graph", graph_client(&env)), ("page", page_client(&env))] {
        let m = mcp(client, McpConfig::default()).await;
        let c = &m.client;
        let listed = names(c).await;
        for t in ["send_like", "media_share", "send_quick_replies", "send_generic_template"] {
            assert!(listed.contains(t), "{flavour}: {t} missing");
        }
        let (customer, conv) = customer_conversation(&env, c, &format!("buyer_{flavour}")).await;
        let igsid = customer["igsid"].as_str().unwrap();

        let (like, rec) = sends_once(
            &env,
            biz_v,
            c,
            "send_like",
            json!({"conversation_id": conv}),
            &format!("{flavour}-like"),
        )
        .await;
        assert_eq!(rec["recipient"], json!(igsid), "{flavour}: {rec}");
        assert_eq!(like["content_type"], json!("like_heart"), "{like}");

        let (share, rec) = sends_once(
            &env,
            biz_v,
            c,
            "media_share",
            json!({"conversation_id": conv, "media_id": "17900000000000001"}),
            &format!("{flavour}-share"),
        )
        .await;
        assert_eq!(share["content_type"], json!("media_share"), "{share}");
        assert_eq!(rec["recipient"], json!(igsid), "{rec}");
        // The sandbox refuses a post that is not the account's own: a clean error.
        let foreign = fails(
            c,
            "media_share",
            json!({"conversation_id": conv, "media_id": "17999999999999999"}),
            "invalid_request",
        )
        .await;
        assert!(foreign["error"]["message"].as_str().unwrap().contains("owned"), "{foreign}");

        let (_, rec) = sends_once(
            &env,
            biz_v,
            c,
            "send_quick_replies",
            json!({"conversation_id": conv, "text": "Which size?", "quick_replies": [
                {"title": "Small", "payload": "SIZE_S"}, {"title": "Large", "payload": "SIZE_L"}]}),
            &format!("{flavour}-qr"),
        )
        .await;
        assert_eq!(rec["text"], json!("Which size?"), "{rec}");
        fails(
            c,
            "send_quick_replies",
            json!({"conversation_id": conv, "text": "none", "quick_replies": []}),
            "invalid_request",
        )
        .await;

        let card = json!({"title": "Blue mug", "subtitle": "12 oz",
            "buttons": [{"type": "postback", "title": "Buy", "payload": "BUY_MUG"}]});
        let (generic, rec) = sends_once(
            &env,
            biz_v,
            c,
            "send_generic_template",
            json!({"conversation_id": conv, "elements": [card]}),
            &format!("{flavour}-generic"),
        )
        .await;
        assert_eq!(generic["content_type"], json!("template"), "{generic}");
        assert_eq!(rec["recipient"], json!(igsid), "{rec}");

        let (buttons, rec) = sends_once(
            &env,
            biz_v,
            c,
            "send_button_template",
            json!({"conversation_id": conv, "text": "Track your order",
                "buttons": [{"type": "web_url", "title": "Track", "url": "https://example.com/track"}]}),
            &format!("{flavour}-buttons"),
        )
        .await;
        assert_eq!(rec["recipient"], json!(igsid), "{rec}");
        assert_eq!(buttons["content_type"], json!("template"), "{buttons}");
        assert_eq!(buttons["text"], json!("Track your order"), "{buttons}");
        fails(
            c,
            "send_button_template",
            json!({"conversation_id": conv, "text": "x", "buttons": [{}, {}, {}, {}]}),
            "invalid_request",
        )
        .await;

        // A private reply to a comment: once per key, and Meta's one-per-comment rule.
        let path = format!("/_sandbox/customers/{}/send", customer["id"].as_str().unwrap());
        let comment = igdm_test::sandbox::post_ok(
            &env.base,
            &path,
            json!({"to": biz, "comment": {"text": "how much is shipping?"}}),
        )
        .await;
        let comment_id = comment["comment_id"].as_str().unwrap();
        let (_, rec) = sends_once(
            &env,
            biz_v,
            c,
            "reply_to_comment",
            json!({"comment_id": comment_id, "text": "Shipping is free!"}),
            &format!("{flavour}-reply"),
        )
        .await;
        assert_eq!(rec["text"], json!("Shipping is free!"), "{rec}");
        let second =
            call(c, "reply_to_comment", json!({"comment_id": comment_id, "text": "Also hi"}))
                .await
                .1;
        assert_eq!(second["ok"], json!(false), "{second}");
        assert!(
            second["error"]["message"].as_str().unwrap().contains("Only one private reply"),
            "{second}"
        );

        // The persistent menu: set, read back, delete.
        let items = json!([
            {"type": "postback", "title": "Talk to us", "payload": "HUMAN"},
            {"type": "web_url", "title": "Shop", "url": "https://example.com/shop"}]);
        ok(c, "set_persistent_menu", json!({"items": items})).await;
        let got = ok(c, "get_persistent_menu", json!({})).await;
        assert!(got["data"].to_string().contains("Talk to us"), "{flavour}: {got}");
        assert!(got["data"].to_string().contains("https://example.com/shop"), "{got}");
        fails(c, "set_persistent_menu", json!({"items": []}), "invalid_request").await;
        ok(c, "delete_persistent_menu", json!({})).await;
        let gone = ok(c, "get_persistent_menu", json!({})).await;
        assert!(!gone["data"].to_string().contains("Talk to us"), "{flavour}: {gone}");
        fails(c, "delete_persistent_menu", json!({"all": true}), "invalid_request").await;
        m.http.shutdown();
    }
}

#[tokio::test]
async fn personal_account_sends_links_hearts_and_shares() {
    let env = env().await;
    let m = mcp(web_client(&env), McpConfig::default()).await;
    let c = &m.client;
    let group = env.seed.group_thread_id.clone();
    let text = "Our menu: https://example.com/menu. See you!";
    let me = &env.seed.personal["id"];
    let (link, _) = sends_once(
        &env,
        me,
        c,
        "send_link",
        json!({"conversation_id": group, "text": text}),
        "w-link",
    )
    .await;
    assert_eq!(link["content_type"], json!("link"), "{link}");
    let got =
        ok(c, "get_message", json!({"conversation_id": group, "message_id": link["id"]})).await;
    assert_eq!(got["data"]["text"], json!(text), "{got}");
    assert!(
        got["data"].to_string().contains("https://example.com/menu"),
        "the link, without its period: {got}"
    );
    assert!(!got["data"].to_string().contains("menu.\""), "{got}");
    fails(
        c,
        "send_link",
        json!({"conversation_id": group, "text": "no link here"}),
        "invalid_request",
    )
    .await;

    let (heart, _) =
        sends_once(&env, me, c, "send_like", json!({"conversation_id": group}), "w-like").await;
    assert_eq!(heart["content_type"], json!("like_heart"), "{heart}");
    let latest = ok(c, "list_messages", json!({"conversation_id": group, "limit": 5})).await;
    let ids: Vec<&Value> = latest["data"].as_array().unwrap().iter().map(|m| &m["id"]).collect();
    assert!(ids.contains(&&heart["id"]) && ids.contains(&&link["id"]), "{latest}");
    m.http.shutdown();
}

#[tokio::test]
async fn page_flavour_hands_threads_over() {
    let env = env().await;
    let m = mcp(page_client(&env), McpConfig::default()).await;
    let c = &m.client;
    let inbox = igdm::handover::PAGE_INBOX_APP_ID;
    let receivers = ok(c, "list_secondary_receivers", json!({})).await;
    assert!(receivers["data"].to_string().contains(inbox), "{receivers}");
    let (_, conv) = customer_conversation(&env, c, "handover_hugo").await;

    let idle = ok(c, "get_thread_owner", json!({"conversation_id": conv})).await;
    assert!(idle["data"]["app_id"].is_null(), "a new thread is idle: {idle}");
    ok(c, "pass_thread_control", json!({"conversation_id": conv, "metadata": "needs a person"}))
        .await;
    let owner = ok(c, "get_thread_owner", json!({"conversation_id": conv})).await;
    assert_eq!(
        owner["data"]["app_id"],
        json!(inbox),
        "passed to the Page Inbox by default: {owner}"
    );
    // While the Page Inbox owns it, this app cannot send there.
    let refused = call(c, "send_like", json!({"conversation_id": conv})).await.1;
    assert_eq!(refused["ok"], json!(false), "{refused}");
    assert!(refused["error"]["message"].as_str().unwrap().contains("another app"), "{refused}");
    ok(c, "request_thread_control", json!({"conversation_id": conv})).await;
    ok(c, "take_thread_control", json!({"conversation_id": conv, "metadata": "bot again"})).await;
    let back = ok(c, "get_thread_owner", json!({"conversation_id": conv})).await;
    assert!(back["data"]["app_id"].is_string(), "{back}");
    assert_ne!(back["data"]["app_id"], json!(inbox), "taken back: {back}");
    ok(c, "send_like", json!({"conversation_id": conv})).await;
    fails(c, "pass_thread_control", json!({"conversation_id": ""}), "invalid_request").await;
    fails(c, "take_thread_control", json!({"conversation": conv}), "invalid_request").await;
    m.http.shutdown();
}

#[tokio::test]
async fn tools_follow_the_connector_and_carry_annotations() {
    let env = env().await;
    let page = mcp(page_client(&env), McpConfig::default()).await;
    let tools = page.client.list_all_tools().await.unwrap();
    let listed: BTreeSet<String> = tools.iter().map(|t| t.name.to_string()).collect();
    for t in NEW_READS.iter().chain(NEW_WRITES).filter(|t| **t != "send_link") {
        assert!(listed.contains(*t), "page: {t} missing");
    }
    let ann = |n: &str| tools.iter().find(|t| t.name == n).unwrap().annotations.clone().unwrap();
    for r in NEW_READS {
        assert_eq!(ann(r).read_only_hint, Some(true), "{r}");
        assert_eq!(ann(r).idempotent_hint, Some(true), "{r}");
    }
    for w in NEW_WRITES.iter().filter(|t| **t != "send_link") {
        assert_eq!(ann(w).read_only_hint, Some(false), "{w}");
    }
    for s in [
        "send_like",
        "media_share",
        "send_quick_replies",
        "send_generic_template",
        "send_button_template",
        "reply_to_comment",
    ] {
        assert_eq!(
            (ann(s).destructive_hint, ann(s).idempotent_hint),
            (Some(true), Some(false)),
            "{s}"
        );
        let schema = tools.iter().find(|t| t.name == s).unwrap().input_schema.clone();
        assert!(schema["properties"].get("idempotency_key").is_some(), "{s}");
    }
    for (w, destructive, idempotent) in [
        ("set_persistent_menu", true, true),
        ("delete_persistent_menu", true, true),
        ("pass_thread_control", false, true),
        ("take_thread_control", false, true),
        ("request_thread_control", false, false),
    ] {
        assert_eq!(
            (ann(w).destructive_hint, ann(w).idempotent_hint),
            (Some(destructive), Some(idempotent)),
            "{w}"
        );
    }
    page.http.shutdown();

    // Instagram Login has no handover and no links; the web API has no templates.
    let graph = mcp(graph_client(&env), McpConfig::default()).await;
    let listed = names(&graph.client).await;
    for t in ["send_link", "get_thread_owner", "pass_thread_control", "list_secondary_receivers"] {
        assert!(!listed.contains(t), "graph offers {t}");
    }
    assert!(listed.contains("send_like") && listed.contains("set_persistent_menu"));
    let before = common::stats(&env).await;
    let refused = fails(
        &graph.client,
        "send_link",
        json!({"conversation_id": "1", "text": "https://example.com"}),
        "invalid_request",
    )
    .await;
    assert!(refused["error"]["message"].as_str().unwrap().contains("instagram-web"), "{refused}");
    assert_eq!(common::stats(&env).await, before, "refused before any request");
    graph.http.shutdown();

    let web = mcp(web_client(&env), McpConfig::default()).await;
    let listed = names(&web.client).await;
    for t in [
        "send_quick_replies",
        "send_generic_template",
        "reply_to_comment",
        "get_persistent_menu",
        "get_thread_owner",
        "get_ice_breakers",
        "get_user_profile",
    ] {
        assert!(!listed.contains(t), "web offers {t}");
    }
    for t in ["send_link", "send_like", "media_share", "search", "send"] {
        assert!(listed.contains(t), "web lacks {t}");
    }
    web.http.shutdown();
}

#[tokio::test]
async fn policy_applies_to_the_new_tools() {
    let env = env().await;
    // Read-only: the new reads stay, no new write is offered or runs.
    let policy = Policy { read_only: true, ..Policy::default() };
    let ro = mcp(page_client(&env), McpConfig { policy, ..McpConfig::default() }).await;
    let listed = names(&ro.client).await;
    for w in NEW_WRITES {
        assert!(!listed.contains(*w), "{w} listed in read-only mode");
    }
    for r in NEW_READS {
        assert!(listed.contains(*r), "{r} missing in read-only mode");
    }
    let before = common::stats(&env).await;
    fails(&ro.client, "send_like", json!({"conversation_id": "1"}), "not_permitted").await;
    fails(
        &ro.client,
        "set_persistent_menu",
        json!({"items": [{"type": "postback", "title": "a", "payload": "b"}]}),
        "not_permitted",
    )
    .await;
    fails(&ro.client, "pass_thread_control", json!({"conversation_id": "1"}), "not_permitted")
        .await;
    assert_eq!(common::stats(&env).await, before, "refusals send nothing");
    ro.http.shutdown();

    // Recipients: conversation sends are checked by participant; comment
    // replies cannot be, so they are refused.
    let plain = mcp(graph_client(&env), McpConfig::default()).await;
    let (allowed_customer, allowed_conv) =
        customer_conversation(&env, &plain.client, "listed_lena").await;
    let (_, other_conv) = customer_conversation(&env, &plain.client, "unlisted_uma").await;
    plain.http.shutdown();
    let igsid = allowed_customer["igsid"].as_str().unwrap().to_owned();
    let policy = Policy { recipients: Some([igsid].into_iter().collect()), ..Policy::default() };
    let rc = mcp(graph_client(&env), McpConfig { policy, ..McpConfig::default() }).await;
    let c = &rc.client;
    let qr = json!([{"title": "Yes", "payload": "Y"}]);
    ok(
        c,
        "send_quick_replies",
        json!({"conversation_id": allowed_conv, "text": "ok?", "quick_replies": qr}),
    )
    .await;
    let before = sent_by_business(&env).await.len();
    fails(
        c,
        "send_quick_replies",
        json!({"conversation_id": other_conv, "text": "ok?", "quick_replies": qr}),
        "not_permitted",
    )
    .await;
    fails(c, "send_like", json!({"conversation_id": other_conv}), "not_permitted").await;
    fails(
        c,
        "media_share",
        json!({"conversation_id": other_conv, "media_id": "1"}),
        "not_permitted",
    )
    .await;
    let refused = fails(
        c,
        "reply_to_comment",
        json!({"comment_id": "17870913679156914", "text": "hi"}),
        "not_permitted",
    )
    .await;
    assert!(refused["error"]["message"].as_str().unwrap().contains("comment"), "{refused}");
    assert_eq!(sent_by_business(&env).await.len(), before, "a refused recipient gets nothing");
    rc.http.shutdown();

    // Approval: a send is held as a draft with its key; approving sends it once.
    let home = tempfile::tempdir().unwrap();
    let drafts = Drafts::new(home.path().join("drafts"));
    let policy = Policy { approve: true, ..Policy::default() };
    let ap = mcp(
        graph_client(&env),
        McpConfig { policy, drafts: Some(drafts.clone()), ..McpConfig::default() },
    )
    .await;
    let before = sent_by_business(&env).await.len();
    let held = ok(&ap.client, "send_like", json!({"conversation_id": allowed_conv})).await;
    assert_eq!(held["data"]["status"], json!("pending_approval"), "{held}");
    assert_eq!(held["data"]["tool"], json!("send_like"));
    let key = held["data"]["arguments"]["idempotency_key"].as_str().unwrap().to_owned();
    let menu = ok(
        &ap.client,
        "set_persistent_menu",
        json!({"items": [{"type": "postback", "title": "Help", "payload": "HELP"}]}),
    )
    .await;
    assert_eq!(menu["data"]["status"], json!("pending_approval"), "{menu}");
    assert_eq!(sent_by_business(&env).await.len(), before, "nothing sent before approval");
    let id = held["data"]["draft_id"].as_str().unwrap().to_owned();
    let done = ap.server.approve(&drafts, &id).await.unwrap();
    assert_eq!(done.status, DraftStatus::Sent, "{:?}", done.result);
    let result = done.result.unwrap();
    assert_eq!(result["data"]["idempotency_key"], json!(key));
    assert_eq!(result["data"]["outcome"], json!("sent"), "{result}");
    let sent = sent_by_business(&env).await;
    assert_eq!(sent.len(), before + 1, "approved: sent once");
    assert_eq!(sent[before]["recipient"], allowed_customer["igsid"]);
    ap.http.shutdown();
}
