//! What the connectors put on the wire: headers, body encodings, and the
//! session state they carry from one response to the next request.

mod common;

use common::{Harness, run};
use serde_json::{Map, Value, json};

fn params(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

fn header<'a>(req: &'a igdm_spec::HttpRequest, name: &str) -> &'a str {
    req.headers.get(name).unwrap_or_else(|| panic!("no {name} header")).to_str().unwrap()
}

fn field(req: &igdm_spec::HttpRequest, name: &str) -> Option<String> {
    req.form_fields().into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

#[tokio::test]
async fn web_requests_carry_the_web_surface_headers_and_form_fields() {
    let h = Harness::start().await;
    let exec = h.executor("instagram-web");
    let mut s = Harness::web_session(&h.seed.personal);
    let group = h.seed.group_thread_id.clone();
    let csrf = h.seed.personal["cookies"]["csrftoken"].as_str().unwrap().to_owned();

    let req = exec
        .build_request(
            "send",
            &params(json!({
                "conversation_id": group, "text": "yes", "reply_to": "3", "reply_to_client_context": "77",
                "client_context": "6794317423556461913",
            })),
            &s,
        )
        .unwrap();
    assert_eq!(req.method, "POST");
    assert!(req.url.as_str().ends_with("/api/v1/direct_v2/threads/broadcast/text/"), "{}", req.url);
    assert!(req.url.as_str().starts_with(&h.base_url()), "the base-URL override applies");
    assert_eq!(header(&req, "x-ig-app-id"), "936619743392459");
    assert_eq!(header(&req, "x-csrftoken"), csrf);
    assert_eq!(header(&req, "x-ig-www-claim"), "0", "the claim starts at 0");
    assert_eq!(header(&req, "x-asbd-id"), "359341");
    assert_eq!(header(&req, "x-requested-with"), "XMLHttpRequest");
    assert_eq!(header(&req, "referer"), "https://www.instagram.com/direct/inbox/");
    assert!(header(&req, "user-agent").contains("Chrome/"));
    assert!(header(&req, "content-type").starts_with("application/x-www-form-urlencoded"));
    assert!(header(&req, "cookie").contains("sessionid="));
    assert_eq!(field(&req, "thread_ids").unwrap(), format!("[{group}]"));
    assert_eq!(field(&req, "replied_to_item_id").as_deref(), Some("3"));
    assert_eq!(field(&req, "replied_to_client_context").as_deref(), Some("77"));
    assert_eq!(field(&req, "replied_to_action_source").as_deref(), Some("swipe"));
    for f in ["client_context", "mutation_token", "offline_threading_id"] {
        assert_eq!(field(&req, f).as_deref(), Some("6794317423556461913"), "{f}");
    }

    // Without a reply the reply fields are absent, not empty.
    let req = exec
        .build_request("send", &params(json!({"conversation_id": group, "text": "x"})), &s)
        .unwrap();
    assert!(field(&req, "replied_to_item_id").is_none());
    assert!(field(&req, "replied_to_action_source").is_none());
    // A generated client_context is one value for all three de-duplication
    // keys of the broadcast, and a new one for the next broadcast.
    let generated = field(&req, "client_context").unwrap();
    assert_eq!((generated.len(), generated.matches('-').count()), (36, 4), "{generated}");
    for f in ["mutation_token", "offline_threading_id"] {
        assert_eq!(field(&req, f).as_deref(), Some(generated.as_str()), "{f}");
    }

    let req = exec
        .build_request("send_to_user", &params(json!({"user_id": "42", "text": "x"})), &s)
        .unwrap();
    assert_eq!(field(&req, "recipient_users").as_deref(), Some("[[42]]"), "a nested JSON array");
    let next = field(&req, "client_context").unwrap();
    assert_ne!(next, generated);
    for f in ["mutation_token", "offline_threading_id"] {
        assert_eq!(field(&req, f).as_deref(), Some(next.as_str()), "{f}");
    }

    let req = exec
        .build_request("list", &params(json!({"conversation_id": group, "cursor": "abc"})), &s)
        .unwrap();
    let query: Vec<(String, String)> = req.url.query_pairs().into_owned().collect();
    assert!(query.contains(&("cursor".into(), "abc".into())));
    assert!(query.contains(&("direction".into(), "older".into())));
    assert_eq!(req.method, "GET");
    assert!(req.body.is_empty());

    // The claim the server hands out comes back on the next request.
    run(&exec, &mut s, "list_conversations", json!({})).await.unwrap();
    let req = exec.build_request("list_conversations", &Map::new(), &s).unwrap();
    assert!(
        header(&req, "x-ig-www-claim").starts_with("hmac."),
        "{}",
        header(&req, "x-ig-www-claim")
    );
}

#[tokio::test]
async fn official_sends_are_json_with_a_bearer_token() {
    let h = Harness::start().await;
    for (id, session, path) in [
        (
            "instagram-graph",
            Harness::graph_session(&h.seed.business),
            "/v21.0/me/messages".to_owned(),
        ),
        (
            "instagram-page",
            Harness::page_session(&h.seed.business),
            format!("/v21.0/{}/messages", h.seed.business["page_id"].as_str().unwrap()),
        ),
    ] {
        let exec = h.executor(id);
        let req = exec
            .build_request(
                "send",
                &params(json!({"user_id": "1780000000000001", "text": "hi"})),
                &session,
            )
            .unwrap();
        assert_eq!(req.url.path(), path, "{id}");
        assert!(header(&req, "authorization").starts_with("Bearer "), "{id}");
        assert!(header(&req, "content-type").starts_with("application/json"));
        let body: Value = serde_json::from_slice(&req.body).unwrap();
        assert_eq!(
            body,
            json!({"recipient": {"id": "1780000000000001"}, "messaging_type": "RESPONSE", "message": {"text": "hi"}}),
            "{id}: no tag and no empty fields by default"
        );
        let req = exec
            .build_request(
                "send",
                &params(json!({"user_id": "1780000000000001", "text": "hi", "human_agent": true})),
                &session,
            )
            .unwrap();
        let body: Value = serde_json::from_slice(&req.body).unwrap();
        assert_eq!(body["messaging_type"], "MESSAGE_TAG");
        assert_eq!(body["tag"], "HUMAN_AGENT");

        let req = exec
            .build_request(
                "react",
                &params(json!({"user_id": "1780000000000001", "message_id": "m1"})),
                &session,
            )
            .unwrap();
        let body: Value = serde_json::from_slice(&req.body).unwrap();
        assert_eq!(
            body,
            json!({"recipient": {"id": "1780000000000001"}, "sender_action": "react", "payload": {"message_id": "m1", "reaction": "love"}})
        );
    }
}
