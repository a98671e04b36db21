//! Opt-in checks against real Instagram, for users who want to verify igdm
//! with their own account. Ignored by default (they need Instagram and a
//! real account; `cargo test -p igdm --test live -- --ignored` runs them), and
//! an ignored test that runs without its variable fails; the only write is a
//! send into a thread you name explicitly.
//!
//! - `IGDM_LIVE_WEB_COOKIES`: a `Cookie:` header value of a logged-in
//!   instagram.com session (`sessionid=…; csrftoken=…; ds_user_id=…; mid=…; ig_did=…`).
//! - `IGDM_LIVE_WEB_SEND_THREAD`: a thread id to send one test message into.
//! - `IGDM_LIVE_GRAPH_TOKEN` (+ `IGDM_LIVE_GRAPH_USER_ID`): an Instagram
//!   Login access token of a professional account.

use std::sync::Arc;

use igdm::{AccountConfig, Client, PacingOverride};
use igdm_model::{Backend, Timestamp};
use igdm_spec::{Connector, Session};

fn account(
    name: &str,
    connector: &str,
    backend: Backend,
    user_id: Option<String>,
) -> AccountConfig {
    AccountConfig {
        name: name.into(),
        connector: connector.into(),
        backend,
        base_url: None,
        user_id,
        username: None,
        pacing: PacingOverride::default(),
        created_at: Timestamp::now(),
    }
}

#[tokio::test]
#[ignore = "live: needs Instagram and IGDM_LIVE_WEB_COOKIES"]
async fn live_web_reads_and_optional_send() {
    let raw = std::env::var("IGDM_LIVE_WEB_COOKIES")
        .expect("set IGDM_LIVE_WEB_COOKIES to run this test against Instagram");
    let cookies: Vec<(String, String)> = raw
        .trim_start_matches("Cookie:")
        .split(';')
        .filter_map(|p| p.trim().split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect();
    let user_id = cookies.iter().find(|(k, _)| k == "ds_user_id").map(|(_, v)| v.clone());
    let session =
        Session::new().with_cookies(cookies).with_device_uuid(uuid::Uuid::new_v4().to_string());
    let connector =
        Arc::new(Connector::load(igdm_connectors::INSTAGRAM_WEB, "instagram-web.md").unwrap());
    let client = Client::builder(
        account("live", "instagram-web", Backend::Web, user_id),
        connector,
        session,
    )
    .build()
    .unwrap();
    client.validate().await.expect("the session is valid");
    let (page, _) = client.conversations().limit(5).await.expect("inbox");
    if let Some(first) = page.items.first() {
        let (msgs, _) = client.messages(first.id.as_str()).limit(5).await.expect("thread");
        assert!(msgs.items.iter().all(|m| m.conversation_id == first.id));
    }
    if let Ok(thread) = std::env::var("IGDM_LIVE_WEB_SEND_THREAD") {
        let sent = client.send(thread, "igdm live test").await.expect("send");
        assert_eq!(sent.outcome, igdm::Sent::Sent);
    }
}

#[tokio::test]
#[ignore = "live: needs Instagram and IGDM_LIVE_GRAPH_TOKEN"]
async fn live_graph_reads() {
    let token = std::env::var("IGDM_LIVE_GRAPH_TOKEN")
        .expect("set IGDM_LIVE_GRAPH_TOKEN to run this test against Instagram");
    let user_id = std::env::var("IGDM_LIVE_GRAPH_USER_ID").ok();
    let mut session = Session::new().with_access_token(token);
    if let Some(id) = &user_id {
        session.set_extra("user_id", id.clone());
    }
    let connector =
        Arc::new(Connector::load(igdm_connectors::INSTAGRAM_GRAPH, "instagram-graph.md").unwrap());
    let client = Client::builder(
        account("live", "instagram-graph", Backend::Graph, user_id),
        connector,
        session,
    )
    .build()
    .unwrap();
    let (page, _) = client.conversations().limit(5).await.expect("conversations");
    if let Some(first) = page.items.first() {
        client.messages(first.id.as_str()).limit(5).await.expect("messages");
    }
}
