//! `igdm mcp` over Streamable HTTP: a real rmcp client session against an
//! in-process server backed by the sandbox.

mod common;

use std::collections::BTreeSet;

use serde_json::{Value, json};

use common::{TOKEN, call, connect, env, fails, graph_client, mcp, ok, web_client};
use igdm_mcp::{DraftStatus, Drafts, McpConfig, McpError, Policy, UNTRUSTED_NOTE};

fn set(items: &[&str]) -> Option<BTreeSet<String>> {
    Some(items.iter().map(|s| (*s).to_owned()).collect())
}

const READS: &[&str] = &[
    "list_conversations",
    "get_conversation",
    "list_messages",
    "get_message",
    "get_message_media",
    "search",
    "get_unread",
    "get_presence",
    "get_user_profile",
    "get_ice_breakers",
    "wait_for_messages",
    "capabilities",
    "account_status",
];
const WRITES: &[&str] = &[
    "send",
    "send_to_user",
    "send_media",
    "react",
    "unreact",
    "mark_read",
    "mark_unread",
    "delete",
    "mute",
    "unmute",
    "archive",
    "send_typing",
    "set_ice_breakers",
    "delete_ice_breakers",
];
/// Tools of the official API only: the web server (the account below) does not offer them.
const OFFICIAL_ONLY: &[&str] =
    &["get_user_profile", "get_ice_breakers", "set_ice_breakers", "delete_ice_breakers"];

#[tokio::test]
async fn bearer_token_is_required() {
    let env = env().await;
    let m = mcp(web_client(&env), McpConfig::default()).await;
    let url = m.http.url();
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "t", "version": "0"}}});
    let http = reqwest::Client::new();
    for auth in [None, Some("Bearer wrong-token-0123456789abcdef"), Some(TOKEN)] {
        let mut req =
            http.post(&url).header("accept", "application/json, text/event-stream").json(&init);
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 401, "{auth:?} must be refused");
        assert!(resp.headers().contains_key("www-authenticate"));
    }
    let resp = http
        .post(&url)
        .header("accept", "application/json, text/event-stream")
        .header("authorization", format!("Bearer {TOKEN}"))
        .json(&init)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    // The rmcp client with the right token gets a session; with a wrong one it does not.
    let good = connect(&url, TOKEN).await;
    assert_eq!(good.peer_info().unwrap().server_info.as_ref().unwrap().name, "igdm");
    let bad = rmcp::ServiceExt::serve(
        (),
        rmcp::transport::StreamableHttpClientTransport::from_config(
            rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig::with_uri(
                url.clone(),
            )
            .auth_header("not-the-token-0123456789"),
        ),
    )
    .await;
    assert!(bad.is_err(), "a wrong token must not initialize");
    // Non-loopback addresses need --allow-remote.
    let server = m.server.clone();
    let err = igdm_mcp::serve_http(
        server,
        igdm_mcp::HttpOptions {
            addr: "0.0.0.0:0".parse().unwrap(),
            token: TOKEN.into(),
            allow_remote: false,
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(err, McpError::Config(_)), "{err}");
    m.http.shutdown();
}

#[tokio::test]
async fn tools_list_carries_schemas_and_annotations() {
    let env = env().await;
    let m = mcp(web_client(&env), McpConfig::default()).await;
    let tools = m.client.list_all_tools().await.unwrap();
    let names: BTreeSet<String> = tools.iter().map(|t| t.name.to_string()).collect();
    for n in READS.iter().chain(WRITES).chain(&["Messages"]) {
        if OFFICIAL_ONLY.contains(n) {
            assert!(!names.contains(*n), "{n} offered by a connector without it");
        } else {
            assert!(names.contains(*n), "{n} missing from {names:?}");
        }
    }
    for t in &tools {
        assert_eq!(t.input_schema.get("type"), Some(&json!("object")), "{}", t.name);
        let out =
            t.output_schema.as_ref().unwrap_or_else(|| panic!("{} has no output schema", t.name));
        let props = out.get("properties").unwrap();
        for f in ["ok", "data", "page", "truncated", "warnings", "error"] {
            assert!(props.get(f).is_some(), "{}: output schema lacks {f}", t.name);
        }
        let a = t.annotations.as_ref().unwrap();
        if READS.contains(&t.name.as_ref()) {
            assert_eq!(a.read_only_hint, Some(true), "{}", t.name);
            assert_eq!(a.idempotent_hint, Some(true), "{}", t.name);
        } else {
            assert_eq!(a.read_only_hint, Some(false), "{}", t.name);
        }
    }
    let ann = |n: &str| tools.iter().find(|t| t.name == n).unwrap().annotations.clone().unwrap();
    assert_eq!(ann("send").destructive_hint, Some(true));
    assert_eq!(ann("send").idempotent_hint, Some(false));
    assert_eq!(ann("delete").destructive_hint, Some(true));
    assert_eq!(ann("react").destructive_hint, Some(false));
    assert_eq!(ann("Messages").destructive_hint, Some(true));
    // Input schemas come from the argument types: required fields are required.
    let send = tools.iter().find(|t| t.name == "send").unwrap();
    let req = send.input_schema.get("required").unwrap();
    assert!(req.as_array().unwrap().contains(&json!("conversation_id")));
    assert!(req.as_array().unwrap().contains(&json!("text")));
    let messages = tools.iter().find(|t| t.name == "Messages").unwrap();
    let schema = serde_json::to_string(&messages.input_schema).unwrap();
    for action in ["list_conversations", "send_to_user", "send_typing", "archive", "get_presence"] {
        assert!(schema.contains(action), "Messages schema lacks {action}");
    }
    m.http.shutdown();
}

#[tokio::test]
async fn read_tools_mark_untrusted_content_and_fail_cleanly() {
    let env = env().await;
    let m = mcp(web_client(&env), McpConfig::default()).await;
    let c = &m.client;

    let convs = ok(c, "list_conversations", json!({"limit": 10})).await;
    let items = convs["data"].as_array().unwrap();
    assert!(items.len() >= 2, "{convs}");
    assert_eq!(items[0]["untrusted"], json!(true));
    assert_eq!(items[0]["provenance"]["account"], json!("me"));
    assert_eq!(convs["note"], json!(UNTRUSTED_NOTE));
    assert!(convs["page"].get("has_more").is_some());
    let small = ok(c, "list_conversations", json!({"limit": 1})).await;
    assert_eq!(small["data"].as_array().unwrap().len(), 1);
    assert_eq!(small["page"]["has_more"], json!(true), "{small}");
    fails(c, "list_conversations", json!({"limit": 0}), "invalid_request").await;

    let group = env.seed.group_thread_id.clone();
    let conv = ok(c, "get_conversation", json!({"conversation_id": group})).await;
    assert_eq!(conv["data"]["id"], json!(group));
    assert_eq!(conv["data"]["untrusted"], json!(true));
    fails(
        c,
        "get_conversation",
        json!({"conversation_id": "340282366841710300949128999999999"}),
        "not_found",
    )
    .await;

    let msgs = ok(c, "list_messages", json!({"conversation_id": group, "limit": 2})).await;
    let list = msgs["data"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    for msg in list {
        assert_eq!(msg["untrusted"], json!(true));
        assert_eq!(msg["provenance"]["conversation"], json!(group));
        assert_eq!(msg["provenance"]["account"], json!("me"));
        assert!(msg["provenance"]["sender"].is_string(), "{msg}");
    }
    assert_eq!(msgs["page"]["has_more"], json!(true));
    let cursor = msgs["page"]["next_cursor"].as_str().unwrap().to_owned();
    let older =
        ok(c, "list_messages", json!({"conversation_id": group, "limit": 2, "cursor": cursor}))
            .await;
    assert_ne!(older["data"][0]["id"], list[0]["id"], "the cursor pages back");
    fails(c, "list_messages", json!({"limit": 2}), "invalid_request").await;

    let id = list[0]["id"].as_str().unwrap();
    let one = ok(c, "get_message", json!({"conversation_id": group, "message_id": id})).await;
    assert_eq!(one["data"]["id"], json!(id));
    assert_eq!(one["data"]["untrusted"], json!(true));
    fails(c, "get_message", json!({"conversation_id": group}), "invalid_request").await;

    let text =
        list[0]["text"].as_str().unwrap_or("the").split_whitespace().next().unwrap().to_owned();
    let found = ok(c, "search", json!({"query": text})).await;
    assert!(!found["data"].as_array().unwrap().is_empty(), "search {text:?}: {found}");
    assert_eq!(found["data"][0]["untrusted"], json!(true));
    fails(c, "search", json!({"query": "  "}), "invalid_request").await;

    let unread_before = ok(c, "get_unread", json!({"limit": 20})).await;
    assert!(unread_before["data"].is_array());
    fails(c, "get_unread", json!({"limit": 1000}), "invalid_request").await;

    let sam = env.seed.customers.iter().find(|u| u["username"] == json!("sam_okafor")).unwrap();
    let sam_pk = sam["pk"].as_str().unwrap();
    let presence = ok(c, "get_presence", json!({"user_ids": [sam_pk]})).await;
    assert!(presence["data"].is_array() || presence["data"].is_object(), "{presence}");
    fails(c, "get_presence", json!({"user_ids": []}), "invalid_request").await;

    let caps = ok(c, "capabilities", json!({})).await;
    assert_eq!(caps["data"]["connector"], json!("instagram-web"));
    fails(c, "capabilities", json!({"verbose": true}), "invalid_request").await;

    let status = ok(c, "account_status", json!({})).await;
    assert_eq!(status["data"]["account"], json!("me"));
    assert_eq!(status["data"]["health"]["state"], json!("healthy"));
    assert_eq!(status["data"]["policy"]["read_only"], json!(false));
    fails(c, "account_status", json!({"account": "other"}), "invalid_request").await;

    // The web connector has no profile or ice-breaker actions: not offered,
    // and a call is a classified error naming the connector that has it.
    let prof = call(c, "get_user_profile", json!({"user_id": sam_pk})).await.1;
    assert_eq!(prof["ok"], json!(false));
    assert!(prof["error"]["message"].as_str().unwrap().contains("instagram-graph"), "{prof}");

    // Reading never marks anything read.
    let unread_after = ok(c, "get_unread", json!({"limit": 20})).await;
    assert_eq!(unread_before["data"], unread_after["data"]);
    m.http.shutdown();
}

#[tokio::test]
async fn write_tools_act_and_fail_cleanly() {
    let env = env().await;
    let m = mcp(web_client(&env), McpConfig::default()).await;
    let c = &m.client;
    let group = env.seed.group_thread_id.clone();

    // send: idempotent per key, key returned, generated when absent.
    let sent = ok(
        c,
        "send",
        json!({"conversation_id": group, "text": "on my way", "idempotency_key": "k-1"}),
    )
    .await;
    assert_eq!(sent["data"]["idempotency_key"], json!("k-1"));
    assert_eq!(sent["data"]["outcome"], json!("sent"));
    let again = ok(
        c,
        "send",
        json!({"conversation_id": group, "text": "on my way", "idempotency_key": "k-1"}),
    )
    .await;
    assert_eq!(again["data"]["outcome"], json!("replayed"));
    let fresh = ok(c, "send", json!({"conversation_id": group, "text": "second"})).await;
    assert!(fresh["data"]["idempotency_key"].as_str().is_some_and(|k| k.len() >= 32));
    let latest = ok(c, "list_messages", json!({"conversation_id": group, "limit": 5})).await;
    let texts: Vec<&str> =
        latest["data"].as_array().unwrap().iter().filter_map(|m| m["text"].as_str()).collect();
    assert_eq!(texts.iter().filter(|t| **t == "on my way").count(), 1, "{texts:?}");
    let mine =
        latest["data"].as_array().unwrap().iter().find(|m| m["text"] == json!("second")).unwrap();
    let mine_id = mine["id"].as_str().unwrap().to_owned();
    let before = common::stats(&env).await;
    fails(c, "send", json!({"conversation_id": group, "text": ""}), "invalid_request").await;
    assert_eq!(common::stats(&env).await, before, "invalid input sends nothing");

    let customer = env.seed.customers.iter().find(|u| u["username"] == json!("emma_b")).unwrap();
    let emma = customer["pk"].as_str().unwrap();
    let dm = ok(
        c,
        "send_to_user",
        json!({"user_id": emma, "text": "hello Emma", "idempotency_key": "u-1"}),
    )
    .await;
    assert_eq!(dm["data"]["outcome"], json!("sent"));
    let dm2 = ok(
        c,
        "send_to_user",
        json!({"user_id": emma, "text": "hello Emma", "idempotency_key": "u-1"}),
    )
    .await;
    assert_eq!(dm2["data"]["outcome"], json!("replayed"));
    fails(c, "send_to_user", json!({"text": "who?"}), "invalid_request").await;

    let other = latest["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["sender"]["is_self"] == json!(false))
        .unwrap();
    let other_id = other["id"].as_str().unwrap().to_owned();
    ok(c, "react", json!({"conversation_id": group, "message_id": other_id, "emoji": "😂"})).await;
    let msg = ok(c, "get_message", json!({"conversation_id": group, "message_id": other_id})).await;
    assert!(msg["data"]["reactions"].to_string().contains("😂"), "{msg}");
    fails(c, "react", json!({"conversation_id": group}), "invalid_request").await;
    ok(c, "unreact", json!({"conversation_id": group, "message_id": other_id})).await;
    fails(c, "unreact", json!({"message_id": other_id}), "invalid_request").await;

    ok(c, "mark_read", json!({"conversation_id": group, "message_id": other_id})).await;
    fails(c, "mark_read", json!({}), "invalid_request").await;
    ok(c, "mark_unread", json!({"conversation_id": group})).await;
    fails(c, "mark_unread", json!({"conversation_id": ""}), "invalid_request").await;
    ok(c, "mute", json!({"conversation_id": group})).await;
    fails(c, "mute", json!({"conversation_id": 5}), "invalid_request").await;
    ok(c, "unmute", json!({"conversation_id": group})).await;
    fails(c, "unmute", json!({}), "invalid_request").await;
    ok(c, "send_typing", json!({"conversation_id": group})).await;
    fails(c, "send_typing", json!({"typing": true}), "invalid_request").await;

    ok(c, "delete", json!({"conversation_id": group, "message_id": mine_id})).await;
    fails(c, "delete", json!({"conversation_id": group}), "invalid_request").await;
    ok(c, "archive", json!({"conversation_id": group})).await;
    fails(c, "archive", json!({}), "invalid_request").await;
    m.http.shutdown();
}

#[tokio::test]
async fn official_api_profile_and_ice_breakers() {
    let env = env().await;
    let m = mcp(graph_client(&env), McpConfig::default()).await;
    let c = &m.client;
    let alex = env.seed.customers.iter().find(|u| u["username"] == json!("alex_rivera")).unwrap();
    let alex_id = alex["igsid"].as_str().or_else(|| alex["id"].as_str()).unwrap();
    let prof = ok(c, "get_user_profile", json!({"user_id": alex_id})).await;
    assert_eq!(prof["data"]["untrusted"], json!(true));
    fails(c, "get_user_profile", json!({"user_id": ""}), "invalid_request").await;

    let qs = json!([{"question": "Prices?", "payload": "PRICES"}, {"question": "Hours?", "payload": "HOURS"}]);
    ok(c, "set_ice_breakers", json!({"ice_breakers": qs})).await;
    let got = ok(c, "get_ice_breakers", json!({})).await;
    assert!(got["data"].to_string().contains("Prices?"), "{got}");
    let five: Vec<Value> =
        (0..5).map(|i| json!({"question": format!("q{i}"), "payload": "P"})).collect();
    fails(c, "set_ice_breakers", json!({"ice_breakers": five}), "invalid_request").await;
    ok(c, "delete_ice_breakers", json!({})).await;
    let gone = ok(c, "get_ice_breakers", json!({})).await;
    assert!(!gone["data"].to_string().contains("Prices?"), "{gone}");
    fails(c, "get_ice_breakers", json!({"x": 1}), "invalid_request").await;
    fails(c, "delete_ice_breakers", json!({"all": true}), "invalid_request").await;
    m.http.shutdown();
}

#[tokio::test]
async fn messages_tool_runs_seed_actions_under_policy() {
    let env = env().await;
    let m = mcp(web_client(&env), McpConfig::default()).await;
    let c = &m.client;
    let group = env.seed.group_thread_id.clone();
    let convs =
        ok(c, "Messages", json!({"action": "list_conversations", "connector": "instagram"})).await;
    assert!(convs["data"].as_array().unwrap().len() >= 2);
    let list =
        ok(c, "Messages", json!({"action": "list", "conversation_id": group, "limit": 3})).await;
    assert_eq!(list["data"][0]["untrusted"], json!(true));
    let sent = ok(
        c,
        "Messages",
        json!({"action": "send", "conversation_id": group, "text": "via Messages"}),
    )
    .await;
    assert_eq!(sent["data"]["outcome"], json!("sent"));
    assert!(sent["data"]["idempotency_key"].is_string());
    fails(c, "Messages", json!({"action": "fly"}), "invalid_request").await;
    fails(c, "Messages", json!({"action": "send", "conversation_id": group}), "invalid_request")
        .await;
    m.http.shutdown();
}

#[tokio::test]
async fn read_only_mode_hides_and_refuses_writes() {
    let env = env().await;
    let policy = Policy { read_only: true, ..Policy::default() };
    let m = mcp(web_client(&env), McpConfig { policy, ..McpConfig::default() }).await;
    let c = &m.client;
    let tools = c.list_all_tools().await.unwrap();
    let names: BTreeSet<String> = tools.iter().map(|t| t.name.to_string()).collect();
    for w in WRITES {
        assert!(!names.contains(*w), "{w} listed in read-only mode");
    }
    for r in READS.iter().filter(|r| !OFFICIAL_ONLY.contains(r)) {
        assert!(names.contains(*r), "{r} missing in read-only mode");
    }
    let messages = tools.iter().find(|t| t.name == "Messages").unwrap();
    assert_eq!(messages.annotations.as_ref().unwrap().read_only_hint, Some(true));
    let group = env.seed.group_thread_id.clone();
    let before = common::stats(&env).await;
    fails(c, "send", json!({"conversation_id": group, "text": "nope"}), "not_permitted").await;
    fails(
        c,
        "Messages",
        json!({"action": "send", "conversation_id": group, "text": "nope"}),
        "not_permitted",
    )
    .await;
    fails(c, "Messages", json!({"action": "mark_read", "conversation_id": group}), "not_permitted")
        .await;
    assert_eq!(common::stats(&env).await, before, "refusals send nothing");
    ok(c, "Messages", json!({"action": "get_unread"})).await;
    m.http.shutdown();
}

#[tokio::test]
async fn tool_and_recipient_allowlists() {
    let env = env().await;
    // Unknown names abort startup.
    let bad = Policy { allow: set(&["list_conversations", "teleport"]), ..Policy::default() };
    let err = igdm_mcp::IgdmServer::new(
        web_client(&env),
        McpConfig { policy: bad, ..McpConfig::default() },
    )
    .unwrap_err();
    assert!(err.to_string().contains("teleport"), "{err}");

    let sam = env.seed.customers.iter().find(|u| u["username"] == json!("sam_okafor")).unwrap();
    let emma = env.seed.customers.iter().find(|u| u["username"] == json!("emma_b")).unwrap();
    let (sam_pk, emma_pk) = (sam["pk"].as_str().unwrap(), emma["pk"].as_str().unwrap());
    let policy = Policy {
        allow: set(&["list_conversations", "send", "send_to_user"]),
        recipients: set(&[sam_pk]),
        ..Policy::default()
    };
    let m = mcp(web_client(&env), McpConfig { policy, ..McpConfig::default() }).await;
    let c = &m.client;
    let names: BTreeSet<String> =
        c.list_all_tools().await.unwrap().iter().map(|t| t.name.to_string()).collect();
    assert_eq!(names, set(&["list_conversations", "send", "send_to_user"]).unwrap());
    fails(c, "list_messages", json!({"conversation_id": "1"}), "not_permitted").await;

    let before = common::stats(&env).await;
    fails(c, "send_to_user", json!({"user_id": emma_pk, "text": "hi"}), "not_permitted").await;
    assert_eq!(common::stats(&env).await, before, "a refused recipient gets nothing");
    ok(c, "send_to_user", json!({"user_id": sam_pk, "text": "hi Sam"})).await;

    // Conversations are checked by their participants.
    let convs = ok(c, "list_conversations", json!({})).await;
    let with_sam = convs["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|cv| {
            let p = cv["participants"].as_array().unwrap();
            p.iter().any(|u| u["id"] == json!(sam_pk))
                && p.iter().filter(|u| u["id"] != env.seed.personal["pk"]).count() == 1
        })
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    ok(c, "send", json!({"conversation_id": with_sam, "text": "allowed"})).await;
    fails(
        c,
        "send",
        json!({"conversation_id": env.seed.group_thread_id, "text": "not allowed"}),
        "not_permitted",
    )
    .await;
    m.http.shutdown();
}

#[tokio::test]
async fn approval_mode_turns_writes_into_drafts() {
    let env = env().await;
    let home = tempfile::tempdir().unwrap();
    let drafts = Drafts::new(home.path().join("drafts"));
    let policy = Policy { approve: true, ..Policy::default() };
    let m = mcp(
        web_client(&env),
        McpConfig { policy, drafts: Some(drafts.clone()), ..McpConfig::default() },
    )
    .await;
    let c = &m.client;
    let group = env.seed.group_thread_id.clone();

    let held = ok(c, "send", json!({"conversation_id": group, "text": "needs approval"})).await;
    assert_eq!(held["data"]["status"], json!("pending_approval"));
    assert!(held["warnings"][0].as_str().unwrap().contains("igdm drafts approve"));
    let id = held["data"]["draft_id"].as_str().unwrap().to_owned();
    let key = held["data"]["arguments"]["idempotency_key"].as_str().unwrap().to_owned();
    let rejected = ok(c, "Messages", json!({"action": "mute", "conversation_id": group})).await;
    let rejected_id = rejected["data"]["draft_id"].as_str().unwrap().to_owned();
    fails(c, "send", json!({"conversation_id": group}), "invalid_request").await;

    let list = ok(c, "list_messages", json!({"conversation_id": group, "limit": 5})).await;
    assert!(!list["data"].to_string().contains("needs approval"), "nothing sent before approval");
    assert_eq!(drafts.list().unwrap().len(), 2);

    let done = m.server.approve(&drafts, &id).await.unwrap();
    assert_eq!(done.status, DraftStatus::Sent);
    assert_eq!(done.result.as_ref().unwrap()["data"]["idempotency_key"], json!(key));
    let list = ok(c, "list_messages", json!({"conversation_id": group, "limit": 5})).await;
    assert!(list["data"].to_string().contains("needs approval"));
    assert!(matches!(m.server.approve(&drafts, &id).await, Err(McpError::Decided { .. })));

    let r = drafts.reject(&rejected_id).unwrap();
    assert_eq!(r.status, DraftStatus::Rejected);
    assert!(matches!(m.server.approve(&drafts, &rejected_id).await, Err(McpError::Decided { .. })));
    m.http.shutdown();
}

#[tokio::test]
async fn approval_through_elicitation_on_both_protocol_generations() {
    use rmcp::model::{CallToolRequestParams, ProtocolVersion};
    let env = env().await;
    let home = tempfile::tempdir().unwrap();
    let drafts = Drafts::new(home.path().join("drafts"));
    let policy = Policy { approve: true, ..Policy::default() };
    let config = McpConfig { policy, drafts: Some(drafts.clone()), ..McpConfig::default() };
    let (_server, http) = common::serve(web_client(&env), config).await;
    let group = env.seed.group_thread_id.clone();
    for (protocol, approve) in [
        (ProtocolVersion::V_2026_07_28, true),
        (ProtocolVersion::V_2025_11_25, true),
        (ProtocolVersion::V_2026_07_28, false),
        (ProtocolVersion::V_2025_11_25, false),
    ] {
        let asked = std::sync::Arc::default();
        let approver = common::Approver {
            approve,
            protocol: protocol.clone(),
            asked: std::sync::Arc::clone(&asked),
        };
        let c = common::connect_approver(&http.url(), approver).await;
        let text = format!("elicited {protocol} {approve}");
        let args = json!({"conversation_id": group, "text": text});
        let r = c
            .call_tool(
                CallToolRequestParams::new("send")
                    .with_arguments(args.as_object().unwrap().clone()),
            )
            .await
            .unwrap();
        let v = r.structured_content.clone().unwrap();
        let question = asked.lock().unwrap().clone();
        assert_eq!(question.len(), 1, "{protocol}: the user is asked once");
        assert!(
            question[0].contains(&text),
            "{protocol}: the question shows the call: {question:?}"
        );
        let listed = ok(
            &c_plain(&http).await,
            "list_messages",
            json!({"conversation_id": group, "limit": 5}),
        )
        .await;
        if approve {
            assert_eq!(v["ok"], json!(true), "{protocol}: {v}");
            assert_eq!(v["data"]["outcome"], json!("sent"), "{protocol}: {v}");
            assert!(listed["data"].to_string().contains(&text), "{protocol}: sent");
        } else {
            assert_eq!(r.is_error, Some(true), "{protocol}: {v}");
            assert_eq!(v["error"]["class"], json!("not_permitted"));
            assert!(!listed["data"].to_string().contains(&text), "{protocol}: nothing sent");
        }
    }
    let statuses: Vec<DraftStatus> = drafts.list().unwrap().into_iter().map(|d| d.status).collect();
    assert_eq!(
        statuses,
        vec![DraftStatus::Sent, DraftStatus::Sent, DraftStatus::Rejected, DraftStatus::Rejected]
    );
    http.shutdown();
}

async fn c_plain(
    http: &igdm_mcp::RunningHttp,
) -> rmcp::service::RunningService<rmcp::service::RoleClient, ()> {
    connect(&http.url(), TOKEN).await
}

#[tokio::test]
async fn search_uses_the_local_store_when_configured() {
    let env = env().await;
    let client = web_client(&env);
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("store.db").display());
    let store = igdm_store::Store::open(&url).await.unwrap();
    store
        .upsert_account(&igdm_model::Account {
            name: "me".into(),
            connector: "instagram-web".into(),
            backend: igdm_model::Backend::Web,
            user_id: None,
            username: None,
            base_url: None,
            created_at: igdm_model::Timestamp::now(),
        })
        .await
        .unwrap();
    let group = env.seed.group_thread_id.clone();
    let (convs, _) = client.conversations().limit(20).await.unwrap();
    let conv = convs.items.iter().find(|c| c.id.as_str() == group).unwrap();
    store.upsert_conversation("me", conv).await.unwrap();
    let (msgs, _) = client.messages(group.as_str()).limit(20).await.unwrap();
    store.upsert_messages("me", &msgs.items).await.unwrap();
    let word = msgs
        .items
        .iter()
        .filter_map(|m| m.text.as_deref())
        .flat_map(str::split_whitespace)
        .find(|w| w.len() >= 4 && w.chars().all(char::is_alphabetic))
        .unwrap()
        .to_owned();

    let config = McpConfig { store: Some(std::sync::Arc::new(store)), ..McpConfig::default() };
    let m = mcp(client, config).await;
    let before = common::stats(&env).await;
    let found = ok(&m.client, "search", json!({"query": word})).await;
    assert_eq!(common::stats(&env).await, before, "the store answers without Instagram");
    let hits = found["data"].as_array().unwrap();
    assert!(!hits.is_empty(), "{word}: {found}");
    assert!(hits[0]["snippet"].is_string());
    assert_eq!(hits[0]["untrusted"], json!(true));
    assert!(found["warnings"].to_string().contains("local store"));
    m.http.shutdown();
}

/// The personal demo account whose writes give up after a second, its sends
/// in `ledger`.
fn impatient_web_client(
    env: &common::Env,
    ledger: std::sync::Arc<dyn igdm::SendLedger>,
) -> igdm::Client {
    let connector = std::sync::Arc::new(
        igdm_spec::Connector::load(igdm_connectors::INSTAGRAM_WEB, "instagram-web.md").unwrap(),
    );
    let account = igdm_test::clients::account(
        "me",
        "instagram-web",
        igdm_model::Backend::Web,
        &env.base,
        &env.seed.personal["pk"],
    );
    let transport =
        igdm_spec::ReqwestTransport::with_timeout(std::time::Duration::from_secs(1)).unwrap();
    igdm::Client::builder(account, connector, igdm_test::clients::web_session(&env.seed.personal))
        .transport(std::sync::Arc::new(transport))
        .pacing(igdm::PacingPolicy::none())
        .ledger(ledger)
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_share_the_store_ledger_and_report_unknown_outcomes_typed() {
    let env = env().await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("igdm.db").display());
    let store = igdm_store::Store::open(&url).await.unwrap().into_shared();
    let ledger: std::sync::Arc<dyn igdm::SendLedger> =
        std::sync::Arc::new(igdm::StoreLedger::new(store.clone()));
    // Two servers, as two `igdm mcp` processes on one $IGDM_HOME would be.
    let a = mcp(impatient_web_client(&env, ledger.clone()), McpConfig::default()).await;
    let b = mcp(impatient_web_client(&env, ledger.clone()), McpConfig::default()).await;
    let emma = env.seed.customers.iter().find(|u| u["username"] == json!("emma_b")).unwrap();
    let args = json!({"user_id": emma["pk"], "text": "see you Friday", "idempotency_key": "dm-1"});
    let first = ok(&a.client, "send_to_user", args.clone()).await;
    assert_eq!(first["data"]["outcome"], json!("sent"));
    let before = common::stats(&env).await;
    let again = ok(&b.client, "send_to_user", args).await;
    assert_eq!(again["data"]["outcome"], json!("replayed"), "the other server's send: {again}");
    assert_eq!(again["data"]["message"]["id"], first["data"]["message"]["id"]);
    assert_eq!(common::stats(&env).await, before, "nothing was sent again");
    let entry = store.outbox_get("dm-1").await.unwrap().unwrap();
    assert_eq!(entry.state, igdm::SendState::Sent);

    // A send lost in flight: an error that carries its ledger state.
    let group = env.seed.group_thread_id.clone();
    let fault = |body: Value| igdm_test::sandbox::post_ok(&env.base, "/_sandbox/faults", body);
    let me = env.seed.personal["id"].clone();
    fault(json!({"account": me, "drop_writes": true, "latency_ms": 2500})).await;
    let lost = fails(
        &a.client,
        "send",
        json!({"conversation_id": group, "text": "lost in flight", "idempotency_key": "k-lost"}),
        "transient",
    )
    .await;
    fault(json!({"account": me, "drop_writes": false, "latency_ms": 0})).await;
    assert_eq!(
        lost["error"]["send"],
        json!({"idempotency_key": "k-lost", "state": "unknown", "candidates": []}),
        "{lost}"
    );
    assert_eq!(store.outbox_get("k-lost").await.unwrap().unwrap().state, igdm::SendState::Unknown);
    // The other server, asked again with the key, reconciles, then sends once.
    let sent = ok(
        &b.client,
        "send",
        json!({"conversation_id": group, "text": "lost in flight", "idempotency_key": "k-lost"}),
    )
    .await;
    assert_eq!(sent["data"]["outcome"], json!("sent"));
    a.http.shutdown();
    b.http.shutdown();
}
