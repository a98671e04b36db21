//! New incoming messages reach the client as notifications while the session
//! runs, tailed from the events file `igdm serve --events PATH` writes.

mod common;

use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::ServiceExt as _;
use rmcp::model::CustomNotification;
use rmcp::service::{NotificationContext, RoleClient};
use serde_json::{Value, json};

use common::{env, web_client};
use igdm_mcp::{IgdmServer, McpConfig, UNTRUSTED_NOTE};

#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<(String, Value)>>>);

impl rmcp::ClientHandler for Recorder {
    async fn on_custom_notification(
        &self,
        n: CustomNotification,
        _context: NotificationContext<RoleClient>,
    ) {
        self.0.lock().unwrap().push((n.method, n.params.unwrap_or(Value::Null)));
    }
}

#[tokio::test]
async fn appended_events_become_untrusted_notifications() {
    let env = env().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    std::fs::write(
        &path,
        "{\"kind\":\"message\",\"text\":\"old, not replayed\",\"is_echo\":false}\n",
    )
    .unwrap();
    let server = IgdmServer::new(web_client(&env), McpConfig::default()).unwrap();
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let serving = tokio::spawn(igdm_mcp::serve_io(server, server_io, Some(path.clone())));
    let recorder = Recorder::default();
    let client = recorder.clone().serve(client_io).await.unwrap();
    // The session works as usual.
    assert!(!client.list_all_tools().await.unwrap().is_empty());

    let mut f = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
    writeln!(
        f,
        "{}",
        json!({"kind": "message", "account_id": "a", "conversation_id": "c9", "sender_id": "u9",
        "message_id": "m9", "text": "new message", "is_echo": false})
    )
    .unwrap();
    writeln!(
        f,
        "{}",
        json!({"kind": "message", "conversation_id": "c9", "text": "my own echo", "is_echo": true})
    )
    .unwrap();
    f.flush().unwrap();

    let mut got = Vec::new();
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        got = recorder.0.lock().unwrap().clone();
        if !got.is_empty() {
            break;
        }
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    let got_all = recorder.0.lock().unwrap().clone();
    assert_eq!(got_all.len(), 1, "only the new incoming event: {got_all:?}");
    let (method, params) = &got[0];
    assert_eq!(method, igdm_mcp::events::EVENT_METHOD);
    assert_eq!(params["event"]["text"], json!("new message"));
    assert_eq!(params["event"]["untrusted"], json!(true));
    assert_eq!(params["event"]["provenance"]["sender"], json!("u9"));
    assert_eq!(params["note"], json!(UNTRUSTED_NOTE));

    client.cancel().await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), serving).await.unwrap().unwrap().unwrap();
}
