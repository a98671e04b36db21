//! Response extensions beyond seed 001: an empty root as a `not_found`
//! error, conditional warnings and lookups into the whole body.

mod common;

use std::sync::Arc;

use common::{Canned, TestServer};
use igdm_model::ErrorClass;
use igdm_spec::{ActionOutput, Connector, ExecError, Executor, ReqwestTransport, Session};
use serde_json::{Map, Value, json};

const SPEC: &str = r#"---
id: responses-test
auth:
  type: none
api:
  base_url: "https://i.instagram.com/api/v1"
actions:
  get:
    readonly: true
    params:
      conversation_id: { type: string, required: true }
      message_id: { type: string, required: true }
    rest:
      method: GET
      url: "/direct_v2/threads/{{params.conversation_id}}/"
      response:
        root: "thread.items[?item_id == params.message_id] | [0]"
        not_found: "no message {{params.message_id}} among the newest items of {{params.conversation_id}}"
        mapping:
          id: ".item_id"
          text: ".text"
  list:
    readonly: true
    params:
      conversation_id: { type: string, required: true }
      cursor: { type: string }
    rest:
      method: GET
      url: "/{{params.conversation_id}}/messages"
      params:
        after: "{{params.cursor}}"
      response:
        root: "data[?from]"
        mapping:
          id: "[].id"
        page:
          next_cursor: "paging.cursors.after"
          has_more: "paging.next"
        warnings:
          - when: "paging.next != null"
            message: "only the 20 most recent messages of {{params.conversation_id}} are readable"
          - when: "data[?!from]"
            message: "some messages came without details"
          - message: "always"
  messages:
    readonly: true
    rest:
      method: GET
      url: "/direct_v2/threads/1/"
      response:
        root: "thread.items"
        mapping:
          id: "[].item_id"
          sender:
            id: "[].user_id | to_string"
            username: "[].user_id | lookup: root.thread.users, 'pk', 'username'"
            display_name: "[].user_id | lookup: root.thread.users, 'pk', 'full_name'"
            is_self: "[].user_id == root.thread.viewer_id"
          content_type: "[].item_type | map_value: 'text', 'text', 'raw_media', 'image', 'voice_media', 'audio', 'unknown'"
          kind: "[].item_type | map_value: 'text', 'plain'"
---
"#;

fn thread() -> Value {
    json!({"thread": {"thread_id": "340282366841710300949128", "items": [
        {"item_id": "31", "text": "first"},
        {"item_id": "32", "text": "second"},
    ]}, "status": "ok"})
}

fn params(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

const NOT_FOUND: &str = "        not_found: \"no message {{params.message_id}} among the newest items of {{params.conversation_id}}\"\n";

async fn executor(spec: &str) -> (TestServer, Executor) {
    let server = TestServer::start(|_| Canned::json(200, thread())).await;
    let c = Arc::new(Connector::load(spec, "responses.md").unwrap());
    let exec = Executor::new(c, Arc::new(ReqwestTransport::new().unwrap()))
        .with_base_url(Some(server.url()));
    (server, exec)
}

async fn get(exec: &Executor, message_id: &str) -> Result<ActionOutput, ExecError> {
    let p =
        params(json!({"conversation_id": "340282366841710300949128", "message_id": message_id}));
    exec.execute("get", &p, &mut Session::new()).await
}

#[tokio::test]
async fn an_empty_root_can_be_not_found() {
    assert!(SPEC.contains(NOT_FOUND));
    let (server, exec) = executor(SPEC).await;
    let found = get(&exec, "32").await.unwrap();
    assert_eq!(found.data, json!({"id": "32", "text": "second"}));
    assert!(found.warnings.is_empty(), "{:?}", found.warnings);

    let e = get(&exec, "99").await.unwrap_err();
    let ExecError::Api(e) = e else { panic!("expected an ApiError, got {e:?}") };
    assert_eq!(e.class, ErrorClass::NotFound);
    assert!(!e.retryable);
    assert_eq!(e.message, "no message 99 among the newest items of 340282366841710300949128");
    assert_eq!(server.requests().len(), 2, "the lookup did reach the server");

    // Without `not_found` an empty root stays null data with a warning.
    let (_lenient, exec) = executor(&SPEC.replace(NOT_FOUND, "")).await;
    let out = get(&exec, "99").await.unwrap();
    assert!(out.data.is_null());
    assert_eq!(out.warnings, ["the response root is empty"]);
}

#[test]
fn not_found_is_checked_at_load() {
    let bad = SPEC.replace("no message {{params.message_id}}", "no message {{param.message_id}}");
    let e = Connector::load(&bad, "responses.md").unwrap_err();
    assert!(e.message.contains("not_found"), "{e}");
}

#[tokio::test]
async fn warnings_can_be_conditional() {
    let server = TestServer::start(|r| {
        if r.query.iter().any(|(k, _)| k == "after") {
            Canned::json(200, json!({"data": [{"id": "m21"}], "paging": {"cursors": {"after": "C2"}}}))
        } else {
            Canned::json(
                200,
                json!({"data": [{"id": "m1", "from": {"id": "1"}}],
                    "paging": {"cursors": {"after": "C1"}, "next": "https://graph.instagram.com/next"}}),
            )
        }
    })
    .await;
    let c = Arc::new(Connector::load(SPEC, "responses.md").unwrap());
    let exec = Executor::new(c, Arc::new(ReqwestTransport::new().unwrap()))
        .with_base_url(Some(server.url()));
    let mut s = Session::new();
    let first =
        exec.execute("list", &params(json!({"conversation_id": "c9"})), &mut s).await.unwrap();
    assert_eq!(first.data, json!([{"id": "m1"}]));
    assert_eq!(first.warnings, ["only the 20 most recent messages of c9 are readable", "always"]);
    let older = exec
        .execute("list", &params(json!({"conversation_id": "c9", "cursor": "C1"})), &mut s)
        .await
        .unwrap();
    assert_eq!(older.data, json!([]));
    assert!(!older.page.unwrap().has_more);
    assert_eq!(older.warnings, ["some messages came without details", "always"]);

    let bad = SPEC.replace("when: \"paging.next != null\"", "when: \"paging.next !=\"");
    let e = Connector::load(&bad, "responses.md").unwrap_err();
    assert!(e.message.contains("response.warnings[0].when"), "{e}");
}

#[tokio::test]
async fn per_element_mappings_read_the_whole_body() {
    let body = json!({"thread": {
        "viewer_id": 5512345678u64,
        "users": [
            {"pk": 17841400000000001u64, "username": "priya.k", "full_name": "Priya K"},
            {"pk": "17841400000000002", "username": "sam", "full_name": "Sam"},
        ],
        "items": [
            {"item_id": "1", "user_id": 17841400000000001u64, "item_type": "text"},
            {"item_id": "2", "user_id": 17841400000000002u64, "item_type": "raw_media"},
            {"item_id": "3", "user_id": 5512345678u64, "item_type": "xma_clip"},
        ],
    }});
    let server = TestServer::start(move |_| Canned::json(200, body.clone())).await;
    let c = Arc::new(Connector::load(SPEC, "responses.md").unwrap());
    let exec = Executor::new(c, Arc::new(ReqwestTransport::new().unwrap()))
        .with_base_url(Some(server.url()));
    let out = exec.execute("messages", &Map::new(), &mut Session::new()).await.unwrap();
    assert_eq!(
        out.data,
        json!([
            {"id": "1", "content_type": "text", "kind": "plain",
             "sender": {"id": "17841400000000001", "username": "priya.k", "display_name": "Priya K", "is_self": false}},
            {"id": "2", "content_type": "image", "kind": null,
             "sender": {"id": "17841400000000002", "username": "sam", "display_name": "Sam", "is_self": false}},
            {"id": "3", "content_type": "unknown", "kind": null,
             "sender": {"id": "5512345678", "username": null, "display_name": null, "is_self": true}},
        ])
    );
    assert!(out.warnings.is_empty(), "{:?}", out.warnings);

    let bad =
        SPEC.replace("lookup: root.thread.users, 'pk', 'full_name'", "lookup: root.thread.users");
    let e = Connector::load(&bad, "responses.md").unwrap_err();
    assert!(e.message.contains("lookup"), "{e}");
}
