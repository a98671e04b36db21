//! `request.uuid`: one generated value shared by every template of a request,
//! so the private API's de-duplication keys agree within a send.

mod common;

use std::sync::Arc;

use common::{Canned, TestServer};
use igdm_spec::{Connector, Executor, ReqwestTransport, Session};
use serde_json::{Map, json};

const SPEC: &str = r#"---
id: memo-test
auth:
  type: none
api:
  base_url: "https://i.instagram.com/api/v1"
actions:
  broadcast:
    params:
      thread_id: { type: string, required: true }
      client_context: { type: string }
    rest:
      method: POST
      url: "/direct_v2/threads/broadcast/text/?ctx={{request.uuid}}"
      headers:
        X-Request-Token: "{{request.uuid}}"
      body:
        thread_ids: "[{{params.thread_id}}]"
        client_context: "{{params.client_context || request.uuid}}"
        mutation_token: "{{params.client_context || request.uuid}}"
        offline_threading_id: "{{params.client_context || request.uuid}}"
        fresh: "{{generate_uuid}}"
        also_fresh: "{{generate_uuid}}"
---
"#;

fn thread(extra: Option<&str>) -> Map<String, serde_json::Value> {
    let mut m = Map::new();
    m.insert("thread_id".into(), json!("340282366841710300949128"));
    if let Some(cc) = extra {
        m.insert("client_context".into(), json!(cc));
    }
    m
}

#[tokio::test]
async fn one_uuid_per_request_everywhere_in_it() {
    let server = TestServer::start(|_| Canned::json(200, json!({"status": "ok"}))).await;
    let c = Arc::new(Connector::load(SPEC, "memo.md").unwrap());
    let exec = Executor::new(c, Arc::new(ReqwestTransport::new().unwrap()))
        .with_base_url(Some(server.url()));
    let mut s = Session::new();

    let mut seen = Vec::new();
    for _ in 0..2 {
        exec.execute("broadcast", &thread(None), &mut s).await.unwrap();
        let r = server.last();
        let cc = r.form_field("client_context").unwrap();
        assert!(uuid::Uuid::parse_str(&cc).is_ok(), "{cc}");
        assert_eq!(r.form_field("mutation_token").unwrap(), cc);
        assert_eq!(r.form_field("offline_threading_id").unwrap(), cc);
        assert_eq!(r.header("x-request-token"), Some(cc.as_str()));
        assert!(r.query.contains(&("ctx".to_owned(), cc.clone())), "{:?}", r.query);
        // generate_uuid stays fresh on every evaluation.
        let fresh = r.form_field("fresh").unwrap();
        assert_ne!(fresh, cc);
        assert_ne!(r.form_field("also_fresh").unwrap(), fresh);
        seen.push(cc);
    }
    assert_ne!(seen[0], seen[1], "each request gets its own value");

    // A caller-chosen client_context wins for all three keys.
    exec.execute("broadcast", &thread(Some("6953110911234567890")), &mut s).await.unwrap();
    let r = server.last();
    for k in ["client_context", "mutation_token", "offline_threading_id"] {
        assert_eq!(r.form_field(k).unwrap(), "6953110911234567890", "{k}");
    }

    // A request built first and sent later keeps the value it was built with.
    let req = exec.build_request("broadcast", &thread(None), &s).unwrap();
    let built = req.form_fields().into_iter().find(|(k, _)| k == "client_context").unwrap().1;
    exec.send_built("broadcast", &thread(None), req, &mut s).await.unwrap();
    assert_eq!(server.last().form_field("mutation_token").unwrap(), built);
}

#[test]
fn request_is_not_a_response_variable() {
    let bad = SPEC.replace(
        "        also_fresh: \"{{generate_uuid}}\"\n",
        "        also_fresh: \"{{generate_uuid}}\"\n      response:\n        mapping:\n          cc: \"request.uuid\"\n",
    );
    let e = Connector::load(&bad, "memo.md").unwrap_err();
    assert!(e.message.contains("request"), "{e}");
}
