//! The model path against a small local fake of the chat-completions API:
//! classification when no rule matches, a model-written reply with the
//! customer's remembered turns, and the key sent as a bearer token.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use common::Env;
use igdm_bot::config::ModelConfig;
use igdm_bot::{Handled, Model};
use serde_json::{Value, json};

type Seen = Arc<Mutex<Vec<(Option<String>, Value)>>>;

async fn completions(
    State(seen): State<Seen>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Json<Value> {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    let system = messages[0]["content"].as_str().unwrap_or_default().to_owned();
    let last = messages.last().and_then(|m| m["content"].as_str()).unwrap_or_default().to_owned();
    let n = {
        let mut s = seen.lock().unwrap();
        s.push((auth, body.clone()));
        s.len()
    };
    let answer = if system.starts_with("Classify") {
        if last.contains("feature") { "collab" } else { "General" }.to_owned()
    } else {
        format!("Model reply {n} to: {last}")
    };
    Json(json!({
        "id": "chatcmpl-1", "object": "chat.completion", "model": body["model"],
        "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}]
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_classifies_and_writes_with_memory() {
    let seen: Seen = Arc::default();
    let app =
        Router::new().route("/v1/chat/completions", post(completions)).with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let mut env = Env::start().await;
    let config: ModelConfig = serde_json::from_value(json!({
        "api": "openai", "model": "tiny-test", "system": "You are Acme's assistant."
    }))
    .unwrap();
    let model = Model::new(&config, url, Some("sk-test-key".to_owned().into())).unwrap();
    let bot = env.bot(None).with_model(model);
    let eve = env.customer("eve", "Eve Lind").await;

    // No rule matches: the model classifies (general) and writes the reply.
    let e = env.act_event(&eve, json!({"text": "good evening"})).await;
    let h = bot.handle(&e).await.unwrap();
    assert!(matches!(&h, Handled::Replied { intent, .. } if intent == "general"), "{h:?}");
    // The second message: its written reply sees the first exchange.
    let e = env.act_event(&eve, json!({"text": "and what about tomorrow?"})).await;
    bot.handle(&e).await.unwrap();
    // The model routes to an intent with fixed replies (a card).
    let e = env.act_event(&eve, json!({"text": "we'd like to feature you on our channel"})).await;
    let h = bot.handle(&e).await.unwrap();
    assert!(matches!(&h, Handled::Replied { intent, .. } if intent == "collab"), "{h:?}");

    let sent = env.sent_to(&eve).await;
    let texts: Vec<Option<&str>> = sent.iter().map(|s| s["text"].as_str()).collect();
    assert_eq!(
        texts,
        [
            Some("Model reply 2 to: good evening"),
            Some("Model reply 4 to: and what about tomorrow?"),
            None
        ]
    );

    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 5, "classify, write, classify, write, classify");
    assert!(seen.iter().all(|(auth, _)| auth.as_deref() == Some("Bearer sk-test-key")));
    let write2 = &seen[3].1;
    assert_eq!(write2["model"], "tiny-test");
    let msgs = write2["messages"].as_array().unwrap();
    assert!(msgs[0]["content"].as_str().unwrap().starts_with("You are Acme's assistant."));
    let roles: Vec<&str> = msgs.iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["system", "user", "assistant", "user"], "memory is given to the model");
    assert_eq!(msgs[1]["content"], "good evening");
    assert_eq!(msgs[2]["content"], "Model reply 2 to: good evening");
}
