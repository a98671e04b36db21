//! Every error rule from the private API and Graph references, classified over
//! real HTTP through a connector `errors:` table.

mod common;

use std::sync::Arc;

use chrono::Utc;
use common::{Canned, Recorded, TestServer};
use igdm_model::{ApiError, ErrorClass};
use igdm_spec::{Connector, ExecError, Executor, ReqwestTransport, Session};
use serde_json::json;

const FIXTURE: &str = include_str!("fixtures/errors.md");

fn graph(code: u32, subcode: Option<u32>) -> Canned {
    let mut e = json!({"message": "(#x) failure", "type": "OAuthException", "code": code, "fbtrace_id": "AbCdEf123"});
    if let Some(s) = subcode {
        e["error_subcode"] = json!(s);
    }
    Canned::json(400, json!({"error": e}))
}

fn answer(r: &Recorded) -> Canned {
    let case = r.path.trim_start_matches("/api/v1/case/").trim_end_matches('/');
    let future = (Utc::now() + chrono::Duration::seconds(600))
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    match case {
        "login_required" => Canned::json(
            403,
            json!({"message": "login_required", "error_title": "You've been logged out", "logout_reason": 2, "status": "fail"}),
        ),
        "challenge_required" => Canned::json(
            400,
            json!({"message": "challenge_required", "challenge": {"url": "https://i.instagram.com/challenge/1234/AbCd/", "api_path": "/challenge/1234/AbCd/", "hide_webview_header": true, "lock": true, "logout": false, "native_flow": true}, "status": "fail", "error_type": "checkpoint_challenge_required"}),
        ),
        "checkpoint_required" => Canned::json(
            400,
            json!({"message": "checkpoint_required", "checkpoint_url": "https://i.instagram.com/checkpoint/98/", "lock": true, "status": "fail"}),
        ),
        "feedback_required" => Canned::json(
            400,
            json!({"message": "feedback_required", "spam": true, "feedback_title": "Try Again Later", "feedback_message": "We limit how often you can do certain things on Instagram.", "feedback_url": "repute/report_problem/scraping/", "status": "fail"}),
        ),
        "429_seconds" => Canned::raw(429, "text/plain", "").header("retry-after", "120"),
        "429_date" => Canned::raw(429, "text/plain", "").header("retry-after", &future),
        "429_past" => Canned::raw(429, "text/plain", "")
            .header("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT"),
        "429_negative" => Canned::raw(429, "text/plain", "").header("retry-after", "-30"),
        "429_garbage" => Canned::raw(429, "text/plain", "").header("retry-after", "soon-ish"),
        "please_wait" => Canned::json(
            400,
            json!({"message": "Please wait a few minutes before you try again.", "status": "fail"}),
        ),
        "html" => Canned::raw(
            200,
            "text/html; charset=utf-8",
            "<!DOCTYPE html><html><head><title>Login • Instagram</title></head></html>",
        ),
        "login_redirect" => Canned::raw(302, "text/html", "")
            .header("location", "https://www.instagram.com/accounts/login/?next=/api/v1/"),
        "challenge_redirect" => Canned::raw(302, "text/html", "")
            .header("location", "https://www.instagram.com/challenge/?next=/"),
        "graph_190" => graph(190, Some(460)),
        "graph_4" => graph(4, None),
        "graph_17" => graph(17, None),
        "graph_32" => graph(32, None),
        "graph_613" => graph(613, None),
        "graph_10_2018278" => graph(10, Some(2_018_278)),
        "graph_551" => graph(551, Some(1_545_041)),
        "graph_100_2018001" => graph(100, Some(2_018_001)),
        "graph_100" => graph(100, Some(33)),
        "graph_1" => graph(1, None),
        "graph_2" => graph(2, None),
        "graph_368" => graph(368, Some(1_390_008)),
        "server_error" => Canned::raw(503, "text/html", "<html>Service Unavailable</html>"),
        "ok" => Canned::json(200, json!({"status": "ok"})),
        _ => Canned::json(418, json!({"unexpected": case})),
    }
}

async fn classify(case: &str) -> ApiError {
    let server = TestServer::start(answer).await;
    let connector = Arc::new(Connector::load(FIXTURE, "errors.md").unwrap());
    let exec = Executor::new(connector, Arc::new(ReqwestTransport::new().unwrap()))
        .with_base_url(Some(server.url()));
    let mut session = Session::new().with_cookies([("sessionid", "s")]);
    let params = json!({"case": case}).as_object().unwrap().clone();
    match exec.execute("call", &params, &mut session).await {
        Err(ExecError::Api(e)) => e,
        other => panic!("{case}: expected a classified error, got {other:?}"),
    }
}

#[tokio::test]
async fn login_required_is_auth_expired() {
    let e = classify("login_required").await;
    assert_eq!(e.class, ErrorClass::AuthExpired);
    assert!(e.needs_user && !e.retryable);
    let p = e.provider.unwrap();
    assert_eq!((p.status, p.code.as_deref()), (Some(403), Some("login_required")));
}

#[tokio::test]
async fn challenge_required_captures_url() {
    let e = classify("challenge_required").await;
    assert_eq!(e.class, ErrorClass::Challenge);
    assert_eq!(e.url.as_deref(), Some("https://i.instagram.com/challenge/1234/AbCd/"));
    let p = e.provider.unwrap();
    assert_eq!((p.status, p.code.as_deref()), (Some(400), Some("checkpoint_challenge_required")));
}

#[tokio::test]
async fn checkpoint_required_is_checkpoint() {
    let e = classify("checkpoint_required").await;
    assert_eq!(e.class, ErrorClass::Checkpoint);
    assert_eq!(e.url.as_deref(), Some("https://i.instagram.com/checkpoint/98/"));
}

#[tokio::test]
async fn feedback_required_blocks_writes_only() {
    let e = classify("feedback_required").await;
    assert_eq!(e.class, ErrorClass::ActionBlocked);
    assert!(!e.writes_allowed && e.class.reads_allowed() && !e.needs_user);
    assert_eq!(e.message, "We limit how often you can do certain things on Instagram.");
}

#[tokio::test]
async fn too_many_requests_honours_retry_after() {
    let e = classify("429_seconds").await;
    assert_eq!((e.class.clone(), e.retry_after), (ErrorClass::RateLimited, Some(120)));
    let e = classify("429_date").await;
    let secs = e.retry_after.unwrap();
    assert!((590..=600).contains(&secs), "{secs}");
    for case in ["429_past", "429_negative", "429_garbage"] {
        let e = classify(case).await;
        assert_eq!((e.class.clone(), e.retry_after), (ErrorClass::RateLimited, None), "{case}");
    }
}

#[tokio::test]
async fn please_wait_is_rate_limited() {
    let e = classify("please_wait").await;
    assert_eq!(e.class, ErrorClass::RateLimited);
    assert!(e.retryable && !e.writes_allowed);
}

#[tokio::test]
async fn html_on_a_json_endpoint_is_auth_expired() {
    assert_eq!(classify("html").await.class, ErrorClass::AuthExpired);
    // Redirects are not followed: a login redirect stays visible.
    let e = classify("login_redirect").await;
    assert_eq!(e.class, ErrorClass::AuthExpired);
    assert_eq!(e.provider.unwrap().status, Some(302));
    let e = classify("challenge_redirect").await;
    assert_eq!(e.class, ErrorClass::Challenge);
    assert_eq!(e.url.as_deref(), Some("https://www.instagram.com/challenge/?next=/"));
}

#[tokio::test]
async fn graph_codes() {
    let cases = [
        ("graph_190", ErrorClass::AuthExpired),
        ("graph_4", ErrorClass::RateLimited),
        ("graph_17", ErrorClass::RateLimited),
        ("graph_32", ErrorClass::RateLimited),
        ("graph_613", ErrorClass::RateLimited),
        ("graph_10_2018278", ErrorClass::OutsideWindow),
        ("graph_551", ErrorClass::RecipientUnavailable),
        ("graph_100_2018001", ErrorClass::NotFound),
        ("graph_100", ErrorClass::InvalidRequest),
        ("graph_1", ErrorClass::Transient),
        ("graph_2", ErrorClass::Transient),
        ("graph_368", ErrorClass::ActionBlocked),
    ];
    for (case, class) in cases {
        let e = classify(case).await;
        assert_eq!(e.class, class, "{case}");
        let p = e.provider.unwrap();
        assert_eq!(p.status, Some(400));
        assert_eq!(p.trace_id.as_deref(), Some("AbCdEf123"), "{case}");
        assert_eq!(p.message.as_deref(), Some("(#x) failure"));
    }
    let p = classify("graph_10_2018278").await.provider.unwrap();
    assert_eq!((p.code.as_deref(), p.subcode.as_deref()), (Some("10"), Some("2018278")));
}

#[tokio::test]
async fn server_errors_are_transient() {
    let e = classify("server_error").await;
    assert_eq!(e.class, ErrorClass::Transient);
    assert!(e.retryable);
    assert_eq!(e.provider.unwrap().status, Some(503));
}

#[tokio::test]
async fn success_is_not_an_error() {
    let server = TestServer::start(answer).await;
    let connector = Arc::new(Connector::load(FIXTURE, "errors.md").unwrap());
    let exec = Executor::new(connector.clone(), Arc::new(ReqwestTransport::new().unwrap()))
        .with_base_url(Some(server.url()));
    let params = json!({"case": "ok"}).as_object().unwrap().clone();
    let out = exec
        .execute("call", &params, &mut Session::new().with_cookies([("sessionid", "s")]))
        .await
        .unwrap();
    assert_eq!(out.data, json!({"status": "ok"}));
    // A message text quoting an error marker inside a 200 body does not fire a rule.
    let resp = igdm_spec::HttpResponse {
        status: 200,
        headers: http::HeaderMap::new(),
        body: bytes::Bytes::from_static(
            br#"{"items":[{"text":"Please wait a few minutes"}],"status":"ok"}"#,
        ),
    };
    assert!(connector.classify(&resp).is_none());
}
