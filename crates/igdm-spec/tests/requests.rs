//! Request building beyond seed 001: JSON bodies, bearer auth, cursors, the
//! base-URL override, and the two kinds of transport failure.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Canned, TestServer};
use igdm_spec::{Connector, ExecError, Executor, ReqwestTransport, Session, TransportError};
use serde_json::{Map, Value, json};

const GRAPH: &str = r#"---
id: graph-like
auth:
  type: bearer
api:
  base_url: "https://graph.instagram.com/v21.0"
  body_format: json
  headers:
    Accept: application/json
    X-Optional: "{{params.missing}}"
capabilities:
  version: "2026-11+test"
  actions:
    send_text: { action: send, limits: { text_max_bytes: 1000 } }
    unsend: { supported: false }
pacing:
  write_min_interval: 2s
  write_jitter: 1s
  writes_per_hour: 60
  writes_per_day: 300
rate_limits:
  sends:
    per_second: 1
    per_hour: 200
    applies_to: [send]
  all:
    per_hour: 4800
    applies_to: "*"
limits:
  text_max_bytes: 1000
actions:
  send:
    params:
      recipient: { type: string, required: true }
      text: { type: string, required: true, max_bytes: 1000 }
      quick_replies: { type: array, items: { type: string } }
      notify: { type: boolean, default: true }
      tag: { type: enum, values: [HUMAN_AGENT] }
    rest:
      method: POST
      url: "/me/messages"
      params:
        access_hint: "{{params.tag}}"
      body:
        recipient: { id: "{{params.recipient}}" }
        message:
          text: "{{params.text}}"
          quick_replies: "{{params.quick_replies}}"
          metadata: "sent by {{params.recipient}}"
        notify: "{{params.notify}}"
        tag: "{{params.tag}}"
        fixed: [1, "two", { three: 3 }]
      response:
        mapping:
          id: ".message_id"
          recipient: ".recipient_id"
  conversations:
    readonly: true
    params:
      cursor: { type: string }
    rest:
      method: GET
      url: "{{api.base_url}}/me/conversations"
      params:
        platform: instagram
        after: "{{params.cursor}}"
      response:
        root: data
        mapping:
          id: ".id"
          updated_at: ".updated_time | to_datetime"
        page:
          next_cursor: "paging.cursors.after"
          has_more: "paging.next"
  elsewhere:
    readonly: true
    rest:
      method: GET
      url: "https://cdn.example.net/x"
---
"#;

fn graph() -> Arc<Connector> {
    Arc::new(Connector::load(GRAPH, "graph.md").unwrap())
}

fn params(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

#[test]
fn extension_keys_are_typed() {
    let c = graph();
    let caps = c.capabilities.as_ref().unwrap();
    assert_eq!(caps.version.as_deref(), Some("2026-11+test"));
    assert_eq!(caps.actions["send_text"].limits.text_max_bytes, Some(1000));
    assert!(!caps.actions["unsend"].supported);
    let p = c.pacing.as_ref().unwrap();
    assert_eq!(p.write_min_interval, Some(Duration::from_secs(2)));
    assert_eq!((p.writes_per_hour, p.writes_per_day), (Some(60), Some(300)));
    assert!(c.rate_limits["sends"].applies("send", false));
    assert!(!c.rate_limits["sends"].applies("conversations", true));
    assert!(c.rate_limits["all"].applies("conversations", true));
    assert_eq!(c.limits.as_ref().unwrap().text_max_bytes, Some(1000));
    let bad = GRAPH.replace("applies_to: [send]", "applies_to: [sned]");
    let e = Connector::load(&bad, "graph.md").unwrap_err();
    assert!(e.message.contains("unknown action `sned`"), "{e}");
    let bad = GRAPH.replace("send_text: { action: send,", "send_text: { action: post,");
    assert!(
        Connector::load(&bad, "graph.md").unwrap_err().message.contains("unknown action `post`")
    );
}

#[test]
fn json_body_keeps_types_and_drops_empty_fields() {
    let exec = Executor::new(graph(), Arc::new(ReqwestTransport::new().unwrap()));
    let session = Session::new().with_access_token("IGQVJ-secret");
    let req = exec
        .build_request(
            "send",
            &params(json!({"recipient": 1_789_000_000_123u64, "text": "a \"b\" {{c}}", "quick_replies": ["x", "y"]})),
            &session,
        )
        .unwrap();
    assert_eq!(req.method, http::Method::POST);
    // A relative URL joins the base URL; the empty query param is dropped.
    assert_eq!(req.url.as_str(), "https://graph.instagram.com/v21.0/me/messages");
    assert_eq!(req.headers.get("content-type").unwrap(), "application/json");
    assert_eq!(req.headers.get("authorization").unwrap(), "Bearer IGQVJ-secret");
    assert!(req.headers.get("x-optional").is_none());
    assert!(req.headers.get("cookie").is_none());
    let body: Value = serde_json::from_slice(&req.body).unwrap();
    assert_eq!(
        body,
        json!({
            "recipient": {"id": "1789000000123"},
            "message": {"text": "a \"b\" {{c}}", "quick_replies": ["x", "y"], "metadata": "sent by 1789000000123"},
            "notify": true,
            "fixed": [1, "two", {"three": 3}]
        })
    );
    let shown = req.redacted_headers();
    assert!(shown.contains(&("authorization".to_owned(), "<redacted>".to_owned())));
}

#[test]
fn byte_limits_and_enums_are_checked() {
    let exec = Executor::new(graph(), Arc::new(ReqwestTransport::new().unwrap()));
    let s = Session::new().with_access_token("t");
    let long = "é".repeat(501);
    let err = exec
        .build_request("send", &params(json!({"recipient": "1", "text": long})), &s)
        .unwrap_err();
    let ExecError::InvalidParams(e) = err else { panic!() };
    assert!(e.message.starts_with("text: longer than 1000 bytes"), "{}", e.message);
    let err = exec
        .build_request("send", &params(json!({"recipient": "1", "text": "x", "tag": "OTHER"})), &s)
        .unwrap_err();
    assert!(matches!(err, ExecError::InvalidParams(_)));
    let req = exec
        .build_request(
            "send",
            &params(json!({"recipient": "1", "text": "x", "tag": "HUMAN_AGENT"})),
            &s,
        )
        .unwrap();
    assert_eq!(req.url.query(), Some("access_hint=HUMAN_AGENT"));
}

#[tokio::test]
async fn cursors_come_back_with_the_page() {
    let server = TestServer::start(|r| {
        let after = r.query.iter().find(|(k, _)| k == "after").map(|(_, v)| v.clone());
        match after.as_deref() {
            None => Canned::json(
                200,
                json!({"data": [{"id": "aWdfZ", "updated_time": "2026-11-20T10:00:00+0000"}],
                       "paging": {"cursors": {"after": "QVFIUk1", "before": "QVFIUjB"}, "next": "https://graph.instagram.com/v21.0/me/conversations?after=QVFIUk1"}}),
            ),
            _ => Canned::json(200, json!({"data": [], "paging": {"cursors": {"after": "END"}}})),
        }
    })
    .await;
    let exec = Executor::new(graph(), Arc::new(ReqwestTransport::new().unwrap()))
        .with_base_url(Some(server.url()));
    let mut s = Session::new().with_access_token("tok");
    let out = exec.execute("conversations", &Map::new(), &mut s).await.unwrap();
    assert_eq!(out.data, json!([{"id": "aWdfZ", "updated_at": "2026-11-20T10:00:00Z"}]));
    let page = out.page.unwrap();
    assert_eq!((page.next_cursor.as_deref(), page.has_more), (Some("QVFIUk1"), true));
    let r = server.last();
    assert_eq!(r.path, "/v21.0/me/conversations");
    assert_eq!(r.header("authorization"), Some("Bearer tok"));
    let out =
        exec.execute("conversations", &params(json!({"cursor": "QVFIUk1"})), &mut s).await.unwrap();
    assert_eq!(out.data, json!([]));
    let page = out.page.unwrap();
    assert_eq!((page.next_cursor, page.has_more), (None, false));
    assert_eq!(server.last().query_pairs(), [("platform", "instagram"), ("after", "QVFIUk1")]);
}

#[test]
fn override_only_rewrites_the_connectors_hosts() {
    let base = url::Url::parse("http://127.0.0.1:9/sandbox").unwrap();
    let exec = Executor::new(graph(), Arc::new(ReqwestTransport::new().unwrap()))
        .with_base_url(Some(base));
    let s = Session::new().with_access_token("t");
    let req = exec.build_request("conversations", &Map::new(), &s).unwrap();
    assert_eq!(
        req.url.as_str(),
        "http://127.0.0.1:9/sandbox/v21.0/me/conversations?platform=instagram"
    );
    // cdn.example.net is an absolute URL in the spec, hence one of its hosts.
    let req = exec.build_request("elsewhere", &Map::new(), &s).unwrap();
    assert_eq!(req.url.as_str(), "http://127.0.0.1:9/sandbox/x");
    let origins: Vec<&str> = exec.connector().origins().collect();
    assert_eq!(origins, ["https://cdn.example.net:443", "https://graph.instagram.com:443"]);
}

#[tokio::test]
async fn refused_connection_means_not_sent() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let base = url::Url::parse(&format!("http://{addr}")).unwrap();
    let exec = Executor::new(graph(), Arc::new(ReqwestTransport::new().unwrap()))
        .with_base_url(Some(base));
    let err = exec
        .execute("conversations", &Map::new(), &mut Session::new().with_access_token("t"))
        .await
        .unwrap_err();
    assert!(matches!(err, ExecError::Transport(TransportError::NotSent { .. })), "{err:?}");
    assert!(err.nothing_sent() && !err.outcome_unknown());
}

#[tokio::test]
async fn timeout_after_sending_means_outcome_unknown() {
    let server = TestServer::start(|_| {
        let mut c = Canned::json(200, json!({"message_id": "m1"}));
        c.delay = Some(Duration::from_secs(3));
        c
    })
    .await;
    let transport = ReqwestTransport::with_timeout(Duration::from_millis(300)).unwrap();
    let exec = Executor::new(graph(), Arc::new(transport)).with_base_url(Some(server.url()));
    let err = exec
        .execute(
            "send",
            &params(json!({"recipient": "1", "text": "hi"})),
            &mut Session::new().with_access_token("t"),
        )
        .await
        .unwrap_err();
    assert!(err.outcome_unknown(), "{err:?}");
    assert!(!err.nothing_sent());
    // The server did receive the send.
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn bearer_connector_requires_a_token() {
    let exec = Executor::new(graph(), Arc::new(ReqwestTransport::new().unwrap()));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let err =
        rt.block_on(exec.execute("conversations", &Map::new(), &mut Session::new())).unwrap_err();
    assert!(matches!(err, ExecError::MissingCredentials(_)), "{err:?}");
}

#[test]
fn unquoted_39_digit_ids_are_never_rounded() {
    let c = Connector::load(include_str!("fixtures/seed001.md"), "seed001.md").unwrap();
    let body = br#"{"thread": {"viewer_id": 178612345, "items": [{"item_id": 7312345678901234567, "user_id": 178612345, "timestamp": 1763790000123456, "text": "x"}]}, "thread_id": 340282366841710300949128137443944319108}"#;
    let p = params(json!({"conversation_id": "340282366841710300949128137443944319108"}));
    let out = c.map_body("list", &p, body).unwrap();
    assert_eq!(out.data[0]["id"], json!(7_312_345_678_901_234_567u64));
    assert_eq!(
        out.raw_json().unwrap()["thread_id"],
        json!("340282366841710300949128137443944319108")
    );
}

#[test]
fn a_failing_field_is_null_with_a_located_warning() {
    let c = Connector::load(include_str!("fixtures/seed001.md"), "seed001.md").unwrap();
    let body = br#"{"thread": {"viewer_id": 1, "items": [{"item_id": "1", "user_id": 1, "timestamp": "yesterday", "text": "x"}]}}"#;
    let out = c.map_body("list", &params(json!({"conversation_id": "9"})), body).unwrap();
    assert_eq!(out.data[0]["timestamp"], Value::Null);
    assert_eq!(out.data[0]["sender"]["is_self"], json!(true));
    assert_eq!(out.warnings.len(), 1);
    assert!(out.warnings[0].starts_with("[0].timestamp: divide:"), "{:?}", out.warnings);
}
