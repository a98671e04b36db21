//! A burst against the sandbox's official API stays inside the connector's
//! declared rate limits: the client waits instead of being refused.

use std::sync::Arc;

use serde_json::Value;

use igdm::{AccountConfig, Client, PacingOverride, PacingPolicy};
use igdm_model::{Backend, Timestamp};
use igdm_sandbox::{Sandbox, SandboxConfig};
use igdm_spec::{Connector, Session};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conversations_burst_is_never_refused() {
    let sb = Sandbox::new(SandboxConfig::default());
    let running = sb.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let seed = sb.seed_demo().await.unwrap();
    let business = &seed.business;
    let id = business["id"].as_str().unwrap().to_owned();
    let mut session = Session::new().with_access_token(business["access_token"].as_str().unwrap());
    session.set_extra("user_id", id.clone());
    let connector =
        Arc::new(Connector::load(igdm_connectors::INSTAGRAM_GRAPH, "instagram-graph.md").unwrap());
    assert!(
        connector.rate_limits.values().any(|r| r.applies("list_conversations", true)),
        "the graph connector declares a bucket for the Conversations API"
    );
    let account = AccountConfig {
        name: "shop".into(),
        connector: "instagram-graph".into(),
        backend: Backend::Graph,
        base_url: Some(running.base_url()),
        user_id: Some(id.clone()),
        username: None,
        pacing: PacingOverride::default(),
        created_at: Timestamp::now(),
    };
    let client =
        Client::builder(account, connector, session).pacing(PacingPolicy::none()).build().unwrap();

    let calls = 8;
    let mut tasks = Vec::new();
    for _ in 0..calls {
        let c = client.clone();
        tasks.push(tokio::spawn(async move {
            c.conversations().limit(5).await.map(|(p, _)| p.items.len())
        }));
    }
    for t in tasks {
        assert!(t.await.unwrap().unwrap() > 0);
    }
    let stats: Value = reqwest::get(format!("{}/_sandbox/stats", running.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let per = &stats["accounts"][&id];
    let conv = &per["graph_conversations"];
    assert_eq!(conv["requests"].as_u64(), Some(calls), "{stats}");
    assert_eq!(conv["refused"].as_u64(), Some(0), "no request over the declared 2/s: {stats}");
}
