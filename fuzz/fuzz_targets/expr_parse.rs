//! Expressions and templates: parsing never panics, and whatever parses
//! evaluates without panicking against a response-like environment.

#![no_main]

use igdm_spec::expr::{Bare, Env, Expr, Scope, Template};
use libfuzzer_sys::fuzz_target;
use serde_json::json;

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else { return };
    let params = json!({"text": "it's {{x}} | y", "limit": 20, "ids": ["1", 2]});
    let body = json!({"thread": {"viewer_id": 1, "items": [{"item_id": "1", "user_id": "1", "timestamp": 1_700_000_000_123_456u64}]}});
    let env = Env { params: &params, root: &body, current: &body, ..Env::empty() };
    for bare in [Bare::Variables, Bare::Fields] {
        if let Ok(e) = Expr::parse(src, Scope::Response, bare) {
            let _ = e.eval(&env);
        }
    }
    if let Ok(t) = Template::parse(src, Scope::Request) {
        let _ = t.render(&env);
    }
});
