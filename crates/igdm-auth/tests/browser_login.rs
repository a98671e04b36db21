//! Browser login in a real headless Chromium against the sandbox's login page:
//! plain login, two-factor step, challenge (refused headless, and completed by
//! steps), and timeout.

#![cfg(feature = "browser")]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{Sb, chromium_or_skip};
use igdm_auth::browser::{BrowserOptions, StepErrorKind, UrlRewriter, browser_login, run_steps};
use igdm_auth::{AuthConfig, AuthError};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use tokio::sync::Mutex;

/// One Chromium at a time: the machine has two cores.
static BROWSER: Mutex<()> = Mutex::const_new(());

const WAIT_INBOX: &str = r#"{"wait_for": {"any": [
    {"url_matches": "https://www.instagram.com/direct/"},
    {"selector": "[aria-label='Home']"}
], "timeout": 15000}}"#;

fn steps(middle: &[Value], wait_ms: u64) -> Value {
    let mut s = vec![
        json!({"goto": "https://www.instagram.com/accounts/login/"}),
        json!({"type": {"selector": "input[name=username]", "text": "{{username}}"}}),
        json!({"type": {"selector": "input[name=password]", "text": "{{password}}"}}),
        json!({"click": "button[type=submit]"}),
    ];
    s.extend(middle.iter().cloned());
    let mut wait: Value = serde_json::from_str(WAIT_INBOX).unwrap();
    wait["wait_for"]["timeout"] = json!(wait_ms);
    s.push(wait);
    s.push(json!({"assert_cookies": ["sessionid", "csrftoken", "ds_user_id"]}));
    s.push(json!({"extract_cookies": {"names": ["sessionid", "csrftoken", "ds_user_id", "mid", "ig_did"], "optional": ["rur", "ig_www_claim"]}}));
    s.push(json!({"extract": {"selector": "img[data-testid='user-avatar']", "attribute": "alt", "as": "username"}}));
    s.push(json!("close"));
    Value::Array(s)
}

fn config(steps: Value) -> AuthConfig {
    let auth = json!({
        "type": "cookies",
        "domain": "instagram.com",
        "cookies": ["sessionid", "csrftoken", "ds_user_id", "mid", "ig_did"],
        "connect": {"playwright": {
            "launch": {"headless": false},
            "steps": steps,
            "on_success": {"message": "Connected to Instagram as @{{username}}!"},
            "on_error": {
                "challenge_required": {"message": "Instagram requires verification. Please complete it in the browser."},
                "timeout": {"message": "Login timed out. Please try again."}
            }
        }}
    });
    AuthConfig::from_auth_value(&auth, None, None).unwrap()
}

fn options(sb: &Sb, username: &str, password: &str) -> BrowserOptions {
    let mut inputs = BTreeMap::new();
    inputs.insert("username".to_owned(), SecretString::from(username.to_owned()));
    inputs.insert("password".to_owned(), SecretString::from(password.to_owned()));
    BrowserOptions {
        headless: true,
        rewriter: Some(UrlRewriter::new(UrlRewriter::INSTAGRAM_WEB, &sb.url()).unwrap()),
        element_timeout: Duration::from_secs(20),
        inputs,
        ..BrowserOptions::default()
    }
}

fn check_session(login: &igdm_auth::browser::BrowserLogin, account: &Value, username: &str) {
    let c = &login.credential;
    let pk = account["pk"].as_str().unwrap();
    assert_eq!(c.get("ds_user_id").unwrap().expose_secret(), pk);
    assert!(c.get("sessionid").unwrap().expose_secret().starts_with(&format!("{pk}%3A")));
    for name in ["csrftoken", "mid", "ig_did", "rur"] {
        assert!(c.get(name).is_some(), "{name} collected");
    }
    assert_eq!(c.label.as_deref(), Some(username));
    assert_eq!(
        login.message.as_deref(),
        Some(format!("Connected to Instagram as @{username}!").as_str())
    );
    assert!(c.base_url.as_deref().unwrap().starts_with("http://127.0.0.1:"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_login_collects_the_session() {
    if !chromium_or_skip("plain_login_collects_the_session") {
        return;
    }
    let _one = BROWSER.lock().await;
    let sb = Sb::start().await;
    let account = sb.account("personal", "plain.user", false, false).await;
    let login =
        browser_login(&config(steps(&[], 30_000)), &options(&sb, "plain.user", "pw-123456"))
            .await
            .unwrap();
    check_session(&login, &account, "plain.user");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_factor_step_is_typed_by_the_steps() {
    if !chromium_or_skip("two_factor_step_is_typed_by_the_steps") {
        return;
    }
    let _one = BROWSER.lock().await;
    let sb = Sb::start().await;
    let account = sb.account("personal", "tfa.user", true, false).await;
    let code = account["two_factor_code"].as_str().unwrap().to_owned();
    let middle = [
        json!({"wait_for": {"selector": "input[name=verificationCode]", "timeout": 20000}}),
        json!({"type": {"selector": "input[name=verificationCode]", "text": "{{code}}"}}),
        json!({"click": "button[type=submit]"}),
    ];
    let mut opts = options(&sb, "tfa.user", "pw-123456");
    opts.inputs.insert("code".into(), SecretString::from(code));
    let login = browser_login(&config(steps(&middle, 30_000)), &opts).await.unwrap();
    check_session(&login, &account, "tfa.user");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn challenge_is_reported_headless_and_can_be_completed_by_steps() {
    if !chromium_or_skip("challenge_is_reported_headless_and_can_be_completed_by_steps") {
        return;
    }
    let _one = BROWSER.lock().await;
    let sb = Sb::start().await;
    let account = sb.account("personal", "chal.user", false, true).await;
    // The connector's steps wait for the inbox; headless, the challenge cannot be completed.
    let err = browser_login(&config(steps(&[], 30_000)), &options(&sb, "chal.user", "pw-123456"))
        .await
        .unwrap_err();
    let AuthError::LoginFailed { message, error } = &err else { panic!("{err}") };
    assert_eq!(error.kind, StepErrorKind::ChallengeRequired);
    assert_eq!(message, "Instagram requires verification. Please complete it in the browser.");
    // Steps that answer the challenge complete the login.
    let middle = [
        json!({"wait_for": {"selector": "input[name=security_code]", "timeout": 20000}}),
        json!({"type": {"selector": "input[name=security_code]", "text": "{{code}}"}}),
        json!({"click": "button[type=submit]"}),
    ];
    let mut opts = options(&sb, "chal.user", "pw-123456");
    opts.inputs.insert(
        "code".into(),
        SecretString::from(account["challenge_code"].as_str().unwrap().to_owned()),
    );
    let login = browser_login(&config(steps(&middle, 30_000)), &opts).await.unwrap();
    check_session(&login, &account, "chal.user");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_times_out_with_the_spec_message() {
    if !chromium_or_skip("wrong_password_times_out_with_the_spec_message") {
        return;
    }
    let _one = BROWSER.lock().await;
    let sb = Sb::start().await;
    sb.account("personal", "slow.user", false, false).await;
    let err = browser_login(&config(steps(&[], 1500)), &options(&sb, "slow.user", "wrong"))
        .await
        .unwrap_err();
    let AuthError::LoginFailed { message, error } = &err else { panic!("{err}") };
    assert_eq!(error.kind, StepErrorKind::Timeout);
    assert_eq!(error.step, Some(4));
    assert_eq!(message, "Login timed out. Please try again.");
    // The raw runner with a cookie condition and no extract_cookies step returns every cookie.
    let raw = igdm_auth::browser::parse_steps(&json!([
        {"goto": "https://www.instagram.com/accounts/login/"},
        {"wait_for": {"cookie": "csrftoken", "timeout": 5000}}
    ]))
    .unwrap();
    let out = run_steps(&raw, &options(&sb, "x", "y")).await.unwrap();
    assert!(out.cookies.contains_key("csrftoken"));
    assert_eq!(out.to_protocol_json()["success"], json!(true));
}
