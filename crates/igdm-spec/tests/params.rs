//! Parameter declarations: per-field constraints of objects and arrays,
//! patterns and empty required strings. Every violation is reported with
//! the full path of the offending field and no request leaves.

mod common;

use std::sync::Arc;

use common::{Canned, TestServer};
use igdm_model::ErrorClass;
use igdm_spec::{Connector, ExecError, Executor, ReqwestTransport, Session};
use serde_json::{Map, Value, json};

const SPEC: &str = r#"---
id: limits-test
auth:
  type: bearer
api:
  base_url: "https://graph.instagram.com/v21.0"
  body_format: json
actions:
  send:
    params:
      recipient: { type: string, required: true, pattern: "[0-9]+" }
      text: { type: string, required: true, min_length: 1, max_bytes: 1000 }
      quick_replies:
        type: array
        min_items: 1
        max_items: 13
        items:
          type: object
          properties:
            content_type: { type: enum, values: [text], default: text }
            title: { type: string, required: true, max_length: 20 }
            payload: { type: string, required: true, max_length: 1000 }
      elements:
        type: array
        max_items: 10
        items:
          type: object
          properties:
            title: { type: string, required: true, max_length: 80 }
            buttons:
              type: array
              max_items: 3
              items:
                type: object
                properties:
                  title: { type: string, required: true, max_length: 20 }
    rest:
      method: POST
      url: "/me/messages"
      body:
        recipient: { id: "{{params.recipient}}" }
        message:
          text: "{{params.text}}"
          quick_replies: "{{params.quick_replies}}"
          elements: "{{params.elements}}"
      response:
        mapping:
          id: ".message_id"
---
"#;

fn params(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

fn qr(title: &str) -> Value {
    json!({ "title": title, "payload": "P" })
}

async fn rejected(server: &TestServer, exec: &Executor, p: Value) -> String {
    let before = server.requests().len();
    let e = exec
        .execute("send", &params(p), &mut Session::new().with_access_token("t"))
        .await
        .unwrap_err();
    assert_eq!(server.requests().len(), before, "a request left for invalid params");
    match e {
        ExecError::InvalidParams(e) => {
            assert_eq!(e.class, ErrorClass::InvalidRequest);
            e.message
        }
        other => panic!("expected invalid params, got {other:?}"),
    }
}

#[tokio::test]
async fn nested_limits_name_the_field_and_send_nothing() {
    let server = TestServer::start(|_| Canned::json(200, json!({ "message_id": "m1" }))).await;
    let c = Arc::new(Connector::load(SPEC, "limits.md").unwrap());
    let exec = Executor::new(c, Arc::new(ReqwestTransport::new().unwrap()))
        .with_base_url(Some(server.url()));

    let long = "x".repeat(21);
    let mut replies: Vec<Value> = (0..5).map(|i| qr(&format!("r{i}"))).collect();
    replies[3] = qr(&long);
    let m =
        rejected(&server, &exec, json!({"recipient": "1", "text": "hi", "quick_replies": replies}))
            .await;
    assert_eq!(m, "quick_replies[3].title: longer than 20 characters");

    let fourteen: Vec<Value> = (0..14).map(|i| qr(&format!("r{i}"))).collect();
    let m = rejected(
        &server,
        &exec,
        json!({"recipient": "1", "text": "hi", "quick_replies": fourteen}),
    )
    .await;
    assert_eq!(m, "quick_replies: more than 13 elements (14)");

    let m = rejected(&server, &exec, json!({"recipient": "1", "text": "hi", "quick_replies": []}))
        .await;
    assert_eq!(m, "quick_replies: fewer than 1 elements (0)");

    let m = rejected(
        &server,
        &exec,
        json!({"recipient": "1", "text": "hi", "quick_replies": [{"title": "a"}]}),
    )
    .await;
    assert_eq!(m, "quick_replies[0].payload: is required");

    let m = rejected(
        &server,
        &exec,
        json!({"recipient": "1", "text": "hi",
        "quick_replies": [{"title": "a", "payload": "p", "content_type": "user_email"}]}),
    )
    .await;
    assert!(m.starts_with("quick_replies[0].content_type: "), "{m}");

    let four_buttons = json!([{"title": "a"}, {"title": "b"}, {"title": "c"}, {"title": "d"}]);
    let m = rejected(
        &server,
        &exec,
        json!({"recipient": "1", "text": "hi",
        "elements": [{"title": "ok", "buttons": []}, {"title": "ok", "buttons": four_buttons}]}),
    )
    .await;
    assert_eq!(m, "elements[1].buttons: more than 3 elements (4)");

    let m = rejected(
        &server,
        &exec,
        json!({"recipient": "1", "text": "hi",
        "elements": [{"title": "t".repeat(81)}]}),
    )
    .await;
    assert_eq!(m, "elements[0].title: longer than 80 characters");

    let m = rejected(&server, &exec, json!({"recipient": "17841a", "text": "hi"})).await;
    assert_eq!(m, "recipient: does not match the pattern `[0-9]+`");

    // 999 bytes of two-byte characters is 500 characters yet too long.
    let m = rejected(&server, &exec, json!({"recipient": "1", "text": "é".repeat(501)})).await;
    assert_eq!(m, "text: longer than 1000 bytes (1002 bytes)");

    // Within the limits the request leaves with defaults filled in and
    // undeclared fields kept.
    let ok = exec
        .execute(
            "send",
            &params(json!({"recipient": 17841, "text": "é".repeat(500),
                "quick_replies": [{"title": "t".repeat(20), "payload": "P1", "image_url": "https://x/y.png"}]})),
            &mut Session::new().with_access_token("t"),
        )
        .await
        .unwrap();
    assert_eq!(ok.data, json!({ "id": "m1" }));
    let body: Value = serde_json::from_slice(&server.last().body).unwrap();
    assert_eq!(body["recipient"]["id"], "17841");
    assert_eq!(
        body["message"]["quick_replies"],
        json!([{"content_type": "text", "title": "t".repeat(20), "payload": "P1", "image_url": "https://x/y.png"}])
    );
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn empty_required_strings_count_as_missing() {
    let server = TestServer::start(|_| Canned::json(200, json!({ "message_id": "m1" }))).await;
    let c = Arc::new(Connector::load(SPEC, "limits.md").unwrap());
    let exec = Executor::new(c, Arc::new(ReqwestTransport::new().unwrap()))
        .with_base_url(Some(server.url()));
    let m = rejected(&server, &exec, json!({"recipient": "", "text": "hi"})).await;
    assert_eq!(m, "recipient: is required (got an empty string)");
    let m = rejected(&server, &exec, json!({"recipient": "1", "text": ""})).await;
    assert_eq!(m, "text: is required (got an empty string)");
    let m = rejected(
        &server,
        &exec,
        json!({"recipient": "1", "text": "hi",
        "quick_replies": [{"title": "", "payload": "p"}]}),
    )
    .await;
    assert_eq!(m, "quick_replies[0].title: is required (got an empty string)");
    assert!(server.requests().is_empty());
}

#[test]
fn bad_declarations_fail_at_load() {
    let bad = SPEC.replace("pattern: \"[0-9]+\"", "pattern: \"[0-9\"");
    let e = Connector::load(&bad, "limits.md").unwrap_err();
    assert!(e.message.contains("param `recipient`: bad `pattern`"), "{e}");
    let bad = SPEC.replace(
        "text: { type: string, required: true, min_length: 1, max_bytes: 1000 }",
        "text: { type: string, properties: { a: { type: string } } }",
    );
    let e = Connector::load(&bad, "limits.md").unwrap_err();
    assert!(e.message.contains("`properties` needs `type: object`"), "{e}");
    let bad = SPEC.replace(
        "content_type: { type: enum, values: [text], default: text }",
        "content_type: { type: enum, values: [text], default: user_phone_number }",
    );
    let e = Connector::load(&bad, "limits.md").unwrap_err();
    assert!(e.message.contains("quick_replies[].content_type"), "{e}");
}
