//! The connectors' error tables on responses the sandbox has no fault mode
//! for (checkpoint, consent, DM privacy, sentry blocks, Graph policy blocks),
//! classified from bodies written here after the shapes the reference
//! describes (none is a recording of a real answer; the documented Graph
//! errors are in `fixtures/graph/` and `contract.rs`).

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use igdm_model::ErrorClass;
use igdm_spec::{Connector, HttpResponse};
use serde_json::{Value, json};

fn connector(id: &str) -> Connector {
    Connector::load(igdm_connectors::by_id(id).unwrap(), id).unwrap()
}

fn response(status: u16, content_type: &str, body: impl Into<Bytes>) -> HttpResponse {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_str(content_type).unwrap());
    HttpResponse { status, headers, body: body.into() }
}

fn json_response(status: u16, body: &Value) -> HttpResponse {
    response(status, "application/json; charset=utf-8", body.to_string())
}

#[test]
fn private_api_failures() {
    let web = connector("instagram-web");
    let class = |r: HttpResponse| web.classify(&r).map(|e| e.class);
    let cases = [
        (
            json_response(
                403,
                &json!({"message": "login_required", "logout_reason": 2, "status": "fail"}),
            ),
            ErrorClass::AuthExpired,
        ),
        (
            json_response(
                400,
                &json!({"message": "checkpoint_required", "checkpoint_url": "https://www.instagram.com/checkpoint/123/", "lock": true, "status": "fail"}),
            ),
            ErrorClass::Checkpoint,
        ),
        (
            json_response(400, &json!({"message": "consent_required", "status": "fail"})),
            ErrorClass::Consent,
        ),
        (
            json_response(
                400,
                &json!({"message": "feedback_required", "feedback_title": "Try Again Later", "spam": true, "status": "fail"}),
            ),
            ErrorClass::ActionBlocked,
        ),
        (
            json_response(
                400,
                &json!({"message": "Please wait a few minutes before you try again.", "status": "fail"}),
            ),
            ErrorClass::RateLimited,
        ),
        (
            json_response(
                400,
                &json!({"message": "sentry block", "error_type": "sentry_block", "status": "fail"}),
            ),
            ErrorClass::RateLimited,
        ),
        (
            json_response(
                400,
                &json!({"message": "You can't message this account unless they follow you.", "status": "fail"}),
            ),
            ErrorClass::RecipientUnavailable,
        ),
        // A bare 404 is a missing object or a retired endpoint, never a challenge.
        (response(404, "text/html", "Not Found"), ErrorClass::NotFound),
        (
            response(404, "text/html", "<html><body>Page Not Found</body></html>"),
            ErrorClass::NotFound,
        ),
        (
            json_response(404, &json!({"message": "Thread not found", "status": "fail"})),
            ErrorClass::NotFound,
        ),
        (
            response(
                200,
                "text/html; charset=utf-8",
                "<!DOCTYPE html><html>Login • Instagram</html>",
            ),
            ErrorClass::AuthExpired,
        ),
        (response(502, "text/html", "<html>Bad Gateway</html>"), ErrorClass::Transient),
        (
            json_response(500, &json!({"message": "Oops, an error occurred.", "status": "fail"})),
            ErrorClass::Transient,
        ),
        (
            json_response(400, &json!({"message": "Invalid thread_ids", "status": "fail"})),
            ErrorClass::InvalidRequest,
        ),
    ];
    for (r, want) in cases {
        let body = String::from_utf8_lossy(&r.body).into_owned();
        assert_eq!(class(r), Some(want.clone()), "{body}");
    }
    let e = web
        .classify(&json_response(
            400,
            &json!({"message": "challenge_required", "challenge": {"url": "https://www.instagram.com/challenge/1/abc/", "api_path": "/challenge/1/abc/"}, "status": "fail"}),
        ))
        .unwrap();
    assert_eq!(e.class, ErrorClass::Challenge);
    assert_eq!(e.url.as_deref(), Some("https://www.instagram.com/challenge/1/abc/"));
    assert!(web.classify(&json_response(200, &json!({"status": "ok"}))).is_none());
}

#[test]
fn graph_failures() {
    for id in ["instagram-graph", "instagram-page"] {
        let c = connector(id);
        let graph = |code: u32, subcode: Option<u32>, message: &str| {
            let mut e = json!({"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "A1b2"});
            if let Some(s) = subcode {
                e["error_subcode"] = json!(s);
            }
            c.classify(&json_response(400, &json!({"error": e}))).unwrap()
        };
        let cases = [
            (
                190,
                Some(463),
                "Error validating access token: Session has expired",
                ErrorClass::AuthExpired,
            ),
            (4, None, "(#4) Application request limit reached", ErrorClass::RateLimited),
            (17, None, "(#17) User request limit reached", ErrorClass::RateLimited),
            (32, None, "(#32) Page request limit reached", ErrorClass::RateLimited),
            (
                613,
                None,
                "(#613) Calls to this api have exceeded the rate limit.",
                ErrorClass::RateLimited,
            ),
            (
                10,
                Some(2_018_278),
                "(#10) This message is sent outside of allowed window.",
                ErrorClass::OutsideWindow,
            ),
            (
                10,
                Some(1_893_063),
                "(#10) The Page is temporarily restricted from sending",
                ErrorClass::ActionBlocked,
            ),
            (
                368,
                None,
                "(#368) Temporarily blocked for policies violations",
                ErrorClass::ActionBlocked,
            ),
            (
                551,
                Some(1_545_041),
                "(#551) This person isn't available right now.",
                ErrorClass::RecipientUnavailable,
            ),
            (100, Some(2_018_001), "(#100) No matching user found", ErrorClass::NotFound),
            (100, Some(33), "(#100) Object does not exist", ErrorClass::NotFound),
            (
                230,
                None,
                "(#230) User consent is required to access user profile",
                ErrorClass::RecipientUnavailable,
            ),
            (230, None, "(#230) Requires pages_messaging permission", ErrorClass::InvalidRequest),
            (
                10,
                None,
                "(#10) Application does not have permission for this action",
                ErrorClass::InvalidRequest,
            ),
            (100, None, "(#100) Param text must be at most 1000 bytes", ErrorClass::InvalidRequest),
            (1, None, "An unknown error occurred", ErrorClass::Transient),
            (
                2,
                None,
                "An unexpected error has occurred. Please retry your request later.",
                ErrorClass::Transient,
            ),
        ];
        for (code, subcode, message, want) in cases {
            let e = graph(code, subcode, message);
            assert_eq!(e.class, want, "{id}: {code}/{subcode:?} {message}");
            let p = e.provider.unwrap();
            assert_eq!(p.code, Some(code.to_string()));
            assert_eq!(p.trace_id.as_deref(), Some("A1b2"));
        }
    }
}
